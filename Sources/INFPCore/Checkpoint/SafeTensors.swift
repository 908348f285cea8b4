/// The safetensors format: an 8-byte little-endian header length, a JSON header naming each
/// tensor's dtype, shape and byte range, an optional "__metadata__" string map, then the data.
public enum SafeTensors {
    public enum DType: String { case f32 = "F32", f64 = "F64", i64 = "I64", i32 = "I32", f16 = "F16", bf16 = "BF16" }

    /// One tensor as stored.
    public struct Entry {
        public let name: String
        public let dtype: DType
        public let shape: [Int]
        let begin: Int, end: Int
    }

    /// A parsed file: metadata and entries in header order. Tensor data is read on demand
    /// from `source` (the open file, or bytes in memory), so a file is never read whole.
    public struct File {
        public let metadata: [(String, String)]
        public let entries: [Entry]
        let source: ByteSource
        let dataStart: Int

        public func entry(_ name: String) -> Entry? { entries.first { $0.name == name } }
        public func metadata(_ key: String) -> String? { metadata.first { $0.0 == key }?.1 }

        /// Total element count of every tensor in the file.
        public var elementCount: Int { entries.reduce(0) { $0 + $1.shape.reduce(1, *) } }

        /// The tensor as float32 (F32 as is; F64, F16, BF16 and integers converted).
        public func tensor(_ e: Entry) throws -> Tensor {
            let bytes = try source.read(at: dataStart + e.begin, count: e.end - e.begin)
            let t = Tensor(uninitialized: e.shape)
            bytes.withUnsafeBytes { raw in
                guard let base = raw.baseAddress else { return }
                for i in 0..<t.count {
                    switch e.dtype {
                    case .f32: t.data[i] = base.loadUnaligned(fromByteOffset: 4 * i, as: Float.self)
                    case .f64: t.data[i] = Float(base.loadUnaligned(fromByteOffset: 8 * i, as: Double.self))
                    case .i64: t.data[i] = Float(base.loadUnaligned(fromByteOffset: 8 * i, as: Int64.self))
                    case .i32: t.data[i] = Float(base.loadUnaligned(fromByteOffset: 4 * i, as: Int32.self))
                    case .f16: t.data[i] = Float(Float16(bitPattern: base.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self)))
                    case .bf16: t.data[i] = Float(bitPattern: UInt32(base.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self)) << 16)
                    }
                }
            }
            return t
        }

        /// The first element as an integer (for counters like num_batches_tracked).
        public func integer(_ e: Entry) throws -> Int64 {
            guard e.end > e.begin else { throw FileError.format("tensor '\(e.name)' is empty; expected a counter") }
            switch e.dtype {
            case .i64: return try source.read(at: dataStart + e.begin, count: 8).withUnsafeBytes { $0.loadUnaligned(as: Int64.self) }
            case .i32: return Int64(try source.read(at: dataStart + e.begin, count: 4).withUnsafeBytes { $0.loadUnaligned(as: Int32.self) })
            default:
                let t = try tensor(e)
                let v = withExtendedLifetime(t) { t.data[0] }
                guard v.isFinite, abs(v) < 9e18 else { throw FileError.format("tensor '\(e.name)' holds \(v); expected a whole number") }
                return Int64(v)
            }
        }
    }

    static func byteSize(_ d: DType) -> Int {
        switch d { case .f32, .i32: return 4; case .f64, .i64: return 8; case .f16, .bf16: return 2 }
    }

    /// Largest header accepted (the official model's header is about 30 KB).
    static let maxHeaderBytes = 100_000_000

    /// Opens and validates a safetensors file: the 8-byte length and the header are read and
    /// checked against the file's size first; tensor data stays on disk until asked for.
    public static func read(_ path: String) throws -> File {
        try parse(try ByteSource.open(path), name: path)
    }

    /// Parses a whole safetensors file held in memory.
    static func parse(_ bytes: [UInt8], source: String) throws -> File {
        try parse(ByteSource(bytes: bytes), name: source)
    }

    private static func parse(_ file: ByteSource, name: String) throws -> File {
        let prefix = try file.read(at: 0, count: min(8, file.size))
        let length = headerLength(prefix)
        guard let n = length, n >= 2, n <= UInt64(file.size - 8), n <= UInt64(maxHeaderBytes) else {
            throw invalid(name, prefix.count < 8 ? "only \(file.size) bytes" : "header length \(length ?? 0) does not fit the file of \(file.size) bytes")
        }
        return try parse(header: try file.read(at: 8, count: Int(n)), source: file, name: name)
    }

    private static func invalid(_ source: String, _ m: String) -> FileError {
        .format("'\(source)' is not a valid safetensors file: \(m)")
    }

    private static func headerLength(_ prefix: [UInt8]) -> UInt64? {
        guard prefix.count >= 8 else { return nil }
        var n: UInt64 = 0
        for i in 0..<8 { n |= UInt64(prefix[i]) << (8 * UInt64(i)) }
        return n
    }

    /// Checks every entry of the header: dtype, shape, a byte range inside the data that
    /// matches the shape, no duplicate names and no two tensors sharing bytes.
    private static func parse(header headerBytes: [UInt8], source: ByteSource, name path: String) throws -> File {
        func bad(_ m: String) -> FileError { invalid(path, m) }
        let header: JSON
        do { header = try JSON.parse(String(decoding: headerBytes, as: UTF8.self)) } catch { throw bad("header: \(error)") }
        guard let pairs = header.object else { throw bad("header is not a JSON object") }
        let dataStart = 8 + headerBytes.count
        let dataSize = source.size - dataStart
        var metadata: [(String, String)] = []
        var entries: [Entry] = []
        var names = Set<String>()
        for (name, value) in pairs {
            guard names.insert(name).inserted else { throw bad("'\(name)' appears twice in the header") }
            if name == "__metadata__" {
                guard let m = value.object else { throw bad("__metadata__ is not an object") }
                for (k, v) in m {
                    guard let s = v.string else { throw bad("__metadata__[\(k)] is not a string") }
                    guard !metadata.contains(where: { $0.0 == k }) else { throw bad("__metadata__[\(k)] appears twice") }
                    metadata.append((k, s))
                }
                continue
            }
            guard let dtypeName = value["dtype"]?.string else { throw bad("tensor '\(name)' has no dtype") }
            guard let dtype = DType(rawValue: dtypeName) else { throw bad("tensor '\(name)' has unsupported dtype \(dtypeName)") }
            guard let dims = value["shape"]?.array?.map({ $0.int }), dims.count <= 16, dims.allSatisfy({ $0 != nil && $0! >= 0 }) else {
                throw bad("tensor '\(name)' has no valid shape")
            }
            let shape = dims.map { $0! }
            guard let offsets = value["data_offsets"]?.array?.compactMap({ $0.int }), offsets.count == 2 else {
                throw bad("tensor '\(name)' has no valid data_offsets")
            }
            var count = 1
            for d in shape {
                let (p, o) = count.multipliedReportingOverflow(by: d)
                guard !o, p < 1 << 40 else { throw bad("tensor '\(name)' shape \(shape) is too large") }
                count = p
            }
            guard offsets[0] >= 0, offsets[1] >= offsets[0], offsets[1] <= dataSize,
                  offsets[1] - offsets[0] == count * byteSize(dtype) else {
                throw bad("tensor '\(name)' byte range \(offsets) does not match shape \(shape) \(dtypeName) in \(dataSize) data bytes")
            }
            entries.append(Entry(name: name, dtype: dtype, shape: shape, begin: offsets[0], end: offsets[1]))
        }
        let byStart = entries.filter { $0.end > $0.begin }.sorted { $0.begin < $1.begin }
        for (a, b) in zip(byStart, byStart.dropFirst()) where b.begin < a.end {
            throw bad("tensors '\(a.name)' and '\(b.name)' share bytes (\(a.begin)..<\(a.end) and \(b.begin)..<\(b.end))")
        }
        return File(metadata: metadata, entries: entries, source: source, dataStart: dataStart)
    }

    /// A tensor to write: float32 values or an int64 counter.
    public enum Value {
        case float32(Tensor)
        case int64(shape: [Int], values: [Int64])
    }

    /// Writes tensors (in the given order) and metadata atomically.
    public static func write(_ path: String, tensors: [(String, Value)], metadata: [(String, String)]) throws {
        var pairs: [(String, JSON)] = []
        if !metadata.isEmpty { pairs.append(("__metadata__", .object(metadata.map { ($0.0, .string($0.1)) }))) }
        var offset = 0
        for (name, value) in tensors {
            let (dtype, shape, bytes): (String, [Int], Int)
            switch value {
            case let .float32(t): (dtype, shape, bytes) = ("F32", t.shape, 4 * t.count)
            case let .int64(s, v): (dtype, shape, bytes) = ("I64", s, 8 * v.count)
            }
            pairs.append((name, .object([("dtype", .string(dtype)), ("shape", .array(shape.map { .number(Double($0)) })),
                                         ("data_offsets", .array([.number(Double(offset)), .number(Double(offset + bytes))]))])))
            offset += bytes
        }
        var header = Array(JSON.object(pairs).serialized.utf8)
        while (8 + header.count) % 8 != 0 { header.append(0x20) }  // align the data to 8 bytes
        try FileIO.writeAtomically(path) { emit in
            var len = UInt64(header.count).littleEndian
            try withUnsafeBytes(of: &len) { try emit($0) }
            try header.withUnsafeBytes { try emit($0) }
            for (_, value) in tensors {
                switch value {
                case let .float32(t):
                    // Little-endian hosts only (x86_64, arm64): float32 bytes are written as they are.
                    try emit(UnsafeRawBufferPointer(start: t.data, count: 4 * t.count))
                case let .int64(_, v):
                    try v.withUnsafeBytes { try emit($0) }
                }
            }
        }
    }
}
