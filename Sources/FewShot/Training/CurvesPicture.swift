import FewShotData
import Foundation

/// Draws the training curves of a run as a PNG without text, so it needs no font:
///
/// - left panel: training loss per epoch (blue), y axis from 0 to the largest loss;
/// - right panel: accuracy in percent per epoch, training (blue) and validation
///   (orange), y axis 0 to 100 with grey grid lines every 20 points (chance
///   level of a 5-way task is the 20% line).
///
/// The x axis of both panels runs from epoch 1 to the last epoch.
public enum CurvesPicture {
    static let panelWidth = 400
    static let panelHeight = 300
    static let margin = 20
    static let blue: (UInt8, UInt8, UInt8) = (31, 119, 180)
    static let orange: (UInt8, UInt8, UInt8) = (255, 127, 14)
    static let grey: (UInt8, UInt8, UInt8) = (210, 210, 210)
    static let black: (UInt8, UInt8, UInt8) = (0, 0, 0)

    /// Returns the picture for metrics rows as `RunDirectory.readMetrics` returns them.
    public static func render(_ rows: [[String: Double]]) -> RGBImage {
        var canvas = Canvas(width: 2 * panelWidth, height: panelHeight)
        let losses = rows.map { $0["train_loss"] ?? .nan }
        let maximumLoss = max(losses.filter(\.isFinite).max() ?? 1, 1e-6)
        drawPanel(&canvas, left: 0, grid: [], series: [(losses.map { $0 / maximumLoss }, blue)])

        let trainAccuracy = rows.map { ($0["train_accuracy_percent"] ?? .nan) / 100 }
        let validationAccuracy = rows.map { ($0["val_accuracy_percent"] ?? .nan) / 100 }
        drawPanel(&canvas, left: panelWidth, grid: [0.2, 0.4, 0.6, 0.8],
                  series: [(trainAccuracy, blue), (validationAccuracy, orange)])
        return canvas.image
    }

    /// Renders and writes the picture.
    public static func write(_ rows: [[String: Double]], to url: URL) throws {
        try PNG.write(render(rows), to: url)
    }

    /// Draws one panel; series values are fractions of the panel's y range.
    private static func drawPanel(
        _ canvas: inout Canvas, left: Int, grid: [Double], series: [([Double], (UInt8, UInt8, UInt8))]
    ) {
        let (x0, x1) = (left + margin, left + panelWidth - margin)
        let (yBottom, yTop) = (panelHeight - margin, margin)
        func y(_ fraction: Double) -> Int { yBottom - Int((Double(yBottom - yTop) * min(max(fraction, 0), 1)).rounded()) }

        for level in grid { canvas.line(x0, y(level), x1, y(level), grey) }
        canvas.line(x0, yBottom, x1, yBottom, black)
        canvas.line(x0, yBottom, x0, yTop, black)

        for (values, color) in series {
            let count = values.count
            guard count > 0 else { continue }
            func x(_ index: Int) -> Int { count == 1 ? (x0 + x1) / 2 : x0 + (x1 - x0) * index / (count - 1) }
            var previous: (Int, Int)? = nil
            for (index, value) in values.enumerated() {
                guard value.isFinite else {
                    previous = nil
                    continue
                }
                let point = (x(index), y(value))
                if let previous { canvas.line(previous.0, previous.1, point.0, point.1, color) }
                canvas.dot(point.0, point.1, color)
                previous = point
            }
        }
    }
}

/// A white RGB canvas with line and dot drawing.
private struct Canvas {
    let width: Int
    let height: Int
    var pixels: [UInt8]

    init(width: Int, height: Int) {
        self.width = width
        self.height = height
        pixels = [UInt8](repeating: 255, count: 3 * width * height)
    }

    var image: RGBImage { RGBImage(height: height, width: width, pixels: pixels) }

    mutating func set(_ x: Int, _ y: Int, _ color: (UInt8, UInt8, UInt8)) {
        guard x >= 0, x < width, y >= 0, y < height else { return }
        let plane = width * height
        pixels[y * width + x] = color.0
        pixels[plane + y * width + x] = color.1
        pixels[2 * plane + y * width + x] = color.2
    }

    /// Bresenham's line algorithm.
    mutating func line(_ xStart: Int, _ yStart: Int, _ xEnd: Int, _ yEnd: Int, _ color: (UInt8, UInt8, UInt8)) {
        var (x, y) = (xStart, yStart)
        let dx = abs(xEnd - xStart), dy = -abs(yEnd - yStart)
        let stepX = xStart < xEnd ? 1 : -1, stepY = yStart < yEnd ? 1 : -1
        var error = dx + dy
        while true {
            set(x, y, color)
            set(x, y + 1, color)
            if x == xEnd && y == yEnd { break }
            let doubled = 2 * error
            if doubled >= dy { error += dy; x += stepX }
            if doubled <= dx { error += dx; y += stepY }
        }
    }

    mutating func dot(_ x: Int, _ y: Int, _ color: (UInt8, UInt8, UInt8)) {
        for dy in -2...2 {
            for dx in -2...2 { set(x + dx, y + dy, color) }
        }
    }
}
