/// File names are bytes; Swift strings are Unicode. A name that is not UTF-8 (Latin-1 folders on
/// an old share, say) is carried through a String with each invalid byte as the private-use
/// scalar U+10FF00 + byte, as Python's surrogateescape does, so that it reaches the system
/// unchanged instead of being "repaired" into another, missing file.
public enum SystemPath {
    private static let escapeBase: UInt32 = 0x10FF00

    /// The name of NUL-terminated bytes as a String.
    public static func decode(cString: UnsafePointer<CChar>) -> String {
        var n = 0
        while cString[n] != 0 { n += 1 }
        return decode(UnsafeBufferPointer(start: UnsafeRawPointer(cString).assumingMemoryBound(to: UInt8.self), count: n))
    }

    /// The name of `bytes` as a String.
    public static func decode<C: Collection>(_ bytes: C) -> String where C.Element == UInt8 {
        let all = Array(bytes)
        var out = String.UnicodeScalarView()
        var parser = Unicode.UTF8.ForwardParser()
        var it = all.makeIterator()
        var at = 0
        while true {
            switch parser.parseScalar(from: &it) {
            case let .valid(encoded):
                out.append(Unicode.UTF8.decode(encoded))
                at += encoded.count
            case let .error(length):
                for b in all[at..<at + length] { out.append(Unicode.Scalar(escapeBase + UInt32(b))!) }
                at += length
            case .emptyInput:
                return String(out)
            }
        }
    }

    /// The bytes of a name, NUL-terminated, for system calls.
    static func encode(_ path: String) -> [CChar] {
        var out: [CChar] = []
        for s in path.unicodeScalars {
            if s.value >= escapeBase && s.value <= escapeBase + 0xff {
                out.append(CChar(bitPattern: UInt8(s.value - escapeBase)))
            } else {
                out.append(contentsOf: String(s).utf8.map { CChar(bitPattern: $0) })
            }
        }
        out.append(0)
        return out
    }
}
