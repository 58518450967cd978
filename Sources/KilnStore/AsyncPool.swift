/// A fixed set of resources lent out one borrower at a time: `withItem` waits (first come, first served) until
/// one is free. SQLite's reader connections use it so that two reads never share a connection: statements that
/// overlap on one connection share its read transaction, and a read that began after a commit could then see the
/// snapshot from before it (a run just created answered "not found").
public actor AsyncPool<Item: Sendable> {
    private var free: [Item]
    private var waiters: [CheckedContinuation<Item, Never>] = []
    private var head = 0

    public init(_ items: [Item]) {
        precondition(!items.isEmpty, "an AsyncPool needs at least one item")
        free = items
    }

    /// Runs `body` with an item nobody else holds until it returns.
    public func withItem<R: Sendable>(_ body: @Sendable (Item) async throws -> R) async throws -> R {
        let item = await take()
        do {
            let result = try await body(item)
            give(item)
            return result
        } catch {
            give(item)
            throw error
        }
    }

    private func take() async -> Item {
        if let item = free.popLast() { return item }
        return await withCheckedContinuation { waiters.append($0) }
    }

    private func give(_ item: Item) {
        guard head < waiters.count else {
            waiters.removeAll(keepingCapacity: true)
            head = 0
            free.append(item)
            return
        }
        let next = waiters[head]
        head += 1
        if head > 64, head * 2 > waiters.count {
            waiters.removeFirst(head)
            head = 0
        }
        next.resume(returning: item)
    }
}
