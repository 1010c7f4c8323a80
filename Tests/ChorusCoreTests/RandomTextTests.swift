import Testing

@testable import ChorusCore

@Suite struct RandomTextTests {
    @Test func idsAndSecretsHaveTheirLengthAlphabetAndDoNotRepeat() {
        let allowed = Set("0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
        var seen = Set<String>()
        var counts: [Character: Int] = [:]
        for _ in 0..<2_000 {
            let id = Identifier.make("req_")
            #expect(id.hasPrefix("req_") && id.count == 28)
            let text = RandomText.make(40)
            #expect(text.count == 40 && text.allSatisfy(allowed.contains))
            for character in text { counts[character, default: 0] += 1 }
            seen.insert(text)
        }
        #expect(seen.count == 2_000)
        // 80,000 characters over 62 symbols: every symbol shows up, none wildly more often.
        #expect(counts.count == 62)
        #expect(counts.values.allSatisfy { (900...1_700).contains($0) })
        #expect(Secrets.newAPIKey().hasPrefix("sk-chorus-") && Secrets.newAPIKey().count == 50)
    }
}
