/// An error in the data a user gave the pipeline: a missing or malformed file,
/// an invalid split or episode shape, or a failed download.
///
/// `description` is one sentence for the user that names the file or value,
/// what was expected, and what to do about it.
public struct DataError: Error, CustomStringConvertible, Sendable {
    /// The kind of failure, for callers and tests that branch on it.
    public enum Kind: Sendable, Equatable {
        case missingFile
        case truncatedFile
        case labelOutOfRange
        case inconsistentLabels
        case invalidLabelNames
        case invalidImageSize
        case corruptImage
        case emptyClass
        case unknownClass
        case invalidSplit
        case invalidEpisodeShape
        case checksumMismatch
        case dataNotFound
        case downloadFailed
        case invalidArchive
        case writeFailed
    }

    public let kind: Kind
    public let description: String

    public init(_ kind: Kind, _ description: String) {
        self.kind = kind
        self.description = description
    }
}

/// Returns the count with its noun, singular for 1 ("1 row", "3 rows").
func counted(_ count: Int, _ singular: String, plural: String? = nil) -> String {
    "\(count) \(count == 1 ? singular : plural ?? singular + "s")"
}
