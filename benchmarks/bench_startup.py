"""What a command costs before it does any work: ``mvsync --version`` and ``--help``.

    python benchmarks/bench_startup.py [--runs 10] [--repeat 3]

Each round times, ``--runs`` times each, interleaved (so that drift in the machine hits
all alike), fresh processes of:

- ``mvsync --version`` (the console script's fast path: no click, no commands),
- the floor: ``python -c "import click"``, the least any click tool starts with,
- ``python -c pass``, the interpreter alone, for scale,
- ``mvsync --help`` (click and the group, no command's module but to list their names),

and prints each round's medians, then the medians of the rounds and the ratios
``--version`` / floor (aim: at most 1.25x) and ``--help`` / floor.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time

from installed import byte_compile_mvsync

CASES: dict[str, list[str]] = {
    "mvsync --version": [sys.executable, "-m", "mvsync", "--version"],
    "import click": [sys.executable, "-c", "import click"],
    "python pass": [sys.executable, "-c", "pass"],
    "mvsync --help": [sys.executable, "-m", "mvsync", "--help"],
}


def timed(argv: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    byte_compile_mvsync()
    for argv in CASES.values():
        timed(argv)  # warm the OS caches once for each
    rounds: dict[str, list[float]] = {name: [] for name in CASES}
    for round_ in range(args.repeat):
        runs: dict[str, list[float]] = {name: [] for name in CASES}
        for _ in range(args.runs):
            for name, argv in CASES.items():
                runs[name].append(timed(argv))
        for name, values in runs.items():
            rounds[name].append(statistics.median(values))
        print(
            f"round {round_ + 1} (medians of {args.runs}): "
            + "  ".join(f"{name} {values[-1] * 1000:.0f} ms" for name, values in rounds.items()),
            flush=True,
        )
    median = {name: statistics.median(values) for name, values in rounds.items()}
    print(f"medians of {args.repeat} rounds:")
    for name, values in rounds.items():
        each = " ".join(f"{value * 1000:.0f}" for value in values)
        print(f"  {name:<17} {median[name] * 1000:5.0f} ms  [{each}]")
    floor = median["import click"]
    print(
        f"--version/import click {median['mvsync --version'] / floor:.2f}x (aim <= 1.25x); "
        f"--help/import click {median['mvsync --help'] / floor:.2f}x"
    )


if __name__ == "__main__":
    main()
