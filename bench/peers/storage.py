"""Database writes per chat turn, counted from outside Chorus, on PostgreSQL.

A write transaction is counted by the transaction ids it consumes: PostgreSQL assigns an xid only
to a transaction that writes (or locks rows), so `txid_current()` before and after N turns through
a `chorus gateway` gives the gateway's write transactions (minus the one each `txid_current()`
call takes, minus the gateway's own background writes measured while idle). Rows inserted and
updated come from `pg_stat_user_tables` (flushed by PostgreSQL with a delay, hence --stats-wait).

Turn kinds (a new conversation each): normal (non-streamed, 8 tokens), long (streamed, 3 s at
10 tokens/s with conversations.checkpoint_seconds = 1 on the gateway), failed-before-first-token
(the upstream answers 500) and failed-mid-stream (the upstream errors after 4 tokens); and, when
a worker serves the gateway's queue, an asynchronous task (`POST /v1/batches` of one model,
followed to its `finish` event), whose count includes the worker's writes (claim, lease, result).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import time


def psql(port: int, database: str, sql: str) -> list[str]:
    done = subprocess.run(["psql", "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", "-d", database, "-Atc", sql],
                          capture_output=True, text=True, timeout=30, env=os.environ)
    if done.returncode != 0:
        raise RuntimeError(done.stderr)
    return done.stdout.strip().splitlines()


def snapshot(port: int, database: str) -> dict[str, int]:
    xid = int(psql(port, database, "SELECT txid_current()")[0])
    commits = int(psql(port, database, "SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()")[0])
    ins, upd, dele = psql(port, database, "SELECT COALESCE(SUM(n_tup_ins),0), COALESCE(SUM(n_tup_upd),0), "
                                          "COALESCE(SUM(n_tup_del),0) FROM pg_stat_user_tables")[0].split("|")
    return {"xid": xid, "commits": commits, "ins": int(ins), "upd": int(upd), "del": int(dele), "t": time.monotonic()}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--gateway", required=True)
    parser.add_argument("--loadgen", required=True)
    parser.add_argument("--header", default="X-Bench: 1", help="a header for every request (the API key)")
    parser.add_argument("--pg-port", type=int, required=True)
    parser.add_argument("--pg-database", required=True)
    parser.add_argument("--normal", type=int, default=200)
    parser.add_argument("--long", type=int, default=10)
    parser.add_argument("--failed", type=int, default=50)
    parser.add_argument("--tasks", type=int, default=0, help="asynchronous tasks (needs a worker)")
    parser.add_argument("--stats-wait", type=float, default=11.0,
                        help="seconds for PostgreSQL to flush other backends' table statistics")
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    port, db = args.pg_port, args.pg_database

    def body(stream: bool, directive: str) -> str:
        return json.dumps({"model": "fake", "stream": stream,
                           "messages": [{"role": "user", "content": f"Say something. [[fake {directive}]]"}]})

    # Idle connections report their row counts up to ~10 s late: let the saturation point that
    # ran just before on this database report its rows before anything is counted.
    if args.stats_wait > 0:
        time.sleep(args.stats_wait)
    # Background writes of an idle gateway (heartbeats, reconciler), per second.
    before = snapshot(port, db)
    time.sleep(3)
    after = snapshot(port, db)
    idle_rate = max(0, after["xid"] - before["xid"] - 1) / (after["t"] - before["t"])

    chat = "/v1/chat/completions"
    kinds = [
        ("normal", args.normal, chat, ["--connections", "4"], body(False, "tokens=8")),
        ("long (3 s stream, checkpoint every 1 s)", args.long, chat, ["--kind", "stream", "--connections", str(args.long)],
         body(True, "tokens=30 rate=10")),
        ("failed before first token (upstream 500)", args.failed, chat, ["--connections", "4"], body(False, "status=500")),
        ("failed mid-stream (error after 4 tokens)", args.failed, chat, ["--connections", "4"], body(False, "tokens=8 error_after=4")),
    ]
    if args.tasks:
        kinds.append(("async task (batch of one, 8 tokens; gateway + worker)", args.tasks, "/v1/batches",
                      ["--kind", "task", "--connections", "4"],
                      json.dumps({"prompt": "Say something. [[fake tokens=8]]", "models": ["fake"]})))
    for name, turns, path, extra, request in kinds:
        before = snapshot(port, db)
        done = subprocess.run([args.loadgen, "run", "--url", args.gateway + path, "--header", args.header, "--body", request,
                               "--count", str(turns), "--grace", "30", "--scenario", "storage", "--target", "gateway",
                               *extra], capture_output=True, text=True, timeout=300)
        middle = snapshot(port, db)
        if args.stats_wait > 0:
            time.sleep(args.stats_wait)
        after = snapshot(port, db)
        load = json.loads(done.stdout.strip().splitlines()[-1]) if done.stdout.strip() else {}
        elapsed = middle["t"] - before["t"]
        # One xid for the snapshot's own txid_current() in `middle`; background writes while it ran.
        xacts = middle["xid"] - before["xid"] - 1 - idle_rate * elapsed
        # Our own psql sessions commit 3 statements per snapshot (all in `commits`).
        row = {
            "scenario": "storage", "target": "chorus-gateway-postgres", "turn": name, "turns": turns,
            "responses_ok": load.get("ok"), "responses_error": load.get("errors"),
            "status_counts": load.get("status_counts"),
            "write_xacts_per_turn": round(xacts / turns, 3),
            "idle_background_xacts_per_s": round(idle_rate, 3),
        }
        if args.stats_wait > 0:
            row["rows_inserted_per_turn"] = round((after["ins"] - before["ins"]) / turns, 3)
            row["rows_updated_per_turn"] = round((after["upd"] - before["upd"]) / turns, 3)
            row["rows_deleted_per_turn"] = round((after["del"] - before["del"]) / turns, 3)
        line = json.dumps(row, sort_keys=True)
        print(line)
        with open(args.out, "a") as handle:
            handle.write(line + "\n")


if __name__ == "__main__":
    main()
