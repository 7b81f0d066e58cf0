import TensorCore

/// Batch normalisation over the N, H and W dimensions of `[N, C, H, W]`, as
/// PyTorch's `BatchNorm2d` with `momentum = 0.1` and `eps = 1e-5`.
///
/// Training mode normalises with the biased batch variance and updates the
/// running statistics with the unbiased one:
/// `running = (1 - momentum) * running + momentum * batchStatistic`.
/// Evaluation mode normalises with the running statistics.
///
/// `normalizationGroups` splits the batch into consecutive groups of images
/// that are normalised separately, as if each group went through its own
/// PyTorch call. The running statistics and `numBatchesTracked` are updated
/// once per group, in order.
///
/// The pointer interface works in place: `normalize` turns the input into
/// `xhat = (x - mean) / sqrt(variance + eps)` and keeps only the per-group
/// inverse standard deviations; the caller keeps `xhat`, applies
/// `weight * xhat + bias` itself (usually fused with the next step) and
/// hands `xhat` back to `backward`.
public final class BatchNorm2d {
    /// The scale, `[C]`, initialised to 1.
    public let weight: Parameter
    /// The shift, `[C]`, initialised to 0.
    public let bias: Parameter
    /// The running mean, `[C]`: a buffer, not a parameter.
    public var runningMean: Tensor
    /// The running (unbiased) variance, `[C]`: a buffer, not a parameter.
    public var runningVariance: Tensor
    /// The number of batch-statistic updates so far (PyTorch's `num_batches_tracked`).
    public var numBatchesTracked: Int64 = 0
    public let channels: Int
    public let momentum: Float = 0.1
    public let epsilon: Float = 1e-5
    public var isTraining = true
    /// The `state_dict` prefix, for example `layer1.0.bn1`.
    public let name: String

    /// Inverse standard deviation per group and channel, `[groups, C]`, from the last `normalize`.
    private var inverseStd: [Float] = []
    /// The image counts of the groups of the last `normalize`.
    private var groups: [Int] = []
    private var savedNormalized: Tensor?

    public init(name: String, channels: Int) {
        precondition(channels > 0, "BatchNorm2d needs a positive channel count, got \(channels)")
        self.name = name
        self.channels = channels
        weight = Parameter(name: name + ".weight", value: Tensor(shape: [channels], repeating: 1))
        bias = Parameter(name: name + ".bias", value: Tensor(shape: [channels]))
        runningMean = Tensor(shape: [channels])
        runningVariance = Tensor(shape: [channels], repeating: 1)
    }

    // MARK: - Tensor interface

    /// Returns `weight * xhat + bias` for `input` `[N, C, H, W]` and keeps `xhat` for `backward`.
    public func forward(_ input: Tensor, normalizationGroups: [Int]? = nil) -> Tensor {
        precondition(input.rank == 4 && input.shape[1] == channels, "BatchNorm2d expects [N, \(channels), H, W], got \(input.shape)")
        let (batch, spatial) = (input.shape[0], input.shape[2] * input.shape[3])
        var normalized = input
        normalized.withUnsafeMutableBufferPointer { data in
            normalize(data.baseAddress!, batch: batch, spatial: spatial, groups: normalizationGroups ?? [batch])
        }
        var output = normalized
        output.withUnsafeMutableBufferPointer { data in
            applyAffine(data.baseAddress!, batch: batch, spatial: spatial)
        }
        savedNormalized = normalized
        return output
    }

    /// Accumulates the weight and bias gradients and returns `dInput` for `dOutput` `[N, C, H, W]`.
    public func backward(_ dOutput: Tensor) -> Tensor {
        guard let normalized = savedNormalized else { preconditionFailure("BatchNorm2d.backward called before forward") }
        precondition(sameShape: dOutput, normalized, "BatchNorm2d.backward")
        let (batch, spatial) = (normalized.shape[0], normalized.shape[2] * normalized.shape[3])
        var dInput = Tensor(shape: normalized.shape)
        normalized.withUnsafeBufferPointer { xhat in
            dOutput.withUnsafeBufferPointer { dOutput in
                dInput.withUnsafeMutableBufferPointer { dInput in
                    backward(normalized: xhat.baseAddress!, dOutput: dOutput.baseAddress!, dInput: dInput.baseAddress!,
                             batch: batch, spatial: spatial)
                }
            }
        }
        return dInput
    }

    // MARK: - Pointer interface

    /// Replaces `data` `[N, C, S]` by `xhat` in place (S = H * W) and, in
    /// training mode, updates the running statistics once per group.
    public func normalize(_ data: UnsafeMutablePointer<Float>, batch: Int, spatial: Int, groups: [Int]) {
        precondition(groups.allSatisfy { $0 > 0 } && groups.reduce(0, +) == batch,
                     "BatchNorm2d normalization groups \(groups) must be positive and add up to the batch size \(batch)")
        self.groups = isTraining ? groups : [batch]
        inverseStd = [Float](repeating: 0, count: self.groups.count * channels)
        let channels = self.channels

        guard isTraining else {
            let epsilon = self.epsilon
            runningMean.withUnsafeBufferPointer { mean in
                runningVariance.withUnsafeBufferPointer { variance in
                    inverseStd.withUnsafeMutableBufferPointer { inverseStd in
                        for channel in 0..<channels {
                            inverseStd[channel] = 1 / (variance[channel] + epsilon).squareRoot()
                        }
                        let (mean, inverseStd) = (mean.baseAddress!, UnsafePointer(inverseStd.baseAddress!))
                        Parallel.forEach(batch * channels) { plane in
                            let channel = plane % channels
                            let row = data + plane * spatial
                            let (shift, scale) = (mean[channel], inverseStd[channel])
                            for index in 0..<spatial { row[index] = (row[index] - shift) * scale }
                        }
                    }
                }
            }
            return
        }

        var firstImage = 0
        for (groupIndex, count) in groups.enumerated() {
            let elementCount = count * spatial
            precondition(elementCount > 1, "BatchNorm2d needs more than one value per channel in training mode, got group \(groups)")
            var means = [Double](repeating: 0, count: channels)
            var variances = [Double](repeating: 0, count: channels)
            let groupStart = data + firstImage * channels * spatial
            means.withUnsafeMutableBufferPointer { means in
                variances.withUnsafeMutableBufferPointer { variances in
                    inverseStd.withUnsafeMutableBufferPointer { inverseStd in
                        let (means, variances, inverseStd) = (means.baseAddress!, variances.baseAddress!, inverseStd.baseAddress! + groupIndex * channels)
                        let epsilon = Double(self.epsilon)
                        Parallel.forEach(channels) { channel in
                            // Two passes with Float sums per row and Double across rows:
                            // a single Float sum over 10^5+ values would lose digits.
                            var sum = 0.0
                            for image in 0..<count {
                                let row = groupStart + (image * channels + channel) * spatial
                                var rowSum: Float = 0
                                for index in 0..<spatial { rowSum += row[index] }
                                sum += Double(rowSum)
                            }
                            let mean = sum / Double(elementCount)
                            let meanFloat = Float(mean)
                            var squares = 0.0
                            for image in 0..<count {
                                let row = groupStart + (image * channels + channel) * spatial
                                var rowSquares: Float = 0
                                for index in 0..<spatial {
                                    let centered = row[index] - meanFloat
                                    rowSquares += centered * centered
                                }
                                squares += Double(rowSquares)
                            }
                            let variance = squares / Double(elementCount)
                            let scale = Float(1 / (variance + epsilon).squareRoot())
                            for image in 0..<count {
                                let row = groupStart + (image * channels + channel) * spatial
                                for index in 0..<spatial { row[index] = (row[index] - meanFloat) * scale }
                            }
                            means[channel] = mean
                            variances[channel] = variance
                            inverseStd[channel] = scale
                        }
                    }
                }
            }

            let correction = Double(elementCount) / Double(elementCount - 1)
            let momentum = Double(self.momentum)
            runningMean.withUnsafeMutableBufferPointer { runningMean in
                runningVariance.withUnsafeMutableBufferPointer { runningVariance in
                    for channel in 0..<channels {
                        runningMean[channel] = Float((1 - momentum) * Double(runningMean[channel]) + momentum * means[channel])
                        runningVariance[channel] = Float((1 - momentum) * Double(runningVariance[channel])
                            + momentum * variances[channel] * correction)
                    }
                }
            }
            numBatchesTracked += 1
            firstImage += count
        }
    }

    /// Applies `weight * xhat + bias` to `data` `[N, C, S]` in place.
    public func applyAffine(_ data: UnsafeMutablePointer<Float>, batch: Int, spatial: Int) {
        let channels = self.channels
        weight.value.withUnsafeBufferPointer { gamma in
            bias.value.withUnsafeBufferPointer { beta in
                let (gamma, beta) = (gamma.baseAddress!, beta.baseAddress!)
                Parallel.forEach(batch * channels) { plane in
                    let channel = plane % channels
                    let row = data + plane * spatial
                    let (scale, shift) = (gamma[channel], beta[channel])
                    for index in 0..<spatial { row[index] = row[index] * scale + shift }
                }
            }
        }
    }

    /// Accumulates `dWeight = sum(dOutput * xhat)` and `dBias = sum(dOutput)`
    /// and writes `dInput`; `dInput` may be the same memory as `dOutput`.
    ///
    /// Training mode, per group of M = count * S values of a channel:
    /// `dInput = weight * inverseStd * (dOutput - mean(dOutput) - xhat * mean(dOutput * xhat))`.
    /// Evaluation mode: `dInput = weight * inverseStd * dOutput`, the running
    /// statistics being constants.
    public func backward(normalized xhat: UnsafePointer<Float>, dOutput: UnsafePointer<Float>, dInput: UnsafeMutablePointer<Float>,
                         batch: Int, spatial: Int) {
        precondition(groups.reduce(0, +) == batch, "BatchNorm2d.backward: batch \(batch) differs from the forward groups \(groups)")
        let channels = self.channels
        let training = isTraining
        weight.value.withUnsafeBufferPointer { gamma in
            weight.gradient.withUnsafeMutableBufferPointer { dGamma in
                bias.gradient.withUnsafeMutableBufferPointer { dBeta in
                    inverseStd.withUnsafeBufferPointer { inverseStd in
                        let (gamma, dGamma, dBeta, inverseStd) = (gamma.baseAddress!, dGamma.baseAddress!, dBeta.baseAddress!, inverseStd.baseAddress!)
                        Parallel.forEach(channels) { channel in
                            var firstImage = 0
                            for (groupIndex, count) in groups.enumerated() {
                                var sumDOutput = 0.0
                                var sumDOutputXhat = 0.0
                                for image in firstImage..<(firstImage + count) {
                                    let offset = (image * channels + channel) * spatial
                                    var rowSum: Float = 0
                                    var rowDot: Float = 0
                                    for index in 0..<spatial {
                                        rowSum += dOutput[offset + index]
                                        rowDot += dOutput[offset + index] * xhat[offset + index]
                                    }
                                    sumDOutput += Double(rowSum)
                                    sumDOutputXhat += Double(rowDot)
                                }
                                dGamma[channel] += Float(sumDOutputXhat)
                                dBeta[channel] += Float(sumDOutput)

                                let scale = gamma[channel] * inverseStd[groupIndex * channels + channel]
                                let elementCount = Double(count * spatial)
                                let meanDOutput = training ? Float(sumDOutput / elementCount) : 0
                                let meanDOutputXhat = training ? Float(sumDOutputXhat / elementCount) : 0
                                for image in firstImage..<(firstImage + count) {
                                    let offset = (image * channels + channel) * spatial
                                    for index in 0..<spatial {
                                        dInput[offset + index] = scale * (dOutput[offset + index] - meanDOutput
                                            - xhat[offset + index] * meanDOutputXhat)
                                    }
                                }
                                firstImage += count
                            }
                        }
                    }
                }
            }
        }
    }
}
