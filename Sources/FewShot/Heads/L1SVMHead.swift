import PhysarumLP
import TensorCore

/// The pairwise l1-SVM head: for an N-way episode, one l1-normalised SVM per
/// class pair (a < b, class a labelled +1), each a linear program solved by the
/// gamma-AuxPD physarum layer and differentiated through its unrolled iterations.
///
/// Per episode, with support embeddings S [S, D] and query embeddings Q [Q, D]:
/// 1. optional scaling: divide S and Q by `r = max_i ||S_i||`, so every support
///    point has norm at most 1 as the physarum convergence analysis assumes
///    (r is differentiated too, through the support point that attains it);
/// 2. linear kernels `K_ss = S S^T` and `K_qs = Q S^T`;
/// 3. for each pair, the l1-SVM LP over the 2 * shot support points of the two
///    classes, built by `L1SVMBuilder` from the kernel block, solved by `PhysarumLayer`;
/// 4. decision values `f(q) = sum_j y_j K_qs[q, j] u_j + beta` with `u = alpha1 - alpha2`
///    and `beta = b1 - b2` from the LP solution;
/// 5. the unscaled logit of class c is the sum of `+f` over pairs where c is the
///    positive class and `-f` where it is the negative one, times `scale`.
///
/// Backward runs the steps in reverse. The logits give `df`, which reaches
/// `u`, `beta` and `K_qs`. The LP backward maps `du` and `dbeta` to `dA`, and
/// `L1SVMBuilder.dKernels` maps `dA` to each pair's kernel block. The kernel
/// gradients reach the embeddings through `K = X Y^T`, and the scaling step comes last.
///
/// NOTE: at the default 10 iterations the LP is far from solved (on random
/// separable 10-point problems with C = 10 the median relative objective gap
/// to HiGHS is about 0.94), so the head is a differentiable approximation of
/// the l1-SVM. `HeadDiagnostics` carries the LP residuals so a run shows them.
public final class L1SVMHead: FewShotHead {
    public let kind = "l1-svm"
    public let scalesEmbeddings: Bool
    public let penalty: Double
    public let marginShift: Double
    public let zSign: L1SVMBuilder.ZSign
    /// Iteration count, step size and gamma of the LP layer; its start point is set per forward from `startSeed`.
    public var layerOptions: PhysarumOptions
    /// Seed of the uniform (0, 1) LP start points of the next forward. The
    /// trainer sets it per step so that a resumed run draws the same start points.
    public var startSeed: UInt64

    private var scaling: LogitScaling
    private var saved: Saved?

    /// The values forward keeps for backward.
    private struct Saved {
        var batch: EpisodeEmbeddings
        var scaledSupport: [Double]
        var scaledQuery: [Double]
        /// Per episode: the norm divisor r and the index of the support point that attains it (-1 when unscaled).
        var divisors: [Double]
        var divisorIndices: [Int]
        var queryKernels: [Double]
        var pairs: [(positive: Int, negative: Int)]
        /// Per episode and pair: the support indices of the LP's n points, positives first.
        var pairSupportIndices: [[Int]]
        var labels: [Double]
        var builder: L1SVMBuilder
        var layer: PhysarumLayer
        var tape: PhysarumTape
        var coefficients: [Double]
        var biases: [Double]
    }

    public var scale: Double {
        get { scaling.scale }
        set { scaling.scale = newValue }
    }
    public var dScale: Double { scaling.dScale }

    public init(
        scalesEmbeddings: Bool = true, penalty: Double = 1, marginShift: Double = 0.001,
        zSign: L1SVMBuilder.ZSign = .raisesMargin, iterations: Int = 10, stepSize: Double = 1,
        gamma: Double = 0.1, scale: Double = 1, startSeed: UInt64 = 0
    ) {
        self.scalesEmbeddings = scalesEmbeddings
        self.penalty = penalty
        self.marginShift = marginShift
        self.zSign = zSign
        layerOptions = PhysarumOptions(iterations: iterations, stepSize: stepSize, zeroCostPerturbation: gamma)
        self.startSeed = startSeed
        scaling = LogitScaling(scale: scale)
    }

    /// Creates the head from a configuration's `head` section.
    public convenience init(config: TrainingConfig.HeadSection, scale: Double, seed: UInt64) {
        self.init(
            scalesEmbeddings: config.scaleEmbeddings, penalty: config.C, marginShift: config.M,
            zSign: config.zSign == "plus" ? .relaxesMargin : .raisesMargin,
            iterations: config.iterations, stepSize: config.stepSize, gamma: config.gamma,
            scale: scale, startSeed: seed)
    }

    public func forward(_ batch: EpisodeEmbeddings) throws -> (logits: [Double], diagnostics: HeadDiagnostics) {
        let (e, s, q, d, way) = (batch.episodeCount, batch.supportCount, batch.queryCount, batch.dimension, batch.way)

        // Support indices of each class, checked for equal shots.
        var classMembers: [[[Int]]] = []
        for episode in 0..<e {
            var members = [[Int]](repeating: [], count: way)
            for i in 0..<s { members[batch.supportLabels[episode * s + i]].append(i) }
            if let missing = members.firstIndex(where: \.isEmpty) {
                throw HeadError.missingClass(episode: episode, label: missing)
            }
            guard Set(members.map(\.count)).count == 1 else { throw HeadError.unequalShots(episode: episode) }
            classMembers.append(members)
        }
        let shot = s / way
        let n = 2 * shot

        // Step 1: scaling by the largest support norm.
        var scaledSupport = batch.support
        var scaledQuery = batch.query
        var divisors = [Double](repeating: 1, count: e)
        var divisorIndices = [Int](repeating: -1, count: e)
        if scalesEmbeddings {
            for episode in 0..<e {
                var largest = 0.0
                var largestIndex = -1
                for i in 0..<s {
                    let base = (episode * s + i) * d
                    var squared = 0.0
                    for k in 0..<d { squared += batch.support[base + k] * batch.support[base + k] }
                    if squared.squareRoot() > largest {
                        largest = squared.squareRoot()
                        largestIndex = i
                    }
                }
                guard largest > 0 else { continue }
                divisors[episode] = largest
                divisorIndices[episode] = largestIndex
                for index in (episode * s * d)..<((episode + 1) * s * d) { scaledSupport[index] /= largest }
                for index in (episode * q * d)..<((episode + 1) * q * d) { scaledQuery[index] /= largest }
            }
        }
        guard scaledSupport.allSatisfy(\.isFinite), scaledQuery.allSatisfy(\.isFinite) else {
            throw HeadError.nonFiniteEmbeddings(episode: 0)
        }

        // Step 2: kernels.
        var supportKernels = [Double](repeating: 0, count: e * s * s)
        var queryKernels = [Double](repeating: 0, count: e * q * s)
        for episode in 0..<e {
            gram(scaledSupport, offset: episode * s * d, rows: s, with: scaledSupport, offset: episode * s * d, rows: s,
                 dimension: d, into: &supportKernels, at: episode * s * s)
            gram(scaledQuery, offset: episode * q * d, rows: q, with: scaledSupport, offset: episode * s * d, rows: s,
                 dimension: d, into: &queryKernels, at: episode * q * s)
        }

        // Step 3: one LP per episode and class pair.
        var pairs: [(positive: Int, negative: Int)] = []
        for a in 0..<way {
            for b in (a + 1)..<way { pairs.append((a, b)) }
        }
        var pairSupportIndices: [[Int]] = []
        var kernels: [Double] = []
        var labels: [Double] = []
        kernels.reserveCapacity(e * pairs.count * n * n)
        for episode in 0..<e {
            for pair in pairs {
                let indices = classMembers[episode][pair.positive] + classMembers[episode][pair.negative]
                pairSupportIndices.append(indices)
                for i in indices {
                    for j in indices { kernels.append(supportKernels[episode * s * s + i * s + j]) }
                }
                labels += Array(repeating: 1, count: shot) + Array(repeating: -1, count: shot)
            }
        }
        let builder = L1SVMBuilder(supportCount: n, penalty: penalty, marginShift: marginShift, zSign: zSign)
        var options = layerOptions
        options.start = .random(seed: startSeed)
        let layer = PhysarumLayer(options: options)
        let solved: PhysarumForward
        do {
            solved = try layer.forward(try builder.makeBatch(kernels: kernels, labels: labels))
        } catch {
            throw HeadError.solverFailed(reason: "\(error)")
        }
        let (coefficients, biases) = builder.classifiers(fromSolutions: solved.solutions)

        // Steps 4 and 5: decision values and logits.
        var unscaled = [Double](repeating: 0, count: e * q * way)
        for episode in 0..<e {
            for (pairIndex, pair) in pairs.enumerated() {
                let problem = episode * pairs.count + pairIndex
                let indices = pairSupportIndices[problem]
                for j in 0..<q {
                    var value = biases[problem]
                    for (position, i) in indices.enumerated() {
                        value += labels[problem * n + position] * queryKernels[(episode * q + j) * s + i] * coefficients[problem * n + position]
                    }
                    unscaled[(episode * q + j) * way + pair.positive] += value
                    unscaled[(episode * q + j) * way + pair.negative] -= value
                }
            }
        }

        let residuals = solved.diagnostics.map(\.relativeResidual)
        let diagnostics = HeadDiagnostics(
            maximumResidual: residuals.max(),
            meanResidual: residuals.reduce(0, +) / Double(residuals.count),
            nonFinite: solved.diagnostics.contains { !$0.isUsable } || !unscaled.allSatisfy(\.isFinite))

        saved = Saved(
            batch: batch, scaledSupport: scaledSupport, scaledQuery: scaledQuery, divisors: divisors,
            divisorIndices: divisorIndices, queryKernels: queryKernels, pairs: pairs,
            pairSupportIndices: pairSupportIndices, labels: labels, builder: builder, layer: layer,
            tape: solved.tape, coefficients: coefficients, biases: biases)
        return (scaling.forward(unscaled), diagnostics)
    }

    public func backward(_ dLogits: [Double]) -> EmbeddingGradients {
        guard let saved else { preconditionFailure("L1SVMHead.backward called before forward") }
        let batch = saved.batch
        let (e, s, q, d, way) = (batch.episodeCount, batch.supportCount, batch.queryCount, batch.dimension, batch.way)
        let pairs = saved.pairs
        let n = saved.builder.supportCount
        let dUnscaled = scaling.backward(dLogits)

        // Steps 5 and 4: logits -> decision values -> u, beta and K_qs.
        var dCoefficients = [Double](repeating: 0, count: saved.coefficients.count)
        var dBiases = [Double](repeating: 0, count: saved.biases.count)
        var dQueryKernels = [Double](repeating: 0, count: e * q * s)
        for episode in 0..<e {
            for (pairIndex, pair) in pairs.enumerated() {
                let problem = episode * pairs.count + pairIndex
                let indices = saved.pairSupportIndices[problem]
                for j in 0..<q {
                    let row = (episode * q + j) * way
                    let dValue = dUnscaled[row + pair.positive] - dUnscaled[row + pair.negative]
                    dBiases[problem] += dValue
                    for (position, i) in indices.enumerated() {
                        let y = saved.labels[problem * n + position]
                        let kernelIndex = (episode * q + j) * s + i
                        dCoefficients[problem * n + position] += dValue * y * saved.queryKernels[kernelIndex]
                        dQueryKernels[kernelIndex] += dValue * y * saved.coefficients[problem * n + position]
                    }
                }
            }
        }

        // Step 3: through the LP to each pair's kernel block, then into K_ss.
        let dSolutions = saved.builder.dSolutions(dCoefficients: dCoefficients, dBiases: dBiases)
        // The tape and dSolutions come from this head's own forward, so their sizes agree.
        let lpGradients = try! saved.layer.backward(tape: saved.tape, dSolutions: dSolutions)
        let dPairKernels = saved.builder.dKernels(dConstraints: lpGradients.constraints, labels: saved.labels)
        var dSupportKernels = [Double](repeating: 0, count: e * s * s)
        for episode in 0..<e {
            for pairIndex in pairs.indices {
                let problem = episode * pairs.count + pairIndex
                let indices = saved.pairSupportIndices[problem]
                for (row, i) in indices.enumerated() {
                    for (column, j) in indices.enumerated() {
                        dSupportKernels[episode * s * s + i * s + j] += dPairKernels[problem * n * n + row * n + column]
                    }
                }
            }
        }

        // Step 2: K_ss = S S^T gives dS = (dK_ss + dK_ss^T) S; K_qs = Q S^T gives dS += dK_qs^T Q, dQ = dK_qs S.
        var dScaledSupport = [Double](repeating: 0, count: e * s * d)
        var dScaledQuery = [Double](repeating: 0, count: e * q * d)
        for episode in 0..<e {
            var symmetric = [Double](repeating: 0, count: s * s)
            for i in 0..<s {
                for j in 0..<s {
                    symmetric[i * s + j] = dSupportKernels[episode * s * s + i * s + j] + dSupportKernels[episode * s * s + j * s + i]
                }
            }
            saved.scaledSupport.withUnsafeBufferPointer { support in
                saved.scaledQuery.withUnsafeBufferPointer { query in
                    dQueryKernels.withUnsafeBufferPointer { dKernel in
                        dScaledSupport.withUnsafeMutableBufferPointer { dS in
                            dScaledQuery.withUnsafeMutableBufferPointer { dQ in
                                let supportBase = support.baseAddress! + episode * s * d
                                let dKernelBase = dKernel.baseAddress! + episode * q * s
                                let dSBase = dS.baseAddress! + episode * s * d
                                BLAS.dgemm(m: s, n: d, k: s, a: symmetric, lda: s, b: supportBase, ldb: d, c: dSBase, ldc: d)
                                BLAS.dgemm(transposeA: true, m: s, n: d, k: q, a: dKernelBase, lda: s,
                                           b: query.baseAddress! + episode * q * d, ldb: d, beta: 1, c: dSBase, ldc: d)
                                BLAS.dgemm(m: q, n: d, k: s, a: dKernelBase, lda: s, b: supportBase, ldb: d,
                                           c: dQ.baseAddress! + episode * q * d, ldc: d)
                            }
                        }
                    }
                }
            }
        }

        // Step 1: x_hat = x / r for every embedding, r = ||S_{i*}||:
        // dx = dx_hat / r, dr = -sum(dx_hat . x_hat) / r, dS_{i*} += dr * S_{i*} / r.
        var dSupport = dScaledSupport
        var dQuery = dScaledQuery
        for episode in 0..<e where saved.divisorIndices[episode] >= 0 {
            let r = saved.divisors[episode]
            var dr = 0.0
            for index in (episode * s * d)..<((episode + 1) * s * d) {
                dr -= dScaledSupport[index] * saved.scaledSupport[index] / r
                dSupport[index] = dScaledSupport[index] / r
            }
            for index in (episode * q * d)..<((episode + 1) * q * d) {
                dr -= dScaledQuery[index] * saved.scaledQuery[index] / r
                dQuery[index] = dScaledQuery[index] / r
            }
            let base = (episode * s + saved.divisorIndices[episode]) * d
            for k in 0..<d { dSupport[base + k] += dr * batch.support[base + k] / r }
        }
        return EmbeddingGradients(dSupport: dSupport, dQuery: dQuery)
    }
}

/// Writes `X Y^T` ([rowsX, rowsY]) into `output` at `at`, for row blocks of X and Y with D columns.
private func gram(
    _ x: [Double], offset xOffset: Int, rows xRows: Int, with y: [Double], offset yOffset: Int, rows yRows: Int,
    dimension: Int, into output: inout [Double], at outputOffset: Int
) {
    x.withUnsafeBufferPointer { x in
        y.withUnsafeBufferPointer { y in
            output.withUnsafeMutableBufferPointer { output in
                BLAS.dgemm(transposeB: true, m: xRows, n: yRows, k: dimension, a: x.baseAddress! + xOffset, lda: dimension,
                           b: y.baseAddress! + yOffset, ldb: dimension, c: output.baseAddress! + outputOffset, ldc: yRows)
            }
        }
    }
}
