import Foundation
import KumoTrain

/// A progress bar on standard error for long work measured in bytes or items: redrawn in place
/// on a terminal, a line every 10% otherwise (logs, CI).
final class ProgressBar {
    private let interactive = isatty(2) != 0
    private let start = Date()
    private var lastDraw = Date.distantPast
    private var lastDecile = -1

    /// Shows `done` of `total` with a caption after the bar; redraws at most 10 times a second.
    func update(done: Int, total: Int, caption: String) {
        let fraction = total > 0 ? min(1, Double(done) / Double(total)) : 1
        let decile = Int(fraction * 10)
        let now = Date()
        if interactive ? now.timeIntervalSince(lastDraw) < 0.1 && fraction < 1 : decile == lastDecile { return }
        lastDraw = now
        lastDecile = decile
        let elapsed = now.timeIntervalSince(start)
        let eta = fraction > 0 ? elapsed * (1 - fraction) / fraction : 0
        let width = 30
        let filled = Int(fraction * Double(width))
        let bar = String(repeating: "#", count: filled) + String(repeating: ".", count: width - filled)
        let text = String(format: "[%@] %3.0f%%  %@  ETA %@", bar, fraction * 100, caption, ProgressLine.duration(eta))
        FileHandle.standardError.write(Data((interactive ? "\r\u{1B}[K" + text : text + "\n").utf8))
    }

    /// Ends the interactive line.
    func finish() {
        if interactive { FileHandle.standardError.write(Data("\n".utf8)) }
    }
}
