import XCTest
import PhysarumLP
import TensorCore

/// Finite-difference checks of `PhysarumLayer.backward` with respect to A, b, c
/// and the start point. The loss is `r^T x` for a fixed random r, and each
/// check compares the analytic directional derivative with a five-point
/// central difference (step 1e-6) along a random direction.
final class PhysarumLayerGradientTests: XCTestCase {
    /// The five-point difference is accurate to about 1e-9 relative here, and the
    /// unrolled iteration amplifies that at large K. A tolerance of 1e-5 relative,
    /// plus 1e-7 absolute for near-zero derivatives, still separates a correct
    /// backward from a wrong sign or a missing term, which miss by 1e-1 or more.
    let relativeTolerance = 1e-5
    let absoluteTolerance = 1e-7

    func checkGradients(iterations: Int, seed: UInt64, file: StaticString = #filePath, line: UInt = #line) throws {
        let batch = try randomFeasibleBatch(count: 3, rows: 4, columns: 9, seed: seed)
        var random = SeededRandom(seed: seed + 100)
        let weights = randomVector(batch.count * batch.columns, &random)
        let start = randomVector(batch.count * batch.columns, &random, lower: 0.2, upper: 1)
        let options = PhysarumOptions(iterations: iterations, zeroCostPerturbation: 1e-3, start: .warm(start))
        let layer = PhysarumLayer(options: options)

        func loss(_ batch: LPBatch, start: [Double]) throws -> Double {
            var options = options
            options.start = .warm(start)
            return dot(try PhysarumLayer(options: options).forward(batch).solutions, weights)
        }

        let forward = try layer.forward(batch)
        XCTAssertTrue(forward.diagnostics.allSatisfy { $0.isUsable }, file: file, line: line)
        let gradients = try layer.backward(tape: forward.tape, dSolutions: weights)

        for trial in 0..<2 {
            let dA = randomVector(batch.constraints.count, &random)
            let db = randomVector(batch.rightHandSides.count, &random)
            let dc = randomVector(batch.costs.count, &random, lower: -0.05, upper: 0.05)
            let dStart = randomVector(start.count, &random, lower: -0.1, upper: 0.1)

            let numericA = try directionalDerivative { epsilon in
                var moved = batch
                moved.constraints = adding(batch.constraints, dA, scale: epsilon)
                return try loss(moved, start: start)
            }
            let numericB = try directionalDerivative { epsilon in
                var moved = batch
                moved.rightHandSides = adding(batch.rightHandSides, db, scale: epsilon)
                return try loss(moved, start: start)
            }
            let numericC = try directionalDerivative { epsilon in
                var moved = batch
                moved.costs = adding(batch.costs, dc, scale: epsilon)
                return try loss(moved, start: start)
            }
            let numericStart = try directionalDerivative { epsilon in
                try loss(batch, start: adding(start, dStart, scale: epsilon))
            }
            let cases: [(String, Double, Double)] = [
                ("A", numericA, dot(gradients.constraints, dA)),
                ("b", numericB, dot(gradients.rightHandSides, db)),
                ("c", numericC, dot(gradients.costs, dc)),
                ("start", numericStart, dot(gradients.start, dStart)),
            ]
            for (name, numeric, analytic) in cases {
                let tolerance = absoluteTolerance + relativeTolerance * max(abs(numeric), abs(analytic))
                XCTAssertEqual(analytic, numeric, accuracy: tolerance,
                               "d loss / d \(name) at K = \(iterations), trial \(trial)", file: file, line: line)
            }
        }
    }

    func testGradientsAtTenIterations() throws {
        try checkGradients(iterations: 10, seed: 1)
        try checkGradients(iterations: 10, seed: 2)
    }

    func testGradientsAtHundredIterations() throws {
        try checkGradients(iterations: 100, seed: 3)
    }
}
