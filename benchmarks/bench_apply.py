"""Benchmark: ``mvsync apply`` of 1,000 creates against a floor doing only the POSTs.

    python benchmarks/bench_apply.py [--creates 1000] [--latency 0.02] [--concurrency 8]

Starts ``mvsync emulator`` as a process with two customers, sets its latency, then

1. times ``mvsync apply --env bench --yes --concurrency 8`` (a real process: start-up,
   manifest, list, plan, re-list, creates with an fsynced intent and key per create,
   fold into the secrets file, listing until visible);
2. times the floor (issue 24's): the same POSTs over 8 connections from 8 threads, each
   key appended to a file and fsynced, nothing else;
3. times the contract floor: what any tool that keeps apply's promises must also do, done
   as cheaply as it can be: parse the manifest (PyYAML's C loader), list once (a name that
   exists is not created), and before each POST append its intent to the journal and
   fsync it (killed mid-POST, the next run knows what was in flight);

and prints the three times and the ratios of each round, then the medians (aim: at most
1.1x the floor).
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
from dataclasses import dataclass
from pathlib import Path

from installed import byte_compile_mvsync

APPLY_KEY = "mvbench_apply_key"
FLOOR_KEY = "mvbench_floor_key"
CONTRACT_KEY = "mvbench_contract_key"  # a third customer: the contract floor lists its own


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
            *("--api-key", APPLY_KEY, "--api-key", FLOOR_KEY, "--api-key", CONTRACT_KEY),
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
url, key, keys_path, creates, concurrency, manifest = sys.argv[1:7]
names = [f"Bench {n:05d}" for n in range(int(creates))]
lock = threading.Lock()
fd = os.open(keys_path, os.O_CREAT | os.O_APPEND | os.O_WRONLY, 0o600)
limits = httpx.Limits(max_connections=int(concurrency), max_keepalive_connections=int(concurrency))
contract = manifest != "-"
with httpx.Client(limits=limits, timeout=10) as http:
    if contract:  # the manifest's names, less those that exist
        import yaml
        with open(manifest, "rb") as file:
            wanted = yaml.load(file, Loader=yaml.CSafeLoader)["applications"]
        listed = http.get(url + "/v1/applications", headers={"Authorization": "Bearer " + key})
        listed.raise_for_status()
        present = {app["name"] for app in listed.json()["data"]}
        names = [app["name"] for app in wanted if app["name"] not in present]
    def worker():
        while True:
            with lock:
                if not names:
                    return
                name = names.pop()
            if contract:
                os.write(fd, (json.dumps({"intent": name}) + "\\n").encode())
                os.fsync(fd)
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


def time_floor(
    folder: Path, url: str, creates: int, concurrency: int, manifest: Path | None = None
) -> float:
    """The floor as a process of its own, like apply: interpreter, httpx, POSTs, fsyncs.
    Given the manifest, the contract floor: its parse, one list, an fsynced intent each."""
    keys_path = folder / ("contract.keys" if manifest else "floor.keys")
    key = CONTRACT_KEY if manifest else FLOOR_KEY
    command = [sys.executable, "-c", FLOOR_SCRIPT, url, key, str(keys_path), str(creates)]
    command += [str(concurrency), str(manifest) if manifest else "-"]
    started = time.perf_counter()
    subprocess.run(command, check=True)
    elapsed = time.perf_counter() - started
    if len(keys_path.read_bytes().splitlines()) != creates * (2 if manifest else 1):
        raise SystemExit("the floor script did not store every key")
    return elapsed


@dataclass(frozen=True)
class Round:
    apply: float  # seconds, each a whole process
    floor: float
    contract: float
    counts: object  # the emulator's request counts


def one_round(creates: int, latency: float, concurrency: int) -> Round:
    emulator, url = start_emulator()
    try:
        control(url, "PUT", "/_emulator/latency", {"seconds": latency})
        with tempfile.TemporaryDirectory(prefix="bench-apply-", dir=".") as scratch:
            folder = Path(scratch)
            manifest = write_manifest(folder, url, creates)
            apply_seconds = time_apply(folder, manifest, concurrency)
            floor_seconds = time_floor(folder, url, creates, concurrency)
            contract_seconds = time_floor(folder, url, creates, concurrency, manifest)
            counts = control(url, "GET", "/_emulator/requests")
    finally:
        emulator.terminate()
        emulator.wait(timeout=10)
    return Round(apply_seconds, floor_seconds, contract_seconds, counts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--creates", type=int, default=1000)
    parser.add_argument("--latency", type=float, default=0.02)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3, help="rounds (fresh emulator each)")
    args = parser.parse_args()
    byte_compile_mvsync()
    results: list[Round] = []
    for round_ in range(args.rounds):
        r = one_round(args.creates, args.latency, args.concurrency)
        results.append(r)
        print(
            f"round {round_ + 1}: apply {r.apply:.2f} s  floor {r.floor:.2f} s  "
            f"contract floor {r.contract:.2f} s  apply/floor {r.apply / r.floor:.2f}x  "
            f"apply/contract floor {r.apply / r.contract:.2f}x",
            flush=True,
        )
    apply_seconds = statistics.median(r.apply for r in results)
    floor_seconds = statistics.median(r.floor for r in results)
    contract_seconds = statistics.median(r.contract for r in results)
    print(
        f"{args.creates} creates, {args.latency * 1000:g} ms latency, "
        f"concurrency {args.concurrency}, medians of {args.rounds} rounds"
    )
    print(f"apply (whole process): {apply_seconds:.2f} s")
    print(f"floor (whole process: POST + fsync'd append only): {floor_seconds:.2f} s")
    print(
        "contract floor (whole process: manifest parse, one list, fsync'd intent + POST + "
        f"fsync'd key): {contract_seconds:.2f} s"
    )
    print(f"ratio: {apply_seconds / floor_seconds:.2f}x (aim <= 1.1x)")
    print(f"ratio to the contract floor: {apply_seconds / contract_seconds:.2f}x")
    print(f"emulator requests (last round): {results[-1].counts}")


if __name__ == "__main__":
    main()
