import FewShotData
import Foundation

/// Draws the training curves of a run as a PNG with titles, axis labels, tick
/// values and a legend in a built-in 5 x 7 bitmap font:
///
/// - left panel: training loss per epoch (blue), y axis from 0 to a rounded
///   value above the largest loss;
/// - right panel: accuracy in percent per epoch, training (blue) and validation
///   (orange). The validation 95% interval is a light orange band, or error
///   bars when there is one epoch. The y axis runs from 0 to 100 with grey grid
///   lines every 20 points, so the 20% line is chance level of a 5-way task.
///
/// The x axis of both panels runs from epoch 1 to the last epoch.
public enum CurvesPicture {
    static let panelWidth = 480
    static let panelHeight = 390
    /// The plot area inside each panel, in panel coordinates.
    static let plotLeft = 84
    static let plotRight = panelWidth - 24
    static let plotTop = 44
    static let plotBottom = panelHeight - 106
    /// Every text is drawn at twice the font's size.
    static let textScale = 2

    static let blue: (UInt8, UInt8, UInt8) = (31, 119, 180)
    static let orange: (UInt8, UInt8, UInt8) = (255, 127, 14)
    static let lightOrange: (UInt8, UInt8, UInt8) = (255, 214, 176)
    static let grey: (UInt8, UInt8, UInt8) = (210, 210, 210)
    static let black: (UInt8, UInt8, UInt8) = (0, 0, 0)

    /// One line of a panel: values in the panel's y unit, with an optional
    /// interval half-width per value drawn as a band.
    struct Series {
        var values: [Double]
        var intervals: [Double]? = nil
        var color: (UInt8, UInt8, UInt8)
        var label: String
    }

    /// Returns the picture for metrics rows as `RunDirectory.readMetrics` returns them.
    public static func render(_ rows: [[String: Double]]) -> RGBImage {
        var canvas = Canvas(width: 2 * panelWidth, height: panelHeight)

        let losses = rows.map { $0["train_loss"] ?? .nan }
        let lossTicks = niceTicks(maximum: losses.filter(\.isFinite).max() ?? 1)
        drawPanel(&canvas, left: 0, title: "Loss per epoch", yLabel: "Loss", yTicks: lossTicks,
                  series: [Series(values: losses, color: blue, label: "Training")])

        let validationIntervals = rows.map { $0["val_interval95_percent"] ?? .nan }
        drawPanel(&canvas, left: panelWidth, title: "Accuracy per epoch", yLabel: "Accuracy %",
                  yTicks: Array(stride(from: 0.0, through: 100, by: 20)),
                  series: [
                      Series(values: rows.map { $0["train_accuracy_percent"] ?? .nan }, color: blue, label: "Training"),
                      Series(values: rows.map { $0["val_accuracy_percent"] ?? .nan }, intervals: validationIntervals,
                             color: orange, label: "Validation"),
                  ])
        return canvas.image
    }

    /// Renders and writes the picture.
    public static func write(_ rows: [[String: Double]], to url: URL) throws {
        try PNG.write(render(rows), to: url)
    }

    /// Returns about five evenly spaced tick values from 0 up to at least
    /// `maximum`, spaced 1, 2 or 5 times a power of ten.
    static func niceTicks(maximum: Double) -> [Double] {
        let top = maximum.isFinite && maximum > 0 ? maximum : 1
        let rough = top / 5
        let power = pow(10, floor(log10(rough)))
        let step = [1.0, 2, 5, 10].map { $0 * power }.first { $0 >= rough } ?? 10 * power
        let count = Int((top / step).rounded(.up))
        return (0...count).map { Double($0) * step }
    }

    /// Formats tick values with as many decimals as their spacing needs.
    static func tickLabels(_ ticks: [Double]) -> [String] {
        guard ticks.count > 1 else { return ticks.map { String(format: "%g", $0) } }
        let step = ticks[1] - ticks[0]
        let decimals = step >= 1 ? 0 : Int(-floor(log10(step)))
        return ticks.map { String(format: "%.\(decimals)f", $0) }
    }

    /// Returns the epochs that get an x tick: 1 and every multiple of a step
    /// of 1, 2 or 5 times a power of ten, at most about eight of them.
    static func epochTicks(count: Int) -> [Int] {
        guard count > 1 else { return count == 1 ? [1] : [] }
        var step = 1
        for candidate in [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000] {
            step = candidate
            if count / candidate <= 8 { break }
        }
        return [1] + Array(stride(from: step, through: count, by: step)).filter { $0 > 1 }
    }

    /// Draws one panel: title, axes with ticks and labels, grid, series and legend.
    private static func drawPanel(
        _ canvas: inout Canvas, left: Int, title: String, yLabel: String, yTicks: [Double], series: [Series]
    ) {
        let (x0, x1) = (left + plotLeft, left + plotRight)
        let (yBottom, yTop) = (plotBottom, plotTop)
        let yMaximum = yTicks.last ?? 1
        func y(_ value: Double) -> Int {
            let fraction = min(max(value / yMaximum, 0), 1)
            return yBottom - Int((Double(yBottom - yTop) * fraction).rounded())
        }
        let epochCount = series.map(\.values.count).max() ?? 0
        func x(_ index: Int) -> Int { epochCount <= 1 ? (x0 + x1) / 2 : x0 + (x1 - x0) * index / (epochCount - 1) }

        canvas.text(title, centerX: left + panelWidth / 2, top: 10, scale: textScale, color: black)

        // Interval bands go first so that grid lines and series stay visible on them.
        for line in series {
            guard let intervals = line.intervals else { continue }
            drawBand(&canvas, values: line.values, intervals: intervals, x: x, y: y)
        }

        for (tick, label) in zip(yTicks, tickLabels(yTicks)) {
            if tick > 0 { canvas.line(x0, y(tick), x1, y(tick), grey) }
            canvas.line(x0 - 5, y(tick), x0, y(tick), black)
            let labelRight = x0 - 9
            canvas.text(label, left: labelRight - BitmapFont.width(of: label, scale: textScale),
                        top: y(tick) - BitmapFont.glyphHeight * textScale / 2, scale: textScale, color: black)
        }
        canvas.line(x0, yBottom, x1, yBottom, black)
        canvas.line(x0, yBottom, x0, yTop, black)
        canvas.verticalText(yLabel, left: left + 8, centerY: (yTop + yBottom) / 2, scale: textScale, color: black)

        for epoch in epochTicks(count: epochCount) {
            let tickX = x(epoch - 1)
            canvas.line(tickX, yBottom, tickX, yBottom + 5, black)
            canvas.text(String(epoch), centerX: tickX, top: yBottom + 10, scale: textScale, color: black)
        }
        canvas.text("Epoch", centerX: (x0 + x1) / 2, top: yBottom + 32, scale: textScale, color: black)

        for line in series {
            drawLine(&canvas, values: line.values, color: line.color, x: x, y: y)
        }
        drawLegend(&canvas, left: x0, right: x1, top: yBottom + 56, series: series)
    }

    /// Draws a polyline with a dot per finite value; a non-finite value breaks the line.
    private static func drawLine(
        _ canvas: inout Canvas, values: [Double], color: (UInt8, UInt8, UInt8), x: (Int) -> Int, y: (Double) -> Int
    ) {
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

    /// Fills `value ± interval` between neighbouring epochs, interpolating
    /// linearly per pixel column; a single epoch gets an error bar instead.
    private static func drawBand(
        _ canvas: inout Canvas, values: [Double], intervals: [Double], x: (Int) -> Int, y: (Double) -> Int
    ) {
        func bounds(_ index: Int) -> (low: Double, high: Double)? {
            guard index < intervals.count, values[index].isFinite, intervals[index].isFinite else { return nil }
            return (values[index] - intervals[index], values[index] + intervals[index])
        }
        if values.count == 1, let only = bounds(0) {
            let center = x(0)
            canvas.line(center, y(only.low), center, y(only.high), lightOrange)
            canvas.line(center - 6, y(only.low), center + 6, y(only.low), lightOrange)
            canvas.line(center - 6, y(only.high), center + 6, y(only.high), lightOrange)
            return
        }
        for index in 0..<max(0, values.count - 1) {
            guard let start = bounds(index), let end = bounds(index + 1) else { continue }
            let (columnStart, columnEnd) = (x(index), x(index + 1))
            for column in columnStart...columnEnd {
                let t = columnEnd == columnStart ? 0 : Double(column - columnStart) / Double(columnEnd - columnStart)
                let low = start.low + (end.low - start.low) * t
                let high = start.high + (end.high - start.high) * t
                canvas.line(column, y(low), column, y(high), lightOrange)
            }
        }
    }

    /// Draws one legend entry per series (a short line in its colour and its
    /// label), plus the band sample when a series has intervals. An entry that
    /// would pass `right` starts a new row.
    private static func drawLegend(_ canvas: inout Canvas, left: Int, right: Int, top: Int, series: [Series]) {
        var cursor = left
        var rowTop = top
        func entry(_ label: String, sample: (inout Canvas, Int, Int) -> Void) {
            let entryWidth = 30 + BitmapFont.width(of: label, scale: textScale)
            if cursor > left && cursor + entryWidth > right {
                cursor = left
                rowTop += 22
            }
            sample(&canvas, cursor, rowTop + BitmapFont.glyphHeight * textScale / 2)
            canvas.text(label, left: cursor + 30, top: rowTop, scale: textScale, color: black)
            cursor += entryWidth + 20
        }
        for line in series {
            entry(line.label) { canvas, start, middle in
                canvas.line(start, middle, start + 22, middle, line.color)
                canvas.dot(start + 11, middle, line.color)
            }
        }
        if series.contains(where: { $0.intervals != nil }) {
            entry("95% interval") { canvas, start, middle in
                for row in (middle - 6)...(middle + 6) { canvas.line(start, row, start + 22, row, lightOrange) }
            }
        }
    }
}

/// A white RGB canvas with line, dot and text drawing.
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

    /// Draws `text` left to right with its top-left corner at (left, top);
    /// characters without a glyph are left blank.
    mutating func text(_ text: String, left: Int, top: Int, scale: Int, color: (UInt8, UInt8, UInt8)) {
        for (index, character) in text.enumerated() {
            guard let glyph = BitmapFont.glyph(character) else { continue }
            let glyphLeft = left + index * BitmapFont.advance * scale
            for (row, bits) in glyph.enumerated() {
                for (column, isSet) in bits.enumerated() where isSet {
                    fill(glyphLeft + column * scale, top + row * scale, scale, color)
                }
            }
        }
    }

    mutating func text(_ text: String, centerX: Int, top: Int, scale: Int, color: (UInt8, UInt8, UInt8)) {
        self.text(text, left: centerX - BitmapFont.width(of: text, scale: scale) / 2, top: top, scale: scale, color: color)
    }

    /// Draws `text` turned 90 degrees counter-clockwise (read bottom to top),
    /// centred vertically on `centerY`.
    mutating func verticalText(_ text: String, left: Int, centerY: Int, scale: Int, color: (UInt8, UInt8, UInt8)) {
        let bottom = centerY + BitmapFont.width(of: text, scale: scale) / 2
        for (index, character) in text.enumerated() {
            guard let glyph = BitmapFont.glyph(character) else { continue }
            let glyphBottom = bottom - index * BitmapFont.advance * scale
            for (row, bits) in glyph.enumerated() {
                for (column, isSet) in bits.enumerated() where isSet {
                    fill(left + row * scale, glyphBottom - (column + 1) * scale, scale, color)
                }
            }
        }
    }

    private mutating func fill(_ x: Int, _ y: Int, _ size: Int, _ color: (UInt8, UInt8, UInt8)) {
        for dy in 0..<size {
            for dx in 0..<size { set(x + dx, y + dy, color) }
        }
    }
}
