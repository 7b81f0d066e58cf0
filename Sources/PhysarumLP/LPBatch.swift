/// A batch of standard-form linear programs of one shape:
/// minimise `c^T x` subject to `A x = b`, `x >= 0`.
///
/// Shapes, with `count` problems of `rows` (m) constraints and `columns` (n)
/// variables each, all Float64 and problem-major:
/// - `constraints` (A): count x m x n, row-major within a problem;
/// - `rightHandSides` (b): count x m;
/// - `costs` (c): count x n.
public struct LPBatch: Sendable {
    public let count: Int
    public let rows: Int
    public let columns: Int
    public var constraints: [Double]
    public var rightHandSides: [Double]
    public var costs: [Double]

    /// Creates a batch, checking that the buffers match the shape.
    ///
    /// Throws `LPError.shapeMismatch` when a buffer has the wrong length and
    /// `LPError.invalidShape` when the shape itself cannot describe a solvable
    /// standard-form LP (no rows, or more rows than columns).
    public init(count: Int, rows: Int, columns: Int,
                constraints: [Double], rightHandSides: [Double], costs: [Double]) throws {
        guard count >= 1, rows >= 1, columns >= rows else {
            throw LPError.invalidShape(count: count, rows: rows, columns: columns)
        }
        guard constraints.count == count * rows * columns else {
            throw LPError.shapeMismatch(field: "A", expected: count * rows * columns, actual: constraints.count)
        }
        guard rightHandSides.count == count * rows else {
            throw LPError.shapeMismatch(field: "b", expected: count * rows, actual: rightHandSides.count)
        }
        guard costs.count == count * columns else {
            throw LPError.shapeMismatch(field: "c", expected: count * columns, actual: costs.count)
        }
        self.count = count
        self.rows = rows
        self.columns = columns
        self.constraints = constraints
        self.rightHandSides = rightHandSides
        self.costs = costs
    }

    /// Checks every entry for NaN or infinity and every cost for a negative value.
    func validateEntries() throws {
        func firstNonFinite(_ values: [Double]) -> Int? { values.firstIndex { !$0.isFinite } }
        if let index = firstNonFinite(constraints) {
            throw LPError.nonFiniteInput(field: "A", problem: index / (rows * columns),
                                         index: index % (rows * columns), value: constraints[index])
        }
        if let index = firstNonFinite(rightHandSides) {
            throw LPError.nonFiniteInput(field: "b", problem: index / rows, index: index % rows,
                                         value: rightHandSides[index])
        }
        if let index = firstNonFinite(costs) {
            throw LPError.nonFiniteInput(field: "c", problem: index / columns, index: index % columns,
                                         value: costs[index])
        }
        if let index = costs.firstIndex(where: { $0 < 0 }) {
            throw LPError.negativeCost(problem: index / columns, index: index % columns, value: costs[index])
        }
    }
}

/// An input error of the LP layer; each description is one sentence naming the
/// value, what was expected and what to do.
public enum LPError: Error, CustomStringConvertible, Equatable {
    case invalidShape(count: Int, rows: Int, columns: Int)
    case shapeMismatch(field: String, expected: Int, actual: Int)
    case nonFiniteInput(field: String, problem: Int, index: Int, value: Double)
    case negativeCost(problem: Int, index: Int, value: Double)
    case rankDeficient(problem: Int, row: Int)
    case invalidOption(name: String, value: Double, expected: String)
    case warmStartMismatch(expected: Int, actual: Int)
    case invalidLabel(problem: Int, index: Int, value: Double)
    case tapeMismatch(field: String, expected: Int, actual: Int)
    case tapeNotRecorded

    public var description: String { describe(namingProblem: true) }

    /// The description for a batch of one problem, without "of problem 0".
    public var singleProblemDescription: String { describe(namingProblem: false) }

    private func describe(namingProblem: Bool) -> String {
        func ofProblem(_ problem: Int) -> String { namingProblem ? " of problem \(problem)" : "" }
        switch self {
        case let .invalidShape(count, rows, columns):
            return "invalid LP batch shape count \(count), rows \(rows), columns \(columns): expected count >= 1 and 1 <= rows <= columns, so pass a standard-form A with full row rank"
        case let .shapeMismatch(field, expected, actual):
            return "LP field \(field) has \(counted(actual, "entry", plural: "entries")) but the batch shape needs \(expected); pass count x rows x columns for A, count x rows for b and count x columns for c"
        case let .nonFiniteInput(field, problem, index, value):
            return "LP field \(field)\(ofProblem(problem)) has the non-finite value \(value) at flat index \(index); replace it with a finite number"
        case let .negativeCost(problem, index, value):
            return "cost c[\(index)]\(ofProblem(problem)) is \(value), but physarum dynamics need costs >= 0 (zero costs are perturbed to gamma); make the costs non-negative without moving the optimum (when a row of A x = b fixes the sum of some entries of x, adding one constant to those entries' costs shifts every objective value by the same amount), or solve the LP with another method"
        case let .rankDeficient(problem, row):
            return "constraint matrix A\(ofProblem(problem)) is rank deficient (row \(row) depends on the rows before it); remove redundant rows so A has full row rank"
        case let .invalidOption(name, value, expected):
            return "invalid LP option \(name) = \(value): expected \(expected)"
        case let .warmStartMismatch(expected, actual):
            return "warm start has \(counted(actual, "entry", plural: "entries")) but the batch needs count x columns = \(expected); pass one strictly positive start point per problem"
        case let .invalidLabel(problem, index, value):
            return "label y[\(index)]\(ofProblem(problem)) is \(value); l1-SVM labels must be +1 or -1"
        case let .tapeMismatch(field, expected, actual):
            return "backward input \(field) has \(counted(actual, "entry", plural: "entries")) but the forward's batch needs \(expected)"
        case .tapeNotRecorded:
            return "the tape of a forward run with recordingTape: false cannot be differentiated; run the forward with recordingTape: true"
        }
    }
}

/// Returns the count with its noun, singular for 1 ("1 row", "3 rows").
func counted(_ count: Int, _ singular: String, plural: String? = nil) -> String {
    "\(count) \(count == 1 ? singular : plural ?? singular + "s")"
}
