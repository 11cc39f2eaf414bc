import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// The write end of the self-pipe the signal handler writes to (-1 when no `StopSignals` listens).
/// Only `write(2)` touches it inside the handler, which is async-signal-safe.
nonisolated(unsafe) private var stopSignalPipe: Int32 = -1

private func stopSignalHandler(_ signalNumber: Int32) {
    var byte = UInt8(truncatingIfNeeded: signalNumber)
    _ = write(stopSignalPipe, &byte, 1)
}

/// SIGINT and SIGTERM as requests to stop: the first is recorded (`received`) and handed to
/// `onFirst`, a second one exits the process at once with status 128 + its number.
///
/// The handlers are installed with `sigaction` before `init` returns, so a signal that arrives the
/// moment after is never lost to the default action (a dispatch signal source registers later, on
/// its queue: a signal in that window killed the process). The handler only writes the signal's
/// number to a pipe; a thread reads it and runs `onFirst` outside signal context.
final class StopSignals: @unchecked Sendable {
    private let lock = NSLock()
    private var first: Int32?
    private let writeEnd: Int32
    private var previous: [(Int32, sigaction)] = []

    /// Starts listening; `onFirst` runs on the listening thread when the first signal arrives.
    init(onFirst: @escaping @Sendable (Int32) -> Void) {
        var fds: [Int32] = [-1, -1]
        precondition(pipe(&fds) == 0, "pipe: \(String(cString: strerror(errno)))")
        writeEnd = fds[1]
        precondition(stopSignalPipe == -1, "only one StopSignals listens at a time")
        stopSignalPipe = fds[1]
        for signalNumber in [SIGINT, SIGTERM] {
            var action = sigaction()
            action.__sigaction_handler.sa_handler = stopSignalHandler
            sigemptyset(&action.sa_mask)
            action.sa_flags = SA_RESTART
            var old = sigaction()
            sigaction(signalNumber, &action, &old)
            previous.append((signalNumber, old))
        }
        let readEnd = fds[0]
        let listener = Thread { [weak self] in
            var byte: UInt8 = 0
            while read(readEnd, &byte, 1) == 1 {
                self?.receive(Int32(byte), onFirst)
            }
            close(readEnd)
        }
        listener.name = "kumo-stop-signals"
        listener.start()
    }

    /// Restores the previous handlers; closing the write end ends the listening thread.
    deinit {
        for (signalNumber, old) in previous {
            var old = old
            sigaction(signalNumber, &old, nil)
        }
        stopSignalPipe = -1
        close(writeEnd)
    }

    /// The first signal received, nil before any.
    var received: Int32? { lock.withLock { first } }

    private func receive(_ signalNumber: Int32, _ onFirst: (Int32) -> Void) {
        let isFirst = lock.withLock {
            defer { first = first ?? signalNumber }
            return first == nil
        }
        guard isFirst else {
            FileHandle.standardError.write(Data("kumo: second stop signal: exiting at once\n".utf8))
            _exit(128 + signalNumber)
        }
        onFirst(signalNumber)
    }
}
