extension ProjectionistConfiguration {
    /// The keys each mapping of the file accepts; the parser refuses any other key.
    enum Keys {
        static let top = ["database", "store", "worker", "metrics", "health", "encryption", "projections"]
        static let encryptedField = ["field", "scope", "scope_id", "key_version", "plaintext"]
        static let encryption = ["system_keys", "active_key", "keys_table", "key_cache_size", "key_cache_lifetime"]
        static let metrics = ["listen"]
        static let health = ["max_lag_events", "max_lag_seconds"]
        static let database = ["url", "password_file", "startup_timeout", "pooling", "max_connections"]
        static let store = [
            "events_table", "layout", "aggregate_heads_table", "stream_heads_table", "partitioning", "partition_size",
            "initial_partitions", "notify_channel", "manage_schema", "notify_trigger", "allow_sequence_cache",
        ]
        static let worker = [
            "checkpoints_table", "gap_skips_table", "dead_letters_table", "batch_size", "poll_interval", "max_poll_interval",
            "gap_warn_after", "gap_skip_after", "slow_batch_warn", "lease_ttl",
        ]
        static let projection = [
            "name", "aggregate_types", "stream_types", "on_error", "retry_parked", "partitions", "publish", "replaces", "decrypt", "setup", "reset",
            "reset_aggregate", "drop", "handlers",
        ]
    }

    /// Every key the file may hold, as a dotted path: `worker.batch_size`; a projection entry's
    /// keys as `projections[].name`. What the parser accepts, in the file's order.
    public static var knownKeys: [String] {
        Keys.database.map { "database.\($0)" } + Keys.store.map { "store.\($0)" } + Keys.worker.map { "worker.\($0)" }
            + Keys.metrics.map { "metrics.\($0)" } + Keys.health.map { "health.\($0)" }
            + Keys.encryption.map { "encryption.\($0)" } + Keys.projection.map { "projections[].\($0)" }
    }
}
