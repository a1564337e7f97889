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
apply's create attempts refused with 429 (the aim: at most 1.15x and 3%). The floor
pays no process start-up, manifest or listing, so it also prints where the apply's time
went, from the emulator's own clock (each application's id is the time it was created):
before its first create (start-up, imports, manifest, lock, the two lists), its creates
(first to last, the part the rate limiter decides, beside the floor's own), and after
the last (the fold, the confirmation listing, exit); and, once, the start-up and
imports alone (``python -c "import ..."`` of the modules an apply loads).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_ratelimit_floor import FLOOR_KEY, control, floor, start_emulator
from mvsync.emulator.state import app_id_ns

APPLY_KEY = "mvbench_apply_key"
POSTS = "POST /v1/applications"
APPLY_IMPORTS = "import mvsync.cli, mvsync.cli.apply, mvsync.apply.run, mvsync.api.client"


@dataclass(frozen=True)
class Round:
    apply: float  # the whole process, seconds
    floor: float
    refused: int
    share: float  # refused per create attempt
    before: float  # process start to the first create (the emulator's clock)
    creates: float  # first create to last
    after: float  # last create to the process's end
    floor_creates: float  # the floor's first create to its last

    @property
    def ratio(self) -> float:
        return self.apply / self.floor


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


def time_apply(manifest: Path, concurrency: int) -> tuple[float, float, float]:
    """The apply's seconds, and when it started and ended (``time.time()``)."""
    env = dict(os.environ, MV_BENCH_KEY=APPLY_KEY)
    command = [
        sys.executable,
        "-m",
        "mvsync",
        "-f",
        str(manifest),
        "apply",
        "--env",
        "bench",
        "--yes",
    ]
    command += ["--yes", "--concurrency", str(concurrency)]
    wall_start = time.time()
    started = time.perf_counter()
    done = subprocess.run(
        command, capture_output=True, text=True, env=env, stdin=subprocess.DEVNULL, check=False
    )
    elapsed = time.perf_counter() - started
    wall_end = time.time()
    if done.returncode != 0:
        raise SystemExit(f"apply failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    return elapsed, wall_start, wall_end


def created_span(url: str, key: str) -> tuple[float, float]:
    """When the customer's first and last applications were created (``time.time()``)."""
    answer = httpx.get(
        url + "/v1/applications", headers={"Authorization": f"Bearer {key}"}, timeout=30
    )
    answer.raise_for_status()
    stamps = [app_id_ns(app["id"]) for app in answer.json()["data"]]
    seconds = [ns / 1e9 for ns in stamps if ns is not None]
    return min(seconds), max(seconds)


def time_imports() -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", APPLY_IMPORTS], check=True)
    return time.perf_counter() - started


def one_round(args: argparse.Namespace) -> Round:
    keys = [APPLY_KEY, FLOOR_KEY]
    with (
        start_emulator(keys, latency=args.latency, rate_limit=args.rate_limit) as url,
        tempfile.TemporaryDirectory(prefix="bench-apply-rl-", dir=".") as scratch,
    ):
        manifest = write_manifest(Path(scratch), url, args.creates)
        apply_seconds, wall_start, wall_end = time_apply(manifest, args.concurrency)
        stats = control(url, "GET", "/_emulator/rate-limit")
        first, last = created_span(url, APPLY_KEY)
        floor_result = floor(url, FLOOR_KEY, args.creates, args.concurrency, args.pace)
        floor_first, floor_last = created_span(url, FLOOR_KEY)
    assert isinstance(stats, dict)
    refused = int(stats.get("rate_limited", {}).get(POSTS, 0))
    return Round(
        apply=apply_seconds,
        floor=floor_result.seconds,
        refused=refused,
        share=refused / (args.creates + refused),
        before=first - wall_start,
        creates=last - first,
        after=wall_end - last,
        floor_creates=floor_last - floor_first,
    )


def describe(r: Round) -> str:
    return (
        f"apply {r.apply:.2f} s, floor {r.floor:.2f} s, ratio {r.ratio:.2f}x, "
        f"{r.refused} creates refused ({r.share:.1%}); apply: {r.before:.2f} s before the "
        f"first create, creates {r.creates:.2f} s (floor's {r.floor_creates:.2f} s, "
        f"{r.creates / r.floor_creates:.2f}x), {r.after:.2f} s after the last"
    )


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
        result = one_round(args)
        rounds.append(result)
        print(f"round {number}: {describe(result)}")

    def median(field: str) -> float:
        return float(statistics.median(float(getattr(r, field)) for r in rounds))

    apply_median, floor_median = median("apply"), median("floor")
    print(f"median apply (whole process): {apply_median:.2f} s")
    print(f"median floor: {floor_median:.2f} s")
    print(f"ratio (medians): {apply_median / floor_median:.2f}x")
    print(f"median share of creates refused (429): {median('share'):.1%}")
    creates, floor_creates = median("creates"), median("floor_creates")
    print(
        f"median apply breakdown: {median('before'):.2f} s before the first create, "
        f"creates {creates:.2f} s, {median('after'):.2f} s after the last"
    )
    print(
        f"creates only (first to last), medians: apply {creates:.2f} s, floor "
        f"{floor_creates:.2f} s, ratio {creates / floor_creates:.2f}x"
    )
    print(f"start-up and imports alone (python -c 'import ...'): {time_imports():.2f} s")


if __name__ == "__main__":
    main()
