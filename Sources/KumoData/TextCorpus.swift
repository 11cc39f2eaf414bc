import Foundation

/// A corpus file could not be used; the message names the file (and line where known).
public struct CorpusError: Error, CustomStringConvertible {
    public var description: String
}

/// Reads documents from JSONL files (one JSON object per line, text in a named field) or
/// plain-text files (each file one document); a directory means every file under it, sorted.
public struct TextCorpus {
    /// Counts of what was read, so nothing is dropped silently.
    public struct Summary: Sendable, CustomStringConvertible {
        public var files = 0
        public var documents = 0
        public var skippedEmpty = 0
        public var skippedMissingField = 0
        public var skippedInvalidJSON = 0
        public var description: String {
            "\(files) files, \(documents) documents kept, skipped: \(skippedEmpty) empty, "
                + "\(skippedMissingField) without the text field, \(skippedInvalidJSON) invalid JSON lines"
        }
    }

    /// The input files in reading order.
    public let files: [String]
    /// Field holding the text in JSONL records.
    public let textField: String

    /// Resolves `paths` (files or directories) into a sorted file list.
    public init(paths: [String], textField: String = "text") throws {
        var found: [String] = []
        let fm = FileManager.default
        for path in paths {
            var isDir: ObjCBool = false
            guard fm.fileExists(atPath: path, isDirectory: &isDir) else {
                throw CorpusError(description: "data.path: \(path) does not exist")
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
        if found.isEmpty { throw CorpusError(description: "data.path: no files found in \(paths)") }
        files = found
        self.textField = textField
    }

    /// Calls `body` with each non-empty document's text, in order; returns what was read.
    public func forEachDocument(_ body: (String) throws -> Void) throws -> Summary {
        var summary = Summary()
        for file in files {
            guard let data = FileManager.default.contents(atPath: file) else {
                throw CorpusError(description: "\(file): cannot be read")
            }
            summary.files += 1
            let text = String(decoding: data, as: UTF8.self)
            if file.hasSuffix(".jsonl") || file.hasSuffix(".json") {
                for line in text.split(separator: "\n", omittingEmptySubsequences: true) {
                    guard let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any]
                    else {
                        summary.skippedInvalidJSON += 1
                        continue
                    }
                    guard let doc = object[textField] as? String else {
                        summary.skippedMissingField += 1
                        continue
                    }
                    if doc.isEmpty {
                        summary.skippedEmpty += 1
                        continue
                    }
                    summary.documents += 1
                    try body(doc)
                }
            } else if text.isEmpty {
                summary.skippedEmpty += 1
            } else {
                summary.documents += 1
                try body(text)
            }
        }
        return summary
    }
}
