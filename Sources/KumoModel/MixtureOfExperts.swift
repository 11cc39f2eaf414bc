import Foundation
import KumoCore

/// What a mixture keeps from forward for backward, for `rows` tokens routed to `k` of `experts`
/// experts each: the router's probabilities and logsumexp, each token's experts and renormalised
/// weights, the tokens sorted by expert (their inputs and the experts' outputs) and the pass's
/// load statistics.
final class RouterActivations {
    /// Rows the buffers hold, experts per row, experts of the router.
    let rows, k, experts: Int
    /// Rows of the last pass (at most `rows`: generation reuses buffers sized for its largest call).
    private(set) var passRows = 0
    /// Softmax of the router logits, [rows, experts].
    let probs: FloatBuffer
    /// logsumexp of each row's router logits (the z-loss reads it).
    let lse: FloatBuffer
    /// Routing weights, [rows, k]: the chosen probabilities divided by their sum.
    let weights: FloatBuffer
    /// Each row's k experts ([rows, k]); where assignment (t, j) sits in expert order ([rows, k]);
    /// the row of each sorted assignment ([rows·k]).
    let choice, sortedIndex, sortedRow: UnsafeMutableBufferPointer<Int32>
    /// Inputs and outputs of the experts, [rows·k, hidden], sorted by expert.
    let expertInput, expertOutput: FloatBuffer
    /// Assignments sorted to expert e are `start[e]..<start[e + 1]`.
    private(set) var start: [Int]
    /// The pass's tokens per expert.
    private(set) var load: [Int]
    /// The pass's router probability per expert, summed over rows.
    private(set) var probSum: [Double]
    /// The pass's Σ over rows of logsumexp².
    private(set) var lseSquareSum = 0.0
    /// Under expert parallelism: the exchange of the sorted rows with the expert group.
    let exchange: ExpertExchange?

    init(rows: Int, hidden: Int, experts: Int, k: Int, exchange: ExpertExchange? = nil) {
        self.exchange = exchange
        (self.rows, self.k, self.experts) = (rows, k, experts)
        probs = FloatBuffer(count: rows * experts)
        lse = FloatBuffer(count: rows)
        weights = FloatBuffer(count: rows * k)
        choice = .allocate(capacity: rows * k)
        sortedIndex = .allocate(capacity: rows * k)
        sortedRow = .allocate(capacity: rows * k)
        expertInput = FloatBuffer(count: rows * k * hidden)
        expertOutput = FloatBuffer(count: rows * k * hidden)
        start = Array(repeating: 0, count: experts + 1)
        load = Array(repeating: 0, count: experts)
        probSum = Array(repeating: 0, count: experts)
    }

    deinit {
        choice.deallocate()
        sortedIndex.deallocate()
        sortedRow.deallocate()
    }

    /// Floats (and 4-byte indices) these buffers hold.
    var floatCount: Int {
        Self.floats(rows: rows, hidden: expertInput.count / max(rows * k, 1), experts: experts, k: k)
    }

    /// Floats and indices a set for `rows` rows holds.
    static func floats(rows: Int, hidden: Int, experts: Int, k: Int) -> Int {
        rows * (experts + 1 + 4 * k + 2 * k * hidden)
    }

    /// The non-empty expert segments of the sorted assignments.
    var segments: [(expert: Int, range: Range<Int>)] {
        (0..<experts).compactMap { e in start[e] < start[e + 1] ? (e, start[e]..<start[e + 1]) : nil }
    }

    /// Softmax in place over the router logits of the pass's first `n` rows in `probs`, each row's
    /// top-k (the lower index wins a tie) with renormalised weights, then the statistics and the sort
    /// by expert.
    func route(rows n: Int) {
        precondition(n <= rows, "\(n) rows routed through buffers for \(rows)")
        passRows = n
        parallelFor(n) { t in
            let p = probs.pointer + t * experts
            var top = -Float.infinity
            for e in 0..<experts { top = max(top, p[e]) }
            var sum: Float = 0
            for e in 0..<experts {
                p[e] = Foundation.exp(p[e] - top)
                sum += p[e]
            }
            lse[t] = top + Foundation.log(sum)
            for e in 0..<experts { p[e] /= sum }
            let chosen = choice.baseAddress! + t * k
            var chosenSum: Float = 0
            for j in 0..<k {
                var best = -1
                for e in 0..<experts where best < 0 || p[e] > p[best] {
                    if !(0..<j).contains(where: { chosen[$0] == Int32(e) }) { best = e }
                }
                chosen[j] = Int32(best)
                chosenSum += p[best]
            }
            for j in 0..<k { weights[t * k + j] = p[Int(chosen[j])] / chosenSum }
        }
        load = Array(repeating: 0, count: experts)
        probSum = Array(repeating: 0, count: experts)
        lseSquareSum = 0
        for t in 0..<n {
            for j in 0..<k { load[Int(choice[t * k + j])] += 1 }
            for e in 0..<experts { probSum[e] += Double(probs[t * experts + e]) }
            lseSquareSum += Double(lse[t]) * Double(lse[t])
        }
        for e in 0..<experts { start[e + 1] = start[e] + load[e] }
        var next = start
        for i in 0..<n * k {
            let e = Int(choice[i])
            sortedIndex[i] = Int32(next[e])
            sortedRow[next[e]] = Int32(i / k)
            next[e] += 1
        }
    }
}

/// The gradient the router losses send to every token of a pass: ∂L/∂p[e] of the load-balancing
/// loss (the same for every token) and ∂L/∂lse = `lseScale`·lse of the z-loss.
public struct RouterLossGradient: Sendable {
    public var probs: [Float]
    public var lseScale: Float
}

/// Where a mixture's experts run: their inputs, products and outputs, one segment of rows per
/// local expert (on this rank's token side, or on the expert side of an `ExpertExchange`).
struct ExpertRows {
    let segments: [(expert: Int, range: Range<Int>)]
    let input, gate, up, act, output: UnsafeMutablePointer<Float>
}

/// Mixtral's sparse feed-forward: a router (softmax over all experts), each token's top-k experts
/// with their probabilities renormalised, each expert a SwiGLU MLP: y (+)= Σ_j w_j·expert_j(n).
/// Tokens are sorted by expert so that each expert runs one matrix product over all its tokens
/// (dropless: no capacity limit). Under expert parallelism each rank holds some of the experts and
/// the sorted rows travel to their expert's rank and back (all-to-all).
struct MixtureOfExperts {
    let config: ModelConfig

    /// The rows the experts read and write: on this rank, or on the expert side of `r.exchange`.
    private func expertRows(_ r: RouterActivations, _ a: BlockActivations) -> ExpertRows {
        guard let x = r.exchange else {
            return ExpertRows(
                segments: r.segments, input: r.expertInput.pointer, gate: a.gate.pointer, up: a.up.pointer,
                act: a.act.pointer, output: r.expertOutput.pointer)
        }
        return ExpertRows(
            segments: x.segments, input: x.input.buffer.pointer, gate: x.gate.buffer.pointer,
            up: x.up.buffer.pointer, act: x.act.buffer.pointer, output: x.output.buffer.pointer)
    }

    /// Routes the rows of `n`, runs the experts and writes (or adds) their weighted sum into `y`.
    func forward(
        _ n: UnsafePointer<Float>, _ w: BlockWeights, _ a: BlockActivations, rows: Int, y: UnsafeMutablePointer<Float>,
        accumulate: Bool
    ) {
        guard let r = a.router, let router = w.router else { preconditionFailure("a mixture needs its router") }
        let h = config.hiddenSize
        let f = config.intermediateSize
        Linear.forward(x: n, weight: router, y: r.probs.pointer, rows: rows, inFeatures: h, outFeatures: r.experts)
        r.route(rows: rows)
        parallelFor(rows * r.k) { i in
            (r.expertInput.pointer + i * h).update(from: n + Int(r.sortedRow[i]) * h, count: h)
        }
        r.exchange?.dispatch(r.expertInput.pointer, load: r.load)
        let e = expertRows(r, a)
        for (j, range) in e.segments {
            let (gate, up, down) = w.expert(j)
            let x = e.input + range.lowerBound * h
            let at = range.lowerBound * f
            let count = range.count
            Linear.forward(
                x: x, weight: gate, weightBF16: w.bf16(gate), y: e.gate + at, rows: count, inFeatures: h, outFeatures: f
            )
            Linear.forward(
                x: x, weight: up, weightBF16: w.bf16(up), y: e.up + at, rows: count, inFeatures: h, outFeatures: f)
            SwiGLUKernel.forward(gate: e.gate + at, up: e.up + at, out: e.act + at, count: count * f)
            Linear.forward(
                x: e.act + at, weight: down, weightBF16: w.bf16(down), y: e.output + range.lowerBound * h, rows: count,
                inFeatures: f, outFeatures: h)
        }
        r.exchange?.exchange(e.output, into: r.expertOutput.pointer, toExperts: false)
        parallelFor(rows) { t in
            let out = y + t * h
            if !accumulate { out.update(repeating: 0, count: h) }
            for j in 0..<r.k {
                let weight = r.weights[t * r.k + j]
                let src = r.expertOutput.pointer + Int(r.sortedIndex[t * r.k + j]) * h
                for c in 0..<h { out[c] += weight * src[c] }
            }
        }
    }

    /// Accumulates the router's and experts' weight gradients into `g` and writes (or adds) ∂L/∂n
    /// into `dn`; `routerLoss` adds the router losses' gradient.
    func backward(
        _ dy: UnsafePointer<Float>, _ n: UnsafePointer<Float>, _ w: BlockWeights, _ g: BlockWeights,
        _ a: BlockActivations, _ s: BackwardScratch, rows: Int, routerLoss: RouterLossGradient?,
        dn: UnsafeMutablePointer<Float>, accumulate: Bool
    ) {
        guard let r = a.router, let router = w.router, let gRouter = g.router else {
            preconditionFailure("a mixture needs its router")
        }
        let h = config.hiddenSize
        let (k, experts) = (r.k, r.experts)
        let dOut = s.expertOutputGrad.pointer
        // ∂L/∂w[t, j] = dy[t]·(expert output), and each expert's output gradient w[t, j]·dy[t].
        parallelFor(rows) { t in
            for j in 0..<k {
                let i = Int(r.sortedIndex[t * k + j])
                let src = r.expertOutput.pointer + i * h
                let dst = dOut + i * h
                let weight = r.weights[t * k + j]
                var dot: Float = 0
                for c in 0..<h {
                    dot += dy[t * h + c] * src[c]
                    dst[c] = weight * dy[t * h + c]
                }
                s.routerGrad[t * experts + j] = dot
            }
        }
        expertsBackward(r, a, w, g, s)
        parallelFor(rows) { t in
            let out = dn + t * h
            if !accumulate { out.update(repeating: 0, count: h) }
            for j in 0..<k {
                let src = s.expertInputGrad.pointer + Int(r.sortedIndex[t * k + j]) * h
                for c in 0..<h { out[c] += src[c] }
            }
            routerLogitGradient(r, t: t, dWeights: s.routerGrad.pointer + t * experts, routerLoss: routerLoss)
        }
        Linear.backward(
            dy: s.routerGrad.pointer, x: n, weight: router, dx: dn, dweight: gRouter, rows: rows, inFeatures: h,
            outFeatures: experts, accumulateDx: true)
    }

    /// From the sorted rows' output gradients in `s.expertOutputGrad` to their input gradients in
    /// `s.expertInputGrad`, adding the experts' weight gradients into `g` (on the expert side under
    /// expert parallelism, the gradients travelling there and back).
    private func expertsBackward(
        _ r: RouterActivations, _ a: BlockActivations, _ w: BlockWeights, _ g: BlockWeights, _ s: BackwardScratch
    ) {
        let h = config.hiddenSize
        let f = config.intermediateSize
        let e = expertRows(r, a)
        var dOut = s.expertOutputGrad.pointer
        var dIn = s.expertInputGrad.pointer
        var (dGate, dUp) = (s.dgate.pointer, s.dup.pointer)
        if let x = r.exchange {
            let side = s.expertSide
            (dOut, dIn) = (side.outputGrad.ensure(x.rows * h), side.inputGrad.ensure(x.rows * h))
            (dGate, dUp) = (side.gateGrad.ensure(x.rows * f), side.upGrad.ensure(x.rows * f))
            x.exchange(s.expertOutputGrad.pointer, into: dOut, toExperts: true)
        }
        for (j, range) in e.segments {
            let (gate, up, down) = w.expert(j)
            let (gGate, gUp, gDown) = g.expert(j)
            let x = e.input + range.lowerBound * h
            let at = range.lowerBound * f
            let count = range.count
            Linear.backward(
                dy: dOut + range.lowerBound * h, x: e.act + at, weight: down, weightBF16: w.bf16(down),
                dx: dGate + at, dweight: gDown, rows: count, inFeatures: f, outFeatures: h)
            SwiGLUKernel.backward(
                ds: dGate + at, gate: e.gate + at, up: e.up + at, dgate: dGate + at, dup: dUp + at, count: count * f)
            let dx = dIn + range.lowerBound * h
            Linear.backward(
                dy: dGate + at, x: x, weight: gate, weightBF16: w.bf16(gate), dx: dx, dweight: gGate, rows: count,
                inFeatures: h, outFeatures: f)
            Linear.backward(
                dy: dUp + at, x: x, weight: up, weightBF16: w.bf16(up), dx: dx, dweight: gUp, rows: count,
                inFeatures: h, outFeatures: f, accumulateDx: true)
        }
        r.exchange?.exchange(dIn, into: s.expertInputGrad.pointer, toExperts: false)
    }
    /// Replaces ∂L/∂(routing weights) of row `t` (its first k entries) with ∂L/∂(router logits):
    /// through the renormalisation w_j = p_j / Σ p, the router losses and the softmax.
    private func routerLogitGradient(
        _ r: RouterActivations, t: Int, dWeights: UnsafeMutablePointer<Float>, routerLoss: RouterLossGradient?
    ) {
        let (k, experts) = (r.k, r.experts)
        let p = r.probs.pointer + t * experts
        let chosen = r.choice.baseAddress! + t * k
        var chosenSum: Float = 0
        var weighted: Float = 0
        for j in 0..<k {
            chosenSum += p[Int(chosen[j])]
            weighted += dWeights[j] * r.weights[t * k + j]
        }
        withUnsafeTemporaryAllocation(of: Float.self, capacity: experts) { dp in
            for e in 0..<experts { dp[e] = routerLoss?.probs[e] ?? 0 }
            for j in 0..<k { dp[Int(chosen[j])] += (dWeights[j] - weighted) / chosenSum }
            var dot: Float = 0
            for e in 0..<experts { dot += p[e] * dp[e] }
            let lseGrad = (routerLoss?.lseScale ?? 0) * r.lse[t]
            for e in 0..<experts { dWeights[e] = p[e] * (dp[e] - dot + lseGrad) }
        }
    }
}
