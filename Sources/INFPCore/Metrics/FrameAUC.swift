/// Frame-level evaluation of the field's protocol (INFP-SPEC §5).
public enum FrameEvaluation {
    /// Per-video min–max normalisation of PSNR: s = (p − min)/(max − min), high = normal;
    /// a video without variation gets s = 1 everywhere (no evidence of an anomaly).
    public static func normalisedRegularity(_ psnr: [Double]) -> [Double] {
        guard let lo = psnr.min(), let hi = psnr.max(), hi > lo else { return psnr.map { _ in 1 } }
        return psnr.map { ($0 - lo) / (hi - lo) }
    }

    /// Frame-level ROC AUC over all videos: PSNR of frames 4..n−1 per video (n − 4 values)
    /// and per-frame 0/1 labels of all n frames (the first 4 are dropped) or of frames 4..n−1.
    public static func frameAUC(psnr: [[Double]], labels: [[Int]], skip: Int = 4) throws -> Double {
        guard psnr.count == labels.count else {
            throw ROC.InputError(description: "scores are given for \(psnr.count) videos but labels for \(labels.count)")
        }
        var allLabels: [Int] = [], allScores: [Double] = []
        for (v, (p, l)) in zip(psnr, labels).enumerated() {
            if let k = p.firstIndex(where: { !$0.isFinite }) {
                throw ROC.InputError(description: "video \(v): score \(k) is \(p[k].isNaN ? "NaN" : "infinite"); scores must be finite")
            }
            let aligned: ArraySlice<Int>
            if l.count == p.count + skip { aligned = l[skip...] }
            else if l.count == p.count { aligned = l[...] }
            else {
                throw ROC.InputError(description: "video \(v): \(p.count) scores (frames \(skip)..n−1) but \(l.count) labels; give \(p.count + skip) labels (all frames) or \(p.count)")
            }
            allLabels += aligned
            allScores += normalisedRegularity(p).map { -$0 }
        }
        return try ROC.auc(labels: allLabels, scores: allScores)
    }

    /// Mean of per-video AUCs (videos with a single class are left out, as their AUC is undefined).
    public static func macroAUC(psnr: [[Double]], labels: [[Int]], skip: Int = 4) throws -> Double {
        var aucs: [Double] = []
        for (p, l) in zip(psnr, labels) {
            let aligned = l.count == p.count + skip ? Array(l[skip...]) : l
            let positives = aligned.filter { $0 == 1 }.count
            guard positives > 0 && positives < aligned.count else { continue }
            aucs.append(try frameAUC(psnr: [p], labels: [aligned], skip: skip))
        }
        guard !aucs.isEmpty else { throw ROC.InputError(description: "no video has both normal and anomalous frames") }
        return aucs.reduce(0, +) / Double(aucs.count)
    }
}
