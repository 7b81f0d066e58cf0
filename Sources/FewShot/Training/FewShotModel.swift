import Foundation
import NeuralNetwork
import TensorCore

/// A ResNet-12 backbone with a few-shot head, and the conversion of both to
/// and from checkpoints.
///
/// The logit scale is the trainable parameter `head.scale` of shape [1]; the
/// optimizer updates it with the backbone's parameters (weight decay included,
/// as MetaOptNet's optimizer does) unless `head.learnScale` is false.
public final class FewShotModel {
    public let config: TrainingConfig
    public let backbone: ResNet12
    public let head: FewShotHead
    public let scaleParameter: Parameter

    /// The name of the logit scale in checkpoints.
    public static let scaleName = Checkpoint.headPrefix + "scale"
    /// The metadata key of the DropBlock ramp counters.
    static let forwardPassesKey = "block_forward_passes"

    /// Creates a freshly initialised model; weights are drawn from `config.seed`.
    public init(config: TrainingConfig) {
        self.config = config
        backbone = ResNet12(
            widths: config.backbone.widths, dropRate: Float(config.backbone.dropRate),
            dropBlockSize: config.backbone.dropBlockSize,
            dropBlockRampPasses: max(1, config.backbone.dropBlockRampSteps), seed: UInt64(config.seed))
        head = makeHead(config.head, seed: UInt64(config.seed))
        scaleParameter = Parameter(name: Self.scaleName, value: Tensor(shape: [1], scalars: [Float(config.head.initialScale)]))
    }

    /// The parameters the optimizer updates, in checkpoint order.
    public var trainableParameters: [Parameter] {
        backbone.parameters + (config.head.learnScale ? [scaleParameter] : [])
    }

    /// Copies the Float32 scale parameter into the head, which computes in Float64.
    public func synchronizeScale() {
        head.scale = Double(scaleParameter.value.scalars[0])
    }

    /// Returns the optimizer-state name of a parameter's momentum buffer.
    public static func momentumName(_ parameterName: String) -> String {
        Checkpoint.optimizerPrefix + "momentum_buffer." + parameterName
    }

    /// The names and shapes a checkpoint of this model contains.
    public var checkpointLayout: CheckpointLayout {
        var shapes: [String: [Int]] = [:]
        for (name, tensor) in backbone.stateDict() { shapes[name] = tensor.shape }
        shapes[Self.scaleName] = [1]
        for parameter in trainableParameters { shapes[Self.momentumName(parameter.name)] = parameter.value.shape }
        return CheckpointLayout(floatShapes: shapes, counterNames: Set(backbone.batchNormCounts.map(\.name)))
    }

    /// Builds a checkpoint of the model, the optimizer and the run position.
    public func checkpoint(optimizer: SGD, epoch: Int, step: Int, metrics: [String: Double], extra: [String: String]) -> Checkpoint {
        var tensors: [String: Tensor] = [:]
        for (name, tensor) in backbone.stateDict() { tensors[name] = tensor }
        tensors[Self.scaleName] = scaleParameter.value
        for parameter in trainableParameters {
            tensors[Self.momentumName(parameter.name)] =
                optimizer.momentumBuffer(named: parameter.name) ?? Tensor(shape: parameter.value.shape)
        }
        var counters: [String: Int64] = [:]
        for (name, count) in backbone.batchNormCounts { counters[name] = count }
        var allExtra = extra
        allExtra[Self.forwardPassesKey] = backbone.blockForwardPasses.map(String.init).joined(separator: ",")
        return Checkpoint(
            tensors: tensors, counters: counters, configJSON: config.jsonText(), epoch: epoch, step: step,
            randomState: backbone.randomState, metrics: metrics, extra: allExtra)
    }

    /// Reads a checkpoint, verifies it against this model's layout and its
    /// configuration, and loads weights, statistics and random state.
    /// Loads the momentum buffers too when `optimizer` is given.
    @discardableResult
    public func load(from url: URL, optimizer: SGD? = nil) throws -> Checkpoint {
        let checkpoint = try Checkpoint.read(from: url, expected: checkpointLayout)
        try verifyConfig(of: checkpoint, path: url.path)

        let stateNames = backbone.stateDict().map(\.name)
        try backbone.loadStateDict(stateNames.map { ($0, checkpoint.tensors[$0]!) })
        try backbone.setBatchNormCounts(checkpoint.counters.map { ($0.key, $0.value) })
        try backbone.setRandomState(checkpoint.randomState)
        if let text = checkpoint.extra[Self.forwardPassesKey] {
            let counts = text.split(separator: ",").compactMap { Int($0) }
            do {
                try backbone.setBlockForwardPasses(counts)
            } catch {
                throw CheckpointError.invalidMetadata(path: url.path, key: "extra." + Self.forwardPassesKey, reason: "\(error)")
            }
        }
        scaleParameter.value = checkpoint.tensors[Self.scaleName]!
        synchronizeScale()
        if let optimizer {
            for parameter in trainableParameters {
                try optimizer.setMomentumBuffer(checkpoint.tensors[Self.momentumName(parameter.name)]!, named: parameter.name)
            }
        }
        return checkpoint
    }

    /// Checks that the checkpoint's stored configuration agrees with this
    /// model's on the values that define the model.
    func verifyConfig(of checkpoint: Checkpoint, path: String) throws {
        let stored: TrainingConfig
        do {
            stored = try TrainingConfig.parse(Data(checkpoint.configJSON.utf8), path: path + " (config metadata)")
        } catch {
            throw CheckpointError.invalidMetadata(path: path, key: "config", reason: "\(error)")
        }
        for (mine, theirs) in zip(config.modelDefiningValues(), stored.modelDefiningValues()) where mine.value != theirs.value {
            throw CheckpointError.configMismatch(path: path, key: mine.key, checkpointValue: theirs.value, configValue: mine.value)
        }
    }

    /// Reads the configuration stored in a checkpoint, so a model can be built to load it.
    public static func storedConfig(at url: URL) throws -> TrainingConfig {
        let checkpoint = try Checkpoint.read(from: url)
        do {
            return try TrainingConfig.parse(Data(checkpoint.configJSON.utf8), path: url.path + " (config metadata)")
        } catch {
            throw CheckpointError.invalidMetadata(path: url.path, key: "config", reason: "\(error)")
        }
    }

    // MARK: Embeddings

    /// Runs the backbone over support and query images and returns the head's
    /// Float64 input. In training mode the support and query images form two
    /// batch-norm groups, as if passed in two calls (MetaOptNet embeds them
    /// separately). Keeps what `backwardEmbeddings` needs.
    func embed(support: Tensor, query: Tensor, supportLabels: [Int], episodeCount: Int, way: Int) -> EpisodeEmbeddings {
        let images = concatenate(support, query)
        let embeddings = backbone.forward(images, normalizationGroups: [support.shape[0], query.shape[0]])
        let dimension = embeddings.shape[1]
        let supportRows = support.shape[0] * dimension
        return EpisodeEmbeddings(
            episodeCount: episodeCount, supportCount: support.shape[0] / episodeCount,
            queryCount: query.shape[0] / episodeCount, dimension: dimension, way: way,
            support: embeddings.scalars[0..<supportRows].map(Double.init),
            query: embeddings.scalars[supportRows...].map(Double.init),
            supportLabels: supportLabels)
    }

    /// Backward of `embed`: accumulates the backbone's parameter gradients.
    func backwardEmbeddings(_ gradients: EmbeddingGradients, dimension: Int) {
        let rows = (gradients.dSupport.count + gradients.dQuery.count) / dimension
        let scalars = (gradients.dSupport + gradients.dQuery).map(Float.init)
        _ = backbone.backward(Tensor(shape: [rows, dimension], scalars: scalars))
    }
}

/// Stacks two image batches [N1, C, H, W] and [N2, C, H, W] into [N1 + N2, C, H, W].
func concatenate(_ first: Tensor, _ second: Tensor) -> Tensor {
    precondition(Array(first.shape.dropFirst()) == Array(second.shape.dropFirst()),
                 "cannot stack image batches \(first.shape) and \(second.shape)")
    return Tensor(shape: [first.shape[0] + second.shape[0]] + Array(first.shape.dropFirst()),
                  scalars: first.scalars + second.scalars)
}
