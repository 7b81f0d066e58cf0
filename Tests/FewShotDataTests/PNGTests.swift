import CPNG
import FewShotData
import XCTest

final class PNGTests: XCTestCase {
    /// Encodes interleaved bytes in a libpng simplified format (gray, gray + alpha, RGBA, ...).
    private func encode(format: UInt32, width: Int, height: Int, channels: Int, bytes: [UInt8], colormap: [UInt8]? = nil, colormapEntries: Int = 0) throws -> Data {
        var image = png_image()
        image.version = UInt32(PNG_IMAGE_VERSION)
        image.width = UInt32(width)
        image.height = UInt32(height)
        image.format = format
        image.colormap_entries = UInt32(colormapEntries)
        var size: png_alloc_size_t = 1 << 20
        var output = [UInt8](repeating: 0, count: Int(size))
        let written = output.withUnsafeMutableBytes { memory in
            bytes.withUnsafeBytes { buffer in
                if let colormap {
                    return colormap.withUnsafeBytes { map in
                        png_image_write_to_memory(&image, memory.baseAddress, &size, 0, buffer.baseAddress, Int32(width * channels), map.baseAddress)
                    }
                }
                return png_image_write_to_memory(&image, memory.baseAddress, &size, 0, buffer.baseAddress, Int32(width * channels), nil)
            }
        }
        XCTAssertNotEqual(written, 0, "libpng could not write the test image")
        return Data(output[0..<Int(size)])
    }

    private func sampleRGB(height: Int, width: Int) -> RGBImage {
        RGBImage(height: height, width: width, pixels: (0..<(3 * height * width)).map { UInt8(truncatingIfNeeded: $0 &* 37 &+ 11) })
    }

    func testWriteThenReadRoundTrips() throws {
        let directory = try makeTemporaryDirectory(self)
        let image = sampleRGB(height: 5, width: 7)
        let url = directory.appendingPathComponent("image.png")
        try PNG.write(image, to: url)
        let data = try Data(contentsOf: url)
        XCTAssertEqual(Array(data.prefix(8)), [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A])
        XCTAssertEqual(try PNG.read(url), image)
    }

    func testGrayBecomesThreeEqualChannels() throws {
        let gray: [UInt8] = [0, 50, 100, 150, 200, 250]
        let data = try encode(format: 0, width: 3, height: 2, channels: 1, bytes: gray)
        let image = try PNG.decode(data, name: "gray.png")
        XCTAssertEqual(image.height, 2)
        XCTAssertEqual(image.width, 3)
        XCTAssertEqual(Array(image.pixels[0..<6]), gray)
        XCTAssertEqual(Array(image.pixels[6..<12]), gray)
        XCTAssertEqual(Array(image.pixels[12..<18]), gray)
    }

    func testRGBAKeepsColourAndDropsAlpha() throws {
        // Two pixels: opaque red, half-transparent (10, 20, 30).
        let rgba: [UInt8] = [255, 0, 0, 255, 10, 20, 30, 128]
        let data = try encode(format: UInt32(PNG_FORMAT_FLAG_COLOR | PNG_FORMAT_FLAG_ALPHA), width: 2, height: 1, channels: 4, bytes: rgba)
        let image = try PNG.decode(data, name: "rgba.png")
        XCTAssertEqual(image.pixels, [255, 10, 0, 20, 0, 30])
    }

    func testPaletteBecomesRGB() throws {
        let colormap: [UInt8] = [200, 10, 20, 5, 150, 250]
        let indices: [UInt8] = [0, 1, 1, 0]
        let data = try encode(format: UInt32(PNG_FORMAT_FLAG_COLOR | PNG_FORMAT_FLAG_COLORMAP), width: 2, height: 2, channels: 1,
                              bytes: indices, colormap: colormap, colormapEntries: 2)
        XCTAssertEqual(data[25], 3, "the IHDR colour type of the test file should be 3 (palette)")
        let image = try PNG.decode(data, name: "palette.png")
        XCTAssertEqual(image.pixels, [200, 5, 5, 200, 10, 150, 150, 10, 20, 250, 250, 20])
    }

    func testCorruptFileIsRejected() throws {
        let directory = try makeTemporaryDirectory(self)
        var data = try PNG.encode(sampleRGB(height: 32, width: 32))
        data.replaceSubrange(40..<80, with: Data(repeating: 0xAB, count: 40))
        let url = directory.appendingPathComponent("broken.png")
        try data.write(to: url)
        assertDataError(try PNG.read(url), kind: .corruptImage, mentions: ["broken.png", "libpng"])

        let notPNG = directory.appendingPathComponent("text.png")
        try Data("hello".utf8).write(to: notPNG)
        assertDataError(try PNG.read(notPNG), kind: .corruptImage, mentions: ["text.png", "not a valid PNG"])
    }

    func testFolderReadsClassesInNameOrder() throws {
        let root = try makeTemporaryDirectory(self)
        var expected: [String: [UInt8]] = [:]
        for (classIndex, className) in ["zebra", "apple"].enumerated() {
            let folder = root.appendingPathComponent(className)
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
            for imageIndex in 0..<3 {
                let pixels = (0..<3072).map { UInt8(truncatingIfNeeded: $0 + 17 * imageIndex + 101 * classIndex) }
                try PNG.write(RGBImage(height: 32, width: 32, pixels: pixels), to: folder.appendingPathComponent("\(imageIndex).png"))
                expected["\(className)/\(imageIndex)"] = pixels
            }
        }
        try Data("notes".utf8).write(to: root.appendingPathComponent("apple/readme.txt"))
        let source = try ImageSource.pngFolder(root)
        XCTAssertEqual(source.classNames, ["apple", "zebra"])
        XCTAssertEqual(source.imageCount(inClass: 0), 3)
        XCTAssertEqual(source.imageCount(inClass: 1), 3)
        XCTAssertEqual(source.imageBytes(classIndex: 0, imageIndex: 2), expected["apple/2"])
        XCTAssertEqual(source.imageBytes(classIndex: 1, imageIndex: 0), expected["zebra/0"])
    }

    func testFolderImageOfWrongSizeIsRejected() throws {
        let root = try makeTemporaryDirectory(self)
        let folder = root.appendingPathComponent("cat")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        try PNG.write(sampleRGB(height: 32, width: 32), to: folder.appendingPathComponent("a.png"))
        try PNG.write(sampleRGB(height: 28, width: 30), to: folder.appendingPathComponent("b.png"))
        assertDataError(try ImageSource.pngFolder(root), kind: .invalidImageSize,
                        mentions: ["cat/b.png", "30 x 28", "expected 32 x 32", "resize it to 32 x 32 pixels"])
        assertDataError(try ImageSource.pngFolder(root, height: 16, width: 24), kind: .invalidImageSize,
                        mentions: ["cat/a.png is 32 x 32 pixels, expected 24 x 16; resize it to 24 x 16 pixels"])
    }

    func testFolderWithCorruptImageIsRejected() throws {
        let root = try makeTemporaryDirectory(self)
        let folder = root.appendingPathComponent("dog")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        try Data([0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, 0, 0, 0]).write(to: folder.appendingPathComponent("cut.png"))
        assertDataError(try ImageSource.pngFolder(root), kind: .corruptImage, mentions: ["dog/cut.png"])
    }

    func testEmptyClassFolderIsRejected() throws {
        let root = try makeTemporaryDirectory(self)
        try FileManager.default.createDirectory(at: root.appendingPathComponent("full"), withIntermediateDirectories: true)
        try PNG.write(sampleRGB(height: 32, width: 32), to: root.appendingPathComponent("full/x.png"))
        try FileManager.default.createDirectory(at: root.appendingPathComponent("empty"), withIntermediateDirectories: true)
        assertDataError(try ImageSource.pngFolder(root), kind: .emptyClass, mentions: ["empty", "no .png files"])
    }

    func testMissingFolderIsRejected() throws {
        let root = try makeTemporaryDirectory(self)
        assertDataError(try ImageSource.pngFolder(root.appendingPathComponent("nowhere")), kind: .missingFile, mentions: ["nowhere", "does not exist"])
        assertDataError(try ImageSource.pngFolder(root), kind: .emptyClass, mentions: ["no class subfolders"])
    }
}
