import Foundation
import TensorCore

/// Embeddings of a batch of E episodes in Float64, the form the heads compute in.
///
/// Shapes (row-major): `support` [E, S, D], `query` [E, Q, D], `supportLabels`
/// [E, S] with values in `0..<way`. Every episode has the same S, Q and D.
public struct EpisodeEmbeddings: Sendable {
    public var episodeCount: Int
    public var supportCount: Int
    public var queryCount: Int
    public var dimension: Int
    public var way: Int
    public var support: [Double]
    public var query: [Double]
    public var supportLabels: [Int]

    public init(
        episodeCount: Int, supportCount: Int, queryCount: Int, dimension: Int, way: Int,
        support: [Double], query: [Double], supportLabels: [Int]
    ) {
        precondition(support.count == episodeCount * supportCount * dimension,
                     "support has \(support.count) values, expected [\(episodeCount), \(supportCount), \(dimension)]")
        precondition(query.count == episodeCount * queryCount * dimension,
                     "query has \(query.count) values, expected [\(episodeCount), \(queryCount), \(dimension)]")
        precondition(supportLabels.count == episodeCount * supportCount,
                     "supportLabels has \(supportLabels.count) values, expected [\(episodeCount), \(supportCount)]")
        precondition(supportLabels.allSatisfy { (0..<way).contains($0) }, "support labels must lie in 0..<\(way)")
        self.episodeCount = episodeCount
        self.supportCount = supportCount
        self.queryCount = queryCount
        self.dimension = dimension
        self.way = way
        self.support = support
        self.query = query
        self.supportLabels = supportLabels
    }

    /// Builds the Float64 form from Float32 embeddings `support` [E*S, D] and `query` [E*Q, D].
    public init(support: Tensor, query: Tensor, supportLabels: [Int], episodeCount: Int, way: Int) {
        precondition(support.rank == 2 && query.rank == 2 && support.shape[1] == query.shape[1],
                     "support \(support.shape) and query \(query.shape) must be [N, D] with equal D")
        precondition(support.shape[0] % episodeCount == 0 && query.shape[0] % episodeCount == 0,
                     "support \(support.shape) and query \(query.shape) do not split into \(episodeCount) episodes")
        self.init(
            episodeCount: episodeCount, supportCount: support.shape[0] / episodeCount,
            queryCount: query.shape[0] / episodeCount, dimension: support.shape[1], way: way,
            support: support.scalars.map(Double.init), query: query.scalars.map(Double.init),
            supportLabels: supportLabels)
    }
}

/// Gradients of the loss with respect to a batch's embeddings, shaped like them.
public struct EmbeddingGradients: Sendable {
    public var dSupport: [Double]
    public var dQuery: [Double]
}

/// Per-batch numbers a head reports besides its logits.
public struct HeadDiagnostics: Sendable, Equatable {
    /// Largest relative LP residual `||Ax - b|| / ||b||` in the batch (l1-SVM only).
    public var maximumResidual: Double? = nil
    /// Mean relative LP residual (l1-SVM only).
    public var meanResidual: Double? = nil
    /// Whether any LP produced a non-finite value (l1-SVM only).
    public var nonFinite = false

    public init(maximumResidual: Double? = nil, meanResidual: Double? = nil, nonFinite: Bool = false) {
        self.maximumResidual = maximumResidual
        self.meanResidual = meanResidual
        self.nonFinite = nonFinite
    }
}

/// A few-shot classifier on top of embeddings: from a labelled support set and
/// a query set to one logit per query and class.
///
/// Every head multiplies its unscaled logits by a learnable scalar `scale`
/// (MetaOptNet's heads carry the same parameter). `forward` keeps what
/// `backward` needs; `backward` must follow the `forward` of the same batch.
public protocol FewShotHead: AnyObject {
    /// The config name of the head (`l1-svm`, `prototypical`, `ridge`).
    var kind: String { get }
    /// The logit scale.
    var scale: Double { get set }
    /// Gradient of the loss with respect to `scale`, set by `backward`.
    var dScale: Double { get }

    /// Returns logits [E, Q, way] in row-major order.
    func forward(_ batch: EpisodeEmbeddings) throws -> (logits: [Double], diagnostics: HeadDiagnostics)

    /// Returns the embedding gradients for `dLogits` [E, Q, way], and sets `dScale`.
    func backward(_ dLogits: [Double]) -> EmbeddingGradients
}

/// The scaling step all heads share: `logits = scale * unscaled`.
struct LogitScaling {
    var scale: Double
    private(set) var dScale = 0.0
    private var unscaled: [Double] = []

    init(scale: Double) { self.scale = scale }

    mutating func forward(_ unscaled: [Double]) -> [Double] {
        self.unscaled = unscaled
        return unscaled.map { $0 * scale }
    }

    /// Returns the gradient with respect to the unscaled logits.
    mutating func backward(_ dLogits: [Double]) -> [Double] {
        precondition(dLogits.count == unscaled.count, "dLogits has \(dLogits.count) values, the forward produced \(unscaled.count)")
        var sum = 0.0
        for index in dLogits.indices { sum += dLogits[index] * unscaled[index] }
        dScale = sum
        return dLogits.map { $0 * scale }
    }
}

/// An error that stops a head from producing logits.
public enum HeadError: Error, CustomStringConvertible, Equatable {
    case missingClass(episode: Int, label: Int)
    case unequalShots(episode: Int)
    case factorizationFailed(episode: Int)
    case nonFiniteEmbeddings(episode: Int)
    case solverFailed(reason: String)

    public var description: String {
        switch self {
        case let .missingClass(episode, label):
            return "episode \(episode) has no support example of class \(label); every class needs at least one shot"
        case let .unequalShots(episode):
            return "episode \(episode) has classes with different numbers of support examples; the l1-SVM head needs equal shots per class"
        case let .factorizationFailed(episode):
            return "ridge head: the regularised kernel matrix of episode \(episode) is not positive definite; lambda must be positive"
        case let .nonFiniteEmbeddings(episode):
            return "episode \(episode) has non-finite embeddings (NaN or infinity); the backbone has diverged, so lower the learning rate"
        case let .solverFailed(reason):
            return "l1-SVM head: the LP layer failed: \(reason)"
        }
    }
}
