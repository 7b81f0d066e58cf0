import TensorCore

/// Prototypical networks (Snell et al., 2017): the logit of class c for query q
/// is `-||q - p_c||^2 / D`, where `p_c` is the mean support embedding of class
/// c, times the learnable scale. Dividing by D follows MetaOptNet's ProtoNet head.
///
/// Forward keeps the prototypes [E, way, D]; backward routes the prototype
/// gradient to each support example with weight 1 / (shots of its class).
public final class PrototypicalHead: FewShotHead {
    public let kind = "prototypical"
    private var scaling: LogitScaling
    private var batch: EpisodeEmbeddings?
    private var prototypes: [Double] = []
    private var classCounts: [Int] = []

    public var scale: Double {
        get { scaling.scale }
        set { scaling.scale = newValue }
    }
    public var dScale: Double { scaling.dScale }

    public init(scale: Double = 1) {
        scaling = LogitScaling(scale: scale)
    }

    public func forward(_ batch: EpisodeEmbeddings) throws -> (logits: [Double], diagnostics: HeadDiagnostics) {
        let (e, s, q, d, way) = (batch.episodeCount, batch.supportCount, batch.queryCount, batch.dimension, batch.way)

        var prototypes = [Double](repeating: 0, count: e * way * d)
        var classCounts = [Int](repeating: 0, count: e * way)
        for episode in 0..<e {
            for i in 0..<s {
                let label = batch.supportLabels[episode * s + i]
                classCounts[episode * way + label] += 1
                let source = (episode * s + i) * d
                let target = (episode * way + label) * d
                for k in 0..<d { prototypes[target + k] += batch.support[source + k] }
            }
            for c in 0..<way {
                let count = classCounts[episode * way + c]
                guard count > 0 else { throw HeadError.missingClass(episode: episode, label: c) }
                let base = (episode * way + c) * d
                for k in 0..<d { prototypes[base + k] /= Double(count) }
            }
        }

        var unscaled = [Double](repeating: 0, count: e * q * way)
        for episode in 0..<e {
            for j in 0..<q {
                let queryBase = (episode * q + j) * d
                for c in 0..<way {
                    let prototypeBase = (episode * way + c) * d
                    var distance = 0.0
                    for k in 0..<d {
                        let difference = batch.query[queryBase + k] - prototypes[prototypeBase + k]
                        distance += difference * difference
                    }
                    unscaled[(episode * q + j) * way + c] = -distance / Double(d)
                }
            }
        }

        self.batch = batch
        self.prototypes = prototypes
        self.classCounts = classCounts
        return (scaling.forward(unscaled), HeadDiagnostics())
    }

    public func backward(_ dLogits: [Double]) -> EmbeddingGradients {
        guard let batch else { preconditionFailure("PrototypicalHead.backward called before forward") }
        let (e, s, q, d, way) = (batch.episodeCount, batch.supportCount, batch.queryCount, batch.dimension, batch.way)
        let dUnscaled = scaling.backward(dLogits)

        // logit = -sum_k (q_k - p_k)^2 / D, so dq = -2 (q - p) / D * dlogit and dp = -dq.
        var dQuery = [Double](repeating: 0, count: e * q * d)
        var dPrototypes = [Double](repeating: 0, count: e * way * d)
        for episode in 0..<e {
            for j in 0..<q {
                let queryBase = (episode * q + j) * d
                for c in 0..<way {
                    let factor = -2 * dUnscaled[(episode * q + j) * way + c] / Double(d)
                    let prototypeBase = (episode * way + c) * d
                    for k in 0..<d {
                        let gradient = factor * (batch.query[queryBase + k] - prototypes[prototypeBase + k])
                        dQuery[queryBase + k] += gradient
                        dPrototypes[prototypeBase + k] -= gradient
                    }
                }
            }
        }

        var dSupport = [Double](repeating: 0, count: e * s * d)
        for episode in 0..<e {
            for i in 0..<s {
                let label = batch.supportLabels[episode * s + i]
                let weight = 1 / Double(classCounts[episode * way + label])
                let prototypeBase = (episode * way + label) * d
                let supportBase = (episode * s + i) * d
                for k in 0..<d { dSupport[supportBase + k] = dPrototypes[prototypeBase + k] * weight }
            }
        }
        return EmbeddingGradients(dSupport: dSupport, dQuery: dQuery)
    }
}
