import Glibc

/// Per-op wall-clock profile, on when the environment variable `INFP_PROFILE` is set (to
/// anything but "0") when the library loads. Ops wrap their work in `OpProfile.measure`; times
/// are exclusive (a measured op called inside another is subtracted from the outer one) and
/// per calling thread. At process exit a table (op, calls, total ms, share) goes to stderr, or
/// to the file named by `INFP_PROFILE` when it contains a '/'.
/// Off, `measure` costs one load and a branch.
enum OpProfile {
    static let enabled: Bool = {
        guard let v = getenv("INFP_PROFILE"), v.pointee != 0 else { return false }
        if String(cString: v) == "0" { return false }
        atexit { OpProfile.report() }
        return true
    }()

    /// Op names carry their shapes too (`INFP_PROFILE_SHAPES` set).
    static let shapes: Bool = getenv("INFP_PROFILE_SHAPES") != nil

    private final class State: @unchecked Sendable {
        var mutex = pthread_mutex_t()
        var totals: [String: (seconds: Double, calls: Int)] = [:]
        init() { pthread_mutex_init(&mutex, nil) }
    }
    private static let state = State()

    /// Per-thread stack of the child time accumulated by the measures in progress.
    private final class Stack { var child: [Double] = [] }
    private static let perThread = ThreadLocal { Stack() }
    private static var stack: Stack { perThread.value }

    @inline(__always)
    static func now() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) * 1e-9
    }

    /// Runs `body`, adding its exclusive time to `name` when profiling is on.
    @inline(__always)
    static func measure<T>(_ name: @autoclosure () -> String, _ body: () throws -> T) rethrows -> T {
        guard enabled else { return try body() }
        return try timed(name(), body)
    }

    private static func timed<T>(_ name: String, _ body: () throws -> T) rethrows -> T {
        let s = stack
        s.child.append(0)
        let t0 = now()
        defer {
            let total = now() - t0
            let child = s.child.removeLast()
            if !s.child.isEmpty { s.child[s.child.count - 1] += total }
            add(name, total - child)
        }
        return try body()
    }

    static func add(_ name: String, _ seconds: Double) {
        let st = state
        pthread_mutex_lock(&st.mutex)
        let old = st.totals[name] ?? (0, 0)
        st.totals[name] = (old.seconds + seconds, old.calls + 1)
        pthread_mutex_unlock(&st.mutex)
    }

    private static func fixed1(_ v: Double) -> String {
        let t = Int((v * 10).rounded())
        return "\(t / 10).\(t % 10)"
    }

    static func report() {
        let st = state
        pthread_mutex_lock(&st.mutex)
        let rows = st.totals.sorted { $0.value.seconds > $1.value.seconds }
        pthread_mutex_unlock(&st.mutex)
        let sum = rows.reduce(0) { $0 + $1.value.seconds }
        var text = "infp op profile (exclusive wall time, calling threads)\n"
        text += "op                                  calls     total ms   share\n"
        for (name, v) in rows {
            let pad = String(repeating: " ", count: Swift.max(1, 34 - name.count))
            let calls = String(v.calls), ms = fixed1(v.seconds * 1e3)
            let share = fixed1(sum > 0 ? 100 * v.seconds / sum : 0) + "%"
            text += name + pad + String(repeating: " ", count: Swift.max(0, 7 - calls.count)) + calls
                + String(repeating: " ", count: Swift.max(1, 13 - ms.count)) + ms
                + String(repeating: " ", count: Swift.max(1, 8 - share.count)) + share + "\n"
        }
        text += "measured total " + fixed1(sum * 1e3) + " ms\n"
        if let v = getenv("INFP_PROFILE"), strchr(v, 0x2F) != nil, let f = fopen(v, "w") {
            fputs(text, f); fclose(f)
        } else {
            fputs(text, stderr)
        }
    }
}

/// Switches for A/B measurements of the fast paths in one build: `INFP_DISABLE` holds a
/// comma-separated list of names (`bnrelu`, `winograd`) whose fast path is turned off, read
/// once when first asked. Unset in normal use (every fast path on).
enum FastPath {
    private static let disabled: Set<String> = {
        guard let v = getenv("INFP_DISABLE") else { return [] }
        return Set(String(cString: v).split(separator: ",").map { String($0) })
    }()

    static func isOn(_ name: String) -> Bool { disabled.isEmpty || !disabled.contains(name) }
}
