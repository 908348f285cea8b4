import Glibc

/// Recycles large 64-byte aligned buffers (tensor storage, GEMM scratch).
///
/// glibc serves big blocks with mmap and hands them back to the kernel on free, so every fresh
/// activation tensor paid one page fault per 4 KB page (14% of a streamed frame). Inference
/// and training allocate the same shapes again and again, so freed blocks wait here, keyed by
/// their rounded size, for the next request of that size. Small blocks (malloc's own heap
/// serves them without faults) and very large ones are not pooled, and the pool keeps at most
/// `capacity` bytes; beyond that blocks are freed as before.
public enum BufferPool {
    /// Blocks from this size on are pooled (smaller ones come from malloc's heap).
    static let minBytes = 64 << 10
    /// Blocks above this size are never kept.
    static let maxBytes = 256 << 20
    /// Most bytes kept in the pool at once.
    static let capacity = 1 << 30

    private final class State: @unchecked Sendable {
        var mutex = pthread_mutex_t()
        var free: [Int: [UnsafeMutableRawPointer]] = [:]
        var cached = 0
        init() { pthread_mutex_init(&mutex, nil) }
    }

    private static let state = State()

    /// Bytes actually reserved for a request of `bytes` (page multiples when pooled).
    @inline(__always)
    static func rounded(_ bytes: Int) -> Int {
        bytes < minBytes || bytes > maxBytes ? Swift.max(64, bytes) : (bytes + 4095) & ~4095
    }

    /// A 64-byte aligned block of `rounded(bytes)` bytes, uninitialised.
    static func allocate(_ bytes: Int) -> UnsafeMutableRawPointer {
        let size = rounded(bytes)
        if size >= minBytes && size <= maxBytes {
            let s = state
            pthread_mutex_lock(&s.mutex)
            if let p = s.free[size]?.popLast() {
                s.cached -= size
                pthread_mutex_unlock(&s.mutex)
                return p
            }
            pthread_mutex_unlock(&s.mutex)
        }
        var raw: UnsafeMutableRawPointer? = nil
        if posix_memalign(&raw, 64, size) != 0 || raw == nil {
            // The pool may hold what the system lacks: give it back, then try once more. The
            // API layer checks large requests beforehand (ensureAvailable), so reaching the
            // trap below means the machine ran out of memory in the middle of a computation.
            drain()
            if posix_memalign(&raw, 64, size) != 0 || raw == nil {
                fatalError("infp: out of memory allocating \(size) bytes")
            }
        }
        return raw!
    }

    /// Frees every pooled block.
    static func drain() {
        let s = state
        pthread_mutex_lock(&s.mutex)
        let blocks = s.free.values.flatMap { $0 }
        s.free = [:]
        s.cached = 0
        pthread_mutex_unlock(&s.mutex)
        for p in blocks { free(p) }
    }

    /// Physical memory of the machine, in bytes.
    static let physicalBytes: Int = Int(sysconf(Int32(_SC_PHYS_PAGES))) * Int(sysconf(Int32(_SC_PAGESIZE)))

    /// Throws `OutOfMemory` when `floats` float32 values (a computation's estimated need) are
    /// more than the machine holds or cannot be reserved now, so that callers get an error
    /// instead of a trap half-way through.
    public static func ensureAvailable(floats: Int) throws {
        guard floats > 1 << 24 else { return }  // below 64 MiB: not worth a probe
        let (bytes, overflow) = floats.multipliedReportingOverflow(by: MemoryLayout<Float>.stride)
        guard !overflow, physicalBytes <= 0 || bytes <= physicalBytes else {
            throw OutOfMemory(description: "needs \(floats) floats (\(floats / (1 << 28)) GiB), more than this machine's \(physicalBytes >> 30) GiB of memory")
        }
        // mmap, not malloc: the optimiser may drop a malloc/free pair whose block is unused,
        // and with it the probe. Private writable mappings count as malloc's large blocks do
        // (overcommit, RLIMIT_DATA).
        let probe = mmap(nil, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)
        guard let probe, probe != MAP_FAILED else {
            throw OutOfMemory(description: "cannot allocate \(bytes >> 20) MiB of memory now")
        }
        munmap(probe, bytes)
    }

    /// Returns a block from `allocate(bytes)` (same `bytes`).
    static func release(_ pointer: UnsafeMutableRawPointer, bytes: Int) {
        let size = rounded(bytes)
        if size >= minBytes && size <= maxBytes {
            let s = state
            pthread_mutex_lock(&s.mutex)
            if s.cached + size <= capacity {
                s.free[size, default: []].append(pointer)
                s.cached += size
                pthread_mutex_unlock(&s.mutex)
                return
            }
            pthread_mutex_unlock(&s.mutex)
        }
        free(pointer)
    }
}

/// A request for more memory than the machine can give.
public struct OutOfMemory: Error, CustomStringConvertible {
    public let description: String
}
