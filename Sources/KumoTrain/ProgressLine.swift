import Foundation

/// A live progress line on standard error: redrawn in place on a terminal, one line per
/// update otherwise (logs, CI).
public struct ProgressLine {
    private let interactive = isatty(2) != 0
    public let total: Int

    /// Creates a progress display for `total` steps.
    public init(total: Int) { self.total = total }

    /// Shows the state after a step.
    public func update(_ m: StepMetrics) {
        let eta = Double(total - m.step) * m.elapsedSeconds / Double(m.step)
        let text = String(
            format: "step %d/%d  loss %.4f  lr %.2e  |g| %.3f  %.0f tok/s  MFU %.1f%%  ETA %@",
            m.step, total, m.loss, m.lr, m.gradNorm, m.tokensPerSecond, m.mfu * 100, Self.duration(eta))
        let out = interactive ? "\r\u{1B}[K" + text + (m.step == total ? "\n" : "") : text + "\n"
        FileHandle.standardError.write(Data(out.utf8))
    }

    /// h:mm:ss.
    public static func duration(_ seconds: Double) -> String {
        let s = Int(seconds.rounded())
        return String(format: "%d:%02d:%02d", s / 3600, s / 60 % 60, s % 60)
    }
}
