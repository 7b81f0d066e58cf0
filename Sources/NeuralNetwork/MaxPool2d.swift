import TensorCore

/// 2 x 2 max pooling with stride 2, as PyTorch's `MaxPool2d(2)`.
///
/// Shapes: input `[N, C, H, W]`, output `[N, C, H / 2, W / 2]` (rounded down;
/// an odd last row or column is dropped). Ties go to the first maximum in
/// row-major window order, as in PyTorch. Forward keeps the position of each
/// maximum in its window (0...3, one byte per output) for backward.
public final class MaxPool2d {
    private var savedWinners: [UInt8] = []
    private var savedInputShape: [Int] = []

    public init() {}

    public func forward(_ input: Tensor) -> Tensor {
        precondition(input.rank == 4, "MaxPool2d expects [N, C, H, W], got \(input.shape)")
        let (planes, height, width) = (input.shape[0] * input.shape[1], input.shape[2], input.shape[3])
        var output = Tensor(shape: [input.shape[0], input.shape[1], height / 2, width / 2])
        savedWinners = [UInt8](repeating: 0, count: output.count)
        input.withUnsafeBufferPointer { input in
            output.withUnsafeMutableBufferPointer { output in
                savedWinners.withUnsafeMutableBufferPointer { winners in
                    maxPoolForward(input.baseAddress!, output: output.baseAddress!, winners: winners.baseAddress!,
                                   planes: planes, height: height, width: width)
                }
            }
        }
        savedInputShape = input.shape
        return output
    }

    /// Routes each output gradient to the input position that won its window.
    public func backward(_ dOutput: Tensor) -> Tensor {
        precondition(savedInputShape.count == 4, "MaxPool2d.backward called before forward")
        let (planes, height, width) = (savedInputShape[0] * savedInputShape[1], savedInputShape[2], savedInputShape[3])
        precondition(dOutput.shape == [savedInputShape[0], savedInputShape[1], height / 2, width / 2],
                     "MaxPool2d.backward expects dOutput for input \(savedInputShape), got \(dOutput.shape)")
        var dInput = Tensor(shape: savedInputShape)
        dOutput.withUnsafeBufferPointer { dOutput in
            dInput.withUnsafeMutableBufferPointer { dInput in
                savedWinners.withUnsafeBufferPointer { winners in
                    maxPoolBackward(dOutput.baseAddress!, winners: winners.baseAddress!, dInput: dInput.baseAddress!,
                                    planes: planes, height: height, width: width)
                }
            }
        }
        return dInput
    }
}

/// Pools `planes` planes of `height` x `width` and records each window's winner.
func maxPoolForward(_ input: UnsafePointer<Float>, output: UnsafeMutablePointer<Float>, winners: UnsafeMutablePointer<UInt8>,
                    planes: Int, height: Int, width: Int) {
    let (outputHeight, outputWidth) = (height / 2, width / 2)
    Parallel.forEachChunk(planes) { range in
        for plane in range {
            let source = input + plane * height * width
            let target = plane * outputHeight * outputWidth
            for oy in 0..<outputHeight {
                for ox in 0..<outputWidth {
                    let topLeft = source + 2 * oy * width + 2 * ox
                    var best = topLeft[0]
                    var winner: UInt8 = 0
                    // A NaN wins its window, as in PyTorch.
                    for (candidate, position) in [(topLeft[1], 1), (topLeft[width], 2), (topLeft[width + 1], 3)]
                    where candidate > best || candidate.isNaN {
                        best = candidate
                        winner = UInt8(position)
                    }
                    output[target + oy * outputWidth + ox] = best
                    winners[target + oy * outputWidth + ox] = winner
                }
            }
        }
    }
}

/// Writes `dInput` (zero except at the winners) from `dOutput`.
func maxPoolBackward(_ dOutput: UnsafePointer<Float>, winners: UnsafePointer<UInt8>, dInput: UnsafeMutablePointer<Float>,
                     planes: Int, height: Int, width: Int) {
    let (outputHeight, outputWidth) = (height / 2, width / 2)
    Parallel.forEachChunk(planes) { range in
        for plane in range {
            let target = dInput + plane * height * width
            target.update(repeating: 0, count: height * width)
            let source = plane * outputHeight * outputWidth
            for oy in 0..<outputHeight {
                for ox in 0..<outputWidth {
                    let index = source + oy * outputWidth + ox
                    let winner = Int(winners[index])
                    target[(2 * oy + winner / 2) * width + 2 * ox + winner % 2] = dOutput[index]
                }
            }
        }
    }
}
