import Postgres

extension Migration {
    /// The events and heads tables in the schema's layout, the shape eventsalsa/store's generator
    /// writes (names, columns, indexes): plain, or natively RANGE-partitioned on `global_position`
    /// (a sequence the table does not own, no UNIQUE constraints: the heads table keeps versions
    /// unique) with the first ranges created.
    public static func eventStoreSQL(_ schema: Schema) -> String {
        let events = schema.eventsTable
        let heads = schema.headsTable
        let layout = schema.layout
        let (type, id, version) = (layout.typeColumn, layout.idColumn, layout.versionColumn)
        let word = layout.rawValue
        let columns = """
                \(type) TEXT NOT NULL,
                \(id) TEXT NOT NULL,
                \(version) BIGINT NOT NULL,
            """
        let rest = """
                event_type TEXT NOT NULL,
                event_version INT NOT NULL DEFAULT 1,
                payload BYTEA NOT NULL,
                trace_id TEXT,
                correlation_id TEXT,
                causation_id TEXT,
                metadata JSONB,
                created_at TIMESTAMPTZ NOT NULL DEFAULT NOW(),
            """
        let table: String
        switch schema.partitioning {
        case .none:
            table = """
                -- Events: append-only, one row per event. global_position comes from a sequence with
                -- CACHE 1 (the default), which the daemon's exact gap handling relies on.
                CREATE TABLE IF NOT EXISTS \(events.quoted) (
                    global_position BIGSERIAL PRIMARY KEY,
                \(columns)
                    event_id UUID NOT NULL UNIQUE,
                \(rest)
                    UNIQUE (\(type), \(id), \(version))
                );
                """
        case .native(let size, let initial):
            let sequence = self.positionSequence(of: events)
            // initial 0: a table that exists already (`migrate` creates the ranges it lacks).
            let ranges = (0..<Int64(max(0, initial))).map { EventPartitioning.Range(index: $0, size: size) }
            table = """
                -- The position sequence, shared by every range of the events table (CACHE 1, the
                -- default, which the daemon's exact gap handling relies on).
                CREATE SEQUENCE IF NOT EXISTS \(sequence.quoted);

                -- Events, RANGE-partitioned on global_position. No UNIQUE constraint spans the
                -- ranges: the heads table keeps each stream's versions unique.
                CREATE TABLE IF NOT EXISTS \(events.quoted) (
                    global_position BIGINT NOT NULL DEFAULT nextval(\(self.literal(sequence.quoted))),
                \(columns)
                    event_id UUID NOT NULL,
                \(rest)
                    PRIMARY KEY (global_position)
                ) PARTITION BY RANGE (global_position);

                -- The first ranges (`migrate` keeps two ranges ahead of the head when it owns the schema).
                \(ranges.map { self.partitionSQL($0, of: events) }.joined(separator: "\n"))
                """
        }
        return """
            \(table)

            -- Stream reads.
            CREATE INDEX IF NOT EXISTS \(index(events, word))
                ON \(events.quoted) (\(type), \(id), \(version));

            -- Event type queries.
            CREATE INDEX IF NOT EXISTS \(index(events, "event_type"))
                ON \(events.quoted) (event_type, global_position);

            -- Correlation tracking.
            CREATE INDEX IF NOT EXISTS \(index(events, "correlation"))
                ON \(events.quoted) (correlation_id) WHERE correlation_id IS NOT NULL;

            -- Scoped sequential reads (\(type) + global_position).
            CREATE INDEX IF NOT EXISTS \(index(events, "\(word)_type_position"))
                ON \(events.quoted) (\(type), global_position);

            -- Heads: the current version of each stream, reserved by every append (row-locked
            -- until commit), so versions stay unique.
            CREATE TABLE IF NOT EXISTS \(heads.quoted) (
                \(type) TEXT NOT NULL,
                \(id) TEXT NOT NULL,
                \(version) BIGINT NOT NULL,
                updated_at TIMESTAMPTZ NOT NULL DEFAULT NOW(),
                PRIMARY KEY (\(type), \(id))
            );

            CREATE INDEX IF NOT EXISTS \(index(heads, "updated"))
                ON \(heads.quoted) (updated_at);
            """
    }

    /// `events_global_position_seq`, beside the events table.
    public static func positionSequence(of events: QualifiedName) -> QualifiedName {
        QualifiedName(schema: events.schema, name: "\(events.name)_global_position_seq")
    }

    /// One range of a partitioned events table, created if missing.
    public static func partitionSQL(_ range: EventPartitioning.Range, of events: QualifiedName) -> String {
        let partition = QualifiedName(schema: events.schema, name: range.partitionName(of: events.name))
        return "CREATE TABLE IF NOT EXISTS \(partition.quoted) PARTITION OF \(events.quoted)\n    FOR VALUES FROM (\(range.first)) TO (\(range.last + 1));"
    }

    /// A SQL string literal.
    static func literal(_ text: String) -> String { "'" + text.split(separator: "'", omittingEmptySubsequences: false).joined(separator: "''") + "'" }
}
