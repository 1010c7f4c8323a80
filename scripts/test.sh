#!/usr/bin/env bash
# The README's test command: set up (idempotent), build, run the Swift tests, then the end-to-end
# suite (real chorus and fake-upstream processes, the OpenAI Python SDK, the real local model, and
# the distributed shape on real redis-server and PostgreSQL servers that the tests start on
# loopback in temporary folders and stop afterwards).
# Every test step runs even if an earlier one failed; the summary says which failed.
set -euo pipefail
cd "$(dirname "$0")/.."
root="$PWD"

scripts/setup.sh --with-databases --with-browser

echo "test: swift build --build-tests (debug)"
swift build --build-tests || { echo "test: FAILED: swift build" >&2; exit 1; }

results=()
failed=0
step() {  # step NAME COMMAND...: run it, remember how it went
  local name="$1"; shift
  echo "test: $name"
  local t0=$SECONDS
  if "$@"; then
    results+=("ok      $name ($((SECONDS - t0)) s)")
  else
    results+=("FAILED  $name ($((SECONDS - t0)) s)")
    failed=1
  fi
}

step "swift test" swift test --skip-build

if compgen -G "tests/e2e/test_*.py" >/dev/null; then
  # The OpenAI schemas live in the sibling folder shared/ (../shared in dev and in CI).
  schemas="${OPENAI_SCHEMAS:-$root/../shared/openai-schemas/chat-completions.json}"
  if [ ! -f "$schemas" ]; then
    echo "test: $schemas not found (set OPENAI_SCHEMAS)" >&2
    results+=("FAILED  end-to-end suite: no OpenAI schemas at $schemas")
    failed=1
  else
    step "end-to-end suite (pytest tests/e2e)" env \
      CHORUS_BIN="$root/.build/debug/chorus" \
      FAKE_UPSTREAM_BIN="$root/.build/debug/fake-upstream" \
      LLAMA_SERVER_BIN="$root/.venv/bin/llama-server" \
      CHORUS_LOCAL_MODEL="$root/models/SmolLM2-135M-Instruct.Q4_1.gguf" \
      OPENAI_SCHEMAS="$(realpath "$schemas")" \
      .venv/bin/python -m pytest -q tests/e2e
  fi
else
  results+=("skipped end-to-end suite (no tests/e2e/test_*.py)")
fi

echo
echo "test: summary"
printf '  %s\n' "${results[@]}"
if [ "$failed" -ne 0 ]; then
  echo "test: FAILED" >&2
  exit 1
fi
echo "test: all passed"
