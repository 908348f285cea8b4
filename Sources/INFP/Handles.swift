import Glibc

/// Live handles given to C callers. A pointer that is not in the registry (never created,
/// or already freed) is refused with an error instead of being dereferenced.
enum HandleRegistry {
    private static let lock: UnsafeMutablePointer<pthread_mutex_t> = {
        let m = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
        pthread_mutex_init(m, nil)
        return m
    }()
    nonisolated(unsafe) private static var live = Set<UnsafeMutableRawPointer>()

    static func register(_ object: AnyObject) -> UnsafeMutableRawPointer {
        let p = Unmanaged.passRetained(object).toOpaque()
        pthread_mutex_lock(lock); live.insert(p); pthread_mutex_unlock(lock)
        return p
    }

    static func lookup<T: AnyObject>(_ p: UnsafeRawPointer?, as type: T.Type, _ name: String) throws -> T {
        guard let p else { throw APIError.invalid("\(name) is NULL") }
        pthread_mutex_lock(lock); defer { pthread_mutex_unlock(lock) }
        guard live.contains(UnsafeMutableRawPointer(mutating: p)),
              let object = Unmanaged<AnyObject>.fromOpaque(p).takeUnretainedValue() as? T else {
            throw APIError.invalid("\(name) is not a live \(T.self) handle (already freed, or not created by libinfp)")
        }
        return object
    }

    /// Forgets and releases a handle; NULL and unknown pointers are ignored.
    static func release(_ p: UnsafeRawPointer?) {
        guard let p else { return }
        pthread_mutex_lock(lock)
        let known = live.remove(UnsafeMutableRawPointer(mutating: p)) != nil
        pthread_mutex_unlock(lock)
        if known { Unmanaged<AnyObject>.fromOpaque(p).release() }
    }
}

/// A readers–writer lock: many concurrent predictions, exclusive changes.
final class ReadWriteLock {
    private let lock = UnsafeMutablePointer<pthread_rwlock_t>.allocate(capacity: 1)
    init() { pthread_rwlock_init(lock, nil) }
    deinit { pthread_rwlock_destroy(lock); lock.deallocate() }

    func reading<T>(_ body: () throws -> T) rethrows -> T {
        pthread_rwlock_rdlock(lock); defer { pthread_rwlock_unlock(lock) }
        return try body()
    }

    func writing<T>(_ body: () throws -> T) rethrows -> T {
        pthread_rwlock_wrlock(lock); defer { pthread_rwlock_unlock(lock) }
        return try body()
    }
}
