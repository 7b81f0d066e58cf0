import Foundation

/// Cross-entropy of query logits with optional label smoothing, averaged over
/// every query of every episode in the batch.
///
/// With smoothing epsilon the target of a query with label y is
/// `(1 - epsilon) * onehot(y) + epsilon / way`. The loss is
/// `-sum_c target_c * log softmax(z)_c`, its gradient `softmax(z) - target`,
/// both divided by the number of queries. Softmax subtracts the row maximum first,
/// so large logits do not overflow.
public struct CrossEntropyResult: Sendable {
    public var loss: Double
    /// Fraction of queries whose largest logit is at their label.
    public var accuracy: Double
    /// Gradient of `loss` with respect to the logits, [rows, way].
    public var dLogits: [Double]
}

/// Computes the loss, accuracy and gradient for `logits` [rows, way] and `labels` [rows].
public func crossEntropy(logits: [Double], labels: [Int], way: Int, labelSmoothing: Double = 0) -> CrossEntropyResult {
    precondition(logits.count == labels.count * way, "crossEntropy: \(logits.count) logits for \(labels.count) labels of \(way) classes")
    let rows = labels.count
    var loss = 0.0
    var correct = 0
    var dLogits = [Double](repeating: 0, count: logits.count)
    let offTarget = labelSmoothing / Double(way)

    for row in 0..<rows {
        let base = row * way
        var maximum = -Double.infinity
        var best = 0
        for c in 0..<way where logits[base + c] > maximum {
            maximum = logits[base + c]
            best = c
        }
        if best == labels[row] { correct += 1 }

        var sum = 0.0
        for c in 0..<way { sum += exp(logits[base + c] - maximum) }
        let logSum = log(sum) + maximum
        for c in 0..<way {
            let target = offTarget + (c == labels[row] ? 1 - labelSmoothing : 0)
            let probability = exp(logits[base + c] - logSum)
            loss -= target * (logits[base + c] - logSum)
            dLogits[base + c] = (probability - target) / Double(rows)
        }
    }
    return CrossEntropyResult(loss: loss / Double(rows), accuracy: Double(correct) / Double(rows), dLogits: dLogits)
}

/// Mean and 95% confidence half-width of per-episode accuracies:
/// `1.96 * std / sqrt(n)` with the sample standard deviation (n - 1 in the
/// denominator), the normal approximation MetaOptNet reports. Zero width for one episode.
public func meanAndInterval(_ values: [Double]) -> (mean: Double, interval: Double) {
    guard !values.isEmpty else { return (.nan, .nan) }
    let mean = values.reduce(0, +) / Double(values.count)
    guard values.count > 1 else { return (mean, 0) }
    let variance = values.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(values.count - 1)
    return (mean, 1.96 * variance.squareRoot() / Double(values.count).squareRoot())
}
