#!/usr/bin/env python3
"""Renders a bench/results/<timestamp>.json as Markdown: tables, ratios, targets met or missed.

    python3 bench/report.py bench/results/<timestamp>.json
"""

from __future__ import annotations

import json
import os
import sys

TARGETS = ("direct", "chorus", "litellm")
NAMES = {"direct": "floor (fake upstream direct)", "chorus": "Chorus", "litellm": "LiteLLM proxy"}


def ms(us: float | None, digits: int = 2) -> str:
    return "–" if us is None else f"{us / 1000:.{digits}f}"


def pct(summary: dict | None, key: str) -> float | None:
    if not summary or not summary.get("count"):
        return None
    return summary.get(key)


def ratio(a: float | None, b: float | None) -> str:
    if a is None or b is None or b == 0:
        return "–"
    return f"{a / b:.1f}×"


def cpu_of(row: dict | None) -> str:
    processes = (row or {}).get("processes") or {}
    if not processes:
        return "–"
    return " + ".join(f"{name} {p.get('cpu_cores', 0):.2f}" for name, p in sorted(processes.items()))


def clean(row: dict) -> bool:
    return not row.get("skipped") and row.get("errors", 0) == 0


def held_streams(chorus: dict) -> int:
    """Streams Chorus held at its peak: two descriptors each (the client's and the upstream's)."""
    return max(0, int(chorus.get("descriptors_peak", 0) - chorus.get("descriptors_baseline", 0)) // 2)


def rss_per_held_stream(chorus: dict) -> float:
    held = held_streams(chorus)
    if not held:
        return chorus.get("rss_per_stream_kb", 0)  # results from before descriptors were sampled
    return (chorus.get("rss_peak_kb", 0) - chorus.get("rss_baseline_kb", 0)) / held


def main() -> None:
    data = json.load(open(sys.argv[1]))
    meta, runs = data["meta"], data["runs"]
    out: list[str] = []
    w = out.append

    w(f"# Chorus benchmark — {meta['timestamp']} ({meta['mode']})")
    w("")
    w(f"Machine: {meta['nproc']} cores ({meta['cpu'].strip()}), memory `{meta['memory']}`, kernel {meta['kernel']}, "
      f"open files limit {meta['nofile']}. Load average at the end: `{meta['loadavg_end']}`.")
    w(f"Versions: {meta['swift']}; litellm {meta['litellm'].replace('Version: ', '')}; celery "
      f"{meta['celery'].replace('Version: ', '')}; {meta['redis'].split(' sha')[0]}; {meta['postgres']}; {meta['python']}.")
    w(f"Suite {meta['suite_seconds']} s (build {meta['build_seconds']} s, setup {meta['setup_seconds']} s). "
      f"Each point: {meta['settings']['warmup_s']} s warm-up + {meta['settings']['duration_s']} s measured. "
      "Latencies in ms; open loop = fixed offered rate, latency from the request's due time (queueing included).")
    w("")

    # ------------------------------------------------------------------ non-streamed
    nonstream = [r for r in runs if r.get("scenario") == "nonstream"]
    w("## 1. Non-streamed proxy (`POST /v1/chat/completions`, 8-token answer)")
    w("")
    w("| offered | target | achieved req/s | p50 | p99 | p99.9 | errors |")
    w("|---|---|---:|---:|---:|---:|---:|")

    def key(r: dict):
        return (0, r.get("connections", 0)) if r.get("mode") == "closed" else (1, r.get("offered_rps", 0))

    points: dict[tuple, dict[str, dict]] = {}
    for r in sorted(nonstream, key=lambda r: (key(r), TARGETS.index(r["target"]))):
        label = f"saturation (closed, {r['connections']} conn)" if r.get("mode") == "closed" else f"{r['offered_rps']:g}/s"
        points.setdefault(key(r), {})[r["target"]] = r
        if r.get("skipped"):
            w(f"| {label} | {NAMES[r['target']]} | not run: {r['skipped']} | | | | |")
            continue
        lat = r.get("latency", {})
        errors = r.get("errors", 0)
        err = f"{errors} ({r.get('incomplete', 0)} incomplete)" if r.get("incomplete") else str(errors)
        w(f"| {label} | {NAMES[r['target']]} | {r['achieved_rps']:.0f} | {ms(pct(lat, 'p50_us'))} | "
          f"{ms(pct(lat, 'p99_us'))} | {ms(pct(lat, 'p999_us'))} | {err} |")
    w("")
    notes = []
    for r in nonstream:
        if r.get("mode") == "closed" and r.get("processes"):
            parts = [f"{name} {p.get('cpu_cores', 0):.2f}" for name, p in sorted(r["processes"].items())]
            notes.append(f"{NAMES[r['target']]} run: " + ", ".join(parts))
    if notes:
        w("CPU used during the saturation runs (cores, of 2): " + "; ".join(notes) + ".")
        w("")
    gateway = next((r for r in runs if r.get("scenario") == "nonstream-gateway"), None)
    if gateway:
        lat = gateway.get("latency", {})
        cpu = ", ".join(f"{n} {p.get('cpu_cores', 0):.2f} cores" for n, p in sorted(gateway.get("processes", {}).items()))
        w(f"Same request, closed loop {gateway.get('connections')} connections, through `chorus gateway` on PostgreSQL "
          f"instead of `chorus serve` on SQLite: {gateway['achieved_rps']:.0f} req/s, p50 {ms(pct(lat, 'p50_us'))} ms, "
          f"p99 {ms(pct(lat, 'p99_us'))} ms, {gateway.get('errors', 0)} errors ({cpu}).")
        w("")
    w("Added latency over the floor (target − direct at the same offered rate; ms):")
    w("")
    w("| offered | Chorus +p50 | Chorus +p99 | Chorus +p99.9 | LiteLLM +p50 | LiteLLM +p99 | LiteLLM +p99.9 | LiteLLM/Chorus (+p99) |")
    w("|---|---:|---:|---:|---:|---:|---:|---:|")
    added_p99_5k = None
    for k in sorted(points):
        group = points[k]
        direct = group.get("direct")
        if not direct or direct.get("skipped"):
            continue
        cells = []
        added = {}
        for target in ("chorus", "litellm"):
            row = group.get(target)
            for p in ("p50_us", "p99_us", "p999_us"):
                if row and not row.get("skipped"):
                    delta = pct(row["latency"], p) - pct(direct["latency"], p)
                    added[(target, p)] = delta
                    cells.append(ms(delta, 3))
                else:
                    cells.append("–")
        a, b = added.get(("litellm", "p99_us")), added.get(("chorus", "p99_us"))
        rel = f"{a / b:.0f}×" if a is not None and b is not None and b > 0 else "–"
        label = "saturation" if k[0] == 0 else f"{k[1]:g}/s"
        w(f"| {label} | " + " | ".join(cells) + f" | {rel} |")
        if k == (1, 5000):
            added_p99_5k = (added.get(("chorus", "p99_us")), group.get("chorus"))
    w("")
    sustainable: dict[str, float] = {}
    saturation: dict[str, float] = {}
    for r in nonstream:
        if r.get("skipped"):
            continue
        if r.get("mode") == "closed":
            saturation[r["target"]] = r["achieved_rps"]
        elif (r.get("errors", 0) == 0 and r["achieved_rps"] >= 0.95 * r["offered_rps"]
              and pct(r["latency"], "p99_us") is not None and pct(r["latency"], "p99_us") < 50_000):
            sustainable[r["target"]] = max(sustainable.get(r["target"], 0), r["offered_rps"])
    w("Throughput: saturation = closed loop; sustainable = highest offered rate tried with p99 < 50 ms, "
      "no errors and ≥ 95 % of it achieved.")
    w("")
    w("| | floor | Chorus | LiteLLM | Chorus ÷ LiteLLM |")
    w("|---|---:|---:|---:|---:|")
    w(f"| saturation req/s | {saturation.get('direct', 0):.0f} | {saturation.get('chorus', 0):.0f} | "
      f"{saturation.get('litellm', 0):.0f} | {ratio(saturation.get('chorus'), saturation.get('litellm'))} |")
    w(f"| sustainable req/s at p99 < 50 ms | {sustainable.get('direct', 0):g} | {sustainable.get('chorus', 0):g} | "
      f"{sustainable.get('litellm', 0):g} | {ratio(sustainable.get('chorus'), sustainable.get('litellm'))} |")
    w("")

    # ------------------------------------------------------------------ streamed
    w("## 2. Streamed proxy (20 tokens at 100 tokens/s, open loop)")
    w("")
    w("| target | streams/s | first token p50 | first token p99 | mean gap | gap p99 | tokens lost | errors |")
    w("|---|---:|---:|---:|---:|---:|---:|---:|")
    streamed = {r["target"]: r for r in runs if r.get("scenario") == "stream"}
    for target in TARGETS:
        r = streamed.get(target)
        if not r:
            continue
        w(f"| {NAMES[target]} | {r['achieved_rps']:.1f} | {ms(pct(r['first_token'], 'p50_us'))} | "
          f"{ms(pct(r['first_token'], 'p99_us'))} | {ms(pct(r['token_gap'], 'mean_us'))} | {ms(pct(r['token_gap'], 'p99_us'))} | "
          f"{r['tokens']['lost']} | {r['errors']} |")
    if "direct" in streamed:
        d = streamed["direct"]["first_token"]
        parts = []
        for target in ("chorus", "litellm"):
            if target in streamed and pct(streamed[target]["first_token"], "p50_us") is not None:
                t = streamed[target]["first_token"]
                parts.append(f"{NAMES[target]} +{ms(t['p50_us'] - d['p50_us'], 3)} ms p50 / +{ms(t['p99_us'] - d['p99_us'], 3)} ms p99")
        w("")
        w("Added time to first token over the floor: " + "; ".join(parts) + ".")
    w("")

    # ------------------------------------------------------------------ many streams
    many = [r for r in runs if r.get("scenario") == "many-streams"]
    ten_k = None
    if many:
        w(f"## 3. Concurrent SSE streams through Chorus ({meta['settings']['stream_tokens']} tokens at "
          f"{meta['settings']['stream_token_rate']} tokens/s each)")
        w("")
        w("| streams | peak open (client) | held by Chorus at peak | ok | errors | tokens received / expected | lost | Chorus RSS before → peak (MB) | RSS per held stream (KB) | Chorus CPU (cores) | fake CPU (cores) | first token p99 | gap p99 |")
        w("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
        for r in many:
            if "tokens" not in r:
                w(f"| {r.get('requested_streams')} | failed: {r.get('error')} |||||||||||")
                continue
            proc = r.get("processes", {})
            c, f = proc.get("chorus", {}), proc.get("fake", {})
            n = r.get("count", r["requested_streams"])
            label = f"{n}" if n == r["requested_streams"] else f"{n} (asked {r['requested_streams']})"
            w(f"| {label} | {r.get('peak_in_flight')} | {held_streams(c) or '–'} | {r['ok']} | {r['errors']} | {r['tokens']['received']} / {r['tokens']['expected']} | "
              f"{r['tokens']['lost']} | {c.get('rss_baseline_kb', 0) / 1024:.0f} → {c.get('rss_peak_kb', 0) / 1024:.0f} | "
              f"{rss_per_held_stream(c):.1f} | {c.get('cpu_cores', 0):.2f} | {f.get('cpu_cores', 0):.2f} | "
              f"{ms(pct(r['first_token'], 'p99_us'))} | {ms(pct(r['token_gap'], 'p99_us'))} |")
            ten_k = r
        notes = [r["note"] for r in many if r.get("note")]
        for note in notes:
            w("")
            w(f"Note: {note}.")
        w("")
        w("Held by Chorus = (its peak open descriptors − those before) ÷ 2: a stream holds the client's "
          "connection and the upstream's. The client counts a stream as open while it still waits in "
          "Chorus's accept queue, so when the cores saturate during the ramp Chorus holds fewer streams "
          "at once than the client has open, and the RSS is divided by the streams Chorus held.")
        w("")

    # ------------------------------------------------------------------ async
    rows = [r for r in runs if r.get("scenario") == "async"]
    floor = next((r for r in runs if r.get("scenario") == "async-floor"), None)
    floor_p99 = pct(floor["first_token"], "p99_us") if floor else None
    floor_p50 = pct(floor["first_token"], "p50_us") if floor else None
    async_overhead = None
    tasks_ratio: dict[str, tuple] = {}
    if rows:
        w("## 4. Asynchronous tasks: submit → first token, tasks/s (8-token answer)")
        w("")
        if floor:
            w(f"Floor: the same answer streamed straight from the fake upstream at {floor.get('offered_rps', 0):g}/s — "
              f"first token p50 {ms(floor_p50)} ms, p99 {ms(floor_p99)} ms.")
            w("")
        w("| target | open loop: tasks/s offered | first token p50 | first token p99 | overhead p99 over floor | finish p99 | closed loop: tasks/s | clients | Chorus CPU, closed loop (cores) | errors |")
        w("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
        order = ["chorus-dist-1w", "celery-1w", "chorus-dist-2w", "celery-2w", "chorus-embedded"]
        labels = {"chorus-dist-1w": "Chorus gateway + 1 worker (Redis Streams + PostgreSQL)",
                  "chorus-dist-2w": "Chorus gateway + 2 workers",
                  "chorus-embedded": "Chorus embedded (`serve`, SQLite, in-process queue)",
                  "celery-1w": "Celery, Redis broker, 1 prefork process",
                  "celery-2w": "Celery, Redis broker, 2 prefork processes"}
        throughput: dict[str, float] = {}
        for target in order:
            open_row = next((r for r in rows if r["target"] == target and r.get("mode") == "open"), None)
            closed_row = next((r for r in rows if r["target"] == target and r.get("mode") == "closed"), None)
            if not open_row and not closed_row:
                continue
            first = open_row.get("first_token") if open_row else None
            over = pct(first, "p99_us") - floor_p99 if first and pct(first, "p99_us") is not None and floor_p99 is not None else None
            if target == "chorus-dist-1w":
                async_overhead = over
            errors = (open_row or {}).get("errors", 0) + (closed_row or {}).get("errors", 0)
            if closed_row:
                throughput[target] = closed_row["achieved_rps"]
            w(f"| {labels[target]} | {open_row.get('offered_rps', 0) if open_row else '–':g} | {ms(pct(first, 'p50_us'))} | "
              f"{ms(pct(first, 'p99_us'))} | {ms(over)} | {ms(pct(open_row.get('latency') if open_row else None, 'p99_us'))} | "
              f"{closed_row['achieved_rps'] if closed_row else 0:.1f} | {closed_row.get('connections', '–') if closed_row else '–'} | "
              f"{cpu_of(closed_row)} | {errors} |")
        w("")
        accepted = [(labels[t].split(' (')[0], r["accepted"]) for t in order for r in rows
                    if r["target"] == t and r.get("mode") == "open" and r.get("accepted")]
        if accepted:
            w("Of the first token, the submission alone (`POST /v1/batches` until its `202` is read): " + "; ".join(
                f"{name} p50 {ms(pct(a, 'p50_us'))} ms, p99 {ms(pct(a, 'p99_us'))} ms" for name, a in accepted)
              + ". The rest is dispatch: the events request, the worker's claim, the upstream call and the relay.")
            w("")
        pairs = [("chorus-dist-1w", "celery-1w"), ("chorus-dist-2w", "celery-2w"), ("chorus-embedded", "celery-1w")]
        bits = []
        for a, b in pairs:
            if a in throughput and b in throughput:
                tasks_ratio[a] = (throughput[a], throughput[b])
                bits.append(f"{labels[a].split(' (')[0]} ÷ {labels[b].split(',')[0]} {b[-2:]}: {ratio(throughput[a], throughput[b])}")
        if bits:
            w("Tasks/s ratios: " + "; ".join(bits) + ".")
            w("")

    # ------------------------------------------------------------------ storage
    storage = [r for r in runs if r.get("scenario") == "storage"]
    normal_writes = None
    if storage:
        w("## 5. Database writes per turn (`chorus gateway`, PostgreSQL, counted from outside)")
        w("")
        w("| turn | turns | responses (status: count) | write transactions per turn | rows inserted per turn | rows updated per turn |")
        w("|---|---:|---|---:|---:|---:|")
        for r in storage:
            statuses = ", ".join(f"{k}: {v}" for k, v in sorted((r.get("status_counts") or {}).items()))
            w(f"| {r['turn']} | {r['turns']} | {statuses} | {r['write_xacts_per_turn']:.2f} | "
              f"{r.get('rows_inserted_per_turn', '–')} | {r.get('rows_updated_per_turn', '–')} |")
            if r["turn"] == "normal":
                normal_writes = r["write_xacts_per_turn"]
        w("")
        w(f"Write transactions = PostgreSQL transaction ids consumed (only writing transactions get one), less the "
          f"idle gateway's and worker's own ({storage[0]['idle_background_xacts_per_s']}/s). Each turn starts a new "
          "conversation. Rows: `pg_stat_user_tables` deltas (include the idle background).")
        if meta.get("pg_test_fsync"):
            w(f"One durable commit on this disk (`pg_test_fsync`, one 8 kB write): `{meta['pg_test_fsync'].strip()}`.")
        w("")

    # ------------------------------------------------------------------ targets
    w("## Targets (issue 5)")
    w("")
    w("| target | measured | verdict |")
    w("|---|---|---|")
    if added_p99_5k and added_p99_5k[0] is not None:
        added, row = added_p99_5k
        ok = added < 1000 and row["errors"] == 0 and row["achieved_rps"] >= 0.95 * 5000
        w(f"| p99 added latency < 1 ms at 5k req/s, non-streamed | +{ms(added, 3)} ms p99 at 5000/s offered "
          f"({row['achieved_rps']:.0f}/s achieved, {row['errors']} errors) | {'met' if ok else 'missed'} |")
    else:
        w("| p99 added latency < 1 ms at 5k req/s | not measured in this run | – |")
    cs, ls = sustainable.get("chorus"), sustainable.get("litellm")
    if cs and ls:
        w(f"| ≥ 100× LiteLLM's sustainable req/s at p99 < 50 ms | Chorus {cs:g}/s vs LiteLLM {ls:g}/s = {cs / ls:.0f}× "
          f"(saturation {ratio(saturation.get('chorus'), saturation.get('litellm'))}) | {'met' if cs / ls >= 100 else 'missed'} |")
    else:
        w(f"| ≥ 100× LiteLLM's sustainable req/s at p99 < 50 ms | Chorus {cs or 0:g}/s, LiteLLM {ls or 0:g}/s "
          f"(none of the rates tried) | {'not measurable' if not ls else 'missed'} |")
    if ten_k:
        c = ten_k.get("processes", {}).get("chorus", {})
        n = ten_k.get("count", ten_k["requested_streams"])
        peak = c.get("rss_peak_kb", 0) / 1024
        lost = ten_k["tokens"]["lost"]
        ok = lost == 0 and ten_k["errors"] == 0 and peak < 300
        if n >= 10000:
            verdict = "met" if ok else "missed"
            what = f"{n} streams, {lost} tokens lost, {ten_k['errors']} errors, RSS peak {peak:.0f} MB"
        else:
            projected = (c.get("rss_baseline_kb", 0) + rss_per_held_stream(c) * 10000) / 1024
            verdict = ("met at " + str(n) + " (10k not runnable here)") if ok else "missed"
            what = (f"{n} streams (asked {ten_k['requested_streams']}), {held_streams(c)} held by Chorus at once: {lost} tokens lost, "
                    f"{ten_k['errors']} errors, RSS peak {peak:.0f} MB; projected at 10k held at once: {projected:.0f} MB")
        w(f"| 10k concurrent streams, 0 lost tokens, RSS < 300 MB | {what} | {verdict} |")
    if async_overhead is not None:
        w(f"| async submit → first token overhead ≤ 5 ms p99 (Redis) | +{ms(async_overhead)} ms p99 over the floor "
          f"(gateway + 1 worker) | {'met' if async_overhead <= 5000 else 'missed'} |")
    for a, (x, y) in tasks_ratio.items():
        if a == "chorus-embedded":
            continue
        w(f"| ≥ 10× Celery's tasks/s ({a[-2:]} each) | {x:.1f} vs {y:.1f} tasks/s = {x / y:.1f}× | {'met' if x / y >= 10 else 'missed'} |")
    if normal_writes is not None:
        w(f"| 2 DB writes per normal turn | {normal_writes:.2f} write transactions per turn | "
          f"{'met' if abs(normal_writes - 2) < 0.15 else 'missed'} |")
    w("")

    profile = meta.get("profile_file")
    if profile and not os.path.exists(profile):  # results moved or read on another machine
        profile = os.path.join(os.path.dirname(os.path.abspath(sys.argv[1])), os.path.basename(profile))
    if profile and os.path.exists(profile):
        w("## Profile: Chorus's non-streamed proxy path (top frames)")
        w("")
        w("```")
        lines = [line.rstrip() for line in open(profile).read().splitlines()]
        cut = lines.index("## Self cost, top symbols") if "## Self cost, top symbols" in lines else 3
        w("\n".join(line for line in lines[:cut] if line))
        w("```")
        w("")
        w("Inclusive cost (top user-space frames; kernel and thread-start frames left out; full file: "
          f"`{os.path.relpath(profile, os.path.dirname(os.path.abspath(sys.argv[1])) + '/../..')}`):")
        w("")
        w("```")
        section = lines[lines.index("## Inclusive (children) cost, top symbols") + 1:] if "## Inclusive (children) cost, top symbols" in lines else []
        skip = ("[k]", "start_thread", "_dispatch_", "swift_job_run", "runJobInEstablishedExecutorContext", "NIOThread",
                "partial apply", "thunk for", "Result", "ThreadOpsPosix", "setupThreadAnd")
        shown = [line for line in section if not any(s in line for s in skip)]
        w("\n".join(shown[:30]))
        w("```")
        w("")
    print("\n".join(out))


if __name__ == "__main__":
    main()
