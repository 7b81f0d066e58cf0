import Foundation

/// Finds the CIFAR-100 binary folder: from an explicit `--data <dir>` flag, then
/// the environment variable `FEWSHOT_DATA_DIR`, then the config's `data.root`
/// (default `Data/cifar-100-binary`).
///
/// The first of these that is given is used, and it must contain the dataset. A
/// flag or variable that points at the wrong folder is an error rather than
/// skipped, because falling back would hide a typo and train on other data.
public struct DataLocator: Sendable {
    public static let environmentVariable = "FEWSHOT_DATA_DIR"
    public static let defaultRoot = "Data/cifar-100-binary"

    /// The value of `--data`, if given.
    public var flag: String?
    /// The process environment (or a test's stand-in).
    public var environment: [String: String]
    /// The config's `data.root`, if the config sets it.
    public var configRoot: String?
    /// The folder relative paths are resolved against.
    public var workingDirectory: URL

    public init(
        flag: String? = nil,
        environment: [String: String] = ProcessInfo.processInfo.environment,
        configRoot: String? = nil,
        workingDirectory: URL = URL(fileURLWithPath: FileManager.default.currentDirectoryPath)
    ) {
        self.flag = flag
        self.environment = environment
        self.configRoot = configRoot
        self.workingDirectory = workingDirectory
    }

    /// Returns the folder where the data is expected and the source that chose it, whether or not it exists.
    public func candidate() -> (url: URL, source: String) {
        if let flag, !flag.isEmpty {
            return (resolve(flag), "--data")
        }
        if let variable = environment[Self.environmentVariable], !variable.isEmpty {
            return (resolve(variable), Self.environmentVariable)
        }
        if let configRoot, !configRoot.isEmpty {
            return (resolve(configRoot), "config data.root")
        }
        return (resolve(Self.defaultRoot), "default data.root")
    }

    /// Returns the data folder, or throws one error that lists where it looked and how to fix it.
    public func locate() throws -> URL {
        let (url, source) = candidate()
        let missing = Self.missingFiles(in: url)
        if missing.map({ !$0.isEmpty }) ?? true {
            throw DataError(.dataNotFound, notFoundMessage(chosen: url, source: source, missing: missing))
        }
        return url
    }

    /// Returns the dataset files missing from `url`, or nil when `url` is not a folder.
    public static func missingFiles(in url: URL) -> [String]? {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: url.path, isDirectory: &isDirectory), isDirectory.boolValue else {
            return nil
        }
        return CIFAR100.fileNames.filter { !FileManager.default.fileExists(atPath: url.appendingPathComponent($0).path) }
    }

    private func resolve(_ path: String) -> URL {
        let expanded = (path as NSString).expandingTildeInPath
        if expanded.hasPrefix("/") { return URL(fileURLWithPath: expanded).standardizedFileURL }
        return workingDirectory.appendingPathComponent(expanded).standardizedFileURL
    }

    /// Describes the missing data. A wrong `--data` or `FEWSHOT_DATA_DIR` is named
    /// alone, because it was the only place searched; otherwise every source is listed.
    private func notFoundMessage(chosen: URL, source: String, missing: [String]?) -> String {
        let problem = missing.map { "lacks \($0.joined(separator: ", "))" } ?? "does not exist"
        if let flag, !flag.isEmpty {
            return "CIFAR-100 binary data not found: \(chosen.path) (from --data '\(flag)') \(problem). Only --data was used, because it overrides \(Self.environmentVariable) and the config's data.root; fix the path given to --data, or run 'fewshot data fetch --data \(flag)' to download the data there."
        }
        if let variable = environment[Self.environmentVariable], !variable.isEmpty {
            return "CIFAR-100 binary data not found: \(chosen.path) (from \(Self.environmentVariable)='\(variable)') \(problem). Only \(Self.environmentVariable) was used, because it overrides the config's data.root; fix or unset it, or run 'fewshot data fetch' to download the data there."
        }
        let flagText = flag.map { "--data '\($0)'" } ?? "--data (not given)"
        let variableText = environment[Self.environmentVariable].map { "\(Self.environmentVariable)='\($0)'" } ?? "\(Self.environmentVariable) (not set)"
        let configText = configRoot.map { "config data.root '\($0)'" } ?? "config data.root (not set, default '\(Self.defaultRoot)')"
        return "CIFAR-100 binary data not found: \(chosen.path) (from \(source)) \(problem); looked at \(flagText), then \(variableText), then \(configText). Run 'fewshot data fetch' to download it there, or point --data or \(Self.environmentVariable) at an existing cifar-100-binary folder."
    }
}
