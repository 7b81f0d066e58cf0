import Foundation
import TensorCore
import XCTest
@testable import FewShot

/// Random episodes with a fixed seed: E episodes, `way` classes of `shot`
/// support and `query` query examples, D-dimensional embeddings.
func randomEpisodes(episodes: Int = 2, way: Int = 3, shot: Int = 2, query: Int = 2, dimension: Int = 5, seed: UInt64 = 11) -> EpisodeEmbeddings {
    var random = SeededRandom(seed: seed)
    let supportCount = way * shot
    let queryCount = way * query
    var labels: [Int] = []
    for _ in 0..<episodes {
        for c in 0..<way { labels += Array(repeating: c, count: shot) }
    }
    return EpisodeEmbeddings(
        episodeCount: episodes, supportCount: supportCount, queryCount: queryCount, dimension: dimension, way: way,
        support: (0..<(episodes * supportCount * dimension)).map { _ in random.uniform(-1, 1) },
        query: (0..<(episodes * queryCount * dimension)).map { _ in random.uniform(-1, 1) },
        supportLabels: labels)
}

/// Checks a head's backward against central finite differences in Float64.
///
/// The loss is `sum(weights * logits)` with fixed random weights, so its
/// gradient with respect to the logits is `weights`. Step 1e-6 and relative
/// tolerance 1e-5 (plus 1e-8 absolute) hold for smooth Float64 heads, whose
/// central-difference truncation error is about step^2 times the third derivative.
func checkHeadGradients(
    _ makeHead: () -> FewShotHead, batch: EpisodeEmbeddings, step: Double = 1e-6,
    relativeTolerance: Double = 1e-5, absoluteTolerance: Double = 1e-8,
    file: StaticString = #filePath, line: UInt = #line
) throws {
    let head = makeHead()
    let (logits, _) = try head.forward(batch)
    var random = SeededRandom(seed: 3)
    let weights = logits.map { _ in random.uniform(-1, 1) }
    let gradients = head.backward(weights)
    let analyticScale = head.dScale

    func loss(_ batch: EpisodeEmbeddings, scale: Double? = nil) throws -> Double {
        let fresh = makeHead()
        if let scale { fresh.scale = scale }
        let (logits, _) = try fresh.forward(batch)
        return zip(logits, weights).reduce(0) { $0 + $1.0 * $1.1 }
    }

    var worst = 0.0
    for (name, keyPath, analytic) in [("support", \EpisodeEmbeddings.support, gradients.dSupport),
                                      ("query", \EpisodeEmbeddings.query, gradients.dQuery)] {
        XCTAssertEqual(analytic.count, batch[keyPath: keyPath].count, "\(name) gradient size", file: file, line: line)
        for index in batch[keyPath: keyPath].indices {
            var plus = batch
            plus[keyPath: keyPath][index] += step
            var minus = batch
            minus[keyPath: keyPath][index] -= step
            let numeric = (try loss(plus) - loss(minus)) / (2 * step)
            let error = abs(numeric - analytic[index])
            worst = max(worst, error / max(abs(numeric), 1e-3))
            XCTAssertLessThanOrEqual(error, absoluteTolerance + relativeTolerance * abs(numeric),
                                     "d\(name)[\(index)]: analytic \(analytic[index]), numeric \(numeric)", file: file, line: line)
        }
    }

    let scale = head.scale
    let numericScale = (try loss(batch, scale: scale + step) - loss(batch, scale: scale - step)) / (2 * step)
    XCTAssertEqual(analyticScale, numericScale, accuracy: absoluteTolerance + relativeTolerance * abs(numericScale),
                   "dScale", file: file, line: line)
}

final class PrototypicalHeadTests: XCTestCase {
    func testLogitsByHand() throws {
        // One episode, two classes in one dimension: prototypes 1 and -2.
        let batch = EpisodeEmbeddings(
            episodeCount: 1, supportCount: 3, queryCount: 1, dimension: 1, way: 2,
            support: [0, 2, -2], query: [3], supportLabels: [0, 0, 1])
        let head = PrototypicalHead(scale: 2)
        let (logits, _) = try head.forward(batch)
        XCTAssertEqual(logits, [-2 * 4, -2 * 25])
    }

    func testGradientsMatchFiniteDifferences() throws {
        try checkHeadGradients({ PrototypicalHead(scale: 1.3) }, batch: randomEpisodes())
    }

    func testMissingClassIsRejected() {
        let batch = EpisodeEmbeddings(
            episodeCount: 1, supportCount: 2, queryCount: 1, dimension: 1, way: 3,
            support: [0, 1], query: [0], supportLabels: [0, 1])
        XCTAssertThrowsError(try PrototypicalHead().forward(batch)) { error in
            XCTAssertEqual(error as? HeadError, .missingClass(episode: 0, label: 2))
        }
    }
}

final class RidgeHeadTests: XCTestCase {
    func testLogitsByHand() throws {
        // One support point per class in one dimension: S = [1, -1], G = S S^T + I,
        // alpha = G^-1 I, logits of query 2 = 2 S^T alpha.
        let batch = EpisodeEmbeddings(
            episodeCount: 1, supportCount: 2, queryCount: 1, dimension: 1, way: 2,
            support: [1, -1], query: [2], supportLabels: [0, 1])
        let (logits, _) = try RidgeHead(lambda: 1).forward(batch)
        // G = [[2, -1], [-1, 2]], G^-1 = [[2, 1], [1, 2]] / 3, K_qs = [2, -2].
        XCTAssertEqual(logits[0], (2 * 2 - 2 * 1) / 3, accuracy: 1e-12)
        XCTAssertEqual(logits[1], (2 * 1 - 2 * 2) / 3, accuracy: 1e-12)
    }

    func testGradientsMatchFiniteDifferences() throws {
        try checkHeadGradients({ RidgeHead(lambda: 0.7, scale: 0.8) }, batch: randomEpisodes())
    }

    func testNonFiniteEmbeddingIsRejected() {
        var batch = randomEpisodes(episodes: 1)
        batch.support[0] = .nan
        XCTAssertThrowsError(try RidgeHead().forward(batch)) { error in
            XCTAssertEqual(error as? HeadError, .nonFiniteEmbeddings(episode: 0))
        }
    }
}

final class CrossEntropyTests: XCTestCase {
    func testUniformLogitsGiveLogWay() {
        let result = crossEntropy(logits: [0, 0, 0, 0], labels: [1], way: 4)
        XCTAssertEqual(result.loss, log(4), accuracy: 1e-12)
        XCTAssertEqual(result.dLogits, [0.25, -0.75, 0.25, 0.25])
    }

    func testGradientMatchesFiniteDifferences() {
        var random = SeededRandom(seed: 5)
        let logits = (0..<12).map { _ in random.uniform(-3, 3) }
        let labels = [0, 2, 1, 2]
        for smoothing in [0.0, 0.1] {
            let result = crossEntropy(logits: logits, labels: labels, way: 3, labelSmoothing: smoothing)
            for index in logits.indices {
                var plus = logits, minus = logits
                plus[index] += 1e-6
                minus[index] -= 1e-6
                let numeric = (crossEntropy(logits: plus, labels: labels, way: 3, labelSmoothing: smoothing).loss
                    - crossEntropy(logits: minus, labels: labels, way: 3, labelSmoothing: smoothing).loss) / 2e-6
                XCTAssertEqual(result.dLogits[index], numeric, accuracy: 1e-8, "smoothing \(smoothing), logit \(index)")
            }
        }
    }

    func testLargeLogitsStayFinite() {
        let result = crossEntropy(logits: [1000, -1000], labels: [1], way: 2)
        XCTAssertEqual(result.loss, 2000, accuracy: 1e-9)
        XCTAssertEqual(result.accuracy, 0)
    }

    func testIntervalOfKnownValues() {
        let (mean, interval) = meanAndInterval([0.5, 0.7, 0.6, 0.8])
        XCTAssertEqual(mean, 0.65, accuracy: 1e-12)
        // sample std of the four values is sqrt(0.05 / 3)
        XCTAssertEqual(interval, 1.96 * (0.05 / 3).squareRoot() / 2, accuracy: 1e-12)
    }
}

final class L1SVMHeadTests: XCTestCase {
    func testGradientsMatchFiniteDifferences() throws {
        // Two 3-way 2-shot episodes: 3 pairs each, LPs of 4 support points.
        // Same start seed in every evaluation, so the loss is a deterministic
        // function of the embeddings; the clamp mask stays fixed under 1e-6 steps.
        for scalesEmbeddings in [false, true] {
            try checkHeadGradients(
                { L1SVMHead(scalesEmbeddings: scalesEmbeddings, penalty: 10, iterations: 10, gamma: 0.1, scale: 0.9, startSeed: 5) },
                batch: randomEpisodes(), relativeTolerance: 1e-4, absoluteTolerance: 1e-7)
        }
    }

    func testGradientsWithPrintedDefaults() throws {
        try checkHeadGradients(
            { L1SVMHead(penalty: 1, marginShift: 0.001, iterations: 10, gamma: 0.1, startSeed: 9) },
            batch: randomEpisodes(episodes: 1, way: 2, shot: 3, query: 2, dimension: 4),
            relativeTolerance: 1e-4, absoluteTolerance: 1e-7)
    }

    func testSeparableEpisodeIsClassified() throws {
        // Two well separated classes in two dimensions; with C = 10 and 100
        // iterations the LP reaches a real classifier, so every query is right.
        let batch = EpisodeEmbeddings(
            episodeCount: 1, supportCount: 4, queryCount: 2, dimension: 2, way: 2,
            support: [1, 0.1, 0.9, -0.1, -1, 0.1, -0.9, -0.1], query: [0.8, 0, -0.8, 0.05],
            supportLabels: [0, 0, 1, 1])
        let head = L1SVMHead(penalty: 10, iterations: 100, gamma: 0.1)
        let (logits, diagnostics) = try head.forward(batch)
        XCTAssertGreaterThan(logits[0], logits[1])
        XCTAssertGreaterThan(logits[3], logits[2])
        XCTAssertLessThan(diagnostics.maximumResidual!, 1e-3)
        XCTAssertFalse(diagnostics.nonFinite)
    }

    func testScalingBoundsSupportNorms() throws {
        // Scaling divides every embedding by the largest support norm, so
        // multiplying all embeddings by a constant leaves the logits unchanged.
        let batch = randomEpisodes(episodes: 1)
        var doubled = batch
        doubled.support = batch.support.map { $0 * 7 }
        doubled.query = batch.query.map { $0 * 7 }
        let (first, _) = try L1SVMHead(scalesEmbeddings: true, startSeed: 2).forward(batch)
        let (second, _) = try L1SVMHead(scalesEmbeddings: true, startSeed: 2).forward(doubled)
        for (a, b) in zip(first, second) { XCTAssertEqual(a, b, accuracy: 1e-9) }
    }

    func testUnequalShotsAreRejected() {
        let batch = EpisodeEmbeddings(
            episodeCount: 1, supportCount: 3, queryCount: 1, dimension: 1, way: 2,
            support: [1, 2, 3], query: [0], supportLabels: [0, 0, 1])
        XCTAssertThrowsError(try L1SVMHead().forward(batch)) { error in
            XCTAssertEqual(error as? HeadError, .unequalShots(episode: 0))
        }
    }
}
