/// One step of a pipeline stage's work: the forward or the backward of a micro-batch.
public enum PipelineOp: Sendable, Equatable, CustomStringConvertible {
    case forward(Int)
    case backward(Int)

    public var description: String {
        switch self {
        case .forward(let i): return "F\(i)"
        case .backward(let i): return "B\(i)"
        }
    }
}

/// The order in which pipeline stages run their micro-batches (`parallel.schedule`).
public enum PipelineSchedule: String, Sendable, CaseIterable {
    /// GPipe: every forward, then every backward; all micro-batches' activations are held at once.
    case gpipe
    /// 1F1B (PipeDream-Flush): `stages − stage − 1` warm-up forwards, then one forward and one
    /// backward in turn, then the remaining backwards; a stage holds at most `stages − stage`
    /// micro-batches' activations.
    case oneForwardOneBackward = "1f1b"

    /// The operations of `stage` (of `stages`) over `microBatches` micro-batches, in order.
    public func ops(stage: Int, stages: Int, microBatches m: Int) -> [PipelineOp] {
        switch self {
        case .gpipe:
            return (0..<m).map { .forward($0) } + (0..<m).map { .backward($0) }
        case .oneForwardOneBackward:
            let warmUp = min(stages - stage - 1, m)
            var ops: [PipelineOp] = (0..<warmUp).map { .forward($0) }
            for i in 0..<(m - warmUp) { ops += [.forward(warmUp + i), .backward(i)] }
            ops += (m - warmUp..<m).map { .backward($0) }
            return ops
        }
    }

    /// Micro-batches whose backward on `stage` does not directly follow their own forward: under
    /// `train.recompute = "stage"` each re-runs the stage's forward before its backward.
    public func reforwards(stage: Int, stages: Int, microBatches m: Int) -> Int {
        let ops = ops(stage: stage, stages: stages, microBatches: m)
        let followed = zip(ops, ops.dropFirst()).filter { op, next in
            if case .forward(let i) = op { return next == .backward(i) }
            return false
        }
        return m - followed.count
    }

    /// Activation slots `stage` needs: the most micro-batches it holds between forward and backward.
    public func slots(stage: Int, stages: Int, microBatches m: Int) -> Int {
        switch self {
        case .gpipe: return m
        case .oneForwardOneBackward: return min(m, stages - stage)
        }
    }
}
