/// How ZeRO-3 encodes the parameter pieces it all-gathers (`parallel.quantized_allgather`):
/// fp32 as they are, or bf16 / int8 (`Int8Blocks`) to cut the bytes sent. A rank keeps its own
/// piece exact; the pieces it receives are decoded into the parameter buffer.
public enum GatherCodec: String, Sendable, CaseIterable {
    case fp32 = "none"
    case bf16
    case int8

    /// Bytes `count` floats are sent as.
    public func encodedBytes(_ count: Int) -> Int {
        switch self {
        case .fp32: return 4 * count
        case .bf16: return 2 * count
        case .int8: return Int8Blocks.encodedBytes(count)
        }
    }

    /// Starts gathering `pieces` (rank r's piece of `params`, in rank order, contiguous) onto every
    /// rank of `group`, whose rank `rank` sends its own piece.
    public func startGather(
        _ params: UnsafeMutablePointer<Float>, pieces: [Range<Int>], rank: Int, group: any Communicator
    ) -> PendingGather {
        let first = pieces[0].lowerBound
        if self == .fp32 {
            let request = group.startAllGatherInPlace(
                params + first, counts: pieces.map(\.count), elementBytes: 4)
            return PendingGather(request: request, staging: nil) {}
        }
        let sizes = pieces.map { encodedBytes($0.count) }
        let offsets = sizes.indices.map { sizes[..<$0].reduce(0, +) }
        let staging = UnsafeMutableRawPointer.allocate(byteCount: max(1, sizes.reduce(0, +)), alignment: 16)
        let mine = pieces[rank]
        switch self {
        case .bf16: BFloat16.encode(params + mine.lowerBound, count: mine.count, into: staging + offsets[rank])
        default: Int8Blocks.encode(params + mine.lowerBound, count: mine.count, into: staging + offsets[rank])
        }
        let request = group.startAllGatherInPlace(staging, counts: sizes, elementBytes: 1)
        return PendingGather(request: request, staging: staging) {
            for (r, piece) in pieces.enumerated() where r != rank {
                switch self {
                case .bf16: BFloat16.decode(staging + offsets[r], count: piece.count, into: params + piece.lowerBound)
                default: Int8Blocks.decode(staging + offsets[r], count: piece.count, into: params + piece.lowerBound)
                }
            }
        }
    }
}

/// A parameter gather in flight: `finish` waits for it and decodes what the other ranks sent.
public final class PendingGather {
    private let request: CommRequest
    private let staging: UnsafeMutableRawPointer?
    private let decode: () -> Void

    init(request: CommRequest, staging: UnsafeMutableRawPointer?, decode: @escaping () -> Void) {
        self.request = request
        self.staging = staging
        self.decode = decode
    }

    /// Waits for the gather and writes the other ranks' pieces into the parameters.
    public func finish(_ group: any Communicator) {
        group.wait(request)
        decode()
    }

    deinit { staging?.deallocate() }
}
