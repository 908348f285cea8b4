import XCTest
import CINFP
@testable import INFP

final class VersionTests: XCTestCase {
    func testVersionIsSemver() {
        let v = String(cString: infp_version())
        XCTAssertEqual(v.split(separator: ".").count, 3)
    }
}
