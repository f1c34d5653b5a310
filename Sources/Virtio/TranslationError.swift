/// Why a guest range could not be translated.
public enum TranslationError: Error, Equatable, Sendable {
    /// Some byte of the range is in no region.
    case unmapped
    /// `address + length` exceeds 2^64.
    case overflow
    /// The caller's output storage is too small for the number of regions touched.
    case tooManyRanges
}
