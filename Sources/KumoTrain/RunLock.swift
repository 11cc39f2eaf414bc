import Foundation

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// What `kumo train` may find in its run directory.
public enum RunDirectoryUse: Sendable {
    /// A new run: the directory must be empty or absent.
    case new
    /// `--resume`: the directory holds the run being continued.
    case resume
    /// `--overwrite`: a previous run's files are deleted first.
    case overwrite
}

/// One process's exclusive hold on a run directory: an `flock` on `DIR/train.lock`, kept until the
/// process ends (the kernel drops it then, even after SIGKILL), so that a second writer is refused.
/// Under mpirun only rank 0 writes the run directory and holds the lock.
public final class RunLock {
    /// The lock file's name inside the run directory.
    public static let fileName = "train.lock"
    /// The files and directories `kumo train` writes into a run directory.
    static let runFiles: Set<String> = [
        fileName, "config.toml", "metrics.jsonl", "train.log", "data_sources.json", "checkpoints", "model.safetensors",
    ]
    /// The run directory.
    public let path: String
    private let fd: Int32

    private init(path: String, fd: Int32) {
        self.path = path
        self.fd = fd
    }

    deinit { close(fd) }

    /// Claims `path` for a run (nil: a new `runs/run-<UTC second>` directory, with `-2`, `-3`, ...
    /// appended when that name is taken); throws a `ConfigError` saying what to do when another
    /// process holds it, or when a new run would mix with the files of an old one.
    public static func claim(_ path: String?, use: RunDirectoryUse, now: Date = Date()) throws -> RunLock {
        let dir = try path.map(createIfMissing) ?? createUnique(RunDirectory.defaultPath(now: now))
        let lockPath = dir + "/" + fileName
        let fd = open(lockPath, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard fd >= 0 else {
            throw ConfigError("cannot create \(lockPath): \(errnoText()); check that the run directory is writable")
        }
        guard flock(fd, LOCK_EX | LOCK_NB) == 0 else {
            let holder = (try? String(contentsOfFile: lockPath, encoding: .utf8))?.trimmingCharacters(
                in: .whitespacesAndNewlines)
            close(fd)
            throw ConfigError(
                "\(dir) is in use by another kumo train (\(holder.map { "pid \($0)" } ?? "pid unknown")): one run owns "
                    + "its directory; wait for that run to end or choose another --run-dir")
        }
        let lock = RunLock(path: dir, fd: fd)
        let pid = Array("\(getpid())\n".utf8)
        _ = ftruncate(fd, 0)
        _ = pwrite(fd, pid, pid.count, 0)
        try lock.checkContents(use)
        return lock
    }

    /// Refuses a new run in a directory holding files, and clears it for `--overwrite` (only what
    /// `kumo train` writes: a directory holding anything else is refused rather than emptied).
    private func checkContents(_ use: RunDirectoryUse) throws {
        let fm = FileManager.default
        let contents = ((try? fm.contentsOfDirectory(atPath: path)) ?? []).filter { $0 != Self.fileName }.sorted()
        guard !contents.isEmpty, use != .resume else { return }
        let listed = contents.prefix(8).joined(separator: ", ") + (contents.count > 8 ? ", ..." : "")
        guard use == .overwrite else {
            throw ConfigError(
                "\(path) is not empty (\(listed)): pass --resume latest to continue the run it holds, --overwrite "
                    + "to delete it and start again, or choose another --run-dir")
        }
        let foreign = contents.filter { !Self.runFiles.contains($0) }
        guard foreign.isEmpty else {
            throw ConfigError(
                "--overwrite deletes only a run directory's files, but \(path) also holds "
                    + "\(foreign.prefix(8).joined(separator: ", ")): move them away or choose another --run-dir")
        }
        for name in contents {
            do {
                try fm.removeItem(atPath: path + "/" + name)
            } catch {
                throw ConfigError("--overwrite: cannot delete \(path)/\(name): \(error.localizedDescription)")
            }
        }
    }

    /// Creates `path` (and its parents) unless it exists; refuses a path that is not a directory.
    private static func createIfMissing(_ path: String) throws -> String {
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) {
            guard isDirectory.boolValue else { throw ConfigError("--run-dir \(path) is a file, not a directory") }
            return path
        }
        do {
            try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        } catch {
            throw ConfigError("cannot create run directory \(path): \(error.localizedDescription)")
        }
        return path
    }

    /// Creates `base`, or `base-2`, `base-3`, ... the first that does not exist yet: `mkdir` fails
    /// on an existing name, so two runs started in the same second get different directories.
    private static func createUnique(_ base: String) throws -> String {
        let parent = (base as NSString).deletingLastPathComponent
        _ = try createIfMissing(parent.isEmpty ? "." : parent)
        var n = 1
        while true {
            let candidate = n == 1 ? base : "\(base)-\(n)"
            if mkdir(candidate, 0o755) == 0 { return candidate }
            guard errno == EEXIST else {
                throw ConfigError("cannot create run directory \(candidate): \(errnoText())")
            }
            n += 1
        }
    }
}

private func errnoText() -> String { String(cString: strerror(errno)) }
