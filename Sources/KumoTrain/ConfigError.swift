import KumoCore

/// A configuration problem; the message names the key and what would be valid.
public struct ConfigError: UserFacingError, Equatable {
    public var description: String
    /// Creates an error with a message that says what to do.
    public init(_ description: String) { self.description = description }
}
