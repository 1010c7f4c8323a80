#!/usr/bin/env bash
# The README's run command: set up once, build, and run Chorus embedded with the local model.
# Extra arguments go to `chorus serve` (e.g. --port 9000, --config other.yaml).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
echo "run: building chorus (release; the first build takes several minutes)"
swift build -c release --product chorus
exec .build/release/chorus serve "$@"
