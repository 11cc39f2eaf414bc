import KumoComm
import KumoCore
import KumoModel

/// Runs one pipeline stage's forwards and backwards over a step's micro-batches in the order of
/// a `PipelineSchedule`, receiving input hidden states from the previous stage and ∂L/∂output
/// from the next one, and sending its outputs and ∂L/∂input on (non-blocking, so neighbours
/// that send to each other at once never deadlock). Micro-batch i runs in activation slot
/// i mod `slots`. The time spent waiting for a receive is the stage's bubble. Under
/// `train.recompute = "stage"` the slots share their output and ∂L/∂input buffers, so a send from
/// one is waited for before any slot's forward (or backward) writes it again.
public final class PipelineRunner {
    /// The pipeline group; a rank's index in it is its stage.
    public let group: any Communicator
    public let schedule: PipelineSchedule
    public let model: LlamaModel
    /// Seconds the last `run` waited for receives (the pipeline bubble of this stage).
    public private(set) var bubbleSeconds = 0.0
    private var stage: Int { group.rank }
    private var isFirst: Bool { stage == 0 }
    private var isLast: Bool { stage == group.size - 1 }
    /// Sends in flight from output hidden states and from ∂L/∂input, by the buffer they read.
    private var outputSends: [Int: CommRequest] = [:]
    private var gradientSends: [Int: CommRequest] = [:]
    private static let activationTag = 8101
    private static let gradientTag = 8102

    /// A runner of `model` (this rank's stage) over the pipeline `group`.
    public init(model: LlamaModel, group: any Communicator, schedule: PipelineSchedule) {
        self.model = model
        self.group = group
        self.schedule = schedule
    }

    /// Runs this stage's part of one step over `microBatches` micro-batches of `batch` × `seqLen`.
    /// `tokens(i)` gives micro-batch i's input ids (read by the first stage), `positions(i)` its
    /// tokens' positions in their documents or nil (read by every stage); `loss(i, logits)`
    /// (the last stage) scores micro-batch i and leaves ∂L/∂logits in `logits`; `willBackward`
    /// and `didBackward` bracket each micro-batch's backward (micro-batches go backward in order,
    /// so the last one a stage runs is `microBatches − 1`).
    public func run(
        microBatches m: Int, batch: Int, seqLen: Int, tokens: (Int) -> UnsafePointer<Int32>,
        positions: (Int) -> UnsafePointer<Int32>?, loss: (Int, UnsafeMutablePointer<Float>) -> Void,
        willBackward: (Int) -> Void, didBackward: (Int) -> Void
    ) {
        bubbleSeconds = 0
        let p = group.size
        let slots = schedule.slots(stage: stage, stages: p, microBatches: m)
        let count = batch * seqLen * model.config.hiddenSize
        // The sends in flight are keyed by the buffer they read: the slot's own, or the one all slots share.
        let buffer = { (slot: Int) in self.model.recompute == .stage ? 0 : slot }
        for op in schedule.ops(stage: stage, stages: p, microBatches: m) {
            switch op {
            case .forward(let i):
                let slot = i % slots
                if let r = outputSends.removeValue(forKey: buffer(slot)) { group.wait(r) }
                if !isFirst {
                    let input = model.stageInput(slot: slot, batch: batch, seqLen: seqLen)
                    timed { group.receive(input, count: count, from: stage - 1, tag: Self.activationTag) }
                }
                let out = model.forward(
                    slot: slot, tokens: isFirst ? tokens(i) : nil, batch: batch, seqLen: seqLen, positions: positions(i)
                )
                if isLast {
                    loss(i, out)
                } else {
                    outputSends[buffer(slot)] = group.startSend(
                        out, count: count, to: stage + 1, tag: Self.activationTag)
                }
            case .backward(let i):
                let slot = i % slots
                if let r = gradientSends.removeValue(forKey: buffer(slot)) { group.wait(r) }
                if !isLast {
                    let dOut = model.hiddenGradient(slot: slot)
                    timed { group.receive(dOut, count: count, from: stage + 1, tag: Self.gradientTag) }
                }
                willBackward(i)
                let dIn = model.backward(slot: slot, tokens: isFirst ? tokens(i) : nil)
                didBackward(i)
                if !isFirst {
                    gradientSends[buffer(slot)] = group.startSend(
                        dIn, count: count, to: stage - 1, tag: Self.gradientTag)
                }
            }
        }
        for r in Array(outputSends.values) + Array(gradientSends.values) { group.wait(r) }
        outputSends = [:]
        gradientSends = [:]
    }

    private func timed(_ body: () -> Void) {
        let t0 = SystemInfo.now()
        body()
        bubbleSeconds += SystemInfo.now() - t0
    }
}
