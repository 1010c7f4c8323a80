import AsyncHTTPClient
import NIOCore
import NIOHTTP1
import Synchronization

/// An upstream response read part by part in the caller's task, through async-http-client's
/// delegate API: no task of its own, and the request can be failed from outside
/// (`HTTPClient.Task.fail(reason:)`), which is how the stream's deadlines end it.
///
/// Backpressure: a part stays unacknowledged until `next()` takes it, so the connection reads
/// at most one part ahead of the reader. (Acknowledging several on arrival saves a promise
/// resolved across threads per token, but the parts waiting keep their read buffers: more memory
/// per stream; bench/results/HISTORY.md has the figures.)
final class StreamedResponse: HTTPClientResponseDelegate, Sendable {
    typealias Response = Void

    enum Part: Sendable {
        case head(HTTPResponseHead)
        case body(ByteBuffer)
    }

    private struct State {
        /// Parts not yet taken, each with the promise that lets the connection read on.
        var parts: [(Part, EventLoopPromise<Void>)] = []
        var waiter: CheckedContinuation<Part?, any Error>?
        /// Set once: success after the last part, or the error that ended the request.
        var end: Result<Void, any Error>?
        /// The reader is done: later parts are dropped (and acknowledged).
        var closed = false
    }

    private let state = Mutex(State())

    /// Parts received and not yet taken.
    var waiting: Int { state.withLock { $0.parts.count } }

    /// The next part; nil once the response is complete. Throws the request's error (a transport
    /// failure, `HTTPClientError.cancelled`, or the reason given to `fail(reason:)`) after the
    /// parts received before it.
    func next() async throws -> Part? {
        try await withCheckedThrowingContinuation { continuation in
            enum Action {
                case part(Part, EventLoopPromise<Void>)
                case end(Result<Void, any Error>)
                case wait
            }
            let action: Action = state.withLock { state in
                if !state.parts.isEmpty {
                    let (part, promise) = state.parts.removeFirst()
                    return .part(part, promise)
                }
                if let end = state.end { return .end(end) }
                state.waiter = continuation
                return .wait
            }
            switch action {
            case .part(let part, let promise):
                promise.succeed()
                continuation.resume(returning: part)
            case .end(.success):
                continuation.resume(returning: nil)
            case .end(.failure(let error)):
                continuation.resume(throwing: error)
            case .wait:
                break
            }
        }
    }

    /// The reader stops reading: parts still queued, and any that come later, are acknowledged
    /// and dropped, so the connection reads the response to its end and can be reused.
    func close() {
        let promises = state.withLock { state in
            state.closed = true
            defer { state.parts = [] }
            return state.parts.map(\.1)
        }
        for promise in promises { promise.succeed() }
    }

    private func deliver(_ part: Part, on eventLoop: any EventLoop) -> EventLoopFuture<Void> {
        enum Action {
            case resume(CheckedContinuation<Part?, any Error>)
            case queued(EventLoopPromise<Void>)
            case drop
        }
        let action: Action = state.withLock { state in
            if state.closed { return .drop }
            if let waiter = state.waiter {
                state.waiter = nil
                return .resume(waiter)
            }
            let promise = eventLoop.makePromise(of: Void.self)
            state.parts.append((part, promise))
            return .queued(promise)
        }
        switch action {
        case .resume(let waiter):
            waiter.resume(returning: part)
            return eventLoop.makeSucceededVoidFuture()
        case .queued(let promise):
            return promise.futureResult
        case .drop:
            return eventLoop.makeSucceededVoidFuture()
        }
    }

    private func finish(_ end: Result<Void, any Error>) {
        let waiter: CheckedContinuation<Part?, any Error>? = state.withLock { state in
            guard state.end == nil else { return nil }
            state.end = end
            defer { state.waiter = nil }
            return state.waiter
        }
        switch end {
        case .success: waiter?.resume(returning: nil)
        case .failure(let error): waiter?.resume(throwing: error)
        }
    }

    func didReceiveHead(task: HTTPClient.Task<Void>, _ head: HTTPResponseHead) -> EventLoopFuture<Void> {
        deliver(.head(head), on: task.eventLoop)
    }

    func didReceiveBodyPart(task: HTTPClient.Task<Void>, _ buffer: ByteBuffer) -> EventLoopFuture<Void> {
        deliver(.body(buffer), on: task.eventLoop)
    }

    func didReceiveError(task: HTTPClient.Task<Void>, _ error: any Error) {
        finish(.failure(error))
    }

    func didFinishRequest(task: HTTPClient.Task<Void>) throws {
        finish(.success(()))
    }
}
