import XCTest

@testable import KumoTrain

/// Runs `c.steps` steps of `c` on one rank; returns each step's metrics and the final parameters.
func trainSteps(_ c: RunConfig, peak: Double = 50) throws -> (metrics: [StepMetrics], params: [Float]) {
    let trainer = try Trainer(config: c, stream: try TrainingData.make(c).stream, peakGFLOPs: peak)
    var metrics: [StepMetrics] = []
    for _ in 0..<c.steps { metrics.append(try trainer.trainStep()) }
    return (metrics, trainer.model.params.array)
}

/// Asserts two runs of the same steps agree: losses within 1e-5 and gradient norms within 1e-4
/// relative each step, parameters within 1e-5 at the end.
func assertSameTraining(
    _ a: (metrics: [StepMetrics], params: [Float]), _ b: (metrics: [StepMetrics], params: [Float]),
    file: StaticString = #filePath, line: UInt = #line
) {
    XCTAssertEqual(a.metrics.count, b.metrics.count, file: file, line: line)
    for (x, y) in zip(a.metrics, b.metrics) {
        XCTAssertEqual(x.loss, y.loss, accuracy: 1e-5 * x.loss, "step \(x.step)", file: file, line: line)
        XCTAssertEqual(x.gradNorm, y.gradNorm, accuracy: 1e-4 * x.gradNorm, "step \(x.step)", file: file, line: line)
    }
    let diff = zip(a.params, b.params).map { abs($0 - $1) }.max() ?? 0
    XCTAssertLessThan(diff, 1e-5, "max parameter difference \(diff)", file: file, line: line)
}
