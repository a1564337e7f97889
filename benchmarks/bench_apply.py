"""Benchmark: ``mvsync apply`` of 1,000 creates against a floor doing only the POSTs.

    python benchmarks/bench_apply.py [--creates 1000] [--latency 0.02] [--concurrency 8]

Starts ``mvsync emulator`` as a process with two customers, sets its latency, then

1. times ``mvsync apply --env bench --yes --concurrency 8`` (a real process: start-up,
   manifest, list, plan, re-list, creates with an fsynced intent and key per create,
   fold into the secrets file, listing until visible);
2. times the floor: the same POSTs over 8 connections from 8 threads, each key
   appended to a file and fsynced, nothing else;

and prints both times and the ratio of each round, then the medians (aim: at most 1.1x).
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from installed import byte_compile_mvsync

APPLY_KEY = "mvbench_apply_key"
FLOOR_KEY = "mvbench_floor_key"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def control(url: str, method: str, path: str, body: object | None = None) -> object:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url + path, data=data, method=method)
    request.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(request, timeout=10) as answer:
        return json.loads(answer.read())


def start_emulator() -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    process = subprocess.Popen(
        [
            *(sys.executable, "-m", "mvsync", "emulator", "--port", str(port)),
            *("--api-key", APPLY_KEY, "--api-key", FLOOR_KEY),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 20
    while True:
        try:
            control(url, "GET", "/_emulator/requests")
            return process, url
        except OSError:
            if process.poll() is not None:
                raise SystemExit(f"mvsync emulator exited with {process.returncode}") from None
            if time.monotonic() > deadline:
                process.kill()
                raise
            time.sleep(0.05)


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


def time_apply(folder: Path, manifest: Path, concurrency: int) -> float:
    env = dict(os.environ, MV_BENCH_KEY=APPLY_KEY)
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


FLOOR_SCRIPT = """
import json, os, sys, threading
import httpx
url, key, keys_path, creates, concurrency = sys.argv[1:6]
names = [f"Bench {n:05d}" for n in range(int(creates))]
lock = threading.Lock()
fd = os.open(keys_path, os.O_CREAT | os.O_APPEND | os.O_WRONLY, 0o600)
limits = httpx.Limits(max_connections=int(concurrency), max_keepalive_connections=int(concurrency))
with httpx.Client(limits=limits, timeout=10) as http:
    def worker():
        while True:
            with lock:
                if not names:
                    return
                name = names.pop()
            answer = http.post(
                url + "/v1/applications",
                json={"name": name, "answer_url": "https://example.com/floor"},
                headers={"Authorization": "Bearer " + key},
            )
            answer.raise_for_status()
            os.write(fd, (json.dumps({"name": name, **answer.json()}) + "\\n").encode())
            os.fsync(fd)
    threads = [threading.Thread(target=worker) for _ in range(int(concurrency))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
os.close(fd)
"""


def time_floor(folder: Path, url: str, creates: int, concurrency: int) -> float:
    """The floor as a process of its own, like apply: interpreter, httpx, POSTs, fsyncs."""
    keys_path = folder / "floor.keys"
    command = [sys.executable, "-c", FLOOR_SCRIPT, url, FLOOR_KEY, str(keys_path)]
    started = time.perf_counter()
    subprocess.run([*command, str(creates), str(concurrency)], check=True)
    elapsed = time.perf_counter() - started
    if len(keys_path.read_bytes().splitlines()) != creates:
        raise SystemExit("the floor script did not store every key")
    return elapsed


def one_round(creates: int, latency: float, concurrency: int) -> tuple[float, float, object]:
    emulator, url = start_emulator()
    try:
        control(url, "PUT", "/_emulator/latency", {"seconds": latency})
        with tempfile.TemporaryDirectory(prefix="bench-apply-", dir=".") as scratch:
            folder = Path(scratch)
            manifest = write_manifest(folder, url, creates)
            apply_seconds = time_apply(folder, manifest, concurrency)
            floor_seconds = time_floor(folder, url, creates, concurrency)
            counts = control(url, "GET", "/_emulator/requests")
    finally:
        emulator.terminate()
        emulator.wait(timeout=10)
    return apply_seconds, floor_seconds, counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--creates", type=int, default=1000)
    parser.add_argument("--latency", type=float, default=0.02)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3, help="rounds (fresh emulator each)")
    args = parser.parse_args()
    byte_compile_mvsync()
    results = []
    for round_ in range(args.rounds):
        results.append(one_round(args.creates, args.latency, args.concurrency))
        apply_s, floor_s = results[-1][0], results[-1][1]
        print(
            f"round {round_ + 1}: apply {apply_s:.2f} s  floor {floor_s:.2f} s  "
            f"ratio {apply_s / floor_s:.2f}x",
            flush=True,
        )
    apply_seconds = statistics.median(r[0] for r in results)
    floor_seconds = statistics.median(r[1] for r in results)
    print(
        f"{args.creates} creates, {args.latency * 1000:g} ms latency, "
        f"concurrency {args.concurrency}, medians of {args.rounds} rounds"
    )
    print(f"apply (whole process): {apply_seconds:.2f} s")
    print(f"floor (whole process: POST + fsync'd append only): {floor_seconds:.2f} s")
    print(f"ratio: {apply_seconds / floor_seconds:.2f}x (aim <= 1.1x)")
    print(f"emulator requests (last round): {results[-1][2]}")


if __name__ == "__main__":
    main()
