import Foundation
import KilnParquet

/// Exact TreeSHAP (Lundberg et al., "Consistent individualized feature attribution for tree ensembles",
/// Algorithm 2) with cover-weighted expectations: per row, per output, one value per feature plus the expected value
/// (last), summing to the model's prediction.
extension TreeEnsemble {
    /// SHAP values, row-major: rows × outputs × (width + 1), the last entry of each block being the expected value.
    public func shap(_ features: [Double], rows: Int, width: Int) -> [Double] {
        let outputs = trees.first?.outputs ?? 1
        let block = width + 1
        let scale = 1 / Double(max(trees.count, 1))
        // Rows in blocks on all cores; each row sums its trees in order, so results do not depend on the core count.
        let blockRows = 8
        let parts = (try? concurrentMap((rows + blockRows - 1) / blockRows) { b -> [Double] in
            let first = b * blockRows, count = min(rows, first + blockRows) - first
            var out = [Double](repeating: 0, count: count * outputs * block)
            features.withUnsafeBufferPointer { x in
                for tree in trees {
                    for r in 0..<count {
                        for k in 0..<outputs {
                            var phi = [Double](repeating: 0, count: block)
                            tree.shap(x, row: (first + r) * width, output: k, into: &phi)
                            let base = (r * outputs + k) * block
                            for j in 0..<block { out[base + j] += phi[j] * scale }
                        }
                    }
                }
            }
            return out
        }) ?? []
        return parts.flatMap { $0 }
    }
}

private struct PathElement {
    var feature: Int
    var zero: Double
    var one: Double
    var weight: Double
}

extension DecisionTree {
    /// Adds this tree's SHAP values for one row and output to `phi` (features, then the expected value).
    func shap(_ x: UnsafeBufferPointer<Double>, row: Int, output: Int, into phi: inout [Double]) {
        phi[phi.count - 1] += values[output]  // the root's value: the cover-weighted mean of the leaves
        guard left[0] >= 0 else { return }
        recurse(x, row: row, output: output, node: 0, path: [], zero: 1, one: 1, feature: -1, phi: &phi)
    }

    private func recurse(_ x: UnsafeBufferPointer<Double>, row: Int, output: Int, node: Int, path parent: [PathElement],
                         zero: Double, one: Double, feature splitFeature: Int, phi: inout [Double]) {
        var path = parent
        Self.extend(&path, zero: zero, one: one, feature: splitFeature)
        if left[node] < 0 {
            let depth = path.count - 1
            for i in stride(from: 1, through: depth, by: 1) {
                let w = Self.unwoundSum(path, index: i)
                phi[path[i].feature] += w * (path[i].one - path[i].zero) * values[node * outputs + output]
            }
            return
        }
        let f = Int(feature[node])
        let v = Double(Float(x[row + f]))
        let goesLeft = v.isNaN || v <= threshold[node]
        let hot = Int(goesLeft ? left[node] : right[node]), cold = Int(goesLeft ? right[node] : left[node])
        let w = cover[node]
        var incomingZero = 1.0, incomingOne = 1.0
        if let k = path.indices.dropFirst().first(where: { path[$0].feature == f }) {
            incomingZero = path[k].zero
            incomingOne = path[k].one
            Self.unwind(&path, index: k)
        }
        recurse(x, row: row, output: output, node: hot, path: path, zero: cover[hot] / w * incomingZero, one: incomingOne, feature: f, phi: &phi)
        recurse(x, row: row, output: output, node: cold, path: path, zero: cover[cold] / w * incomingZero, one: 0, feature: f, phi: &phi)
    }

    private static func extend(_ path: inout [PathElement], zero: Double, one: Double, feature: Int) {
        let depth = path.count
        path.append(PathElement(feature: feature, zero: zero, one: one, weight: depth == 0 ? 1 : 0))
        for i in stride(from: depth - 1, through: 0, by: -1) {
            path[i + 1].weight += one * path[i].weight * Double(i + 1) / Double(depth + 1)
            path[i].weight = zero * path[i].weight * Double(depth - i) / Double(depth + 1)
        }
    }

    private static func unwind(_ path: inout [PathElement], index: Int) {
        let depth = path.count - 1
        let one = path[index].one, zero = path[index].zero
        var next = path[depth].weight
        for i in stride(from: depth - 1, through: 0, by: -1) {
            if one != 0 {
                let t = path[i].weight
                path[i].weight = next * Double(depth + 1) / (Double(i + 1) * one)
                next = t - path[i].weight * zero * Double(depth - i) / Double(depth + 1)
            } else {
                path[i].weight = path[i].weight * Double(depth + 1) / (zero * Double(depth - i))
            }
        }
        for i in index..<depth {
            path[i].feature = path[i + 1].feature
            path[i].zero = path[i + 1].zero
            path[i].one = path[i + 1].one
        }
        path.removeLast()
    }

    private static func unwoundSum(_ path: [PathElement], index: Int) -> Double {
        let depth = path.count - 1
        let one = path[index].one, zero = path[index].zero
        var next = path[depth].weight
        var total = 0.0
        for i in stride(from: depth - 1, through: 0, by: -1) {
            if one != 0 {
                let t = next * Double(depth + 1) / (Double(i + 1) * one)
                total += t
                next = path[i].weight - t * zero * Double(depth - i) / Double(depth + 1)
            } else if zero != 0 {
                total += (path[i].weight / zero) / (Double(depth - i) / Double(depth + 1))
            }
        }
        return total
    }
}
