"""Fixtures and helpers for Chorus's black-box end-to-end tests.

Every test talks to REAL processes: the `fake-upstream` binary (a deterministic OpenAI-compatible
server driven by `[[fake key=value ...]]` directives in the last user message) and
`chorus serve`, both started on port 0 in temporary directories and stopped (SIGTERM, then wait)
at teardown. Assertions about storage read Chorus's SQLite file read-only.

Environment (set by the project's test script):
  CHORUS_BIN          the `chorus` binary            (default: .build/debug/chorus)
  FAKE_UPSTREAM_BIN   the `fake-upstream` binary     (default: .build/debug/fake-upstream)
  OPENAI_SCHEMAS      the official OpenAI schemas JSON (components.schemas subset)
  LLAMA_SERVER_BIN    llama.cpp's native `llama-server` (local-model test only)
  CHORUS_LOCAL_MODEL  SmolLM2-135M-Instruct GGUF       (local-model test only)
"""

from __future__ import annotations

import json
import os
import queue
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

import httpx
import pytest

# Test modules import the helpers below with `from conftest import ...`; make that work whatever
# pytest's import mode.
if str(Path(__file__).resolve().parent) not in sys.path:
    sys.path.insert(0, str(Path(__file__).resolve().parent))

REPO_ROOT = Path(__file__).resolve().parents[2]

# The model configuration every fake-backed Chorus uses (see the test brief): a 3 s first-token
# timeout and a 2 s between-token timeout, so `stall_first=5` and `stall_after=K stall=5` fail.
FAKE_TIMEOUTS = "{connect: 5, first_token: 3, between_tokens: 2, total: 60}"
# A second model on the same fake upstream with a 1 s first-token timeout, for the tests that
# only need *a* first-token timeout: Chorus retries such a failure before answering 504, so each
# one costs several timeouts.
QUICK_TIMEOUTS = "{connect: 5, first_token: 1, between_tokens: 2, total: 60}"

LISTEN_TIMEOUT_S = 30.0


# --------------------------------------------------------------------------------------------
# Binaries and paths


def _binary(env_name: str, default: Path) -> str:
    value = os.environ.get(env_name)
    path = Path(value) if value else default
    if not path.is_file() or not os.access(path, os.X_OK):
        pytest.fail(
            f"{env_name} must name an executable (got {str(path)!r}); build with `swift build` "
            f"or set {env_name}",
            pytrace=False,
        )
    return str(path)


@pytest.fixture(scope="session")
def chorus_bin() -> str:
    return _binary("CHORUS_BIN", REPO_ROOT / ".build" / "debug" / "chorus")


@pytest.fixture(scope="session")
def fake_upstream_bin() -> str:
    return _binary("FAKE_UPSTREAM_BIN", REPO_ROOT / ".build" / "debug" / "fake-upstream")


# --------------------------------------------------------------------------------------------
# Processes


class ManagedProcess:
    """A child process whose stdout is read line by line in a thread; stderr goes to a file."""

    def __init__(self, name: str, args: list[str], log_dir: Path, env: dict[str, str] | None = None,
                 cwd: str | Path | None = None):
        self.name = name
        self.args = args
        self.stderr_path = log_dir / f"{name}.stderr.log"
        self._stderr = open(self.stderr_path, "wb")
        self.proc = subprocess.Popen(
            args,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            env=env,
            cwd=cwd,
        )
        self.stdout_lines: list[str] = []
        self._lines: "queue.Queue[str | None]" = queue.Queue()
        self._reader = threading.Thread(target=self._read_stdout, daemon=True)
        self._reader.start()

    @property
    def pid(self) -> int:
        return self.proc.pid

    def _read_stdout(self) -> None:
        assert self.proc.stdout is not None
        for raw in self.proc.stdout:
            line = raw.decode("utf-8", "replace").rstrip("\n")
            self.stdout_lines.append(line)
            self._lines.put(line)
        self._lines.put(None)

    def wait_for_line(self, prefix: str, timeout: float = LISTEN_TIMEOUT_S) -> str:
        """The first stdout line starting with `prefix`; fails with the logs on timeout or exit."""
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                self.stop()
                raise AssertionError(
                    f"{self.name} printed no line starting with {prefix!r} within {timeout} s\n"
                    + self.describe()
                )
            try:
                line = self._lines.get(timeout=remaining)
            except queue.Empty:
                continue
            if line is None:
                self.proc.wait(timeout=5)
                raise AssertionError(
                    f"{self.name} exited (status {self.proc.returncode}) before printing {prefix!r}\n"
                    + self.describe()
                )
            if line.startswith(prefix):
                return line

    def listening_url(self, prefix: str, timeout: float = LISTEN_TIMEOUT_S) -> str:
        line = self.wait_for_line(prefix, timeout)
        url = line[len(prefix):].strip()
        assert url.startswith("http://"), f"unexpected listening line from {self.name}: {line!r}"
        return url.rstrip("/")

    def stderr_text(self) -> str:
        self._stderr.flush()
        try:
            return self.stderr_path.read_text("utf-8", "replace")
        except OSError:
            return ""

    def describe(self) -> str:
        stderr = self.stderr_text()
        lines = stderr.splitlines()
        # A Swift crash report is long: show where it starts (the fatal error and the crashed
        # thread's first frames) before the tail.
        crash = next((i for i, line in enumerate(lines) if "Fatal error" in line or "Program crashed" in line), None)
        crash_excerpt = ""
        if crash is not None:
            thread = next((i for i in range(crash, len(lines)) if " crashed:" in lines[i]), crash)
            crash_excerpt = "crash:\n" + "\n".join(lines[crash:crash + 3] + lines[thread:thread + 16]) + "\n"
            lines = lines[:crash]
        return (
            f"command: {' '.join(self.args)}\n"
            f"stdout:\n" + "\n".join(self.stdout_lines[-20:]) + "\n"
            + crash_excerpt
            + "stderr (last 40 lines before any crash):\n" + "\n".join(line[:400] for line in lines[-40:])
        )

    def stop(self, timeout: float = 15.0) -> int | None:
        """SIGTERM, wait; SIGKILL if it does not exit in time. Returns the exit status."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self._reader.join(timeout=5)
        self._stderr.close()
        return self.proc.returncode


def wait_until(predicate: Callable[[], Any], timeout: float, interval: float = 0.05,
               message: str = "condition") -> Any:
    """Polls `predicate` until it returns a truthy value; fails after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while True:
        last = predicate()
        if last:
            return last
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {message}; last value: {last!r}")
        time.sleep(interval)


# --------------------------------------------------------------------------------------------
# The fake upstream


@dataclass
class FakeUpstream:
    url: str
    process: ManagedProcess

    @property
    def base_url(self) -> str:
        return self.url + "/v1"

    def stats(self) -> dict[str, Any]:
        r = httpx.get(self.url + "/_fake/stats", timeout=10)
        r.raise_for_status()
        return r.json()

    def requests(self, last: int) -> list[dict[str, Any]]:
        """The last `last` raw request bodies the fake received, oldest first, parsed."""
        r = httpx.get(self.url + "/_fake/requests", params={"last": last}, timeout=10)
        r.raise_for_status()
        return [json.loads(body) if isinstance(body, str) else body for body in r.json()]


@pytest.fixture(scope="session")
def fake_upstream(fake_upstream_bin: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[FakeUpstream]:
    log_dir = tmp_path_factory.mktemp("fake-upstream")
    process = ManagedProcess("fake-upstream", [fake_upstream_bin, "--port", "0"], log_dir)
    try:
        url = process.listening_url("fake-upstream listening on ")
        yield FakeUpstream(url=url, process=process)
    finally:
        process.stop()


# --------------------------------------------------------------------------------------------
# Chorus


def fake_model_yaml(fake_base_url: str, name: str = "fake", timeouts: str = FAKE_TIMEOUTS) -> str:
    return (
        f"  {name}:\n"
        f"    provider: openai\n"
        f"    base_url: {fake_base_url}\n"
        f"    upstream_model: fake-model\n"
        f"    timeouts: {timeouts}\n"
    )


def chorus_config_yaml(data_dir: Path, models_yaml: str, history_messages: int = 20,
                       checkpoint_seconds: float = 1) -> str:
    return (
        f"data_dir: {data_dir}\n"
        f"conversations:\n"
        f"  history_messages: {history_messages}\n"
        f"  checkpoint_seconds: {checkpoint_seconds}\n"
        f"models:\n" + models_yaml
    )


@dataclass
class Chorus:
    url: str
    process: ManagedProcess
    config_path: Path
    data_dir: Path
    _client: httpx.Client | None = field(default=None, repr=False)

    @property
    def base_url(self) -> str:
        return self.url + "/v1"

    @property
    def db_path(self) -> Path:
        return self.data_dir / "chorus.sqlite"

    @property
    def http(self) -> httpx.Client:
        if self._client is None:
            self._client = httpx.Client(base_url=self.url, timeout=httpx.Timeout(30.0))
        return self._client

    def chat(self, content: str, *, stream: bool = False, conversation_id: str | None = None,
             model: str = "fake", **extra: Any) -> httpx.Response:
        """A (non-streamed, or fully read streamed) chat completion with one user message."""
        body: dict[str, Any] = {"model": model, "messages": [{"role": "user", "content": content}], **extra}
        if stream:
            body["stream"] = True
        if conversation_id is not None:
            body["conversation_id"] = conversation_id
        return self.http.post("/v1/chat/completions", json=body)

    # SQLite, read-only

    def query(self, sql: str, params: tuple = ()) -> list[sqlite3.Row]:
        return query_db(self.db_path, sql, params)

    def assistant_rows(self, conversation_id: str) -> list[sqlite3.Row]:
        return self.query(
            "SELECT * FROM messages WHERE conversation_id = ? AND role = 'assistant' ORDER BY seq",
            (conversation_id,),
        )

    def counts(self) -> tuple[int, int]:
        conversations = self.query("SELECT COUNT(*) AS n FROM conversations")[0]["n"]
        messages = self.query("SELECT COUNT(*) AS n FROM messages")[0]["n"]
        return conversations, messages

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None


def query_db(db_path: Path, sql: str, params: tuple = ()) -> list[sqlite3.Row]:
    """Runs one read-only query on Chorus's SQLite file (the server keeps writing it)."""
    connection = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=10)
    try:
        connection.row_factory = sqlite3.Row
        return connection.execute(sql, params).fetchall()
    finally:
        connection.close()


def start_chorus(chorus_bin: str, workdir: Path, models_yaml: str, *, checkpoint_seconds: float = 1,
                 history_messages: int = 20, env: dict[str, str] | None = None,
                 listen_timeout: float = LISTEN_TIMEOUT_S) -> Chorus:
    data_dir = workdir / "data"
    config_path = workdir / "chorus.yaml"
    config_path.write_text(chorus_config_yaml(data_dir, models_yaml, history_messages, checkpoint_seconds))
    process = ManagedProcess(
        "chorus",
        [chorus_bin, "serve", "--config", str(config_path), "--port", "0"],
        workdir,
        env=env if env is not None else os.environ.copy(),
        cwd=workdir,
    )
    url = process.listening_url("chorus listening on ", listen_timeout)
    return Chorus(url=url, process=process, config_path=config_path, data_dir=data_dir)


@pytest.fixture(scope="session")
def chorus(chorus_bin: str, fake_upstream: FakeUpstream,
           tmp_path_factory: pytest.TempPathFactory) -> Iterator[Chorus]:
    """One Chorus for the session, serving the models `fake` and `fake-quick` (a 1 s first-token
    timeout) backed by the fake upstream."""
    workdir = tmp_path_factory.mktemp("chorus")
    instance = start_chorus(chorus_bin, workdir, fake_model_yaml(fake_upstream.base_url)
                            + fake_model_yaml(fake_upstream.base_url, "fake-quick", QUICK_TIMEOUTS))
    try:
        yield instance
    finally:
        instance.close()
        instance.process.stop()


@pytest.fixture(autouse=True)
def _chorus_must_survive(request: pytest.FixtureRequest) -> Iterator[None]:
    """Blames a crash of the shared Chorus on the test during which it happened."""
    yield
    if "chorus" in request.fixturenames:
        instance: Chorus = request.getfixturevalue("chorus")
        if instance.process.proc.poll() is not None:
            pytest.fail(f"chorus died during this test (exit status {instance.process.proc.returncode})\n"
                        + instance.process.describe(), pytrace=False)


# --------------------------------------------------------------------------------------------
# SSE


@dataclass
class SSEResult:
    """A streamed chat completion as the client saw it."""
    status_code: int
    headers: httpx.Headers
    events: list[str]            # every `data:` payload, in order, `[DONE]` included
    body: bytes = b""            # the body of a non-200 answer

    @property
    def done(self) -> bool:
        return bool(self.events) and self.events[-1] == "[DONE]"

    @property
    def chunks(self) -> list[dict[str, Any]]:
        return [json.loads(e) for e in self.events if e != "[DONE]"]

    @property
    def content(self) -> str:
        return "".join(
            (choice.get("delta") or {}).get("content") or ""
            for chunk in self.chunks for choice in chunk.get("choices") or []
        )

    @property
    def reasoning(self) -> str:
        return "".join(
            (choice.get("delta") or {}).get("reasoning_content") or ""
            for chunk in self.chunks for choice in chunk.get("choices") or []
        )

    @property
    def errors(self) -> list[dict[str, Any]]:
        return [c["error"] for c in self.chunks if "error" in c]


def sse_data_lines(response: httpx.Response) -> Iterator[str]:
    """Yields the payload of each `data:` line of an SSE response (comments and blanks skipped)."""
    for line in response.iter_lines():
        if line.startswith("data:"):
            yield line[5:].lstrip(" ")


def stream_chat(chorus: "Chorus", body: dict[str, Any], headers: dict[str, str] | None = None) -> SSEResult:
    """POSTs a streamed chat completion and reads it to the end.

    Each stream uses its own connection: Chorus closes the connection after a streamed response
    (see test_schemas.py::test_streamed_response_connection_reuse), and a pooled connection that
    is being closed would make the NEXT, unrelated request of a test fail.
    """
    body = {**body, "stream": True}
    with httpx.Client(base_url=chorus.url, timeout=httpx.Timeout(30.0)) as client:
        with client.stream("POST", "/v1/chat/completions", json=body, headers=headers) as response:
            if response.status_code != 200:
                response.read()
                return SSEResult(response.status_code, response.headers, [], response.content)
            content_type = response.headers.get("content-type", "")
            assert content_type.startswith("text/event-stream"), f"streamed response has content-type {content_type!r}"
            events = list(sse_data_lines(response))
    return SSEResult(response.status_code, response.headers, events)


def user_body(content: str, model: str = "fake", **extra: Any) -> dict[str, Any]:
    return {"model": model, "messages": [{"role": "user", "content": content}], **extra}


def unique_tag() -> str:
    """A marker that makes a prompt (and so a conversation title) unique to one test."""
    return uuid.uuid4().hex[:10]


def answer(tokens: int) -> str:
    """The fake upstream's deterministic answer for `tokens=N`."""
    return "".join(f"t{i} " for i in range(tokens))


def reasoning_text(tokens: int) -> str:
    return "".join(f"r{i} " for i in range(tokens))


# --------------------------------------------------------------------------------------------
# Official OpenAI schemas


def openapi_to_json_schema(node: Any) -> Any:
    """Translates OpenAPI 3.0 schema idioms for a JSON Schema (2020-12) validator.

    `nullable: true` becomes `anyOf: [node-without-nullable, {type: null}]`; `nullable: false`
    is dropped. `$ref`s keep pointing at `#/components/schemas/NAME` and are resolved through
    a `referencing` registry holding the translated document.
    """
    if isinstance(node, list):
        return [openapi_to_json_schema(item) for item in node]
    if not isinstance(node, dict):
        return node
    translated = {key: openapi_to_json_schema(value) for key, value in node.items() if key != "nullable"}
    if node.get("nullable") is True:
        return {"anyOf": [translated, {"type": "null"}]}
    return translated


class OpenAISchemas:
    BASE_URI = "urn:chorus-e2e:openai-schemas"

    def __init__(self, path: Path):
        from jsonschema import Draft202012Validator
        from referencing import Registry, Resource
        from referencing.jsonschema import DRAFT202012

        document = json.loads(path.read_text("utf-8"))
        self.names = set(document["components"]["schemas"])
        translated = {"components": openapi_to_json_schema(document["components"])}
        resource = Resource(contents=translated, specification=DRAFT202012)
        self._registry = Registry().with_resource(self.BASE_URI, resource)
        self._validator_class = Draft202012Validator
        self._validators: dict[str, Any] = {}

    def validator(self, name: str):
        assert name in self.names, f"{name} is not in the schemas file"
        if name not in self._validators:
            schema = {"$ref": f"{self.BASE_URI}#/components/schemas/{name}"}
            self._validators[name] = self._validator_class(schema, registry=self._registry)
        return self._validators[name]

    def errors(self, name: str, instance: Any) -> list[str]:
        return [
            f"{'/'.join(map(str, e.absolute_path)) or '(root)'}: {e.message}"
            for e in self.validator(name).iter_errors(instance)
        ]

    def assert_valid(self, name: str, instance: Any) -> None:
        errors = self.errors(name, instance)
        assert not errors, f"not a valid {name}:\n" + "\n".join(errors[:20]) + f"\ninstance: {json.dumps(instance)[:2000]}"


@pytest.fixture(scope="session")
def openai_schemas() -> OpenAISchemas:
    value = os.environ.get("OPENAI_SCHEMAS")
    candidates = [Path(value)] if value else [
        REPO_ROOT / "openai-schemas" / "chat-completions.json",
        REPO_ROOT.parent / "shared" / "openai-schemas" / "chat-completions.json",
    ]
    for path in candidates:
        if path.is_file():
            return OpenAISchemas(path)
    pytest.fail(f"OPENAI_SCHEMAS must name the official OpenAI schemas JSON (tried {[str(p) for p in candidates]})",
                pytrace=False)
