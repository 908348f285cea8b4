import XCTest
import Glibc
@testable import INFPCore

final class ModelTests: XCTestCase {
    static let fixtures = String(#filePath).split(separator: "/").dropLast(2).joined(separator: "/")
    var fixtures: String { "/" + ModelTests.fixtures + "/fixtures" }

    func variants() -> [(String, ModelConfig)] {
        var spatial = ModelConfig.tiny; spatial.filterMode = .spatial; spatial.freqMode = .cartesian
        var noFusion = ModelConfig.tiny; noFusion.fusion = false
        var noFilter = ModelConfig.tiny; noFilter.trajectoryFilter = false
        return [("default", .tiny), ("spatial_cartesian", spatial), ("nofusion", noFusion), ("nofilter", noFilter)]
    }

    func testForwardShapesInEveryMode() throws {
        var rng = Rng(seed: 3)
        for (name, cfg) in variants() {
            let model = try INFPModel(config: cfg, seed: 1)
            let clips = Tensor.uniform([2, 4, 3, cfg.height, cfg.width], -1, 1, rng: &rng)
            var eval = ForwardContext(training: false)
            XCTAssertEqual(model.forward(clips, &eval).shape, [2, 3, cfg.height, cfg.width], name)
            var train = ForwardContext(training: true)
            let out = withGradients { model.forward(clips, &train) }
            XCTAssertEqual(out.shape, [2, 3, cfg.height, cfg.width], name)
            XCTAssertTrue(out.scalars.allSatisfy { $0.isFinite }, name)
        }
    }

    /// Every name and shape of the released state_dict, in order, for the official preset
    /// (built without allocating its 317 M weights would be nicer; release tests afford it).
    func testOfficialStateDictNamesAndShapes() throws {
        let text = String(decoding: try FileIO.read(fixtures + "/official-state-dict.txt"), as: UTF8.self)
        var expected: [(String, [Int])] = []
        for line in text.split(separator: "\n") where !line.hasPrefix("#") {
            let parts = line.split(separator: " ", maxSplits: 1)
            let shapeText = parts[1].split(separator: ")")[0].dropFirst()
            expected.append((String(parts[0]), shapeText.split(separator: ",").compactMap { Int($0.filter { $0 != " " }) }))
        }
        let model = try INFPModel(config: .official)
        let actual = model.checkpointTensors().map { entry -> (String, [Int]) in
            switch entry.1 {
            case let .float32(t): return (entry.0, t.shape)
            case let .int64(s, _): return (entry.0, s)
            }
        }
        XCTAssertEqual(actual.count, expected.count)
        let firstMismatch = zip(actual, expected).first { $0.0 != $1.0 || $0.1 != $1.1 }
        XCTAssertNil(firstMismatch.map { "ours \($0.0) \($0.1), released \($1.0) \($1.1)" })
        XCTAssertEqual(Double(model.parameterCount) / 1e6, 317.4, accuracy: 0.05)
    }

    func testCheckpointRoundTripAndMismatchReport() throws {
        let path = "/tmp/infp-test-\(getpid()).safetensors"
        defer { unlink(path) }
        var cfg = ModelConfig.tiny; cfg.filterMode = .spatial
        let model = try INFPModel(config: cfg, seed: 5)
        model.head.reduce.bn.numBatchesTracked = 7
        model.head.reduce.bn.runningVar.data[0] = 2.5
        try model.save(to: path)
        let (loaded, _) = try INFPModel.load(from: path)
        XCTAssertEqual(loaded.config, cfg)
        for ((n1, a), (n2, b)) in zip(model.checkpointTensors(), loaded.checkpointTensors()) {
            XCTAssertEqual(n1, n2)
            switch (a, b) {
            case let (.float32(x), .float32(y)): XCTAssertEqual(x.scalars, y.scalars, n1)
            case let (.int64(_, x), .int64(_, y)): XCTAssertEqual(x, y, n1)
            default: XCTFail("dtype changed for \(n1)")
            }
        }
        // A checkpoint of another config is refused with every mismatch named.
        let other = try INFPModel(config: .tiny)
        let file = try SafeTensors.read(path)
        XCTAssertThrowsError(try other.loadState(from: file, source: path)) { error in
            let text = "\(error)"
            XCTAssertTrue(text.contains("filter.complex_weights"), text)
            XCTAssertTrue(text.contains("problems"), text)
        }
    }

    func testConfigValidationNamesTheField() {
        var c = ModelConfig.tiny; c.height = 30
        XCTAssertThrowsError(try c.validate()) { XCTAssertEqual(($0 as? ConfigError)?.field, "height") }
        XCTAssertThrowsError(try ModelConfig.tiny.applying(try JSON.parse("{\"filter_mode\": \"diagonal\"}"))) {
            XCTAssertEqual(($0 as? ConfigError)?.field, "filter_mode")
        }
        XCTAssertThrowsError(try ModelConfig.tiny.applying(try JSON.parse("{\"width_div\": 3}"))) {
            XCTAssertEqual(($0 as? ConfigError)?.field, "width_div")
        }
        XCTAssertThrowsError(try ModelConfig.tiny.applying(try JSON.parse("{\"colour\": 1}"))) {
            XCTAssertEqual(($0 as? ConfigError)?.field, "colour")
        }
        let parsed = try? ModelConfig.parse(ModelConfig.small.json.serialized)
        XCTAssertEqual(parsed, ModelConfig.small)
    }
}
