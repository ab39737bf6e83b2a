/// The tables eventsalsa/worker creates, for tests of a deployment switching from it.
public enum EventsalsaWorkerSchema {
    /// Reproduces the output of eventsalsa/worker's migration generator with its default table
    /// names (`migrations/generator.go`, `generatePostgresSQL`, at commit
    /// 03f296c55d343b12a7fded8447cc5a595667d31a; only the `Generated:` timestamp is fixed here).
    /// It has no dead-letter table.
    public static let sql = """
        -- Worker Infrastructure Migration
        -- Generated: 2026-01-15T10:00:00Z
        --
        -- These tables coordinate distributed worker execution:
        -- - worker_nodes tracks worker nodes and heartbeats
        -- - consumer_assignments maps consumers to worker nodes
        -- - consumer_checkpoints stores each consumer's last processed global position
        -- - consumer_gap_skips stores durable stale-gap advancement records
        -- - worker_leader_election manages active leader leases

        CREATE TABLE IF NOT EXISTS worker_nodes (
            worker_id UUID PRIMARY KEY,
            heartbeat_at TIMESTAMPTZ NOT NULL DEFAULT NOW(),
            created_at TIMESTAMPTZ NOT NULL DEFAULT NOW(),
            updated_at TIMESTAMPTZ NOT NULL DEFAULT NOW()
        );

        CREATE INDEX IF NOT EXISTS idx_worker_nodes_heartbeat
            ON worker_nodes (heartbeat_at);

        CREATE TABLE IF NOT EXISTS consumer_assignments (
            consumer_name TEXT PRIMARY KEY,
            worker_id UUID REFERENCES worker_nodes(worker_id) ON DELETE SET NULL,
            created_at TIMESTAMPTZ NOT NULL DEFAULT NOW(),
            updated_at TIMESTAMPTZ NOT NULL DEFAULT NOW()
        );

        CREATE INDEX IF NOT EXISTS idx_consumer_assignments_worker
            ON consumer_assignments (worker_id);

        CREATE TABLE IF NOT EXISTS consumer_checkpoints (
            consumer_name TEXT PRIMARY KEY,
            last_position BIGINT NOT NULL DEFAULT 0,
            created_at TIMESTAMPTZ NOT NULL DEFAULT NOW(),
            updated_at TIMESTAMPTZ NOT NULL DEFAULT NOW()
        );

        CREATE TABLE IF NOT EXISTS consumer_gap_skips (
            id BIGSERIAL PRIMARY KEY,
            consumer_name TEXT NOT NULL,
            worker_id UUID NOT NULL,
            gap_position BIGINT NOT NULL,
            skip_to_position BIGINT NOT NULL,
            highest_visible_position BIGINT NOT NULL,
            first_seen_at TIMESTAMPTZ NOT NULL,
            created_at TIMESTAMPTZ NOT NULL DEFAULT NOW()
        );

        CREATE INDEX IF NOT EXISTS idx_consumer_gap_skips_consumer
            ON consumer_gap_skips (consumer_name, created_at DESC);

        CREATE TABLE IF NOT EXISTS worker_leader_election (
            lease_key TEXT PRIMARY KEY,
            leader_id UUID NOT NULL,
            expires_at TIMESTAMPTZ NOT NULL,
            created_at TIMESTAMPTZ NOT NULL DEFAULT NOW(),
            updated_at TIMESTAMPTZ NOT NULL DEFAULT NOW()
        );

        """
}
