/// ROC analysis for frame-level anomaly detection (INFP-SPEC §5).
public enum ROC {
    public struct InputError: Error, CustomStringConvertible { public let description: String }

    /// Area under the ROC curve of `scores` (higher = more anomalous) against 0/1 `labels`,
    /// ties counted ½ — identical to scikit-learn's roc_auc_score. O(n log n).
    public static func auc(labels: [Int], scores: [Double]) throws -> Double {
        try validate(labels: labels, scores: scores)
        let order = scores.indices.sorted { scores[$0] < scores[$1] }
        // Mann–Whitney U with mid-ranks for ties.
        var rankSumPositive = 0.0
        var i = 0
        while i < order.count {
            var j = i
            while j + 1 < order.count && scores[order[j + 1]] == scores[order[i]] { j += 1 }
            let midRank = Double(i + j) / 2 + 1
            for k in i...j where labels[order[k]] == 1 { rankSumPositive += midRank }
            i = j + 1
        }
        let positives = Double(labels.filter { $0 == 1 }.count)
        let negatives = Double(labels.count) - positives
        return (rankSumPositive - positives * (positives + 1) / 2) / (positives * negatives)
    }

    /// ROC curve points (false positive rate, true positive rate, threshold), from the
    /// highest threshold down, one point per distinct score, starting at (0, 0, +inf).
    public static func curve(labels: [Int], scores: [Double]) throws -> (fpr: [Double], tpr: [Double], thresholds: [Double]) {
        try validate(labels: labels, scores: scores)
        let order = scores.indices.sorted { scores[$0] > scores[$1] }
        let positives = Double(labels.filter { $0 == 1 }.count)
        let negatives = Double(labels.count) - positives
        var fpr = [0.0], tpr = [0.0], thresholds = [Double.infinity]
        var tp = 0.0, fp = 0.0
        var i = 0
        while i < order.count {
            let s = scores[order[i]]
            while i < order.count && scores[order[i]] == s {
                if labels[order[i]] == 1 { tp += 1 } else { fp += 1 }
                i += 1
            }
            fpr.append(fp / negatives); tpr.append(tp / positives); thresholds.append(s)
        }
        return (fpr, tpr, thresholds)
    }

    static func validate(labels: [Int], scores: [Double]) throws {
        guard labels.count == scores.count else {
            throw InputError(description: "labels has \(labels.count) entries but scores has \(scores.count)")
        }
        if let bad = labels.first(where: { $0 != 0 && $0 != 1 }) {
            throw InputError(description: "labels must be 0 (normal) or 1 (anomalous), found \(bad)")
        }
        if let k = scores.firstIndex(where: { $0.isNaN }) {
            throw InputError(description: "score \(k) is NaN")
        }
        let positives = labels.filter { $0 == 1 }.count
        guard positives > 0 && positives < labels.count else {
            throw InputError(description: "ROC AUC needs both normal and anomalous frames; got \(positives) anomalous of \(labels.count)")
        }
    }
}
