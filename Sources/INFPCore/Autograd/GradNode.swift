/// A recorded operation: its inputs and the map from the output's gradient to theirs.
final class GradNode {
    let inputs: [Tensor]
    /// Returns one gradient per input (nil where that input needs none or gets zero).
    let backward: (Tensor) -> [Tensor?]

    init(inputs: [Tensor], backward: @escaping (Tensor) -> [Tensor?]) {
        self.inputs = inputs
        self.backward = backward
    }
}

extension Tensor {
    /// Attaches `backward` to `self` (an op's fresh output) when recording is on and any
    /// input takes part in differentiation. Returns `self` for chaining.
    @discardableResult
    func recorded(from inputs: [Tensor], _ backward: @escaping (Tensor) -> [Tensor?]) -> Tensor {
        if GradMode.isEnabled && inputs.contains(where: { $0.needsGrad }) {
            node = GradNode(inputs: inputs, backward: backward)
        }
        return self
    }
}
