import KumoComm

/// A collective returned wrong values.
struct CommCheckFailure: Error, CustomStringConvertible {
    var description: String
}

/// Runs every `Communicator` operation on small rank-dependent data and verifies the results on
/// every rank, so a benchmark never times a collective that computes the wrong thing.
enum CommCheck {
    /// Throws naming the first operation whose result is wrong on this rank.
    static func run(_ c: any Communicator) throws {
        let n = c.size
        let r = c.rank
        func expect(_ op: String, _ got: [Float], _ want: [Float]) throws {
            if got != want { throw CommCheckFailure(description: "rank \(r): \(op) gave \(got), expected \(want)") }
        }
        let count = 5
        var sum = (0..<count).map { Float(r * 10 + $0) }
        c.allReduce(&sum, count: count, op: .sum)
        try expect("allreduce sum", sum, (0..<count).map { i in Float((0..<n).reduce(0) { $0 + $1 * 10 + i }) })
        var maximum = (0..<count).map { Float(r - $0) }
        c.wait(c.startAllReduce(&maximum, count: count, op: .max))
        try expect("non-blocking allreduce max", maximum, (0..<count).map { Float(n - 1 - $0) })
        let send = (0..<count * n).map { Float($0 + r) }
        var chunk = [Float](repeating: 0, count: count)
        c.reduceScatter(send, &chunk, countPerRank: count, op: .sum)
        try expect(
            "reduce-scatter", chunk,
            (0..<count).map { i in Float((0..<n).reduce(0) { $0 + r * count + i + $1 }) })
        var gathered = [Float](repeating: 0, count: count * n)
        c.allGather((0..<count).map { Float(r * 100 + $0) }, &gathered, countPerRank: count)
        try expect("all-gather", gathered, (0..<n).flatMap { q in (0..<count).map { Float(q * 100 + $0) } })
        // Uneven in-place all-gather: rank q owns q + 1 floats.
        let counts = (0..<n).map { $0 + 1 }
        let owned = (0..<n).map { q in (0...q).map { Float(q * 100 + $0) } }
        var flat = (0..<n).flatMap { q in q == r ? owned[q] : [Float](repeating: -1, count: counts[q]) }
        c.allGatherInPlace(&flat, counts: counts)
        try expect("in-place all-gather", flat, owned.flatMap { $0 })
        try checkUneven(c, expect)
        var shared = [Float](repeating: Float(r), count: count)
        c.broadcast(&shared, count: count, root: n - 1)
        try expect("broadcast", shared, [Float](repeating: Float(n - 1), count: count))
        c.barrier()
        // A ring: each rank sends to the next and receives from the previous, blocking and not.
        let next = (r + 1) % n
        let previous = (r + n - 1) % n
        var fromPrevious = [Float](repeating: -1, count: count)
        let receiving = c.startReceive(&fromPrevious, count: count, from: previous, tag: 1)
        c.wait(c.startSend([Float](repeating: Float(r), count: count), count: count, to: next, tag: 1))
        c.wait(receiving)
        try expect("non-blocking send/recv", fromPrevious, [Float](repeating: Float(previous), count: count))
        if r % 2 == 0 {
            c.send([Float](repeating: Float(r), count: count), count: count, to: next, tag: 2)
            c.receive(&fromPrevious, count: count, from: previous, tag: 2)
        } else {
            var held = [Float](repeating: -1, count: count)
            c.receive(&held, count: count, from: previous, tag: 2)
            c.send([Float](repeating: Float(r), count: count), count: count, to: next, tag: 2)
            fromPrevious = held
        }
        try expect("send/recv", fromPrevious, [Float](repeating: Float(previous), count: count))
        // Sub-groups: even and odd ranks.
        let half = c.split(color: r % 2, key: r, name: "half")
        var members = [Float(r)]
        half.allReduce(&members, count: 1, op: .sum)
        try expect(
            "split allreduce", members, [Float(stride(from: r % 2, to: n, by: 2).reduce(0, +))])
        if half.size != (n + 1 - r % 2) / 2 || half.rank != r / 2 {
            throw CommCheckFailure(
                description:
                    "rank \(r): split gave rank \(half.rank) of \(half.size), expected \(r / 2) of \((n + 1 - r % 2) / 2)"
            )
        }
    }

    /// The non-blocking collectives ZeRO uses, with a piece per rank of a different length (rank q
    /// owns q + 1 elements; the last owns none when the group has over 2 ranks), advanced by `test`
    /// before the wait: reduce-scatter of floats, and in-place all-gather of bytes.
    private static func checkUneven(
        _ c: any Communicator, _ expect: (String, [Float], [Float]) throws -> Void
    ) throws {
        let (n, r) = (c.size, c.rank)
        let counts = (0..<n).map { n > 2 && $0 == n - 1 ? 0 : $0 + 1 }
        let offsets = counts.indices.map { counts[..<$0].reduce(0, +) }
        let send = (0..<counts.reduce(0, +)).map { Float($0 * (r + 1)) }
        let mine = UnsafeMutableBufferPointer<Float>.allocate(capacity: max(counts[r], 1))
        defer { mine.deallocate() }
        let reducing = c.startReduceScatter(send, mine.baseAddress!, counts: counts, op: .sum)
        _ = c.test(reducing)
        c.wait(reducing)
        let triangle = Float(n * (n + 1) / 2)
        try expect(
            "uneven non-blocking reduce-scatter", Array(mine.prefix(counts[r])),
            (0..<counts[r]).map { Float(offsets[r] + $0) * triangle })
        let bytes = UnsafeMutableBufferPointer<UInt8>.allocate(capacity: max(send.count, 1))
        defer { bytes.deallocate() }
        for q in 0..<n {
            for i in 0..<counts[q] { bytes[offsets[q] + i] = q == r ? UInt8(q * 16 + i) : 255 }
        }
        let gathering = c.startAllGatherInPlace(
            UnsafeMutableRawPointer(bytes.baseAddress!), counts: counts, elementBytes: 1)
        _ = c.test(gathering)
        c.wait(gathering)
        try expect(
            "uneven non-blocking in-place all-gather of bytes", bytes.prefix(send.count).map(Float.init),
            (0..<n).flatMap { q in (0..<counts[q]).map { Float(q * 16 + $0) } })
    }
}
