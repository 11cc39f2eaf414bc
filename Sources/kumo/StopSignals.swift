import Dispatch
import Foundation

/// SIGINT and SIGTERM as requests to stop: the first is recorded (`received`) and handed to
/// `onFirst`, a second one exits the process at once with status 128 + its number.
final class StopSignals: @unchecked Sendable {
    private let lock = NSLock()
    private var first: Int32?
    private var sources: [DispatchSourceSignal] = []

    /// Starts listening; `onFirst` runs on a dispatch queue when the first signal arrives.
    init(onFirst: @escaping @Sendable (Int32) -> Void) {
        for signalNumber in [SIGINT, SIGTERM] {
            #if canImport(Darwin)
                // Darwin's dispatch sees a signal through kqueue only when its default action is off.
                signal(signalNumber, SIG_IGN)
            #endif
            let source = DispatchSource.makeSignalSource(signal: signalNumber, queue: .global())
            source.setEventHandler { [weak self] in self?.receive(signalNumber, onFirst) }
            source.resume()
            sources.append(source)
        }
    }

    deinit {
        for source in sources { source.cancel() }
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
