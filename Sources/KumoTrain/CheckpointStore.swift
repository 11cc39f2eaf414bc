import Foundation

/// The `checkpoints/` directory of a run: `step-NNNNNNN/` directories, the newest valid one, and
/// retention of the newest `keep` complete ones.
public struct CheckpointStore {
    /// The name of the marker written last into a finished checkpoint.
    public static let completeMarker = "COMPLETE"
    /// The `checkpoints/` directory.
    public let root: String
    /// Test hook `KUMO_DEBUG_CHECKPOINT_PAUSE=STEP:SECONDS`: the write of step STEP pauses SECONDS halfway
    /// through its shard, so that a test can kill the process inside a checkpoint write.
    public let pause: (step: Int, seconds: Double)?

    /// The store of the run directory `runDirectory`.
    public init(runDirectory: String, environment: [String: String] = ProcessInfo.processInfo.environment) {
        root = runDirectory + "/checkpoints"
        let fields = environment["KUMO_DEBUG_CHECKPOINT_PAUSE"]?.split(separator: ":") ?? []
        if fields.count == 2, let step = Int(fields[0]), let seconds = Double(fields[1]) {
            pause = (step, seconds)
        } else {
            pause = nil
        }
    }

    /// A checkpoint directory found in the store.
    public struct Entry: Equatable {
        public var step: Int
        public var path: String
        /// Whether its COMPLETE marker exists.
        public var complete: Bool
    }

    /// The directory name of step `step`.
    public static func name(step: Int) -> String { String(format: "step-%07d", step) }

    /// Every `step-N` directory, newest first.
    public func entries() -> [Entry] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: root)) ?? []
        return names.compactMap { name -> Entry? in
            guard name.hasPrefix("step-"), let step = Int(name.dropFirst(5)), step >= 0 else { return nil }
            let path = root + "/" + name
            return Entry(
                step: step, path: path,
                complete: FileManager.default.fileExists(atPath: path + "/" + Self.completeMarker))
        }.sorted { $0.step > $1.step }
    }

    /// Starts writing the checkpoint of `step` in a fresh temporary directory; with `create` false
    /// (ranks other than 0) the directory is the one rank 0 created.
    public func begin(step: Int, create: Bool = true) throws -> PendingCheckpoint {
        let name = Self.name(step: step)
        let temporary = root + "/.tmp-" + name
        let fm = FileManager.default
        if create {
            try? fm.removeItem(atPath: temporary)
            do {
                try fm.createDirectory(atPath: temporary, withIntermediateDirectories: true)
            } catch {
                throw CheckpointError(.io, temporary, "cannot create: \(error.localizedDescription)")
            }
        }
        return PendingCheckpoint(
            step: step, temporary: temporary, final: root + "/" + name,
            pauseSeconds: pause.map { $0.step == step ? $0.seconds : 0 } ?? 0)
    }

    /// Renames `entry` to `abandoned-step-N` so that neither `latest` nor retention sees it; returns the new path.
    public func abandon(_ entry: Entry) throws -> String {
        let target = root + "/abandoned-" + Self.name(step: entry.step)
        try? FileManager.default.removeItem(atPath: target)
        if rename(entry.path, target) != 0 {
            throw CheckpointError(.io, entry.path, "cannot rename to \(target): \(String(cString: strerror(errno)))")
        }
        return target
    }

    /// Removes temporary directories left by writes that a killed process never finished.
    public func removeAbandonedWrites() {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: root)) ?? []
        for name in names where name.hasPrefix(".tmp-") || name.hasPrefix(".old-") {
            try? FileManager.default.removeItem(atPath: root + "/" + name)
        }
    }

    /// Deletes complete checkpoints beyond the newest `keep` (0 keeps all); incomplete ones are left
    /// alone. Returns the deleted directories.
    @discardableResult
    public func prune(keep: Int) -> [String] {
        guard keep > 0 else { return [] }
        let old = entries().filter(\.complete).dropFirst(keep)
        for entry in old {
            // Removing the marker first means a crash mid-delete leaves an incomplete checkpoint, never a
            // complete-looking partial one.
            try? FileManager.default.removeItem(atPath: entry.path + "/" + Self.completeMarker)
            try? FileManager.default.removeItem(atPath: entry.path)
        }
        return old.map(\.path)
    }

    /// The newest complete checkpoint (at most `maxStep`) that `verify` accepts (`Trainer.verifyCheckpoint`:
    /// checked against the model), and why each newer one was skipped; nil when none verifies. A
    /// valid checkpoint of another model shape is not skipped: its `.mismatch` error is thrown.
    public func latestValid(
        maxStep: Int = .max, verify: (String) throws -> VerifiedCheckpoint
    ) throws -> (checkpoint: VerifiedCheckpoint?, skipped: [String]) {
        var skipped: [String] = []
        for entry in entries() where entry.step <= maxStep {
            do {
                return (try verify(entry.path), skipped)
            } catch let error as CheckpointError {
                guard error.kind != .mismatch else { throw error }
                skipped.append(error.description)
            } catch {
                skipped.append("\(entry.path): \(error)")
            }
        }
        return (nil, skipped)
    }
}
