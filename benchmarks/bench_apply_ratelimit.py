"""Benchmark: ``mvsync apply`` against a rate-limited API, compared with the floor (issues 13, 24).

    python benchmarks/bench_apply_ratelimit.py [--creates 600] [--concurrency 8]
        [--latency 0.02] [--rate-limit 100/10] [--rounds 3]

Each round runs three cases, each an ``mvsync apply --env bench --yes --concurrency 8``
of 600 creates as a real process (start-up, manifest, lists, creates with fsynced intent
and key, fold, listing until visible), against ``mvsync emulator --rate-limit 100/10
--latency-ms 20`` (a process, two customers, one bucket each), reading how many of its
POSTs the emulator refused:

1. ``429``: the API says nothing of its limit but ``Retry-After: 1`` when it refuses; a
   fresh secrets folder (nothing remembered): the apply learns the rate from refusals;
2. ``remembered``: a second apply of 600 other names into the same folder and the same
   API, right after the first: it starts from the rate the first one kept beside the
   secrets file (``.pace``);
3. ``announced``: a fresh emulator with ``--rate-limit-headers`` (the IETF RateLimit
   fields) and a fresh folder: paced from the first answer.

and the floor (``bench_ratelimit_floor.floor``): the same creates from 8 threads paced by
one bucket at 98/s, a limit it knows, each key fsynced.

It prints, per round and case and as medians: both times, the ratio, and the share of the
apply's create attempts refused with 429 (aims: 429 case <= 1.25x and 2%, announced
<= 1.1x and 1%). The floor pays no process start-up, manifest or listing, so it also
prints where the apply's time went, from the emulator's own clock (each application's id
is the time it was created): before its first create (start-up, imports, manifest, lock,
the two lists), its creates (first to last, the part the rate limiter decides, beside the
floor's own), and after the last (the fold, the confirmation listing, exit); and, once,
the start-up and imports alone (``python -c "import ..."`` of the modules an apply loads).
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
from installed import byte_compile_mvsync
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


def write_manifest(folder: Path, url: str, creates: int, prefix: str = "Bench") -> Path:
    apps = "".join(
        f"  - name: {prefix} {n:05d}\n    answer_url: https://example.com/{n}\n"
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


def created_span(url: str, key: str, prefix: str = "") -> tuple[float, float]:
    """When the customer's first and last applications (named ``prefix...``) were created."""
    answer = httpx.get(
        url + "/v1/applications", headers={"Authorization": f"Bearer {key}"}, timeout=30
    )
    answer.raise_for_status()
    stamps = [
        app_id_ns(app["id"]) for app in answer.json()["data"] if app["name"].startswith(prefix)
    ]
    seconds = [ns / 1e9 for ns in stamps if ns is not None]
    return min(seconds), max(seconds)


def refused_posts(url: str) -> int:
    stats = control(url, "GET", "/_emulator/rate-limit")
    assert isinstance(stats, dict)
    return int(stats.get("rate_limited", {}).get(POSTS, 0))


def measured_apply(url: str, folder: Path, args: argparse.Namespace, prefix: str) -> Round:
    """One apply of ``args.creates`` names ``prefix NNNNN`` in ``folder``, then the floor."""
    manifest = write_manifest(folder, url, args.creates, prefix)
    refused_before = refused_posts(url)
    apply_seconds, wall_start, wall_end = time_apply(manifest, args.concurrency)
    refused = refused_posts(url) - refused_before
    first, last = created_span(url, APPLY_KEY, prefix)
    floor_prefix = f"floor {prefix} "
    floor_result = floor(
        url, FLOOR_KEY, args.creates, args.concurrency, args.pace, prefix=floor_prefix
    )
    floor_first, floor_last = created_span(url, FLOOR_KEY, floor_prefix)
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


CASES = ("429", "remembered", "announced")


def one_round(args: argparse.Namespace) -> dict[str, Round]:
    keys = [APPLY_KEY, FLOOR_KEY]
    results: dict[str, Round] = {}
    limited = {"latency": args.latency, "rate_limit": args.rate_limit}
    with (
        start_emulator(keys, **limited) as url,
        tempfile.TemporaryDirectory(prefix="bench-apply-rl-", dir=".") as scratch,
    ):
        results["429"] = measured_apply(url, Path(scratch), args, "Bench")
        pace = Path(scratch) / ".mvsync" / "bench.secrets.yaml.pace"
        if not pace.exists():
            raise SystemExit("the first apply kept no rate beside its secrets file")
        print(f"  kept after the first apply: {pace.read_text().strip()}", flush=True)
        time.sleep(0.5)  # both buckets full again, as for a run started a moment later
        results["remembered"] = measured_apply(url, Path(scratch), args, "Second")
    with (
        start_emulator(keys, **limited, rate_limit_headers=True) as url,
        tempfile.TemporaryDirectory(prefix="bench-apply-rl-", dir=".") as scratch,
    ):
        results["announced"] = measured_apply(url, Path(scratch), args, "Bench")
    return results


def time_imports() -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", APPLY_IMPORTS], check=True)
    return time.perf_counter() - started


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
    parser.add_argument("--rounds", type=int, default=3, help="fresh emulators each")
    args = parser.parse_args()
    byte_compile_mvsync()
    print(
        f"{args.creates} creates, {args.latency * 1000:g} ms latency, concurrency "
        f"{args.concurrency}, emulator --rate-limit {args.rate_limit}, floor paced at "
        f"{args.pace:g}/s"
    )
    rounds: list[dict[str, Round]] = []
    for number in range(1, args.rounds + 1):
        result = one_round(args)
        rounds.append(result)
        for case in CASES:
            print(f"round {number}, {case:<10}: {describe(result[case])}", flush=True)

    for case in CASES:

        def median(field: str, case: str = case) -> float:
            return float(statistics.median(float(getattr(r[case], field)) for r in rounds))

        apply_median, floor_median = median("apply"), median("floor")
        creates, floor_creates = median("creates"), median("floor_creates")
        print(
            f"{case:<10} medians of {len(rounds)}: apply {apply_median:.2f} s, floor "
            f"{floor_median:.2f} s, ratio {apply_median / floor_median:.2f}x, refused "
            f"{median('share'):.1%}; {median('before'):.2f} s before the first create, "
            f"creates {creates:.2f} s (floor's {floor_creates:.2f} s, "
            f"{creates / floor_creates:.2f}x), {median('after'):.2f} s after the last"
        )
    print(f"start-up and imports alone (python -c 'import ...'): {time_imports():.2f} s")


if __name__ == "__main__":
    main()
