import Foundation
import KumoInterop
import XCTest

/// The safetensors writer and the validating reader.
final class SafeTensorsTests: XCTestCase {
    func testWriteThenReadRoundTripsValuesShapesAndMetadata() throws {
        let path = NSTemporaryDirectory() + "st-\(UUID().uuidString).safetensors"
        defer { try? FileManager.default.removeItem(atPath: path) }
        let a: [Float] = [1, -2.5, 3e-8, .infinity, 0, 7]
        let b: [Float] = [0.125]
        try a.withUnsafeBufferPointer { pa in
            try b.withUnsafeBufferPointer { pb in
                try SafeTensorsWriter.write(
                    [.init(name: "a", shape: [2, 3], values: pa), .init(name: "b", shape: [1], values: pb)],
                    metadata: ["k": "v"], to: path)
            }
        }
        let f = try SafeTensorsFile(path: path)
        XCTAssertEqual(try f.floats("a"), a)
        XCTAssertEqual(try f.floats("b"), b)
        XCTAssertEqual(f.entries["a"]?.shape, [2, 3])
        XCTAssertEqual(f.metadata, ["k": "v"])
    }

    func testF16AndBF16AreWidenedExactly() throws {
        // F16: 1.0 = 0x3C00, -2.0 = 0xC000, smallest subnormal 0x0001 = 2^-24; BF16: 1.0 = 0x3F80, -0.5 = 0xBF00.
        let data = SafeTensorsBytes.file([
            ("h", "F16", [3], [0x00, 0x3C, 0x00, 0xC0, 0x01, 0x00]), ("b", "BF16", [2], [0x80, 0x3F, 0x00, 0xBF]),
        ])
        let f = try SafeTensorsFile(data: data, path: "mem")
        XCTAssertEqual(try f.floats("h"), [1, -2, 0x1p-24])
        XCTAssertEqual(try f.floats("b"), [1, -0.5])
    }

    func testOverlappingRangesAreRejected() {
        let header =
            #"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}"#
        let data = SafeTensorsBytes.raw(header: header, payload: 8)
        XCTAssertThrowsError(try SafeTensorsFile(data: data, path: "mem")) {
            XCTAssertTrue("\($0)".contains("overlap"), "\($0)")
        }
    }

    func testShapeThatDisagreesWithTheByteRangeIsRejected() {
        let header = #"{"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}"#
        XCTAssertThrowsError(try SafeTensorsFile(data: SafeTensorsBytes.raw(header: header, payload: 8), path: "m")) {
            XCTAssertTrue("\($0)".contains("does not match"), "\($0)")
        }
    }

    func testHugeShapeIsRejectedWithoutOverflow() {
        let header = #"{"a":{"dtype":"F32","shape":[4294967296,4294967296,16],"data_offsets":[0,8]}}"#
        XCTAssertThrowsError(try SafeTensorsFile(data: SafeTensorsBytes.raw(header: header, payload: 8), path: "m"))
    }

    func testHeaderLengthBeyondTheFileIsRejected() {
        var data = SafeTensorsBytes.raw(header: "{}", payload: 0)
        data[3] = 0x7F
        XCTAssertThrowsError(try SafeTensorsFile(data: data, path: "m")) {
            XCTAssertTrue("\($0)".contains("header length"), "\($0)")
        }
    }
}

/// Builds safetensors bytes for tests.
enum SafeTensorsBytes {
    /// A header text followed by `payload` zero bytes.
    static func raw(header: String, payload: Int) -> Data {
        var length = UInt64(header.utf8.count).littleEndian
        var data = Data(bytes: &length, count: 8)
        data.append(Data(header.utf8))
        data.append(Data(count: payload))
        return data
    }

    /// A well-formed file of (name, dtype, shape, bytes) tensors laid out in order.
    static func file(_ tensors: [(String, String, [Int], [UInt8])]) -> Data {
        var entries: [String] = []
        var payload = Data()
        for (name, dtype, shape, bytes) in tensors {
            entries.append(
                "\"\(name)\":{\"dtype\":\"\(dtype)\",\"shape\":\(shape),\"data_offsets\":[\(payload.count),\(payload.count + bytes.count)]}"
            )
            payload.append(contentsOf: bytes)
        }
        var data = raw(header: "{" + entries.joined(separator: ",") + "}", payload: 0)
        data.append(payload)
        return data
    }
}
