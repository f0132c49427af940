import Engine

/// A machine's step as a comparable value, so that a state-by-state test can say which action it
/// expects at each step (`#expect(kind(step) == .call(...))`).
enum StepKind<Response: Hashable & Sendable>: Hashable {
    case call(StoreCall)
    case sleep
    case awaitRebuild
    case respond(Response, followUp: StoreCall?)

    init(_ step: Step<Response>) {
        switch step {
        case .call(let call): self = .call(call)
        case .sleep: self = .sleep
        case .awaitRebuild: self = .awaitRebuild
        case .respond(let response, let followUp): self = .respond(response, followUp: followUp)
        }
    }

    /// The store call of a `.call` step.
    var call: StoreCall? {
        if case .call(let call) = self { return call }
        return nil
    }
}

/// Thrown by a state-by-state test where a step has another shape than the one it expects.
struct UnexpectedStep: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
