import CINFP
import Dispatch
import Glibc
import INFPCore
import XCTest
@testable import INFP

/// The live-stream C entry points: results against batch scoring, calibration, bad input
/// (NULLs, sizes, strides, channels, error-map counts, structs, freed handles), the model
/// freed before its stream, and several streams on one model on several threads.
final class StreamAPITests: XCTestCase {
    private func tinyModel(seed: UInt64 = 1) -> OpaquePointer {
        var p = CINFP.infp_model_default_params()
        var model: OpaquePointer?
        "tiny".withCString { name in
            p.preset = name; p.seed = seed; p.n_threads = 1
            XCTAssertEqual(CINFP.infp_model_create(&p, &model), INFP_OK, lastError)
        }
        return model!
    }

    /// n frames of 32×48 RGB with a moving pattern (seeded).
    private func video(_ n: Int, seed: Int) -> [UInt8] {
        var px = [UInt8](repeating: 0, count: n * 32 * 48 * 3)
        for f in 0..<n { for y in 0..<32 { for x in 0..<48 { for c in 0..<3 {
            let v = 128 + 90 * sin(Double(x + 3 * f + seed + 5 * c) / 6) * cos(Double(y + seed) / 5)
            px[((f * 32 + y) * 48 + x) * 3 + c] = UInt8(max(0, min(255, v)))
        } } } }
        return px
    }

    private func newResult() -> infp_stream_result {
        var r = infp_stream_result()
        r.size = MemoryLayout<infp_stream_result>.size
        return r
    }

    /// Pushes every frame; returns the results.
    private func run(_ stream: OpaquePointer, _ px: [UInt8], frames n: Int) -> [infp_stream_result] {
        let plane = 32 * 48 * 3
        return (0..<n).map { f in
            var r = newResult()
            let status = px.withUnsafeBufferPointer {
                CINFP.infp_stream_push(stream, $0.baseAddress! + f * plane, 32, 48, 3, 0, &r, nil, 0)
            }
            XCTAssertEqual(status, INFP_OK, lastError)
            return r
        }
    }

    private func score(_ model: OpaquePointer, _ px: [UInt8], frames n: Int) -> [Float] {
        var out = [Float](repeating: .nan, count: n - 4)
        px.withUnsafeBufferPointer { p in
            var v = infp_video(pixels: p.baseAddress, frames: Int64(n), height: 32, width: 48)
            XCTAssertEqual(CINFP.infp_model_score(model, &v, &out, Int64(n - 4)), INFP_OK, lastError)
        }
        return out
    }

    func testStreamMatchesBatchScoreAndCalibrates() {
        let model = tinyModel()
        defer { CINFP.infp_model_free(model) }
        var stream: OpaquePointer?
        var params = CINFP.infp_stream_default_params()
        XCTAssertEqual(params.min_event_frames, 2); XCTAssertEqual(params.release_frames, 3); XCTAssertEqual(params.hysteresis, 0.5)
        XCTAssertEqual(CINFP.infp_stream_create(model, &params, &stream), INFP_OK, lastError)
        defer { CINFP.infp_stream_free(stream) }
        let px = video(12, seed: 0)
        let results = run(stream!, px, frames: 12)
        let batch = score(model, px, frames: 12)
        for (f, r) in results.enumerated() {
            XCTAssertEqual(r.frame_index, Int64(f))
            XCTAssertEqual(r.has_score, f >= 4)
            XCTAssertTrue(r.anomaly_score.isNaN && r.threshold.isNaN && !r.alert)
            if f >= 4 { XCTAssertEqual(r.psnr, batch[f - 4], accuracy: 1e-4) }
        }

        // Uncalibrated: n_frames 0, not an error.
        var c = infp_calibration(); c.size = MemoryLayout<infp_calibration>.size
        XCTAssertEqual(CINFP.infp_model_calibration(model, &c), INFP_OK, lastError)
        XCTAssertEqual(c.n_frames, 0); XCTAssertTrue(c.threshold.isNaN)
        // Calibrate on two normal videos.
        let normal = [video(10, seed: 3), video(11, seed: 4)]
        var out = infp_calibration(); out.size = MemoryLayout<infp_calibration>.size
        normal[0].withUnsafeBufferPointer { a in normal[1].withUnsafeBufferPointer { b in
            var vs = [infp_video(pixels: a.baseAddress, frames: 10, height: 32, width: 48),
                      infp_video(pixels: b.baseAddress, frames: 11, height: 32, width: 48)]
            XCTAssertEqual(CINFP.infp_model_calibrate(model, &vs, 2, 0.1, &out), INFP_OK, lastError)
            assertFails(CINFP.infp_model_calibrate(model, &vs, 2, 0, nil), INFP_ERR_INVALID_ARGUMENT, "false_alarm_rate")
            assertFails(CINFP.infp_model_calibrate(model, &vs, 2, 1, nil), INFP_ERR_INVALID_ARGUMENT, "false_alarm_rate")
            vs[1].frames = 4
            assertFails(CINFP.infp_model_calibrate(model, &vs, 2, 0.1, nil), INFP_ERR_SHAPE_MISMATCH, "videos[1]", "at least 5")
            vs[1].height = 31
            assertFails(CINFP.infp_model_calibrate(model, &vs, 2, 0.1, nil), INFP_ERR_SHAPE_MISMATCH, "videos[1]")
            assertFails(CINFP.infp_model_calibrate(model, nil, 2, 0.1, nil), INFP_ERR_INVALID_ARGUMENT, "videos is NULL")
        } }
        XCTAssertEqual(out.n_frames, 13); XCTAssertEqual(out.n_videos, 2)
        XCTAssertTrue(out.psnr_std > 0 && out.threshold.isFinite)
        XCTAssertEqual(CINFP.infp_model_calibration(model, &c), INFP_OK)
        XCTAssertEqual(c.threshold, out.threshold); XCTAssertEqual(c.psnr_mean, out.psnr_mean)

        // The old stream keeps its (no) calibration; a new one scores with it.
        var s2: OpaquePointer?
        XCTAssertEqual(CINFP.infp_stream_create(model, nil as UnsafePointer<infp_stream_params>?, &s2), INFP_ERR_INVALID_ARGUMENT)
        XCTAssertEqual(CINFP.infp_stream_create(model, &params, &s2), INFP_OK, lastError)
        defer { CINFP.infp_stream_free(s2) }
        let calibrated = run(s2!, px, frames: 12)
        for r in calibrated.dropFirst(4) {
            XCTAssertEqual(r.threshold, out.threshold)
            XCTAssertEqual(r.anomaly_score, (out.psnr_mean - r.psnr) / out.psnr_std, accuracy: 1e-3)
        }
        XCTAssertTrue(run(stream!, px, frames: 5).last!.anomaly_score.isNaN)

        // Set and clear by hand.
        c.threshold = 9
        XCTAssertEqual(CINFP.infp_model_set_calibration(model, &c), INFP_OK, lastError)
        var back = infp_calibration(); back.size = MemoryLayout<infp_calibration>.size
        XCTAssertEqual(CINFP.infp_model_calibration(model, &back), INFP_OK); XCTAssertEqual(back.threshold, 9)
        c.psnr_std = -1
        assertFails(CINFP.infp_model_set_calibration(model, &c), INFP_ERR_INVALID_ARGUMENT, "psnr_std")
        XCTAssertEqual(CINFP.infp_model_set_calibration(model, nil), INFP_OK)
        XCTAssertEqual(CINFP.infp_model_calibration(model, &back), INFP_OK); XCTAssertEqual(back.n_frames, 0)
        // threshold_override needs a calibration.
        var p = params; p.threshold_override = 2
        var s3: OpaquePointer?
        assertFails(CINFP.infp_stream_create(model, &p, &s3), INFP_ERR_INVALID_ARGUMENT, "calibrated")
        XCTAssertNil(s3)
    }

    func testBadInputs() {
        let model = tinyModel()
        var stream: OpaquePointer?
        var params = CINFP.infp_stream_default_params()
        assertFails(CINFP.infp_stream_create(nil, &params, &stream), INFP_ERR_INVALID_ARGUMENT, "model is NULL")
        assertFails(CINFP.infp_stream_create(model, &params, nil), INFP_ERR_INVALID_ARGUMENT, "out is NULL")
        var bad = params; bad.min_event_frames = -1
        assertFails(CINFP.infp_stream_create(model, &bad, &stream), INFP_ERR_INVALID_ARGUMENT, "min_event_frames")
        bad = params; bad.release_frames = -2
        assertFails(CINFP.infp_stream_create(model, &bad, &stream), INFP_ERR_INVALID_ARGUMENT, "release_frames")
        bad = params; bad.hysteresis = .nan
        assertFails(CINFP.infp_stream_create(model, &bad, &stream), INFP_ERR_INVALID_ARGUMENT, "hysteresis")
        bad = params; bad.size = 1000
        assertFails(CINFP.infp_stream_create(model, &bad, &stream), INFP_ERR_INVALID_ARGUMENT, "size")
        bad = params; bad.n_threads = -3
        assertFails(CINFP.infp_stream_create(model, &bad, &stream), INFP_ERR_INVALID_ARGUMENT, "n_threads")
        XCTAssertEqual(CINFP.infp_stream_create(model, &params, &stream), INFP_OK, lastError)
        let s = stream!

        let px = video(1, seed: 0)
        var r = newResult()
        var map = [Float](repeating: 0, count: 32 * 48)
        px.withUnsafeBufferPointer { p in
            let b = p.baseAddress!
            assertFails(CINFP.infp_stream_push(nil, b, 32, 48, 3, 0, &r, nil, 0), INFP_ERR_INVALID_ARGUMENT, "stream is NULL")
            assertFails(CINFP.infp_stream_push(s, nil, 32, 48, 3, 0, &r, nil, 0), INFP_ERR_INVALID_ARGUMENT, "pixels is NULL")
            assertFails(CINFP.infp_stream_push(s, b, 32, 48, 3, 0, nil, nil, 0), INFP_ERR_INVALID_ARGUMENT, "result is NULL")
            assertFails(CINFP.infp_stream_push(s, b, 0, 48, 3, 0, &r, nil, 0), INFP_ERR_SHAPE_MISMATCH, "0×48")
            assertFails(CINFP.infp_stream_push(s, b, 32, -1, 3, 0, &r, nil, 0), INFP_ERR_SHAPE_MISMATCH)
            assertFails(CINFP.infp_stream_push(s, b, 1 << 20, 48, 3, 0, &r, nil, 0), INFP_ERR_SHAPE_MISMATCH)
            assertFails(CINFP.infp_stream_push(s, b, 32, 48, 2, 0, &r, nil, 0), INFP_ERR_INVALID_ARGUMENT, "channels is 2")
            assertFails(CINFP.infp_stream_push(s, b, 32, 48, 3, 143, &r, nil, 0), INFP_ERR_INVALID_ARGUMENT, "row_stride_bytes is 143")
            assertFails(CINFP.infp_stream_push(s, b, 32, 48, 3, -144, &r, nil, 0), INFP_ERR_INVALID_ARGUMENT, "row_stride_bytes")
            map.withUnsafeMutableBufferPointer { m in
                assertFails(CINFP.infp_stream_push(s, b, 32, 48, 3, 0, &r, m.baseAddress, 100), INFP_ERR_SHAPE_MISMATCH, "error_map_count is 100", "1536")
                assertFails(CINFP.infp_stream_push(s, b, 32, 48, 3, 0, &r, nil, 5), INFP_ERR_INVALID_ARGUMENT, "error_map is NULL")
            }
            var small = newResult(); small.size = 3
            assertFails(CINFP.infp_stream_push(s, b, 32, 48, 3, 0, &small, nil, 0), INFP_ERR_INVALID_ARGUMENT, "result->size is 3")
            var big = newResult(); big.size = 4096
            assertFails(CINFP.infp_stream_push(s, b, 32, 48, 3, 0, &big, nil, 0), INFP_ERR_INVALID_ARGUMENT, "newer")
            // A model handle is not a stream handle, and vice versa.
            assertFails(CINFP.infp_stream_push(model, b, 32, 48, 3, 0, &r, nil, 0), INFP_ERR_INVALID_ARGUMENT, "not a live StreamHandle")
            var c = infp_calibration(); c.size = MemoryLayout<infp_calibration>.size
            assertFails(CINFP.infp_model_calibration(s, &c), INFP_ERR_INVALID_ARGUMENT, "not a live ModelHandle")
            // None of the failures counted as a frame.
            XCTAssertEqual(CINFP.infp_stream_push(s, b, 32, 48, 3, 0, &r, nil, 0), INFP_OK, lastError)
            XCTAssertEqual(r.frame_index, 0)
            // An older header's smaller result struct gets only its fields.
            var old = newResult(); old.size = MemoryLayout<infp_stream_result>.offset(of: \.has_score)!; old.psnr = 42
            XCTAssertEqual(CINFP.infp_stream_push(s, b, 32, 48, 3, 0, &old, nil, 0), INFP_OK, lastError)
            XCTAssertEqual(old.frame_index, 1); XCTAssertEqual(old.psnr, 42)
        }
        XCTAssertEqual(CINFP.infp_stream_reset(s), INFP_OK)
        // The model goes first: the stream keeps it alive.
        CINFP.infp_model_free(model)
        let frames = video(6, seed: 1)
        let results = run(s, frames, frames: 6)
        XCTAssertEqual(results.map { $0.frame_index }, [0, 1, 2, 3, 4, 5])
        XCTAssertTrue(results[5].psnr.isFinite)
        // Use after free is an error, not a crash; free accepts NULL and stale handles.
        CINFP.infp_stream_free(s)
        frames.withUnsafeBufferPointer { p in
            assertFails(CINFP.infp_stream_push(s, p.baseAddress, 32, 48, 3, 0, &r, nil, 0), INFP_ERR_INVALID_ARGUMENT, "not a live")
        }
        assertFails(CINFP.infp_stream_reset(s), INFP_ERR_INVALID_ARGUMENT, "not a live")
        CINFP.infp_stream_free(s)
        CINFP.infp_stream_free(nil)
    }

    func testResizeEntryPoint() {
        let src = [UInt8](repeating: 200, count: 10 * 20 * 4)
        var dst = [UInt8](repeating: 0, count: 5 * 7 * 3)
        XCTAssertEqual(CINFP.infp_resize_rgb8(src, 10, 20, 4, 0, &dst, 5, 7, 105), INFP_OK, lastError)
        XCTAssertTrue(dst.allSatisfy { $0 == 200 })
        assertFails(CINFP.infp_resize_rgb8(src, 10, 20, 4, 0, &dst, 5, 7, 104), INFP_ERR_SHAPE_MISMATCH, "dst_count is 104")
        assertFails(CINFP.infp_resize_rgb8(src, 10, 20, 4, 79, &dst, 5, 7, 105), INFP_ERR_INVALID_ARGUMENT, "row_stride_bytes")
        assertFails(CINFP.infp_resize_rgb8(nil, 10, 20, 4, 0, &dst, 5, 7, 105), INFP_ERR_INVALID_ARGUMENT, "src is NULL")
        assertFails(CINFP.infp_resize_rgb8(src, 10, 20, 4, 0, nil, 5, 7, 105), INFP_ERR_INVALID_ARGUMENT, "dst is NULL")
        assertFails(CINFP.infp_resize_rgb8(src, 10, 20, 4, 0, &dst, 0, 7, 0), INFP_ERR_SHAPE_MISMATCH)
    }

    /// Four streams on one model, each on its own thread with its own video, give exactly the
    /// results of the same streams run one after the other.
    func testConcurrentStreamsOnOneModel() {
        let model = tinyModel(seed: 7)
        defer { CINFP.infp_model_free(model) }
        let n = 10
        let videos = (0..<4).map { video(n, seed: 10 * $0) }
        var params = CINFP.infp_stream_default_params(); params.n_threads = 1
        func runAll(concurrently: Bool) -> [[Float]] {
            var streams = [OpaquePointer?](repeating: nil, count: 4)
            for i in 0..<4 { XCTAssertEqual(CINFP.infp_stream_create(model, &params, &streams[i]), INFP_OK, lastError) }
            defer { streams.forEach { CINFP.infp_stream_free($0) } }
            let out = UnsafeMutablePointer<[Float]>.allocate(capacity: 4)
            out.initialize(repeating: [], count: 4)
            defer { out.deinitialize(count: 4); out.deallocate() }
            let body = { (i: Int) in out[i] = self.run(streams[i]!, videos[i], frames: n).dropFirst(4).map { $0.psnr } }
            if concurrently {
                let threads = (0..<4).map { i in PosixThread { body(i) } }
                threads.forEach { $0.start() }
                threads.forEach { $0.join() }
            } else {
                for i in 0..<4 { body(i) }
            }
            return Array(UnsafeBufferPointer(start: out, count: 4))
        }
        let sequential = runAll(concurrently: false)
        let concurrent = runAll(concurrently: true)
        XCTAssertEqual(concurrent, sequential)
        XCTAssertNotEqual(sequential[0], sequential[1])
    }
}

/// A joinable POSIX thread (Foundation-free).
private final class PosixThread {
    private let body: () -> Void
    private var tid = pthread_t()
    init(_ body: @escaping () -> Void) { self.body = body }
    func start() {
        let ctx = Unmanaged.passRetained(self).toOpaque()
        pthread_create(&tid, nil, { raw in
            let t = Unmanaged<PosixThread>.fromOpaque(raw!).takeRetainedValue()
            t.body()
            return nil
        }, ctx)
    }
    func join() { pthread_join(tid, nil) }
}
