import Glibc

/// Whether operations on the current thread record themselves for `backward`.
/// Off by default, so inference keeps no graph; training turns it on around its steps.
public enum GradMode {
    private static let key: pthread_key_t = {
        var key = pthread_key_t()
        pthread_key_create(&key, nil)
        return key
    }()

    public static var isEnabled: Bool { pthread_getspecific(key) != nil }

    /// Runs `body` with recording switched on (or off), restoring the previous mode after.
    public static func with<T>(enabled: Bool, _ body: () throws -> T) rethrows -> T {
        let previous = pthread_getspecific(key)
        pthread_setspecific(key, enabled ? UnsafeRawPointer(bitPattern: 1) : nil)
        defer { pthread_setspecific(key, previous) }
        return try body()
    }
}

/// Runs `body` recording operations, so that `backward` can be called on its results.
public func withGradients<T>(_ body: () throws -> T) rethrows -> T {
    try GradMode.with(enabled: true, body)
}
