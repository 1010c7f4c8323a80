"""Deployments in the distributed shape (issue 26): two gateways and a worker over real Redis and
PostgreSQL, deployments as separate fake-upstream processes. A breaker opened on one gateway is
skipped by the other within a second, without that one ever calling the dead deployment; the
response cache is shared through Redis."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from conftest import FAKE_TIMEOUTS, FakeUpstream, ManagedProcess, unique_tag, wait_until
from distributed import Cluster, cluster, postgres_server, redis_server  # noqa: F401 - fixtures by name



def start_fake(fake_upstream_bin: str, log_dir: Path, name: str) -> FakeUpstream:
    process = ManagedProcess(name, [fake_upstream_bin, "--port", "0"], log_dir)
    return FakeUpstream(url=process.listening_url("fake-upstream listening on "), process=process)


def deployment_state(gateway, key: str) -> dict:
    response = gateway.http.get("/v1/admin/deployments")
    assert response.status_code == 200, response.text
    return {d["key"]: d for d in response.json()["data"]}[key]


def test_a_dead_deployment_is_skipped_by_every_gateway_and_the_cache_is_shared(
        cluster: Cluster, fake_upstream_bin: str, tmp_path: Path) -> None:
    doomed = start_fake(fake_upstream_bin, tmp_path, "fake-doomed")
    healthy = start_fake(fake_upstream_bin, tmp_path, "fake-healthy")
    try:
        cluster.extra_models = f"""\
  pair:
    provider: openai
    upstream_model: fake-model
    timeouts: {FAKE_TIMEOUTS}
    retry_backoff_seconds: 0.05
    deployments:
      - {{base_url: {doomed.base_url}}}
      - {{base_url: {healthy.base_url}}}
    breaker: {{failures: 1, cooldown_seconds: 60}}
  remembered:
    provider: openai
    base_url: {healthy.base_url}
    upstream_model: fake-model
    timeouts: {FAKE_TIMEOUTS}
    cache: {{ttl_seconds: 60}}
  slot-a: {{provider: openai, base_url: {healthy.base_url}, upstream_model: fake-model}}
  slot-b: {{provider: openai, base_url: {healthy.base_url}, upstream_model: fake-model}}
  slot-c: {{provider: openai, base_url: {healthy.base_url}, upstream_model: fake-model}}
"""
        cluster.start(gateways=2, workers=("w1", "w2"))
        first, second = cluster.gateways

        doomed.process.proc.kill()
        doomed.process.proc.wait(timeout=10)
        # The first gateway meets the dead deployment (each such call is retried on the other and
        # succeeds) until its breaker opens.
        for _ in range(40):
            r = first.http.post("/v1/chat/completions", json={
                "model": "pair", "messages": [{"role": "user", "content": f"on the first {unique_tag()}"}]})
            assert r.status_code == 200, r.text
            if deployment_state(first, "pair/0")["state"] == "open":
                break
        opened_at = time.monotonic()
        assert deployment_state(first, "pair/0")["state"] == "open"
        # The second gateway never called it, and skips it all the same.
        wait_until(lambda: deployment_state(second, "pair/0")["state"] == "open", timeout=3,
                   message="the second gateway to see the breaker the first opened")
        assert time.monotonic() - opened_at < 1.5
        assert deployment_state(second, "pair/0")["consecutive_failures"] == 0
        for _ in range(5):
            r = second.http.post("/v1/chat/completions", json={
                "model": "pair", "messages": [{"role": "user", "content": f"on the second {unique_tag()}"}]})
            assert r.status_code == 200, r.text
            assert r.headers["x-chorus-deployment"] == "pair/1"
        assert deployment_state(second, "pair/0")["recent_calls"] == 0, "no call may reach the dead deployment"
        # A queued task on the worker skips it too.
        batch = first.submit_batch(f"queued {unique_tag()}", ["pair"])
        task = first.wait_task(batch["task_ids"][0], timeout=30)
        assert task["state"] == "SUCCESS", task

        # One gateway's answer is the other's cache hit.
        question = f"shared cache {unique_tag()}"
        before = healthy.stats()["requests"]
        body = {"model": "remembered", "messages": [{"role": "user", "content": question}]}
        miss = first.http.post("/v1/chat/completions", json=body)
        hit = second.http.post("/v1/chat/completions", json=body)
        assert (miss.headers["x-chorus-cache"], hit.headers["x-chorus-cache"]) == ("miss", "hit")
        assert hit.json()["choices"][0]["message"]["content"] == miss.json()["choices"][0]["message"]["content"]
        assert healthy.stats()["requests"] == before + 1
        assert cluster.redis.keys(f"{cluster.prefix}:cache:*"), "the distributed cache lives in Redis"

        # A batch's gemini_concurrency holds across workers (slots in Redis).
        wait_until(lambda: healthy.stats()["active_streams"] == 0, timeout=10)
        batch = first.submit_batch(f"[[fake tokens=12 rate=12]] in turn {unique_tag()}", ["slot-a", "slot-b", "slot-c"],
                                   gemini_concurrency=1)
        most = 0

        def all_done() -> bool:
            nonlocal most
            most = max(most, healthy.stats()["active_streams"])
            return all(first.task(t)["state"] == "SUCCESS" for t in batch["task_ids"])
        wait_until(all_done, timeout=60, interval=0.05)
        assert most == 1, f"one of the batch's tasks at a time across both workers, saw {most}"
        assert {cluster.task_row(t)["worker_id"] for t in batch["task_ids"]} <= {"w1", "w2"}

        # Usage from both gateways and the worker adds up in PostgreSQL.
        usage = wait_until(lambda: (lambda rows: rows if sum(r["requests"] for r in rows if r["model"] == "pair") >= 7 else None)(
            second.http.get("/v1/usage", params={"group_by": "model"}).json()["data"]), timeout=5)
        assert any(row["model"] == "remembered" and row["cache_hits"] == 1 for row in usage)
    finally:
        doomed.process.stop()
        healthy.process.stop()
