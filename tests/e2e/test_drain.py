"""Graceful drain on SIGTERM (docs/OPERATIONS.md), end to end with real processes.

- A worker stopped mid-task hands the task back at once: the other worker finishes it long before
  the task's lease (30 s here) would have run out, with one assistant message.
- A gateway, and embedded `chorus serve`, answer `/readyz` with 503 and refuse new work with a 503,
  `Retry-After` and an OpenAI-shaped error, while a stream in flight still completes; a stream
  still open when `shutdown.grace_seconds` has passed is cut with an SSE error event and its
  partial answer saved.
"""

from __future__ import annotations

import json
import signal
import threading
import time
from typing import Any

import httpx

from conftest import (FakeUpstream, answer, auth_headers, fake_model_yaml, sse_data_lines, start_chorus, unique_tag,
                      wait_until)
from distributed import (  # noqa: F401 - fixtures are found by name in this module
    Cluster,
    Follower,
    cluster,
    postgres_server,
    redis_server,
)


class StreamReader(threading.Thread):
    """A streamed chat completion read in the background: its `data:` payloads as they come."""

    def __init__(self, url: str, body: dict[str, Any], api_key: str | None, path: str = "/v1/chat/completions"):
        super().__init__(daemon=True)
        self.url = url
        self.path = path
        self.body = {**body, "stream": True}
        self.headers = auth_headers(api_key)
        self.status_code: int | None = None
        self.events: list[str] = []
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            with httpx.Client(base_url=self.url, timeout=httpx.Timeout(60.0)) as client:
                with client.stream("POST", self.path, json=self.body, headers=self.headers) as response:
                    self.status_code = response.status_code
                    for data in sse_data_lines(response):
                        self.events.append(data)
        except BaseException as error:  # noqa: BLE001 - checked by the test
            self.error = error

    @property
    def content(self) -> str:
        return "".join((c.get("delta") or {}).get("content") or ""
                       for e in self.events if e != "[DONE]" for c in json.loads(e).get("choices") or [])

    @property
    def errors(self) -> list[dict[str, Any]]:
        return [json.loads(e)["error"] for e in self.events if e != "[DONE]" and "error" in json.loads(e)]

    def wait_for_tokens(self, count: int, timeout: float = 20) -> None:
        wait_until(lambda: self.error is None and len(self.events) >= count + 1, timeout,
                   message=f"{count} tokens on the stream (error: {self.error})")


def assert_refuses_new_work(url: str, api_key: str | None, model: str) -> None:
    """`/readyz` is 503 (draining), and new chat requests and task submissions get a 503 with
    `Retry-After` and an OpenAI-shaped error."""
    with httpx.Client(base_url=url, timeout=httpx.Timeout(10.0), headers=auth_headers(api_key)) as client:
        ready = wait_until(lambda: (lambda r: r if r.status_code == 503 else None)(client.get("/readyz")), 5,
                           interval=0.05, message="/readyz to answer 503 after SIGTERM")
        assert ready.json()["status"] == "draining", ready.text
        chat = client.post("/v1/chat/completions", json={"model": model, "messages": [{"role": "user", "content": "hi"}]})
        batch = client.post("/v1/batches", json={"prompt": "hi", "models": [model]})
        for refused in (chat, batch):
            assert refused.status_code == 503, refused.text
            assert int(refused.headers["retry-after"]) > 0, refused.headers
            error = refused.json()["error"]
            assert error["type"] == "server_error" and error["code"] == "service_unavailable", error
            assert "shutting down" in error["message"], error


# --------------------------------------------------------------------------------------------
# Worker: hand-back


def test_stopped_worker_hands_its_task_back(cluster: Cluster):
    # A long lease: a task left to its lease would wait 30 s before another worker could take it.
    cluster.lease_seconds = 30
    cluster.start(gateways=1, workers=("w1", "w2"))
    (gateway,) = cluster.gateways
    cluster.wait_workers_registered({"w1", "w2"})
    full = answer(40)
    prompt = f"{unique_tag()} hand-back [[fake tokens=40 rate=10]]"
    submitted = gateway.submit_batch(prompt, ["fake-a"])
    task_id = submitted["task_ids"][0]
    follower = Follower("sse", gateway.url, task_id)
    follower.start()
    assert follower.connected.wait(10)
    wait_until(lambda: sum(1 for e in follower.events if e["type"] == "answer") >= 5, 20,
               message="5 answer events on the follower")
    row = cluster.task_row(task_id)
    holder = row["worker_id"]
    survivor = "w2" if holder == "w1" else "w1"

    process = cluster.workers[holder]
    cluster.killed.add(process.pid)      # stopped on purpose
    process.proc.send_signal(signal.SIGTERM)
    # Within the lease: only a hand-back lets the other worker claim the task this early. The
    # stream itself takes 4 s.
    task = gateway.wait_task(task_id, timeout=cluster.lease_seconds - 10)
    assert task["state"] == "SUCCESS", task
    assert task["attempts"] == 2, task
    assert task["result"]["content"] == full, task
    assert cluster.task_row(task_id)["worker_id"] == survivor
    rows = cluster.assistant_rows(task_id)
    assert [(r["content"], r["status"]) for r in rows] == [(full, "complete")], rows
    # The stopped worker exited cleanly, and the followers were told the answer started again.
    assert process.proc.wait(timeout=15) == 0, process.describe()
    follower.join(15)
    assert follower.events[-1]["type"] == "finish", follower.events[-3:]
    assert any(e["type"] == "progress" and (e.get("data") or {}).get("restarted") for e in follower.events), follower.events
    # The handed-back entry was acknowledged: nothing left in the queue.
    wait_until(lambda: cluster.redis.xlen(cluster.queue_key("fake-a")) == 0, 10, message="the queue to be empty")


# --------------------------------------------------------------------------------------------
# Gateway and `chorus serve`: readiness, refusal, streams in flight


def test_stopped_gateway_drains(cluster: Cluster):
    cluster.extra_config = {"shutdown": {"grace_seconds": 30}}
    cluster.start(gateways=2, workers=("w1",))
    g1, g2 = cluster.gateways
    prompt = f"{unique_tag()} gateway drain [[fake tokens=40 rate=10]]"
    stream = StreamReader(g1.url, {"model": "fake-a", "messages": [{"role": "user", "content": prompt}]}, g1.api_key)
    stream.start()
    stream.wait_for_tokens(3)

    cluster.killed.add(g1.process.pid)
    g1.process.proc.send_signal(signal.SIGTERM)
    assert_refuses_new_work(g1.url, g1.api_key, "fake-a")
    assert stream.is_alive(), "the stream ended before the drain could be checked"
    # The other gateway still takes work.
    assert g2.http.get("/readyz").status_code == 200

    stream.join(30)
    assert stream.error is None, stream.error
    assert stream.status_code == 200 and stream.events[-1] == "[DONE]", stream.events[-3:]
    assert stream.content == answer(40) and not stream.errors
    assert g1.process.proc.wait(timeout=15) == 0, g1.process.describe()
    rows = cluster.query("SELECT m.content, m.status FROM messages m JOIN messages u ON u.conversation_id = m.conversation_id "
                         "WHERE u.content = %s AND m.role = 'assistant'", (prompt,))
    assert [(r["content"], r["status"]) for r in rows] == [(answer(40), "complete")], rows


def test_serve_cuts_streams_after_the_grace(chorus_bin: str, fake_upstream: FakeUpstream, tmp_path):
    instance = start_chorus(chorus_bin, tmp_path, fake_model_yaml(fake_upstream.base_url),
                            config={"shutdown": {"grace_seconds": 1}, "skillspace": {"model": "fake"}})
    try:
        prompt = f"{unique_tag()} serve drain [[fake tokens=300 rate=10]]"
        stream = StreamReader(instance.url, {"model": "fake", "messages": [{"role": "user", "content": prompt}]},
                              instance.api_key)
        # SkillSpace's stream of the same engine is cut the same way.
        skill_stream = StreamReader(instance.url, {"prompt": f"{unique_tag()} skill drain [[fake tokens=300 rate=10]]"},
                                    instance.api_key, path="/api/ai/qwen/")
        stream.start()
        skill_stream.start()
        stream.wait_for_tokens(3)
        skill_stream.wait_for_tokens(3)
        instance.process.proc.send_signal(signal.SIGTERM)
        assert_refuses_new_work(instance.url, instance.api_key, "fake")
        # SkillSpace's routes refuse in their own error shape.
        skill = httpx.post(instance.url + "/api/ai/qwen/", json={"question": "hi"}, headers=instance.auth_headers, timeout=10)
        assert skill.status_code == 503 and skill.headers["retry-after"], skill.text
        assert skill.json()["code"] == 503 and skill.json()["error"]["code"] == "service_unavailable", skill.text

        # Cut at the end of the grace: an error event instead of [DONE], the part so far saved.
        stream.join(20)
        assert not stream.is_alive() and stream.error is None, stream.error
        assert stream.events and stream.events[-1] != "[DONE]", stream.events[-3:]
        (error,) = stream.errors
        assert error["code"] == "service_unavailable" and "shutting down" in error["message"], error
        skill_stream.join(10)
        assert not skill_stream.is_alive() and skill_stream.error is None, skill_stream.error
        last = json.loads(skill_stream.events[-1])
        assert last["type"] == "error" and "shutting down" in last["token"], skill_stream.events[-3:]
        assert instance.process.proc.wait(timeout=15) == 0, instance.process.describe()
        rows = instance.query("SELECT m.content, m.status, m.metadata FROM messages m JOIN messages u "
                              "ON u.conversation_id = m.conversation_id WHERE u.content = ? AND m.role = 'assistant'",
                              (prompt,))
        assert len(rows) == 1, [dict(r) for r in rows]
        assert rows[0]["status"] == "partial" and json.loads(rows[0]["metadata"])["reason"] == "shutdown", dict(rows[0])
        assert rows[0]["content"] and answer(300).startswith(rows[0]["content"]) and rows[0]["content"] != answer(300)
        assert rows[0]["content"].startswith(stream.content), (rows[0]["content"], stream.content)
    finally:
        instance.close()
        instance.process.stop()
