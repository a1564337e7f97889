"""How much validating costs over a bare C-loader parse of the same big manifest.

    python benchmarks/bench_validate.py [--apps 10000] [--repeat 3]

Generates a manifest of N applications (about 6 lines each), then, ``--repeat`` rounds
(each printed, medians at the end), times:

- a bare parse with PyYAML's ``CSafeLoader`` (the floor: libyaml + object building),
- ``mvsync.manifest.load_manifest`` (ruamel's C loader + pydantic + cross-field checks),
- ``load_manifest`` of the same file with one error at its end (the compose pass that
  finds positions is paid only then),
- the whole ``mvsync validate -f`` as a subprocess (interpreter start and imports included),
- the floor as a subprocess: ``python -c`` importing PyYAML and parsing the file, so that
  both pay the interpreter's start,

and prints the ratios load_manifest / bare parse and validate / the floor's subprocess
(aims: at most 1.5x each).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import yaml

from installed import byte_compile_mvsync
from mvsync.errors import ManifestError
from mvsync.manifest import load_manifest

# The floor as a command: the interpreter, PyYAML's import and the C-loader parse.
FLOOR_COMMAND = """
import sys
import yaml
with open(sys.argv[1], encoding="utf-8") as handle:
    yaml.load(handle.read(), Loader=yaml.CSafeLoader)
"""


def generate(apps: int) -> str:
    lines = [
        "version: 1",
        "environments:",
        "  dev:",
        "    api_url: ${MVSYNC_DEV_API_URL:-http://127.0.0.1:8787}",
        "    api_key_env: MINIVOICE_API_KEY_DEV",
        "  staging:",
        "    api_key_env: MINIVOICE_API_KEY_STAGING",
        "  prod:",
        "    api_key_env: MINIVOICE_API_KEY_PROD",
        "defaults:",
        "  webhook_url: https://crm.example.com/minivoice/webhooks",
        "  webhook_secret: ${MV_WEBHOOK_SECRET}",
        "applications:",
    ]
    for index in range(apps):
        lines += [
            f"  - name: Application {index:05d}",
            f"    answer_url: https://ivr.example.com/minivoice/{index}/answer",
            "    environments: [dev, staging, prod]",
            "    overrides:",
            "      dev:",
            f"        answer_url: https://dev.example.com/minivoice/{index}/answer",
        ]
    return "\n".join(lines) + "\n"


def timed(action: Callable[[], object]) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--apps", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    byte_compile_mvsync()

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "mvsync.yaml"
        text = generate(args.apps)
        path.write_text(text, encoding="utf-8")
        broken = Path(folder) / "broken.yaml"
        broken.write_text(text + "  - name: Broken\n    answer_url: example.com\n")
        print(f"{args.apps} applications, {text.count(chr(10))} lines, {len(text) / 1e6:.1f} MB")

        def bare() -> object:
            return yaml.load(path.read_text(encoding="utf-8"), Loader=yaml.CSafeLoader)

        def load_with_error() -> None:
            try:
                load_manifest(broken)
            except ManifestError:
                return
            raise SystemExit("the broken manifest validated")

        def whole_command() -> None:
            subprocess.run(
                [sys.executable, "-m", "mvsync", "validate", "-f", str(path)],
                check=True,
                capture_output=True,
            )

        def floor_command() -> None:
            subprocess.run(
                [sys.executable, "-c", FLOOR_COMMAND, str(path)], check=True, capture_output=True
            )

        cases: dict[str, Callable[[], object]] = {
            "bare parse": bare,
            "load_manifest": lambda: load_manifest(path),
            "load (one error)": load_with_error,
            "validate command": whole_command,
            "floor command": floor_command,
        }
        for action in cases.values():
            action()  # warm the OS caches and the imports once
        runs: dict[str, list[float]] = {name: [] for name in cases}
        for round_ in range(args.repeat):
            for name, action in cases.items():
                runs[name].append(timed(action))
            print(
                f"round {round_ + 1}: "
                + "  ".join(f"{name} {values[-1]:.2f}s" for name, values in runs.items()),
                flush=True,
            )

    median = {name: statistics.median(values) for name, values in runs.items()}
    print(f"medians of {args.repeat} rounds:")
    print(f"bare PyYAML CSafeLoader parse      {median['bare parse']:6.2f} s")
    for name, label, floor in (
        ("load_manifest", "load_manifest (valid)             ", "bare parse"),
        ("load (one error)", "load_manifest (one error, located)", "bare parse"),
        ("floor command", "python -c PyYAML parse (subprocess)", "bare parse"),
        ("validate command", "mvsync validate (subprocess)      ", "floor command"),
    ):
        print(f"{label} {median[name]:6.2f} s   /{floor} {median[name] / median[floor]:.2f}x")
    print(
        f"validate: load_manifest/bare parse {median['load_manifest'] / median['bare parse']:.2f}x,"
        f" command/floor command {median['validate command'] / median['floor command']:.2f}x"
        " (aims <= 1.5x)"
    )


if __name__ == "__main__":
    main()
