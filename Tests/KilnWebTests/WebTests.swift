import Foundation
import KilnCore
import Testing
@testable import KilnWeb

@Suite("Web UI building blocks")
struct WebTests {
    @Test("markup in user text is escaped, never written raw")
    func escaping() {
        #expect(HTML.escape("<script>alert('x') & \"y\"</script>") == "&lt;script&gt;alert(&#39;x&#39;) &amp; &quot;y&quot;&lt;/script&gt;")
        #expect(HTML.query("a b&c=d/é") == "a%20b%26c%3Dd%2F%C3%A9")
    }

    @Test("after signing in, only paths on this server are followed")
    func nextPaths() {
        #expect(WebUI.safeNext("/ui/experiments/3?filter=x") == "/ui/experiments/3?filter=x")
        for hostile in ["//evil.example/x", "https://evil.example", "/\\evil.example", "", nil] as [String?] {
            #expect(WebUI.safeNext(hostile) == "/ui/experiments")
        }
    }

    @Test("form bodies and query strings decode + and percent escapes")
    func forms() {
        let fields = formFields("token=a%2Bb+c&next=%2Fui%2Fx&empty=&token=second")
        #expect(fields == ["token": "a+b c", "next": "/ui/x", "empty": ""])
    }

    @Test("the name search never breaks out of its quotes")
    func nameFilter() {
        #expect(ExperimentPages.nameFilter("  ") == nil)
        #expect(ExperimentPages.nameFilter("demo") == "name ILIKE '%demo%'")
        #expect(ExperimentPages.nameFilter("bob's") == "name ILIKE \"%bob's%\"")
        #expect(ExperimentPages.nameFilter("a'\"b") == "name ILIKE '%a%\"b%'")
        #expect(ExperimentPages.literal("m") == "'m'" && ExperimentPages.literal("o'k") == "\"o'k\"")
    }

    @Test("sessions: random ids, CSRF tokens, expiry and sign-out")
    func sessions() async throws {
        let sessions = WebSessions(lifetime: 0.2)
        let (id, session) = await sessions.create(caller: Caller(id: nil, name: "alice", groups: []))
        #expect(id.count == 43 && session.csrf.count == 43 && id != session.csrf)
        #expect(await sessions.session(id)?.principal == "alice")
        #expect(await sessions.session("not-an-id") == nil)
        try await Task.sleep(for: .milliseconds(300))
        #expect(await sessions.session(id) == nil)  // expired
        let (other, _) = await sessions.create(caller: Caller(id: nil, name: "bob", groups: []))
        await sessions.end(other)
        #expect(await sessions.session(other) == nil)
        #expect(WebSessions.same("abc", "abc") && !WebSessions.same("abc", "abd") && !WebSessions.same("abc", "ab"))
    }

    @Test("a long history is drawn from a bounded number of points that keeps its extremes")
    func downsampling() {
        var points: [(x: Double, y: Double)] = (0..<10_000).map { (Double($0), sin(Double($0) / 50)) }
        points[7_777].y = 40
        points[1_234].y = -40
        points[10].y = .nan
        let drawn = Charts.downsample(points)
        #expect(drawn.count <= 800 && drawn.count > 200)
        #expect(drawn.contains { $0.y == 40 } && drawn.contains { $0.y == -40 } && drawn.allSatisfy { $0.y.isFinite })
        #expect(zip(drawn, drawn.dropFirst()).allSatisfy { $0.x < $1.x })
        #expect(drawn.first?.x == 0 && drawn.last?.x == 9_999)
        #expect(Charts.downsample([(0, 1), (1, .nan), (2, 3)]).map(\.x) == [0, 2])
    }

    @Test("smoothing is debiased, and chart options come from the query")
    func smoothing() {
        #expect(Charts.smooth([3, 3, 3, 3], weight: 0.9).allSatisfy { abs($0 - 3) < 1e-12 })
        #expect(Charts.smooth([1, 2, 3], weight: 0) == [1, 2, 3])
        let s = Charts.smooth([0, 10, 0, 10, 0, 10], weight: 0.6)
        #expect(s.dropFirst().allSatisfy { $0 > 0 && $0 < 10 })
        let o = Charts.Options(query: ["x": "time", "scale": "log", "smooth": "5", "outliers": "hide"])
        #expect(o.axis == .time && o.logScale && o.smoothing == 0.99 && o.hideOutliers)
        #expect(Charts.Options(query: ["x": "bogus"]) == Charts.Options())
    }
}
