/// Turns generated token ids into text as they come: it never emits part of a UTF-8 character
/// (byte-level tokens often split one), nor text that could still become a stop string; it reports
/// when a stop string appears, and the text before it is the output.
public struct TextStream {
    private let decodeBytes: ([Int32]) -> [UInt8]
    private let stopStrings: [[UInt8]]
    private var ids: [Int32] = []
    private var emitted = 0
    /// Whether a stop string has appeared; the text emitted so far ends before it.
    public private(set) var stopped = false

    /// `decodeBytes` gives the UTF-8 bytes of a list of ids (the whole generation so far).
    public init(stopStrings: [String], decodeBytes: @escaping ([Int32]) -> [UInt8]) {
        self.decodeBytes = decodeBytes
        self.stopStrings = stopStrings.filter { !$0.isEmpty }.map { Array($0.utf8) }
    }

    /// Adds a token and returns the text that became final (possibly empty).
    public mutating func append(_ id: Int32) -> String {
        ids.append(id)
        let bytes = decodeBytes(ids)
        var end = bytes.count
        for stop in stopStrings {
            if let at = Self.find(stop, in: bytes, from: max(0, emitted - stop.count + 1)) {
                end = min(end, at)
                stopped = true
            }
        }
        if !stopped {
            end = completeUTF8Prefix(bytes, upTo: end)
            for stop in stopStrings { end = min(end, bytes.count - Self.partialSuffix(stop, of: bytes)) }
        }
        return take(bytes, upTo: end)
    }

    /// Whatever is left at the end of generation (trailing bytes of an unfinished character are
    /// decoded as U+FFFD).
    public mutating func finish() -> String {
        guard !stopped else { return "" }
        return take(decodeBytes(ids), upTo: decodeBytes(ids).count)
    }

    private mutating func take(_ bytes: [UInt8], upTo end: Int) -> String {
        guard end > emitted else { return "" }
        let text = String(decoding: bytes[emitted..<end], as: UTF8.self)
        emitted = end
        return text
    }

    /// The largest n ≤ end such that bytes[..<n] does not end inside a UTF-8 character.
    private func completeUTF8Prefix(_ bytes: [UInt8], upTo end: Int) -> Int {
        var i = end
        var back = 0
        while i > 0 && back < 4 && bytes[i - 1] & 0xC0 == 0x80 {
            i -= 1
            back += 1
        }
        guard i > 0 else { return end }
        let lead = bytes[i - 1]
        let length = lead < 0x80 ? 1 : lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : lead >= 0xC0 ? 2 : 1
        return back + 1 >= length ? end : i - 1
    }

    /// Length of the longest proper prefix of `stop` that `bytes` ends with.
    private static func partialSuffix(_ stop: [UInt8], of bytes: [UInt8]) -> Int {
        for n in stride(from: min(stop.count - 1, bytes.count), to: 0, by: -1)
        where bytes[(bytes.count - n)...].elementsEqual(stop[..<n]) {
            return n
        }
        return 0
    }

    private static func find(_ needle: [UInt8], in bytes: [UInt8], from start: Int) -> Int? {
        guard bytes.count >= needle.count, start <= bytes.count - needle.count else { return nil }
        for i in start...(bytes.count - needle.count) where bytes[i..<(i + needle.count)].elementsEqual(needle) {
            return i
        }
        return nil
    }
}
