"""Help and words: short help that is never cut, help for every option, ``-y``, commands
in the order of the work, did-you-mean for ``--env``, counts that are true, no
"0 key(s)", a sorted apply summary, an emulator that works without ``--api-key``."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
from pathlib import Path

import click
import httpx
import pytest

from mvsync.apply.settings import ApplyResult
from mvsync.cli import main
from mvsync.cli.group import cli
from mvsync.render import render_apply_result
from test_emulator_cli import mvsync, wait_ready

WORKFLOW_ORDER = [
    *("validate", "plan", "apply", "check", "show", "keys", "state", "import", "envs"),
    "schema",
    "emulator",
]


def help_text(*args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "mvsync", *args, "--help"],
        capture_output=True,
        text=True,
        check=True,
        env={"COLUMNS": "80", "PATH": "/usr/bin:/bin"},
    )
    return done.stdout


def test_commands_are_listed_in_the_order_of_the_work() -> None:
    listed = re.findall(r"^  ([a-z]+)\s", help_text().split("Commands:")[1], re.MULTILINE)
    assert listed == WORKFLOW_ORDER


def test_no_short_help_is_cut_mid_sentence() -> None:
    lines = help_text().split("Commands:")[1].strip().splitlines()
    assert len(lines) == len(WORKFLOW_ORDER)
    assert [line for line in lines if line.endswith("...") or not line.endswith(".")] == []


def every_command(group: click.Group, path: str = "") -> list[tuple[str, click.Command]]:
    """Each command under ``group`` with its full name, the commands of its groups too."""
    found: list[tuple[str, click.Command]] = []
    ctx = click.Context(group)
    for name in group.list_commands(ctx):  # the group imports its commands when asked
        command = group.get_command(ctx, name)
        assert command is not None, name
        full = f"{path} {name}".strip()
        found.append((full, command))
        if isinstance(command, click.Group):
            found.extend(every_command(command, full))
    return found


def test_every_option_of_every_command_has_help() -> None:
    commands = every_command(cli)
    assert "keys show" in dict(commands)  # the walk reached into the groups
    missing = [
        f"{name} {'/'.join(param.opts)}"
        for name, command in commands
        for param in command.params
        if isinstance(param, click.Option) and not param.help
    ]
    assert missing == []


def test_y_is_short_for_yes() -> None:
    apply = cli.get_command(click.Context(cli), "apply")
    assert apply is not None
    [yes] = [p for p in apply.params if p.name == "yes"]
    assert "-y" in yes.opts
    assert "-y, --yes" in help_text("apply")


@pytest.mark.parametrize("command", ["plan", "apply", "import"])
def test_a_wrong_case_environment_gets_a_did_you_mean(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], command: str
) -> None:
    manifest = tmp_path / "mvsync.yaml"
    manifest.write_text("version: 1\nenvironments:\n  staging: {}\n  prod: {}\napplications: []\n")
    with pytest.raises(SystemExit) as exit_:
        main([command, "-f", str(manifest), "--env", "Prod"])
    assert exit_.value.code == 1
    assert (
        "unknown environment 'Prod' (the manifest defines: staging, prod); did you mean 'prod'?"
        in capsys.readouterr().err
    )


def test_a_misspelt_environment_gets_a_did_you_mean(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    manifest = tmp_path / "mvsync.yaml"
    manifest.write_text("version: 1\nenvironments:\n  staging: {}\napplications: []\n")
    with pytest.raises(SystemExit):
        main(["plan", "-f", str(manifest), "--env", "stagign"])
    assert "did you mean 'staging'?" in capsys.readouterr().err


def test_the_apply_summary_lists_creates_sorted_and_never_says_zero_keys(
    tmp_path: Path,
) -> None:
    import io

    result = ApplyResult("dev", tmp_path / "dev.secrets.yaml")
    result.created = [("Charlie", "app_3"), ("Alpha", "app_1"), ("Bravo", "app_2")]
    result.unchanged = 3
    out = io.StringIO()
    render_apply_result(result, out)
    text = out.getvalue()
    created = [line for line in text.splitlines() if line.startswith("+ created")]
    assert created == [
        '+ created "Alpha" (app_1)',
        '+ created "Bravo" (app_2)',
        '+ created "Charlie" (app_3)',
    ]
    assert "(s)" not in text and "0 key" not in text and "0 failed" not in text
    assert "Apply complete for environment 'dev': 3 created; now 3 equal" in text


def test_the_apply_summary_counts_one_key_not_captured_in_the_singular(tmp_path: Path) -> None:
    import io

    result = ApplyResult("dev", tmp_path / "s.yaml", not_captured=[("A", "app_1")])
    out = io.StringIO()
    render_apply_result(result, out)
    assert "0 created, 1 key not captured;" in out.getvalue()


def test_the_emulator_without_api_key_generates_one_and_says_how_to_use_it() -> None:
    process = subprocess.Popen(
        mvsync("emulator", "--port", "0"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        url = wait_ready(process)
        assert process.stdout is not None
        said = [process.stdout.readline() for _ in range(3)]
        assert said[0].startswith("mvsync emulator: no --api-key given")
        key = said[1].strip().removeprefix("export MINIVOICE_API_KEY=")
        assert key.startswith("mvemu_")
        assert f"Bearer {key}" in said[2]
        answer = httpx.get(url + "/v1/applications", headers={"Authorization": f"Bearer {key}"})
        assert answer.status_code == 200
    finally:
        process.send_signal(signal.SIGINT)
        process.communicate(timeout=20)
    assert process.returncode == 0


@pytest.mark.parametrize(("typed", "meant"), [("plna", "plan"), ("aply", "apply")])
def test_a_misspelt_command_gets_a_did_you_mean(
    typed: str, meant: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # The group imports a command's module only when it runs: a name that is no command
    # still gets click's suggestion from every command's name.
    with pytest.raises(SystemExit) as exit_:
        main([typed])
    assert exit_.value.code == 1
    assert f"No such command '{typed}'. Did you mean '{meant}'?" in capsys.readouterr().err


def test_plan_imports_no_other_command() -> None:
    # A fresh interpreter: the command modules that `mvsync plan --help` loads.
    script = (
        "import sys\nfrom mvsync.cli import main\ntry:\n    main(['plan', '--help'])\n"
        "except SystemExit:\n    pass\n"
        "print('MODULES', *sorted(m for m in sys.modules if m.startswith('mvsync.cli.')))"
    )
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    ).stdout
    [line] = [x for x in out.splitlines() if x.startswith("MODULES ")]
    loaded = set(line.split()[1:])
    assert "mvsync.cli.plan" in loaded
    others = ("apply", "check", "emulator", "import_", "keys", "show", "state", "validate")
    assert loaded & {f"mvsync.cli.{name}" for name in others} == set()
