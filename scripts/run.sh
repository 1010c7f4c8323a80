#!/usr/bin/env bash
# The README's run command: set up (idempotent), build a release chorus, and serve with chorus.yaml
# (the `local` model: llama-server from .venv/bin with models/SmolLM2-135M-Instruct.Q4_1.gguf).
# Extra arguments go to `chorus serve`, e.g. scripts/run.sh --port 9000.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
echo "run: swift build -c release --product chorus (the first release build takes several minutes)"
swift build -c release --product chorus
exec .build/release/chorus serve "$@"
