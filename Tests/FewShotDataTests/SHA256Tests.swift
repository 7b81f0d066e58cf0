import FewShotData
import XCTest

final class SHA256Tests: XCTestCase {
    func testKnownDigests() {
        // FIPS 180-4 examples.
        XCTAssertEqual(SHA256.hex([UInt8]()), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        XCTAssertEqual(SHA256.hex(Array("abc".utf8)), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        XCTAssertEqual(SHA256.hex(Array("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq".utf8)),
                       "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1")
        // Fed in uneven pieces, a long input gives the same digest as in one piece.
        let long = [UInt8](repeating: UInt8(ascii: "a"), count: 1_000)
        var pieces = SHA256()
        pieces.update(long[0..<1])
        pieces.update(long[1..<130])
        pieces.update(long[130...])
        XCTAssertEqual(pieces.finalizeHex(), SHA256.hex(long))
        XCTAssertEqual(SHA256.hex(long), "41edece42d63e8d9bf515a9ba6932e1c20cbc9f5a5d134645adb5db1b9737ea3")
    }

    func testChecksumFileIsVerified() throws {
        let directory = try makeTemporaryDirectory(self)
        try Data("abc".utf8).write(to: directory.appendingPathComponent("a.txt"))
        try Data("hello\n".utf8).write(to: directory.appendingPathComponent("b.bin"))
        XCTAssertNil(try SHA256.verifyChecksums(in: directory))

        let sums = """
            ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad  a.txt
            5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03 *b.bin

            """
        try sums.write(to: directory.appendingPathComponent("SHA256SUMS"), atomically: true, encoding: .utf8)
        let results = try XCTUnwrap(try SHA256.verifyChecksums(in: directory))
        XCTAssertEqual(results.map(\.fileName), ["a.txt", "b.bin"])
        XCTAssertTrue(results.allSatisfy(\.matches))

        try Data("abd".utf8).write(to: directory.appendingPathComponent("a.txt"))
        assertDataError(try SHA256.verifyChecksums(in: directory), kind: .checksumMismatch, mentions: ["a.txt", "ba7816bf"])
    }
}
