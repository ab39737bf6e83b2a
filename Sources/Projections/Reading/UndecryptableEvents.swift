import Encryption
import EventStore
import Synchronization

/// The events of a unit whose payload did not decrypt, by position, as their latest read found
/// them: their handler fails with that error in the batch that applies them. (Isolation and
/// retry decrypt their events again, in their own transaction: `BatchReader.decryptAgain`.)
/// Entries at or below the checkpoint are dropped as it moves (`forget(through:)`), and a
/// lookup costs one dictionary access per event.
final class UndecryptableEvents: Sendable {
    private let errors = Mutex<[Int64: EncryptionError]>([:])

    /// How many positions are recorded (for tests).
    var count: Int { self.errors.withLock { $0.count } }

    /// Records what reading `batch` found: its failures, and its other events as decrypted.
    func record(_ batch: Batch) {
        self.errors.withLock { errors in
            if !errors.isEmpty { for event in batch.events { errors[event.globalPosition] = nil } }
            errors.merge(batch.undecryptable) { $1 }
        }
    }

    /// Drops the entries at or below `checkpoint`: those events are applied or dead-lettered,
    /// and a read after a rewind records them again.
    func forget(through checkpoint: Int64) {
        self.errors.withLock { errors in
            guard !errors.isEmpty else { return }
            errors = errors.filter { $0.key > checkpoint }
        }
    }

    /// The errors recorded for `events`, by position (empty, and cheap, while none is recorded).
    func errors(in events: [PersistedEvent]) -> [Int64: EncryptionError] {
        self.errors.withLock { errors in
            guard !errors.isEmpty else { return [:] }
            var found: [Int64: EncryptionError] = [:]
            for event in events { if let error = errors[event.globalPosition] { found[event.globalPosition] = error } }
            return found
        }
    }

    /// The handler failure of the first of `events` whose payload did not decrypt.
    func firstFailure(in events: [PersistedEvent]) -> HandlerError? {
        self.errors.withLock { errors in
            guard !errors.isEmpty else { return nil }
            for event in events { if let error = errors[event.globalPosition] { return HandlerError(event: event, error: error) } }
            return nil
        }
    }
}
