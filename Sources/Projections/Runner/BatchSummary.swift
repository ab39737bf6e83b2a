/// What a committed batch transaction found, for the state machine.
struct BatchSummary: Sendable, Equatable {
    enum Outcome: Sendable, Equatable {
        /// The checkpoint moved, or a full batch was read: read again at once.
        case progressed
        /// Nothing new is visible.
        case idle
        /// Stopped before missing positions whose fate is unknown.
        case blocked([ClosedRange<Int64>])
    }
    var outcome: Outcome
    /// The checkpoint after the commit.
    var checkpoint: Int64
    /// A batch was read ahead for the next transaction.
    var readAhead = false
    /// The read-ahead connection failed; it was dropped and the transaction went on without it.
    var readAheadFailed = false
    /// The last batch read hit its limit: more is visible right away (catching up).
    var full = false
    /// The state columns were written with the commit.
    var persisted = false
}
