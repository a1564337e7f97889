"""How much validating costs over a bare C-loader parse of the same big manifest.

    python benchmarks/bench_validate.py [--apps 10000] [--repeat 3]

Generates a manifest of N applications (about 6 lines each), then times, best of
``--repeat``:

- a bare parse with PyYAML's ``CSafeLoader`` (the floor: libyaml + object building),
- ``mvsync.manifest.load_manifest`` (ruamel's C loader + pydantic + cross-field checks),
- the whole ``mvsync validate -f`` as a subprocess (interpreter start and imports included),
- ``load_manifest`` of the same file with one error at its end (the compose pass that
  finds positions is paid only then),

and prints the ratio load_manifest / bare parse (the aim is at most 2x).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import yaml

from mvsync.errors import ManifestError
from mvsync.manifest import load_manifest


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


def best_of(repeat: int, action: Callable[[], object]) -> float:
    timings = []
    for _ in range(repeat):
        started = time.perf_counter()
        action()
        timings.append(time.perf_counter() - started)
    return min(timings)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--apps", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

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

        bare_s = best_of(args.repeat, bare)
        load_s = best_of(args.repeat, lambda: load_manifest(path))
        error_s = best_of(args.repeat, load_with_error)
        command_s = best_of(args.repeat, whole_command)

    print(f"bare PyYAML CSafeLoader parse      {bare_s:6.2f} s")
    print(f"load_manifest (valid)              {load_s:6.2f} s   ratio {load_s / bare_s:.2f}x")
    print(f"load_manifest (one error, located) {error_s:6.2f} s   ratio {error_s / bare_s:.2f}x")
    command_ratio = command_s / bare_s
    print(f"mvsync validate (subprocess)       {command_s:6.2f} s   ratio {command_ratio:.2f}x")


if __name__ == "__main__":
    main()
