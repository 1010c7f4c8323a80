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

Authentication is on by default (docs/SECURITY.md): `start_chorus` gives every instance a random
bootstrap administrator password (CHORUS_ADMIN_PASSWORD), signs in as that administrator and
creates an API key; `Chorus.http`, `stream_chat` and the task-event helpers send it. Helpers that
only get a URL find the key with `auth_headers(url)`.
"""

from __future__ import annotations

import json
import os
import queue
import secrets
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
    # Absolute: processes run with their temporary folder as the working directory.
    return str(path.resolve())


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


# Every Chorus the tests start hashes passwords with the cheapest bcrypt cost.
DEFAULT_EXTRA_CONFIG: dict[str, Any] = {"auth": {"bcrypt_cost": 4}}
ADMIN_EMAIL = "admin@localhost"


def merge_config(base: dict[str, Any], extra: dict[str, Any] | None) -> dict[str, Any]:
    """`extra` deep-merged over `base` (mappings merge key by key; anything else replaces)."""
    merged = {key: (dict(value) if isinstance(value, dict) else value) for key, value in base.items()}
    for key, value in (extra or {}).items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = merge_config(merged[key], value)
        else:
            merged[key] = value
    return merged


def config_sections_yaml(sections: dict[str, Any]) -> str:
    """Top-level sections as YAML; values in JSON flow style (JSON is valid YAML)."""
    return "".join(f"{name}: {json.dumps(value)}\n" for name, value in sections.items())


def chorus_config_yaml(data_dir: Path, models_yaml: str, history_messages: int = 20,
                       checkpoint_seconds: float = 1, extra: dict[str, Any] | None = None) -> str:
    """The configuration file of a test Chorus. `extra` holds further top-level sections
    (`auth`, `limits`, `http`, `files`, ...), merged over DEFAULT_EXTRA_CONFIG."""
    return (
        f"data_dir: {data_dir}\n"
        f"conversations:\n"
        f"  history_messages: {history_messages}\n"
        f"  checkpoint_seconds: {checkpoint_seconds}\n"
        + config_sections_yaml(merge_config(DEFAULT_EXTRA_CONFIG, extra))
        + "models:\n" + models_yaml
    )


# --------------------------------------------------------------------------------------------
# Credentials

# The API key each running Chorus (or gateway) URL was given, for helpers that only get a URL.
_API_KEYS: dict[str, str] = {}


def _url_key(url: str) -> str:
    url = url.rstrip("/")
    return url[:-len("/v1")] if url.endswith("/v1") else url


def register_api_key(url: str, api_key: str | None) -> None:
    if api_key:
        _API_KEYS[_url_key(url)] = api_key


def api_key_for(url: str) -> str | None:
    return _API_KEYS.get(_url_key(url))


def auth_headers(url_or_key: str | None) -> dict[str, str]:
    """`Authorization: Bearer <key>` for a Chorus URL (its registered key) or for a key or
    session token given directly; {} when there is none."""
    if not url_or_key:
        return {}
    key = api_key_for(url_or_key) if url_or_key.startswith("http") else url_or_key
    return {"Authorization": f"Bearer {key}"} if key else {}


def login(url: str, email: str, password: str, session: str | None = "bearer",
          headers: dict[str, str] | None = None) -> httpx.Response:
    """POST /v1/auth/login; the raw response."""
    body: dict[str, Any] = {"email": email, "password": password}
    if session is not None:
        body["session"] = session
    return httpx.post(_url_key(url) + "/v1/auth/login", json=body, headers=headers or {}, timeout=30)


def bearer_session(url: str, email: str, password: str) -> str:
    """A program session token (`cs_…`) for the user."""
    r = login(url, email, password, "bearer")
    assert r.status_code == 200, f"POST /v1/auth/login as {email}: {r.status_code} {r.text}"
    token = r.json().get("token")
    assert isinstance(token, str) and token, f"login with session=bearer returned no token: {r.text}"
    return token


def create_api_key(url: str, credential: str, **body: Any) -> dict[str, Any]:
    """POST /v1/api-keys with a bearer credential; the 201 body (with `key`)."""
    r = httpx.post(_url_key(url) + "/v1/api-keys", json={"name": "e2e", **body},
                   headers=auth_headers(credential), timeout=30)
    assert r.status_code == 201, f"POST /v1/api-keys: {r.status_code} {r.text}"
    created = r.json()
    assert isinstance(created.get("key"), str) and created["key"].startswith("sk-chorus-"), created
    return created


@dataclass
class AdminCredentials:
    password: str
    session_token: str
    api_key: str
    api_key_id: str


def admin_credentials(url: str, password: str, email: str = ADMIN_EMAIL) -> AdminCredentials:
    """Signs in as the bootstrap administrator and creates an API key `e2e`."""
    token = bearer_session(url, email, password)
    created = create_api_key(url, token, name="e2e")
    register_api_key(url, created["key"])
    return AdminCredentials(password=password, session_token=token, api_key=created["key"],
                            api_key_id=created["id"])


@dataclass
class Chorus:
    url: str
    process: ManagedProcess
    config_path: Path
    data_dir: Path
    api_key: str | None = None            # the administrator's API key (None with auth off)
    admin_password: str | None = None
    admin_token: str | None = field(default=None, repr=False)   # the administrator's bearer session
    admin_key_id: str | None = None
    workdir: Path | None = None
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
            self._client = httpx.Client(base_url=self.url, timeout=httpx.Timeout(30.0),
                                        headers=auth_headers(self.api_key))
        return self._client

    @property
    def auth_headers(self) -> dict[str, str]:
        return auth_headers(self.api_key)

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


_GENERATE = object()


def start_chorus(chorus_bin: str, workdir: Path, models_yaml: str, *, checkpoint_seconds: float = 1,
                 history_messages: int = 20, env: dict[str, str] | None = None,
                 listen_timeout: float = LISTEN_TIMEOUT_S, config: dict[str, Any] | None = None,
                 admin_password: Any = _GENERATE, sign_in: bool = True, name: str = "chorus") -> Chorus:
    """Starts `chorus serve` on port 0 and waits for its listening line.

    `config`: further configuration sections (merged over `auth: {bcrypt_cost: 4}`).
    `admin_password`: the bootstrap administrator's password (CHORUS_ADMIN_PASSWORD); random by
    default; None starts without it (Chorus then prints a generated one, read from stdout).
    `sign_in`: sign in as the administrator and create its API key (skipped with auth off).
    """
    data_dir = workdir / "data"
    config_path = workdir / "chorus.yaml"
    sections = merge_config(DEFAULT_EXTRA_CONFIG, config)
    config_path.write_text(chorus_config_yaml(data_dir, models_yaml, history_messages, checkpoint_seconds, config))
    process_env = dict(env if env is not None else os.environ)
    process_env.pop("CHORUS_ADMIN_PASSWORD", None)
    password: str | None = secrets.token_urlsafe(18) if admin_password is _GENERATE else admin_password
    if password is not None:
        process_env["CHORUS_ADMIN_PASSWORD"] = password
    process = ManagedProcess(
        name,
        [chorus_bin, "serve", "--config", str(config_path), "--port", "0"],
        workdir,
        env=process_env,
        cwd=workdir,
    )
    url = process.listening_url("chorus listening on ", listen_timeout)
    instance = Chorus(url=url, process=process, config_path=config_path, data_dir=data_dir,
                      admin_password=password, workdir=workdir)
    auth_enabled = (sections.get("auth") or {}).get("enabled", True) not in (False, "false")
    if sign_in and auth_enabled:
        if password is None:
            password = printed_admin_password(process)
            instance.admin_password = password
        try:
            credentials = admin_credentials(url, password,
                                            (sections.get("auth") or {}).get("bootstrap_admin_email", ADMIN_EMAIL))
        except BaseException:
            print(process.describe())
            process.stop()
            raise
        instance.api_key = credentials.api_key
        instance.admin_token = credentials.session_token
        instance.admin_key_id = credentials.api_key_id
    return instance


FIRST_ADMIN_PREFIX = "chorus first administrator:"


def printed_admin_password(process: ManagedProcess, timeout: float = 10) -> str:
    """The password from `chorus first administrator: admin@localhost password <pw> (shown once)`."""
    line = next((l for l in process.stdout_lines if l.startswith(FIRST_ADMIN_PREFIX)), None)
    if line is None:
        line = process.wait_for_line(FIRST_ADMIN_PREFIX, timeout)
    words = line[len(FIRST_ADMIN_PREFIX):].split()
    assert len(words) >= 3 and words[1] == "password", f"unexpected first-administrator line: {line!r}"
    return words[2]


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
    headers = {**chorus.auth_headers, **(headers or {})}
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
