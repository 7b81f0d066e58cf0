import Foundation
import PhysarumLP
import TensorCore

/// `fewshot lp <subcommand>`: the LP layer on its own.
enum LPCommand: Command {
    static let name = "lp"
    static let abstract = "Solve linear programs with the gamma-AuxPD physarum layer."
    static let subcommands: [Command.Type] = [
        LPMatchingCommand.self,
        LPSolveCommand.self,
    ]
}

/// `fewshot lp matching`: the bipartite matching testbed against the Hungarian
/// algorithm and projected gradient descent with Dykstra's projections.
enum LPMatchingCommand: Command {
    static let name = "matching"
    static let abstract = "Compare gamma-AuxPD and PGD-Dykstra with the Hungarian optimum on random matchings."
    static let options: [OptionSpec] = [
        OptionSpec(name: "problems", valueName: "<n>", help: "Random matching problems.", defaultValue: "100"),
        OptionSpec(name: "templates", valueName: "<n>", help: "Rows of the cost matrix (templates).", defaultValue: "5"),
        OptionSpec(name: "proposals", valueName: "<m>", help: "Columns of the cost matrix (proposals).", defaultValue: "50"),
        OptionSpec(name: "iterations", valueName: "<list>", help: "Comma-separated iteration counts K (physarum iterations and PGD steps).",
                   defaultValue: "5,10,20,50,100"),
        OptionSpec(name: "gamma", valueName: "<value>", help: "Slack cost gamma (the zero-cost perturbation).", defaultValue: "0.001"),
        OptionSpec(name: "step", valueName: "<h>", help: "Physarum step size h.", defaultValue: "1"),
        OptionSpec(name: "learning-rate", valueName: "<value>", help: "PGD learning rate.", defaultValue: "0.1"),
        OptionSpec(name: "cycles", valueName: "<n>", help: "Dykstra projection cycles per PGD step.", defaultValue: "5"),
        OptionSpec(name: "seed", valueName: "<n>", help: "Seed of the costs and of the physarum start points.", defaultValue: "1"),
        OptionSpec(name: "threads", valueName: "<n>", help: "Worker threads over problems (0: every processor).", defaultValue: everyProcessorDefault),
    ]
    static let discussion = """
        Costs are uniform in (0, 1). Distance is the Frobenius norm of X minus the
        Hungarian 0/1 assignment; gap is (tr(C X^T) - optimum) / optimum; rounded is
        the share of problems whose row-wise argmax of X is the Hungarian assignment.
        """

    static func run(_ arguments: ParsedArguments) throws {
        try arguments.rejectPositionals()
        let problems = try arguments.int("problems", range: 1...100_000) ?? 100
        let templates = try arguments.int("templates", range: 1...1000) ?? 5
        let proposals = try arguments.int("proposals", range: 1...10_000) ?? 50
        guard proposals >= templates else {
            throw UsageError("invalid value \(proposals) for '--proposals': expected at least --templates (\(templates))")
        }
        let iterationCounts = try arguments.intList("iterations") ?? [5, 10, 20, 50, 100]
        guard iterationCounts.allSatisfy({ $0 >= 1 && $0 <= 100_000 }) else {
            throw UsageError("invalid value for '--iterations': expected counts from 1 to 100000")
        }
        let gamma = try arguments.double("gamma") ?? 1e-3
        let step = try arguments.double("step") ?? 1
        let learningRate = try arguments.double("learning-rate") ?? 0.1
        let cycles = try arguments.int("cycles", range: 1...1000) ?? 5
        let seed = UInt64(try arguments.int("seed", range: 0...Int.max) ?? 1)
        let threads = try arguments.threadCount()
        guard gamma > 0 else { throw UsageError("invalid value \(gamma) for '--gamma': expected a value > 0") }
        guard step > 0, step <= 1 else { throw UsageError("invalid value \(step) for '--step': expected a value in (0, 1]") }
        guard learningRate > 0 else {
            throw UsageError("invalid value \(learningRate) for '--learning-rate': expected a value > 0")
        }
        Parallel.workerCount = threads
        BLAS.threadCount = 1

        var random = SeededRandom(seed: seed)
        let cellCount = templates * proposals
        var costs = [Double](repeating: 0, count: problems * cellCount)
        for index in costs.indices {
            var value = random.nextDouble()
            while value == 0 { value = random.nextDouble() }
            costs[index] = value
        }
        var optimal = [Double](repeating: 0, count: problems * cellCount)
        var optimalObjective = [Double](repeating: 0, count: problems)
        var optimalAssignments: [[Int]] = []
        for problem in 0..<problems {
            let cost = Array(costs[(problem * cellCount)..<((problem + 1) * cellCount)])
            let assignment = hungarianAssignment(costs: cost, rows: templates, columns: proposals)
            optimalAssignments.append(assignment)
            for (row, column) in assignment.enumerated() {
                optimal[problem * cellCount + row * proposals + column] = 1
                optimalObjective[problem] += cost[row * proposals + column]
            }
        }

        let builder = MatchingBuilder(templates: templates, proposals: proposals)
        let matching = try builder.makeBatch(costs: costs)
        print(String(format: "matching: %d problems, n = %d, m = %d, gamma %g, step %g; PGD learning rate %g, %d cycles; %d threads",
                     problems, templates, proposals, gamma, step, learningRate, cycles, threads))
        let table = TableLayout([("solver", 11), ("K", 4), ("mean dist", 9), ("median dist", 9), ("mean gap", 8),
                                 ("rounded", 7), ("ms per batch", 12)])
        print(table.header)
        for iterations in iterationCounts {
            let options = PhysarumOptions(iterations: iterations, stepSize: step, zeroCostPerturbation: gamma,
                                          start: .random(seed: seed &+ 1))
            let physarumStart = DispatchTime.now().uptimeNanoseconds
            let forward = try PhysarumLayer(options: options).forward(matching.batch, recordingTape: false)
            let physarumMs = Double(DispatchTime.now().uptimeNanoseconds - physarumStart) / 1e6
            let physarumX = builder.assignments(fromSolutions: forward.solutions)
            let failures = forward.diagnostics.filter { !$0.isUsable }.count
            if failures > 0 {
                printDiagnostic("warning: \(failures) physarum solves at K = \(iterations) stopped early on a numerical failure")
            }
            printRow("gamma-AuxPD", iterations, physarumX, physarumMs)

            let pgdStart = DispatchTime.now().uptimeNanoseconds
            let pgdX = DykstraPGD(steps: iterations, projectionCycles: cycles, learningRate: learningRate)
                .solve(costs: costs, templates: templates, proposals: proposals)
            let pgdMs = Double(DispatchTime.now().uptimeNanoseconds - pgdStart) / 1e6
            printRow("PGD-Dykstra", iterations, pgdX, pgdMs)
        }

        func printRow(_ solver: String, _ iterations: Int, _ x: [Double], _ milliseconds: Double) {
            var distances: [Double] = []
            var gaps: [Double] = []
            var rounded = 0
            for problem in 0..<problems {
                var squared = 0.0
                var objective = 0.0
                var argmaxMatches = true
                for row in 0..<templates {
                    var best = 0
                    for column in 0..<proposals {
                        let index = problem * cellCount + row * proposals + column
                        squared += (x[index] - optimal[index]) * (x[index] - optimal[index])
                        objective += costs[index] * x[index]
                        if x[index] > x[problem * cellCount + row * proposals + best] { best = column }
                    }
                    if best != optimalAssignments[problem][row] { argmaxMatches = false }
                }
                distances.append(squared.squareRoot())
                gaps.append((objective - optimalObjective[problem]) / optimalObjective[problem])
                if argmaxMatches { rounded += 1 }
            }
            let meanDistance = distances.reduce(0, +) / Double(problems)
            let sorted = distances.sorted()
            let median = problems % 2 == 1 ? sorted[problems / 2] : (sorted[problems / 2 - 1] + sorted[problems / 2]) / 2
            let meanGap = gaps.reduce(0, +) / Double(problems)
            print(table.row([
                solver, "\(iterations)", String(format: "%.4f", meanDistance), String(format: "%.4f", median),
                String(format: "%.2e", meanGap), "\(rounded)/\(problems)", String(format: "%.1f", milliseconds),
            ]))
        }
    }
}

/// `fewshot lp solve --problem FILE`: one LP from a JSON file.
enum LPSolveCommand: Command {
    static let name = "solve"
    static let abstract = "Solve one standard-form LP given as JSON and print the solution and diagnostics."
    static let options: [OptionSpec] = [
        OptionSpec(name: "problem", valueName: "<file>", help: "JSON file with A, b, c and optional options."),
        .flag("json", help: "Print the result as one JSON object with snake_case keys."),
        OptionSpec(name: "max-residual", valueName: "<value>",
                   help: "Largest relative residual ||Ax - b|| / ||b|| that counts as meeting the constraints.",
                   defaultValue: "0.01"),
    ]
    static let discussion = """
        The file holds {"A": [[...], ...], "b": [...], "c": [...], "options": {...}}:
        minimise c^T x subject to A x = b, x >= 0, with A given row by row. Options
        (all optional): "iterations" (10), "stepSize" (1), "gamma" (0.001),
        "lowerClamp" (1e-6), "upperClamp" (1e4), "seed" (0) or "start" (a
        strictly positive start point, one entry per column).

        Exit status: 0 when the relative residual is at most --max-residual; 2 when
        it is above, so x does not meet the constraints (the LP is likely
        infeasible, or needs more iterations); 1 when the problem file is
        missing or invalid; 64 for a usage error.
        """

    static func run(_ arguments: ParsedArguments) throws {
        try arguments.rejectPositionals()
        guard let path = arguments.string("problem") else {
            throw UsageError("missing '--problem <file>'; pass a JSON file with A, b and c")
        }
        let maximumResidual = try arguments.double("max-residual") ?? 1e-2
        guard maximumResidual > 0 else {
            throw UsageError("invalid value \(maximumResidual) for '--max-residual': expected a value > 0")
        }
        let (batch, options) = try LPProblemFile.read(path: path)
        let forward: PhysarumForward
        do {
            forward = try PhysarumLayer(options: options).forward(batch, recordingTape: false)
        } catch let error as LPError {
            throw CommandFailure("problem file \(path): \(error.singleProblemDescription)")
        }
        let diagnostics = forward.diagnostics[0]
        let constraintsMet = diagnostics.relativeResidual <= maximumResidual
        if arguments.flag("json") {
            let object: [String: Any] = [
                "x": forward.solutions,
                "objective": diagnostics.objective,
                "relative_residual": diagnostics.relativeResidual,
                "clamped_count": diagnostics.clampedCount,
                "smallest_entry": diagnostics.smallestEntry,
                "has_non_finite": diagnostics.hasNonFinite,
                "factorization_failed": diagnostics.factorizationFailed,
                "completed_iterations": diagnostics.completedIterations,
                "constraints_met": constraintsMet,
            ]
            let data = try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes])
            print(String(decoding: data, as: UTF8.self))
        } else {
            print("x = [" + forward.solutions.map { String(format: "%.6g", $0) }.joined(separator: ", ") + "]")
            print(String(format: "objective %.9g", diagnostics.objective))
            print(String(format: "relative residual %.3e", diagnostics.relativeResidual))
            print("clamped entries \(diagnostics.clampedCount) of \(batch.columns)")
            print(String(format: "smallest entry %.3e", diagnostics.smallestEntry))
            print("iterations \(diagnostics.completedIterations) of \(options.iterations)")
        }
        if !diagnostics.isUsable {
            printDiagnostic("warning: the solve stopped after \(counted(diagnostics.completedIterations, "iteration")) on a numerical failure; x is the last good iterate")
        }
        if !constraintsMet {
            let residual = String(format: "%.3e", diagnostics.relativeResidual)
            throw CommandWarning(status: 2, description: "x does not meet the constraints A x = b: relative residual \(residual) is above --max-residual \(maximumResidual); the LP is likely infeasible (no x >= 0 satisfies A x = b), or it needs more iterations (options.iterations, now \(options.iterations))")
        }
    }
}

/// Reads the JSON problem format of `lp solve`.
enum LPProblemFile {
    static let knownOptions = ["gamma", "iterations", "lowerClamp", "seed", "start", "stepSize", "upperClamp"]

    /// Returns a JSON number as Double; nil for anything else, Booleans included.
    /// JSONSerialization yields NSNumber for both, and an NSNumber holding 0 or 1
    /// also casts to Bool, so Booleans are recognised by their Objective-C type "c".
    static func jsonNumber(_ value: Any) -> Double? {
        guard let number = value as? NSNumber else { return nil }
        if String(cString: number.objCType) == "c" { return nil }
        return number.doubleValue
    }

    /// Returns Foundation's description of a JSON syntax error, which names the
    /// position when the parser reports one.
    static func jsonErrorDetail(_ error: Error) -> String {
        let nsError = error as NSError
        if let detail = nsError.userInfo[NSDebugDescriptionErrorKey] as? String, !detail.isEmpty {
            return detail.hasSuffix(".") ? String(detail.dropLast()) : detail
        }
        return nsError.localizedDescription
    }

    static func read(path: String) throws -> (LPBatch, PhysarumOptions) {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw CommandFailure("problem file not found: \(path); check the path given to --problem")
        }
        guard !isDirectory.boolValue else {
            throw CommandFailure("problem file \(path): is a folder; expected a JSON file")
        }
        guard let data = FileManager.default.contents(atPath: path) else {
            throw CommandFailure("problem file \(path): cannot be read; check its permissions")
        }
        let parsed: Any
        do {
            parsed = try JSONSerialization.jsonObject(with: data)
        } catch {
            throw CommandFailure("problem file \(path): invalid JSON (\(jsonErrorDetail(error))); fix the syntax")
        }
        guard let root = parsed as? [String: Any] else {
            throw CommandFailure("problem file \(path): the top level is not a JSON object; expected {\"A\": [[...]], \"b\": [...], \"c\": [...]}")
        }
        func numbers(_ value: Any?, field: String) throws -> [Double] {
            guard let array = value as? [Any] else {
                throw CommandFailure("problem file \(path): field \(field) is missing or not an array of numbers")
            }
            return try array.enumerated().map { index, element in
                guard let number = jsonNumber(element) else {
                    throw CommandFailure("problem file \(path): \(field)[\(index)] is not a number")
                }
                return number
            }
        }
        guard let rowsArray = root["A"] as? [Any], !rowsArray.isEmpty else {
            throw CommandFailure("problem file \(path): field A is missing or empty; expected an array of rows")
        }
        var matrix: [Double] = []
        var columns = -1
        for (index, row) in rowsArray.enumerated() {
            let values = try numbers(row, field: "A[\(index)]")
            if columns < 0 { columns = values.count }
            guard values.count == columns else {
                throw CommandFailure("problem file \(path): row A[\(index)] has \(counted(values.count, "entry", plural: "entries")), but A[0] has \(columns)")
            }
            matrix += values
        }
        let b = try numbers(root["b"], field: "b")
        let c = try numbers(root["c"], field: "c")
        guard b.count == rowsArray.count else {
            throw CommandFailure("problem file \(path): b has \(counted(b.count, "entry", plural: "entries")) but A has \(counted(rowsArray.count, "row"))")
        }
        guard c.count == columns else {
            throw CommandFailure("problem file \(path): c has \(counted(c.count, "entry", plural: "entries")) but A has \(counted(columns, "column"))")
        }

        var options = PhysarumOptions()
        let settings = root["options"] as? [String: Any] ?? [:]
        func setting(_ key: String) throws -> Double? {
            guard let value = settings[key] else { return nil }
            guard let number = jsonNumber(value) else {
                throw CommandFailure("problem file \(path): options.\(key) is not a number")
            }
            return number
        }
        if let iterations = try setting("iterations") {
            guard iterations >= 1, iterations <= 1_000_000, iterations == iterations.rounded() else {
                throw CommandFailure("problem file \(path): options.iterations is \(iterations); expected an integer from 1 to 1000000")
            }
            options.iterations = Int(iterations)
        }
        if let value = try setting("stepSize") { options.stepSize = value }
        if let value = try setting("gamma") { options.zeroCostPerturbation = value }
        if let value = try setting("lowerClamp") { options.lowerClamp = value }
        if let value = try setting("upperClamp") { options.upperClamp = value }
        if let seed = try setting("seed") {
            guard seed >= 0, seed == seed.rounded(), seed < 9e18 else {
                throw CommandFailure("problem file \(path): options.seed is \(seed); expected a non-negative integer")
            }
            options.start = .random(seed: UInt64(seed))
        }
        if settings["start"] != nil {
            options.start = .warm(try numbers(settings["start"], field: "options.start"))
        }
        if let unknown = settings.keys.sorted().first(where: { !knownOptions.contains($0) }) {
            throw CommandFailure("problem file \(path): unknown option '\(unknown)'; known options: \(knownOptions.joined(separator: ", "))")
        }
        do {
            let batch = try LPBatch(count: 1, rows: rowsArray.count, columns: columns,
                                    constraints: matrix, rightHandSides: b, costs: c)
            return (batch, options)
        } catch let error as LPError {
            throw CommandFailure("problem file \(path): \(error.singleProblemDescription)")
        }
    }
}
