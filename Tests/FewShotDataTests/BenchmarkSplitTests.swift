import FewShotData
import XCTest

final class BenchmarkSplitTests: XCTestCase {
    func testCarriedSplitSizes() {
        let expected: [FewShotBenchmark: [DataSplit: Int]] = [
            .cifarFS: [.train: 64, .validation: 16, .test: 20],
            .fc100: [.train: 60, .validation: 20, .test: 20],
        ]
        for benchmark in FewShotBenchmark.allCases {
            for split in DataSplit.allCases {
                XCTAssertEqual(benchmark.classes(split).count, expected[benchmark]?[split], "\(benchmark) \(split)")
            }
        }
        XCTAssertEqual(FewShotBenchmark.fc100.superclasses(.train).count, 12)
        XCTAssertEqual(FewShotBenchmark.fc100.superclasses(.validation).count, 4)
        XCTAssertEqual(FewShotBenchmark.fc100.superclasses(.test).count, 4)
        XCTAssertTrue(FewShotBenchmark.cifarFS.superclasses(.train).isEmpty)
    }

    func testCarriedSplitsAreDisjointAndCoverAllClasses() {
        for benchmark in FewShotBenchmark.allCases {
            var seen = Set<Int>()
            for split in DataSplit.allCases {
                let labels = benchmark.classes(split).map(\.label)
                XCTAssertEqual(Set(labels).count, labels.count, "\(benchmark) \(split) lists a class twice")
                XCTAssertTrue(seen.isDisjoint(with: labels), "\(benchmark) \(split) shares classes with an earlier split")
                seen.formUnion(labels)
            }
            XCTAssertEqual(seen, Set(0..<100), "\(benchmark) splits should cover the 100 fine classes")
        }
    }

    func testFC100FollowsSuperclassesOfRealData() throws {
        let dataset = try RealData.load()
        var coarseOfFine = [Int: Int]()
        for index in 0..<dataset.count {
            coarseOfFine[Int(dataset.fineLabels[index])] = Int(dataset.coarseLabels[index])
        }
        for split in DataSplit.allCases {
            let superclasses = FewShotBenchmark.fc100.superclasses(split)
            for superclass in superclasses {
                XCTAssertEqual(dataset.coarseLabelNames[superclass.label], superclass.name)
            }
            let expectedFine = Set((0..<100).filter { fine in superclasses.contains { $0.label == coarseOfFine[fine] } })
            XCTAssertEqual(Set(FewShotBenchmark.fc100.classes(split).map(\.label)), expectedFine, "FC100 \(split)")
        }
    }

    func testRealSplitsHave600ImagesPerClass() throws {
        let dataset = try RealData.load()
        for benchmark in FewShotBenchmark.allCases {
            for split in DataSplit.allCases {
                let source = try benchmark.source(split, in: dataset)
                XCTAssertEqual(source.classNames, benchmark.classes(split).map(\.name))
                XCTAssertEqual(source.height, 32)
                for classIndex in 0..<source.classCount {
                    XCTAssertEqual(source.imageCount(inClass: classIndex), 600, "\(benchmark) \(split) class \(source.classNames[classIndex])")
                }
                XCTAssertEqual(source.totalImageCount, 600 * source.classCount)
            }
        }
        // The split shares the dataset's buffer rather than copying it.
        let source = try FewShotBenchmark.cifarFS.source(.train, in: dataset)
        XCTAssertEqual(source.pixels.count, dataset.pixels.count)
        XCTAssertEqual(source.imageBytes(classIndex: 0, imageIndex: 0), Array(dataset.pixels[dataset.imageIndicesByFineLabel[0][0] * 3072 ..< (dataset.imageIndicesByFineLabel[0][0] + 1) * 3072]))
    }

    func testSplitWithWrongNamesIsRejected() throws {
        let directory = try makeTemporaryDirectory(self)
        try writeSyntheticCIFAR(to: directory, train: syntheticRecords(perClass: 2), test: syntheticRecords(perClass: 1))
        let dataset = try CIFAR100.load(from: directory)
        assertDataError(try FewShotBenchmark.cifarFS.source(.train, in: dataset), kind: .invalidLabelNames,
                        mentions: ["fine_label_names.txt", "'fine0'", "'apple'"])
    }

    func testCustomSplitByNameAndLabel() throws {
        let directory = try makeTemporaryDirectory(self)
        try writeSyntheticCIFAR(to: directory, train: syntheticRecords(perClass: 2), test: syntheticRecords(perClass: 1))
        let dataset = try CIFAR100.load(from: directory)
        let json = #"{"train": ["fine3", 7, "fine9"], "val": [10, 11], "test": ["fine50", 51]}"#
        let split = try JSONDecoder().decode(CustomSplit.self, from: Data(json.utf8))
        XCTAssertEqual(split.train, [.name("fine3"), .label(7), .name("fine9")])
        let source = try SplitDefinition.custom(split).source(.train, in: dataset)
        XCTAssertEqual(source.classNames, ["fine3", "fine7", "fine9"])
        XCTAssertEqual(source.imageCount(inClass: 1), 3)
        XCTAssertEqual(try split.resolvedLabels(in: dataset)[.test], [50, 51])
    }

    func testCustomSplitErrors() throws {
        let directory = try makeTemporaryDirectory(self)
        try writeSyntheticCIFAR(to: directory, train: syntheticRecords(perClass: 2), test: syntheticRecords(perClass: 1))
        let dataset = try CIFAR100.load(from: directory)
        let unknown = CustomSplit(train: [.name("unicorn")], validation: [], test: [.label(1)])
        assertDataError(try unknown.source(.train, in: dataset), kind: .unknownClass, mentions: ["'unicorn'", "fine_label_names.txt"])
        let outOfRange = CustomSplit(train: [.label(100)], validation: [], test: [.label(1)])
        assertDataError(try outOfRange.source(.train, in: dataset), kind: .unknownClass, mentions: ["100", "0 to 99"])
        let overlap = CustomSplit(train: [.label(4), .label(5)], validation: [], test: [.name("fine5")])
        assertDataError(try overlap.source(.train, in: dataset), kind: .invalidSplit, mentions: ["'fine5'", "'train'", "'test'"])
        assertDataError(try overlap.source(.train, in: dataset), kind: .invalidSplit,
                        mentions: ["custom split: class 'fine5' appears in 'train' and again in 'test'"])
        let overlapByLabel = CustomSplit(train: [.name("fine4")], validation: [.label(4)], test: [.label(1)])
        assertDataError(try overlapByLabel.source(.train, in: dataset), kind: .invalidSplit,
                        mentions: ["custom split: class 4 ('fine4') appears in 'train' and again in 'val'"])
        let empty = CustomSplit(train: [.label(4)], validation: [], test: [.label(1)])
        assertDataError(try empty.source(.validation, in: dataset), kind: .invalidSplit, mentions: ["'val' lists no classes"])
    }
}
