import Engine
@testable import RedisAdapter
import Testing

/// Consecutive commits of a Redis batch folded into one COMMIT call, and its verdicts handed back.
struct CommitBatchingTests {
    static func commit(_ tag: String, prefix: String = "fs:g") -> RedisRequest {
        .script(LuaScripts.commit, keys: ["fs:gen"], args: [prefix, "1", "2", tag, "x"])
    }
    static let read = RedisRequest.script(LuaScripts.read, keys: ["fs:gen"], args: ["fs:g", ""])

    @Test("Runs of commits fold into one call; reads, other prefixes and lone commits keep their place")
    func fold() {
        let batch = [Self.commit("a"), Self.commit("b"), Self.read, Self.commit("c"), Self.commit("d", prefix: "other"), Self.commit("e", prefix: "other"),
                     Self.commit("f", prefix: "other")]
        let (requests, spans) = CommitBatching.fold(batch)
        #expect(spans == [2, 1, 1, 3])
        guard requests.count == 4, case .script(LuaScripts.commit, _, let first) = requests[0], case .script(LuaScripts.read, _, _) = requests[1],
            case .script(LuaScripts.commit, _, let lone) = requests[2], case .script(LuaScripts.commit, _, let last) = requests[3]
        else {
            Issue.record("unexpected requests \(requests)")
            return
        }
        #expect(first == ["fs:g", "2", "2", "a", "x", "2", "b", "x"])
        #expect(lone == ["fs:g", "1", "2", "c", "x"])
        #expect(last == ["other", "3", "2", "d", "x", "2", "e", "x", "2", "f", "x"])
    }

    @Test("A folded call's verdicts go back one each, in order; a folded call that failed leaves each commit's fate unknown")
    func unfold() throws {
        let replies = CommitBatching.unfold(
            [.success(.array([.string("committed"), .string("conflict")])), .success(.string("read")), .success(.error("ERR boom")),
             .failure(.unavailable)],
            spans: [2, 1, 2, 2])
        #expect(replies.count == 7)
        #expect(try replies[0].get() == .array([.string("committed")]))
        #expect(try replies[1].get() == .array([.string("conflict")]))
        #expect(try replies[2].get() == .string("read"))
        for failed in replies[3...] {
            guard case .failure(.timeout) = failed else {
                Issue.record("expected a timeout, got \(failed)")
                continue
            }
        }
        #expect(RedisHotStore.decodeCommit(.array([.string("expired")])) == .success(.expired))
    }
}
