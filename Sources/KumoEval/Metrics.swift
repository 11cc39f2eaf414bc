import Foundation
import KumoCore

/// Scores over per-example results, and their standard errors.
public enum Metrics {
    /// Index of the largest value; the first one on ties (numpy's `argmax`).
    public static func argmax(_ values: [Double]) -> Int {
        precondition(!values.isEmpty, "argmax of an empty list")
        var best = 0
        for i in values.indices where values[i] > values[best] { best = i }
        return best
    }

    /// The choice that lm-evaluation-harness's `acc_norm` picks: the largest log-likelihood divided by the
    /// choice's length in characters (Unicode code points, Python's `len`), as in `ConfigurableTask.process_results`
    /// of lm_eval/api/task.py: `completion_len = np.array([float(len(i)) for i in choices])`,
    /// `pred_norm = np.argmax(lls / completion_len)`.
    public static func normalizedChoice(logLikelihoods: [Double], choices: [String]) -> Int {
        precondition(logLikelihoods.count == choices.count, "one log-likelihood per choice")
        return argmax(zip(logLikelihoods, choices).map { $0 / Double($1.unicodeScalars.count) })
    }

    /// Fraction of `predictions` equal to `labels`.
    public static func accuracy(_ predictions: [Int], _ labels: [Int]) -> Double {
        precondition(predictions.count == labels.count && !labels.isEmpty, "accuracy needs equal, non-empty lists")
        return Double(zip(predictions, labels).filter { $0 == $1 }.count) / Double(labels.count)
    }

    /// Unweighted mean over the classes `0..<classes` of each class's F1 (a class never predicted nor
    /// present scores 0, as scikit-learn's `f1_score(average="macro")` with `zero_division=0` over all labels).
    public static func macroF1(_ predictions: [Int], _ labels: [Int], classes: Int) -> Double {
        precondition(predictions.count == labels.count && classes > 0, "macroF1 needs equal lists")
        var total = 0.0
        for c in 0..<classes {
            let tp = zip(predictions, labels).filter { $0 == c && $1 == c }.count
            let fp = zip(predictions, labels).filter { $0 == c && $1 != c }.count
            let fn = zip(predictions, labels).filter { $0 != c && $1 == c }.count
            total += tp == 0 ? 0 : 2 * Double(tp) / Double(2 * tp + fp + fn)
        }
        return total / Double(classes)
    }

    /// Pearson's correlation coefficient; 0 when either list is constant.
    public static func pearson(_ x: [Double], _ y: [Double]) -> Double {
        precondition(x.count == y.count && x.count > 1, "pearson needs two equal lists of 2+ values")
        let mx = x.reduce(0, +) / Double(x.count)
        let my = y.reduce(0, +) / Double(y.count)
        var sxy = 0.0
        var sxx = 0.0
        var syy = 0.0
        for (a, b) in zip(x, y) {
            sxy += (a - mx) * (b - my)
            sxx += (a - mx) * (a - mx)
            syy += (b - my) * (b - my)
        }
        return sxx == 0 || syy == 0 ? 0 : sxy / (sxx * syy).squareRoot()
    }

    /// Ranks from 1, tied values sharing the average of their ranks (scipy's `rankdata(method="average")`).
    public static func ranks(_ x: [Double]) -> [Double] {
        let order = x.indices.sorted { x[$0] < x[$1] }
        var result = [Double](repeating: 0, count: x.count)
        var start = 0
        while start < order.count {
            var end = start
            while end + 1 < order.count && x[order[end + 1]] == x[order[start]] { end += 1 }
            let rank = Double(start + end) / 2 + 1
            for k in start...end { result[order[k]] = rank }
            start = end + 1
        }
        return result
    }

    /// Spearman's rank correlation: Pearson's over the ranks, ties averaged.
    public static func spearman(_ x: [Double], _ y: [Double]) -> Double { pearson(ranks(x), ranks(y)) }

    /// Standard error of a mean: sample standard deviation (n - 1) over √n, lm-evaluation-harness's
    /// `mean_stderr`; for 0/1 scores this is the binomial standard error √(p(1-p)/(n-1)).
    public static func meanStderr(_ values: [Double]) -> Double {
        guard values.count > 1 else { return 0 }
        let n = Double(values.count)
        let m = values.reduce(0, +) / n
        let variance = values.reduce(0) { $0 + ($1 - m) * ($1 - m) } / (n - 1)
        return (variance / n).squareRoot()
    }

    /// Bootstrap standard error of `metric` over `count` examples: the standard deviation of the metric
    /// over `resamples` resamplings with replacement, drawn from a fixed seed so it is reproducible.
    public static func bootstrapStderr(
        count: Int, resamples: Int = 1000, seed: UInt64 = 1234, metric: ([Int]) -> Double
    ) -> Double {
        guard count > 1 else { return 0 }
        var rng = SeededRandom(seed: seed)
        var values: [Double] = []
        values.reserveCapacity(resamples)
        for _ in 0..<resamples {
            values.append(metric((0..<count).map { _ in Int(rng.next() % UInt64(count)) }))
        }
        let m = values.reduce(0, +) / Double(resamples)
        return (values.reduce(0) { $0 + ($1 - m) * ($1 - m) } / Double(resamples - 1)).squareRoot()
    }
}
