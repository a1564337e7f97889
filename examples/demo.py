"""The main job in one command (``make demo``): plan, comment, apply, plan again, no account.

What it does, as a user would at a terminal:

1. starts the built-in MiniVoice emulator (``mvsync emulator``) on a free loopback
   port with a random bearer key, and waits until it answers;
2. copies ``examples/minivoice.yaml`` into a scratch folder ``./.mvsync-demo/``
   (wiped first) and points its ``dev`` environment at the emulator through the
   variables the manifest reads (``MVSYNC_DEV_API_URL``, ``MINIVOICE_API_KEY_DEV``,
   ``MV_WEBHOOK_SECRET``);
3. generates a throwaway age identity (``demo-identity.txt``, with pyrage: no ``age``
   CLI needed) and adds its recipient to the copied manifest, so every key is sealed,
   and gives ``dev`` a ``key_sink``: ``examples/sinks/to-file.py``, which writes each new
   key to ``delivered/<slug>.key`` (0600), standing in for ``gh secret set`` or Vault;
4. creates two applications "by hand", as someone would in the MiniVoice console: one
   the manifest names with another answer_url (a drift), one under another name with
   the answer_url of a manifest entry (an unmanaged application, a likely rename);
5. runs ``mvsync plan --env dev -o plan-dev.json`` (creates, the drift, the unmanaged
   application and the rename hint), ``mvsync show plan-dev.json --format markdown``
   (the pull-request comment, written to ``pr-comment.md``), ``mvsync apply --env dev
   --yes --allow-drift`` (keys sealed, stored, then handed to the sink; the drift
   reported, not fatal; the demo checks a file arrived per key, never showing one),
   ``mvsync plan --env dev --detailed-exitcode`` (exit 2: only the drift the API cannot
   fix is left; its key, made by hand, is "missing" from the ledger), ``mvsync keys list
   --env dev`` (every entry sealed) and one ``mvsync keys show ... -i demo-identity.txt
   > key.txt`` (the key goes to a 0600 file, never to the demo's output);
6. runs ``mvsync -f check.yaml check`` against the emulator's sample receiver
   (``--receiver``): one application whose answer_url and webhook_url pass, one whose
   answer_url answers HTML and whose webhook_url accepts forged events (exit 1);
7. says where the secrets file and the comment are, and stops the emulator.

It exits 1 as soon as a step does not do what it should. ``--dir`` picks another
scratch folder and ``--manifest`` another manifest with a ``dev`` environment (the
tests use them).
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import re
import secrets
import shutil
import signal
import socket
import stat
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from pyrage import x25519
from ruamel.yaml import YAML

from mvsync.model import slug

EXAMPLES = Path(__file__).resolve().parent
MANIFEST = EXAMPLES / "minivoice.yaml"
TO_FILE_SINK = EXAMPLES / "sinks" / "to-file.py"
DELIVERED = "delivered"
ENV = "dev"
STARTUP_DEADLINE = 20.0
STOP_DEADLINE = 10.0
# A create in the text plan: a line whose first mark is "+"; a drift: "~".
CREATE_LINE = re.compile(r"^\s*\+\s+\S", re.MULTILINE)
DRIFT_LINE = re.compile(r"^\s*~ drift ", re.MULTILINE)
EXIT_CHANGES = 2

# What someone did by hand in the MiniVoice console before the demo's first plan.
BY_HAND = (
    # The manifest's "Reception IVR", with an answer_url the manifest does not say: drift.
    {
        "name": "Reception IVR",
        "answer_url": "https://old.ivr.example.com/minivoice/reception/answer",
        "webhook_url": "https://crm.example.com/minivoice/webhooks",
    },
    # The answer_url of "Support IVR (dev)" under another name: unmanaged, likely a rename.
    {
        "name": "Support IVR dev",
        "answer_url": "https://dev.ivr.example.com/minivoice/support/answer",
    },
)


class DemoFailed(Exception):
    """A step did not do what the demo says it does."""


def say(message: str = "") -> None:
    print(message, flush=True)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def answers(url: str, api_key: str) -> bool:
    request = urllib.request.Request(
        f"{url}/v1/applications", headers={"Authorization": f"Bearer {api_key}"}
    )
    try:
        with urllib.request.urlopen(request, timeout=2) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


class EmulatorProcess:
    """``mvsync emulator`` in a subprocess on a free loopback port, as a user runs it."""

    def __init__(self, workdir: Path, api_key: str, receiver_secret: str = "") -> None:
        self.api_key = api_key
        self.receiver_secret = receiver_secret
        self.log_path = workdir / "emulator.log"
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        say(f"$ mvsync emulator --port {self.port} --api-key <random demo key> > {self.log_path}")
        command = [sys.executable, "-m", "mvsync", "emulator", "--port", str(self.port)]
        # The sample receiver's secret goes in the environment, not argv (ps would show it).
        env = {**os.environ, "MVSYNC_RECEIVER_SECRET": self.receiver_secret}
        if not self.receiver_secret:
            env.pop("MVSYNC_RECEIVER_SECRET")
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                [*command, "--api-key", self.api_key],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
            )
        deadline = time.monotonic() + STARTUP_DEADLINE
        while not answers(self.url, self.api_key):
            if self.process.poll() is not None:
                raise DemoFailed(f"the emulator exited with status {self.process.returncode}")
            if time.monotonic() > deadline:
                raise DemoFailed(f"the emulator did not answer within {STARTUP_DEADLINE:.0f}s")
            time.sleep(0.1)
        say(f"  the emulator answers at {self.url}")

    def stop(self) -> int | None:
        """Ctrl-C it (a clean shutdown exits 0); kill it only if it does not stop."""
        if self.process is None:
            return None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=STOP_DEADLINE)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode


@contextmanager
def running_emulator(workdir: Path, api_key: str, receiver_secret: str = "") -> Iterator[str]:
    """The URL of a started emulator; stops it after, failing if it did not stop cleanly."""
    emulator = EmulatorProcess(workdir, api_key, receiver_secret)
    try:
        emulator.start()
        yield emulator.url
    except BaseException:
        say(f"emulator stopped (exit {emulator.stop()})")
        raise
    status = emulator.stop()
    say()
    say(f"emulator stopped (exit {status})")
    expect(status == 0, f"the emulator did not shut down cleanly (exit {status})")


def mvsync(args: Sequence[str], workdir: Path, env: dict[str, str]) -> tuple[int, str]:
    """Run ``mvsync ARGS`` in the scratch folder, show its output, return (status, output)."""
    say()
    say(f"$ mvsync {' '.join(args)}")
    done = subprocess.run(
        [sys.executable, "-m", "mvsync", *args],
        cwd=workdir,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        check=False,
    )
    output = done.stdout
    sys.stdout.write(output if output.endswith("\n") or not output else output + "\n")
    say(f"  (exit {done.returncode})")
    return done.returncode, output


def create_by_hand(url: str, api_key: str) -> None:
    """POST the BY_HAND applications straight to the API, as the console would."""
    for body in BY_HAND:
        say(f"$ curl -X POST {url}/v1/applications --data '{json.dumps(body)}'   # by hand")
        request = urllib.request.Request(
            f"{url}/v1/applications",
            data=json.dumps(body).encode(),
            headers={"Authorization": f"Bearer {api_key}", "Content-Type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=5) as response:
            expect(response.status == 201, f"the emulator answered {response.status} to a create")


def write_comment(workdir: Path, env: dict[str, str]) -> Path:
    """``mvsync show`` of the saved plan as the pull-request comment, in a file."""
    comment = workdir / "pr-comment.md"
    args = ["show", "plan-dev.json", "--format", "markdown"]
    say()
    say(f"$ mvsync {' '.join(args)} > {comment.name}")
    done = subprocess.run(
        [sys.executable, "-m", "mvsync", *args],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    expect(done.returncode == 0, f"show exited {done.returncode}: {done.stderr.strip()}")
    comment.write_text(done.stdout, encoding="utf-8")
    say(f"  (exit 0) the pull-request comment, {len(done.stdout)} characters, is in {comment}:")
    say()
    sys.stdout.write("".join(f"  | {line}\n" for line in done.stdout.splitlines()))
    return comment


def expect(condition: bool, failure: str) -> None:
    if not condition:
        raise DemoFailed(failure)


def stored_keys(secrets_file: Path) -> int:
    """How many applications of the secrets file have a sealed key (none is shown)."""
    data = YAML(typ="safe").load(secrets_file.read_text(encoding="utf-8"))
    applications = (data.get("applications") or {}) if isinstance(data, dict) else {}
    return sum(
        1
        for entry in applications.values()
        if entry.get("sealed_api_key") and not entry.get("api_key")
    )


IDENTITY = "demo-identity.txt"


def make_identity(workdir: Path) -> str:
    """A throwaway age identity in ``workdir`` (0600, as age-keygen writes it); its recipient."""
    identity = x25519.Identity.generate()
    recipient = str(identity.to_public())
    path = workdir / IDENTITY
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as handle:
        handle.write("# a throwaway identity made by the mvsync demo\n")
        handle.write(f"# public key: {recipient}\n{identity}\n")
    return recipient


def seal_to(manifest: Path, recipient: str) -> None:
    """Add ``recipients: [RECIPIENT]`` at the top level of the copied manifest."""
    text = manifest.read_text(encoding="utf-8")
    line = f"recipients: [{recipient}] # the demo's throwaway identity: every key is sealed\n"
    version = re.search(r"^version:.*\n", text, re.MULTILINE)
    expect(version is not None, f"{manifest} has no top-level 'version:' line")
    expect(not re.search(r"^recipients:", text, re.MULTILINE), "the manifest has recipients")
    assert version is not None
    manifest.write_text(text[: version.end()] + line + text[version.end() :], encoding="utf-8")


def add_key_sink(manifest: Path) -> None:
    """Give the copied manifest's ``dev`` environment a key sink writing to ``delivered/``."""
    text = manifest.read_text(encoding="utf-8")
    env = re.search(rf"^  {ENV}:\n", text, re.MULTILINE)
    expect(env is not None, f"{manifest} has no '  {ENV}:' environment")
    assert env is not None
    sink = [sys.executable, str(TO_FILE_SINK), f"{DELIVERED}/{{slug}}.key"]
    lines = (
        "    # the demo's key sink: each new key, on stdin, to a 0600 file (in real life\n"
        "    # gh secret set, vault kv put, pass insert: see docs/keys.md)\n"
        f"    key_sink: {json.dumps(sink)}\n"
    )
    manifest.write_text(text[: env.end()] + lines + text[env.end() :], encoding="utf-8")


def check_delivered(workdir: Path, names: Sequence[str]) -> dict[str, Path]:
    """Each created application's key arrived in ``delivered/<slug>.key`` (0600); only
    the file names and lengths are shown."""
    folder = workdir / DELIVERED
    files = {name: folder / f"{slug(name)}.key" for name in names}
    say()
    say(f"$ ls -l {DELIVERED}/   # what the key sink received")
    for name, path in files.items():
        expect(path.is_file(), f"the key sink wrote no {path} for {name!r}")
        mode = stat.S_IMODE(path.stat().st_mode)
        expect(mode == 0o600, f"{path} has mode {mode:04o}, expected 0600")
        size = len(path.read_bytes())
        expect(size > 0, f"{path} is empty")
        say(f"  {DELIVERED}/{path.name}  mode 0600, {size} characters: the key of {name!r}")
    return files


def show_one_key(workdir: Path, env: dict[str, str], name: str) -> Path:
    """``mvsync keys show`` of one key into a 0600 file; only its length is shown."""
    target = workdir / "key.txt"
    say()
    say(f'$ mvsync keys show --env {ENV} "{name}" -i {IDENTITY} > {target.name}')
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        done = subprocess.run(
            [sys.executable, "-m", "mvsync", "keys", "show", "--env", ENV, name, "-i", IDENTITY],
            cwd=workdir,
            env=env,
            stdout=out,
            stderr=subprocess.PIPE,
            text=True,
            check=False,
        )
    sys.stdout.write(done.stderr)
    say(f"  (exit {done.returncode})")
    expect(done.returncode == 0, f"keys show exited {done.returncode}, expected 0")
    key = target.read_text()
    expect(key.endswith("\n") and "\n" not in key[:-1], "keys show wrote more than one line")
    say(f"  the key of {name!r} ({len(key) - 1} characters) is in {target} (mode 0600);")
    say("  (a key_sink hands each key on when it is created: gh secret set, vault, pass)")
    return target


def check_receivers(workdir: Path, url: str, env: dict[str, str]) -> None:
    """``mvsync check`` of two applications on the emulator's sample receiver: one ready
    for real traffic, one that is not (an HTML answer, a receiver that takes forgeries)."""
    receiver = f"{url}/_receiver"
    apps = [
        {
            "name": "Reception IVR (ready)",
            "answer_url": f"{receiver}/answer",
            "webhook_url": f"{receiver}/webhooks",
        },
        {
            "name": "Support IVR (not ready)",
            "answer_url": f"{receiver}/html",
            "webhook_url": f"{receiver}/open",
        },
    ]
    manifest = {
        "version": 1,
        "environments": {ENV: {"api_url": url}},
        "defaults": {"webhook_secret": "${DEMO_RECEIVER_SECRET}"},
        "applications": apps,
    }
    (workdir / "check.yaml").write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    status, output = mvsync(["-f", "check.yaml", "check"], workdir, env)
    expect(status == 1, f"check exited {status}, expected 1 (one application fails)")
    expect("passed  Reception IVR (ready)" in output, "the ready application did not pass")
    expect("answered text/html, not JSON" in output, "the HTML answer was not named")
    expect("accepted an event with a wrong signature" in output, "the open receiver passed")


def run_demo(workdir: Path, manifest: Path = MANIFEST) -> tuple[Path, Path]:
    """The whole story; returns the secrets file and the comment. Raises DemoFailed."""
    expect(manifest.is_file(), f"{manifest} is missing")
    if workdir.exists():
        shutil.rmtree(workdir)
    workdir.mkdir(parents=True)
    shutil.copyfile(manifest, workdir / "mvsync.yaml")
    recipient = make_identity(workdir)
    seal_to(workdir / "mvsync.yaml", recipient)
    add_key_sink(workdir / "mvsync.yaml")
    say(f"a throwaway age identity is in {workdir / IDENTITY}; its recipient {recipient}")
    say("was added to the copied manifest: apply seals every key to it, and hands each")
    say(f"new key to the key sink {TO_FILE_SINK.name}, which writes it to {DELIVERED}/<slug>.key")
    api_key = f"demo_{secrets.token_hex(16)}"
    receiver_secret = f"whsec_{base64.b64encode(secrets.token_bytes(24)).decode()}"

    with running_emulator(workdir, api_key, receiver_secret) as url:
        env = {
            **os.environ,
            "MVSYNC_DEV_API_URL": url,
            "MINIVOICE_API_KEY_DEV": api_key,
            "MV_WEBHOOK_SECRET": f"whsec_demo_{secrets.token_hex(8)}",
            "DEMO_RECEIVER_SECRET": receiver_secret,
        }
        env.pop("MVSYNC_FILE", None)  # the demo's own manifest: ./mvsync.yaml in the folder

        say()
        create_by_hand(url, api_key)

        status, output = mvsync(["plan", "--env", ENV, "-o", "plan-dev.json"], workdir, env)
        creates = len(CREATE_LINE.findall(output))
        expect(status == 0, f"plan exited {status}, expected 0")
        expect(creates > 0, "the first plan shows no create")

        comment = write_comment(workdir, env)

        status, output = mvsync(["apply", "--env", ENV, "--yes", "--allow-drift"], workdir, env)
        expect(status == 0, f"apply --allow-drift exited {status}, expected 0")
        created = re.findall(r'^\+ created "((?:[^"\\]|\\.)*)" \(', output, re.MULTILINE)
        expect(len(created) == creates, f"apply reports {len(created)} creates, not {creates}")
        expect(f"{creates} keys delivered to" in output, "apply does not say the sink took them")
        delivered = check_delivered(workdir, created)

        status, output = mvsync(["plan", "--env", ENV, "--detailed-exitcode"], workdir, env)
        expect(not CREATE_LINE.search(output), "the second plan still shows creates")
        drifted = bool(DRIFT_LINE.search(output))
        expected = EXIT_CHANGES if drifted else 0
        expect(status == expected, f"the second plan exited {status}: expected {expected}")
        # The drifted application was made by hand: the ledger has no key for it.
        expect(not drifted or "key not held" in output, "the second plan names no key missing")

        # The ledger needs no network and no API key: the emulator could be gone.
        status, output = mvsync(["keys", "list", "--env", ENV], workdir, env)
        expect(status == 0, f"keys list exited {status}, expected 0")
        rows = output.splitlines()
        expect(len(rows) == creates, f"keys list shows {len(rows)} entries for {creates} creates")
        expect(all(" sealed " in row for row in rows), "an entry of keys list is not sealed")
        expect(all(" delivered " in row for row in rows), "an entry of keys list is not delivered")
        first = re.match(r'^"((?:[^"\\]|\\.)*)"', rows[0])
        expect(first is not None, "keys list does not start with a quoted name")
        assert first is not None
        shown = show_one_key(workdir, env, first.group(1))
        sink_file = delivered.get(first.group(1))
        expect(sink_file is not None, f"{first.group(1)!r} was not delivered")
        assert sink_file is not None
        same = sink_file.read_text() == shown.read_text().removesuffix("\n")
        expect(same, f"{sink_file} does not hold the key keys show gives")
        say(f"  {DELIVERED}/{sink_file.name} holds that same key: the sink got it exactly")

        check_receivers(workdir, url, env)

    secrets_file = workdir / ".mvsync" / f"{ENV}.secrets.yaml"
    expect(secrets_file.is_file(), f"no secrets file at {secrets_file}")
    mode = stat.S_IMODE(secrets_file.stat().st_mode)
    expect(mode == 0o600, f"{secrets_file} has mode {mode:04o}, expected 0600")
    stored = stored_keys(secrets_file)
    expect(stored == creates, f"{stored} keys stored for {creates} creates")
    return secrets_file, comment


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--dir", type=Path, default=Path(".mvsync-demo"), help="scratch folder")
    parser.add_argument("--manifest", type=Path, default=MANIFEST, help="the manifest to copy")
    options = parser.parse_args(argv)
    workdir, manifest = options.dir.resolve(), options.manifest.resolve()
    say(f"mvsync demo: {manifest.name}, environment {ENV!r}, built-in emulator, in {workdir}/")
    try:
        secrets_file, comment = run_demo(workdir, manifest)
    except DemoFailed as failure:
        say()
        say(f"demo FAILED: {failure}")
        return 1
    say()
    say("Done. Each new application's API key was handed to the key sink, which put it")
    say(f"in {secrets_file.parent.parent / DELIVERED}/ (in real life: a GitHub secret, Vault,")
    say(f"pass; docs/keys.md). The record is {secrets_file} (mode 0600),")
    say(f"sealed to {IDENTITY}: it holds no plaintext key, so CI may keep it as an")
    say("artifact or commit it. Keep that folder: it is also the journal that lets the")
    say("next apply report a create whose key was not captured, or deliver a key again.")
    say(f"The pull-request comment (Markdown, as GitHub would show it) is in {comment}.")
    say("The drift is left on purpose: the API cannot update an application, so change the")
    say("manifest to match or fix it in the MiniVoice console.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
