#!/usr/bin/env bash
# Non-streamed saturation through `chorus serve` (SQLite) alone, for comparing builds side by side:
#
#   bench/saturation.sh [CHORUS_BINARY] [SECONDS] [MODEL]
#
# MODEL is `fake` (one deployment, the default) or `fake-pair` (the same upstream as two
# deployments, to see what picking a deployment costs).
# Starts the fake upstream and `chorus serve` on loopback (stopped at exit), warms up, then runs
# 16 connections in a closed loop for SECONDS (default 8) and prints the load generator's summary
# and the CPU of Chorus and of the upstream. Needs the release binaries (run bench/run.sh once).
# Asserts nothing.
set -euo pipefail
CP=; FP=
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BIN=${1:-$ROOT/.build/release/chorus}; D=${2:-8}; MODEL=${3:-fake}
R=$ROOT/.build/release
LOADGEN=$ROOT/bench/.build/release/chorus-bench
W=$(mktemp -d /tmp/chorus-saturation.XXXXXX)
trap 'kill $CP $FP 2>/dev/null; wait 2>/dev/null; rm -rf "$W"' EXIT
source "$ROOT/bench/common.sh"
"$R/fake-upstream" --port 0 --tokens 8 --rate 0 > "$W/fake.log" 2>&1 & FP=$!
chorus_config "$W" "$(port_of "$W/fake.log")" > "$W/chorus.yaml"
export CHORUS_ADMIN_PASSWORD=bench-admin-password
"$BIN" serve --config "$W/chorus.yaml" --port 0 > "$W/serve.log" 2>&1 & CP=$!
CPORT=$(port_of "$W/serve.log")
KEY=$("$BIN" user key --config "$W/chorus.yaml" --email admin@localhost --name bench)
BODY='{"model":"'$MODEL'","stream":false,"messages":[{"role":"user","content":"Say something. [[fake tokens=8]]"}]}'
$LOADGEN run --url "http://127.0.0.1:$CPORT/v1/chat/completions" --header "Authorization: Bearer $KEY" --body "$BODY" --connections 4 --count 200 --grace 30 > /dev/null 2>&1 || true
$LOADGEN run --url "http://127.0.0.1:$CPORT/v1/chat/completions" --header "Authorization: Bearer $KEY" --body "$BODY" \
  --connections 16 --duration $D --warmup 2 --grace 10 --pid chorus=$CP --pid fake=$FP > "$W/out.json" || true
tail -1 "$W/out.json" | python3 -c '
import json, sys
d = json.loads(sys.stdin.read())
cpu = ", ".join("%s %.2f cores" % (name, p["cpu_cores"]) for name, p in d["processes"].items())
ms = d["achieved_rps"] and d["processes"]["chorus"]["cpu_cores"] / d["achieved_rps"] * 1000
print("CPU: %s; Chorus %.2f ms of CPU per request" % (cpu, ms))'
