/// A sequential specification: a state, and what each operation may do to it. `successors`
/// returns every state the operation may leave behind (more than one when the specification is
/// nondeterministic, e.g. an operation without an answer that may or may not have taken effect),
/// and none when the operation cannot have happened, with the answer it got, in that state.
public protocol SequentialSpecification {
    associatedtype State: Hashable
    associatedtype Operation
    var initialState: State { get }
    func successors(of state: State, applying operation: Operation) -> [State]
}

/// An operation with its real-time interval; `complete == nil` means no answer (it may take
/// effect at any time after `invoke`, or never).
public struct TimedOperation<Operation> {
    public let operation: Operation
    public let invoke: Int64
    public let complete: Int64?

    public init(_ operation: Operation, invoke: Int64, complete: Int64?) {
        self.operation = operation
        self.invoke = invoke
        self.complete = complete
    }
}

/// The verdict of one search.
public enum SearchVerdict: Equatable, Sendable {
    /// A legal order exists: the operations' indices in that order.
    case linearizable([Int])
    /// No legal order exists. `longestPrefix`: the most operations any partial order managed to
    /// place (a hint of where it went wrong).
    case notLinearizable(longestPrefix: Int)
    /// The search gave up after its step budget.
    case unknown
}

/// The Wing & Gong search as improved by Lowe and used by Porcupine: walk the history's call and
/// return events in time order; at a call, try to linearize that operation now (the specification
/// must accept it); at a return whose operation is not yet placed, backtrack. A cache of
/// (operations placed, state) pairs prunes every configuration already explored, which is what
/// makes it fast on real histories. Operations without an answer return after everything else, so
/// they may be placed anywhere after their call, or never: the search succeeds once every answered
/// operation is placed. So a specification needs no "nothing happened" choice for them.
public struct LinearizabilitySearch<Spec: SequentialSpecification> {
    public let specification: Spec
    /// Steps (operations placed) before the search gives up and answers `.unknown`.
    public var budget: Int

    public init(_ specification: Spec, budget: Int = 300_000) {
        self.specification = specification
        self.budget = budget
    }

    private struct Key: Hashable {
        let placed: [UInt64]
        let state: Spec.State
    }

    private struct Frame {
        let call: Int
        let before: Spec.State
        let choices: [Spec.State]
        let choice: Int
    }

    /// Searches with at most 0, 1, 2, 4, … unanswered operations taking effect, then without a
    /// limit (iterative deepening): most histories need few of them, and a search free to place any
    /// of them early can wander through every subset before it undoes the one placement that
    /// mattered. Only the unlimited search may answer "not linearizable".
    public func check(_ operations: [TimedOperation<Spec.Operation>]) -> SearchVerdict {
        let unanswered = operations.filter { $0.complete == nil }.count
        var steps = 0
        var limit = 0
        while limit < unanswered {
            let verdict = search(operations, unansweredLimit: limit, steps: &steps)
            if case .linearizable = verdict { return verdict }
            if verdict == .unknown { return .unknown }
            limit = limit == 0 ? 1 : limit * 2
        }
        return search(operations, unansweredLimit: unanswered, steps: &steps)
    }

    func search(_ operations: [TimedOperation<Spec.Operation>], unansweredLimit: Int, steps: inout Int) -> SearchVerdict {
        let n = operations.count
        if n == 0 { return .linearizable([]) }
        // Events 1...2n: 2i+1 is the call of operation i, 2i+2 its return; 0 is the list's head.
        var events: [(time: Int64, isReturn: Bool, id: Int)] = []
        events.reserveCapacity(2 * n)
        for (i, op) in operations.enumerated() {
            events.append((op.invoke, false, 2 * i + 1))
            events.append((op.complete ?? Int64.max, true, 2 * i + 2))
        }
        // Calls before returns at the same instant: touching intervals count as concurrent.
        events.sort { ($0.time, $0.isReturn ? 1 : 0, $0.id) < ($1.time, $1.isReturn ? 1 : 0, $1.id) }
        var next = [Int](repeating: -1, count: 2 * n + 1)
        var prev = [Int](repeating: -1, count: 2 * n + 1)
        var last = 0
        for event in events {
            next[last] = event.id
            prev[event.id] = last
            last = event.id
        }
        next[last] = -1

        func lift(_ call: Int) {
            for e in [call, call + 1] {
                next[prev[e]] = next[e]
                if next[e] >= 0 { prev[next[e]] = prev[e] }
            }
        }
        func unlift(_ call: Int) {
            for e in [call + 1, call] {
                next[prev[e]] = e
                if next[e] >= 0 { prev[next[e]] = e }
            }
        }

        var placed = [UInt64](repeating: 0, count: (n + 63) / 64)
        var cache = Set<Key>()
        var stack: [Frame] = []
        var state = specification.initialState
        var longest = 0
        var placedUnanswered = 0
        let answered = operations.map { $0.complete != nil }
        let toPlace = answered.filter { $0 }.count
        var placedAnswered = 0

        /// Tries the choices of `call` from `from` on; true when one was new and is now placed.
        func place(_ call: Int, before: Spec.State, choices: [Spec.State], from: Int) -> Bool {
            let op = (call - 1) / 2
            if !answered[op] && placedUnanswered >= unansweredLimit { return false }
            var index = from
            while index < choices.count {
                var bits = placed
                bits[op >> 6] |= 1 << UInt64(op & 63)
                if cache.insert(Key(placed: bits, state: choices[index])).inserted {
                    stack.append(Frame(call: call, before: before, choices: choices, choice: index))
                    placed = bits
                    state = choices[index]
                    lift(call)
                    if answered[op] { placedAnswered += 1 } else { placedUnanswered += 1 }
                    longest = max(longest, stack.count)
                    return true
                }
                index += 1
            }
            return false
        }

        /// The first call that may be placed now (no unplaced return before it) from `start` on,
        /// among answered operations or among unanswered ones.
        func scan(from start: Int, unanswered: Bool) -> Int? {
            var e = start
            while e >= 0 {
                if e % 2 == 0 { return nil }
                if answered[(e - 1) / 2] != unanswered { return e }
                e = next[e]
            }
            return nil
        }

        /// The next call to try after `previous` (nil: from the start). Answered operations are
        /// tried first, unanswered ones (which may take effect or not) only after them: the same
        /// choices as Lowe's list order, explored in an order that rarely needs the unanswered.
        func candidate(after previous: Int?) -> Int? {
            guard let previous else { return scan(from: next[0], unanswered: false) ?? scan(from: next[0], unanswered: true) }
            if answered[(previous - 1) / 2] {
                return scan(from: next[previous], unanswered: false) ?? scan(from: next[0], unanswered: true)
            }
            return scan(from: next[previous], unanswered: true)
        }

        var entry = candidate(after: nil)
        while placedAnswered < toPlace {
            steps += 1
            if steps > budget { return .unknown }
            if let call = entry {
                let choices = specification.successors(of: state, applying: operations[(call - 1) / 2].operation)
                entry = place(call, before: state, choices: choices, from: 0) ? candidate(after: nil) : candidate(after: call)
            } else {
                // Nothing can be placed before an unplaced return: undo the latest placement, try its next choice.
                guard let frame = stack.popLast() else { return .notLinearizable(longestPrefix: longest) }
                unlift(frame.call)
                let op = (frame.call - 1) / 2
                placed[op >> 6] &= ~(1 << UInt64(op & 63))
                if answered[op] { placedAnswered -= 1 } else { placedUnanswered -= 1 }
                state = frame.before
                entry = place(frame.call, before: frame.before, choices: frame.choices, from: frame.choice + 1)
                    ? candidate(after: nil) : candidate(after: frame.call)
            }
        }
        return .linearizable(stack.map { ($0.call - 1) / 2 })
    }
}
