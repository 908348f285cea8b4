import XCTest
import Glibc
@testable import INFPCore

final class AnomalyScoreTests: XCTestCase {
    func movingSquare(_ n: Int, phase: Int = 0) -> Video { movingSquareVideo(n, phase: phase) }

    /// The square turns blue in frames `range` (a colour anomaly).
    func recoloured(_ v: Video, frames range: Range<Int>) -> Video {
        var px = v.pixels
        for f in range { for i in stride(from: f * v.height * v.width * 3, to: (f + 1) * v.height * v.width * 3, by: 3) where px[i] == 230 {
            px[i] = 40; px[i + 2] = 230
        } }
        return Video(frames: v.frames, height: v.height, width: v.width, pixels: px)
    }

    func testLargestPatchMeanMatchesBruteForce() {
        var rng = Rng(seed: 5)
        for (h, w, p) in [(8, 8, 4), (13, 17, 4), (13, 17, 5), (16, 16, 16), (9, 30, 2)] {
            let e = (0..<h * w).map { _ in rng.uniform() }
            let fast = e.withUnsafeBufferPointer { AnomalyScore.largestPatchMean($0.baseAddress!, height: h, width: w, patch: p) }
            var starts = (y: Array(stride(from: 0, through: h - p, by: max(1, p / 2))), x: Array(stride(from: 0, through: w - p, by: max(1, p / 2))))
            if starts.y.last != h - p { starts.y.append(h - p) }
            if starts.x.last != w - p { starts.x.append(w - p) }
            var best = -Double.infinity
            for y in starts.y { for x in starts.x {
                var s = 0.0
                for yy in y..<y + p { for xx in x..<x + p { s += e[yy * w + xx] } }
                best = max(best, s / Double(p * p))
            } }
            XCTAssertEqual(fast, best, accuracy: 1e-12, "\(h)×\(w) p\(p)")
        }
    }

    func testCausalSmoothing() {
        XCTAssertEqual(AnomalyScore.smoothed([1, 2, 3, 4], over: 1), [1, 2, 3, 4])
        XCTAssertEqual(AnomalyScore.smoothed([1, 2, 3, 4], over: 2), [1, 1.5, 2.5, 3.5])
        XCTAssertEqual(AnomalyScore.smoothed([3, 0, 0, 6], over: 3), [3, 1.5, 1, 2])
    }

    func testPredictionScoresMatchTheirDefinitions() throws {
        let model = try INFPModel(config: .tiny, seed: 2)
        let v = movingSquare(12)
        let psnr = try model.anomalyScores(v, options: ScoreOptions(method: .psnr))
        XCTAssertEqual(psnr, model.score(v).map { -$0 })
        let patch = try model.anomalyScores(v, options: ScoreOptions(method: .patch, patchSize: 8))
        let frames = v.tensor(), predicted = model.predictVideo(frames)
        let plane = 32 * 48
        for i in 0..<8 {
            var e = [Double](repeating: 0, count: plane)
            for c in 0..<3 { for j in 0..<plane {
                let d = Double(predicted.data[(i * 3 + c) * plane + j] - frames.data[((i + 4) * 3 + c) * plane + j]) / 2
                e[j] += d * d / 3
            } }
            let ref = e.withUnsafeBufferPointer { AnomalyScore.largestPatchMean($0.baseAddress!, height: 32, width: 48, patch: 8) }
            XCTAssertEqual(patch[i], ref, accuracy: 1e-9 * max(1, ref))
        }
        let smooth = try model.anomalyScores(v, options: ScoreOptions(method: .psnr, smoothing: 3))
        XCTAssertEqual(smooth, AnomalyScore.smoothed(psnr, over: 3))
        XCTAssertThrowsError(try model.anomalyScores(v, options: ScoreOptions(method: .patch, patchSize: 40))) {
            XCTAssertTrue("\($0)".contains("patch_size"), "\($0)")
        }
    }

    func testMemoryFindsWhatNormalFootageLacks() throws {
        let model = try INFPModel(config: .tiny, seed: 2)
        XCTAssertThrowsError(try model.anomalyScores(movingSquare(10), options: ScoreOptions(method: .memory))) {
            XCTAssertTrue("\($0)".contains("remember"), "\($0)")
        }
        let normal = movingSquare(40)
        model.memory = try model.buildMemory(normal: [normal, movingSquare(20, phase: 7)])
        XCTAssertEqual(model.memory!.videoLengths, [40, 20])
        // Normal footage seen before: every clip is in the memory, distance ≈ 0.
        let same = try model.anomalyScores(normal)
        XCTAssertEqual(same.count, 36)
        XCTAssertLessThan(same.max()!, 1e-6)
        // A recoloured square in frames 20..<24: clips holding those frames (scores of frames
        // 20..<28, indices 16..<24) stand out from every other clip of the video.
        let odd = try model.anomalyScores(recoloured(normal, frames: 20..<24))
        let affected = Array(odd[16..<24]), rest = Array(odd[0..<16] + odd[24...])
        XCTAssertGreaterThan(affected.min()!, 100 * max(rest.max()!, 1e-6), "affected \(affected), rest max \(rest.max()!)")
    }

    func testMemoryIsSavedWithTheModel() throws {
        let model = try INFPModel(config: .tiny, seed: 2)
        model.memory = try model.buildMemory(normal: [movingSquare(16)])
        let path = "/tmp/infp-memory-\(getpid()).safetensors"
        defer { unlink(path) }
        try model.save(to: path)
        let (loaded, _) = try INFPModel.load(from: path)
        XCTAssertEqual(loaded.memory?.features.scalars, model.memory!.features.scalars)
        XCTAssertEqual(loaded.memory?.videoLengths, [16])
        let probe = movingSquare(12, phase: 3)
        XCTAssertEqual(try loaded.anomalyScores(probe), try model.anomalyScores(probe))
    }
}

final class MemoryCalibrationTests: XCTestCase {
    /// A model with a memory, calibrated on the memory score of held-out normal footage.
    func calibratedModel() throws -> INFPModel {
        let model = try INFPModel(config: .tiny, seed: 2)
        model.memory = try model.buildMemory(normal: [movingSquareVideo(40)])
        model.calibration = try model.calibrate(normal: [movingSquareVideo(30, phase: 1), movingSquareVideo(30, phase: 2)], falseAlarmRate: 0.1)
        return model
    }

    func testCalibrationPicksTheMemoryScore() throws {
        let model = try calibratedModel()
        let c = model.calibration!
        XCTAssertEqual(c.method, "memory")
        let raw = try [movingSquareVideo(30, phase: 1), movingSquareVideo(30, phase: 2)].flatMap {
            try model.anomalyScores($0, options: ScoreOptions(method: .memory))
        }
        let mean = raw.reduce(0, +) / Double(raw.count)
        XCTAssertEqual(c.mean, mean, accuracy: 1e-9 * max(1, mean))
        XCTAssertEqual(c.anomalyScore(raw: mean + c.std), 1, accuracy: 1e-9)  // higher distance = more anomalous
        // The checkpoint keeps the method.
        let parsed = try Calibration.parse(c.json.serialized)
        XCTAssertEqual(parsed, c)
        // Without a memory, the default is PSNR, and asking for the memory is an error naming the fix.
        let plain = try INFPModel(config: .tiny, seed: 2)
        XCTAssertEqual(try plain.calibrate(normal: [movingSquareVideo(12)], falseAlarmRate: 0.1).method, "psnr")
        XCTAssertThrowsError(try plain.calibrate(normal: [movingSquareVideo(12)], falseAlarmRate: 0.1, method: "memory")) {
            XCTAssertTrue("\($0)".contains("remember"), "\($0)")
        }
    }

    /// A live stream under a memory calibration gives, frame by frame, the batch memory score's
    /// z-score, and alerts on a recoloured product.
    func testStreamFollowsTheBatchMemoryScore() throws {
        let model = try calibratedModel()
        let c = model.calibration!
        let normal = movingSquareVideo(40)
        var px = normal.pixels
        for f in 20..<24 { for i in stride(from: f * 32 * 48 * 3, to: (f + 1) * 32 * 48 * 3, by: 3) where px[i] == 230 { px[i] = 40; px[i + 2] = 230 } }
        let odd = Video(frames: 40, height: 32, width: 48, pixels: px)
        let batch = try model.anomalyScores(odd, options: ScoreOptions(method: .memory))
        let stream = FrameStream(model: model, alerts: AlertParams(minEventFrames: 1, releaseFrames: 1, hysteresis: 0))
        let plane = 32 * 48 * 3
        var alerts: [Int] = []
        for f in 0..<40 {
            let r = stream.push(modelSizeRGB: Array(px[f * plane..<(f + 1) * plane]))
            XCTAssertEqual(r.hasScore, f >= 4)
            guard f >= 4 else { continue }
            XCTAssertEqual(r.anomalyScore, c.anomalyScore(raw: batch[f - 4]), accuracy: 1e-3 * max(1, abs(r.anomalyScore)))
            if r.alert.alert { alerts.append(f) }
        }
        XCTAssertEqual(alerts.first, 20)
        XCTAssertTrue(alerts.allSatisfy { (20..<28).contains($0) }, "\(alerts)")
    }
}
