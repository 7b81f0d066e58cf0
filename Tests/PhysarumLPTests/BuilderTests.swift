import XCTest
import PhysarumLP
import TensorCore

/// The l1-SVM and matching builders: layout, errors and gradients down to
/// their inputs (finite differences in Float64, as for the layer).
final class BuilderTests: XCTestCase {
    let relativeTolerance = 1e-5
    let absoluteTolerance = 1e-7

    func randomKernels(count: Int, supportCount n: Int, dimension: Int, random: inout SeededRandom) -> (kernels: [Double], labels: [Double]) {
        var kernels: [Double] = []
        var labels: [Double] = []
        for _ in 0..<count {
            var points = randomVector(n * dimension, &random)
            // Scale so the largest support norm is 1, as a few-shot head does with embeddings.
            var largest = 0.0
            for i in 0..<n {
                largest = max(largest, (0..<dimension).reduce(0.0) { $0 + points[i * dimension + $1] * points[i * dimension + $1] })
            }
            points = points.map { $0 / largest.squareRoot() }
            for i in 0..<n {
                for j in 0..<n {
                    var sum = 0.0
                    for d in 0..<dimension { sum += points[i * dimension + d] * points[j * dimension + d] }
                    kernels.append(sum)
                }
                labels.append(i % 2 == 0 ? 1 : -1)
            }
        }
        return (kernels, labels)
    }

    /// Loss `r^T u + s^T beta` through builder, layer and extraction; checks dLoss/dK.
    func checkSVMKernelGradient(iterations: Int, zSign: L1SVMBuilder.ZSign, seed: UInt64) throws {
        var random = SeededRandom(seed: seed)
        let n = 4
        let (kernels, labels) = randomKernels(count: 3, supportCount: n, dimension: 3, random: &random)
        let builder = L1SVMBuilder(supportCount: n, penalty: 10, marginShift: 0.001, zSign: zSign)
        let layer = PhysarumLayer(options: PhysarumOptions(iterations: iterations, zeroCostPerturbation: 0.1,
                                                           start: .random(seed: seed)))
        let dCoefficients = randomVector(3 * n, &random)
        let dBiases = randomVector(3, &random)

        func loss(_ kernels: [Double]) throws -> Double {
            let forward = try layer.forward(try builder.makeBatch(kernels: kernels, labels: labels))
            let classifiers = builder.classifiers(fromSolutions: forward.solutions)
            return dot(classifiers.coefficients, dCoefficients) + dot(classifiers.biases, dBiases)
        }

        let forward = try layer.forward(try builder.makeBatch(kernels: kernels, labels: labels))
        let gradients = try layer.backward(tape: forward.tape,
                                           dSolutions: builder.dSolutions(dCoefficients: dCoefficients, dBiases: dBiases))
        let dK = builder.dKernels(dConstraints: gradients.constraints, labels: labels)
        for trial in 0..<3 {
            let direction = randomVector(kernels.count, &random)
            let numeric = try directionalDerivative { try loss(adding(kernels, direction, scale: $0)) }
            let analytic = dot(dK, direction)
            XCTAssertEqual(analytic, numeric,
                           accuracy: absoluteTolerance + relativeTolerance * max(abs(numeric), abs(analytic)),
                           "dLoss/dK at K = \(iterations), \(zSign), trial \(trial)")
        }
    }

    func testSVMKernelGradientAtTenIterations() throws {
        try checkSVMKernelGradient(iterations: 10, zSign: .raisesMargin, seed: 11)
        try checkSVMKernelGradient(iterations: 10, zSign: .relaxesMargin, seed: 12)
    }

    func testSVMKernelGradientAtHundredIterations() throws {
        try checkSVMKernelGradient(iterations: 100, zSign: .raisesMargin, seed: 13)
    }

    func testSVMLayoutByHand() throws {
        // n = 1: variables alpha1, alpha2, s, b1, b2, xi, z, l, p, q, r; K = [[2]], y = [-1].
        let builder = L1SVMBuilder(supportCount: 1, penalty: 3, marginShift: 0.5)
        let batch = try builder.makeBatch(kernels: [2], labels: [-1])
        XCTAssertEqual(batch.constraints, [
            2, -2, 0, -1, 1, 1, -0.5, -1, 0, 0, 0,
            -2, 2, -1, 0, 0, 0, 0, 0, 1, 0, 0,
            -2, 2, 1, 0, 0, 0, 0, 0, 0, -1, 0,
            0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 1,
        ])
        XCTAssertEqual(batch.rightHandSides, [1, 0, 0, 1])
        XCTAssertEqual(batch.costs, [0, 0, 1, 0, 0, 3, 6, 0, 0, 0, 0])
        let relaxed = try L1SVMBuilder(supportCount: 1, penalty: 3, marginShift: 0.5, zSign: .relaxesMargin)
            .makeBatch(kernels: [2], labels: [-1])
        XCTAssertEqual(relaxed.constraints[6], 0.5)
    }

    func testSVMRejectsBadLabelsAndShapes() {
        let builder = L1SVMBuilder(supportCount: 2)
        XCTAssertThrowsError(try builder.makeBatch(kernels: [1, 0, 0, 1], labels: [1, 0])) { error in
            XCTAssertEqual(error as? LPError, .invalidLabel(problem: 0, index: 1, value: 0))
        }
        XCTAssertThrowsError(try builder.makeBatch(kernels: [1, 0, 0], labels: [1, -1])) { error in
            XCTAssertEqual(error as? LPError, .shapeMismatch(field: "kernels", expected: 4, actual: 3))
        }
    }

    /// Loss `r^T X` through the matching builder (with negative costs, so rows are shifted) and the layer.
    func checkMatchingCostGradient(iterations: Int, seed: UInt64) throws {
        var random = SeededRandom(seed: seed)
        let builder = MatchingBuilder(templates: 2, proposals: 4)
        let costs = randomVector(2 * 2 * 4, &random, lower: -1, upper: 1)
        let weights = randomVector(2 * 2 * 4, &random)
        let layer = PhysarumLayer(options: PhysarumOptions(iterations: iterations, zeroCostPerturbation: 0.05,
                                                           start: .random(seed: seed)))
        func loss(_ costs: [Double]) throws -> Double {
            let forward = try layer.forward(try builder.makeBatch(costs: costs).batch)
            return dot(builder.assignments(fromSolutions: forward.solutions), weights)
        }
        let matching = try builder.makeBatch(costs: costs)
        XCTAssertTrue(matching.rowShifts.contains { $0 > 0 }, "the test needs a shifted row")
        let forward = try layer.forward(matching.batch)
        var dx = [Double](repeating: 0, count: forward.solutions.count)
        for problem in 0..<2 {
            for index in 0..<8 { dx[problem * builder.columns + index] = weights[problem * 8 + index] }
        }
        let gradients = try layer.backward(tape: forward.tape, dSolutions: dx)
        let dC = builder.dCosts(dLPCosts: gradients.costs, costs: costs)
        for trial in 0..<3 {
            let direction = randomVector(costs.count, &random)
            let numeric = try directionalDerivative { try loss(adding(costs, direction, scale: $0)) }
            let analytic = dot(dC, direction)
            XCTAssertEqual(analytic, numeric,
                           accuracy: absoluteTolerance + relativeTolerance * max(abs(numeric), abs(analytic)),
                           "dLoss/dC at K = \(iterations), trial \(trial)")
        }
    }

    func testMatchingCostGradientAtTenIterations() throws {
        try checkMatchingCostGradient(iterations: 10, seed: 21)
    }

    func testMatchingCostGradientAtHundredIterations() throws {
        try checkMatchingCostGradient(iterations: 100, seed: 22)
    }

    /// Shifting a row by a constant changes the objective by that constant only.
    func testMatchingShiftIsExact() throws {
        let builder = MatchingBuilder(templates: 2, proposals: 3)
        let costs: [Double] = [-0.5, 0.1, 0.7, 0.2, 0.3, 0.9]
        let matching = try builder.makeBatch(costs: costs)
        XCTAssertEqual(matching.rowShifts[0], 0.5 + 1.2 / 3, accuracy: 1e-15)
        XCTAssertEqual(matching.rowShifts[1], 0)
        XCTAssertEqual(matching.batch.costs[0], 0.4, accuracy: 1e-15)
        XCTAssertTrue(matching.batch.costs.allSatisfy { $0 >= 0 })
        let forward = try PhysarumLayer(options: PhysarumOptions(iterations: 100, zeroCostPerturbation: 1e-3)).forward(matching.batch)
        let x = builder.assignments(fromSolutions: forward.solutions)
        // The optimum takes -0.5 in row 0 and 0.3 in row 1 (column 0 is taken).
        XCTAssertEqual(x[0], 1, accuracy: 1e-3)
        XCTAssertEqual(x[4], 1, accuracy: 1e-3)
        var objective = 0.0
        for index in 0..<6 { objective += costs[index] * x[index] }
        // The offset is exact only where each row of X sums to 1, so the residual floor (about 1e-5) bounds the difference.
        XCTAssertEqual(forward.diagnostics[0].objective - matching.objectiveOffsets[0], objective, accuracy: 1e-4)
    }

    func testHungarianMatchesBruteForce() {
        var random = SeededRandom(seed: 5)
        for trial in 0..<30 {
            let (n, m) = (1 + trial % 3, 3 + trial % 4)
            let costs = randomVector(n * m, &random, lower: -1, upper: 1)
            var best = Double.infinity
            func search(_ row: Int, _ used: Set<Int>, _ total: Double) {
                if row == n {
                    best = min(best, total)
                    return
                }
                for column in 0..<m where !used.contains(column) {
                    search(row + 1, used.union([column]), total + costs[row * m + column])
                }
            }
            search(0, [], 0)
            let assignment = hungarianAssignment(costs: costs, rows: n, columns: m)
            XCTAssertEqual(Set(assignment).count, n, "columns must be distinct, trial \(trial)")
            let total = assignment.enumerated().reduce(0.0) { $0 + costs[$1.offset * m + $1.element] }
            XCTAssertEqual(total, best, accuracy: 1e-12, "trial \(trial), \(n) x \(m)")
        }
    }

    /// PGD-Dykstra stays (nearly) feasible and moves toward the assignment as steps grow.
    func testDykstraPGDIsFeasibleAndImproves() {
        var random = SeededRandom(seed: 6)
        let (n, m) = (3, 8)
        let costs = randomVector(n * m, &random, lower: 0, upper: 1)
        let assignment = hungarianAssignment(costs: costs, rows: n, columns: m)
        func distance(_ x: [Double]) -> Double {
            var sum = 0.0
            for i in 0..<n {
                for j in 0..<m {
                    let target: Double = assignment[i] == j ? 1 : 0
                    sum += (x[i * m + j] - target) * (x[i * m + j] - target)
                }
            }
            return sum.squareRoot()
        }
        let few = DykstraPGD(steps: 5).solve(costs: costs, templates: n, proposals: m)
        let many = DykstraPGD(steps: 400, projectionCycles: 20).solve(costs: costs, templates: n, proposals: m)
        XCTAssertLessThan(distance(many), distance(few))
        XCTAssertLessThan(distance(many), 0.1)
        // Five Dykstra cycles are not an exact projection; 1e-2 bounds what is left.
        for i in 0..<n {
            let rowSum = (0..<m).reduce(0.0) { $0 + many[i * m + $1] }
            XCTAssertEqual(rowSum, 1, accuracy: 1e-2)
        }
        XCTAssertGreaterThan(many.min()!, -1e-2)
    }
}
