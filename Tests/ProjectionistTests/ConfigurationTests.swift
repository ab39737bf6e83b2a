import Encryption
import EventStore
import Postgres
import ProjectionistApp
import Projections
import TestSupport
import Testing

@Suite struct ConfigurationTests {
    @Test("the contract's example configuration parses with every key")
    func fullExample() throws {
        let yaml = """
            database:
              url: postgres://app@db.internal:5432/app?sslmode=verify-full
              password_file: /run/credentials/projectionist.service/db-password
              startup_timeout: 30s
            store:
              events_table: es.events
              aggregate_heads_table: aggregate_heads
              notify_channel: projectionist_events
              manage_schema: true
              notify_trigger: false
              allow_sequence_cache: false
            worker:
              checkpoints_table: consumer_checkpoints
              gap_skips_table: consumer_gap_skips
              dead_letters_table: consumer_dead_letters
              batch_size: 500
              poll_interval: 250ms
              max_poll_interval: 5m
              gap_warn_after: 30s
              gap_skip_after: never
              slow_batch_warn: 2s
            projections:
              - name: order_overview_v1
                aggregate_types: [Order]
                on_error: skip
                setup: |
                  CREATE TABLE IF NOT EXISTS order_overview_v1 (order_id text PRIMARY KEY);
                reset: |
                  TRUNCATE order_overview_v1;
                handlers:
                  OrderPlaced: |
                    INSERT INTO order_overview_v1 (order_id) VALUES ($aggregate_id) ON CONFLICT DO NOTHING;
                  OrderConfirmed:
                    - UPDATE order_overview_v1 SET order_id = order_id WHERE order_id = $aggregate_id;
                    - SELECT 1;
            """
        let config = try ProjectionistConfiguration.parse(yaml, file: "p.yaml")
        #expect(config.database.passwordFile == "/run/credentials/projectionist.service/db-password")
        #expect(config.store.eventsTable == QualifiedName(schema: "es", name: "events"))
        #expect(config.store.notifyTrigger == false)
        #expect(config.worker.batchSize == 500)
        #expect(config.worker.pollInterval == .milliseconds(250))
        #expect(config.worker.maxPollInterval == .seconds(300))
        #expect(config.worker.gapSkipAfter == nil)
        #expect(config.worker.slowBatchWarn == .seconds(2))
        #expect(config.runtimeOptions.slowBatchWarn == .seconds(2))
        #expect(config.projections.count == 1)
        let projection = config.projections[0]
        #expect(projection.aggregateTypes == ["Order"])
        #expect(projection.onError == .skip)
        #expect(projection.handlers.map(\.eventType) == ["OrderPlaced", "OrderConfirmed"])
        #expect(projection.handlers[1].statements.count == 2)
        #expect(config.schema.eventsTable.quoted == #""es"."events""#)
    }

    @Test("encryption: a directory or a list of files, the active key, the key table and the cache; decrypt per projection")
    func encryption() throws {
        let directory = try ProjectionistConfiguration.parse(
            "encryption:\n  system_keys: /run/credentials/projectionist.service\n  active_key: k2026\nprojections:\n  - name: a\n    decrypt: true\n    handlers:\n      X: SELECT $payload\n",
            file: "c.yaml")
        #expect(directory.encryption?.systemKeys == .directory("/run/credentials/projectionist.service"))
        #expect(directory.encryption?.activeKey == "k2026")
        #expect(directory.encryption?.keysTable == QualifiedName(schema: "infrastructure", name: "encryption_keys"))
        #expect(directory.encryption?.keyCacheSize == 10_000 && directory.encryption?.keyCacheLifetime == .seconds(300))
        #expect(try directory.sqlProjections()[0].decryptsPayloads)
        let files = try ProjectionistConfiguration.parse(
            "encryption:\n  system_keys: [/k/a.key, /k/b.key]\n  active_key: b\n  keys_table: keys\n  key_cache_size: 50\n  key_cache_lifetime: 1m\n",
            file: "c.yaml")
        #expect(files.encryption?.systemKeys == .files(["/k/a.key", "/k/b.key"]))
        #expect(files.encryption?.keysTable == QualifiedName(name: "keys"))
        #expect(files.encryption?.keyCacheSize == 50 && files.encryption?.keyCacheLifetime == .seconds(60))
        #expect(try ProjectionistConfiguration.parse("", file: "c.yaml").encryption == nil)
        let mapped = try ProjectionistConfiguration.parse(
            """
            encryption:
              system_keys: /k
              active_key: k1
            projections:
              - name: a
                decrypt:
                  - field: contact.email
                    scope: customer-pii
                    scope_id: $payload.customer_id
                    key_version: $payload.contact.key_version
                  - field: address
                    scope: orders
                    scope_id: $aggregate_id
                    key_version: 2
                    plaintext: json
                handlers:
                  X: SELECT $payload
            """, file: "c.yaml")
        let projection = try mapped.sqlProjections()[0]
        #expect(projection.decryptsPayloads)
        #expect(projection.encryptedFieldMappings == [
            EncryptedFieldMapping(field: ["contact", "email"], scope: "customer-pii", scopeID: .payload(["customer_id"]), keyVersion: .payload(["contact", "key_version"])),
            EncryptedFieldMapping(field: ["address"], scope: "orders", scopeID: .aggregateID, keyVersion: .literal("2"), plaintext: .json),
        ])
    }

    @Test("an empty file gives the defaults")
    func defaults() throws {
        let config = try ProjectionistConfiguration.parse("", file: "empty.yaml")
        #expect(config.worker.batchSize == 1000)
        #expect(config.worker.pollInterval == .seconds(1))
        #expect(config.store.notifyChannel == "projectionist_events")
        #expect(config.database.startupTimeout == .seconds(30))
        #expect(config.worker.slowBatchWarn == .seconds(10))
        #expect(config.runtimeOptions.slowBatchWarn == .seconds(10))
    }

    @Test(
        "invalid configurations name the file, the key path and the line",
        arguments: [
            ("database:\n  url: x\n  colour: blue\n", "database.colour", 3, "unknown key"),
            ("worker:\n  batch_size: lots\n", "worker.batch_size", 2, "positive whole number"),
            ("worker:\n  poll_interval: 10 parsecs\n", "worker.poll_interval", 2, "not a duration"),
            ("worker:\n  gap_skip_after: soon\n", "worker.gap_skip_after", 2, "not a duration"),
            ("worker:\n  batch_size: 10\n  slow_batch_warn: 10\n", "worker.slow_batch_warn", 3, "not a duration"),
            ("worker:\n  slow_batch_warn: 0ms\n", "worker.slow_batch_warn", 2, "at least 1ms"),
            ("store:\n  events_table: a.b.c\n", "store.events_table", 2, "not a table name"),
            ("store:\n  manage_schema: maybe\n", "store.manage_schema", 2, "true or false"),
            ("store:\n  notify_channel: \"a$projectionist$b\"\n", "store.notify_channel", 2, "not a channel name"),
            ("store:\n  notify_channel: wake up\n", "store.notify_channel", 2, "not a channel name"),
            ("store:\n  notify_channel: \(String(repeating: "c", count: 64))\n", "store.notify_channel", 2, "at most 63"),
            (
                "projections:\n  - name: a\n    handlers:\n      X: SELECT 1\n  - name: a\n    handlers:\n      X: SELECT 1\n",
                "projections[1].name", 5, "duplicate projection name"
            ),
            ("projections:\n  - name: a\n    handlers:\n      X: \"  \"\n", "projections[0].handlers.X", 4, "empty handler"),
            ("projections:\n  - name: a\n    handlers:\n      X: []\n", "projections[0].handlers.X", 4, "empty handler"),
            ("projections:\n  - name: a\n", "projections[0]", 2, "missing key 'handlers'"),
            ("projections:\n  - name: a\n    on_error: explode\n    handlers:\n      X: SELECT 1\n", "projections[0].on_error", 3, "expected stop, skip or park"),
            ("colour: blue\n", "colour", 1, "unknown key"),
            ("database:\n  pooling: statement\n", "database.pooling", 2, "session or transaction"),
            ("worker:\n  lease_ttl: 1s\n", "worker.lease_ttl", 2, "at least 2s"),
            ("projections:\n  - name: a\n    partitions: 0\n    handlers:\n      X: SELECT 1\n", "projections[0].partitions", 3, "positive"),
            ("projections:\n  - name: a#b\n    partitions: 2\n    handlers:\n      X: SELECT 1\n", "projections[0].name", 2, "must not contain '#'"),
            ("projections:\n  - name: a\n    replaces: b\n    handlers:\n      X: SELECT 1\n", "projections[0].replaces", 2, "'b' is not a configured projection"),
            (
                "projections:\n  - name: a\n    replaces: b\n    handlers:\n      X: SELECT 1\n  - name: b\n    replaces: a\n    handlers:\n      X: SELECT 1\n",
                "projections[0].replaces", 2, "loop: a → b → a"
            ),
            (
                "projections:\n  - name: a\n    publish: v\n    handlers:\n      X: SELECT 1\n  - name: b\n    publish: v\n    handlers:\n      X: SELECT 1\n",
                "projections[1].publish", 6, "two live projections cannot publish one view"
            ),
            (
                "projections:\n  - name: a\n    publish: v\n    handlers:\n      X: SELECT 1\n  - name: b\n    replaces: a\n    publish: w\n    handlers:\n      X: SELECT 1\n",
                "projections[1].publish", 6, "does not publish its view 'v'"
            ),
            (
                "projections:\n  - name: a\n    publish: b\n    handlers:\n      X: SELECT 1\n  - name: b\n    handlers:\n      X: SELECT 1\n",
                "projections[0].publish", 2, "has the name of projection 'b'"
            ),
            ("projections:\n  - name: a\n    publish: {}\n    handlers:\n      X: SELECT 1\n", "projections[0].publish", 3, "publishes nothing"),
            ("projections:\n  - name: a\n    decrypt: true\n    handlers:\n      X: SELECT 1\n", "projections[0].decrypt", 3, "needs a keyring"),
            ("encryption:\n  active_key: k1\n", "encryption", 2, "missing key 'system_keys'"),
            ("encryption:\n  system_keys: /k\n", "encryption", 2, "missing key 'active_key'"),
            ("encryption:\n  system_keys: []\n  active_key: k1\n", "encryption.system_keys", 2, "holds no key"),
            ("encryption:\n  system_keys: /k\n  active_key: k1\n  key_cache_size: 0\n", "encryption.key_cache_size", 4, "positive"),
            ("encryption:\n  system_keys: /k\n  active_key: k1\n  keys_table: a.b.c\n", "encryption.keys_table", 4, "not a table name"),
            ("encryption:\n  system_keys: /k\n  active_key: k1\n  colour: blue\n", "encryption.colour", 4, "unknown key"),
            ("projections:\n  - name: a\n    decrypt: []\n    handlers:\n      X: SELECT 1\n", "projections[0].decrypt", 3, "an empty list maps no field"),
            (
                "projections:\n  - name: a\n    decrypt:\n      - field: email\n        scope: pii\n        scope_id: $aggregate_id\n    handlers:\n      X: SELECT 1\n",
                "projections[0].decrypt[0]", 4, "missing key 'key_version'"
            ),
            (
                "projections:\n  - name: a\n    decrypt:\n      - field: email\n        scope: pii\n        scope_id: x\n        key_version: 0\n    handlers:\n      X: SELECT 1\n",
                "projections[0].decrypt[0].key_version", 7, "whole number from 1"
            ),
            (
                "projections:\n  - name: a\n    decrypt:\n      - field: email\n        scope: pii\n        scope_id: x\n        key_version: 1\n        plaintext: xml\n    handlers:\n      X: SELECT 1\n",
                "projections[0].decrypt[0].plaintext", 8, "string or json"
            ),
        ])
    func invalid(yaml: String, keyPath: String, line: Int, message: String) throws {
        let error = try #require(throws: ConfigurationError.self) { try ProjectionistConfiguration.parse(yaml, file: "bad.yaml") }
        #expect(error.keyPath == keyPath)
        #expect(error.line == line)
        #expect(error.description.hasPrefix("bad.yaml:\(line): \(keyPath): "))
        #expect(error.description.contains(message), "\(error)")
    }

    @Test("publish as a view name (the projection's table) or a map, replaces, drop, partitions, pooling and lease_ttl")
    func versionsAndScale() throws {
        let yaml = """
            database:
              pooling: transaction
            worker:
              lease_ttl: 30s
            projections:
              - name: v1
                publish: overview
                handlers:
                  X: SELECT 1
              - name: v2
                replaces: v1
                partitions: 4
                publish: {overview: v2_orders, lines: v2_lines}
                drop: DROP TABLE v2_orders, v2_lines
                handlers:
                  X: SELECT 1
            """
        let config = try ProjectionistConfiguration.parse(yaml, file: "v.yaml")
        #expect(config.projections[0].publish == ["overview": "v1"])
        #expect(config.projections[1].publish == ["overview": "v2_orders", "lines": "v2_lines"])
        #expect(config.projections[1].replaces == "v1")
        #expect(config.projections[1].drop == "DROP TABLE v2_orders, v2_lines")
        let projections = try config.sqlProjections()
        #expect(projections[1].partitions == 4 && projections[1].replaces == "v1" && projections[1].publishes.count == 2)
        #expect(!projections[1].preparedStatements, "behind a transaction pooler, no prepared statements")
        #expect(config.runtimeOptions.pooling == .transaction)
        #expect(config.runtimeOptions.leaseTTL == .seconds(30))
    }

    @Test("a notify channel of letters, digits, '_', '.' and '-' up to 63 bytes is accepted as written; null means polling only")
    func notifyChannel() throws {
        let longest = String(repeating: "c", count: 63)
        for channel in ["Orders.Events-v2", "_1", longest] {
            let config = try ProjectionistConfiguration.parse("store:\n  notify_channel: \(channel)\n", file: "ok.yaml")
            #expect(config.schema.notifyChannel == channel)
        }
        let polling = try ProjectionistConfiguration.parse("store:\n  notify_channel: null\n", file: "ok.yaml")
        #expect(polling.schema.notifyChannel == nil)
    }

    @Test("broken YAML is a configuration error with a line")
    func brokenYAML() throws {
        let error = try #require(throws: ConfigurationError.self) {
            try ProjectionistConfiguration.parse("worker:\n  batch_size: [1, 2\n", file: "broken.yaml")
        }
        #expect(error.line != nil)
        #expect(error.description.contains("broken.yaml"))
    }

    @Test("the environment's database URL wins over the file's")
    func environmentOverride() throws {
        let file = TemporaryFile.write("database:\n  url: host=filehost\n")
        defer { TemporaryFile.remove(file) }
        let fromEnv = try ProjectionistConfiguration.load(path: file, environment: ["PROJECTIONIST_DATABASE_URL": "host=env1", "DATABASE_URL": "host=env2"])
        #expect(fromEnv.database.url == "host=env1")
        let fallback = try ProjectionistConfiguration.load(path: file, environment: ["DATABASE_URL": "host=env2"])
        #expect(fallback.database.url == "host=env2")
        let plain = try ProjectionistConfiguration.load(path: file, environment: [:])
        #expect(plain.database.url == "host=filehost")
        #expect(ProjectionistConfiguration.path(option: nil, environment: ["PROJECTIONIST_CONFIG": "/x.yaml"]) == "/x.yaml")
        #expect(ProjectionistConfiguration.path(option: nil, environment: [:]) == "/etc/projectionist/projectionist.yaml")
    }

    @Test("durations", arguments: [("250ms", Duration.milliseconds(250)), ("1s", .seconds(1)), ("5m", .seconds(300)), ("1h", .seconds(3600))])
    func durations(text: String, duration: Duration) {
        #expect(DurationParser.parse(text) == duration)
        #expect(DurationParser.format(duration) == text)
    }

    @Test("bad durations", arguments: ["", "5", "1d", "-1s", "1.5s", "ms", "9999999999999999h", "99999999999999999999ms", "153722867280912931m"])
    func badDurations(text: String) {
        #expect(DurationParser.parse(text) == nil)
    }

    @Test(
        "every duration and count key has bounds: out of them is an error naming the key and the bounds",
        arguments: [
            ("worker:\n  poll_interval: 0ms\n", "worker.poll_interval", "at least 1ms"),
            ("worker:\n  poll_interval: 2h\n  max_poll_interval: 3h\n", "worker.poll_interval", "at most 1h"),
            ("worker:\n  poll_interval: 9999999999999999h\n", "worker.poll_interval", "at most 1h"),
            ("worker:\n  max_poll_interval: 61m\n", "worker.max_poll_interval", "at most 1h"),
            ("worker:\n  batch_size: 4611686018427387904\n", "worker.batch_size", "at most 100000"),
            ("worker:\n  batch_size: 100001\n", "worker.batch_size", "at most 100000"),
            ("worker:\n  batch_size: 99999999999999999999999\n", "worker.batch_size", "at most 100000"),
            ("worker:\n  gap_warn_after: 0ms\n", "worker.gap_warn_after", "at least 1ms"),
            ("worker:\n  gap_warn_after: 25h\n", "worker.gap_warn_after", "at most 24h"),
            ("worker:\n  gap_skip_after: 0s\n", "worker.gap_skip_after", "at least 1s"),
            ("worker:\n  gap_skip_after: 169h\n", "worker.gap_skip_after", "at most 168h"),
            ("worker:\n  slow_batch_warn: 25h\n", "worker.slow_batch_warn", "at most 24h"),
            ("worker:\n  lease_ttl: 2h\n", "worker.lease_ttl", "at most 1h"),
            ("database:\n  startup_timeout: 0s\n", "database.startup_timeout", "at least 1s"),
            ("database:\n  startup_timeout: 25h\n", "database.startup_timeout", "at most 24h"),
            ("encryption:\n  system_keys: /k\n  active_key: k1\n  key_cache_size: 10000001\n", "encryption.key_cache_size", "at most 10000000"),
            ("encryption:\n  system_keys: /k\n  active_key: k1\n  key_cache_lifetime: 0s\n", "encryption.key_cache_lifetime", "at least 1s"),
            ("encryption:\n  system_keys: /k\n  active_key: k1\n  key_cache_lifetime: 25h\n", "encryption.key_cache_lifetime", "at most 24h"),
            ("health:\n  max_lag_events: 99999999999999999999\n", "health.max_lag_events", "whole number"),
            ("health:\n  max_lag_seconds: 1e400\n", "health.max_lag_seconds", "number of seconds"),
        ])
    func bounds(yaml: String, keyPath: String, message: String) throws {
        let error = try #require(throws: ConfigurationError.self) { try ProjectionistConfiguration.parse(yaml, file: "bounds.yaml") }
        #expect(error.keyPath == keyPath, "\(error)")
        #expect(error.description.contains(message), "\(error)")
    }

    @Test("the bounds themselves are accepted")
    func boundsInclusive() throws {
        let low = try ProjectionistConfiguration.parse(
            "database:\n  startup_timeout: 1s\nworker:\n  batch_size: 1\n  poll_interval: 1ms\n  max_poll_interval: 1ms\n  gap_warn_after: 1ms\n  gap_skip_after: 1s\n  slow_batch_warn: 1ms\n  lease_ttl: 2s\n",
            file: "low.yaml")
        #expect(low.worker.batchSize == 1 && low.worker.pollInterval == .milliseconds(1) && low.worker.gapSkipAfter == .seconds(1))
        let high = try ProjectionistConfiguration.parse(
            "database:\n  startup_timeout: 24h\nworker:\n  batch_size: 100000\n  poll_interval: 1h\n  max_poll_interval: 1h\n  gap_warn_after: 24h\n  gap_skip_after: 168h\n  slow_batch_warn: 24h\n  lease_ttl: 1h\n",
            file: "high.yaml")
        #expect(high.worker.batchSize == 100_000 && high.worker.maxPollInterval == .seconds(3600) && high.worker.gapSkipAfter == .seconds(604_800))
    }

    @Test(
        "a NUL in a projection's name or an aggregate type, and '#' or '/' in a name, are refused naming the key",
        arguments: [
            ("projections:\n  - name: \"a\\0b\"\n    handlers:\n      X: SELECT 1\n", "projections[0].name", "NUL"),
            ("projections:\n  - name: a\n    aggregate_types: [Order, \"Ord\\0er\"]\n    handlers:\n      X: SELECT 1\n", "projections[0].aggregate_types[1]", "NUL"),
            ("projections:\n  - name: a\n    handlers:\n      \"X\\0Y\": SELECT 1\n", "projections[0].handlers", "NUL"),
            ("projections:\n  - name: \"x#0/2\"\n    handlers:\n      X: SELECT 1\n", "projections[0].name", "must not contain '#' or '/'"),
            ("projections:\n  - name: a/b\n    handlers:\n      X: SELECT 1\n", "projections[0].name", "must not contain '#' or '/'"),
        ])
    func forbiddenCharacters(yaml: String, keyPath: String, message: String) throws {
        let error = try #require(throws: ConfigurationError.self) { try ProjectionistConfiguration.parse(yaml, file: "names.yaml") }
        #expect(error.keyPath == keyPath, "\(error)")
        #expect(error.description.contains(message), "\(error)")
    }

    @Test("PROJECTIONIST_METRICS_LISTEN replaces metrics.listen; a bad value names the variable and the key")
    func listenOverride() throws {
        let file = TemporaryFile.write("metrics:\n  listen: 127.0.0.1:28125\n")
        defer { TemporaryFile.remove(file) }
        let moved = try ProjectionistConfiguration.load(path: file, environment: ["PROJECTIONIST_METRICS_LISTEN": "127.0.0.1:28126"])
        #expect(moved.metrics.listen == ListenAddress(host: "127.0.0.1", port: 28126))
        let plain = try ProjectionistConfiguration.load(path: file, environment: ["PROJECTIONIST_METRICS_LISTEN": ""])
        #expect(plain.metrics.listen == ListenAddress(host: "127.0.0.1", port: 28125))
        let error = try #require(throws: ConfigurationError.self) {
            try ProjectionistConfiguration.load(path: file, environment: ["PROJECTIONIST_METRICS_LISTEN": "28126"])
        }
        #expect(error.keyPath == "metrics.listen")
        #expect(error.description.contains("PROJECTIONIST_METRICS_LISTEN"), "\(error)")
    }
}
