/// The model's named state in checkpoint order: trainable parameters, BatchNorm running
/// statistics and BatchNorm step counters, under the released code's state_dict names.
public final class ParameterStore {
    public enum Slot {
        case parameter(Tensor)
        case buffer(Tensor)
        case counter(BatchNorm2d)
    }

    public private(set) var entries: [(name: String, slot: Slot)] = []
    var rng: Rng

    init(seed: UInt64) { rng = Rng(seed: seed) }

    func add(_ name: String, _ slot: Slot) {
        if case let .parameter(t) = slot { t.requiresGrad = true }
        entries.append((name, slot))
    }

    /// Trainable tensors, in order.
    public var parameters: [(name: String, tensor: Tensor)] {
        entries.compactMap { if case let .parameter(t) = $0.slot { return ($0.name, t) }; return nil }
    }

    public var parameterCount: Int { parameters.reduce(0) { $0 + $1.tensor.count } }

    public func slot(_ name: String) -> Slot? { entries.first { $0.name == name }?.slot }
}

/// Where a module registers its tensors: a name prefix inside a store.
public struct Scope {
    let store: ParameterStore
    let prefix: String

    init(store: ParameterStore, prefix: String = "") { self.store = store; self.prefix = prefix }

    public func child(_ name: String) -> Scope { Scope(store: store, prefix: qualified(name)) }
    func qualified(_ name: String) -> String { prefix.isEmpty ? name : prefix + "." + name }

    /// Registers a trainable tensor.
    @discardableResult
    func parameter(_ name: String, _ t: Tensor) -> Tensor { store.add(qualified(name), .parameter(t)); return t }
    func buffer(_ name: String, _ t: Tensor) { store.add(qualified(name), .buffer(t)) }

    /// Draws initial values from the store's seeded generator.
    func uniform(_ shape: [Int], bound: Float) -> Tensor { Tensor.uniform(shape, -bound, bound, rng: &store.rng) }
    func normal(_ shape: [Int], std: Float) -> Tensor { Tensor.normal(shape, std: std, rng: &store.rng) }
}
