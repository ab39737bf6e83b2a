import EventStore
import Foundation
import Postgres

/// The views readers query (`Projection.publishes`) and the swap that hands them from a
/// projection to its successor (`Projection.replaces`). The one owner of their SQL.
public struct Publications: Sendable {
    public let schema: Schema
    public let projections: [any Projection]

    public init(schema: Schema, projections: [any Projection]) {
        self.schema = schema
        self.projections = projections
    }

    var checkpoints: String { self.schema.checkpointsTable.quoted }

    func units(of name: String) -> [String] {
        guard let projection = self.projections.first(where: { $0.name == name }) else { return [name] }
        return WorkUnit.units(of: projection).map(\.name)
    }

    /// The projections a successor took over, with that successor (from their checkpoint rows).
    public func retired(on connection: some PostgresQuerying) async throws -> [String: String] {
        let units = self.projections.flatMap(WorkUnit.units(of:)).map(\.name)
        var retired: [String: String] = [:]
        for row in try await connection.query(
            "SELECT consumer_name, coalesce(successor, '') FROM \(self.checkpoints) WHERE retired_at IS NOT NULL AND consumer_name = ANY($1::text[])",
            [PostgresTextArray(units)])
        {
            retired[WorkUnit.parse(try row.decode(String.self, at: 0)).projection] = try row.decode(String.self, at: 1)
        }
        return retired
    }

    /// Per view, the projection that serves it now: the oldest of its publishers (along the
    /// `replaces` chain) that is not retired.
    public func servingProjections(retired: [String: String]) -> [String: any Projection] {
        var serving: [String: any Projection] = [:]
        for projection in self.projections where retired[projection.name] == nil {
            for view in projection.publishes.keys {
                if let current = serving[view], Self.isSuccessor(projection, of: current.name, in: self.projections) { continue }
                serving[view] = projection
            }
        }
        return serving
    }

    static func isSuccessor(_ projection: any Projection, of name: String, in projections: [any Projection]) -> Bool {
        var next = projection.replaces
        var steps = 0
        while let current = next, steps <= projections.count {
            if current == name { return true }
            next = projections.first { $0.name == current }?.replaces
            steps += 1
        }
        return false
    }

    /// - Throws: `SchemaError` naming a published view whose name another kind of relation (a
    ///   table) has, or, with `requireViews`, a view that does not exist yet (run `migrate`).
    public func verify(requireViews: Bool, on connection: some PostgresQuerying) async throws {
        for view in Set(self.projections.flatMap(\.publishes.keys)).sorted() {
            let name = try QualifiedName(parsing: view)
            let kind = try await connection.query(
                "SELECT c.relkind::text FROM pg_class c WHERE c.oid = to_regclass($1)", [name.quoted]
            ).first?.decode(String.self, at: 0)
            switch kind {
            case "v"?: continue
            case nil where !requireViews: continue
            case nil:
                throw SchemaError("published view \(view) does not exist: run `projectionist migrate` first")
            case let other?:
                throw SchemaError(
                    "published view \(view) clashes with an existing \(other == "r" || other == "p" ? "table" : "relation (relkind \(other))") of that name: publish under another name")
            }
        }
    }

    /// `migrate`: creates each missing view over the table of the projection serving it.
    public func createMissingViews(on connection: some PostgresQuerying) async throws {
        let serving = self.servingProjections(retired: try await self.retired(on: connection))
        for (view, projection) in serving.sorted(by: { $0.key < $1.key }) {
            let name = try QualifiedName(parsing: view)
            let exists = try await connection.query("SELECT to_regclass($1) IS NOT NULL", [name.quoted])[0].decode(Bool.self, at: 0)
            if exists { continue }
            let table = try QualifiedName(parsing: projection.publishes[view]!)
            try await connection.query("CREATE VIEW \(name.quoted) AS SELECT * FROM \(table.quoted)", [])
        }
    }

    /// What a swap found.
    public enum SwapResult: Equatable, Sendable {
        case swapped
        /// Another instance (or an earlier attempt) did it already.
        case alreadyRetired
        /// Under the lock the successor was no longer ready (the predecessor committed a batch
        /// while the swap waited for its rows): nothing changed; the caller tries again later.
        case notReady
    }

    /// The checkpoint of each of `units` that has a row.
    func positions(of units: [String], on connection: some PostgresQuerying) async throws -> [String: Int64] {
        var positions: [String: Int64] = [:]
        for row in try await connection.query(
            "SELECT consumer_name, last_position FROM \(self.checkpoints) WHERE consumer_name = ANY($1::text[])",
            [PostgresTextArray(units)])
        {
            positions[try row.decode(String.self, at: 0)] = try row.decode(Int64.self, at: 1)
        }
        return positions
    }

    /// `ready` over the checkpoints and the head as `connection` sees them now.
    func isReady(_ successor: String, replacing predecessor: String, batchSize: Int, on connection: some PostgresQuerying) async throws
        -> Bool
    {
        let successorUnits = self.units(of: successor), predecessorUnits = self.units(of: predecessor)
        let positions = try await self.positions(of: successorUnits + predecessorUnits, on: connection)
        let head = try await EventStore(self.schema.eventStore).latestPosition(on: connection)
        return Self.ready(
            successor: successorUnits.map { positions[$0] }, predecessor: predecessorUnits.map { positions[$0] }, head: head,
            batchSize: batchSize)
    }

    /// In one transaction: locks the predecessor's checkpoint rows (waiting for its batches in
    /// flight), checks `ready` again under that lock (a batch the predecessor committed while
    /// the swap waited may have put it ahead of the successor: then `.notReady`), points every view the successor publishes at the successor's table, and marks
    /// the predecessor retired. Idempotent, and all or nothing under kill -9. The view DDL
    /// waits at most `lockTimeout` for readers' queries (a reader waits at most that long
    /// behind it); on `55P03` nothing changed and the caller tries again later.
    public func swap(
        _ successor: any Projection, replacing predecessor: String, batchSize: Int, lockTimeout: Duration = .milliseconds(50),
        on connection: PostgresConnection
    ) async throws -> SwapResult {
        let predecessorUnits = self.units(of: predecessor)
        let store = CheckpointStore(schema: self.schema)
        for unit in predecessorUnits { try await store.ensureRow(unit, on: connection) }
        return try await connection.transaction { tx in
            let retired = try await tx.query(
                "SELECT bool_or(retired_at IS NOT NULL) FROM (SELECT retired_at FROM \(self.checkpoints) WHERE consumer_name = ANY($1::text[]) ORDER BY consumer_name FOR UPDATE) AS locked",
                [PostgresTextArray(predecessorUnits)])[0].decode(Bool?.self, at: 0) ?? false
            if retired { return .alreadyRetired }
            // The predecessor cannot commit past this point until the swap ends; the successor only moves forward.
            guard try await self.isReady(successor.name, replacing: predecessor, batchSize: batchSize, on: tx) else { return .notReady }
            let milliseconds = max(1, lockTimeout.components.seconds * 1000 + lockTimeout.components.attoseconds / 1_000_000_000_000_000)
            try await tx.query("SELECT set_config('lock_timeout', $1, true)", ["\(milliseconds)"])
            for (view, table) in successor.publishes.sorted(by: { $0.key < $1.key }) {
                let viewName = try QualifiedName(parsing: view)
                let tableName = try QualifiedName(parsing: table)
                try await tx.query("SAVEPOINT projectionist_view")
                do {
                    try await tx.query("CREATE OR REPLACE VIEW \(viewName.quoted) AS SELECT * FROM \(tableName.quoted)")
                    try await tx.query("RELEASE SAVEPOINT projectionist_view")
                } catch let error as PostgresError where error.sqlState == "42P16" || error.sqlState == "42804" {
                    // Other columns than the old version's: replace the view instead (readers waiting
                    // on it look the name up again once the transaction commits).
                    try await tx.query("ROLLBACK TO SAVEPOINT projectionist_view")
                    try await tx.query("DROP VIEW \(viewName.quoted)")
                    try await tx.query("CREATE VIEW \(viewName.quoted) AS SELECT * FROM \(tableName.quoted)")
                }
            }
            try await tx.query(
                """
                UPDATE \(self.checkpoints) SET retired_at = now(), successor = $2, state = 'retired', updated_at = now()
                WHERE consumer_name = ANY($1::text[])
                """, [PostgresTextArray(predecessorUnits), successor.name])
            return .swapped
        }
    }

    /// Whether `successor` may take over: every unit of it has a checkpoint, the lowest is no
    /// older than the predecessor's lowest (readers never see older data after the swap) and
    /// within one batch of the head (it has caught up).
    public static func ready(successor: [Int64?], predecessor: [Int64?], head: Int64, batchSize: Int) -> Bool {
        guard !successor.isEmpty, successor.allSatisfy({ $0 != nil }) else { return false }
        let lowest = successor.compactMap { $0 }.min()!
        let predecessorLowest = predecessor.map { $0 ?? 0 }.min() ?? 0
        return lowest >= predecessorLowest && lowest >= head - Int64(batchSize)
    }
}
