import FewShotData
import XCTest

final class CIFAR100Tests: XCTestCase {
    // MARK: Real data

    func testRealDataRecordCounts() throws {
        let dataset = try RealData.load()
        XCTAssertEqual(dataset.trainCount, 50_000)
        XCTAssertEqual(dataset.testCount, 10_000)
        XCTAssertEqual(dataset.pixels.count, 60_000 * 3072)
        XCTAssertEqual(dataset.fineLabelNames.count, 100)
        XCTAssertEqual(dataset.coarseLabelNames.count, 20)
        XCTAssertNoThrow(try dataset.verifyOfficialCounts(directory: try realDataDirectory()))
        for (fine, indices) in dataset.imageIndicesByFineLabel.enumerated() {
            XCTAssertEqual(indices.count, 600, "fine class \(fine)")
            XCTAssertEqual(indices.filter { $0 < 50_000 }.count, 500, "training images of fine class \(fine)")
        }
    }

    func testRealDataKnownValues() throws {
        let dataset = try RealData.load()
        XCTAssertEqual(dataset.fineLabels[0], 19)
        XCTAssertEqual(dataset.fineLabelNames[19], "cattle")
        XCTAssertEqual(dataset.coarseLabels[0], 11)
        XCTAssertEqual(dataset.coarseLabelNames[11], "large_omnivores_and_herbivores")
        XCTAssertEqual(dataset.fineLabelNames[0], "apple")
        XCTAssertEqual(dataset.fineLabelNames[99], "worm")
        XCTAssertEqual(dataset.coarseLabelNames[0], "aquatic_mammals")

        // The first image's bytes are the 3,072 bytes after the two label bytes of record 0.
        let handle = try FileHandle(forReadingFrom: try realDataDirectory().appendingPathComponent("train.bin"))
        defer { try? handle.close() }
        let firstRecord = try XCTUnwrap(handle.read(upToCount: 3074))
        XCTAssertEqual(Array(dataset.pixels[0..<3072]), Array(firstRecord[2..<3074]))

        // The first test record follows the 50,000 training records in the buffer.
        let testHandle = try FileHandle(forReadingFrom: try realDataDirectory().appendingPathComponent("test.bin"))
        defer { try? testHandle.close() }
        let firstTest = try XCTUnwrap(testHandle.read(upToCount: 3074))
        XCTAssertEqual(dataset.fineLabels[50_000], firstTest[1])
        XCTAssertEqual(Array(dataset.pixels[50_000 * 3072 ..< 50_001 * 3072]), Array(firstTest[2..<3074]))
    }

    func testRealDataChannelStatistics() throws {
        // The normalisation constants are the training set's channel means and
        // standard deviations; recomputing them checks byte order and plane layout.
        let dataset = try RealData.load()
        let expectedMean = [129.377, 124.106, 112.478]
        let expectedStd = [68.209, 65.431, 70.459]
        for channel in 0..<3 {
            var sum = 0.0, sumSquares = 0.0
            dataset.pixels.withUnsafeBufferPointer { pixels in
                for image in stride(from: 0, to: 50_000, by: 5) {
                    let start = image * 3072 + channel * 1024
                    for index in start ..< start + 1024 {
                        let value = Double(pixels[index])
                        sum += value
                        sumSquares += value * value
                    }
                }
            }
            let count = 10_000.0 * 1024
            let mean = sum / count
            let std = (sumSquares / count - mean * mean).squareRoot()
            // Every fifth image: sampling error of the mean is about 0.1.
            XCTAssertEqual(mean, expectedMean[channel], accuracy: 0.5, "channel \(channel) mean")
            XCTAssertEqual(std, expectedStd[channel], accuracy: 0.5, "channel \(channel) std")
        }
    }

    // MARK: Synthetic files

    func testSyntheticLoadKeepsOrderAndLabels() throws {
        let directory = try makeTemporaryDirectory(self)
        let train = syntheticRecords(perClass: 2)
        let test = syntheticRecords(perClass: 1, seedOffset: 5)
        try writeSyntheticCIFAR(to: directory, train: train, test: test)
        let dataset = try CIFAR100.load(from: directory)
        XCTAssertEqual(dataset.trainCount, 200)
        XCTAssertEqual(dataset.testCount, 100)
        XCTAssertEqual(dataset.fineLabels[2], 1)
        XCTAssertEqual(dataset.coarseLabels[2], 1)
        XCTAssertEqual(dataset.imageIndicesByFineLabel[3], [6, 7, 203])
        XCTAssertEqual(dataset.pixels[3072 * 203 + 1], UInt8(truncatingIfNeeded: 7 + (3 * 13 + 0 + 5) * 31))
        XCTAssertThrowsError(try dataset.verifyOfficialCounts(directory: directory)) { error in
            XCTAssertEqual((error as? DataError)?.kind, .truncatedFile)
        }
    }

    func testTruncatedTrainFileIsRejected() throws {
        let directory = try makeTemporaryDirectory(self)
        try writeSyntheticCIFAR(to: directory, train: syntheticRecords(perClass: 1), test: syntheticRecords(perClass: 1))
        let url = directory.appendingPathComponent("train.bin")
        let data = try Data(contentsOf: url)
        try data.prefix(data.count - 100).write(to: url)
        assertDataError(try CIFAR100.load(from: directory), kind: .truncatedFile, mentions: ["train.bin", "3074", "307300"])
    }

    func testSymlinkedFilesAreMeasuredByTarget() throws {
        let originals = try makeTemporaryDirectory(self)
        try writeSyntheticCIFAR(to: originals, train: syntheticRecords(perClass: 2), test: syntheticRecords(perClass: 1))
        let linked = try makeTemporaryDirectory(self)
        for name in CIFAR100.fileNames {
            try FileManager.default.createSymbolicLink(
                at: linked.appendingPathComponent(name), withDestinationURL: originals.appendingPathComponent(name))
        }
        let dataset = try CIFAR100.load(from: linked)
        XCTAssertEqual(dataset.trainCount, 200)
        XCTAssertEqual(dataset.testCount, 100)
    }

    func testRelativeSymlinkIsFollowed() throws {
        let root = try makeTemporaryDirectory(self)
        let originals = root.appendingPathComponent("originals")
        try writeSyntheticCIFAR(to: originals, train: syntheticRecords(perClass: 1), test: syntheticRecords(perClass: 1))
        let linked = root.appendingPathComponent("linked")
        try FileManager.default.createDirectory(at: linked, withIntermediateDirectories: true)
        for name in CIFAR100.fileNames {
            try FileManager.default.createSymbolicLink(atPath: linked.appendingPathComponent(name).path, withDestinationPath: "../originals/\(name)")
        }
        XCTAssertEqual(try CIFAR100.load(from: linked).trainCount, 100)
    }

    func testEmptyTestFileIsRejected() throws {
        let directory = try makeTemporaryDirectory(self)
        try writeSyntheticCIFAR(to: directory, train: syntheticRecords(perClass: 1), test: [])
        assertDataError(try CIFAR100.load(from: directory), kind: .truncatedFile, mentions: ["test.bin", "0 bytes"])
    }

    func testFineLabelOutOfRangeIsRejected() throws {
        let directory = try makeTemporaryDirectory(self)
        var train = syntheticRecords(perClass: 1)
        train[7].fine = 100
        try writeSyntheticCIFAR(to: directory, train: train, test: syntheticRecords(perClass: 1))
        assertDataError(try CIFAR100.load(from: directory), kind: .labelOutOfRange, mentions: ["train.bin", "record 7", "byte offset 21518", "fine label 100", "expected 0 to 99"])
    }

    func testCoarseLabelOutOfRangeIsRejected() throws {
        let directory = try makeTemporaryDirectory(self)
        var test = syntheticRecords(perClass: 1)
        test[3].coarse = 20
        try writeSyntheticCIFAR(to: directory, train: syntheticRecords(perClass: 1), test: test)
        assertDataError(try CIFAR100.load(from: directory), kind: .labelOutOfRange, mentions: ["test.bin", "record 3", "coarse label 20", "expected 0 to 19"])
    }

    func testInconsistentCoarseLabelIsRejected() throws {
        let directory = try makeTemporaryDirectory(self)
        var train = syntheticRecords(perClass: 2)
        train[1].coarse = 5
        try writeSyntheticCIFAR(to: directory, train: train, test: syntheticRecords(perClass: 1))
        assertDataError(try CIFAR100.load(from: directory), kind: .inconsistentLabels, mentions: ["train.bin", "record 1"])
    }

    func testMissingNamesFileIsRejected() throws {
        let directory = try makeTemporaryDirectory(self)
        try writeSyntheticCIFAR(to: directory, train: syntheticRecords(perClass: 1), test: syntheticRecords(perClass: 1))
        try FileManager.default.removeItem(at: directory.appendingPathComponent("fine_label_names.txt"))
        assertDataError(try CIFAR100.load(from: directory), kind: .missingFile, mentions: ["fine_label_names.txt", "100 class names"])
    }

    func testMissingBinaryFileIsRejected() throws {
        let directory = try makeTemporaryDirectory(self)
        try writeSyntheticCIFAR(to: directory, train: syntheticRecords(perClass: 1), test: syntheticRecords(perClass: 1))
        try FileManager.default.removeItem(at: directory.appendingPathComponent("test.bin"))
        assertDataError(try CIFAR100.load(from: directory), kind: .missingFile, mentions: ["test.bin", "fewshot data fetch"])
    }

    func testWrongNameCountIsRejected() throws {
        let directory = try makeTemporaryDirectory(self)
        try writeSyntheticCIFAR(to: directory, train: syntheticRecords(perClass: 1), test: syntheticRecords(perClass: 1),
                                coarseNames: (0..<19).map { "coarse\($0)" })
        assertDataError(try CIFAR100.load(from: directory), kind: .invalidLabelNames, mentions: ["coarse_label_names.txt", "19 class names, expected 20"])
    }

    func testBlankNameLineIsRejected() throws {
        let directory = try makeTemporaryDirectory(self)
        var names = (0..<100).map { "fine\($0)" }
        names[4] = ""
        try writeSyntheticCIFAR(to: directory, train: syntheticRecords(perClass: 1), test: syntheticRecords(perClass: 1), fineNames: names)
        assertDataError(try CIFAR100.load(from: directory), kind: .invalidLabelNames, mentions: ["fine_label_names.txt", "line 5"])
    }
}

/// Asserts that `expression` throws a `DataError` of `kind` whose message contains every fragment.
func assertDataError<T>(
    _ expression: @autoclosure () throws -> T, kind: DataError.Kind, mentions fragments: [String],
    file: StaticString = #filePath, line: UInt = #line
) {
    do {
        _ = try expression()
        XCTFail("expected a \(kind) error, but nothing was thrown", file: file, line: line)
    } catch let error as DataError {
        XCTAssertEqual(error.kind, kind, error.description, file: file, line: line)
        for fragment in fragments {
            XCTAssertTrue(error.description.contains(fragment), "'\(error.description)' does not mention '\(fragment)'", file: file, line: line)
        }
    } catch {
        XCTFail("expected a DataError, got \(error)", file: file, line: line)
    }
}
