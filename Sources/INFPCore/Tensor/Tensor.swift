import Glibc

/// Owner of one 64-byte aligned float buffer (from `BufferPool`). Several tensors may view it
/// (reshape).
public final class Storage {
    public let pointer: UnsafeMutablePointer<Float>
    public let count: Int

    init(count: Int) {
        let n = max(1, count)
        pointer = BufferPool.allocate(n * MemoryLayout<Float>.stride).bindMemory(to: Float.self, capacity: n)
        self.count = count
    }

    deinit { BufferPool.release(UnsafeMutableRawPointer(pointer), bytes: max(1, count) * MemoryLayout<Float>.stride) }
}

/// A dense, C-contiguous float32 tensor (NCHW for images). Complex tensors are real tensors
/// whose last dimension is 2 (real, imaginary), the layout FFTW and NumPy use.
public final class Tensor {
    public let shape: [Int]
    public let count: Int
    public let storage: Storage
    public var data: UnsafeMutablePointer<Float> { storage.pointer }

    /// Leaf tensors (parameters) that should receive a gradient in `backward`.
    public var requiresGrad: Bool = false
    /// Accumulated gradient after `backward`, same shape as the tensor.
    public var grad: Tensor?
    /// How this tensor was computed, when it was recorded for differentiation.
    var node: GradNode?

    /// A tensor filled with zeros.
    public init(zeros shape: [Int]) {
        self.shape = shape
        self.count = shape.reduce(1, *)
        self.storage = Storage(count: count)
        data.initialize(repeating: 0, count: count)
    }

    /// A tensor whose contents the caller fills before reading (no zeroing cost).
    public init(uninitialized shape: [Int]) {
        self.shape = shape
        self.count = shape.reduce(1, *)
        self.storage = Storage(count: count)
    }

    /// A tensor with the given values (row-major).
    public convenience init(shape: [Int], values: [Float]) {
        precondition(shape.reduce(1, *) == values.count, "shape \(shape) does not hold \(values.count) values")
        self.init(uninitialized: shape)
        values.withUnsafeBufferPointer { data.update(from: $0.baseAddress!, count: values.count) }
    }

    /// A tensor filled with one value.
    public convenience init(repeating value: Float, shape: [Int]) {
        self.init(uninitialized: shape)
        data.update(repeating: value, count: count)
    }

    /// A view of the same storage with another shape (no copy).
    init(viewing storage: Storage, shape: [Int]) {
        self.shape = shape
        self.count = shape.reduce(1, *)
        self.storage = storage
    }

    public var rank: Int { shape.count }
    public var scalars: [Float] { Array(UnsafeBufferPointer(start: data, count: count)) }
    public var buffer: UnsafeMutableBufferPointer<Float> { UnsafeMutableBufferPointer(start: data, count: count) }

    /// The single value of a one-element tensor.
    public var item: Float { precondition(count == 1, "item needs one element, shape is \(shape)"); return data[0] }

    /// True when this tensor takes part in differentiation.
    public var needsGrad: Bool { requiresGrad || node != nil }

    /// A copy of the values, detached from any recorded computation.
    public func copy() -> Tensor {
        let t = Tensor(uninitialized: shape)
        t.data.update(from: data, count: count)
        return t
    }

    /// The same values, cut off from the recorded computation (shares storage).
    public func detached() -> Tensor { Tensor(viewing: storage, shape: shape) }

    /// Overwrites the values with `other`'s (same count), outside differentiation.
    public func assign(_ other: Tensor) {
        precondition(other.count == count, "assign: \(other.shape) into \(shape)")
        data.update(from: other.data, count: count)
    }

    /// True when no value is NaN or infinite.
    public var allFinite: Bool {
        withExtendedLifetime(self) {
            let d = data
            for i in 0..<count where !d[i].isFinite { return false }
            return true
        }
    }

    /// Row-major strides of `shape`.
    public static func strides(of shape: [Int]) -> [Int] {
        var s = [Int](repeating: 1, count: shape.count)
        var acc = 1
        for i in stride(from: shape.count - 1, through: 0, by: -1) { s[i] = acc; acc *= shape[i] }
        return s
    }
}

extension Tensor: CustomStringConvertible {
    public var description: String {
        let shown = scalars.prefix(8).map { "\($0)" }.joined(separator: ", ")
        return "Tensor(\(shape), [\(shown)\(count > 8 ? ", …" : "")])"
    }
}
