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

    /// Ids of stored rows begin with their millisecond in base 36, so byte order (SQLite's
    /// BINARY, PostgreSQL's "C") is creation order, across digit boundaries and at any date.
    @Test func orderedIDsSortByTheirMillisecondAndStayUnique() {
        let now = nowMilliseconds()
        let times: [Int64] = [0, 1, 35, 36, 1_295, 1_296, now - 1, now, now + 1, now + 36, now + 36 * 36, 101_559_956_668_415]
        let ids = times.map { Identifier.ordered("msg_", milliseconds: $0) }
        for (id, time) in zip(ids, times) {
            #expect(id.hasPrefix("msg_") && id.count == 28)
            let stamp = id.dropFirst(4).prefix(9)
            #expect(stamp.allSatisfy { "0123456789abcdefghijklmnopqrstuvwxyz".contains($0) })
            #expect(Int64(stamp, radix: 36) == time)
        }
        #expect(ids.shuffled().sorted { Array($0.utf8).lexicographicallyPrecedes(Array($1.utf8)) } == ids)
        // The same millisecond: the random rest keeps them apart.
        let same = (0..<2_000).map { _ in Identifier.ordered("task_", milliseconds: now) }
        #expect(Set(same).count == 2_000)
        #expect(Set(same.map { $0.prefix(14) }).count == 1)
    }
}
