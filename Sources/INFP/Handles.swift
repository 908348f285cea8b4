import Glibc
import INFPCore

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
///
/// A thread that already holds the lock (a callback of infp_model_fit calling back into the
/// library on the training thread, say) may read again without waiting for itself; asking to
/// change the model from there is refused with an error instead of deadlocking. Failures of
/// the lock itself are errors, never ignored.
final class ReadWriteLock {
    private let lock = UnsafeMutablePointer<pthread_rwlock_t>.allocate(capacity: 1)
    init() { pthread_rwlock_init(lock, nil) }
    deinit { pthread_rwlock_destroy(lock); lock.deallocate() }

    func reading<T>(_ body: () throws -> T) throws -> T {
        let id = ObjectIdentifier(self)
        if HeldLocks.mode(of: id) != nil { return try body() }  // this thread holds it already
        let rc = pthread_rwlock_rdlock(lock)
        guard rc == 0 else { throw APIError.internal("cannot lock the model for reading: \(String(cString: strerror(rc)))") }
        HeldLocks.push(id, .read)
        defer { HeldLocks.pop(id); pthread_rwlock_unlock(lock) }
        return try body()
    }

    func writing<T>(_ body: () throws -> T) throws -> T {
        let id = ObjectIdentifier(self)
        if let held = HeldLocks.mode(of: id) {
            throw APIError.invalid(held == .write
                ? "this thread is already changing the model (training it?): from inside a callback of infp_model_fit the model can be read, saved and evaluated, but not changed"
                : "this thread is reading the model (inside a callback?): it cannot change it from there")
        }
        let rc = pthread_rwlock_wrlock(lock)
        guard rc == 0 else { throw APIError.internal("cannot lock the model for a change: \(String(cString: strerror(rc)))") }
        HeldLocks.push(id, .write)
        defer { HeldLocks.pop(id); pthread_rwlock_unlock(lock) }
        return try body()
    }
}

/// The model locks the calling thread holds, innermost last (thread-local).
private enum HeldLocks {
    enum Mode { case read, write }

    private final class Stack { var entries: [(ObjectIdentifier, Mode)] = [] }
    private static let perThread = ThreadLocal { Stack() }
    private static var stack: Stack { perThread.value }

    static func mode(of id: ObjectIdentifier) -> Mode? { stack.entries.last { $0.0 == id }?.1 }
    static func push(_ id: ObjectIdentifier, _ mode: Mode) { stack.entries.append((id, mode)) }
    static func pop(_ id: ObjectIdentifier) {
        let s = stack
        if let i = s.entries.lastIndex(where: { $0.0 == id }) { s.entries.remove(at: i) }
    }
}
