"""Time ``mvsync plan`` against the floor, for 1,000 and 10,000 applications x 3 environments.

    python benchmarks/bench_plan.py [--sizes 1000 10000] [--repeat 3]

One emulator (in this process, on loopback) holds three accounts, seeded through its
state file: per account 95% of the manifest's applications exist (1 in 50 of them with a
drifted answer_url) plus 2% unmanaged ones. Both contenders run as fresh subprocesses
(interpreter start and imports included), against the same emulator:

- ``mvsync plan --format json`` to /dev/null (load + validate + resolve the manifest,
  one concurrent GET per environment, build the plan, render JSON);
- the floor: a C-loader parse of the manifest, one concurrent GET per environment with
  httpx, and dict matching by name — what any tool must at least do;
- the cached floor, timed end to end only: the floor with the one trick of mvsync's YAML
  load that any tool could use (ruamel's table of implicit tags looked up once per load,
  not once per scalar), since mvsync's YAML step is otherwise faster than the floor's;
- the strict floor (issue 24's): the floor with PyYAML's ``yaml.CSafeLoader`` instead
  of ruamel (libyaml builds the objects in C, no ruamel import), one httpx GET per
  environment and the same dict compare. The aims are against this one. It is also
  timed step by step; PyYAML is a test/bench dependency only, never mvsync's.

Each size runs ``--repeat`` rounds, interleaved so that drift in the machine hits both
alike. A round times the real commands end to end, then runs each once more with a timer
between its steps (``STEPS``: the plan command's own steps called in its order, and the
floor with marks between its lines), so that the breakdown is of the same work. Medians
of the rounds are printed, with every run's value; the ratios are of the medians
(aims: plan/strict floor <= 1.6x at 1k and <= 1.5x at 10k).
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

from installed import byte_compile_mvsync
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

# Both step scripts start with this: mark(step) adds the time since the last mark, and
# the totals go to stderr as JSON at the end.
TIMER = r"""
import time
_last = [time.perf_counter()]
_steps = {}
def mark(step):
    now = time.perf_counter()
    _steps[step] = _steps.get(step, 0.0) + now - _last[0]
    _last[0] = now
"""
REPORT = r"""
import json as _json, sys as _sys
print("STEPS " + _json.dumps(_steps), file=_sys.stderr)
"""

FLOOR = r"""
import os, sys
from concurrent.futures import ThreadPoolExecutor
import httpx
from ruamel.yaml import YAML
mark("import")

loader = YAML(typ="safe", pure=False)
with open(sys.argv[1], "rb") as handle:
    manifest = loader.load(handle)
defaults = manifest.get("defaults") or {}
mark("yaml")

def listed(env):
    with httpx.Client() as client:
        answer = client.get(env["api_url"] + "/v1/applications",
                            headers={"Authorization": "Bearer " + os.environ[env["api_key_env"]]})
        answer.raise_for_status()
        return answer.json()["data"]

envs = list(manifest["environments"].values())
with ThreadPoolExecutor(len(envs)) as pool:
    remote_lists = list(pool.map(listed, envs))
mark("list")
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
mark("compare")
print(counts)
sys.stdout.flush()
mark("write")
"""
FLOOR_STEPS = ("import", "yaml", "list", "compare", "write")

# The floor again, with the one trick of mvsync's own YAML load that is not specific to
# mvsync (yamlpos._CResolver: ruamel's table of implicit tags looked up once per load, not
# per scalar): the cached floor, printed beside the first.
CACHED_RESOLVER = r"""
from ruamel.yaml.resolver import VersionedResolver
class CachedResolver(VersionedResolver):
    _table = None
    @property
    def versioned_resolver(self):
        if self._table is None:
            self._table = super().versioned_resolver
        return self._table
import ruamel.yaml
_YAML = ruamel.yaml.YAML
def YAML(**kwargs):
    yaml = _YAML(**kwargs)
    yaml.Resolver = CachedResolver
    return yaml
"""

# The plan command (cli/plan.py) step by step, with what it imports in the import step:
# ``python -m mvsync`` imports the CLI, then the command imports what it uses.
PLAN = r"""
import os, sys
from pathlib import Path
import mvsync.cli
from mvsync.cli import plan as plan_cmd
from mvsync.api.listing import list_environments
from mvsync.manifest import environment_names, read_api_key, resolve_environment
from mvsync.manifest.load import read_manifest, validate_manifest
from mvsync.model import Account
from mvsync.planner import Plan, build_plan
from mvsync.render import RENDERERS
mark("import")

def steps():
    path = Path(sys.argv[1])
    text, data = read_manifest(path)
    mark("yaml")
    manifest = validate_manifest(path, text, data)
    mark("validation")
    lookup = os.environ.get
    desired_envs = [resolve_environment(manifest, name, lookup)
                    for name in environment_names(manifest)]
    api_keys = [read_api_key(desired, lookup) for desired in desired_envs]
    mark("resolve")
    remote_lists = list_environments(desired_envs, api_keys, deadline=60.0)
    mark("list")
    the_plan = Plan(tuple(
        plan_cmd._with_keys(
            plan_cmd._with_warnings(build_plan(d, r, fingerprints=False), lookup), d,
            Account.of(k, r),
        )
        for d, r, k in zip(desired_envs, remote_lists, api_keys, strict=True)
    ))
    mark("build_plan")
    RENDERERS["json"](the_plan, sys.stdout)
    sys.stdout.flush()
    mark("render")
    return 0

# Run as the command runs (cli/plan.py): the cyclic GC off, the objects freed when it
# returns (outside the steps), and frozen at exit.
plan_cmd._without_cyclic_gc(steps)()
"""
CACHED_FLOOR = FLOOR.replace(
    "from ruamel.yaml import YAML\n", "from ruamel.yaml import YAML\n" + CACHED_RESOLVER, 1
)
assert CACHED_FLOOR != FLOOR
# The strictest floor: PyYAML's C loader (libyaml parses and builds in C).
STRICT_FLOOR = FLOOR.replace("from ruamel.yaml import YAML\n", "import yaml\n", 1).replace(
    'loader = YAML(typ="safe", pure=False)\nwith open(sys.argv[1], "rb") as handle:\n'
    "    manifest = loader.load(handle)\n",
    'with open(sys.argv[1], "rb") as handle:\n'
    "    manifest = yaml.load(handle, Loader=yaml.CSafeLoader)\n",
    1,
)
assert "CSafeLoader" in STRICT_FLOOR and "ruamel" not in STRICT_FLOOR

PLAN_STEPS = ("import", "yaml", "validation", "resolve", "list", "build_plan", "render")
# What is not inside a step: interpreter start (site, runpy) and exit.
OUTSIDE = "start+exit"


def write_manifest(
    path: Path, size: int, api_url: str, environments: tuple[str, ...] = ENVIRONMENTS
) -> None:
    lines = ["version: 1", "environments:"]
    for env in environments:
        lines += [f"  {env}:", f"    api_url: {api_url}", f"    api_key_env: {KEY_VARS[env]}"]
    lines += ["defaults:", f"  webhook_url: {HOOKS}", "applications:"]
    for i in range(size):
        lines += [f"  - name: App {i:05d}", f"    answer_url: https://example.com/answer/{i}"]
    path.write_text("\n".join(lines) + "\n")


def write_state(path: Path, size: int, environments: tuple[str, ...] = ENVIRONMENTS) -> None:
    ns = 1_780_000_000 * 1_000_000_000
    records = []
    for env in environments:
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


def stepped(script: str, manifest: Path, env: dict[str, str]) -> tuple[dict[str, float], bytes]:
    """Run a step script once: its steps (and the time outside them), and its stdout."""
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", TIMER + script + REPORT, str(manifest)], env=env, capture_output=True
    )
    wall = time.perf_counter() - start
    if done.returncode:
        raise SystemExit(f"a step script failed:\n{done.stderr.decode()}")
    line = next(x for x in done.stderr.decode().splitlines() if x.startswith("STEPS "))
    steps: dict[str, float] = json.loads(line.removeprefix("STEPS "))
    steps[OUTSIDE] = wall - sum(steps.values())
    steps["total"] = wall
    return steps, done.stdout


Runs = dict[str, list[float]]


CONTENDERS = ("plan", "floor", "cached floor", "strict floor")


def bench(size: int, repeat: int, workdir: Path) -> dict[str, float]:
    """The medians of each contender, end to end; every round printed as it ends."""
    state = workdir / f"state-{size}.jsonl"
    write_state(state, size)
    with Emulator(list(KEYS.values()), state_file=state) as server:
        manifest = workdir / f"manifest-{size}.yaml"
        write_manifest(manifest, size, server.url)
        env = {**os.environ, **{KEY_VARS[e]: KEYS[e] for e in ENVIRONMENTS}}
        env.pop("GITHUB_STEP_SUMMARY", None)
        plan_argv = ["-m", "mvsync", "plan", "-f", str(manifest), "--format", "json"]
        commands = {
            "plan": [sys.executable, *plan_argv],
            "floor": [sys.executable, "-c", TIMER + FLOOR, str(manifest)],
            "cached floor": [sys.executable, "-c", TIMER + CACHED_FLOOR, str(manifest)],
            "strict floor": [sys.executable, "-c", TIMER + STRICT_FLOOR, str(manifest)],
        }
        for argv in commands.values():
            timed(argv, env)  # warm the OS caches once for each
        counted = {
            name: subprocess.run(commands[name], check=True, env=env, capture_output=True).stdout
            for name in ("floor", "cached floor", "strict floor")
        }
        if len(set(counted.values())) != 1:
            raise SystemExit("the floors do not count alike")
        real = subprocess.run(commands["plan"], check=True, env=env, capture_output=True).stdout
        _, stepped_out = stepped(PLAN, manifest, env)
        if stepped_out != real:  # the breakdown must be of the command's own work
            raise SystemExit("the step-by-step plan does not write what mvsync plan writes")
        times: Runs = {name: [] for name in CONTENDERS}
        plan_steps: Runs = {}
        floor_steps: Runs = {}
        strict_steps: Runs = {}
        for round_ in range(repeat):  # interleaved, so drift in the machine hits all alike
            for name in CONTENDERS:
                times[name].append(timed(commands[name], env))
            print(
                f"{size:>6} round {round_ + 1}: "
                + "  ".join(f"{name} {times[name][-1]:.3f}s" for name in CONTENDERS)
                + f"  plan/strict floor {times['plan'][-1] / times['strict floor'][-1]:.2f}x",
                flush=True,
            )
            for script, runs in (
                (PLAN, plan_steps),
                (FLOOR, floor_steps),
                (STRICT_FLOOR, strict_steps),
            ):
                for step, seconds in stepped(script, manifest, env)[0].items():
                    runs.setdefault(step, []).append(seconds)
    medians = {name: statistics.median(values) for name, values in times.items()}
    print(f"{size:>6} apps x 3 envs, medians of {repeat} rounds (then each round):")
    for name in CONTENDERS:
        ratio = "" if name == "plan" else f"  plan/{name} {medians['plan'] / medians[name]:.2f}x"
        print(f"  {name:<13} {medians[name]:.3f}s {_runs(times[name])}{ratio}")
    _print_steps("mvsync plan", (*PLAN_STEPS, OUTSIDE, "total"), plan_steps)
    _print_steps("floor (ruamel)", (*FLOOR_STEPS, OUTSIDE, "total"), floor_steps)
    _print_steps("strict floor (PyYAML C)", (*FLOOR_STEPS, OUTSIDE, "total"), strict_steps)
    return medians


def _runs(values: list[float]) -> str:
    return "[" + " ".join(f"{value:.3f}" for value in values) + "]"


def _print_steps(who: str, order: tuple[str, ...], runs: Runs) -> None:
    print(f"  {who}, step by step (median s, then each run):")
    for step in order:
        values = runs.get(step, [])
        if values:
            print(f"    {step:<12} {statistics.median(values):7.3f}  {_runs(values)}")
    sys.stdout.flush()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    byte_compile_mvsync()
    results: dict[int, dict[str, float]] = {}
    with tempfile.TemporaryDirectory(prefix="mvsync-bench-") as folder:
        for size in args.sizes:
            results[size] = bench(size, args.repeat, Path(folder))
    for size, aim in ((1000, 1.6), (10000, 1.5)):
        if size in results:
            medians = results[size]
            print(
                f"plan at {size}: /floor {medians['plan'] / medians['floor']:.2f}x, "
                f"/strict floor {medians['plan'] / medians['strict floor']:.2f}x (aim <= {aim}x)"
            )
    if 1000 in results and 10000 in results:
        print(
            f"plan 10k/1k: {results[10000]['plan'] / results[1000]['plan']:.2f}x; "
            f"strict floor 10k/1k: "
            f"{results[10000]['strict floor'] / results[1000]['strict floor']:.2f}x"
        )


if __name__ == "__main__":
    main()
