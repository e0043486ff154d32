"""Resident memory of the local stack under sustained load: is it flat, or growing with time?

    .venv/bin/python bench/memory.py [--rate 2000] [--duration-s 600] [--window-s 60]

Runs `tweetpipe up --rate RATE` (every port free, data in a temporary directory) for
`--duration-s`, samples every process's resident memory (VmRSS) every `--sample-s`, and prints
per process the peak over the first and the last `--window-s` and over the whole run, and the
growth between the windows per hour. Also: tweets produced (over every run of the generator: a
broker recycle stops and restarts it) and indexed after the Ctrl-C drain, broker recycles, the
data directory on disk. The last line printed is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx

from tests.support.local_stack import UpProcess, generator_runs

MB = 1024 * 1024


def say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def rss_bytes(pid: int) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except (FileNotFoundError, ProcessLookupError):
        return None
    return None


def pids(up: UpProcess) -> dict[str, int]:
    """The newest pid of every process the stack reported (restarts included)."""
    found: dict[str, int] = {}
    for name, pid in re.findall(r"\| (\S+) started \(pid (\d+)\)", up.text()):
        found[name] = int(pid)
    broker = re.findall(r"Kafka broker started \(pid (\d+)\)", up.text())
    if broker:
        found["broker (Tansu)"] = int(broker[-1])
    return found


def produced(up: UpProcess) -> float:
    """So far: the finished runs of the generator (each said how many) and the current one."""
    return sum(generator_runs(up.text())) + produced_by_current_run(up)


def produced_by_current_run(up: UpProcess) -> float:
    url = f"http://127.0.0.1:{up.ports['TWITTER_TO_KAFKA']}/metrics"
    try:
        text = httpx.get(url, timeout=5).text
    except httpx.HTTPError:
        return float("nan")
    for line in text.splitlines():
        if line.startswith("tweetpipe_tweets_produced_total "):
            return float(line.split()[1])
    return float("nan")


def disk_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=2000.0)
    parser.add_argument("--duration-s", type=float, default=600.0)
    parser.add_argument("--window-s", type=float, default=60.0)
    parser.add_argument("--sample-s", type=float, default=5.0)
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="tweetpipe-memory-"))
    up = UpProcess(workdir, "--rate", f"{args.rate:g}", "--seed", "1")
    samples: dict[str, list[tuple[float, int]]] = defaultdict(list)
    try:
        up.start()
        started = time.monotonic()
        say(f"stack up; sampling for {args.duration_s:.0f}s at {args.rate:g} tweets/s")
        next_report = started
        while (elapsed := time.monotonic() - started) < args.duration_s:
            for name, pid in pids(up).items():
                if (value := rss_bytes(pid)) is not None:
                    samples[name].append((elapsed, value))
            if time.monotonic() >= next_report:
                broker = samples.get("broker (Tansu)", [(0, 0)])[-1][1]
                say(
                    f"{elapsed:5.0f}s  produced {produced(up):,.0f}  indexed {up.indexed():,}"
                    f"  broker RSS {broker / MB:,.0f} MB"
                )
                next_report += 30
            time.sleep(args.sample_s)
        on_disk = disk_bytes(up.data_dir) + disk_bytes(up.index)
        drain_started = time.monotonic()
        code = up.interrupt()
        drain_s = time.monotonic() - drain_started
    finally:
        up.kill()
    log = up.text()
    total_produced = sum(generator_runs(log))  # every run has said its count by now
    indexed = up.indexed()
    restarts = re.findall(r"stopped \(restarts: (.*?)(?:, broker recycled \d+ times)?\)", log)
    recycle_s = [int(s) for s in re.findall(r"broker recycled in (\d+)s", log)]
    drained = "drained: lag 0" in log

    rows = {}
    end = args.duration_s
    for name, series in sorted(samples.items()):
        first = [v for t, v in series if t <= args.window_s]
        last = [v for t, v in series if t >= end - args.window_s]
        if not first or not last:
            continue
        start_peak, end_peak = max(first), max(last)
        hours = max((end - args.window_s) / 3600, 1e-9)
        rows[name] = {
            "peak_rss_start_mb": round(start_peak / MB, 1),
            "peak_rss_end_mb": round(end_peak / MB, 1),
            "peak_rss_run_mb": round(max(v for _, v in series) / MB, 1),
            "growth_mb_per_hour": round((end_peak - start_peak) / MB / hours, 1),
        }
    print(
        f"{'process':<24} {'peak RSS, start':>16} {'peak RSS, end':>14} {'peak, run':>12}"
        f" {'growth/h':>10}"
    )
    for name, row in rows.items():
        print(
            f"{name:<24} {row['peak_rss_start_mb']:>13.1f} MB {row['peak_rss_end_mb']:>11.1f} MB"
            f" {row['peak_rss_run_mb']:>9.1f} MB {row['growth_mb_per_hour']:>7.1f} MB"
        )
    summary = {
        "rate": args.rate,
        "duration_s": args.duration_s,
        "window_s": args.window_s,
        "produced": total_produced,
        "indexed_after_drain": indexed,
        "broker_recycles": len(recycle_s),
        "broker_recycle_s": recycle_s,
        "data_on_disk_mb": round(on_disk / MB, 1),
        "drain_s": round(drain_s, 1),
        "drained_to_zero_lag": drained,
        "exit_code": code,
        "restarts": restarts[-1] if restarts else None,
        "processes": rows,
    }
    print(json.dumps(summary))
    shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
