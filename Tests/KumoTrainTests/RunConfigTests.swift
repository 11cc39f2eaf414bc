import KumoData
import KumoModel
import KumoParallel
import KumoPlan
import XCTest

@testable import KumoTrain

final class RunConfigTests: XCTestCase {
    private func load(_ toml: String, _ overrides: [String] = []) throws -> RunConfig {
        let path = NSTemporaryDirectory() + "kumo-config-\(UUID().uuidString).toml"
        try toml.write(toFile: path, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: path) }
        return try RunConfig.load(path: path, overrides: overrides)
    }

    private func message(_ toml: String, _ overrides: [String] = []) -> String {
        do {
            _ = try load(toml, overrides)
            return "no error"
        } catch {
            return "\(error)"
        }
    }

    func testPresetAndOverridesResolveEveryKey() throws {
        let c = try load(
            "[model]\npreset = \"tiny\"\n[data]\nsynthetic = true\n",
            ["model.num_key_value_heads=1", "train.steps=7", "optim.lr=1e-3"])
        XCTAssertEqual(c.model.numKeyValueHeads, 1)
        XCTAssertEqual(c.model.hiddenSize, 256)
        XCTAssertEqual(c.steps, 7)
        XCTAssertEqual(c.optim.minLR, 1e-4, accuracy: 1e-12)
        XCTAssertEqual(c.optim.eps, 1e-8)
        XCTAssertEqual(c.globalBatchSize, c.microBatchSize)
        XCTAssertEqual(c.optim.decaySteps, 7)
        // The resolved TOML reads back to the same values.
        let again = try load(c.toml())
        XCTAssertEqual(again.values, c.values)
    }

    func testTheDefaultDecayOfAResolvedConfigFollowsANewStepCount() throws {
        let resolved = try load("[model]\npreset = \"tiny\"\n[data]\nsynthetic = true\n", ["train.steps=12"]).toml()
        XCTAssertEqual(try load(resolved, ["train.steps=20"]).schedule.decaySteps, 20)
        XCTAssertEqual(try load(resolved, ["train.steps=20", "optim.decay_steps=15"]).schedule.decaySteps, 15)
        let explicit = try load(resolved, ["optim.decay_steps=8"]).toml()
        XCTAssertEqual(try load(explicit, ["train.steps=20"]).schedule.decaySteps, 8)
    }

    func testTheReferenceListsEveryKeyOnceWithItsDefault() {
        let reference = ConfigSchema.reference()
        let blocks = reference.components(separatedBy: "\n\n")
        XCTAssertEqual(blocks.map { String($0.prefix { $0 != "\n" }) }, ConfigSchema.sections.map { "[\($0)]" })
        for (section, block) in zip(ConfigSchema.sections, blocks) {
            for key in ConfigSchema.keys where key.name.hasPrefix(section + ".") {
                let line = "\n  \(key.name.dropFirst(section.count + 1)) (\(key.kind.rawValue))"
                XCTAssertEqual(block.components(separatedBy: line).count, 2, key.name)
            }
        }
        XCTAssertTrue(reference.contains("  steps (int) = 100: optimizer steps\n"), reference)
        XCTAssertTrue(reference.contains("  global_batch_size (int): sequences per step\n"), reference)
        XCTAssertTrue(reference.contains("  recompute (string) = \"none\": "), reference)
        XCTAssertEqual(Set(ConfigSchema.keys.map(\.name)).count, ConfigSchema.keys.count)
    }

    func testUnknownKeyIsRejectedNamingValidKeys() {
        let m = message("[train]\nstep = 3\n")
        XCTAssertTrue(m.contains("'train.step'"), m)
        XCTAssertTrue(m.contains("steps"), m)
        XCTAssertTrue(m.contains("micro_batch_size"), m)
        let s = message("", ["optim.epsilon=1e-8"])
        XCTAssertTrue(s.contains("optim.epsilon") && s.contains("eps"), s)
        let section = message("[trian]\nsteps = 3\n")
        XCTAssertTrue(section.contains("trian.steps") && section.contains("train"), section)
    }

    func testBadValuesAreRejectedNamingTheKey() {
        let base = "[model]\npreset = \"tiny\"\n[data]\nsynthetic = true\n"
        XCTAssertTrue(message(base, ["train.steps=\"ten\""]).contains("train.steps"))
        XCTAssertTrue(message(base, ["train.steps=0"]).contains("train.steps"))
        XCTAssertTrue(message(base, ["model.num_key_value_heads=3"]).contains("num_key_value_heads"))
        XCTAssertTrue(message(base, ["model.preset=huge"]).contains("150m"))
        XCTAssertTrue(
            message(base, ["train.micro_batch_size=3", "train.global_batch_size=8"]).contains("multiple"))
        XCTAssertTrue(message(base, ["train.seq_length=4096"]).contains("max_position_embeddings"))
        XCTAssertTrue(message(base, ["parallel.tensor=3"]).contains("parallel.tensor = 3"))
        XCTAssertTrue(message(base, ["parallel.pipeline=5"]).contains("parallel.pipeline"))
        XCTAssertTrue(message(base, ["parallel.sequence=true"]).contains("parallel.tensor > 1"))
        XCTAssertTrue(message(base, ["parallel.zero_stage=4"]).contains("parallel.zero_stage"))
        XCTAssertTrue(message(base, ["parallel.quantized_allgather=\"fp8\""]).contains("quantized_allgather"))
        XCTAssertTrue(
            message(base, ["parallel.zero_stage=2", "parallel.quantized_allgather=\"int8\""]).contains("zero_stage = 3")
        )
        XCTAssertTrue(message(base, ["parallel.shard_group_size=2"]).contains("zero_stage = 3"))
        XCTAssertTrue(message("[model]\nhidden_size = 64\n[data]\nsynthetic = true\n").contains("model.vocab_size"))
        XCTAssertTrue(message("[model]\npreset = \"tiny\"\n").contains("data.path"))
        XCTAssertTrue(message("[model\n").contains(":1:"), message("[model\n"))
    }

    func testLLMJPPresetsHaveThePublishedShapes() throws {
        let expected: [(String, Int, Int, Int)] = [
            ("150m", 12, 2048, 512), ("440m", 16, 3584, 1024), ("980m", 20, 5376, 1536), ("1.8b", 24, 7168, 2048),
            ("3.7b", 28, 8192, 3072), ("7.2b", 32, 11008, 4096), ("13b", 40, 13824, 5120), ("172b", 96, 38464, 12288),
        ]
        for (name, layers, ffn, hidden) in expected {
            let c = try XCTUnwrap(ModelPreset.config(name))
            XCTAssertEqual(
                [c.numHiddenLayers, c.intermediateSize, c.hiddenSize, c.vocabSize], [layers, ffn, hidden, 99_584])
            XCTAssertNoThrow(try c.validate())
        }
        let big = try XCTUnwrap(ModelPreset.config("172b"))
        XCTAssertEqual([big.numAttentionHeads, big.numKeyValueHeads], [96, 16])
    }

    /// A rank of a tensor × pipeline run holds a stage's slice: 172B at tp=8 × pp=16 needs about
    /// 1/128 of the whole model's state per rank (more on the stages with the embedding or head),
    /// and the activations of its stage's slice.
    func testMemoryModelCountsTheLargestRanksShard() throws {
        let toml = "[model]\npreset = \"172b\"\n[data]\nsynthetic = true\n[train]\nseq_length = 4096\n"
        let whole = try load(toml).memory(ranks: 1).largest
        let split = try load(toml + "[parallel]\ntensor = 8\npipeline = 16\n").memory(ranks: 128).largest
        let wholeState = 16 * ParameterLayout(try XCTUnwrap(ModelPreset.config("172b"))).count
        func state(_ m: RankMemory) -> Int { m.weights + m.gradients + m.optimizer }
        XCTAssertEqual(state(whole), wholeState)
        XCTAssertGreaterThan(state(split), wholeState / 128)
        XCTAssertLessThan(state(split), wholeState / 128 * 2)
        XCTAssertLessThan(split.activations, whole.activations / 8)
    }

    func testRunTooLargeForTheMachineIsRefusedBeforeAllocating() throws {
        let c = try load("[model]\npreset = \"172b\"\n[data]\nsynthetic = true\n[train]\nseq_length = 4096\n")
        let memory = c.memory(ranks: 1)
        XCTAssertGreaterThan(memory.peakBytesPerRank, 16 * 170_000_000_000)
        XCTAssertThrowsError(try memory.check()) { error in
            XCTAssertTrue("\(error)".contains("smaller model.preset"), "\(error)")
        }
        XCTAssertThrowsError(try Trainer(config: c, stream: SyntheticTokenStream(vocabSize: 10, seed: 1)))
    }

    /// max_position_embeddings = 2e9 asked for a 256 GB RoPE table the estimate did not count.
    func testMemoryModelCountsTheRoPETableAndRefusesAHugeOne() throws {
        let toml = "[model]\npreset = \"tiny\"\n[data]\nsynthetic = true\n"
        let huge = try load(toml, ["model.max_position_embeddings=2000000000"])
        XCTAssertEqual(huge.memory(ranks: 1).largest.rope, 4 * 2_000_000_000 * huge.model.headDim)
        XCTAssertThrowsError(try Trainer(config: huge, stream: SyntheticTokenStream(vocabSize: 10, seed: 1))) {
            XCTAssertTrue("\($0)".contains("RoPE table 476.84 GiB"), "\($0)")
        }
        XCTAssertEqual(try load(toml).memory(ranks: 1).largest.rope, 4 * 1024 * 64)
    }

    func testNonFiniteFloatsAreRefusedNamingTheKey() {
        let toml = "[model]\npreset = \"tiny\"\n[data]\nsynthetic = true\n"
        for value in ["inf", "-inf", "nan"] {
            let m = message(toml, ["optim.lr=\(value)"])
            XCTAssertTrue(m.contains("optim.lr") && m.contains("finite"), m)
        }
        let inFile = message(toml + "[optim]\nweight_decay = inf\n")
        XCTAssertTrue(inFile.contains("optim.weight_decay = inf: expected a finite number"), inFile)
    }

    func testLRScheduleWarmsUpLinearlyThenDecaysByCosineToTheMinimum() {
        let s = LRSchedule(maxLR: 1e-3, minLR: 1e-4, warmupSteps: 4, decaySteps: 14)
        XCTAssertEqual(s.lr(at: 0), 2.5e-4, accuracy: 1e-15)
        XCTAssertEqual(s.lr(at: 3), 1e-3, accuracy: 1e-15)
        XCTAssertEqual(s.lr(at: 4), 1e-3, accuracy: 1e-15)
        XCTAssertEqual(s.lr(at: 9), 5.5e-4, accuracy: 1e-12)
        XCTAssertEqual(s.lr(at: 14), 1e-4, accuracy: 1e-15)
        XCTAssertEqual(s.lr(at: 100), 1e-4, accuracy: 1e-15)
    }
}

/// `parallel.pipeline` and `parallel.schedule` settings that cannot work are refused at load.
final class PipelineConfigTests: XCTestCase {
    private func message(_ overrides: [String]) -> String {
        let base = ["model.preset=tiny", "data.synthetic=true", "parallel.pipeline=2"]
        do {
            _ = try RunConfig.load(path: nil, overrides: base + overrides)
            return "no error"
        } catch {
            return "\(error)"
        }
    }

    func testPipelineWithDefaultsLoadsAndScheduleDefaultsToOneForwardOneBackward() throws {
        XCTAssertEqual(message([]), "no error")
        let c = try RunConfig.load(path: nil, overrides: ["model.preset=tiny", "data.synthetic=true"])
        XCTAssertEqual(c.string("parallel.schedule"), "1f1b")
    }

    func testZeRO2And3WithPipelineAreRefusedSayingWhatWorks() {
        for stage in [2, 3] {
            let m = message(["parallel.zero_stage=\(stage)"])
            XCTAssertTrue(m.contains("parallel.zero_stage = \(stage) with parallel.pipeline = 2 is refused"), m)
            XCTAssertTrue(m.contains("use parallel.zero_stage = 0 or 1"), m)
        }
        XCTAssertEqual(message(["parallel.zero_stage=1"]), "no error")
    }

    func testMoreStagesThanBlocksIsRefused() {
        let m = message(["parallel.pipeline=5"])
        XCTAssertTrue(m.contains("the model has 4 blocks"), m)
        XCTAssertTrue(m.contains("use parallel.pipeline between 1 and 4"), m)
    }

    func testTiedEmbeddingsWithPipelineAreRefusedCheckpointsAndEvaluationAccepted() {
        let tied = message(["model.tie_word_embeddings=true"])
        XCTAssertTrue(tied.contains("untie it or use parallel.pipeline = 1"), tied)
        XCTAssertEqual(message(["eval.interval=5", "eval.tasks=[\"jcommonsenseqa\"]"]), "no error")
        XCTAssertEqual(message(["checkpoint.every=5"]), "no error", "stage checkpoints are written")
    }

    func testUnknownScheduleIsRefusedNamingTheValidOnes() {
        let m = message(["parallel.schedule=interleaved"])
        XCTAssertTrue(m.contains("parallel.schedule = \"interleaved\": valid are \"gpipe\" and \"1f1b\""), m)
    }
}
