import Foundation
import KilnCore
import KilnParquet

/// A fitted linear model: `coefficients[k]` and `intercepts[k]` per output (one for regression and binary
/// classification, one per class for multinomial), in the features' original units.
public struct LinearModel: Sendable, Codable, Equatable {
    public enum Link: String, Sendable, Codable { case identity, logistic, softmax }
    public var link: Link
    public var coefficients: [[Double]]
    public var intercepts: [Double]
    /// Optimizer iterations used (0 for closed-form fits).
    public var iterations: Int

    /// Predictions for `rows` rows of `features` (row-major): values, or class probabilities (row-major, 2 columns
    /// for a binary model).
    public func predict(_ features: [Double], rows: Int) -> [Double] {
        let width = coefficients.first?.count ?? 0
        let outputs = coefficients.count
        var scores = [Double](repeating: 0, count: rows * outputs)
        features.withUnsafeBufferPointer { x in
            for i in 0..<rows {
                for k in 0..<outputs {
                    var s = intercepts[k]
                    for j in 0..<width { s += x[i * width + j] * coefficients[k][j] }
                    scores[i * outputs + k] = s
                }
            }
        }
        switch link {
        case .identity: return scores
        case .logistic:
            var out = [Double](repeating: 0, count: rows * 2)
            for i in 0..<rows {
                let p = 1 / (1 + Foundation.exp(-scores[i]))
                out[2 * i] = 1 - p
                out[2 * i + 1] = p
            }
            return out
        case .softmax:
            for i in 0..<rows { softmax(&scores, at: i * outputs, count: outputs) }
            return scores
        }
    }
}

@inline(__always)
func softmax(_ v: inout [Double], at start: Int, count: Int) {
    var top = -Double.infinity
    for k in 0..<count { top = max(top, v[start + k]) }
    var sum = 0.0
    for k in 0..<count {
        v[start + k] = Foundation.exp(v[start + k] - top)
        sum += v[start + k]
    }
    for k in 0..<count { v[start + k] /= sum }
}

/// Column means and population standard deviations (scikit-learn's StandardScaler), ignoring nothing: callers
/// reject missing values first. A constant column gets scale 1.
struct Standardization: Sendable {
    var mean: [Double]
    var scale: [Double]

    init(_ data: Dataset, center: Bool, scale doScale: Bool) {
        let n = Double(max(data.rows, 1)), d = data.width
        var mean = [Double](repeating: 0, count: d), sq = [Double](repeating: 0, count: d)
        for i in 0..<data.rows { for j in 0..<d { mean[j] += data.features[i * d + j] } }
        for j in 0..<d { mean[j] /= n }
        for i in 0..<data.rows { for j in 0..<d { let e = data.features[i * d + j] - mean[j]; sq[j] += e * e } }
        self.mean = center ? mean : [Double](repeating: 0, count: d)
        self.scale = doScale ? sq.map { s in let v = (s / n).squareRoot(); return v > 0 ? v : 1 } : [Double](repeating: 1, count: d)
    }

    func apply(_ data: Dataset) -> [Double] {
        var x = data.features
        let d = data.width
        for i in 0..<data.rows { for j in 0..<d { x[i * d + j] = (x[i * d + j] - mean[j]) / scale[j] } }
        return x
    }

    /// Coefficients and intercept fitted on standardized features, in original units.
    func unscale(_ w: [Double], _ b: Double) -> ([Double], Double) {
        var out = w, intercept = b
        for j in w.indices {
            out[j] = w[j] / scale[j]
            intercept -= out[j] * mean[j]
        }
        return (out, intercept)
    }
}

/// Linear regression: ordinary least squares, ridge, lasso and elastic net, with scikit-learn ElasticNet's
/// objective `1/(2n)·‖y − Xw − b‖² + alpha·l1_ratio·‖w‖₁ + alpha·(1 − l1_ratio)/2·‖w‖²` (so `alpha` is
/// scikit-learn Ridge's alpha divided by n). `standardize` fits on features scaled to unit variance (the penalty
/// then weighs every feature alike, as Spark does) and reports coefficients in original units.
public struct LinearRegression: Sendable {
    public var alpha = 0.0
    public var l1Ratio = 0.0
    public var fitIntercept = true
    public var standardize = true
    public var maxIterations = 1000
    public var tolerance = 1e-8

    public init() {}

    public func fit(_ data: Dataset) throws -> LinearModel {
        guard data.task == .regression else { throw KilnError.invalid("Linear regression needs a numeric target") }
        guard !data.hasMissing else { throw KilnError.invalid("Linear regression cannot fit missing feature values; impute or drop them first") }
        guard alpha >= 0, (0...1).contains(l1Ratio) else { throw KilnError.invalid("alpha must be ≥ 0 and l1_ratio between 0 and 1") }
        let n = data.rows, d = data.width
        guard n > 0 else { throw KilnError.invalid("No training rows") }
        let scaler = Standardization(data, center: fitIntercept, scale: standardize)
        let x = scaler.apply(data)
        let yMean = fitIntercept ? data.labels.reduce(0, +) / Double(n) : 0
        let y = data.labels.map { $0 - yMean }
        // Gram matrix and correlations, over n.
        var gram = [Double](repeating: 0, count: d * d), c = [Double](repeating: 0, count: d)
        x.withUnsafeBufferPointer { x in
            for i in 0..<n {
                let row = i * d
                for j in 0..<d {
                    let xj = x[row + j]
                    c[j] += xj * y[i]
                    for k in j..<d { gram[j * d + k] += xj * x[row + k] }
                }
            }
        }
        for j in 0..<d {
            c[j] /= Double(n)
            for k in j..<d {
                gram[j * d + k] /= Double(n)
                gram[k * d + j] = gram[j * d + k]
            }
        }
        var w = [Double](repeating: 0, count: d)
        var iterations = 0
        let l1 = alpha * l1Ratio, l2 = alpha * (1 - l1Ratio)
        if l1 == 0 {
            var a = gram
            for j in 0..<d { a[j * d + j] += l2 }
            w = try solveSymmetric(a, c, size: d)
        } else {
            // Cyclic coordinate descent on the Gram matrix.
            while iterations < maxIterations {
                iterations += 1
                var largestChange = 0.0, largest = 0.0
                for j in 0..<d {
                    var r = c[j]
                    for k in 0..<d where k != j { r -= gram[j * d + k] * w[k] }
                    let updated = softThreshold(r, l1) / (gram[j * d + j] + l2)
                    largestChange = max(largestChange, abs(updated - w[j]))
                    w[j] = updated
                    largest = max(largest, abs(updated))
                }
                if largestChange <= tolerance * max(largest, 1) { break }
            }
        }
        let (coefficients, intercept) = scaler.unscale(w, yMean)
        return LinearModel(link: .identity, coefficients: [coefficients], intercepts: [fitIntercept ? intercept : 0], iterations: iterations)
    }
}

@inline(__always) func softThreshold(_ x: Double, _ t: Double) -> Double { x > t ? x - t : x < -t ? x + t : 0 }

/// Solves `a·x = b` for a symmetric positive (semi)definite `a` by Cholesky; a singular `a` gets a tiny ridge
/// (the minimum-norm direction is then approximated, as least squares would pick among equal fits).
func solveSymmetric(_ a: [Double], _ b: [Double], size d: Int) throws -> [Double] {
    guard d > 0 else { return [] }
    let trace = (0..<d).reduce(0) { $0 + a[$1 * d + $1] }
    for jitter in [0, 1e-12, 1e-10, 1e-8, 1e-6] {
        var l = [Double](repeating: 0, count: d * d)
        var ok = true
        let bump = jitter * max(trace / Double(d), 1e-300)
        outer: for i in 0..<d {
            for j in 0...i {
                var s = a[i * d + j] + (i == j ? bump : 0)
                for k in 0..<j { s -= l[i * d + k] * l[j * d + k] }
                if i == j {
                    guard s > 0 else { ok = false; break outer }
                    l[i * d + i] = s.squareRoot()
                } else {
                    l[i * d + j] = s / l[j * d + j]
                }
            }
        }
        guard ok else { continue }
        var z = b
        for i in 0..<d {
            for k in 0..<i { z[i] -= l[i * d + k] * z[k] }
            z[i] /= l[i * d + i]
        }
        for i in stride(from: d - 1, through: 0, by: -1) {
            for k in (i + 1)..<d { z[i] -= l[k * d + i] * z[k] }
            z[i] /= l[i * d + i]
        }
        return z
    }
    throw KilnError.invalid("The features are degenerate (the least-squares system could not be solved)")
}

/// Logistic regression, binary or multinomial (softmax over every class), minimizing scikit-learn's objective
/// `C·Σ log-loss + ½‖W‖²` (intercepts unpenalized) by L-BFGS; with `penalty` "l1" or "elasticnet" the objective's
/// penalty is `‖W‖₁` or `l1_ratio·‖W‖₁ + (1 − l1_ratio)/2·‖W‖²`, minimized by OWL-QN. `standardize` (default on) fits on features scaled
/// to zero mean and unit population variance, like a StandardScaler in front, and reports coefficients in
/// original units. `classWeights` multiply each row's loss by its class's weight ("balanced": n / (k · count)).
public struct LogisticRegression: Sendable {
    public var c = 1.0
    /// "l2" (default), "l1" or "elasticnet" (mixing by `l1Ratio`), as scikit-learn's `penalty`.
    public var penalty = "l2"
    public var l1Ratio = 0.5
    public var standardize = true
    public var maxIterations = 1000
    /// Stop when the largest (pseudo-)gradient component is at most this. nil: 1e-4 with the L2 penalty
    /// (scikit-learn's lbfgs default), 1e-10 with L1/elastic net (OWL-QN; scikit-learn's saga has no comparable rule,
    /// and its answer at `tol=1e-8` is what the tests match).
    public var tolerance: Double?
    public var classWeights: [Double]?

    public init() {}

    public func fit(_ data: Dataset) throws -> LinearModel {
        guard data.task == .classification else { throw KilnError.invalid("Logistic regression needs a class target") }
        guard !data.hasMissing else { throw KilnError.invalid("Logistic regression cannot fit missing feature values; impute or drop them first") }
        guard c > 0 else { throw KilnError.invalid("C must be > 0") }
        guard ["l1", "l2", "elasticnet"].contains(penalty) else { throw KilnError.invalid("penalty is l1, l2 or elasticnet") }
        guard (0...1).contains(l1Ratio) else { throw KilnError.invalid("l1_ratio must be in [0, 1]") }
        let n = data.rows, d = data.width, classes = data.classCount
        guard n > 0 else { throw KilnError.invalid("No training rows") }
        let scaler = Standardization(data, center: standardize, scale: standardize)
        let x = scaler.apply(data)
        let labels = data.labels.map { Int($0) }
        let weights = classWeights ?? [Double](repeating: 1, count: classes)
        guard weights.count == classes else { throw KilnError.invalid("class weights: \(weights.count) given for \(classes) classes") }
        let outputs = classes == 2 ? 1 : classes
        // The objective divided by C·n: L2 weight on ½‖w‖², L1 weight on ‖w‖₁ (intercepts unpenalized).
        let scale = 1 / (c * Double(n))
        let l1Share = penalty == "l1" ? 1 : penalty == "elasticnet" ? l1Ratio : 0
        let penalty = scale * (1 - l1Share)
        // Parameters: outputs × (d coefficients + 1 intercept).
        let stride = d + 1
        // Rows in fixed blocks, summed in block order: the same result on any number of cores.
        let blockRows = 4096
        let blocks = (n + blockRows - 1) / blockRows
        let size = outputs * stride
        let objective = { (theta: [Double], grad: inout [Double]) -> Double in
            // Coefficients feature-major (`[j * outputs + k]`): each class's score sums the features in order (the same
            // sum as class by class), and the classes' sums are independent, so the class loop vectorizes.
            let byFeature = (0..<(d * outputs)).map { e in theta[(e % outputs) * stride + e / outputs] }
            let partials = (try? concurrentMap(blocks) { b -> (loss: Double, grad: [Double]) in
                var loss = 0.0
                var g = [Double](repeating: 0, count: size)
                var scores = [Double](repeating: 0, count: outputs)
                // Raw buffers throughout: bounds and uniqueness checks in the per-row loops cost more than the arithmetic.
                x.withUnsafeBufferPointer { x in
                  theta.withUnsafeBufferPointer { theta in
                    byFeature.withUnsafeBufferPointer { w in
                      g.withUnsafeMutableBufferPointer { g in
                        scores.withUnsafeMutableBufferPointer { s in
                          for i in (b * blockRows)..<min(n, (b + 1) * blockRows) {
                            let label = labels[i], xi = x.baseAddress! + i * d
                            let weight = weights[label] / Double(n)
                            if outputs == 1 {
                                var z = theta[d]
                                for j in 0..<d { z += xi[j] * theta[j] }
                                let t = label == 1 ? 1.0 : 0.0
                                // log(1 + e^z) − t·z, computed stably.
                                loss += weight * ((z > 0 ? z + Foundation.log1p(Foundation.exp(-z)) : Foundation.log1p(Foundation.exp(z))) - t * z)
                                let residual = weight * (1 / (1 + Foundation.exp(-z)) - t)
                                var j = 0
                                while j < d { g[j] += residual * xi[j]; j &+= 1 }
                                g[d] += residual
                                continue
                            }
                            let sk = s.baseAddress!
                            for k in 0..<outputs { sk[k] = theta[k * stride + d] }
                            for j in 0..<d {
                                // Raw pointers and no overflow checks in the innermost loops, so that they vectorize.
                                let v = xi[j], wj = w.baseAddress! + j * outputs
                                var k = 0
                                while k < outputs { sk[k] += v * wj[k]; k &+= 1 }
                            }
                            var top = s[0]
                            for k in 1..<outputs { top = max(top, s[k]) }
                            var sum = 0.0
                            for k in 0..<outputs {
                                s[k] = Foundation.exp(s[k] - top)
                                sum += s[k]
                            }
                            loss += weight * (Foundation.log(sum) - Foundation.log(s[label]))
                            let share = weight / sum
                            for k in 0..<outputs {
                                let residual = share * s[k] - (k == label ? weight : 0)
                                let gk = g.baseAddress! + k * stride
                                var j = 0
                                while j < d { gk[j] += residual * xi[j]; j &+= 1 }
                                gk[d] += residual
                            }
                          }
                        }
                      }
                    }
                  }
                }
                return (loss, g)
            }) ?? []
            let partialLoss = partials.map(\.loss), partialGrad = partials.flatMap(\.grad)
            var loss = 0.0
            for k in grad.indices { grad[k] = 0 }
            for b in 0..<blocks {
                loss += partialLoss[b]
                for k in 0..<size { grad[k] += partialGrad[b * size + k] }
            }
            for k in 0..<outputs {
                for j in 0..<d {
                    let w = theta[k * stride + j]
                    loss += penalty * w * w / 2
                    grad[k * stride + j] += penalty * w
                }
            }
            return loss
        }
        let l1 = l1Share == 0 ? nil : (0..<size).map { $0 % stride == d ? 0 : scale * l1Share }
        let (theta, iterations) = LBFGS.minimize([Double](repeating: 0, count: outputs * stride), maxIterations: maxIterations,
                                                 tolerance: tolerance ?? (l1 == nil ? 1e-4 : 1e-10), l1: l1, objective)
        var coefficients: [[Double]] = [], intercepts: [Double] = []
        for k in 0..<outputs {
            let (w, b) = scaler.unscale(Array(theta[(k * stride)..<(k * stride + d)]), theta[k * stride + d])
            coefficients.append(w)
            intercepts.append(b)
        }
        return LinearModel(link: outputs == 1 ? .logistic : .softmax, coefficients: coefficients, intercepts: intercepts, iterations: iterations)
    }
}

/// Limited-memory BFGS with a backtracking (Armijo) line search; with `l1` weights it is OWL-QN (Andrew & Gao), which
/// minimizes `f(x) + Σ l1ᵢ·|xᵢ|` by steps that stay within one orthant (what Spark uses for L1 logistic regression).
enum LBFGS {
    /// Minimizes `f` (which also fills the gradient) from `start`; stops, as scikit-learn's L-BFGS-B does, when the
    /// (pseudo-)gradient's largest component is at most `tolerance` or a step lowers the objective by no more than
    /// 64 ulp relative. Returns the point and the iterations used.
    static func minimize(_ start: [Double], maxIterations: Int, tolerance: Double, memory: Int = 10, l1: [Double]? = nil,
                         _ smooth: ([Double], inout [Double]) -> Double) -> ([Double], Int) {
        var x = start
        var g = [Double](repeating: 0, count: x.count)
        func f(_ x: [Double], _ g: inout [Double]) -> Double {
            let value = smooth(x, &g)
            guard let l1 else { return value }
            var penalty = 0.0
            for i in x.indices { penalty += l1[i] * abs(x[i]) }
            return value + penalty
        }
        /// The gradient, or OWL-QN's pseudo-gradient: the steepest-descent direction of the non-smooth objective.
        func pseudo(_ x: [Double], _ g: [Double]) -> [Double] {
            guard let l1 else { return g }
            return x.indices.map { i in
                let w = l1[i]
                if w == 0 { return g[i] }
                if x[i] < 0 { return g[i] - w }
                if x[i] > 0 { return g[i] + w }
                if g[i] + w < 0 { return g[i] + w }
                if g[i] - w > 0 { return g[i] - w }
                return 0
            }
        }
        var fx = f(x, &g)
        var s: [[Double]] = [], y: [[Double]] = [], rho: [Double] = []
        var iteration = 0
        func dot(_ a: [Double], _ b: [Double]) -> Double { zip(a, b).reduce(0) { $0 + $1.0 * $1.1 } }
        while iteration < maxIterations {
            let pg = pseudo(x, g)
            if (pg.map(abs).max() ?? 0) <= tolerance { break }
            iteration += 1
            // Two-loop recursion: direction = −H·g.
            var q = pg
            var alphas = [Double](repeating: 0, count: s.count)
            for k in stride(from: s.count - 1, through: 0, by: -1) {
                alphas[k] = rho[k] * dot(s[k], q)
                for i in q.indices { q[i] -= alphas[k] * y[k][i] }
            }
            if let ls = s.last, let ly = y.last {
                let gamma = dot(ls, ly) / dot(ly, ly)
                for i in q.indices { q[i] *= gamma }
            } else {
                let norm = dot(pg, pg).squareRoot()
                if norm > 0 { for i in q.indices { q[i] /= norm } }
            }
            for k in 0..<s.count {
                let beta = rho[k] * dot(y[k], q)
                for i in q.indices { q[i] += s[k][i] * (alphas[k] - beta) }
            }
            var direction = q.map { -$0 }
            if l1 != nil {
                // Keep only components that agree with steepest descent.
                for i in direction.indices where direction[i] * pg[i] >= 0 { direction[i] = 0 }
            }
            var slope = dot(pg, direction)
            if slope >= 0 {  // not a descent direction: restart from steepest descent
                s.removeAll(); y.removeAll(); rho.removeAll()
                direction = pg.map { -$0 }
                slope = -dot(pg, pg)
            }
            // OWL-QN's orthant: the sign of x, or of steepest descent where x is 0; steps never cross it.
            let orthant = l1 == nil ? [] : x.indices.map { x[$0] != 0 ? (x[$0] > 0 ? 1.0 : -1.0) : (pg[$0] < 0 ? 1.0 : pg[$0] > 0 ? -1.0 : 0) }
            var step = 1.0
            var candidate = x, gNew = g, fNew = fx
            var accepted = false
            for _ in 0..<60 {
                for i in x.indices { candidate[i] = x[i] + step * direction[i] }
                if let l1 {
                    for i in x.indices where l1[i] > 0 && candidate[i] * orthant[i] <= 0 { candidate[i] = 0 }
                    fNew = f(candidate, &gNew)
                    var change = 0.0
                    for i in x.indices { change += pg[i] * (candidate[i] - x[i]) }
                    if fNew <= fx + 1e-4 * change { accepted = true; break }
                } else {
                    fNew = f(candidate, &gNew)
                    if fNew <= fx + 1e-4 * step * slope { accepted = true; break }
                }
                step /= 2
            }
            guard accepted else { break }
            let sk = zip(candidate, x).map { $0 - $1 }, yk = zip(gNew, g).map { $0 - $1 }
            let sy = dot(sk, yk)
            if sy > 1e-16 {
                s.append(sk); y.append(yk); rho.append(1 / sy)
                if s.count > memory { s.removeFirst(); y.removeFirst(); rho.removeFirst() }
            }
            let decrease = fx - fNew
            x = candidate
            g = gNew
            fx = fNew
            if decrease <= 64 * Double.ulpOfOne * max(abs(fx), abs(fx + decrease), 1) { break }
        }
        return (x, iteration)
    }
}
