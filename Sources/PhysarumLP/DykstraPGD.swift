import TensorCore

/// Projected gradient descent for the matching LP relaxation
/// `min tr(C X^T)` over `{X >= 0, X 1 = 1, X^T 1 <= 1}`, projecting with
/// Dykstra's cyclic projections onto the three sets. This is the baseline of the
/// matching test in the physarum LP paper (Meng et al.), which takes it from
/// DMM-Net: learning rate 0.1, 5 projection cycles.
///
/// Each step takes `Y = X - learningRate * C` and projects Y. The start point
/// is the feasible `X = 1 / m`. The three projections: clip at zero; shift each
/// row by `(1 - row sum) / m`; for each column whose sum exceeds 1, subtract
/// `(sum - 1) / n` from its entries.
public struct DykstraPGD: Sendable {
    public var steps: Int
    public var projectionCycles: Int
    public var learningRate: Double

    public init(steps: Int = 40, projectionCycles: Int = 5, learningRate: Double = 0.1) {
        precondition(steps >= 0 && projectionCycles >= 1 && learningRate > 0,
                     "PGD needs steps >= 0, cycles >= 1 and a positive learning rate")
        self.steps = steps
        self.projectionCycles = projectionCycles
        self.learningRate = learningRate
    }

    /// Solves every problem of `costs` (count x n x m); returns X, count x n x m.
    public func solve(costs: [Double], templates n: Int, proposals m: Int) -> [Double] {
        precondition(costs.count % (n * m) == 0, "PGD costs need a multiple of \(n * m) entries")
        let count = costs.count / (n * m)
        var result = [Double](repeating: 0, count: costs.count)
        result.withUnsafeMutableBufferPointer { result in
            let base = result.baseAddress!
            Parallel.forEach(count) { problem in
                let cost = Array(costs[(problem * n * m)..<((problem + 1) * n * m)])
                let x = solveOne(cost: cost, n: n, m: m)
                for index in 0..<(n * m) { base[problem * n * m + index] = x[index] }
            }
        }
        return result
    }

    func solveOne(cost: [Double], n: Int, m: Int) -> [Double] {
        var x = [Double](repeating: 1 / Double(m), count: n * m)
        for _ in 0..<steps {
            var y = x
            for index in y.indices { y[index] -= learningRate * cost[index] }
            x = project(y, n: n, m: m)
        }
        return x
    }

    /// Dykstra's algorithm: cycles through the three projections, carrying one
    /// correction term per set so the limit is the Euclidean projection onto
    /// the intersection (plain alternating projections only find some point in it).
    func project(_ y: [Double], n: Int, m: Int) -> [Double] {
        var z = y
        var corrections = [[Double]](repeating: [Double](repeating: 0, count: n * m), count: 3)
        for _ in 0..<projectionCycles {
            for set in 0..<3 {
                var shifted = z
                for index in shifted.indices { shifted[index] += corrections[set][index] }
                var projected = shifted
                switch set {
                case 0:
                    for index in projected.indices { projected[index] = max(projected[index], 0) }
                case 1:
                    for i in 0..<n {
                        var sum = 0.0
                        for j in 0..<m { sum += projected[i * m + j] }
                        let shift = (1 - sum) / Double(m)
                        for j in 0..<m { projected[i * m + j] += shift }
                    }
                default:
                    for j in 0..<m {
                        var sum = 0.0
                        for i in 0..<n { sum += projected[i * m + j] }
                        if sum > 1 {
                            let shift = (sum - 1) / Double(n)
                            for i in 0..<n { projected[i * m + j] -= shift }
                        }
                    }
                }
                for index in projected.indices { corrections[set][index] = shifted[index] - projected[index] }
                z = projected
            }
        }
        return z
    }
}
