/// Neural-network layers as differentiable functions (torch.nn.functional style).
public enum NN {}
