"""Benchmark: ``mvsync apply`` of 1,000 creates with the secrets file vs PostgreSQL state.

    python benchmarks/bench_apply_pg.py [--creates 1000] [--latency 0.02] [--concurrency 8]

In one run, each against a fresh ``mvsync emulator`` process with the given latency:

1. ``file``: the secrets file beside the manifest, keys sealed to one age recipient;
2. ``pg``: the same manifest with ``state_url`` — a real PostgreSQL server started for
   the benchmark (tests/pgserver.py: initdb, Unix socket, fsync and synchronous_commit on),
   two synchronous commits per create, the lock on its own session.

Prints both times and the ratio pg / file.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from pyrage import x25519

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent / "tests")]

import pgserver  # noqa: E402  (tests/pgserver.py)
from bench_apply import APPLY_KEY, control, start_emulator  # noqa: E402
from installed import byte_compile_mvsync  # noqa: E402


def write_manifest(folder: Path, url: str, creates: int, recipient: str, state: bool) -> Path:
    apps = "".join(
        f"  - name: Bench {n:05d}\n    answer_url: https://example.com/{n}\n"
        for n in range(creates)
    )
    state_url = "    state_url: ${MVSYNC_STATE_URL}\n" if state else ""
    manifest = folder / "mvsync.yaml"
    manifest.write_text(
        f"version: 1\nrecipients: [{recipient}]\nenvironments:\n"
        f"  bench:\n    api_url: {url}\n    api_key_env: MV_BENCH_KEY\n{state_url}"
        f"applications:\n{apps}"
    )
    return manifest


def time_apply(manifest: Path, concurrency: int, state_url: str) -> float:
    env = dict(os.environ, MV_BENCH_KEY=APPLY_KEY, MVSYNC_STATE_URL=state_url)
    started = time.perf_counter()
    done = subprocess.run(
        [
            *(
                sys.executable,
                "-m",
                "mvsync",
                "-f",
                str(manifest),
                "apply",
                "--env",
                "bench",
                "--yes",
            ),
            *("--yes", "--concurrency", str(concurrency)),
        ],
        capture_output=True,
        text=True,
        env=env,
        stdin=subprocess.DEVNULL,
        check=False,
    )
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"apply failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    return elapsed


def one(kind: str, args: argparse.Namespace, recipient: str, server: pgserver.PgServer) -> float:
    emulator, url = start_emulator()
    try:
        control(url, "PUT", "/_emulator/latency", {"seconds": args.latency})
        state_url = server.create_database() if kind == "pg" else ""
        with tempfile.TemporaryDirectory(prefix="bench-apply-pg-", dir=".") as scratch:
            manifest = write_manifest(
                Path(scratch), url, args.creates, recipient, state=kind == "pg"
            )
            return time_apply(manifest, args.concurrency, state_url)
    finally:
        emulator.terminate()
        emulator.wait(timeout=10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--creates", type=int, default=1000)
    parser.add_argument("--latency", type=float, default=0.02)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=1, help="best of N (fresh emulator each)")
    args = parser.parse_args()
    byte_compile_mvsync()
    reason = pgserver.why_unavailable()
    bindir = pgserver.find_bindir()
    if reason is not None or bindir is None:
        raise SystemExit(f"no PostgreSQL server: {reason}")
    recipient = str(x25519.Identity.generate().to_public())
    server = pgserver.PgServer(bindir)
    try:
        server.init()
        server.start()
        times: dict[str, list[float]] = {"file": [], "pg": []}
        for _ in range(args.rounds):
            for kind in times:  # interleaved: both see the same machine load
                times[kind].append(one(kind, args, recipient, server))
    finally:
        server.destroy()
    best = {kind: min(values) for kind, values in times.items()}
    print(
        f"{args.creates} creates, {args.latency * 1000:g} ms latency, "
        f"concurrency {args.concurrency}, keys sealed, best of {args.rounds}"
    )
    print(f"apply, secrets file:            {best['file']:.2f} s")
    print(f"apply, PostgreSQL (Unix socket): {best['pg']:.2f} s")
    print(f"ratio pg / file: {best['pg'] / best['file']:.2f}x")


if __name__ == "__main__":
    main()
