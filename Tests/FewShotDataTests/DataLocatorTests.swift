import FewShotData
import XCTest

final class DataLocatorTests: XCTestCase {
    private func makeDataset(in directory: URL) throws {
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        for name in CIFAR100.fileNames {
            try Data().write(to: directory.appendingPathComponent(name))
        }
    }

    func testPrecedenceIsFlagThenEnvironmentThenConfig() throws {
        let root = try makeTemporaryDirectory(self)
        for name in ["flag", "env", "config", "Data/cifar-100-binary"] {
            try makeDataset(in: root.appendingPathComponent(name))
        }
        let environment = [DataLocator.environmentVariable: root.appendingPathComponent("env").path]
        XCTAssertEqual(try DataLocator(flag: "flag", environment: environment, configRoot: "config", workingDirectory: root).locate().lastPathComponent, "flag")
        XCTAssertEqual(try DataLocator(flag: nil, environment: environment, configRoot: "config", workingDirectory: root).locate().lastPathComponent, "env")
        XCTAssertEqual(try DataLocator(flag: nil, environment: [:], configRoot: "config", workingDirectory: root).locate().lastPathComponent, "config")
        let fallback = try DataLocator(flag: nil, environment: [:], configRoot: nil, workingDirectory: root).locate()
        XCTAssertEqual(fallback.path, root.appendingPathComponent("Data/cifar-100-binary").standardizedFileURL.path)
        XCTAssertEqual(DataLocator(flag: nil, environment: environment, workingDirectory: root).candidate().source, DataLocator.environmentVariable)
    }

    func testMissingDataErrorListsSources() throws {
        let root = try makeTemporaryDirectory(self)
        let locator = DataLocator(flag: nil, environment: [:], configRoot: "nowhere/cifar", workingDirectory: root)
        assertDataError(try locator.locate(), kind: .dataNotFound, mentions: [
            "nowhere/cifar", "does not exist", "--data (not given)", "FEWSHOT_DATA_DIR (not set)",
            "config data.root 'nowhere/cifar'", "fewshot data fetch",
        ])
    }

    func testInvalidFlagBeatsValidEnvironment() throws {
        let root = try makeTemporaryDirectory(self)
        try makeDataset(in: root.appendingPathComponent("env"))
        let partial = root.appendingPathComponent("partial")
        try makeDataset(in: partial)
        try FileManager.default.removeItem(at: partial.appendingPathComponent("test.bin"))
        let environment = [DataLocator.environmentVariable: root.appendingPathComponent("env").path]
        let locator = DataLocator(flag: "partial", environment: environment, configRoot: nil, workingDirectory: root)
        assertDataError(try locator.locate(), kind: .dataNotFound, mentions: [
            "partial", "(from --data 'partial')", "lacks test.bin", "Only --data was used", "fix the path given to --data",
        ])
        XCTAssertThrowsError(try locator.locate()) { error in
            XCTAssertFalse("\(error)".contains("looked at"), "\(error)")
            XCTAssertFalse("\(error)".contains(root.appendingPathComponent("env").path), "the unused variable's value is not listed: \(error)")
        }
    }

    func testWrongEnvironmentIsNamedAlone() throws {
        let root = try makeTemporaryDirectory(self)
        let locator = DataLocator(flag: nil, environment: [DataLocator.environmentVariable: "gone"], configRoot: "config", workingDirectory: root)
        assertDataError(try locator.locate(), kind: .dataNotFound, mentions: [
            "(from FEWSHOT_DATA_DIR='gone')", "does not exist", "Only FEWSHOT_DATA_DIR was used", "fix or unset it",
        ])
        XCTAssertThrowsError(try locator.locate()) { error in
            XCTAssertFalse("\(error)".contains("looked at"), "\(error)")
            XCTAssertFalse("\(error)".contains("--data (not given)"), "\(error)")
        }
    }
}
