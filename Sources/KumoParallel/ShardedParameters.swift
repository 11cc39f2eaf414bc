import KumoComm
import KumoCore
import KumoModel

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// ZeRO-3's parameters: each rank keeps only its partition range of the flat buffer resident.
/// Just before forward or backward reads a stage (the embedding, a block, the head) its
/// parameters are all-gathered into their place in the buffer, the next stage's gather is
/// started at once (non-blocking, so it overlaps this stage's compute), and the stages the
/// model has moved past are released: their pages outside this rank's range are handed back
/// to the kernel (`madvise(MADV_DONTNEED)`; they read as zeros until gathered again).
public final class ShardedParameters {
    /// The group the parameters are sharded over.
    public let group: any Communicator
    /// The ranges each rank owns.
    public let partition: ZeROPartition
    private let layout: ParameterLayout
    private let params: FloatBuffer
    private let codec: GatherCodec
    private var held: Set<ParameterStage> = []
    private var inFlight: [ParameterStage: [PendingGather]] = [:]
    /// Most bytes of gathered stages resident at once (the stage in use and the one prefetched).
    public private(set) var peakGatheredBytes = 0

    /// Shards `params` (laid out by `layout`) over `group` by `partition`, sending each gathered
    /// piece encoded by `codec`. Releases every page outside this rank's range.
    public init(
        layout: ParameterLayout, params: FloatBuffer, group: any Communicator, partition: ZeROPartition,
        codec: GatherCodec = .fp32
    ) {
        self.layout = layout
        self.params = params
        self.group = group
        self.partition = partition
        self.codec = codec
        release(0..<params.count)
    }

    /// Forward is about to read `stage`: gathers it (or waits for its prefetch), releases the
    /// previous stage and prefetches the next one.
    public func beforeForward(_ stage: ParameterStage) { use(stage, next: next(after: stage, forward: true)) }

    /// Backward is about to read `stage`, as `beforeForward`.
    public func beforeBackward(_ stage: ParameterStage) { use(stage, next: next(after: stage, forward: false)) }

    /// Releases every gathered stage (after backward, before the optimizer updates the shard).
    public func releaseAll() {
        for stage in held { release(stage) }
        held = []
    }

    /// Gathers the whole buffer onto every rank in fp32 (after the last step: the replica check,
    /// parameter dumps and samples read it); the per-stage gathers must be detached afterwards.
    public func gatherAll() {
        precondition(inFlight.isEmpty, "gatherAll while a stage is being gathered")
        group.allGatherInPlace(params.pointer, counts: partition.counts)
    }

    private func next(after stage: ParameterStage, forward: Bool) -> ParameterStage? {
        Self.next(after: stage, forward: forward, layers: layout.config.numHiddenLayers)
    }

    /// The stage forward (or backward) reads after `stage`, which `use` prefetches.
    private static func next(after stage: ParameterStage, forward: Bool, layers: Int) -> ParameterStage? {
        switch (stage, forward) {
        case (.embedding, true): return layers > 0 ? .block(0) : .head
        case (.block(let i), true): return i + 1 < layers ? .block(i + 1) : .head
        case (.head, false): return layers > 0 ? .block(layers - 1) : nil
        case (.block(let i), false): return i > 0 ? .block(i - 1) : nil
        default: return nil
        }
    }

    /// Bytes of gathered stages resident at once at most, as `peakGatheredBytes` finds them over a
    /// forward and backward pass of `layout`: the stage in use and the one prefetched.
    public static func peakGatheredBytes(_ layout: ParameterLayout) -> Int {
        let layers = layout.config.numHiddenLayers
        let order: [ParameterStage] = [.embedding] + (0..<layers).map { .block($0) } + [.head]
        func floats(_ stage: ParameterStage?) -> Int {
            stage.map { layout.ranges(of: $0).reduce(0) { $0 + $1.count } } ?? 0
        }
        let pairs =
            order.map { ($0, next(after: $0, forward: true, layers: layers)) }
            + order.reversed().map { ($0, next(after: $0, forward: false, layers: layers)) }
        return 4 * (pairs.map { floats($0.0) + ($0.1 == $0.0 ? 0 : floats($0.1)) }.max() ?? 0)
    }

    private func use(_ stage: ParameterStage, next: ParameterStage?) {
        if !held.contains(stage) {
            let pending = inFlight.removeValue(forKey: stage) ?? start(stage)
            for p in pending { p.finish(group) }
            held.insert(stage)
        }
        for other in held where other != stage { release(other) }
        held = [stage]
        if let next, next != stage, inFlight[next] == nil { inFlight[next] = start(next) }
        let resident = (held.union(inFlight.keys)).reduce(0) { $0 + layout.ranges(of: $1).reduce(0) { $0 + $1.count } }
        peakGatheredBytes = max(peakGatheredBytes, 4 * resident)
    }

    /// Starts the gather of each of the stage's ranges: every rank contributes its part of it.
    private func start(_ stage: ParameterStage) -> [PendingGather] {
        layout.ranges(of: stage).map { range in
            let pieces = (0..<group.size).map { partition.range(of: $0).clamped(to: range) }
            return codec.startGather(params.pointer, pieces: pieces, rank: group.rank, group: group)
        }
    }

    private func release(_ stage: ParameterStage) {
        for range in layout.ranges(of: stage) { release(range) }
    }

    /// Hands back the whole pages of `range` that lie outside this rank's own range.
    private func release(_ range: Range<Int>) {
        let mine = partition.range(of: group.rank)
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        for part in [
            range.lowerBound..<max(range.lowerBound, min(range.upperBound, mine.lowerBound)),
            min(range.upperBound, max(range.lowerBound, mine.upperBound))..<range.upperBound,
        ]
        where !part.isEmpty {
            let lower = (Int(bitPattern: params.pointer + part.lowerBound) + page - 1) / page * page
            let upper = Int(bitPattern: params.pointer + part.upperBound) / page * page
            if upper > lower { madvise(UnsafeMutableRawPointer(bitPattern: lower), upper - lower, MADV_DONTNEED) }
        }
    }
}
