#!/usr/bin/env python3
"""A fine-tuning-shaped job for Chorus's declared commands (standard library only).

Chorus runs it as declared in examples/chorus-jobs.yaml: it reads its parameters from the
command line (the declaration's argv) or from CHORUS_PARAM_<NAME>, prints `PROGRESS e/n` after
each epoch (the task's state becomes PROGRESS with that meta), writes its model and metrics into
CHORUS_TASK_OUTPUT (they become the task's artifacts) and prints its result as the last JSON line.
SIGTERM (a cancel or a timeout) stops it between steps, as a real trainer would checkpoint.
"""

import argparse
import json
import math
import os
import random
import signal
import sys
import time

stopping = False


def on_term(signum, frame):
    global stopping
    stopping = True


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--epochs", type=int, default=int(os.environ.get("CHORUS_PARAM_EPOCHS", "3")))
    parser.add_argument("--data", default=os.environ.get("CHORUS_PARAM_DATASET", "demo"))
    parser.add_argument("--epoch-seconds", type=float, default=float(os.environ.get("FINE_TUNE_EPOCH_SECONDS", "0.5")))
    parser.add_argument("--fail-at", type=int, default=0, help="exit with status 3 at this epoch (for tests)")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, on_term)

    output = os.environ.get("CHORUS_TASK_OUTPUT") or "."
    rng = random.Random(f"{args.data}:{args.epochs}")
    weights = [rng.uniform(-1, 1) for _ in range(8)]
    history = []
    print(f"fine-tuning on dataset {args.data!r} for {args.epochs} epochs", flush=True)
    for epoch in range(1, args.epochs + 1):
        steps = 10
        for _ in range(steps):
            if stopping:
                print(f"stopped at epoch {epoch}", file=sys.stderr, flush=True)
                return 143
            time.sleep(args.epoch_seconds / steps)
            weights = [w * 0.9 + rng.uniform(-0.01, 0.01) for w in weights]
        loss = round(2.0 * math.exp(-0.6 * epoch) + rng.uniform(0, 0.02), 4)
        history.append({"epoch": epoch, "loss": loss})
        if args.fail_at == epoch:
            print(f"diverged at epoch {epoch}: loss is nan", file=sys.stderr, flush=True)
            return 3
        print(f"epoch {epoch}/{args.epochs} loss {loss}", flush=True)
        print(f"PROGRESS {epoch}/{args.epochs}", flush=True)

    with open(os.path.join(output, "model.json"), "w") as f:
        json.dump({"dataset": args.data, "epochs": args.epochs, "weights": weights}, f)
    with open(os.path.join(output, "metrics.csv"), "w") as f:
        f.write("epoch,loss\n" + "".join(f"{h['epoch']},{h['loss']}\n" for h in history))
    print(json.dumps({"dataset": args.data, "epochs": args.epochs, "final_loss": history[-1]["loss"] if history else None,
                      "artifacts": ["model.json", "metrics.csv"]}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
