"""Deployments, stickiness, breakers, fallbacks, capacity and aliases (issue 26), embedded shape.

Each deployment is its own real `fake-upstream` process; a dead deployment is a killed process
or a port nothing listens on. Which deployment answered is read from the fakes' own request
counts and from Chorus's `X-Chorus-Model` / `X-Chorus-Deployment` headers and stored metadata.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from pathlib import Path
from typing import Iterator

import httpx
import pytest

from conftest import (FAKE_TIMEOUTS, Chorus, FakeUpstream, ManagedProcess, start_chorus, stream_chat,
                      unique_tag, wait_until)


def start_fake(fake_upstream_bin: str, log_dir: Path, name: str) -> FakeUpstream:
    process = ManagedProcess(name, [fake_upstream_bin, "--port", "0"], log_dir)
    return FakeUpstream(url=process.listening_url("fake-upstream listening on "), process=process)


def closed_port_url() -> str:
    """A loopback URL nothing listens on (connection refused)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1"


@pytest.fixture(scope="module")
def fakes(fake_upstream_bin: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[FakeUpstream]]:
    log_dir = tmp_path_factory.mktemp("routing-fakes")
    started = [start_fake(fake_upstream_bin, log_dir, f"fake-{i}") for i in range(3)]
    yield started
    for fake in started:
        fake.process.stop()


@pytest.fixture(scope="module")
def unanswered_port() -> Iterator[int]:
    """A port whose listen queue is full: a new connection's SYN goes unanswered (connect hangs)."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(0)
    port = server.getsockname()[1]
    fillers = []
    for _ in range(4):
        filler = socket.socket()
        filler.setblocking(False)
        filler.connect_ex(("127.0.0.1", port))
        fillers.append(filler)
    time.sleep(0.2)
    yield port
    for filler in fillers:
        filler.close()
    server.close()


@pytest.fixture(scope="module")
def routed(chorus_bin: str, fakes: list[FakeUpstream], unanswered_port: int,
           tmp_path_factory: pytest.TempPathFactory) -> Iterator[Chorus]:
    a, b, c = fakes
    dead = closed_port_url()
    models = f"""\
  pair:
    provider: openai
    upstream_model: fake-model
    timeouts: {FAKE_TIMEOUTS}
    retry_backoff_seconds: 0.05
    deployments:
      - {{base_url: {a.base_url}}}
      - {{base_url: {b.base_url}, weight: 2}}
    breaker: {{failures: 1, cooldown_seconds: 60}}
    aliases: [pair-alias]
  doomed:
    provider: openai
    upstream_model: fake-model
    timeouts: {FAKE_TIMEOUTS}
    retry_backoff_seconds: 0.05
    deployments:
      - {{base_url: {dead}}}
      - {{base_url: {closed_port_url()}}}
    fallbacks: [rescue]
  rescue:
    provider: openai
    base_url: {c.base_url}
    upstream_model: fake-model
    timeouts: {FAKE_TIMEOUTS}
  narrow:
    provider: openai
    upstream_model: fake-model
    timeouts: {FAKE_TIMEOUTS}
    deployments:
      - {{base_url: {c.base_url}, max_concurrency: 1}}
    queue: {{max_waiting: 4, max_wait_seconds: 1}}
  cached:
    provider: openai
    base_url: {c.base_url}
    upstream_model: fake-model
    timeouts: {FAKE_TIMEOUTS}
    cache: {{ttl_seconds: 60}}
    price: {{prompt_per_million: 1000, completion_per_million: 2000}}
  refuser:
    provider: openai
    base_url: {c.base_url}
    upstream_model: fake-model
    timeouts: {FAKE_TIMEOUTS}
    refusal_patterns: ["(?i)i cannot help"]
    fallbacks: [rescue]
  slot-a: {{provider: openai, base_url: {b.base_url}, upstream_model: fake-model}}
  slot-b: {{provider: openai, base_url: {b.base_url}, upstream_model: fake-model}}
  slot-c: {{provider: openai, base_url: {b.base_url}, upstream_model: fake-model}}
  hasty:
    provider: openai
    base_url: http://127.0.0.1:{unanswered_port}/v1
    upstream_model: fake-model
    timeouts: {{connect: 0.5, first_token: 20, between_tokens: 20, total: 60}}
    retries: 0
"""
    instance = start_chorus(chorus_bin, tmp_path_factory.mktemp("routing"), models)
    yield instance
    instance.close()
    instance.process.stop()


def chat(chorus: Chorus, content: str, model: str, stream: bool = False, **extra) -> tuple[int, httpx.Headers]:
    """Status and headers of a chat call; a streamed one on its own connection, read to [DONE]."""
    if not stream:
        response = chorus.chat(content, model=model, **extra)
        return response.status_code, response.headers
    result = stream_chat(chorus, {"model": model, "messages": [{"role": "user", "content": content}], **extra})
    assert result.status_code != 200 or result.done, result.events[-3:]
    return result.status_code, result.headers


def requests_of(fake: FakeUpstream) -> int:
    return fake.stats()["requests"]


def deployments(chorus: Chorus) -> dict[str, dict]:
    response = chorus.http.get("/v1/admin/deployments")
    assert response.status_code == 200, response.text
    return {d["key"]: d for d in response.json()["data"]}


def test_a_conversation_stays_on_its_deployment(routed: Chorus, fakes: list[FakeUpstream]) -> None:
    first = routed.chat(f"sticky {unique_tag()}", model="pair")
    assert first.status_code == 200, first.text
    conversation = first.headers["x-conversation-id"]
    deployment = first.headers["x-chorus-deployment"]
    assert deployment in ("pair/0", "pair/1")
    assert first.headers["x-chorus-model"] == "pair"
    for turn in range(5):
        status, headers = chat(routed, f"turn {turn}", "pair", stream=turn % 2 == 1, conversation_id=conversation)
        assert status == 200
        assert headers["x-chorus-deployment"] == deployment, "a conversation's turns must stay on one deployment"
    rows = routed.assistant_rows(conversation)
    assert {json.loads(row["metadata"])["deployment"] for row in rows} == {deployment}


def test_calls_spread_over_the_deployments_then_a_killed_one_is_skipped(routed: Chorus, fakes: list[FakeUpstream]) -> None:
    a, b, _ = fakes
    before = (requests_of(a), requests_of(b))
    served = [routed.chat(f"spread {unique_tag()}", model="pair").headers["x-chorus-deployment"] for _ in range(24)]
    assert set(served) == {"pair/0", "pair/1"}, "weighted spread must use both deployments"
    assert requests_of(a) - before[0] == served.count("pair/0")
    assert requests_of(b) - before[1] == served.count("pair/1")
    assert served.count("pair/1") > served.count("pair/0") / 2, "weight 2 must not get fewer than weight 1 by far"

    a.process.proc.kill()
    a.process.proc.wait(timeout=10)
    # Every request after the kill succeeds: the first that meets the dead one is retried on the
    # other, and opens its breaker (failures: 1); later ones skip it.
    for i in range(10):
        status, headers = chat(routed, f"after kill {unique_tag()}", "pair", stream=i % 2 == 0)
        assert status == 200
        assert headers["x-chorus-deployment"] == "pair/1"
    state = deployments(routed)
    assert state["pair/0"]["state"] == "open"
    assert state["pair/0"]["consecutive_failures"] >= 1
    assert state["pair/1"]["state"] == "closed"
    assert state["pair/1"]["recent_calls"] >= 10


def test_a_fallback_answers_when_every_deployment_fails_first(routed: Chorus, fakes: list[FakeUpstream]) -> None:
    rescue = fakes[2]
    before = requests_of(rescue)
    response = routed.chat(f"fall back {unique_tag()}", model="doomed")
    assert response.status_code == 200, response.text
    assert response.headers["x-chorus-model"] == "rescue"
    assert response.json()["model"] == "doomed", "the answer keeps the model the client asked for"
    streamed = stream_chat(routed, {"model": "doomed", "stream": True,
                                    "messages": [{"role": "user", "content": f"fall back {unique_tag()}"}]})
    assert streamed.status_code == 200
    assert streamed.headers["x-chorus-model"] == "rescue"
    assert streamed.content
    assert requests_of(rescue) == before + 2
    rows = routed.assistant_rows(response.headers["x-conversation-id"])
    metadata = json.loads(rows[-1]["metadata"])
    assert metadata["served_model"] == "rescue"
    assert metadata["deployment"] == "rescue/0"


def test_over_capacity_waits_then_gets_429_with_retry_after(routed: Chorus) -> None:
    # One slot: a slow stream holds it; a second call waits its second and is turned away.
    slow_done = threading.Event()

    def slow() -> None:
        try:
            chat(routed, f"[[fake tokens=30 rate=10]] slow {unique_tag()}", "narrow", stream=True)
        finally:
            slow_done.set()

    thread = threading.Thread(target=slow)
    thread.start()
    wait_until(lambda: deployments(routed)["narrow/0"]["in_flight"] == 1, timeout=10)
    started = time.monotonic()
    response = routed.chat(f"squeezed {unique_tag()}", model="narrow")
    assert response.status_code == 429, response.text
    assert time.monotonic() - started >= 0.9, "the call must wait for a slot before giving up"
    assert int(response.headers["retry-after"]) >= 1
    assert response.json()["error"]["code"] == "rate_limit_exceeded"
    thread.join(timeout=30)
    assert slow_done.is_set()
    assert routed.chat(f"room again {unique_tag()}", model="narrow").status_code == 200


def test_a_waiting_call_takes_the_slot_when_it_frees(routed: Chorus) -> None:
    def slow() -> None:
        chat(routed, f"[[fake tokens=4 rate=10]] short {unique_tag()}", "narrow", stream=True)

    thread = threading.Thread(target=slow)
    thread.start()
    wait_until(lambda: deployments(routed)["narrow/0"]["in_flight"] == 1, timeout=10)
    response = routed.chat(f"patient {unique_tag()}", model="narrow")
    assert response.status_code == 200, response.text
    thread.join(timeout=30)


def test_aliases_are_listed_and_answer(routed: Chorus) -> None:
    listed = [m["id"] for m in routed.http.get("/v1/models").json()["data"]]
    assert "pair" in listed and "pair-alias" in listed
    response = routed.chat(f"by alias {unique_tag()}", model="pair-alias")
    assert response.status_code == 200, response.text
    assert response.json()["model"] == "pair-alias"
    assert response.headers["x-chorus-model"] == "pair"
    conversation = routed.query("SELECT model FROM conversations WHERE id = ?", (response.headers["x-conversation-id"],))
    assert conversation[0]["model"] == "pair", "an alias is stored as the model it names"


def test_a_cached_request_makes_no_second_upstream_call(routed: Chorus, fakes: list[FakeUpstream]) -> None:
    fake = fakes[2]
    question = f"[[fake tokens=7 reasoning=3]] cache me {unique_tag()}"
    before = requests_of(fake)
    first = routed.chat(question, model="cached")
    assert first.status_code == 200, first.text
    assert first.headers["x-chorus-cache"] == "miss"
    second = routed.chat(question, model="cached")
    assert second.status_code == 200, second.text
    assert second.headers["x-chorus-cache"] == "hit"
    assert requests_of(fake) == before + 1, "a hit must not call the upstream"
    a, b = first.json()["choices"][0]["message"], second.json()["choices"][0]["message"]
    assert (a["content"], a.get("reasoning_content")) == (b["content"], b.get("reasoning_content"))
    assert second.json()["usage"] == first.json()["usage"]
    assert second.json()["id"] != first.json()["id"]

    # Streamed from the cache: a normal stream, ending in [DONE].
    streamed = stream_chat(routed, {"model": "cached", "messages": [{"role": "user", "content": question}],
                                    "stream_options": {"include_usage": True}})
    assert streamed.status_code == 200 and streamed.done
    assert streamed.headers["x-chorus-cache"] == "hit"
    assert streamed.content == a["content"]
    assert streamed.reasoning == a["reasoning_content"]
    assert requests_of(fake) == before + 1

    # Cache-Control: no-cache asks the model again; temperature > 0 is not cached.
    fresh = routed.http.post("/v1/chat/completions", headers={"Cache-Control": "no-cache"},
                             json={"model": "cached", "messages": [{"role": "user", "content": question}]})
    assert fresh.headers["x-chorus-cache"] == "miss"
    assert requests_of(fake) == before + 2
    warm = f"warm {unique_tag()}"
    for _ in range(2):
        r = routed.chat(warm, model="cached", temperature=0.7)
        assert r.headers["x-chorus-cache"] == "miss"
    assert requests_of(fake) == before + 4

    # The hit is stored as an answer of its own, marked as from the cache.
    rows = routed.assistant_rows(second.headers["x-conversation-id"])
    assert json.loads(rows[-1]["metadata"])["cache"] == "hit"


def test_a_request_may_opt_into_the_cache(routed: Chorus, fakes: list[FakeUpstream]) -> None:
    fake = fakes[2]
    question = f"opt in {unique_tag()}"
    before = requests_of(fake)
    for expected in ("miss", "hit"):
        r = routed.chat(question, model="rescue", cache={"ttl_seconds": 30})
        assert r.status_code == 200, r.text
        assert r.headers["x-chorus-cache"] == expected
    assert requests_of(fake) == before + 1
    assert "cache" not in fake.requests(1)[-1], "Chorus's own `cache` field must not go upstream"


def test_a_refusal_is_marked(routed: Chorus) -> None:
    r = routed.chat("[[fake echo=1]] I cannot help with that", model="refuser")
    assert r.status_code == 200, r.text
    rows = routed.assistant_rows(r.headers["x-conversation-id"])
    metadata = json.loads(rows[-1]["metadata"])
    assert metadata["refused"] is True
    ok = routed.chat("[[fake echo=1]] happy to help", model="refuser")
    assert "refused" not in json.loads(routed.assistant_rows(ok.headers["x-conversation-id"])[-1]["metadata"])


def test_a_refused_task_tries_its_fallback(routed: Chorus, fakes: list[FakeUpstream]) -> None:
    r = routed.http.post("/v1/batches", json={"prompt": "[[fake echo=1]] I cannot help, says the first", "models": ["refuser"]})
    assert r.status_code == 202, r.text
    task_id = r.json()["task_ids"][0]
    state: dict = {}

    def done() -> bool:
        nonlocal state
        state = routed.http.get(f"/v1/tasks/{task_id}").json()
        return state["state"] in ("SUCCESS", "FAILURE")
    wait_until(done, timeout=30)
    assert state["state"] == "SUCCESS", state
    assert state["result"]["served_model"] == "rescue"
    events = routed.http.get(f"/v1/tasks/{task_id}/events", headers={"Accept": "application/json"})
    rows = routed.query("SELECT metadata FROM messages WHERE turn_id = ? AND role = 'assistant'", (task_id,))
    assert len(rows) == 1, "one answer per turn: the fallback's replaces the refusal"
    metadata = json.loads(rows[0]["metadata"])
    assert metadata["refused_by"] == ["refuser"]
    assert metadata["served_model"] == "rescue"


def test_usage_adds_up_tokens_cache_hits_and_cost(routed: Chorus) -> None:
    question = f"[[fake tokens=5]] priced {unique_tag()}"
    for _ in range(3):
        assert routed.chat(question, model="cached").status_code == 200
    own = routed.http.get("/v1/usage", params={"group_by": "model"})
    assert own.status_code == 200, own.text
    rows = {row["model"]: row for row in own.json()["data"]}
    cached = rows["cached"]
    assert cached["requests"] >= 3
    assert cached["cache_hits"] >= 2
    assert cached["completion_tokens"] > 0 and cached["prompt_tokens"] > 0
    # 1000 $/M prompt, 2000 $/M completion; cache hits are free.
    assert cached["cost"] > 0
    assert "rescue" in rows and rows["rescue"]["cost"] is None, "a model without a price has no cost"

    everyone = routed.http.get("/v1/admin/usage", params={"group_by": "user,key,model"})
    assert everyone.status_code == 200, everyone.text
    keys = {row["api_key_id"] for row in everyone.json()["data"] if row["model"] == "cached"}
    assert routed.admin_key_id in keys
    by_day = routed.http.get("/v1/usage").json()["data"]
    assert all(len(row["day"]) == 10 for row in by_day)
    bad = routed.http.get("/v1/usage", params={"group_by": "user"})
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "group_by"


def test_each_model_has_its_own_connect_timeout(routed: Chorus) -> None:
    # The other models allow 5 s to connect; this one 0.5 s, and its call gives up after that.
    started = time.monotonic()
    r = routed.chat(f"nobody home {unique_tag()}", model="hasty")
    elapsed = time.monotonic() - started
    assert r.status_code == 504, r.text
    assert r.json()["error"]["code"] == "upstream_timeout_connect"
    assert elapsed < 4, f"gave up after {elapsed:.1f} s, not the model's 0.5 s"


@pytest.mark.parametrize("limit", [1, None])
def test_a_batch_runs_at_most_gemini_concurrency_tasks_at_once(routed: Chorus, fakes: list[FakeUpstream], limit) -> None:
    fake = fakes[1]
    wait_until(lambda: fake.stats()["active_streams"] == 0, timeout=10)
    body = {"prompt": f"[[fake tokens=12 rate=12]] slowly {unique_tag()}", "models": ["slot-a", "slot-b", "slot-c"]}
    if limit is not None:
        body["gemini_concurrency"] = limit
    r = routed.http.post("/v1/batches", json=body)
    assert r.status_code == 202, r.text
    task_ids = r.json()["task_ids"]
    most = 0

    def done() -> bool:
        nonlocal most
        most = max(most, fake.stats()["active_streams"])
        return all(routed.http.get(f"/v1/tasks/{t}").json()["state"] == "SUCCESS" for t in task_ids)
    wait_until(done, timeout=60, interval=0.05)
    if limit is None:
        assert most == 3, "without a cap the three tasks stream at once"
    else:
        assert most == 1, f"at most {limit} of the batch's tasks may run at once, saw {most}"
