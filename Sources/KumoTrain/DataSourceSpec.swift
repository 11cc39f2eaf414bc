/// One prepared dataset of `data.sources`: its prefix and its share of the mixture, given as a
/// weight, or as epochs (the share is then its tokens times epochs, LLM-jp's way of up-sampling).
public struct DataSourceSpec: Equatable, Sendable {
    public var prefix: String
    public var weight: Double?
    public var epochs: Double?

    static let fields = ["prefix", "weight", "epochs"]

    /// Checks the tables of `data.sources`: a prefix each, positive weights or epochs, and either every
    /// source weighted or none.
    static func parse(_ tables: [[String: ConfigValue]]) throws -> [DataSourceSpec] {
        let specs = try tables.enumerated().map { i, table in
            let at = "data.sources[\(i)]"
            if let unknown = table.keys.sorted().first(where: { !fields.contains($0) }) {
                throw ConfigError("\(at): unknown field '\(unknown)'; valid fields: \(fields.joined(separator: ", "))")
            }
            guard case .string(let prefix) = table["prefix"], !prefix.isEmpty else {
                throw ConfigError("\(at): needs prefix = \"PATH\" (a dataset made by `kumo data prepare`)")
            }
            func positive(_ name: String) throws -> Double? {
                switch table[name] {
                case nil: return nil
                case .int(let v) where v > 0: return Double(v)
                case .double(let v) where v > 0 && v.isFinite: return v
                case let value?: throw ConfigError("\(at).\(name) = \(value): must be a positive number")
                }
            }
            return DataSourceSpec(prefix: prefix, weight: try positive("weight"), epochs: try positive("epochs"))
        }
        let weighted = specs.filter { $0.weight != nil }.count
        if weighted != 0 && weighted != specs.count {
            throw ConfigError(
                "data.sources: \(weighted) of \(specs.count) sources give a weight; give every source a weight, "
                    + "or none (then each source's share is its tokens times its epochs, default 1)")
        }
        if let both = specs.first(where: { $0.weight != nil && $0.epochs != nil }) {
            throw ConfigError(
                "data.sources: \(both.prefix) gives both weight and epochs; give one (weights set the mixture, "
                    + "epochs scale a source's tokens)")
        }
        return specs
    }
}
