import CZlib
import FewShotData
import Foundation
import XCTest
#if canImport(Glibc)
import Glibc
#endif

/// Creates a fresh temporary folder that is removed when the test ends.
func makeTemporaryDirectory(_ testCase: XCTestCase) throws -> URL {
    let url = FileManager.default.temporaryDirectory.appendingPathComponent("FewShotDataTests-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    testCase.addTeardownBlock { try? FileManager.default.removeItem(at: url) }
    return url
}

/// Returns the real CIFAR-100 folder: FEWSHOT_DATA_DIR, else `<package root>/../shared/data/cifar-100-binary`.
func realDataDirectory() throws -> URL {
    if let variable = ProcessInfo.processInfo.environment["FEWSHOT_DATA_DIR"], !variable.isEmpty {
        let url = URL(fileURLWithPath: variable)
        if DataLocator.missingFiles(in: url) == [] { return url }
    }
    let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    let shared = packageRoot.deletingLastPathComponent().appendingPathComponent("shared/data/cifar-100-binary")
    if DataLocator.missingFiles(in: shared) == [] { return shared }
    throw XCTSkip("real CIFAR-100 not found: set FEWSHOT_DATA_DIR or place it at \(shared.path)")
}

/// The real dataset, loaded once for all tests that need it.
enum RealData {
    nonisolated(unsafe) private static var cached: CIFAR100?
    private static let lock = NSLock()

    static func load() throws -> CIFAR100 {
        let directory = try realDataDirectory()
        lock.lock()
        defer { lock.unlock() }
        if let cached { return cached }
        let dataset = try CIFAR100.load(from: directory)
        cached = dataset
        return dataset
    }
}

/// One synthetic CIFAR-100 record: labels and a pixel pattern derived from `seed`.
struct SyntheticRecord {
    var coarse: UInt8
    var fine: UInt8
    var seed: UInt8
}

/// Writes a CIFAR-100 binary folder with the given records and the standard name counts.
func writeSyntheticCIFAR(
    to directory: URL, train: [SyntheticRecord], test: [SyntheticRecord],
    fineNames: [String] = (0..<100).map { "fine\($0)" }, coarseNames: [String] = (0..<20).map { "coarse\($0)" }
) throws {
    func encode(_ records: [SyntheticRecord]) -> Data {
        var bytes = [UInt8]()
        bytes.reserveCapacity(records.count * 3074)
        for record in records {
            bytes.append(record.coarse)
            bytes.append(record.fine)
            for index in 0..<3072 {
                bytes.append(UInt8(truncatingIfNeeded: index &* 7 &+ Int(record.seed) &* 31))
            }
        }
        return Data(bytes)
    }
    try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    try encode(train).write(to: directory.appendingPathComponent("train.bin"))
    try encode(test).write(to: directory.appendingPathComponent("test.bin"))
    try (fineNames.joined(separator: "\n") + "\n").write(to: directory.appendingPathComponent("fine_label_names.txt"), atomically: true, encoding: .utf8)
    try (coarseNames.joined(separator: "\n") + "\n").write(to: directory.appendingPathComponent("coarse_label_names.txt"), atomically: true, encoding: .utf8)
}

/// Records for every fine class (`perClass` each), with fine label `f` in coarse class `f % 20`.
func syntheticRecords(perClass: Int, seedOffset: Int = 0) -> [SyntheticRecord] {
    (0..<100).flatMap { fine in
        (0..<perClass).map { index in
            SyntheticRecord(coarse: UInt8(fine % 20), fine: UInt8(fine), seed: UInt8(truncatingIfNeeded: fine * 13 + index + seedOffset))
        }
    }
}

// MARK: - tar.gz building

/// Returns a ustar archive of the given files (path, contents), ending in two zero blocks.
func makeTar(_ files: [(String, Data)]) -> Data {
    var archive = Data()
    func header(name: String, size: Int, type: UInt8) -> [UInt8] {
        var block = [UInt8](repeating: 0, count: 512)
        func put(_ text: String, at offset: Int) {
            for (index, byte) in text.utf8.enumerated() { block[offset + index] = byte }
        }
        put(name, at: 0)
        put("0000644", at: 100)
        put("0000000", at: 108)
        put("0000000", at: 116)
        put(String(format: "%011o", size), at: 124)
        put(String(format: "%011o", 0), at: 136)
        block[156] = type
        put("ustar", at: 257)
        put("00", at: 263)
        let checksum = block.enumerated().reduce(0) { $0 + (($1.offset >= 148 && $1.offset < 156) ? 32 : Int($1.element)) }
        put(String(format: "%06o", checksum), at: 148)
        block[154] = 0
        block[155] = 32
        return block
    }
    var directories = Set<String>()
    for (path, contents) in files {
        let folder = (path as NSString).deletingLastPathComponent
        if !folder.isEmpty, directories.insert(folder).inserted {
            archive.append(contentsOf: header(name: folder + "/", size: 0, type: UInt8(ascii: "5")))
        }
        archive.append(contentsOf: header(name: path, size: contents.count, type: UInt8(ascii: "0")))
        archive.append(contents)
        archive.append(Data(count: (512 - contents.count % 512) % 512))
    }
    archive.append(Data(count: 1024))
    return archive
}

/// Compresses `data` into the gzip format with zlib at level 1.
func gzip(_ data: Data) throws -> Data {
    let stream = UnsafeMutablePointer<z_stream>.allocate(capacity: 1)
    stream.initialize(to: z_stream())
    defer { deflateEnd(stream); stream.deallocate() }
    guard deflateInit2_(stream, 1, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY, ZLIB_VERSION, Int32(MemoryLayout<z_stream>.size)) == Z_OK else {
        throw XCTSkip("zlib deflateInit2 failed")
    }
    var output = Data()
    var buffer = [UInt8](repeating: 0, count: 1 << 20)
    try data.withUnsafeBytes { input in
        stream.pointee.next_in = UnsafeMutablePointer(mutating: input.bindMemory(to: Bytef.self).baseAddress!)
        stream.pointee.avail_in = uInt(input.count)
        var status = Z_OK
        repeat {
            let produced = buffer.withUnsafeMutableBytes { out -> Int in
                stream.pointee.next_out = out.bindMemory(to: Bytef.self).baseAddress!
                stream.pointee.avail_out = uInt(out.count)
                status = deflate(stream, Z_FINISH)
                return out.count - Int(stream.pointee.avail_out)
            }
            output.append(contentsOf: buffer[0..<produced])
            guard status == Z_OK || status == Z_STREAM_END || status == Z_BUF_ERROR else {
                throw XCTSkip("zlib deflate failed with status \(status)")
            }
        } while status != Z_STREAM_END
    }
    return output
}

// MARK: - A local HTTP server

/// A minimal HTTP/1.1 server on 127.0.0.1 and a port the kernel picks, serving
/// fixed bodies by path (404 otherwise), one connection at a time.
final class LocalHTTPServer: @unchecked Sendable {
    let port: UInt16
    private let listener: Int32
    private let routes: [String: Data]
    private let stopped = DispatchSemaphore(value: 0)
    private(set) var requestCount = 0

    init(routes: [String: Data]) throws {
        self.routes = routes
        let listener = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard listener >= 0 else { throw XCTSkip("socket() failed: errno \(errno)") }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = 0
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(listener, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0, listen(listener, 8) == 0 else {
            close(listener)
            throw XCTSkip("cannot listen on 127.0.0.1: errno \(errno)")
        }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(listener, $0, &length) }
        }
        self.listener = listener
        port = UInt16(bigEndian: address.sin_port)
        let thread = Thread { [self] in serve() }
        thread.start()
    }

    func url(_ path: String) -> URL { URL(string: "http://127.0.0.1:\(port)\(path)")! }

    /// Closes the listening socket and waits for the serving thread to end.
    func stop() {
        shutdown(listener, Int32(SHUT_RDWR))
        close(listener)
        stopped.wait()
    }

    private func serve() {
        defer { stopped.signal() }
        while true {
            let client = accept(listener, nil, nil)
            guard client >= 0 else { return }
            requestCount += 1
            respond(client)
            close(client)
        }
    }

    private func respond(_ client: Int32) {
        var request = [UInt8]()
        var chunk = [UInt8](repeating: 0, count: 4096)
        while !request.containsHeaderEnd {
            let count = recv(client, &chunk, chunk.count, 0)
            guard count > 0 else { return }
            request.append(contentsOf: chunk[0..<count])
        }
        let firstLine = String(decoding: request.prefix { $0 != 13 && $0 != 10 }, as: UTF8.self)
        let parts = firstLine.split(separator: " ")
        let path = parts.count > 1 ? String(parts[1]) : "/"
        let body = routes[path]
        let status = body == nil ? "404 Not Found" : "200 OK"
        let payload = body ?? Data("not found\n".utf8)
        let head = "HTTP/1.1 \(status)\r\nContent-Type: application/octet-stream\r\nContent-Length: \(payload.count)\r\nConnection: close\r\n\r\n"
        sendAll(client, Data(head.utf8))
        sendAll(client, payload)
    }

    private func sendAll(_ client: Int32, _ data: Data) {
        data.withUnsafeBytes { raw in
            var offset = 0
            while offset < raw.count {
                let sent = send(client, raw.baseAddress! + offset, raw.count - offset, Int32(MSG_NOSIGNAL))
                guard sent > 0 else { return }
                offset += sent
            }
        }
    }
}

/// A TCP socket on 127.0.0.1 that listens but never accepts or answers, so a
/// client's connection succeeds and its request waits until it times out.
final class SilentTCPListener {
    let port: UInt16
    private let listener: Int32

    init() throws {
        let listener = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard listener >= 0 else { throw XCTSkip("socket() failed: errno \(errno)") }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = 0
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(listener, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0, listen(listener, 8) == 0 else {
            close(listener)
            throw XCTSkip("cannot listen on 127.0.0.1: errno \(errno)")
        }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(listener, $0, &length) }
        }
        self.listener = listener
        port = UInt16(bigEndian: address.sin_port)
    }

    func stop() {
        close(listener)
    }
}

private extension Array where Element == UInt8 {
    var containsHeaderEnd: Bool {
        guard count >= 4 else { return false }
        for index in 0...(count - 4) where self[index] == 13 && self[index + 1] == 10 && self[index + 2] == 13 && self[index + 3] == 10 {
            return true
        }
        return false
    }
}
