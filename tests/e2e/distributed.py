"""Fixtures and helpers for the end-to-end tests of the distributed shape.

The distributed shape is `chorus gateway` (any number) + `chorus worker` (any number) over Redis
Streams and PostgreSQL. These helpers start, once per test module, a real `redis-server` (a child
process that tests may SIGKILL and start again on the same port, with no persistence) and a real
PostgreSQL 15 cluster (`initdb` + `pg_ctl` as the `postgres` OS user, SCRAM password auth over
TCP). Each test then gets its own database (`CREATE DATABASE t_<hex>`), its own Redis key prefix
(`chorus_<hex>`) and its own gateways and workers, all stopped at teardown even on failure.

Test modules import the fixtures from here (`from distributed import ...`); pytest finds fixtures
imported into a test module's namespace. The shared `fake_upstream` fixture comes from conftest.

Needs: `redis-server` and `redis-cli` on PATH, PostgreSQL 15 in /usr/lib/postgresql/15/bin
(`scripts/setup.sh --with-databases`), root (to run PostgreSQL as `postgres`), and the Python
packages `psycopg[binary]` and `websockets` (scripts/setup.sh installs them into .venv).
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import httpx
import pytest

from conftest import (DEFAULT_EXTRA_CONFIG, LISTEN_TIMEOUT_S, AdminCredentials, FakeUpstream, ManagedProcess,
                      admin_credentials, auth_headers, config_sections_yaml, merge_config, register_api_key,
                      wait_until)

PG_BIN = Path(os.environ.get("CHORUS_PG_BIN", "/usr/lib/postgresql/15/bin"))
TERMINAL_STATES = {"SUCCESS", "FAILURE", "CANCELLED"}
FAKE_MODELS = ("fake-a", "fake-b", "fake-c")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _require(condition: bool, why: str) -> None:
    if not condition:
        pytest.fail(f"the distributed tests need {why} (run scripts/setup.sh --with-databases)", pytrace=False)


# --------------------------------------------------------------------------------------------
# Redis


class RedisServer:
    """A `redis-server` child process without persistence on a fixed port: `kill()` SIGKILLs it,
    `start()` starts a fresh (empty) one on the same port."""

    def __init__(self, directory: Path):
        _require(shutil.which("redis-server") is not None and shutil.which("redis-cli") is not None,
                 "redis-server and redis-cli on PATH")
        self.directory = directory
        self.port = free_port()
        self.process: subprocess.Popen | None = None
        self.generation = 0

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}"

    def start(self) -> None:
        assert self.process is None or self.process.poll() is not None, "redis-server is already running"
        self.generation += 1
        log = open(self.directory / f"redis-{self.generation}.log", "wb")
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--daemonize", "no",
             "--dir", str(self.directory), "--save", "", "--appendonly", "no"],
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
        log.close()
        wait_until(lambda: self.ping() or (self.process.poll() is not None and self._died()), 15,
                   interval=0.05, message=f"redis-server on port {self.port} to answer PING")

    def _died(self) -> bool:
        raise AssertionError(f"redis-server exited (status {self.process.returncode}):\n" + self.log_tail())

    def log_tail(self, lines: int = 30) -> str:
        path = self.directory / f"redis-{self.generation}.log"
        try:
            return "\n".join(path.read_text("utf-8", "replace").splitlines()[-lines:])
        except OSError:
            return ""

    def ping(self) -> bool:
        try:
            return self.cli("PING", timeout=2) == "PONG"
        except (subprocess.SubprocessError, AssertionError):
            return False

    def kill(self) -> None:
        """SIGKILL: no shutdown, no save; every client connection is reset."""
        assert self.process is not None
        self.process.kill()
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)

    def cli(self, *args: str, timeout: float = 10) -> str:
        """One `redis-cli --raw` command; its output without the trailing newline."""
        done = subprocess.run(["redis-cli", "-p", str(self.port), "--raw", *args],
                              capture_output=True, text=True, timeout=timeout)
        if done.returncode != 0:
            raise AssertionError(f"redis-cli {' '.join(args)} failed ({done.returncode}): {done.stderr}{done.stdout}")
        return done.stdout.rstrip("\n")

    def xlen(self, key: str) -> int:
        return int(self.cli("XLEN", key) or 0)

    def keys(self, pattern: str) -> list[str]:
        out = self.cli("KEYS", pattern)
        return [line for line in out.splitlines() if line]


# --------------------------------------------------------------------------------------------
# PostgreSQL


class PostgresServer:
    """A throwaway PostgreSQL 15 cluster run as the `postgres` OS user, listening on 127.0.0.1."""

    def __init__(self):
        _require((PG_BIN / "initdb").is_file() and (PG_BIN / "pg_ctl").is_file(), f"PostgreSQL 15 in {PG_BIN}")
        _require(os.geteuid() == 0, "root (PostgreSQL runs as the postgres user)")
        _require(shutil.which("runuser") is not None, "runuser")
        # Not under pytest's tmp_path: its parent is private to root and postgres must traverse it.
        self.root = Path(tempfile.mkdtemp(prefix="chorus-e2e-pg-"))
        self.root.chmod(0o755)
        self.data = self.root / "data"
        self.socket_dir = self.root / "sock"
        self.socket_dir.mkdir()
        self.password = secrets.token_hex(12)
        pwfile = self.root / "pwfile"
        pwfile.write_text(self.password + "\n")
        shutil.chown(self.root, "postgres")
        shutil.chown(self.socket_dir, "postgres")
        shutil.chown(pwfile, "postgres")
        pwfile.chmod(0o600)
        self.port = free_port()
        self.log = self.root / "server.log"
        self._as_postgres([str(PG_BIN / "initdb"), "-D", str(self.data), "-U", "postgres", "--auth-local=trust",
                           "--auth-host=scram-sha-256", f"--pwfile={pwfile}", "-E", "UTF8"], timeout=120)
        self.started = False

    def _as_postgres(self, args: list[str], timeout: float) -> None:
        done = subprocess.run(["runuser", "-u", "postgres", "--", *args], capture_output=True, text=True,
                              timeout=timeout, cwd=self.root)
        if done.returncode != 0:
            raise AssertionError(f"{' '.join(args)} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}\n{self.log_tail()}")

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log.read_text("utf-8", "replace").splitlines()[-lines:])
        except OSError:
            return ""

    def start(self, action: str = "start") -> None:
        options = f"-p {self.port} -k {self.socket_dir} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=300"
        self._as_postgres([str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-l", str(self.log), "-o", options, "-w",
                           "-t", "60", *(["-m", "fast"] if action == "restart" else []), action], timeout=90)
        self.started = True

    def restart(self) -> None:
        """`pg_ctl restart -m fast`: every client connection is ended, the data stays."""
        self.start("restart")

    def stop(self) -> None:
        if self.started:
            try:
                self._as_postgres([str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop"], timeout=60)
            finally:
                self.started = False
        shutil.rmtree(self.root, ignore_errors=True)

    def url(self, database: str) -> str:
        return f"postgres://postgres:{self.password}@127.0.0.1:{self.port}/{database}"

    def connect(self, database: str = "postgres"):
        import psycopg
        from psycopg.rows import dict_row
        return psycopg.connect(host="127.0.0.1", port=self.port, user="postgres", password=self.password,
                               dbname=database, autocommit=True, row_factory=dict_row, connect_timeout=10)

    def create_database(self, name: str) -> None:
        with self.connect() as connection:
            connection.execute(f'CREATE DATABASE "{name}"')

    def drop_database(self, name: str) -> None:
        with self.connect() as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="module")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    try:
        server.start()
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def postgres_server() -> Iterator[PostgresServer]:
    server = PostgresServer()
    try:
        server.start()
        yield server
    finally:
        server.stop()


# --------------------------------------------------------------------------------------------
# Chorus processes


@dataclass
class Gateway:
    name: str
    url: str
    process: ManagedProcess
    api_key: str | None = None      # the cluster's administrator API key; `http` sends it
    _client: httpx.Client | None = field(default=None, repr=False)

    @property
    def http(self) -> httpx.Client:
        if self._client is None:
            self._client = httpx.Client(base_url=self.url, timeout=httpx.Timeout(30.0),
                                        headers=auth_headers(self.api_key))
        return self._client

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    def submit_batch(self, prompt: str, models: list[str], **extra: Any) -> dict[str, Any]:
        r = self.http.post("/v1/batches", json={"prompt": prompt, "models": models, **extra})
        assert r.status_code == 202, f"POST /v1/batches on {self.name}: {r.status_code} {r.text}"
        body = r.json()
        assert body["message"] == "Tasks dispatched successfully", body
        assert len(body["task_ids"]) == len(models), body
        return body

    def task(self, task_id: str) -> dict[str, Any]:
        r = self.http.get(f"/v1/tasks/{task_id}")
        assert r.status_code == 200, f"GET /v1/tasks/{task_id} on {self.name}: {r.status_code} {r.text}"
        return r.json()

    def batch(self, batch_id: str) -> dict[str, Any]:
        r = self.http.get(f"/v1/batches/{batch_id}")
        assert r.status_code == 200, f"GET /v1/batches/{batch_id} on {self.name}: {r.status_code} {r.text}"
        return r.json()

    def wait_task(self, task_id: str, timeout: float, states: set[str] = TERMINAL_STATES) -> dict[str, Any]:
        last: dict[str, Any] = {}

        def check() -> bool:
            nonlocal last
            last = self.task(task_id)
            return last["state"] in states
        try:
            wait_until(check, timeout, interval=0.1, message=f"task {task_id} to reach {sorted(states)}")
        except AssertionError as error:
            raise AssertionError(f"{error}\nlast seen: {json.dumps(last)[:1500]}") from None
        return last

    def wait_batch(self, batch_id: str, timeout: float) -> dict[str, Any]:
        last: dict[str, Any] = {}

        def check() -> bool:
            nonlocal last
            last = self.batch(batch_id)
            return last["status"] == "completed"
        try:
            wait_until(check, timeout, interval=0.1, message=f"batch {batch_id} to complete")
        except AssertionError as error:
            raise AssertionError(f"{error}\nlast seen: {json.dumps(last)[:2000]}") from None
        return last


class Cluster:
    """One test's distributed Chorus: its database, Redis prefix, config, gateways and workers."""

    def __init__(self, chorus_bin: str, workdir: Path, redis: RedisServer, postgres: PostgresServer,
                 fake: FakeUpstream, lease_seconds: float = 3, requeue_after_seconds: float = 3):
        self.chorus_bin = chorus_bin
        self.workdir = workdir
        self.redis = redis
        self.postgres = postgres
        self.fake = fake
        tag = secrets.token_hex(5)
        self.database = f"t_{tag}"
        self.prefix = f"chorus_{tag}"
        postgres.create_database(self.database)
        self.config_path = workdir / "chorus.yaml"
        self.lease_seconds = lease_seconds
        self.requeue_after_seconds = requeue_after_seconds
        self.concurrency: int | None = None      # tasks.concurrency; set before the first start
        # Further configuration sections (`limits`, `auth`, ...), merged over `auth: {bcrypt_cost: 4}`;
        # set before the first start.
        self.extra_config: dict[str, Any] = {}
        # Further model entries (YAML, indented under `models:`); set before the first start.
        self.extra_models = ""
        # Every gateway and worker gets the same bootstrap password; the administrator is created
        # once in the shared database, and the first gateway gives the cluster its API key.
        self.admin_password = secrets.token_urlsafe(18)
        self.admin: AdminCredentials | None = None
        self.gateways: list[Gateway] = []
        self.workers: dict[str, ManagedProcess] = {}
        self.killed: set[int] = set()       # pids the test killed on purpose
        self._starts: dict[str, int] = {}
        self._retired: list[ManagedProcess] = []
        self._db = None

    def write_config(self) -> None:
        models = "".join(
            f"  {name}: {{provider: openai, base_url: {self.fake.base_url}, upstream_model: fake-model, retries: 0}}\n"
            for name in FAKE_MODELS)
        self.config_path.write_text(
            "storage:\n"
            f"  postgres_url: {self.postgres.url(self.database)}\n"
            "redis:\n"
            f"  url: {self.redis.url}\n"
            f"  prefix: {self.prefix}\n"
            "tasks:\n"
            f"  lease_seconds: {self.lease_seconds}\n"
            f"  requeue_after_seconds: {self.requeue_after_seconds}\n"
            + (f"  concurrency: {self.concurrency}\n" if self.concurrency is not None else "")
            + config_sections_yaml(merge_config(DEFAULT_EXTRA_CONFIG, self.extra_config))
            + "models:\n" + models + self.extra_models)

    @property
    def api_key(self) -> str | None:
        return self.admin.api_key if self.admin else None

    # processes

    def _process(self, name: str, args: list[str]) -> ManagedProcess:
        if not self.config_path.exists():
            self.write_config()
        env = {**os.environ, "CHORUS_ADMIN_PASSWORD": self.admin_password}
        return ManagedProcess(name, [self.chorus_bin, *args, "--config", str(self.config_path)], self.workdir,
                              env=env, cwd=self.workdir)

    def migrate(self) -> str:
        if not self.config_path.exists():
            self.write_config()
        done = subprocess.run([self.chorus_bin, "migrate", "--config", str(self.config_path)],
                              capture_output=True, text=True, timeout=60, cwd=self.workdir)
        assert done.returncode == 0, f"chorus migrate failed ({done.returncode}):\n{done.stdout}\n{done.stderr[-3000:]}"
        line = next((l for l in done.stdout.splitlines() if l.startswith("migrations applied: ")), None)
        assert line, f"chorus migrate printed no 'migrations applied:' line:\n{done.stdout}"
        return line

    def start(self, gateways: int = 2, workers: tuple[str, ...] = ("w1", "w2"),
              worker_models: dict[str, str] | None = None) -> None:
        """Starts the gateways and workers side by side (they migrate concurrently), then waits
        for each one's ready line."""
        pending_gateways = [self._process(f"gateway{len(self.gateways) + i + 1}", ["gateway", "--port", "0"])
                            for i in range(gateways)]
        pending_workers = [(name, self.start_worker(name, (worker_models or {}).get(name), wait=False)) for name in workers]
        for process in pending_gateways:
            url = process.listening_url("chorus gateway listening on ")
            if self.admin is None:
                self.admin = admin_credentials(url, self.admin_password)
            register_api_key(url, self.admin.api_key)
            self.gateways.append(Gateway(process.name, url, process, api_key=self.admin.api_key))
        for name, process in pending_workers:
            process.wait_for_line(f"chorus worker {name} started")

    def start_worker(self, name: str, models: str | None = None, wait: bool = True) -> ManagedProcess:
        args = ["worker", "--name", name] + (["--models", models] if models else [])
        # A restarted worker keeps its name (its consumer name); its log file gets a suffix.
        self._starts[name] = self._starts.get(name, 0) + 1
        log_name = name if self._starts[name] == 1 else f"{name}-run{self._starts[name]}"
        process = self._process(log_name, args)
        if name in self.workers:
            self._retired.append(self.workers[name])
        self.workers[name] = process
        if wait:
            process.wait_for_line(f"chorus worker {name} started")
        return process

    def kill_worker(self, name: str) -> None:
        process = self.workers[name]
        self.killed.add(process.pid)
        os.kill(process.pid, signal.SIGKILL)
        process.proc.wait(timeout=10)

    def wait_workers_registered(self, names: set[str], timeout: float = 15) -> list[dict[str, Any]]:
        def check():
            data = self.gateways[0].http.get("/v1/admin/workers").json()["data"]
            return data if names <= {w["id"] for w in data} else None
        return wait_until(check, timeout, interval=0.1, message=f"workers {sorted(names)} in /v1/admin/workers")

    def processes(self) -> list[ManagedProcess]:
        return [g.process for g in self.gateways] + self._retired + list(self.workers.values())

    def assert_alive(self) -> None:
        """No gateway or worker died unless the test killed it."""
        dead = [p for p in self.processes() if p.proc.poll() is not None and p.pid not in self.killed]
        assert not dead, "\n\n".join(f"{p.name} died (status {p.proc.returncode})\n{p.describe()}" for p in dead)

    def describe(self, lines: int = 60) -> str:
        """Every process's stdout and the tail of its stderr (readable after `stop`)."""
        parts = []
        for p in self.processes():
            try:
                stderr = p.stderr_path.read_text("utf-8", "replace").splitlines()
            except OSError:
                stderr = []
            parts.append(f"===== {p.name} (pid {p.pid}, exit status {p.proc.poll()}) =====\n"
                         f"command: {' '.join(p.args)}\nstdout:\n" + "\n".join(p.stdout_lines[-10:])
                         + f"\nstderr (last {lines} lines of {p.stderr_path}):\n"
                         + "\n".join(line[:400] for line in stderr[-lines:]))
        return "\n\n".join(parts)

    def stop(self) -> None:
        for gateway in self.gateways:
            gateway.close()
        processes = [p for p in self.processes() if p.proc.poll() is None]
        for process in processes:
            process.proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 5
        for process in processes:
            try:
                process.proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                process.proc.kill()  # a worker draining a long task
        for process in self.processes():
            process.stop(timeout=5)
        if self._db is not None:
            self._db.close()
            self._db = None

    # PostgreSQL

    @property
    def db(self):
        if self._db is None:
            self._db = self.postgres.connect(self.database)
        return self._db

    def query(self, sql: str, params: tuple = ()) -> list[dict[str, Any]]:
        return self.db.execute(sql, params).fetchall()

    def restart_postgres(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None
        self.postgres.restart()

    def task_row(self, task_id: str) -> dict[str, Any]:
        rows = self.query("SELECT * FROM tasks WHERE id = %s", (task_id,))
        assert len(rows) == 1, f"tasks row for {task_id}: {rows}"
        return rows[0]

    def assistant_rows(self, task_id: str) -> list[dict[str, Any]]:
        return self.query("SELECT * FROM messages WHERE role = 'assistant' AND turn_id = %s", (task_id,))

    # Redis keys

    def queue_key(self, model: str) -> str:
        return f"{self.prefix}:queue:{model}"

    def dead_key(self, model: str) -> str:
        return f"{self.prefix}:dead:{model}"

    def events_key(self, task_id: str) -> str:
        return f"{self.prefix}:events:{task_id}"


@pytest.fixture
def cluster(chorus_bin: str, fake_upstream: FakeUpstream, redis_server: RedisServer,
            postgres_server: PostgresServer, tmp_path: Path) -> Iterator[Cluster]:
    """A fresh database and Redis prefix; the test calls `cluster.start(...)`. Teardown stops
    every process, prints their logs (shown by pytest when the test failed) and drops the
    database; it fails the test if a gateway or worker died without being killed on purpose."""
    if not redis_server.ping():          # an earlier test killed it and failed before restarting it
        redis_server.start()
    instance = Cluster(chorus_bin, tmp_path, redis_server, postgres_server, fake_upstream)
    died = ""
    try:
        yield instance
        dead = [p for p in instance.processes() if p.proc.poll() is not None and p.pid not in instance.killed]
        if dead:
            died = "\n\n".join(f"{p.name} died (status {p.proc.returncode})\n{p.describe()}" for p in dead)
    finally:
        instance.stop()
        print(f"logs in {tmp_path}\n" + instance.describe())
        try:
            postgres_server.drop_database(instance.database)
        except Exception as error:  # noqa: BLE001 - cleanup only
            print(f"could not drop {instance.database}: {error}")
    if died:
        pytest.fail("a Chorus process died during this test\n" + died, pytrace=False)


# --------------------------------------------------------------------------------------------
# Task events: SSE and WebSocket


@dataclass
class SSEEvent:
    id: str | None
    event: str | None
    data: dict[str, Any]

    @property
    def seq(self) -> int:
        return self.data["seq"]

    @property
    def type(self) -> str:
        return self.data["type"]


def iter_task_events(response: httpx.Response) -> Iterator[SSEEvent]:
    """Parses an SSE response into events (`id:`, `event:`, `data:` fields; comments skipped)."""
    event_id: str | None = None
    event_type: str | None = None
    data: list[str] = []
    for line in response.iter_lines():
        if line == "":
            if data:
                yield SSEEvent(event_id, event_type, json.loads("\n".join(data)))
            event_id, event_type, data = None, None, []
        elif line.startswith(":"):
            continue
        else:
            name, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            if name == "id":
                event_id = value
            elif name == "event":
                event_type = value
            elif name == "data":
                data.append(value)
    if data:
        yield SSEEvent(event_id, event_type, json.loads("\n".join(data)))


def read_task_events(base_url: str, task_id: str, *, last_event_id: int | None = None, limit: int | None = None,
                     timeout: float = 60) -> list[SSEEvent]:
    """Reads a task's SSE stream on its own connection until a terminal event (or `limit`
    events), then closes it."""
    headers = {"Last-Event-ID": str(last_event_id)} if last_event_id is not None else {}
    events: list[SSEEvent] = []
    headers.update(auth_headers(base_url))
    with httpx.Client(base_url=base_url, timeout=httpx.Timeout(timeout)) as client:
        with client.stream("GET", f"/v1/tasks/{task_id}/events", headers=headers) as response:
            assert response.status_code == 200, f"GET events: {response.status_code} {response.read()!r}"
            assert response.headers.get("content-type", "").startswith("text/event-stream"), response.headers
            for event in iter_task_events(response):
                events.append(event)
                if event.type in ("finish", "error") or (limit is not None and len(events) >= limit):
                    break
    return events


class Follower(threading.Thread):
    """Follows a task's events in the background (SSE or WebSocket) until a terminal event."""

    def __init__(self, kind: str, base_url: str, task_id: str, timeout: float = 90):
        super().__init__(daemon=True)
        assert kind in ("sse", "ws")
        self.kind = kind
        self.base_url = base_url
        self.task_id = task_id
        self.timeout = timeout
        self.events: list[dict[str, Any]] = []
        self.sse_events: list[SSEEvent] = []
        self.pongs = 0
        self.error: BaseException | None = None
        self.connected = threading.Event()

    def run(self) -> None:
        try:
            if self.kind == "sse":
                self._run_sse()
            else:
                self._run_ws()
        except BaseException as error:  # noqa: BLE001 - reported by result()
            self.error = error
        finally:
            self.connected.set()

    def _run_sse(self) -> None:
        with httpx.Client(base_url=self.base_url, timeout=httpx.Timeout(self.timeout),
                          headers=auth_headers(self.base_url)) as client:
            with client.stream("GET", f"/v1/tasks/{self.task_id}/events") as response:
                if response.status_code != 200:
                    raise AssertionError(f"GET /v1/tasks/{self.task_id}/events: {response.status_code} {response.read()!r}")
                self.connected.set()
                for event in iter_task_events(response):
                    self.sse_events.append(event)
                    self.events.append(event.data)
                    if event.type in ("finish", "error"):
                        return

    def _run_ws(self) -> None:
        from websockets.sync.client import connect
        url = "ws" + self.base_url[len("http"):] + f"/v1/tasks/{self.task_id}/ws"
        deadline = time.monotonic() + self.timeout
        with connect(url, open_timeout=10, close_timeout=2,
                     additional_headers=auth_headers(self.base_url)) as websocket:
            self.connected.set()
            websocket.send(json.dumps({"type": "ping"}))
            while True:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(f"no terminal event on the WebSocket within {self.timeout} s")
                message = json.loads(websocket.recv(timeout=remaining))
                if message.get("type") == "pong":
                    self.pongs += 1
                    continue
                self.events.append(message)
                if message.get("type") in ("finish", "error"):
                    return

    def result(self, timeout: float) -> list[dict[str, Any]]:
        self.join(timeout)
        if self.is_alive():
            raise AssertionError(f"{self.kind} follower of {self.task_id} did not end within {timeout} s; "
                                 f"got {len(self.events)} events, last: {self.events[-3:]}")
        if self.error is not None:
            raise AssertionError(f"{self.kind} follower of {self.task_id} failed: {self.error!r}; "
                                 f"got {len(self.events)} events before") from self.error
        return self.events


def answer_after_restarts(events: list[dict[str, Any]]) -> str:
    """The answer as a client rebuilds it: tokens after the last `restarted` progress event."""
    text = ""
    for event in events:
        if event["type"] == "progress" and (event.get("data") or {}).get("restarted") is True:
            text = ""
        elif event["type"] == "answer":
            text += event["token"]
    return text


def assert_sequence(events: list[dict[str, Any]], start: int = 1) -> None:
    """Sequence numbers run start, start+1, … with no gap and no duplicate."""
    seqs = [e["seq"] for e in events]
    assert seqs == list(range(start, start + len(seqs))), f"event sequence numbers are not contiguous from {start}: {seqs}"


def fake_request_count(fake: FakeUpstream, marker: str) -> int:
    """How many chat requests the fake upstream received whose messages mention `marker`."""
    return sum(1 for body in fake.requests(200) if marker in json.dumps(body))
