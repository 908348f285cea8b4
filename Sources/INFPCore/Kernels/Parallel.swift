import Dispatch
import Glibc
import CBLAS

/// The number of worker threads the engine may use on the calling thread. Set per call by
/// the API layer (`Parallel.withThreads`); thread counts are parameters, never globals.
public enum Parallel {
    private static let key: pthread_key_t = {
        var key = pthread_key_t()
        pthread_key_create(&key, nil)
        return key
    }()

    /// Cores of this machine.
    public static let cores: Int = max(1, Int(sysconf(Int32(_SC_NPROCESSORS_ONLN))))

    /// OpenBLAS runs single-threaded inside our own parallel loops: one thread pool, no
    /// oversubscription, and safe concurrent calls from several streams.
    static let blasConfigured: Void = { openblas_set_num_threads(1) }()

    /// Threads available to the current call (1 inside worker threads).
    public static var threads: Int {
        let raw = Int(bitPattern: pthread_getspecific(key))
        return raw > 0 ? raw : 1
    }

    /// Runs `body` with `count` threads available (0 = all cores).
    public static func withThreads<T>(_ count: Int, _ body: () throws -> T) rethrows -> T {
        _ = blasConfigured
        let n = count <= 0 ? cores : count
        let previous = pthread_getspecific(key)
        pthread_setspecific(key, UnsafeRawPointer(bitPattern: n))
        defer { pthread_setspecific(key, previous) }
        return try body()
    }

    /// Calls `body(i)` for i in 0..<n, spread over the available threads.
    /// Work inside runs with one thread (no nested parallelism).
    public static func forEach(_ n: Int, _ body: (Int) -> Void) {
        _ = blasConfigured
        let t = min(threads, n)
        if t <= 1 {
            for i in 0..<n { body(i) }
            return
        }
        // Every iteration (the caller's included) runs with one thread: no nested parallelism.
        if t == n {
            DispatchQueue.concurrentPerform(iterations: n) { i in withThreads(1) { body(i) } }
            return
        }
        // concurrentPerform would spread n iterations over every core: `t` workers take the
        // items in turn instead, so the thread count is an upper bound.
        let next = ItemCounter()
        DispatchQueue.concurrentPerform(iterations: t) { _ in
            withThreads(1) {
                while let i = next.take(below: n) { body(i) }
            }
        }
    }

    /// The next unclaimed item of a parallel loop.
    private final class ItemCounter: @unchecked Sendable {
        private var mutex = pthread_mutex_t()
        private var value = 0
        init() { pthread_mutex_init(&mutex, nil) }
        deinit { pthread_mutex_destroy(&mutex) }

        func take(below n: Int) -> Int? {
            pthread_mutex_lock(&mutex)
            defer { pthread_mutex_unlock(&mutex) }
            guard value < n else { return nil }
            value += 1
            return value - 1
        }
    }

    /// Splits 0..<n into at most `threads` contiguous chunks and runs them in parallel.
    public static func forChunks(_ n: Int, minChunk: Int = 1, _ body: (Range<Int>) -> Void) {
        let t = max(1, min(threads, n / max(1, minChunk)))
        if t <= 1 { if n > 0 { body(0..<n) }; return }
        let chunk = (n + t - 1) / t
        forEach(t) { c in
            let lo = c * chunk, hi = min(n, lo + chunk)
            if lo < hi { body(lo..<hi) }
        }
    }
}
