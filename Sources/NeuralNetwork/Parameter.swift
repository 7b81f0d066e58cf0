import TensorCore

/// A trainable tensor and the gradient that backward passes accumulate into it.
///
/// `name` is the key PyTorch's `state_dict` uses for the same tensor (for
/// example `layer1.0.conv1.weight`), so checkpoints carry over in both
/// directions. `gradient` always has the shape of `value`.
public final class Parameter {
    public let name: String
    public var value: Tensor
    public var gradient: Tensor

    public init(name: String, value: Tensor) {
        self.name = name
        self.value = value
        self.gradient = Tensor(shape: value.shape)
    }

    /// Sets every gradient element to zero without reallocating.
    public func zeroGradient() {
        gradient.fill(0)
    }
}
