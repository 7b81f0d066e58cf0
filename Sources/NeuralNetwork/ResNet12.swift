import TensorCore

/// An error from loading weights into a network.
public enum StateDictError: Error, CustomStringConvertible, Equatable {
    case missingKey(String)
    case shapeMismatch(key: String, expected: [Int], actual: [Int])
    case unexpectedKey(String)
    case unknownBatchNorm(String)
    case invalidGeneratorState([UInt64])
    case invalidForwardPassCounts(expected: Int, actual: [Int])

    public var description: String {
        switch self {
        case .missingKey(let key):
            return "The state dict has no tensor '\(key)'; it must come from a ResNet-12 with the same widths."
        case .shapeMismatch(let key, let expected, let actual):
            return "Tensor '\(key)' has shape \(actual) but the network expects \(expected); check that the checkpoint's widths match the configuration."
        case .unexpectedKey(let key):
            return "The state dict has an unexpected tensor '\(key)' that no ResNet-12 layer uses; check that it is a ResNet-12 backbone checkpoint."
        case .unknownBatchNorm(let key):
            return "'\(key)' names no batch norm of this network; expected a key such as 'layer1.0.bn1.num_batches_tracked'."
        case .invalidGeneratorState(let words):
            return "The dropout generator state \(words) is invalid; expected 4 words that are not all zero."
        case .invalidForwardPassCounts(let expected, let actual):
            return "Expected \(expected) non-negative block forward-pass counts, got \(actual)."
        }
    }
}

/// MetaOptNet's ResNet-12 for 32 x 32 CIFAR images, without average pooling.
///
/// Shapes: images `[N, 3, H, W]`, embeddings `[N, D]` with
/// `D = widths[3] * (H / 16) * (W / 16)` (each block halves H and W, rounding
/// down), flattened in PyTorch's `view(N, -1)` order (channel, row, column);
/// at the default widths a 32 x 32 image gives D = 640 * 2 * 2 = 2560.
///
/// Four `ResNetBlock`s are named `layer1.0` ... `layer4.0`. Dropout with
/// probability `dropRate` follows blocks 1 and 2. DropBlock follows blocks 3
/// and 4, and its keep rate ramps from 1 to `1 - dropRate` over the first
/// `dropBlockRampPasses` training forward passes of each block.
///
/// NOTE: MetaOptNet also counts evaluation-mode forward passes towards the
/// DropBlock ramp; this network counts only training-mode passes (one per
/// normalisation group), because only those apply DropBlock.
///
/// Initialisation: convolution weights normal with standard deviation
/// `sqrt(2 / (O * K * K))` (PyTorch's `kaiming_normal_(mode: "fan_out")`),
/// batch-norm weights 1 and biases 0, all drawn from `SeededRandom(seed:)`.
public final class ResNet12 {
    public let widths: [Int]
    public let dropRate: Float
    public let dropBlockSize: Int
    public let dropBlockRampPasses: Int
    /// The generator of the dropout and DropBlock masks; save `randomState` to resume.
    public var random: SeededRandom

    /// Training mode uses batch statistics and the dropout masks; evaluation mode neither.
    public var isTraining = true {
        didSet { for block in blocks { block.isTraining = isTraining } }
    }

    let blocks: [ResNetBlock]
    private let workspace = BlockWorkspace()
    private var savedImages: Tensor?
    private var blockInputSizes: [(height: Int, width: Int)] = []

    public init(widths: [Int] = [64, 160, 320, 640], dropRate: Float = 0.1, dropBlockSize: Int = 2,
                dropBlockRampPasses: Int = 40_000, seed: UInt64) {
        precondition(widths.count == 4 && widths.allSatisfy { $0 > 0 }, "ResNet12 needs four positive widths, got \(widths)")
        precondition(dropRate >= 0 && dropRate < 1, "ResNet12 dropRate must be in [0, 1), got \(dropRate)")
        precondition(dropBlockSize > 0 && dropBlockRampPasses > 0,
                     "ResNet12 needs a positive DropBlock size and ramp, got \(dropBlockSize) and \(dropBlockRampPasses)")
        self.widths = widths
        self.dropRate = dropRate
        self.dropBlockSize = dropBlockSize
        self.dropBlockRampPasses = dropBlockRampPasses
        var blocks: [ResNetBlock] = []
        var inputChannels = 3
        for (index, width) in widths.enumerated() {
            blocks.append(ResNetBlock(name: "layer\(index + 1).0", inputChannels: inputChannels, channels: width,
                                      dropRate: dropRate, usesDropBlock: index >= 2, dropBlockSize: dropBlockSize,
                                      dropBlockRampPasses: dropBlockRampPasses))
            inputChannels = width
        }
        self.blocks = blocks

        var initRandom = SeededRandom(seed: seed)
        random = initRandom.split()
        for block in blocks {
            for conv in block.convolutions {
                let fanOut = Double(conv.outputChannels * conv.kernelSize * conv.kernelSize)
                let std = (2 / fanOut).squareRoot()
                conv.weight.value.withUnsafeMutableBufferPointer { weights in
                    for index in weights.indices { weights[index] = Float(initRandom.nextNormal() * std) }
                }
            }
        }
    }

    /// Returns D for square `imageSize` x `imageSize` inputs.
    public func embeddingDimension(imageSize: Int = 32) -> Int {
        let side = imageSize / 16
        return widths[3] * side * side
    }

    /// All trainable parameters in `state_dict` order.
    public var parameters: [Parameter] { blocks.flatMap(\.parameters) }

    /// All convolutions, in `state_dict` order; their chunk sizes can be tuned.
    public var convolutions: [Conv2d] { blocks.flatMap(\.convolutions) }

    /// All batch norms, in `state_dict` order.
    public var batchNorms: [BatchNorm2d] { blocks.flatMap(\.batchNorms) }

    // MARK: - Forward and backward

    /// Returns the embeddings `[N, D]` of `images` `[N, 3, H, W]`.
    ///
    /// `normalizationGroups` lists consecutive image counts that add up to N.
    /// Each group gets its own batch-norm statistics, running-statistic
    /// update and dropout pass, as if it went through its own call. nil
    /// means one group. Forward keeps what `backward` needs until the next forward.
    public func forward(_ images: Tensor, normalizationGroups: [Int]? = nil) -> Tensor {
        precondition(images.rank == 4 && images.shape[1] == 3, "ResNet12 expects images [N, 3, H, W], got \(images.shape)")
        let (batch, height, width) = (images.shape[0], images.shape[2], images.shape[3])
        precondition(batch > 0 && height >= 16 && width >= 16, "ResNet12 needs at least one image of at least 16 x 16, got \(images.shape)")
        let groups = normalizationGroups ?? [batch]
        precondition(groups.allSatisfy { $0 > 0 } && groups.reduce(0, +) == batch,
                     "ResNet12 normalization groups \(groups) must be positive and add up to the batch size \(batch)")
        savedImages = images
        blockInputSizes = []

        var (currentHeight, currentWidth) = (height, width)
        images.withUnsafeBufferPointer { imagePointer in
            var input = imagePointer.baseAddress!
            for block in blocks {
                blockInputSizes.append((currentHeight, currentWidth))
                block.forward(input, batch: batch, height: currentHeight, width: currentWidth, groups: groups,
                              random: &random, workspace: workspace)
                input = UnsafePointer(block.output.pointer)
                currentHeight /= 2
                currentWidth /= 2
            }
        }
        let dimension = widths[3] * currentHeight * currentWidth
        var embeddings = Tensor(shape: [batch, dimension])
        embeddings.withUnsafeMutableBufferPointer { target in
            target.baseAddress!.update(from: blocks[3].output.pointer, count: batch * dimension)
        }
        return embeddings
    }

    /// Accumulates every parameter's gradient for `dEmbeddings` `[N, D]` and
    /// returns `dImages` `[N, 3, H, W]`.
    public func backward(_ dEmbeddings: Tensor) -> Tensor {
        guard let images = savedImages else { preconditionFailure("ResNet12.backward called before forward") }
        let batch = images.shape[0]
        let last = blockInputSizes[3]
        let dimension = widths[3] * (last.height / 2) * (last.width / 2)
        precondition(dEmbeddings.shape == [batch, dimension], "ResNet12.backward expects dEmbeddings \([batch, dimension]), got \(dEmbeddings.shape)")

        var dImages = Tensor(shape: images.shape)
        let largestInput = zip(blocks, blockInputSizes).map { $0.inputChannels * $1.height * $1.width }.max()! * batch
        let largestOutput = zip(blocks, blockInputSizes).map { $0.channels * ($1.height / 2) * ($1.width / 2) }.max()! * batch
        let gradients = workspace.blockGradients
        for buffer in gradients { buffer.reserve(max(largestInput, largestOutput)) }
        dEmbeddings.withUnsafeBufferPointer { source in
            gradients[0].pointer.update(from: source.baseAddress!, count: dEmbeddings.count)
        }
        images.withUnsafeBufferPointer { imagePointer in
            dImages.withUnsafeMutableBufferPointer { dImagePointer in
                for index in stride(from: 3, through: 0, by: -1) {
                    let block = blocks[index]
                    let input = index == 0 ? imagePointer.baseAddress! : UnsafePointer(blocks[index - 1].output.pointer)
                    let dOutput = gradients[(3 - index) % 2].pointer
                    let dInput = index == 0 ? dImagePointer.baseAddress! : gradients[(4 - index) % 2].pointer
                    block.backward(input: input, dOutput: dOutput, dInput: dInput, workspace: workspace)
                }
            }
        }
        return dImages
    }

    // MARK: - State

    /// Returns every tensor of PyTorch's `state_dict` in its order except
    /// `num_batches_tracked` (see `batchNormCounts`). These are the parameters
    /// and the batch-norm `running_mean` and `running_var` buffers.
    public func stateDict() -> [(name: String, tensor: Tensor)] {
        var entries: [(name: String, tensor: Tensor)] = []
        for block in blocks {
            let convs = block.convolutions
            let norms = block.batchNorms
            for (conv, norm) in zip(convs, norms) {
                entries.append((conv.weight.name, conv.weight.value))
                entries.append((norm.weight.name, norm.weight.value))
                entries.append((norm.bias.name, norm.bias.value))
                entries.append((norm.name + ".running_mean", norm.runningMean))
                entries.append((norm.name + ".running_var", norm.runningVariance))
            }
        }
        return entries
    }

    /// Copies every tensor of `stateDict()` from `entries`. Extra
    /// `num_batches_tracked` entries are ignored (set them with
    /// `setBatchNormCounts`); any other unknown key, a missing key or a wrong
    /// shape throws before anything is changed.
    public func loadStateDict(_ entries: [(name: String, tensor: Tensor)]) throws {
        var byName: [String: Tensor] = [:]
        for entry in entries { byName[entry.name] = entry.tensor }
        let current = stateDict()
        let known = Set(current.map(\.name))
        for entry in entries where !known.contains(entry.name) && !entry.name.hasSuffix(".num_batches_tracked") {
            throw StateDictError.unexpectedKey(entry.name)
        }
        for (name, tensor) in current {
            guard let loaded = byName[name] else { throw StateDictError.missingKey(name) }
            guard loaded.shape == tensor.shape else {
                throw StateDictError.shapeMismatch(key: name, expected: tensor.shape, actual: loaded.shape)
            }
        }
        for block in blocks {
            for (conv, norm) in zip(block.convolutions, block.batchNorms) {
                conv.weight.value = byName[conv.weight.name]!
                norm.weight.value = byName[norm.weight.name]!
                norm.bias.value = byName[norm.bias.name]!
                norm.runningMean = byName[norm.name + ".running_mean"]!
                norm.runningVariance = byName[norm.name + ".running_var"]!
            }
        }
    }

    /// Each batch norm's `num_batches_tracked` under its `state_dict` key
    /// (for example `layer1.0.bn1.num_batches_tracked`), in order.
    public var batchNormCounts: [(name: String, count: Int64)] {
        batchNorms.map { ($0.name + ".num_batches_tracked", $0.numBatchesTracked) }
    }

    /// Sets `num_batches_tracked` of the batch norms named by the keys of `counts`.
    public func setBatchNormCounts(_ counts: [(name: String, count: Int64)]) throws {
        let byName = Dictionary(uniqueKeysWithValues: batchNorms.map { ($0.name + ".num_batches_tracked", $0) })
        for (name, _) in counts where byName[name] == nil { throw StateDictError.unknownBatchNorm(name) }
        for (name, count) in counts { byName[name]!.numBatchesTracked = count }
    }

    /// The dropout and DropBlock generator's four state words.
    public var randomState: [UInt64] { random.stateWords }

    public func setRandomState(_ words: [UInt64]) throws {
        guard words.count == 4, words.contains(where: { $0 != 0 }) else { throw StateDictError.invalidGeneratorState(words) }
        random = SeededRandom(state: words)
    }

    /// The training forward passes each block has run, which drive the DropBlock ramp.
    public var blockForwardPasses: [Int] { blocks.map(\.forwardPasses) }

    public func setBlockForwardPasses(_ counts: [Int]) throws {
        guard counts.count == blocks.count, counts.allSatisfy({ $0 >= 0 }) else {
            throw StateDictError.invalidForwardPassCounts(expected: blocks.count, actual: counts)
        }
        for (block, count) in zip(blocks, counts) { block.forwardPasses = count }
    }
}
