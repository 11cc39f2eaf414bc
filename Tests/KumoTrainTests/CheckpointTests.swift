import Foundation
import KumoCore
import KumoModel
import XCTest

@testable import KumoTrain

final class CheckpointTests: XCTestCase {
    /// Trains `steps` steps with the spike guard on (so its history is saved) and checkpoints them.
    private func savedCheckpoint(steps: Int = 3) throws -> (trainer: Trainer, path: String, run: String) {
        let c = try CheckpointFixture.config([
            "train.steps=10", "train.spike.enabled=true", "train.spike.min_history=2",
        ])
        let trainer = try CheckpointFixture.trainer(c)
        for _ in 0..<steps { _ = try trainer.trainStep() }
        let run = try CheckpointFixture.directory(for: self)
        let write = try trainer.saveCheckpoint(to: CheckpointStore(runDirectory: run))
        return (trainer, write.path, run)
    }

    private func open(_ path: String, for trainer: Trainer) throws -> VerifiedCheckpoint {
        try trainer.verifyCheckpoint(path)
    }

    func testRoundTripRestoresParametersMomentsAndStateAndContinuesBitIdentically() throws {
        let (a, path, _) = try savedCheckpoint()
        XCTAssertTrue(path.hasSuffix("checkpoints/step-0000003"), path)
        XCTAssertTrue(FileManager.default.fileExists(atPath: path + "/COMPLETE"))
        let b = try CheckpointFixture.trainer(a.config)
        try b.restore(from: try open(path, for: b))
        XCTAssertEqual(b.model.params.array, a.model.params.array)
        XCTAssertEqual(b.optimizer.m.array, a.optimizer.m.array)
        XCTAssertEqual(b.optimizer.v.array, a.optimizer.v.array)
        XCTAssertEqual(b.trainState, a.trainState)
        XCTAssertEqual(a.trainState.lossHistory.count, 3)
        let next = try (0..<3).map { _ in (try a.trainStep().loss, try b.trainStep().loss) }
        XCTAssertEqual(next.map(\.0), next.map(\.1), "losses after the restore differ")
    }

    func testManifestRecordsLayoutShapesSizesAndConfig() throws {
        let (trainer, path, _) = try savedCheckpoint()
        let m = try open(path, for: trainer).manifest
        XCTAssertEqual(m.layout, .single)
        XCTAssertEqual(m.step, 3)
        XCTAssertEqual(m.tensors.first?.name, "model.embed_tokens.weight")
        XCTAssertEqual(m.tensors.first?.shape, [97, 32])
        XCTAssertEqual(m.flatCount, trainer.model.layout.count)
        let size = try FileManager.default.attributesOfItem(atPath: path + "/rank-00000.bin")[.size] as? Int
        XCTAssertEqual(m.files.first?.bytes, size)
        XCTAssertTrue(m.config.contains("hidden_size = 32"), m.config)
    }

    /// Each corruption must be refused with the given kind, naming the given file.
    func testEveryMalformedCheckpointGivesATypedErrorNamingTheFile() throws {
        let (trainer, valid, run) = try savedCheckpoint()
        let shard = try [UInt8](Data(contentsOf: URL(fileURLWithPath: valid + "/rank-00000.bin")))
        let cases: [(String, CheckpointError.Kind, String, (String) throws -> Void)] = [
            ("truncated shard", .wrongSize, "rank-00000.bin", { try Data(shard.prefix(5000)).write(to: self.url($0)) }),
            (
                "altered byte", .checksum, "rank-00000.bin",
                { try Data(self.flip(shard, at: 4000)).write(to: self.url($0)) }
            ),
            ("missing shard", .missingFile, "rank-00000.bin", { try FileManager.default.removeItem(at: self.url($0)) }),
            ("no COMPLETE", .incomplete, "COMPLETE", { try FileManager.default.removeItem(atPath: $0 + "/COMPLETE") }),
            (
                "altered manifest", .checksum, "manifest.json",
                {
                    let m = try [UInt8](Data(contentsOf: URL(fileURLWithPath: $0 + "/manifest.json")))
                    try Data(self.flip(m, at: 100)).write(to: URL(fileURLWithPath: $0 + "/manifest.json"))
                }
            ),
            (
                "wrong size", .wrongSize, "rank-00000.bin",
                { try CheckpointFixture.rewriteManifest($0) { $0.files[0].bytes += 4 } }
            ),
            (
                "huge size", .wrongSize, "rank-00000.bin",
                { try CheckpointFixture.rewriteManifest($0) { $0.files[0].bytes = .max } }
            ),
            (
                // Not a valid checkpoint of another shape (its sections do not tile its count): damaged.
                "huge flat count", .malformed, "manifest.json",
                { try CheckpointFixture.rewriteManifest($0) { $0.flatCount = .max } }
            ),
            (
                "huge tensor shape", .mismatch, "manifest.json",
                { try CheckpointFixture.rewriteManifest($0) { $0.tensors[1].shape = [Int.max, Int.max] } }
            ),
            (
                "overlapping strided runs", .malformed, "manifest.json",
                {
                    try CheckpointFixture.rewriteManifest($0) {
                        $0.files[0].sections[0].runs = 2
                        $0.files[0].sections[0].stride = 1
                    }
                }
            ),
            (
                "huge run count", .malformed, "manifest.json",
                {
                    try CheckpointFixture.rewriteManifest($0) {
                        $0.files[0].sections[0].runs = .max
                        $0.files[0].sections[0].stride = $0.files[0].sections[0].count
                    }
                }
            ),
            (
                "negative run count", .malformed, "manifest.json",
                { try CheckpointFixture.rewriteManifest($0) { $0.files[0].sections[0].runs = .min } }
            ),
            (
                "world size not data × tensor × pipeline", .malformed, "manifest.json",
                { try CheckpointFixture.rewriteManifest($0) { $0.layout.worldSize = 2 } }
            ),
            (
                "a range in no file", .malformed, "manifest.json",
                { try CheckpointFixture.rewriteManifest($0) { $0.files[0].sections[1].count -= 1 } }
            ),
            (
                "a file of a rank outside the world", .malformed, "manifest.json",
                {
                    try CheckpointFixture.rewriteManifest($0) {
                        $0.files[0].rank = 1
                        $0.files[0].name = "rank-00001.bin"
                    }
                }
            ),
            (
                "path in file name", .malformed, "manifest.json",
                { try CheckpointFixture.rewriteManifest($0) { $0.files[0].name = "../../etc/passwd" } }
            ),
            (
                "negative step", .malformed, "manifest.json",
                { try CheckpointFixture.rewriteManifest($0) { $0.step = -1 } }
            ),
            (
                "not JSON", .malformed, "manifest.json",
                { try CheckpointFixture.writeManifestText($0, Array("{[".utf8)) }
            ),
            (
                "huge header length", .malformed, "rank-00000.bin",
                { try CheckpointFixture.rewriteShard($0, self.patch(shard, at: 12, [0xFF, 0xFF, 0xFF, 0x7F])) }
            ),
            (
                "bad magic", .malformed, "rank-00000.bin",
                { try CheckpointFixture.rewriteShard($0, self.patch(shard, at: 0, [0x41])) }
            ),
            (
                "huge section count", .malformed, "rank-00000.bin",
                {
                    try CheckpointFixture.rewriteShard(
                        $0, try self.replaceInHeader(shard, "\"count\":", "\"count\":9999999999"))
                }
            ),
            (
                "section past the end", .malformed, "rank-00000.bin",
                {
                    try CheckpointFixture.rewriteShard(
                        $0, try self.replaceInHeader(shard, "\"offset\":", "\"offset\":9999999"))
                }
            ),
            (
                "state from another step", .malformed, "rank-00000.bin",
                { try CheckpointFixture.rewriteShard($0, try self.replaceInHeader(shard, "\"step\":3", "\"step\":4")) }
            ),
            (
                "shard shorter than its preamble", .malformed, "rank-00000.bin",
                { try CheckpointFixture.rewriteShard($0, [1, 2, 3]) }
            ),
        ]
        for (i, (name, kind, file, corrupt)) in cases.enumerated() {
            let dir = run + "/case-\(i)"
            try CheckpointFixture.copy(valid, dir)
            try corrupt(dir)
            XCTAssertThrowsError(try open(dir, for: trainer), name) { error in
                guard let e = error as? CheckpointError else { return XCTFail("\(name): untyped error \(error)") }
                XCTAssertEqual(e.kind, kind, "\(name): \(e)")
                XCTAssertTrue(e.file.hasSuffix(file), "\(name): \(e) should name \(file)")
            }
        }
    }

    /// Runs that continue each other become one range; equal rows a fixed distance apart (a
    /// column-sliced tensor) one strided section; anything else starts a new section.
    func testMergingRunsMakesRangesAndStridedSections() {
        let base = UnsafeMutablePointer<Float>.allocate(capacity: 64)
        defer { base.deallocate() }
        let runs = [
            ShardRun(local: 0, whole: 100, count: 4), ShardRun(local: 4, whole: 104, count: 2),  // one range
            ShardRun(local: 6, whole: 200, count: 3), ShardRun(local: 9, whole: 210, count: 3),
            ShardRun(local: 12, whole: 220, count: 3),  // three rows 10 apart
            ShardRun(local: 15, whole: 231, count: 3),  // another distance
            ShardRun(local: 20, whole: 300, count: 1),  // not after the previous run locally
        ]
        let contents = ShardContent.merging(runs, of: "params", at: base)
        XCTAssertEqual(
            contents.map(\.section),
            [
                ManifestSection(name: "params", flatStart: 100, count: 6),
                ManifestSection(name: "params", flatStart: 200, count: 3, runs: 3, stride: 10),
                ManifestSection(name: "params", flatStart: 231, count: 3),
                ManifestSection(name: "params", flatStart: 300, count: 1),
            ])
        XCTAssertEqual(contents.map { $0.pointer - UnsafePointer(base) }, [0, 6, 15, 20])
    }

    func testAnotherModelShapeIsRefusedNamingTheTensor() throws {
        let (_, path, _) = try savedCheckpoint()
        let other = try CheckpointFixture.trainer(try CheckpointFixture.config(["model.intermediate_size=64"]))
        XCTAssertThrowsError(try open(path, for: other)) { error in
            XCTAssertEqual((error as? CheckpointError)?.kind, .mismatch, "\(error)")
            XCTAssertTrue("\(error)".contains("mlp") || "\(error)".contains("parameters"), "\(error)")
        }
    }

    /// Rewrites `trainer`'s state as two files of interleaved strided sections, as tensor-parallel
    /// ranks store the rows of column-sliced tensors: file r holds runs r, r + 2, ... of 64 floats
    /// of each buffer, file 1 also the tail.
    private func stridedCheckpoint(of trainer: Trainer, in run: String) throws -> String {
        let n = trainer.model.layout.count
        let c = 64
        let rows = n / (2 * c)
        let pending = try CheckpointStore(runDirectory: run + "/strided").begin(step: trainer.step)
        let buffers = [
            ("params", trainer.model.params), ("adam.m", trainer.optimizer.m), ("adam.v", trainer.optimizer.v),
        ]
        var files: [ManifestFile] = []
        for rank in 0..<2 {
            var packed: [FloatBuffer] = []
            var contents: [ShardContent] = []
            for (name, buffer) in buffers {
                let rowsOf = FloatBuffer(count: rows * c)
                for i in 0..<rows {
                    (rowsOf.pointer + i * c).update(from: buffer.pointer + (2 * i + rank) * c, count: c)
                }
                packed.append(rowsOf)
                contents.append(
                    ShardContent(
                        section: ManifestSection(name: name, flatStart: rank * c, count: c, runs: rows, stride: 2 * c),
                        pointer: UnsafePointer(rowsOf.pointer)))
                if rank == 1 {
                    contents.append(
                        ShardContent(
                            name: name, flatStart: 2 * c * rows, pointer: buffer.pointer + 2 * c * rows,
                            count: n - 2 * c * rows))
                }
            }
            files.append(try pending.writeShard(rank: rank, state: trainer.trainState, sections: contents))
            withExtendedLifetime(packed) {}
        }
        try pending.commit(
            CheckpointManifest(
                format: CheckpointManifest.formatName, version: CheckpointManifest.currentVersion, step: trainer.step,
                layout: ParallelLayout(
                    worldSize: 2, dataParallel: 1, tensorParallel: 2, pipelineParallel: 1, zeroStage: 0,
                    shardGroupSize: 0),
                flatCount: n, tensors: trainer.manifestTensors, files: files, config: trainer.config.toml()))
        return pending.final
    }

    func testInterleavedStridedSectionsOfTwoFilesRestoreExactly() throws {
        let (a, _, run) = try savedCheckpoint()
        let path = try stridedCheckpoint(of: a, in: run)
        let m = try open(path, for: a).manifest
        XCTAssertEqual(m.files.map(\.sections.count), [3, 6])
        XCTAssertGreaterThan(m.files[0].sections[0].runs, 10)
        let b = try CheckpointFixture.trainer(a.config)
        try b.restore(from: try open(path, for: b))
        XCTAssertEqual(b.model.params.array, a.model.params.array)
        XCTAssertEqual(b.optimizer.m.array, a.optimizer.m.array)
        XCTAssertEqual(b.optimizer.v.array, a.optimizer.v.array)
    }

    /// A seeded mutation fuzzer: random byte flips, truncations, extensions and JSON field edits, with
    /// and without fixed-up checksums. Every outcome must be a verified checkpoint or a CheckpointError.
    func testCorruptedCheckpointsNeverCrashTheReader() throws {
        let (trainer, valid, run) = try savedCheckpoint()
        try fuzz(valid, for: trainer, in: run, seed: 20_261_129)
    }

    /// The same fuzzer seeded from a checkpoint of strided sections (their `runs` and `stride` mutated too).
    func testCorruptedStridedCheckpointsNeverCrashTheReader() throws {
        let (trainer, _, run) = try savedCheckpoint()
        try fuzz(try stridedCheckpoint(of: trainer, in: run), for: trainer, in: run, seed: 20_261_130)
    }

    private func fuzz(_ valid: String, for trainer: Trainer, in run: String, seed: UInt64) throws {
        let shard = try [UInt8](Data(contentsOf: url(valid)))
        let manifest = try [UInt8](Data(contentsOf: URL(fileURLWithPath: valid + "/manifest.json")))
        let headerEnd = 16 + (Int(shard[12]) | Int(shard[13]) << 8)
        let numbers = [
            "-1", "0", "9223372036854775807", "-9223372036854775808", "1e308", "4294967296", "\"x\"", "null",
        ]
        var rng = FuzzRandom(seed: seed)
        var outcomes: [String: Int] = [:]
        let dir = run + "/fuzz"
        for _ in 0..<300 {
            try CheckpointFixture.copy(valid, dir)
            switch rng.next() % 6 {
            case 0:  // flipped bytes in the shard's header, checksums fixed
                var s = shard
                for _ in 0..<(1 + rng.next() % 4) {
                    s[Int(rng.next() % UInt64(headerEnd))] ^= UInt8(1 + rng.next() % 255)
                }
                try CheckpointFixture.rewriteShard(dir, s)
            case 1:  // the shard cut or extended, checksums fixed
                let n = Int(rng.next() % UInt64(shard.count + 64))
                try CheckpointFixture.rewriteShard(
                    dir, n < shard.count ? Array(shard.prefix(n)) : shard + [UInt8](repeating: 7, count: n % 64))
            case 2:  // a flipped byte anywhere in the shard, or the shard cut, checksums left
                var s = shard
                s[Int(rng.next() % UInt64(s.count))] ^= UInt8(1 + rng.next() % 255)
                try Data(rng.next() % 2 == 0 ? s : Array(shard.prefix(Int(rng.next() % UInt64(shard.count))))).write(
                    to: url(dir))
            case 3:  // flipped bytes in the manifest, COMPLETE fixed
                var m = manifest
                for _ in 0..<(1 + rng.next() % 4) {
                    m[Int(rng.next() % UInt64(m.count))] ^= UInt8(1 + rng.next() % 255)
                }
                try CheckpointFixture.writeManifestText(dir, m)
            case 4:  // a number in the manifest replaced by an extreme value, COMPLETE fixed
                try CheckpointFixture.writeManifestText(dir, replaceNumber(manifest, numbers, &rng))
            default:  // a number in the shard header replaced by an extreme value, checksums fixed
                let edited = replaceNumber(Array(shard[16..<headerEnd]), numbers, &rng)
                try CheckpointFixture.rewriteShard(dir, withHeader(shard, edited))
            }
            do {
                let checkpoint = try open(dir, for: trainer)
                let t = try CheckpointFixture.trainer(trainer.config)
                try t.restore(from: checkpoint)
                outcomes["loaded", default: 0] += 1
            } catch let error as CheckpointError {
                outcomes[error.kind.rawValue, default: 0] += 1
            }
        }
        XCTAssertEqual(outcomes.values.reduce(0, +), 300, "\(outcomes)")
        for kind in ["checksum", "wrongSize", "malformed"] {
            XCTAssertGreaterThan(outcomes[kind] ?? 0, 0, "\(outcomes)")
        }
    }

    func testKeepDeletesOnlyOlderCompleteCheckpoints() throws {
        let c = try CheckpointFixture.config(["train.steps=10"])
        let trainer = try CheckpointFixture.trainer(c)
        let run = try CheckpointFixture.directory(for: self)
        let store = CheckpointStore(runDirectory: run)
        for _ in 0..<4 {
            _ = try trainer.trainStep()
            _ = try trainer.saveCheckpoint(to: store)
        }
        // step 5 renamed but never marked complete, step 6 still in its temporary directory
        try FileManager.default.createDirectory(atPath: store.root + "/step-0000005", withIntermediateDirectories: true)
        _ = try store.begin(step: 6)
        let deleted = store.prune(keep: 2)
        XCTAssertEqual(deleted.map { ($0 as NSString).lastPathComponent }, ["step-0000002", "step-0000001"])
        XCTAssertEqual(store.entries().map(\.step), [5, 4, 3])
        XCTAssertEqual(store.entries().map(\.complete), [false, true, true])
        XCTAssertTrue(FileManager.default.fileExists(atPath: store.root + "/.tmp-step-0000006"))
        store.removeAbandonedWrites()
        XCTAssertFalse(FileManager.default.fileExists(atPath: store.root + "/.tmp-step-0000006"))
    }

    func testLatestSkipsIncompleteAndCorruptCheckpointsSayingWhy() throws {
        let c = try CheckpointFixture.config(["train.steps=10"])
        let trainer = try CheckpointFixture.trainer(c)
        let run = try CheckpointFixture.directory(for: self)
        let store = CheckpointStore(runDirectory: run)
        var paths: [String] = []
        for _ in 0..<4 {
            _ = try trainer.trainStep()
            paths.append(try trainer.saveCheckpoint(to: store).path)
        }
        try FileManager.default.removeItem(atPath: paths[3] + "/COMPLETE")
        let shard = try [UInt8](Data(contentsOf: url(paths[2])))
        try Data(flip(shard, at: shard.count - 1)).write(to: url(paths[2]))
        let found = try store.latestValid { try trainer.verifyCheckpoint($0) }
        XCTAssertEqual(found.checkpoint?.path, paths[1])
        XCTAssertEqual(found.skipped.count, 2, "\(found.skipped)")
        XCTAssertTrue(found.skipped[0].contains("step-0000004/COMPLETE"), found.skipped[0])
        XCTAssertTrue(
            found.skipped[1].contains("step-0000003/rank-00000.bin") && found.skipped[1].contains("CRC"),
            found.skipped[1])
    }

    // MARK: helpers

    private func url(_ dir: String) -> URL { URL(fileURLWithPath: dir + "/rank-00000.bin") }

    private func flip(_ bytes: [UInt8], at i: Int) -> [UInt8] {
        var b = bytes
        b[i] ^= 0x5A
        return b
    }

    private func patch(_ bytes: [UInt8], at i: Int, _ with: [UInt8]) -> [UInt8] {
        var b = bytes
        b.replaceSubrange(i..<(i + with.count), with: with)
        return b
    }

    /// The shard with the first `find` of its JSON header (and the number after it) replaced by `with`.
    private func replaceInHeader(_ shard: [UInt8], _ find: String, _ with: String) throws -> [UInt8] {
        let length = Int(shard[12]) | Int(shard[13]) << 8
        var header = String(decoding: shard[16..<(16 + length)], as: UTF8.self)
        let range = try XCTUnwrap(header.range(of: find))
        let end = header[range.upperBound...].firstIndex { !($0.isNumber || $0 == "-") } ?? header.endIndex
        header.replaceSubrange(range.lowerBound..<end, with: with)
        return withHeader(shard, Array(header.utf8))
    }
}

/// A seeded SplitMix64 generator (the fuzzer's, independent of the code under test).
struct FuzzRandom: RandomNumberGenerator {
    private var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// `shard` with its JSON header replaced by `header` (the length field updated, later bytes shifted).
private func withHeader(_ shard: [UInt8], _ header: [UInt8]) -> [UInt8] {
    let length = Int(shard[12]) | Int(shard[13]) << 8 | Int(shard[14]) << 16
    let field = withUnsafeBytes(of: UInt32(header.count).littleEndian, Array.init)
    return Array(shard[0..<12]) + field + header + Array(shard[(16 + length)...])
}

/// `json` with one randomly chosen number replaced by one of `values`.
private func replaceNumber(_ json: [UInt8], _ values: [String], _ rng: inout FuzzRandom) -> [UInt8] {
    var starts: [Int] = []
    for i in json.indices
    where (json[i] >= 0x30 && json[i] <= 0x39) && (i == 0 || !(json[i - 1] >= 0x30 && json[i - 1] <= 0x39)) {
        starts.append(i)
    }
    guard !starts.isEmpty else { return json }
    let start = starts[Int(rng.next() % UInt64(starts.count))]
    var end = start
    while end < json.count, (json[end] >= 0x30 && json[end] <= 0x39) || json[end] == 0x2E || json[end] == 0x65 {
        end += 1
    }
    let value = values[Int(rng.next() % UInt64(values.count))]
    return Array(json[..<start]) + Array(value.utf8) + Array(json[end...])
}
