import COpenBLAS
import TensorCore

/// Ridge regression in closed dual form (MetaOptNet-RR, Bertinetto et al.'s R2-D2):
/// per episode with support S [S, D], one-hot labels Y [S, way] and query Q [Q, D],
///
///     alpha  = (S S^T + lambda I)^-1 Y          [S, way]
///     logits = scale * (Q S^T) alpha            [Q, way]
///
/// The S x S system is solved by Cholesky (LAPACK `dpotrf`/`dpotrs`), which
/// works because `S S^T + lambda I` is symmetric positive definite for lambda > 0.
/// Forward keeps `alpha`, the Cholesky factor and `Q S^T` for backward.
public final class RidgeHead: FewShotHead {
    public let kind = "ridge"
    public let lambda: Double
    private var scaling: LogitScaling
    private var batch: EpisodeEmbeddings?
    private var factors: [Double] = []
    private var alphas: [Double] = []
    private var queryKernels: [Double] = []

    public var scale: Double {
        get { scaling.scale }
        set { scaling.scale = newValue }
    }
    public var dScale: Double { scaling.dScale }

    public init(lambda: Double = 50, scale: Double = 1) {
        precondition(lambda > 0, "RidgeHead needs lambda > 0, got \(lambda)")
        self.lambda = lambda
        scaling = LogitScaling(scale: scale)
    }

    public func forward(_ batch: EpisodeEmbeddings) throws -> (logits: [Double], diagnostics: HeadDiagnostics) {
        let (e, s, q, d, way) = (batch.episodeCount, batch.supportCount, batch.queryCount, batch.dimension, batch.way)
        var factors = [Double](repeating: 0, count: e * s * s)
        var alphas = [Double](repeating: 0, count: e * s * way)
        var queryKernels = [Double](repeating: 0, count: e * q * s)
        var unscaled = [Double](repeating: 0, count: e * q * way)

        for episode in 0..<e {
            let present = Set(batch.supportLabels[(episode * s)..<((episode + 1) * s)])
            if let missing = (0..<way).first(where: { !present.contains($0) }) {
                throw HeadError.missingClass(episode: episode, label: missing)
            }
            batch.support.withUnsafeBufferPointer { support in
                batch.query.withUnsafeBufferPointer { query in
                    factors.withUnsafeMutableBufferPointer { factor in
                        queryKernels.withUnsafeMutableBufferPointer { kernel in
                            let supportBase = support.baseAddress! + episode * s * d
                            // G = S S^T + lambda I
                            BLAS.dgemm(transposeB: true, m: s, n: s, k: d, a: supportBase, lda: d,
                                       b: supportBase, ldb: d, c: factor.baseAddress! + episode * s * s, ldc: s)
                            // K_qs = Q S^T
                            BLAS.dgemm(transposeB: true, m: q, n: s, k: d, a: query.baseAddress! + episode * q * d, lda: d,
                                       b: supportBase, ldb: d, c: kernel.baseAddress! + episode * q * s, ldc: s)
                        }
                    }
                }
            }
            for i in 0..<s { factors[episode * s * s + i * s + i] += lambda }
            guard factors[(episode * s * s)..<((episode + 1) * s * s)].allSatisfy(\.isFinite),
                  queryKernels[(episode * q * s)..<((episode + 1) * q * s)].allSatisfy(\.isFinite)
            else {
                throw HeadError.nonFiniteEmbeddings(episode: episode)
            }

            // Columns of B (column-major, S x way) are the one-hot label columns.
            var rightHandSide = [Double](repeating: 0, count: s * way)
            for i in 0..<s { rightHandSide[batch.supportLabels[episode * s + i] * s + i] = 1 }
            guard choleskySolve(factors: &factors, offset: episode * s * s, n: s, rightHandSide: &rightHandSide, columns: way, factorize: true) else {
                throw HeadError.factorizationFailed(episode: episode)
            }
            for i in 0..<s {
                for c in 0..<way { alphas[episode * s * way + i * way + c] = rightHandSide[c * s + i] }
            }

            alphas.withUnsafeBufferPointer { alpha in
                queryKernels.withUnsafeBufferPointer { kernel in
                    unscaled.withUnsafeMutableBufferPointer { output in
                        BLAS.dgemm(m: q, n: way, k: s, a: kernel.baseAddress! + episode * q * s, lda: s,
                                   b: alpha.baseAddress! + episode * s * way, ldb: way,
                                   c: output.baseAddress! + episode * q * way, ldc: way)
                    }
                }
            }
        }

        self.batch = batch
        self.factors = factors
        self.alphas = alphas
        self.queryKernels = queryKernels
        return (scaling.forward(unscaled), HeadDiagnostics())
    }

    /// Backward, in the reverse order of forward:
    /// `dalpha = K_qs^T dZ`, `dK_qs = dZ alpha^T`; `beta = G^-1 dalpha`,
    /// `dG = -beta alpha^T`; then `dS = (dG + dG^T) S + dK_qs^T Q`, `dQ = dK_qs S`.
    public func backward(_ dLogits: [Double]) -> EmbeddingGradients {
        guard let batch else { preconditionFailure("RidgeHead.backward called before forward") }
        let (e, s, q, d, way) = (batch.episodeCount, batch.supportCount, batch.queryCount, batch.dimension, batch.way)
        let dUnscaled = scaling.backward(dLogits)
        var dSupport = [Double](repeating: 0, count: e * s * d)
        var dQuery = [Double](repeating: 0, count: e * q * d)

        for episode in 0..<e {
            var dAlpha = [Double](repeating: 0, count: s * way)
            var dKernel = [Double](repeating: 0, count: q * s)
            dUnscaled.withUnsafeBufferPointer { dZ in
                let dZBase = dZ.baseAddress! + episode * q * way
                queryKernels.withUnsafeBufferPointer { kernel in
                    BLAS.dgemm(transposeA: true, m: s, n: way, k: q, a: kernel.baseAddress! + episode * q * s, lda: s,
                               b: dZBase, ldb: way, c: &dAlpha, ldc: way)
                }
                alphas.withUnsafeBufferPointer { alpha in
                    BLAS.dgemm(transposeB: true, m: q, n: s, k: way, a: dZBase, lda: way,
                               b: alpha.baseAddress! + episode * s * way, ldb: way, c: &dKernel, ldc: s)
                }
            }

            // beta = G^-1 dalpha, solved column by column with the stored factor.
            var beta = [Double](repeating: 0, count: s * way)
            for i in 0..<s {
                for c in 0..<way { beta[c * s + i] = dAlpha[i * way + c] }
            }
            _ = choleskySolve(factors: &factors, offset: episode * s * s, n: s, rightHandSide: &beta, columns: way, factorize: false)

            // dG = -beta alpha^T (S x S), symmetrised because G = S S^T uses S twice.
            var dGram = [Double](repeating: 0, count: s * s)
            for i in 0..<s {
                for j in 0..<s {
                    var sum = 0.0
                    for c in 0..<way { sum += beta[c * s + i] * alphas[episode * s * way + j * way + c] }
                    dGram[i * s + j] -= sum
                    dGram[j * s + i] -= sum
                }
            }

            batch.support.withUnsafeBufferPointer { support in
                batch.query.withUnsafeBufferPointer { query in
                    dSupport.withUnsafeMutableBufferPointer { dS in
                        dQuery.withUnsafeMutableBufferPointer { dQ in
                            let supportBase = support.baseAddress! + episode * s * d
                            let queryBase = query.baseAddress! + episode * q * d
                            let dSBase = dS.baseAddress! + episode * s * d
                            BLAS.dgemm(m: s, n: d, k: s, a: dGram, lda: s, b: supportBase, ldb: d, c: dSBase, ldc: d)
                            BLAS.dgemm(transposeA: true, m: s, n: d, k: q, a: dKernel, lda: s, b: queryBase, ldb: d,
                                       beta: 1, c: dSBase, ldc: d)
                            BLAS.dgemm(m: q, n: d, k: s, a: dKernel, lda: s, b: supportBase, ldb: d,
                                       c: dQ.baseAddress! + episode * q * d, ldc: d)
                        }
                    }
                }
            }
        }
        return EmbeddingGradients(dSupport: dSupport, dQuery: dQuery)
    }
}

/// Solves `G X = B` for a symmetric positive definite `n x n` matrix stored at
/// `factors[offset...]`, factorizing it in place first when `factorize` is
/// true. `rightHandSide` contains `columns` column-major columns of length n.
/// Returns false when the factorization finds the matrix not positive definite.
func choleskySolve(factors: inout [Double], offset: Int, n: Int, rightHandSide: inout [Double], columns: Int, factorize: Bool) -> Bool {
    var uplo = Int8(UInt8(ascii: "L"))
    var size = Int32(n)
    var leading = Int32(n)
    var rightHandSides = Int32(columns)
    var info: Int32 = 0
    return factors.withUnsafeMutableBufferPointer { buffer in
        let matrix = buffer.baseAddress! + offset
        if factorize {
            dpotrf_(&uplo, &size, matrix, &leading, &info)
            guard info == 0 else { return false }
        }
        rightHandSide.withUnsafeMutableBufferPointer { b in
            dpotrs_(&uplo, &size, &rightHandSides, matrix, &leading, b.baseAddress!, &leading, &info)
        }
        return info == 0
    }
}
