import ChorusCore
import Testing

@Suite struct OneShotTests {
    @Test func waitersGetTheFirstValueAndLaterSetsAreIgnored() async {
        let shot = OneShot<Int>()
        async let first = shot.value()
        async let second = shot.value()
        try? await Task.sleep(for: .milliseconds(20))
        #expect(shot.set(1))
        #expect(!shot.set(2), "a second set is ignored")
        #expect(await first == 1)
        #expect(await second == 1)
        #expect(await shot.value() == 1, "a late waiter returns at once")
    }

    @Test func ofConcurrentSetsExactlyOneWins() async {
        for _ in 0..<20 {
            let shot = OneShot<Int>()
            let wins = await withTaskGroup(of: Bool.self) { group in
                for value in 0..<32 { group.addTask { shot.set(value) } }
                return await group.reduce(0) { $0 + ($1 ? 1 : 0) }
            }
            #expect(wins == 1)
        }
    }
}
