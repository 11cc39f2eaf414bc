import KumoData
import XCTest

@testable import KumoTrain

/// `[data] sources`: prepared datasets with weights or epochs, checked when the config loads.
final class DataSourceConfigTests: XCTestCase {
    private let model = "[model]\npreset = \"tiny\"\n"

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

    func testArrayOfTablesAndInlineTablesGiveTheSameSources() throws {
        let tables = try load(
            model + """
                [[data.sources]]
                prefix = "prepared/ja"
                weight = 0.6
                [[data.sources]]
                prefix = "prepared/en"
                weight = 0.4
                """)
        let inline = try load(
            model + "[data]\nsources = [{prefix = \"prepared/ja\", weight = 0.6}, "
                + "{prefix = \"prepared/en\", weight = 0.4}]\n")
        let expected = [
            DataSourceSpec(prefix: "prepared/ja", weight: 0.6, epochs: nil),
            DataSourceSpec(prefix: "prepared/en", weight: 0.4, epochs: nil),
        ]
        XCTAssertEqual(tables.dataSources, expected)
        XCTAssertEqual(inline.dataSources, expected)
        // --set takes the same inline form, and the resolved TOML reads back to the same sources.
        let set = try load(model, ["data.sources=[{prefix = \"a\", epochs = 2}, {prefix = \"b\"}]"])
        XCTAssertEqual(
            set.dataSources,
            [
                DataSourceSpec(prefix: "a", weight: nil, epochs: 2),
                DataSourceSpec(prefix: "b", weight: nil, epochs: nil),
            ])
        XCTAssertEqual(try load(tables.toml()).dataSources, expected)
    }

    func testBadSourcesAreRejectedNamingTheFieldAndWhatIsValid() {
        let cases: [(String, String)] = [
            (
                "[{prefix = \"a\", wieght = 1}]",
                "data.sources[0]: unknown field 'wieght'; valid fields: prefix, weight, epochs"
            ),
            ("[{weight = 1}]", "data.sources[0]: needs prefix"),
            ("[{prefix = \"a\", weight = -1}]", "data.sources[0].weight = -1: must be a positive number"),
            ("[{prefix = \"a\", weight = 1}, {prefix = \"b\"}]", "1 of 2 sources give a weight"),
            ("[{prefix = \"a\", weight = 1, epochs = 2}]", "gives both weight and epochs"),
        ]
        for (value, expected) in cases {
            let text = message(model + "[data]\nsources = \(value)\n")
            XCTAssertTrue(text.contains(expected), "\(value): \(text)")
        }
    }

    func testExactlyOneKindOfDataMustBeGiven() {
        XCTAssertTrue(message(model).contains("[data] needs"), message(model))
        let both = message(model + "[data]\nsynthetic = true\nsources = [{prefix = \"a\"}]\n")
        XCTAssertTrue(both.contains("[data] sets data.synthetic and data.sources"), both)
    }
}

/// LLM-jp's release levels and what they allow.
final class ReleaseLevelTests: XCTestCase {
    func testLevelsAllowWhatLLMjpDefines() throws {
        XCTAssertEqual(ReleaseLevel.allCases.filter(\.mayTrain), [.l1, .l2, .l3])
        XCTAssertEqual(ReleaseLevel.allCases.filter(\.mayShow), [.l1, .l2])
        XCTAssertEqual(ReleaseLevel.allCases.filter(\.mayDistribute), [.l1])
        XCTAssertEqual(ReleaseLevel.allCases.filter(\.mayEvaluate), [.l1, .l2, .l3, .lx])
        XCTAssertEqual(try ReleaseLevel(parsing: "lx"), .lx)
        XCTAssertThrowsError(try ReleaseLevel(parsing: "L4")) { error in
            XCTAssertTrue("\(error)".contains("L3 (train only)"), "\(error)")
        }
    }
}
