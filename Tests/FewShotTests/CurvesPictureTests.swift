import FewShotData
import XCTest
@testable import FewShot

final class CurvesPictureTests: XCTestCase {
    private let rows: [[String: Double]] = [
        ["train_loss": 1.21, "train_accuracy_percent": 30, "val_accuracy_percent": 40, "val_interval95_percent": 8],
        ["train_loss": 0.90, "train_accuracy_percent": 50, "val_accuracy_percent": 60, "val_interval95_percent": 6],
        ["train_loss": 0.70, "train_accuracy_percent": 55, "val_accuracy_percent": 62, "val_interval95_percent": 5],
    ]

    /// Counts pixels of `color` in the rectangle [x0, x1) x [y0, y1).
    private func count(_ image: RGBImage, _ color: (UInt8, UInt8, UInt8), x0: Int, x1: Int, y0: Int, y1: Int) -> Int {
        let plane = image.width * image.height
        var total = 0
        for y in y0..<y1 {
            for x in x0..<x1 {
                let index = y * image.width + x
                if image.pixels[index] == color.0 && image.pixels[plane + index] == color.1 && image.pixels[2 * plane + index] == color.2 {
                    total += 1
                }
            }
        }
        return total
    }

    func testFontHasEveryLabelCharacter() {
        for text in ["Loss per epoch", "Accuracy per epoch", "Loss", "Accuracy %", "Epoch", "Training", "Validation",
                     "95% interval", "0123456789", "0.5", "-"] {
            for character in text {
                XCTAssertNotNil(BitmapFont.glyph(character), "no glyph for '\(character)' in '\(text)'")
            }
        }
        XCTAssertNil(BitmapFont.glyph("?"))
        XCTAssertEqual(BitmapFont.glyph("e"), BitmapFont.glyph("E"))
        let one = BitmapFont.glyph("1")
        XCTAssertEqual(one?.count, BitmapFont.glyphHeight)
        XCTAssertEqual(one?.first, [false, false, true, false, false])
        XCTAssertEqual(one?.last, [false, true, true, true, false])
        XCTAssertEqual(BitmapFont.width(of: "100", scale: 2), 34)
    }

    func testTicksAreRoundNumbers() {
        XCTAssertEqual(CurvesPicture.niceTicks(maximum: 1.21), [0, 0.5, 1.0, 1.5])
        XCTAssertEqual(CurvesPicture.niceTicks(maximum: 2.3), [0, 0.5, 1.0, 1.5, 2.0, 2.5])
        XCTAssertEqual(CurvesPicture.niceTicks(maximum: 40), [0, 10, 20, 30, 40])
        XCTAssertEqual(CurvesPicture.niceTicks(maximum: .nan), [0, 0.2, 0.4, 0.6000000000000001, 0.8, 1.0])
        XCTAssertEqual(CurvesPicture.tickLabels([0, 0.5, 1.0, 1.5]), ["0.0", "0.5", "1.0", "1.5"])
        XCTAssertEqual(CurvesPicture.tickLabels([0, 20, 40]), ["0", "20", "40"])
        XCTAssertEqual(CurvesPicture.epochTicks(count: 1), [1])
        XCTAssertEqual(CurvesPicture.epochTicks(count: 5), [1, 2, 3, 4, 5])
        XCTAssertEqual(CurvesPicture.epochTicks(count: 12), [1, 2, 4, 6, 8, 10, 12])
        XCTAssertEqual(CurvesPicture.epochTicks(count: 60), [1, 10, 20, 30, 40, 50, 60])
    }

    func testPictureHasTitlesTicksAndLegend() {
        let image = CurvesPicture.render(rows)
        let black: (UInt8, UInt8, UInt8) = (0, 0, 0)
        let panel = CurvesPicture.panelWidth
        for left in [0, panel] {
            XCTAssertGreaterThan(count(image, black, x0: left, x1: left + panel, y0: 0, y1: CurvesPicture.plotTop - 10), 50,
                                 "title above the plot of the panel at x = \(left)")
            XCTAssertGreaterThan(count(image, black, x0: left + 30, x1: left + CurvesPicture.plotLeft - 8,
                                       y0: CurvesPicture.plotTop - 8, y1: CurvesPicture.plotBottom + 8), 50,
                                 "y tick values of the panel at x = \(left)")
            XCTAssertGreaterThan(count(image, black, x0: left, x1: left + 24, y0: CurvesPicture.plotTop, y1: CurvesPicture.plotBottom), 30,
                                 "y axis label of the panel at x = \(left)")
            XCTAssertGreaterThan(count(image, black, x0: left + CurvesPicture.plotLeft, x1: left + panel,
                                       y0: CurvesPicture.plotBottom + 8, y1: CurvesPicture.plotBottom + 50), 50,
                                 "x tick values and label of the panel at x = \(left)")
            XCTAssertGreaterThan(count(image, CurvesPicture.blue, x0: left, x1: left + panel,
                                       y0: CurvesPicture.plotBottom + 50, y1: image.height), 10,
                                 "legend entry for training in the panel at x = \(left)")
        }
        XCTAssertGreaterThan(count(image, CurvesPicture.orange, x0: panel, x1: 2 * panel, y0: CurvesPicture.plotBottom + 50, y1: image.height), 10,
                             "legend entry for validation")
        XCTAssertGreaterThan(count(image, CurvesPicture.lightOrange, x0: panel, x1: 2 * panel, y0: CurvesPicture.plotBottom + 50, y1: image.height), 100,
                             "legend entry for the 95% interval")
        XCTAssertGreaterThan(count(image, CurvesPicture.lightOrange, x0: panel + CurvesPicture.plotLeft, x1: 2 * panel,
                                   y0: CurvesPicture.plotTop, y1: CurvesPicture.plotBottom), 1000,
                             "the interval band inside the accuracy plot")
    }
}
