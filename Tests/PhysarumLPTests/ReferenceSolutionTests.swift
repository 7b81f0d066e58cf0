import XCTest
import PhysarumLP

/// Compares the layer with HiGHS optima (Scripts/lp_reference_fixtures.py).
///
/// Gaps are relative, `|c'^T x - c'^T x*| / |c'^T x*|` with the perturbed costs
/// c' the layer minimises. The lower clamp 1e-6 sets a floor under both gap and
/// residual: entries that should be 0 stay at 1e-6, which leaves a residual of
/// about 1e-6 / gamma (1e-5 at gamma = 0.1) and an objective excess of about
/// 1e-6 times the sum of the costs.
final class ReferenceSolutionTests: XCTestCase {
    func gapsAndResiduals(batch: LPBatch, forward: PhysarumForward, gamma: Double,
                          optima: [Double]) -> (gaps: [Double], residuals: [Double]) {
        var gaps: [Double] = []
        for problem in 0..<batch.count {
            var objective = 0.0
            for column in 0..<batch.columns {
                let cost = batch.costs[problem * batch.columns + column]
                objective += (cost == 0 ? gamma : cost) * forward.solutions[problem * batch.columns + column]
            }
            gaps.append(abs(objective - optima[problem]) / abs(optima[problem]))
        }
        return (gaps, forward.diagnostics.map { $0.relativeResidual })
    }

    func testSVMBuilderMatchesReferenceLayout() throws {
        let fixture = try ReferenceFixture.load()
        for set in fixture.svm {
            let problem = set.problems[0]
            let builder = L1SVMBuilder(supportCount: set.supportCount, penalty: set.penalty, marginShift: set.marginShift)
            let batch = try builder.makeBatch(kernels: problem.kernel, labels: problem.labels)
            XCTAssertEqual(batch.rows, 4 * set.supportCount)
            XCTAssertEqual(batch.columns, 9 * set.supportCount + 2)
            let differenceA = zip(batch.constraints, try XCTUnwrap(problem.A)).map { abs($0 - $1) }.max()!
            XCTAssertLessThanOrEqual(differenceA, 1e-15, "A differs from the reference layout at C = \(set.penalty)")
            XCTAssertEqual(batch.rightHandSides, try XCTUnwrap(problem.b))
            XCTAssertEqual(batch.costs, try XCTUnwrap(problem.c))
        }
    }

    /// C = 10, gamma = 0.1: the optimum is a real classifier. K = 100 reaches the
    /// clamp floor on most problems; K = 500 on all of them.
    func testSVMWithPenaltyTenReachesHiGHSOptimum() throws {
        let fixture = try ReferenceFixture.load()
        let set = try XCTUnwrap(fixture.svm.first { $0.penalty == 10 })
        let builder = L1SVMBuilder(supportCount: set.supportCount, penalty: set.penalty, marginShift: set.marginShift)
        let batch = try builder.makeBatch(kernels: set.problems.flatMap { $0.kernel },
                                          labels: set.problems.flatMap { $0.labels })
        let optima = set.problems.map { $0.perturbedObjective }

        let atHundred = try PhysarumLayer(options: PhysarumOptions(iterations: 100, zeroCostPerturbation: set.gamma,
                                                                   start: .random(seed: 7))).forward(batch)
        let hundred = gapsAndResiduals(batch: batch, forward: atHundred, gamma: set.gamma, optima: optima)
        XCTAssertLessThan(median(hundred.gaps), 1e-4, "median gap at K = 100")
        XCTAssertLessThan(hundred.gaps.max()!, 1e-2, "largest gap at K = 100")
        XCTAssertLessThan(hundred.residuals.max()!, 5e-5, "largest residual at K = 100")
        XCTAssertTrue(atHundred.diagnostics.allSatisfy { $0.isUsable })

        let atFiveHundred = try PhysarumLayer(options: PhysarumOptions(iterations: 500, zeroCostPerturbation: set.gamma,
                                                                       start: .random(seed: 7))).forward(batch)
        let fiveHundred = gapsAndResiduals(batch: batch, forward: atFiveHundred, gamma: set.gamma, optima: optima)
        XCTAssertLessThan(fiveHundred.gaps.max()!, 1e-4, "largest gap at K = 500")
        XCTAssertLessThan(fiveHundred.residuals.max()!, 5e-5, "largest residual at K = 500")

        // A real classifier: the support points are separated with margin.
        let classifiers = builder.classifiers(fromSolutions: atFiveHundred.solutions)
        let n = set.supportCount
        for (index, problem) in set.problems.enumerated() {
            for i in 0..<n {
                var decision = classifiers.biases[index]
                for j in 0..<n {
                    decision += problem.labels[j] * problem.kernel[i * n + j] * classifiers.coefficients[index * n + j]
                }
                XCTAssertGreaterThan(problem.labels[i] * decision, 0.99, "margin of point \(i) in problem \(index)")
            }
        }
    }

    /// C = 1, gamma = 0.1: the unique optimum is the trivial classifier u = 0.
    func testSVMWithPenaltyOneFindsTrivialClassifier() throws {
        let fixture = try ReferenceFixture.load()
        let set = try XCTUnwrap(fixture.svm.first { $0.penalty == 1 })
        let builder = L1SVMBuilder(supportCount: set.supportCount, penalty: set.penalty, marginShift: set.marginShift)
        let batch = try builder.makeBatch(kernels: set.problems.flatMap { $0.kernel },
                                          labels: set.problems.flatMap { $0.labels })
        let forward = try PhysarumLayer(options: PhysarumOptions(iterations: 100, zeroCostPerturbation: set.gamma,
                                                                 start: .random(seed: 7))).forward(batch)
        let result = gapsAndResiduals(batch: batch, forward: forward, gamma: set.gamma,
                                      optima: set.problems.map { $0.perturbedObjective })
        XCTAssertLessThan(median(result.gaps), 1e-4, "median gap at K = 100")
        XCTAssertLessThan(result.gaps.max()!, 5e-3, "largest gap at K = 100")
        XCTAssertLessThan(result.residuals.max()!, 5e-5, "largest residual at K = 100")
        let coefficients = builder.classifiers(fromSolutions: forward.solutions).coefficients
        XCTAssertLessThan(coefficients.map { abs($0) }.max()!, 1e-3, "u should vanish at the trivial optimum")
    }

    /// Matching at gamma = 1e-3: K = 100 rounds to the exact assignment on all problems.
    func testMatchingRoundsToHungarianAssignment() throws {
        let fixture = try ReferenceFixture.load()
        let set = fixture.matching
        let builder = MatchingBuilder(templates: set.templates, proposals: set.proposals)
        let batch = try builder.makeBatch(costs: set.problems.flatMap { $0.costs }).batch
        let forward = try PhysarumLayer(options: PhysarumOptions(iterations: 100, zeroCostPerturbation: set.gamma,
                                                                 start: .random(seed: 7))).forward(batch)
        let result = gapsAndResiduals(batch: batch, forward: forward, gamma: set.gamma,
                                      optima: set.problems.map { $0.perturbedObjective })
        // The floor here is about n m eps mean(C) / objective = 250 * 1e-6 * 0.5 / 0.15, near 1e-3.
        XCTAssertLessThan(result.gaps.max()!, 3e-3, "largest gap at K = 100")
        XCTAssertLessThan(result.residuals.max()!, 3e-5, "largest residual at K = 100")

        let x = builder.assignments(fromSolutions: forward.solutions)
        let (n, m) = (set.templates, set.proposals)
        for (index, problem) in set.problems.enumerated() {
            let cost = problem.costs
            XCTAssertEqual(hungarianAssignment(costs: cost, rows: n, columns: m), problem.assignment,
                           "Hungarian assignment of problem \(index)")
            for row in 0..<n {
                let entries = Array(x[(index * n * m + row * m)..<(index * n * m + (row + 1) * m)])
                XCTAssertEqual(entries.firstIndex(of: entries.max()!), problem.assignment[row],
                               "rounded row \(row) of problem \(index)")
            }
        }
    }
}
