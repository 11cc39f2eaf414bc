import Foundation
import KumoComm
import KumoCore
import KumoData

/// The DPO objective of a trainer: its loss, the preference pairs, their reference
/// log-probabilities (chosen, rejected per slot) and the current step's metric sums.
final class DPOState {
    let loss: DPOLoss
    let source: PreferenceSource
    /// log π_ref of each slot's chosen then rejected response (empty until prepared).
    var reference: [Double] = []
    var sums = DPOSums()

    /// The state of a `train.objective = "dpo"` run (nil for the other objectives).
    init?(config: RunConfig, stream: any SequenceSource) throws {
        guard config.train.objective == .dpo else { return nil }
        guard let source = stream as? PreferenceSource else {
            throw ConfigError(
                "train.objective = \"dpo\" trains on the preference pairs of data.path (data.format = \"preference\"); "
                    + "data.synthetic and data.sources hold plain tokens: remove them")
        }
        self.source = source
        loss = DPOLoss(beta: config.dpo.beta, labelSmoothing: config.dpo.labelSmoothing)
    }

    /// The step's `dpo.*` metrics: the sums of every data-parallel rank over `pairs` pairs.
    func metrics(group: any Communicator, pairs: Int) -> [String: Double] {
        var all = sums
        group.allReduce(&all.values, op: .sum)
        return all.means(pairs: pairs)
    }
}

extension Trainer {
    /// The run directory's file of reference log-probabilities: little-endian Float64, chosen then
    /// rejected for each slot of the preference source.
    public static let referenceFile = "dpo_reference_logps.f64"

    /// Replaces `logits` (micro-batch `mb`'s, whose first pair is sample `first`) by ∂L/∂logits of
    /// the DPO loss L = gradScale · Σ pair losses; adds the pairs' metrics; returns the summed loss.
    func dpoGradient(
        _ dpo: DPOState, _ mb: Batch, firstSample first: Int, logits: UnsafeMutablePointer<Float>, gradScale: Float
    ) -> Double {
        dpo.loss.lossGradient(model: model, batch: mb, logits: logits, gradScale: gradScale, sums: &dpo.sums) { s in
            let slot = dpo.source.slot(ofSample: first + s)
            return (dpo.reference[2 * slot], dpo.reference[2 * slot + 1])
        }
    }

    /// Makes the reference log-probabilities ready before training (DPO runs only; every rank calls
    /// it): a run at step 0 computes them (`computeReference`) and rank 0 saves them in
    /// `runDirectory` (nil: not saved); a resumed run reads them back from there. Returns a line
    /// for the log.
    @discardableResult
    public func prepareDPOReference(runDirectory: String?) throws -> String? {
        guard let dpo else { return nil }
        let count = 2 * dpo.source.pairs.count
        let path = runDirectory.map { $0 + "/" + Self.referenceFile }
        if step > 0, let path {
            guard let data = FileManager.default.contents(atPath: path), data.count == 8 * count else {
                throw ConfigError(
                    "resume: \(path) is missing or does not hold the reference log-probabilities of "
                        + "\(count / 2) pairs; start the DPO run again")
            }
            dpo.reference = data.withUnsafeBytes { raw in
                (0..<count).map {
                    Double(bitPattern: UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: 8 * $0, as: UInt64.self)))
                }
            }
            return "dpo: read the reference log-probabilities of \(count / 2) pairs from \(path)"
        }
        let t0 = SystemInfo.now()
        dpo.reference = try computeReference(dpo)
        if let path, world.rank == 0 {
            let bytes = dpo.reference.flatMap { value in
                withUnsafeBytes(of: value.bitPattern.littleEndian) { Array($0) }
            }
            try Data(bytes).write(to: URL(fileURLWithPath: path), options: .atomic)
        }
        let reference = config.dpo.reference.isEmpty ? "the initial weights" : config.dpo.reference
        return String(
            format: "dpo: reference log-probabilities of %d pairs from %@ in %.2f s", count / 2, reference,
            SystemInfo.now() - t0)
    }

    /// Forward passes over every slot with the reference weights (`dpo.reference`, loaded into the
    /// model and replaced by the initial weights afterwards; empty: the model as it starts). The
    /// data-parallel ranks take micro-batches of slots in turn (all run the same number of
    /// passes, as ZeRO-3 gathers parameters collectively) and all-reduce the results.
    private func computeReference(_ dpo: DPOState) throws -> [Double] {
        let pairs = dpo.source.pairs.count
        let group = plan.dataGroup
        let micro = config.microBatchSize
        let chunks = (pairs + micro - 1) / micro
        if !config.dpo.reference.isEmpty {
            try InitialWeights(config, path: config.dpo.reference, key: "dpo.reference").fill(model)
        }
        var logps = [Double](repeating: 0, count: 2 * pairs)
        let mb = microBatches[0]
        for round in 0..<(chunks + group.size - 1) / group.size {
            let slots = (0..<micro).map { (round * group.size + group.rank) * micro + $0 }
            try mb.load(from: PreferenceSlots(dpo.source, slots: slots.map { $0 < pairs ? $0 : 0 }), firstSample: 0)
            let rowLogps = mb.inputs.withUnsafeBufferPointer { inputs in
                DPOLoss.sequenceLogps(
                    model: model, batch: mb,
                    logits: model.forward(tokens: inputs.baseAddress!, batch: mb.batch, seqLen: mb.seqLen))
            }
            for (i, slot) in slots.enumerated() where slot < pairs {
                logps[2 * slot] = rowLogps[2 * i]
                logps[2 * slot + 1] = rowLogps[2 * i + 1]
            }
        }
        plan.shardedParameters?.releaseAll()
        group.allReduce(&logps, op: .sum)
        if !config.dpo.reference.isEmpty { try InitialWeights(config).fill(model) }
        return logps
    }
}
