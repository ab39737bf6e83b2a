/// The stretch of the log that the units of one worker read together: one read of each event
/// for every unit at the same positions, each taking what is in its scope. A pure value; the
/// `SharedLog` actor performs its reads.
///
/// The window holds every row that was visible when its stretch `(start, end]` was read (each
/// extension reads `global_position > end ORDER BY global_position LIMIT chunk`, so the reads
/// cover the stretch without overlap); a position it lacks is a gap, which each unit resolves as
/// it does for its own reads, and a late row found visible is filled in (`fill`). Invariant:
/// the last row's position is `end`, and without rows `start == end`.
///
/// Units that take from it are members, each at its checkpoint. The window never holds more
/// than `capacity` rows: it drops what every member has passed, and extends only when that
/// leaves room for another chunk, so the slowest member holds the others back rather than the
/// window growing (memory is a window of events, not the log). A unit behind `start` or past
/// `end` while others share the window reads its own range (`alone`) until it reaches it.
struct TailWindow: Sendable {
    /// The most rows held.
    let capacity: Int
    /// Rows per extension read.
    let chunk: Int
    private(set) var start: Int64 = 0
    private(set) var end: Int64 = 0
    private(set) var rows: [WindowRow] = []
    /// The last extension read fewer rows than it asked for: it reached the log's head then.
    private(set) var headReached = false
    private(set) var anchored = false
    /// The units taking from the window, at their checkpoints.
    private(set) var members: [String: Int64] = [:]

    init(capacity: Int, chunk: Int) {
        self.chunk = max(1, chunk)
        self.capacity = max(capacity, self.chunk)
    }

    /// What a unit at a checkpoint does next (before its transaction, holding no connection).
    enum Next: Equatable {
        /// Rows after the checkpoint are in the window: take them.
        case serve
        /// The unit is at the window's end: read the next chunk (or wait for the read in flight).
        case extend
        /// The window is full with rows the slowest member still needs: wait for it to move.
        case waitForRoom
        /// Others share the window elsewhere: read its own range.
        case alone
    }

    /// Decides for `unit` at `checkpoint`, joining it to the window when it shares it (and
    /// anchoring the window there when nobody else takes from it).
    mutating func next(for unit: String, at checkpoint: Int64) -> Next {
        if !self.anchored || self.members.isEmpty || self.members.keys.allSatisfy({ $0 == unit }) && !self.covers(checkpoint) {
            self.anchor(at: checkpoint)
        }
        guard self.covers(checkpoint) else {
            self.members[unit] = nil
            return .alone
        }
        self.members[unit] = checkpoint
        if checkpoint < self.end { return .serve }
        self.trim()
        return self.hasRoom ? .extend : .waitForRoom
    }

    /// Whether `checkpoint` lies in `[start, end]`.
    func covers(_ checkpoint: Int64) -> Bool {
        self.anchored && checkpoint >= self.start && checkpoint <= self.end
    }

    /// Room for one more chunk (or nothing held).
    var hasRoom: Bool { self.rows.isEmpty || self.rows.count + self.chunk <= self.capacity }

    /// The rows after `checkpoint` that `scope` applies, at most `limit` events: every position
    /// up to the batch's end (out-of-scope rows as positions only), as a scoped read returns
    /// them. `full` when it stopped at the limit or at the window's end before the log's head.
    /// Nil when the window does not cover `checkpoint`.
    func serve(after checkpoint: Int64, limit: Int, scope: ReadScope) -> Batch? {
        guard self.covers(checkpoint) else { return nil }
        var batch = Batch(after: checkpoint)
        var index = self.firstIndex(after: checkpoint)
        while index < self.rows.count {
            let row = self.rows[index]
            if scope.contains(row) {
                if batch.events.count == limit {
                    batch.full = true
                    return batch
                }
                batch.events.append(row.event)
            }
            batch.positions.append(row.position)
            index += 1
        }
        batch.full = !self.headReached
        return batch
    }

    /// Rows after `position` in the window.
    func rowsAfter(_ position: Int64) -> Int { self.rows.count - self.firstIndex(after: position) }

    /// Whether to read the next chunk now, before anyone reaches the end: the most advanced
    /// member is within a chunk of it, more may be visible, and there is room.
    var wantsPrefetch: Bool {
        guard self.anchored, !self.headReached, let leader = self.members.values.max() else { return false }
        var trimmed = self
        trimmed.trim()
        return trimmed.hasRoom && self.rowsAfter(leader) <= self.chunk
    }

    /// The extension read after `after` returned `rows` (ascending); `reachedHead` when it read
    /// up to the log's head. A read that no longer starts at the end (the window moved
    /// meanwhile) is dropped.
    mutating func extended(after: Int64, with rows: [WindowRow], reachedHead: Bool) {
        guard self.anchored, after == self.end else { return }
        self.rows.append(contentsOf: rows.drop { $0.position <= self.end })
        self.end = self.rows.last?.position ?? self.end
        self.headReached = reachedHead
    }

    /// Rows that became visible after their stretch was read (a gap's owner committed): fills in
    /// those inside the window that it lacks.
    mutating func fill(_ late: [WindowRow]) {
        for row in late where self.covers(row.position) && row.position > self.start {
            let index = self.firstIndex(after: row.position - 1)
            if index < self.rows.count, self.rows[index].position == row.position { continue }
            self.rows.insert(row, at: index)
        }
    }

    /// `unit` committed up to `checkpoint`: it stays a member while the window covers it, and
    /// the rows every member has passed are dropped (so that caught-up units idle holding none).
    mutating func moved(_ unit: String, to checkpoint: Int64) {
        guard self.members[unit] != nil else { return }
        self.members[unit] = self.covers(checkpoint) ? checkpoint : nil
        self.trim()
    }

    /// `unit` stops taking from the window (standby, parked, failing, stopped).
    mutating func leave(_ unit: String) { self.members[unit] = nil }

    /// Lets the window go on without its slowest member, which held it back for too long (a
    /// stuck or very slow unit): that unit reads its own range from then on.
    /// - Returns: the unit dropped.
    @discardableResult
    mutating func dropSlowest() -> String? {
        guard let slowest = self.members.min(by: { $0.value < $1.value || $0.value == $1.value && $0.key < $1.key }) else { return nil }
        self.members[slowest.key] = nil
        return slowest.key
    }

    /// Drops the rows every member has passed.
    mutating func trim() {
        let lowest = self.members.values.min() ?? self.end
        guard lowest > self.start else { return }
        let index = self.firstIndex(after: lowest)
        self.rows.removeFirst(index)
        self.start = lowest
    }

    private mutating func anchor(at checkpoint: Int64) {
        guard !self.covers(checkpoint) else {
            self.anchored = true
            return
        }
        self.anchored = true
        self.start = checkpoint
        self.end = checkpoint
        self.rows = []
        self.headReached = false
    }

    /// The index of the first row above `position` (binary search).
    private func firstIndex(after position: Int64) -> Int {
        var low = 0
        var high = self.rows.count
        while low < high {
            let middle = (low + high) / 2
            if self.rows[middle].position <= position { low = middle + 1 } else { high = middle }
        }
        return low
    }
}
