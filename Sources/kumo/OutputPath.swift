import Foundation

/// Why the file `path` cannot be written (created, or replaced) now, nil when it can: checked before
/// long work, so that a bad output path fails at once rather than after the work.
func unwritableReason(_ path: String) -> String? {
    let fm = FileManager.default
    let parent = (path as NSString).deletingLastPathComponent
    let directory = parent.isEmpty ? "." : parent
    var isDirectory: ObjCBool = false
    let exists = fm.fileExists(atPath: path, isDirectory: &isDirectory)
    if exists && isDirectory.boolValue { return "\(path) is a directory" }
    guard fm.fileExists(atPath: directory, isDirectory: &isDirectory), isDirectory.boolValue else {
        return "the directory \(directory) does not exist; create it first"
    }
    if access(directory, W_OK | X_OK) != 0 {
        return "the directory \(directory) is not writable (\(String(cString: strerror(errno))))"
    }
    if exists && access(path, W_OK) != 0 { return "\(path) is not writable (\(String(cString: strerror(errno))))" }
    return nil
}
