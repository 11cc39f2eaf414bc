import KumoComm
import KumoCore
import KumoModel

/// ZeRO-2 and 3's gradients: a rank keeps only the summed gradients of its partition range (the
/// shard), never the whole 4P-byte buffer. Backward writes each ready range (the head, one
/// block, the embedding: `GradientBuckets.readyOrder`) into a reusable scratch buffer; once the
/// range is final its gradients are copied into bucket staging buffers and every bucket it
/// completes is reduce-scattered (non-blocking) into the shard, so the scratch serves the next
/// range at once. At most `stagingBuffers` buckets are in flight; a further one first waits for
/// the oldest. Every micro-batch is reduced: the owner adds its shard's running sum into its own
/// piece of the bucket before the launch, so the shard accumulates over micro-batches.
///
/// Gradient memory per rank: the shard, one scratch of the largest ready range (plus the
/// embedding's own when it is tied to the head, whose backward adds into it first) and the
/// staging buffers, all allocated here once and reported by `allocatedBytes`.
public final class ShardedGradients {
    /// The summed gradients of this rank's range, offset by its start.
    public let shard: FloatBuffer
    /// The buckets, in launch order.
    public let buckets: GradientBuckets
    /// Bucket staging buffers: the most buckets in flight at once.
    public let stagingBuffers: Int
    private let partition: ZeROPartition
    private let group: any Communicator
    private let replicas: (any Communicator)?
    private let readyRanges: [Range<Int>]
    /// Ready range index of the tied embedding (written by the head's backward first), if tied.
    private let tiedEmbedding: Int?
    private let scratch: FloatBuffer
    private let embeddingScratch: FloatBuffer?
    private var staging: [FloatBuffer]
    /// Ready ranges backward is writing, by index, with the buffer each lives in.
    private var live: [Int: FloatBuffer] = [:]
    /// Launched buckets not yet waited for, oldest first, with the staging buffer each reads.
    private var inFlight: [(CommRequest, FloatBuffer)] = []
    /// Next bucket to fill, and its staging buffer once a piece went into it.
    private var nextBucket = 0
    private var filling: FloatBuffer?
    /// Lowest offset already copied out in this pass.
    private var readyFrom = 0

    /// Shards the gradients of `layout` over `group` by `partition`, in buckets of about
    /// `bucketBytes`; with hybrid sharding the shard is summed over `replicas` after each step.
    public init(
        layout: ParameterLayout, partition: ZeROPartition, group: any Communicator, replicas: (any Communicator)?,
        bucketBytes: Int
    ) {
        self.partition = partition
        self.group = group
        self.replicas = replicas
        let sizes = Scratch(layout: layout, bucketBytes: bucketBytes)
        buckets = sizes.buckets
        readyRanges = GradientBuckets.readyOrder(layout)
        shard = FloatBuffer(count: partition.range(of: group.rank).count)
        tiedEmbedding = sizes.tiedEmbedding
        embeddingScratch = sizes.embedding.map { FloatBuffer(count: $0) }
        scratch = FloatBuffer(count: sizes.largestRange)
        stagingBuffers = sizes.stagingBuffers
        staging = (0..<stagingBuffers).map { _ in FloatBuffer(count: sizes.largestBucket) }
    }

    /// The sizes of the buffers beside the shard, for `layout` in buckets of about `bucketBytes`
    /// (what a rank allocates, known before it does: the planner's gradient memory).
    public struct Scratch: Sendable {
        public let buckets: GradientBuckets
        /// Ready-range index of the tied embedding, if tied.
        public let tiedEmbedding: Int?
        /// Floats of the tied embedding's own scratch.
        public let embedding: Int?
        /// Floats of the scratch every other ready range passes through: the largest of them.
        public let largestRange: Int
        public let stagingBuffers: Int
        public let largestBucket: Int

        public init(layout: ParameterLayout, bucketBytes: Int) {
            buckets = GradientBuckets(layout: layout, targetFloats: max(1, bucketBytes / 4))
            let ready = GradientBuckets.readyOrder(layout)
            let tied = layout.config.tieWordEmbeddings ? ready.count - 1 : nil
            tiedEmbedding = tied
            embedding = tied.map { ready[$0].count }
            largestRange = ready.indices.filter { $0 != tied }.map { ready[$0].count }.max() ?? 0
            stagingBuffers = min(2, buckets.ranges.count)
            largestBucket = buckets.ranges.map(\.count).max() ?? 0
        }

        /// Bytes of the scratch and staging buffers.
        public var bytes: Int { 4 * (largestRange + (embedding ?? 0) + stagingBuffers * largestBucket) }
    }

    /// Bytes of gradient memory this rank allocated: the shard, the scratch and the staging buffers.
    public var allocatedBytes: Int { 4 * shard.count + scratchBytes }

    /// Bytes of the scratch and staging buffers alone.
    public var scratchBytes: Int {
        4 * (scratch.count + (embeddingScratch?.count ?? 0) + staging.reduce(0) { $0 + $1.count })
    }

    /// Starts an optimizer step: the shard's running sum restarts from zero.
    public func beginStep() { shard.zero() }

    /// Arms the reduction of the next backward pass (every micro-batch).
    public func beginPass() {
        precondition(inFlight.isEmpty && live.isEmpty, "beginPass before the previous pass finished")
        nextBucket = 0
        readyFrom = partition.count
    }

    /// Where backward writes the gradients of `range` (which lies inside one ready range):
    /// zeroed when backward first asks for its ready range in the pass.
    public func memory(for range: Range<Int>) -> UnsafeMutablePointer<Float> {
        guard let index = readyRanges.firstIndex(where: { $0.contains(range.lowerBound) }),
            readyRanges[index].upperBound >= range.upperBound
        else { preconditionFailure("gradient range \(range) crosses a ready range") }
        let ready = readyRanges[index]
        if let buffer = live[index] { return buffer.pointer + (range.lowerBound - ready.lowerBound) }
        let buffer = index == tiedEmbedding ? embeddingScratch! : scratch
        precondition(!live.values.contains { $0 === buffer }, "two ready ranges share one scratch")
        buffer.pointer.update(repeating: 0, count: ready.count)
        live[index] = buffer
        return buffer.pointer + (range.lowerBound - ready.lowerBound)
    }

    /// Backward reports that the gradients of a ready range are final: copies them into the
    /// buckets they fall in, launches every bucket now complete and frees the range's scratch.
    public func gradientsReady(_ range: Range<Int>) {
        precondition(range.upperBound == readyFrom, "gradient ranges must arrive from the top of the buffer down")
        guard let index = readyRanges.firstIndex(of: range), let source = live.removeValue(forKey: index) else {
            preconditionFailure("backward reported \(range) without writing it")
        }
        readyFrom = range.lowerBound
        while nextBucket < buckets.ranges.count, buckets.ranges[nextBucket].upperBound > range.lowerBound {
            let bucket = buckets.ranges[nextBucket]
            let buffer = filling ?? freeStagingBuffer()
            let piece = bucket.clamped(to: range)
            (buffer.pointer + (piece.lowerBound - bucket.lowerBound)).update(
                from: source.pointer + (piece.lowerBound - range.lowerBound), count: piece.count)
            guard bucket.lowerBound >= range.lowerBound else {
                filling = buffer
                break
            }
            filling = nil
            inFlight.append((launch(bucket, from: buffer), buffer))
            nextBucket += 1
        }
        for (request, _) in inFlight where !request.isComplete { _ = group.test(request) }
    }

    /// A staging buffer no bucket in flight reads, waiting for the oldest one when all are busy.
    private func freeStagingBuffer() -> FloatBuffer {
        if let free = staging.first(where: { b in !inFlight.contains { $0.1 === b } }) { return free }
        let (request, buffer) = inFlight.removeFirst()
        group.wait(request)
        return buffer
    }

    /// Adds this rank's running sum into its piece of the bucket and starts the reduce-scatter.
    private func launch(_ bucket: Range<Int>, from buffer: FloatBuffer) -> CommRequest {
        let pieces = (0..<group.size).map { partition.range(of: $0).clamped(to: bucket) }
        let mine = partition.range(of: group.rank)
        let own = pieces[group.rank]
        let into = own.isEmpty ? 0 : own.lowerBound - mine.lowerBound
        let send = buffer.pointer + (own.lowerBound - bucket.lowerBound)
        for i in 0..<own.count { send[i] += shard.pointer[into + i] }
        return group.startReduceScatter(buffer.pointer, shard.pointer + into, counts: pieces.map(\.count), op: .sum)
    }

    /// Waits for the pass's buckets; after the last micro-batch of a step sums the shard over
    /// the replica groups (hybrid sharding).
    public func finishPass(lastOfStep: Bool) {
        precondition(nextBucket == buckets.ranges.count, "backward did not report every gradient range")
        for (request, _) in inFlight { group.wait(request) }
        inFlight = []
        if lastOfStep, let replicas { replicas.allReduce(shard.pointer, count: shard.count, op: .sum) }
    }
}
