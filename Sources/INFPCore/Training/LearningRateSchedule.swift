import Glibc

/// How the learning rate moves over a run.
public enum ScheduleKind: String, CaseIterable, Equatable {
    /// The released recipe: the base rate, ×gamma at each milestone epoch.
    case multistep
    /// Linear warm-up to the base rate, then a half cosine down to base·finalFactor.
    case cosine
    /// PyTorch's OneCycleLR shape: from base/25 up to base over the first 30 % (cosine),
    /// then down to base/25·1e-4 (cosine).
    case onecycle
}

/// Learning rate as a function of the epoch (multistep) or of the run's progress in [0, 1]
/// (cosine, one-cycle). Progress is the larger of the fraction of steps done and the fraction
/// of the time budget used, so a schedule spans a time-limited run as it spans an epoch count.
public struct LearningRateSchedule: Equatable {
    public var kind: ScheduleKind
    public var baseRate: Float
    public var milestones: [Int]
    public var gamma: Float
    /// Cosine: fraction of the run spent warming up linearly from 0.
    public var warmup: Float
    /// Cosine: the rate at the end, as a fraction of the base rate.
    public var finalFactor: Float

    public init(kind: ScheduleKind = .multistep, baseRate: Float = 2e-4, milestones: [Int] = [100, 120], gamma: Float = 0.5,
                warmup: Float = 0.05, finalFactor: Float = 0.01) {
        self.kind = kind; self.baseRate = baseRate; self.milestones = milestones; self.gamma = gamma
        self.warmup = warmup; self.finalFactor = finalFactor
    }

    /// The released MultiStepLR (×gamma at each milestone epoch).
    public static func multistep(baseRate: Float = 2e-4, milestones: [Int] = [100, 120], gamma: Float = 0.5) -> Self {
        Self(kind: .multistep, baseRate: baseRate, milestones: milestones, gamma: gamma)
    }

    /// The rate during `epoch` (0-based) at `progress` ∈ [0, 1] of the run.
    public func rate(epoch: Int, progress: Double) -> Float {
        let p = min(max(progress, 0), 1)
        switch kind {
        case .multistep:
            var r = baseRate
            for m in milestones where epoch >= m { r *= gamma }
            return r
        case .cosine:
            let w = Double(warmup)
            // Warm-up ends at `w`; the first step already gets a small non-zero rate.
            if p < w { return baseRate * Float(max(p / w, 0.01)) }
            let t = w >= 1 ? 1 : (p - w) / (1 - w)
            let f = Double(finalFactor)
            return baseRate * Float(f + (1 - f) * 0.5 * (1 + cos(Double.pi * t)))
        case .onecycle:
            let start = Double(baseRate) / 25, end = start * 1e-4, peak = 0.3
            func anneal(_ a: Double, _ b: Double, _ t: Double) -> Double { b + (a - b) * 0.5 * (1 + cos(Double.pi * t)) }
            return Float(p < peak ? anneal(start, Double(baseRate), p / peak) : anneal(Double(baseRate), end, (p - peak) / (1 - peak)))
        }
    }

    /// Settings that make no schedule, named after the C/Python parameter at fault.
    public func validate() throws {
        func bad(_ m: String) -> TrainingError { TrainingError(kind: .invalid, description: m) }
        guard baseRate.isFinite, baseRate > 0 else { throw bad("learning_rate is \(baseRate); it must be positive") }
        guard gamma.isFinite, gamma > 0 else { throw bad("gamma is \(gamma); it must be positive") }
        guard warmup.isFinite, warmup >= 0, warmup < 1 else { throw bad("warmup is \(warmup); use a fraction of the run in [0, 1)") }
        guard finalFactor.isFinite, finalFactor >= 0, finalFactor <= 1 else { throw bad("final_lr_factor is \(finalFactor); use [0, 1]") }
    }
}
