"""How fast the emulator starts, stops and creates (issue 2: well under a second; >= 1,000/s).

    python benchmarks/bench_emulator.py [--creates 3000] [--threads 4]

Prints the figures; asserts nothing (no test asserts on time).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

from installed import byte_compile_mvsync
from mvsync.emulator import Emulator

KEY = "bench-key"
BODY = {"name": "Support IVR", "answer_url": "https://example.com/minivoice/answer"}


def start_stop_times(rounds: int) -> tuple[list[float], list[float], list[float]]:
    """start() alone; start() until the first answer arrived; stop()."""
    starts, answered, stops = [], [], []
    # One client for all rounds: building an httpx.Client (its SSL context) costs
    # ~15 ms, which is the client's cost, not the emulator's.
    with httpx.Client(headers={"Authorization": f"Bearer {KEY}"}) as client:
        for _ in range(rounds):
            emulator = Emulator([KEY])
            began = time.perf_counter()
            emulator.start()
            starts.append(time.perf_counter() - began)
            client.get(emulator.url + "/v1/applications").raise_for_status()
            answered.append(time.perf_counter() - began)
            began = time.perf_counter()
            emulator.stop()
            stops.append(time.perf_counter() - began)
    return starts, answered, stops


def cli_ready_time() -> float:
    """From exec to the listening line of `mvsync emulator` (includes Python start-up)."""
    began = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "-m", "mvsync", "emulator", "--port", "0", "--api-key", KEY],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert process.stdout is not None
    process.stdout.readline()
    elapsed = time.perf_counter() - began
    process.terminate()
    process.communicate()
    return elapsed


def creates_per_second(emulator: Emulator, creates: int, threads: int) -> float:
    per_thread = creates // threads
    barrier = threading.Barrier(threads + 1)

    def work() -> None:
        with httpx.Client(
            base_url=emulator.url, headers={"Authorization": f"Bearer {KEY}"}
        ) as client:
            client.get("/v1/applications")  # open the connection before the clock starts
            barrier.wait()
            for _ in range(per_thread):
                response = client.post("/v1/applications", json=BODY)
                response.raise_for_status()

    workers = [threading.Thread(target=work) for _ in range(threads)]
    for worker in workers:
        worker.start()
    barrier.wait()
    began = time.perf_counter()
    for worker in workers:
        worker.join()
    return per_thread * threads / (time.perf_counter() - began)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--creates", type=int, default=3000)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=50)
    args = parser.parse_args()
    byte_compile_mvsync()

    starts, answered, stops = start_stop_times(args.rounds)
    print(
        f"start() to listening: median {statistics.median(starts) * 1000:.2f} ms, "
        f"max {max(starts) * 1000:.2f} ms over {args.rounds} starts"
    )
    print(
        f"start() to first answer: median {statistics.median(answered) * 1000:.2f} ms, "
        f"max {max(answered) * 1000:.2f} ms"
    )
    print(f"stop: median {statistics.median(stops) * 1000:.2f} ms, max {max(stops) * 1000:.2f} ms")
    print(f"`mvsync emulator` process, exec to listening: {cli_ready_time() * 1000:.0f} ms")

    with Emulator([KEY]) as emulator:
        rate = creates_per_second(emulator, args.creates, args.threads)
    print(f"creates/s in memory: {rate:,.0f} ({args.creates} creates, {args.threads} threads)")

    with tempfile.TemporaryDirectory() as tmp, Emulator([KEY], state_file=Path(tmp) / "s") as emu:
        rate = creates_per_second(emu, args.creates, args.threads)
        listed = time.perf_counter()
        count = httpx.get(
            emu.url + "/v1/applications", headers={"Authorization": f"Bearer {KEY}"}
        ).json()["count"]
        list_ms = (time.perf_counter() - listed) * 1000
    print(f"creates/s with --state: {rate:,.0f} ({args.creates} creates, {args.threads} threads)")
    print(f"list of {count} applications: {list_ms:.1f} ms")
    print(f"threads alive at the end: {threading.active_count()}")


if __name__ == "__main__":
    main()
