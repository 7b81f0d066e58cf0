import FewShotData
import XCTest

/// Runs the built `fewshot` tool's data commands end to end.
final class DataCommandTests: XCTestCase {
    private struct Run {
        let status: Int32
        let stdout: String
        let stderr: String
    }

    private func toolURL() throws -> URL {
        let candidates = [Bundle.main.bundleURL, Bundle.main.bundleURL.deletingLastPathComponent(),
                          Bundle(for: Self.self).bundleURL.deletingLastPathComponent()]
        for folder in candidates {
            let url = folder.appendingPathComponent("fewshot")
            if FileManager.default.isExecutableFile(atPath: url.path) { return url }
        }
        throw XCTSkip("the fewshot executable was not built next to the tests (looked in \(candidates.map(\.path)))")
    }

    private func run(_ arguments: [String], environment: [String: String] = [:], in directory: URL) throws -> Run {
        let process = Process()
        process.executableURL = try toolURL()
        process.arguments = arguments
        process.currentDirectoryURL = directory
        var base = ProcessInfo.processInfo.environment
        base.removeValue(forKey: DataLocator.environmentVariable)
        process.environment = base.merging(environment) { $1 }
        let output = Pipe(), errors = Pipe()
        process.standardOutput = output
        process.standardError = errors
        try process.run()
        let outputData = output.fileHandleForReading.readDataToEndOfFile()
        let errorData = errors.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return Run(status: process.terminationStatus, stdout: String(decoding: outputData, as: UTF8.self), stderr: String(decoding: errorData, as: UTF8.self))
    }

    func testCheckPrintsSplitsOfRealData() throws {
        let real = try realDataDirectory()
        let result = try run(["data", "check", "--skip-checksums"], environment: [DataLocator.environmentVariable: real.path],
                             in: try makeTemporaryDirectory(self))
        XCTAssertEqual(result.status, 0, result.stderr)
        for fragment in [
            "records: train.bin 50000, test.bin 10000", "CIFAR-FS train: 64 classes x 600 images = 38400",
            "CIFAR-FS val: 16 classes x 600 images = 9600", "CIFAR-FS test: 20 classes x 600 images = 12000",
            "FC100 train: 60 classes x 600 images = 36000", "FC100 val: 20 classes", "FC100 test: 20 classes",
            "CIFAR-FS: splits are disjoint, 100 classes in all", "FC100: splits are disjoint, 100 classes in all",
        ] {
            XCTAssertTrue(result.stdout.contains(fragment), "missing '\(fragment)' in:\n\(result.stdout)")
        }
    }

    func testCheckWithoutDataFailsWithOneLine() throws {
        let directory = try makeTemporaryDirectory(self)
        let result = try run(["data", "check"], in: directory)
        XCTAssertEqual(result.status, 1)
        XCTAssertEqual(result.stderr.split(separator: "\n").count, 1, result.stderr)
        XCTAssertTrue(result.stderr.hasPrefix("error: CIFAR-100 binary data not found"), result.stderr)
        XCTAssertTrue(result.stderr.contains("fewshot data fetch"), result.stderr)
        XCTAssertTrue(result.stderr.contains("FEWSHOT_DATA_DIR (not set)"), result.stderr)
    }

    func testCheckReadsDataRootFromConfig() throws {
        let directory = try makeTemporaryDirectory(self)
        try #"{"data": {"root": "elsewhere/cifar"}}"#.write(to: directory.appendingPathComponent("run.json"), atomically: true, encoding: .utf8)
        let result = try run(["data", "check", "--config", "run.json"], in: directory)
        XCTAssertEqual(result.status, 1)
        XCTAssertTrue(result.stderr.contains("config data.root 'elsewhere/cifar'"), result.stderr)
    }

    /// Writes `<root>/{train,val,test}/<class>/<n>.png`: two classes of two 32 x 32 images in each split.
    private func writePNGSplits(to root: URL) throws {
        for split in ["train", "val", "test"] {
            for className in ["\(split)-a", "\(split)-b"] {
                let folder = root.appendingPathComponent("\(split)/\(className)")
                try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
                for index in 0..<2 {
                    let pixels = [UInt8](repeating: UInt8(60 * index + 20), count: 3072)
                    try PNG.write(RGBImage(height: 32, width: 32, pixels: pixels), to: folder.appendingPathComponent("\(index).png"))
                }
            }
        }
    }

    func testCheckHonoursPNGFormatInConfig() throws {
        let directory = try makeTemporaryDirectory(self)
        try writePNGSplits(to: directory.appendingPathComponent("pngs"))
        try #"{"data": {"root": "pngs", "format": "png-folders"}}"#.write(to: directory.appendingPathComponent("png.json"), atomically: true, encoding: .utf8)
        let result = try run(["data", "check", "--config", "png.json"], in: directory)
        XCTAssertEqual(result.status, 0, result.stderr)
        XCTAssertFalse(result.stderr.contains("fewshot data fetch"), result.stderr)
        for fragment in ["format png-folders", "PNG folders pngs train: 2 classes x 2 images = 4",
                         "PNG folders pngs val: 2 classes x 2 images = 4", "PNG folders pngs test: 2 classes x 2 images = 4",
                         "all 12 images decoded, each 32 x 32 pixels"] {
            XCTAssertTrue(result.stdout.contains(fragment), "missing '\(fragment)' in:\n\(result.stdout)")
        }
    }

    func testCheckWithPNGConfigNamesBadImage() throws {
        let directory = try makeTemporaryDirectory(self)
        try writePNGSplits(to: directory.appendingPathComponent("pngs"))
        let bad = directory.appendingPathComponent("pngs/val/val-b/5.png")
        try PNG.write(RGBImage(height: 32, width: 40, pixels: [UInt8](repeating: 0, count: 3 * 32 * 40)), to: bad)
        try #"{"data": {"root": "pngs", "format": "png-folders"}}"#.write(to: directory.appendingPathComponent("png.json"), atomically: true, encoding: .utf8)
        let result = try run(["data", "check", "--config", "png.json"], in: directory)
        XCTAssertEqual(result.status, 1)
        XCTAssertTrue(result.stderr.contains("val-b/5.png is 40 x 32 pixels"), result.stderr)
    }

    func testCheckHonoursCustomSplitInConfig() throws {
        let real = try realDataDirectory()
        let directory = try makeTemporaryDirectory(self)
        let config = #"{"data": {"dataset": "custom", "split": {"train": ["apple", "bed", "cup"], "val": ["dolphin", "fox"], "test": ["lion"]}}}"#
        try config.write(to: directory.appendingPathComponent("cu.json"), atomically: true, encoding: .utf8)
        let result = try run(["data", "check", "--skip-checksums", "--config", "cu.json", "--data", real.path], in: directory)
        XCTAssertEqual(result.status, 0, result.stderr)
        for fragment in ["custom split train: 3 classes x 600 images = 1800", "custom split val: 2 classes x 600 images = 1200",
                         "custom split test: 1 class x 600 images = 600", "custom split: splits are disjoint, 6 classes in all"] {
            XCTAssertTrue(result.stdout.contains(fragment), "missing '\(fragment)' in:\n\(result.stdout)")
        }
        XCTAssertFalse(result.stdout.contains("CIFAR-FS"), result.stdout)
    }

    func testShowHonoursCustomSplitInConfig() throws {
        let directory = try makeTemporaryDirectory(self)
        try writeSyntheticCIFAR(to: directory.appendingPathComponent("cifar"), train: syntheticRecords(perClass: 2), test: syntheticRecords(perClass: 1))
        let config = #"{"data": {"root": "cifar", "dataset": "custom", "split": {"train": [0, 1], "val": [2, 3], "test": ["fine7", "fine9"]}}}"#
        try config.write(to: directory.appendingPathComponent("cu.json"), atomically: true, encoding: .utf8)
        let result = try run(["data", "show", "--config", "cu.json", "--split", "test", "--way", "2", "--shot", "2", "--query", "1",
                              "--output", "grid.png"], in: directory)
        XCTAssertEqual(result.status, 0, result.stderr)
        XCTAssertTrue(result.stdout.contains("custom CIFAR-100 split test"), result.stdout)
        let rows = result.stdout.split(separator: "\n").filter { $0.hasPrefix("row ") }.map { String($0.split(separator: " ").last!) }
        XCTAssertEqual(Set(rows), ["fine7", "fine9"], result.stdout)
    }

    func testShowRejectsBenchmarkWithConfig() throws {
        let directory = try makeTemporaryDirectory(self)
        try #"{"data": {"format": "png-folders"}}"#.write(to: directory.appendingPathComponent("png.json"), atomically: true, encoding: .utf8)
        let result = try run(["data", "show", "--config", "png.json", "--benchmark", "fc100"], in: directory)
        XCTAssertEqual(result.status, 64)
        XCTAssertTrue(result.stderr.contains("'--benchmark' and '--config' both choose the dataset"), result.stderr)
    }

    func testShowWritesEpisodeGrid() throws {
        let directory = try makeTemporaryDirectory(self)
        for className in ["a", "b", "c"] {
            let folder = directory.appendingPathComponent("images/\(className)")
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
            for index in 0..<4 {
                let pixels = [UInt8](repeating: UInt8(40 * index + 10), count: 3072)
                try PNG.write(RGBImage(height: 32, width: 32, pixels: pixels), to: folder.appendingPathComponent("\(index).png"))
            }
        }
        let result = try run(["data", "show", "--images", "images", "--way", "3", "--shot", "2", "--query", "1",
                              "--scale", "1", "--output", "grid.png"], in: directory)
        XCTAssertEqual(result.status, 0, result.stderr)
        XCTAssertTrue(result.stdout.contains("3-way 2-shot 1-query, not augmented"), result.stdout)
        let grid = try PNG.read(directory.appendingPathComponent("grid.png"))
        // Width: margin 2 + 2 support cells of 34 + gap 10 + 1 query cell of 34; height: 2 + 3 rows of 34.
        XCTAssertEqual(grid.width, 2 + 2 * 34 + 10 + 34)
        XCTAssertEqual(grid.height, 2 + 3 * 34)
        // Unaugmented images come back exactly after normalising and mapping back to 8 bits.
        let firstPixel = grid.pixels[2 * grid.width + 2]
        XCTAssertTrue([10, 50, 90, 130].contains(firstPixel), "first support pixel is \(firstPixel)")
    }

    func testFetchOfTruncatedArchiveFails() throws {
        let directory = try makeTemporaryDirectory(self)
        try writeSyntheticCIFAR(to: directory.appendingPathComponent("source"), train: syntheticRecords(perClass: 1), test: syntheticRecords(perClass: 1))
        let files = try CIFAR100.fileNames.map { ("cifar-100-binary/\($0)", try Data(contentsOf: directory.appendingPathComponent("source/\($0)"))) }
        let archive = try gzip(makeTar(files))
        let server = try LocalHTTPServer(routes: ["/c.tar.gz": archive.prefix(archive.count - 200)])
        defer { server.stop() }
        let result = try run(["data", "fetch", "--data", "out/cifar-100-binary", "--url", server.url("/c.tar.gz").absoluteString], in: directory)
        XCTAssertEqual(result.status, 1)
        XCTAssertTrue(result.stderr.contains("error: the archive from http://127.0.0.1:"), result.stderr)
        XCTAssertTrue(result.stderr.contains("truncated"), result.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: directory.appendingPathComponent("out/cifar-100-binary").path))
    }

    func testFetchProgressOnPipeUsesWholeLines() throws {
        let directory = try makeTemporaryDirectory(self)
        let server = try LocalHTTPServer(routes: ["/c.tar.gz": Data(repeating: 7, count: 300_000)])
        defer { server.stop() }
        let result = try run(["data", "fetch", "--data", "out/cifar-100-binary", "--url", server.url("/c.tar.gz").absoluteString], in: directory)
        XCTAssertEqual(result.status, 1)
        XCTAssertFalse(result.stderr.contains("\r"), "carriage returns on a pipe: \(result.stderr.debugDescription)")
        XCTAssertTrue(result.stderr.contains("100%"), result.stderr)
        let errorLines = result.stderr.split(separator: "\n").filter { $0.contains("error:") }
        XCTAssertEqual(errorLines.count, 1, result.stderr)
        XCTAssertTrue(errorLines.first?.hasPrefix("error: ") == true, "the error starts its own line: \(result.stderr.debugDescription)")
        XCTAssertFalse(FileManager.default.fileExists(atPath: directory.appendingPathComponent("out").path), "the fetch removes the folder it created")
    }

    func testFetchTimeoutIsPlain() throws {
        let directory = try makeTemporaryDirectory(self)
        let listener = try SilentTCPListener()
        defer { listener.stop() }
        let result = try run(["data", "fetch", "--data", "Data/cifar-100-binary", "--timeout", "1",
                              "--url", "http://127.0.0.1:\(listener.port)/c.tar.gz"], in: directory)
        XCTAssertEqual(result.status, 1)
        XCTAssertTrue(result.stderr.contains("timed out after 1 s"), result.stderr)
        XCTAssertFalse(result.stderr.contains("NSURLErrorDomain"), result.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: directory.appendingPathComponent("Data").path), "no empty Data folder is left")
    }

    func testFetchWithDataPresentExitsZero() throws {
        let directory = try makeTemporaryDirectory(self)
        try writeSyntheticCIFAR(to: directory.appendingPathComponent("present"), train: syntheticRecords(perClass: 1), test: syntheticRecords(perClass: 1))
        // Nothing listens on port 9, so any download attempt would fail.
        let result = try run(["data", "fetch", "--data", "present", "--url", "http://127.0.0.1:9/c.tar.gz"], in: directory)
        XCTAssertEqual(result.status, 0, result.stderr)
        XCTAssertTrue(result.stdout.contains("already contains"), result.stdout)
        XCTAssertTrue(result.stdout.contains("delete the folder"), result.stdout)
        XCTAssertTrue(result.stdout.contains("Run 'fewshot data check --data present'"), result.stdout)
        XCTAssertTrue(result.stdout.contains("run 'fewshot data fetch --data present' again"), result.stdout)
        XCTAssertFalse(result.stderr.contains("downloading"), result.stderr)
    }

    func testFetchWithDataPresentRepeatsConfig() throws {
        let directory = try makeTemporaryDirectory(self)
        try writeSyntheticCIFAR(to: directory.appendingPathComponent("my data"), train: syntheticRecords(perClass: 1), test: syntheticRecords(perClass: 1))
        try #"{"data": {"root": "my data"}}"#.write(to: directory.appendingPathComponent("run.json"), atomically: true, encoding: .utf8)
        let result = try run(["data", "fetch", "--config", "run.json", "--url", "http://127.0.0.1:9/c.tar.gz"], in: directory)
        XCTAssertEqual(result.status, 0, result.stderr)
        XCTAssertTrue(result.stdout.contains("Run 'fewshot data check --config run.json'"), result.stdout)
    }

    func testFetchRejectsNonHTTPURL() throws {
        let result = try run(["data", "fetch", "--data", "x", "--url", "ftp://127.0.0.1/c.tar.gz"], in: try makeTemporaryDirectory(self))
        XCTAssertEqual(result.status, 64)
        XCTAssertTrue(result.stderr.contains("expected an http:// or https:// address"), result.stderr)
    }
}
