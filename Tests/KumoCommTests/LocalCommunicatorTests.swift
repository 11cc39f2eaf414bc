import XCTest

@testable import KumoComm

final class LocalCommunicatorTests: XCTestCase {
    func testCollectivesOfOneRankKeepOrCopyTheData() {
        let c = LocalCommunicator()
        XCTAssertEqual(c.rank, 0)
        XCTAssertEqual(c.size, 1)
        var a: [Float] = [1, -2, 3]
        a.withUnsafeMutableBufferPointer { c.allReduce($0.baseAddress!, count: 3, op: .sum) }
        XCTAssertEqual(a, [1, -2, 3])
        var scalars = [2.5, 7]
        c.allReduce(&scalars, op: .max)
        XCTAssertEqual(scalars, [2.5, 7])
        var out = [Float](repeating: 0, count: 3)
        c.reduceScatter(a, &out, countPerRank: 3, op: .sum)
        XCTAssertEqual(out, a)
        var gathered = [Float](repeating: 0, count: 3)
        c.allGather(a, &gathered, countPerRank: 3)
        XCTAssertEqual(gathered, a)
        XCTAssertEqual(c.allGatherBytes([9, 8]), [[9, 8]])
        let r = a.withUnsafeMutableBufferPointer { c.startAllReduce($0.baseAddress!, count: 3, op: .sum) }
        XCTAssertTrue(c.test(r))
    }

    func testMessagesToSelfArriveInOrderPerTagWhicheverSideStartsFirst() {
        let c = LocalCommunicator()
        let first: [Float] = [1, 2]
        let second: [Float] = [3, 4]
        c.send(first, count: 2, to: 0, tag: 5)
        c.send(second, count: 2, to: 0, tag: 5)
        var got = [Float](repeating: 0, count: 2)
        c.receive(&got, count: 2, from: 0, tag: 5)
        XCTAssertEqual(got, first)
        c.receive(&got, count: 2, from: 0, tag: 5)
        XCTAssertEqual(got, second)
        // A receive started before its send completes when the send arrives.
        var late = [Float](repeating: 0, count: 2)
        let pending = late.withUnsafeMutableBufferPointer { c.startReceive($0.baseAddress!, count: 2, from: 0, tag: 9) }
        XCTAssertFalse(c.test(pending))
        c.wait(c.startSend(second, count: 2, to: 0, tag: 9))
        XCTAssertTrue(c.test(pending))
        XCTAssertEqual(late, second)
    }

    func testCountersRecordCallsAndBytesPerOperation() {
        let c = LocalCommunicator(name: "dp")
        var a = [Float](repeating: 1, count: 256)
        for _ in 0..<3 { a.withUnsafeMutableBufferPointer { c.allReduce($0.baseAddress!, count: 256, op: .sum) } }
        c.barrier()
        let m = Dictionary(uniqueKeysWithValues: c.counters.metrics.map { ($0.key, $0.value) })
        XCTAssertEqual(m["comm.dp.allreduce.calls"], 3)
        XCTAssertEqual(m["comm.dp.allreduce.bytes"], 3 * 1024)
        XCTAssertEqual(m["comm.dp.barrier.calls"], 1)
        XCTAssertNotNil(m["comm.dp.allreduce.seconds"])
    }

    func testWithoutALauncherTheWorldIsOneLocalRank() {
        // The test runner is not started by mpirun, so no MPI is initialised.
        XCTAssertFalse(CommWorld.isLaunchedByMPI)
        let w = CommWorld.start(timeoutSeconds: 1)
        XCTAssertTrue(w is LocalCommunicator)
        XCTAssertEqual(w.size, 1)
    }
}
