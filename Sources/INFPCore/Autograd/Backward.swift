extension Tensor {
    /// Reverse-mode differentiation: accumulates d(sum(self * seed))/d(leaf) into `grad` of
    /// every leaf with `requiresGrad`. `seed` defaults to ones (use it for a scalar loss).
    /// The recorded graph is released afterwards.
    public func backward(seed: Tensor? = nil) {
        GradMode.with(enabled: false) { backwardPass(seed: seed) }
    }

    private func backwardPass(seed: Tensor?) {
        let start = seed ?? Tensor(repeating: 1, shape: shape)
        precondition(start.count == count, "backward seed \(start.shape) does not fit \(shape)")

        // Topological order of the recorded nodes reachable from self (iterative DFS).
        var order: [Tensor] = []
        var visited = Set<ObjectIdentifier>()
        var stack: [(Tensor, Bool)] = [(self, false)]
        while let (t, expanded) = stack.popLast() {
            if expanded { order.append(t); continue }
            guard let node = t.node, visited.insert(ObjectIdentifier(t)).inserted else { continue }
            stack.append((t, true))
            for input in node.inputs where input.node != nil { stack.append((input, false)) }
        }

        var pending: [ObjectIdentifier: Tensor] = [ObjectIdentifier(self): start]
        if node == nil { if requiresGrad { accumulateGrad(start) }; return }
        for t in order.reversed() {
            guard let node = t.node else { continue }
            guard let gradOut = pending.removeValue(forKey: ObjectIdentifier(t)) else { t.node = nil; continue }
            let grads = node.backward(gradOut)
            for (input, g) in zip(node.inputs, grads) {
                guard let g else { continue }
                precondition(g.count == input.count, "internal: gradient \(g.shape) for input \(input.shape)")
                if input.node != nil {
                    let id = ObjectIdentifier(input)
                    // Gradients may alias each other (views, pass-throughs): never add in place here.
                    let shaped = Tensor(viewing: g.storage, shape: input.shape)
                    pending[id] = pending[id].map { Tensor.sum($0, shaped) } ?? shaped
                } else if input.requiresGrad {
                    input.accumulateGrad(g)
                }
            }
            t.node = nil  // release saved activations as soon as they are used
        }
    }

    /// Adds `g` to `grad`, creating it on first use.
    func accumulateGrad(_ g: Tensor) {
        if let grad { grad.addInPlace(g) } else { grad = Tensor(viewing: g.storage, shape: shape).copy() }
    }

    /// Adds `g`'s values into this tensor's storage (used on owned buffers only).
    func addInPlace(_ g: Tensor) {
        let d = data, s = g.data
        for i in 0..<count { d[i] += s[i] }
    }

    /// Element-wise sum of two tensors of equal count, into a new tensor (not recorded).
    static func sum(_ a: Tensor, _ b: Tensor) -> Tensor {
        let out = Tensor(uninitialized: a.shape)
        let o = out.data, x = a.data, y = b.data
        for i in 0..<a.count { o[i] = x[i] + y[i] }
        return out
    }

    /// Clears the accumulated gradient.
    public func zeroGrad() { grad = nil }
}
