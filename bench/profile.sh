#!/usr/bin/env bash
# Profile Chorus's non-streamed proxy path (POST /v1/chat/completions, stream=false, through
# `chorus serve` with SQLite, at saturation) and write the top frames to a text file.
#
#   bench/profile.sh --chorus BIN --fake-url URL --loadgen BIN --work DIR --out FILE [--seconds N]
#
# Sampler: `perf record` on the cycles counter when this machine has hardware counters
# (`perf stat -e instructions true` counts); otherwise on the kernel's cpu-clock timer (virtual
# machines), and valgrind's callgrind only if perf cannot record at all. Valgrind 3.19 (Debian 12)
# crashes on Swift 6.3 binaries here even with --tool=none, which is why callgrind is the last resort.
set -euo pipefail

SECONDS_TO_SAMPLE=8
while [[ $# -gt 0 ]]; do
    case "$1" in
        --chorus) CHORUS=$2; shift 2 ;;
        --fake-url) FAKE_URL=$2; shift 2 ;;
        --loadgen) LOADGEN=$2; shift 2 ;;
        --work) WORK=$2; shift 2 ;;
        --out) OUT=$2; shift 2 ;;
        --seconds) SECONDS_TO_SAMPLE=$2; shift 2 ;;
        *) echo "unknown option $1" >&2; exit 2 ;;
    esac
done
mkdir -p "$WORK"
cat > "$WORK/chorus.yaml" <<EOF
http: {host: 127.0.0.1, port: 0}
data_dir: $WORK/data
models:
  fake:
    provider: openai
    base_url: $FAKE_URL/v1
    upstream_model: fake-model
    retries: 0
EOF
BODY='{"model":"fake","stream":false,"messages":[{"role":"user","content":"Say something. [[fake tokens=8]]"}]}'
PID=""
trap '[[ -n "$PID" ]] && kill "$PID" 2>/dev/null; true' EXIT

wait_port() {
    local line
    for _ in $(seq 1800); do
        kill -0 "$PID" 2>/dev/null || { tail -20 "$WORK/chorus.log" >&2; return 1; }
        line=$(grep -o 'listening on http://[0-9.]*:[0-9]*' "$WORK/chorus.log" 2>/dev/null | head -1 || true)
        if [[ -n "$line" ]]; then echo "${line##*:}"; return 0; fi
        sleep 0.1
    done
    tail -20 "$WORK/chorus.log" >&2
    return 1
}

demangle() { if command -v swift-demangle > /dev/null; then swift-demangle --simplified; else swift demangle --simplified; fi; }

if perf stat -e instructions true 2>&1 | grep -q '[0-9] *instructions'; then
    EVENT=cycles
elif perf record -e cpu-clock -o "$WORK/probe.data" -- true > /dev/null 2>&1; then
    EVENT=cpu-clock
else
    EVENT=""
fi

# Accounts are on, as users run Chorus: the first start makes the administrator, then a key.
export CHORUS_ADMIN_PASSWORD=${CHORUS_ADMIN_PASSWORD:-bench-admin-password}
api_key() { "$CHORUS" user key --config "$WORK/chorus.yaml" --email admin@localhost --name profile; }

if [[ -n "$EVENT" ]]; then
    "$CHORUS" serve --config "$WORK/chorus.yaml" --port 0 > "$WORK/chorus.log" 2>&1 &
    PID=$!
    PORT=$(wait_port)
    AUTH="Authorization: Bearer $(api_key)"
    URL="http://127.0.0.1:$PORT/v1/chat/completions"
    "$LOADGEN" run --url "$URL" --header "$AUTH" --body "$BODY" --connections 8 --count 500 > /dev/null 2>&1
    "$LOADGEN" run --url "$URL" --header "$AUTH" --body "$BODY" --connections 16 --duration $((SECONDS_TO_SAMPLE + 2)) --warmup 1 \
        --pid "chorus=$PID" > "$WORK/load.json" 2> /dev/null &
    LOAD=$!
    sleep 1.5
    perf record -e "$EVENT" -F 2000 -g -o "$WORK/perf.data" -p "$PID" -- sleep "$SECONDS_TO_SAMPLE" > "$WORK/perf-record.log" 2>&1
    wait "$LOAD" || true
    REQUESTS=$(python3 -c "import json; r=json.load(open('$WORK/load.json')); print(r['ok'], 'requests ok,', r['errors'], 'errors,', r['achieved_rps'], 'req/s, p50', r['latency']['p50_us']/1000, 'ms; chorus CPU', r['processes']['chorus']['cpu_cores'], 'cores')" 2>/dev/null || echo "?")
    set +o pipefail  # `head` closes the pipes early on purpose
    {
        echo "# perf record -e $EVENT -F 2000 -g -p <chorus serve> for ${SECONDS_TO_SAMPLE}s, closed loop 16 connections, non-streamed, SQLite"
        echo "# load while sampling: $REQUESTS"
        echo
        echo "## By shared object (self)"
        perf report -i "$WORK/perf.data" --no-children --sort dso --stdio 2>/dev/null | grep -E '^ +[0-9]' | head -12
        echo
        echo "## Self cost, top symbols"
        perf report -i "$WORK/perf.data" --no-children --sort symbol --stdio -g none 2>/dev/null | grep -E '^ +[0-9]' | head -45
        echo
        echo "## Inclusive (children) cost, top symbols"
        perf report -i "$WORK/perf.data" --children --sort symbol --stdio -g none 2>/dev/null | grep -E '^ +[0-9]' | head -70
    } | demangle | cut -c1-240 > "$OUT"
    TOOL="perf ($EVENT)"
else
    TOOL=callgrind
    REQUESTS=400
    command -v valgrind > /dev/null || { apt-get install -y -qq valgrind > /dev/null; }
    # Valgrind 3.19 cannot read Swift 6's DWARF 5: profile a copy without debug info.
    objcopy --strip-debug "$CHORUS" "$WORK/chorus-nodebug"
    valgrind --tool=callgrind --collect-atstart=no --callgrind-out-file="$WORK/callgrind.out" \
        "$WORK/chorus-nodebug" serve --config "$WORK/chorus.yaml" --port 0 > "$WORK/chorus.log" 2>&1 &
    PID=$!
    PORT=$(wait_port)
    AUTH="Authorization: Bearer $(api_key)"
    URL="http://127.0.0.1:$PORT/v1/chat/completions"
    "$LOADGEN" run --url "$URL" --header "$AUTH" --body "$BODY" --connections 2 --count 50 --grace 120 > /dev/null 2>&1
    callgrind_control -i on "$PID" > /dev/null
    "$LOADGEN" run --url "$URL" --header "$AUTH" --body "$BODY" --connections 2 --count "$REQUESTS" --grace 300 > "$WORK/load.json"
    callgrind_control -i off "$PID" > /dev/null
    kill -INT "$PID"
    wait "$PID" 2>/dev/null || true
    PID=""
    OUTFILE=$(ls "$WORK"/callgrind.out* | head -1)
    set +o pipefail
    {
        echo "# valgrind --tool=callgrind, chorus serve (SQLite), $REQUESTS non-streamed requests, 2 connections"
        echo "## Self cost"
        callgrind_annotate --inclusive=no "$OUTFILE" 2>/dev/null | grep -E '^ *[0-9,]+ ' | head -45
        echo "## Inclusive cost"
        callgrind_annotate --inclusive=yes "$OUTFILE" 2>/dev/null | grep -E '^ *[0-9,]+ ' | head -60
    } | demangle | cut -c1-240 > "$OUT"
fi
echo "profile ($TOOL) written to $OUT" >&2
