import TensorCore

/// Inverted dropout, as PyTorch's `F.dropout`. In training mode each element
/// is zeroed with probability `probability`, and the survivors are scaled by
/// `1 / (1 - probability)`. In evaluation mode it is the identity. Any shape.
/// Forward keeps the mask (0 or the scale per element) for backward.
public final class Dropout {
    public let probability: Float
    public var isTraining = true
    private var savedMask: [Float] = []

    public init(probability: Float) {
        precondition(probability >= 0 && probability < 1, "Dropout probability must be in [0, 1), got \(probability)")
        self.probability = probability
    }

    /// Draws the mask from `random`, so equal generator states give equal masks.
    public func forward(_ input: Tensor, random: inout SeededRandom) -> Tensor {
        guard isTraining && probability > 0 else {
            savedMask = []
            return input
        }
        savedMask = [Float](repeating: 0, count: input.count)
        savedMask.withUnsafeMutableBufferPointer { mask in
            fillDropoutMask(mask.baseAddress!, count: input.count, probability: probability, random: &random)
        }
        return input.multiplied(by: savedMask)
    }

    public func backward(_ dOutput: Tensor) -> Tensor {
        guard !savedMask.isEmpty else { return dOutput }
        precondition(dOutput.count == savedMask.count, "Dropout.backward expects \(savedMask.count) elements, got \(dOutput.shape)")
        return dOutput.multiplied(by: savedMask)
    }
}

/// Writes `count` mask values: 0 with probability `probability`, else `1 / (1 - probability)`.
func fillDropoutMask(_ mask: UnsafeMutablePointer<Float>, count: Int, probability: Float, random: inout SeededRandom) {
    let scale = 1 / (1 - probability)
    for index in 0..<count {
        mask[index] = random.nextFloat() < probability ? 0 : scale
    }
}

/// Multiplies `data` elementwise by `factors` in place.
func multiply(_ data: UnsafeMutablePointer<Float>, by factors: UnsafePointer<Float>, count: Int) {
    Parallel.forEachChunk(count) { range in
        for index in range { data[index] *= factors[index] }
    }
}

extension Tensor {
    /// Returns the elementwise product with a mask of equal element count. Forward
    /// and backward of Dropout and DropBlock both apply their saved mask this way.
    func multiplied(by mask: [Float]) -> Tensor {
        precondition(mask.count == count, "mask has \(mask.count) elements, tensor \(shape) has \(count)")
        var result = self
        result.withUnsafeMutableBufferPointer { data in
            mask.withUnsafeBufferPointer { factors in
                multiply(data.baseAddress!, by: factors.baseAddress!, count: factors.count)
            }
        }
        return result
    }
}
