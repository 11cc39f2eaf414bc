/// JSQuAD's exact match and character-level F1.
///
/// JGLUE scores JSQuAD at the character level: both strings are normalized (whitespace and the
/// ASCII and Japanese punctuation listed below removed), then F1 counts the characters the two
/// share as multisets (SQuAD's token F1 with characters as tokens). An example scores the maximum
/// over its gold answers. When the prediction or the answer is empty after normalization, F1 is
/// 1 if both are empty and 0 otherwise (the SQuAD v2 convention).
public enum SQuADMetrics {
    /// Characters removed before comparison: ASCII punctuation and the Japanese/full-width
    /// punctuation that lm-evaluation-harness's JSQuAD (jasquad) metric removes.
    static let punctuation: Set<Character> = Set(
        "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~"
            + "！？｡。＂＃＄％＆＇（）＊＋，－／：；＜＝＞＠［＼］＾＿｀｛｜｝～｟｠｢｣､、〃》「」『』【】〔〕〖〗〘〙〚〛〜〝〞〟〰〾〿–—‘’‛“”„‟…‧﹏")

    /// `text` without whitespace and punctuation, as a list of characters.
    public static func normalize(_ text: String) -> [Character] {
        text.filter { !$0.isWhitespace && !punctuation.contains($0) }.map { $0 }
    }

    /// 1 if the normalized prediction equals one of the normalized answers, else 0.
    public static func exactMatch(prediction: String, answers: [String]) -> Double {
        let p = normalize(prediction)
        return answers.contains { normalize($0) == p } ? 1 : 0
    }

    /// The best character-level F1 of `prediction` against any of `answers`.
    public static func charF1(prediction: String, answers: [String]) -> Double {
        answers.map { charF1(prediction, $0) }.max() ?? 0
    }

    /// Character-level F1 of one prediction against one answer.
    static func charF1(_ prediction: String, _ answer: String) -> Double {
        let p = normalize(prediction)
        let a = normalize(answer)
        if p.isEmpty || a.isEmpty { return p.isEmpty && a.isEmpty ? 1 : 0 }
        var counts: [Character: Int] = [:]
        for c in a { counts[c, default: 0] += 1 }
        var same = 0
        for c in p where counts[c, default: 0] > 0 {
            counts[c]! -= 1
            same += 1
        }
        if same == 0 { return 0 }
        let precision = Double(same) / Double(p.count)
        let recall = Double(same) / Double(a.count)
        return 2 * precision * recall / (precision + recall)
    }
}
