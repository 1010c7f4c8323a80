#!/usr/bin/env bash
# Chorus benchmark suite: one command, everything started and stopped here, loopback only.
#
#   bench/run.sh            full suite (~10-13 minutes on 2 cores once the release binaries exist)
#   bench/run.sh --quick    smoke run of every scenario (under 2 minutes)
#   options: --no-build (use the release binaries as they are), --no-profile, --keep (keep the work dir)
#   env: CHORUS_BENCH_BIN_DIR=.build/debug to try the harness on other builds of chorus/fake-upstream
#
# Builds release binaries (chorus, fake-upstream, bench/chorus-bench), makes bench/.venv with the
# peers (LiteLLM proxy, Celery + redis-py), installs redis-server and PostgreSQL from Debian when
# missing, then runs the scenarios with Chorus and its peers alternating, writes
# bench/results/<timestamp>.json (+ .md) and prints the Markdown report. Never part of the tests;
# it asserts no timings. See docs/BENCHMARKS.md.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BENCH="$ROOT/bench"
QUICK=0
BUILD=1
PROFILE=1
KEEP=0
for arg in "$@"; do
    case "$arg" in
        --quick) QUICK=1 ;;
        --no-build) BUILD=0 ;;
        --no-profile) PROFILE=0 ;;
        --keep) KEEP=1 ;;
        -h|--help) sed -n '2,14p' "$0"; exit 0 ;;
        *) echo "unknown option: $arg (see --help)" >&2; exit 2 ;;
    esac
done

SUITE_START=$(date +%s)
STAMP=$(date -u +%Y%m%dT%H%M%SZ)
mkdir -p "$BENCH/results"
WORK=$(mktemp -d /tmp/chorus-bench.XXXXXX)
chmod 755 "$WORK"
RUNS="$WORK/runs.jsonl"
: > "$RUNS"
PG_BIN=/usr/lib/postgresql/15/bin
PIDS=()
PG_DATA=""

log() { printf '\033[1m[bench %s]\033[0m %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

stop_pid() {
    local pid=$1
    kill "$pid" 2>/dev/null || return 0
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}

# CPU ticks (user + system) of some processes.
cpu_ticks() {
    local total=0 pid
    for pid in "$@"; do
        [[ "$pid" =~ ^[0-9]+$ && -r /proc/$pid/stat ]] && total=$(( total + $(awk '{print $14 + $15}' "/proc/$pid/stat" 2>/dev/null || echo 0) ))
    done
    echo "$total"
}

# settle PID... : waits until these processes (and their children) are idle, so that work queued
# by an overloaded point does not leak into the next one.
settle() {
    local pids=("$@") pid a b deadline=$(( $(date +%s) + SETTLE_MAX ))
    for pid in "$@"; do [[ "$pid" =~ ^[0-9]+$ ]] && pids+=($(pgrep -P "$pid" 2>/dev/null || true)); done
    while (( $(date +%s) < deadline )); do
        a=$(cpu_ticks "${pids[@]}"); sleep 0.5; b=$(cpu_ticks "${pids[@]}")
        (( b - a <= 5 )) && return 0
    done
    log "still busy after ${SETTLE_MAX}s; going on"
}

cleanup() {
    local status=$?
    set +e
    for pid in "${PIDS[@]}"; do stop_pid "$pid"; done
    if [[ -n "$PG_DATA" && -f "$PG_DATA/postmaster.pid" ]]; then
        kill -INT "$(head -1 "$PG_DATA/postmaster.pid")" 2>/dev/null
        sleep 1
    fi
    if [[ $KEEP == 1 || $status != 0 ]]; then
        echo "work directory (logs): $WORK" >&2
    else
        rm -rf "$WORK"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# start NAME CMD... : runs CMD in the background, output to $WORK/NAME.log; sets $LAST_PID.
start() {
    local name=$1; shift
    [[ -e "$WORK/$name.log" ]] && mv "$WORK/$name.log" "$WORK/$name.$(date +%s%N).log"
    "$@" > "$WORK/$name.log" 2>&1 &
    LAST_PID=$!
    PIDS+=("$LAST_PID")
}

# port_from_log NAME TIMEOUT : waits for "listening on http://HOST:PORT" in the log, prints PORT.
port_from_log() {
    local name=$1 timeout=$2 line
    for _ in $(seq $((timeout * 10))); do
        line=$(grep -o 'listening on http://[0-9.]*:[0-9]*' "$WORK/$name.log" 2>/dev/null | head -1 || true)
        if [[ -n "$line" ]]; then echo "${line##*:}"; return 0; fi
        sleep 0.1
    done
    echo "$name did not start; its log:" >&2
    tail -30 "$WORK/$name.log" >&2
    return 1
}

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

wait_http() {  # URL TIMEOUT [HEADER]
    local url=$1 timeout=$2
    for _ in $(seq $((timeout * 5))); do
        if curl -s -m 2 -o /dev/null -w '%{http_code}' "$url" 2>/dev/null | grep -q '^200$'; then return 0; fi
        sleep 0.2
    done
    echo "no answer from $url after ${timeout}s" >&2
    return 1
}

if [[ $QUICK == 1 ]]; then
    DUR=2; WARM=0.5; GRACE=2; SETTLE_MAX=15
    SAT_CONN=16
    RATES=(1000)
    LITELLM_LOW=(25)
    ASYNC_TWO_WORKERS=0
    STREAM_RATE=10
    STREAM_N=(200); STREAM_TOKENS=10; STREAM_TOKEN_RATE=5
    ASYNC_RATE=10; ASYNC_CONN=16
    STORAGE_N=20; STORAGE_LONG=4; STORAGE_FAIL=10; STATS_WAIT=0
    PROFILE=0
else
    DUR=8; WARM=2; GRACE=5; SETTLE_MAX=60
    SAT_CONN=32
    ASYNC_TWO_WORKERS=1
    RATES=(100 500 750 1000 2000 5000)
    LITELLM_LOW=(10 25 50)
    STREAM_RATE=20
    STREAM_N=(1000 5000 10000); STREAM_TOKENS=20; STREAM_TOKEN_RATE=2
    ASYNC_RATE=20; ASYNC_CONN=32
    STORAGE_N=200; STORAGE_LONG=10; STORAGE_FAIL=50; STATS_WAIT=11
fi

# ----------------------------------------------------------------------------------------------
log "work directory $WORK; mode $([[ $QUICK == 1 ]] && echo quick || echo full)"
BUILD_START=$(date +%s)
if [[ $BUILD == 1 ]]; then
    log "building release binaries (chorus, fake-upstream, chorus-bench)"
    (cd "$ROOT" && swift build -c release --product chorus > "$WORK/build.log" 2>&1 \
        && swift build -c release --product fake-upstream >> "$WORK/build.log" 2>&1) || { tail -30 "$WORK/build.log"; exit 1; }
    swift build -c release --package-path "$BENCH" >> "$WORK/build.log" 2>&1 || { tail -30 "$WORK/build.log"; exit 1; }
fi
BUILD_SECONDS=$(( $(date +%s) - BUILD_START ))
# CHORUS_BENCH_BIN_DIR points at other chorus/fake-upstream builds (e.g. .build/debug, for trying the harness).
BIN_DIR=${CHORUS_BENCH_BIN_DIR:-$ROOT/.build/release}
CHORUS="$BIN_DIR/chorus"
FAKE="$BIN_DIR/fake-upstream"
LOADGEN="$BENCH/.build/release/chorus-bench"
for binary in "$CHORUS" "$FAKE" "$LOADGEN"; do
    [[ -x "$binary" ]] || { echo "missing $binary (run without --no-build)" >&2; exit 1; }
done

SETUP_START=$(date +%s)
VENV="$BENCH/.venv"
if ! "$VENV/bin/python" -c 'import litellm, celery, redis' 2>/dev/null; then
    log "creating bench/.venv with the peers (litellm[proxy], celery[redis], redis)"
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install -q 'litellm[proxy]' 'celery[redis]' redis
fi
if ! command -v redis-server > /dev/null || [[ ! -x "$PG_BIN/initdb" ]]; then
    log "installing redis-server and postgresql (Debian packages)"
    apt-get update -qq && apt-get install -y -qq redis-server postgresql > /dev/null
fi
SETUP_SECONDS=$(( $(date +%s) - SETUP_START ))

# File descriptors: many-streams needs two per stream in Chorus (client + upstream).
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
NOFILE=$(ulimit -n)

# ----------------------------------------------------------------------------------------------
# Shared processes: the fake upstream (the floor), Chorus embedded, LiteLLM.

start fake "$FAKE" --port 0 --tokens 8 --rate 0
FAKE_PID=$LAST_PID
FAKE_PORT=$(port_from_log fake 30)
FAKE_URL="http://127.0.0.1:$FAKE_PORT"

serve_config() {  # DIR CHECKPOINT_SECONDS
    mkdir -p "$1"
    cat > "$1/chorus.yaml" <<EOF
http: {host: 127.0.0.1, port: 0}
data_dir: $1
conversations: {checkpoint_seconds: $2}
models:
  fake:
    provider: openai
    base_url: $FAKE_URL/v1
    upstream_model: fake-model
    retries: 0
EOF
}

# Chorus runs with accounts on, as users run it (LiteLLM, likewise, with a master key): the first
# start creates the administrator with this password, and each database gets an API key.
export CHORUS_ADMIN_PASSWORD=bench-admin-password
chorus_key() {  # CONFIG -> prints a new API key of the administrator
    "$CHORUS" user key --config "$1" --email admin@localhost --name bench
}

start_serve() {  # NAME -> CHORUS_PID, CHORUS_URL, CHORUS_KEY
    local dir="$WORK/$1"
    rm -rf "$dir"
    serve_config "$dir" 5
    start "$1" "$CHORUS" serve --config "$dir/chorus.yaml" --port 0
    CHORUS_PID=$LAST_PID
    CHORUS_URL="http://127.0.0.1:$(port_from_log "$1" 60)"
    CHORUS_KEY=$(chorus_key "$dir/chorus.yaml")
}
start_serve serve

LITELLM_PORT=$(free_port)
cat > "$WORK/litellm.yaml" <<EOF
model_list:
  - model_name: fake
    litellm_params:
      model: openai/fake-model
      api_base: $FAKE_URL/v1
      api_key: sk-fake
general_settings:
  master_key: sk-bench
litellm_settings:
  telemetry: false
EOF
log "starting LiteLLM proxy (2 workers; it takes a while to import)"
start litellm env LITELLM_LOCAL_MODEL_COST_MAP=True "$VENV/bin/litellm" --config "$WORK/litellm.yaml" \
    --host 127.0.0.1 --port "$LITELLM_PORT" --num_workers 2 --timeout_worker_healthcheck 180
LITELLM_PID=$LAST_PID
LITELLM_URL="http://127.0.0.1:$LITELLM_PORT"

# Bodies: the same request for every target; the directive tells the fake what to answer.
body() {  # MODEL STREAM DIRECTIVE
    printf '{"model":"%s","stream":%s,"messages":[{"role":"user","content":"Say something. [[fake %s]]"}]}' "$1" "$2" "$3"
}
url_of() {
    case $1 in
        direct) echo "$FAKE_URL/v1/chat/completions" ;;
        chorus) echo "$CHORUS_URL/v1/chat/completions" ;;
        litellm) echo "$LITELLM_URL/v1/chat/completions" ;;
    esac
}
model_of() { [[ $1 == direct ]] && echo fake-model || echo fake; }
auth_of() {
    case $1 in
        litellm) echo "Authorization: Bearer sk-bench" ;;
        chorus) echo "Authorization: Bearer $CHORUS_KEY" ;;
        *) echo "X-Bench: 1" ;;
    esac
}

# load TARGET SCENARIO ARGS... : one chorus-bench run against a chat target; JSON into $RUNS.
load() {
    local target=$1 scenario=$2; shift 2
    "$LOADGEN" run --url "$(url_of "$target")" --header "$(auth_of "$target")" \
        --scenario "$scenario" --target "$target" --out "$RUNS" "$@" > /dev/null || log "run failed: $target $scenario $*"
    settle "$FAKE_PID" "$CHORUS_PID" "$LITELLM_PID"
}

skip() {  # SCENARIO TARGET OFFERED REASON
    printf '{"scenario":"%s","target":"%s","offered_rps":%s,"skipped":"%s"}\n' "$1" "$2" "$3" "$4" >> "$RUNS"
    log "skip $1 $2 $3/s: $4"
}

wait_http "$CHORUS_URL/healthz" 30
wait_http "$LITELLM_URL/health/liveliness" 240
# Warm every path once (connection pools, LiteLLM's lazy imports).
for target in direct chorus litellm; do
    "$LOADGEN" run --url "$(url_of "$target")" --header "$(auth_of "$target")" --body "$(body "$(model_of "$target")" false tokens=8)" \
        --connections 4 --count 40 --grace 30 > /dev/null 2>&1 || true
done

# ----------------------------------------------------------------------------------------------
log "scenario 1: non-streamed proxy (direct = floor, Chorus, LiteLLM)"
for target in direct chorus litellm; do
    # CPU of Chorus and of the fake upstream while saturated (LiteLLM's workers are child processes: not sampled).
    pids=(--pid "fake=$FAKE_PID")
    [[ $target == chorus ]] && pids+=(--pid "chorus=$CHORUS_PID")
    load "$target" nonstream --body "$(body "$(model_of "$target")" false tokens=8)" \
        --connections "$SAT_CONN" --duration "$DUR" --warmup "$WARM" --grace "$GRACE" "${pids[@]}"
done
LITELLM_SAT=$(python3 -c "
import json,sys
rows=[json.loads(l) for l in open('$RUNS')]
print(max([r.get('achieved_rps',0) for r in rows if r.get('target')=='litellm' and r.get('mode')=='closed'] or [0]))")
for rate in "${LITELLM_LOW[@]}"; do
    load litellm nonstream --body "$(body fake false tokens=8)" --rate "$rate" --duration "$DUR" --warmup "$WARM" --grace "$GRACE"
done
for rate in "${RATES[@]}"; do
    for target in direct chorus litellm; do
        if [[ $target == litellm ]] && python3 -c "import sys; sys.exit(0 if $rate > 3 * max($LITELLM_SAT, 1) else 1)"; then
            skip nonstream litellm "$rate" "offered rate is over 3x LiteLLM's saturation throughput ($LITELLM_SAT/s): the queue only grows"
            continue
        fi
        load "$target" nonstream --body "$(body "$(model_of "$target")" false tokens=8)" \
            --rate "$rate" --duration "$DUR" --warmup "$WARM" --grace "$GRACE" --max-connections 1024
    done
done

# ----------------------------------------------------------------------------------------------
log "scenario 2: streamed proxy (time to first token, inter-token gap)"
for target in direct chorus litellm; do
    load "$target" stream --kind stream --expected-tokens 20 --body "$(body "$(model_of "$target")" true 'tokens=20 rate=100')" \
        --rate "$STREAM_RATE" --duration "$DUR" --warmup "$WARM" --grace "$GRACE"
done

# ----------------------------------------------------------------------------------------------
log "scenario 3: many concurrent streams through Chorus"
# Chorus holds two descriptors per stream (the client's and the upstream's).
FD_CAP=$(( (NOFILE - 200) / 2 ))
STREAM_SECONDS=$(python3 -c "print($STREAM_TOKENS / $STREAM_TOKEN_RATE)")
for requested in "${STREAM_N[@]}"; do
    n=$requested
    note=""
    if (( n > FD_CAP )); then
        n=$FD_CAP
        note="requested $requested streams; RLIMIT_NOFILE hard limit here is $NOFILE and Chorus needs 2 descriptors per stream"
        log "many-streams: $note -> running $n"
    fi
    stop_pid "$CHORUS_PID"
    start_serve "serve-streams-$requested"
    sleep 1
    ramp=$(python3 -c "print(max(1.0, $n / 2000))")
    "$LOADGEN" run --url "$CHORUS_URL/v1/chat/completions" --header "Authorization: Bearer $CHORUS_KEY" --kind stream --expected-tokens "$STREAM_TOKENS" \
        --body "$(body fake true "tokens=$STREAM_TOKENS rate=$STREAM_TOKEN_RATE")" \
        --rate "$(python3 -c "print($n / $ramp)")" --count "$n" --max-connections "$n" --initial-connections 64 \
        --grace "$(python3 -c "print($STREAM_SECONDS + 60)")" \
        --pid "chorus=$CHORUS_PID" --pid "fake=$FAKE_PID" \
        --scenario many-streams --target chorus > "$WORK/streams-$requested.json" || log "many-streams $n failed"
    python3 - "$WORK/streams-$requested.json" "$RUNS" "$requested" "$note" <<'EOF'
import json, sys
path, runs, requested, note = sys.argv[1:5]
try:
    row = json.loads(open(path).read().strip().splitlines()[-1])
except Exception:
    row = {"scenario": "many-streams", "target": "chorus", "error": "no result"}
row["requested_streams"] = int(requested)
if note:
    row["note"] = note
open(runs, "a").write(json.dumps(row, sort_keys=True) + "\n")
EOF
done
stop_pid "$CHORUS_PID"
start_serve serve
wait_http "$CHORUS_URL/healthz" 30

# ----------------------------------------------------------------------------------------------
log "scenario 4: async tasks (Chorus distributed over Redis + PostgreSQL, Chorus embedded, Celery)"
REDIS_PORT=$(free_port)
mkdir -p "$WORK/redis"
start redis redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --daemonize no --dir "$WORK/redis" --save '' --appendonly no
REDIS_PID=$LAST_PID
REDIS_URL="redis://127.0.0.1:$REDIS_PORT"
PG_ROOT="$WORK/pg"
mkdir -p "$PG_ROOT/sock"
PG_PASSWORD=bench$RANDOM$RANDOM
echo "$PG_PASSWORD" > "$PG_ROOT/pwfile"
chown -R postgres "$PG_ROOT"
chmod 600 "$PG_ROOT/pwfile"
PG_PORT=$(free_port)
runuser -u postgres -- "$PG_BIN/initdb" -D "$PG_ROOT/data" -U postgres --auth-local=trust --auth-host=scram-sha-256 \
    --pwfile="$PG_ROOT/pwfile" -E UTF8 > "$WORK/initdb.log" 2>&1
PG_DATA="$PG_ROOT/data"
# Default durability (fsync on, synchronous_commit on): what a deployment runs.
runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$PG_DATA" -l "$PG_ROOT/server.log" \
    -o "-p $PG_PORT -k $PG_ROOT/sock -c listen_addresses=127.0.0.1 -c max_connections=300" -w -t 60 start > /dev/null
export PGPASSWORD=$PG_PASSWORD
psql -h 127.0.0.1 -p "$PG_PORT" -U postgres -d postgres -qc 'CREATE DATABASE chorus' > /dev/null
PG_URL="postgres://postgres:$PG_PASSWORD@127.0.0.1:$PG_PORT/chorus"
if [[ $QUICK == 0 ]]; then
    # How long one durable commit costs on this disk (PostgreSQL runs with fsync on).
    (cd "$PG_ROOT" && runuser -u postgres -- "$PG_BIN/pg_test_fsync" -s 1 -f "$PG_ROOT/fsync.test" > "$WORK/pg_test_fsync.txt" 2>&1) || true
fi

dist_config() {  # DIR CHECKPOINT
    serve_config "$1" "$2"
    cat >> "$1/chorus.yaml" <<EOF
storage: {postgres_url: "$PG_URL"}
redis: {url: "$REDIS_URL"}
EOF
}
dist_config "$WORK/dist" 5
start gateway "$CHORUS" gateway --config "$WORK/dist/chorus.yaml" --port 0
GATEWAY_PID=$LAST_PID
GATEWAY_URL="http://127.0.0.1:$(port_from_log gateway 60)"
start worker1 "$CHORUS" worker --config "$WORK/dist/chorus.yaml" --name w1 --models fake
WORKER1_PID=$LAST_PID
wait_http "$GATEWAY_URL/healthz" 30
GATEWAY_KEY=$(chorus_key "$WORK/dist/chorus.yaml")
sleep 1

TASK_BODY='{"prompt":"Say something. [[fake tokens=8]]","models":["fake"]}'
task_load() {  # BASE_URL KEY TARGET ARGS...
    local base=$1 key=$2 target=$3; shift 3
    "$LOADGEN" run --url "$base/v1/batches" --header "Authorization: Bearer $key" --kind task --expected-tokens 8 --body "$TASK_BODY" \
        --scenario async --target "$target" --out "$RUNS" --duration "$DUR" --warmup "$WARM" --grace "$GRACE" "$@" > /dev/null \
        || log "run failed: async $target $*"
    settle_async
}
settle_async() {
    settle "$FAKE_PID" "$CHORUS_PID" "$GATEWAY_PID" "$WORKER1_PID" "${WORKER2_PID:-}" "${CELERY_PID:-}" "$REDIS_PID" \
        "$(head -1 "$PG_DATA/postmaster.pid")"
}
celery_load() {  # TARGET ARGS...
    local target=$1; shift
    (cd "$BENCH/peers" && BENCH_REDIS_URL="$REDIS_URL/1" BENCH_FAKE_URL="$FAKE_URL" "$VENV/bin/python" celery_peer.py \
        --scenario async --target "$target" --out "$RUNS" --duration "$DUR" --warmup "$WARM" --grace "$GRACE" \
        --prompt 'Say something. [[fake tokens=8]]' "$@" > /dev/null) || log "run failed: async $target $*"
    settle_async
}

# The floor for submit -> first token: the same answer straight from the fake upstream, streamed.
load direct async-floor --kind stream --expected-tokens 8 --body "$(body fake-model true tokens=8)" \
    --rate "$ASYNC_RATE" --duration "$DUR" --warmup "$WARM" --grace "$GRACE"
task_load "$GATEWAY_URL" "$GATEWAY_KEY" chorus-dist-1w --rate "$ASYNC_RATE"
task_load "$GATEWAY_URL" "$GATEWAY_KEY" chorus-dist-1w --connections "$ASYNC_CONN" --pid "gateway=$GATEWAY_PID" --pid "worker1=$WORKER1_PID"

# Celery: the `start` helper runs in a subshell above, so start it here to keep its pid.
celery_worker() {  # CONCURRENCY -> CELERY_PID
    (cd "$BENCH/peers" && exec env BENCH_REDIS_URL="$REDIS_URL/1" BENCH_FAKE_URL="$FAKE_URL" "$VENV/bin/celery" -A celery_peer worker \
        --pool=prefork --concurrency="$1" --loglevel=WARNING --without-gossip --without-mingle --without-heartbeat) \
        > "$WORK/celery$1.log" 2>&1 &
    CELERY_PID=$!
    PIDS+=("$CELERY_PID")
    (cd "$BENCH/peers" && BENCH_REDIS_URL="$REDIS_URL/1" BENCH_FAKE_URL="$FAKE_URL" timeout 120 "$VENV/bin/python" -c '
import time, uuid, celery_peer as p, redis
r = redis.Redis.from_url(p.BROKER); tid = uuid.uuid4().hex
p.chat.apply_async(args=[tid, "warm [[fake tokens=2]]"], task_id=tid)
while not any(f.get(b"type") == b"finish" for _, f in r.xrange("ev:" + tid)): time.sleep(0.1)
') || log "celery worker did not answer"
}
celery_worker 1
celery_load celery-1w --rate "$ASYNC_RATE"
celery_load celery-1w --connections "$ASYNC_CONN"
stop_pid "$CELERY_PID"

WORKER2_PID=""
if [[ $ASYNC_TWO_WORKERS == 1 ]]; then
    start worker2 "$CHORUS" worker --config "$WORK/dist/chorus.yaml" --name w2 --models fake
    WORKER2_PID=$LAST_PID
    sleep 2
    task_load "$GATEWAY_URL" "$GATEWAY_KEY" chorus-dist-2w --rate "$ASYNC_RATE"
    task_load "$GATEWAY_URL" "$GATEWAY_KEY" chorus-dist-2w --connections "$ASYNC_CONN" --pid "gateway=$GATEWAY_PID" \
        --pid "worker1=$WORKER1_PID" --pid "worker2=$WORKER2_PID"

    celery_worker 2
    celery_load celery-2w --rate "$ASYNC_RATE"
    celery_load celery-2w --connections "$ASYNC_CONN"
    stop_pid "$CELERY_PID"
fi

task_load "$CHORUS_URL" "$CHORUS_KEY" chorus-embedded --rate "$ASYNC_RATE"
task_load "$CHORUS_URL" "$CHORUS_KEY" chorus-embedded --connections "$ASYNC_CONN" --pid "chorus=$CHORUS_PID"
[[ -n "$WORKER2_PID" ]] && stop_pid "$WORKER2_PID"
stop_pid "$WORKER1_PID"
stop_pid "$GATEWAY_PID"

# ----------------------------------------------------------------------------------------------
log "scenario 5: database writes per turn (PostgreSQL, counted from outside)"
psql -h 127.0.0.1 -p "$PG_PORT" -U postgres -d postgres -qc 'CREATE DATABASE chorus_storage' > /dev/null
dist_config "$WORK/storage" 1
sed -i "s#/chorus\"#/chorus_storage\"#" "$WORK/storage/chorus.yaml"
start gateway-storage "$CHORUS" gateway --config "$WORK/storage/chorus.yaml" --port 0
STORAGE_PID=$LAST_PID
STORAGE_URL="http://127.0.0.1:$(port_from_log gateway-storage 60)"
start worker-storage "$CHORUS" worker --config "$WORK/storage/chorus.yaml" --name ws --models fake
STORAGE_WORKER_PID=$LAST_PID
wait_http "$STORAGE_URL/healthz" 30
STORAGE_KEY=$(chorus_key "$WORK/storage/chorus.yaml")
sleep 1
# The same non-streamed saturation point through a gateway on PostgreSQL (a pool of connections
# instead of embedded SQLite's single writer), for comparison with scenario 1.
"$LOADGEN" run --url "$STORAGE_URL/v1/chat/completions" --header "Authorization: Bearer $STORAGE_KEY" --body "$(body fake false tokens=8)" --connections "$SAT_CONN" \
    --duration "$DUR" --warmup "$WARM" --grace "$GRACE" --pid "gateway=$STORAGE_PID" --pid "fake=$FAKE_PID" \
    --scenario nonstream-gateway --target chorus-gateway-pg --out "$RUNS" > /dev/null || log "gateway saturation run failed"
settle "$STORAGE_PID" "$STORAGE_WORKER_PID" "$(head -1 "$PG_DATA/postmaster.pid")"
"$VENV/bin/python" "$BENCH/peers/storage.py" --gateway "$STORAGE_URL" --header "Authorization: Bearer $STORAGE_KEY" --loadgen "$LOADGEN" \
    --pg-port "$PG_PORT" --pg-database chorus_storage --normal "$STORAGE_N" --long "$STORAGE_LONG" --failed "$STORAGE_FAIL" \
    --tasks "$STORAGE_FAIL" --stats-wait "$STATS_WAIT" --out "$RUNS" || log "storage scenario failed"
stop_pid "$STORAGE_WORKER_PID"
stop_pid "$STORAGE_PID"

# ----------------------------------------------------------------------------------------------
PROFILE_FILE=""
if [[ $PROFILE == 1 ]]; then
    log "profile: Chorus's non-streamed proxy path"
    PROFILE_FILE="$BENCH/results/$STAMP-profile.txt"
    "$BENCH/profile.sh" --chorus "$CHORUS" --fake-url "$FAKE_URL" --loadgen "$LOADGEN" \
        --work "$WORK/profile" --out "$PROFILE_FILE" || { log "profile failed"; PROFILE_FILE=""; }
fi

# ----------------------------------------------------------------------------------------------
SUITE_SECONDS=$(( $(date +%s) - SUITE_START ))
RESULT="$BENCH/results/$STAMP.json"
"$VENV/bin/python" - "$RUNS" "$RESULT" <<EOF
import json, platform, subprocess, sys
def sh(cmd):
    try:
        return subprocess.run(cmd, shell=True, capture_output=True, text=True, timeout=30).stdout.strip()
    except Exception as error:
        return f"unavailable: {error}"
runs = [json.loads(line) for line in open(sys.argv[1]) if line.strip()]
meta = {
    "timestamp": "$STAMP", "mode": "$([[ $QUICK == 1 ]] && echo quick || echo full)",
    "command": "bench/run.sh $*", "suite_seconds": $SUITE_SECONDS,
    "build_seconds": $BUILD_SECONDS, "setup_seconds": $SETUP_SECONDS,
    "nproc": sh("nproc"), "cpu": sh("grep -m1 'model name' /proc/cpuinfo | cut -d: -f2"),
    "memory": sh("free -h | sed -n 2p"), "kernel": platform.release(), "loadavg_end": sh("cat /proc/loadavg"),
    "nofile": "$NOFILE",
    "swift": sh("swift --version 2>&1 | head -1"),
    "litellm": sh("$VENV/bin/pip show litellm | grep ^Version"), "celery": sh("$VENV/bin/pip show celery | grep ^Version"),
    "redis": sh("redis-server --version"), "postgres": sh("$PG_BIN/postgres --version"),
    "python": sh("$VENV/bin/python --version"),
    "pg_test_fsync": sh("grep -E '^ +fdatasync' $WORK/pg_test_fsync.txt | head -1 | tr -s ' '"),
    "settings": {"duration_s": $DUR, "warmup_s": $WARM, "saturation_connections": $SAT_CONN,
                 "stream_tokens": $STREAM_TOKENS, "stream_token_rate": $STREAM_TOKEN_RATE,
                 "async_rate": $ASYNC_RATE, "async_connections": $ASYNC_CONN},
    "profile_file": "$PROFILE_FILE",
}
json.dump({"meta": meta, "runs": runs}, open(sys.argv[2], "w"), indent=1, sort_keys=True)
EOF
python3 "$BENCH/report.py" "$RESULT" | tee "${RESULT%.json}.md"
log "results: $RESULT (and ${RESULT%.json}.md); suite took ${SUITE_SECONDS}s (build ${BUILD_SECONDS}s, setup ${SETUP_SECONDS}s)"
