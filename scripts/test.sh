#!/usr/bin/env bash
# The README's test command: set up once, build, run the Swift tests, then the end-to-end suite
# (real chorus and fake-upstream processes, the OpenAI Python SDK, the real local model).
set -euo pipefail
cd "$(dirname "$0")/.."
root="$PWD"

scripts/setup.sh
echo "test: building (debug)"
swift build --build-tests
echo "test: swift test"
swift test --skip-build

schemas="${OPENAI_SCHEMAS:-}"
if [ -z "$schemas" ]; then
  for candidate in "$root/../shared/openai-schemas/chat-completions.json" "$root/shared/openai-schemas/chat-completions.json" "$root/tests/e2e/openai-schemas/chat-completions.json"; do
    if [ -f "$candidate" ]; then schemas="$candidate"; break; fi
  done
fi
[ -n "$schemas" ] || { echo "test: cannot find openai-schemas/chat-completions.json (set OPENAI_SCHEMAS)" >&2; exit 1; }

echo "test: end-to-end suite"
CHORUS_BIN="$root/.build/debug/chorus" \
FAKE_UPSTREAM_BIN="$root/.build/debug/fake-upstream" \
LLAMA_SERVER_BIN="$root/.venv/bin/llama-server" \
CHORUS_LOCAL_MODEL="$root/models/SmolLM2-135M-Instruct.Q4_1.gguf" \
OPENAI_SCHEMAS="$schemas" \
  .venv/bin/python -m pytest -q tests/e2e
echo "test: all passed"
