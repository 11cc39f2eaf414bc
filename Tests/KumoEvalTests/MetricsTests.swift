import XCTest

@testable import KumoEval

final class MetricsTests: XCTestCase {
    func testAccuracyCountsMatches() {
        XCTAssertEqual(Metrics.accuracy([0, 1, 2, 2], [0, 1, 1, 2]), 0.75)
    }

    func testArgmaxTakesFirstOfTies() {
        XCTAssertEqual(Metrics.argmax([1, 3, 3, 2]), 1)
    }

    func testAccNormDividesByCharacterLength() {
        // Raw: choice 0 (-4) beats choice 1 (-6); per character: -4/2 = -2 loses to -6/6 = -1.
        XCTAssertEqual(Metrics.argmax([-4, -6]), 0)
        XCTAssertEqual(Metrics.normalizedChoice(logLikelihoods: [-4, -6], choices: ["田園", "マザーボード"]), 1)
    }

    func testMacroF1AveragesPerClassF1() {
        // Class 0: tp 1 fp 1 fn 0 → 2/3; class 1: tp 1 fp 0 fn 1 → 2/3; class 2 absent everywhere → 0.
        let f1 = Metrics.macroF1([0, 0, 1], [0, 1, 1], classes: 3)
        XCTAssertEqual(f1, (2.0 / 3 + 2.0 / 3) / 3, accuracy: 1e-12, "macro-F1 \(f1)")
        XCTAssertEqual(Metrics.macroF1([2, 1, 0], [2, 1, 0], classes: 3), 1)
    }

    func testPearsonOfLinearAndAnticorrelatedData() {
        XCTAssertEqual(Metrics.pearson([1, 2, 3, 4], [2, 4, 6, 8]), 1, accuracy: 1e-12)
        XCTAssertEqual(Metrics.pearson([1, 2, 3], [3, 2, 1]), -1, accuracy: 1e-12)
        // scipy.stats.pearsonr([1,2,3,4,5],[2,1,4,3,5]) = 0.8
        XCTAssertEqual(Metrics.pearson([1, 2, 3, 4, 5], [2, 1, 4, 3, 5]), 0.8, accuracy: 1e-12)
    }

    func testRanksAverageTies() {
        XCTAssertEqual(Metrics.ranks([10, 20, 20, 5]), [2, 3.5, 3.5, 1])
    }

    func testSpearmanWithTiesMatchesScipy() {
        // scipy.stats.spearmanr([1,2,2,3],[1,3,2,4]).correlation = 0.9486832980505138
        let rho = Metrics.spearman([1, 2, 2, 3], [1, 3, 2, 4])
        XCTAssertEqual(rho, 0.9486832980505138, accuracy: 1e-12, "spearman \(rho)")
        XCTAssertEqual(Metrics.spearman([1, 2, 3], [1, 4, 9]), 1, accuracy: 1e-12)
    }

    func testMeanStderrIsBinomialForZeroOneScores() {
        // p = 0.5 over n = 4: sqrt(p(1-p)/(n-1)) = sqrt(0.25/3).
        let se = Metrics.meanStderr([1, 0, 1, 0])
        XCTAssertEqual(se, (0.25 / 3).squareRoot(), accuracy: 1e-12, "stderr \(se)")
        XCTAssertEqual(Metrics.meanStderr([1, 1, 1]), 0)
    }

    func testBootstrapStderrOfMeanApproachesAnalytic() {
        let values = (0..<400).map { Double($0 % 3 == 0 ? 1 : 0) }
        let boot = Metrics.bootstrapStderr(count: values.count, resamples: 2000) { s in
            s.reduce(0) { $0 + values[$1] } / Double(s.count)
        }
        let analytic = Metrics.meanStderr(values)
        XCTAssertEqual(boot, analytic, accuracy: 0.15 * analytic, "bootstrap \(boot) analytic \(analytic)")
    }
}

final class SQuADMetricsTests: XCTestCase {
    func testExactMatchIgnoresPunctuationAndSpaces() {
        XCTAssertEqual(SQuADMetrics.exactMatch(prediction: " 東京 都。", answers: ["東京都"]), 1)
        XCTAssertEqual(SQuADMetrics.exactMatch(prediction: "東京", answers: ["東京都"]), 0)
    }

    func testCharF1CountsSharedCharacters() {
        // Prediction 東京 (2 chars) vs answer 東京都 (3): precision 1, recall 2/3 → F1 0.8.
        XCTAssertEqual(SQuADMetrics.charF1(prediction: "東京", answers: ["東京都"]), 0.8, accuracy: 1e-12)
        // Repeated characters count once per occurrence: ああい vs あい → 2 shared, P 2/3, R 1 → 0.8.
        XCTAssertEqual(SQuADMetrics.charF1(prediction: "ああい", answers: ["あい"]), 0.8, accuracy: 1e-12)
        XCTAssertEqual(SQuADMetrics.charF1(prediction: "大阪", answers: ["東京"]), 0)
    }

    func testCharF1TakesBestGoldAnswer() {
        XCTAssertEqual(SQuADMetrics.charF1(prediction: "東京", answers: ["大阪", "東京", "東京都"]), 1)
    }

    func testEmptyPredictionOrAnswer() {
        XCTAssertEqual(SQuADMetrics.charF1(prediction: "", answers: ["東京"]), 0)
        XCTAssertEqual(SQuADMetrics.charF1(prediction: "東京", answers: [""]), 0)
        XCTAssertEqual(SQuADMetrics.charF1(prediction: "。", answers: [""]), 1)
        XCTAssertEqual(SQuADMetrics.exactMatch(prediction: "", answers: [""]), 1)
    }
}

final class FewShotTests: XCTestCase {
    func testSelectionIsFixedBySeedAndDrawnFromTrain() {
        let train = Array(100..<120)
        let a = FewShot.split(validation: [1, 2, 3], train: train, k: 3, seed: 7)
        let b = FewShot.split(validation: [1, 2, 3], train: train, k: 3, seed: 7)
        XCTAssertEqual(a.shots, b.shots)
        XCTAssertEqual(a.evaluate, [1, 2, 3])
        XCTAssertTrue(a.shots.allSatisfy { train.contains($0) })
        XCTAssertNotEqual(a.shots, FewShot.split(validation: [1, 2, 3], train: train, k: 3, seed: 8).shots)
    }

    func testShotsFromValidationAreNotEvaluated() {
        let (shots, rest) = FewShot.split(validation: Array(0..<10), train: nil, k: 2, seed: 1)
        XCTAssertEqual(shots.count, 2)
        XCTAssertEqual(rest.count, 8)
        XCTAssertTrue(Set(shots).isDisjoint(with: rest))
    }

    func testPerplexityWindowsScoreEveryTokenButTheFirstOnce() {
        let windows = PerplexityWindow.plan(count: 10, contextLength: 4, stride: 2)
        let scored = windows.flatMap { Array($0.scoreStart..<$0.end) }
        XCTAssertEqual(scored, Array(1..<10))
        XCTAssertTrue(windows.allSatisfy { $0.end - $0.begin <= 4 && $0.scoreStart > $0.begin })
        XCTAssertEqual(windows[1], PerplexityWindow(begin: 2, scoreStart: 4, end: 6))
    }
}
