import FewShotData
import XCTest

final class DatasetDownloadTests: XCTestCase {
    /// Serves `routes` on 127.0.0.1 for the duration of the test.
    private func startServer(_ routes: [String: Data]) throws -> LocalHTTPServer {
        let server = try LocalHTTPServer(routes: routes)
        addTeardownBlock { server.stop() }
        return server
    }

    private func syntheticArchive(prefix: String = "cifar-100-binary") throws -> Data {
        let directory = try makeTemporaryDirectory(self)
        try writeSyntheticCIFAR(to: directory, train: syntheticRecords(perClass: 1), test: syntheticRecords(perClass: 1))
        let files = try CIFAR100.fileNames.map { name in
            ("\(prefix)/\(name)", try Data(contentsOf: directory.appendingPathComponent(name)))
        }
        return try gzip(makeTar(files))
    }

    /// Returns the entries of `folder`, to check that a failed fetch leaves nothing behind.
    private func contents(_ folder: URL) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: folder.path)) ?? []).sorted()
    }

    func testFetchUnpacksAndVerifiesRealArchive() throws {
        let real = try realDataDirectory()
        let names = CIFAR100.fileNames + ["SHA256SUMS"]
        let files = try names.map { ("cifar-100-binary/\($0)", try Data(contentsOf: real.appendingPathComponent($0))) }
        let archive = try gzip(makeTar(files))
        let server = try startServer(["/cifar-100-binary.tar.gz": archive])

        let parent = try makeTemporaryDirectory(self).appendingPathComponent("Data")
        let destination = parent.appendingPathComponent("cifar-100-binary")
        let progress = ProgressRecorder()
        let result = try DatasetDownload.fetch(from: server.url("/cifar-100-binary.tar.gz"), into: destination) { received, expected in
            progress.record(received, expected)
        }
        XCTAssertEqual(result.downloadedBytes, Int64(archive.count))
        XCTAssertEqual(result.trainCount, 50_000)
        XCTAssertEqual(result.testCount, 10_000)
        XCTAssertEqual(progress.last?.0, Int64(archive.count))
        XCTAssertEqual(progress.last?.1, Int64(archive.count))
        XCTAssertEqual(contents(parent), ["cifar-100-binary"], "the archive and staging folder should be gone")
        for (name, data) in zip(names, files.map(\.1)) {
            let unpacked = try Data(contentsOf: destination.appendingPathComponent(name))
            XCTAssertEqual(unpacked.count, data.count, name)
            XCTAssertEqual(unpacked, data, name)
        }
        let dataset = try CIFAR100.load(from: destination)
        XCTAssertEqual(dataset.fineLabels[0], 19)

        // A second fetch into the same folder is refused rather than overwriting it.
        assertDataError(try DatasetDownload.fetch(from: server.url("/cifar-100-binary.tar.gz"), into: destination),
                        kind: .writeFailed, mentions: ["already contains"])
    }

    func testTruncatedArchiveIsRejected() throws {
        let archive = try syntheticArchive()
        let server = try startServer(["/cut.tar.gz": archive.prefix(archive.count / 2)])
        let parent = try makeTemporaryDirectory(self)
        let destination = parent.appendingPathComponent("cifar-100-binary")
        assertDataError(try DatasetDownload.fetch(from: server.url("/cut.tar.gz"), into: destination),
                        kind: .invalidArchive, mentions: ["/cut.tar.gz", "truncated", "download it again"])
        XCTAssertEqual(contents(parent), [])
    }

    func testSyntheticArchiveFailsOfficialCountCheck() throws {
        let server = try startServer(["/small.tar.gz": try syntheticArchive()])
        let parent = try makeTemporaryDirectory(self)
        assertDataError(try DatasetDownload.fetch(from: server.url("/small.tar.gz"), into: parent.appendingPathComponent("cifar")),
                        kind: .truncatedFile, mentions: ["100 training and 100 test records", "50000"])
        XCTAssertEqual(contents(parent), [])
    }

    func testArchiveWithoutDatasetIsRejected() throws {
        let archive = try gzip(makeTar([("other/readme.txt", Data("hi".utf8))]))
        let server = try startServer(["/other.tar.gz": archive])
        let parent = try makeTemporaryDirectory(self)
        assertDataError(try DatasetDownload.fetch(from: server.url("/other.tar.gz"), into: parent.appendingPathComponent("cifar")),
                        kind: .invalidArchive, mentions: ["does not contain", "train.bin"])
    }

    func testArchiveWithUnsafePathIsRejected() throws {
        let archive = try gzip(makeTar([("../escape.txt", Data("x".utf8))]))
        let server = try startServer(["/evil.tar.gz": archive])
        let parent = try makeTemporaryDirectory(self)
        assertDataError(try DatasetDownload.fetch(from: server.url("/evil.tar.gz"), into: parent.appendingPathComponent("cifar")),
                        kind: .invalidArchive, mentions: ["/evil.tar.gz", "unsafe path '../"])
        XCTAssertFalse(FileManager.default.fileExists(atPath: parent.deletingLastPathComponent().appendingPathComponent("escape.txt").path))
    }

    func testNonEmptyDestinationIsRejectedBeforeDownload() throws {
        let server = try startServer(["/small.tar.gz": try syntheticArchive()])
        let destination = try makeTemporaryDirectory(self).appendingPathComponent("cifar")
        try FileManager.default.createDirectory(at: destination, withIntermediateDirectories: true)
        try Data("keep".utf8).write(to: destination.appendingPathComponent("notes.txt"))
        assertDataError(try DatasetDownload.fetch(from: server.url("/small.tar.gz"), into: destination),
                        kind: .writeFailed, mentions: ["contains other files"])
        XCTAssertEqual(server.requestCount, 0)
        XCTAssertEqual(contents(destination), ["notes.txt"])
    }

    func testHTTPErrorStatusIsReported() throws {
        let server = try startServer([:])
        let parent = try makeTemporaryDirectory(self)
        assertDataError(try DatasetDownload.fetch(from: server.url("/missing.tar.gz"), into: parent.appendingPathComponent("cifar")),
                        kind: .downloadFailed, mentions: ["HTTP 404", "FEWSHOT_DATA_DIR"])
        XCTAssertEqual(contents(parent), [])
    }

    func testSilentServerTimesOutInSeconds() throws {
        let listener = try SilentTCPListener()
        defer { listener.stop() }
        let parent = try makeTemporaryDirectory(self)
        let url = URL(string: "http://127.0.0.1:\(listener.port)/cifar-100-binary.tar.gz")!
        XCTAssertThrowsError(try DatasetDownload.fetch(from: url, into: parent.appendingPathComponent("cifar"), timeout: 1)) { error in
            let message = "\(error)"
            XCTAssertEqual((error as? DataError)?.kind, .downloadFailed)
            XCTAssertTrue(message.contains("timed out after 1 s"), message)
            XCTAssertTrue(message.contains("--timeout"), message)
            XCTAssertFalse(message.contains("NSURLErrorDomain"), message)
        }
        XCTAssertEqual(contents(parent), [])
    }

    func testRefusedConnectionHasPlainMessage() throws {
        let server = try LocalHTTPServer(routes: [:])
        let url = server.url("/cifar-100-binary.tar.gz")
        server.stop()
        let parent = try makeTemporaryDirectory(self)
        XCTAssertThrowsError(try DatasetDownload.fetch(from: url, into: parent.appendingPathComponent("cifar"), timeout: 10)) { error in
            let message = "\(error)"
            XCTAssertTrue(message.contains("could not connect to the server"), message)
            XCTAssertFalse(message.contains("NSURLErrorDomain"), message)
        }
    }

    func testFailedFetchRemovesCreatedFolders() throws {
        let server = try startServer([:])
        let parent = try makeTemporaryDirectory(self)
        let destination = parent.appendingPathComponent("Data/nested/cifar-100-binary")
        assertDataError(try DatasetDownload.fetch(from: server.url("/missing.tar.gz"), into: destination),
                        kind: .downloadFailed, mentions: ["HTTP 404"])
        XCTAssertEqual(contents(parent), [], "the Data and nested folders the fetch created are removed")
    }

    func testFailedFetchKeepsExistingParent() throws {
        let server = try startServer([:])
        let parent = try makeTemporaryDirectory(self)
        try FileManager.default.createDirectory(at: parent.appendingPathComponent("Data"), withIntermediateDirectories: true)
        assertDataError(try DatasetDownload.fetch(from: server.url("/missing.tar.gz"), into: parent.appendingPathComponent("Data/cifar")),
                        kind: .downloadFailed, mentions: ["HTTP 404"])
        XCTAssertEqual(contents(parent), ["Data"], "a folder that existed before the fetch stays")
    }

    func testNonGzipFilePointsAtSource() throws {
        let server = try startServer(["/page.html": Data("<html>moved</html>".utf8)])
        let parent = try makeTemporaryDirectory(self)
        assertDataError(try DatasetDownload.fetch(from: server.url("/page.html"), into: parent.appendingPathComponent("cifar")),
                        kind: .invalidArchive, mentions: ["/page.html", "not a valid gzip file", "--url"])
        XCTAssertThrowsError(try DatasetDownload.fetch(from: server.url("/page.html"), into: parent.appendingPathComponent("cifar"))) { error in
            XCTAssertFalse("\(error)".contains("download the dataset again"), "\(error)")
        }
        XCTAssertEqual(contents(parent), [])
    }

    func testRefusedConnectionIsReported() throws {
        let server = try LocalHTTPServer(routes: [:])
        let url = server.url("/cifar-100-binary.tar.gz")
        server.stop()
        let parent = try makeTemporaryDirectory(self)
        assertDataError(try DatasetDownload.fetch(from: url, into: parent.appendingPathComponent("cifar"), timeout: 10),
                        kind: .downloadFailed, mentions: ["127.0.0.1", "--data"])
        XCTAssertEqual(contents(parent), [])
    }
}

/// Keeps the progress reports of a download, which arrive on URLSession's queue.
final class ProgressRecorder: @unchecked Sendable {
    private let lock = NSLock()
    private var values: [(Int64, Int64?)] = []

    func record(_ received: Int64, _ expected: Int64?) {
        lock.lock()
        values.append((received, expected))
        lock.unlock()
    }

    var last: (Int64, Int64?)? {
        lock.lock()
        defer { lock.unlock() }
        return values.last
    }
}
