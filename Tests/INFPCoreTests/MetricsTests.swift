import XCTest
@testable import INFPCore

final class MetricsTests: XCTestCase {
    /// Pairwise definition: P(score of a positive > score of a negative) + ½ P(tie).
    func bruteAUC(_ labels: [Int], _ scores: [Double]) -> Double {
        var acc = 0.0, pairs = 0.0
        for i in labels.indices where labels[i] == 1 {
            for j in labels.indices where labels[j] == 0 {
                pairs += 1
                acc += scores[i] > scores[j] ? 1 : (scores[i] == scores[j] ? 0.5 : 0)
            }
        }
        return acc / pairs
    }

    func testAUCMatchesPairwiseDefinitionWithTies() throws {
        var rng = Rng(seed: 11)
        for trial in 0..<20 {
            let n = 50 + trial * 7
            let labels = (0..<n).map { i in i < 3 ? i % 2 : (rng.uniform() < 0.3 ? 1 : 0) }
            // Heavy ties on odd trials: scores from a handful of values.
            let scores = (0..<n).map { _ in trial % 2 == 1 ? Double(rng.below(5)) : rng.uniform() }
            XCTAssertEqual(try ROC.auc(labels: labels, scores: scores), bruteAUC(labels, scores), accuracy: 1e-12)
        }
        XCTAssertEqual(try ROC.auc(labels: [0, 0, 1, 1], scores: [0.1, 0.4, 0.35, 0.8]), 0.75, accuracy: 1e-15)
    }

    func testBadInputIsRefusedWithAMessage() {
        XCTAssertThrowsError(try ROC.auc(labels: [1, 1], scores: [0.2, 0.3])) { XCTAssertTrue("\($0)".contains("both")) }
        XCTAssertThrowsError(try ROC.auc(labels: [1, 0], scores: [0.2])) { XCTAssertTrue("\($0)".contains("entries")) }
        XCTAssertThrowsError(try ROC.auc(labels: [2, 0], scores: [0.2, 0.1])) { XCTAssertTrue("\($0)".contains("0 (normal)")) }
        XCTAssertThrowsError(try FrameEvaluation.frameAUC(psnr: [[1, 2]], labels: [[0, 1, 0]])) { XCTAssertTrue("\($0)".contains("labels")) }
    }

    func testCurveEndsAtOneAndIntegratesToAUC() throws {
        let labels = [0, 1, 0, 1, 1, 0, 0]
        let scores = [0.1, 0.9, 0.9, 0.5, 0.3, 0.3, 0.05]
        let c = try ROC.curve(labels: labels, scores: scores)
        XCTAssertEqual(c.fpr.last, 1); XCTAssertEqual(c.tpr.last, 1)
        var area = 0.0
        for i in 1..<c.fpr.count { area += (c.fpr[i] - c.fpr[i - 1]) * (c.tpr[i] + c.tpr[i - 1]) / 2 }
        XCTAssertEqual(area, try ROC.auc(labels: labels, scores: scores), accuracy: 1e-12)
    }

    func testFrameAUCProtocol() throws {
        // Video 1: anomaly (low PSNR) at frames 6, 7; video 2 flat (no variation: s = 1).
        let psnr1: [Double] = [30, 31, 20, 19, 30, 29]     // frames 4..9
        let labels1 = [0, 0, 0, 0, 0, 0, 1, 1, 0, 0]       // frames 0..9
        let psnr2: [Double] = [25, 25, 25]
        let labels2 = [0, 0, 0, 0, 0, 1, 0]
        let auc = try FrameEvaluation.frameAUC(psnr: [psnr1, psnr2], labels: [labels1, labels2])
        // Scores −s: video 1 anomalies s = 0.083, 0; normals ≥ 0.83; video 2 all s = 1 (one positive).
        let s1 = FrameEvaluation.normalisedRegularity(psnr1).map { -$0 }
        XCTAssertEqual(auc, bruteAUC([0, 0, 1, 1, 0, 0, 0, 1, 0], s1 + [-1, -1, -1]), accuracy: 1e-12)
        XCTAssertEqual(FrameEvaluation.normalisedRegularity(psnr2), [1, 1, 1])
    }
}
