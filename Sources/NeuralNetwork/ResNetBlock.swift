import TensorCore

/// Scratch memory shared by all blocks of one network, sized for the largest block.
final class BlockWorkspace {
    /// Activations recomputed from the kept `xhat` buffers.
    let activation = FloatBuffer()
    let gradientA = FloatBuffer()
    let gradientB = FloatBuffer()
    let gradientShortcut = FloatBuffer()
    /// The gradients flowing between blocks, used in turn.
    let blockGradients = [FloatBuffer(), FloatBuffer()]
}

/// One ResNet-12 residual block as MetaOptNet builds it:
///
///     x -> conv1 (3x3) -> bn1 -> LeakyReLU -> conv2 (3x3) -> bn2 -> LeakyReLU
///       -> conv3 (3x3) -> bn3 -> (+ bnShortcut(convShortcut(x), 1x1)) -> LeakyReLU
///       -> MaxPool2d(2) -> Dropout or DropBlock
///
/// Shapes: input `[N, Cin, H, W]`, output `[N, C, H / 2, W / 2]`.
///
/// Memory plan: forward keeps only the four normalised convolution outputs
/// (`xhat`, `[N, C, H, W]` each), the pooling winners (one byte per output),
/// the dropout mask and the output. Backward recomputes each LeakyReLU
/// activation from its `xhat` (one multiply-add per element) instead of
/// keeping it. For a 440-image batch at full width this keeps about 1.1 GB,
/// against an estimated 3.4 GB for keeping all 14 intermediate tensors of
/// each block. The caller keeps the input.
final class ResNetBlock {
    let name: String
    let inputChannels: Int
    let channels: Int
    let conv1, conv2, conv3, shortcutConv: Conv2d
    let bn1, bn2, bn3, shortcutBN: BatchNorm2d
    let negativeSlope: Float = 0.1
    let dropRate: Float
    let usesDropBlock: Bool
    let dropBlockSize: Int
    let dropBlockRampPasses: Int
    /// Training-mode forward passes so far, one per normalisation group; drives the DropBlock ramp.
    var forwardPasses = 0
    var isTraining = true {
        didSet { for norm in batchNorms { norm.isTraining = isTraining } }
    }

    private let xhat1 = FloatBuffer(), xhat2 = FloatBuffer(), xhat3 = FloatBuffer(), xhatShortcut = FloatBuffer()
    private let mask = FloatBuffer()
    private var hasMask = false
    private var winners: [UInt8] = []
    /// The block output `[N, C, H / 2, W / 2]`, valid until the next forward.
    let output = FloatBuffer()
    private var shape = (batch: 0, height: 0, width: 0)

    init(name: String, inputChannels: Int, channels: Int, dropRate: Float, usesDropBlock: Bool, dropBlockSize: Int,
         dropBlockRampPasses: Int) {
        self.name = name
        self.inputChannels = inputChannels
        self.channels = channels
        conv1 = Conv2d(name: name + ".conv1.weight", inputChannels: inputChannels, outputChannels: channels, kernelSize: 3, padding: 1)
        bn1 = BatchNorm2d(name: name + ".bn1", channels: channels)
        conv2 = Conv2d(name: name + ".conv2.weight", inputChannels: channels, outputChannels: channels, kernelSize: 3, padding: 1)
        bn2 = BatchNorm2d(name: name + ".bn2", channels: channels)
        conv3 = Conv2d(name: name + ".conv3.weight", inputChannels: channels, outputChannels: channels, kernelSize: 3, padding: 1)
        bn3 = BatchNorm2d(name: name + ".bn3", channels: channels)
        shortcutConv = Conv2d(name: name + ".downsample.0.weight", inputChannels: inputChannels, outputChannels: channels, kernelSize: 1)
        shortcutBN = BatchNorm2d(name: name + ".downsample.1", channels: channels)
        self.dropRate = dropRate
        self.usesDropBlock = usesDropBlock
        self.dropBlockSize = dropBlockSize
        self.dropBlockRampPasses = dropBlockRampPasses
    }

    var convolutions: [Conv2d] { [conv1, conv2, conv3, shortcutConv] }
    var batchNorms: [BatchNorm2d] { [bn1, bn2, bn3, shortcutBN] }

    /// Parameters in `state_dict` order.
    var parameters: [Parameter] {
        [conv1.weight, bn1.weight, bn1.bias, conv2.weight, bn2.weight, bn2.bias,
         conv3.weight, bn3.weight, bn3.bias, shortcutConv.weight, shortcutBN.weight, shortcutBN.bias]
    }

    /// Returns the keep rate of DropBlock after `passes` training forward passes:
    /// `max(1 - dropRate * passes / rampPasses, 1 - dropRate)`.
    func dropBlockKeepRate(passes: Int) -> Float {
        max(1 - dropRate * Float(passes) / Float(dropBlockRampPasses), 1 - dropRate)
    }

    /// Runs the block on `input` `[N, Cin, H, W]` and leaves the result in `output`.
    func forward(_ input: UnsafePointer<Float>, batch: Int, height: Int, width: Int, groups: [Int],
                 random: inout SeededRandom, workspace: BlockWorkspace) {
        let spatial = height * width
        let fullCount = batch * channels * spatial
        let (outputHeight, outputWidth) = (height / 2, width / 2)
        let outputCount = batch * channels * outputHeight * outputWidth
        shape = (batch, height, width)
        let x1 = xhat1.reserve(fullCount), x2 = xhat2.reserve(fullCount), x3 = xhat3.reserve(fullCount)
        let xs = xhatShortcut.reserve(fullCount)
        let activation = workspace.activation.reserve(fullCount)
        let result = output.reserve(outputCount)

        conv1.forward(input: input, output: x1, batch: batch, height: height, width: width)
        bn1.normalize(x1, batch: batch, spatial: spatial, groups: groups)
        applyAffineLeakyReLU(x1, norm: bn1, into: activation, batch: batch, spatial: spatial)

        conv2.forward(input: activation, output: x2, batch: batch, height: height, width: width)
        bn2.normalize(x2, batch: batch, spatial: spatial, groups: groups)
        applyAffineLeakyReLU(x2, norm: bn2, into: activation, batch: batch, spatial: spatial)

        conv3.forward(input: activation, output: x3, batch: batch, height: height, width: width)
        bn3.normalize(x3, batch: batch, spatial: spatial, groups: groups)
        shortcutConv.forward(input: input, output: xs, batch: batch, height: height, width: width)
        shortcutBN.normalize(xs, batch: batch, spatial: spatial, groups: groups)

        if winners.count != outputCount { winners = [UInt8](repeating: 0, count: outputCount) }
        winners.withUnsafeMutableBufferPointer { winners in
            poolResidualSum(winners: winners.baseAddress!, output: result, batch: batch, height: height, width: width)
        }

        hasMask = isTraining && dropRate > 0
        guard hasMask else { return }
        let maskPointer = mask.reserve(outputCount)
        let planeCount = channels * outputHeight * outputWidth
        var firstImage = 0
        for count in groups {
            forwardPasses += 1
            let groupMask = maskPointer + firstImage * planeCount
            if usesDropBlock {
                let seedProbability = DropBlock.seedProbability(keepRate: dropBlockKeepRate(passes: forwardPasses),
                                                                blockSize: dropBlockSize, featureSize: outputHeight)
                fillDropBlockMask(groupMask, planes: count * channels, height: outputHeight, width: outputWidth,
                                  blockSize: dropBlockSize, seedProbability: seedProbability, random: &random)
            } else {
                fillDropoutMask(groupMask, count: count * planeCount, probability: dropRate, random: &random)
            }
            firstImage += count
        }
        multiply(result, by: maskPointer, count: outputCount)
    }

    /// Accumulates the parameter gradients and writes `dInput` `[N, Cin, H, W]`.
    /// `dOutput` `[N, C, H / 2, W / 2]` is overwritten; `input` must be the
    /// forward pass's input.
    func backward(input: UnsafePointer<Float>, dOutput: UnsafeMutablePointer<Float>, dInput: UnsafeMutablePointer<Float>,
                  workspace: BlockWorkspace) {
        let (batch, height, width) = shape
        let spatial = height * width
        let fullCount = batch * channels * spatial
        let outputCount = batch * channels * (height / 2) * (width / 2)
        let activation = workspace.activation.reserve(fullCount)
        let dSum = workspace.gradientA.reserve(fullCount)
        let dConv = workspace.gradientB.reserve(fullCount)
        let dShortcut = workspace.gradientShortcut.reserve(fullCount)
        let (x1, x2, x3, xs) = (xhat1.pointer, xhat2.pointer, xhat3.pointer, xhatShortcut.pointer)

        if hasMask { multiply(dOutput, by: mask.pointer, count: outputCount) }
        winners.withUnsafeBufferPointer { winners in
            unpoolResidualSum(dOutput, winners: winners.baseAddress!, dSum: dSum, batch: batch, height: height, width: width)
        }
        bn3.backward(normalized: x3, dOutput: dSum, dInput: dConv, batch: batch, spatial: spatial)
        shortcutBN.backward(normalized: xs, dOutput: dSum, dInput: dShortcut, batch: batch, spatial: spatial)

        applyAffineLeakyReLU(x2, norm: bn2, into: activation, batch: batch, spatial: spatial)
        conv3.backward(input: activation, dOutput: dConv, dInput: dSum, accumulateInput: false, batch: batch, height: height, width: width)
        multiplyLeakyReLUDerivative(dSum, xhat: x2, norm: bn2, batch: batch, spatial: spatial)
        bn2.backward(normalized: x2, dOutput: dSum, dInput: dConv, batch: batch, spatial: spatial)

        applyAffineLeakyReLU(x1, norm: bn1, into: activation, batch: batch, spatial: spatial)
        conv2.backward(input: activation, dOutput: dConv, dInput: dSum, accumulateInput: false, batch: batch, height: height, width: width)
        multiplyLeakyReLUDerivative(dSum, xhat: x1, norm: bn1, batch: batch, spatial: spatial)
        bn1.backward(normalized: x1, dOutput: dSum, dInput: dConv, batch: batch, spatial: spatial)

        conv1.backward(input: input, dOutput: dConv, dInput: dInput, accumulateInput: false, batch: batch, height: height, width: width)
        shortcutConv.backward(input: input, dOutput: dShortcut, dInput: dInput, accumulateInput: true, batch: batch, height: height, width: width)
    }

    // MARK: - Fused elementwise steps

    /// Writes `LeakyReLU(weight * xhat + bias)` of `norm` to `output`.
    private func applyAffineLeakyReLU(_ xhat: UnsafePointer<Float>, norm: BatchNorm2d, into output: UnsafeMutablePointer<Float>,
                                      batch: Int, spatial: Int) {
        let (channels, slope) = (self.channels, negativeSlope)
        norm.weight.value.withUnsafeBufferPointer { gamma in
            norm.bias.value.withUnsafeBufferPointer { beta in
                let (gamma, beta) = (gamma.baseAddress!, beta.baseAddress!)
                Parallel.forEachChunk(batch * channels) { planes in
                    for plane in planes {
                        let (scale, shift) = (gamma[plane % channels], beta[plane % channels])
                        let offset = plane * spatial
                        for index in offset..<(offset + spatial) {
                            let value = xhat[index] * scale + shift
                            output[index] = value > 0 ? value : value * slope
                        }
                    }
                }
            }
        }
    }

    /// Multiplies `gradient` by the LeakyReLU derivative at `weight * xhat + bias`.
    private func multiplyLeakyReLUDerivative(_ gradient: UnsafeMutablePointer<Float>, xhat: UnsafePointer<Float>, norm: BatchNorm2d,
                                             batch: Int, spatial: Int) {
        let (channels, slope) = (self.channels, negativeSlope)
        norm.weight.value.withUnsafeBufferPointer { gamma in
            norm.bias.value.withUnsafeBufferPointer { beta in
                let (gamma, beta) = (gamma.baseAddress!, beta.baseAddress!)
                Parallel.forEachChunk(batch * channels) { planes in
                    for plane in planes {
                        let (scale, shift) = (gamma[plane % channels], beta[plane % channels])
                        let offset = plane * spatial
                        for index in offset..<(offset + spatial) {
                            gradient[index] *= xhat[index] * scale + shift > 0 ? 1 : slope
                        }
                    }
                }
            }
        }
    }

    /// Computes `MaxPool2d(LeakyReLU(bn3(xhat3) + bnShortcut(xhatShortcut)))`
    /// in one pass. LeakyReLU is increasing, so pooling the sum and then
    /// applying LeakyReLU gives the same value and the same winners.
    private func poolResidualSum(winners: UnsafeMutablePointer<UInt8>, output: UnsafeMutablePointer<Float>,
                                 batch: Int, height: Int, width: Int) {
        let (channels, slope) = (self.channels, negativeSlope)
        let (x3, xs) = (UnsafePointer(xhat3.pointer), UnsafePointer(xhatShortcut.pointer))
        let (outputHeight, outputWidth) = (height / 2, width / 2)
        withResidualAffine { g3, b3, gs, bs in
            Parallel.forEachChunk(batch * channels) { planes in
                for plane in planes {
                    let channel = plane % channels
                    let (scale3, shift) = (g3[channel], b3[channel] + bs[channel])
                    let scaleShortcut = gs[channel]
                    let source = plane * height * width
                    let target = plane * outputHeight * outputWidth
                    for oy in 0..<outputHeight {
                        for ox in 0..<outputWidth {
                            let topLeft = source + 2 * oy * width + 2 * ox
                            var best = -Float.infinity
                            var winner: UInt8 = 0
                            for position in 0..<4 {
                                let index = topLeft + (position / 2) * width + position % 2
                                let value = x3[index] * scale3 + xs[index] * scaleShortcut + shift
                                if position == 0 || value > best || value.isNaN {
                                    best = value
                                    winner = UInt8(position)
                                }
                            }
                            output[target + oy * outputWidth + ox] = best > 0 ? best : best * slope
                            winners[target + oy * outputWidth + ox] = winner
                        }
                    }
                }
            }
        }
    }

    /// Writes `dSum` `[N, C, H, W]`, the gradient at the residual sum before
    /// LeakyReLU: zero except at each window's winner, where it is the pooled
    /// gradient times the LeakyReLU derivative.
    private func unpoolResidualSum(_ dOutput: UnsafePointer<Float>, winners: UnsafePointer<UInt8>, dSum: UnsafeMutablePointer<Float>,
                                   batch: Int, height: Int, width: Int) {
        let (channels, slope) = (self.channels, negativeSlope)
        let (x3, xs) = (UnsafePointer(xhat3.pointer), UnsafePointer(xhatShortcut.pointer))
        let (outputHeight, outputWidth) = (height / 2, width / 2)
        withResidualAffine { g3, b3, gs, bs in
            Parallel.forEachChunk(batch * channels) { planes in
                for plane in planes {
                    let channel = plane % channels
                    let (scale3, shift) = (g3[channel], b3[channel] + bs[channel])
                    let scaleShortcut = gs[channel]
                    let source = plane * outputHeight * outputWidth
                    let target = plane * height * width
                    (dSum + target).update(repeating: 0, count: height * width)
                    for oy in 0..<outputHeight {
                        for ox in 0..<outputWidth {
                            let pooled = source + oy * outputWidth + ox
                            let winner = Int(winners[pooled])
                            let index = target + (2 * oy + winner / 2) * width + 2 * ox + winner % 2
                            let value = x3[index] * scale3 + xs[index] * scaleShortcut + shift
                            dSum[index] = value > 0 ? dOutput[pooled] : dOutput[pooled] * slope
                        }
                    }
                }
            }
        }
    }

    private func withResidualAffine(_ body: (UnsafePointer<Float>, UnsafePointer<Float>, UnsafePointer<Float>, UnsafePointer<Float>) -> Void) {
        bn3.weight.value.withUnsafeBufferPointer { g3 in
            bn3.bias.value.withUnsafeBufferPointer { b3 in
                shortcutBN.weight.value.withUnsafeBufferPointer { gs in
                    shortcutBN.bias.value.withUnsafeBufferPointer { bs in
                        body(g3.baseAddress!, b3.baseAddress!, gs.baseAddress!, bs.baseAddress!)
                    }
                }
            }
        }
    }
}
