import ArgumentParser
import Foundation
import KumoData
import KumoInterop

/// `kumo tokenizer`: inspect tokenizers.
struct TokenizerCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tokenizer",
        abstract: "Train sentencepiece models; encode, decode and inspect with them or the byte tokenizer.",
        subcommands: [TokenizerEncode.self, TokenizerDecode.self, TokenizerInfo.self, TokenizerTrain.self])
}

/// The `--model` option shared by the tokenizer commands.
struct TokenizerModelOption: ParsableArguments {
    @Option(
        help:
            "A sentencepiece .model file, a Hugging Face tokenizer.json (or its directory), a GGUF file (its own tokenizer), or `byte` (ids 0-255, EOD 256)."
    )
    var model: String

    /// Loads the tokenizer, turning a load failure into a message naming the file.
    func load() throws -> any Tokenizer { try loadTokenizer(model: model) }
}

/// `kumo tokenizer encode`: text lines in, JSON arrays of ids out.
struct TokenizerEncode: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "encode",
        abstract: "Read UTF-8 text lines on stdin; write one JSON array of token ids per line on stdout.",
        discussion: """
            Each input line (without its line break; a CR before the LF is dropped too) is encoded on its own, \
            with no BOS or EOS token unless --bos or --eos is given.
            """)

    @OptionGroup var tokenizer: TokenizerModelOption

    @Flag(help: "Put the model's BOS id before each line's ids.")
    var bos = false

    @Flag(help: "Put the model's EOS id after each line's ids.")
    var eos = false

    func run() throws {
        let tok = try tokenizer.load()
        let bosId = try bos ? special(tok.bos, "--bos", "BOS") : nil
        let eosId = try eos ? special(tok.eos, "--eos", "EOS") : nil
        let output = OutputBuffer()
        defer { output.flush() }
        try forEachStdinLine { number, bytes in
            // Decoding repairs invalid UTF-8, so a repaired line differs from its bytes; a BOM is kept.
            let text = String(decoding: bytes, as: UTF8.self)
            guard text.utf8.elementsEqual(bytes) else {
                throw ValidationFailure("stdin line \(number): not valid UTF-8; encode reads UTF-8 text")
            }
            var ids = tok.encode(text)
            if let bosId { ids.insert(bosId, at: 0) }
            if let eosId { ids.append(eosId) }
            output.appendJSONArray(ids)
        } afterChunk: {
            output.flush()
        }
    }

    private func special(_ id: Int32?, _ flag: String, _ name: String) throws -> Int32 {
        guard let id else {
            let what = tokenizer.model == "byte" ? "the byte tokenizer" : "\(tokenizer.model)"
            throw ValidationFailure("\(flag): \(what) has no \(name) token")
        }
        return id
    }
}

/// `kumo tokenizer decode`: JSON arrays of ids in, text lines out.
struct TokenizerDecode: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "decode",
        abstract: "Read one JSON array of token ids per line on stdin; write the decoded text, one line each.",
        discussion: "Control tokens (BOS, EOS) decode to nothing; an id outside the vocabulary is an error.")

    @OptionGroup var tokenizer: TokenizerModelOption

    func run() throws {
        let tok = try tokenizer.load()
        let output = OutputBuffer()
        defer { output.flush() }
        try forEachStdinLine { number, bytes in
            guard let values = parseIdArray(bytes) else {
                throw ValidationFailure("stdin line \(number): expected a JSON array of integer token ids")
            }
            if let bad = values.first(where: { $0 < 0 || $0 >= Int64(tok.vocabSize) }) {
                throw ValidationFailure(
                    "stdin line \(number): id \(bad) is outside the vocabulary (0..<\(tok.vocabSize))")
            }
            output.append(tok.decode(values.map { Int32($0) }) + "\n")
        } afterChunk: {
            output.flush()
        }
    }
}

/// `kumo tokenizer info`: vocabulary size and special ids.
struct TokenizerInfo: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "info", abstract: "Print the vocabulary size and the special token ids (unk, bos, eos, pad, eod).")

    @OptionGroup var tokenizer: TokenizerModelOption

    @Flag(help: "Print one JSON object instead of lines.")
    var json = false

    func run() throws {
        let tok = try tokenizer.load()
        var fields: [(String, InfoValue)] = [("model", .text(tokenizer.model))]
        if let sp = tok as? SentencePieceTokenizer {
            let ids = (0..<Int32(sp.vocabSize))
            fields += [
                ("type", .text("sentencepiece")), ("vocab_size", .number(sp.vocabSize)), ("unk", .id(sp.unk)),
                ("bos", .id(sp.bos)), ("eos", .id(sp.eos)), ("pad", .id(sp.pad)), ("eod", .id(sp.eod)),
                ("eod_piece", .text(sp.piece(sp.eod) ?? "")),
                ("byte_pieces", .number(ids.filter { sp.isByte($0) }.count)),
                ("control_pieces", .number(ids.filter { sp.isControl($0) }.count)),
            ]
        } else if let bpe = tok as? ByteLevelBPETokenizer {
            fields += [
                ("type", .text("byte-level BPE")), ("vocab_size", .number(bpe.vocabSize)), ("unk", .id(nil)),
                ("bos", .id(bpe.bos)), ("eos", .id(bpe.eos)), ("pad", .id(nil)), ("eod", .id(bpe.eod)),
                ("pre_tokenizer", .text(bpe.preTokenizer.rawValue)), ("special_tokens", .number(bpe.specialIds.count)),
            ]
        } else {
            fields += [
                ("type", .text("byte")), ("vocab_size", .number(tok.vocabSize)), ("unk", .id(nil)),
                ("bos", .id(nil)), ("eos", .id(nil)), ("pad", .id(nil)), ("eod", .id(tok.eod)),
            ]
        }
        if json {
            print("{" + fields.map { "\"\($0.0)\":\($0.1.json)" }.joined(separator: ",") + "}")
        } else {
            for (key, value) in fields { print("\(key): \(value.plain)") }
        }
    }
}

/// A value printed by `kumo tokenizer info`.
private enum InfoValue {
    case text(String)
    case number(Int)
    case id(Int32?)

    /// The value for a human: absent ids read `none`.
    var plain: String {
        switch self {
        case .text(let s): return s
        case .number(let n): return "\(n)"
        case .id(let id): return id.map { "\($0)" } ?? "none"
        }
    }

    /// The value as JSON: absent ids are `null`.
    var json: String {
        switch self {
        case .text(let s):
            let encoder = JSONEncoder()
            encoder.outputFormatting = .withoutEscapingSlashes
            return String(decoding: try! encoder.encode(s), as: UTF8.self)
        case .number(let n): return "\(n)"
        case .id(let id): return id.map { "\($0)" } ?? "null"
        }
    }
}

/// Standard output, written in large blocks.
private final class OutputBuffer {
    private var bytes: [UInt8] = []

    func append(_ text: String) {
        bytes.append(contentsOf: text.utf8)
        if bytes.count >= 1 << 16 { flush() }
    }

    /// Appends `ids` as a JSON array (`[1,2,3]`) and a line break.
    func appendJSONArray(_ ids: [Int32]) {
        bytes.append(UInt8(ascii: "["))
        for (i, id) in ids.enumerated() {
            if i > 0 { bytes.append(UInt8(ascii: ",")) }
            var value = Int64(id)
            if value < 0 {
                bytes.append(UInt8(ascii: "-"))
                value = -value
            }
            let start = bytes.count
            repeat {
                bytes.append(UInt8(ascii: "0") + UInt8(value % 10))
                value /= 10
            } while value > 0
            bytes[start...].reverse()
        }
        bytes.append(contentsOf: "]\n".utf8)
        if bytes.count >= 1 << 16 { flush() }
    }

    func flush() {
        guard !bytes.isEmpty else { return }
        FileHandle.standardOutput.write(Data(bytes))
        bytes.removeAll(keepingCapacity: true)
    }
}

/// The integers of a JSON array such as `[1, 2, 3]`, or nil when `bytes` is anything else.
private func parseIdArray(_ bytes: ArraySlice<UInt8>) -> [Int64]? {
    var values: [Int64] = []
    var i = bytes.startIndex
    func skipSpace() {
        while i < bytes.endIndex, [9, 10, 13, 32].contains(bytes[i]) { i += 1 }
    }
    func expect(_ c: Unicode.Scalar) -> Bool {
        skipSpace()
        guard i < bytes.endIndex, bytes[i] == UInt8(ascii: c) else { return false }
        i += 1
        return true
    }
    guard expect("[") else { return nil }
    if !expect("]") {
        repeat {
            skipSpace()
            let negative = i < bytes.endIndex && bytes[i] == UInt8(ascii: "-")
            if negative { i += 1 }
            var value: Int64 = 0
            let first = i
            while i < bytes.endIndex, bytes[i] >= 48, bytes[i] <= 57, value < 1 << 40 {
                value = value * 10 + Int64(bytes[i] - 48)
                i += 1
            }
            guard i > first else { return nil }
            values.append(negative ? -value : value)
        } while expect(",")
        guard expect("]") else { return nil }
    }
    skipSpace()
    return i == bytes.endIndex ? values : nil
}

/// Calls `body` with each line of standard input (1-based number, bytes without the line break
/// or a CR before it), streaming in constant memory; `afterChunk` runs after each block read.
private func forEachStdinLine(
    _ body: (Int, ArraySlice<UInt8>) throws -> Void, afterChunk: () -> Void
) throws {
    var pending: [UInt8] = []
    var number = 0
    var chunk = [UInt8](repeating: 0, count: 1 << 16)
    func emit(_ line: ArraySlice<UInt8>) throws {
        number += 1
        try body(number, line.last == 13 ? line.dropLast() : line)
    }
    while true {
        let n = chunk.withUnsafeMutableBytes { read(0, $0.baseAddress, $0.count) }
        if n < 0 {
            if errno == EINTR { continue }
            throw ValidationFailure("cannot read stdin: \(String(cString: strerror(errno)))")
        }
        if n == 0 { break }
        pending.append(contentsOf: chunk[0..<n])
        var start = pending.startIndex
        while let newline = pending[start...].firstIndex(of: 10) {
            try emit(pending[start..<newline])
            start = newline + 1
        }
        pending.removeSubrange(0..<start)
        afterChunk()
    }
    if !pending.isEmpty { try emit(pending[...]) }
}
