"""Time ``mvsync plan`` against the floor, for 1,000 and 10,000 applications x 3 environments.

    python benchmarks/bench_plan.py [--sizes 1000 10000] [--repeat 5]

One emulator (in this process, on loopback) holds three accounts, seeded through its
state file: per account 95% of the manifest's applications exist (1 in 50 of them with a
drifted answer_url) plus 2% unmanaged ones. Both contenders run as fresh subprocesses
(interpreter start and imports included), against the same emulator:

- ``mvsync plan --format json`` to /dev/null (load + validate + resolve the manifest,
  one concurrent GET per environment, build the plan, render JSON);
- the floor: a C-loader parse of the manifest, one concurrent GET per environment with
  httpx, and dict matching by name — what any tool must at least do.

The best of ``--repeat`` runs is kept for each; the ratios are printed at the end
(aims: plan/floor <= 1.3 at 10k, plan 10k/1k <= 11).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from mvsync.emulator import Emulator
from mvsync.emulator.state import (
    RECORD_VERSION,
    StoredApp,
    app_id_for,
    created_at_for,
    customer_id_for_key,
)

ENVIRONMENTS = ("dev", "staging", "prod")
KEYS = {env: f"mvbench_{env}_key" for env in ENVIRONMENTS}
KEY_VARS = {env: f"BENCH_KEY_{env.upper()}" for env in ENVIRONMENTS}
HOOKS = "https://crm.example.com/minivoice/webhooks"

FLOOR = r"""
import os, sys
from concurrent.futures import ThreadPoolExecutor
import httpx
from ruamel.yaml import YAML

loader = YAML(typ="safe", pure=False)
with open(sys.argv[1], "rb") as handle:
    manifest = loader.load(handle)
defaults = manifest.get("defaults") or {}

def listed(env):
    with httpx.Client() as client:
        answer = client.get(env["api_url"] + "/v1/applications",
                            headers={"Authorization": "Bearer " + os.environ[env["api_key_env"]]})
        answer.raise_for_status()
        return answer.json()["data"]

envs = list(manifest["environments"].values())
with ThreadPoolExecutor(len(envs)) as pool:
    remote_lists = list(pool.map(listed, envs))
counts = []
for remote in remote_lists:
    by_name = {}
    for app in remote:
        by_name.setdefault(app["name"], []).append(app)
    count = {"create": 0, "drift": 0, "unchanged": 0, "ambiguous": 0}
    for app in manifest["applications"]:
        want = {**defaults, **app}
        have = by_name.get(want["name"], [])
        if not have:
            count["create"] += 1
        elif len(have) > 1:
            count["ambiguous"] += 1
        elif (have[0]["answer_url"], have[0]["webhook_url"]) == (
                want["answer_url"], want.get("webhook_url")):
            count["unchanged"] += 1
        else:
            count["drift"] += 1
    counts.append(count)
print(counts)
"""


def write_manifest(path: Path, size: int, api_url: str) -> None:
    lines = ["version: 1", "environments:"]
    for env in ENVIRONMENTS:
        lines += [f"  {env}:", f"    api_url: {api_url}", f"    api_key_env: {KEY_VARS[env]}"]
    lines += ["defaults:", f"  webhook_url: {HOOKS}", "applications:"]
    for i in range(size):
        lines += [f"  - name: App {i:05d}", f"    answer_url: https://example.com/answer/{i}"]
    path.write_text("\n".join(lines) + "\n")


def write_state(path: Path, size: int) -> None:
    ns = 1_780_000_000 * 1_000_000_000
    records = []
    for env in ENVIRONMENTS:
        customer = customer_id_for_key(KEYS[env])
        rows = [(f"App {i:05d}", i) for i in range(size) if i % 20] + [
            (f"Unmanaged {i:05d}", i) for i in range(size // 50)
        ]
        for name, i in rows:
            ns += 1
            drifted = name.startswith("App") and i % 50 == 1
            answer = f"https://example.com/{'old' if drifted else 'answer'}/{i}"
            app = StoredApp(
                id=app_id_for(ns),
                customer_id=customer,
                name=name,
                answer_url=answer,
                webhook_url=HOOKS,
                webhook_secret=None,
                api_key=f"mv_live_bench{ns}",
                created_at=created_at_for(ns),
            )
            records.append(json.dumps(app.record()))
    assert RECORD_VERSION == 1
    path.write_text("\n".join(records) + "\n")
    os.chmod(path, 0o600)


def timed(argv: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run(argv, check=True, env=env, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def bench(size: int, repeat: int, workdir: Path) -> tuple[float, float]:
    state = workdir / f"state-{size}.jsonl"
    write_state(state, size)
    with Emulator(list(KEYS.values()), state_file=state) as server:
        manifest = workdir / f"manifest-{size}.yaml"
        write_manifest(manifest, size, server.url)
        env = {**os.environ, **{KEY_VARS[e]: KEYS[e] for e in ENVIRONMENTS}}
        env.pop("GITHUB_STEP_SUMMARY", None)
        plan_cmd = [sys.executable, "-m", "mvsync", "plan", "-f", str(manifest), "--format", "json"]
        floor_cmd = [sys.executable, "-c", FLOOR, str(manifest)]
        timed(plan_cmd, env)  # warm the OS caches once for both
        timed(floor_cmd, env)
        plan_times, floor_times = [], []
        for _ in range(repeat):  # interleaved, so drift in the machine hits both alike
            plan_times.append(timed(plan_cmd, env))
            floor_times.append(timed(floor_cmd, env))
    plan_best, floor_best = min(plan_times), min(floor_times)
    print(
        f"{size:>6} apps x 3 envs: "
        f"plan {plan_best:.3f}s (median {statistics.median(plan_times):.3f}s)  "
        f"floor {floor_best:.3f}s (median {statistics.median(floor_times):.3f}s)"
        f"  plan/floor {plan_best / floor_best:.2f}x",
        flush=True,
    )
    return plan_best, floor_best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    results: dict[int, tuple[float, float]] = {}
    with tempfile.TemporaryDirectory(prefix="mvsync-bench-") as folder:
        for size in args.sizes:
            results[size] = bench(size, args.repeat, Path(folder))
    if 1000 in results and 10000 in results:
        plan_10k, floor_10k = results[10000]
        plan_1k, floor_1k = results[1000]
        print(f"plan/floor at 10k: {plan_10k / floor_10k:.2f}x (aim <= 1.3x)")
        print(
            f"plan 10k/1k: {plan_10k / plan_1k:.2f}x (aim <= 11x); "
            f"floor 10k/1k: {floor_10k / floor_1k:.2f}x"
        )


if __name__ == "__main__":
    main()
