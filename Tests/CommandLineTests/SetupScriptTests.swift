import Foundation
import XCTest

/// `Scripts/setup.sh`, run with a stand-in pkg-config so that no package manager is touched.
final class SetupScriptTests: XCTestCase {
    func testPresentLibrariesPrintOneLine() throws {
        let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let bin = FileManager.default.temporaryDirectory.appendingPathComponent("fewshot-setup-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: bin, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: bin) }
        // A pkg-config that reports every library as present.
        let fakePkgConfig = bin.appendingPathComponent("pkg-config")
        try "#!/bin/sh\nexit 0\n".write(to: fakePkgConfig, atomically: true, encoding: .utf8)
        try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: fakePkgConfig.path)

        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/bash")
        process.arguments = [packageRoot.appendingPathComponent("Scripts/setup.sh").path]
        process.environment = ["PATH": "\(bin.path):/usr/bin:/bin"]
        let output = Pipe()
        process.standardOutput = output
        try process.run()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        let text = String(decoding: data, as: UTF8.self)

        XCTAssertEqual(process.terminationStatus, 0)
        XCTAssertEqual(text.split(separator: "\n").count, 1, text)
        XCTAssertTrue(text.contains("are present"), text)
    }
}
