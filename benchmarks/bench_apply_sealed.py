"""Benchmark: the cost of sealing — ``mvsync apply`` of 1,000 creates with and without
age recipients, in one run, against the same floor.

    python benchmarks/bench_apply_sealed.py [--creates 1000] [--latency 0.02] [--rounds 3]

Each round starts a fresh emulator (``bench_apply.start_emulator``) and times, in turn,
the apply of a manifest without recipients (keys plain), the same manifest with two
recipients (each key sealed to both in memory before it is journalled), and the floor
(the POSTs and an fsynced append of each key, nothing else). It prints the medians of
the rounds, the ratio of each apply to the floor, and the sealed/plain ratio.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from pathlib import Path

from pyrage import x25519

from bench_apply import control, start_emulator, time_apply, time_floor, write_manifest
from installed import byte_compile_mvsync


def with_recipients(manifest: Path, count: int) -> Path:
    recipients = ", ".join(str(x25519.Identity.generate().to_public()) for _ in range(count))
    text = manifest.read_text().replace("version: 1\n", f"version: 1\nrecipients: [{recipients}]\n")
    sealed = manifest.with_name("sealed.yaml")
    sealed.write_text(text)
    return sealed


def one_round(creates: int, latency: float, concurrency: int) -> tuple[float, float, float]:
    times: list[float] = []
    for sealed in (False, True):
        emulator, url = start_emulator()
        try:
            control(url, "PUT", "/_emulator/latency", {"seconds": latency})
            with tempfile.TemporaryDirectory(prefix="bench-sealed-", dir=".") as scratch:
                folder = Path(scratch)
                manifest = write_manifest(folder, url, creates)
                if sealed:
                    manifest = with_recipients(manifest, 2)
                times.append(time_apply(folder, manifest, concurrency))
                if sealed:
                    times.append(time_floor(folder, url, creates, concurrency))
        finally:
            emulator.terminate()
            emulator.wait(timeout=10)
    plain, sealed_time, floor = times
    return plain, sealed_time, floor


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--creates", type=int, default=1000)
    parser.add_argument("--latency", type=float, default=0.02)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    byte_compile_mvsync()
    rounds = [one_round(args.creates, args.latency, args.concurrency) for _ in range(args.rounds)]
    plain = statistics.median(r[0] for r in rounds)
    sealed = statistics.median(r[1] for r in rounds)
    floor = statistics.median(r[2] for r in rounds)
    print(
        f"{args.creates} creates, {args.latency * 1000:g} ms latency, "
        f"concurrency {args.concurrency}, median of {args.rounds}"
    )
    print(f"apply, plain keys:               {plain:.2f} s  ({plain / floor:.2f}x floor)")
    print(f"apply, sealed to two recipients: {sealed:.2f} s  ({sealed / floor:.2f}x floor)")
    print(f"floor (POST + fsync'd append):   {floor:.2f} s")
    print(f"sealed / plain: {sealed / plain:.3f}x")


if __name__ == "__main__":
    main()
