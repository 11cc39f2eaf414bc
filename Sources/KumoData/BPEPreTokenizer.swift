/// The pre-tokenizers of byte-level BPE models, written out by hand instead of with a regular
/// expression. GPT-2's pattern is, tried in this order at each position:
/// `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`.
enum BPEPreTokenizer {
    /// The pieces of `s` under `kind`, as ranges that cover it in order.
    static func split(_ s: [Unicode.Scalar], _ kind: ByteLevelBPETokenizer.PreTokenizer) -> [Range<Int>] {
        switch kind {
        case .gpt2:
            return gpt2(s, 0..<s.count)
        case .digitsThenGPT2:
            var pieces: [Range<Int>] = []
            var start = 0
            for i in s.indices where isNumber(s[i]) {
                if start < i { pieces += gpt2(s, start..<i) }
                pieces.append(i..<(i + 1))
                start = i + 1
            }
            if start < s.count { pieces += gpt2(s, start..<s.count) }
            return pieces
        }
    }

    static func isLetter(_ s: Unicode.Scalar) -> Bool {
        switch s.properties.generalCategory {
        case .uppercaseLetter, .lowercaseLetter, .titlecaseLetter, .modifierLetter, .otherLetter: return true
        default: return false
        }
    }

    static func isNumber(_ s: Unicode.Scalar) -> Bool {
        switch s.properties.generalCategory {
        case .decimalNumber, .letterNumber, .otherNumber: return true
        default: return false
        }
    }

    static func isSpace(_ s: Unicode.Scalar) -> Bool { s.properties.isWhitespace }

    private static func isOther(_ s: Unicode.Scalar) -> Bool { !isSpace(s) && !isLetter(s) && !isNumber(s) }

    /// GPT-2's pattern over `s[range]`.
    private static func gpt2(_ s: [Unicode.Scalar], _ range: Range<Int>) -> [Range<Int>] {
        var pieces: [Range<Int>] = []
        var i = range.lowerBound
        while i < range.upperBound {
            let end = pieceEnd(s, from: i, to: range.upperBound)
            pieces.append(i..<end)
            i = end
        }
        return pieces
    }

    /// Where the piece that starts at `i` ends.
    private static func pieceEnd(_ s: [Unicode.Scalar], from i: Int, to n: Int) -> Int {
        func run(from j: Int, while test: (Unicode.Scalar) -> Bool) -> Int {
            var k = j
            while k < n && test(s[k]) { k += 1 }
            return k
        }
        let c = s[i]
        if c == "'" && i + 1 < n {
            let next = s[i + 1]
            if next == "s" || next == "t" || next == "m" || next == "d" { return i + 2 }
            if i + 2 < n {
                let third = s[i + 2]
                if (next == "r" || next == "v") && third == "e" || next == "l" && third == "l" { return i + 3 }
            }
        }
        // ` ?\p{L}+`, ` ?\p{N}+`, ` ?[^\s\p{L}\p{N}]+`: an optional space, then a run of one class.
        let body = c == " " && i + 1 < n ? i + 1 : i
        for test in [isLetter, isNumber, isOther] where test(s[body]) {
            return run(from: body, while: test)
        }
        // `\s+(?!\S)` then `\s+`: a whitespace run, leaving its last character to the next piece when
        // a non-space follows (that character may start ` ?\p{L}+`).
        let end = run(from: i, while: isSpace)
        if end == n || end - i == 1 { return end }
        return end - 1
    }
}
