import Glibc

/// Errors from reading and writing files, with the kind the C API reports.
public struct FileError: Error, CustomStringConvertible {
    public enum Kind { case io, format }
    public let kind: Kind
    public let description: String
    public static func io(_ m: String) -> FileError { FileError(kind: .io, description: m) }
    public static func format(_ m: String) -> FileError { FileError(kind: .format, description: m) }
}

enum FileIO {
    static func errnoText() -> String { String(cString: strerror(errno)) }

    /// The whole file as bytes.
    static func read(_ path: String) throws -> [UInt8] {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw FileError.io("cannot open '\(path)': \(errnoText())") }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw FileError.io("cannot stat '\(path)': \(errnoText())") }
        if (st.st_mode & S_IFMT) == S_IFDIR { throw FileError.io("'\(path)' is a folder, not a file") }
        let size = Int(st.st_size)
        var bytes = [UInt8](repeating: 0, count: size)
        var done = 0
        try bytes.withUnsafeMutableBytes { buf in
            while done < size {
                let n = Glibc.read(fd, buf.baseAddress! + done, size - done)
                if n < 0 && errno == EINTR { continue }
                guard n > 0 else { throw FileError.io("cannot read '\(path)': \(n == 0 ? "file shrank while reading" : errnoText())") }
                done += n
            }
        }
        return bytes
    }

    /// Writes a file atomically: a temporary file in the same folder, fsync, then rename,
    /// so a crash or a full disk never leaves a half-written file under `path`.
    /// `produce` is called with a writer function that appends bytes.
    static func writeAtomically(_ path: String, _ produce: ((UnsafeRawBufferPointer) throws -> Void) throws -> Void) throws {
        let tmp = path + ".tmp-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        let fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw FileError.io("cannot create '\(tmp)': \(errnoText())") }
        var ok = false
        defer {
            if !ok { close(fd); unlink(tmp) }
        }
        try produce { chunk in
            var done = 0
            while done < chunk.count {
                let n = Glibc.write(fd, chunk.baseAddress! + done, chunk.count - done)
                if n < 0 && errno == EINTR { continue }
                guard n > 0 else { throw FileError.io("cannot write '\(path)': \(errnoText())") }
                done += n
            }
        }
        guard fsync(fd) == 0 else { throw FileError.io("cannot flush '\(path)' to disk: \(errnoText())") }
        ok = true
        close(fd)
        guard rename(tmp, path) == 0 else {
            let why = errnoText()
            unlink(tmp)
            throw FileError.io("cannot move '\(tmp)' to '\(path)': \(why)")
        }
        // Make the rename itself durable.
        let slash = path.lastIndex(of: "/")
        let dir = slash.map { String(path[..<$0]) } ?? "."
        let dfd = open(dir.isEmpty ? "/" : dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if dfd >= 0 { _ = fsync(dfd); close(dfd) }
    }
}
