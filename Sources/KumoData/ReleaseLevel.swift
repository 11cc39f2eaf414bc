import KumoCore

/// LLM-jp's release levels of a corpus source: what the data may be used for.
public enum ReleaseLevel: String, CaseIterable, Codable, Sendable {
    /// Train, search and distribute.
    case l1 = "L1"
    /// Train and search.
    case l2 = "L2"
    /// Train only.
    case l3 = "L3"
    /// Evaluation (test time) only.
    case lx = "LX"
    /// No use.
    case lz = "LZ"

    /// Whether a model may be trained on the data.
    public var mayTrain: Bool { self == .l1 || self == .l2 || self == .l3 }
    /// Whether the text may be shown (sampled, searched).
    public var mayShow: Bool { self == .l1 || self == .l2 }
    /// Whether the data may be handed to others.
    public var mayDistribute: Bool { self == .l1 }
    /// Whether an evaluation may read the data.
    public var mayEvaluate: Bool { self != .lz }

    /// The uses the level allows, for messages.
    public var allowed: String {
        switch self {
        case .l1: return "train, search, distribute"
        case .l2: return "train, search"
        case .l3: return "train only"
        case .lx: return "evaluation only"
        case .lz: return "no use"
        }
    }

    /// Parses `L1`...`LZ` (any case); throws naming the valid levels.
    public init(parsing text: String) throws {
        guard let level = ReleaseLevel(rawValue: text.uppercased()) else {
            throw DatasetError(
                "release level '\(text)' is not valid; levels: "
                    + Self.allCases.map { "\($0.rawValue) (\($0.allowed))" }.joined(separator: ", "))
        }
        self = level
    }
}

/// A prepared dataset cannot be used as asked; the message says why and what to do.
public struct DatasetError: UserFacingError {
    public var description: String
    public init(_ description: String) { self.description = description }
}
