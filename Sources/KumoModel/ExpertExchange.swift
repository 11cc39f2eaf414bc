import KumoCore

/// The collective expert parallelism calls, over the ranks that split a mixture's experts (the
/// expert group). The model knows no ranks: the trainer injects an implementation.
public protocol ExpertParallelOps: AnyObject {
    /// This rank's index in the expert group.
    var rank: Int { get }
    /// Ranks in the expert group.
    var size: Int { get }
    /// All-to-all with per-rank counts: `sendCounts[r]` floats of `send` go to rank r, and
    /// `receiveCounts[r]` floats from rank r land in `receive`, both in rank order.
    func allToAll(
        _ send: UnsafePointer<Float>, sendCounts: [Int], _ receive: UnsafeMutablePointer<Float>, receiveCounts: [Int])
}

/// A buffer that grows to the largest size asked of it (the rows an expert receives vary by step).
final class GrowingBuffer {
    private(set) var buffer = FloatBuffer(count: 0)

    /// Storage for at least `count` floats (contents are not kept when it grows).
    func ensure(_ count: Int) -> UnsafeMutablePointer<Float> {
        if buffer.count < count { buffer = FloatBuffer(count: count) }
        return buffer.pointer
    }
}

/// One mixture layer's exchange with its expert group: the rows each rank sorted to this rank's
/// experts travel here (all-to-all), are regrouped by local expert for one product per expert,
/// and their results travel back to the ranks that own the tokens. Holds the expert side's
/// activations, which backward reads.
final class ExpertExchange {
    let ops: any ExpertParallelOps
    let hidden, ffn, localExperts: Int
    /// Rows from rank p for local expert j: `received[p][j]`.
    private(set) var received: [[Int]] = []
    /// Rows this rank sends to each rank of the group.
    private var sent: [Int] = []
    /// The expert side's inputs and outputs ([rows, hidden], grouped by local expert) and the
    /// experts' gate, up and SwiGLU products ([rows, ffn]).
    let input = GrowingBuffer(), output = GrowingBuffer()
    let gate = GrowingBuffer(), up = GrowingBuffer(), act = GrowingBuffer()
    /// Rows in transit, grouped by rank.
    private let staging = GrowingBuffer()

    init(ops: any ExpertParallelOps, hidden: Int, ffn: Int, localExperts: Int) {
        self.ops = ops
        self.hidden = hidden
        self.ffn = ffn
        self.localExperts = localExperts
    }

    /// Rows on the expert side.
    var rows: Int { received.reduce(0) { $0 + $1.reduce(0, +) } }

    /// Floats held (they grow with the largest load seen).
    var floatCount: Int { [input, output, gate, up, act, staging].reduce(0) { $0 + $1.buffer.count } }

    /// Local expert j's rows on the expert side.
    var segments: [(expert: Int, range: Range<Int>)] {
        var start = 0
        return (0..<localExperts).compactMap { j in
            let n = received.reduce(0) { $0 + $1[j] }
            defer { start += n }
            return n > 0 ? (j, start..<start + n) : nil
        }
    }

    /// Sends each rank the rows of `sorted` (the assignments sorted by global expert, `load` per
    /// expert) for its experts and gathers this rank's into `input`, grouped by local expert.
    func dispatch(_ sorted: UnsafePointer<Float>, load: [Int]) {
        let (g, l) = (ops.size, localExperts)
        let loads = load.map(Float.init)
        var incoming = [Float](repeating: 0, count: g * l)
        let each = Array(repeating: l, count: g)
        ops.allToAll(loads, sendCounts: each, &incoming, receiveCounts: each)
        received = (0..<g).map { p in (0..<l).map { Int(incoming[p * l + $0]) } }
        sent = (0..<g).map { q in load[q * l..<(q + 1) * l].reduce(0, +) }
        let n = rows
        _ = input.ensure(n * hidden)
        _ = output.ensure(n * hidden)
        for b in [gate, up, act] { _ = b.ensure(n * ffn) }
        exchange(sorted, into: input.buffer.pointer, toExperts: true)
    }

    /// Moves rows between the token side (`sorted` by global expert) and the expert side (grouped
    /// by local expert, then by rank): forward's inputs and backward's output gradients travel
    /// to the experts, outputs and input gradients back.
    func exchange(_ from: UnsafePointer<Float>, into to: UnsafeMutablePointer<Float>, toExperts: Bool) {
        let h = hidden
        let stage = staging.ensure(rows * h)
        let bySource = received.map { $0.reduce(0, +) * h }
        let bySink = sent.map { $0 * h }
        if toExperts {
            ops.allToAll(from, sendCounts: bySink, stage, receiveCounts: bySource)
            regroup(stage, to, byExpert: true)
        } else {
            regroup(from, stage, byExpert: false)
            ops.allToAll(stage, sendCounts: bySource, to, receiveCounts: bySink)
        }
    }

    /// Copies blocks of rows between rank-major ([p][j]) and expert-major ([j][p]) order.
    private func regroup(_ from: UnsafePointer<Float>, _ to: UnsafeMutablePointer<Float>, byExpert: Bool) {
        let h = hidden
        let (g, l) = (received.count, localExperts)
        var rankMajor = [[Int]](repeating: Array(repeating: 0, count: l), count: g)
        var expertMajor = rankMajor
        var at = 0
        for p in 0..<g { for j in 0..<l { (rankMajor[p][j], at) = (at, at + received[p][j]) } }
        at = 0
        for j in 0..<l { for p in 0..<g { (expertMajor[p][j], at) = (at, at + received[p][j]) } }
        for p in 0..<g {
            for j in 0..<l where received[p][j] > 0 {
                let (src, dst) = byExpert ? (rankMajor[p][j], expertMajor[p][j]) : (expertMajor[p][j], rankMajor[p][j])
                (to + dst * h).update(from: from + src * h, count: received[p][j] * h)
            }
        }
    }
}
