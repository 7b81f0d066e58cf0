import FewShotData
import Foundation
import TensorCore
import XCTest

/// The result of running the `fewshot` executable.
struct ToolResult {
    var status: Int32
    var standardOutput: String
    var standardError: String
}

/// Returns the folder of the built products, which contains `fewshot`.
func productsDirectory() -> URL {
    for bundle in Bundle.allBundles where bundle.bundlePath.hasSuffix(".xctest") {
        return bundle.bundleURL.deletingLastPathComponent()
    }
    return Bundle.main.bundleURL
}

/// Starts `fewshot` with `arguments` in `directory`; output goes to files so
/// that a long run cannot block on a full pipe.
func startTool(_ arguments: [String], in directory: URL, environment: [String: String] = [:]) throws -> (Process, URL, URL) {
    let process = Process()
    process.executableURL = productsDirectory().appendingPathComponent("fewshot")
    process.arguments = arguments
    process.currentDirectoryURL = directory
    var processEnvironment = ProcessInfo.processInfo.environment
    processEnvironment["FEWSHOT_DATA_DIR"] = nil
    for (key, value) in environment { processEnvironment[key] = value }
    process.environment = processEnvironment
    let token = UUID().uuidString
    let outputURL = directory.appendingPathComponent(".stdout-\(token)")
    let errorURL = directory.appendingPathComponent(".stderr-\(token)")
    try Data().write(to: outputURL)
    try Data().write(to: errorURL)
    process.standardOutput = try FileHandle(forWritingTo: outputURL)
    process.standardError = try FileHandle(forWritingTo: errorURL)
    try process.run()
    return (process, outputURL, errorURL)
}

/// Runs `fewshot` to completion and returns its exit status and output.
func runTool(_ arguments: [String], in directory: URL, environment: [String: String] = [:]) throws -> ToolResult {
    let (process, outputURL, errorURL) = try startTool(arguments, in: directory, environment: environment)
    process.waitUntilExit()
    return ToolResult(
        status: process.terminationStatus,
        standardOutput: (try? String(contentsOf: outputURL, encoding: .utf8)) ?? "",
        standardError: (try? String(contentsOf: errorURL, encoding: .utf8)) ?? "")
}

/// Writes a small CIFAR-100 binary folder: every fine class gets
/// `trainPerClass` records in train.bin and `testPerClass` in test.bin, with
/// seeded random pixels, the real fine class names (so the CIFAR-FS and FC100
/// class lists match) and coarse label `fine / 5`.
func writeSyntheticCIFAR100(to folder: URL, trainPerClass: Int = 6, testPerClass: Int = 2) throws {
    try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
    var fineNames = [String](repeating: "", count: 100)
    for split in DataSplit.allCases {
        for fineClass in FewShotBenchmark.cifarFS.classes(split) { fineNames[fineClass.label] = fineClass.name }
    }
    try Data((fineNames.joined(separator: "\n") + "\n").utf8).write(to: folder.appendingPathComponent("fine_label_names.txt"))
    let coarseNames = (0..<20).map { "superclass_\($0)" }
    try Data((coarseNames.joined(separator: "\n") + "\n").utf8).write(to: folder.appendingPathComponent("coarse_label_names.txt"))

    var random = SeededRandom(seed: 99)
    for (file, perClass) in [("train.bin", trainPerClass), ("test.bin", testPerClass)] {
        var bytes: [UInt8] = []
        for _ in 0..<perClass {
            for fine in 0..<100 {
                bytes.append(UInt8(fine / 5))
                bytes.append(UInt8(fine))
                // A class-dependent mean makes the classes separable, so training can learn.
                for channel in 0..<3 {
                    let mean = Double((fine * 37 + channel * 91) % 200) + 28
                    for _ in 0..<1024 { bytes.append(UInt8(max(0, min(255, mean + random.uniform(-25, 25))))) }
                }
            }
        }
        try Data(bytes).write(to: folder.appendingPathComponent(file))
    }
}

/// A scratch folder with synthetic data and a copy of the package's configs.
final class Workspace {
    let url: URL
    var data: URL { url.appendingPathComponent("data") }

    init() throws {
        url = FileManager.default.temporaryDirectory.appendingPathComponent("fewshot-cli-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        try writeSyntheticCIFAR100(to: data)
    }

    func write(_ text: String, to name: String) throws -> URL {
        let file = url.appendingPathComponent(name)
        try Data(text.utf8).write(to: file)
        return file
    }

    func remove() {
        try? FileManager.default.removeItem(at: url)
    }
}

/// Returns the package root, found from this source file's path.
func packageRoot() -> URL {
    URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
}
