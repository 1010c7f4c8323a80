"""The distributed shape end to end: `chorus gateway` ×2 + `chorus worker` ×2 over a real Redis and
a real PostgreSQL (see distributed.py), and the same asynchronous API in embedded `chorus serve`.

Each test gets its own database, Redis prefix, gateways and workers; Redis and PostgreSQL are
started once for the module. Waits are polls with generous deadlines, never timing assertions.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import time
from concurrent.futures import ThreadPoolExecutor

import httpx

from conftest import (FakeUpstream, answer, auth_headers, bearer_session, create_api_key, fake_model_yaml, start_chorus,
                      unique_tag, wait_until)
from distributed import (  # noqa: F401 - fixtures are found by name in this module
    Cluster,
    Follower,
    answer_after_restarts,
    assert_sequence,
    cluster,
    fake_request_count,
    postgres_server,
    read_task_events,
    redis_server,
)


def assert_one_user_message(c: Cluster, conversation_id: str, prompt: str) -> None:
    users = c.query("SELECT content, status FROM messages WHERE conversation_id = %s AND role = 'user'",
                    (conversation_id,))
    assert [(u["content"], u["status"]) for u in users] == [(prompt, "complete")], users


def assert_one_complete_answer(c: Cluster, task_id: str, model: str, content: str) -> dict:
    rows = c.assistant_rows(task_id)
    assert len(rows) == 1, f"expected exactly one assistant message for {task_id}, found {rows}"
    row = rows[0]
    assert row["content"] == content, row
    assert row["model"] == model, row
    assert row["status"] == "complete", row
    return row


# --------------------------------------------------------------------------------------------
# 1. Fan-out across two gateways and two workers


def test_batch_across_gateways_and_workers(cluster: Cluster):
    assert cluster.migrate() != "migrations applied: none (up to date)"
    assert cluster.migrate() == "migrations applied: none (up to date)"
    cluster.start(gateways=2, workers=("w1", "w2"))
    g1, g2 = cluster.gateways
    workers = cluster.wait_workers_registered({"w1", "w2"})
    assert all(w["last_heartbeat_ms_ago"] >= 0 for w in workers), workers

    prompt = f"{unique_tag()} fan-out [[fake tokens=6 rate=20]]"
    models = ["fake-a", "fake-b", "fake-c"]
    submitted = g1.submit_batch(prompt, models)
    batch = g1.wait_batch(submitted["batch_id"], timeout=30)

    tasks = {t["id"]: t for t in batch["tasks"]}
    assert set(tasks) == set(submitted["task_ids"])
    assert sorted(t["model"] for t in tasks.values()) == models
    for task in tasks.values():
        assert task["state"] == "SUCCESS", task
        assert task["result"]["content"] == answer(6), task
        assert task["attempts"] == 1, task
        assert_one_complete_answer(cluster, task["id"], task["model"], answer(6))
    conversation_id = submitted["conversation_id"]
    assert_one_user_message(cluster, conversation_id, prompt)
    assistants = cluster.query("SELECT turn_id, model FROM messages WHERE conversation_id = %s AND role = 'assistant'",
                               (conversation_id,))
    assert sorted((a["turn_id"], a["model"]) for a in assistants) == sorted((t["id"], t["model"]) for t in tasks.values())

    # Any gateway reports the same batch: the state lives in PostgreSQL.
    other = g2.batch(submitted["batch_id"])
    assert other["status"] == "completed"
    assert {t["id"]: (t["state"], t["result"]["content"]) for t in other["tasks"]} == \
        {t["id"]: (t["state"], t["result"]["content"]) for t in tasks.values()}
    # Done entries are acknowledged and deleted: every queue is empty again.
    for model in models:
        wait_until(lambda: cluster.redis.xlen(cluster.queue_key(model)) == 0, 10,
                   message=f"{cluster.queue_key(model)} to be empty")


# --------------------------------------------------------------------------------------------
# 2. A worker killed mid-stream: another takes the task over


def test_killed_worker_task_is_taken_over(cluster: Cluster):
    cluster.start(gateways=2, workers=("w1", "w2"))
    g1, g2 = cluster.gateways
    cluster.wait_workers_registered({"w1", "w2"})
    full = answer(40)
    prompt = f"{unique_tag()} takeover [[fake tokens=40 rate=10]]"
    submitted = g1.submit_batch(prompt, ["fake-a"])
    task_id = submitted["task_ids"][0]

    sse = Follower("sse", g2.url, task_id)
    ws = Follower("ws", g1.url, task_id)
    sse.start()
    ws.start()
    assert sse.connected.wait(10)
    ws.connected.wait(10)

    # Mid-stream: some answer tokens are out (the follower saw them), most are not.
    wait_until(lambda: sum(1 for e in sse.events if e["type"] == "answer") >= 5, 20,
               message="5 answer events on the SSE follower")
    row = cluster.task_row(task_id)
    holder = row["worker_id"]
    assert holder in ("w1", "w2") and row["status"] in ("STARTED", "PROGRESS"), row
    survivor = "w2" if holder == "w1" else "w1"
    cluster.kill_worker(holder)

    task = g2.wait_task(task_id, timeout=45)
    assert task["state"] == "SUCCESS", task
    assert task["attempts"] == 2, task
    assert task["result"]["content"] == full, task
    assert cluster.task_row(task_id)["worker_id"] == survivor

    # Exactly one assistant message for the task, complete, whatever the dead worker checkpointed.
    assert_one_complete_answer(cluster, task_id, "fake-a", full)
    assert_one_user_message(cluster, submitted["conversation_id"], prompt)

    # The SSE follower (on the other gateway, opened before the kill) ends with the whole answer.
    events = sse.result(timeout=30)
    assert_sequence(events)
    for raw in sse.sse_events:
        assert raw.id == str(raw.seq) and raw.event == raw.type, raw
    restarts = [e for e in events if e["type"] == "progress" and (e.get("data") or {}).get("restarted") is True]
    assert len(restarts) == 1, f"expected one restarted marker, got {restarts}"
    assert events[-1]["type"] == "finish", events[-3:]
    assert events[-1]["data"]["content"] == full, events[-1]
    assert answer_after_restarts(events) == full
    assert all(e["task_id"] == task_id for e in events)

    # The WebSocket follower (opened before the kill) sees the same events.
    ws_events = ws.result(timeout=30)
    assert ws.pongs == 1, f"expected one pong for one ping, got {ws.pongs}"
    assert ws_events == events, "the WebSocket carried different events than SSE"


# --------------------------------------------------------------------------------------------
# 3. A malformed queue entry is dead-lettered; the queue keeps working


def test_malformed_entry_is_dead_lettered(cluster: Cluster):
    cluster.start(gateways=1, workers=("w1", "w2"))
    (g1,) = cluster.gateways
    cluster.wait_workers_registered({"w1", "w2"})
    entry_id = cluster.redis.cli("XADD", cluster.queue_key("fake-a"), "*", "junk", "1")
    assert "-" in entry_id, entry_id

    def dead_letter():
        data = g1.http.get("/v1/admin/dead-letters").json()["data"]
        return next((d for d in data if d["entry_id"] == entry_id), None)
    letter = wait_until(dead_letter, 20, interval=0.1, message=f"entry {entry_id} in /v1/admin/dead-letters")
    assert letter["queue"] == "fake-a", letter
    assert letter["task_id"] is None, letter
    assert "junk" in letter["payload"], letter
    assert letter["reason"], letter

    rows = cluster.query("SELECT * FROM sys_dead_letters WHERE entry_id = %s", (entry_id,))
    assert len(rows) == 1, rows
    assert rows[0]["stream"] == "fake-a" and rows[0]["task_id"] is None, rows

    dead = cluster.redis.cli("XRANGE", cluster.dead_key("fake-a"), "-", "+")
    assert entry_id in dead.splitlines(), f"{cluster.dead_key('fake-a')} does not hold entry {entry_id}:\n{dead}"
    # It left the queue.
    wait_until(lambda: cluster.redis.xlen(cluster.queue_key("fake-a")) == 0, 10, message="the fake-a queue to be empty")

    # The queue still works.
    prompt = f"{unique_tag()} after junk [[fake tokens=4]]"
    submitted = g1.submit_batch(prompt, ["fake-a"])
    task = g1.wait_task(submitted["task_ids"][0], timeout=30)
    assert task["state"] == "SUCCESS", task
    assert task["result"]["content"] == answer(4)
    assert len(cluster.query("SELECT * FROM sys_dead_letters")) == 1


# --------------------------------------------------------------------------------------------
# 4. An entry delivered twice runs once


def test_duplicate_entry_runs_once(cluster: Cluster, fake_upstream: FakeUpstream):
    # Gateways only at first: the task and a duplicate entry are both queued before any worker reads.
    cluster.start(gateways=1, workers=())
    (g1,) = cluster.gateways
    tag = unique_tag()
    prompt = f"{tag} duplicate [[fake tokens=8 rate=20]]"
    submitted = g1.submit_batch(prompt, ["fake-a"])
    task_id = submitted["task_ids"][0]
    cluster.redis.cli("XADD", cluster.queue_key("fake-a"), "*", "task_id", task_id)
    assert cluster.redis.xlen(cluster.queue_key("fake-a")) == 2

    cluster.start(gateways=0, workers=("w1", "w2"))
    task = g1.wait_task(task_id, timeout=30)
    assert task["state"] == "SUCCESS", task
    assert task["attempts"] == 1, task
    assert task["result"]["content"] == answer(8)
    assert_one_complete_answer(cluster, task_id, "fake-a", answer(8))

    # The duplicate is dropped as done (at the latest when a worker reclaims it after the lease),
    # and nothing ran the task a second time meanwhile.
    wait_until(lambda: cluster.redis.xlen(cluster.queue_key("fake-a")) == 0, 20,
               message="both entries to leave the fake-a queue")
    time.sleep(0.5)
    assert fake_request_count(fake_upstream, tag) == 1, "the fake upstream was asked more than once"
    task = g1.task(task_id)
    assert task["state"] == "SUCCESS" and task["attempts"] == 1, task
    assert len(cluster.assistant_rows(task_id)) == 1


def test_task_cancelled_while_queued_is_never_started(cluster: Cluster, fake_upstream: FakeUpstream):
    # A chat task's entry carries the task, and a worker that gets a fresh entry starts the upstream
    # call while its claim is on the way. An entry that waited (here: no worker was running) may
    # name a task cancelled meanwhile, so its worker claims first and the upstream never hears of it.
    cluster.start(gateways=1, workers=("w1",))
    (g1,) = cluster.gateways
    # One task first, so that the worker's upstream connection is warm (an early start would reach
    # the upstream before its claim came back), then the worker is paused while the next waits.
    warm = g1.submit_batch(f"{unique_tag()} warm-up [[fake tokens=2]]", ["fake-a"])["task_ids"][0]
    assert g1.wait_task(warm, timeout=30)["state"] == "SUCCESS"
    worker = cluster.workers["w1"]
    os.kill(worker.pid, signal.SIGSTOP)
    try:
        tag = unique_tag()
        task_id = g1.submit_batch(f"{tag} cancelled while queued [[fake tokens=4]]", ["fake-a"])["task_ids"][0]
        entry = cluster.redis.cli("XRANGE", cluster.queue_key("fake-a"), "-", "+")
        assert f'"id":"{task_id}"' in entry and tag in entry, f"the entry carries the task: {entry}"
        r = g1.http.post(f"/v1/tasks/{task_id}/cancel")
        assert r.status_code == 200 and r.json()["state"] == "CANCELLED", r.text
        time.sleep(2.5)  # the entry is now older than a worker starts early from
    finally:
        os.kill(worker.pid, signal.SIGCONT)

    wait_until(lambda: cluster.redis.xlen(cluster.queue_key("fake-a")) == 0, 20,
               message="the cancelled task's entry to be dropped")
    time.sleep(0.3)
    assert fake_request_count(fake_upstream, tag) == 0, "the upstream was called for a cancelled task"
    task = g1.task(task_id)
    assert task["state"] == "CANCELLED" and task["attempts"] == 0, task
    assert cluster.assistant_rows(task_id) == []


# --------------------------------------------------------------------------------------------
# 5. Redis restarted (empty) while tasks are queued and running


def test_redis_restart_loses_nothing(cluster: Cluster):
    # One task at a time per worker, six tasks on one queue: when Redis goes away, two tasks run
    # and four wait in the queue that Redis loses.
    cluster.concurrency = 1
    cluster.start(gateways=2, workers=("w1", "w2"))
    g1, g2 = cluster.gateways
    cluster.wait_workers_registered({"w1", "w2"})
    models = ["fake-a", "fake-b", "fake-c"]
    before = [g1.submit_batch(f"{unique_tag()} before restart {i} [[fake tokens=5 rate=5]]", ["fake-a"]) for i in range(6)]
    before_ids = [t for b in before for t in b["task_ids"]]
    wait_until(lambda: sum(cluster.task_row(t)["status"] in ("STARTED", "PROGRESS") for t in before_ids) == 2, 15,
               message="two tasks to run")
    states_at_kill = {t: cluster.task_row(t)["status"] for t in before_ids}
    assert sorted(states_at_kill.values()).count("PENDING") == 4, states_at_kill

    cluster.redis.kill()
    # While Redis is down: not ready, and a submission is still accepted (stored in PostgreSQL).
    # Both checks wait for Redis connections that never come: run them side by side.
    def not_ready(gateway) -> httpx.Response:
        with httpx.Client(base_url=gateway.url, timeout=20, headers=auth_headers(gateway.url)) as client:
            return wait_until(lambda: (lambda r: r if r.status_code == 503 else None)(client.get("/readyz")),
                              30, interval=0.2, message=f"/readyz on {gateway.name} to answer 503 while Redis is down")
    with ThreadPoolExecutor(3) as pool:
        checks = [pool.submit(not_ready, gateway) for gateway in (g1, g2)]
        submission = pool.submit(g2.submit_batch, f"{unique_tag()} during outage [[fake tokens=5 rate=5]]", ["fake-a"])
        for check in checks:
            r = check.result()
            assert r.json() == {"status": "not_ready", "checks": {"database": "ok", "queue": "unavailable"}}, r.text
        during = submission.result()
    time.sleep(1)
    cluster.redis.start()   # empty: no queue streams, no consumer groups, no events

    for gateway in (g1, g2):
        wait_until(lambda: gateway.http.get("/readyz").status_code == 200, 20, interval=0.2,
                   message=f"/readyz on {gateway.name} to answer 200 again")
        body = gateway.http.get("/readyz").json()
        assert body == {"status": "ready", "checks": {"database": "ok", "queue": "ok"}}, body
    after = g2.submit_batch(f"{unique_tag()} after restart [[fake tokens=5 rate=5]]", models)

    batches = {"before": before, "during": [during], "after": [after]}
    final: dict[str, dict] = {}
    deadline = time.monotonic() + 60
    for group in batches.values():
        for batch in group:
            for task_id in batch["task_ids"]:
                final[task_id] = g1.wait_task(task_id, timeout=max(1, deadline - time.monotonic()))

    def summary(group: str) -> str:
        return "\n".join(
            f"  {t}: {final[t]['state']} attempts={final[t]['attempts']} state_at_kill={states_at_kill.get(t, '-')} "
            f"error={json.dumps(final[t]['error'])} content={json.dumps((final[t]['result'] or {}).get('content'))}"
            for b in batches[group] for t in b["task_ids"])

    # Submitted after the restart, and during the outage (queued by the reconciler): all succeed.
    for group in ("after", "during"):
        assert all(final[t]["state"] == "SUCCESS" for b in batches[group] for t in b["task_ids"]), \
            f"tasks submitted {group} the outage did not all succeed:\n{summary(group)}"
    # Accepted before the restart, whether they waited in the lost queue or were running.
    assert all(final[t]["state"] == "SUCCESS" for t in before_ids), \
        f"tasks accepted before Redis restarted did not all succeed:\n{summary('before')}"
    for group in batches.values():
        for batch in group:
            for task in batch["tasks"]:
                assert final[task["id"]]["result"]["content"] == answer(5), final[task["id"]]
                assert_one_complete_answer(cluster, task["id"], task["model"], answer(5))
    # Events flow through the new Redis: a follower replays a finished task's events.
    events = read_task_events(g1.url, after["task_ids"][0], timeout=20)
    assert events[-1].type == "finish" and events[-1].data["data"]["content"] == answer(5), events[-1]


def test_postgres_restart_keeps_serving(cluster: Cluster):
    # Gateways and workers keep their statements prepared on each PostgreSQL connection; a restart
    # ends every connection, and the pools' new connections must prepare them again.
    cluster.start(gateways=1, workers=("w1",))
    gateway = cluster.gateways[0]
    cluster.wait_workers_registered({"w1"})

    def chat(prompt: str) -> tuple[str, str]:
        r = gateway.http.post("/v1/chat/completions", json={"model": "fake-a", "messages": [{"role": "user", "content": prompt}]})
        assert r.status_code == 200, r.text
        return r.headers["x-conversation-id"], r.json()["choices"][0]["message"]["content"]

    def run_task(prompt: str) -> dict:
        task_id = gateway.submit_batch(prompt, ["fake-a"])["task_ids"][0]
        return gateway.wait_task(task_id, timeout=30)

    # Each statement runs more than twice, so it is prepared on the connections that ran it.
    before = [run_task(f"{unique_tag()} before {i} [[fake tokens=3]]") for i in range(3)]
    chats = [chat(f"{unique_tag()} before {i} [[fake tokens=3]]") for i in range(3)]
    assert all(t["state"] == "SUCCESS" for t in before), before

    cluster.restart_postgres()
    wait_until(lambda: gateway.http.get("/readyz").status_code == 200, 30, interval=0.2,
               message="/readyz to answer 200 after PostgreSQL restarted")

    # After it: the same statements, on new connections, work; and nothing stored before is lost.
    after = [run_task(f"{unique_tag()} after {i} [[fake tokens=3]]") for i in range(3)]
    assert [t["state"] for t in after] == ["SUCCESS"] * 3, after
    assert all(t["result"]["content"] == answer(3) for t in after), after
    assert chat(f"{unique_tag()} after [[fake tokens=3]]")[1] == answer(3)
    for task in before:
        assert gateway.task(task["id"])["result"]["content"] == answer(3)
    for conversation, content in chats:
        assert content == answer(3)
        r = gateway.http.get(f"/v1/conversations/{conversation}/history")
        assert r.status_code == 200, r.text
        assert [(m["role"], m["content"]) for m in r.json()["data"]][1] == ("assistant", answer(3)), r.text


# --------------------------------------------------------------------------------------------
# 6. SSE resume on another gateway with Last-Event-ID


def test_sse_resume_on_other_gateway(cluster: Cluster):
    cluster.start(gateways=2, workers=("w1",))
    g1, g2 = cluster.gateways
    submitted = g1.submit_batch(f"{unique_tag()} resume [[fake tokens=30 rate=20]]", ["fake-a"])
    task_id = submitted["task_ids"][0]

    first = read_task_events(g1.url, task_id, limit=5, timeout=30)
    assert [e.seq for e in first] == [1, 2, 3, 4, 5], [e.data for e in first]
    assert g1.task(task_id)["state"] not in ("SUCCESS", "FAILURE", "CANCELLED"), "the task ended too early for this test"
    rest = read_task_events(g2.url, task_id, last_event_id=5, timeout=30)
    assert rest, "nothing after Last-Event-ID: 5"
    union = [e.data for e in first + rest]
    assert_sequence(union)
    for event in first + rest:
        assert event.id == str(event.seq) and event.event == event.type, event
    assert union[-1]["type"] == "finish" and union[-1]["data"]["content"] == answer(30), union[-1]
    assert "".join(e["token"] for e in union if e["type"] == "answer") == answer(30)

    # A late client replays everything from the start, on either gateway.
    for gateway in (g1, g2):
        replay = [e.data for e in read_task_events(gateway.url, task_id, timeout=30)]
        assert replay == union

    # An EventSource reconnects when a stream ends, with the terminal event's id: that stream
    # ends at once and empty. (Held open, its read would time out: keep-alives come every 15 s.)
    for gateway in (g1, g2):
        assert read_task_events(gateway.url, task_id, last_event_id=union[-1]["seq"], timeout=10) == []


# --------------------------------------------------------------------------------------------
# 7. Cancel a running task


def test_cancel_running_task(cluster: Cluster, fake_upstream: FakeUpstream):
    cluster.start(gateways=2, workers=("w1", "w2"))
    g1, g2 = cluster.gateways
    wait_until(lambda: fake_upstream.stats()["active_streams"] == 0, 20, message="no stream left on the fake upstream")
    aborted_before = fake_upstream.stats()["streams_aborted_by_client"]

    submitted = g1.submit_batch(f"{unique_tag()} cancel me [[fake tokens=200 rate=20]]", ["fake-a"])
    task_id = submitted["task_ids"][0]
    follower = Follower("sse", g1.url, task_id)
    follower.start()
    wait_until(lambda: sum(1 for e in follower.events if e["type"] == "answer") >= 5, 20,
               message="5 answer events")
    r = g2.http.post(f"/v1/tasks/{task_id}/cancel")
    assert r.status_code == 200, r.text

    task = g1.wait_task(task_id, timeout=20)
    assert task["state"] == "CANCELLED", task
    events = follower.result(timeout=20)
    replay = [e.data for e in read_task_events(g2.url, task_id, timeout=20)]
    assert replay == events, f"a late client replays other events than the live follower saw:\n" \
        f"live seqs:   {[e['seq'] for e in events]}\nreplay seqs: {[e['seq'] for e in replay]}"
    assert_sequence(events)
    assert events[-1]["type"] == "error", events[-3:]
    assert events[-1]["data"]["type"] == "cancelled", events[-1]

    rows = wait_until(lambda: cluster.assistant_rows(task_id), 10, message="the partial assistant message")
    assert len(rows) == 1, rows
    metadata = json.loads(rows[0]["metadata"])
    assert metadata.get("reason") == "cancelled", rows[0]
    partial = rows[0]["content"]
    assert partial and answer(200).startswith(partial) and partial != answer(200), rows[0]
    # The upstream request stopped.
    wait_until(lambda: fake_upstream.stats()["streams_aborted_by_client"] > aborted_before, 15,
               message="the fake upstream to see its stream aborted by the client")
    wait_until(lambda: fake_upstream.stats()["active_streams"] == 0, 15, message="no active upstream stream")


# --------------------------------------------------------------------------------------------
# 8. Idempotency-Key holds across gateways


def test_idempotency_across_gateways(cluster: Cluster):
    cluster.start(gateways=2, workers=("w1",))
    g1, g2 = cluster.gateways
    key = f"key-{unique_tag()}"
    body = {"prompt": f"{unique_tag()} once [[fake tokens=3]]", "models": ["fake-a", "fake-b"]}
    first = g1.http.post("/v1/batches", json=body, headers={"Idempotency-Key": key})
    assert first.status_code == 202, first.text
    assert "idempotent-replayed" not in first.headers
    second = g2.http.post("/v1/batches", json=body, headers={"Idempotency-Key": key})
    assert second.status_code == 202, second.text
    assert second.headers.get("idempotent-replayed") == "true", second.headers
    assert second.json() == first.json()
    assert second.json()["batch_id"] == first.json()["batch_id"]

    other = dict(body, prompt=body["prompt"] + " changed")
    third = g2.http.post("/v1/batches", json=other, headers={"Idempotency-Key": key})
    assert third.status_code == 422, third.text
    assert third.json()["error"]["message"], third.text
    # One batch, one set of tasks.
    assert len(cluster.query("SELECT id FROM batches")) == 1
    assert len(cluster.query("SELECT id FROM tasks")) == 2
    g1.wait_batch(first.json()["batch_id"], timeout=30)


# --------------------------------------------------------------------------------------------
# 9. Leaving an event stream does not cancel the task


def test_event_stream_disconnect_does_not_cancel(cluster: Cluster):
    cluster.start(gateways=1, workers=("w1",))
    (g1,) = cluster.gateways
    submitted = g1.submit_batch(f"{unique_tag()} keep going [[fake tokens=20 rate=10]]", ["fake-a"])
    task_id = submitted["task_ids"][0]
    first = read_task_events(g1.url, task_id, limit=3, timeout=30)   # then the connection closes
    assert len(first) == 3
    assert g1.task(task_id)["state"] not in ("SUCCESS", "FAILURE", "CANCELLED")
    task = g1.wait_task(task_id, timeout=30)
    assert task["state"] == "SUCCESS", task
    assert task["result"]["content"] == answer(20)
    row = assert_one_complete_answer(cluster, task_id, "fake-a", answer(20))
    assert json.loads(row["metadata"]).get("reason") is None, row


# --------------------------------------------------------------------------------------------
# 10. The same asynchronous API in embedded `chorus serve`


def test_embedded_async_api(chorus_bin: str, fake_upstream: FakeUpstream, tmp_path):
    models = fake_model_yaml(fake_upstream.base_url, "fake-a") + fake_model_yaml(fake_upstream.base_url, "fake-b")
    instance = start_chorus(chorus_bin, tmp_path, models)
    try:
        http = instance.http
        prompt = f"{unique_tag()} embedded [[fake tokens=6 rate=20]]"
        r = http.post("/v1/batches", json={"prompt": prompt, "models": ["fake-a", "fake-b"]})
        assert r.status_code == 202, r.text
        submitted = r.json()
        assert submitted["message"] == "Tasks dispatched successfully" and len(submitted["task_ids"]) == 2

        def completed():
            body = http.get(f"/v1/batches/{submitted['batch_id']}").json()
            return body if body["status"] == "completed" else None
        batch = wait_until(completed, 30, interval=0.1, message="the embedded batch to complete")
        assert sorted(t["model"] for t in batch["tasks"]) == ["fake-a", "fake-b"]
        for task in batch["tasks"]:
            assert task["state"] == "SUCCESS" and task["result"]["content"] == answer(6), task
            rows = instance.query("SELECT content, model FROM messages WHERE role = 'assistant' AND turn_id = ?",
                                  (task["id"],))
            assert [(row["content"], row["model"]) for row in rows] == [(answer(6), task["model"])]

        # Events replay with ids, and resume after Last-Event-ID.
        task_id = submitted["task_ids"][0]
        events = read_task_events(instance.url, task_id, timeout=30)
        assert_sequence([e.data for e in events])
        assert all(e.id == str(e.seq) and e.event == e.type for e in events), events
        assert events[-1].type == "finish" and events[-1].data["data"]["content"] == answer(6)
        tail = read_task_events(instance.url, task_id, last_event_id=3, timeout=30)
        assert [e.data for e in tail] == [e.data for e in events[3:]]

        # Cancel a long task.
        r = http.post("/v1/batches", json={"prompt": f"{unique_tag()} embedded cancel [[fake tokens=200 rate=20]]",
                                           "models": ["fake-a"]})
        assert r.status_code == 202, r.text
        long_id = r.json()["task_ids"][0]
        wait_until(lambda: len(read_task_events(instance.url, long_id, limit=3, timeout=30)) == 3, 20,
                   message="the long task to stream")
        r = http.post(f"/v1/tasks/{long_id}/cancel")
        assert r.status_code == 200, r.text
        wait_until(lambda: http.get(f"/v1/tasks/{long_id}").json()["state"] == "CANCELLED", 20, interval=0.1,
                   message="the embedded task to be cancelled")
        events = read_task_events(instance.url, long_id, timeout=30)
        assert events[-1].type == "error" and events[-1].data["data"]["type"] == "cancelled", events[-1]
        rows = wait_until(lambda: instance.query("SELECT content, metadata FROM messages WHERE role = 'assistant' AND turn_id = ?",
                                                 (long_id,)), 10, message="the partial assistant message")
        assert len(rows) == 1
        assert json.loads(rows[0]["metadata"]).get("reason") == "cancelled", dict(rows[0])
        assert answer(200).startswith(rows[0]["content"]) and rows[0]["content"] != answer(200)
    finally:
        instance.close()
        instance.process.stop()
    assert instance.process.proc.returncode in (0, -15), instance.process.describe()


# --------------------------------------------------------------------------------------------
# 11. tasks.concurrency bounds a worker's running tasks across all its queues


def test_worker_concurrency_holds_across_queues(cluster: Cluster):
    # Three tasks on three queues are waiting before the worker's first read.
    cluster.concurrency = 1
    cluster.start(gateways=1, workers=())
    (g1,) = cluster.gateways
    submitted = g1.submit_batch(f"{unique_tag()} one at a time [[fake tokens=10 rate=10]]", ["fake-a", "fake-b", "fake-c"])
    cluster.start(gateways=0, workers=("w1",))
    peak = 0
    running_seen: list[str] = []

    def sample():
        nonlocal peak
        rows = cluster.query("SELECT id, status FROM tasks")
        running = [r["id"] for r in rows if r["status"] in ("STARTED", "PROGRESS")]
        if len(running) > peak:
            peak, running_seen[:] = len(running), running
        return all(r["status"] in ("SUCCESS", "FAILURE", "CANCELLED") for r in rows)
    wait_until(sample, 30, interval=0.02, message="the three tasks to end")
    assert peak == 1, f"a worker with tasks.concurrency=1 ran {peak} tasks at once: {running_seen}"
    for task_id in submitted["task_ids"]:
        assert g1.task(task_id)["state"] == "SUCCESS"


# --------------------------------------------------------------------------------------------
# 12. Accounts across gateways: one rate limit, revocation everywhere at once


def test_gateways_share_one_rate_limit(cluster: Cluster):
    """`limits.key_requests_per_minute: 120` is one budget for the key, whichever gateway a request
    reaches (the counters live in Redis)."""
    limit = 120
    cluster.extra_config = {"limits": {"key_requests_per_minute": limit}}
    cluster.start(gateways=2, workers=())
    g1, g2 = cluster.gateways
    key = create_api_key(g1.url, cluster.admin.session_token, name="shared-limit")["key"]
    clients = [httpx.Client(base_url=g.url, headers=auth_headers(key), timeout=30) for g in (g1, g2)]
    total = 2 * limit

    def send(i: int) -> tuple[int, int, httpx.Response]:   # alternating: even to gateway1, odd to gateway2
        r = clients[i % 2].get("/v1/models")
        return i % 2, r.status_code, r

    try:
        started = time.monotonic()
        with ThreadPoolExecutor(8) as pool:
            results = list(pool.map(send, range(total)))
        elapsed = time.monotonic() - started
    finally:
        for client in clients:
            client.close()
    statuses = [status for _, status, _ in results]
    assert set(statuses) <= {200, 429}, sorted(set(statuses))
    admitted = statuses.count(200)
    per_gateway = {g: sum(1 for gw, status, _ in results if gw == g and status == 200) for g in (0, 1)}
    budget = limit + limit * elapsed / 60
    summary = (f"{admitted} of {total} admitted in {elapsed:.2f} s (budget {budget:.1f}); "
               f"admitted per gateway: {per_gateway}")
    print(summary)
    assert admitted <= 1.05 * budget, "the gateways do not share one limit: " + summary
    assert admitted >= 0.95 * limit, "fewer requests admitted than the limit allows: " + summary
    assert per_gateway[0] > 0 and per_gateway[1] > 0, summary
    refused = next(r for _, status, r in results if status == 429)
    error = refused.json()["error"]
    assert error["code"] == "rate_limit_exceeded" and error["type"] == "requests", refused.text
    assert refused.headers.get("retry-after", "").isdigit() and int(refused.headers["retry-after"]) >= 1, refused.headers
    # The administrator's key has its own budget.
    assert g2.http.get("/v1/models").status_code == 200


def test_revocation_reaches_every_gateway_at_once(cluster: Cluster):
    cluster.start(gateways=2, workers=())
    g1, g2 = cluster.gateways
    admin_session = cluster.admin.session_token
    created = create_api_key(g1.url, admin_session, name="revoke-me")
    key = created["key"]
    for gateway in (g2, g1, g2):      # used (and so possibly cached) on both gateways first
        r = httpx.get(gateway.url + "/v1/models", headers=auth_headers(key), timeout=10)
        assert r.status_code == 200, f"{gateway.name}: {r.status_code} {r.text}"
    r = g1.http.delete(f"/v1/api-keys/{created['id']}")
    assert r.status_code == 200 and r.json()["revoked_at"] is not None, r.text
    r = httpx.get(g2.url + "/v1/models", headers=auth_headers(key), timeout=10)
    assert r.status_code == 401, f"a key revoked on gateway1 still works on gateway2: {r.status_code} {r.text}"
    assert r.json()["error"]["code"] == "invalid_api_key", r.text

    # A session ended on one gateway ends on the other; a user disabled on one is refused by the other.
    email = f"user-{unique_tag()}@example.com"
    password = secrets.token_urlsafe(18)
    r = g2.http.post("/v1/admin/users", json={"email": email, "password": password})
    assert r.status_code == 201, r.text
    user_id = r.json()["id"]
    token = bearer_session(g2.url, email, password)
    user_key = create_api_key(g2.url, token)["key"]
    for gateway in (g1, g2):
        assert httpx.get(gateway.url + "/v1/auth/me", headers=auth_headers(token), timeout=10).status_code == 200
        assert httpx.get(gateway.url + "/v1/models", headers=auth_headers(user_key), timeout=10).status_code == 200
    assert httpx.post(g1.url + "/v1/auth/logout", headers=auth_headers(token), timeout=10).status_code == 204
    r = httpx.get(g2.url + "/v1/auth/me", headers=auth_headers(token), timeout=10)
    assert r.status_code == 401, f"a session ended on gateway1 still works on gateway2: {r.status_code} {r.text}"
    r = g1.http.patch(f"/v1/admin/users/{user_id}", json={"disabled": True})
    assert r.status_code == 200, r.text
    r = httpx.get(g2.url + "/v1/models", headers=auth_headers(user_key), timeout=10)
    assert r.status_code == 401, f"a user disabled on gateway1 still works on gateway2: {r.status_code} {r.text}"


# --------------------------------------------------------------------------------------------
# 14. The OpenAI door on PostgreSQL: a client resending its history, and the SDK's tool loop
#     synchronously (two gateways) and as queued tasks (the workers)

WEATHER_TOOL = {"type": "function", "function": {
    "name": "get_weather", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}


def test_stateless_history_and_tool_loop_in_the_distributed_shape(cluster: Cluster):
    from openai import OpenAI

    cluster.start(gateways=2, workers=("w1",))
    g1, g2 = cluster.gateways
    tag = unique_tag()

    # A client that resends its history (the pattern that answered 500): stored once, on PostgreSQL.
    history = [{"role": "user", "content": f"{tag} Hi"}, {"role": "assistant", "content": "Hello!"},
               {"role": "user", "content": f"{tag} a joke [[fake echo=1]]"}]
    r = g1.http.post("/v1/chat/completions", json={"model": "fake-a", "messages": history})
    assert r.status_code == 200, r.text
    assert r.json()["choices"][0]["message"]["content"] == f"echo: 3 | {tag} a joke"
    rows = cluster.query("SELECT role, content, turn_id FROM messages WHERE conversation_id = %s ORDER BY seq",
                         (r.headers["x-conversation-id"],))
    assert [row["role"] for row in rows] == ["user", "assistant", "user", "assistant"], rows
    assert [row["turn_id"] is not None for row in rows if row["role"] == "assistant"] == [False, True], rows

    # The SDK's tool loop: the call on one gateway, the result in the same conversation on the other.
    clients = [OpenAI(base_url=g.url + "/v1", api_key=cluster.api_key, max_retries=0, timeout=30) for g in (g1, g2)]
    try:
        messages = [{"role": "user", "content": f"{tag} weather in Paris?"}]
        first = clients[0].chat.completions.create(model="fake-a", messages=messages, tools=[WEATHER_TOOL])
        call = first.choices[0].message.tool_calls[0]
        assert first.choices[0].finish_reason == "tool_calls" and call.function.name == "get_weather"
        conversation_id = first.model_extra["conversation_id"]
        result = {"role": "tool", "tool_call_id": call.id, "content": "sunny"}
        chunks = clients[1].chat.completions.create(model="fake-a", messages=[result], tools=[WEATHER_TOOL],
                                                    stream=True, extra_body={"conversation_id": conversation_id})
        text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        assert text == f"tool results: {call.id}=sunny"
        stored = cluster.query("SELECT role, tool_calls, tool_call_id FROM messages WHERE conversation_id = %s ORDER BY seq",
                               (conversation_id,))
        assert [row["role"] for row in stored] == ["user", "assistant", "tool", "assistant"], stored
        assert json.loads(stored[1]["tool_calls"])[0]["id"] == call.id and stored[2]["tool_call_id"] == call.id
    finally:
        for client in clients:
            client.close()

    # The same loop as queued tasks, run by the worker.
    body = g1.http.post("/v1/batches", json={"messages": [{"role": "user", "content": f"{tag} weather?"}],
                                             "models": ["fake-a"], "tools": [WEATHER_TOOL]}).json()
    task = g2.wait_task(body["task_ids"][0], 30)
    assert task["state"] == "SUCCESS" and task["result"]["finish_reason"] == "tool_calls", task
    call_id = task["result"]["tool_calls"][0]["id"]
    follow = g2.http.post("/v1/batches", json={
        "messages": [{"role": "tool", "tool_call_id": call_id, "content": "rain"}], "models": ["fake-a"],
        "conversation_id": body["conversation_id"], "tools": [WEATHER_TOOL]}).json()
    task = g1.wait_task(follow["task_ids"][0], 30)
    assert task["state"] == "SUCCESS" and task["result"]["content"] == f"tool results: {call_id}=rain", task
