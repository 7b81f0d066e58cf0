import CZlib
import Foundation

/// Streaming gzip decompression through zlib.
///
/// The `z_stream` lives at a fixed heap address because zlib checks on every
/// call that the stream has not moved since `inflateInit2`.
final class GzipDecoder {
    private let stream = UnsafeMutablePointer<z_stream>.allocate(capacity: 1)
    private var output = [UInt8](repeating: 0, count: 1 << 20)
    private(set) var finished = false
    let name: String

    init(name: String) throws {
        self.name = name
        stream.initialize(to: z_stream())
        let status = inflateInit2_(stream, 16 + MAX_WBITS, ZLIB_VERSION, Int32(MemoryLayout<z_stream>.size))
        guard status == Z_OK else {
            stream.deallocate()
            throw DataError(.invalidArchive, "zlib could not start decompressing \(name) (status \(status))")
        }
    }

    /// Decompresses `input`, passing each piece of output to `sink`.
    func decode(_ input: UnsafeRawBufferPointer, _ sink: (UnsafeRawBufferPointer) throws -> Void) throws {
        guard !input.isEmpty else { return }
        guard !finished else {
            throw DataError(.invalidArchive, "\(name) has data after the end of its gzip stream; the download is damaged, so fetch it again")
        }
        stream.pointee.next_in = UnsafeMutablePointer(mutating: input.bindMemory(to: Bytef.self).baseAddress!)
        stream.pointee.avail_in = uInt(input.count)
        while stream.pointee.avail_in > 0 && !finished {
            let produced: Int = try output.withUnsafeMutableBytes { buffer in
                stream.pointee.next_out = buffer.bindMemory(to: Bytef.self).baseAddress!
                stream.pointee.avail_out = uInt(buffer.count)
                let status = inflate(stream, Z_NO_FLUSH)
                switch status {
                case Z_OK, Z_BUF_ERROR:
                    break
                case Z_STREAM_END:
                    finished = true
                default:
                    let message = stream.pointee.msg.map { String(cString: $0) } ?? "status \(status)"
                    throw DataError(.invalidArchive, "\(name) is not a valid gzip file (zlib: \(message), after \(stream.pointee.total_in) compressed bytes), so it is not the gzip-compressed cifar-100-binary.tar.gz; check the source it came from (for 'fewshot data fetch', the --url address)")
                }
                return buffer.count - Int(stream.pointee.avail_out)
            }
            if produced > 0 {
                try output.withUnsafeBytes { try sink(UnsafeRawBufferPointer(rebasing: $0[0..<produced])) }
            }
        }
    }

    /// Throws unless the whole gzip stream was read.
    func finish() throws {
        guard finished else {
            throw DataError(.invalidArchive, "\(name) ends before its gzip stream does (after \(stream.pointee.total_in) compressed bytes); the download is truncated, so download it again")
        }
    }

    deinit {
        inflateEnd(stream)
        stream.deallocate()
    }
}

/// Streaming extraction of a POSIX (ustar or GNU) tar archive into a folder.
///
/// Regular files and folders are extracted; links, devices and other entry types
/// are skipped. Paths that are absolute or contain `..` are rejected, so an
/// archive cannot write outside the destination.
struct TarExtractor {
    let destination: URL
    let name: String
    private var header: [UInt8] = []
    private var fileRemaining = 0
    private var paddingRemaining = 0
    private var currentFile: FileHandle?
    private var currentPath = ""
    private var longName: String?
    private var skippingLongName = false
    private var longNameBytes: [UInt8] = []
    private var zeroBlocks = 0
    private(set) var extractedFiles: [String] = []

    init(destination: URL, name: String) {
        self.destination = destination
        self.name = name
    }

    /// True once the archive's end marker (a zero block) has been read.
    var reachedEnd: Bool { zeroBlocks > 0 }

    mutating func consume(_ bytes: UnsafeRawBufferPointer) throws {
        var offset = 0
        while offset < bytes.count {
            if fileRemaining > 0 {
                let take = min(fileRemaining, bytes.count - offset)
                let piece = UnsafeRawBufferPointer(rebasing: bytes[offset ..< offset + take])
                if skippingLongName {
                    longNameBytes.append(contentsOf: piece)
                } else if let currentFile {
                    try write(piece, to: currentFile)
                }
                fileRemaining -= take
                offset += take
                if fileRemaining == 0 { try endEntry() }
            } else if paddingRemaining > 0 {
                let take = min(paddingRemaining, bytes.count - offset)
                paddingRemaining -= take
                offset += take
            } else if zeroBlocks > 0 {
                // Everything after the end marker is padding to the record size.
                return
            } else {
                let take = min(512 - header.count, bytes.count - offset)
                header.append(contentsOf: bytes[offset ..< offset + take])
                offset += take
                if header.count == 512 {
                    try beginEntry()
                    header.removeAll(keepingCapacity: true)
                }
            }
        }
    }

    /// Throws unless the archive ended at an entry boundary.
    func finish() throws {
        guard fileRemaining == 0, header.isEmpty, currentFile == nil else {
            throw DataError(.invalidArchive, "\(name) ends inside the tar entry '\(currentPath)'; the archive is truncated, so download it again")
        }
        guard reachedEnd else {
            throw DataError(.invalidArchive, "\(name) ends after '\(currentPath)' without the tar end-of-archive block; the archive is truncated, so download it again")
        }
    }

    private mutating func beginEntry() throws {
        if header.allSatisfy({ $0 == 0 }) {
            zeroBlocks += 1
            return
        }
        let storedChecksum = Self.octal(header[148..<156])
        var computed = 0
        for (index, byte) in header.enumerated() {
            computed += (148..<156).contains(index) ? 32 : Int(byte)
        }
        guard storedChecksum == computed else {
            throw DataError(.invalidArchive, "\(name): a tar header after '\(currentPath)' has checksum \(storedChecksum.map(String.init) ?? "unreadable"), expected \(computed); the archive is damaged, so download it again")
        }
        guard let size = Self.size(header[124..<136]) else {
            throw DataError(.invalidArchive, "\(name): the tar header after '\(currentPath)' has an unreadable size field; the archive is damaged, so download it again")
        }
        let type = header[156]
        var path = longName ?? Self.string(header[0..<100])
        longName = nil
        let prefix = Self.string(header[345..<500])
        if !prefix.isEmpty && Array(header[257..<262]) == Array("ustar".utf8) {
            path = prefix + "/" + path
        }
        currentPath = path
        fileRemaining = size
        paddingRemaining = (512 - size % 512) % 512

        switch type {
        case UInt8(ascii: "L"):
            skippingLongName = true
            longNameBytes = []
        case UInt8(ascii: "0"), 0:
            let url = try safeURL(path)
            try createDirectory(url.deletingLastPathComponent())
            guard FileManager.default.createFile(atPath: url.path, contents: nil),
                  let handle = FileHandle(forWritingAtPath: url.path) else {
                throw DataError(.writeFailed, "could not create \(url.path) while unpacking \(name); check that the folder is writable and has free space")
            }
            currentFile = handle
            extractedFiles.append(path)
        case UInt8(ascii: "5"):
            try createDirectory(try safeURL(path))
        default:
            break
        }
        if fileRemaining == 0 { try endEntry() }
    }

    private mutating func endEntry() throws {
        if skippingLongName {
            skippingLongName = false
            longName = Self.string(longNameBytes[...])
        }
        if let currentFile {
            do {
                try currentFile.close()
            } catch {
                throw DataError(.writeFailed, "could not finish writing '\(currentPath)' while unpacking \(name) (\(error.localizedDescription))")
            }
        }
        currentFile = nil
    }

    private func write(_ bytes: UnsafeRawBufferPointer, to handle: FileHandle) throws {
        do {
            try handle.write(contentsOf: Data(bytes))
        } catch {
            throw DataError(.writeFailed, "could not write '\(currentPath)' while unpacking \(name) (\(error.localizedDescription)); check the free disk space")
        }
    }

    private func safeURL(_ path: String) throws -> URL {
        let components = path.split(separator: "/").filter { $0 != "." }
        guard !path.hasPrefix("/"), !components.contains(".."), !components.isEmpty else {
            throw DataError(.invalidArchive, "\(name) contains the unsafe path '\(path)'; refusing to unpack an archive that writes outside its folder")
        }
        return components.reduce(destination) { $0.appendingPathComponent(String($1)) }
    }

    private func createDirectory(_ url: URL) throws {
        do {
            try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        } catch {
            throw DataError(.writeFailed, "could not create the folder \(url.path) while unpacking \(name) (\(error.localizedDescription))")
        }
    }

    private static func string(_ bytes: ArraySlice<UInt8>) -> String {
        let end = bytes.firstIndex(of: 0) ?? bytes.endIndex
        return String(decoding: bytes[bytes.startIndex..<end], as: UTF8.self)
    }

    private static func octal(_ bytes: ArraySlice<UInt8>) -> Int? {
        let text = string(bytes).trimmingCharacters(in: .whitespaces)
        return text.isEmpty ? 0 : Int(text, radix: 8)
    }

    /// Reads a size field: octal digits, or GNU's base-256 form (high bit set) for sizes of 8 GiB and more.
    private static func size(_ bytes: ArraySlice<UInt8>) -> Int? {
        if let first = bytes.first, first & 0x80 != 0 {
            return bytes.dropFirst().reduce(Int(first & 0x7F)) { $0 << 8 | Int($1) }
        }
        return octal(bytes)
    }
}
