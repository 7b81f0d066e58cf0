import TensorCore

/// `y = x` for `x > 0`, else `negativeSlope * x` (PyTorch's `LeakyReLU`; the
/// backbone uses slope 0.1). Any shape. Forward keeps its output, whose sign
/// equals the input's because the slope is positive.
public final class LeakyReLU {
    public let negativeSlope: Float
    private var savedOutput: Tensor?

    public init(negativeSlope: Float = 0.1) {
        precondition(negativeSlope > 0, "LeakyReLU needs a positive slope so that the output sign gives the input sign, got \(negativeSlope)")
        self.negativeSlope = negativeSlope
    }

    public func forward(_ input: Tensor) -> Tensor {
        var output = input
        let slope = negativeSlope
        output.withUnsafeMutableBufferPointer { data in
            let data = data.baseAddress!
            Parallel.forEachChunk(input.count) { range in
                for index in range where data[index] <= 0 { data[index] *= slope }
            }
        }
        savedOutput = output
        return output
    }

    /// Returns `dInput = dOutput * (x > 0 ? 1 : negativeSlope)`.
    public func backward(_ dOutput: Tensor) -> Tensor {
        guard let output = savedOutput else { preconditionFailure("LeakyReLU.backward called before forward") }
        precondition(sameShape: dOutput, output, "LeakyReLU.backward")
        var dInput = dOutput
        let (slope, count) = (negativeSlope, dOutput.count)
        output.withUnsafeBufferPointer { output in
            dInput.withUnsafeMutableBufferPointer { data in
                let (output, data) = (output.baseAddress!, data.baseAddress!)
                Parallel.forEachChunk(count) { range in
                    for index in range where output[index] <= 0 { data[index] *= slope }
                }
            }
        }
        return dInput
    }
}
