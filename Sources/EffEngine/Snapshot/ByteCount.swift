import Foundation

/// Byte counts as a person reads them ("86.1 MiB").
public func formatBytes(_ n: Int) -> String {
    let d = Double(n)
    if n >= 1 << 30 { return String(format: "%.2f GiB", d / 1_073_741_824) }
    if n >= 1 << 20 { return String(format: "%.1f MiB", d / 1_048_576) }
    if n >= 1 << 10 { return String(format: "%.1f KiB", d / 1024) }
    return "\(n) B"
}
