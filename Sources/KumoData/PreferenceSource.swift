import Foundation
import KumoCore

/// One preference record: a prompt, the response preferred to it and the one rejected.
public struct PreferenceRecord: Sendable, Equatable {
    public var prompt: String
    public var chosen: String
    public var rejected: String

    /// A record of three texts.
    public init(prompt: String, chosen: String, rejected: String) {
        (self.prompt, self.chosen, self.rejected) = (prompt, chosen, rejected)
    }

    /// The records of `paths` (JSONL files, possibly gzipped, or directories of them) with string
    /// fields `prompt`, `chosen_response` and `rejected_response`; a line lacking one (as HH-RLHF's
    /// rows whose two dialogues share no prompt) or holding no JSON object is left out and counted
    /// by reason in the summary.
    public static func read(paths: [String]) throws -> (records: [PreferenceRecord], summary: CorpusSummary) {
        try CorpusReader.readRecords(
            paths: paths, of: "preference records are JSON lines {prompt, chosen_response, rejected_response}",
            parse)
    }

    /// The record a JSONL line holds, or why it is left out.
    static func parse(_ line: CorpusRecord) -> Result<PreferenceRecord, CorpusProblem> {
        CorpusReader.jsonObject(line).flatMap { object in
            let fields = ["prompt", "chosen_response", "rejected_response"].map { object[$0] as? String }
            guard let prompt = fields[0], let chosen = fields[1], let rejected = fields[2] else {
                return .failure(
                    CorpusProblem(
                        file: line.file, line: line.line, reason: .missingField,
                        detail: "needs string fields 'prompt', 'chosen_response' and 'rejected_response'"))
            }
            return .success(PreferenceRecord(prompt: prompt, chosen: chosen, rejected: rejected))
        }
    }
}

/// A preference data file that cannot be used.
public struct PreferenceDataError: UserFacingError {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// A tokenized preference pair: one prompt and two responses, each ending with EOS.
public struct PreferencePair: Sendable, Equatable {
    public var prompt: [Int32]
    public var chosen: [Int32]
    public var rejected: [Int32]
}

/// Preference pairs as training rows (`data.format = "preference"`): each sample fills two rows,
/// the chosen response's then the rejected one's, each the prompt then the response (EOS last),
/// scored on the response tokens only. Pairs longer than one row are truncated or skipped.
///
/// A run uses `min(pairs, samples)` pairs (its *slots*: the first of a seeded shuffle); sample `i`
/// reads slot `epochOrder(i / slots)[i % slots]`, each epoch in its own seeded order.
public final class PreferenceSource: SequenceSource {
    /// The pairs the run uses, slot by slot.
    public let pairs: [PreferencePair]
    public let vocabSize: Int
    public let seed: UInt64
    /// Over-long pairs by what was done: "truncated", "skipped (too long)", "skipped (prompt fills
    /// the row)".
    public let overlong: [String: Int]
    /// Pairs read before any was skipped.
    public let pairsRead: Int
    private var orders: [Int: [Int]] = [:]

    /// Tokenizes `records` with `template` for rows of `seqLen` tokens (a longer pair keeps its
    /// first `seqLen + 1` tokens when `truncate`, else is left out) and keeps the slots that
    /// `samples` samples use; throws when no pair is left.
    public init(
        records: [PreferenceRecord], template: InstructionTemplate, tokenizer: any Tokenizer, seqLen: Int,
        truncate: Bool, samples: Int, seed: UInt64
    ) throws {
        var kept: [PreferencePair] = []
        var counts: [String: Int] = [:]
        for record in records {
            let prompt = template.prompt(instruction: record.prompt)
            let chosen = PromptResponseTokens(prompt: prompt, response: record.chosen, tokenizer: tokenizer)
            let rejected = PromptResponseTokens(prompt: prompt, response: record.rejected, tokenizer: tokenizer)
            let longest = max(chosen.tokens.count, rejected.tokens.count)
            if longest > seqLen + 1 {
                let reason =
                    chosen.prompt.count > seqLen
                    ? "skipped (prompt fills the row)"
                    : truncate ? "truncated" : "skipped (too long)"
                counts[reason, default: 0] += 1
                if reason != "truncated" { continue }
            }
            kept.append(PreferencePair(prompt: chosen.prompt, chosen: chosen.response, rejected: rejected.response))
        }
        guard !kept.isEmpty else {
            throw PreferenceDataError(
                "no preference pair fits train.seq_length = \(seqLen) (\(records.count) read: "
                    + counts.sorted { $0.key < $1.key }.map { "\($0.value) \($0.key)" }.joined(separator: ", ")
                    + "); raise train.seq_length")
        }
        let order = Self.shuffled(kept.count, seed: seed)
        pairs = order.prefix(max(1, min(kept.count, samples))).map { kept[$0] }
        vocabSize = tokenizer.vocabSize
        self.seed = seed
        overlong = counts
        pairsRead = records.count
    }

    public var rowsPerSample: Int { 2 }

    /// The slot sample `index` reads.
    public func slot(ofSample index: Int) -> Int {
        let epoch = index / pairs.count
        if orders[epoch] == nil { orders[epoch] = Self.shuffled(pairs.count, seed: seed &+ UInt64(epoch) &+ 1) }
        return orders[epoch]![index % pairs.count]
    }

    public func fill(sample index: Int, into rows: SequenceRows) throws {
        fill(slot: slot(ofSample: index), into: rows)
    }

    /// Fills the two rows of the pair in `slot`: chosen, then rejected.
    public func fill(slot: Int, into rows: SequenceRows) {
        precondition(rows.rows == 2, "a preference sample fills two rows")
        let pair = pairs[slot]
        for (r, response) in [pair.chosen, pair.rejected].enumerated() {
            let tokens = (pair.prompt + response).prefix(rows.seqLen + 1)
            let base = r * rows.seqLen
            for i in 0..<rows.seqLen {
                let scored = i + 1 < tokens.count && i + 1 >= pair.prompt.count
                rows.inputs[base + i] = i < tokens.count ? tokens[i] : 0
                rows.targets[base + i] = scored ? tokens[i + 1] : -100
                rows.positions[base + i] = Int32(i)
            }
        }
    }

    /// A line for the data summary: pairs read, used and over-long ones by reason.
    public var summary: String {
        let reasons = overlong.sorted { $0.key < $1.key }.map { "\($0.value) \($0.key)" }
        return "\(pairsRead) preference pairs, \(pairs.count) used"
            + (reasons.isEmpty ? "" : ", over-long: " + reasons.joined(separator: ", "))
    }

    /// 0..<count in an order fixed by `seed`.
    static func shuffled(_ count: Int, seed: UInt64) -> [Int] {
        var random = SeededRandom(seed: seed)
        return Array(0..<count).shuffled(using: &random)
    }
}

/// Chosen slots of a preference source as samples 0, 1, …: sample `i` is the pair in `slots[i]`.
public struct PreferenceSlots: SequenceSource {
    public let source: PreferenceSource
    public let slots: [Int]

    /// The pairs of `source` in `slots`, in that order.
    public init(_ source: PreferenceSource, slots: [Int]) {
        self.source = source
        self.slots = slots
    }

    public var vocabSize: Int { source.vocabSize }
    public var rowsPerSample: Int { 2 }

    public func fill(sample index: Int, into rows: SequenceRows) throws {
        source.fill(slot: slots[index], into: rows)
    }
}
