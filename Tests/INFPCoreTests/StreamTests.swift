import XCTest
import Glibc
@testable import INFPCore

/// Live streams: per-frame features and prediction against the batch path, stream scores
/// against batch scores, calibration statistics and their checkpoint round trip, resizing.
final class StreamTests: XCTestCase {
    func randomVideo(_ n: Int, h: Int = 32, w: Int = 48, seed: UInt64) -> Video {
        var rng = Rng(seed: seed)
        // A smooth moving pattern plus noise, so that predictions have structure.
        var px = [UInt8](repeating: 0, count: n * h * w * 3)
        for f in 0..<n { for y in 0..<h { for x in 0..<w { for c in 0..<3 {
            let v = 128 + 80 * sin(Double(x + 2 * f + 7 * c) / 5) * cos(Double(y - f) / 7) + Double(rng.uniform(-20, 20))
            px[((f * h + y) * w + x) * 3 + c] = UInt8(max(0, min(255, v.rounded())))
        } } } }
        return Video(frames: n, height: h, width: w, pixels: px)
    }

    func frames(_ v: Video) -> Tensor {
        let t = Tensor(uninitialized: [v.frames, 3, v.height, v.width])
        for f in 0..<v.frames { v.writeFrame(f, to: t.data + f * 3 * v.height * v.width) }
        return t
    }

    func testPredictNextEqualsForwardOnTheWindow() throws {
        for fusion in [true, false] {
            var cfg = ModelConfig.tiny; cfg.fusion = fusion
            let model = try INFPModel(config: cfg, seed: 3)
            let x = frames(randomVideo(4, seed: 1))
            let window = (0..<4).map { model.encodeFrame(x.slice(axis: 0, range: $0..<$0 + 1)) }
            let streamed = model.predictNext(from: window)
            var ctx = ForwardContext(training: false)
            let batch = model.forward(x.reshaped([1, 4, 3, 32, 48]), &ctx)
            XCTAssertEqual(streamed.shape, [1, 3, 32, 48])
            var worst: Float = 0
            for i in 0..<batch.count { worst = max(worst, abs(batch.data[i] - streamed.data[i])) }
            XCTAssertLessThan(worst, 1e-5, "fusion \(fusion)")
        }
    }

    func testStreamScoresEqualBatchScores() throws {
        let model = try INFPModel(config: .tiny, seed: 11)
        let video = randomVideo(13, seed: 2)
        let batch = Parallel.withThreads(2) { model.score(video) }
        let stream = FrameStream(model: model)
        let plane = video.height * video.width * 3
        var streamed: [Double] = []
        for f in 0..<video.frames {
            let r = Parallel.withThreads(1) {
                stream.push(modelSizeRGB: Array(video.pixels[f * plane..<(f + 1) * plane]))
            }
            XCTAssertEqual(r.frameIndex, f)
            XCTAssertEqual(r.hasScore, f >= 4)
            XCTAssertTrue(r.anomalyScore.isNaN)  // no calibration
            XCTAssertFalse(r.alert.alert)
            if r.hasScore { streamed.append(r.psnr) } else { XCTAssertTrue(r.psnr.isNaN) }
        }
        XCTAssertEqual(streamed.count, batch.count)
        for (a, b) in zip(streamed, batch) { XCTAssertEqual(a, b, accuracy: 1e-4) }
        // After a reset the stream starts again at frame 0, with the same scores; with two
        // threads (the backbone then runs beside the prediction) to float rounding.
        for threads in [1, 2] {
            stream.reset()
            var again: [Double] = []
            for f in 0..<video.frames {
                let r = Parallel.withThreads(threads) {
                    stream.push(modelSizeRGB: Array(video.pixels[f * plane..<(f + 1) * plane]))
                }
                if r.hasScore { again.append(r.psnr) }
            }
            if threads == 1 { XCTAssertEqual(again, streamed) }
            XCTAssertEqual(again.count, streamed.count)
            for (a, b) in zip(again, streamed) { XCTAssertEqual(a, b, accuracy: 1e-4) }
        }
    }

    func testErrorMapIsThePerPixelErrorBehindThePSNR() throws {
        let model = try INFPModel(config: .tiny, seed: 4)
        let video = randomVideo(6, seed: 3)
        let stream = FrameStream(model: model)
        let plane = 32 * 48
        var map = [Float](repeating: -1, count: plane)
        for f in 0..<6 {
            let r = map.withUnsafeMutableBufferPointer {
                stream.push(modelSizeRGB: Array(video.pixels[f * plane * 3..<(f + 1) * plane * 3]), errorMap: $0.baseAddress)
            }
            if !r.hasScore { XCTAssertTrue(map.allSatisfy { $0 == 0 }); continue }
            // PSNR = 10 log10(1 / mean over C, H, W) = 10 log10(1 / mean of the map).
            let mse = map.reduce(0.0) { $0 + Double($1) } / Double(plane)
            XCTAssertEqual(10 * log10(1 / mse), r.psnr, accuracy: 1e-3)
            XCTAssertTrue(map.allSatisfy { $0 >= 0 && $0 <= 1 })
        }
    }

    func testCalibrationStatisticsAndQuantile() throws {
        XCTAssertEqual(Calibration.quantile([3, 1, 2, 4], 0.5), 2.5)
        XCTAssertEqual(Calibration.quantile([1, 2, 3, 4, 5], 0.9), 4.6, accuracy: 1e-12)
        XCTAssertEqual(Calibration.quantile([7], 0.3), 7)
        let psnr: [[Double]] = [[30, 31, 29], [32, 28]]
        let c = try Calibration.fit(psnr: psnr, falseAlarmRate: 0.25)
        XCTAssertEqual(c.psnrMean, 30)
        XCTAssertEqual(c.psnrStd, (10.0 / 4).squareRoot(), accuracy: 1e-12)  // sample std
        XCTAssertEqual(c.frames, 5); XCTAssertEqual(c.videos, 2)
        let z = [30, 31, 29, 32, 28].map { c.anomalyScore(psnr: $0) }
        XCTAssertEqual(c.threshold, Calibration.quantile(z, 0.75), accuracy: 1e-12)
        XCTAssertEqual(z.filter { $0 > c.threshold }.count, 1)  // 1 of 5 ≈ 0.25
        XCTAssertGreaterThan(c.anomalyScore(psnr: 25), c.anomalyScore(psnr: 30))
        XCTAssertThrowsError(try Calibration.fit(psnr: psnr, falseAlarmRate: 0))
        XCTAssertThrowsError(try Calibration.fit(psnr: psnr, falseAlarmRate: 1))
        XCTAssertThrowsError(try Calibration.fit(psnr: [[30]], falseAlarmRate: 0.1))
        // JSON round trip.
        XCTAssertEqual(try Calibration.parse(c.json.serialized), c)
        XCTAssertThrowsError(try Calibration.parse("{\"psnr_mean\": 1}"))
    }

    func testCalibrationSurvivesSaveAndLoad() throws {
        let path = "/tmp/infp-stream-test-\(getpid()).safetensors"
        defer { unlink(path) }
        let model = try INFPModel(config: .tiny, seed: 5)
        try model.save(to: path)
        XCTAssertNil(try INFPModel.load(from: path).0.calibration)
        model.calibration = try model.calibrate(normal: [randomVideo(10, seed: 7), randomVideo(9, seed: 8)], falseAlarmRate: 0.1)
        XCTAssertEqual(model.calibration?.frames, 11)
        try model.save(to: path)
        let loaded = try INFPModel.load(from: path).0
        XCTAssertEqual(loaded.calibration, model.calibration)
    }

    func testStreamAlertsWithCalibration() throws {
        let model = try INFPModel(config: .tiny, seed: 6)
        let normal = randomVideo(12, seed: 9)
        model.calibration = try model.calibrate(normal: [normal], falseAlarmRate: 0.05)
        // A frame far from anything normal: its score is high and, twice in a row, alerts.
        let stream = FrameStream(model: model, alerts: AlertParams(minEventFrames: 2))
        let plane = 32 * 48 * 3
        var results: [FrameStream.Result] = []
        for f in 0..<8 { results.append(stream.push(modelSizeRGB: Array(normal.pixels[f * plane..<(f + 1) * plane]))) }
        for _ in 0..<2 { results.append(stream.push(modelSizeRGB: [UInt8](repeating: 255, count: plane))) }
        XCTAssertTrue(results[8].anomalyScore > results[8].threshold, "\(results[8])")
        XCTAssertFalse(results[8].alert.alert)
        XCTAssertTrue(results[9].alert.eventStarted)
        XCTAssertEqual(results[9].alert.eventID, 1)
        XCTAssertEqual(results[9].threshold, model.calibration!.threshold)
        // A threshold override replaces the calibration's.
        XCTAssertEqual(FrameStream(model: model, thresholdOverride: 7).threshold, 7)
    }

    // MARK: resize

    func resize(_ src: [UInt8], _ h: Int, _ w: Int, _ c: Int, stride: Int? = nil, to oh: Int, _ ow: Int) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: oh * ow * 3)
        let plan = ResizePlan(inHeight: h, inWidth: w, outHeight: oh, outWidth: ow)
        src.withUnsafeBufferPointer { s in out.withUnsafeMutableBufferPointer { plan.run(s.baseAddress!, channels: c, rowStride: stride ?? w * c, into: $0.baseAddress!) } }
        return out
    }

    func testResizeIdentityConstantsAndChannels() {
        var rng = Rng(seed: 1)
        let h = 9, w = 13
        let rgb = (0..<h * w * 3).map { _ in UInt8(rng.uniform(0, 255.99)) }
        XCTAssertEqual(resize(rgb, h, w, 3, to: h, w), rgb)
        // A constant image stays constant (coefficients sum to 1 in fixed point, rounded).
        for (oh, ow) in [(4, 5), (20, 31), (9, 4), (3, 13)] {
            XCTAssertTrue(resize([UInt8](repeating: 77, count: h * w * 3), h, w, 3, to: oh, ow).allSatisfy { $0 == 77 })
        }
        // RGBA: alpha ignored; grey: replicated; padded rows: padding ignored.
        var rgba = [UInt8](), grey = [UInt8](), greyRGB = [UInt8](), padded = [UInt8]()
        for y in 0..<h {
            for x in 0..<w {
                let i = (y * w + x) * 3
                rgba += [rgb[i], rgb[i + 1], rgb[i + 2], UInt8(rng.uniform(0, 255))]
                grey.append(rgb[i]); greyRGB += [rgb[i], rgb[i], rgb[i]]
            }
            padded += rgb[y * w * 3..<(y + 1) * w * 3] + [1, 2, 3, 4, 5]
        }
        for (oh, ow) in [(4, 5), (20, 31), (9, 13)] {
            let want = resize(rgb, h, w, 3, to: oh, ow)
            XCTAssertEqual(resize(rgba, h, w, 4, to: oh, ow), want)
            XCTAssertEqual(resize(padded, h, w, 3, stride: w * 3 + 5, to: oh, ow), want)
            XCTAssertEqual(resize(grey, h, w, 1, to: oh, ow), resize(greyRGB, h, w, 3, to: oh, ow))
        }
    }
}
