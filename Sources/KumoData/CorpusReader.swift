import Foundation
import KumoCore

/// A corpus could not be read; the message names the file (and line where known).
public struct CorpusError: UserFacingError {
    public var description: String
}

/// Why a corpus record was not kept as a document.
public enum SkipReason: String, CaseIterable, Sendable, Comparable {
    case blankLine = "blank line"
    case invalidUTF8 = "invalid UTF-8"
    case invalidJSON = "invalid JSON"
    case missingField = "missing text field"
    case emptyDocument = "empty document"
    case tooLong = "document too long"
    case truncatedFile = "truncated or corrupt file"

    public static func < (a: SkipReason, b: SkipReason) -> Bool {
        allCases.firstIndex(of: a)! < allCases.firstIndex(of: b)!
    }
}

/// One record of a corpus not kept, and where it was.
public struct CorpusProblem: Error, Sendable, CustomStringConvertible {
    public var file: String
    public var line: Int
    public var reason: SkipReason
    public var detail: String
    public var description: String { "\(file):\(line): \(reason.rawValue)" + (detail.isEmpty ? "" : " (\(detail))") }
}

/// The raw bytes of one record: a JSONL line, or a whole plain-text file.
public struct CorpusRecord: Sendable {
    public var file: String
    /// 1-based line of a JSONL record; 1 for a plain-text file.
    public var line: Int
    public var bytes: [UInt8]
    public var isJSONL: Bool
}

/// A document kept from a corpus, with where it came from.
public struct CorpusDocument: Sendable {
    public var file: String
    public var line: Int
    public var text: String
}

/// What a pass over a corpus read, kept and skipped (by reason), so nothing is dropped silently.
public struct CorpusSummary: Sendable, CustomStringConvertible {
    /// How many problems are kept with their location, for the report.
    public static let keptProblems = 10

    public var files = 0
    /// Records read: JSONL lines and plain-text files.
    public var records = 0
    public var kept = 0
    public var skipped: [SkipReason: Int] = [:]
    /// The first problems, with file and line.
    public var firstProblems: [CorpusProblem] = []
    /// Bytes read from the files (compressed bytes for gzip).
    public var fileBytes = 0

    public var skippedTotal: Int { skipped.values.reduce(0, +) }

    /// Counts a problem and keeps its location if it is among the first.
    public mutating func note(_ problem: CorpusProblem) {
        skipped[problem.reason, default: 0] += 1
        if firstProblems.count < Self.keptProblems { firstProblems.append(problem) }
    }

    /// Adds the record counts and problems of `other` (a pass's record-level counts) to these.
    public mutating func merge(_ other: CorpusSummary) {
        records += other.records
        kept += other.kept
        for problem in other.firstProblems where firstProblems.count < Self.keptProblems {
            firstProblems.append(problem)
        }
        skipped.merge(other.skipped, uniquingKeysWith: +)
    }

    public var description: String {
        var text = "\(files) files, \(records) records read, \(kept) documents kept, \(skippedTotal) skipped"
        if !skipped.isEmpty {
            text +=
                " ("
                + skipped.sorted { $0.key < $1.key }.map { "\($0.value) \($0.key.rawValue)" }
                .joined(separator: ", ") + ")"
        }
        return text
    }
}

/// Streams documents from JSONL, JSONL.gz and plain-text files (a directory means every file under
/// it, sorted) in constant memory; JSONL records carry the text in a named field, a plain-text file is
/// one document. Bad records are counted by reason and located by file and line, or stop the pass
/// in strict mode.
public struct CorpusReader: Sendable {
    /// The input files in reading order.
    public let files: [String]
    /// Field holding the text in JSONL records.
    public let textField: String
    /// Whether the first bad record stops the pass with an error.
    public let strict: Bool
    /// Longest document kept, in bytes.
    public let maxDocumentBytes: Int

    /// Resolves `paths` (files or directories) into a sorted file list.
    public init(paths: [String], textField: String = "text", strict: Bool = false, maxDocumentBytes: Int = 1 << 28)
        throws
    {
        var found: [String] = []
        let fm = FileManager.default
        for path in paths {
            var isDir: ObjCBool = false
            guard fm.fileExists(atPath: path, isDirectory: &isDir) else {
                throw CorpusError(description: "\(path): no such file or directory")
            }
            if isDir.boolValue {
                let items = (fm.enumerator(atPath: path)?.allObjects as? [String] ?? []).sorted()
                for item in items {
                    let full = (path as NSString).appendingPathComponent(item)
                    var sub: ObjCBool = false
                    if fm.fileExists(atPath: full, isDirectory: &sub), !sub.boolValue { found.append(full) }
                }
            } else {
                found.append(path)
            }
        }
        if found.isEmpty { throw CorpusError(description: "no files found in \(paths.joined(separator: ", "))") }
        files = found
        self.textField = textField
        self.strict = strict
        self.maxDocumentBytes = maxDocumentBytes
    }

    /// Total size of the input files in bytes (compressed for gzip): the denominator of progress.
    public var totalFileBytes: Int {
        files.reduce(0) { total, file in
            total + ((try? FileManager.default.attributesOfItem(atPath: file)[.size] as? Int) ?? 0)
        }
    }

    /// Whether `file` holds JSON lines (by its name) rather than plain text.
    public static func isJSONL(_ file: String) -> Bool {
        let name = file.hasSuffix(".gz") ? String(file.dropLast(3)) : file
        return name.hasSuffix(".jsonl") || name.hasSuffix(".json") || name.hasSuffix(".ndjson")
    }

    /// Reads the records in order, in batches of about `batchBytes`, calling `body` with each batch and
    /// the file bytes read so far. Decode records with `document(from:)` and count them with
    /// `account(_:in:)`; the returned summary holds the file-level counts and problems.
    public func forEachBatch(batchBytes: Int = 1 << 20, _ body: ([CorpusRecord], Int) throws -> Void) throws
        -> CorpusSummary
    {
        var summary = CorpusSummary()
        var batch: [CorpusRecord] = []
        var size = 0
        func emit(_ record: CorpusRecord) throws {
            size += record.bytes.count
            batch.append(record)
            if size >= batchBytes {
                try body(batch, summary.fileBytes)
                batch.removeAll(keepingCapacity: true)
                size = 0
            }
        }
        for file in files {
            let reader: LineReader
            do {
                reader = try LineReader(path: file)
            } catch let error as FileReadError {
                throw CorpusError(description: error.description)
            }
            summary.files += 1
            let jsonl = Self.isJSONL(file)
            var text: [UInt8] = []
            var tooLong = false
            let base = summary.fileBytes
            do {
                while let line = try reader.nextLine() {
                    summary.fileBytes = base + reader.fileBytesRead
                    if jsonl {
                        try emit(CorpusRecord(file: file, line: reader.lineNumber, bytes: Array(line), isJSONL: true))
                    } else if !tooLong {
                        if reader.lineNumber > 1 { text.append(10) }
                        text.append(contentsOf: line)
                        tooLong = text.count > maxDocumentBytes
                        if tooLong { text = [] }
                    }
                }
            } catch let error as FileReadError {
                summary.fileBytes = base + reader.fileBytesRead
                let problem = CorpusProblem(
                    file: file, line: reader.lineNumber + 1, reason: .truncatedFile, detail: error.description)
                if strict { throw stopping(at: problem) }
                summary.note(problem)
                continue
            }
            if jsonl { continue }
            if tooLong {
                summary.records += 1
                let problem = CorpusProblem(
                    file: file, line: 1, reason: .tooLong, detail: "over \(maxDocumentBytes) bytes")
                if strict { throw stopping(at: problem) }
                summary.note(problem)
            } else {
                try emit(CorpusRecord(file: file, line: 1, bytes: text, isJSONL: false))
            }
        }
        if !batch.isEmpty { try body(batch, summary.fileBytes) }
        return summary
    }

    /// The document a record holds, or why it is skipped. Safe to call from several threads.
    public func document(from record: CorpusRecord) -> Result<CorpusDocument, CorpusProblem> {
        func problem(_ reason: SkipReason, _ detail: String = "") -> Result<CorpusDocument, CorpusProblem> {
            .failure(CorpusProblem(file: record.file, line: record.line, reason: reason, detail: detail))
        }
        if record.isJSONL && record.bytes.allSatisfy({ $0 == 32 || $0 == 9 || $0 == 13 }) { return problem(.blankLine) }
        guard let raw = String(validating: record.bytes, as: UTF8.self) else { return problem(.invalidUTF8) }
        var text = raw
        if record.isJSONL {
            switch JSONLine.field(textField, in: record.bytes) {
            case .text(let value): text = value
            case .missing: return problem(.missingField, "no field '\(textField)'")
            case .notString: return problem(.missingField, "field '\(textField)' is not a string")
            case .notObject: return problem(.invalidJSON, "not a JSON object")
            case .invalid: return problem(.invalidJSON)
            }
        }
        if text.utf8.count > maxDocumentBytes { return problem(.tooLong, "over \(maxDocumentBytes) bytes") }
        if text.allSatisfy(\.isWhitespace) { return problem(.emptyDocument) }
        return .success(CorpusDocument(file: record.file, line: record.line, text: text))
    }

    /// Counts a decoded record (a document, or what was made of it) in `summary`; the value if kept.
    /// In strict mode a skipped record throws an error naming its file and line.
    public func account<Value>(_ result: Result<Value, CorpusProblem>, in summary: inout CorpusSummary) throws
        -> Value?
    {
        summary.records += 1
        switch result {
        case .success(let value):
            summary.kept += 1
            return value
        case .failure(let problem):
            if strict { throw stopping(at: problem) }
            summary.note(problem)
            return nil
        }
    }

    private func stopping(at problem: CorpusProblem) -> CorpusError {
        CorpusError(description: "\(problem); strict mode stops at the first bad record")
    }

    /// The records `parse` makes of the JSON lines of `paths` (JSONL files, possibly gzipped, or
    /// directories of them), in order; a line it refuses is left out and counted by reason.
    /// `what` says what the lines hold, for a path that is not JSONL.
    public static func readRecords<Record>(
        paths: [String], of what: String, _ parse: (CorpusRecord) -> Result<Record, CorpusProblem>
    ) throws -> (records: [Record], summary: CorpusSummary) {
        let reader = try CorpusReader(paths: paths)
        if let file = reader.files.first(where: { !isJSONL($0) }) {
            throw CorpusError(description: "\(file): \(what); name the file .jsonl")
        }
        var records: [Record] = []
        var counts = CorpusSummary()
        var summary = try reader.forEachBatch { batch, _ in
            for line in batch {
                if let record = try reader.account(parse(line), in: &counts) { records.append(record) }
            }
        }
        summary.merge(counts)
        return (records, summary)
    }

    /// The JSON object a JSONL line holds, or why it holds none (blank, invalid UTF-8, invalid
    /// JSON, another JSON value).
    public static func jsonObject(_ line: CorpusRecord) -> Result<[String: Any], CorpusProblem> {
        func problem(_ reason: SkipReason, _ detail: String = "") -> Result<[String: Any], CorpusProblem> {
            .failure(CorpusProblem(file: line.file, line: line.line, reason: reason, detail: detail))
        }
        if line.bytes.allSatisfy({ $0 == 32 || $0 == 9 || $0 == 13 }) { return problem(.blankLine) }
        guard String(validating: line.bytes, as: UTF8.self) != nil else { return problem(.invalidUTF8) }
        guard let json = try? JSONSerialization.jsonObject(with: Data(line.bytes), options: [.fragmentsAllowed]) else {
            return problem(.invalidJSON)
        }
        guard let object = json as? [String: Any] else { return problem(.invalidJSON, "not a JSON object") }
        return .success(object)
    }

    /// Calls `body` with each kept document in order, on the calling thread; returns what was read.
    public func forEachDocument(_ body: (CorpusDocument) throws -> Void) throws -> CorpusSummary {
        var counts = CorpusSummary()
        var summary = try forEachBatch { batch, _ in
            for record in batch {
                if let document = try account(document(from: record), in: &counts) { try body(document) }
            }
        }
        summary.merge(counts)
        return summary
    }
}
