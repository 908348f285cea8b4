import Glibc
import XCTest
@testable import INFPCore

/// Engine-level regression tests of issue 11: checkpoint headers that must be refused, atomic
/// saves through links and after killed writers, thread budgets that are upper bounds, and
/// calibration on footage without variation.
final class ReliabilityTests: XCTestCase {
    /// A safetensors file from a header text and `dataBytes` zero bytes of data.
    private func file(header: String, dataBytes: Int) -> [UInt8] {
        var h = Array(header.utf8)
        while h.count % 8 != 0 { h.append(0x20) }
        var out = [UInt8](repeating: 0, count: 8)
        for i in 0..<8 { out[i] = UInt8((h.count >> (8 * i)) & 0xff) }
        return out + h + [UInt8](repeating: 0, count: dataBytes)
    }

    private func assertRefused(_ header: String, dataBytes: Int, _ fragment: String, line: UInt = #line) {
        XCTAssertThrowsError(try SafeTensors.parse(file(header: header, dataBytes: dataBytes), source: "t"), line: line) { error in
            XCTAssertTrue("\(error)".contains(fragment), "\(error)", line: line)
        }
    }

    func testHeadersThatMustBeRefused() throws {
        let a = "\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}"
        XCTAssertEqual(try SafeTensors.parse(file(header: "{\(a)}", dataBytes: 8), source: "t").entries.count, 1)
        assertRefused("{\(a),\(a)}", dataBytes: 8, "appears twice")
        assertRefused("{\(a),\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}", dataBytes: 12, "share bytes")
        assertRefused("{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", dataBytes: 8, "does not match")
        assertRefused("{\"a\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,8]}}", dataBytes: 8, "no valid shape")
        assertRefused("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", dataBytes: 4, "does not match")
        assertRefused("{\"__metadata__\":{\"k\":\"1\",\"k\":\"2\"}}", dataBytes: 0, "appears twice")
        assertRefused("[" + String(repeating: "[", count: 5000) + "]", dataBytes: 0, "nested too deeply")
    }

    private var dir = ""

    override func setUp() {
        dir = "/tmp/infp-core-reliability-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        mkdir(dir, 0o755)
    }

    private func names() -> [String] {
        guard let d = opendir(dir) else { return [] }
        defer { closedir(d) }
        var out: [String] = []
        while let e = readdir(d) {
            let name = withUnsafeBytes(of: e.pointee.d_name) { String(cString: $0.bindMemory(to: CChar.self).baseAddress!) }
            if name != "." && name != ".." { out.append(name) }
        }
        return out.sorted()
    }

    override func tearDown() {
        for n in names() { unlink(dir + "/" + n) }
        rmdir(dir)
    }

    private func write(_ path: String, _ value: Float) throws {
        try SafeTensors.write(path, tensors: [("x", .float32(Tensor(shape: [1], values: [value])))], metadata: [])
    }

    private func value(_ path: String) throws -> Float {
        let f = try SafeTensors.read(path)
        let t = try f.tensor(f.entry("x")!)
        return withExtendedLifetime(t) { t.data[0] }
    }

    func testSaveWritesThroughSymbolicLinks() throws {
        try write(dir + "/target.safetensors", 1)
        XCTAssertEqual(symlink("target.safetensors", dir + "/link.safetensors"), 0)
        try write(dir + "/link.safetensors", 2)
        var st = stat()
        XCTAssertEqual(lstat(dir + "/link.safetensors", &st), 0)
        XCTAssertEqual(st.st_mode & S_IFMT, S_IFLNK, "the link was replaced by a file")
        XCTAssertEqual(try value(dir + "/target.safetensors"), 2)
        XCTAssertEqual(names(), ["link.safetensors", "target.safetensors"])
    }

    func testTemporariesOfKilledWritersAreRemovedByTheNextSave() throws {
        let path = dir + "/m.safetensors"
        var host = [CChar](repeating: 0, count: 256)
        gethostname(&host, 255)
        let h = String(cString: host).filter { $0 != "/" && $0 != "-" }
        // pid_max is at most 2^22: these writers cannot be alive. A live process's file stays,
        // and so does another host's (a shared folder).
        let orphan = "m.safetensors.tmp-\(h)-4194400-77", live = "m.safetensors.tmp-\(h)-1-5", other = "m.safetensors.tmp-elsewhere-4194400-9"
        for n in [orphan, live, other] { close(open(dir + "/" + n, O_CREAT | O_WRONLY, 0o644)) }
        try write(path, 3)
        XCTAssertEqual(names(), [live, other, "m.safetensors"].sorted())
        XCTAssertEqual(try value(path), 3)
    }

    func testSpecialFilesAreRefused() {
        let fifo = dir + "/p"
        XCTAssertEqual(mkfifo(fifo, 0o644), 0)
        XCTAssertThrowsError(try SafeTensors.read(fifo)) { XCTAssertTrue("\($0)".contains("FIFO"), "\($0)") }
        XCTAssertThrowsError(try SafeTensors.read(dir)) { XCTAssertTrue("\($0)".contains("folder"), "\($0)") }
    }

    func testThreadCountIsAnUpperBound() {
        final class Peak: @unchecked Sendable {
            var mutex = pthread_mutex_t(), running = 0, peak = 0
            init() { pthread_mutex_init(&mutex, nil) }
            func enter() { pthread_mutex_lock(&mutex); running += 1; peak = max(peak, running); pthread_mutex_unlock(&mutex) }
            func leave() { pthread_mutex_lock(&mutex); running -= 1; pthread_mutex_unlock(&mutex) }
        }
        for threads in [1, 2] {
            let p = Peak()
            var seen = [Int](repeating: 0, count: 40)
            seen.withUnsafeMutableBufferPointer { s in
                let s = s
                Parallel.withThreads(threads) {
                    Parallel.forEach(40) { i in p.enter(); usleep(2000); s[i] += 1; p.leave() }
                }
            }
            XCTAssertLessThanOrEqual(p.peak, threads)
            XCTAssertEqual(seen, [Int](repeating: 1, count: 40), "every item runs once")
        }
    }

    func testCalibrationNeedsScoresThatVary() {
        XCTAssertThrowsError(try Calibration.fit(scores: [[3, 3, 3, 3]], method: "memory", falseAlarmRate: 0.1)) {
            XCTAssertTrue("\($0)".contains("do not vary"), "\($0)")
        }
        XCTAssertNoThrow(try Calibration.fit(scores: [[3, 3.5, 2.5, 3]], method: "memory", falseAlarmRate: 0.1))
    }
}
