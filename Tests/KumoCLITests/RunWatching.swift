import Foundation
import XCTest

/// Reading a run's metrics while it trains, and waiting for it, for the resume tests.
extension XCTestCase {
    /// "step:loss" of every metrics line, the loss exactly as written.
    func writtenLosses(_ dir: String) throws -> [String] {
        try String(contentsOfFile: dir + "/metrics.jsonl", encoding: .utf8).split(separator: "\n").map { line in
            let step = line.range(of: "\"step\":").map { line[$0.upperBound...].prefix { $0 != "," } } ?? ""
            let loss = line.range(of: "\"loss\":").map { line[$0.upperBound...].prefix { $0 != "," } } ?? ""
            return "\(step):\(loss)"
        }
    }

    /// Polls `condition` every 5 ms for up to two minutes.
    func wait(for what: String, _ condition: () -> Bool) {
        let deadline = Date().addingTimeInterval(120)
        while !condition() {
            if Date() > deadline { return XCTFail("timed out waiting for \(what)") }
            usleep(5000)
        }
    }
}
