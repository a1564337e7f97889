"""Benchmark: ``mvsync apply`` against a rate-limited API, compared with the floor (issue 13).

    python benchmarks/bench_apply_ratelimit.py [--creates 600] [--concurrency 8]
        [--latency 0.02] [--rate-limit 100/10] [--rounds 3]

Each round starts ``mvsync emulator --rate-limit 100/10 --latency-ms 20`` as a process
with two customers (one bucket each), then

1. times ``mvsync apply --env bench --yes --concurrency 8`` of 600 creates as a real
   process (start-up, manifest, lists, creates with fsynced intent and key, fold,
   listing until visible), and reads how many of its POSTs the emulator refused;
2. times the floor (``bench_ratelimit_floor.floor``): the same creates from 8 threads
   paced by one bucket at 98/s, a limit it knows, each key fsynced.

It prints, per round and as medians: both times, the ratio, and the share of the
apply's create attempts refused with 429 (the aim: at most 1.15x and 3%).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_ratelimit_floor import FLOOR_KEY, control, floor, start_emulator

APPLY_KEY = "mvbench_apply_key"
POSTS = "POST /v1/applications"


def write_manifest(folder: Path, url: str, creates: int) -> Path:
    apps = "".join(
        f"  - name: Bench {n:05d}\n    answer_url: https://example.com/{n}\n"
        for n in range(creates)
    )
    manifest = folder / "mvsync.yaml"
    manifest.write_text(
        "version: 1\nenvironments:\n"
        f"  bench:\n    api_url: {url}\n    api_key_env: MV_BENCH_KEY\n"
        f"applications:\n{apps}"
    )
    return manifest


def time_apply(manifest: Path, concurrency: int) -> float:
    env = dict(os.environ, MV_BENCH_KEY=APPLY_KEY)
    command = [sys.executable, "-m", "mvsync", "-f", str(manifest), "apply", "--env", "bench"]
    command += ["--yes", "--concurrency", str(concurrency)]
    started = time.perf_counter()
    done = subprocess.run(
        command, capture_output=True, text=True, env=env, stdin=subprocess.DEVNULL, check=False
    )
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"apply failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    return elapsed


def one_round(args: argparse.Namespace) -> tuple[float, float, float, int]:
    keys = [APPLY_KEY, FLOOR_KEY]
    with (
        start_emulator(keys, latency=args.latency, rate_limit=args.rate_limit) as url,
        tempfile.TemporaryDirectory(prefix="bench-apply-rl-", dir=".") as scratch,
    ):
        manifest = write_manifest(Path(scratch), url, args.creates)
        apply_seconds = time_apply(manifest, args.concurrency)
        stats = control(url, "GET", "/_emulator/rate-limit")
        floor_result = floor(url, FLOOR_KEY, args.creates, args.concurrency, args.pace)
    assert isinstance(stats, dict)
    refused = int(stats.get("rate_limited", {}).get(POSTS, 0))
    share = refused / (args.creates + refused)
    return apply_seconds, floor_result.seconds, share, refused


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--creates", type=int, default=600)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--latency", type=float, default=0.02, help="seconds")
    parser.add_argument("--rate-limit", default="100/10", help="the emulator's RATE/BURST")
    parser.add_argument("--pace", type=float, default=98.0, help="the floor's creates/s")
    parser.add_argument("--rounds", type=int, default=3, help="fresh emulator each")
    args = parser.parse_args()
    print(
        f"{args.creates} creates, {args.latency * 1000:g} ms latency, concurrency "
        f"{args.concurrency}, emulator --rate-limit {args.rate_limit}, floor paced at "
        f"{args.pace:g}/s"
    )
    rounds = []
    for number in range(1, args.rounds + 1):
        apply_s, floor_s, share, refused = one_round(args)
        rounds.append((apply_s, floor_s, share))
        print(
            f"round {number}: apply {apply_s:.2f} s, floor {floor_s:.2f} s, "
            f"ratio {apply_s / floor_s:.2f}x, {refused} creates refused ({share:.1%})"
        )
    apply_median = statistics.median(r[0] for r in rounds)
    floor_median = statistics.median(r[1] for r in rounds)
    print(f"median apply (whole process): {apply_median:.2f} s")
    print(f"median floor: {floor_median:.2f} s")
    print(f"ratio (medians): {apply_median / floor_median:.2f}x")
    print(f"median share of creates refused (429): {statistics.median(r[2] for r in rounds):.1%}")


if __name__ == "__main__":
    main()
