#!/usr/bin/env bash
# The asynchronous scenario alone, for comparing two builds side by side in a minute:
#
#   bench/async.sh [CHORUS_BINARY]
#
# Starts the fake upstream, Redis, PostgreSQL, `chorus gateway` and one `chorus worker` on
# loopback (all stopped at exit), then drives `POST /v1/batches` + `GET /v1/tasks/{id}/events`:
# 160 tasks at 20/s (twice: submit → first token latency), then 32 clients in a closed loop
# (tasks/s). Needs the release binaries and what `bench/run.sh` installs (run it once first).
# Asserts nothing; prints the load generator's summary line for each point.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CHORUS=${1:-$ROOT/.build/release/chorus}
FAKE=$ROOT/.build/release/fake-upstream
LOADGEN=$ROOT/bench/.build/release/chorus-bench
PG_BIN=/usr/lib/postgresql/15/bin
for binary in "$CHORUS" "$FAKE" "$LOADGEN" "$PG_BIN/initdb"; do
    [[ -x "$binary" ]] || { echo "missing $binary (run bench/run.sh once)" >&2; exit 1; }
done
W=$(mktemp -d /tmp/chorus-async.XXXXXX)
chmod 755 "$W"
PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    [[ -f "$W/pg/data/postmaster.pid" ]] && runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$W/pg/data" -m fast stop > /dev/null 2>&1
    rm -rf "$W"
}
trap cleanup EXIT
source "$ROOT/bench/common.sh"

"$FAKE" --port 0 --tokens 8 --rate 0 > "$W/fake.log" 2>&1 &
PIDS+=($!)
REDIS_PORT=$(free_port)
redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --daemonize no --dir "$W" --save '' --appendonly no > "$W/redis.log" 2>&1 &
PIDS+=($!)
mkdir -p "$W/pg"
chown -R postgres "$W/pg"
PG_PORT=$(free_port)
runuser -u postgres -- "$PG_BIN/initdb" -D "$W/pg/data" -U postgres --auth=trust -E UTF8 > "$W/initdb.log" 2>&1
runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$W/pg/data" -l "$W/pg/server.log" \
    -o "-p $PG_PORT -k $W/pg -c listen_addresses=127.0.0.1 -c max_connections=300" -w -t 60 start > /dev/null
psql -h 127.0.0.1 -p "$PG_PORT" -U postgres -d postgres -qc 'CREATE DATABASE chorus' > /dev/null
FAKE_PORT=$(port_of "$W/fake.log")
{
    chorus_config "$W" "$FAKE_PORT"
    echo "storage: {postgres_url: \"postgres://postgres@127.0.0.1:$PG_PORT/chorus\"}"
    echo "redis: {url: \"redis://127.0.0.1:$REDIS_PORT\"}"
} > "$W/chorus.yaml"
export CHORUS_ADMIN_PASSWORD=bench-admin-password
"$CHORUS" gateway --config "$W/chorus.yaml" --port 0 > "$W/gateway.log" 2>&1 &
GATEWAY_PID=$!
PIDS+=("$GATEWAY_PID")
GATEWAY_PORT=$(port_of "$W/gateway.log")
"$CHORUS" worker --config "$W/chorus.yaml" --name w1 --models fake > "$W/worker.log" 2>&1 &
WORKER_PID=$!
PIDS+=("$WORKER_PID")
sleep 2
KEY=$("$CHORUS" user key --config "$W/chorus.yaml" --email admin@localhost --name bench)

run() {
    "$LOADGEN" run --url "http://127.0.0.1:$GATEWAY_PORT/v1/batches" --header "Authorization: Bearer $KEY" --kind task \
        --expected-tokens 8 --body '{"prompt":"Say something. [[fake tokens=8]]","models":["fake"]}' \
        --duration 8 --warmup 2 --grace 20 "$@" > /dev/null  # the summary line goes to stderr, the JSON row to stdout
}
run --count 40 --connections 4 2> /dev/null  # warm-up
run --rate 20
run --rate 20
run --connections 32 --pid "gateway=$GATEWAY_PID" --pid "worker=$WORKER_PID"
