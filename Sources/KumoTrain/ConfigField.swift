/// A Swift type a configuration key can hold, and its `ConfigValue` form.
public protocol ConfigValueConvertible {
    /// The kind of the keys of this type.
    static var configKind: ConfigSchema.Kind { get }
    /// The value, if `value` is of this type (an integer reads as a float).
    init?(configValue value: ConfigValue)
    /// The value as a configuration value.
    var configValue: ConfigValue { get }
}

extension Int: ConfigValueConvertible {
    public static var configKind: ConfigSchema.Kind { .int }
    public init?(configValue value: ConfigValue) {
        guard case .int(let v) = value else { return nil }
        self = v
    }
    public var configValue: ConfigValue { .int(self) }
}

extension Double: ConfigValueConvertible {
    public static var configKind: ConfigSchema.Kind { .double }
    public init?(configValue value: ConfigValue) {
        switch value {
        case .double(let v): self = v
        case .int(let v): self = Double(v)
        default: return nil
        }
    }
    public var configValue: ConfigValue { .double(self) }
}

extension Bool: ConfigValueConvertible {
    public static var configKind: ConfigSchema.Kind { .bool }
    public init?(configValue value: ConfigValue) {
        guard case .bool(let v) = value else { return nil }
        self = v
    }
    public var configValue: ConfigValue { .bool(self) }
}

extension String: ConfigValueConvertible {
    public static var configKind: ConfigSchema.Kind { .string }
    public init?(configValue value: ConfigValue) {
        guard case .string(let v) = value else { return nil }
        self = v
    }
    public var configValue: ConfigValue { .string(self) }
}

extension [String]: ConfigValueConvertible {
    public static var configKind: ConfigSchema.Kind { .strings }
    /// A single string counts as a one-element list.
    public init?(configValue value: ConfigValue) {
        switch value {
        case .strings(let v): self = v
        case .string(let v): self = [v]
        default: return nil
        }
    }
    public var configValue: ConfigValue { .strings(self) }
}

/// One key of a section struct: its schema entry, and how its value moves into and out of the struct.
public struct ConfigField<Section> {
    /// The key's schema entry; its default is the value of `Section()`.
    public let key: ConfigSchema.Key
    /// Where the value lives in the section struct.
    let path: PartialKeyPath<Section>
    let store: (inout Section, ConfigValue) throws -> Void
    let load: (Section) -> ConfigValue?

    /// A key of type `Value` at `path` (`derived`: no default, it is resolved from other keys or required).
    static func value<Value: ConfigValueConvertible>(
        _ name: String, _ path: WritableKeyPath<Section, Value>, derived: Bool = false, help: String
    ) -> Self where Section: ConfigSection {
        custom(name, path, kind: Value.configKind, derived: derived, help: help, encode: \.configValue) { value in
            guard let v = Value(configValue: value) else {
                throw ConfigError("\(name) = \(value): expected a value of type \(Value.configKind.rawValue)")
            }
            return v
        }
    }

    /// A string key naming a case of `Value`; `refusal` says what is valid, given the refused text.
    static func choice<Value: RawRepresentable<String>>(
        _ name: String, _ path: WritableKeyPath<Section, Value>, help: String, refusal: @escaping (String) -> String
    ) -> Self where Section: ConfigSection {
        custom(
            name, path, kind: .string, help: help, encode: { .string($0.rawValue) },
            decode: { value in
                guard case .string(let text) = value else { throw ConfigError("\(name) = \(value): expected a string") }
                guard let v = Value(rawValue: text) else { throw ConfigError(refusal(text)) }
                return v
            })
    }

    /// A key with its own conversions; `decode` throws the user-facing error for a bad value.
    static func custom<Value>(
        _ name: String, _ path: WritableKeyPath<Section, Value>, kind: ConfigSchema.Kind, derived: Bool = false,
        help: String, encode: @escaping (Value) -> ConfigValue?, decode: @escaping (ConfigValue) throws -> Value
    ) -> Self where Section: ConfigSection {
        let defaultValue = derived ? nil : encode(Section()[keyPath: path])
        return ConfigField(
            key: ConfigSchema.Key(name: name, kind: kind, defaultValue: defaultValue, help: help), path: path,
            store: { $0[keyPath: path] = try decode($1) }, load: { encode($0[keyPath: path]) })
    }

    /// The same key on a struct that holds this section at `outer`, such as `[train.spike]` in `[train]`.
    func lifted<Outer>(_ outer: WritableKeyPath<Outer, Section>) -> ConfigField<Outer> {
        let store = self.store
        let load = self.load
        return ConfigField<Outer>(
            key: key, path: (outer as PartialKeyPath<Outer>).appending(path: path as AnyKeyPath)!,
            store: { try store(&$0[keyPath: outer], $1) },
            load: { load($0[keyPath: outer]) })
    }
}

/// A TOML section that decodes once into a struct; its defaults are the struct's initial values.
public protocol ConfigSection {
    /// The section with every key at its default (derived keys hold placeholders until resolved).
    init()
    /// The section's keys, in the order a resolved config lists them.
    static var fields: [ConfigField<Self>] { get }
}

extension ConfigSection {
    /// The section decoded from resolved values.
    init(resolved values: [String: ConfigValue]) throws {
        self.init()
        try decode(from: values)
    }

    /// Sets the keys present in `values`.
    mutating func decode(from values: [String: ConfigValue]) throws {
        for field in Self.fields {
            if let value = values[field.key.name] { try field.store(&self, value) }
        }
    }

    /// The name of the key stored at `path`, for messages.
    static func name(of path: PartialKeyPath<Self>) -> String {
        guard let field = fields.first(where: { $0.path == path }) else { preconditionFailure("no key at \(path)") }
        return field.key.name
    }

    /// The schema entries of the section's keys.
    static var keys: [ConfigSchema.Key] { fields.map(\.key) }
}
