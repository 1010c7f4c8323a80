import ChorusCore
import Testing

@Suite struct CircuitBreakerTests {
    @Test func opensAfterConsecutiveFailuresThenProbesOnceAndCloses() {
        var breaker = CircuitBreaker(failureThreshold: 3, cooldownSeconds: 10)
        let r1 = breaker.recordFailure(now: 0)
        #expect(!r1)
        let r2 = breaker.recordFailure(now: 1)
        #expect(!r2)
        breaker.recordSuccess()  // not consecutive any more
        let r3 = breaker.recordFailure(now: 2)
        #expect(!r3)
        let r4 = breaker.recordFailure(now: 3)
        #expect(!r4)
        let r5 = breaker.recordFailure(now: 4)
        #expect(r5, "the third consecutive failure opens it")
        #expect(breaker.state(now: 5) == .open && !breaker.admits(now: 5))
        #expect(breaker.state(now: 14.5) == .halfOpen && breaker.admits(now: 14.5))
        breaker.admitted(now: 14.5)
        #expect(!breaker.admits(now: 14.6), "one probe at a time")
        let r6 = breaker.recordSuccess()
        #expect(r6, "the probe's success closes it")
        #expect(breaker.state(now: 15) == .closed && breaker.admits(now: 15))
    }

    @Test func aFailedProbeOpensItAgainAndAnAbandonedOneLetsTheNextProbe() {
        var breaker = CircuitBreaker(failureThreshold: 1, cooldownSeconds: 10)
        let r7 = breaker.recordFailure(now: 0)
        #expect(r7)
        breaker.admitted(now: 11)
        let r8 = breaker.recordFailure(now: 11)
        #expect(r8, "a failed probe opens it for another cool-down")
        #expect(breaker.state(now: 20) == .open && breaker.state(now: 21.5) == .halfOpen)
        breaker.admitted(now: 21.5)
        #expect(!breaker.admits(now: 21.6))
        breaker.recordNeither()  // the probe's client left
        #expect(breaker.admits(now: 21.7), "an abandoned probe must not keep the breaker shut")
    }

    @Test func anotherProcessCanOpenIt() {
        var breaker = CircuitBreaker(failureThreshold: 5, cooldownSeconds: 30)
        breaker.openRemotely(until: 100)
        #expect(breaker.state(now: 50) == .open)
        breaker.openRemotely(until: 60)  // an older opening does not shorten it
        #expect(breaker.state(now: 80) == .open && breaker.state(now: 100) == .halfOpen)
    }
}
