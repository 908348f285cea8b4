import CINFP
import XCTest

/// Status checks shared by the tests of the C entry points.
extension XCTestCase {
    /// The calling thread's last error message (infp_last_error).
    var lastError: String { String(cString: CINFP.infp_last_error()) }

    /// Asserts a failing status and a last-error message that contains every fragment.
    func assertFails(_ status: infp_status, _ expected: infp_status, _ fragments: String...,
                     file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(status, expected, "status \(String(cString: CINFP.infp_status_name(status))), message: \(lastError)",
                       file: file, line: line)
        let message = lastError
        XCTAssertFalse(message.isEmpty, "empty infp_last_error", file: file, line: line)
        for f in fragments {
            XCTAssertTrue(message.contains(f), "'\(message)' does not mention '\(f)'", file: file, line: line)
        }
    }
}
