"""Benchmark: ``mvsync check`` of 1,000 applications against a 20 ms loopback receiver,
beside a floor that sends the same requests with plain httpx at the same concurrency.

    python benchmarks/bench_check.py [--apps 1000] [--latency-ms 20]

Starts ``mvsync emulator`` with its sample receiver (``MVSYNC_RECEIVER_SECRET``) as a
process; every endpoint answers after ``?ms=20``. Each application is three requests:
the answer_url GET, the signed event and the forged one (the receiver refuses it, so
every check passes). The floor: one ``httpx.AsyncClient`` with 8 connections, a
semaphore of 8, the same three requests per application with their signatures made in
advance — the least any correct checker must do. It prints both times and the ratio,
for ``mvsync check`` as a process (start-up included) and for ``run_checks`` in this
process.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import hmac
import json
import os
import secrets
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import httpx

from installed import byte_compile_mvsync
from mvsync.check import AppCheck, run_checks

SECRET = "whsec_" + base64.b64encode(b"mvsync-bench-check-secret").decode()
KEY = b"mvsync-bench-check-secret"
CONCURRENCY = 8


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def start_receiver() -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    env = {**os.environ, "MVSYNC_RECEIVER_SECRET": SECRET}
    process = subprocess.Popen(
        [sys.executable, "-m", "mvsync", "emulator", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{url}/_receiver/answer", timeout=1):
                return process, url
        except OSError:
            time.sleep(0.1)
    process.kill()
    raise SystemExit("the emulator did not start")


def urls(url: str, n: int, latency_ms: int) -> list[tuple[str, str]]:
    return [
        (
            f"{url}/_receiver/answer?ms={latency_ms}&app={i}",
            f"{url}/_receiver/webhooks?ms={latency_ms}",
        )
        for i in range(n)
    ]


def signed_headers(body: bytes, key: bytes) -> dict[str, str]:
    message_id, stamp = f"check_msg_{secrets.token_hex(8)}", str(int(time.time()))
    mac = hmac.new(key, f"{message_id}.{stamp}.".encode() + body, hashlib.sha256).digest()
    return {
        "MiniVoice-Test": "1",
        "Content-Type": "application/json",
        "webhook-id": message_id,
        "webhook-timestamp": stamp,
        "webhook-signature": "v1," + base64.b64encode(mac).decode(),
    }


async def floor(pairs: list[tuple[str, str]]) -> tuple[float, int]:
    body = json.dumps({"event": "call.completed", "test": True}).encode()
    prepared = [
        (answer, hook, signed_headers(body, KEY), signed_headers(body, secrets.token_bytes(32)))
        for answer, hook in pairs
    ]
    slots = asyncio.Semaphore(CONCURRENCY)
    limits = httpx.Limits(max_connections=CONCURRENCY, max_keepalive_connections=CONCURRENCY)
    ok = 0
    async with httpx.AsyncClient(limits=limits, trust_env=False) as client:

        async def one(answer: str, hook: str, good: dict[str, str], bad: dict[str, str]) -> int:
            async with slots:
                first = await client.get(answer, params={"call_id": "check_call_1"})
                first.json()
            async with slots:
                second = await client.post(hook, content=body, headers=good)
            async with slots:
                third = await client.post(hook, content=body, headers=bad)
            return int(
                first.status_code == 200 and second.status_code == 200 and third.status_code == 401
            )

        started = time.perf_counter()
        ok = sum(await asyncio.gather(*(one(*p) for p in prepared)))
        return time.perf_counter() - started, ok


def in_process(pairs: list[tuple[str, str]]) -> tuple[float, int]:
    apps = [AppCheck(f"App {i}", a, w, "${HOOK}", SECRET) for i, (a, w) in enumerate(pairs)]
    started = time.perf_counter()
    report = run_checks([("bench", apps)])
    return time.perf_counter() - started, report.count("passed")


def as_process(pairs: list[tuple[str, str]]) -> tuple[float, int]:
    apps = [
        {"name": f"App {i}", "answer_url": a, "webhook_url": w} for i, (a, w) in enumerate(pairs)
    ]
    manifest = {
        "version": 1,
        "environments": {"bench": {}},
        "defaults": {"webhook_secret": "${HOOK}"},
        "applications": apps,
    }
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "mvsync.yaml"
        path.write_text(json.dumps(manifest))
        started = time.perf_counter()
        done = subprocess.run(
            [sys.executable, "-m", "mvsync", "-f", str(path), "check", "--format", "json"],
            capture_output=True,
            text=True,
            env={**os.environ, "HOOK": SECRET},
        )
        seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"mvsync check exited {done.returncode}: {done.stderr[-500:]}")
    return seconds, int(json.loads(done.stdout)["summary"]["passed"])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--apps", type=int, default=1000)
    parser.add_argument("--latency-ms", type=int, default=20)
    options = parser.parse_args()
    byte_compile_mvsync()
    process, url = start_receiver()
    try:
        pairs = urls(url, options.apps, options.latency_ms)
        floor_seconds, floor_ok = asyncio.run(floor(pairs))
        process_seconds, process_passed = as_process(pairs)
        inproc_seconds, inproc_passed = in_process(pairs)
    finally:
        process.terminate()
        process.wait(timeout=10)
    n = options.apps
    print(
        f"{n} applications, 3 requests each, {options.latency_ms} ms receiver,"
        f" {CONCURRENCY} at once"
    )
    print(f"floor (httpx, same requests):   {floor_seconds:6.2f} s  ({floor_ok} all-good)")
    print(f"mvsync check (process):         {process_seconds:6.2f} s  ({process_passed} passed)")
    print(f"run_checks (in process):        {inproc_seconds:6.2f} s  ({inproc_passed} passed)")
    print(f"ratio, process / floor:   {process_seconds / floor_seconds:.2f}x")
    print(f"ratio, in-process / floor: {inproc_seconds / floor_seconds:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
