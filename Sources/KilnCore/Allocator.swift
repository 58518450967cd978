/// Process-wide allocator settings for columnar work.
public enum Allocator {
    /// Keeps large column buffers on the heap instead of a fresh `mmap` per allocation: glibc otherwise maps (and
    /// the kernel zero-fills, page by page) every buffer over its adaptive threshold and unmaps it on free, which
    /// costs a page fault per 4 KiB each time a chunk-sized column is allocated. Freed memory is kept for reuse.
    /// Call once at process start.
    public static func tuneForColumns() {
        #if os(Linux)
        // <malloc.h>: M_TRIM_THRESHOLD -1, M_TOP_PAD -2, M_MMAP_THRESHOLD -3 (not exported by the Glibc module).
        _ = glibcMallopt(-3, 32 << 20)  // glibc's maximum
        _ = glibcMallopt(-1, 512 << 20)
        _ = glibcMallopt(-2, 64 << 20)
        #endif
    }
}

#if os(Linux)
@_silgen_name("mallopt")
private func glibcMallopt(_ parameter: Int32, _ value: Int32) -> Int32
#endif
