import CINFP
import Glibc
import INFPCore

// The error, logging and validation machinery of the C boundary. Every exported function
// runs its body through `guarded`, which turns a thrown `APIError` into a status code and a
// thread-local message (`infp_last_error`). Validation happens here, before any caller memory
// is touched: nothing a caller passes may trap.

// MARK: - Errors

/// A failure to report to the C caller: a status code and a human-readable message.
struct APIError: Error, CustomStringConvertible {
    let status: infp_status
    let message: String

    init(status: infp_status, message: String) {
        self.status = status
        self.message = message
    }

    var description: String { "\(statusName(status)): \(message)" }

    static func invalid(_ message: String) -> APIError { APIError(status: INFP_ERR_INVALID_ARGUMENT, message: message) }
    static func shape(_ message: String) -> APIError { APIError(status: INFP_ERR_SHAPE_MISMATCH, message: message) }
    static func io(_ message: String) -> APIError { APIError(status: INFP_ERR_IO, message: message) }
    static func format(_ message: String) -> APIError { APIError(status: INFP_ERR_FORMAT, message: message) }
    static func outOfMemory(_ message: String) -> APIError { APIError(status: INFP_ERR_OUT_OF_MEMORY, message: message) }
    static func `internal`(_ message: String) -> APIError { APIError(status: INFP_ERR_INTERNAL, message: message) }
    static func cancelled(_ message: String) -> APIError { APIError(status: INFP_ERR_CANCELLED, message: message) }
}

// MARK: - Thread-local last error

/// Per-thread malloc'd C string holding the last failure's message; freed when the thread
/// exits or when the next failure on the same thread replaces it.
private let lastErrorKey: pthread_key_t = {
    var key = pthread_key_t()
    pthread_key_create(&key) { free($0) }
    return key
}()

private let emptyString: StaticString = ""

/// Records `message` as the calling thread's last error.
func setLastError(_ message: String) {
    let copy = strdup(message)  // nil only when out of memory: then the old message goes too
    let previous = pthread_getspecific(lastErrorKey)
    pthread_setspecific(lastErrorKey, copy.map { UnsafeRawPointer($0) })
    free(UnsafeMutableRawPointer(mutating: previous))
}

/// The calling thread's last error message ("" when none).
var lastErrorMessage: String {
    guard let p = pthread_getspecific(lastErrorKey) else { return "" }
    return String(cString: p.assumingMemoryBound(to: CChar.self))
}

@_cdecl("infp_last_error")
public func infp_last_error() -> UnsafePointer<CChar> {
    if let p = pthread_getspecific(lastErrorKey) { return UnsafePointer(p.assumingMemoryBound(to: CChar.self)) }
    return UnsafeRawPointer(emptyString.utf8Start).assumingMemoryBound(to: CChar.self)
}

// MARK: - Status names

private let statusNames: [(Int32, StaticString)] = [
    (INFP_OK.rawValue, "ok"),
    (INFP_ERR_INVALID_ARGUMENT.rawValue, "invalid argument"),
    (INFP_ERR_SHAPE_MISMATCH.rawValue, "shape mismatch"),
    (INFP_ERR_IO.rawValue, "io error"),
    (INFP_ERR_FORMAT.rawValue, "format error"),
    (INFP_ERR_OUT_OF_MEMORY.rawValue, "out of memory"),
    (INFP_ERR_INTERNAL.rawValue, "internal error"),
    (INFP_ERR_CANCELLED.rawValue, "cancelled"),
]
private let unknownStatus: StaticString = "unknown status"

private func statusNameStatic(_ status: infp_status) -> StaticString {
    for (raw, name) in statusNames where raw == status.rawValue { return name }
    return unknownStatus
}

/// Short name of a status code, as Swift string.
func statusName(_ status: infp_status) -> String { statusNameStatic(status).description }

@_cdecl("infp_status_name")
public func infp_status_name(_ status: infp_status) -> UnsafePointer<CChar> {
    UnsafeRawPointer(statusNameStatic(status).utf8Start).assumingMemoryBound(to: CChar.self)
}

// MARK: - guarded

/// Runs the body of an exported function. A thrown `APIError` becomes its status and message
/// (prefixed with the C function's name); any other error becomes INFP_ERR_INTERNAL.
/// `function` defaults to the calling Swift function, whose name is the C name.
func guarded(_ function: String = #function, _ body: () throws -> Void) -> infp_status {
    let name = function.split(separator: "(", maxSplits: 1).first.map(String.init) ?? function
    let fftFailures = FFT.planFailures.count
    do {
        try body()
        // A transform FFTW refused left NaN behind (FFT.swift): report it rather than the result.
        let after = FFT.planFailures
        if after.count != fftFailures { throw APIError.internal("\(after.message); the result would be wrong") }
        return INFP_OK
    } catch let error as APIError {
        setLastError("\(name): \(error.message)")
        log(.debug, "\(name) failed (\(statusName(error.status))): \(error.message)")
        return error.status
    } catch {
        let message = "\(name): internal error: \(error) (please report this bug)"
        setLastError(message)
        log(.error, message)
        return INFP_ERR_INTERNAL
    }
}

// MARK: - Logging

/// Levels of library log messages (the values of infp_log_level).
enum LogLevel: UInt32, Comparable {
    case debug = 0, info = 1, warning = 2, error = 3

    static func < (a: LogLevel, b: LogLevel) -> Bool { a.rawValue < b.rawValue }

    var name: String {
        switch self {
        case .debug: return "debug"
        case .info: return "info"
        case .warning: return "warning"
        case .error: return "error"
        }
    }
}

/// The process-wide log callback, read and written under a lock.
private enum LogSink {
    static let lock: UnsafeMutablePointer<pthread_mutex_t> = {
        let m = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
        pthread_mutex_init(m, nil)
        return m
    }()
    nonisolated(unsafe) static var callback: infp_log_fn? = nil
    nonisolated(unsafe) static var user: UnsafeMutableRawPointer? = nil

    static func current() -> (infp_log_fn?, UnsafeMutableRawPointer?) {
        pthread_mutex_lock(lock)
        defer { pthread_mutex_unlock(lock) }
        return (callback, user)
    }

    static func set(_ fn: infp_log_fn?, _ user: UnsafeMutableRawPointer?) {
        pthread_mutex_lock(lock)
        defer { pthread_mutex_unlock(lock) }
        callback = fn
        self.user = user
    }
}

@_cdecl("infp_set_log_callback")
public func infp_set_log_callback(_ fn: infp_log_fn?, _ user: UnsafeMutableRawPointer?) {
    LogSink.set(fn, user)
}

/// Sends a message to the log callback, or to stderr (warnings and errors only) by default.
/// The callback is called outside the lock, so it may itself call infp_set_log_callback.
func log(_ level: LogLevel, _ message: String) {
    let (fn, user) = LogSink.current()
    if let fn {
        message.withCString { fn(infp_log_level(rawValue: level.rawValue), $0, user) }
    } else if level >= .warning {
        let line = "infp: \(level.name): \(message)\n"
        _ = line.withCString { fputs($0, stderr) }
    }
}

// MARK: - Validation at the C boundary

/// Largest element count of one buffer the library accepts (2^40 floats = 4 TiB): far above
/// anything real, low enough that sizes in bytes and products of dimensions cannot overflow.
let maxElements = 1 << 40

/// Largest tensor rank accepted through the C API.
let maxRank = 16

/// Checks that a caller's pointer is not NULL.
@inline(__always)
func require<T>(_ pointer: UnsafePointer<T>?, _ name: String) throws -> UnsafePointer<T> {
    guard let pointer else { throw APIError.invalid("\(name) is NULL") }
    return pointer
}

@inline(__always)
func require<T>(_ pointer: UnsafeMutablePointer<T>?, _ name: String) throws -> UnsafeMutablePointer<T> {
    guard let pointer else { throw APIError.invalid("\(name) is NULL") }
    return pointer
}

/// Element count of `shape`, or a shape error when it exceeds `maxElements` (or Int).
func elementCount(_ shape: [Int], _ name: String) throws -> Int {
    var n = 1
    for d in shape {
        let (p, overflow) = n.multipliedReportingOverflow(by: d)
        guard !overflow, p <= maxElements else {
            throw APIError.shape("\(name) \(shape) has more than 2^40 elements")
        }
        n = p
    }
    return n
}

/// Reads a caller's `int64_t` shape array of `rank` entries; every dimension must be >= 1
/// and the element count must stay below `maxElements`.
func readShape(_ pointer: UnsafePointer<Int64>?, rank: Int, _ name: String) throws -> [Int] {
    let p = try require(pointer, name)
    guard rank >= 1, rank <= maxRank else {
        throw APIError.invalid("\(name): rank \(rank) is not in 1...\(maxRank)")
    }
    var shape = [Int](repeating: 0, count: rank)
    for i in 0..<rank {
        let d = p[i]
        guard d >= 1 else { throw APIError.invalid("\(name)[\(i)] is \(d); dimensions must be >= 1") }
        guard d <= Int64(maxElements) else {
            throw APIError.shape("\(name)[\(i)] is \(d), larger than 2^40")
        }
        shape[i] = Int(d)
    }
    _ = try elementCount(shape, name)
    return shape
}

/// Reads a caller's params struct whose first field is `size_t size`. A smaller struct (from
/// an older header) is fine: only its first `size` bytes are read, the rest keeps `defaults`.
/// A larger one (from a newer header than this library) is an invalid argument.
func readParams<P: SizedStruct>(_ pointer: UnsafePointer<P>?, defaults: P, _ name: String) throws -> P {
    let p = try require(pointer, name)
    let raw = UnsafeRawPointer(p)
    let size = raw.loadUnaligned(as: UInt.self)  // size_t
    try checkStructSize(size, P.self, name)
    var result = defaults
    withUnsafeMutableBytes(of: &result) { dst in
        dst.baseAddress!.copyMemory(from: raw, byteCount: Int(size))
        dst.storeBytes(of: UInt(MemoryLayout<P>.size), toByteOffset: 0, as: UInt.self)
    }
    return result
}

/// Fails with INFP_ERR_OUT_OF_MEMORY when `floats` float32 values cannot be allocated
/// (the engine traps on a failed allocation, so large requests are probed here first).
func ensureAllocatable(floats: Int) throws {
    do { try BufferPool.ensureAvailable(floats: floats) } catch let e as OutOfMemory { throw APIError.outOfMemory(e.description) }
}

/// Fails when a caller's buffer holds NaN or infinite values, which would otherwise flow
/// silently through the network (ReLU maps NaN to 0).
func requireFinite(_ t: Tensor, _ name: String) throws {
    let d = t.data
    for i in 0..<t.count where !d[i].isFinite {
        throw APIError.invalid("\(name) holds a non-finite value (\(d[i])) at element \(i)")
    }
}

/// A tensor holding a copy of a caller's `count(shape)` floats.
func tensor(copying pointer: UnsafePointer<Float>, shape: [Int]) -> Tensor {
    let t = Tensor(uninitialized: shape)
    t.data.update(from: pointer, count: t.count)
    return t
}

/// Copies a tensor's values into a caller's buffer of `count` floats.
func copyOut(_ t: Tensor?, to pointer: UnsafeMutablePointer<Float>, count: Int, _ name: String) throws {
    guard let t else {
        // No gradient reached this input: it is zero.
        pointer.update(repeating: 0, count: count)
        return
    }
    guard t.count == count else {
        throw APIError.internal("\(name): result has \(t.count) values, expected \(count)")
    }
    pointer.update(from: t.data, count: count)
}

/// Checked arithmetic on sizes derived from caller values.
func checkedMul(_ a: Int, _ b: Int, _ what: String) throws -> Int {
    let (r, o) = a.multipliedReportingOverflow(by: b)
    guard !o else { throw APIError.invalid("\(what) overflows") }
    return r
}

func checkedAdd(_ a: Int, _ b: Int, _ what: String) throws -> Int {
    let (r, o) = a.addingReportingOverflow(b)
    guard !o else { throw APIError.invalid("\(what) overflows") }
    return r
}

/// "[1, 2, 3]" for messages.
func describe(_ shape: [Int]) -> String { "[" + shape.map(String.init).joined(separator: ", ") + "]" }
