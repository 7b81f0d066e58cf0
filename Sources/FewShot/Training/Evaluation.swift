import FewShotData
import Foundation
import TensorCore

/// Accuracy of a model over a set of episodes, with the 95% interval.
public struct EvaluationResult: Sendable {
    public var way: Int
    public var shot: Int
    public var query: Int
    /// Per-episode accuracy as a fraction in [0, 1], in episode order.
    public var accuracies: [Double]
    public var seconds: Double

    /// Mean accuracy in percent.
    public var meanPercent: Double { meanAndInterval(accuracies).mean * 100 }
    /// Half-width of the 95% interval in percent: `1.96 * std / sqrt(episodes)`.
    public var intervalPercent: Double { meanAndInterval(accuracies).interval * 100 }

    /// Returns the result as a JSON object, with percentages rounded to 4
    /// decimals and seconds to 3.
    public func jsonObject(extra: [String: Any] = [:]) -> [String: Any] {
        var object: [String: Any] = [
            "way": way, "shot": shot, "query": query, "episodes": accuracies.count,
            "accuracy_percent": roundedDecimal(meanPercent, places: 4),
            "interval95_percent": roundedDecimal(intervalPercent, places: 4),
            "seconds": roundedDecimal(seconds, places: 3),
        ]
        for (key, value) in extra { object[key] = value }
        return object
    }
}

/// Returns `value` rounded to `places` decimals as a Decimal, which JSON
/// serialisation writes without binary noise such as 49.519999999999996.
func roundedDecimal(_ value: Double, places: Int) -> Any {
    guard value.isFinite else { return NSNull() }
    return Decimal(string: String(format: "%.\(places)f", value)) ?? Decimal(value)
}

/// Derives an independent seed from a base seed and an index (SplitMix64 of both).
func mixSeed(_ seed: UInt64, _ index: UInt64) -> UInt64 {
    var generator = SeededRandom(seed: seed ^ (index &* 0x9E37_79B9_7F4A_7C15))
    return generator.next()
}

/// Evaluates `model` in evaluation mode (batch-norm running statistics, no
/// dropout) on `episodes` episodes drawn from `source` with `seed`.
///
/// Episode k depends only on (seed, k), so two evaluations with the same seed
/// see the same episodes. The l1-SVM head's LP start points also come from (seed, k).
/// `progress` receives the number of finished episodes after each one.
public func evaluate(
    _ model: FewShotModel, source: ImageSource, way: Int, shot: Int, query: Int, episodes: Int,
    seed: UInt64, progress: ((Int) -> Void)? = nil
) throws -> EvaluationResult {
    let start = Date()
    let loader = try EpisodeLoader(
        source: source, shape: EpisodeShape(way: way, shot: shot, queryCount: query), episodesPerBatch: 1,
        augmentation: nil, seed: seed, prefetch: true, workerCount: 1)
    let wasTraining = model.backbone.isTraining
    model.backbone.isTraining = false
    defer { model.backbone.isTraining = wasTraining }
    model.synchronizeScale()

    var accuracies: [Double] = []
    accuracies.reserveCapacity(episodes)
    for index in 0..<episodes {
        let batch = loader.next()
        if let svm = model.head as? L1SVMHead { svm.startSeed = mixSeed(seed, UInt64(index)) }
        let embeddings = model.embed(
            support: batch.support, query: batch.query, supportLabels: batch.supportLabels, episodeCount: 1, way: way)
        let (logits, _) = try model.head.forward(embeddings)
        accuracies.append(crossEntropy(logits: logits, labels: batch.queryLabels, way: way).accuracy)
        progress?(index + 1)
    }
    return EvaluationResult(way: way, shot: shot, query: query, accuracies: accuracies, seconds: Date().timeIntervalSince(start))
}
