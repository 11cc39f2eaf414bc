import Foundation

/// Linear warmup to `maxLR`, then cosine decay to `minLR` at `decaySteps`, then constant.
public struct LRSchedule: Sendable, Equatable {
    public var maxLR: Double
    public var minLR: Double
    public var warmupSteps: Int
    public var decaySteps: Int

    /// Creates a schedule.
    public init(maxLR: Double, minLR: Double, warmupSteps: Int, decaySteps: Int) {
        self.maxLR = maxLR
        self.minLR = minLR
        self.warmupSteps = warmupSteps
        self.decaySteps = decaySteps
    }

    /// Learning rate of update `step` (0-based).
    public func lr(at step: Int) -> Double {
        if step < warmupSteps { return maxLR * Double(step + 1) / Double(warmupSteps) }
        let progress = min(1, Double(step - warmupSteps) / Double(max(1, decaySteps - warmupSteps)))
        return minLR + 0.5 * (maxLR - minLR) * (1 + cos(Double.pi * progress))
    }
}
