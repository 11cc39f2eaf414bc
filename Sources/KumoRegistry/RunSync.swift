import Foundation

/// Copies what a run directory holds into the registry: the metrics.jsonl lines it does not have
/// yet (complete lines only; a file that shrank, as a resumed run truncates it, is stored anew) and
/// the checkpoints it has not recorded. The file stays the source of truth.
public final class RunSync {
    public let registry: RunRegistry
    public let number: Int
    public let directory: String
    /// Lines of metrics.jsonl the registry holds, and the byte offset where the next one starts.
    private var storedLines = 0
    private var offset: UInt64 = 0
    private var storedCheckpoints: Set<Int> = []

    /// Starts from nothing: the first `sync` stores the whole file, replacing what the registry held.
    public init(registry: RunRegistry, run number: Int, directory: String) {
        self.registry = registry
        self.number = number
        self.directory = directory
    }

    /// Stores new metrics lines and checkpoints (`(step, path)` of the complete ones); returns the number
    /// of lines stored.
    @discardableResult
    public func sync(checkpoints: [(step: Int, path: String)] = []) throws -> Int {
        let path = directory + "/metrics.jsonl"
        let size = ((try? FileManager.default.attributesOfItem(atPath: path))?[.size] as? NSNumber)?.uint64Value ?? 0
        if size < offset {
            storedLines = 0
            offset = 0
        }
        var added = 0
        if size > offset, let handle = FileHandle(forReadingAtPath: path) {
            defer { try? handle.close() }
            try handle.seek(toOffset: offset)
            let bytes = [UInt8](handle.readDataToEndOfFile())
            if let end = bytes.lastIndex(of: UInt8(ascii: "\n")) {
                let lines = bytes[...end].split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false)
                    .dropLast().map { String(decoding: $0, as: UTF8.self) }
                try registry.appendMetrics(run: number, from: storedLines, lines: lines)
                storedLines += lines.count
                offset += UInt64(end + 1)
                added = lines.count
            }
        } else if storedLines == 0 {
            try registry.appendMetrics(run: number, from: 0, lines: [])
        }
        for checkpoint in checkpoints where !storedCheckpoints.contains(checkpoint.step) {
            try registry.addCheckpoint(run: number, step: checkpoint.step, path: checkpoint.path)
            storedCheckpoints.insert(checkpoint.step)
        }
        return added
    }
}
