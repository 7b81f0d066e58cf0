import TensorCore

/// Stochastic gradient descent with momentum and L2 weight decay, with the
/// update rule of PyTorch's `torch.optim.SGD` (dampening 0):
///
///     g = gradient + weightDecay * value
///     buffer = g                                  on the first step
///     buffer = momentum * buffer + g              afterwards
///     g = g + momentum * buffer  (nesterov)       or  g = buffer
///     value = value - learningRate * g
///
/// Weight decay applies to every parameter, batch-norm weights and biases
/// included, as MetaOptNet's optimiser does.
public final class SGD {
    public let parameters: [Parameter]
    public var learningRate: Float
    public let momentum: Float
    public let weightDecay: Float
    public let nesterov: Bool
    /// Momentum buffers by parameter name; absent until a parameter's first step.
    private var buffers: [String: Tensor] = [:]

    public init(parameters: [Parameter], learningRate: Float, momentum: Float = 0.9, weightDecay: Float = 5e-4, nesterov: Bool = true) {
        precondition(Set(parameters.map(\.name)).count == parameters.count, "SGD parameters need unique names")
        precondition(learningRate >= 0 && momentum >= 0 && weightDecay >= 0,
                     "SGD needs non-negative learning rate, momentum and weight decay, got \(learningRate), \(momentum), \(weightDecay)")
        precondition(!nesterov || momentum > 0, "Nesterov momentum needs a positive momentum")
        self.parameters = parameters
        self.learningRate = learningRate
        self.momentum = momentum
        self.weightDecay = weightDecay
        self.nesterov = nesterov
    }

    /// Applies one update to every parameter from its current gradient.
    public func step() {
        for parameter in parameters {
            let count = parameter.value.count
            let hadBuffer = buffers[parameter.name] != nil
            var buffer = buffers.removeValue(forKey: parameter.name) ?? Tensor(shape: parameter.value.shape)
            let (learningRate, momentum, weightDecay, nesterov) = (self.learningRate, self.momentum, self.weightDecay, self.nesterov)
            parameter.gradient.withUnsafeBufferPointer { gradient in
                parameter.value.withUnsafeMutableBufferPointer { value in
                    buffer.withUnsafeMutableBufferPointer { buffer in
                        for index in 0..<count {
                            var step = gradient[index] + weightDecay * value[index]
                            if momentum > 0 {
                                buffer[index] = hadBuffer ? momentum * buffer[index] + step : step
                                step = nesterov ? step + momentum * buffer[index] : buffer[index]
                            }
                            value[index] -= learningRate * step
                        }
                    }
                }
            }
            if momentum > 0 { buffers[parameter.name] = buffer }
        }
    }

    /// Sets every parameter's gradient to zero.
    public func zeroGradients() {
        for parameter in parameters { parameter.zeroGradient() }
    }

    /// Returns the momentum buffer of the parameter `name`, or nil before its first step.
    public func momentumBuffer(named name: String) -> Tensor? { buffers[name] }

    /// Sets the momentum buffer of the parameter `name`, for resuming from a checkpoint.
    public func setMomentumBuffer(_ buffer: Tensor, named name: String) throws {
        guard let parameter = parameters.first(where: { $0.name == name }) else {
            throw SGDError.unknownParameter(name)
        }
        guard buffer.shape == parameter.value.shape else {
            throw SGDError.shapeMismatch(name: name, expected: parameter.value.shape, actual: buffer.shape)
        }
        buffers[name] = buffer
    }

    /// The names of the parameters that have a momentum buffer.
    public var momentumBufferNames: [String] { parameters.map(\.name).filter { buffers[$0] != nil } }
}

/// An error from restoring optimiser state.
public enum SGDError: Error, CustomStringConvertible, Equatable {
    case unknownParameter(String)
    case shapeMismatch(name: String, expected: [Int], actual: [Int])

    public var description: String {
        switch self {
        case .unknownParameter(let name):
            return "The momentum buffer '\(name)' matches no optimised parameter; check that the checkpoint belongs to this network."
        case .shapeMismatch(let name, let expected, let actual):
            return "The momentum buffer '\(name)' has shape \(actual) but the parameter has \(expected); check the network widths."
        }
    }
}
