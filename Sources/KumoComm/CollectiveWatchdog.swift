import CMPI
import Foundation

/// Aborts the whole MPI job when one rank waits in a collective longer than a limit: a stalled
/// or dead peer must end the job with a message naming the group, the operation and the step,
/// never leave it hanging. One watchdog thread serves every group of a process.
final class CollectiveWatchdog: @unchecked Sendable {
    private let lock = NSLock()
    private let timeoutSeconds: Double
    private let worldRank: Int
    private var step = 0
    private var active: (group: String, op: String, since: Double)?

    /// Starts the watchdog thread for rank `worldRank` with a limit of `timeoutSeconds`.
    init(timeoutSeconds: Double, worldRank: Int) {
        self.timeoutSeconds = timeoutSeconds
        self.worldRank = worldRank
        let thread = Thread { [unowned self] in self.watch() }
        thread.name = "kumo-comm-watchdog"
        thread.start()
    }

    func noteStep(_ step: Int) {
        lock.withLock { self.step = step }
    }

    /// Runs `body` (a blocking MPI call) under the time limit; returns the seconds it took.
    func guarded(group: String, op: String, _ body: () -> Void) -> Double {
        let t0 = CommClock.now()
        lock.withLock { active = (group, op, t0) }
        body()
        lock.withLock { active = nil }
        return CommClock.now() - t0
    }

    private func watch() {
        let period = min(1.0, max(0.05, timeoutSeconds / 20))
        while true {
            Thread.sleep(forTimeInterval: period)
            let expired: (group: String, op: String, waited: Double, step: Int)? = lock.withLock {
                guard let a = active else { return nil }
                let waited = CommClock.now() - a.since
                return waited > timeoutSeconds ? (a.group, a.op, waited, step) : nil
            }
            guard let e = expired else { continue }
            let message =
                "kumo: rank \(worldRank): collective timeout: group \(e.group), op \(e.op), step \(e.step): "
                + String(format: "waited %.1f s (parallel.comm_timeout_s = %g); ", e.waited, timeoutSeconds)
                + "another rank is stalled or dead; aborting the job\n"
            FileHandle.standardError.write(Data(message.utf8))
            MPI_Abort(kumo_mpi_comm_world(), 3)
        }
    }
}
