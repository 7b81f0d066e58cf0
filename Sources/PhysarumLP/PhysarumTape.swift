/// The state `PhysarumLayer.forward` keeps for the backward, per problem and iteration:
/// the iterate x before the iteration (n), the lower Cholesky factor of
/// `A diag(x / c') A^T` (m x m, column-major), the multiplier p (m) and the
/// clamp pass mask (n; 1 where eps < pre-clamp value < xmax).
///
/// Memory: count x K x (m^2 + m + 2n) Float64 values, 143 KB per l1-SVM LP
/// (m = 40, n = 92) at K = 10. A forward without recording keeps one iteration's
/// worth per problem as scratch, and its tape cannot be differentiated.
public final class PhysarumTape: @unchecked Sendable {
    /// The batch as given (costs before perturbation).
    public let batch: LPBatch
    public let options: PhysarumOptions
    /// Whether every iteration was kept, so that `PhysarumLayer.backward` can use this tape.
    public let isRecorded: Bool
    private let storedIterations: Int
    /// Iterations each problem completed.
    public internal(set) var completedIterations: [Int]
    let perturbedCosts: UnsafeMutablePointer<Double>
    /// Each problem's A in sparse form with its assembly plan, written by its forward
    /// worker (a raw buffer so that workers can store distinct entries concurrently).
    let sparseColumns: UnsafeMutablePointer<SparseColumns?>
    private let iterates: UnsafeMutablePointer<Double>
    private let factors: UnsafeMutablePointer<Double>
    private let multipliers: UnsafeMutablePointer<Double>
    private let passMasks: UnsafeMutablePointer<Double>

    init(batch: LPBatch, options: PhysarumOptions, recording: Bool) {
        self.batch = batch
        self.options = options
        isRecorded = recording
        storedIterations = recording ? options.iterations : 1
        let (count, m, n, iterations) = (batch.count, batch.rows, batch.columns, storedIterations)
        completedIterations = [Int](repeating: 0, count: count)
        sparseColumns = .allocate(capacity: count)
        sparseColumns.initialize(repeating: nil, count: count)
        perturbedCosts = .allocate(capacity: count * n)
        for index in 0..<(count * n) {
            let cost = batch.costs[index]
            perturbedCosts[index] = cost == 0 ? options.zeroCostPerturbation : cost
        }
        iterates = .allocate(capacity: count * iterations * n)
        factors = .allocate(capacity: count * iterations * m * m)
        multipliers = .allocate(capacity: count * iterations * m)
        passMasks = .allocate(capacity: count * iterations * n)
    }

    deinit {
        sparseColumns.deinitialize(count: batch.count)
        sparseColumns.deallocate()
        perturbedCosts.deallocate()
        iterates.deallocate()
        factors.deallocate()
        multipliers.deallocate()
        passMasks.deallocate()
    }

    func iterate(problem: Int, iteration: Int) -> UnsafeMutablePointer<Double> {
        iterates + (problem * storedIterations + (isRecorded ? iteration : 0)) * batch.columns
    }

    func factor(problem: Int, iteration: Int) -> UnsafeMutablePointer<Double> {
        factors + (problem * storedIterations + (isRecorded ? iteration : 0)) * batch.rows * batch.rows
    }

    func multiplier(problem: Int, iteration: Int) -> UnsafeMutablePointer<Double> {
        multipliers + (problem * storedIterations + (isRecorded ? iteration : 0)) * batch.rows
    }

    func passMask(problem: Int, iteration: Int) -> UnsafeMutablePointer<Double> {
        passMasks + (problem * storedIterations + (isRecorded ? iteration : 0)) * batch.columns
    }
}
