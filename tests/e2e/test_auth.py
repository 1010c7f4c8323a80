"""Accounts and security end to end: what docs/SECURITY.md promises, against real `chorus serve`
processes (SQLite, the fake upstream).

Instances (module scope, each started on first use):
  main      registration closed (the default), CORS for https://app.example, a 64 KiB body limit,
            no request limits: users A (owner), B (other user) and the administrator.
  open      registration open, sessions that expire after 2 s (the matrix's "expired" column).
  invite    registration by invitation.
  limited   small per-key limits (10 requests, 50 tokens a minute); 127.0.0.1 is a trusted proxy.
  peruser   12 requests and 50 tokens a minute per user.
  perip     15 requests a minute per client address; 127.0.0.1 is a trusted proxy.
  logins    3 login attempts a minute per IP.
  noauth    auth.enabled: false.
  firstrun  no CHORUS_ADMIN_PASSWORD: the first administrator's password is printed.

Every password, API key and session token the tests use is recorded; the LAST test of the module
stops every instance and searches their SQLite tables, their data folders and their output for
any of them.
"""

from __future__ import annotations

import json
import re
import secrets
import sqlite3
import subprocess
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator

import httpx
import openai
import pytest
from openai import OpenAI

from conftest import (ADMIN_EMAIL, FIRST_ADMIN_PREFIX, Chorus, FakeUpstream, OpenAISchemas, answer, fake_model_yaml,
                      start_chorus, unique_tag, wait_until)

ALLOWED_ORIGIN = "https://app.example"
FOREIGN_ORIGIN = "https://evil.example"
MAX_BODY_BYTES = 65536
MAX_FILE_BYTES = 32768         # chat's own JSON limit: max(http.max_body_bytes, 4 x files.max_bytes)
SESSION_TTL_S = 2
USER_PERMISSIONS = {"chat", "conversations", "tasks", "files", "keys"}
ALL_PERMISSIONS = USER_PERMISSIONS | {"admin:users", "admin:ops", "admin:audit", "admin:data", "admin:metrics"}
SECURITY_HEADERS = {
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
    "content-security-policy": "default-src 'none'; frame-ancestors 'none'",
}
# What an error body must never show.
LEAK_MARKERS = (".swift", "Sources/", "Fatal error", "Stack trace", "stacktrace", "SELECT ", "INSERT ",
                "sqlite", "SQLITE", "PSQLError", "#0 ", "0x0000")


# --------------------------------------------------------------------------------------------
# The ledger of secrets, and every instance started here (for the final scan)


class Ledger:
    def __init__(self) -> None:
        self.secrets: dict[str, str] = {}          # value -> what it is

    def add(self, value: Any, what: str) -> None:
        if isinstance(value, str) and len(value) >= 12:
            self.secrets.setdefault(value, what)

    def capture(self, response: httpx.Response) -> None:
        """Records the API keys (`key`) and session tokens (`token`, the session cookie) that a
        response hands out."""
        for header in response.headers.get_list("set-cookie"):
            name, _, rest = header.partition("=")
            if name.strip() == "chorus_session":
                self.add(rest.split(";", 1)[0].strip(), "session token (cookie)")
        if not response.headers.get("content-type", "").startswith("application/json"):
            return
        try:
            body = response.json()
        except ValueError:
            return

        def walk(node: Any) -> None:
            if isinstance(node, dict):
                for name, value in node.items():
                    if name == "key" and isinstance(value, str) and value.startswith("sk-chorus-"):
                        self.add(value, "API key")
                    elif name == "token" and isinstance(value, str):
                        self.add(value, "session token (bearer)")
                    else:
                        walk(value)
            elif isinstance(node, list):
                for item in node:
                    walk(item)
        walk(body)


LEDGER = Ledger()


@dataclass
class Started:
    name: str
    instance: Chorus
    stdout_may_hold_admin_password: bool = False


STARTED: list[Started] = []


def new_password() -> str:
    password = secrets.token_urlsafe(18)
    LEDGER.add(password, "password")
    return password


# --------------------------------------------------------------------------------------------
# HTTP


def bearer(credential: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {credential}"} if credential else {}


def api(instance: Chorus, method: str, path: str, credential: str | None = None, *,
        cookie: str | None = None, csrf: str | None = None, headers: dict[str, str] | None = None,
        timeout: float = 30, **kwargs: Any) -> httpx.Response:
    """One request on its own connection (no cookie jar: a cookie is only sent when given)."""
    all_headers = {**bearer(credential), **(headers or {})}
    if cookie is not None:
        all_headers["Cookie"] = f"chorus_session={cookie}"
    if csrf is not None:
        all_headers["X-CSRF-Token"] = csrf
    response = httpx.request(method, instance.url + path, headers=all_headers, timeout=timeout, **kwargs)
    LEDGER.capture(response)
    return response


def error_of(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body.get("error") or {} if isinstance(body, dict) else {}


def describe(response: httpx.Response) -> str:
    return f"{response.request.method} {response.request.url.path} -> {response.status_code} {response.text[:500]}"


def assert_error(response: httpx.Response, status: int, code: str | None = None, type_: str | None = None) -> dict:
    assert response.status_code == status, f"expected {status}: {describe(response)}"
    assert response.headers.get("content-type", "").startswith("application/json"), describe(response)
    error = error_of(response)
    assert error.get("message"), f"not an OpenAI-shaped error: {describe(response)}"
    if code is not None:
        assert error.get("code") == code, f"expected code {code!r}: {describe(response)}"
    if type_ is not None:
        assert error.get("type") == type_, f"expected type {type_!r}: {describe(response)}"
    return error


def chat_body(content: str, **extra: Any) -> dict[str, Any]:
    return {"model": "fake", "messages": [{"role": "user", "content": content}], **extra}


def session_cookie(response: httpx.Response) -> str | None:
    for header in response.headers.get_list("set-cookie"):
        name, _, rest = header.partition("=")
        if name.strip() == "chorus_session":
            return rest.split(";", 1)[0].strip()
    return None


def session_cookie_header(response: httpx.Response) -> str | None:
    return next((h for h in response.headers.get_list("set-cookie") if h.strip().startswith("chorus_session=")), None)


# --------------------------------------------------------------------------------------------
# Accounts


@dataclass
class Account:
    email: str
    password: str
    id: str
    key: str
    key_id: str
    token: str          # a bearer session
    user: dict[str, Any] = field(default_factory=dict)


def login(instance: Chorus, email: str, password: str, session: str | None = "bearer",
          headers: dict[str, str] | None = None) -> httpx.Response:
    body: dict[str, Any] = {"email": email, "password": password}
    if session is not None:
        body["session"] = session
    return api(instance, "POST", "/v1/auth/login", json=body, headers=headers)


def bearer_login(instance: Chorus, email: str, password: str) -> str:
    r = login(instance, email, password, "bearer")
    assert r.status_code == 200, describe(r)
    token = r.json().get("token")
    assert isinstance(token, str) and token.startswith("cs_"), f"a bearer session token starts with cs_: {r.text}"
    return token


def cookie_login(instance: Chorus, email: str, password: str, headers: dict[str, str] | None = None) -> tuple[str, str, httpx.Response]:
    """(cookie value, csrf token, response) of a browser login (the default session kind)."""
    r = login(instance, email, password, None, headers=headers)
    assert r.status_code == 200, describe(r)
    cookie = session_cookie(r)
    assert cookie, f"login set no chorus_session cookie: {r.headers.get_list('set-cookie')}"
    csrf = r.json().get("csrf_token")
    assert isinstance(csrf, str) and csrf, f"login returned no csrf_token: {r.text}"
    return cookie, csrf, r


def new_key(instance: Chorus, credential: str, **body: Any) -> dict[str, Any]:
    r = api(instance, "POST", "/v1/api-keys", credential, json={"name": f"k-{unique_tag()}", **body})
    assert r.status_code == 201, describe(r)
    created = r.json()
    assert isinstance(created.get("key"), str) and created["key"].startswith("sk-chorus-"), created
    return created


def admin_credential(instance: Chorus) -> str:
    assert instance.api_key, "the instance has no administrator key"
    return instance.api_key


def create_user(instance: Chorus, role: str = "user", admin: str | None = None, **extra: Any) -> Account:
    """A user created by the administrator, signed in (bearer session) with an API key of its own."""
    email = f"{role.replace(':', '-')}-{unique_tag()}@example.com"
    password = new_password()
    r = api(instance, "POST", "/v1/admin/users", admin or admin_credential(instance),
            json={"email": email, "password": password, "role": role, **extra})
    assert r.status_code == 201, describe(r)
    user = r.json()
    assert user.get("object") == "user" and user.get("email") == email and user.get("role") == role, user
    token = bearer_login(instance, email, password)
    key = new_key(instance, token)
    return Account(email=email, password=password, id=user["id"], key=key["key"], key_id=key["id"], token=token, user=user)


# --------------------------------------------------------------------------------------------
# Instances


def start(name: str, chorus_bin: str, fake: FakeUpstream, factory: pytest.TempPathFactory,
          config: dict[str, Any] | None = None, **kwargs: Any) -> Chorus:
    instance = start_chorus(chorus_bin, factory.mktemp(name), fake_model_yaml(fake.base_url), config=config,
                            name=f"chorus-{name}", **kwargs)
    STARTED.append(Started(name, instance, stdout_may_hold_admin_password=kwargs.get("admin_password", 0) is None))
    LEDGER.add(instance.admin_password, f"{name} administrator password")
    LEDGER.add(instance.api_key, f"{name} administrator API key")
    LEDGER.add(instance.admin_token, f"{name} administrator session token")
    return instance


def stop(instance: Chorus) -> None:
    instance.close()
    instance.process.stop()


STOPPED_ON_PURPOSE: set[int] = set()     # pids


def stopped_on_purpose(instance: Chorus) -> None:
    STOPPED_ON_PURPOSE.add(instance.process.pid)
    stop(instance)


@pytest.fixture(scope="module", autouse=True)
def _stop_every_instance() -> Iterator[None]:
    """Whatever ran, no instance this module started outlives it."""
    yield
    for started in STARTED:
        STOPPED_ON_PURPOSE.add(started.instance.process.pid)
        stop(started.instance)


@pytest.fixture(autouse=True)
def _instances_must_survive() -> Iterator[None]:
    """Blames a crash of an instance on the test during which it happened."""
    yield
    dead = [s for s in STARTED
            if s.instance.process.proc.poll() is not None and s.instance.process.pid not in STOPPED_ON_PURPOSE]
    for s in dead:
        STOPPED_ON_PURPOSE.add(s.instance.process.pid)   # blamed once
    if dead:
        pytest.fail("\n\n".join(f"chorus-{s.name} died (status {s.instance.process.proc.returncode})\n"
                                + s.instance.process.describe() for s in dead), pytrace=False)


MAIN_CONFIG = {
    "limits": {"login_attempts_per_minute": 1000},
    "http": {"cors_origins": [ALLOWED_ORIGIN], "max_body_bytes": MAX_BODY_BYTES},
    "files": {"max_bytes": MAX_FILE_BYTES},
}


@pytest.fixture(scope="module")
def main(chorus_bin: str, fake_upstream: FakeUpstream, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Chorus]:
    instance = start("main", chorus_bin, fake_upstream, tmp_path_factory, MAIN_CONFIG)
    yield instance
    stop(instance)


@pytest.fixture(scope="module")
def open_instance(chorus_bin: str, fake_upstream: FakeUpstream, tmp_path_factory) -> Iterator[Chorus]:
    instance = start("open", chorus_bin, fake_upstream, tmp_path_factory, {
        "auth": {"registration": "open", "session_ttl_seconds": SESSION_TTL_S},
        "limits": {"login_attempts_per_minute": 1000},
    })
    yield instance
    stop(instance)


@pytest.fixture(scope="module")
def invite_instance(chorus_bin: str, fake_upstream: FakeUpstream, tmp_path_factory) -> Iterator[Chorus]:
    instance = start("invite", chorus_bin, fake_upstream, tmp_path_factory, {"auth": {"registration": "invite"}})
    yield instance
    stop(instance)


LIMITED_CONFIG = {
    "limits": {"key_requests_per_minute": 10, "key_tokens_per_minute": 50, "login_attempts_per_minute": 1000},
    "http": {"trusted_proxies": ["127.0.0.1"]},
}


@pytest.fixture(scope="module")
def limited(chorus_bin: str, fake_upstream: FakeUpstream, tmp_path_factory) -> Iterator[Chorus]:
    instance = start("limited", chorus_bin, fake_upstream, tmp_path_factory, LIMITED_CONFIG)
    yield instance
    stop(instance)


USER_REQUEST_LIMIT = 12


@pytest.fixture(scope="module")
def per_user(chorus_bin: str, fake_upstream: FakeUpstream, tmp_path_factory) -> Iterator[Chorus]:
    instance = start("peruser", chorus_bin, fake_upstream, tmp_path_factory, {
        "limits": {"user_requests_per_minute": USER_REQUEST_LIMIT, "user_tokens_per_minute": 50,
                   "login_attempts_per_minute": 1000}})
    yield instance
    stop(instance)


IP_REQUEST_LIMIT = 15


@pytest.fixture(scope="module")
def per_ip(chorus_bin: str, fake_upstream: FakeUpstream, tmp_path_factory) -> Iterator[Chorus]:
    instance = start("perip", chorus_bin, fake_upstream, tmp_path_factory, {
        "limits": {"ip_requests_per_minute": IP_REQUEST_LIMIT},
        "http": {"trusted_proxies": ["127.0.0.1"]}})
    yield instance
    stop(instance)


LOGIN_LIMIT = 3


@pytest.fixture(scope="module")
def logins_instance(chorus_bin: str, fake_upstream: FakeUpstream, tmp_path_factory) -> Iterator[Chorus]:
    # Signs in once itself (the administrator's key): one of the minute's attempts.
    instance = start("logins", chorus_bin, fake_upstream, tmp_path_factory,
                     {"limits": {"login_attempts_per_minute": LOGIN_LIMIT}})
    yield instance
    stop(instance)


@pytest.fixture(scope="module")
def noauth(chorus_bin: str, fake_upstream: FakeUpstream, tmp_path_factory) -> Iterator[Chorus]:
    instance = start("noauth", chorus_bin, fake_upstream, tmp_path_factory, {"auth": {"enabled": False}})
    yield instance
    stop(instance)


# --------------------------------------------------------------------------------------------
# The main instance's accounts and A's objects


@dataclass
class World:
    """One instance with its users and the objects user A owns."""
    instance: Chorus
    a: Account
    b: Account | None
    objects: dict[str, str]                     # conversation, batch, task, file, user
    secret_word: str = ""                       # in A's conversation only
    revoked_key: str | None = None              # A's key, revoked
    cookie: str | None = None                   # A's browser session
    csrf: str | None = None
    expired_session: str | None = None          # A's bearer session, expired


def wait_task(instance: Chorus, credential: str, task_id: str, timeout: float = 30) -> dict[str, Any]:
    def done():
        r = api(instance, "GET", f"/v1/tasks/{task_id}", credential)
        assert r.status_code == 200, describe(r)
        body = r.json()
        return body if body["state"] in ("SUCCESS", "FAILURE", "CANCELLED") else None
    return wait_until(done, timeout, interval=0.1, message=f"task {task_id} to end")


def make_objects(instance: Chorus, a: Account) -> tuple[dict[str, str], str]:
    """A's conversation (from a chat call), batch, export task (finished) and file."""
    word = f"secretive-{unique_tag()}"
    r = api(instance, "POST", "/v1/chat/completions", a.key, json=chat_body(f"{word} [[fake tokens=2]]"))
    assert r.status_code == 200, describe(r)
    conversation = r.json()["conversation_id"]
    r = api(instance, "POST", "/v1/batches", a.key, json={"prompt": f"{word} batch [[fake tokens=2]]", "models": ["fake"]})
    assert r.status_code == 202, describe(r)
    batch = r.json()
    r = api(instance, "POST", "/v1/tasks", a.key,
            json={"type": "conversation.export", "params": {"conversation_id": conversation}})
    assert r.status_code == 202, describe(r)
    task = r.json()["id"]
    assert wait_task(instance, a.key, task)["state"] == "SUCCESS"
    wait_task(instance, a.key, batch["task_ids"][0])
    r = api(instance, "POST", "/v1/files", a.key, files={"file": ("note.txt", f"{word} file".encode(), "text/plain")})
    assert r.status_code == 200, describe(r)
    file_id = r.json()["id"]
    return {"conversation": conversation, "batch": batch["batch_id"], "task": task, "file": file_id,
            "user": a.id, "model": "fake"}, word


@pytest.fixture(scope="module")
def world(main: Chorus) -> World:
    a = create_user(main)
    b = create_user(main)
    objects, word = make_objects(main, a)
    revoked = new_key(main, a.token, name="to revoke")
    r = api(main, "DELETE", f"/v1/api-keys/{revoked['id']}", a.key)
    assert r.status_code == 200, describe(r)
    cookie, csrf, _ = cookie_login(main, a.email, a.password)
    return World(main, a, b, objects, word, revoked_key=revoked["key"], cookie=cookie, csrf=csrf)


@pytest.fixture(scope="module")
def expired_world(open_instance: Chorus) -> World:
    """User A2 on the short-session instance, its objects, and one of its bearer sessions, expired."""
    a = create_user(open_instance)
    objects, word = make_objects(open_instance, a)
    r = login(open_instance, a.email, a.password, "bearer")
    assert r.status_code == 200, describe(r)
    token, expires_at = r.json()["token"], r.json()["expires_at"]
    assert abs(expires_at - time.time() - SESSION_TTL_S) <= 2, f"expires_at {expires_at} is not ~{SESSION_TTL_S} s away"
    me = api(open_instance, "GET", "/v1/auth/me", token)
    assert me.status_code == 200, describe(me)
    time.sleep(max(0.0, expires_at - time.time()) + 1.2)
    return World(open_instance, a, None, objects, word, expired_session=token)


# --------------------------------------------------------------------------------------------
# 1. The authorization matrix

PRINCIPALS = ("anonymous", "owner", "other", "admin", "revoked", "expired", "cookie")


@dataclass
class Route:
    method: str
    template: str
    access: str                   # public | signed_in | owned | admin
    ok: int                       # the success status
    label: str = ""
    body: Callable[["Cell"], dict[str, Any]] | None = None
    fresh: Callable[["Cell"], dict[str, str]] | None = None   # per-cell path parameters (destructive routes)
    kind: str = "http"            # http | sse | ws
    own_credentials: bool = False  # owner, other and admin use a fresh session of theirs (logout)
    expect_override: dict[str, set[int]] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return f"{self.method} {self.template}" + (f" ({self.label})" if self.label else "")

    def expected(self, principal: str) -> set[int]:
        if principal in self.expect_override:
            return self.expect_override[principal]
        if self.access == "public":
            return {200}
        if principal in ("anonymous", "revoked", "expired"):
            return {401}
        if self.access == "signed_in":
            return {self.ok}
        if self.access == "owned":
            return {404} if principal == "other" else {self.ok}
        assert self.access == "admin"
        return {self.ok} if principal == "admin" else {403}


@dataclass
class Cell:
    world: World
    principal: str

    @property
    def instance(self) -> Chorus:
        return self.world.instance

    def fresh_conversation(self) -> dict[str, str]:
        r = api(self.instance, "POST", "/v1/chat/completions", self.world.a.key,
                json=chat_body(f"to delete {unique_tag()} [[fake tokens=1]]"))
        assert r.status_code == 200, describe(r)
        return {"conversation": r.json()["conversation_id"]}

    def fresh_key(self) -> dict[str, str]:
        return {"key": new_key(self.instance, self.world.a.key, name="matrix")["id"]}

    def fresh_role(self) -> dict[str, str]:
        name = f"role_{unique_tag()}"
        r = api(self.instance, "POST", "/v1/admin/roles", admin_credential(self.instance),
                json={"name": name, "permissions": ["conversations"]})
        assert r.status_code == 201, describe(r)
        return {"role": name}


def multipart_file(cell: Cell) -> dict[str, Any]:
    return {"files": {"file": ("matrix.txt", b"matrix upload", "text/plain")}}


ROUTES: list[Route] = [
    Route("GET", "/healthz", "public", 200),
    Route("GET", "/readyz", "public", 200),
    Route("GET", "/v1/models", "signed_in", 200),
    Route("GET", "/v1/models/{model}", "signed_in", 200),
    Route("POST", "/v1/chat/completions", "signed_in", 200,
          body=lambda c: {"json": chat_body(f"matrix {unique_tag()} [[fake tokens=1]]")}),
    # Whether admin:data ("read and change every user's conversations") covers adding a turn to
    # A's conversation, SECURITY.md does not say: either answer is accepted for admin here.
    Route("POST", "/v1/chat/completions", "owned", 200, label="A's conversation_id",
          body=lambda c: {"json": chat_body(f"matrix {unique_tag()} [[fake tokens=1]]",
                                            conversation_id=c.world.objects["conversation"])},
          expect_override={"admin": {200, 404}}),
    Route("GET", "/v1/conversations", "signed_in", 200),
    Route("GET", "/v1/conversations/{conversation}", "owned", 200),
    Route("PATCH", "/v1/conversations/{conversation}", "owned", 200,
          body=lambda c: {"json": {"title": f"renamed by {c.principal}"}}),
    Route("DELETE", "/v1/conversations/{conversation}", "owned", 200,
          fresh=lambda c: c.fresh_conversation()),
    Route("GET", "/v1/conversations/{conversation}/history", "owned", 200),
    Route("POST", "/v1/batches", "signed_in", 202,
          body=lambda c: {"json": {"prompt": f"matrix {unique_tag()} [[fake tokens=1]]", "models": ["fake"]}}),
    Route("POST", "/v1/batches", "owned", 202, label="A's conversation_id",
          body=lambda c: {"json": {"prompt": f"matrix {unique_tag()} [[fake tokens=1]]", "models": ["fake"],
                                   "conversation_id": c.world.objects["conversation"]}},
          expect_override={"admin": {202, 404}}),
    # admin:data covers conversations, tasks and batches, not files: either answer is fine for admin.
    Route("POST", "/v1/batches", "owned", 202, label="A's file",
          body=lambda c: {"json": {"prompt": f"matrix {unique_tag()} [[fake tokens=1]]", "models": ["fake"],
                                   "files": [c.world.objects["file"]]}},
          expect_override={"admin": {202, 404}}),
    Route("GET", "/v1/batches/{batch}", "owned", 200),
    # Submitting an export of A's conversation: refused (404) or accepted and then failing
    # (test_foreign_export_reveals_nothing checks the latter never yields A's messages).
    Route("POST", "/v1/tasks", "owned", 202, label="export A's conversation",
          body=lambda c: {"json": {"type": "conversation.export",
                                   "params": {"conversation_id": c.world.objects["conversation"]}}},
          expect_override={"other": {202, 404}}),
    Route("GET", "/v1/tasks/{task}", "owned", 200),
    Route("GET", "/v1/tasks/{task}/events", "owned", 200, kind="sse"),
    Route("GET", "/v1/tasks/{task}/ws", "owned", 101, kind="ws"),
    Route("POST", "/v1/tasks/{task}/cancel", "owned", 200),
    Route("POST", "/v1/files", "signed_in", 200, body=multipart_file),
    Route("GET", "/v1/auth/me", "signed_in", 200),
    Route("GET", "/v1/api-keys", "signed_in", 200),
    Route("POST", "/v1/api-keys", "signed_in", 201, body=lambda c: {"json": {"name": f"matrix {c.principal}"}}),
    Route("DELETE", "/v1/api-keys/{key}", "owned", 200, label="A's key", fresh=lambda c: c.fresh_key()),
    Route("GET", "/v1/admin/users", "admin", 200),
    Route("POST", "/v1/admin/users", "admin", 201,
          body=lambda c: {"json": {"email": f"matrix-{unique_tag()}@example.com", "password": new_password()}}),
    Route("GET", "/v1/admin/users/{user}", "admin", 200, label="A"),
    Route("PATCH", "/v1/admin/users/{user}", "admin", 200, label="A",
          body=lambda c: {"json": {"name": f"renamed by {c.principal}"}}),
    Route("GET", "/v1/admin/roles", "admin", 200),
    Route("POST", "/v1/admin/roles", "admin", 201,
          body=lambda c: {"json": {"name": f"role_{unique_tag()}", "permissions": ["chat"]}}),
    Route("PATCH", "/v1/admin/roles/{role}", "admin", 200, fresh=lambda c: c.fresh_role(),
          body=lambda c: {"json": {"permissions": ["conversations", "chat"]}}),
    Route("DELETE", "/v1/admin/roles/{role}", "admin", 204, fresh=lambda c: c.fresh_role()),
    Route("POST", "/v1/admin/invites", "admin", 201, body=lambda c: {"json": {"role": "user"}}),
    Route("GET", "/v1/admin/audit", "admin", 200),
    Route("GET", "/v1/admin/queues", "admin", 200),
    Route("GET", "/v1/admin/workers", "admin", 200),
    Route("GET", "/v1/admin/dead-letters", "admin", 200),
    Route("GET", "/v1/admin/dead-letters/dl_missing", "admin", 404, label="unknown"),
    Route("POST", "/v1/admin/dead-letters/dl_missing/replay", "admin", 404, label="unknown"),
    Route("DELETE", "/v1/admin/dead-letters/dl_missing", "admin", 404, label="unknown"),
    Route("DELETE", "/v1/admin/dead-letters?all=true", "admin", 200, label="purge"),
    # Last, with fresh credentials: logout ends the session used (the cookie column signs in afresh).
    Route("POST", "/v1/auth/logout", "signed_in", 204, own_credentials=True),
]

EXPECTED_ERROR_CODES = {"anonymous": "missing_credentials", "revoked": "invalid_api_key",
                        "expired": "invalid_api_key"}


@dataclass
class Outcome:
    status: int
    body: str
    problems: list[str]


def run_cell(route: Route, cell: Cell) -> Outcome:
    world, principal, instance = cell.world, cell.principal, cell.instance
    params = dict(world.objects)
    if route.fresh is not None:
        params.update(route.fresh(cell))
    path = route.template.format(**params)
    headers: dict[str, str] = {}
    mutating = route.method in ("POST", "PUT", "PATCH", "DELETE")
    if route.own_credentials and principal in ("owner", "other", "admin"):
        # A fresh bearer session of theirs (an API key has no session to end: 400 not_a_session).
        email, password = {"owner": (world.a.email, world.a.password),
                           "other": (world.b.email, world.b.password) if world.b else (None, None),
                           "admin": ("admin@localhost", instance.admin_password)}[principal]
        headers = bearer(bearer_login(instance, email, password))
    elif principal == "owner":
        headers = bearer(world.a.key)
    elif principal == "other":
        headers = bearer(world.b.key)
    elif principal == "admin":
        headers = bearer(admin_credential(instance))
    elif principal == "revoked":
        headers = bearer(world.revoked_key)
    elif principal == "expired":
        headers = bearer(world.expired_session)
    elif principal == "cookie":
        cookie, csrf = world.cookie, world.csrf
        if route.template == "/v1/auth/logout":
            cookie, csrf, _ = cookie_login(instance, world.a.email, world.a.password)
        headers = {"Cookie": f"chorus_session={cookie}"}
        if mutating:
            headers["X-CSRF-Token"] = csrf
    kwargs = route.body(cell) if route.body else {}

    if route.kind == "ws":
        from websockets.exceptions import ConnectionClosed, InvalidStatus
        from websockets.sync.client import connect
        url = "ws" + instance.url[len("http"):] + path
        # A refused follower is accepted and closed at once with code 4000 + the HTTP status and
        # {"error":{"status","code"}} as the reason (the upgrade path cannot send an error body).
        try:
            with connect(url, additional_headers=headers, open_timeout=10, close_timeout=2) as websocket:
                try:   # the task has ended: its events replay, then the server closes
                    while True:
                        websocket.recv(timeout=10)
                except ConnectionClosed as closed:
                    code = closed.rcvd.code if closed.rcvd else None
                    if code is not None and 4000 <= code < 5000:
                        reason = closed.rcvd.reason
                        return Outcome(code - 4000, reason, check_ws_refusal(principal, code - 4000, reason))
                except TimeoutError:
                    pass
            return Outcome(101, "", [])
        except InvalidStatus as error:
            body = (error.response.body or b"").decode("utf-8", "replace")
            return Outcome(error.response.status_code, body, check_error_body(principal, error.response.status_code, body))
    if route.kind == "sse":
        with httpx.stream(route.method, instance.url + path, headers=headers, timeout=15) as response:
            problems = []
            if response.status_code == 200:
                if not response.headers.get("content-type", "").startswith("text/event-stream"):
                    problems.append(f"content-type {response.headers.get('content-type')!r}")
                return Outcome(200, "", problems)
            response.read()
            return Outcome(response.status_code, response.text, check_error_body(principal, response.status_code, response.text))
    response = api(instance, route.method, path, headers=headers, **kwargs)
    problems = []
    if response.status_code >= 400:
        problems = check_error_body(principal, response.status_code, response.text)
    return Outcome(response.status_code, response.text, problems)


def check_ws_refusal(principal: str, status: int, reason: str) -> list[str]:
    try:
        error = json.loads(reason)["error"]
        assert error["status"] == status
    except (ValueError, KeyError, TypeError, AssertionError):
        return [f"close reason {reason!r} is not {{\"error\":{{\"status\",\"code\"}}}}"]
    expected = EXPECTED_ERROR_CODES.get(principal) if status == 401 else "not_found" if status == 404 else None
    if expected and error.get("code") != expected:
        return [f"close reason code {error.get('code')!r}, expected {expected!r}"]
    return []


def check_error_body(principal: str, status: int, text: str) -> list[str]:
    problems = [f"error body shows {marker!r}" for marker in LEAK_MARKERS if marker in text]
    try:
        error = json.loads(text)["error"]
        assert isinstance(error, dict) and error.get("message")
    except (ValueError, KeyError, TypeError, AssertionError):
        return problems + ["not an OpenAI-shaped error body"]
    expected_code = None
    if status == 401:
        expected_code = EXPECTED_ERROR_CODES.get(principal)
    elif status == 403:
        expected_code = "insufficient_permissions"
    if expected_code and error.get("code") != expected_code:
        problems.append(f"code {error.get('code')!r}, expected {expected_code!r}")
    return problems


def matrix_table(results: dict[tuple[str, str], tuple[set[int], Outcome]]) -> str:
    width = max(len(r.name) for r in ROUTES) + 2
    lines = ["".ljust(width) + "".join(p.ljust(13) for p in PRINCIPALS)]
    for route in ROUTES:
        row = route.name.ljust(width)
        for principal in PRINCIPALS:
            expected, outcome = results[(route.name, principal)]
            ok = outcome.status in expected and not outcome.problems
            text = str(outcome.status) if ok else f"!{outcome.status}/{'|'.join(map(str, sorted(expected)))}"
            row += text.ljust(13)
        lines.append(row)
    lines.append("(cells: status; '!got/expected' where it differs from docs/SECURITY.md)")
    return "\n".join(lines)


def test_authorization_matrix(world: World, expired_world: World):
    results: dict[tuple[str, str], tuple[set[int], Outcome]] = {}
    for route in ROUTES:
        for principal in PRINCIPALS:
            cell = Cell(expired_world if principal == "expired" else world, principal)
            try:
                outcome = run_cell(route, cell)
            except Exception as error:  # noqa: BLE001 - reported in the table
                outcome = Outcome(-1, "", [f"request failed: {error!r}"])
            results[(route.name, principal)] = (route.expected(principal), outcome)
    failures = [
        f"  {name} as {principal}: expected {sorted(expected)}, got {outcome.status}"
        + (f" [{'; '.join(outcome.problems)}]" if outcome.problems else "")
        + (f" body: {outcome.body[:200]}" if outcome.body and (outcome.status not in expected or outcome.problems) else "")
        for (name, principal), (expected, outcome) in results.items()
        if outcome.status not in expected or outcome.problems
    ]
    assert not failures, "authorization matrix:\n" + matrix_table(results) + "\n\nmismatches:\n" + "\n".join(failures)


def test_foreign_export_reveals_nothing(world: World):
    """B asks for an export of A's conversation: refused, or a task that never returns A's messages."""
    main, b = world.instance, world.b
    r = api(main, "POST", "/v1/tasks", b.key,
            json={"type": "conversation.export", "params": {"conversation_id": world.objects["conversation"]}})
    if r.status_code == 404:
        return
    assert r.status_code == 202, describe(r)
    task = wait_task(main, b.key, r.json()["id"])
    assert task["state"] != "SUCCESS" and world.secret_word not in json.dumps(task), \
        f"B's export of A's conversation revealed it: {json.dumps(task)[:800]}"


def test_foreign_objects_look_missing_and_lists_stay_own(world: World):
    main, a, b = world.instance, world.a, world.b
    foreign = api(main, "GET", f"/v1/conversations/{world.objects['conversation']}", b.key)
    missing = api(main, "GET", "/v1/conversations/conv_doesnotexist0000", b.key)
    assert foreign.status_code == missing.status_code == 404, (describe(foreign), describe(missing))
    assert error_of(foreign).get("code") == error_of(missing).get("code"), (foreign.text, missing.text)
    for credential, who in ((b.key, "B"), (admin_credential(main), "the administrator")):
        listed = api(main, "GET", "/v1/conversations?limit=200", credential)
        assert listed.status_code == 200, describe(listed)
        ids = {c["id"] for c in listed.json()["data"]}
        assert world.objects["conversation"] not in ids, f"{who}'s conversation list shows A's conversation"
    own = api(main, "GET", "/v1/conversations?limit=200", a.key).json()
    assert world.objects["conversation"] in {c["id"] for c in own["data"]}
    # The administrator reads A's conversation through admin:data.
    history = api(main, "GET", f"/v1/conversations/{world.objects['conversation']}/history", admin_credential(main))
    assert history.status_code == 200 and world.secret_word in history.text, describe(history)


def test_path_spellings_do_not_bypass_the_policy(world: World):
    main, a = world.instance, world.a
    for path in ("/v1//admin/users", "/v1/admin/users/", "/v1/ADMIN/users", "/v1/admin/%75sers",
                 "//v1/admin/users", "/v1/admin/./users", "/v1/models/../admin/users"):
        for credential, allowed in ((None, {401, 404}), (a.key, {403, 404})):
            r = api(main, "GET", path, credential)
            assert r.status_code in allowed, f"{'anonymous' if credential is None else 'user A'}: {describe(r)}"


# --------------------------------------------------------------------------------------------
# 2. The OpenAI SDK with a Chorus API key


def test_openai_sdk_with_api_key(world: World):
    main, a = world.instance, world.a
    for credential in (a.key, a.token):    # an API key, and a program session token
        sdk = OpenAI(base_url=main.base_url, api_key=credential, max_retries=0, timeout=30)
        try:
            completion = sdk.chat.completions.create(model="fake", messages=[{"role": "user", "content": f"{unique_tag()} [[fake tokens=3]]"}])
            assert completion.choices[0].message.content == answer(3)
            stream = sdk.chat.completions.create(model="fake", stream=True,
                                                 messages=[{"role": "user", "content": f"{unique_tag()} [[fake tokens=4]]"}])
            text = "".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices)
            assert text == answer(4)
            assert "fake" in [m.id for m in sdk.models.list().data]
        finally:
            sdk.close()
    for bad in ("sk-chorus-" + secrets.token_urlsafe(30), "unused", a.key + "x"):
        sdk = OpenAI(base_url=main.base_url, api_key=bad, max_retries=0, timeout=30)
        try:
            with pytest.raises(openai.AuthenticationError) as raised:
                sdk.chat.completions.create(model="fake", messages=[{"role": "user", "content": "hi [[fake tokens=1]]"}])
            assert raised.value.status_code == 401
            assert raised.value.code == "invalid_api_key", raised.value
            with pytest.raises(openai.AuthenticationError):
                list(sdk.chat.completions.create(model="fake", stream=True,
                                                 messages=[{"role": "user", "content": "hi [[fake tokens=1]]"}]))
        finally:
            sdk.close()


def test_missing_and_wrong_credentials(world: World):
    main = world.instance
    assert_error(api(main, "GET", "/v1/models"), 401, "missing_credentials")
    assert_error(api(main, "GET", "/v1/models", headers={"Authorization": "Bearer"}), 401)
    assert_error(api(main, "GET", "/v1/models", headers={"Authorization": f"Basic {world.a.key}"}), 401)
    assert_error(api(main, "GET", "/v1/models", "sk-chorus-nope"), 401, "invalid_api_key")
    assert_error(api(main, "GET", "/v1/models", "cs_nope"), 401, "invalid_api_key")
    assert_error(api(main, "GET", "/v1/models", cookie="cs_nope"), 401)
    # A rejected request stores nothing.
    before = main.counts()
    assert_error(api(main, "POST", "/v1/chat/completions", json=chat_body("nobody [[fake tokens=1]]")), 401)
    assert main.counts() == before


def test_api_key_objects(world: World):
    main, a, b = world.instance, world.a, world.b
    created = new_key(main, a.key, name="shape")
    for name in ("id", "object", "user_id", "name", "prefix", "scopes", "created_at", "expires_at", "last_used_at",
                 "revoked_at", "token_budget", "tokens_used", "key"):
        assert name in created, f"api key object lacks {name!r}: {created}"
    assert created["object"] == "api_key" and created["id"].startswith("key_") and created["user_id"] == a.id
    assert created["key"].startswith(created["prefix"]) and len(created["prefix"]) < len(created["key"]) - 16, created
    listed = api(main, "GET", "/v1/api-keys", a.key)
    assert listed.status_code == 200, describe(listed)
    data = listed.json()["data"]
    assert created["id"] in {k["id"] for k in data}
    assert all(k["user_id"] == a.id for k in data), data
    assert all("key" not in k for k in data), "a listed key shows its secret"
    assert a.key not in listed.text
    # B cannot list A's keys; the administrator can.
    other = api(main, "GET", f"/v1/api-keys?user_id={a.id}", b.key)
    assert other.status_code in (403, 404) or all(k["user_id"] == b.id for k in other.json()["data"]), describe(other)
    admin = api(main, "GET", f"/v1/api-keys?user_id={a.id}", admin_credential(main))
    assert admin.status_code == 200 and created["id"] in {k["id"] for k in admin.json()["data"]}, describe(admin)
    # last_used_at is set once the key is used.
    api(main, "GET", "/v1/models", created["key"])
    again = next(k for k in api(main, "GET", "/v1/api-keys", a.key).json()["data"] if k["id"] == created["id"])
    assert again["last_used_at"] is not None, again


def test_me_and_builtin_roles(world: World):
    main, a = world.instance, world.a
    me = api(main, "GET", "/v1/auth/me", a.key)
    assert me.status_code == 200, describe(me)
    body = me.json()
    assert body["object"] == "me" and body["auth"] == "api_key" and body["user"]["id"] == a.id, body
    assert set(body["permissions"]) == USER_PERMISSIONS, body
    admin = api(main, "GET", "/v1/auth/me", admin_credential(main)).json()
    assert set(admin["permissions"]) == ALL_PERMISSIONS and admin["user"]["email"] == ADMIN_EMAIL, admin
    assert admin["user"]["role"] == "admin"
    session = api(main, "GET", "/v1/auth/me", a.token).json()
    assert session["auth"] == "session", session

    roles = api(main, "GET", "/v1/admin/roles", admin_credential(main))
    assert roles.status_code == 200, describe(roles)
    by_name = {r["name"]: r for r in roles.json()["data"]}
    assert set(by_name["admin"]["permissions"]) == ALL_PERMISSIONS and by_name["admin"]["builtin"] is True
    assert set(by_name["user"]["permissions"]) == USER_PERMISSIONS and by_name["user"]["builtin"] is True
    assert all(r["object"] == "role" for r in by_name.values())
    r = api(main, "PATCH", "/v1/admin/roles/user", admin_credential(main), json={"permissions": ["chat"]})
    assert 400 <= r.status_code < 500, f"a built-in role changed: {describe(r)}"
    assert_error(api(main, "DELETE", "/v1/admin/roles/admin", admin_credential(main)), 409)
    assert_error(api(main, "DELETE", "/v1/admin/roles/user", admin_credential(main)), 409)


def test_user_objects_never_show_password_material(world: World):
    main = world.instance
    r = api(main, "GET", "/v1/admin/users?limit=100", admin_credential(main))
    assert r.status_code == 200, describe(r)
    for user in r.json()["data"]:
        for name in ("id", "object", "email", "name", "role", "disabled", "token_budget", "tokens_used", "created_at"):
            assert name in user, f"user object lacks {name!r}: {user}"
        assert not [k for k in user if "password" in k or "hash" in k], user
    assert "$2" not in r.text, "a bcrypt hash in the users list"


def test_admin_users_paging(world: World):
    main = world.instance
    first = api(main, "GET", "/v1/admin/users?limit=1", admin_credential(main))
    assert first.status_code == 200, describe(first)
    page = first.json()
    assert len(page["data"]) == 1 and page["has_more"] is True, page
    second = api(main, "GET", f"/v1/admin/users?limit=1&after={page['data'][0]['id']}", admin_credential(main)).json()
    assert len(second["data"]) == 1 and second["data"][0]["id"] != page["data"][0]["id"], second
    everyone = api(main, "GET", "/v1/admin/users?limit=100", admin_credential(main)).json()["data"]
    ids = [u["id"] for u in everyone]
    assert ids[:2] == [page["data"][0]["id"], second["data"][0]["id"]], (ids[:3], page, second)


# --------------------------------------------------------------------------------------------
# 3. Sessions: cookie (browser) and bearer (program)


def test_cookie_session_csrf_and_logout(world: World):
    main = world.instance
    user = create_user(main)
    cookie, csrf, r = cookie_login(main, user.email, user.password)
    body = r.json()
    assert body["object"] == "session" and body["user"]["id"] == user.id, body
    assert "token" not in body, "a cookie login must not put the session token in the body"
    assert body["expires_at"] > time.time(), body
    assert cookie.startswith("cs_"), cookie
    header = session_cookie_header(r)
    attributes = [part.strip().lower() for part in header.split(";")[1:]]
    assert "httponly" in attributes, header
    assert any(a.startswith("samesite=") and a.split("=", 1)[1] in ("lax", "strict") for a in attributes), header
    assert "secure" not in attributes, f"Secure over plain HTTP (cookie_secure: auto): {header}"

    me = api(main, "GET", "/v1/auth/me", cookie=cookie)
    assert me.status_code == 200, describe(me)
    assert me.json()["auth"] == "session" and me.json()["user"]["id"] == user.id
    me_csrf = me.json().get("csrf_token")
    assert me_csrf, f"/v1/auth/me with a cookie returns csrf_token: {me.text}"

    # Reads need no CSRF token; changes do.
    assert api(main, "GET", "/v1/conversations", cookie=cookie).status_code == 200
    prompt = chat_body(f"{unique_tag()} [[fake tokens=2]]")
    assert_error(api(main, "POST", "/v1/chat/completions", cookie=cookie, json=prompt), 403, "csrf_failed")
    assert_error(api(main, "POST", "/v1/chat/completions", cookie=cookie, csrf="wrong" + csrf, json=prompt), 403, "csrf_failed")
    assert_error(api(main, "POST", "/v1/chat/completions", cookie=cookie, csrf="", json=prompt), 403, "csrf_failed")
    # Another session's CSRF token does not fit this one.
    _, other_csrf, _ = cookie_login(main, user.email, user.password)
    if other_csrf != csrf:
        assert_error(api(main, "POST", "/v1/chat/completions", cookie=cookie, csrf=other_csrf, json=prompt), 403, "csrf_failed")
    ok = api(main, "POST", "/v1/chat/completions", cookie=cookie, csrf=csrf, json=prompt)
    assert ok.status_code == 200 and ok.json()["choices"][0]["message"]["content"] == answer(2), describe(ok)
    ok = api(main, "POST", "/v1/chat/completions", cookie=cookie, csrf=me_csrf, json=prompt)
    assert ok.status_code == 200, describe(ok)
    conversation = ok.json()["conversation_id"]
    assert_error(api(main, "PATCH", f"/v1/conversations/{conversation}", cookie=cookie, json={"title": "x"}), 403, "csrf_failed")
    assert api(main, "PATCH", f"/v1/conversations/{conversation}", cookie=cookie, csrf=csrf,
               json={"title": "x"}).status_code == 200
    assert_error(api(main, "DELETE", f"/v1/conversations/{conversation}", cookie=cookie), 403, "csrf_failed")
    assert api(main, "GET", f"/v1/conversations/{conversation}", cookie=cookie).status_code == 200, "refused DELETE deleted"
    upload = {"file": ("c.txt", b"cookie upload", "text/plain")}
    assert_error(api(main, "POST", "/v1/files", cookie=cookie, files=upload), 403, "csrf_failed")
    assert api(main, "POST", "/v1/files", cookie=cookie, csrf=csrf, files=upload).status_code == 200
    form = {"prompt": (None, "form [[fake tokens=1]]"), "model": (None, "fake")}
    assert_error(api(main, "POST", "/v1/chat/completions", cookie=cookie, files=form), 403, "csrf_failed")
    assert_error(api(main, "POST", "/v1/api-keys", cookie=cookie, json={"name": "csrf"}), 403, "csrf_failed")

    # Logout: CSRF-protected too; then the cookie is cleared and no longer works.
    assert_error(api(main, "POST", "/v1/auth/logout", cookie=cookie), 403, "csrf_failed")
    assert api(main, "GET", "/v1/auth/me", cookie=cookie).status_code == 200
    out = api(main, "POST", "/v1/auth/logout", cookie=cookie, csrf=csrf)
    assert out.status_code == 204, describe(out)
    cleared = session_cookie_header(out)
    assert cleared is not None, f"logout does not clear the cookie: {out.headers.get_list('set-cookie')}"
    low = cleared.lower()
    assert "max-age=0" in low or "expires=thu, 01 jan 1970" in low or cleared.split(";")[0].strip() == "chorus_session=", cleared
    assert_error(api(main, "GET", "/v1/auth/me", cookie=cookie), 401, "invalid_api_key")
    assert_error(api(main, "POST", "/v1/chat/completions", cookie=cookie, csrf=csrf, json=prompt), 401)
    # The user's API key is unaffected.
    assert api(main, "GET", "/v1/auth/me", user.key).status_code == 200


def test_bearer_session(world: World):
    main = world.instance
    user = create_user(main)
    r = login(main, user.email, user.password, "bearer")
    assert r.status_code == 200, describe(r)
    body = r.json()
    token = body["token"]
    assert token.startswith("cs_") and body["object"] == "session" and body["user"]["id"] == user.id, body
    assert session_cookie(r) is None, f"a bearer login sets a cookie: {r.headers.get_list('set-cookie')}"
    # A bearer session needs no CSRF token.
    ok = api(main, "POST", "/v1/chat/completions", token, json=chat_body(f"{unique_tag()} [[fake tokens=1]]"))
    assert ok.status_code == 200, describe(ok)
    assert api(main, "POST", "/v1/auth/logout", token).status_code == 204
    assert_error(api(main, "GET", "/v1/auth/me", token), 401, "invalid_api_key")
    # The other session (the one create_user made) still works.
    assert api(main, "GET", "/v1/auth/me", user.token).status_code == 200


def test_login_failures_do_not_tell_which_part_was_wrong(world: World):
    main, a = world.instance, world.a
    wrong_password = login(main, a.email, new_password())
    unknown_user = login(main, f"nobody-{unique_tag()}@example.com", new_password())
    assert_error(wrong_password, 401, "invalid_credentials")
    assert_error(unknown_user, 401, "invalid_credentials")
    assert error_of(wrong_password)["message"] == error_of(unknown_user)["message"]
    assert session_cookie(wrong_password) is None


def test_password_change_ends_other_sessions(world: World):
    main = world.instance
    user = create_user(main)
    other_session = bearer_login(main, user.email, user.password)
    new = new_password()
    wrong = api(main, "POST", "/v1/auth/password", user.token,
                json={"current_password": new_password(), "new_password": new})
    assert 400 <= wrong.status_code < 500, describe(wrong)
    assert api(main, "GET", "/v1/auth/me", other_session).status_code == 200, "a refused change ended sessions"
    short = api(main, "POST", "/v1/auth/password", user.token, json={"current_password": user.password, "new_password": "short"})
    assert short.status_code == 400, describe(short)
    r = api(main, "POST", "/v1/auth/password", user.token, json={"current_password": user.password, "new_password": new})
    assert r.status_code == 204, describe(r)
    assert api(main, "GET", "/v1/auth/me", user.token).status_code == 200, "the session that changed it goes on"
    assert_error(api(main, "GET", "/v1/auth/me", other_session), 401, "invalid_api_key")
    assert login(main, user.email, user.password).status_code == 401
    assert login(main, user.email, new).status_code == 200
    assert api(main, "GET", "/v1/auth/me", user.key).status_code == 200, "API keys survive a password change"
    # The administrator sets a password.
    third = new_password()
    r = api(main, "PATCH", f"/v1/admin/users/{user.id}", admin_credential(main), json={"password": third})
    assert r.status_code == 200, describe(r)
    assert login(main, user.email, third).status_code == 200
    assert login(main, user.email, new).status_code == 401


def test_session_expiry(expired_world: World):
    instance = expired_world.instance
    assert_error(api(instance, "GET", "/v1/auth/me", expired_world.expired_session), 401, "invalid_api_key")
    # The user's API key does not expire with it.
    assert api(instance, "GET", "/v1/auth/me", expired_world.a.key).status_code == 200


# --------------------------------------------------------------------------------------------
# 4. Registration policies


def register(instance: Chorus, email: str, password: str, **extra: Any) -> httpx.Response:
    return api(instance, "POST", "/v1/auth/register", json={"email": email, "password": password, **extra})


def test_registration_closed_by_default(world: World):
    main = world.instance
    email = f"walk-in-{unique_tag()}@example.com"
    password = new_password()
    assert_error(register(main, email, password), 403, "registration_closed")
    assert login(main, email, password).status_code == 401


def test_registration_open(open_instance: Chorus):
    email = f"self-{unique_tag()}@example.com"
    password = new_password()
    r = register(open_instance, email, password, name="Self Made")
    assert r.status_code == 201, describe(r)
    user = r.json()
    assert user["object"] == "user" and user["email"] == email and user["role"] == "user", user
    assert not [k for k in user if "password" in k or "hash" in k], user
    assert password not in r.text
    token = bearer_login(open_instance, email, password)
    me = api(open_instance, "GET", "/v1/auth/me", token).json()
    assert me["user"]["id"] == user["id"] and set(me["permissions"]) == USER_PERMISSIONS, me
    assert_error(register(open_instance, email, new_password()), 409, "email_taken")
    r = register(open_instance, f"short-{unique_tag()}@example.com", "seven77")
    assert_error(r, 400)
    # Registration cannot choose a role.
    sneaky = register(open_instance, f"sneaky-{unique_tag()}@example.com", new_password(), role="admin")
    if sneaky.status_code == 201:
        assert sneaky.json()["role"] == "user", sneaky.text
    else:
        assert 400 <= sneaky.status_code < 500, describe(sneaky)


def test_registration_by_invitation(invite_instance: Chorus):
    instance = invite_instance
    admin = admin_credential(instance)
    password = new_password()
    r = register(instance, f"uninvited-{unique_tag()}@example.com", password)
    assert r.status_code == 403 and error_of(r).get("code") in ("invalid_invite", "registration_closed"), describe(r)
    assert_error(register(instance, f"guess-{unique_tag()}@example.com", password, invite_code="not-a-code"), 403, "invalid_invite")

    invite = api(instance, "POST", "/v1/admin/invites", admin, json={"role": "user"})
    assert invite.status_code == 201, describe(invite)
    body = invite.json()
    assert body["object"] == "invite" and body["role"] == "user" and body["code"] and body["id"], body
    assert "expires_at" in body, body
    email = f"invited-{unique_tag()}@example.com"
    r = register(instance, email, password, invite_code=body["code"])
    assert r.status_code == 201, describe(r)
    assert r.json()["role"] == "user"
    assert login(instance, email, password).status_code == 200
    # Once only.
    assert_error(register(instance, f"second-{unique_tag()}@example.com", new_password(), invite_code=body["code"]),
                 403, "invalid_invite")
    # An invite carries its role.
    role_name = f"role_{unique_tag()}"
    assert api(instance, "POST", "/v1/admin/roles", admin, json={"name": role_name, "permissions": ["conversations"]}).status_code == 201
    invite = api(instance, "POST", "/v1/admin/invites", admin, json={"role": role_name}).json()
    email = f"reader-{unique_tag()}@example.com"
    password = new_password()
    r = register(instance, email, password, invite_code=invite["code"])
    assert r.status_code == 201 and r.json()["role"] == role_name, describe(r)
    token = bearer_login(instance, email, password)
    assert set(api(instance, "GET", "/v1/auth/me", token).json()["permissions"]) == {"conversations"}
    # An expired invite is refused.
    short = api(instance, "POST", "/v1/admin/invites", admin, json={"expires_in": 1}).json()
    time.sleep(2.2)
    assert_error(register(instance, f"late-{unique_tag()}@example.com", new_password(), invite_code=short["code"]),
                 403, "invalid_invite")


# --------------------------------------------------------------------------------------------
# 5. API keys: scopes, expiry, revocation; disabled users; role changes


def test_key_scopes_narrow_never_widen(world: World):
    main, a = world.instance, world.a
    narrow = new_key(main, a.token, scopes=["conversations"])
    assert narrow["scopes"] == ["conversations"], narrow
    assert_error(api(main, "POST", "/v1/chat/completions", narrow["key"], json=chat_body("hi [[fake tokens=1]]")),
                 403, "insufficient_permissions")
    assert_error(api(main, "GET", "/v1/models", narrow["key"]), 403, "insufficient_permissions")
    assert api(main, "GET", "/v1/conversations", narrow["key"]).status_code == 200
    assert api(main, "GET", f"/v1/conversations/{world.objects['conversation']}", narrow["key"]).status_code == 200
    # Without `keys`, it cannot mint itself a broader key.
    assert_error(api(main, "POST", "/v1/api-keys", narrow["key"], json={"name": "escalate"}), 403, "insufficient_permissions")
    me = api(main, "GET", "/v1/auth/me", narrow["key"])
    assert me.status_code == 200 and set(me.json()["permissions"]) == {"conversations"}, describe(me)
    # A plain user's key scoped to an admin permission gets no admin power.
    wide = api(main, "POST", "/v1/api-keys", a.token, json={"name": "wide", "scopes": ["admin:users", "chat"]})
    if wide.status_code == 201:
        assert_error(api(main, "GET", "/v1/admin/users", wide.json()["key"]), 403, "insufficient_permissions")
        assert api(main, "GET", "/v1/models", wide.json()["key"]).status_code == 200
    else:
        assert wide.status_code in (400, 403), describe(wide)
    bogus = api(main, "POST", "/v1/api-keys", a.token, json={"name": "bogus", "scopes": ["everything"]})
    assert bogus.status_code == 400, describe(bogus)


def test_async_chat_form_needs_chat_tasks_and_files(world: World):
    main, a = world.instance, world.a
    form = {"prompt": (None, f"{unique_tag()} form [[fake tokens=2]]"), "model": (None, "fake"),
            "files": ("form.txt", b"form upload", "text/plain")}
    for scopes in (["chat"], ["chat", "tasks"], ["chat", "files"], ["tasks", "files"]):
        key = new_key(main, a.token, scopes=scopes)["key"]
        r = api(main, "POST", "/v1/chat/completions", key, files=form)
        assert_error(r, 403, "insufficient_permissions")
    key = new_key(main, a.token, scopes=["chat", "tasks", "files"])["key"]
    r = api(main, "POST", "/v1/chat/completions", key, files=form)
    assert r.status_code == 202 and r.json()["message"] == "Tasks dispatched successfully", describe(r)


def test_upload_over_files_max_bytes_is_413(world: World):
    main, a = world.instance, world.a
    r = api(main, "POST", "/v1/files", a.key, files={"file": ("big.txt", b"y" * (MAX_FILE_BYTES + 1), "text/plain")})
    assert_error(r, 413)
    r = api(main, "POST", "/v1/files", a.key, files={"file": ("ok.txt", b"y" * (MAX_FILE_BYTES - 1), "text/plain")})
    assert r.status_code == 200, describe(r)


def test_key_expiry(world: World):
    main, a = world.instance, world.a
    created = new_key(main, a.token, expires_in=1)
    assert created["expires_at"] is not None and 0 <= created["expires_at"] - created["created_at"] <= 2, created
    time.sleep(2.2)
    assert_error(api(main, "GET", "/v1/models", created["key"]), 401, "invalid_api_key")
    assert api(main, "GET", "/v1/models", a.key).status_code == 200


def test_key_revocation_is_immediate(world: World):
    main, a = world.instance, world.a
    created = new_key(main, a.token)
    assert api(main, "GET", "/v1/models", created["key"]).status_code == 200
    r = api(main, "DELETE", f"/v1/api-keys/{created['id']}", a.token)
    assert r.status_code == 200, describe(r)
    assert r.json()["id"] == created["id"] and r.json()["revoked_at"] is not None, r.json()
    assert "key" not in r.json()
    assert_error(api(main, "GET", "/v1/models", created["key"]), 401, "invalid_api_key")
    assert_error(api(main, "POST", "/v1/chat/completions", created["key"], json=chat_body("hi [[fake tokens=1]]")),
                 401, "invalid_api_key")
    # B cannot revoke A's key (404); the administrator can.
    second = new_key(main, a.token)
    assert api(main, "DELETE", f"/v1/api-keys/{second['id']}", world.b.key).status_code == 404
    assert api(main, "GET", "/v1/models", second["key"]).status_code == 200
    assert api(main, "DELETE", f"/v1/api-keys/{second['id']}", admin_credential(main)).status_code == 200
    assert_error(api(main, "GET", "/v1/models", second["key"]), 401, "invalid_api_key")


def test_disabled_user(world: World):
    main = world.instance
    admin = admin_credential(main)
    user = create_user(main)
    cookie, csrf, _ = cookie_login(main, user.email, user.password)
    assert api(main, "GET", "/v1/models", user.key).status_code == 200
    r = api(main, "PATCH", f"/v1/admin/users/{user.id}", admin, json={"disabled": True})
    assert r.status_code == 200 and r.json()["disabled"] is True, describe(r)
    assert_error(api(main, "GET", "/v1/models", user.key), 401, "invalid_api_key")
    assert_error(api(main, "GET", "/v1/auth/me", user.token), 401, "invalid_api_key")
    assert_error(api(main, "GET", "/v1/auth/me", cookie=cookie), 401)
    refused = login(main, user.email, user.password)
    assert refused.status_code in (401, 403) and session_cookie(refused) is None and "token" not in refused.text, describe(refused)
    # Enabled again: the keys work again; the sessions were ended.
    r = api(main, "PATCH", f"/v1/admin/users/{user.id}", admin, json={"disabled": False})
    assert r.status_code == 200 and r.json()["disabled"] is False, describe(r)
    assert api(main, "GET", "/v1/models", user.key).status_code == 200
    assert_error(api(main, "GET", "/v1/auth/me", user.token), 401, "invalid_api_key")
    assert login(main, user.email, user.password).status_code == 200


def test_role_change_applies_at_once(world: World):
    main = world.instance
    admin = admin_credential(main)
    user = create_user(main)
    assert_error(api(main, "GET", "/v1/admin/users", user.key), 403, "insufficient_permissions")
    assert api(main, "PATCH", f"/v1/admin/users/{user.id}", admin, json={"role": "admin"}).status_code == 200
    assert api(main, "GET", "/v1/admin/users", user.key).status_code == 200
    assert api(main, "GET", "/v1/admin/users", user.token).status_code == 200
    assert api(main, "PATCH", f"/v1/admin/users/{user.id}", admin, json={"role": "user"}).status_code == 200
    assert_error(api(main, "GET", "/v1/admin/users", user.key), 403, "insufficient_permissions")
    # A custom role: only what it names.
    role = f"role_{unique_tag()}"
    r = api(main, "POST", "/v1/admin/roles", admin, json={"name": role, "permissions": ["conversations"]})
    assert r.status_code == 201 and r.json()["builtin"] is False, describe(r)
    assert api(main, "PATCH", f"/v1/admin/users/{user.id}", admin, json={"role": role}).status_code == 200
    assert_error(api(main, "POST", "/v1/chat/completions", user.key, json=chat_body("hi [[fake tokens=1]]")),
                 403, "insufficient_permissions")
    assert api(main, "GET", "/v1/conversations", user.key).status_code == 200
    r = api(main, "PATCH", f"/v1/admin/roles/{role}", admin, json={"permissions": ["conversations", "chat"]})
    assert r.status_code == 200, describe(r)
    assert api(main, "POST", "/v1/chat/completions", user.key, json=chat_body("hi [[fake tokens=1]]")).status_code == 200
    assert_error(api(main, "DELETE", f"/v1/admin/roles/{role}", admin), 409)     # in use
    assert_error(api(main, "PATCH", f"/v1/admin/users/{user.id}", admin, json={"role": "no-such-role"}), 400)
    assert api(main, "PATCH", f"/v1/admin/users/{user.id}", admin, json={"role": "user"}).status_code == 200
    assert api(main, "DELETE", f"/v1/admin/roles/{role}", admin).status_code == 204
    assert_error(api(main, "POST", "/v1/admin/roles", admin, json={"name": f"bad_{unique_tag()}", "permissions": ["root"]}), 400)
    assert_error(api(main, "POST", "/v1/admin/users", admin,
                     json={"email": world.a.email, "password": new_password()}), 409, "email_taken")


# --------------------------------------------------------------------------------------------
# 6. Token budgets (main: no rate limits)


def usage_total(response: httpx.Response) -> int:
    return response.json()["usage"]["total_tokens"]


def test_user_token_budget(world: World):
    main = world.instance
    admin = admin_credential(main)
    user = create_user(main)
    r = api(main, "PATCH", f"/v1/admin/users/{user.id}", admin, json={"token_budget": 10})
    assert r.status_code == 200 and r.json()["token_budget"] == 10, describe(r)
    first = api(main, "POST", "/v1/chat/completions", user.key, json=chat_body(f"{unique_tag()} [[fake tokens=20]]"))
    assert first.status_code == 200, describe(first)   # under budget when it started; may overshoot
    used = usage_total(first)
    assert used > 10

    def charged():
        body = api(main, "GET", f"/v1/admin/users/{user.id}", admin).json()
        return body if body["tokens_used"] >= used else None
    body = wait_until(charged, 5, interval=0.1, message="the user's tokens_used to include the call")
    assert body["tokens_used"] == used, body
    before = main.counts()
    assert_error(api(main, "POST", "/v1/chat/completions", user.key, json=chat_body("more [[fake tokens=1]]")),
                 429, "insufficient_quota")
    r = api(main, "POST", "/v1/chat/completions", user.token, json=chat_body("more [[fake tokens=1]]", stream=True))
    assert_error(r, 429, "insufficient_quota")
    assert main.counts() == before, "a refused chat stored something"
    # Other routes still work; a larger budget lets chat through again.
    assert api(main, "GET", "/v1/conversations", user.key).status_code == 200
    assert api(main, "PATCH", f"/v1/admin/users/{user.id}", admin, json={"token_budget": used + 1000}).status_code == 200
    assert api(main, "POST", "/v1/chat/completions", user.key, json=chat_body("again [[fake tokens=1]]")).status_code == 200


def test_key_token_budget(world: World):
    main = world.instance
    user = create_user(main)
    limited_key = new_key(main, user.token, token_budget=10)
    assert limited_key["token_budget"] == 10 and limited_key["tokens_used"] == 0, limited_key
    first = api(main, "POST", "/v1/chat/completions", limited_key["key"], json=chat_body(f"{unique_tag()} [[fake tokens=20]]"))
    assert first.status_code == 200, describe(first)
    wait_until(lambda: next(k for k in api(main, "GET", "/v1/api-keys", user.key).json()["data"]
                            if k["id"] == limited_key["id"])["tokens_used"] == usage_total(first), 5, interval=0.1,
               message="the key's tokens_used to equal the call's usage")
    assert_error(api(main, "POST", "/v1/chat/completions", limited_key["key"], json=chat_body("more [[fake tokens=1]]")),
                 429, "insufficient_quota")
    # The user's other key has no budget.
    assert api(main, "POST", "/v1/chat/completions", user.key, json=chat_body("other key [[fake tokens=1]]")).status_code == 200
    # A streamed call is charged its real usage too.
    streamed_key = new_key(main, user.token, token_budget=10)
    with httpx.stream("POST", main.url + "/v1/chat/completions", headers=bearer(streamed_key["key"]), timeout=30,
                      json=chat_body(f"{unique_tag()} [[fake tokens=20]]", stream=True)) as r:
        assert r.status_code == 200
        assert b"[DONE]" in r.read()
    wait_until(lambda: next(k for k in api(main, "GET", "/v1/api-keys", user.key).json()["data"]
                            if k["id"] == streamed_key["id"])["tokens_used"] >= 20, 5, interval=0.1,
               message="the streamed call to be charged to the key")
    assert_error(api(main, "POST", "/v1/chat/completions", streamed_key["key"], json=chat_body("more [[fake tokens=1]]")),
                 429, "insufficient_quota")


def test_user_token_budget_covers_async_chat(world: World):
    """Batch tasks and the Async-Chat form are chat calls too: charged to the user's tokens_used,
    refused once the budget is spent (at submission, or as a failed task that never reaches the
    model)."""
    main = world.instance
    admin = admin_credential(main)
    user = create_user(main)
    assert api(main, "PATCH", f"/v1/admin/users/{user.id}", admin, json={"token_budget": 10}).status_code == 200
    r = api(main, "POST", "/v1/batches", user.key, json={"prompt": f"{unique_tag()} [[fake tokens=20]]", "models": ["fake"]})
    assert r.status_code == 202, describe(r)
    task = wait_task(main, user.key, r.json()["task_ids"][0])
    assert task["state"] == "SUCCESS", task
    wait_until(lambda: api(main, "GET", f"/v1/admin/users/{user.id}", admin).json()["tokens_used"] >= 20, 5, interval=0.1,
               message="the batch task's usage to be charged to the user (tokens_used)")
    for submit in (
        lambda: api(main, "POST", "/v1/batches", user.key, json={"prompt": f"{unique_tag()} [[fake tokens=20]]", "models": ["fake"]}),
        lambda: api(main, "POST", "/v1/chat/completions", user.key,
                    files={"prompt": (None, f"{unique_tag()} [[fake tokens=20]]"), "model": (None, "fake")}),
    ):
        r = submit()
        if r.status_code == 429:
            assert_error(r, 429, "insufficient_quota")
            continue
        assert r.status_code == 202, describe(r)
        task = wait_task(main, user.key, r.json()["task_ids"][0])
        assert task["state"] == "FAILURE" and "insufficient_quota" in json.dumps(task["error"]), \
            f"an async chat call ran past the spent budget: {json.dumps(task)[:600]}"


# --------------------------------------------------------------------------------------------
# 7. Rate limits (the `limited` instance: 10 requests and 50 tokens a minute per key)


def limited_user(instance: Chorus) -> Account:
    # The administrator works with its session: per-key limits do not apply to it.
    return create_user(instance, admin=instance.admin_token)


def assert_rate_limited(response: httpx.Response, type_: str) -> None:
    assert_error(response, 429, "rate_limit_exceeded", type_)
    retry_after = response.headers.get("retry-after")
    assert retry_after is not None and retry_after.isdigit() and int(retry_after) >= 1, \
        f"Retry-After {retry_after!r}: {describe(response)}"
    assert response.headers.get("x-request-id")


def test_key_request_rate_limit(limited: Chorus):
    user = limited_user(limited)
    key = new_key(limited, user.token)["key"]
    started = time.monotonic()
    statuses = [api(limited, "GET", "/v1/models", key).status_code for _ in range(10)]
    assert time.monotonic() - started < 5, "the requests were too slow for this test"
    assert statuses == [200] * 10, statuses
    eleventh = api(limited, "GET", "/v1/models", key)
    assert_rate_limited(eleventh, "requests")
    assert_rate_limited(api(limited, "POST", "/v1/chat/completions", key, json=chat_body("hi [[fake tokens=1]]")), "requests")
    # Per key: the same user's other key and session are not limited by it.
    assert api(limited, "GET", "/v1/models", user.key).status_code == 200
    assert api(limited, "GET", "/v1/models", user.token).status_code == 200


def test_key_token_rate_limit(limited: Chorus):
    user = limited_user(limited)
    key = new_key(limited, user.token)["key"]
    first = api(limited, "POST", "/v1/chat/completions", key, json=chat_body(f"{unique_tag()} [[fake tokens=80]]"))
    assert first.status_code == 200, describe(first)
    assert usage_total(first) > 50
    assert_rate_limited(api(limited, "POST", "/v1/chat/completions", key, json=chat_body("more [[fake tokens=1]]")), "tokens")
    streamed = api(limited, "POST", "/v1/chat/completions", key, json=chat_body("more [[fake tokens=1]]", stream=True))
    assert_rate_limited(streamed, "tokens")
    # Requests that spend no tokens go on.
    assert api(limited, "GET", "/v1/models", key).status_code == 200


def test_key_token_rate_limit_covers_async_chat(limited: Chorus):
    """A batch task's tokens count against key_tokens_per_minute like a chat call's."""
    user = limited_user(limited)
    key = new_key(limited, user.token)["key"]
    r = api(limited, "POST", "/v1/batches", key, json={"prompt": f"{unique_tag()} [[fake tokens=80]]", "models": ["fake"]})
    assert r.status_code == 202, describe(r)
    assert wait_task(limited, user.token, r.json()["task_ids"][0])["state"] == "SUCCESS"
    time.sleep(0.3)
    assert_rate_limited(api(limited, "POST", "/v1/chat/completions", key, json=chat_body("more [[fake tokens=1]]")), "tokens")


def test_user_limits_span_all_keys(per_user: Chorus):
    """user_requests_per_minute counts every key and session of the user together."""
    instance = per_user
    admin_session = instance.admin_token
    email, password = f"u-{unique_tag()}@example.com", new_password()
    assert api(instance, "POST", "/v1/admin/users", admin_session, json={"email": email, "password": password}).status_code == 201
    session = bearer_login(instance, email, password)
    keys = [new_key(instance, session)["key"] for _ in range(2)]       # 2 of the user's requests
    statuses = [api(instance, "GET", "/v1/models", keys[i % 2]).status_code for i in range(USER_REQUEST_LIMIT + 4)]
    admitted = statuses.count(200)
    assert set(statuses) <= {200, 429}, statuses
    assert USER_REQUEST_LIMIT - 2 <= admitted <= USER_REQUEST_LIMIT, statuses
    assert statuses[admitted:] == [429] * (len(statuses) - admitted), statuses
    for credential in (*keys, session):
        assert_rate_limited(api(instance, "GET", "/v1/models", credential), "requests")
    # Another user is not affected.
    other = create_user(instance, admin=admin_session)
    assert api(instance, "GET", "/v1/models", other.key).status_code == 200


def test_user_token_limit_spans_all_keys(per_user: Chorus):
    instance = per_user
    user = create_user(instance, admin=instance.admin_token)
    second = new_key(instance, user.token)["key"]
    first = api(instance, "POST", "/v1/chat/completions", user.key, json=chat_body(f"{unique_tag()} [[fake tokens=80]]"))
    assert first.status_code == 200 and usage_total(first) > 50, describe(first)
    assert_rate_limited(api(instance, "POST", "/v1/chat/completions", second, json=chat_body("more [[fake tokens=1]]")), "tokens")


def test_ip_request_limit_with_a_trusted_proxy(per_ip: Chorus):
    """ip_requests_per_minute per client address; behind a trusted proxy that is X-Forwarded-For."""
    instance = per_ip
    key = admin_credential(instance)
    client = {"X-Forwarded-For": "198.51.100.50"}
    statuses = [api(instance, "GET", "/v1/models", key, headers=client).status_code for _ in range(IP_REQUEST_LIMIT + 3)]
    assert statuses[:IP_REQUEST_LIMIT] == [200] * IP_REQUEST_LIMIT and set(statuses[IP_REQUEST_LIMIT:]) == {429}, statuses
    assert_rate_limited(api(instance, "GET", "/v1/models", key, headers=client), "requests")
    # The client's own entries to the left of what the proxy appended change nothing.
    spoofed = {"X-Forwarded-For": "203.0.113.200, 198.51.100.50"}
    assert_rate_limited(api(instance, "GET", "/v1/models", key, headers=spoofed), "requests")
    # Another client address, and the proxy itself, have their own allowance.
    assert api(instance, "GET", "/v1/models", key, headers={"X-Forwarded-For": "198.51.100.51"}).status_code == 200
    assert api(instance, "GET", "/v1/models", key).status_code == 200


def test_login_attempts_per_minute(logins_instance: Chorus):
    instance = logins_instance
    email = f"target-{unique_tag()}@example.com"
    password = new_password()
    assert api(instance, "POST", "/v1/admin/users", admin_credential(instance),
               json={"email": email, "password": password}).status_code == 201
    statuses = []
    for _ in range(LOGIN_LIMIT + 3):
        r = login(instance, email, "wrong-" + secrets.token_hex(4))
        statuses.append(r.status_code)
        if r.status_code == 429:
            assert_error(r, 429, "rate_limit_exceeded")
            assert r.headers.get("retry-after", "").isdigit() and int(r.headers["retry-after"]) >= 1, r.headers
            break
    assert statuses[-1] == 429 and len(statuses) <= LOGIN_LIMIT + 1 and set(statuses[:-1]) <= {401}, statuses
    # Now even the right password waits, and an untrusted X-Forwarded-For does not help.
    assert login(instance, email, password).status_code == 429
    assert login(instance, email, password, headers={"X-Forwarded-For": "198.51.100.23"}).status_code == 429
    # Other routes are not login attempts.
    assert api(instance, "GET", "/v1/models", admin_credential(instance)).status_code == 200


# --------------------------------------------------------------------------------------------
# 8. Audit log


def audit_entries(instance: Chorus, credential: str, **query: Any) -> list[dict[str, Any]]:
    r = api(instance, "GET", "/v1/admin/audit", credential, params={"limit": 200, **query})
    assert r.status_code == 200, describe(r)
    body = r.json()
    assert body["object"] == "list" and isinstance(body["has_more"], bool), body
    return body["data"]


def test_audit_log(world: World):
    main, a = world.instance, world.a
    admin = admin_credential(main)
    tag = unique_tag()
    email = f"audited-{tag}@example.com"
    password = new_password()
    created = api(main, "POST", "/v1/admin/users", admin, json={"email": email, "password": password, "name": f"n{tag}"})
    assert created.status_code == 201, describe(created)
    failed_login = login(main, email, new_password(), headers={"X-Forwarded-For": "203.0.113.77"})
    assert failed_login.status_code == 401
    long_prompt = f"{tag} " + "p" * 100 + " [[fake tokens=1]]"
    batch = api(main, "POST", f"/v1/batches?session_token=zzz{tag}", a.key,
                json={"prompt": long_prompt, "models": ["fake"]})
    assert batch.status_code == 202, describe(batch)
    renamed = api(main, "PATCH", f"/v1/conversations/{world.objects['conversation']}", a.key, json={"title": f"t{tag}"})
    assert renamed.status_code == 200
    refused = api(main, "PATCH", f"/v1/conversations/{world.objects['conversation']}", json={"title": f"anon{tag}"})
    assert refused.status_code == 401
    forbidden = api(main, "POST", "/v1/admin/users", a.key, json={"email": f"no-{tag}@example.com", "password": new_password()})
    assert forbidden.status_code == 403
    walk_in = api(main, "POST", "/v1/auth/register", json={
        "email": f"walk-{tag}@example.com", "password": new_password(), "invite_code": f"code{tag}",
        "client_secret": f"s{tag}", "Authorization": f"a{tag}", "api_key": f"k{tag}", "name": f"w{tag}"})
    assert walk_in.status_code == 403

    def find(predicate):
        return next((e for e in audit_entries(main, admin) if predicate(e)), None)

    def entry_for(response: httpx.Response):
        rid = response.headers["x-request-id"]
        return wait_until(lambda: find(lambda e: e["request_id"] == rid), 5, interval=0.25,
                          message=f"an audit entry for {response.request.method} {response.request.url.path}")

    entry = entry_for(created)
    for name in ("id", "object", "created_at", "user_id", "api_key_id", "ip", "method", "path", "params", "status",
                 "duration_ms", "request_id"):
        assert name in entry, f"audit entry lacks {name!r}: {entry}"
    assert entry["object"] == "audit_entry" and entry["method"] == "POST" and entry["path"] == "/v1/admin/users", entry
    assert entry["status"] == 201 and entry["user_id"] == main_admin_id(main) and entry["api_key_id"] == main.admin_key_id, entry
    assert entry["params"]["password"] == "[REDACTED]" and entry["params"]["email"] == email, entry
    assert entry["ip"] == "127.0.0.1", entry
    assert isinstance(entry["duration_ms"], (int, float)) and entry["duration_ms"] >= 0

    entry = entry_for(failed_login)
    assert entry["status"] == 401 and entry["user_id"] is None and entry["path"] == "/v1/auth/login", entry
    assert entry["params"]["password"] == "[REDACTED]", entry
    assert entry["ip"] == "127.0.0.1", f"X-Forwarded-For from an untrusted peer was believed: {entry}"

    entry = entry_for(batch)
    assert entry["status"] == 202 and entry["user_id"] == a.id and entry["api_key_id"] == a.key_id, entry
    assert entry["params"]["prompt"] == f"[{len(long_prompt)} chars]", entry
    assert entry["params"]["models"] == "[1 items]", entry
    assert entry["params"]["session_token"] == "[REDACTED]", entry
    assert entry["path"] == "/v1/batches", entry

    entry = entry_for(renamed)
    assert entry["method"] == "PATCH" and entry["status"] == 200 and entry["params"]["title"] == f"t{tag}", entry
    entry = entry_for(refused)
    assert entry["status"] == 401 and entry["user_id"] is None, entry
    entry = entry_for(forbidden)
    assert entry["status"] == 403 and entry["user_id"] == a.id and entry["params"]["password"] == "[REDACTED]", entry
    entry = entry_for(walk_in)
    assert entry["status"] == 403 and entry["params"]["name"] == f"w{tag}", entry
    for name in ("password", "invite_code", "client_secret", "Authorization", "api_key"):
        assert entry["params"][name] == "[REDACTED]", (name, entry)
    assert tag not in json.dumps({k: v for k, v in entry["params"].items() if k not in ("name", "email")}), entry

    # Filters.
    assert {e["user_id"] for e in audit_entries(main, admin, user_id=a.id)} == {a.id}
    assert {e["method"] for e in audit_entries(main, admin, method="PATCH")} == {"PATCH"}
    assert all(e["path"].startswith("/v1/admin") for e in audit_entries(main, admin, path_prefix="/v1/admin"))
    # Paging, newest first: `before` continues where a page ended.
    everything = audit_entries(main, admin)
    assert len(everything) >= 6
    page1 = api(main, "GET", "/v1/admin/audit", admin, params={"limit": 2}).json()
    assert len(page1["data"]) == 2 and page1["has_more"] is True, page1
    page2 = api(main, "GET", "/v1/admin/audit", admin, params={"limit": 2, "before": page1["data"][-1]["id"]}).json()
    assert len(page2["data"]) == 2, page2
    assert [e["id"] for e in page1["data"] + page2["data"]] == [e["id"] for e in everything[:4]], \
        (page1, page2, [e["id"] for e in everything[:6]])
    assert all(x["created_at"] >= y["created_at"] for x, y in zip(everything, everything[1:])), "not newest first"
    # Only for admin:audit.
    assert_error(api(main, "GET", "/v1/admin/audit", a.key), 403, "insufficient_permissions")
    assert_error(api(main, "GET", "/v1/admin/audit"), 401, "missing_credentials")
    # No secret in the audit log.
    text = json.dumps(everything)
    assert password not in text and a.key not in text and admin not in text


def main_admin_id(instance: Chorus) -> str:
    return api(instance, "GET", "/v1/auth/me", admin_credential(instance)).json()["user"]["id"]


def test_trusted_proxy_headers(limited: Chorus, world: World):
    """X-Forwarded-For / -Proto are believed from 127.0.0.1 only where it is a trusted proxy."""
    user = limited_user(limited)
    r = api(limited, "POST", "/v1/auth/login", json={"email": user.email, "password": user.password},
            headers={"X-Forwarded-For": "203.0.113.9", "X-Forwarded-Proto": "https"})
    assert r.status_code == 200, describe(r)
    header = session_cookie_header(r)
    assert header and "secure" in [p.strip().lower() for p in header.split(";")[1:]], \
        f"a login forwarded over HTTPS by a trusted proxy gets a Secure cookie: {header}"
    rid = r.headers["x-request-id"]
    entry = wait_until(lambda: next((e for e in audit_entries(limited, limited.admin_token) if e["request_id"] == rid), None),
                       5, interval=0.25, message="the audit entry of the forwarded login")
    assert entry["ip"] == "203.0.113.9", entry
    # The main instance trusts no proxy: no Secure cookie over plain HTTP.
    main = world.instance
    r = api(main, "POST", "/v1/auth/login", json={"email": world.a.email, "password": world.a.password},
            headers={"X-Forwarded-Proto": "https", "X-Forwarded-For": "203.0.113.10"})
    assert r.status_code == 200
    header = session_cookie_header(r)
    assert header and "secure" not in [p.strip().lower() for p in header.split(";")[1:]], header


# --------------------------------------------------------------------------------------------
# 9. HTTP hygiene


def test_security_headers(world: World):
    main, a = world.instance, world.a
    responses = [
        api(main, "GET", "/healthz"),
        api(main, "GET", "/readyz"),
        api(main, "GET", "/v1/models", a.key),
        api(main, "GET", "/v1/models"),                                  # 401
        api(main, "GET", "/v1/admin/users", a.key),                      # 403
        api(main, "GET", "/v1/conversations/conv_nope", a.key),          # 404
        api(main, "GET", "/v1/no-such-route", a.key),
        api(main, "POST", "/v1/chat/completions", a.key, json=chat_body("h [[fake tokens=1]]")),
        api(main, "POST", "/v1/auth/login", json={"email": a.email, "password": a.password, "session": "bearer"}),
        api(main, "POST", "/v1/batches", a.key, json={"prompt": "x" * (MAX_BODY_BYTES + 10), "models": ["fake"]}),  # 413
        api(main, "OPTIONS", "/v1/models", headers={"Origin": ALLOWED_ORIGIN, "Access-Control-Request-Method": "GET"}),
    ]
    with httpx.stream("POST", main.url + "/v1/chat/completions", headers=bearer(a.key),
                      json=chat_body("h [[fake tokens=1]]", stream=True), timeout=30) as streamed:
        streamed.read()
        responses.append(streamed)
    seen = [(f"{r.request.method} {r.request.url.path} ({r.status_code})", r.headers) for r in responses]
    seen.append(("GET /v1/tasks/{id}/ws handshake, anonymous", raw_websocket_handshake(main, f"/v1/tasks/{world.objects['task']}/ws")[1]))
    missing = [f"{where}: {name} is {headers.get(name)!r}, expected {value!r}"
               for where, headers in seen for name, value in SECURITY_HEADERS.items() if headers.get(name) != value]
    assert not missing, "security headers missing:\n" + "\n".join(missing)


def raw_websocket_handshake(instance: Chorus, path: str, headers: dict[str, str] | None = None) -> tuple[int, httpx.Headers, bytes]:
    """A WebSocket upgrade request on a raw socket: the status, headers and body of the answer."""
    import base64
    import os
    import socket
    from urllib.parse import urlparse
    url = urlparse(instance.url)
    extra = "".join(f"{k}: {v}\r\n" for k, v in (headers or {}).items())
    with socket.create_connection((url.hostname, url.port), timeout=10) as sock:
        sock.sendall((f"GET {path} HTTP/1.1\r\nHost: chorus\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                      f"Sec-WebSocket-Key: {base64.b64encode(os.urandom(16)).decode()}\r\nSec-WebSocket-Version: 13\r\n"
                      f"{extra}\r\n").encode())
        data = b""
        while b"\r\n\r\n" not in data:
            piece = sock.recv(65536)
            if not piece:
                break
            data += piece
        head, _, body = data.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        fields = httpx.Headers([tuple(part.strip() for part in line.split(":", 1)) for line in lines[1:] if ":" in line])
        status = int(lines[0].split()[1]) if lines and len(lines[0].split()) > 1 else -1
        length = int(fields.get("content-length", "0") or 0)
        while len(body) < length:
            piece = sock.recv(65536)
            if not piece:
                break
            body += piece
    return status, fields, body


def test_cors(world: World):
    main, a = world.instance, world.a
    preflight = {"Origin": ALLOWED_ORIGIN, "Access-Control-Request-Method": "POST",
                 "Access-Control-Request-Headers": "authorization, content-type"}
    r = api(main, "OPTIONS", "/v1/chat/completions", headers=preflight)
    assert r.status_code in (200, 204), describe(r)
    assert r.headers.get("access-control-allow-origin") == ALLOWED_ORIGIN, r.headers
    assert r.headers.get("access-control-allow-credentials") == "true", r.headers
    assert "POST" in r.headers.get("access-control-allow-methods", "").upper(), r.headers
    allowed_headers = r.headers.get("access-control-allow-headers", "").lower()
    assert "authorization" in allowed_headers and "content-type" in allowed_headers, r.headers
    r = api(main, "OPTIONS", "/v1/chat/completions", headers={**preflight, "Origin": FOREIGN_ORIGIN})
    assert r.headers.get("access-control-allow-origin") in (None, ""), f"a foreign origin was allowed: {r.headers}"
    assert r.headers.get("access-control-allow-origin") != "*"
    # Actual requests.
    r = api(main, "GET", "/v1/models", a.key, headers={"Origin": ALLOWED_ORIGIN})
    assert r.status_code == 200 and r.headers.get("access-control-allow-origin") == ALLOWED_ORIGIN, r.headers
    r = api(main, "GET", "/v1/models", a.key, headers={"Origin": FOREIGN_ORIGIN})
    assert r.headers.get("access-control-allow-origin") in (None, ""), r.headers
    r = api(main, "GET", "/v1/models", headers={"Origin": ALLOWED_ORIGIN})   # 401 is readable by the page too
    assert r.status_code == 401


def test_oversize_body_is_413(world: World, openai_schemas: OpenAISchemas):
    main, a = world.instance, world.a
    before = main.counts()
    big = "x" * (MAX_BODY_BYTES + 1024)
    for method, path, body in (
        ("POST", "/v1/batches", {"prompt": big, "models": ["fake"]}),
        ("PATCH", f"/v1/conversations/{world.objects['conversation']}", {"title": big}),
        ("POST", "/v1/api-keys", {"name": big}),
        ("POST", "/v1/admin/users", {"email": "x@example.com", "password": big}),
    ):
        credential = admin_credential(main) if path.startswith("/v1/admin") else a.key
        r = api(main, method, path, credential, json=body)
        assert r.status_code == 413, describe(r)
        openai_schemas.assert_valid("ErrorResponse", r.json())
        assert big[:100] not in r.text
    assert main.counts() == before


def test_chat_keeps_its_own_body_limit(world: World):
    """Chat bodies may carry inline images: /v1/chat/completions accepts JSON up to
    max(http.max_body_bytes, 4 x files.max_bytes) (ChatCompletionsController), which accounts must
    not lower."""
    main, a = world.instance, world.a
    chat_limit = max(MAX_BODY_BYTES, 4 * MAX_FILE_BYTES)
    assert chat_limit > MAX_BODY_BYTES + 20000
    content = f"{unique_tag()} [[fake tokens=2]] " + "w " * ((MAX_BODY_BYTES + 10000) // 2)
    r = api(main, "POST", "/v1/chat/completions", a.key, json=chat_body(content))
    assert r.status_code == 200, f"a {len(content)}-byte chat body (chat limit {chat_limit}): {describe(r)}"
    r = api(main, "POST", "/v1/chat/completions", a.key, json=chat_body("w " * (chat_limit // 2 + 100)))
    assert_error(r, 413)


# A 500 cannot be provoked from outside: Tests/ChorusHTTPTests/AccountsTests.swift checks that an
# internal error's body carries no detail; every error body of the matrix is checked here.


# --------------------------------------------------------------------------------------------
# 10. Auth off; the first run


def test_auth_disabled(noauth: Chorus):
    output = "\n".join(noauth.process.stdout_lines) + "\n" + noauth.process.stderr_text()
    if "authentication is disabled" not in output.lower():
        time.sleep(1)
        output = "\n".join(noauth.process.stdout_lines) + "\n" + noauth.process.stderr_text()
    assert "authentication is disabled" in output.lower(), noauth.process.describe()
    assert noauth.api_key is None
    assert api(noauth, "GET", "/v1/models").status_code == 200
    r = api(noauth, "POST", "/v1/chat/completions", json=chat_body(f"{unique_tag()} [[fake tokens=2]]"))
    assert r.status_code == 200 and r.json()["choices"][0]["message"]["content"] == answer(2), describe(r)
    assert api(noauth, "GET", "/v1/admin/queues").status_code == 200
    assert api(noauth, "GET", "/v1/admin/workers").status_code == 200
    assert api(noauth, "GET", f"/v1/conversations/{r.json()['conversation_id']}").status_code == 200
    # SECURITY.md: `me` answers "auth": "disabled" when accounts are off.
    me = api(noauth, "GET", "/v1/auth/me")
    assert me.status_code == 200 and me.json()["auth"] == "disabled", describe(me)


def test_first_run_prints_the_administrator_password(chorus_bin: str, fake_upstream: FakeUpstream,
                                                     tmp_path_factory: pytest.TempPathFactory):
    email = f"root-{unique_tag()}@example.com"
    instance = start("firstrun", chorus_bin, fake_upstream, tmp_path_factory,
                     {"auth": {"bootstrap_admin_email": email}}, admin_password=None)
    workdir = instance.workdir
    try:
        lines = [l for l in instance.process.stdout_lines if l.startswith(FIRST_ADMIN_PREFIX)]
        assert len(lines) == 1, instance.process.stdout_lines
        match = re.fullmatch(r"chorus first administrator: (\S+) password (\S+) \(shown once\)", lines[0])
        assert match and match.group(1) == email, lines[0]
        password = match.group(2)
        assert len(password) >= 12 and password == instance.admin_password
        assert password not in instance.process.stderr_text(), "the first password went to the log (stderr)"
        me = api(instance, "GET", "/v1/auth/me", instance.api_key).json()
        assert me["user"]["role"] == "admin"
    finally:
        stopped_on_purpose(instance)
    # `chorus user create` adds a user (password from standard input).
    cli_email = f"cli-{unique_tag()}@example.com"
    cli_password = new_password()
    done = subprocess.run([chorus_bin, "user", "create", "--email", cli_email, "--role", "user",
                           "--config", str(instance.config_path)],
                          input=cli_password + "\n", capture_output=True, text=True, timeout=60, cwd=workdir)
    assert done.returncode == 0, f"chorus user create: {done.returncode}\n{done.stdout}\n{done.stderr[-2000:]}"
    assert cli_password not in done.stdout + done.stderr
    # The second start creates no administrator and prints no password.
    again = start_chorus(chorus_bin, workdir, fake_model_yaml(fake_upstream.base_url), admin_password=None,
                         sign_in=False, name="chorus-firstrun-again",
                         config={"auth": {"bootstrap_admin_email": email}})
    STARTED.append(Started("firstrun-again", again))
    again.admin_password = password
    time.sleep(0.5)
    assert not [l for l in again.process.stdout_lines if l.startswith(FIRST_ADMIN_PREFIX)], again.process.stdout_lines
    assert login(again, email, password).status_code == 200
    assert login(again, ADMIN_EMAIL, password).status_code == 401
    token = bearer_login(again, cli_email, cli_password)
    assert api(again, "GET", "/v1/auth/me", token).json()["user"]["role"] == "user"


# --------------------------------------------------------------------------------------------
# 11. LAST: no secret in any database, data folder or output


def test_zz_no_secret_is_stored_or_logged():
    assert STARTED, "no instance was started"
    assert len(LEDGER.secrets) >= 5, LEDGER.secrets
    for started in STARTED:
        stopped_on_purpose(started.instance)
    needles = {value: what for value, what in LEDGER.secrets.items()}
    findings: list[str] = []
    for started in STARTED:
        instance = started.instance
        # Every table, every column.
        if instance.db_path.exists():
            connection = sqlite3.connect(f"file:{instance.db_path}?mode=ro", uri=True, timeout=10)
            try:
                tables = [row[0] for row in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
                for table in tables:
                    cursor = connection.execute(f'SELECT * FROM "{table}"')
                    columns = [d[0] for d in cursor.description]
                    for row in cursor:
                        for column, value in zip(columns, row):
                            if isinstance(value, bytes):
                                value = value.decode("utf-8", "replace")
                            if not isinstance(value, str):
                                continue
                            for needle, what in needles.items():
                                if needle in value:
                                    findings.append(f"{started.name}: table {table}.{column} holds a {what}")
            finally:
                connection.close()
        # Every file of its folder (the database files, logs, stderr).
        for path in sorted(p for p in (instance.workdir or instance.data_dir).rglob("*") if p.is_file()):
            data = path.read_bytes()
            for needle, what in needles.items():
                if needle.encode() in data:
                    findings.append(f"{started.name}: file {path.name} holds a {what}")
        # Its standard output (the first-run line is the one place a password may be shown).
        stdout = "\n".join(l for l in instance.process.stdout_lines
                           if not (started.stdout_may_hold_admin_password and l.startswith(FIRST_ADMIN_PREFIX)))
        for needle, what in needles.items():
            if needle in stdout:
                findings.append(f"{started.name}: standard output holds a {what}")
    assert not findings, f"secrets found ({len(needles)} secrets searched):\n" + "\n".join(sorted(set(findings)))
