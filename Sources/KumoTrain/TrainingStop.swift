import Foundation

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Training stopped between two steps because the process was asked to (SIGINT, SIGTERM).
public struct TrainingStopped: Error, CustomStringConvertible {
    /// The signal that asked for the stop.
    public var signal: Int32
    /// The last step completed.
    public var step: Int
    /// The checkpoint holding `step`, nil when none does.
    public var checkpoint: String?
    /// What happened and how to continue.
    public var description: String
    /// The exit status of a process ended by `signal`: 128 + its number (130 for SIGINT, 143 for SIGTERM).
    public var exitStatus: Int32 { 128 + signal }

    /// "SIGINT", "SIGTERM", or "signal N".
    public static func name(of signal: Int32) -> String {
        switch signal {
        case SIGINT: return "SIGINT"
        case SIGTERM: return "SIGTERM"
        default: return "signal \(signal)"
        }
    }
}

extension TrainingSession {
    /// The signal any rank was asked to stop by (the largest number over all ranks), so that every
    /// rank stops at the same step; nil when none was.
    func agreedStopSignal() -> Int32? {
        var signal = [Double(stopRequested() ?? 0)]
        if trainer.world.size > 1 { trainer.world.allReduce(&signal, op: .max) }
        return signal[0] > 0 ? Int32(signal[0]) : nil
    }

    /// Ends the run after the current step: writes its checkpoint when `write` (every rank its
    /// shard), says what was kept in train.log and to the user, and returns the error to throw.
    func stop(_ signal: Int32, checkpoint write: Bool) throws -> TrainingStopped {
        let step = trainer.step
        let runDirectory = (store.root as NSString).deletingLastPathComponent
        let resume = "continue with `kumo train --resume latest --run-dir \(runDirectory)`"
        var checkpoint: String?
        let outcome: String
        if write {
            checkpoint = try self.checkpoint()
            outcome = "wrote checkpoint \(checkpoint!); \(resume)"
        } else if trainer.config.checkpoint.every == 0 {
            outcome = "no checkpoint written (checkpoint.every = 0): these steps are lost"
        } else if let saved = store.entries().first(where: { $0.step == step && $0.complete }) {
            checkpoint = saved.path
            outcome = "its checkpoint \(saved.path) is already written; \(resume)"
        } else {
            outcome = "no step was taken since the start: nothing to save"
        }
        let stopped = TrainingStopped(
            signal: signal, step: step, checkpoint: checkpoint,
            description: "stopped by \(TrainingStopped.name(of: signal)) after step \(step) of "
                + "\(trainer.config.steps): \(outcome)")
        tell(stopped.description)
        return stopped
    }
}
