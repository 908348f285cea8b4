import Glibc

/// Seeded random numbers (SplitMix64): the same seed gives the same weights, shuffles and
/// dropout masks on every machine.
public struct Rng {
    public var state: UInt64
    public init(seed: UInt64) { state = seed }

    public mutating func next() -> UInt64 {
        state &+= 0x9E3779B97F4A7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58476D1CE4E5B9
        z = (z ^ (z >> 27)) &* 0x94D049BB133111EB
        return z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    public mutating func uniform() -> Double { Double(next() >> 11) * 0x1.0p-53 }

    public mutating func uniform(_ lo: Float, _ hi: Float) -> Float { lo + (hi - lo) * Float(uniform()) }

    /// Standard normal (Box–Muller).
    public mutating func normal() -> Float {
        let u1 = max(uniform(), 1e-300), u2 = uniform()
        return Float((-2 * Glibc.log(u1)).squareRoot() * Glibc.cos(2 * Double.pi * u2))
    }

    /// Uniform integer in 0..<n.
    public mutating func below(_ n: Int) -> Int { n <= 1 ? 0 : Int(next() % UInt64(n)) }

    /// Fisher–Yates shuffle.
    public mutating func shuffle<T>(_ a: inout [T]) {
        guard a.count > 1 else { return }
        for i in stride(from: a.count - 1, to: 0, by: -1) { a.swapAt(i, below(i + 1)) }
    }
}

extension Tensor {
    public static func uniform(_ shape: [Int], _ lo: Float, _ hi: Float, rng: inout Rng) -> Tensor {
        let t = Tensor(uninitialized: shape)
        for i in 0..<t.count { t.data[i] = rng.uniform(lo, hi) }
        return t
    }

    public static func normal(_ shape: [Int], std: Float, rng: inout Rng) -> Tensor {
        let t = Tensor(uninitialized: shape)
        for i in 0..<t.count { t.data[i] = std * rng.normal() }
        return t
    }
}
