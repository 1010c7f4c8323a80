"""SkillSpace's AI routes (seeds 000 and 001) end to end, on `chorus serve` and on gateways + workers.

`SkillSpaceClient` is written from the seeds' own front-end code: it reads `POST /api/ai/qwen/` the
way the EventSource handler does (each `data:` line JSON-parsed, `type === 'answer'` appended,
`finish` closes), follows `POST /api/ai/qwen-async/`'s `ws_url` the way `websocket.onmessage`
does, and polls `GET /api/tasks/status/{id}/` the way `pollStatus` does. The fake upstream is
the model (`skillspace.model`).
"""

from __future__ import annotations

import json
import re
import secrets
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from conftest import (FakeUpstream, answer, bearer_session, create_api_key, fake_model_yaml, reasoning_text,
                      start_chorus, unique_tag, wait_until)
from distributed import Cluster, cluster, postgres_server, redis_server  # noqa: F401 - fixtures by name

# The SSE view's line, exactly: `data: {"code":200,"token":…,"type":…}`.
SSE_LINE = re.compile(r'^data: \{"code":200,"token":"(?:[^"\\]|\\.)*","type":"(thinking|answer|finish|error)"\}$')
CELERY_STATES = {"PENDING", "STARTED", "PROGRESS", "SUCCESS", "FAILURE", "REVOKED"}


# --------------------------------------------------------------------------------------------
# A client written from the seeds' front-end code


@dataclass
class SSEStream:
    status_code: int
    headers: httpx.Headers
    lines: list[str] = field(default_factory=list)          # every non-empty line, as sent
    messages: list[dict[str, Any]] = field(default_factory=list)
    body: Any = None                                         # the JSON body of a refusal

    def text(self, kind: str) -> str:
        return "".join(m["token"] for m in self.messages if m["type"] == kind)


@dataclass
class WSFollow:
    messages: list[dict[str, Any]]
    pongs: int

    def text(self, kind: str) -> str:
        return "".join(m["token"] for m in self.messages if m["type"] == kind)


class SkillSpaceClient:
    def __init__(self, base_url: str, headers: dict[str, str]):
        self.base_url = base_url.rstrip("/")
        self.headers = headers

    def qwen_stream(self, prompt: str, session_id: str | None = None, headers: dict[str, str] | None = None) -> SSEStream:
        """`new EventSource('/api/ai/qwen/', {method: 'POST', body})` and its `onmessage`."""
        body: dict[str, Any] = {"prompt": prompt, "stream": True}
        if session_id is not None:
            body["session_id"] = session_id
        with httpx.Client(timeout=httpx.Timeout(60.0)) as client:
            with client.stream("POST", self.base_url + "/api/ai/qwen/", json=body,
                               headers={**self.headers, **(headers or {})}) as response:
                result = SSEStream(response.status_code, response.headers)
                if response.status_code != 200:
                    response.read()
                    result.body = response.json()
                    return result
                for line in response.iter_lines():
                    if not line:
                        continue
                    result.lines.append(line)
                    if line.startswith("data:"):
                        data = json.loads(line[5:].lstrip(" "))
                        result.messages.append(data)
                        if data["type"] in ("finish", "error"):
                            break               # eventSource.close()
        return result

    def qwen(self, prompt: str, session_id: str | None = None) -> httpx.Response:
        body: dict[str, Any] = {"prompt": prompt, "stream": False}
        if session_id is not None:
            body["session_id"] = session_id
        return httpx.post(self.base_url + "/api/ai/qwen/", json=body, headers=self.headers, timeout=60)

    def qwen_async(self, prompt: str, session_id: str | None = None, headers: dict[str, str] | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {"prompt": prompt}
        if session_id is not None:
            body["session_id"] = session_id
        r = httpx.post(self.base_url + "/api/ai/qwen-async/", json=body, headers={**self.headers, **(headers or {})}, timeout=30)
        assert r.status_code == 200, f"POST /api/ai/qwen-async/: {r.status_code} {r.text}"
        body = r.json()
        assert body["code"] == 200 and set(body["data"]) >= {"task_id", "celery_task_id", "ws_url"}, body
        return body["data"]

    def follow(self, ws_url: str, timeout: float = 60, ping: bool = True) -> WSFollow:
        """`new WebSocket(ws_url)`; `onmessage` until `finish` (or `error`), with a heartbeat ping."""
        from websockets.sync.client import connect
        messages: list[dict[str, Any]] = []
        pongs = 0
        deadline = time.monotonic() + timeout
        with connect(ws_url, open_timeout=10, close_timeout=2, additional_headers=self.headers) as websocket:
            if ping:
                websocket.send(json.dumps({"type": "ping"}))
            while True:
                remaining = deadline - time.monotonic()
                assert remaining > 0, f"no finish on {ws_url} within {timeout} s: {messages}"
                try:
                    data = json.loads(websocket.recv(timeout=remaining))
                except Exception as error:
                    raise AssertionError(f"{ws_url} closed after {messages} ({pongs} pongs): {error!r}") from error
                if data.get("type") == "pong":
                    pongs += 1
                    continue
                messages.append(data)
                if data["type"] in ("finish", "error"):
                    break                       # ws.close()
        return WSFollow(messages, pongs)

    def submit(self, task_type: str, **params: Any) -> httpx.Response:
        return httpx.post(self.base_url + "/api/tasks/submit/", json={"task_type": task_type, **params},
                          headers=self.headers, timeout=30)

    def status(self, task_id: str) -> httpx.Response:
        return httpx.get(f"{self.base_url}/api/tasks/status/{task_id}/", headers=self.headers, timeout=30)

    def poll(self, task_id: str, timeout: float = 60) -> dict[str, Any]:
        """`pollStatus`: until SUCCESS or FAILURE; every state seen must be one of Celery's."""
        seen: list[str] = []

        def check() -> dict[str, Any] | None:
            r = self.status(task_id)
            assert r.status_code == 200, f"GET /api/tasks/status/{task_id}/: {r.status_code} {r.text}"
            body = r.json()
            assert set(body) >= {"state", "meta", "result"}, body
            assert body["state"] in CELERY_STATES, body
            seen.append(body["state"])
            return body if body["state"] in ("SUCCESS", "FAILURE", "REVOKED") else None
        return wait_until(check, timeout, interval=0.1, message=f"task {task_id} to end (states seen {seen[-5:]})")


def assert_skillspace_error(r: httpx.Response, status: int) -> dict[str, Any]:
    assert r.status_code == status, f"{r.status_code} {r.text}"
    body = r.json()
    assert body["code"] == status and isinstance(body["message"], str) and body["message"], body
    return body


def assert_ws_refused(client: SkillSpaceClient, ws_url: str, status: int) -> None:
    """A refused WebSocket is accepted and closed at once with 4000 + the HTTP status."""
    from websockets.exceptions import ConnectionClosed
    from websockets.sync.client import connect
    with connect(ws_url, open_timeout=10, close_timeout=2, additional_headers=client.headers) as websocket:
        with pytest.raises(ConnectionClosed) as closed:
            websocket.recv(timeout=10)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 4000 + status, closed.value


def new_user_client(base_url: str, admin_key: str) -> SkillSpaceClient:
    """A second ordinary user, with an API key of its own."""
    email = f"ss-{unique_tag()}@example.com"
    password = secrets.token_urlsafe(18)
    r = httpx.post(base_url + "/v1/admin/users", json={"email": email, "password": password, "role": "user"},
                   headers={"Authorization": f"Bearer {admin_key}"}, timeout=30)
    assert r.status_code == 201, f"POST /v1/admin/users: {r.status_code} {r.text}"
    key = create_api_key(base_url, bearer_session(base_url, email, password))["key"]
    return SkillSpaceClient(base_url, {"Authorization": f"Bearer {key}"})


# --------------------------------------------------------------------------------------------
# What both shapes must do


def check_sse(client: SkillSpaceClient) -> None:
    stream = client.qwen_stream(f"{unique_tag()} hello [[fake reasoning=3 tokens=4]]")
    assert stream.status_code == 200, stream.body
    assert stream.headers["content-type"].startswith("text/event-stream")
    assert stream.headers["cache-control"] == "no-cache"
    for line in stream.lines:
        assert SSE_LINE.match(line), f"not the seed view's line: {line!r}"
    assert stream.lines[-1] == 'data: {"code":200,"token":"","type":"finish"}'
    assert [m["type"] for m in stream.messages] == ["thinking"] * 3 + ["answer"] * 4 + ["finish"]
    assert stream.text("thinking") == reasoning_text(3)
    assert stream.text("answer") == answer(4)

    # Without `stream`: one JSON answer.
    r = client.qwen(f"{unique_tag()} whole [[fake reasoning=2 tokens=3]]")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["code"] == 200 and body["data"]["answer"] == answer(3) and body["data"]["thinking"] == reasoning_text(2), body


def check_sse_failures(client: SkillSpaceClient) -> None:
    # A model that fails before answering: a real error status, in SkillSpace's shape.
    stream = client.qwen_stream(f"{unique_tag()} [[fake status=400]]")
    assert stream.status_code == 400, (stream.status_code, stream.body)
    assert stream.body["code"] == 400 and stream.body["message"], stream.body
    assert stream.body["error"]["code"] == "upstream_rejected", stream.body
    # A failure mid-answer: the tokens so far, then an `error` line.
    stream = client.qwen_stream(f"{unique_tag()} [[fake tokens=10 error_after=2]]")
    assert stream.status_code == 200
    assert [m["type"] for m in stream.messages] == ["answer", "answer", "error"], stream.messages
    assert all(SSE_LINE.match(line) for line in stream.lines), stream.lines
    assert stream.messages[-1]["token"], stream.messages[-1]


def check_sessions(client: SkillSpaceClient, other: SkillSpaceClient, follow_base: SkillSpaceClient) -> None:
    """`session_id` names a conversation of the caller's, its history rebuilt from the database."""
    session = f"session-{unique_tag()}"
    first = client.qwen_stream("first [[fake echo=1]]", session_id=session)
    assert first.text("answer").startswith("echo: 1 | "), first.messages
    second = client.qwen("second [[fake echo=1]]", session_id=session)
    assert second.status_code == 200, second.text
    assert second.json()["data"]["answer"].startswith("echo: 3 | "), second.json()
    assert second.json()["data"]["session_id"] == session
    # The queued path continues the same conversation.
    data = client.qwen_async("third [[fake echo=1]]", session_id=session)
    assert data["session_id"] == session
    followed = follow_base.follow(follow_base_url(follow_base, data["ws_url"]))
    assert followed.text("answer").startswith("echo: 5 | "), followed.messages
    # Another user's equal session_id is another conversation.
    theirs = other.qwen_stream("theirs [[fake echo=1]]", session_id=session)
    assert theirs.text("answer").startswith("echo: 1 | "), theirs.messages
    again = client.qwen("fourth [[fake echo=1]]", session_id=session)
    assert again.json()["data"]["answer"].startswith("echo: 7 | "), again.json()


def follow_base_url(client: SkillSpaceClient, ws_url: str) -> str:
    """The `ws_url`'s path on `client`'s server (another gateway than the one that answered)."""
    base = urlsplit(client.base_url)
    path = urlsplit(ws_url).path
    return f"ws://{base.netloc}{path}"


def check_async(client: SkillSpaceClient, other: SkillSpaceClient, follower: SkillSpaceClient) -> str:
    """The WebSocket flow, a late join, ping/pong, polling, ownership. Returns the task id."""
    data = client.qwen_async(f"{unique_tag()} async [[fake reasoning=2 tokens=5 rate=20]]")
    task_id = data["task_id"]
    assert data["celery_task_id"] == task_id
    assert data["ws_url"] == f"ws://{urlsplit(client.base_url).netloc}/ws/ai/{task_id}/", data
    followed = follower.follow(follow_base_url(follower, data["ws_url"]))
    assert followed.pongs == 1
    assert [m["type"] for m in followed.messages] == ["thinking"] * 2 + ["answer"] * 5 + ["finish"], followed.messages
    for message in followed.messages:
        assert message["code"] == 200 and message["task_id"] == task_id, message
        assert set(message) == {"code", "token", "type", "task_id"}, message
    assert followed.text("thinking") == reasoning_text(2)
    assert followed.text("answer") == answer(5)
    assert followed.messages[-1]["token"] == ""

    # A client that connects after the end gets everything it missed, in order.
    late = client.follow(data["ws_url"], ping=False)
    assert late.messages == followed.messages

    status = client.poll(task_id)
    assert status["state"] == "SUCCESS", status
    assert status["result"]["content"] == answer(5), status

    # Another user cannot see the task: not found, over HTTP and over the WebSocket.
    assert_skillspace_error(other.status(task_id), 404)
    assert_ws_refused(other, follow_base_url(other, data["ws_url"]), 404)
    return task_id


def check_async_failure(client: SkillSpaceClient) -> None:
    data = client.qwen_async(f"{unique_tag()} doomed [[fake tokens=10 error_after=2]]")
    followed = client.follow(data["ws_url"])
    assert [m["type"] for m in followed.messages] == ["answer", "answer", "error"], followed.messages
    error = followed.messages[-1]
    assert error["code"] == 200 and error["task_id"] == data["task_id"] and error["token"], error
    status = client.poll(data["task_id"])
    assert status["state"] == "FAILURE" and status["error"], status


def check_tasks(client: SkillSpaceClient, other: SkillSpaceClient) -> None:
    session = f"export-{unique_tag()}"
    r = client.qwen("to export [[fake tokens=3]]", session_id=session)
    conversation_id = r.json()["data"]["conversation_id"]
    r = client.submit("conversation.export", conversation_id=conversation_id, format="json")
    assert r.status_code == 200, r.text
    task_id = r.json()["task_id"]
    status = client.poll(task_id)
    assert status["state"] == "SUCCESS", status
    assert status["meta"] == {"current": 2, "total": 2}, status
    assert json.dumps(status["result"]).count(answer(3)) == 1, status
    assert_skillspace_error(other.status(task_id), 404)
    assert_skillspace_error(client.status("task_doesnotexist"), 404)
    # Missing fields and undeclared jobs are refused in SkillSpace's shape.
    assert_skillspace_error(client.submit("conversation.export"), 400)
    assert_skillspace_error(httpx.post(client.base_url + "/api/tasks/submit/", json={}, headers=client.headers), 400)
    r = client.submit(f"undeclared-{unique_tag()}", epochs=1)
    assert r.status_code == 404, r.text
    assert_skillspace_error(r, r.status_code)


# --------------------------------------------------------------------------------------------
# chorus serve


@pytest.fixture(scope="module")
def serve(chorus_bin: str, fake_upstream: FakeUpstream, tmp_path_factory: pytest.TempPathFactory):
    instance = start_chorus(chorus_bin, tmp_path_factory.mktemp("skillspace"), fake_model_yaml(fake_upstream.base_url),
                            config={"skillspace": {"model": "fake"}, "http": {"trusted_proxies": ["127.0.0.1"]}})
    try:
        yield instance
    finally:
        instance.close()
        instance.process.stop()


def test_serve_sse_and_json(serve):
    client = SkillSpaceClient(serve.url, serve.auth_headers)
    check_sse(client)
    check_sse_failures(client)


def test_serve_sessions_per_owner(serve):
    client = SkillSpaceClient(serve.url, serve.auth_headers)
    check_sessions(client, new_user_client(serve.url, serve.api_key), client)


def test_serve_async_websocket(serve):
    client = SkillSpaceClient(serve.url, serve.auth_headers)
    check_async(client, new_user_client(serve.url, serve.api_key), client)
    check_async_failure(client)
    # Behind a trusted proxy that says https, the WebSocket URL is wss://.
    data = client.qwen_async(f"{unique_tag()} tls [[fake tokens=1]]", headers={"X-Forwarded-Proto": "https"})
    assert data["ws_url"].startswith("wss://") and data["ws_url"].endswith(f"/ws/ai/{data['task_id']}/"), data


def test_serve_tasks(serve):
    client = SkillSpaceClient(serve.url, serve.auth_headers)
    check_tasks(client, new_user_client(serve.url, serve.api_key))


def test_serve_authentication(serve):
    anonymous = SkillSpaceClient(serve.url, {})
    body = assert_skillspace_error(anonymous.qwen("hi"), 401)
    assert body["error"]["code"] == "missing_credentials", body
    assert_skillspace_error(anonymous.status("task_x"), 401)

    # A browser session: the cookie, and the CSRF token on POSTs.
    r = httpx.post(serve.url + "/v1/auth/login", json={"email": "admin@localhost", "password": serve.admin_password}, timeout=30)
    assert r.status_code == 200, r.text
    cookie = {"Cookie": f"chorus_session={r.cookies['chorus_session']}"}
    csrf = r.json()["csrf_token"]
    browser = SkillSpaceClient(serve.url, cookie)
    refused = browser.qwen_stream("no csrf [[fake tokens=2]]")
    assert refused.status_code == 403 and refused.body["code"] == 403 and refused.body["error"]["code"] == "csrf_failed", refused.body
    stream = browser.qwen_stream("with csrf [[fake tokens=2]]", headers={"X-CSRF-Token": csrf})
    assert stream.status_code == 200 and stream.text("answer") == answer(2), stream
    data = browser.qwen_async("ws by cookie [[fake tokens=2]]", headers={"X-CSRF-Token": csrf})
    assert browser.follow(data["ws_url"]).text("answer") == answer(2)
    assert browser.poll(data["task_id"])["state"] == "SUCCESS"


def test_unconfigured_model_is_a_clear_error(chorus_bin: str, fake_upstream: FakeUpstream, tmp_path):
    # No `skillspace.model` and no local model: nothing answers, and the error says what to set.
    instance = start_chorus(chorus_bin, tmp_path, fake_model_yaml(fake_upstream.base_url))
    try:
        body = assert_skillspace_error(SkillSpaceClient(instance.url, instance.auth_headers).qwen("hi"), 503)
        assert "skillspace.model" in body["message"], body
    finally:
        instance.close()
        instance.process.stop()


# --------------------------------------------------------------------------------------------
# Gateways + workers


def test_distributed(cluster: Cluster):
    cluster.extra_config = {"skillspace": {"model": "fake-a"}}
    cluster.start(gateways=2, workers=("w1",))
    g1, g2 = cluster.gateways
    client = SkillSpaceClient(g1.url, {"Authorization": f"Bearer {cluster.api_key}"})
    on_g2 = SkillSpaceClient(g2.url, {"Authorization": f"Bearer {cluster.api_key}"})
    other = new_user_client(g1.url, cluster.api_key)
    check_sse(client)
    check_sessions(client, other, on_g2)
    # Submitted on one gateway, followed on the other; the chat task ran on the worker.
    task_id = check_async(client, other, on_g2)
    row = cluster.task_row(task_id)
    assert row["type"] == "chat" and row["worker_id"] == "w1" and row["status"] == "SUCCESS", row
    check_async_failure(client)
    check_tasks(client, other)
    cluster.assert_alive()
