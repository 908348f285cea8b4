import CINFP
import Glibc
import CFFTW
@testable import INFPCore
import XCTest
@testable import INFP

/// Regression tests of the inputs that once crashed or hung the host process (issue 11):
/// struct sizes inside a field, special and huge files, checkpoints that name a huge model or
/// carry a memory that does not fit, absurd sizes, lock re-entry from fit's callback.
final class ReliabilityAPITests: XCTestCase {
    private var dir = ""

    override func setUp() {
        dir = "/tmp/infp-reliability-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        mkdir(dir, 0o755)
    }

    override func tearDown() {
        if let d = opendir(dir) {
            while let e = readdir(d) {
                let name = withUnsafeBytes(of: e.pointee.d_name) { String(cString: $0.bindMemory(to: CChar.self).baseAddress!) }
                if name != "." && name != ".." { unlink(dir + "/" + name) }
            }
            closedir(d)
        }
        rmdir(dir)
    }

    private func tinyModel() -> OpaquePointer {
        var p = CINFP.infp_model_default_params()
        var model: OpaquePointer?
        "tiny".withCString { name in
            p.preset = name; p.n_threads = 1
            XCTAssertEqual(CINFP.infp_model_create(&p, &model), INFP_OK, lastError)
        }
        return model!
    }

    private func load(_ path: String) -> (infp_status, OpaquePointer?) {
        var model: OpaquePointer?
        let s = CINFP.infp_model_load(path, 1, &model)
        return (s, model)
    }

    private func seconds(_ body: () -> Void) -> Double {
        var a = timespec(), b = timespec()
        clock_gettime(CLOCK_MONOTONIC, &a); body(); clock_gettime(CLOCK_MONOTONIC, &b)
        return Double(b.tv_sec - a.tv_sec) + Double(b.tv_nsec - a.tv_nsec) * 1e-9
    }

    func testStructSizesMustEndOnAField() {
        var model: OpaquePointer?
        var p = CINFP.infp_model_default_params()
        for size in [10, 12, 20, 21] {  // inside the preset or config_json pointer
            p.size = size
            assertFails(CINFP.infp_model_create(&p, &model), INFP_ERR_INVALID_ARGUMENT, "ends inside a field")
            XCTAssertNil(model)
        }
        p.size = MemoryLayout<UInt>.size  // only `size`: every field keeps its default
        XCTAssertEqual(CINFP.infp_model_create(&p, &model), INFP_OK, lastError)
        CINFP.infp_model_free(model)

        let m = tinyModel()
        defer { CINFP.infp_model_free(m) }
        var fit = CINFP.infp_fit_default_params()
        var px = [UInt8](repeating: 0, count: 6 * 32 * 48 * 3)
        px.withUnsafeMutableBufferPointer { b in
            var v = infp_video(pixels: b.baseAddress, frames: 6, height: 32, width: 48)
            for size in [81, 84, 90] {
                fit.size = size
                assertFails(CINFP.infp_model_fit(m, &v, 1, &fit), INFP_ERR_INVALID_ARGUMENT, "ends inside a field")
            }
        }
        XCTAssertTrue(infp_fit_params.fieldEnds.contains(MemoryLayout<infp_fit_params>.offset(of: \infp_fit_params.resume_path)!))
    }

    func testSpecialFilesAreRefusedAtOnce() throws {
        let fifo = dir + "/pipe.safetensors"
        XCTAssertEqual(mkfifo(fifo, 0o644), 0)
        var result: (infp_status, OpaquePointer?) = (INFP_OK, nil)
        XCTAssertLessThan(seconds { result = load(fifo) }, 2)
        assertFails(result.0, INFP_ERR_IO, "FIFO")
        assertFails(load(dir).0, INFP_ERR_IO, "folder")
        assertFails(load("/dev/zero").0, INFP_ERR_IO, "device")

        // A 64 GB sparse file: only its header is read.
        let sparse = dir + "/sparse.safetensors"
        let fd = open(sparse, O_CREAT | O_WRONLY, 0o644)
        XCTAssertEqual(ftruncate(fd, 64 << 30), 0)
        close(fd)
        XCTAssertLessThan(seconds { result = load(sparse) }, 2)
        assertFails(result.0, INFP_ERR_FORMAT, "header length")
    }

    /// Writes `tensors` with `metadata` as a safetensors file (through the engine's writer).
    private func write(_ path: String, _ file: SafeTensors.File, metadata: [(String, String)],
                       replacing: [String: Tensor] = [:]) throws {
        let tensors: [(String, SafeTensors.Value)] = try file.entries.map { e in
            if let t = replacing[e.name] { return (e.name, .float32(t)) }
            if e.dtype == .i64 { return (e.name, .int64(shape: e.shape, values: [try file.integer(e)] + Array(repeating: 0, count: max(0, e.shape.reduce(1, *) - 1)))) }
            return (e.name, .float32(try file.tensor(e)))
        }
        try SafeTensors.write(path, tensors: tensors, metadata: metadata)
    }

    /// A tiny model that remembered a short video, saved; returns its path.
    private func savedWithMemory() -> String {
        let m = tinyModel()
        defer { CINFP.infp_model_free(m) }
        var px = [UInt8](repeating: 0, count: 12 * 32 * 48 * 3)
        for i in px.indices { px[i] = UInt8((i * 7 + i / 4608 * 13) % 251) }
        px.withUnsafeMutableBufferPointer { b in
            var v = infp_video(pixels: b.baseAddress, frames: 12, height: 32, width: 48)
            XCTAssertEqual(CINFP.infp_model_remember(m, &v, 1), INFP_OK, lastError)
        }
        let path = dir + "/memory.safetensors"
        XCTAssertEqual(CINFP.infp_model_save(m, path), INFP_OK, lastError)
        return path
    }

    func testMemoryThatDoesNotFitTheModelIsRefusedAtLoad() throws {
        let path = savedWithMemory()
        let (ok, model) = load(path)
        XCTAssertEqual(ok, INFP_OK, lastError)
        CINFP.infp_model_free(model)
        let file = try SafeTensors.read(path)
        let layout = file.metadata(NormalMemory.metadataKey)!
        let bad = dir + "/bad.safetensors"
        // Layouts that multiply out to the same descriptor size, but not the model's.
        for (c, gh, gw) in [(-1, -1, 192), (1, 1, 192), (192, 1, 1)] {
            var meta = file.metadata.filter { $0.0 != NormalMemory.metadataKey }
            meta.append((NormalMemory.metadataKey, "{\"channels\":\(c),\"grid_height\":\(gh),\"grid_width\":\(gw)}"))
            try write(bad, file, metadata: meta)
            assertFails(load(bad).0, INFP_ERR_FORMAT, "memory", "layout")
        }
        XCTAssertTrue(layout.contains("\"channels\""))
        // Non-finite features.
        let features = try file.tensor(file.entry("memory.features")!)
        features.data[5] = .nan
        try write(bad, file, metadata: file.metadata, replacing: ["memory.features": features])
        assertFails(load(bad).0, INFP_ERR_FORMAT, "memory", "nan")
    }

    /// A fresh tiny model saved, and the file read back.
    private func savedTiny() throws -> SafeTensors.File {
        let m = tinyModel()
        let path = dir + "/tiny.safetensors"
        XCTAssertEqual(CINFP.infp_model_save(m, path), INFP_OK, lastError)
        CINFP.infp_model_free(m)
        return try SafeTensors.read(path)
    }

    func testCheckpointNamingAHugeModelIsRefusedBeforeBuildingIt() throws {
        let file = try savedTiny()
        let bad = dir + "/huge.safetensors"
        for config in ["{\"width_div\": 1, \"blocks\": [64, 64, 64, 64, 64, 64]}", "{\"width_div\": 1}"] {
            let meta = file.metadata.map { $0.0 == "infp_config" ? ($0.0, config) : $0 }
            try write(bad, file, metadata: meta)
            var status = INFP_OK
            XCTAssertLessThan(seconds { status = load(bad).0 }, 1)
            assertFails(status, INFP_ERR_FORMAT, "fewer")
        }
    }

    func testAbsurdSizesReturnErrors() {
        // conv2d whose patch matrix would hold 2^40 floats: refused before any buffer is read.
        var one: Float = 0, out: Float = 0
        let xShape: [Int64] = [1, 1024, 1, 1 << 20], wShape: [Int64] = [1, 1024, 1, 1024]
        let yShape: [Int64] = [1, 1, 1, (1 << 20) - 1023]
        var params = CINFP.infp_conv2d_default_params()
        params.n_threads = 1
        let s = CINFP.infp_conv2d(&one, xShape, &one, wShape, nil, &params, &out, yShape)
        assertFails(s, INFP_ERR_OUT_OF_MEMORY, "floats")
    }

    func testAbsurdCountsOfScoresAndVideosReturnOutOfMemory() {
        // Refused from the counts alone, before the buffers are read.
        var labels: Int32 = 0, scores = 0.0, auc = 0.0
        assertFails(CINFP.infp_roc_auc(&labels, &scores, 1 << 36, &auc), INFP_ERR_OUT_OF_MEMORY, "memory")
        let m = tinyModel()
        defer { CINFP.infp_model_free(m) }
        var px = [UInt8](repeating: 0, count: 6 * 32 * 48 * 3)
        px.withUnsafeMutableBufferPointer { b in
            // A million 6-frame videos: 27 GB of frames to copy.
            var videos = [infp_video](repeating: infp_video(pixels: b.baseAddress, frames: 6, height: 32, width: 48), count: 1_000_000)
            assertFails(CINFP.infp_model_remember(m, &videos, Int64(videos.count)), INFP_ERR_OUT_OF_MEMORY, "memory")
        }
    }

    func testCountersAndNonFiniteWeightsInCheckpoints() throws {
        let file = try savedTiny()
        let counter = file.entries.first { $0.name.hasSuffix("num_batches_tracked") }!.name
        let weight = file.entries.first { $0.name.hasSuffix(".weight") }!
        let bad = dir + "/bad.safetensors"

        // A counter at the top of its range: training must not overflow it.
        let tensors: [(String, SafeTensors.Value)] = try file.entries.map { e in
            e.dtype == .i64 ? (e.name, .int64(shape: e.shape, values: [e.name == counter ? Int64.max : try file.integer(e)]))
                            : (e.name, .float32(try file.tensor(e)))
        }
        try SafeTensors.write(bad, tensors: tensors, metadata: file.metadata)
        let (s, loaded) = load(bad)
        XCTAssertEqual(s, INFP_OK, lastError)
        defer { CINFP.infp_model_free(loaded) }
        var rng = Rng(seed: 9)
        let clips = (0..<2 * 4 * 3 * 32 * 48).map { _ in rng.uniform(-1, 1) }, targets = (0..<2 * 3 * 32 * 48).map { _ in rng.uniform(-1, 1) }
        var loss: Float = 0
        XCTAssertEqual(CINFP.infp_model_train_step(loaded, clips, [2, 4, 3, 32, 48], targets, [2, 3, 32, 48], 0, &loss), INFP_OK, lastError)
        var value: Float = 0
        XCTAssertEqual(CINFP.infp_model_tensor_get(loaded, counter, &value, 1), INFP_OK, lastError)
        XCTAssertGreaterThan(value, 9e18)
        var huge: Float = 1e30
        assertFails(CINFP.infp_model_tensor_set(loaded, counter, &huge, 1), INFP_ERR_INVALID_ARGUMENT, "whole number")

        // NaN weights: refused, naming the tensor.
        let w = try file.tensor(weight)
        w.data[0] = .nan
        try write(bad, file, metadata: file.metadata, replacing: [weight.name: w])
        assertFails(load(bad).0, INFP_ERR_FORMAT, weight.name, "NaN")
    }

    func testPredictInChunksMatchesOneClipAtATime() {
        let m = tinyModel()
        defer { CINFP.infp_model_free(m) }
        let clips = 19, clipSize = 4 * 3 * 32 * 48, frameSize = 3 * 32 * 48
        var rng = Rng(seed: 5)
        let x = (0..<clips * clipSize).map { _ in rng.uniform(-1, 1) }
        var all = [Float](repeating: 0, count: clips * frameSize)
        XCTAssertEqual(CINFP.infp_model_predict(m, x, [Int64(clips), 4, 3, 32, 48], &all, [Int64(clips), 3, 32, 48]), INFP_OK, lastError)
        for c in [0, 8, 18] {
            var one = [Float](repeating: 0, count: frameSize)
            let slice = Array(x[c * clipSize..<(c + 1) * clipSize])
            XCTAssertEqual(CINFP.infp_model_predict(m, slice, [1, 4, 3, 32, 48], &one, [1, 3, 32, 48]), INFP_OK, lastError)
            for i in stride(from: 0, to: frameSize, by: 97) { XCTAssertEqual(all[c * frameSize + i], one[i], accuracy: 1e-5) }
        }
    }

    /// fit's callback may read and save the model it trains, but not change it: the call
    /// says why instead of deadlocking or releasing fit's lock.
    func testFitCallbackMayReadButNotChangeTheModel() {
        let m = tinyModel()
        defer { CINFP.infp_model_free(m) }
        final class Probe { var model: OpaquePointer?; var path = ""; var save = INFP_ERR_INTERNAL; var change = INFP_OK; var message = "" }
        let probe = Probe()
        probe.model = m
        probe.path = dir + "/from-callback.safetensors"
        var px = [UInt8](repeating: 0, count: 8 * 32 * 48 * 3)
        for i in px.indices { px[i] = UInt8(i % 253) }
        px.withUnsafeMutableBufferPointer { b in
            var v = infp_video(pixels: b.baseAddress, frames: 8, height: 32, width: 48)
            var fit = CINFP.infp_fit_default_params()
            fit.epochs = 1; fit.batch_size = 2
            fit.user = Unmanaged.passUnretained(probe).toOpaque()
            fit.on_step = { _, user in
                let probe = Unmanaged<Probe>.fromOpaque(user!).takeUnretainedValue()
                if probe.change == INFP_OK {
                    probe.save = CINFP.infp_model_save(probe.model, probe.path)
                    probe.change = CINFP.infp_model_set_threads(probe.model, 2)
                    probe.message = String(cString: CINFP.infp_last_error())
                }
                return true
            }
            XCTAssertEqual(CINFP.infp_model_fit(m, &v, 1, &fit), INFP_OK, lastError)
        }
        XCTAssertEqual(probe.save, INFP_OK)
        XCTAssertEqual(probe.change, INFP_ERR_INVALID_ARGUMENT)
        XCTAssertTrue(probe.message.contains("infp_model_fit"), probe.message)
        let (s, loaded) = load(probe.path)
        XCTAssertEqual(s, INFP_OK, lastError)
        CINFP.infp_model_free(loaded)
        // fit's lock was released properly: the model can be changed afterwards.
        XCTAssertEqual(CINFP.infp_model_set_threads(m, 1), INFP_OK, lastError)
    }

    func testRefusedFFTPlanIsAnErrorNotATrap() {
        let saved = FFT.planFlags
        FFT.planFlags = UInt32(FFTW_ESTIMATE | FFTW_WISDOM_ONLY)  // no wisdom: FFTW refuses to plan
        defer { FFT.planFlags = saved }
        let x = [Float](repeating: 1, count: 3 * 13 * 17)
        var y = [Float](repeating: 0, count: 3 * 13 * 9 * 2)
        assertFails(CINFP.infp_rfft2(x, 3, [3, 13, 17], 1, 2, INFP_FFT_BACKWARD, &y, Int64(y.count)), INFP_ERR_INTERNAL, "FFTW could not plan")
    }
}
