import COpenBLAS
import TensorCore

/// The gamma-AuxPD physarum solver as a batched, differentiable layer: physarum
/// dynamics with the zero-cost perturbation gamma, as in Meng et al.,
/// "Physarum Powered Differentiable Linear Programming Layers and Applications".
///
/// Forward, for each problem of an `LPBatch` (m rows, n columns), in Float64:
/// 1. `c' = c` with every zero replaced by gamma (negative costs are rejected);
/// 2. `x = x0 > 0` (seeded uniform (0, 1) or a warm start);
/// 3. K times: `w = x / c'`, `L = A diag(w) A^T`, solve `L p = b` by Cholesky
///    (LAPACK dpotrf/dpotrs), `q = w * (A^T p)`, `x = clamp((1 - h) x + h q, eps, xmax)`.
///
/// The tape keeps, per iteration, the input x, the Cholesky factor of L, p and
/// the clamp pass mask. The backward runs the iterations in reverse order.
/// Problems are spread over `Parallel.forEach`; each problem's work is serial.
public struct PhysarumLayer: Sendable {
    public var options: PhysarumOptions

    public init(options: PhysarumOptions = PhysarumOptions()) {
        self.options = options
    }

    /// Solves every problem of `batch`.
    ///
    /// Throws `LPError` for non-finite input, a negative cost, invalid options
    /// or a rank-deficient A. The first iteration's factorisation raises the
    /// suspicion: a pivot whose square is below 1e-12 of its diagonal entry, or
    /// a failed factorisation. A factorisation of `A A^T` then confirms it, so a
    /// warm start with tiny entries on a full-rank A is not rejected.
    /// Other numerical trouble (a non-finite iterate, a factorisation that fails
    /// after the first iteration) is reported in the problem's `LPDiagnostics`
    /// instead of thrown.
    ///
    /// With `recordingTape` false the tape keeps no per-iteration state (for
    /// inference and evaluation: a 1000-problem matching batch at K = 100 would
    /// otherwise record 2.4 GB), and `backward` rejects it.
    public func forward(_ batch: LPBatch, recordingTape: Bool = true) throws -> PhysarumForward {
        try options.validate(count: batch.count, columns: batch.columns)
        try batch.validateEntries()

        let (count, m, n) = (batch.count, batch.rows, batch.columns)
        let tape = PhysarumTape(batch: batch, options: options, recording: recordingTape)
        var solutions = options.startPoints(count: count, columns: n)
        var diagnostics = [LPDiagnostics](
            repeating: LPDiagnostics(relativeResidual: 0, objective: 0, clampedCount: 0, smallestEntry: 0,
                                     hasNonFinite: false, factorizationFailed: false, completedIterations: 0),
            count: count)
        var rankFailures = [Int](repeating: -1, count: count)

        solutions.withUnsafeMutableBufferPointer { solutions in
            diagnostics.withUnsafeMutableBufferPointer { diagnostics in
                rankFailures.withUnsafeMutableBufferPointer { rankFailures in
                    let solutionsBase = solutions.baseAddress!
                    let diagnosticsBase = diagnostics.baseAddress!
                    let rankBase = rankFailures.baseAddress!
                    Parallel.forEach(count) { problem in
                        var workspace = ForwardWorkspace(rows: m, columns: n)
                        let outcome = solveOne(problem: problem, batch: batch, tape: tape,
                                               x: solutionsBase + problem * n, workspace: &workspace)
                        diagnosticsBase[problem] = outcome.diagnostics
                        rankBase[problem] = outcome.rankDeficientRow
                    }
                }
            }
        }

        if let problem = rankFailures.firstIndex(where: { $0 >= 0 }) {
            throw LPError.rankDeficient(problem: problem, row: rankFailures[problem])
        }
        tape.completedIterations = diagnostics.map { $0.completedIterations }
        return PhysarumForward(solutions: solutions, diagnostics: diagnostics, tape: tape)
    }

    /// Runs the K iterations of one problem in place on `x`.
    private func solveOne(problem: Int, batch: LPBatch, tape: PhysarumTape, x: UnsafeMutablePointer<Double>,
                          workspace: inout ForwardWorkspace) -> (diagnostics: LPDiagnostics, rankDeficientRow: Int) {
        let (m, n) = (batch.rows, batch.columns)
        let h = options.stepSize
        let (lower, upper) = (options.lowerClamp, options.upperClamp)
        let sparse = batch.constraints.withUnsafeBufferPointer {
            SparseColumns(rows: m, columns: n, rowMajor: $0.baseAddress! + problem * m * n)
        }
        tape.sparseColumns[problem] = sparse
        let cost = tape.perturbedCosts + problem * n
        let b = batch.rightHandSides.withUnsafeBufferPointer { Array($0[(problem * m)..<((problem + 1) * m)]) }
        var completed = 0
        var hasNonFinite = false
        var factorizationFailed = false
        var rankDeficientRow = -1

        workspace.withPointers { w, t, diagonal in
            for iteration in 0..<options.iterations {
                let xSaved = tape.iterate(problem: problem, iteration: iteration)
                let factor = tape.factor(problem: problem, iteration: iteration)
                let p = tape.multiplier(problem: problem, iteration: iteration)
                let mask = tape.passMask(problem: problem, iteration: iteration)
                xSaved.update(from: x, count: n)

                for k in 0..<n { w[k] = x[k] / cost[k] }
                sparse.assembleNormalMatrix(weights: w, into: factor)
                for r in 0..<m { diagonal[r] = factor[r * m + r] }
                // An overflowing weight x / c' (a subnormal cost, say) is a numerical
                // failure, not a rank defect, so it is flagged before factorising.
                guard (0..<m).allSatisfy({ diagonal[$0].isFinite }) else {
                    hasNonFinite = true
                    break
                }
                let info = choleskyFactor(factor, order: m)
                let suspicious = info != 0
                    || (iteration == 0 && (0..<m).contains { factor[$0 * m + $0] * factor[$0 * m + $0] <= 1e-12 * diagonal[$0] })
                if suspicious {
                    // A tiny or failed pivot comes from a rank-deficient A or from a badly
                    // conditioned weighting (a warm start near a degenerate vertex, or
                    // entries at the clamp). Only A itself can tell the two apart.
                    if iteration == 0, let row = sparse.rankDefectRow(scratch: factor) {
                        rankDeficientRow = row
                        break
                    }
                    if info != 0 {
                        factorizationFailed = true
                        break
                    }
                    // A has full row rank, so the small pivot comes from conditioning.
                    // The check overwrote the factor, so factorise again.
                    sparse.assembleNormalMatrix(weights: w, into: factor)
                    _ = choleskyFactor(factor, order: m)
                }
                for r in 0..<m { p[r] = b[r] }
                choleskySolve(factor, order: m, rightHandSide: p)
                sparse.multiplyTransposed(p, into: t)

                var finite = true
                for k in 0..<n {
                    let proposed = (1 - h) * x[k] + h * w[k] * t[k]
                    if !proposed.isFinite { finite = false }
                    mask[k] = (proposed > lower && proposed < upper) ? 1 : 0
                    w[k] = min(max(proposed, lower), upper)
                }
                guard finite else {
                    hasNonFinite = true
                    break
                }
                x.update(from: w, count: n)
                completed += 1
            }
        }

        let diagnostics = measure(x: x, problem: problem, batch: batch, sparse: sparse, b: b,
                                  completed: completed, hasNonFinite: hasNonFinite,
                                  factorizationFailed: factorizationFailed)
        return (diagnostics, rankDeficientRow)
    }

    private func measure(x: UnsafeMutablePointer<Double>, problem: Int, batch: LPBatch, sparse: SparseColumns,
                         b: [Double], completed: Int, hasNonFinite: Bool, factorizationFailed: Bool) -> LPDiagnostics {
        let (m, n) = (batch.rows, batch.columns)
        var product = [Double](repeating: 0, count: m)
        product.withUnsafeMutableBufferPointer { sparse.multiply(x, into: $0.baseAddress!) }
        var residual = 0.0
        var bNorm = 0.0
        for r in 0..<m {
            residual += (product[r] - b[r]) * (product[r] - b[r])
            bNorm += b[r] * b[r]
        }
        residual = residual.squareRoot()
        bNorm = bNorm.squareRoot()
        var objective = 0.0
        var clamped = 0
        var smallest = Double.infinity
        var nonFinite = hasNonFinite
        batch.costs.withUnsafeBufferPointer { costs in
            for k in 0..<n {
                objective += costs[problem * n + k] * x[k]
                if x[k] <= options.lowerClamp || x[k] >= options.upperClamp { clamped += 1 }
                smallest = min(smallest, x[k])
                if !x[k].isFinite { nonFinite = true }
            }
        }
        return LPDiagnostics(relativeResidual: bNorm > 0 ? residual / bNorm : residual, objective: objective,
                             clampedCount: clamped, smallestEntry: smallest, hasNonFinite: nonFinite,
                             factorizationFailed: factorizationFailed, completedIterations: completed)
    }

    /// Back-propagates `dSolutions` (dLoss/dx, count x n) through the unrolled
    /// iterations recorded in `tape`.
    ///
    /// Per iteration, in reverse, with `t = A^T p`, `v = w * h * g` and
    /// `u = L^{-1} (A v)` (g the clamp-masked incoming gradient):
    /// `dA += p (v - w * A^T u)^T - u (w * t)^T`, `db += u`,
    /// `dw = h g * t - (A^T u) * t`, `dx_prev = (1 - h) g + dw / c'`,
    /// `dc += -dw * x / c'^2`. The gradient of a zero cost is the gradient
    /// of its perturbed value gamma. Problems whose solve stopped early are
    /// differentiated through the iterations they completed.
    public func backward(tape: PhysarumTape, dSolutions: [Double]) throws -> LPGradients {
        let batch = tape.batch
        let (count, m, n) = (batch.count, batch.rows, batch.columns)
        guard tape.isRecorded else { throw LPError.tapeNotRecorded }
        guard dSolutions.count == count * n else {
            throw LPError.tapeMismatch(field: "dSolutions", expected: count * n, actual: dSolutions.count)
        }
        var gradients = LPGradients(
            constraints: [Double](repeating: 0, count: count * m * n),
            rightHandSides: [Double](repeating: 0, count: count * m),
            costs: [Double](repeating: 0, count: count * n),
            start: dSolutions)
        let h = tape.options.stepSize

        gradients.constraints.withUnsafeMutableBufferPointer { dA in
            gradients.rightHandSides.withUnsafeMutableBufferPointer { db in
                gradients.costs.withUnsafeMutableBufferPointer { dc in
                    gradients.start.withUnsafeMutableBufferPointer { dx in
                        let (dABase, dbBase, dcBase, dxBase) = (dA.baseAddress!, db.baseAddress!, dc.baseAddress!, dx.baseAddress!)
                        Parallel.forEach(count) { problem in
                            let iterations = tape.completedIterations[problem]
                            guard iterations > 0, let sparse = tape.sparseColumns[problem] else { return }
                            backwardOne(problem: problem, iterations: iterations, tape: tape, sparse: sparse, h: h,
                                        dA: dABase + problem * m * n, db: dbBase + problem * m,
                                        dc: dcBase + problem * n, dx: dxBase + problem * n)
                        }
                    }
                }
            }
        }
        return gradients
    }

    private func backwardOne(problem: Int, iterations: Int, tape: PhysarumTape, sparse: SparseColumns, h: Double,
                             dA: UnsafeMutablePointer<Double>, db: UnsafeMutablePointer<Double>,
                             dc: UnsafeMutablePointer<Double>, dx: UnsafeMutablePointer<Double>) {
        let (m, n) = (tape.batch.rows, tape.batch.columns)
        let cost = tape.perturbedCosts + problem * n
        // dA is a sum of rank-one terms, two per iteration. Their factors are stacked
        // as rows (p_t and -u_t against v - w * s and w * t) and multiplied once.
        let left = UnsafeMutablePointer<Double>.allocate(capacity: 2 * iterations * m)
        let right = UnsafeMutablePointer<Double>.allocate(capacity: 2 * iterations * n)
        let scratch = UnsafeMutablePointer<Double>.allocate(capacity: 6 * n + m)
        defer {
            left.deallocate()
            right.deallocate()
            scratch.deallocate()
        }
        let (w, t, g, dw, v) = (scratch, scratch + n, scratch + 2 * n, scratch + 3 * n, scratch + 4 * n)
        let (s, u) = (scratch + 5 * n, scratch + 6 * n)

        for iteration in stride(from: iterations - 1, through: 0, by: -1) {
            let x = tape.iterate(problem: problem, iteration: iteration)
            let factor = tape.factor(problem: problem, iteration: iteration)
            let p = tape.multiplier(problem: problem, iteration: iteration)
            let mask = tape.passMask(problem: problem, iteration: iteration)

            for k in 0..<n {
                w[k] = x[k] / cost[k]
                g[k] = dx[k] * mask[k]
                v[k] = w[k] * h * g[k]
            }
            sparse.multiplyTransposed(p, into: t)
            sparse.multiply(v, into: u)
            choleskySolve(factor, order: m, rightHandSide: u)
            sparse.multiplyTransposed(u, into: s)

            let row = 2 * iteration
            for r in 0..<m {
                db[r] += u[r]
                left[row * m + r] = p[r]
                left[(row + 1) * m + r] = -u[r]
            }
            for k in 0..<n {
                right[row * n + k] = v[k] - w[k] * s[k]
                right[(row + 1) * n + k] = w[k] * t[k]
                dw[k] = h * g[k] * t[k] - s[k] * t[k]
                dc[k] -= dw[k] * x[k] / (cost[k] * cost[k])
                dx[k] = (1 - h) * g[k] + dw[k] / cost[k]
            }
        }

        BLAS.dgemm(transposeA: true, m: m, n: n, k: 2 * iterations, a: left, lda: m, b: right, ldb: n,
                   beta: 0, c: dA, ldc: n)
    }
}

/// The result of `PhysarumLayer.forward`.
public struct PhysarumForward: Sendable {
    /// Solutions, count x columns.
    public var solutions: [Double]
    /// One entry per problem.
    public var diagnostics: [LPDiagnostics]
    /// The recorded state for `backward`.
    public let tape: PhysarumTape
}

/// Gradients of a loss with respect to the LP inputs, in the batch's layout.
public struct LPGradients: Sendable {
    /// dLoss/dA, count x rows x columns (dense: structural zeros of A get gradients too).
    public var constraints: [Double]
    /// dLoss/db, count x rows.
    public var rightHandSides: [Double]
    /// dLoss/dc, count x columns.
    public var costs: [Double]
    /// dLoss/dx0 for the start point, count x columns.
    public var start: [Double]
}

/// Per-problem scratch buffers of the forward.
struct ForwardWorkspace {
    var storage: [Double]
    let rows: Int
    let columns: Int

    init(rows: Int, columns: Int) {
        self.rows = rows
        self.columns = columns
        storage = [Double](repeating: 0, count: 2 * columns + rows)
    }

    mutating func withPointers(_ body: (UnsafeMutablePointer<Double>, UnsafeMutablePointer<Double>, UnsafeMutablePointer<Double>) -> Void) {
        let n = columns
        storage.withUnsafeMutableBufferPointer { buffer in
            let base = buffer.baseAddress!
            body(base, base + n, base + 2 * n)
        }
    }
}

/// Factors the column-major m x m matrix in place (lower Cholesky factor);
/// returns LAPACK's info (0 on success, i > 0 when the leading minor of order i is not positive).
func choleskyFactor(_ matrix: UnsafeMutablePointer<Double>, order: Int) -> Int {
    var n = Int32(order)
    var lda = Int32(order)
    var info: Int32 = 0
    var uplo = CChar(UInt8(ascii: "L"))
    dpotrf_(&uplo, &n, matrix, &lda, &info)
    return Int(info)
}

/// Solves `L L^T y = rhs` in place with a factor from `choleskyFactor`, by two
/// triangular solves (cblas_dtrsv); for one right-hand side this skips the
/// packing that dpotrs's Level-3 path does, which dominates at m = 40.
func choleskySolve(_ factor: UnsafePointer<Double>, order: Int, rightHandSide: UnsafeMutablePointer<Double>) {
    let n = blasint(order)
    cblas_dtrsv(CblasColMajor, CblasLower, CblasNoTrans, CblasNonUnit, n, factor, n, rightHandSide, 1)
    cblas_dtrsv(CblasColMajor, CblasLower, CblasTrans, CblasNonUnit, n, factor, n, rightHandSide, 1)
}
