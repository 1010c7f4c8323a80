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
}
