import Foundation
import KumoCore

/// Hardware profiles by name: the presets, `local` (this machine, saved by `kumo plan --calibrate`
/// as `$KUMO_HOME/hardware/local.json`) or a JSON file's path.
public enum ProfileStore {
    /// `$KUMO_HOME/hardware` (`KUMO_HOME` defaults to `~/.kumo`).
    public static func directory(environment: [String: String] = ProcessInfo.processInfo.environment) -> URL {
        let home = environment["KUMO_HOME"].flatMap { $0.isEmpty ? nil : $0 } ?? (NSHomeDirectory() + "/.kumo")
        return URL(fileURLWithPath: home).appendingPathComponent("hardware")
    }

    /// Where this machine's calibrated profile is kept.
    public static var localURL: URL { directory().appendingPathComponent("local.json") }

    /// Writes `profile` as `local.json`.
    public static func saveLocal(_ profile: HardwareProfile) throws -> URL {
        try FileManager.default.createDirectory(at: directory(), withIntermediateDirectories: true)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        try encoder.encode(profile).write(to: localURL, options: .atomic)
        return localURL
    }

    /// The profile called `name`; throws saying what exists when there is none.
    public static func load(_ name: String) throws -> HardwareProfile {
        if let preset = HardwareProfile.presets[name] { return preset }
        let url = name == "local" ? localURL : URL(fileURLWithPath: name)
        guard let data = FileManager.default.contents(atPath: url.path) else {
            throw ProfileError(
                name == "local"
                    ? "no hardware profile for this machine at \(url.path): run `kumo plan --calibrate` first "
                        + "(under a minute), or pass --hardware \(HardwareProfile.presets.keys.sorted().joined(separator: "|"))"
                    : "--hardware \(name): not a preset (\(HardwareProfile.presets.keys.sorted().joined(separator: ", "))), "
                        + "not local, and no such file")
        }
        let decoder = JSONDecoder()
        let profile: HardwareProfile
        do {
            profile = try decoder.decode(HardwareProfile.self, from: data)
        } catch {
            throw ProfileError("\(url.path) is not a hardware profile (\(error)); run `kumo plan --calibrate` again")
        }
        if let missing = profile.missingMeasurement {
            throw ProfileError("\(url.path) has \(missing); run `kumo plan --calibrate` again")
        }
        return profile
    }
}

/// A hardware profile that cannot be found or read.
public struct ProfileError: UserFacingError {
    public let description: String
    init(_ description: String) { self.description = description }
}
