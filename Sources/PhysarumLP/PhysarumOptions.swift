import TensorCore

/// Settings of one gamma-AuxPD forward solve.
public struct PhysarumOptions: Sendable {
    /// The start point of the iteration.
    public enum StartPoint: Sendable {
        /// Every entry uniform in (0, 1), drawn from `SeededRandom(seed:)` problem by problem.
        case random(seed: UInt64)
        /// One strictly positive start point per problem, count x columns.
        case warm([Double])
    }

    /// Number of physarum iterations K, unrolled for the backward.
    public var iterations: Int
    /// Step size h: `x = (1 - h) x + h q`. With h = 1 every iterate satisfies `A x = b` before the clamp.
    public var stepSize: Double
    /// Lower clamp eps; entries below it are raised to it so `A diag(x / c) A^T` stays positive definite.
    public var lowerClamp: Double
    /// Upper clamp; entries above it are lowered to it.
    public var upperClamp: Double
    /// gamma: every zero cost is replaced by this positive value before solving.
    /// It must be below (gap between best and second-best vertex) / (n * M) for a
    /// feasible set inside `[0, M]^n`, or the optimum can move.
    public var zeroCostPerturbation: Double
    /// The start point.
    public var start: StartPoint

    public init(iterations: Int = 10, stepSize: Double = 1, lowerClamp: Double = 1e-6, upperClamp: Double = 1e4,
                zeroCostPerturbation: Double = 1e-3, start: StartPoint = .random(seed: 0)) {
        self.iterations = iterations
        self.stepSize = stepSize
        self.lowerClamp = lowerClamp
        self.upperClamp = upperClamp
        self.zeroCostPerturbation = zeroCostPerturbation
        self.start = start
    }

    func validate(count: Int, columns: Int) throws {
        guard iterations >= 1 else {
            throw LPError.invalidOption(name: "iterations", value: Double(iterations), expected: "an integer >= 1")
        }
        guard stepSize.isFinite, stepSize > 0, stepSize <= 1 else {
            throw LPError.invalidOption(name: "stepSize", value: stepSize, expected: "a step size in (0, 1]")
        }
        guard lowerClamp.isFinite, lowerClamp > 0 else {
            throw LPError.invalidOption(name: "lowerClamp", value: lowerClamp, expected: "a finite value > 0")
        }
        guard upperClamp.isFinite, upperClamp > lowerClamp else {
            throw LPError.invalidOption(name: "upperClamp", value: upperClamp, expected: "a finite value above lowerClamp \(lowerClamp)")
        }
        guard zeroCostPerturbation.isFinite, zeroCostPerturbation > 0 else {
            throw LPError.invalidOption(name: "zeroCostPerturbation", value: zeroCostPerturbation, expected: "a finite gamma > 0")
        }
        if case let .warm(values) = start {
            guard values.count == count * columns else {
                throw LPError.warmStartMismatch(expected: count * columns, actual: values.count)
            }
            if let bad = values.first(where: { !($0.isFinite && $0 > 0) }) {
                throw LPError.invalidOption(name: "start", value: bad, expected: "strictly positive finite warm-start entries")
            }
        }
    }

    /// Returns the start points, count x columns.
    func startPoints(count: Int, columns: Int) -> [Double] {
        switch start {
        case let .warm(values):
            return values
        case let .random(seed):
            var random = SeededRandom(seed: seed)
            var values = [Double](repeating: 0, count: count * columns)
            for index in values.indices {
                var value = random.nextDouble()
                while value == 0 { value = random.nextDouble() }
                values[index] = value
            }
            return values
        }
    }
}

/// Per-problem facts about a forward solve, so a caller can tell an
/// approximate answer from a failed one.
public struct LPDiagnostics: Sendable, Equatable {
    /// `||A x - b|| / ||b||`, or `||A x||` when `b = 0`. The lower clamp leaves a
    /// floor of roughly `lowerClamp / gamma` here; a large value after many
    /// iterations means the LP is infeasible.
    public var relativeResidual: Double
    /// `c^T x` with the caller's costs (before the zero-cost perturbation).
    public var objective: Double
    /// Entries of x that sit at the lower or upper clamp.
    public var clampedCount: Int
    /// The smallest entry of x.
    public var smallestEntry: Double
    /// Whether any iterate went NaN or infinite; x is then the last finite iterate.
    public var hasNonFinite: Bool
    /// Whether a Cholesky factorisation failed after the first iteration (L lost
    /// positive definiteness numerically); x is then the last good iterate.
    public var factorizationFailed: Bool
    /// Iterations actually applied (less than K only after a failure).
    public var completedIterations: Int

    /// Whether the solve ran all iterations without a numerical failure.
    /// It does not measure convergence, so check `relativeResidual` and the objective for that.
    public var isUsable: Bool { !hasNonFinite && !factorizationFailed }
}
