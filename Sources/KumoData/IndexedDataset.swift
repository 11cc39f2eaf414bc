import Foundation
import KumoCore

/// Token storage types of Megatron-LM's indexed dataset, with their codes in the `.idx` header.
public enum IndexedDType: UInt8, CaseIterable, Sendable {
    case uint8 = 1
    case int8 = 2
    case int16 = 3
    case int32 = 4
    case int64 = 5
    case uint16 = 8

    /// Bytes per token.
    public var size: Int {
        switch self {
        case .uint8, .int8: return 1
        case .int16, .uint16: return 2
        case .int32: return 4
        case .int64: return 8
        }
    }

    /// The numpy name (`uint16`, `int32`, ...).
    public var name: String { "\(self)" }

    /// The type Megatron-LM's preprocessing picks for a vocabulary: uint16 below 65,500 ids, else int32.
    public static func forVocabulary(size: Int) -> IndexedDType { size < 65_500 ? .uint16 : .int32 }

    /// Whether `token` can be stored.
    func holds(_ token: Int32) -> Bool {
        switch self {
        case .uint8: return (0...255).contains(token)
        case .int8: return (-128...127).contains(token)
        case .int16: return (-32768...32767).contains(token)
        case .uint16: return (0...65535).contains(token)
        case .int32, .int64: return true
        }
    }
}

/// An indexed dataset file is malformed; the message names the file and the byte offset.
public struct IndexedDatasetError: UserFacingError {
    public var file: String
    public var offset: Int
    public var reason: String
    public var description: String { "\(file): \(reason) (at byte \(offset))" }
}

/// A Megatron-LM indexed dataset (`PREFIX.bin` tokens, `PREFIX.idx` index, MMIDIDX version 1),
/// memory-mapped read-only; every count, length and pointer is checked against the files before use.
public final class IndexedDataset: @unchecked Sendable {
    // @unchecked: the mappings are read-only and never change after init.
    static let magic: [UInt8] = Array("MMIDIDX".utf8) + [0, 0]
    static let headerSize = 9 + 8 + 1 + 8 + 8

    public let prefix: String
    public let dtype: IndexedDType
    /// Number of sequences (Megatron's `len(dataset)`).
    public let sequenceCount: Int
    /// Number of documents (one less than the entries of Megatron's `document_indices`).
    public let documentCount: Int
    /// Tokens in all sequences.
    public let tokenCount: Int

    private let index: MappedFile
    private let bin: MappedFile
    private let lengthsOffset: Int
    private let pointersOffset: Int
    private let documentsOffset: Int

    /// Opens and validates `PREFIX.idx` and `PREFIX.bin`.
    public init(prefix: String) throws {
        self.prefix = prefix
        let idxPath = prefix + ".idx"
        let index = try MappedFile(path: idxPath)
        let bin = try MappedFile(path: prefix + ".bin")
        self.index = index
        self.bin = bin
        func fail(_ offset: Int, _ reason: String) -> IndexedDatasetError {
            IndexedDatasetError(file: idxPath, offset: offset, reason: reason)
        }
        let size = index.count
        guard size >= Self.headerSize else {
            throw fail(size, "the index is \(size) bytes, shorter than the \(Self.headerSize)-byte header")
        }
        guard (0..<9).allSatisfy({ index.byte($0) == Self.magic[$0] }) else {
            throw fail(0, "not a Megatron indexed dataset index (the MMIDIDX magic is missing)")
        }
        let version: UInt64 = index.load(9)
        guard version == 1 else { throw fail(9, "index version \(version); only version 1 is supported") }
        let code = index.byte(17)
        guard let dtype = IndexedDType(rawValue: code) else {
            throw fail(17, "dtype code \(code) is not a token type (valid: 1-5 and 8)")
        }
        self.dtype = dtype
        let sequences: UInt64 = index.load(18)
        let documents: UInt64 = index.load(26)
        // Bound the counts by the file size before any multiplication can overflow.
        guard sequences <= UInt64(size / 12), documents <= UInt64(size / 8), documents >= 1 else {
            throw fail(
                18, "counts (\(sequences) sequences, \(documents) document indices) do not fit a \(size)-byte index")
        }
        sequenceCount = Int(sequences)
        documentCount = Int(documents) - 1
        lengthsOffset = Self.headerSize
        pointersOffset = lengthsOffset + 4 * sequenceCount
        documentsOffset = pointersOffset + 8 * sequenceCount
        let expected = documentsOffset + 8 * Int(documents)
        guard expected == size else {
            throw fail(min(expected, size), "the index should be \(expected) bytes for its counts but is \(size)")
        }
        var tokens = 0
        for i in 0..<sequenceCount {
            let length: Int32 = index.load(lengthsOffset + 4 * i)
            let pointer: Int64 = index.load(pointersOffset + 8 * i)
            guard length >= 0 else { throw fail(lengthsOffset + 4 * i, "sequence \(i) has length \(length)") }
            guard pointer == Int64(tokens * dtype.size) else {
                throw fail(
                    pointersOffset + 8 * i,
                    "sequence \(i) starts at byte \(pointer) of the .bin; the lengths before it put it at \(tokens * dtype.size)"
                )
            }
            tokens += Int(length)
        }
        guard tokens * dtype.size == bin.count else {
            throw IndexedDatasetError(
                file: prefix + ".bin", offset: bin.count,
                reason:
                    "holds \(bin.count) bytes; the index describes \(tokens) \(dtype.name) tokens = \(tokens * dtype.size) bytes"
            )
        }
        tokenCount = tokens
        var previous: Int64 = 0
        for d in 0..<Int(documents) {
            let value: Int64 = index.load(documentsOffset + 8 * d)
            let valid = d == 0 ? value == 0 : value >= previous && value <= Int64(sequenceCount)
            guard valid else {
                throw fail(documentsOffset + 8 * d, "document index \(d) is \(value): not monotone from 0")
            }
            previous = value
        }
        guard previous == Int64(sequenceCount) else {
            throw fail(expected - 8, "the last document index is \(previous), not the sequence count \(sequenceCount)")
        }
    }

    /// Tokens in sequence `i`.
    public func sequenceLength(_ i: Int) -> Int {
        precondition(i >= 0 && i < sequenceCount, "sequence \(i) outside 0..<\(sequenceCount)")
        return Int(index.load(lengthsOffset + 4 * i) as Int32)
    }

    /// Copies `count` tokens of sequence `i` from token `offset` into `out`.
    public func copyTokens(sequence i: Int, offset: Int, count: Int, into out: UnsafeMutablePointer<Int32>) {
        precondition(
            offset >= 0 && count >= 0 && offset + count <= sequenceLength(i), "token range outside sequence \(i)")
        let start = Int(index.load(pointersOffset + 8 * i) as Int64) + offset * dtype.size
        for k in 0..<count {
            let at = start + k * dtype.size
            switch dtype {
            case .uint8: out[k] = Int32(bin.byte(at))
            case .int8: out[k] = Int32(Int8(bitPattern: bin.byte(at)))
            case .int16: out[k] = Int32(bin.load(at) as Int16)
            case .uint16: out[k] = Int32(bin.load(at) as UInt16)
            case .int32: out[k] = bin.load(at)
            case .int64: out[k] = Int32(truncatingIfNeeded: bin.load(at) as Int64)
            }
        }
    }

    /// The tokens of sequence `i`.
    public func tokens(sequence i: Int) -> [Int32] {
        let n = sequenceLength(i)
        return [Int32](unsafeUninitializedCapacity: n) { buffer, count in
            if n > 0 { copyTokens(sequence: i, offset: 0, count: n, into: buffer.baseAddress!) }
            count = n
        }
    }

    /// The sequences of document `d`.
    public func sequences(ofDocument d: Int) -> Range<Int> {
        precondition(d >= 0 && d < documentCount, "document \(d) outside 0..<\(documentCount)")
        return Int(index.load(documentsOffset + 8 * d) as Int64)..<Int(index.load(documentsOffset + 8 * d + 8) as Int64)
    }

    /// The document holding sequence `i`.
    public func document(ofSequence i: Int) -> Int {
        precondition(i >= 0 && i < sequenceCount, "sequence \(i) outside 0..<\(sequenceCount)")
        var (low, high) = (0, documentCount)  // the first document whose start lies after i, minus one
        while low < high {
            let mid = (low + high) / 2
            if Int(index.load(documentsOffset + 8 * (mid + 1)) as Int64) <= i { low = mid + 1 } else { high = mid }
        }
        return low
    }

    /// The largest and smallest token id in the dataset (nil if it holds no tokens), read from every
    /// sequence: what `kumo data info` reports and a vocabulary check needs.
    public func tokenIdRange() -> ClosedRange<Int32>? {
        var range: ClosedRange<Int32>?
        for i in 0..<sequenceCount {
            let ids = tokens(sequence: i)
            guard let low = ids.min(), let high = ids.max() else { continue }
            range = range.map { min($0.lowerBound, low)...max($0.upperBound, high) } ?? low...high
        }
        return range
    }

    /// The first token outside `0..<vocabSize` (its sequence, its document and the id), if any.
    public func firstTokenOutside(vocabSize: Int) -> (sequence: Int, document: Int, id: Int32)? {
        for i in 0..<sequenceCount {
            if let bad = tokens(sequence: i).first(where: { $0 < 0 || Int($0) >= vocabSize }) {
                return (i, document(ofSequence: i), bad)
            }
        }
        return nil
    }

    /// The tokens of document `d` (its sequences concatenated).
    public func documentTokens(_ d: Int) -> [Int32] {
        sequences(ofDocument: d).flatMap { tokens(sequence: $0) }
    }
}

/// A file mapped read-only into memory (an empty file maps to nothing).
final class MappedFile {
    let path: String
    let count: Int
    private let base: UnsafeRawPointer?

    init(path: String) throws {
        self.path = path
        let fd = open(path, O_RDONLY)
        guard fd >= 0 else {
            throw IndexedDatasetError(file: path, offset: 0, reason: "cannot open: \(String(cString: strerror(errno)))")
        }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0 else {
            throw IndexedDatasetError(file: path, offset: 0, reason: "cannot stat: \(String(cString: strerror(errno)))")
        }
        count = Int(info.st_size)
        if count == 0 {
            base = nil
            return
        }
        let mapped = mmap(nil, count, PROT_READ, MAP_PRIVATE, fd, 0)
        guard let mapped, mapped != MAP_FAILED else {
            throw IndexedDatasetError(file: path, offset: 0, reason: "cannot map: \(String(cString: strerror(errno)))")
        }
        base = UnsafeRawPointer(mapped)
    }

    deinit {
        if let base { munmap(UnsafeMutableRawPointer(mutating: base), count) }
    }

    /// The byte at `offset`.
    func byte(_ offset: Int) -> UInt8 { base!.load(fromByteOffset: offset, as: UInt8.self) }

    /// A little-endian value at `offset`, which need not be aligned.
    func load<T: FixedWidthInteger>(_ offset: Int) -> T {
        T(littleEndian: base!.loadUnaligned(fromByteOffset: offset, as: T.self))
    }
}
