"""apply's question, as real processes: a pseudo-terminal for the terminal cases.

Only ``yes`` typed out creates; ``y``, Enter and end of input cancel (exit 1, no POST).
Without a terminal and without ``--yes`` apply refuses. What apply can check before
creating (the variables the creates send, the secrets file, the lock) fails before the
question is ever shown.
"""

from __future__ import annotations

import os
import pty
import select
import subprocess
import time
from pathlib import Path

import pytest

from mvsync.emulator import Emulator
from mvsync.store.lock import EnvironmentLock, lock_path
from test_cli_apply import cli_env, command, run, secrets_path, write_manifest

# The question's last line: the helper waits for it and fails fast when it changes.
PROMPT = b"Enter a value: "
QUESTION = b"Only 'yes' creates them"


class Terminal:
    """``mvsync apply --env dev`` with stdin and stderr on a pseudo-terminal (stdout a pipe).

    Every wait is bounded: the helper fails at once, saying what the terminal showed,
    when apply exits without asking, or when the terminal showed something and then
    stayed quiet without the prompt (the question's words changed) — never by waiting
    out the test's timeout.
    """

    QUIET = 2.0  # seconds of silence after the first output that mean "not the prompt"
    LIMIT = 30.0  # seconds for apply to start, list and ask

    def __init__(self, folder: Path, *extra: str, env: dict[str, str] | None = None) -> None:
        controller, terminal = pty.openpty()
        self.process = subprocess.Popen(
            command(folder, "apply", "--env", "dev", *extra),
            stdin=terminal,
            stdout=subprocess.PIPE,
            stderr=terminal,
            env=cli_env() if env is None else env,
        )
        os.close(terminal)
        self.controller = controller
        self.seen = b""

    def _read(self, wait: float) -> bytes | None:
        """The next output; ``b""`` when the process closed the terminal; None when quiet."""
        ready, _, _ = select.select([self.controller], [], [], wait)
        if not ready:
            return None
        try:
            return os.read(self.controller, 4096)
        except OSError:  # EIO: every holder of the terminal's other side has closed it
            return b""

    def shown(self) -> str:
        return self.seen.decode(errors="replace")

    def wait_for(self, text: bytes) -> None:
        deadline = time.monotonic() + self.LIMIT
        while text not in self.seen:
            left = deadline - time.monotonic()
            if left <= 0:
                self.kill()
                pytest.fail(
                    f"no {text!r} within {self.LIMIT:g}s; the terminal shows {self.shown()!r}"
                )
            chunk = self._read(min(left, self.QUIET) if self.seen else left)
            if chunk is None:
                self.kill()
                pytest.fail(
                    f"the question changed: no {text!r}; the terminal shows {self.shown()!r}"
                )
            if not chunk:
                self.kill()
                pytest.fail(f"apply ended without {text!r}; the terminal shows {self.shown()!r}")
            self.seen += chunk

    def type(self, keys: bytes) -> None:
        os.write(self.controller, keys)

    def finish(self, within: float = 10.0) -> tuple[int, str]:
        """Exit status and stdout; fails (killing apply) when it does not exit in time."""
        try:
            out, _ = self.process.communicate(timeout=within)
        except subprocess.TimeoutExpired:
            self.kill()
            pytest.fail(f"apply did not exit within {within:g}s; terminal: {self.shown()!r}")
        while chunk := self._read(0.5):
            self.seen += chunk
        os.close(self.controller)
        return self.process.returncode, out.decode()

    def kill(self) -> None:
        self.process.kill()
        self.process.communicate(timeout=10)


# --- the answer -------------------------------------------------------------------------


def test_yes_typed_out_creates_after_showing_the_plan(emulator: Emulator, tmp_path: Path) -> None:
    write_manifest(tmp_path, emulator.url)
    terminal = Terminal(tmp_path)
    terminal.wait_for(PROMPT)
    assert emulator.request_count("POST") == 0  # asked before creating
    assert b"Create 3 applications in environment 'dev'?" in terminal.seen
    terminal.type(b"yes\r")
    code, out = terminal.finish(within=30)
    assert (code, emulator.request_count("POST")) == (0, 3), terminal.shown()
    assert out.index('+ create "App 0"') < out.index("Apply complete")  # the plan came first


@pytest.mark.parametrize(
    "keys",
    [b"y\r", b"Y\r", b"yes please\r", b"no\r", b"\x04"],
    ids=["y", "Y", "yes-please", "no", "end-of-input"],
)
def test_anything_but_yes_cancels_with_exit_1_and_no_post(
    emulator: Emulator, tmp_path: Path, keys: bytes
) -> None:
    write_manifest(tmp_path, emulator.url)
    terminal = Terminal(tmp_path)
    terminal.wait_for(PROMPT)
    terminal.type(keys)
    code, _ = terminal.finish()
    assert (code, emulator.request_count("POST")) == (1, 0), terminal.shown()
    assert "apply cancelled (the answer was not 'yes'): nothing was created" in terminal.shown()


def test_enter_alone_is_no_exit_1_and_no_post_within_seconds(
    emulator: Emulator, tmp_path: Path
) -> None:
    write_manifest(tmp_path, emulator.url)
    terminal = Terminal(tmp_path)
    terminal.wait_for(PROMPT)
    terminal.type(b"\r")  # Enter: the default must be no
    code, _ = terminal.finish(within=5)
    assert (code, emulator.request_count("POST")) == (1, 0), terminal.shown()
    assert not secrets_path(tmp_path).exists()


# --- no terminal ----------------------------------------------------------------------------


def test_without_a_terminal_and_without_yes_apply_refuses_naming_yes(
    emulator: Emulator, tmp_path: Path
) -> None:
    write_manifest(tmp_path, emulator.url)
    refused = subprocess.run(
        command(tmp_path, "apply", "--env", "dev"),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        env=cli_env(),
        timeout=60,
    )
    assert (refused.returncode, emulator.request_count("POST")) == (1, 0), refused.stderr
    assert "there is no terminal to ask on: pass --yes" in refused.stderr
    assert "nothing was created" in refused.stderr
    assert "Traceback" not in refused.stderr
    assert not secrets_path(tmp_path).exists()


def test_without_a_terminal_a_plan_with_nothing_to_create_needs_no_yes(
    emulator: Emulator, tmp_path: Path
) -> None:
    write_manifest(tmp_path, emulator.url)
    assert run(tmp_path, "apply", "--env", "dev", "--yes").returncode == 0
    again = subprocess.run(
        command(tmp_path, "apply", "--env", "dev"),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        env=cli_env(),
        timeout=60,
    )
    assert (again.returncode, emulator.request_count("POST")) == (0, 3), again.stderr
    assert "--yes" not in again.stderr


# --- checked before the question -----------------------------------------------------------


def refused_without_asking(terminal: Terminal) -> str:
    """apply must exit 1 before the question ever appears; returns what the terminal showed."""
    code, _ = terminal.finish(within=30)
    shown = terminal.shown()
    assert code == 1, shown
    assert QUESTION not in terminal.seen, shown
    return shown


def test_a_missing_webhook_secret_variable_fails_before_the_question(
    emulator: Emulator, tmp_path: Path
) -> None:
    write_manifest(tmp_path, emulator.url)
    env = cli_env()
    del env["MV_WEBHOOK_SECRET"]
    shown = refused_without_asking(Terminal(tmp_path, env=env))
    assert "MV_WEBHOOK_SECRET" in shown
    assert emulator.request_count("POST") == 0


def test_a_secrets_file_readable_by_others_fails_before_the_question(
    emulator: Emulator, tmp_path: Path
) -> None:
    write_manifest(tmp_path, emulator.url, count=1)
    assert run(tmp_path, "apply", "--env", "dev", "--yes").returncode == 0
    secrets_path(tmp_path).chmod(0o644)
    write_manifest(tmp_path, emulator.url, count=2)
    shown = refused_without_asking(Terminal(tmp_path))
    assert "chmod 600" in shown
    assert emulator.request_count("POST") == 1


def test_a_held_lock_fails_before_the_question(emulator: Emulator, tmp_path: Path) -> None:
    write_manifest(tmp_path, emulator.url)
    secrets_path(tmp_path).parent.mkdir(mode=0o700)
    with EnvironmentLock(lock_path(secrets_path(tmp_path)), command="mvsync apply --env dev"):
        shown = refused_without_asking(Terminal(tmp_path))
    assert f"pid {os.getpid()}" in shown
    assert emulator.request_count("POST") == 0


def test_a_key_sink_program_missing_from_path_is_refused_before_asking(
    emulator: Emulator, tmp_path: Path
) -> None:
    write_manifest(tmp_path, emulator.url)
    manifest = tmp_path / "mvsync.yaml"
    manifest.write_text(
        manifest.read_text().replace(
            "    api_key_env: MV_TEST_KEY\n",
            '    api_key_env: MV_TEST_KEY\n    key_sink: [no-such-sink-program, "x-{slug}"]\n',
        )
    )
    shown = refused_without_asking(Terminal(tmp_path))
    assert "'no-such-sink-program' is not found in PATH" in shown
    assert emulator.request_count("POST") == 0


def test_apply_help_says_how_the_question_works() -> None:
    shown = subprocess.run(
        [*command(Path("."), "apply", "--help")], capture_output=True, text=True, timeout=60
    ).stdout
    flat = " ".join(shown.split())
    assert "only the answer 'yes', typed out, creates" in flat
    assert (
        "Without a terminal (CI, cron, ssh host mvsync apply, < /dev/null) and without "
        "--yes, apply refuses" in flat
    )
    assert "Before the question, apply checks" in flat
