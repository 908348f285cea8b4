/// Learning rate per epoch: the released MultiStepLR (×gamma at each milestone epoch).
public struct MultiStepSchedule: Equatable {
    public var baseRate: Float
    public var milestones: [Int]
    public var gamma: Float

    public init(baseRate: Float = 2e-4, milestones: [Int] = [100, 120], gamma: Float = 0.5) {
        self.baseRate = baseRate; self.milestones = milestones; self.gamma = gamma
    }

    /// The rate during `epoch` (0-based): reduced once per milestone already passed.
    public func rate(epoch: Int) -> Float {
        var r = baseRate
        for m in milestones where epoch >= m { r *= gamma }
        return r
    }
}
