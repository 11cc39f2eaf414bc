import Foundation

/// A 64-byte aligned, zero-initialised array of `Float` with reference semantics.
public final class FloatBuffer: @unchecked Sendable {
    /// Number of elements.
    public let count: Int
    /// Start of the storage; valid for `count` elements while the buffer lives.
    public let pointer: UnsafeMutablePointer<Float>

    /// Allocates `count` zeroed floats; `hugePages` asks the kernel to back the buffer with 2 MiB
    /// pages (for weights that are streamed whole: fewer TLB misses per pass).
    public init(count: Int, hugePages: Bool = false) {
        precondition(count >= 0, "negative buffer size")
        self.count = count
        let raw = UnsafeMutableRawPointer.allocate(byteCount: max(count, 1) * 4, alignment: 64)
        pointer = raw.bindMemory(to: Float.self, capacity: max(count, 1))
        if hugePages { Self.adviseHugePages(raw, bytes: count * 4) }
        pointer.initialize(repeating: 0, count: max(count, 1))
    }

    /// Allocates a buffer holding a copy of `values`.
    public convenience init(_ values: [Float]) {
        self.init(count: values.count)
        values.withUnsafeBufferPointer { src in
            guard let base = src.baseAddress else { return }
            pointer.update(from: base, count: values.count)
        }
    }

    deinit { pointer.deallocate() }

    /// madvise(MADV_HUGEPAGE) over the whole 4 KiB pages of the allocation, before its first touch.
    private static func adviseHugePages(_ raw: UnsafeMutableRawPointer, bytes: Int) {
        let page = 4096
        let start = (Int(bitPattern: raw) + page - 1) / page * page
        let length = (Int(bitPattern: raw) + bytes - start) / page * page
        if length > 0 { madvise(UnsafeMutableRawPointer(bitPattern: start), length, MADV_HUGEPAGE) }
    }

    /// Sets every element to zero (in parallel for large buffers such as a model's gradients).
    public func zero() {
        parallelChunks(count, tasks: min(Threads.current * tasksPerThread, count >> 16), align: 16) { lo, hi in
            (pointer + lo).update(repeating: 0, count: hi - lo)
        }
    }

    /// The elements as an array (for tests and small reads).
    public var array: [Float] { Array(UnsafeBufferPointer(start: pointer, count: count)) }

    /// Element access.
    public subscript(i: Int) -> Float {
        get { pointer[i] }
        set { pointer[i] = newValue }
    }
}
