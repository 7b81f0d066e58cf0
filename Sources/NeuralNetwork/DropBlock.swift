import TensorCore

/// DropBlock (Ghiasi, Lin and Le, 2018) in the form MetaOptNet's ResNet-12 uses.
///
/// Shapes: input and output `[N, C, H, W]`. In training mode the layer draws
/// a seed grid of `[N, C, H - blockSize + 1, W - blockSize + 1]`
/// Bernoulli(`seedProbability`) samples. Each seed at `(i, j)` zeroes rows
/// `i ..< i + blockSize` and columns `j ..< j + blockSize` of the input
/// plane. MetaOptNet pads the seed grid but adds the block offsets to the
/// unpadded seed index, which gives exactly this square. The survivors are scaled by `(N * C * H * W) / survivors` so the
/// expected sum is kept. If every element is dropped the output is zero.
/// In evaluation mode it is the identity. Forward keeps the scaled mask.
///
/// The caller sets `seedProbability` from the keep rate:
/// `gamma = (1 - keepRate) / blockSize^2 * H^2 / (H - blockSize + 1)^2`.
public final class DropBlock {
    public let blockSize: Int
    public var isTraining = true
    private var savedMask: [Float] = []

    public init(blockSize: Int) {
        precondition(blockSize > 0, "DropBlock block size must be positive, got \(blockSize)")
        self.blockSize = blockSize
    }

    /// Returns the seed probability for a square feature map of side `featureSize`.
    public static func seedProbability(keepRate: Float, blockSize: Int, featureSize: Int) -> Float {
        let valid = Float(featureSize - blockSize + 1)
        return (1 - keepRate) / Float(blockSize * blockSize) * Float(featureSize * featureSize) / (valid * valid)
    }

    public func forward(_ input: Tensor, seedProbability: Float, random: inout SeededRandom) -> Tensor {
        precondition(input.rank == 4, "DropBlock expects [N, C, H, W], got \(input.shape)")
        guard isTraining else {
            savedMask = []
            return input
        }
        savedMask = [Float](repeating: 0, count: input.count)
        savedMask.withUnsafeMutableBufferPointer { mask in
            fillDropBlockMask(mask.baseAddress!, planes: input.shape[0] * input.shape[1], height: input.shape[2],
                              width: input.shape[3], blockSize: blockSize, seedProbability: seedProbability, random: &random)
        }
        return input.multiplied(by: savedMask)
    }

    public func backward(_ dOutput: Tensor) -> Tensor {
        guard !savedMask.isEmpty else { return dOutput }
        precondition(dOutput.count == savedMask.count, "DropBlock.backward expects \(savedMask.count) elements, got \(dOutput.shape)")
        return dOutput.multiplied(by: savedMask)
    }
}

/// Writes the scaled DropBlock mask for `planes` planes of `height` x `width`.
/// When the block does not fit (`blockSize > height` or `> width`), no seeds
/// are drawn and the mask is all ones.
func fillDropBlockMask(_ mask: UnsafeMutablePointer<Float>, planes: Int, height: Int, width: Int, blockSize: Int,
                       seedProbability: Float, random: inout SeededRandom) {
    let count = planes * height * width
    mask.update(repeating: 1, count: count)
    let (seedRows, seedColumns) = (height - blockSize + 1, width - blockSize + 1)
    if seedRows > 0 && seedColumns > 0 && seedProbability > 0 {
        for plane in 0..<planes {
            let target = mask + plane * height * width
            for i in 0..<seedRows {
                for j in 0..<seedColumns where random.nextFloat() < seedProbability {
                    for row in i..<(i + blockSize) {
                        (target + row * width + j).update(repeating: 0, count: blockSize)
                    }
                }
            }
        }
    }
    var survivors = 0
    for index in 0..<count where mask[index] != 0 { survivors += 1 }
    let scale: Float = survivors == 0 ? 0 : Float(count) / Float(survivors)
    for index in 0..<count { mask[index] *= scale }
}
