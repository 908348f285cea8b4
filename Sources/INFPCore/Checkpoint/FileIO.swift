import Glibc

/// Errors from reading and writing files, with the kind the C API reports.
public struct FileError: Error, CustomStringConvertible {
    public enum Kind { case io, format }
    public let kind: Kind
    public let description: String
    public static func io(_ m: String) -> FileError { FileError(kind: .io, description: m) }
    public static func format(_ m: String) -> FileError { FileError(kind: .format, description: m) }
}

/// Bytes to read by offset: an open regular file (read with pread, on demand) or an array.
final class ByteSource {
    let size: Int
    private let fd: Int32
    private let bytes: [UInt8]
    private let path: String

    init(bytes: [UInt8]) { self.bytes = bytes; size = bytes.count; fd = -1; path = "<memory>" }

    private init(fd: Int32, size: Int, path: String) { self.fd = fd; self.size = size; self.path = path; bytes = [] }

    deinit { if fd >= 0 { close(fd) } }

    /// Opens a regular file for reading. FIFOs, devices, sockets and folders are refused
    /// before anything is read (opening with O_NONBLOCK so that a FIFO cannot block).
    static func open(_ path: String) throws -> ByteSource {
        let fd = Glibc.open(SystemPath.encode(path), O_RDONLY | O_NONBLOCK | O_CLOEXEC)
        guard fd >= 0 else { throw FileError.io("cannot open '\(path)': \(FileIO.errnoText())") }
        var st = stat()
        guard fstat(fd, &st) == 0 else {
            let why = FileIO.errnoText()
            close(fd)
            throw FileError.io("cannot stat '\(path)': \(why)")
        }
        let kind = st.st_mode & S_IFMT
        guard kind == S_IFREG else {
            close(fd)
            let what = kind == S_IFDIR ? "a folder" : kind == S_IFIFO ? "a FIFO (named pipe)" : kind == S_IFSOCK ? "a socket"
                : kind == S_IFCHR || kind == S_IFBLK ? "a device" : "not a regular file"
            throw FileError.io("'\(path)' is \(what); a checkpoint must be a regular file")
        }
        return ByteSource(fd: fd, size: Int(st.st_size), path: path)
    }

    /// `count` bytes from `offset` (the caller keeps the range inside `size`).
    func read(at offset: Int, count: Int) throws -> [UInt8] {
        guard offset >= 0, count >= 0, offset <= size - count else {
            throw FileError.format("'\(path)': bytes \(offset)..<\(offset + count) lie outside the file of \(size) bytes")
        }
        if fd < 0 { return Array(bytes[offset..<offset + count]) }
        var out = [UInt8](repeating: 0, count: count)
        var done = 0
        try out.withUnsafeMutableBytes { buf in
            while done < count {
                let n = pread(fd, buf.baseAddress! + done, count - done, off_t(offset + done))
                if n < 0 && errno == EINTR { continue }
                guard n > 0 else { throw FileError.io("cannot read '\(path)': \(n == 0 ? "the file shrank while reading" : FileIO.errnoText())") }
                done += n
            }
        }
        return out
    }
}

enum FileIO {
    static func errnoText() -> String { String(cString: strerror(errno)) }

    /// The whole of a regular file, as bytes.
    static func read(_ path: String) throws -> [UInt8] {
        let file = try ByteSource.open(path)
        return try file.read(at: 0, count: file.size)
    }

    /// Writes a file atomically: a temporary file in the same folder, fsync, then rename,
    /// so a crash or a full disk never leaves a half-written file under `path`.
    /// A symbolic link at `path` is written through (its target is replaced, the link stays).
    /// Temporary files left by killed writers of this host are removed first.
    /// `produce` is called with a writer function that appends bytes.
    static func writeAtomically(_ path: String, _ produce: ((UnsafeRawBufferPointer) throws -> Void) throws -> Void) throws {
        let path = try resolvingLinks(path)
        removeOrphanedTemporaries(of: path)
        let tmp = temporaryPrefix(of: path) + "\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        let fd = open(SystemPath.encode(tmp), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw FileError.io("cannot create '\(tmp)': \(errnoText())") }
        var ok = false
        defer {
            if !ok { close(fd); unlink(SystemPath.encode(tmp)) }
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
        guard rename(SystemPath.encode(tmp), SystemPath.encode(path)) == 0 else {
            let why = errnoText()
            unlink(SystemPath.encode(tmp))
            throw FileError.io("cannot move '\(tmp)' to '\(path)': \(why)")
        }
        // Make the rename itself durable.
        let dfd = open(SystemPath.encode(folder(of: path)), O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if dfd >= 0 { _ = fsync(dfd); close(dfd) }
    }

    /// "<path>.tmp-<host>-": temporaries of this host; the writer's pid and a random tag follow.
    private static func temporaryPrefix(of path: String) -> String {
        var name = [CChar](repeating: 0, count: 256)
        let host = gethostname(&name, name.count - 1) == 0 ? String(cString: name) : "host"
        return path + ".tmp-" + host.filter { $0 != "/" && $0 != "-" } + "-"
    }

    static func folder(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "." }
        let dir = String(path[..<slash])
        return dir.isEmpty ? "/" : dir
    }

    /// The file a chain of symbolic links at `path` ends at (the path itself when it is no link).
    static func resolvingLinks(_ path: String) throws -> String {
        var current = path
        for _ in 0..<40 {
            var st = stat()
            guard lstat(SystemPath.encode(current), &st) == 0, (st.st_mode & S_IFMT) == S_IFLNK else { return current }
            var buf = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
            let n = readlink(SystemPath.encode(current), &buf, buf.count - 1)
            guard n > 0 else { throw FileError.io("cannot read the link '\(current)': \(errnoText())") }
            let target = SystemPath.decode(buf[0..<n].map { UInt8(bitPattern: $0) })
            current = target.hasPrefix("/") ? target : folder(of: current) + "/" + target
        }
        throw FileError.io("'\(path)': too many levels of symbolic links")
    }

    /// Deletes "<path>.tmp-<this host>-<pid>-<tag>" files whose writer process is gone (killed
    /// while saving). Best effort: a file that cannot be removed is left as it is.
    static func removeOrphanedTemporaries(of path: String) {
        let prefix = temporaryPrefix(of: path)
        let dir = folder(of: path)
        let namePrefix = String(prefix.split(separator: "/", omittingEmptySubsequences: false).last!)
        guard let d = opendir(SystemPath.encode(dir)) else { return }
        defer { closedir(d) }
        while let entry = readdir(d) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                SystemPath.decode(cString: raw.bindMemory(to: CChar.self).baseAddress!)
            }
            guard name.hasPrefix(namePrefix) else { continue }
            let rest = name.dropFirst(namePrefix.count)
            guard let dash = rest.firstIndex(of: "-"), let pid = Int32(rest[..<dash]), pid > 0 else { continue }
            if pid != getpid() && kill(pid, 0) != 0 && errno == ESRCH { unlink(SystemPath.encode(dir + "/" + name)) }
        }
    }
}
