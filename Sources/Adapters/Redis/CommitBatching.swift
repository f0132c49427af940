import AdapterSupport
import Engine

/// Commits that a connection's batch carries side by side, sent as one COMMIT script.
///
/// Every script call pays a fixed part in Redis: the call itself, the script lookup, the argument
/// tables, reading the generation and the server's identity, and the clock. A checkout's commit is
/// a handful of commands, so that fixed part is a large share of Redis's time per checkout. The
/// COMMIT script takes any number of commits (`LuaScripts.commit`): consecutive commits of one batch
/// travel as one call and pay the fixed part once, each still checked against its own guards,
/// generation and time window, one after the other, as the single calls would have been. Reads and
/// installs keep their place in the pipeline, so the batch's order is unchanged.
enum CommitBatching {
    /// A batch's requests, with consecutive COMMITs of the same key prefix folded into one; `spans`
    /// gives, for each request sent, how many of the batch's requests it carries.
    static func fold(_ batch: [RedisRequest]) -> (requests: [RedisRequest], spans: [Int]) {
        var requests: [RedisRequest] = []
        var spans: [Int] = []
        requests.reserveCapacity(batch.count)
        spans.reserveCapacity(batch.count)
        var index = 0
        while index < batch.count {
            guard case .script(LuaScripts.commit, let keys, let args) = batch[index], args.count >= 3 else {
                requests.append(batch[index])
                spans.append(1)
                index += 1
                continue
            }
            var end = index + 1
            while end < batch.count, case .script(LuaScripts.commit, keys, let next) = batch[end], next.count >= 3, next[0] == args[0] {
                end += 1
            }
            if end == index + 1 {
                requests.append(batch[index])
            } else {
                // [prefix, count, (length, section)...] of each, under one prefix and the sum of the counts.
                var merged = [args[0], ""]
                var count = 0
                for case .script(_, _, let part) in batch[index..<end] {
                    count += Int(part[1]) ?? 0
                    merged.append(contentsOf: part[2...])
                }
                merged[1] = String(count)
                requests.append(.script(LuaScripts.commit, keys: keys, args: merged))
            }
            spans.append(end - index)
            index = end
        }
        return (requests, spans)
    }

    /// The replies to the batch's own requests, from the replies to what `fold` sent: a folded
    /// COMMIT's list of verdicts handed out one each, in order. A folded call that failed as a whole
    /// (an error, a lost connection, a malformed answer) may have run some of its commits, so each
    /// of them answers `.timeout`: fate unknown.
    static func unfold(_ results: [Result<RedisValue, StoreFailure>], spans: [Int]) -> [Result<RedisValue, StoreFailure>] {
        var replies: [Result<RedisValue, StoreFailure>] = []
        replies.reserveCapacity(spans.reduce(0, +))
        for (result, span) in zip(results, spans) {
            if span == 1 {
                replies.append(result)
            } else if case .success(.array(let verdicts)) = result, verdicts.count == span {
                for verdict in verdicts { replies.append(.success(.array([verdict]))) }
            } else {
                if case .success(let other) = result { adapterLog("redis: a batch of \(span) commits failed: \(other)") }
                for _ in 0..<span { replies.append(.failure(.timeout)) }
            }
        }
        return replies
    }
}
