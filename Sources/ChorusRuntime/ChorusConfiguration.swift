public import ChorusCore
import ChorusProviders
import ChorusStore

/// Everything `chorus serve` is configured with. Read once at start by `ConfigurationLoader`.
public struct ChorusConfiguration: Sendable {
    public struct Metrics: Sendable {
        /// Record metrics (served at `GET /metrics` to callers with `admin:metrics`).
        public var enabled = true
        /// A bearer token that may read `GET /metrics` and nothing else (for a Prometheus scraper),
        /// from the environment variable `metrics.scrape_token_env` names; never in the file.
        public var scrapeToken: String?
        /// A second listener on `http.host` that serves only `GET /metrics`, without credentials
        /// (for a Prometheus that reaches no other port). nil: none.
        public var port: Int?
    }

    /// What a process does on SIGTERM (see docs/OPERATIONS.md).
    public struct Shutdown: Sendable {
        /// How long synchronous streams in flight may run on after SIGTERM before they are cut.
        public var graceSeconds = 30.0
    }

    public struct HTTP: Sendable {
        public var host = "127.0.0.1"
        public var port = 8080
        /// Largest request body accepted (413 above it).
        public var maxBodyBytes = 8 * 1024 * 1024
        /// Browser origins allowed to call the API (CORS, with credentials). Empty: none.
        public var corsOrigins: [String] = []
        /// Addresses of reverse proxies whose `X-Forwarded-For` / `X-Forwarded-Proto` are believed.
        public var trustedProxies: [String] = []
        /// Connections the kernel queues before Chorus accepts them (capped by `net.core.somaxconn`).
        /// A burst larger than this queue loses SYNs, and those clients retry only after 1 s, 3 s, ….
        public var backlog = 4096
        /// A connection that sends no request for this long is closed: a new one that has sent
        /// no whole request head, or a kept-alive one between requests. An answer in progress
        /// (a stream, however quiet) is not cut.
        public var idleTimeoutSeconds: Double = 60
    }

    public struct Auth: Sendable {
        public enum Registration: String, Sendable, CaseIterable {
            case open, closed, invite
        }

        public enum CookieSecure: String, Sendable, CaseIterable {
            /// Secure when the request came over TLS (or a trusted proxy says so).
            case auto
            case `true`
            case `false`
        }

        /// false: no accounts, every request is the local administrator (a warning at start).
        public var enabled = true
        public var registration: Registration = .closed
        /// The role of users who register.
        public var defaultRole = BuiltinRole.user
        public var sessionTTLSeconds = 7 * 24 * 3600
        public var bcryptCost = 12
        /// The administrator created on first start when no user exists.
        public var bootstrapAdminEmail = "admin@localhost"
        public var cookieSecure: CookieSecure = .auto
    }

    /// Requests and tokens per minute; 0 means no limit.
    public struct Limits: Sendable {
        public var ipRequestsPerMinute = 0
        public var ipTokensPerMinute = 0
        public var userRequestsPerMinute = 0
        public var userTokensPerMinute = 0
        public var keyRequestsPerMinute = 0
        public var keyTokensPerMinute = 0
        /// Login and registration attempts per client IP.
        public var loginAttemptsPerMinute = 20
    }

    public struct Storage: Sendable {
        /// The SQLite database file of embedded mode.
        public var sqlitePath = "./data/chorus.sqlite"
        /// The PostgreSQL database of the distributed shape (`postgres://user:pass@host:port/db`).
        public var postgresURL: String?
        public var postgresConnections = 20
        /// How many recurring statements each PostgreSQL connection keeps prepared; 0 runs every
        /// statement unnamed (for a pooler that cannot keep them, such as PgBouncer before 1.21
        /// in transaction mode).
        public var postgresPreparedStatements = PostgresBackend.Configuration.defaultPreparedStatements
    }

    /// Redis, for the distributed shape's queues and task events.
    public struct Redis: Sendable {
        public var url: String?
        /// Shared connections (commands are pipelined over them).
        public var connections = 4
        /// Connections for blocking reads (workers' queue reads, the event follower).
        public var blockingConnections = 8
        /// Prefix of every key.
        public var prefix = "chorus"
    }

    public struct Conversations: Sendable {
        /// How many stored messages are sent to the model as history.
        public var historyMessages = 20
        /// Whether a chat request that sends no `store` is kept in a conversation (a new one for a
        /// request without `conversation_id`). OpenAI's own default is false; Chorus remembers.
        public var store = true
        /// How often a long streamed answer is checkpointed to the database.
        public var checkpointSeconds = 5.0
        /// What a client disconnect during a synchronous stream does: `cancel` the upstream call and
        /// save the partial answer, or `continue` the generation detached and store it when it ends.
        public var onDisconnect: DisconnectPolicy = .cancel
    }

    public enum DisconnectPolicy: String, Sendable {
        case cancel
        case `continue`
    }

    public struct Upstream: Sendable {
        /// Connections kept per upstream host; streams hold one each, so this bounds concurrent streams.
        /// Above 256 it is rounded up to a multiple of 256 (`UpstreamClients`: 256 calls per client).
        public var maxConnectionsPerHost = 10_000
        public var idleConnectionSeconds = 60.0
    }

    public struct Tasks: Sendable {
        /// Tasks one worker runs at once.
        public var concurrency = 16
        /// A running task's lease; a task whose worker stopped renewing it is taken over.
        public var leaseSeconds = 15.0
        /// Claims of one task (its workers died) before it is dead-lettered and failed.
        public var maxAttempts = 3
        /// How long the events of an ended task stay replayable.
        public var eventRetentionSeconds = 3600
        /// A pending task not picked up for this long, with nothing waiting in its queue, is queued again.
        public var requeueAfterSeconds = 10.0
        /// Commands users may run as `command` tasks, by name (`tasks.commands`).
        public var commands: [String: CommandDeclaration] = [:]
        /// Largest total size of the files one command run leaves as artifacts.
        public var artifactMaxBytes = 64 * 1024 * 1024
    }

    public struct Files: Sendable {
        /// Largest upload (413 above it).
        public var maxBytes = 10 * 1024 * 1024
    }

    public struct Logging: Sendable {
        public var level = "info"
        /// `text` or `json`.
        public var format = "text"
    }

    /// OpenTelemetry traces, exported over OTLP/HTTP (JSON) when an endpoint is set.
    public struct Tracing: Sendable {
        /// The collector's base URL (`http://host:4318`); spans go to `<endpoint>/v1/traces`.
        /// nil: no exporter, no spans recorded.
        public var otlpEndpoint: String?
        public var enabled: Bool { otlpEndpoint != nil }
    }

    /// SkillSpace's routes (`/api/ai/…`, `/api/tasks/…`).
    public struct SkillSpace: Sendable {
        /// The model that answers them: by default the model named `local`, else the first
        /// `local` one; nil when there is none (the routes then answer that none is configured).
        public var model: String?
    }

    public var http = HTTP()
    public var auth = Auth()
    public var limits = Limits()
    public var storage = Storage()
    public var conversations = Conversations()
    public var upstream = Upstream()
    public var tasks = Tasks()
    public var redis = Redis()
    public var files = Files()
    public var logging = Logging()
    public var metrics = Metrics()
    public var tracing = Tracing()
    public var skillSpace = SkillSpace()
    public var shutdown = Shutdown()
    /// Folder for the database and logs.
    public var dataDirectory = "./data"
    /// The model table, in configuration order.
    public var models: [ModelConfiguration] = []

    public init() {}
}
