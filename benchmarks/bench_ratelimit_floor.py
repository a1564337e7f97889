"""Benchmark: the floor for creates against a rate-limited API (issue 13).

    python benchmarks/bench_ratelimit_floor.py [--creates 600] [--concurrency 8]
        [--latency 0.02] [--rate-limit 100/10] [--pace 98]

Starts ``mvsync emulator --rate-limit 100/10 --latency-ms 20`` as a process, then creates
600 applications over 8 connections from 8 threads with plain httpx, each thread taking
a token from one shared bucket filled at 98 a second (just under the limit it knows),
each issued key appended to a file and fsynced. That is the least work any correct tool
must do; it prints the time, creates per second, and how many 429s it still met.

Another benchmark reuses the pieces to compare ``mvsync apply`` with this floor:

    from bench_ratelimit_floor import FLOOR_KEY, floor, start_emulator

    with start_emulator([FLOOR_KEY, "apply-key"], latency=0.02, rate_limit="100/10") as url:
        result = floor(url, FLOOR_KEY, n=600, concurrency=8, rate=98.0)
        ...  # time mvsync apply with "apply-key" (its own customer, its own bucket)
        print(f"ratio: {apply_seconds / result.seconds:.2f}x")
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import selectors
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx

FLOOR_KEY = "mvbench_floor_key"
READY_PREFIX = "mvsync emulator: serving the MiniVoice API on "


def control(url: str, method: str, path: str, body: object | None = None) -> object:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url + path, data=data, method=method)
    request.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(request, timeout=10) as answer:
        return json.loads(answer.read())


@contextlib.contextmanager
def start_emulator(
    api_keys: Sequence[str] = (FLOOR_KEY,),
    *,
    latency: float = 0.02,
    rate_limit: str | None = "100/10",
    rate_limit_headers: bool = False,
) -> Iterator[str]:
    """``mvsync emulator`` as a process on a free port (one customer per key); yields its URL.

    A process of its own, so that its threads do not share a GIL with the clients measured.
    """
    command = [sys.executable, "-m", "mvsync", "emulator", "--port", "0"]
    command += [*(arg for key in api_keys for arg in ("--api-key", key))]
    command += ["--latency-ms", f"{latency * 1000:g}"]
    if rate_limit is not None:
        command += ["--rate-limit", rate_limit]
    if rate_limit_headers:  # the limit announced in RateLimit fields
        command += ["--rate-limit-headers"]
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL
    )
    try:
        assert process.stdout is not None
        with selectors.DefaultSelector() as selector:
            selector.register(process.stdout, selectors.EVENT_READ)
            ready = selector.select(20) and process.stdout.readline().decode()
        if not ready or not ready.startswith(READY_PREFIX):
            raise SystemExit(f"mvsync emulator did not start (printed {ready!r})")
        yield ready.removeprefix(READY_PREFIX).split(" ", 1)[0]
    finally:
        process.terminate()
        process.wait(timeout=10)


class Pacer:
    """A token bucket shared by the workers: ``rate`` a second, at most ``burst`` at once.

    A worker reserves its token under the lock (the bucket may go below zero) and
    sleeps outside it until its token is due, so the threads are served in turn.
    """

    def __init__(self, rate: float, burst: int) -> None:
        self.rate = rate
        self.burst = float(burst)
        self._tokens = float(burst)
        self._updated = time.monotonic()
        self._lock = threading.Lock()

    def acquire(self) -> None:
        with self._lock:
            now = time.monotonic()
            self._tokens = min(self.burst, self._tokens + (now - self._updated) * self.rate)
            self._updated = now
            self._tokens -= 1.0
            wait = -self._tokens / self.rate if self._tokens < 0 else 0.0
        if wait > 0:
            time.sleep(wait)


@dataclass(frozen=True)
class FloorResult:
    creates: int
    seconds: float
    refused: int  # 429s met (each retried after its Retry-After)

    @property
    def creates_per_second(self) -> float:
        return self.creates / self.seconds

    @property
    def refused_share(self) -> float:
        """429s per create attempt."""
        return self.refused / (self.creates + self.refused)


def floor(
    url: str,
    key: str,
    n: int,
    concurrency: int,
    rate: float,
    *,
    burst: int = 5,
    keys_path: Path | None = None,
    prefix: str = "Floor ",
) -> FloorResult:
    """Create ``n`` applications paced at ``rate``/s; each key appended and fsynced.

    ``burst`` is the pacer's own (the default, half the emulator's 10, leaves room for
    the requests that arrive bunched). Without ``keys_path`` the keys go to a
    temporary file, fsynced all the same: a correct tool stores each key durably.
    """
    names = [f"{prefix}{index:05d}" for index in range(n)]
    names.reverse()  # popped from the end: created in order
    names_lock = threading.Lock()
    pacer = Pacer(rate, burst)
    refused = 0
    created = 0
    failures: list[str] = []
    with contextlib.ExitStack() as stack:
        if keys_path is None:
            scratch = stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-floor-"))
            keys_path = Path(scratch) / "floor.keys"
        fd = os.open(keys_path, os.O_CREAT | os.O_APPEND | os.O_WRONLY, 0o600)
        stack.callback(os.close, fd)
        limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
        http = stack.enter_context(
            httpx.Client(
                base_url=url,
                limits=limits,
                timeout=30,
                headers={"Authorization": f"Bearer {key}"},
            )
        )

        def worker() -> None:
            nonlocal refused, created
            while not failures:
                with names_lock:
                    if not names:
                        return
                    name = names.pop()
                while True:
                    pacer.acquire()
                    answer = http.post(
                        "/v1/applications",
                        json={"name": name, "answer_url": "https://example.com/floor"},
                    )
                    if answer.status_code != 429:  # a 429 is known not to have created
                        break
                    with names_lock:
                        refused += 1
                    time.sleep(float(answer.headers.get("Retry-After", "1")))
                if answer.status_code != 201:
                    failures.append(f"{name}: {answer.status_code}")
                    return
                os.write(fd, (json.dumps({"name": name, **answer.json()}) + "\n").encode())
                os.fsync(fd)
                with names_lock:
                    created += 1

        threads = [threading.Thread(target=worker) for _ in range(concurrency)]
        started = time.perf_counter()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        seconds = time.perf_counter() - started
    if failures or created != n:
        raise SystemExit(f"the floor did not create every application: {failures[:3]}")
    return FloorResult(creates=created, seconds=seconds, refused=refused)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--creates", type=int, default=600)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--latency", type=float, default=0.02, help="seconds")
    parser.add_argument("--rate-limit", default="100/10", help="the emulator's RATE/BURST")
    parser.add_argument("--pace", type=float, default=98.0, help="the floor's creates/s")
    args = parser.parse_args()
    limit_rate, _, limit_burst = args.rate_limit.partition("/")
    burst = int(limit_burst) if limit_burst else max(1, int(float(limit_rate)))
    with start_emulator([FLOOR_KEY], latency=args.latency, rate_limit=args.rate_limit) as url:
        result = floor(url, FLOOR_KEY, args.creates, args.concurrency, args.pace)
        counts = control(url, "GET", "/_emulator/rate-limit")
    ideal = max(args.creates - burst, 0) / float(limit_rate)
    print(
        f"{args.creates} creates, {args.latency * 1000:g} ms latency, concurrency "
        f"{args.concurrency}, emulator --rate-limit {args.rate_limit}, paced at {args.pace:g}/s"
    )
    print(f"floor: {result.seconds:.2f} s, {result.creates_per_second:.1f} creates/s")
    print(f"429s met: {result.refused} ({result.refused_share:.1%} of create attempts)")
    print(f"the limit itself allows no less than {ideal:.2f} s (burst, then the rate)")
    print(f"emulator (rate limit and refusals): {counts}")


if __name__ == "__main__":
    main()
