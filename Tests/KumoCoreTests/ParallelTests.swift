import Foundation
import XCTest

@testable import KumoCore

/// Kumo's thread pool and the kernels split over it: every index once, the same bits on any
/// number of threads.
final class ParallelTests: XCTestCase {
    override func tearDown() { Threads.set(1) }

    /// How many times each index of 0..<count ran under `run`.
    private func visits(_ count: Int, _ run: (Int, (Int) -> Void) -> Void) -> [Int] {
        let hits = UnsafeMutablePointer<Int>.allocate(capacity: max(count, 1))
        hits.initialize(repeating: 0, count: max(count, 1))
        defer { hits.deallocate() }
        run(count) { i in hits[i] += 1 }
        return Array(UnsafeBufferPointer(start: hits, count: count))
    }

    func testEveryIndexRunsOnceOnAnyThreadCountAndInNestedLoops() {
        for threads in [1, 2, 3, 5] {
            Threads.set(threads)
            for count in [0, 1, 2, 7, 64, 1000] {
                XCTAssertEqual(visits(count) { parallelFor($0, $1) }, Array(repeating: 1, count: count), "\(threads)")
                XCTAssertEqual(
                    visits(count) { parallelForEachDynamic($0, $1) }, Array(repeating: 1, count: count), "\(threads)")
                // A loop inside a task runs on that task's thread.
                let nested = visits(count * 3) { total, body in
                    parallelFor(count) { i in parallelFor(3) { j in body(i * 3 + j) } }
                }
                XCTAssertEqual(nested, Array(repeating: 1, count: count * 3), "nested, \(threads) threads")
            }
        }
    }

    /// Short loops one after another whose task counts alternate between small and large, as
    /// decoding's are (a claim landing on a finished loop must fail, not run a task of the next one),
    /// and `parallelRows` over shapes of decoding's products: every index runs once.
    func testBackToBackLoopsOfGrowingCountsRunEveryIndexOnce() {
        Threads.set(2)
        var wrong = 0
        for round in 0..<20_000 {
            let count = round % 2 == 0 ? 2 : 40
            if visits(count, { parallelForEachDynamic($0, $1) }) != Array(repeating: 1, count: count) { wrong += 1 }
        }
        XCTAssertEqual(wrong, 0, "loops with an index run other than once")
        for (rows, rowBytes) in [(1, 4), (37, 4096), (1000, 700), (49_152, 2304)] {
            let covered = visits(rows) { count, body in
                parallelRows(count, rowBytes: rowBytes) { lo, hi in for r in lo..<hi { body(r) } }
            }
            XCTAssertEqual(covered, Array(repeating: 1, count: rows), "\(rows) rows of \(rowBytes) bytes")
        }
    }

    func testLoopsStartedFromSeveralThreadsAtOnceEachRunEveryIndexOnce() {
        Threads.set(3)
        let callers = 4
        let results = UnsafeMutablePointer<[Int]>.allocate(capacity: callers)
        results.initialize(repeating: [], count: callers)
        defer { results.deallocate() }
        DispatchQueue.concurrentPerform(iterations: callers) { c in
            var all: [Int] = []
            for _ in 0..<50 { all += visits(97) { parallelFor($0, $1) } }
            results[c] = all
        }
        for c in 0..<callers { XCTAssertEqual(results[c], Array(repeating: 1, count: 97 * 50), "caller \(c)") }
    }

    /// C = alpha·op(A)·op(B) + beta·C on `threads` threads, for every transpose combination.
    private func products(threads: Int, m: Int, n: Int, k: Int) -> [[Float]] {
        Threads.set(threads)
        var rng = SeededRandom(seed: 3)
        let a = (0..<(m * k)).map { _ in Float(rng.normal()) }
        let b = (0..<(k * n)).map { _ in Float(rng.normal()) }
        let c0 = (0..<(m * n)).map { _ in Float(rng.normal()) }
        var out: [[Float]] = []
        for ta in [Transpose.none, .transposed] {
            for tb in [Transpose.none, .transposed] {
                var c = c0
                gemm(
                    ta, tb, m: m, n: n, k: k, alpha: 0.7, a: a, lda: ta == .none ? k : m, b: b,
                    ldb: tb == .none ? n : k, beta: 1, c: &c, ldc: n)
                out.append(c)
            }
        }
        return out
    }

    func testGemmGivesTheSameBitsOnOneTwoAndThreeThreads() {
        // Tall, wide and square shapes with ragged edges, all large enough to be cut into tiles.
        for (m, n, k) in [(455, 130, 300), (70, 1000, 257), (333, 333, 100)] {
            XCTAssertGreaterThan(m * n * k, 2 * gemmTileWork, "shape too small to be tiled")
            let one = products(threads: 1, m: m, n: n, k: k)
            for threads in [2, 3] {
                let many = products(threads: threads, m: m, n: n, k: k)
                for (i, (x, y)) in zip(one, many).enumerated() {
                    let diff = zip(x, y).map { abs($0 - $1) }.max() ?? 0
                    XCTAssertTrue(x == y, "\(m)×\(n)×\(k), case \(i), \(threads) threads: max difference \(diff)")
                }
            }
        }
    }
}
