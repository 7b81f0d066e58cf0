import TensorCore
@testable import NeuralNetwork

/// Naive Float64 implementations of the layers, written directly from their
/// definitions. The gradient checks differentiate these by central finite
/// differences and compare the result with the Float32 backward passes.
enum Reference {
    /// A Float64 tensor with its NCHW shape.
    struct Array4 {
        var shape: [Int]
        var values: [Double]
        init(shape: [Int], values: [Double]) {
            precondition(shape.reduce(1, *) == values.count)
            self.shape = shape
            self.values = values
        }
        init(_ tensor: Tensor) { self.init(shape: tensor.shape, values: tensor.scalars.map(Double.init)) }
        var tensor: Tensor { Tensor(shape: shape, scalars: values.map(Float.init)) }
    }

    static func conv2d(_ x: Array4, weight: Array4, stride: Int, padding: Int) -> Array4 {
        let (n, c, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        let (o, k) = (weight.shape[0], weight.shape[2])
        let oh = (h + 2 * padding - k) / stride + 1
        let ow = (w + 2 * padding - k) / stride + 1
        var out = [Double](repeating: 0, count: n * o * oh * ow)
        for image in 0..<n {
            for oc in 0..<o {
                for oy in 0..<oh {
                    for ox in 0..<ow {
                        var sum = 0.0
                        for ic in 0..<c {
                            for ky in 0..<k {
                                for kx in 0..<k {
                                    let iy = oy * stride - padding + ky
                                    let ix = ox * stride - padding + kx
                                    guard iy >= 0 && iy < h && ix >= 0 && ix < w else { continue }
                                    sum += x.values[((image * c + ic) * h + iy) * w + ix] * weight.values[((oc * c + ic) * k + ky) * k + kx]
                                }
                            }
                        }
                        out[((image * o + oc) * oh + oy) * ow + ox] = sum
                    }
                }
            }
        }
        return Array4(shape: [n, o, oh, ow], values: out)
    }

    /// Batch norm; training mode normalises each group with its biased variance.
    static func batchNorm(_ x: Array4, weight: [Double], bias: [Double], groups: [Int], training: Bool,
                          runningMean: [Double], runningVariance: [Double], epsilon: Double = 1e-5) -> Array4 {
        let (c, s) = (x.shape[1], x.shape[2] * x.shape[3])
        var out = x.values
        var first = 0
        for count in (training ? groups : [x.shape[0]]) {
            for channel in 0..<c {
                var mean = runningMean[channel]
                var variance = runningVariance[channel]
                if training {
                    var values: [Double] = []
                    for image in first..<(first + count) {
                        for index in 0..<s { values.append(x.values[(image * c + channel) * s + index]) }
                    }
                    mean = values.reduce(0, +) / Double(values.count)
                    variance = values.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(values.count)
                }
                for image in first..<(first + count) {
                    for index in 0..<s {
                        let position = (image * c + channel) * s + index
                        out[position] = weight[channel] * (x.values[position] - mean) / (variance + epsilon).squareRoot() + bias[channel]
                    }
                }
            }
            first += count
        }
        return Array4(shape: x.shape, values: out)
    }

    static func leakyReLU(_ x: Array4, slope: Double = 0.1) -> Array4 {
        Array4(shape: x.shape, values: x.values.map { $0 > 0 ? $0 : slope * $0 })
    }

    static func maxPool(_ x: Array4) -> Array4 {
        let (n, c, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        let (oh, ow) = (h / 2, w / 2)
        var out = [Double](repeating: 0, count: n * c * oh * ow)
        for plane in 0..<(n * c) {
            for oy in 0..<oh {
                for ox in 0..<ow {
                    let base = plane * h * w + 2 * oy * w + 2 * ox
                    out[(plane * oh + oy) * ow + ox] = max(x.values[base], x.values[base + 1], x.values[base + w], x.values[base + w + 1])
                }
            }
        }
        return Array4(shape: [n, c, oh, ow], values: out)
    }

    static func add(_ a: Array4, _ b: Array4) -> Array4 {
        Array4(shape: a.shape, values: zip(a.values, b.values).map(+))
    }

    /// ResNet-12 without dropout, from a state dict (name -> Float64 values).
    static func resNet12(_ images: Array4, state: [String: [Double]], shapes: [String: [Int]], groups: [Int], training: Bool) -> [Double] {
        var x = images
        for layer in 1...4 {
            let prefix = "layer\(layer).0."
            func conv(_ input: Array4, _ name: String, padding: Int) -> Array4 {
                conv2d(input, weight: Array4(shape: shapes[prefix + name]!, values: state[prefix + name]!), stride: 1, padding: padding)
            }
            func norm(_ input: Array4, _ name: String) -> Array4 {
                batchNorm(input, weight: state[prefix + name + ".weight"]!, bias: state[prefix + name + ".bias"]!, groups: groups,
                          training: training, runningMean: state[prefix + name + ".running_mean"]!,
                          runningVariance: state[prefix + name + ".running_var"]!)
            }
            var out = leakyReLU(norm(conv(x, "conv1.weight", padding: 1), "bn1"))
            out = leakyReLU(norm(conv(out, "conv2.weight", padding: 1), "bn2"))
            out = norm(conv(out, "conv3.weight", padding: 1), "bn3")
            let shortcut = norm(conv(x, "downsample.0.weight", padding: 0), "downsample.1")
            x = maxPool(leakyReLU(add(out, shortcut)))
        }
        return x.values
    }

    /// Returns the central difference `(f(v + h) - f(v - h)) / 2h` of `loss` at element `index` of `values`.
    static func centralDifference(_ values: inout [Double], index: Int, step: Double = 1e-6, _ loss: ([Double]) -> Double) -> Double {
        let original = values[index]
        values[index] = original + step
        let plus = loss(values)
        values[index] = original - step
        let minus = loss(values)
        values[index] = original
        return (plus - minus) / (2 * step)
    }

    static func dot(_ a: [Double], _ b: [Double]) -> Double { zip(a, b).reduce(0) { $0 + $1.0 * $1.1 } }
}

/// Returns a tensor of normal samples with standard deviation `scale`.
func randomTensor(_ shape: [Int], _ random: inout SeededRandom, scale: Double = 1) -> Tensor {
    Tensor(shape: shape, scalars: (0..<shape.reduce(1, *)).map { _ in Float(random.nextNormal() * scale) })
}

/// Returns the largest absolute difference between two equally long arrays.
func maxAbsDifference(_ a: [Double], _ b: [Double]) -> Double {
    precondition(a.count == b.count, "compared arrays differ in length: \(a.count) and \(b.count)")
    return zip(a, b).map { abs($0 - $1) }.max() ?? 0
}
