"""OpenTelemetry traces and JSON logs in the distributed shape: a real gateway and worker over a
real Redis and PostgreSQL (distributed.py) export OTLP/HTTP JSON to a real receiver
(otlp_receiver.py), and the fake upstream records the `traceparent` each call sent.

A batch's trace must run gateway request → queue submit → worker run → upstream call, with each
span's parent the one before it, across both processes and the Redis stream entry; a streamed
chat on the gateway has its credential check, writes and upstream call under its request span.
Log lines written for a request or a task carry its `request_id` / `task_id` and `trace_id`.
"""

from __future__ import annotations

import json
import secrets
from pathlib import Path
from typing import Any, Iterator

import httpx
import pytest

from conftest import FakeUpstream, auth_headers, fake_model_yaml, start_chorus, unique_tag, wait_until
from distributed import Cluster, cluster, postgres_server, redis_server  # noqa: F401 - fixtures
from otlp_receiver import OTLPReceiver, ReceivedSpan

SERVER, CLIENT, PRODUCER, CONSUMER = 2, 3, 4, 5


@pytest.fixture
def receiver() -> Iterator[OTLPReceiver]:
    instance = OTLPReceiver().start()
    try:
        yield instance
    finally:
        instance.stop()


def traceparents(fake: FakeUpstream) -> list[str]:
    r = httpx.get(fake.url + "/_fake/traceparents", timeout=10)
    r.raise_for_status()
    return r.json()


def one(spans: list[ReceivedSpan], name: str, **attributes: Any) -> ReceivedSpan:
    found = [s for s in spans if s.name == name and all(s.attributes.get(k) == v for k, v in attributes.items())]
    assert len(found) == 1, f"expected one {name} span with {attributes}, got {found}\nall: {spans}"
    return found[0]


def wait_spans(receiver: OTLPReceiver, trace_id: str, names: set[str]) -> list[ReceivedSpan]:
    def check() -> list[ReceivedSpan] | None:
        spans = receiver.trace(trace_id)
        return spans if names <= {s.name for s in spans} else None
    try:
        return wait_until(check, 30, interval=0.2, message=f"spans {sorted(names)} of trace {trace_id}")
    except AssertionError as error:
        raise AssertionError(f"{error}\nreceived: {receiver.trace(trace_id)}\nbad requests: {receiver.bad_requests}") from None


def json_log_lines(path: Path) -> list[dict[str, Any]]:
    """Every line of a process's stderr, each of which must be one JSON object."""
    lines = []
    for number, line in enumerate(path.read_text("utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            lines.append(json.loads(line))
        except ValueError:
            raise AssertionError(f"{path}:{number} is not JSON: {line[:300]!r}") from None
    return lines


def test_batch_trace_runs_gateway_queue_worker_model(cluster: Cluster, receiver: OTLPReceiver,
                                                     fake_upstream: FakeUpstream):
    cluster.extra_config = {"tracing": {"otlp_endpoint": receiver.endpoint}, "logging": {"format": "json", "level": "debug"}}
    cluster.start(gateways=1, workers=("w1",))
    gateway = cluster.gateways[0]

    # The client's own span: Chorus's request span continues its trace.
    trace_id, client_span = secrets.token_hex(16), secrets.token_hex(8)
    prompt = f"{unique_tag()} traced batch [[fake tokens=4]]"
    r = gateway.http.post("/v1/batches", json={"prompt": prompt, "models": ["fake-a"]},
                          headers={"traceparent": f"00-{trace_id}-{client_span}-01"})
    assert r.status_code == 202, r.text
    task_id = r.json()["task_ids"][0]
    batch = gateway.wait_batch(r.json()["batch_id"], timeout=30)
    assert batch["tasks"][0]["state"] == "SUCCESS", batch

    spans = wait_spans(receiver, trace_id, {"auth.credential_check", "queue.submit", "task.claim", "task.run",
                                            "upstream.call", "store.write"})
    request = one([s for s in spans if s.kind == SERVER], "/v1/batches")
    assert request.service == "chorus-gateway" and request.parent_span_id == client_span, request
    assert request.attributes.get("http.response.status_code") == 202, request
    credential = one(spans, "auth.credential_check")
    assert credential.parent_span_id == request.span_id, credential
    write = one(spans, "store.write", **{"chorus.write": "batch"})
    assert write.parent_span_id == request.span_id and write.service == "chorus-gateway", write
    submit = one(spans, "queue.submit", **{"chorus.task_id": task_id})
    assert (submit.kind, submit.service, submit.parent_span_id) == (PRODUCER, "chorus-gateway", request.span_id), submit
    # Through the Redis stream entry to the worker.
    claim = one(spans, "task.claim")
    assert (claim.service, claim.parent_span_id) == ("chorus-worker", submit.span_id), claim
    run = one(spans, "task.run", **{"chorus.task_id": task_id})
    assert (run.kind, run.service, run.parent_span_id) == (CONSUMER, "chorus-worker", submit.span_id), run
    upstream = one(spans, "upstream.call")
    assert (upstream.kind, upstream.service, upstream.parent_span_id) == (CLIENT, "chorus-worker", run.span_id), upstream
    assert upstream.attributes.get("chorus.model") == "fake-a" and upstream.attributes.get("chorus.deployment"), upstream
    assert "first_token" in upstream.events, upstream
    answer = one(spans, "store.write", **{"chorus.write": "assistant_message"})
    assert answer.parent_span_id == run.span_id and answer.service == "chorus-worker", answer
    # The model was called with the upstream call's span as its parent.
    assert f"00-{trace_id}-{upstream.span_id}-01" in traceparents(fake_upstream)

    # The worker's lines for this task name it and its trace (JSON, every line).
    worker_lines = json_log_lines(cluster.workers["w1"].stderr_path)
    finished = [line for line in worker_lines if line.get("msg") == "upstream call finished" and line.get("task_id") == task_id]
    assert finished, f"no 'upstream call finished' line for {task_id} in the worker's log:\n{worker_lines[-20:]}"
    assert finished[0].get("trace_id") == trace_id, finished[0]


def test_streamed_chat_trace_on_the_gateway(cluster: Cluster, receiver: OTLPReceiver, fake_upstream: FakeUpstream):
    cluster.extra_config = {"tracing": {"otlp_endpoint": receiver.endpoint}, "logging": {"format": "json", "level": "debug"}}
    cluster.start(gateways=1, workers=())
    gateway = cluster.gateways[0]

    # No incoming traceparent: the request starts a trace of its own.
    body = {"model": "fake-b", "stream": True, "messages": [{"role": "user", "content": f"{unique_tag()} traced chat [[fake tokens=3]]"}]}
    with httpx.Client(base_url=gateway.url, timeout=30, headers=auth_headers(gateway.api_key)) as client:
        with client.stream("POST", "/v1/chat/completions", json=body) as response:
            assert response.status_code == 200, response.read()
            request_id = response.headers["x-request-id"]
            text = "".join(response.iter_lines())
    assert "[DONE]" in text

    def request_span() -> ReceivedSpan | None:
        return next((s for s in receiver.spans if s.kind == SERVER and s.name == "/v1/chat/completions"), None)
    request = wait_until(request_span, 30, interval=0.2, message="the chat request's span")
    assert request.parent_span_id == "" and request.service == "chorus-gateway", request
    assert request.attributes.get("chorus.request_id") == request_id and request.status != 2, request
    spans = wait_spans(receiver, request.trace_id, {"auth.credential_check", "store.write", "upstream.call"})
    assert one(spans, "auth.credential_check").parent_span_id == request.span_id
    assert one(spans, "store.write", **{"chorus.write": "user_message"}).parent_span_id == request.span_id
    upstream = one(spans, "upstream.call", **{"chorus.model": "fake-b"})
    assert (upstream.kind, upstream.parent_span_id) == (CLIENT, request.span_id), upstream
    assert "first_token" in upstream.events, upstream
    wait_spans(receiver, request.trace_id, {"store.write"})
    wait_until(lambda: any(s.attributes.get("chorus.write") == "assistant_message" for s in receiver.trace(request.trace_id)),
               30, interval=0.2, message="the assistant message's write span")
    assert f"00-{request.trace_id}-{upstream.span_id}-01" in traceparents(fake_upstream)

    lines = json_log_lines(gateway.process.stderr_path)
    finished = [line for line in lines if line.get("msg") == "upstream call finished" and line.get("request_id") == request_id]
    assert finished, f"no 'upstream call finished' line for {request_id} in the gateway's log:\n{lines[-20:]}"
    assert finished[0].get("trace_id") == request.trace_id, finished[0]

    # An upstream failure answered as a 502: the request's span has an error status.
    failed = gateway.http.post("/v1/chat/completions", json={
        "model": "fake-c", "messages": [{"role": "user", "content": f"{unique_tag()} [[fake status=500]]"}]})
    assert failed.status_code == 502, failed.text
    failed_id = failed.headers["x-request-id"]
    failed_span = wait_until(lambda: next((s for s in receiver.spans if s.attributes.get("chorus.request_id") == failed_id), None),
                             30, interval=0.2, message="the failed request's span")
    assert failed_span.status == 2 and failed_span.attributes.get("http.response.status_code") == 502, failed_span


def test_embedded_task_trace_through_the_in_process_queue(chorus_bin: str, fake_upstream: FakeUpstream,
                                                         receiver: OTLPReceiver, tmp_path: Path):
    chorus = start_chorus(chorus_bin, tmp_path, fake_model_yaml(fake_upstream.base_url),
                          config={"tracing": {"otlp_endpoint": receiver.endpoint}})
    try:
        trace_id, client_span = secrets.token_hex(16), secrets.token_hex(8)
        r = chorus.http.post("/v1/batches", json={"prompt": f"{unique_tag()} embedded [[fake tokens=2]]", "models": ["fake"]},
                             headers={"traceparent": f"00-{trace_id}-{client_span}-01"})
        assert r.status_code == 202, r.text
        task_id = r.json()["task_ids"][0]
        spans = wait_spans(receiver, trace_id, {"queue.submit", "task.run", "upstream.call"})
        assert {s.service for s in spans} == {"chorus"}, spans
        request = one([s for s in spans if s.kind == SERVER], "/v1/batches")
        assert request.parent_span_id == client_span, request
        submit = one(spans, "queue.submit", **{"chorus.task_id": task_id})
        assert submit.parent_span_id == request.span_id, submit
        run = one(spans, "task.run", **{"chorus.task_id": task_id})
        assert run.parent_span_id == submit.span_id, run
        assert one(spans, "upstream.call").parent_span_id == run.span_id
    finally:
        chorus.close()
        chorus.process.stop()
