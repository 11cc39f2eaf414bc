import Foundation

/// The masks and row operations of `AttentionKernel`'s tiles.
extension AttentionKernel {
    /// Calls `body(j0, width)` for the key tiles that query rows up to `end` (exclusive) meet when
    /// the earliest key any of them attends to is `first`: keys first..<(the next multiple of
    /// `keyTile`), then whole tiles of `keyTile`, the last one cut at `end`. Every tile starts at or
    /// before the query tile's first row, so each row has its own key or an earlier one in it.
    @inline(__always)
    static func forEachKeyTile(from first: Int, to end: Int, _ body: (_ j0: Int, _ width: Int) -> Void) {
        var j0 = first
        while j0 < end {
            let j1 = min(end, (j0 / keyTile + 1) * keyTile)
            body(j0, j1 - j0)
            j0 = j1
        }
    }

    /// The largest of the first `count` entries.
    @inline(__always)
    static func maximum(_ row: UnsafePointer<Float>, _ count: Int) -> Float {
        var acc = SIMD8<Float>(repeating: -.infinity)
        var j = 0
        while j + 8 <= count {
            acc = pointwiseMax(acc, row.load8(j))
            j += 8
        }
        var m = acc.max()
        while j < count {
            m = max(m, row[j])
            j += 1
        }
        return m
    }

    /// row[j] = exp(row[j] − shift) for first ≤ j < end and 0 for the other j < width (keys the
    /// row does not attend to); returns the sum.
    @inline(__always)
    static func exponentiate(
        _ row: UnsafeMutablePointer<Float>, from first: Int, to end: Int, width: Int, minus shift: Float
    ) -> Float {
        if first > 0 { row.update(repeating: 0, count: first) }
        let shift8 = SIMD8<Float>(repeating: shift)
        var acc = SIMD8<Float>()
        var j = first
        while j + 8 <= end {
            let e = exp8(row.load8(j) - shift8)
            row.store8(j, e)
            acc += e
            j += 8
        }
        var sum = hsum(acc)
        while j < end {
            let e = expf(row[j] - shift)
            row[j] = e
            sum += e
            j += 1
        }
        if end < width { (row + end).update(repeating: 0, count: width - end) }
        return sum
    }

    /// ds = p ⊙ (ds − delta) · scale over `count` entries (zeros of p give zeros of ds).
    @inline(__always)
    static func softmaxBackwardRow(
        _ p: UnsafePointer<Float>, _ ds: UnsafeMutablePointer<Float>, count: Int, delta: Float, scale: Float
    ) {
        let (delta8, scale8) = (SIMD8<Float>(repeating: delta), SIMD8<Float>(repeating: scale))
        var j = 0
        while j + 8 <= count {
            ds.store8(j, p.load8(j) * (ds.load8(j) - delta8) * scale8)
            j += 8
        }
        while j < count {
            ds[j] = p[j] * (ds[j] - delta) * scale
            j += 1
        }
    }

    /// x[0..<count] *= factor.
    @inline(__always)
    static func scale(_ x: UnsafeMutablePointer<Float>, by factor: Float, count: Int) {
        let f = SIMD8<Float>(repeating: factor)
        var j = 0
        while j + 8 <= count {
            x.store8(j, x.load8(j) * f)
            j += 8
        }
        while j < count {
            x[j] *= factor
            j += 1
        }
    }
}
