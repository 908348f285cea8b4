import XCTest
@testable import INFPCore

/// The model against an independent PyTorch implementation of INFP-SPEC (tools/infp_torch.py)
/// on the same weights: files written once by tools/make_goldens.py into Tests/golden/.
final class GoldenTests: XCTestCase {
    static let golden = "/" + String(#filePath).split(separator: "/").dropLast(2).joined(separator: "/") + "/golden"

    /// max |a − b| / max |b|: a relative error that is not fooled by tiny elements.
    func relativeError(_ a: Tensor, _ b: Tensor) -> Float {
        XCTAssertEqual(a.count, b.count)
        var diff: Float = 0, scale: Float = 0
        for i in 0..<min(a.count, b.count) {
            diff = max(diff, Swift.abs(a.data[i] - b.data[i]))
            scale = max(scale, Swift.abs(b.data[i]))
        }
        return diff / max(scale, 1e-12)
    }

    func load(_ name: String) throws -> (INFPModel, SafeTensors.File) {
        let (model, _) = try INFPModel.load(from: "\(GoldenTests.golden)/tiny_\(name).weights.safetensors")
        let io = try SafeTensors.read("\(GoldenTests.golden)/tiny_\(name).io.safetensors")
        return (model, io)
    }

    func tensor(_ f: SafeTensors.File, _ name: String) throws -> Tensor {
        guard let e = f.entry(name) else { throw FileError.format("golden file has no '\(name)'") }
        return try f.tensor(e)
    }

    func check(_ name: String) throws {
        var worst: [String: Float] = [:]  // largest relative error per kind, printed for the record
        defer { print("golden \(name): " + worst.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", ")) }
        let (model, io) = try load(name)
        let clips = try tensor(io, "clips"), target = try tensor(io, "target")

        // Evaluation-mode output.
        var eval = ForwardContext(training: false)
        let evalOut = model.forward(clips, &eval)
        let evalErr = relativeError(evalOut, try tensor(io, "eval_output"))
        worst["eval_output"] = evalErr
        XCTAssertLessThanOrEqual(evalErr, 1e-4, "\(name) eval output")

        // Losses, computed from the golden's own training output and target.
        let goldenTrainOut = try tensor(io, "train_output")
        XCTAssertEqual(Loss.official(goldenTrainOut, target).item, try tensor(io, "loss_official").item, accuracy: 1e-4, "\(name) official loss")
        XCTAssertEqual(Loss.paper(goldenTrainOut, target, alpha: 0.5).item, try tensor(io, "loss_paper").item, accuracy: 1e-4, "\(name) paper loss")

        // Training-mode output, then the backward pass fed the golden's d loss / d output.
        let trainOut: Tensor = withGradients {
            var train = ForwardContext(training: true)
            let out = model.forward(clips, &train)
            out.backward(seed: try! tensor(io, "dloss_doutput"))
            return out
        }
        worst["train_output"] = relativeError(trainOut, goldenTrainOut)
        XCTAssertLessThanOrEqual(worst["train_output"]!, 1e-4, "\(name) train output")
        var checked = 0
        for (param, t) in model.store.parameters {
            guard let e = io.entry("grad." + param) else { continue }
            let expected = try io.tensor(e)
            let got = t.grad ?? Tensor(zeros: t.shape)
            let err = relativeError(got, expected)
            worst["gradients"] = max(worst["gradients"] ?? 0, err)
            XCTAssertLessThanOrEqual(err, 1e-3, "\(name) gradient of \(param)")
            checked += 1
        }
        XCTAssertGreaterThan(checked, 10, "\(name): too few gradients in the golden file")

        // Running statistics after that one training forward.
        for e in io.entries where e.name.hasPrefix("running_mean_after.") || e.name.hasPrefix("running_var_after.") {
            let isMean = e.name.hasPrefix("running_mean_after.")
            let bnName = String(e.name.dropFirst(isMean ? "running_mean_after.".count : "running_var_after.".count))
            let slotName = bnName + (isMean ? ".running_mean" : ".running_var")
            guard case let .buffer(t)? = model.store.slot(slotName) else { XCTFail("no buffer \(slotName)"); continue }
            XCTAssertLessThanOrEqual(relativeError(t, try io.tensor(e)), 1e-4, "\(name) \(slotName)")
        }
    }

    func testDefault() throws { try check("default") }
    func testSpatialCartesian() throws { try check("spatial_cartesian") }
    func testNoFusion() throws { try check("nofusion") }
    func testNoFilter() throws { try check("nofilter") }
}
