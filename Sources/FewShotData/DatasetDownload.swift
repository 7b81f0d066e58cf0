import Dispatch
import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// Downloads and unpacks the official `cifar-100-binary.tar.gz`.
public enum DatasetDownload {
    /// The dataset's home page copy (Krizhevsky, 2009), about 161 MB.
    public static let officialURL = URL(string: "https://www.cs.toronto.edu/~kriz/cifar-100-binary.tar.gz")!

    /// The outcome of a finished download.
    public struct Result: Sendable {
        public let directory: URL
        public let downloadedBytes: Int64
        public let trainCount: Int
        public let testCount: Int
    }

    /// Downloads `url` (HTTP or HTTPS), unpacks it, checks the official record
    /// counts and file sizes, and only then moves the files to `directory`.
    ///
    /// `directory` must not already hold the dataset. The archive and a staging
    /// folder live beside `directory` while the work is under way and are removed
    /// afterwards, so a failed fetch leaves no partial dataset behind. A failed
    /// fetch also removes the parent folders it created, when they are empty. `progress`
    /// receives the bytes received so far and the total when the server states it.
    public static func fetch(
        from url: URL = officialURL, into directory: URL, timeout: TimeInterval = 60,
        progress: @escaping @Sendable (Int64, Int64?) -> Void = { _, _ in }
    ) throws -> Result {
        let fileManager = FileManager.default
        if let missing = DataLocator.missingFiles(in: directory), missing.isEmpty {
            throw DataError(.writeFailed, "\(directory.path) already contains the CIFAR-100 binary files; delete them first to download them again")
        }
        if let contents = try? fileManager.contentsOfDirectory(atPath: directory.path), !contents.isEmpty {
            throw DataError(.writeFailed, "\(directory.path) exists and contains other files; delete it or choose another folder with --data")
        }
        let parent = directory.deletingLastPathComponent()
        // The folders this call creates, deepest first, are removed again unless the fetch succeeds.
        var createdFolders: [URL] = []
        var ancestor = parent
        while !fileManager.fileExists(atPath: ancestor.path), ancestor.path != "/" {
            createdFolders.append(ancestor)
            ancestor = ancestor.deletingLastPathComponent()
        }
        var succeeded = false
        defer {
            if !succeeded {
                // rmdir removes only empty folders, so nothing another process put there is lost.
                for folder in createdFolders { rmdir(folder.path) }
            }
        }
        do {
            try fileManager.createDirectory(at: parent, withIntermediateDirectories: true)
        } catch {
            throw DataError(.writeFailed, "could not create \(parent.path) (\(error.localizedDescription)); choose a writable data folder with --data")
        }

        let token = "\(ProcessInfo.processInfo.processIdentifier)-\(UInt32.random(in: 0...UInt32.max))"
        let archive = parent.appendingPathComponent(".\(directory.lastPathComponent).\(token).tar.gz")
        let staging = parent.appendingPathComponent(".\(directory.lastPathComponent).\(token).partial")
        defer {
            try? fileManager.removeItem(at: archive)
            try? fileManager.removeItem(at: staging)
        }

        let downloaded = try download(url, to: archive, timeout: timeout, progress: progress)
        try unpack(archive, into: staging, name: "the archive from \(url.absoluteString)")

        guard let unpacked = findDatasetFolder(in: staging) else {
            throw DataError(.invalidArchive, "the archive from \(url.absoluteString) does not contain \(CIFAR100.fileNames.joined(separator: ", ")); check that the URL points at cifar-100-binary.tar.gz")
        }
        let dataset = try CIFAR100.load(from: unpacked)
        try dataset.verifyOfficialCounts(directory: unpacked)

        // An empty folder (for example one a user created for the data) may be replaced.
        if fileManager.fileExists(atPath: directory.path) {
            let contents = (try? fileManager.contentsOfDirectory(atPath: directory.path)) ?? []
            guard contents.isEmpty else {
                throw DataError(.writeFailed, "\(directory.path) exists and is not empty; delete it or choose another folder with --data")
            }
            try? fileManager.removeItem(at: directory)
        }
        do {
            try fileManager.moveItem(at: unpacked, to: directory)
        } catch {
            throw DataError(.writeFailed, "could not move the unpacked files to \(directory.path) (\(error.localizedDescription))")
        }
        succeeded = true
        return Result(directory: directory, downloadedBytes: downloaded, trainCount: dataset.trainCount, testCount: dataset.testCount)
    }

    /// Unpacks a `.tar.gz` file into `folder`, streaming, without holding it in memory.
    /// Errors call the archive `name` (default: its file name).
    public static func unpack(_ archive: URL, into folder: URL, name: String? = nil) throws {
        guard let handle = FileHandle(forReadingAtPath: archive.path) else {
            throw DataError(.missingFile, "\(archive.path) is missing or unreadable")
        }
        defer { try? handle.close() }
        let name = name ?? archive.lastPathComponent
        let decoder = try GzipDecoder(name: name)
        var extractor = TarExtractor(destination: folder, name: name)
        while let data = try handle.read(upToCount: 1 << 20), !data.isEmpty {
            try data.withUnsafeBytes { input in
                try decoder.decode(input) { try extractor.consume($0) }
            }
        }
        try decoder.finish()
        try extractor.finish()
    }

    /// Returns the folder in `root` (itself or one level down) that contains the four dataset files.
    static func findDatasetFolder(in root: URL) -> URL? {
        if DataLocator.missingFiles(in: root) == [] { return root }
        let children = (try? FileManager.default.contentsOfDirectory(atPath: root.path)) ?? []
        for child in children.sorted() {
            let url = root.appendingPathComponent(child)
            if DataLocator.missingFiles(in: url) == [] { return url }
        }
        return nil
    }

    /// Streams the response body of `url` into `file`; returns the number of bytes received.
    static func download(_ url: URL, to file: URL, timeout: TimeInterval, progress: @escaping @Sendable (Int64, Int64?) -> Void) throws -> Int64 {
        guard let scheme = url.scheme?.lowercased(), scheme == "http" || scheme == "https" else {
            throw DataError(.downloadFailed, "cannot download '\(url.absoluteString)': only http and https URLs are supported")
        }
        guard FileManager.default.createFile(atPath: file.path, contents: nil),
              let handle = FileHandle(forWritingAtPath: file.path) else {
            throw DataError(.writeFailed, "could not create \(file.path) for the download; check that the folder is writable")
        }
        defer { try? handle.close() }

        let delegate = DownloadDelegate(handle: handle, progress: progress)
        let configuration = URLSessionConfiguration.ephemeral
        configuration.timeoutIntervalForRequest = timeout
        let session = URLSession(configuration: configuration, delegate: delegate, delegateQueue: nil)
        defer { session.finishTasksAndInvalidate() }
        session.dataTask(with: url).resume()
        delegate.finished.wait()

        let advice = "if you already have cifar-100-binary, point --data or \(DataLocator.environmentVariable) at it instead"
        if let status = delegate.status, status != 200 {
            throw DataError(.downloadFailed, "download of \(url.absoluteString) failed: the server responded with HTTP \(status), expected 200; \(advice)")
        }
        if let error = delegate.transferError, urlErrorCode(error) == .timedOut {
            throw DataError(.downloadFailed, "download of \(url.absoluteString) timed out after \(String(format: "%g", timeout)) s without data from the server (\(delegate.received) bytes received); check the network connection and retry, raise --timeout, or \(advice)")
        }
        if let error = delegate.transferError {
            throw DataError(.downloadFailed, "download of \(url.absoluteString) failed after \(delegate.received) bytes (\(describe(error))); check the network connection and retry, or \(advice)")
        }
        if let error = delegate.failure {
            throw DataError(.downloadFailed, "download of \(url.absoluteString) failed after \(delegate.received) bytes (\(error)); check the network connection and retry, or \(advice)")
        }
        if let expected = delegate.expected, expected != delegate.received {
            throw DataError(.downloadFailed, "download of \(url.absoluteString) stopped after \(delegate.received) of \(expected) bytes; retry, or \(advice)")
        }
        return delegate.received
    }
}

extension DatasetDownload {
    /// Returns the URL loading code of `error`, or nil for other errors. Both a
    /// URLError and an NSError in NSURLErrorDomain are accepted, because
    /// URLSession on Linux may report either.
    static func urlErrorCode(_ error: Error) -> URLError.Code? {
        if let urlError = error as? URLError { return urlError.code }
        let nsError = error as NSError
        return nsError.domain == NSURLErrorDomain ? URLError.Code(rawValue: nsError.code) : nil
    }

    /// Returns a plain description of a URLSession error, in place of
    /// Foundation's "NSURLErrorDomain error -1004" style text.
    static func describe(_ error: Error) -> String {
        guard let code = urlErrorCode(error) else { return error.localizedDescription }
        switch code {
        case .timedOut: return "timed out"
        case .cannotConnectToHost: return "could not connect to the server: connection refused"
        case .cannotFindHost, .dnsLookupFailed: return "the host name was not found"
        case .notConnectedToInternet: return "there is no network connection"
        case .networkConnectionLost: return "the server closed the connection"
        case .secureConnectionFailed, .serverCertificateUntrusted, .serverCertificateHasBadDate,
             .serverCertificateNotYetValid, .serverCertificateHasUnknownRoot:
            return "the TLS connection to the server failed"
        case .badServerResponse: return "the server sent an invalid response"
        case .httpTooManyRedirects, .redirectToNonExistentLocation: return "the server's redirects lead nowhere"
        default: return "network error \(code.rawValue): \(error.localizedDescription)"
        }
    }
}

/// Receives the response of one download on URLSession's queue.
private final class DownloadDelegate: NSObject, URLSessionDataDelegate, @unchecked Sendable {
    let handle: FileHandle
    let progress: @Sendable (Int64, Int64?) -> Void
    let finished = DispatchSemaphore(value: 0)
    var received: Int64 = 0
    var expected: Int64?
    var status: Int?
    var failure: String?
    /// The error URLSession reported, when the transfer itself failed.
    var transferError: Error?

    init(handle: FileHandle, progress: @escaping @Sendable (Int64, Int64?) -> Void) {
        self.handle = handle
        self.progress = progress
    }

    func urlSession(_ session: URLSession, dataTask: URLSessionDataTask, didReceive response: URLResponse,
                    completionHandler: @escaping (URLSession.ResponseDisposition) -> Void) {
        if let http = response as? HTTPURLResponse {
            status = http.statusCode
            guard http.statusCode == 200 else {
                completionHandler(.cancel)
                return
            }
        }
        expected = response.expectedContentLength > 0 ? response.expectedContentLength : nil
        completionHandler(.allow)
    }

    func urlSession(_ session: URLSession, dataTask: URLSessionDataTask, didReceive data: Data) {
        guard failure == nil else { return }
        do {
            try handle.write(contentsOf: data)
            received += Int64(data.count)
            progress(received, expected)
        } catch {
            failure = "writing the archive failed: \(error.localizedDescription)"
            dataTask.cancel()
        }
    }

    func urlSession(_ session: URLSession, task: URLSessionTask, didCompleteWithError error: Error?) {
        if let error, failure == nil, status == nil || status == 200 {
            transferError = error
        }
        finished.signal()
    }
}
