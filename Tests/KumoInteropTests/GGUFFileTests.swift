import Foundation
import KumoModel
import XCTest

@testable import KumoInterop

/// The GGUF reader: metadata of every type, alignment, dequantization and the llama mapping.
final class GGUFFileTests: XCTestCase {
    func testMetadataOfEveryValueTypeIsRead() throws {
        var b = GGUFBuilder()
        b.metadata = [
            ("u8", .init(type: 0, bytes: Data([200]))), ("i8", .init(type: 1, bytes: Data([0xFF]))),
            ("u16", .init(type: 2, bytes: GGUFBuilder.le(UInt16(60000)))),
            ("i16", .init(type: 3, bytes: GGUFBuilder.le(Int16(-300)))), ("u32", .u32(7)), ("i32", .i32(-7)),
            ("f32", .f32(0.5)), ("bool", .bool(true)), ("str", .string("日本")), ("u64", .u64(1 << 40)),
            ("i64", .init(type: 11, bytes: GGUFBuilder.le(Int64(-1 << 40)))), ("f64", .f64(-2.25)),
            ("arr", .array([.string("a"), .string("bc")], of: 8)),
            ("nested", .array([.array([.u32(1), .u32(2)], of: 4)], of: 9)),
        ]
        let f = try GGUFFile(data: b.build(), path: "mem")
        let m = f.metadata
        XCTAssertEqual(m["u8"], .unsigned(200))
        XCTAssertEqual(m["i8"], .signed(-1))
        XCTAssertEqual(m["u16"], .unsigned(60000))
        XCTAssertEqual(m["i16"], .signed(-300))
        XCTAssertEqual(m["u32"]?.int, 7)
        XCTAssertEqual(m["i32"]?.int, -7)
        XCTAssertEqual(m["f32"], .float(0.5))
        XCTAssertEqual(m["bool"], .bool(true))
        XCTAssertEqual(m["str"], .string("日本"))
        XCTAssertEqual(m["u64"]?.int, 1 << 40)
        XCTAssertEqual(m["i64"]?.int, -1 << 40)
        XCTAssertEqual(m["f64"], .float(-2.25))
        XCTAssertEqual(m["arr"], .array([.string("a"), .string("bc")]))
        XCTAssertEqual(m["nested"], .array([.array([.unsigned(1), .unsigned(2)])]))
    }

    func testQuantizedBlocksDequantizeToTheirFormulas() throws {
        // d = 0.5 (F16 0x3800), m = -1 (F16 0xBC00).
        let d: [UInt8] = [0x00, 0x38]
        let m: [UInt8] = [0x00, 0xBC]
        let nibbles = (0..<16).map { UInt8($0) | UInt8(15 - $0) << 4 }
        let q8 = (0..<32).map { UInt8(bitPattern: Int8($0 - 16)) }
        var b = GGUFBuilder()
        b.alignment = 64
        b.metadata = [("general.alignment", .u32(64))]
        b.tensors = [
            ("q4_0", [32], 2, Data(d + nibbles)), ("q4_1", [32], 3, Data(d + m + nibbles)),
            ("q8_0", [32], 8, Data(d + q8)),
            ("f16", [2], 1, Data([0x00, 0x3C, 0x00, 0xC4])), ("bf16", [2], 30, Data([0x80, 0x3F, 0x40, 0xC0])),
        ]
        let f = try GGUFFile(data: b.build(), path: "mem")
        let low = (0..<16).map { Float($0) }
        let high = (0..<16).map { Float(15 - $0) }
        XCTAssertEqual(try f.floats("q4_0"), (low + high).map { 0.5 * ($0 - 8) })
        XCTAssertEqual(try f.floats("q4_1"), (low + high).map { 0.5 * $0 - 1 })
        XCTAssertEqual(try f.floats("q8_0"), (0..<32).map { 0.5 * Float($0 - 16) })
        XCTAssertEqual(try f.floats("f16"), [1, -4])
        XCTAssertEqual(try f.floats("bf16"), [1, -3])
    }

    func testTensorRunningPastTheEndIsRejectedNamingIt() {
        var b = GGUFBuilder()
        b.tensors = [("t", [16], 0, GGUFBuilder.f32(Array(repeating: 1, count: 16)))]
        let data = b.build().dropLast(40)
        XCTAssertThrowsError(try GGUFFile(data: Data(data), path: "mem")) {
            XCTAssertTrue("\($0)".contains("tensor t"), "\($0)")
        }
    }

    func testUnsupportedTensorTypeIsRejectedNamingTheSupportedOnes() {
        var b = GGUFBuilder()
        b.tensors = [("t", [256], 12, Data(count: 144))]  // Q4_K
        XCTAssertThrowsError(try GGUFFile(data: b.build(), path: "mem")) {
            XCTAssertTrue("\($0)".contains("Q4_1"), "\($0)")
        }
    }

    func testRotaryRowsAreReorderedFromAdjacentPairsToHalves() {
        // One head of size 4, one column: GGUF rows (2j + s) hold HF rows (s·2 + j).
        let gguf: [Float] = [10, 20, 11, 21]  // HF rows 0, 2, 1, 3 in that order
        let hf = GGUFLlama.reorderRotaryRows(gguf, rows: 4, columns: 1, headDim: 4, toAdjacentPairs: false)
        XCTAssertEqual(hf, [10, 11, 20, 21])
        XCTAssertEqual(GGUFLlama.reorderRotaryRows(hf, rows: 4, columns: 1, headDim: 4, toAdjacentPairs: true), gguf)
    }

    func testTinyLlamaFileMapsOntoKumoNames() throws {
        let data = TinyLlamaGGUF.build(tied: false)
        let path = try Reference.temporaryDirectory(for: self) + "/tiny.gguf"
        try data.write(to: URL(fileURLWithPath: path))
        let model = try loadModel(path: path)
        XCTAssertEqual(model.config.hiddenSize, TinyLlamaGGUF.hidden)
        XCTAssertFalse(model.config.tieWordEmbeddings)
        let norm = try XCTUnwrap(model.layout.tensor(named: "model.layers.1.post_attention_layernorm.weight"))
        XCTAssertEqual(model.params[norm.offset], TinyLlamaGGUF.value(name: "blk.1.ffn_norm.weight", index: 0))
    }
}

/// A tiny random `llama` GGUF file (F32 tensors) for mapping and fuzz tests.
enum TinyLlamaGGUF {
    static let hidden = 8
    static let vocab = 12

    /// A deterministic value of element `index` of tensor `name`.
    static func value(name: String, index: Int) -> Float {
        Float((name.utf8.reduce(0) { $0 &* 31 &+ Int($1) } &+ index * 7) % 19) / 19 - 0.5
    }

    static func build(tied: Bool) -> Data {
        var b = GGUFBuilder()
        b.metadata = [
            ("general.architecture", .string("llama")), ("llama.block_count", .u32(2)),
            ("llama.context_length", .u32(16)), ("llama.embedding_length", .u32(UInt32(hidden))),
            ("llama.feed_forward_length", .u32(16)), ("llama.attention.head_count", .u32(2)),
            ("llama.attention.head_count_kv", .u32(1)), ("llama.rope.freq_base", .f32(10000)),
            ("llama.attention.layer_norm_rms_epsilon", .f32(1e-5)),
            ("tokenizer.ggml.tokens", .array((0..<vocab).map { .string("t\($0)") }, of: 8)),
        ]
        var shapes: [(String, [Int])] = [("token_embd.weight", [hidden, vocab]), ("output_norm.weight", [hidden])]
        if !tied { shapes.append(("output.weight", [hidden, vocab])) }
        for i in 0..<2 {
            shapes += [
                ("blk.\(i).attn_norm.weight", [hidden]), ("blk.\(i).attn_q.weight", [hidden, hidden]),
                ("blk.\(i).attn_k.weight", [hidden, 4]), ("blk.\(i).attn_v.weight", [hidden, 4]),
                ("blk.\(i).attn_output.weight", [hidden, hidden]), ("blk.\(i).ffn_norm.weight", [hidden]),
                ("blk.\(i).ffn_gate.weight", [hidden, 16]), ("blk.\(i).ffn_up.weight", [hidden, 16]),
                ("blk.\(i).ffn_down.weight", [16, hidden]),
            ]
        }
        b.tensors = shapes.map { name, dims in
            (name, dims, 0, GGUFBuilder.f32((0..<dims.reduce(1, *)).map { value(name: name, index: $0) }))
        }
        return b.build()
    }
}
