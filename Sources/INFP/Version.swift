import CINFP
import INFPCore

/// The library version; python/infp checks its own against it at import.
let infpVersionString: StaticString = "0.1.0"

@_cdecl("infp_version")
public func infp_version() -> UnsafePointer<CChar> {
    UnsafeRawPointer(infpVersionString.utf8Start).assumingMemoryBound(to: CChar.self)
}
