/// Builds the l1-normalised SVM (Hess and Brooks' ramp-loss l1-SVM, in the
/// form used by the physarum LP layer for few-shot heads) as standard-form LPs,
/// and carries gradients between the LP and the kernel matrices.
///
/// For one binary problem with n support points, labels y in {+1, -1}, kernel
/// K (n x n) and `H_ij = K_ij y_j`, the variables (all >= 0) are, in order:
/// `alpha1 (n), alpha2 (n), s (n), b1, b2, xi (n), z (n), l (n), p (n), q (n), r (n)`,
/// 9n + 2 in all. With `u = alpha1 - alpha2` and `beta = b1 - b2` the 4n rows are,
/// for i in 0..<n, in four blocks of n:
/// - rows 0..<n, margin: `y_i (H u)_i + y_i beta + xi_i - M z_i - l_i = 1`
///   (`+ M z_i` with `zSign = .relaxesMargin`);
/// - rows n..<2n: `(H u)_i - s_i + p_i = 0`;
/// - rows 2n..<3n: `(H u)_i + s_i - q_i = 0` (together, `s_i >= |(H u)_i|`);
/// - rows 3n..<4n: `z_i + r_i = 1`.
/// Costs: s 1, xi C, z 2C, all other variables 0 (the layer perturbs them to gamma).
/// A has full row rank because l, p, q and r give every row its own column.
///
/// The decision value at a point x is `f(x) = sum_j y_j K(x, x_j) u_j + beta`.
/// With C = 1 and as many positive as negative points the trivial classifier
/// (u = 0, beta = 0, xi = 1) is optimal, and with gamma > 0 it is the unique
/// optimum; any C > 1 makes real classifiers strictly better.
public struct L1SVMBuilder: Sendable {
    /// The sign of the z term in the margin rows.
    public enum ZSign: String, Sendable {
        /// `- M z_i`, as the LP is printed in the physarum LP paper: z only raises
        /// the required margin at cost 2C, so z = 0 at every optimum.
        case raisesMargin
        /// `+ M z_i`: z relaxes the margin, as in Hess and Brooks' ramp loss.
        case relaxesMargin
    }

    /// Penalty C on the hinge slack xi (z costs 2C).
    public var penalty: Double
    /// M, the margin shift that z buys.
    public var marginShift: Double
    public var zSign: ZSign
    /// Support points per problem (n).
    public let supportCount: Int

    public init(supportCount: Int, penalty: Double = 1.0, marginShift: Double = 0.001, zSign: ZSign = .raisesMargin) {
        precondition(supportCount >= 1, "an l1-SVM needs at least one support point, got \(supportCount)")
        self.supportCount = supportCount
        self.penalty = penalty
        self.marginShift = marginShift
        self.zSign = zSign
    }

    /// Variables per LP: 9n + 2.
    public var columns: Int { 9 * supportCount + 2 }
    /// Rows per LP: 4n.
    public var rows: Int { 4 * supportCount }

    // Column offsets of the variable blocks.
    var alpha1: Int { 0 }
    var alpha2: Int { supportCount }
    var sColumn: Int { 2 * supportCount }
    var b1: Int { 3 * supportCount }
    var b2: Int { 3 * supportCount + 1 }
    var xi: Int { 3 * supportCount + 2 }
    var z: Int { 4 * supportCount + 2 }
    var l: Int { 5 * supportCount + 2 }
    var p: Int { 6 * supportCount + 2 }
    var q: Int { 7 * supportCount + 2 }
    var r: Int { 8 * supportCount + 2 }

    /// Builds one LP per problem from kernels (count x n x n, row-major) and
    /// labels (count x n, each +1 or -1).
    public func makeBatch(kernels: [Double], labels: [Double]) throws -> LPBatch {
        let n = supportCount
        guard labels.count % n == 0, labels.count > 0 else {
            throw LPError.shapeMismatch(field: "labels", expected: n, actual: labels.count)
        }
        let count = labels.count / n
        guard kernels.count == count * n * n else {
            throw LPError.shapeMismatch(field: "kernels", expected: count * n * n, actual: kernels.count)
        }
        if let index = labels.firstIndex(where: { $0 != 1 && $0 != -1 }) {
            throw LPError.invalidLabel(problem: index / n, index: index % n, value: labels[index])
        }
        guard penalty.isFinite, penalty > 0 else {
            throw LPError.invalidOption(name: "penalty", value: penalty, expected: "a finite C > 0")
        }
        guard marginShift.isFinite, marginShift >= 0 else {
            throw LPError.invalidOption(name: "marginShift", value: marginShift, expected: "a finite M >= 0")
        }

        let (m, columns) = (rows, self.columns)
        var a = [Double](repeating: 0, count: count * m * columns)
        var b = [Double](repeating: 0, count: count * m)
        var c = [Double](repeating: 0, count: count * columns)
        let zCoefficient = zSign == .raisesMargin ? -marginShift : marginShift
        for problem in 0..<count {
            let aBase = problem * m * columns
            let y = problem * n
            let kBase = problem * n * n
            for i in 0..<n {
                let yi = labels[y + i]
                let margin = aBase + i * columns
                let lowerRow = aBase + (n + i) * columns
                let upperRow = aBase + (2 * n + i) * columns
                let zRow = aBase + (3 * n + i) * columns
                for j in 0..<n {
                    let hij = kernels[kBase + i * n + j] * labels[y + j]
                    a[margin + alpha1 + j] = yi * hij
                    a[margin + alpha2 + j] = -yi * hij
                    a[lowerRow + alpha1 + j] = hij
                    a[lowerRow + alpha2 + j] = -hij
                    a[upperRow + alpha1 + j] = hij
                    a[upperRow + alpha2 + j] = -hij
                }
                a[margin + b1] = yi
                a[margin + b2] = -yi
                a[margin + xi + i] = 1
                a[margin + z + i] = zCoefficient
                a[margin + l + i] = -1
                a[lowerRow + sColumn + i] = -1
                a[lowerRow + p + i] = 1
                a[upperRow + sColumn + i] = 1
                a[upperRow + q + i] = -1
                a[zRow + z + i] = 1
                a[zRow + r + i] = 1
                b[problem * m + i] = 1
                b[problem * m + 3 * n + i] = 1
                c[problem * columns + sColumn + i] = 1
                c[problem * columns + xi + i] = penalty
                c[problem * columns + z + i] = 2 * penalty
            }
        }
        return try LPBatch(count: count, rows: m, columns: columns, constraints: a, rightHandSides: b, costs: c)
    }

    /// Extracts `u = alpha1 - alpha2` (count x n) and `beta = b1 - b2` (count) from LP solutions (count x (9n + 2)).
    public func classifiers(fromSolutions solutions: [Double]) -> (coefficients: [Double], biases: [Double]) {
        let (n, columns) = (supportCount, self.columns)
        precondition(solutions.count % columns == 0, "l1-SVM solutions need a multiple of \(columns) entries, got \(solutions.count)")
        let count = solutions.count / columns
        var coefficients = [Double](repeating: 0, count: count * n)
        var biases = [Double](repeating: 0, count: count)
        for problem in 0..<count {
            let base = problem * columns
            for j in 0..<n {
                coefficients[problem * n + j] = solutions[base + alpha1 + j] - solutions[base + alpha2 + j]
            }
            biases[problem] = solutions[base + b1] - solutions[base + b2]
        }
        return (coefficients, biases)
    }

    /// Backward of `classifiers(fromSolutions:)`: maps dLoss/du (count x n) and
    /// dLoss/dbeta (count) to dLoss/dx (count x (9n + 2)).
    public func dSolutions(dCoefficients: [Double], dBiases: [Double]) -> [Double] {
        let (n, columns) = (supportCount, self.columns)
        let count = dBiases.count
        precondition(dCoefficients.count == count * n, "dCoefficients needs count x n = \(count * n) entries, got \(dCoefficients.count)")
        var dx = [Double](repeating: 0, count: count * columns)
        for problem in 0..<count {
            let base = problem * columns
            for j in 0..<n {
                dx[base + alpha1 + j] = dCoefficients[problem * n + j]
                dx[base + alpha2 + j] = -dCoefficients[problem * n + j]
            }
            dx[base + b1] = dBiases[problem]
            dx[base + b2] = -dBiases[problem]
        }
        return dx
    }

    /// Backward of `makeBatch`: maps dLoss/dA (count x 4n x (9n + 2)) to
    /// dLoss/dK (count x n x n). Every entry `K_ij` is treated as its own input,
    /// so the result is not symmetrised; b and c do not depend on K.
    public func dKernels(dConstraints: [Double], labels: [Double]) -> [Double] {
        let (n, m, columns) = (supportCount, rows, self.columns)
        let count = labels.count / n
        precondition(dConstraints.count == count * m * columns,
                     "dConstraints needs count x \(m) x \(columns) = \(count * m * columns) entries, got \(dConstraints.count)")
        var dK = [Double](repeating: 0, count: count * n * n)
        for problem in 0..<count {
            let aBase = problem * m * columns
            for i in 0..<n {
                let yi = labels[problem * n + i]
                let margin = aBase + i * columns
                let lowerRow = aBase + (n + i) * columns
                let upperRow = aBase + (2 * n + i) * columns
                for j in 0..<n {
                    let yj = labels[problem * n + j]
                    let dH = yi * (dConstraints[margin + alpha1 + j] - dConstraints[margin + alpha2 + j])
                        + dConstraints[lowerRow + alpha1 + j] - dConstraints[lowerRow + alpha2 + j]
                        + dConstraints[upperRow + alpha1 + j] - dConstraints[upperRow + alpha2 + j]
                    dK[problem * n * n + i * n + j] = dH * yj
                }
            }
        }
        return dK
    }
}
