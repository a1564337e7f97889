"""Peak memory of ``mvsync plan`` against the strict floor: 100,000 applications x 1 environment.

    python benchmarks/bench_plan_memory.py [--apps 100000] [--repeat 3]

The same data as ``bench_plan.py`` (95% of the manifest's applications exist, 1 in 50 of
those drifted, 2% unmanaged), one environment. Both run as fresh subprocesses against one
emulator in this process; each one's peak resident set (``ru_maxrss`` of the child, as
``/usr/bin/time -f %M`` reports it) and wall time are printed per round, then the medians
and the ratio plan / floor (aim: at most 1.2x). The floor is bench_plan's strict one:
PyYAML's C loader, one httpx GET, dict compare.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_plan import KEY_VARS, KEYS, STRICT_FLOOR, TIMER, write_manifest, write_state
from mvsync.emulator import Emulator

ENVIRONMENT = ("prod",)


def peak(argv: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Run ``argv`` once in a fresh child: (peak RSS in MB, seconds)."""
    started = time.perf_counter()
    # A fork of a small launcher per run: ru_maxrss of RUSAGE_CHILDREN is the largest
    # child so far, so each measurement is taken in a child of its own.
    launcher = (
        "import resource, subprocess, sys\n"
        "subprocess.run(sys.argv[1:], check=True, stdout=subprocess.DEVNULL)\n"
        "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", launcher, *argv], env=env, capture_output=True, text=True
    )
    seconds = time.perf_counter() - started
    if done.returncode:
        raise SystemExit(f"{argv[:4]} failed:\n{done.stderr}")
    return int(done.stdout.split()[-1]) / 1024, seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--apps", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    assert resource.RUSAGE_CHILDREN  # POSIX only
    with tempfile.TemporaryDirectory(prefix="mvsync-bench-mem-") as folder:
        state = Path(folder) / "state.jsonl"
        write_state(state, args.apps, ENVIRONMENT)
        with Emulator([KEYS["prod"]], state_file=state) as server:
            manifest = Path(folder) / "mvsync.yaml"
            write_manifest(manifest, args.apps, server.url, ENVIRONMENT)
            env = {**os.environ, KEY_VARS["prod"]: KEYS["prod"]}
            env.pop("GITHUB_STEP_SUMMARY", None)
            commands = {
                "plan": [
                    sys.executable,
                    "-m",
                    "mvsync",
                    "plan",
                    "-f",
                    str(manifest),
                    "--format",
                    "json",
                ],
                "strict floor": [sys.executable, "-c", TIMER + STRICT_FLOOR, str(manifest)],
            }
            runs: dict[str, list[tuple[float, float]]] = {name: [] for name in commands}
            for round_ in range(1, args.repeat + 1):
                for name, argv in commands.items():
                    runs[name].append(peak(argv, env))
                print(
                    f"round {round_}: "
                    + "  ".join(
                        f"{name} {runs[name][-1][0]:.0f} MB {runs[name][-1][1]:.2f} s"
                        for name in commands
                    ),
                    flush=True,
                )
    medians = {name: statistics.median(mb for mb, _ in values) for name, values in runs.items()}
    times = {name: statistics.median(s for _, s in values) for name, values in runs.items()}
    print(
        f"{args.apps} apps x 1 env, medians of {args.repeat}: plan {medians['plan']:.0f} MB "
        f"({times['plan']:.2f} s), strict floor {medians['strict floor']:.0f} MB "
        f"({times['strict floor']:.2f} s); peak plan/floor "
        f"{medians['plan'] / medians['strict floor']:.2f}x (aim <= 1.2x)"
    )


if __name__ == "__main__":
    main()
