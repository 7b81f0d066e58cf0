import FewShotData
import Foundation

/// An error that rejects a configuration file.
public enum ConfigError: Error, CustomStringConvertible, Equatable {
    case unreadable(path: String, reason: String)
    case invalidJSON(path: String, reason: String)
    case unknownKey(path: String, key: String, allowed: [String])
    case wrongType(path: String, key: String, expected: String)
    case outOfRange(path: String, key: String, value: String, allowed: String)
    /// Keys that contradict each other, or a key that another key makes necessary.
    case inconsistent(path: String, reason: String)

    public var description: String {
        switch self {
        case let .unreadable(path, reason):
            return "cannot read config \(path): \(reason)"
        case let .invalidJSON(path, reason):
            return "config \(path) is not valid JSON: \(reason)"
        case let .unknownKey(path, key, allowed):
            return "config \(path): unknown key '\(key)'; allowed keys here: \(allowed.joined(separator: ", "))"
        case let .wrongType(path, key, expected):
            return "config \(path): key '\(key)' must be \(expected)"
        case let .outOfRange(path, key, value, allowed):
            return "config \(path): invalid value \(value) for '\(key)'; allowed: \(allowed)"
        case let .inconsistent(path, reason):
            return "config \(path): \(reason)"
        }
    }
}

/// Reads one JSON object of a configuration strictly: every value is checked
/// for type and range as it is read, and `finish()` rejects any key that was
/// not read, naming it and the keys that are allowed at that level.
struct ConfigReader {
    let path: String
    let keyPrefix: String
    private let object: [String: Any]
    private var readKeys: [String] = []

    init(object: [String: Any], path: String, keyPrefix: String = "") {
        self.object = object
        self.path = path
        self.keyPrefix = keyPrefix
    }

    private func fullKey(_ key: String) -> String { keyPrefix + key }

    private mutating func value(_ key: String) -> Any? {
        readKeys.append(key)
        guard let value = object[key], !(value is NSNull) else { return nil }
        return value
    }

    mutating func int(_ key: String, default defaultValue: Int, range: ClosedRange<Int>) throws -> Int {
        guard let raw = value(key) else { return defaultValue }
        guard let number = raw as? NSNumber, !isBoolean(number),
              number.doubleValue == number.doubleValue.rounded(), abs(number.doubleValue) < 9e15
        else {
            throw ConfigError.wrongType(path: path, key: fullKey(key), expected: "an integer from \(range.lowerBound) to \(range.upperBound)")
        }
        let result = number.intValue
        guard range.contains(result) else {
            throw ConfigError.outOfRange(path: path, key: fullKey(key), value: "\(result)", allowed: "an integer from \(range.lowerBound) to \(range.upperBound)")
        }
        return result
    }

    /// Reads a number; `range` is closed unless `openAbove`/`openBelow` exclude an end.
    mutating func double(
        _ key: String, default defaultValue: Double, range: ClosedRange<Double>,
        openBelow: Bool = false, openAbove: Bool = false
    ) throws -> Double {
        let lower = Self.plainNumber(range.lowerBound)
        let upper = Self.plainNumber(range.upperBound)
        let excluded = [openBelow ? lower : nil, openAbove ? upper : nil].compactMap { $0 }
        let allowed = "a number from \(lower) to \(upper)" + (excluded.isEmpty ? "" : ", excluding \(excluded.joined(separator: " and "))")
        guard let raw = value(key) else { return defaultValue }
        guard let number = raw as? NSNumber, !isBoolean(number) else {
            throw ConfigError.wrongType(path: path, key: fullKey(key), expected: allowed)
        }
        let result = number.doubleValue
        let belowOK = openBelow ? result > range.lowerBound : result >= range.lowerBound
        let aboveOK = openAbove ? result < range.upperBound : result <= range.upperBound
        guard result.isFinite, belowOK, aboveOK else {
            throw ConfigError.outOfRange(path: path, key: fullKey(key), value: "\(result)", allowed: allowed)
        }
        return result
    }

    /// Returns a range end as users type it: `10` rather than `10.0`, `0.5` as is.
    static func plainNumber(_ value: Double) -> String {
        value == value.rounded() && abs(value) < 1e15 ? String(Int(value)) : "\(value)"
    }

    mutating func bool(_ key: String, default defaultValue: Bool) throws -> Bool {
        guard let raw = value(key) else { return defaultValue }
        guard let number = raw as? NSNumber, isBoolean(number) else {
            throw ConfigError.wrongType(path: path, key: fullKey(key), expected: "true or false")
        }
        return number.boolValue
    }

    mutating func string(_ key: String, default defaultValue: String) throws -> String {
        guard let raw = value(key) else { return defaultValue }
        guard let text = raw as? String else {
            throw ConfigError.wrongType(path: path, key: fullKey(key), expected: "a string")
        }
        return text
    }

    /// Reads a string that must be one of `allowed`.
    mutating func choice(_ key: String, default defaultValue: String, allowed: [String]) throws -> String {
        let text = try string(key, default: defaultValue)
        guard allowed.contains(text) else {
            throw ConfigError.outOfRange(path: path, key: fullKey(key), value: "'\(text)'", allowed: "one of \(allowed.joined(separator: ", "))")
        }
        return text
    }

    mutating func intList(_ key: String, default defaultValue: [Int], count: ClosedRange<Int>, range: ClosedRange<Int>) throws -> [Int] {
        guard let raw = value(key) else { return defaultValue }
        let length = count.lowerBound == count.upperBound ? "\(count.lowerBound)" : "\(count.lowerBound) to \(count.upperBound)"
        let expected = "a list of \(length) integers from \(range.lowerBound) to \(range.upperBound)"
        guard let list = raw as? [Any] else {
            throw ConfigError.wrongType(path: path, key: fullKey(key), expected: expected)
        }
        var result: [Int] = []
        for item in list {
            guard let number = item as? NSNumber, !isBoolean(number),
                  number.doubleValue == number.doubleValue.rounded(), range.contains(number.intValue)
            else {
                throw ConfigError.outOfRange(path: path, key: fullKey(key), value: "\(item)", allowed: expected)
            }
            result.append(number.intValue)
        }
        guard count.contains(result.count) else {
            throw ConfigError.outOfRange(path: path, key: fullKey(key), value: "a list of \(result.count)", allowed: expected)
        }
        return result
    }

    /// Reads a list of objects, each through its own reader.
    mutating func objectList<T>(_ key: String, default defaultValue: [T], _ body: (inout ConfigReader) throws -> T) throws -> [T] {
        guard let raw = value(key) else { return defaultValue }
        guard let list = raw as? [Any] else {
            throw ConfigError.wrongType(path: path, key: fullKey(key), expected: "a list of objects")
        }
        var result: [T] = []
        for (index, item) in list.enumerated() {
            guard let object = item as? [String: Any] else {
                throw ConfigError.wrongType(path: path, key: "\(fullKey(key))[\(index)]", expected: "an object")
            }
            var reader = ConfigReader(object: object, path: path, keyPrefix: "\(fullKey(key))[\(index)].")
            result.append(try body(&reader))
            try reader.finish()
        }
        return result
    }

    /// Reads a nested object through its own reader; an absent key reads as `{}`.
    mutating func section<T>(_ key: String, _ body: (inout ConfigReader) throws -> T) throws -> T {
        let raw = value(key) ?? [String: Any]()
        guard let object = raw as? [String: Any] else {
            throw ConfigError.wrongType(path: path, key: fullKey(key), expected: "an object")
        }
        var reader = ConfigReader(object: object, path: path, keyPrefix: fullKey(key) + ".")
        let result = try body(&reader)
        try reader.finish()
        return result
    }

    /// Reads a nested object through its own reader, or returns nil when the key is absent.
    mutating func optionalSection<T>(_ key: String, _ body: (inout ConfigReader) throws -> T) throws -> T? {
        guard object[key] != nil, !(object[key] is NSNull) else {
            readKeys.append(key)
            return nil
        }
        return try section(key, body)
    }

    /// Reads a list of CIFAR-100 classes, each a fine label (integer) or a name (string).
    mutating func classList(_ key: String) throws -> [ClassReference] {
        let expected = "a list of CIFAR-100 fine labels (integers) or class names (strings)"
        guard let list = value(key) as? [Any] else {
            throw ConfigError.wrongType(path: path, key: fullKey(key), expected: expected)
        }
        return try list.map { item in
            if let number = item as? NSNumber, !isBoolean(number), number.doubleValue == number.doubleValue.rounded() {
                return .label(number.intValue)
            }
            if let name = item as? String { return .name(name) }
            throw ConfigError.outOfRange(path: path, key: fullKey(key), value: "\(item)", allowed: expected)
        }
    }

    /// Rejects keys that no read asked for.
    func finish() throws {
        let known = Set(readKeys)
        if let unknown = object.keys.sorted().first(where: { !known.contains($0) }) {
            throw ConfigError.unknownKey(path: path, key: fullKey(unknown), allowed: readKeys)
        }
    }
}

/// True when JSONSerialization produced the number from `true` or `false`:
/// swift-corelibs-foundation returns those as NSNumber with objCType "c",
/// and JSON integers as "i" or "q".
private func isBoolean(_ number: NSNumber) -> Bool {
    String(cString: number.objCType) == "c"
}
