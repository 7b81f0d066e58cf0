import XCTest
import PhysarumLP
import TensorCore

/// Small cases checkable by hand, option and input errors, and failure diagnostics.
final class PhysarumLayerTests: XCTestCase {
    func singleProblem(_ a: [[Double]], _ b: [Double], _ c: [Double]) throws -> LPBatch {
        try LPBatch(count: 1, rows: a.count, columns: c.count, constraints: a.flatMap { $0 }, rightHandSides: b, costs: c)
    }

    /// minimise x1 + 2 x2 subject to x1 + x2 = 1 from x0 = (0.5, 0.5):
    /// w = (0.5, 0.25), L = 0.75, p = 4/3, q = w p = (2/3, 1/3).
    func testOneIterationByHand() throws {
        let batch = try singleProblem([[1, 1]], [1], [1, 2])
        let forward = try PhysarumLayer(options: PhysarumOptions(iterations: 1, start: .warm([0.5, 0.5]))).forward(batch)
        XCTAssertEqual(forward.solutions[0], 2.0 / 3, accuracy: 1e-15)
        XCTAssertEqual(forward.solutions[1], 1.0 / 3, accuracy: 1e-15)
        XCTAssertEqual(forward.diagnostics[0].objective, 4.0 / 3, accuracy: 1e-15)
        XCTAssertEqual(forward.diagnostics[0].relativeResidual, 0, accuracy: 1e-15)
        XCTAssertEqual(forward.diagnostics[0].completedIterations, 1)
    }

    /// Half a step keeps half of the old iterate: x = 0.5 x0 + 0.5 q.
    func testHalfStepMixesIterates() throws {
        let batch = try singleProblem([[1, 1]], [1], [1, 2])
        let options = PhysarumOptions(iterations: 1, stepSize: 0.5, start: .warm([0.5, 0.5]))
        let forward = try PhysarumLayer(options: options).forward(batch)
        XCTAssertEqual(forward.solutions[0], 0.25 + 1.0 / 3, accuracy: 1e-15)
        XCTAssertEqual(forward.solutions[1], 0.25 + 1.0 / 6, accuracy: 1e-15)
    }

    /// The iterate converges to the vertex (1, 0), with x2 held at the lower clamp.
    func testConvergesToVertexAndReportsClamp() throws {
        let batch = try singleProblem([[1, 1]], [1], [1, 2])
        let forward = try PhysarumLayer(options: PhysarumOptions(iterations: 60)).forward(batch)
        XCTAssertEqual(forward.solutions[0], 1, accuracy: 1e-5)
        XCTAssertEqual(forward.solutions[1], 1e-6, accuracy: 1e-12)
        XCTAssertEqual(forward.diagnostics[0].clampedCount, 1)
        XCTAssertEqual(forward.diagnostics[0].smallestEntry, 1e-6, accuracy: 1e-12)
        XCTAssertLessThan(forward.diagnostics[0].relativeResidual, 1e-5)
    }

    /// A zero cost is priced at gamma, so between a zero-cost and a unit-cost
    /// variable the zero-cost one wins; the objective uses the caller's costs.
    func testZeroCostIsPerturbed() throws {
        let batch = try singleProblem([[1, 1]], [1], [0, 1])
        let forward = try PhysarumLayer(options: PhysarumOptions(iterations: 40, zeroCostPerturbation: 0.01)).forward(batch)
        XCTAssertEqual(forward.solutions[0], 1, accuracy: 1e-5)
        XCTAssertEqual(forward.diagnostics[0].objective, forward.solutions[1], accuracy: 1e-15)
    }

    func testBatchEqualsSerialSolve() throws {
        let batch = try randomFeasibleBatch(count: 7, rows: 5, columns: 12, seed: 4)
        let layer = PhysarumLayer(options: PhysarumOptions(iterations: 15, start: .random(seed: 3)))
        let saved = Parallel.workerCount
        defer { Parallel.workerCount = saved }
        Parallel.workerCount = 1
        let serial = try layer.forward(batch)
        Parallel.workerCount = 2
        let parallel = try layer.forward(batch)
        XCTAssertEqual(serial.solutions, parallel.solutions)
        XCTAssertEqual(serial.diagnostics, parallel.diagnostics)
        let dx = (0..<serial.solutions.count).map { Double($0 % 5) - 2 }
        Parallel.workerCount = 1
        let serialGradients = try layer.backward(tape: serial.tape, dSolutions: dx)
        Parallel.workerCount = 2
        let parallelGradients = try layer.backward(tape: parallel.tape, dSolutions: dx)
        XCTAssertEqual(serialGradients.constraints, parallelGradients.constraints)
        XCTAssertEqual(serialGradients.costs, parallelGradients.costs)
    }

    func testNegativeCostIsRejected() throws {
        let batch = try singleProblem([[1, 1]], [1], [1, -0.5])
        XCTAssertThrowsError(try PhysarumLayer().forward(batch)) { error in
            XCTAssertEqual(error as? LPError, .negativeCost(problem: 0, index: 1, value: -0.5))
            XCTAssertTrue("\(error)".contains("c[1] of problem 0 is -0.5"), "\(error)")
        }
    }

    /// minimise -x1 subject to x1 - x2 = 0 is unbounded; with costs >= 0 a
    /// standard-form LP is bounded below by 0, so the negative cost is the error.
    func testUnboundedLPIsRejectedThroughItsNegativeCost() throws {
        let batch = try singleProblem([[1, -1]], [0], [-1, 0])
        XCTAssertThrowsError(try PhysarumLayer().forward(batch)) { error in
            XCTAssertEqual(error as? LPError, .negativeCost(problem: 0, index: 0, value: -1))
        }
    }

    func testNonFiniteInputIsRejected() throws {
        var batch = try singleProblem([[1, 1], [1, -1]], [1, 0], [1, 1])
        batch.constraints[3] = .nan
        XCTAssertThrowsError(try PhysarumLayer().forward(batch)) { error in
            guard case let .nonFiniteInput(field, problem, index, _)? = error as? LPError else {
                return XCTFail("expected nonFiniteInput, got \(error)")
            }
            XCTAssertEqual(field, "A")
            XCTAssertEqual(problem, 0)
            XCTAssertEqual(index, 3)
        }
        batch.constraints[3] = -1
        batch.rightHandSides[1] = .infinity
        XCTAssertThrowsError(try PhysarumLayer().forward(batch)) { error in
            guard case let .nonFiniteInput(field, _, index, _)? = error as? LPError else {
                return XCTFail("expected nonFiniteInput, got \(error)")
            }
            XCTAssertEqual(field, "b")
            XCTAssertEqual(index, 1)
        }
    }

    func testRankDeficientMatrixIsRejected() throws {
        let batch = try singleProblem([[1, 2, 1], [2, 4, 2]], [1, 2], [1, 1, 1])
        XCTAssertThrowsError(try PhysarumLayer().forward(batch)) { error in
            XCTAssertEqual(error as? LPError, .rankDeficient(problem: 0, row: 1))
            XCTAssertTrue("\(error)".contains("rank deficient"), "\(error)")
        }
    }

    /// x1 + x2 = -1 has no solution with x >= 0: every iterate is clamped and the
    /// residual stays near 1, which the diagnostics report.
    func testInfeasibleLPIsFlaggedByResidual() throws {
        let batch = try singleProblem([[1, 1]], [-1], [1, 1])
        let forward = try PhysarumLayer(options: PhysarumOptions(iterations: 100)).forward(batch)
        XCTAssertGreaterThan(forward.diagnostics[0].relativeResidual, 0.99)
        XCTAssertEqual(forward.diagnostics[0].clampedCount, 2)
    }

    /// Two rows that can only hold together with x3 = -1.
    func testInfeasibleSystemWithFeasibleRowsIsFlagged() throws {
        let batch = try singleProblem([[1, 1, 0], [1, 1, 1]], [1, 0], [1, 1, 1])
        let forward = try PhysarumLayer(options: PhysarumOptions(iterations: 100)).forward(batch)
        XCTAssertGreaterThan(forward.diagnostics[0].relativeResidual, 0.3)
    }

    /// A subnormal cost makes x / c overflow: flagged as non-finite, never returned as a solution.
    func testOverflowingWeightIsFlagged() throws {
        let batch = try singleProblem([[1, 1]], [1], [1e-320, 1])
        let forward = try PhysarumLayer(options: PhysarumOptions(iterations: 10)).forward(batch)
        XCTAssertTrue(forward.diagnostics[0].hasNonFinite)
        XCTAssertFalse(forward.diagnostics[0].isUsable)
        XCTAssertTrue(forward.solutions.allSatisfy { $0.isFinite })
        let gradients = try PhysarumLayer().backward(tape: forward.tape, dSolutions: [1, 1])
        XCTAssertTrue(gradients.constraints.allSatisfy { $0.isFinite })
    }

    func testShapeErrorsAreThrown() {
        XCTAssertThrowsError(try LPBatch(count: 1, rows: 2, columns: 3, constraints: [1, 2, 3], rightHandSides: [1, 1],
                                         costs: [1, 1, 1])) { error in
            XCTAssertEqual(error as? LPError, .shapeMismatch(field: "A", expected: 6, actual: 3))
        }
        XCTAssertThrowsError(try LPBatch(count: 1, rows: 3, columns: 2, constraints: [Double](repeating: 1, count: 6),
                                         rightHandSides: [1, 1, 1], costs: [1, 1])) { error in
            XCTAssertEqual(error as? LPError, .invalidShape(count: 1, rows: 3, columns: 2))
        }
    }

    func testInvalidOptionsAreThrown() throws {
        let batch = try singleProblem([[1, 1]], [1], [1, 2])
        XCTAssertThrowsError(try PhysarumLayer(options: PhysarumOptions(iterations: 0)).forward(batch))
        XCTAssertThrowsError(try PhysarumLayer(options: PhysarumOptions(stepSize: 1.5)).forward(batch))
        XCTAssertThrowsError(try PhysarumLayer(options: PhysarumOptions(zeroCostPerturbation: 0)).forward(batch))
        XCTAssertThrowsError(try PhysarumLayer(options: PhysarumOptions(start: .warm([1]))).forward(batch)) { error in
            XCTAssertEqual(error as? LPError, .warmStartMismatch(expected: 2, actual: 1))
        }
        XCTAssertThrowsError(try PhysarumLayer(options: PhysarumOptions(start: .warm([1, 0]))).forward(batch))
        let forward = try PhysarumLayer().forward(batch)
        XCTAssertThrowsError(try PhysarumLayer().backward(tape: forward.tape, dSolutions: [1])) { error in
            XCTAssertEqual(error as? LPError, .tapeMismatch(field: "dSolutions", expected: 2, actual: 1))
        }
    }
}

/// One iteration of the layer against the dense formulas, on an A whose sparse
/// assembly takes every path: zeros inside columns, a column equal to the
/// negation of another, a duplicated column and single-entry columns.
final class SparseAssemblyTests: XCTestCase {
    func testOneIterationMatchesDenseFormulas() throws {
        var random = SeededRandom(seed: 31)
        let (m, n) = (6, 14)
        var a = [Double](repeating: 0, count: m * n)
        for r in 0..<m {
            for k in 0..<n where random.nextDouble() < 0.6 { a[r * n + k] = random.uniform(-1, 1) }
            a[r * n + 8 + r] = 1  // keeps full row rank
        }
        for r in 0..<m {
            a[r * n + 0] = r == 2 ? 0 : Double(r + 1)  // a column with a hole
            a[r * n + 1] = -a[r * n + 0]
            a[r * n + 5] = a[r * n + 4]
        }
        let b = randomVector(m, &random)
        let c = randomVector(n, &random, lower: 0.1, upper: 1)
        let start = randomVector(n, &random, lower: 0.1, upper: 1)
        let batch = try LPBatch(count: 1, rows: m, columns: n, constraints: a, rightHandSides: b, costs: c)
        let forward = try PhysarumLayer(options: PhysarumOptions(iterations: 1, lowerClamp: 1e-300, upperClamp: 1e300,
                                                                 start: .warm(start))).forward(batch)

        // Dense reference: L = A diag(w) A^T, solved by Gaussian elimination with partial pivoting.
        let w = (0..<n).map { start[$0] / c[$0] }
        var system = [[Double]](repeating: [Double](repeating: 0, count: m + 1), count: m)
        for i in 0..<m {
            for j in 0..<m {
                system[i][j] = (0..<n).reduce(0.0) { $0 + a[i * n + $1] * w[$1] * a[j * n + $1] }
            }
            system[i][m] = b[i]
        }
        for column in 0..<m {
            let pivot = (column..<m).max { abs(system[$0][column]) < abs(system[$1][column]) }!
            system.swapAt(column, pivot)
            for row in 0..<m where row != column {
                let factor = system[row][column] / system[column][column]
                for k in column...m { system[row][k] -= factor * system[column][k] }
            }
        }
        let p = (0..<m).map { system[$0][m] / system[$0][$0] }
        for k in 0..<n {
            // Negative entries of q meet the lower clamp.
            let expected = max(w[k] * (0..<m).reduce(0.0) { $0 + a[$1 * n + k] * p[$1] }, 1e-300)
            XCTAssertEqual(forward.solutions[k], expected, accuracy: 1e-10 * max(1, abs(expected)), "x[\(k)]")
        }
    }
}

final class UnrecordedForwardTests: XCTestCase {
    func testUnrecordedForwardMatchesAndRejectsBackward() throws {
        let batch = try randomFeasibleBatch(count: 4, rows: 3, columns: 8, seed: 41)
        let layer = PhysarumLayer(options: PhysarumOptions(iterations: 12, start: .random(seed: 2)))
        let recorded = try layer.forward(batch)
        let unrecorded = try layer.forward(batch, recordingTape: false)
        XCTAssertEqual(recorded.solutions, unrecorded.solutions)
        XCTAssertEqual(recorded.diagnostics, unrecorded.diagnostics)
        XCTAssertThrowsError(try layer.backward(tape: unrecorded.tape, dSolutions: recorded.solutions)) { error in
            XCTAssertEqual(error as? LPError, .tapeNotRecorded)
        }
    }
}

final class RankCheckTests: XCTestCase {
    /// With x3 = 1e-13 the weighted matrix L = [[2, 2], [2, 2 + 1e-13]] has a pivot
    /// far below 1e-12 of its diagonal, yet A has full row rank: the layer must run.
    func testTinyWarmStartEntryIsNotRankDefect() throws {
        let batch = try LPBatch(count: 1, rows: 2, columns: 3, constraints: [1, 1, 0, 1, 1, 1],
                                rightHandSides: [1, 1.5], costs: [1, 2, 1])
        let options = PhysarumOptions(iterations: 30, lowerClamp: 1e-14, start: .warm([0.5, 0.5, 1e-13]))
        let forward = try PhysarumLayer(options: options).forward(batch)
        XCTAssertTrue(forward.diagnostics[0].isUsable)
        XCTAssertEqual(forward.solutions[0], 1, accuracy: 1e-6)
        XCTAssertEqual(forward.solutions[2], 0.5, accuracy: 1e-6)
    }

    /// The same weighting with a truly dependent second row is still rejected.
    func testDependentRowIsRejectedFromWarmStart() throws {
        let batch = try LPBatch(count: 1, rows: 2, columns: 3, constraints: [1, 1, 0, 2, 2, 0],
                                rightHandSides: [1, 2], costs: [1, 2, 1])
        let options = PhysarumOptions(start: .warm([0.5, 0.5, 1e-13]))
        XCTAssertThrowsError(try PhysarumLayer(options: options).forward(batch)) { error in
            XCTAssertEqual(error as? LPError, .rankDeficient(problem: 0, row: 1))
        }
    }
}
