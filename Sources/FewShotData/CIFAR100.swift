import Foundation

/// The CIFAR-100 dataset in its official binary layout (Krizhevsky, 2009):
/// `train.bin`, `test.bin`, `fine_label_names.txt` and `coarse_label_names.txt`.
///
/// Each record of a `.bin` file is 3,074 bytes: the coarse label, the fine label,
/// then 1,024 red, 1,024 green and 1,024 blue bytes, each plane row-major 32 x 32.
/// All images are kept in one byte buffer in CHW order, training records first,
/// then test records, in file order.
public struct CIFAR100: Sendable {
    public static let side = 32
    public static let imageByteCount = 3 * 32 * 32
    public static let recordByteCount = 2 + imageByteCount
    public static let fineClassCount = 100
    public static let coarseClassCount = 20
    public static let officialTrainCount = 50_000
    public static let officialTestCount = 10_000
    public static let fileNames = ["train.bin", "test.bin", "fine_label_names.txt", "coarse_label_names.txt"]

    /// All images, `count * 3,072` bytes: image `i` occupies bytes
    /// `i * 3072 ..< (i + 1) * 3072` in CHW order.
    public let pixels: [UInt8]
    /// The fine label (0..<100) of each image.
    public let fineLabels: [UInt8]
    /// The coarse label (superclass, 0..<20) of each image.
    public let coarseLabels: [UInt8]
    /// The 100 fine class names; index = fine label.
    public let fineLabelNames: [String]
    /// The 20 coarse class names; index = coarse label.
    public let coarseLabelNames: [String]
    /// The number of records read from `train.bin`; they come first.
    public let trainCount: Int
    /// The number of records read from `test.bin`; they follow the training records.
    public let testCount: Int
    /// The indices of the images of each fine class, in record order (training first).
    public let imageIndicesByFineLabel: [[Int]]

    /// The number of images, training and test together.
    public var count: Int { trainCount + testCount }

    /// Reads and validates the four files in `directory`.
    ///
    /// Checks that both `.bin` files are non-empty whole numbers of records, every
    /// label is in range, each fine label always comes with the same coarse label,
    /// and the name files list exactly 100 and 20 non-empty names. Any record count
    /// is accepted here; `verifyOfficialCounts()` checks the official 50,000 + 10,000.
    public static func load(from directory: URL) throws -> CIFAR100 {
        let fineNames = try readLabelNames(directory.appendingPathComponent("fine_label_names.txt"), expected: fineClassCount)
        let coarseNames = try readLabelNames(directory.appendingPathComponent("coarse_label_names.txt"), expected: coarseClassCount)

        let trainURL = directory.appendingPathComponent("train.bin")
        let testURL = directory.appendingPathComponent("test.bin")
        let trainCount = try recordCount(of: trainURL)
        let testCount = try recordCount(of: testURL)
        let total = trainCount + testCount

        var pixels = [UInt8](repeating: 0, count: total * imageByteCount)
        var fineLabels = [UInt8](repeating: 0, count: total)
        var coarseLabels = [UInt8](repeating: 0, count: total)
        try readRecords(trainURL, count: trainCount, firstIndex: 0, pixels: &pixels, fine: &fineLabels, coarse: &coarseLabels)
        try readRecords(testURL, count: testCount, firstIndex: trainCount, pixels: &pixels, fine: &fineLabels, coarse: &coarseLabels)

        var coarseOfFine = [Int](repeating: -1, count: fineClassCount)
        var indicesByFine = [[Int]](repeating: [], count: fineClassCount)
        for index in 0..<total {
            let fine = Int(fineLabels[index])
            let coarse = Int(coarseLabels[index])
            if coarseOfFine[fine] < 0 {
                coarseOfFine[fine] = coarse
            } else if coarseOfFine[fine] != coarse {
                let (url, record) = index < trainCount ? (trainURL, index) : (testURL, index - trainCount)
                throw DataError(.inconsistentLabels, "\(url.path): record \(record) has fine label \(fine) with coarse label \(coarse), but earlier records give that fine label coarse label \(coarseOfFine[fine]); the file is corrupt, so download the dataset again ('fewshot data fetch')")
            }
            indicesByFine[fine].append(index)
        }

        return CIFAR100(
            pixels: pixels, fineLabels: fineLabels, coarseLabels: coarseLabels,
            fineLabelNames: fineNames, coarseLabelNames: coarseNames,
            trainCount: trainCount, testCount: testCount, imageIndicesByFineLabel: indicesByFine)
    }

    /// Checks the official sizes: 50,000 training and 10,000 test records, and
    /// 500 training plus 100 test images in every fine class.
    public func verifyOfficialCounts(directory: URL) throws {
        guard trainCount == Self.officialTrainCount, testCount == Self.officialTestCount else {
            throw DataError(.truncatedFile, "\(directory.path): found \(trainCount) training and \(testCount) test records, expected \(Self.officialTrainCount) and \(Self.officialTestCount) as in the official CIFAR-100 binary release; download it again with 'fewshot data fetch'")
        }
        for (fine, indices) in imageIndicesByFineLabel.enumerated() {
            let trainImages = indices.prefix { $0 < trainCount }.count
            guard trainImages == 500, indices.count == 600 else {
                throw DataError(.inconsistentLabels, "\(directory.path): fine class \(fine) '\(fineLabelNames[fine])' has \(trainImages) training and \(indices.count - trainImages) test images, expected 500 and 100; download the dataset again with 'fewshot data fetch'")
            }
        }
    }

    /// Calls `body` with the 3,072 CHW bytes of image `index`.
    @inlinable
    public func withImageBytes<R>(_ index: Int, _ body: (UnsafeBufferPointer<UInt8>) throws -> R) rethrows -> R {
        precondition(index >= 0 && index < count, "CIFAR-100 image index \(index) is outside 0..<\(count)")
        return try pixels.withUnsafeBufferPointer { buffer in
            try body(UnsafeBufferPointer(rebasing: buffer[index * Self.imageByteCount ..< (index + 1) * Self.imageByteCount]))
        }
    }

    /// Returns the fine label of a class name, or nil when there is no such class.
    public func fineLabel(named name: String) -> Int? {
        fineLabelNames.firstIndex(of: name)
    }

    // MARK: - Reading

    static func readLabelNames(_ url: URL, expected: Int) throws -> [String] {
        guard let data = FileManager.default.contents(atPath: url.path) else {
            throw DataError(.missingFile, "\(url.path) is missing or unreadable; it must list the \(expected) class names one a line, as in the official CIFAR-100 binary release ('fewshot data fetch' downloads it)")
        }
        guard let text = String(data: data, encoding: .utf8) else {
            throw DataError(.invalidLabelNames, "\(url.path) is not UTF-8 text; expected \(expected) class names one a line")
        }
        var lines = text.split(separator: "\n", omittingEmptySubsequences: false)
            .map { $0.trimmingCharacters(in: .whitespaces.union(CharacterSet(charactersIn: "\r"))) }
        while lines.last == "" { lines.removeLast() }
        if let blank = lines.firstIndex(of: "") {
            throw DataError(.invalidLabelNames, "\(url.path): line \(blank + 1) is blank; expected \(expected) non-empty class names one a line")
        }
        guard lines.count == expected else {
            throw DataError(.invalidLabelNames, "\(url.path) lists \(counted(lines.count, "class name")), expected \(expected); replace it with the file from the official CIFAR-100 binary release")
        }
        guard Set(lines).count == expected else {
            throw DataError(.invalidLabelNames, "\(url.path) lists a class name twice; expected \(expected) distinct names")
        }
        return lines
    }

    /// Returns the number of records in `url`, from the size of the file it
    /// names. `stat` follows symbolic links, so a linked data file is measured by
    /// its target rather than by the link itself.
    static func recordCount(of url: URL) throws -> Int {
        var status = stat()
        guard stat(url.path, &status) == 0 else {
            throw DataError(.missingFile, "\(url.path) is missing or unreadable; expected CIFAR-100 records of \(recordByteCount) bytes ('fewshot data fetch' downloads the dataset)")
        }
        let size = Int(status.st_size)
        guard size > 0, size % recordByteCount == 0 else {
            throw DataError(.truncatedFile, "\(url.path) has \(size) bytes, not a positive multiple of the \(recordByteCount)-byte record size (the last whole record ends at byte \(size / recordByteCount * recordByteCount)); the file is truncated or not CIFAR-100, so download it again ('fewshot data fetch')")
        }
        return size / recordByteCount
    }

    /// Reads `count` records, `chunkRecords` at a time, into the buffers from image `firstIndex` on.
    static func readRecords(
        _ url: URL, count: Int, firstIndex: Int,
        pixels: inout [UInt8], fine: inout [UInt8], coarse: inout [UInt8]
    ) throws {
        guard let handle = FileHandle(forReadingAtPath: url.path) else {
            throw DataError(.missingFile, "\(url.path) could not be opened for reading; check its permissions")
        }
        defer { try? handle.close() }
        let chunkRecords = 2_000
        var record = 0
        while record < count {
            let records = min(chunkRecords, count - record)
            let data = try handle.read(upToCount: records * recordByteCount) ?? Data()
            guard data.count == records * recordByteCount else {
                throw DataError(.truncatedFile, "\(url.path) ended at byte \(record * recordByteCount + data.count) while reading record \(record + data.count / recordByteCount); the file changed while being read or is truncated, so download it again ('fewshot data fetch')")
            }
            try data.withUnsafeBytes { raw in
                let bytes = raw.bindMemory(to: UInt8.self)
                try pixels.withUnsafeMutableBufferPointer { pixels in
                    for offset in 0..<records {
                        let source = offset * recordByteCount
                        let index = firstIndex + record + offset
                        let coarseLabel = bytes[source]
                        let fineLabel = bytes[source + 1]
                        guard coarseLabel < coarseClassCount, fineLabel < fineClassCount else {
                            let (name, value, limit) = coarseLabel >= coarseClassCount
                                ? ("coarse", coarseLabel, coarseClassCount) : ("fine", fineLabel, fineClassCount)
                            throw DataError(.labelOutOfRange, "\(url.path): record \(record + offset) (byte offset \((record + offset) * recordByteCount)) has \(name) label \(value), expected 0 to \(limit - 1); the file is corrupt or not CIFAR-100, so download it again ('fewshot data fetch')")
                        }
                        coarse[index] = coarseLabel
                        fine[index] = fineLabel
                        let destination = pixels.baseAddress! + index * imageByteCount
                        destination.update(from: bytes.baseAddress! + source + 2, count: imageByteCount)
                    }
                }
            }
            record += records
        }
    }
}
