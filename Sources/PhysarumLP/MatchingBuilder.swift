/// Builds bipartite matching LPs (n templates, m proposals, n <= m) in standard form:
/// minimise `tr(C X^T) + gamma 1^T s` subject to `X 1_m = 1_n`,
/// `X^T 1_n + s = 1_m`, `X, s >= 0`.
///
/// Variables: `vec(X)` row-major (n x m) then the slack s (m), n * m + m in all.
/// Rows: the n row sums of X, then the m column sums plus slack. The slack
/// costs are left at zero, so the layer's zero-cost perturbation gamma prices
/// them (`X^T 1 <= 1` is what the slack encodes).
///
/// Negative costs: the LP constrains every row of X to sum to 1, so adding a
/// constant to all costs of a row shifts the objective by that constant and
/// leaves the optimal X unchanged. A row whose smallest cost is negative is
/// shifted by `-min + (max - min) / m`, which makes its smallest cost
/// `(max - min) / m` (as small, relative to the row's range, as the smallest of
/// m uniform costs is expected to be), or by `1 - min` if the row is constant.
public struct MatchingBuilder: Sendable {
    public let templates: Int
    public let proposals: Int

    public init(templates: Int, proposals: Int) {
        precondition(templates >= 1 && proposals >= templates,
                     "matching needs 1 <= templates <= proposals, got \(templates) and \(proposals)")
        self.templates = templates
        self.proposals = proposals
    }

    public var columns: Int { templates * proposals + proposals }
    public var rows: Int { templates + proposals }

    /// A matching LP batch and the cost shifts applied to make its costs non-negative.
    public struct Batch: Sendable {
        public var batch: LPBatch
        /// The constant added to every cost of each row of X, count x n (zero for rows with no negative cost).
        public var rowShifts: [Double]
        /// Subtract from the LP objective (the layer's `objective` diagnostic) to get `tr(C X^T)`
        /// with the caller's costs.
        public var objectiveOffsets: [Double]
    }

    /// Builds one LP per cost matrix (count x n x m, row-major).
    public func makeBatch(costs: [Double]) throws -> Batch {
        let (n, m) = (templates, proposals)
        guard costs.count % (n * m) == 0, !costs.isEmpty else {
            throw LPError.shapeMismatch(field: "matching costs", expected: n * m, actual: costs.count)
        }
        if let index = costs.firstIndex(where: { !$0.isFinite }) {
            throw LPError.nonFiniteInput(field: "matching costs", problem: index / (n * m), index: index % (n * m),
                                         value: costs[index])
        }
        let count = costs.count / (n * m)
        let (rows, columns) = (self.rows, self.columns)
        var a = [Double](repeating: 0, count: count * rows * columns)
        let b = [Double](repeating: 1, count: count * rows)
        var c = [Double](repeating: 0, count: count * columns)
        var shifts = [Double](repeating: 0, count: count * n)
        var offsets = [Double](repeating: 0, count: count)
        for problem in 0..<count {
            let aBase = problem * rows * columns
            for i in 0..<n {
                for j in 0..<m {
                    a[aBase + i * columns + i * m + j] = 1
                    a[aBase + (n + j) * columns + i * m + j] = 1
                }
                let row = Array(costs[(problem * n * m + i * m)..<(problem * n * m + (i + 1) * m)])
                let shift = Self.rowShift(row)
                shifts[problem * n + i] = shift
                offsets[problem] += shift
                for j in 0..<m {
                    c[problem * columns + i * m + j] = row[j] + shift
                }
            }
            for j in 0..<m {
                a[aBase + (n + j) * columns + n * m + j] = 1
            }
        }
        let batch = try LPBatch(count: count, rows: rows, columns: columns, constraints: a, rightHandSides: b, costs: c)
        return Batch(batch: batch, rowShifts: shifts, objectiveOffsets: offsets)
    }

    static func rowShift(_ row: [Double]) -> Double {
        let smallest = row.min()!
        guard smallest < 0 else { return 0 }
        let largest = row.max()!
        return largest > smallest ? -smallest + (largest - smallest) / Double(row.count) : 1 - smallest
    }

    /// Backward of `makeBatch`: maps dLoss/dc of the LP (count x (n m + m)) to
    /// dLoss/dC (count x n x m), including the dependence of each row's shift on
    /// that row's smallest and largest cost.
    public func dCosts(dLPCosts: [Double], costs: [Double]) -> [Double] {
        let (n, m, columns) = (templates, proposals, self.columns)
        let count = costs.count / (n * m)
        precondition(dLPCosts.count == count * columns, "dLPCosts needs count x \(columns) entries, got \(dLPCosts.count)")
        var dC = [Double](repeating: 0, count: count * n * m)
        for problem in 0..<count {
            for i in 0..<n {
                let base = problem * n * m + i * m
                var rowSum = 0.0
                for j in 0..<m {
                    dC[base + j] = dLPCosts[problem * columns + i * m + j]
                    rowSum += dC[base + j]
                }
                let row = Array(costs[base..<(base + m)])
                guard row.min()! < 0 else { continue }
                let argmin = row.firstIndex(of: row.min()!)!
                let argmax = row.firstIndex(of: row.max()!)!
                if argmin == argmax || row.max()! == row.min()! {
                    dC[base + argmin] -= rowSum
                } else {
                    dC[base + argmin] += rowSum * (-1 - 1 / Double(m))
                    dC[base + argmax] += rowSum / Double(m)
                }
            }
        }
        return dC
    }

    /// The assignment matrix X (count x n x m) from LP solutions (count x (n m + m)).
    public func assignments(fromSolutions solutions: [Double]) -> [Double] {
        let (n, m, columns) = (templates, proposals, self.columns)
        let count = solutions.count / columns
        var x = [Double](repeating: 0, count: count * n * m)
        for problem in 0..<count {
            for index in 0..<(n * m) {
                x[problem * n * m + index] = solutions[problem * columns + index]
            }
        }
        return x
    }
}
