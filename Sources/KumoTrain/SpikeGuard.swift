import KumoCore

/// `[train.spike]`: when a step counts as a loss spike, and what to do about it.
public struct SpikeSettings: ConfigSection, Sendable, Equatable {
    /// What the guard does with a spike: skip the update, or roll back to the last good checkpoint.
    public enum Policy: String, Sendable { case skip, rollback }
    public var enabled = false
    /// Accepted steps whose losses and gradient norms form the running medians.
    public var window = 50
    /// Accepted steps needed before the ratio tests apply (non-finite values are caught from step 1).
    public var minHistory = 10
    /// A loss above `threshold` × the running median loss is a spike.
    public var threshold = 2.0
    /// A gradient norm above this × the running median norm is a spike; 0 turns the test off.
    public var gradNormThreshold = 0.0
    public var policy = Policy.skip
    /// Factor on the learning rate after each rollback.
    public var lrFactor = 1.0
    /// Consecutive skipped steps after which the run stops.
    public var maxSkipsInRow = 10
    /// Rollbacks after which the run stops.
    public var maxRollbacks = 5
    /// Test hook: global batch index → factor on its loss and gradients (`"BATCH:FACTOR"`, FACTOR may be nan).
    public var injections: [Int: Float] = [:]

    public init() {}

    public static var fields: [ConfigField<Self>] {
        [
            .value("train.spike.enabled", \.enabled, help: "loss-spike guard on"),
            .value("train.spike.window", \.window, help: "steps in the running medians"),
            .value("train.spike.min_history", \.minHistory, help: "steps before ratio tests"),
            .value("train.spike.threshold", \.threshold, help: "spike: loss / median loss"),
            .value(
                "train.spike.grad_norm_threshold", \.gradNormThreshold,
                help: "spike: grad norm / median grad norm (0: off)"),
            .choice("train.spike.policy", \.policy, help: "skip|rollback") {
                "train.spike.policy = \"\($0)\": use skip or rollback"
            },
            .value("train.spike.lr_factor", \.lrFactor, help: "lr factor per rollback"),
            .value("train.spike.max_skips_in_row", \.maxSkipsInRow, help: "stop after N skips"),
            .value("train.spike.max_rollbacks", \.maxRollbacks, help: "stop after N rollbacks"),
            .custom(
                "train.spike.debug_inject", \.injections, kind: .strings,
                help: "test hook: [\"BATCH:FACTOR\"] scales that batch's loss and gradients",
                encode: { inj in .strings(inj.keys.sorted().map { "\($0):\(inj[$0]!)" }) }, decode: parseInjections),
        ]
    }

    /// Parses `["BATCH:FACTOR", ...]`.
    private static func parseInjections(_ value: ConfigValue) throws -> [Int: Float] {
        var injections: [Int: Float] = [:]
        for item in [String](configValue: value) ?? [] {
            let parts = item.split(separator: ":")
            guard parts.count == 2, let batch = Int(parts[0]), batch >= 0, let factor = Float(parts[1]) else {
                throw ConfigError(
                    "train.spike.debug_inject: '\(item)' is not BATCH:FACTOR, e.g. \"4:1000\" or \"7:nan\"")
            }
            injections[batch] = factor
        }
        return injections
    }

    /// Checks the settings against each other and `checkpoint.every`.
    func check(checkpointEvery: Int) throws {
        guard window >= 1, minHistory >= 1, minHistory <= window else {
            throw ConfigError("train.spike.window and min_history must satisfy 1 <= min_history <= window")
        }
        guard threshold > 1, gradNormThreshold == 0 || gradNormThreshold > 1 else {
            throw ConfigError("train.spike.threshold must exceed 1, and grad_norm_threshold too (or be 0: off)")
        }
        guard lrFactor > 0, lrFactor <= 1, maxSkipsInRow >= 1, maxRollbacks >= 0 else {
            throw ConfigError("train.spike: lr_factor must lie in (0, 1], max_skips_in_row >= 1, max_rollbacks >= 0")
        }
        if enabled && policy == .rollback && checkpointEvery == 0 {
            throw ConfigError("train.spike.policy = \"rollback\" needs checkpoints: set checkpoint.every > 0")
        }
    }
}

/// A step the guard rejected, and what it did.
public struct SpikeEvent: Sendable, Equatable {
    public var action: SpikeSettings.Policy
    public var reason: String
}

/// The guard stopped the run: too many spikes in a row, or too many rollbacks.
public struct SpikeGuardError: UserFacingError {
    public var description: String
}

/// Watches each step's loss and gradient norm against running medians and for non-finite values.
public struct SpikeGuard {
    public let settings: SpikeSettings
    /// Losses and gradient norms of the last `window` accepted steps, oldest first.
    public internal(set) var lossHistory: [Double] = []
    public internal(set) var gradNormHistory: [Double] = []
    private var skipsInRow = 0

    /// A guard with empty history.
    public init(settings: SpikeSettings) { self.settings = settings }

    /// Judges step `step`: nil accepts it (and records it in the window); an event rejects it. With the
    /// guard disabled, a non-finite value throws `NonFiniteError` and everything else is accepted.
    public mutating func judge(step: Int, loss: Double, gradNorm: Double) throws -> SpikeEvent? {
        guard settings.enabled else {
            if !loss.isFinite || !gradNorm.isFinite { throw NonFiniteError(step: step, loss: loss, gradNorm: gradNorm) }
            return nil
        }
        guard let reason = spikeReason(loss: loss, gradNorm: gradNorm) else {
            lossHistory = Array((lossHistory + [loss]).suffix(settings.window))
            gradNormHistory = Array((gradNormHistory + [gradNorm]).suffix(settings.window))
            skipsInRow = 0
            return nil
        }
        if settings.policy == .skip {
            skipsInRow += 1
            if skipsInRow > settings.maxSkipsInRow {
                throw SpikeGuardError(
                    description: "step \(step): \(skipsInRow) spikes in a row (\(reason)); the run stopped. "
                        + "Lower optim.lr or raise train.spike.max_skips_in_row.")
            }
        }
        return SpikeEvent(action: settings.policy, reason: reason)
    }

    /// Why a step with these values is a spike, or nil.
    func spikeReason(loss: Double, gradNorm: Double) -> String? {
        if !loss.isFinite || !gradNorm.isFinite { return "non-finite value (loss \(loss), grad norm \(gradNorm))" }
        guard lossHistory.count >= settings.minHistory else { return nil }
        let lossMedian = Self.median(lossHistory)
        if loss > settings.threshold * lossMedian {
            return "loss \(loss) exceeds \(settings.threshold) × the running median \(lossMedian)"
        }
        let normMedian = Self.median(gradNormHistory)
        if settings.gradNormThreshold > 0 && gradNorm > settings.gradNormThreshold * normMedian {
            return "grad norm \(gradNorm) exceeds \(settings.gradNormThreshold) × the running median \(normMedian)"
        }
        return nil
    }

    /// The median of a non-empty list.
    static func median(_ values: [Double]) -> Double {
        let s = values.sorted()
        return s.count % 2 == 1 ? s[s.count / 2] : (s[s.count / 2 - 1] + s[s.count / 2]) / 2
    }

    /// Multiplies a step's loss and gradients by `factor` (the `debug_inject` test hook).
    static func inject(_ factor: Float, loss: Double, grads: FloatBuffer) -> Double {
        for i in 0..<grads.count { grads.pointer[i] *= factor }
        return loss * Double(factor)
    }
}
