/// The tables eventsalsa/projector creates, for tests of a deployment switching from it.
public enum EventsalsaProjectorSchema {
    /// Reproduces the output of eventsalsa/projector's migration generator with its default
    /// table names (`migrations/generator.go` at commit 312f2fe87d6717ad86f01cd7c34f9580fe4b40ac,
    /// where eventsalsa/worker was renamed; only the `Generated:` timestamp is fixed here).
    public static let sql = """
        -- Projector Infrastructure Migration
        -- Generated: 2026-08-20T10:00:00Z
        --
        -- These tables coordinate distributed projection execution:
        -- - projector_instances tracks projector instances and heartbeats
        -- - projection_assignments maps projections to projector instances
        -- - projection_checkpoints stores each projection's last processed global position
        -- - projection_gap_skips stores durable stale-gap advancement records
        -- - projector_leader_leases manages active leader leases

        CREATE TABLE IF NOT EXISTS projector_instances (
            instance_id UUID PRIMARY KEY,
            heartbeat_at TIMESTAMPTZ NOT NULL DEFAULT NOW(),
            created_at TIMESTAMPTZ NOT NULL DEFAULT NOW(),
            updated_at TIMESTAMPTZ NOT NULL DEFAULT NOW()
        );

        CREATE INDEX IF NOT EXISTS idx_projector_instances_heartbeat
            ON projector_instances (heartbeat_at);

        CREATE TABLE IF NOT EXISTS projection_assignments (
            projection_name TEXT PRIMARY KEY,
            instance_id UUID REFERENCES projector_instances(instance_id) ON DELETE SET NULL,
            created_at TIMESTAMPTZ NOT NULL DEFAULT NOW(),
            updated_at TIMESTAMPTZ NOT NULL DEFAULT NOW()
        );

        CREATE INDEX IF NOT EXISTS idx_projection_assignments_instance
            ON projection_assignments (instance_id);

        CREATE TABLE IF NOT EXISTS projection_checkpoints (
            projection_name TEXT PRIMARY KEY,
            last_position BIGINT NOT NULL DEFAULT 0,
            created_at TIMESTAMPTZ NOT NULL DEFAULT NOW(),
            updated_at TIMESTAMPTZ NOT NULL DEFAULT NOW()
        );

        CREATE TABLE IF NOT EXISTS projection_gap_skips (
            id BIGSERIAL PRIMARY KEY,
            projection_name TEXT NOT NULL,
            instance_id UUID NOT NULL,
            gap_position BIGINT NOT NULL,
            skip_to_position BIGINT NOT NULL,
            highest_visible_position BIGINT NOT NULL,
            first_seen_at TIMESTAMPTZ NOT NULL,
            created_at TIMESTAMPTZ NOT NULL DEFAULT NOW()
        );

        CREATE INDEX IF NOT EXISTS idx_projection_gap_skips_projection
            ON projection_gap_skips (projection_name, created_at DESC);

        CREATE TABLE IF NOT EXISTS projector_leader_leases (
            lease_key TEXT PRIMARY KEY,
            leader_id UUID REFERENCES projector_instances(instance_id) ON DELETE CASCADE,
            expires_at TIMESTAMPTZ NOT NULL,
            created_at TIMESTAMPTZ NOT NULL DEFAULT NOW(),
            updated_at TIMESTAMPTZ NOT NULL DEFAULT NOW()
        );
        """
}
