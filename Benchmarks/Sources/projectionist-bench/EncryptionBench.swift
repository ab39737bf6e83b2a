import Crypto
import Encryption
import EventStore
import Foundation
import Postgres
import Projections
import TestSupport

// The encryption part: catch-up with `decrypt: true` where every OrderPlaced carries an encrypted
// customer email, against the same log with the email in plain text.

/// The encryption part's figures.
struct EncryptionFigures: Codable {
    var subjects: Int
    var encryptedFields: Int
    /// Events/s of the log covered (median of the rounds).
    var plain: Double
    var decrypted: Double
    /// Decrypted with a one-entry key cache: every batch unwraps every key it needs.
    var decryptedNoCache: Double
    var ratio: Double { self.plain > 0 ? self.decrypted / self.plain : 0 }
}

extension Bench {
    /// The order log twice: `events` with each OrderPlaced's `customer_email` in plain text, and
    /// `events_encrypted` with the same emails as `$encrypted` fields (one data key per customer,
    /// `orders / 10` customers). The projection (the YAML example plus the email) catches up over
    /// each, rounds alternating, as the daemon runs it: keys checked in each batch's transaction.
    mutating func encryption(_ admin: PostgresConnection) async throws {
        try await self.freshSchema(admin)
        try await admin.execute(script: "DROP TABLE IF EXISTS events_encrypted, order_emails; DROP SCHEMA IF EXISTS infrastructure CASCADE")
        try await admin.execute(script: KeyStore.migrationSQL())
        try await admin.execute(script: """
            CREATE TABLE order_emails (order_id text PRIMARY KEY, customer_id text, email text, status text,
                total_cents bigint NOT NULL, line_count int NOT NULL, version bigint NOT NULL)
            """)
        _ = try await Seeder.seedOrders(self.orders, on: admin)
        let subjects = max(1, self.orders / 10)
        let customer = "'c-' || (substr(aggregate_id, 3)::int % \(subjects))"
        try await admin.execute(script: """
            UPDATE events SET payload = convert_to(jsonb_set(convert_from(payload, 'UTF8')::jsonb, '{customer_email}',
                to_jsonb(\(customer) || '@example.com'))::text, 'UTF8')
            WHERE event_type = 'OrderPlaced';
            CLUSTER events USING events_pkey;
            CREATE TABLE events_encrypted (LIKE events INCLUDING ALL);
            CREATE SEQUENCE events_encrypted_seq OWNED BY events_encrypted.global_position;
            ALTER TABLE events_encrypted ALTER global_position SET DEFAULT nextval('events_encrypted_seq');
            INSERT INTO events_encrypted SELECT * FROM events ORDER BY global_position;
            SELECT setval('events_encrypted_seq', (SELECT max(global_position) FROM events_encrypted));
            """)
        let keyStore = KeyStore(keyring: try SystemKeyring(keys: ["bench": .init(size: .bits256)], activeKeyID: "bench"))
        let encrypted = try await Self.encryptEmails(subjects: subjects, keyStore: keyStore, on: admin)
        try await admin.execute(script: "CLUSTER events_encrypted USING events_encrypted_pkey")
        for table in ["events", "events_encrypted"] { try await admin.execute(script: "VACUUM ANALYZE \(table)") }
        print("encryption: \(encrypted) OrderPlaced emails encrypted under \(subjects) customers' data keys")

        let plainProjection = try Self.emailProjection(decrypt: false)
        let decryptingProjection = try Self.emailProjection(decrypt: true)
        let total = Double(try await EventStore().latestPosition(on: admin))
        let rounds = max(1, Int(ProcessInfo.processInfo.environment["BENCH_ROUNDS"] ?? "") ?? 3)
        var plain: [Double] = [], decrypted: [Double] = [], uncached: [Double] = []
        for round in 1...rounds {
            try await admin.execute(script: "TRUNCATE order_emails")
            plain.append(total / (try await self.catchUp([plainProjection], options: self.options(), admin: admin)))
            let plainEmails = try await Self.emailDigest(admin)
            for cacheSize in [10_000, 1] {
                try await admin.execute(script: "TRUNCATE order_emails")
                let options = self.options { options in
                    options.schema.eventsTable = QualifiedName(name: "events_encrypted")
                    options.decryptor = PayloadDecryptor(
                        keyStore: keyStore, cache: KeyCache(.init(maximumEntries: cacheSize, entryLifetime: .seconds(300))),
                        freshness: .checkedEachCall)
                }
                let rate = total / (try await self.catchUp([decryptingProjection], options: options, admin: admin))
                if cacheSize == 1 { uncached.append(rate) } else { decrypted.append(rate) }
                guard try await Self.emailDigest(admin) == plainEmails else {
                    throw EncryptionError(.invalidArgument, "the decrypted read model differs from the plain one")
                }
            }
            print(String(
                format: "round %d: plain %.0f events/s, decrypt: true %.0f (%.2f×), with a one-key cache %.0f",
                round, plain[round - 1], decrypted[round - 1], decrypted[round - 1] / plain[round - 1], uncached[round - 1]))
        }
        self.results.encryption = EncryptionFigures(
            subjects: subjects, encryptedFields: encrypted, plain: median(plain), decrypted: median(decrypted),
            decryptedNoCache: median(uncached))
    }

    /// Creates one data key per customer and rewrites every OrderPlaced of `events_encrypted`
    /// with its email encrypted (as a writer's `FieldEncryptor` would). - Returns: the count.
    static func encryptEmails(subjects: Int, keyStore: KeyStore, on admin: PostgresConnection) async throws -> Int {
        let references = try await admin.transaction { tx in
            var references = Set<KeyReference>()
            for subject in 0..<subjects {
                let version = try await keyStore.createKey(scope: "customer-pii", scopeID: "c-\(subject)", on: tx)
                references.insert(KeyReference(scope: "customer-pii", scopeID: "c-\(subject)", version: version))
            }
            return references
        }
        let stored = try await keyStore.keys(references, on: admin)
        var dataKeys: [String: (KeyReference, SymmetricKey)] = [:]
        for (reference, key) in stored { dataKeys[reference.scopeID] = (reference, try keyStore.unwrap(key)) }
        let rows = try await admin.query(
            "SELECT global_position, convert_from(payload, 'UTF8') FROM events_encrypted WHERE event_type = 'OrderPlaced' ORDER BY global_position")
        var positions: [Int64] = [], payloads: [String] = []
        for row in rows {
            var payload = try JSONSerialization.jsonObject(with: Data(try row.decode(String.self, at: 1).utf8)) as! [String: Any]
            let email = payload["customer_email"] as! String
            let (reference, key) = dataKeys[String(email.prefix { $0 != "@" })]!
            let field = try FieldEncryptor.encrypt(json: Array(try JSONSerialization.data(withJSONObject: email, options: .fragmentsAllowed)), with: key, key: reference)
            payload["customer_email"] = try JSONSerialization.jsonObject(with: Data(field.jsonBytes))
            positions.append(try row.decode(Int64.self, at: 0))
            payloads.append(String(decoding: try JSONSerialization.data(withJSONObject: payload, options: .sortedKeys), as: UTF8.self))
        }
        for chunk in stride(from: 0, to: positions.count, by: 5_000) {
            let end = min(chunk + 5_000, positions.count)
            try await admin.query(
                """
                UPDATE events_encrypted e SET payload = convert_to(u.payload, 'UTF8')
                FROM unnest($1::bigint[], $2::text[]) AS u(position, payload) WHERE e.global_position = u.position
                """, [PostgresTextArray(positions[chunk..<end].map(String.init)), PostgresTextArray(Array(payloads[chunk..<end]))])
        }
        return positions.count
    }

    /// The example order projection with the customer's email in its table.
    static func emailProjection(decrypt: Bool) throws -> SQLProjection {
        try SQLProjection(
            name: "order_emails", aggregateTypes: ["Order"], onError: .stop, setup: nil, reset: nil,
            handlers: [
                ("OrderPlaced", [
                    """
                    INSERT INTO order_emails (order_id, customer_id, email, status, total_cents, line_count, version)
                    VALUES ($aggregate_id, $payload->>'customer_id', $payload->>'customer_email', 'pending', 0, 0, $aggregate_version)
                    ON CONFLICT (order_id) DO NOTHING
                    """,
                ]),
                ("OrderLineAdded", [
                    """
                    UPDATE order_emails SET total_cents = total_cents + ($payload->>'quantity')::bigint * ($payload->>'unit_price_cents')::bigint,
                        line_count = line_count + ($payload->>'quantity')::int, version = $aggregate_version
                    WHERE order_id = $aggregate_id AND version < $aggregate_version
                    """,
                ]),
                ("OrderConfirmed", [
                    "UPDATE order_emails SET status = 'confirmed', version = $aggregate_version WHERE order_id = $aggregate_id AND version < $aggregate_version",
                ]),
            ],
            decrypt: decrypt)
    }

    /// A digest of the read model, to compare the decrypted build with the plain one.
    static func emailDigest(_ admin: PostgresConnection) async throws -> String {
        try await admin.query(
            "SELECT coalesce(md5(string_agg(order_id || '|' || email || '|' || total_cents || '|' || status, ',' ORDER BY order_id)), '') FROM order_emails"
        )[0].decode(String.self, at: 0)
    }
}

extension BenchResults {
    var encryptionRows: [(String, String, String, String)] {
        guard let figures = self.encryption else { return [] }
        return [
            ("catch-up, decrypt: true (1 field per OrderPlaced)", String(format: "%.0f vs %.0f events/s plain", figures.decrypted, figures.plain),
             String(format: "%.2f× plain ≥ 0.8×", figures.ratio), figures.ratio >= 0.8 ? "met" : "MISSED"),
            ("  the same with a one-key cache", String(format: "%.0f events/s (%.2f×)", figures.decryptedNoCache, figures.plain > 0 ? figures.decryptedNoCache / figures.plain : 0),
             "\(figures.subjects) customers' keys", ""),
        ]
    }
}
