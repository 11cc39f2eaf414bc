import KumoCore
import KumoModel
import XCTest

@testable import KumoComm
@testable import KumoParallel

/// One stage of a two-stage pipeline whose neighbour is played by `LateSendGroup`: a send reads its
/// buffer only when it is waited for, as a large MPI message may. Under stage recompute the slots
/// share their output and ∂L/∂input buffers, so the runner must wait for a send before writing the
/// buffer again; the messages sent then equal those of keeping every slot's buffers.
final class StageRecomputeRunnerTests: XCTestCase {
    override func setUp() { Threads.set(1) }

    private let config = ModelConfig(
        vocabSize: 37, hiddenSize: 16, intermediateSize: 24, numHiddenLayers: 4, numAttentionHeads: 4,
        numKeyValueHeads: 2)
    private let (batch, seq, micro) = (2, 4, 4)

    /// Stage `stage` of 2 under `schedule` and `recompute`: the messages it sent (in order) and its gradients.
    private func run(stage: Int, _ schedule: PipelineSchedule, _ recompute: ActivationRecompute) throws -> (
        sent: [[Float]], grads: [Float]
    ) {
        let shard = ModelShard(layers: stage == 0 ? 0..<2 : 2..<4, hasEmbedding: stage == 0, hasHead: stage == 1)
        let model = try LlamaModel(config: config, shard: shard)
        model.initializeWeights(seed: 7, std: 0.2)
        model.recompute = recompute
        model.zeroGrads()
        let rows = batch * seq
        var rng = SeededRandom(seed: 8)
        let tokens = UnsafeMutablePointer<Int32>.allocate(capacity: micro * rows)
        defer { tokens.deallocate() }
        for i in 0..<micro * rows { tokens[i] = Int32(rng.next() % UInt64(config.vocabSize)) }
        // What the other stage sends: hidden states forward (to stage 1), gradients backward (to stage 0).
        let incoming = (0..<micro).map { _ in (0..<rows * config.hiddenSize).map { _ in Float(rng.normal()) } }
        let group = LateSendGroup(rank: stage, incoming: incoming)
        let runner = PipelineRunner(model: model, group: group, schedule: schedule)
        runner.run(
            microBatches: micro, batch: batch, seqLen: seq, tokens: { UnsafePointer(tokens + $0 * rows) },
            positions: { _ in nil },
            loss: { i, logits in
                _ = model.lossGradient(logits: logits, targets: tokens + i * rows, rows: rows, gradScale: 0.1)
            },
            willBackward: { _ in }, didBackward: { _ in })
        XCTAssertEqual(group.sent.count, micro, "stage \(stage): one message per micro-batch")
        return (group.sent, model.grads.array)
    }

    private func check(stage: Int, _ schedule: PipelineSchedule) throws {
        let kept = try run(stage: stage, schedule, .none)
        let shared = try run(stage: stage, schedule, .stage)
        let label = "stage \(stage) of 2, \(schedule.rawValue)"
        XCTAssertEqual(shared.sent, kept.sent, "\(label): messages sent")
        XCTAssertEqual(shared.grads, kept.grads, "\(label): gradients")
        XCTAssertTrue(kept.grads.contains { $0 != 0 }, label)
    }

    /// The first stage under 1F1B holds 2 micro-batches: its second forward would overwrite the
    /// shared output of the first before that send reads it.
    func testTheFirstStageWaitsForItsOutputSendBeforeTheNextForward() throws {
        try check(stage: 0, .oneForwardOneBackward)
    }

    /// The last stage under GPipe runs its backwards back to back: each would overwrite the shared
    /// ∂L/∂input of the one before before that send reads it.
    func testTheLastStageWaitsForItsGradientSendBeforeTheNextBackward() throws {
        try check(stage: 1, .gpipe)
    }
}

/// The other stage of a two-rank pipeline, for `PipelineRunner`: receives hand out `incoming` in
/// order, and a send copies its buffer only when waited for (then `sent` has it, in send order).
private final class LateSendGroup: Communicator {
    let rank: Int
    let size = 2
    let name = "pp"
    let counters = CommCounters(group: "pp")
    private var incoming: [[Float]]
    private var pending: [(request: CommRequest, buffer: UnsafePointer<Float>, count: Int, index: Int)] = []
    private(set) var sent: [[Float]] = []

    init(rank: Int, incoming: [[Float]]) {
        self.rank = rank
        self.incoming = incoming
    }

    func receive(_ buffer: UnsafeMutablePointer<Float>, count: Int, from: Int, tag: Int) {
        let message = incoming.removeFirst()
        precondition(message.count == count, "a message of \(message.count) floats, not \(count)")
        buffer.update(from: message, count: count)
    }

    func startSend(_ buffer: UnsafePointer<Float>, count: Int, to: Int, tag: Int) -> CommRequest {
        let request = CommRequest(op: "send", bytes: 4 * count, isComplete: false)
        pending.append((request, buffer, count, sent.count))
        sent.append([])
        return request
    }

    func wait(_ request: CommRequest) {
        guard let i = pending.firstIndex(where: { $0.request === request }) else { return }
        let p = pending.remove(at: i)
        sent[p.index] = Array(UnsafeBufferPointer(start: p.buffer, count: p.count))
        request.isComplete = true
    }

    private func unused() -> Never { preconditionFailure("PipelineRunner only receives, sends and waits") }
    func allReduce(_ buffer: UnsafeMutablePointer<Float>, count: Int, op: ReduceOp) { unused() }
    func allReduce(_ values: inout [Double], op: ReduceOp) { unused() }
    func startAllReduce(_ buffer: UnsafeMutablePointer<Float>, count: Int, op: ReduceOp) -> CommRequest { unused() }
    func reduceScatter(
        _ send: UnsafePointer<Float>, _ receive: UnsafeMutablePointer<Float>, countPerRank count: Int, op: ReduceOp
    ) { unused() }
    func startReduceScatter(
        _ send: UnsafePointer<Float>, _ receive: UnsafeMutablePointer<Float>, counts: [Int], op: ReduceOp
    ) -> CommRequest { unused() }
    func allGather(_ send: UnsafePointer<Float>, _ receive: UnsafeMutablePointer<Float>, countPerRank count: Int) {
        unused()
    }
    func allGatherInPlace(_ buffer: UnsafeMutablePointer<Float>, counts: [Int]) { unused() }
    func startAllGatherInPlace(_ buffer: UnsafeMutableRawPointer, counts: [Int], elementBytes: Int) -> CommRequest {
        unused()
    }
    func allToAll(
        _ send: UnsafePointer<Float>, sendCounts: [Int], _ receive: UnsafeMutablePointer<Float>, receiveCounts: [Int]
    ) { unused() }
    func allGatherBytes(_ send: [UInt8]) -> [[UInt8]] { unused() }
    func broadcast(_ buffer: UnsafeMutablePointer<Float>, count: Int, root: Int) { unused() }
    func barrier() { unused() }
    func send(_ buffer: UnsafePointer<Float>, count: Int, to: Int, tag: Int) { unused() }
    func startReceive(_ buffer: UnsafeMutablePointer<Float>, count: Int, from: Int, tag: Int) -> CommRequest {
        unused()
    }
    func test(_ request: CommRequest) -> Bool { unused() }
    func split(color: Int, key: Int, name: String) -> any Communicator { unused() }
    func noteStep(_ step: Int) { unused() }
}
