import Foundation

/// GPT-2's byte-level BPE (as SmolLM2, GPT-2 and StarCoder use it): text is split by a
/// pre-tokenizer, each piece's UTF-8 bytes are spelled with GPT-2's byte-to-character table, and
/// ranked merges join adjacent symbols until no merge applies.
public final class ByteLevelBPETokenizer: Tokenizer, @unchecked Sendable {
    /// How text is split into pieces before merging.
    public enum PreTokenizer: String, Sendable, CaseIterable {
        /// GPT-2's pattern: contractions, letters, numbers, other symbols, whitespace.
        case gpt2
        /// Every number character alone, then GPT-2's pattern (llama.cpp's `smollm`, `starcoder`).
        case digitsThenGPT2 = "smollm"
    }

    /// Token strings by id (byte-level spelling).
    public let tokens: [String]
    /// Ids of tokens that are matched whole in text when special tokens are parsed (control and added tokens).
    public let specialIds: Set<Int32>
    public let preTokenizer: PreTokenizer
    public let bos: Int32?
    public let eos: Int32?
    public let eod: Int32
    public var vocabSize: Int { tokens.count }

    private let ids: [String: Int32]
    private let ranks: [String: Int]
    /// Special token strings, longest first, so that a longer one wins over its prefix.
    private let specialsByLength: [(text: [UInt8], id: Int32)]

    /// A tokenizer over `tokens` (by id), `merges` ("left right", best first) and the ids of special tokens.
    public init(
        tokens: [String], merges: [String], specialIds: Set<Int32>, preTokenizer: PreTokenizer, bos: Int32?,
        eos: Int32?
    ) throws {
        var ids: [String: Int32] = [:]
        for (id, token) in tokens.enumerated() where ids[token] == nil { ids[token] = Int32(id) }
        var ranks: [String: Int] = [:]
        for (rank, merge) in merges.enumerated() {
            let parts = merge.split(separator: " ", omittingEmptySubsequences: false)
            guard parts.count == 2, !parts[0].isEmpty, !parts[1].isEmpty else {
                throw TokenizerError.invalidModel(
                    path: "BPE merges", reason: "merge \(rank) '\(merge)' is not 'left right'")
            }
            if ranks[merge] == nil { ranks[merge] = rank }
        }
        for id in specialIds + [bos, eos].compactMap({ $0 }) where id < 0 || Int(id) >= tokens.count {
            throw TokenizerError.invalidModel(
                path: "BPE vocabulary", reason: "special id \(id) outside \(tokens.count) tokens")
        }
        self.tokens = tokens
        self.ids = ids
        self.ranks = ranks
        self.specialIds = specialIds
        self.preTokenizer = preTokenizer
        self.bos = bos
        self.eos = eos
        self.eod = eos ?? 0
        specialsByLength = specialIds.map { (Array(tokens[Int($0)].utf8), $0) }.filter { !$0.0.isEmpty }
            .sorted { $0.0.count > $1.0.count || ($0.0.count == $1.0.count && $0.1 < $1.1) }
    }

    /// Token ids of `text`; special-token strings in the text are ordinary text.
    public func encode(_ text: String) -> [Int32] { encode(text, parseSpecial: false) }

    /// Token ids of `text`; with `parseSpecial`, special-token strings (such as `<|im_start|>`) become their ids.
    public func encode(_ text: String, parseSpecial: Bool) -> [Int32] {
        var out: [Int32] = []
        let bytes = Array(text.utf8)
        var start = 0
        var i = 0
        while parseSpecial && i < bytes.count {
            if let special = specialsByLength.first(where: { bytes[i...].starts(with: $0.text) }) {
                encodePlain(bytes[start..<i], into: &out)
                out.append(special.id)
                i += special.text.count
                start = i
            } else {
                i += 1
            }
        }
        encodePlain(bytes[start...], into: &out)
        return out
    }

    /// Text of `ids`; special tokens are left out unless `keepSpecial`, invalid UTF-8 is replaced.
    public func decode(_ ids: [Int32]) -> String { String(decoding: decodeBytes(ids), as: UTF8.self) }

    /// The bytes `ids` spell (special tokens left out unless `keepSpecial`; ids outside the vocabulary dropped).
    public func decodeBytes(_ ids: [Int32], keepSpecial: Bool = false) -> [UInt8] {
        var bytes: [UInt8] = []
        for id in ids where id >= 0 && Int(id) < tokens.count {
            if specialIds.contains(id) {
                if keepSpecial { bytes += Array(tokens[Int(id)].utf8) }
                continue
            }
            for scalar in tokens[Int(id)].unicodeScalars {
                if let byte = ByteLevel.byte(of: scalar) { bytes.append(byte) }
            }
        }
        return bytes
    }

    /// The id of `token` (byte-level spelling), or nil.
    public func id(ofToken token: String) -> Int32? { ids[token] }

    private func encodePlain(_ bytes: ArraySlice<UInt8>, into out: inout [Int32]) {
        guard !bytes.isEmpty else { return }
        let scalars = Array(String(decoding: bytes, as: UTF8.self).unicodeScalars)
        for piece in BPEPreTokenizer.split(scalars, preTokenizer) {
            var utf8: [UInt8] = []
            for scalar in scalars[piece] { utf8 += Array(String(scalar).utf8) }
            let symbols = utf8.map { String(ByteLevel.scalar(of: $0)) }
            for symbol in merge(symbols) {
                if let id = ids[symbol] {
                    out.append(id)
                } else {
                    // A symbol the vocabulary lacks (a vocabulary without all 256 bytes): spell it byte by byte.
                    out += symbol.unicodeScalars.compactMap { ids[String($0)] }
                }
            }
        }
    }

    /// Applies the ranked merges to `symbols` until none applies, the best-ranked (leftmost on ties) first.
    private func merge(_ symbols: [String]) -> [String] {
        var symbols = symbols
        while symbols.count > 1 {
            var best = Int.max
            var at = -1
            for i in 0..<(symbols.count - 1) {
                if let rank = ranks[symbols[i] + " " + symbols[i + 1]], rank < best {
                    best = rank
                    at = i
                }
            }
            guard at >= 0 else { break }
            let left = symbols[at]
            let right = symbols[at + 1]
            var merged: [String] = []
            merged.reserveCapacity(symbols.count)
            var i = 0
            while i < symbols.count {
                if i + 1 < symbols.count && symbols[i] == left && symbols[i + 1] == right {
                    merged.append(left + right)
                    i += 2
                } else {
                    merged.append(symbols[i])
                    i += 1
                }
            }
            symbols = merged
        }
        return symbols
    }
}

/// GPT-2's table between bytes and the printable characters that spell them in byte-level vocabularies.
enum ByteLevel {
    private static let table: (toScalar: [Unicode.Scalar], toByte: [UInt32: UInt8]) = {
        var scalars = [Unicode.Scalar](repeating: " ", count: 256)
        var next: UInt32 = 256
        for b in 0..<256 {
            let printable = (33...126).contains(b) || (161...172).contains(b) || (174...255).contains(b)
            if printable {
                scalars[b] = Unicode.Scalar(UInt32(b))!
            } else {
                scalars[b] = Unicode.Scalar(next)!
                next += 1
            }
        }
        var bytes: [UInt32: UInt8] = [:]
        for (b, s) in scalars.enumerated() { bytes[s.value] = UInt8(b) }
        return (scalars, bytes)
    }()

    /// The character spelling `byte`.
    static func scalar(of byte: UInt8) -> Unicode.Scalar { table.toScalar[Int(byte)] }

    /// The byte `scalar` spells, or nil for characters outside the table.
    static func byte(of scalar: Unicode.Scalar) -> UInt8? { table.toByte[scalar.value] }
}

extension ByteLevelBPETokenizer {
    /// Loads a Hugging Face `tokenizer.json` whose model is byte-level BPE.
    public convenience init(tokenizerJSON path: String) throws {
        func invalid(_ reason: String) -> TokenizerError { .invalidModel(path: path, reason: reason) }
        guard FileManager.default.fileExists(atPath: path) else { throw TokenizerError.modelNotFound(path: path) }
        let data = try Data(contentsOf: URL(fileURLWithPath: path))
        guard let root = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
            let model = root["model"] as? [String: Any]
        else { throw invalid("not a tokenizer.json object with a \"model\"") }
        guard model["type"] as? String == "BPE", let vocab = model["vocab"] as? [String: Int] else {
            throw invalid("the model is not BPE with a vocab")
        }
        let merges: [String] = try (model["merges"] as? [Any] ?? []).map { merge in
            if let text = merge as? String { return text }
            if let pair = merge as? [String], pair.count == 2 { return pair[0] + " " + pair[1] }
            throw invalid("a merge is neither \"left right\" nor [left, right]")
        }
        var added: [(String, Int)] = []
        for entry in root["added_tokens"] as? [[String: Any]] ?? [] {
            guard let content = entry["content"] as? String, let id = entry["id"] as? Int else {
                throw invalid("an added token lacks content or id")
            }
            added.append((content, id))
        }
        let size = (vocab.values.max() ?? -1) + 1
        let maxAdded = (added.map(\.1).max() ?? -1) + 1
        guard vocab.values.allSatisfy({ $0 >= 0 }), added.allSatisfy({ $0.1 >= 0 }), max(size, maxAdded) <= 1 << 24
        else { throw invalid("token ids outside 0..<16777216") }
        var tokens = [String](repeating: "", count: max(size, maxAdded))
        for (token, id) in vocab { tokens[id] = token }
        for (token, id) in added { tokens[id] = token }
        let pre = Self.preTokenizer(of: root["pre_tokenizer"])
        // bos/eos are named in tokenizer_config.json beside tokenizer.json (as a string or {"content": ...}).
        let configPath = (path as NSString).deletingLastPathComponent + "/tokenizer_config.json"
        let config =
            (try? Data(contentsOf: URL(fileURLWithPath: configPath)))
            .flatMap { try? JSONSerialization.jsonObject(with: $0) as? [String: Any] } ?? [:]
        func special(_ key: String) -> Int32? {
            let value = config[key]
            guard let text = value as? String ?? (value as? [String: Any])?["content"] as? String else { return nil }
            return added.first { $0.0 == text }.map { Int32($0.1) }
        }
        try self.init(
            tokens: tokens, merges: merges, specialIds: Set(added.map { Int32($0.1) }), preTokenizer: pre,
            bos: special("bos_token"), eos: special("eos_token"))
    }

    /// `.digitsThenGPT2` when the pre-tokenizer sequence splits digits one by one, else `.gpt2`.
    private static func preTokenizer(of json: Any?) -> PreTokenizer {
        guard let object = json as? [String: Any] else { return .gpt2 }
        let steps =
            object["type"] as? String == "Sequence" ? object["pretokenizers"] as? [[String: Any]] ?? [] : [object]
        let splitsDigits = steps.contains {
            $0["type"] as? String == "Digits" && $0["individual_digits"] as? Bool == true
        }
        return splitsDigits ? .digitsThenGPT2 : .gpt2
    }
}
