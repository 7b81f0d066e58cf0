import FewShot
import Foundation

/// `fewshot inspect CHECKPOINT`: metadata, per-tensor statistics and verification status.
enum InspectCommand: Command {
    static let name = "inspect"
    static let abstract = "Show a checkpoint's metadata, tensor statistics and verification status."
    static let options: [OptionSpec] = [
        .flag("json", help: "Print one JSON object instead of text."),
    ]
    static let discussion = """
        ARGUMENTS:
          <checkpoint>              A .safetensors file: a checkpoint written by 'fewshot train',
                                    or any other safetensors file (such as 'fewshot embed'
                                    output), which is checked for structure only.

        Prints every tensor with dtype, shape, min, max, mean, standard deviation
        and the count of non-finite elements. Exits with status 1 when the file
        fails verification (damaged header, truncated data, checksum mismatch).
        """

    static func run(_ arguments: ParsedArguments) throws {
        let path = try arguments.requirePositional("<checkpoint>")
        let url = URL(fileURLWithPath: path)
        // An unreadable file (missing, truncated, bad header) is reported like
        // a checksum failure: verified false with the reason, then exit 1.
        let summary: CheckpointSummary
        let isReadable: Bool
        do {
            summary = try CheckpointSummary(contentsOf: url)
            isReadable = true
        } catch {
            summary = CheckpointSummary(path: url.path, unreadableBecause: "\(error)")
            isReadable = false
        }

        if arguments.flag("json") {
            let data = try JSONSerialization.data(withJSONObject: summary.jsonObject, options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes])
            print(String(decoding: data, as: UTF8.self))
        } else if isReadable {
            printText(summary)
        } else {
            printVerification(summary)
        }
        if let failure = summary.verificationFailure {
            throw CommandFailure(failure)
        }
    }

    /// Prints the path and the verification result, with the reason when it failed.
    private static func printVerification(_ summary: CheckpointSummary) {
        print("checkpoint: \(summary.path)")
        if let failure = summary.verificationFailure {
            print("verification: FAILED: \(failure)")
        } else if summary.isTrainingCheckpoint {
            print("verification: ok (structure, checksum, metadata)")
        } else {
            print("verification: ok (safetensors structure); not a training checkpoint: no config metadata")
        }
    }

    private static func printText(_ summary: CheckpointSummary) {
        printVerification(summary)
        for key in summary.metadata.keys.sorted() where key != "config" {
            print("\(key): \(summary.metadata[key]!)")
        }
        if let config = summary.metadata["config"] {
            print("config:")
            for line in config.split(separator: "\n") { print("  \(line)") }
        }
        print("tensors: \(summary.tensors.count), elements: \(summary.elementCount)")
        let nameWidth = min(60, summary.tensors.map(\.name.count).max() ?? 4)
        print(pad("name", nameWidth) + "  dtype  " + pad("shape", 18) + ["min", "max", "mean", "std"].map { rightAligned($0, 13) }.joined() + rightAligned("non-finite", 11))
        for statistics in summary.tensors {
            let shape = "[" + statistics.shape.map(String.init).joined(separator: ", ") + "]"
            print(pad(statistics.name, nameWidth) + "  " + pad(statistics.dtype, 5) + "  " + pad(shape, 18)
                + String(format: "%12.5g %12.5g %12.5g %12.5g %10d", statistics.minimum, statistics.maximum,
                         statistics.mean, statistics.standardDeviation, statistics.nonFiniteCount))
        }
    }

    private static func rightAligned(_ text: String, _ width: Int) -> String {
        String(repeating: " ", count: max(0, width - text.count)) + text
    }

    private static func pad(_ text: String, _ width: Int) -> String {
        text.count >= width ? text : text.padding(toLength: width, withPad: " ", startingAt: 0)
    }
}
