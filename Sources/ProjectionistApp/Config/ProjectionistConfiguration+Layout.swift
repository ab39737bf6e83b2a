import EventStore
import Yams

extension ProjectionistConfiguration {
    /// `store.layout`, the heads table of that layout, and the events table's partitioning.
    /// Naming the other layout's heads table is an error: it would name columns that are not there.
    mutating func readLayout(_ keys: [String: Node], _ reader: YAMLReader) throws {
        if let value = keys["layout"] {
            let text = try reader.string(value, at: "store.layout")
            guard let layout = EventLayout(rawValue: text) else {
                throw reader.error("store.layout", value, "'\(text)' is no layout: aggregate (aggregate_* columns, aggregate_heads) or stream (stream_* columns, stream_heads)")
            }
            self.store.layout = layout
        }
        let layout = self.store.layout
        for other in EventLayout.allCases where other != layout {
            if let value = keys[other.headsTableKey] {
                throw reader.error(
                    "store.\(other.headsTableKey)", value,
                    "names the heads table of the \(other.rawValue) layout, but store.layout is \(layout.rawValue): name it in store.\(layout.headsTableKey), or set store.layout: \(other.rawValue)")
            }
        }
        self.store.headsTable = try keys[layout.headsTableKey].map { try Self.tableName($0, "store.\(layout.headsTableKey)", reader) }
            ?? layout.defaultHeadsTable
        var size = EventPartitioning.defaultSize
        var initial = EventPartitioning.defaultInitial
        if let value = keys["partition_size"] {
            size = Int64(try reader.integer(value, at: "store.partition_size", in: Bounds.partitionSize))
        }
        if let value = keys["initial_partitions"] {
            initial = try reader.integer(value, at: "store.initial_partitions", in: Bounds.initialPartitions)
        }
        if let value = keys["partitioning"] {
            switch try reader.string(value, at: "store.partitioning") {
            case "none": self.store.partitioning = .none
            case "native": self.store.partitioning = .native(size: size, initial: initial)
            case let text:
                throw reader.error("store.partitioning", value, "'\(text)' is not none or native (RANGE partitions on global_position that migrate creates)")
            }
        }
        if case .none = self.store.partitioning, let key = ["partition_size", "initial_partitions"].first(where: { keys[$0] != nil }) {
            throw reader.error("store.\(key)", keys[key], "applies to store.partitioning: native only")
        }
    }

    /// A projection's type filter: `aggregate_types`, or its alias `stream_types` (not both).
    static func typesKey(_ keys: [String: Node], _ path: String, _ reader: YAMLReader) throws -> (String, Node)? {
        switch (keys["aggregate_types"], keys["stream_types"]) {
        case (let value?, nil): return ("aggregate_types", value)
        case (nil, let value?): return ("stream_types", value)
        case (_?, let value?):
            throw reader.error("\(path).stream_types", value, "is an alias of aggregate_types: give one of them")
        case (nil, nil): return nil
        }
    }
}
