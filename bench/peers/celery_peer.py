"""Celery peer for the async benchmark: the same job as a Chorus chat task, the Celery way.

The task calls the fake upstream with streaming (one keep-alive HTTP connection per worker
process, stdlib http.client), publishes every answer token to the Redis stream `ev:<task_id>`
with XADD as it arrives, and ends with a `finish` entry. No result backend, no database: Celery
with the Redis broker only (Chorus additionally stores the turn and the task in PostgreSQL).

Worker:  celery -A celery_peer worker --pool=prefork --concurrency=N
Driver:  python celery_peer.py --rate R --duration D   (open loop, like chorus-bench --kind task)
         python celery_peer.py --connections C --duration D   (closed loop: C clients)
Each client: t0 = when the task was due (open loop) or submitted (closed loop); apply_async; then
XREAD BLOCK on its task's stream until `finish`. first_token = first `answer` entry - t0;
latency = `finish` - t0. Prints one JSON line in chorus-bench's format (microseconds).
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import sys
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlparse

import redis
from celery import Celery

BROKER = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
FAKE = urlparse(os.environ.get("BENCH_FAKE_URL", "http://127.0.0.1:8000"))

app = Celery("celery_peer", broker=BROKER)
app.conf.update(
    task_ignore_result=True,
    broker_connection_retry_on_startup=True,
    worker_hijack_root_logger=False,
    task_serializer="json",
    accept_content=["json"],
)

_local = threading.local()


def _redis() -> redis.Redis:
    client = getattr(_local, "redis", None)
    if client is None:
        client = _local.redis = redis.Redis.from_url(BROKER)
    return client


def _upstream() -> http.client.HTTPConnection:
    connection = getattr(_local, "http", None)
    if connection is None:
        connection = _local.http = http.client.HTTPConnection(FAKE.hostname, FAKE.port, timeout=60)
    return connection


@app.task(name="chat")
def chat(task_id: str, prompt: str) -> None:
    key = f"ev:{task_id}"
    r = _redis()
    body = json.dumps({"model": "fake-model", "stream": True,
                       "messages": [{"role": "user", "content": prompt}]})
    text = []
    for attempt in range(2):  # a kept-alive connection the server closed is retried once
        connection = _upstream()
        try:
            connection.request("POST", "/v1/chat/completions", body,
                               {"Content-Type": "application/json", "Accept": "text/event-stream"})
            response = connection.getresponse()
            break
        except (http.client.HTTPException, OSError):
            connection.close()
            _local.http = None
            if attempt == 1:
                raise
    seq = 0
    while True:
        line = response.readline()
        if not line:
            break
        if not line.startswith(b"data: "):
            continue
        payload = line[6:].strip()
        if payload == b"[DONE]":
            break
        chunk = json.loads(payload)
        choices = chunk.get("choices") or []
        content = choices[0].get("delta", {}).get("content") if choices else None
        if content:
            seq += 1
            text.append(content)
            r.xadd(key, {"type": "answer", "token": content, "seq": seq})
    response.read()  # drain, keep the connection reusable
    r.xadd(key, {"type": "finish", "text": "".join(text)})
    r.expire(key, 3600)


# --------------------------------------------------------------------------------------------
# Driver


def _percentiles(values: list[float]) -> dict[str, float]:
    if not values:
        return {"count": 0}
    ordered = sorted(values)

    def at(p: float) -> float:
        index = min(len(ordered) - 1, max(0, int(round(p / 100 * len(ordered) + 0.5)) - 1))
        return float(int(ordered[index]))

    return {"count": float(len(ordered)), "mean_us": round(sum(ordered) / len(ordered), 1), "p50_us": at(50),
            "p90_us": at(90), "p99_us": at(99), "p999_us": at(99.9), "max_us": float(int(ordered[-1]))}


class Results:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.latency: list[float] = []
        self.first: list[float] = []
        self.ok = 0
        self.errors = 0
        self.samples: list[str] = []
        self.tokens = 0

    def error(self, message: str) -> None:
        with self.lock:
            self.errors += 1
            if len(self.samples) < 5 and message not in self.samples:
                self.samples.append(message)


def one_task(t0: float, prompt: str, measured: bool, results: Results, timeout: float) -> None:
    task_id = uuid.uuid4().hex
    r = _redis()
    try:
        chat.apply_async(args=[task_id, prompt], task_id=task_id)
        key = f"ev:{task_id}"
        last = "0"
        first = None
        tokens = 0
        deadline = t0 + timeout
        while True:
            left = deadline - time.perf_counter()
            if left <= 0:
                raise TimeoutError("no finish before the deadline")
            reply = r.xread({key: last}, block=max(1, int(min(left, 5) * 1000)))
            if not reply:
                continue
            done = False
            for _, entries in reply:
                for entry_id, fields in entries:
                    last = entry_id
                    kind = fields.get(b"type")
                    if kind == b"answer":
                        tokens += 1
                        if first is None:
                            first = time.perf_counter()
                    elif kind == b"finish":
                        done = True
            if done:
                end = time.perf_counter()
                break
        r.delete(key)
        if measured:
            with results.lock:
                results.ok += 1
                results.tokens += tokens
                results.latency.append((end - t0) * 1e6)
                if first is not None:
                    results.first.append((first - t0) * 1e6)
    except Exception as error:  # noqa: BLE001 - every failure is counted, none stops the run
        if measured:
            results.error(f"{type(error).__name__}: {error}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("--rate", type=float, help="open loop: tasks due per second")
    group.add_argument("--connections", type=int, help="closed loop: concurrent clients")
    parser.add_argument("--duration", type=float, default=10)
    parser.add_argument("--warmup", type=float, default=2)
    parser.add_argument("--prompt", default="hello [[fake tokens=8]]")
    parser.add_argument("--expected-tokens", type=int, default=8)
    parser.add_argument("--threads", type=int, default=64, help="open loop: client threads")
    parser.add_argument("--grace", type=float, default=10)
    parser.add_argument("--scenario", default="async")
    parser.add_argument("--target", default="celery")
    parser.add_argument("--out")
    args = parser.parse_args()

    results = Results()
    start = time.perf_counter()
    measure_from = start + args.warmup
    measure_until = measure_from + args.duration
    timeout = args.duration + args.warmup + args.grace

    if args.rate:
        interval = 1 / args.rate
        with ThreadPoolExecutor(max_workers=args.threads) as pool:
            i = 0
            while True:
                due = start + i * interval
                if due >= measure_until:
                    break
                now = time.perf_counter()
                if due > now:
                    time.sleep(due - now)
                pool.submit(one_task, due, args.prompt, measure_from <= due < measure_until, results,
                            measure_until + args.grace - due)
                i += 1
    else:
        def client() -> None:
            while True:
                t0 = time.perf_counter()
                if t0 >= measure_until:
                    return
                one_task(t0, args.prompt, t0 >= measure_from, results, timeout)

        threads = [threading.Thread(target=client) for _ in range(args.connections)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

    measured_tasks = results.ok + results.errors
    out = {
        "scenario": args.scenario, "target": args.target, "kind": "task",
        "mode": "open" if args.rate else "closed", "duration_s": args.duration,
        "ok": results.ok, "errors": results.errors, "incomplete": 0,
        "achieved_rps": round(results.ok / args.duration, 1),
        "latency": _percentiles(results.latency), "first_token": _percentiles(results.first),
        "tokens": {"received": results.tokens, "expected": measured_tasks * args.expected_tokens,
                   "lost": measured_tasks * args.expected_tokens - results.tokens},
        "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "client": "python threads (celery apply_async + redis XREAD)",
    }
    if args.rate:
        out["offered_rps"] = args.rate
    else:
        out["connections"] = args.connections
    if results.samples:
        out["error_samples"] = results.samples
    line = json.dumps(out, sort_keys=True)
    print(line)
    if args.out:
        with open(args.out, "a") as handle:
            handle.write(line + "\n")
    lat, first = out["latency"], out["first_token"]
    print(f"{args.scenario:18} {args.target:14} achieved {out['achieved_rps']:9.1f}/s  ok {results.ok:7d}  "
          f"err {results.errors:5d}  first-token p50 {first.get('p50_us', 0) / 1000:.3f} p99 "
          f"{first.get('p99_us', 0) / 1000:.3f} ms  finish p99 {lat.get('p99_us', 0) / 1000:.3f} ms",
          file=sys.stderr)


if __name__ == "__main__":
    main()
