import CINFP
import Glibc
import INFPCore
import XCTest
@testable import INFP

/// The anomaly-score C entry points: scores against the engine, the memory and its calibration,
/// and bad input (NULLs, counts, methods, options, a memory-less model).
final class ScoringAPITests: XCTestCase {
    private func tinyModel() -> OpaquePointer {
        var p = CINFP.infp_model_default_params()
        var model: OpaquePointer?
        "tiny".withCString { name in
            p.preset = name; p.seed = 3; p.n_threads = 1
            XCTAssertEqual(CINFP.infp_model_create(&p, &model), INFP_OK, lastError)
        }
        return model!
    }

    /// A square moving right by 3 pixels per frame on a gradient background, 32×48.
    private func movingSquareVideo(_ n: Int, phase: Int = 0) -> Video {
        var px = [UInt8](repeating: 0, count: n * 32 * 48 * 3)
        for f in 0..<n { for y in 0..<32 { for x in 0..<48 {
            let i = ((f * 32 + y) * 48 + x) * 3, x0 = (f * 3 + phase) % 40
            let inside = y >= 12 && y < 20 && x >= x0 && x < x0 + 8
            px[i] = inside ? 230 : UInt8(40 + x); px[i + 1] = inside ? 40 : UInt8(60 + y); px[i + 2] = inside ? 40 : 90
        } } }
        return Video(frames: n, height: 32, width: 48, pixels: px)
    }

    func testScoresRememberAndCalibrate() {
        let model = tinyModel()
        defer { CINFP.infp_model_free(model) }
        let normal = movingSquareVideo(20), probe = movingSquareVideo(12, phase: 5)
        normal.pixels.withUnsafeBufferPointer { np in
            probe.pixels.withUnsafeBufferPointer { pp in
                var nv = infp_video(pixels: np.baseAddress, frames: 20, height: 32, width: 48)
                var pv = infp_video(pixels: pp.baseAddress, frames: 12, height: 32, width: 48)
                var scores = [Float](repeating: 0, count: 8)
                var params = CINFP.infp_score_default_params()
                XCTAssertEqual(params.method, Int32(INFP_SCORE_MEMORY.rawValue))
                // No memory yet: the default score explains what to do.
                assertFails(CINFP.infp_model_anomaly_scores(model, &pv, &params, &scores, 8), INFP_ERR_INVALID_ARGUMENT, "remember")
                var frames: Int64 = -1
                XCTAssertEqual(CINFP.infp_model_memory_frames(model, &frames), INFP_OK); XCTAssertEqual(frames, 0)
                XCTAssertEqual(CINFP.infp_model_remember(model, &nv, 1), INFP_OK, lastError)
                XCTAssertEqual(CINFP.infp_model_memory_frames(model, &frames), INFP_OK); XCTAssertEqual(frames, 20)
                var sixteen = [Float](repeating: 1, count: 16)
                XCTAssertEqual(CINFP.infp_model_anomaly_scores(model, &nv, nil, &sixteen, 16), INFP_OK, lastError)
                XCTAssertLessThan(sixteen.max()!, 1e-5)  // remembered footage: distance ≈ 0
                // PSNR through the API equals the engine's.
                params.method = Int32(INFP_SCORE_PSNR.rawValue)
                XCTAssertEqual(CINFP.infp_model_anomaly_scores(model, &pv, &params, &scores, 8), INFP_OK, lastError)
                var psnr = [Float](repeating: 0, count: 8)
                XCTAssertEqual(CINFP.infp_model_score(model, &pv, &psnr, 8), INFP_OK)
                for i in 0..<8 { XCTAssertEqual(scores[i], -psnr[i], accuracy: 1e-4) }
                // Bad options and counts.
                params.method = 7
                assertFails(CINFP.infp_model_anomaly_scores(model, &pv, &params, &scores, 8), INFP_ERR_INVALID_ARGUMENT, "method")
                params = CINFP.infp_score_default_params(); params.method = Int32(INFP_SCORE_PATCH.rawValue); params.patch_size = 0
                assertFails(CINFP.infp_model_anomaly_scores(model, &pv, &params, &scores, 8), INFP_ERR_INVALID_ARGUMENT, "patch_size")
                params = CINFP.infp_score_default_params(); params.smoothing = 0
                assertFails(CINFP.infp_model_anomaly_scores(model, &pv, &params, &scores, 8), INFP_ERR_INVALID_ARGUMENT, "smoothing")
                assertFails(CINFP.infp_model_anomaly_scores(model, &pv, nil, &scores, 9), INFP_ERR_SHAPE_MISMATCH, "n_scores")
                assertFails(CINFP.infp_model_anomaly_scores(model, &pv, nil, nil, 8), INFP_ERR_INVALID_ARGUMENT, "scores")
                assertFails(CINFP.infp_model_anomaly_scores(model, nil, nil, &scores, 8), INFP_ERR_INVALID_ARGUMENT, "video")
                assertFails(CINFP.infp_model_anomaly_scores(nil, &pv, nil, &scores, 8), INFP_ERR_INVALID_ARGUMENT)
                var wrong = infp_video(pixels: pp.baseAddress, frames: 12, height: 48, width: 32)
                assertFails(CINFP.infp_model_anomaly_scores(model, &wrong, nil, &scores, 8), INFP_ERR_SHAPE_MISMATCH, "32×48")
                var short = infp_video(pixels: pp.baseAddress, frames: 4, height: 32, width: 48)
                assertFails(CINFP.infp_model_remember(model, &short, 1), INFP_ERR_SHAPE_MISMATCH, "at least 5")
                assertFails(CINFP.infp_model_remember(model, nil, 1), INFP_ERR_INVALID_ARGUMENT)
                // Calibration: the memory by default, PSNR on request, unknown methods refused.
                var cal = infp_calibration(); cal.size = MemoryLayout<infp_calibration>.size
                XCTAssertEqual(CINFP.infp_model_calibrate(model, &pv, 1, 0.1, &cal), INFP_OK, lastError)
                XCTAssertEqual(cal.method, Int32(INFP_SCORE_MEMORY.rawValue))
                XCTAssertEqual(CINFP.infp_model_calibrate_score(model, &pv, 1, 0.1, Int32(INFP_SCORE_PSNR.rawValue), &cal), INFP_OK, lastError)
                XCTAssertEqual(cal.method, Int32(INFP_SCORE_PSNR.rawValue))
                XCTAssertEqual(-cal.psnr_mean, scores.reduce(0, +) / 8, accuracy: 1e-3)  // scores hold -PSNR of pv
                assertFails(CINFP.infp_model_calibrate_score(model, &pv, 1, 0.1, Int32(INFP_SCORE_PATCH.rawValue), &cal),
                            INFP_ERR_INVALID_ARGUMENT, "INFP_SCORE_MEMORY")
            }
        }
    }

    func testWeightsOnlySaveLeavesTheMemoryOut() {
        let model = tinyModel()
        defer { CINFP.infp_model_free(model) }
        let normal = movingSquareVideo(12)
        let dir = "/tmp/infp-weights-\(getpid())"
        mkdir(dir, 0o755)
        defer { unlink(dir + "/full.safetensors"); unlink(dir + "/weights.safetensors"); rmdir(dir) }
        normal.pixels.withUnsafeBufferPointer { np in
            var nv = infp_video(pixels: np.baseAddress, frames: 12, height: 32, width: 48)
            XCTAssertEqual(CINFP.infp_model_remember(model, &nv, 1), INFP_OK, lastError)
        }
        XCTAssertEqual(CINFP.infp_model_save(model, dir + "/full.safetensors"), INFP_OK, lastError)
        XCTAssertEqual(CINFP.infp_model_save_weights(model, dir + "/weights.safetensors"), INFP_OK, lastError)
        for (file, expected) in [("full", Int64(12)), ("weights", 0)] {
            var loaded: OpaquePointer?
            XCTAssertEqual(CINFP.infp_model_load(dir + "/\(file).safetensors", 1, &loaded), INFP_OK, lastError)
            var frames: Int64 = -1
            XCTAssertEqual(CINFP.infp_model_memory_frames(loaded, &frames), INFP_OK)
            XCTAssertEqual(frames, expected, file)
            CINFP.infp_model_free(loaded)
        }
        assertFails(CINFP.infp_model_save_weights(nil, dir + "/x.safetensors"), INFP_ERR_INVALID_ARGUMENT, "model")
        assertFails(CINFP.infp_model_save_weights(model, nil), INFP_ERR_INVALID_ARGUMENT, "path")
        assertFails(CINFP.infp_model_save_weights(model, dir + "/missing/x.safetensors"), INFP_ERR_IO, "missing")
    }

    func testMemoryCalibrationNeedsAMemory() {
        let model = tinyModel()
        defer { CINFP.infp_model_free(model) }
        var cal = infp_calibration()
        cal.size = MemoryLayout<infp_calibration>.size
        cal.psnr_mean = 1; cal.psnr_std = 1; cal.threshold = 2; cal.n_frames = 10; cal.n_videos = 1
        cal.method = Int32(INFP_SCORE_MEMORY.rawValue)
        assertFails(CINFP.infp_model_set_calibration(model, &cal), INFP_ERR_INVALID_ARGUMENT, "infp_model_remember")
        cal.method = Int32(INFP_SCORE_PSNR.rawValue)
        XCTAssertEqual(CINFP.infp_model_set_calibration(model, &cal), INFP_OK, lastError)
    }
}
