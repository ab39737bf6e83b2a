import Logging
import Postgres

/// The driver of the `TailWindow`: the one reader of the log for the units of a worker.
///
/// A unit calls `prepare` before its batch transaction, holding no connection: the window then
/// holds the rows after its checkpoint (one extension read for everyone at the end, coalesced:
/// a unit arriving while a read is in flight waits for it), or the unit learns to read its own
/// range. In the transaction, `take` serves the batch from memory and never waits, so that a
/// unit holding a connection never waits for another one. When the leading member comes within
/// a chunk of the end, the next chunk is read in the background (for everyone what the
/// read-ahead connection was for one unit).
actor SharedLog {
    private var window: TailWindow
    private var extending: Task<Void, any Error>?
    private let room = Wakeup()
    private let read: @Sendable (_ after: Int64, _ limit: Int) async throws -> WindowReader.Read
    /// The SQL of the reads (a unit fills a resolved gap's rows with it on its own connection).
    nonisolated let windowReader: WindowReader
    /// How long a unit at the end waits for the slowest member before the window drops it.
    let patience: Duration
    private let logger: Logger
    /// Rows read by extensions (for tests and the benchmark).
    private(set) var rowsRead = 0

    init(
        capacity: Int, chunk: Int, patience: Duration, windowReader: WindowReader, logger: Logger,
        read: @escaping @Sendable (_ after: Int64, _ limit: Int) async throws -> WindowReader.Read
    ) {
        self.window = TailWindow(capacity: capacity, chunk: chunk)
        self.windowReader = windowReader
        self.patience = patience
        self.logger = logger
        self.read = read
    }

    /// Brings the rows after `checkpoint` into the window when `unit` shares it.
    /// - Returns: false when the unit reads its own range instead.
    /// - Throws: the extension read's error (the unit backs off as after any database error).
    func prepare(_ unit: String, after checkpoint: Int64) async throws -> Bool {
        var extended = false
        let deadline = ContinuousClock.now + self.patience
        while true {
            try Task.checkCancellation()
            switch self.window.next(for: unit, at: checkpoint) {
            case .serve:
                self.prefetchIfWanted()
                return true
            case .alone:
                return false
            case .extend:
                // One read at the end per call: a read that found nothing leaves the unit at the
                // head, and its batch is empty.
                if extended { return true }
                try await self.extend()
                extended = true
            case .waitForRoom:
                let remaining = deadline - ContinuousClock.now
                if remaining <= .zero {
                    if let dropped = self.window.dropSlowest() {
                        self.logger.debug("The shared window goes on without its slowest unit.", metadata: ["unit": "\(dropped)"])
                    }
                    continue
                }
                _ = await self.room.wait(timeout: min(remaining, .milliseconds(100)))
                try Task.checkCancellation()
            }
        }
    }

    /// The batch after `checkpoint` from the window, without waiting; nil when the window does
    /// not cover it (the unit reads its own range).
    func take(_ unit: String, after checkpoint: Int64, limit: Int, scope: ReadScope) -> Batch? {
        guard let batch = self.window.serve(after: checkpoint, limit: limit, scope: scope) else {
            self.window.leave(unit)
            return nil
        }
        self.window.moved(unit, to: batch.positions.last ?? checkpoint)
        self.prefetchIfWanted()
        return batch
    }

    /// Whether a batch after `checkpoint` can be taken now with rows in it.
    func hasRows(after checkpoint: Int64) -> Bool {
        self.window.covers(checkpoint) && self.window.rowsAfter(checkpoint) > 0
    }

    /// `unit` committed up to `checkpoint`.
    func moved(_ unit: String, to checkpoint: Int64) {
        self.window.moved(unit, to: checkpoint)
        self.room.signal()
    }

    /// `unit` stops taking from the window for now.
    func leave(_ unit: String) {
        self.window.leave(unit)
        self.room.signal()
    }

    /// Rows found visible after their stretch was read (a resolved gap).
    func fill(_ rows: [WindowRow]) { self.window.fill(rows) }

    /// The positions in `positions` that the window covers but lacks.
    func missing(_ positions: [Int64]) -> [Int64] {
        let held = Set(self.window.rows.map(\.position))
        return positions.filter { self.window.covers($0) && $0 > self.window.start && !held.contains($0) }
    }

    /// What the window holds now (for tests).
    var snapshot: TailWindow { self.window }

    private func prefetchIfWanted() {
        guard self.extending == nil, self.window.wantsPrefetch else { return }
        Task { try? await self.extend() }
    }

    /// Reads the next chunk, or waits for the read in flight. The read's task extends the window
    /// itself, so whoever waits for it finds the rows there.
    private func extend() async throws {
        if let running = self.extending {
            try await running.value
            return
        }
        self.window.trim()
        guard self.window.hasRoom else { return }
        let after = self.window.end
        let limit = self.window.chunk
        let read = self.read
        // It runs on the actor only after this call suspends below, so `extending` is set first.
        let task = Task {
            do {
                let read = try await read(after, limit)
                await self.extended(after: after, with: read)
            } catch {
                await self.extensionFailed()
                throw error
            }
        }
        self.extending = task
        try await task.value
    }

    private func extended(after: Int64, with read: WindowReader.Read) {
        self.extending = nil
        self.rowsRead += read.rows.count
        self.window.extended(after: after, with: read.rows, reachedHead: read.reachedHead)
        self.room.signal()
    }

    private func extensionFailed() { self.extending = nil }
}
