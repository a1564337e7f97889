"""``mvsync apply`` as a real process when the disk under its keys fails it (issue 9 items
1, 2, 5, 10; issue 11 item 3): the secrets folder removed mid-run, a real full tmpfs, a
folder made immutable, two checkouts of one manifest, SIGTERM during the confirm listing.

The tmpfs and ``chattr`` tests need root (they skip without it). To see how a test fares
against another version of mvsync (the code before a fix, say), set ``MVSYNC_CLI_SRC`` to
that version's ``src`` folder: the ``mvsync`` processes run from it, the test itself (and
the emulator) from this checkout.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from helpers import TEST_API_KEY, assert_no_secrets
from mvsync.emulator import Emulator, Fault
from mvsync.store.keys import read_secrets
from test_cli_apply import cli_env, command, secrets_path, write_manifest
from test_sealed_apply import age_decrypt, make_identity, sealed_manifest

ARMOR = re.compile(
    r"-----BEGIN AGE ENCRYPTED FILE-----\n.*?\n-----END AGE ENCRYPTED FILE-----", re.DOTALL
)
HAVE_AGE = shutil.which("age") is not None and shutil.which("age-keygen") is not None
needs_age = pytest.mark.skipif(not HAVE_AGE, reason="the age CLI is not installed")


def subject_env(**variables: str) -> dict[str, str]:
    """``cli_env()`` with short store retries; ``MVSYNC_CLI_SRC`` picks the mvsync run."""
    env = {
        **cli_env(),
        "MVSYNC_STORE_RETRY": "0.5",
        "MVSYNC_HTTP_TIMEOUT": "5",
        "MVSYNC_API_DEADLINE": "30",
        **variables,
    }
    other = os.environ.get("MVSYNC_CLI_SRC")
    if other:
        env["PYTHONPATH"] = other
    return env


def launch(folder: Path, *args: str, **variables: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        command(folder, *args),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=subject_env(**variables),
        stdin=subprocess.DEVNULL,
    )


def apply(folder: Path, *args: str, **variables: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        command(folder, "apply", "--env", "dev", "--yes", *args),
        capture_output=True,
        text=True,
        env=subject_env(**variables),
        stdin=subprocess.DEVNULL,
        timeout=120,
    )


def finish(process: subprocess.Popen[str]) -> subprocess.CompletedProcess[str]:
    out, err = process.communicate(timeout=120)
    return subprocess.CompletedProcess(process.args, process.returncode, out, err)


def wait_for(
    condition: Callable[[], bool],
    what: str,
    process: subprocess.Popen[str] | None = None,
    seconds: float = 60.0,
) -> None:
    ends = time.monotonic() + seconds
    while not condition():
        if process is not None and process.poll() is not None:
            done = finish(process)
            pytest.fail(f"mvsync ended before {what}: {done.stdout}{done.stderr}")
        if time.monotonic() > ends:
            pytest.fail(f"never happened: {what}")
        time.sleep(0.01)


def journal_of(folder: Path) -> Path:
    return folder / ".mvsync" / "dev.secrets.yaml.journal"


def has_intent(folder: Path) -> Callable[[], bool]:
    def check() -> bool:
        with contextlib.suppress(OSError):
            return b'"intent"' in journal_of(folder).read_bytes()
        return False

    return check


def stored_keys(folder: Path, identity: Path | None = None) -> dict[str, str]:
    """{id: key} of every entry in the secrets file (sealed ones opened with ``age -d``)."""
    loaded = read_secrets(secrets_path(folder))
    assert loaded is not None, "no secrets file"
    keys: dict[str, str] = {}
    for entry in loaded.applications.values():
        if entry.sealed_api_key is not None:
            assert identity is not None
            keys[entry.id] = age_decrypt(entry.sealed_api_key, identity)
        elif entry.api_key is not None:
            keys[entry.id] = entry.api_key.get_secret_value()
    return keys


# --- 1. the secrets folder removed while apply runs ------------------------------------


def remove_while_written(folder: Path) -> None:
    """``rm -rf folder`` while apply writes in it. A file apply creates between rmtree's
    listing and its rmdir makes that rmdir fail (ENOTEMPTY), and one apply renames away
    makes rmtree miss it (ENOENT): then remove again, until one removal completes."""
    for _ in range(50):
        try:
            shutil.rmtree(folder)
        except FileNotFoundError:
            if not folder.exists():
                return
        except OSError as error:
            assert error.errno == errno.ENOTEMPTY, error
        else:
            return
    raise AssertionError(f"{folder} kept filling while it was removed 50 times")


@pytest.mark.parametrize("sealed", [False, True], ids=["plain", "sealed"])
def test_secrets_folder_removed_mid_apply_loses_no_key(
    make_emulator: Callable[..., Emulator], tmp_path: Path, sealed: bool
) -> None:
    if sealed and not HAVE_AGE:
        pytest.skip("the age CLI is not installed")
    slow = make_emulator(latency=1.0)
    identity: Path | None = None
    if sealed:
        identity, public = make_identity(tmp_path, "team")
        work = tmp_path / "work"
        work.mkdir()
        sealed_manifest(work, slow.url, [public])
    else:
        work = tmp_path
        write_manifest(work, slow.url)
    process = launch(work, "apply", "--env", "dev", "--yes", "--concurrency", "1")
    wait_for(has_intent(work), "the first intent in the journal", process)
    remove_while_written(work / ".mvsync")  # while the first POST is in flight
    first = finish(process)

    issued = slow.issued_keys(TEST_API_KEY)
    assert len(issued) == 3 and slow.request_count("POST") == 3, first.stdout + first.stderr
    assert_no_secrets(first.stdout + first.stderr, extra=issued.values())
    # Every key the API issued is in the secrets file (its folder created again).
    assert stored_keys(work, identity) == issued, first.stdout + first.stderr
    assert first.returncode == 0, first.stdout + first.stderr
    again = apply(work)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "Apply complete" in again.stdout and slow.request_count("POST") == 3


# --- 2. a real full disk: a tiny tmpfs under .mvsync -----------------------------------


@pytest.fixture
def tiny_disk(tmp_path: Path) -> Iterator[Path]:
    """``tmp_path/work`` with a 256 KiB tmpfs mounted on its ``.mvsync``; root only."""
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a tmpfs needs root")
    work = tmp_path / "work"
    folder = work / ".mvsync"
    folder.mkdir(parents=True)
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=256k,mode=0700", "tmpfs", str(folder)],
        capture_output=True,
        text=True,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs: {mounted.stderr.strip()}")
    try:
        yield work
    finally:
        subprocess.run(["chattr", "-R", "-i", str(folder)], capture_output=True)
        subprocess.run(["umount", "-l", str(folder)], check=True)


def fill(folder: Path) -> Path:
    """Fill the file system of ``folder`` until not one more byte fits; the filler."""
    filler = folder / "filler"
    with open(filler, "ab", buffering=0) as out:
        for chunk in (65536, 4096, 512, 1):
            try:
                while True:
                    out.write(b"\0" * chunk)
            except OSError as error:
                assert error.errno == errno.ENOSPC, error
    return filler


def long_names_manifest(work: Path, url: str, recipients: list[str] | None = None) -> None:
    """Names of 2,100 characters: an intent and its key record cannot share one 4 KiB
    page, so the key record needs a new page — which a full tmpfs refuses."""
    if recipients:
        sealed_manifest(work, url, recipients)
    else:
        write_manifest(work, url)
    manifest = work / "mvsync.yaml"
    manifest.write_text(
        re.sub(r"name: App (\d)", r"name: App \1 " + "x" * 2100, manifest.read_text())
    )


@needs_age
def test_disk_full_after_the_intent_prints_the_sealed_key_with_name_and_id(
    make_emulator: Callable[..., Emulator], tiny_disk: Path, tmp_path: Path
) -> None:
    slow = make_emulator(latency=1.0)
    identity, public = make_identity(tmp_path, "team")
    long_names_manifest(tiny_disk, slow.url, [public])
    process = launch(tiny_disk, "apply", "--env", "dev", "--yes", "--concurrency", "1")
    wait_for(has_intent(tiny_disk), "the first intent in the journal", process)
    fill(tiny_disk / ".mvsync")
    done = finish(process)

    issued = slow.issued_keys(TEST_API_KEY)
    assert done.returncode == 1, done.stdout + done.stderr
    assert len(issued) == 1 and slow.request_count("POST") == 1  # no new create started
    ((app_id, key),) = issued.items()
    assert_no_secrets(done.stdout + done.stderr, extra=[key])
    armors = ARMOR.findall(done.stderr)
    assert len(armors) == 1, done.stderr
    assert age_decrypt(armors[0] + "\n", identity) == key
    said = done.stderr[: done.stderr.index(armors[0])]
    assert '"App 0 xxx' in said and app_id in said, done.stderr


def test_disk_full_after_the_intent_without_recipients_names_the_lost_key(
    make_emulator: Callable[..., Emulator], tiny_disk: Path
) -> None:
    slow = make_emulator(latency=1.0)
    long_names_manifest(tiny_disk, slow.url)
    process = launch(tiny_disk, "apply", "--env", "dev", "--yes", "--concurrency", "1")
    wait_for(has_intent(tiny_disk), "the first intent in the journal", process)
    fill(tiny_disk / ".mvsync")
    done = finish(process)

    issued = slow.issued_keys(TEST_API_KEY)
    assert done.returncode == 1, done.stdout + done.stderr
    assert len(issued) == 1 and slow.request_count("POST") == 1
    ((app_id, key),) = issued.items()
    assert_no_secrets(done.stdout + done.stderr, extra=[key])
    lines = [line for line in done.stdout.splitlines() if app_id in line]
    assert any('"App 0 xxx' in line and "created, key not captured" in line for line in lines), (
        done.stdout
    )


def test_disk_full_before_any_intent_names_the_journal_and_creates_nothing(
    make_emulator: Callable[..., Emulator], tiny_disk: Path
) -> None:
    slow = make_emulator(latency=1.0)
    write_manifest(tiny_disk, slow.url)
    lock = tiny_disk / ".mvsync" / "dev.secrets.yaml.lock"
    process = launch(tiny_disk, "apply", "--env", "dev", "--yes", "--concurrency", "1")
    # The lock is held (its holder written) while the first list takes its second: fill.
    wait_for(lambda: lock.exists() and lock.stat().st_size > 0, "the lock held", process)
    fill(tiny_disk / ".mvsync")
    done = finish(process)

    assert done.returncode == 1, done.stdout + done.stderr
    assert slow.request_count("POST") == 0
    output = done.stdout + done.stderr
    journal = str(journal_of(tiny_disk))
    assert f"cannot write the journal {journal}" in output, output
    assert "No space left on device" in output
    assert "unexpected" not in output


def test_no_free_space_at_all_is_a_clean_lock_error(emulator: Emulator, tiny_disk: Path) -> None:
    write_manifest(tiny_disk, emulator.url)
    fill(tiny_disk / ".mvsync")
    done = apply(tiny_disk)
    assert done.returncode == 1
    assert emulator.request_count("POST") == 0
    # The first file the run writes in the folder says so: its .gitignore (which keeps
    # the lock and journal out of git), written before the lock is taken.
    folder = tiny_disk / ".mvsync"
    assert done.stderr.startswith(f"mvsync: error: {folder}/"), done.stderr
    assert ": cannot write" in done.stderr and "No space left on device" in done.stderr
    assert done.stderr.count("\n") == 1, done.stderr
    assert "unexpected" not in done.stderr and "Traceback" not in done.stderr


def test_a_failed_fold_says_the_keys_are_safe_in_the_journal_and_the_next_run_stores_them(
    make_emulator: Callable[..., Emulator], tiny_disk: Path
) -> None:
    slow = make_emulator(latency=1.0)
    write_manifest(tiny_disk, slow.url)  # short names: the whole journal fits in its page
    process = launch(tiny_disk, "apply", "--env", "dev", "--yes", "--concurrency", "1")
    wait_for(has_intent(tiny_disk), "the first intent in the journal", process)
    filler = fill(tiny_disk / ".mvsync")
    first = finish(process)

    issued = slow.issued_keys(TEST_API_KEY)
    assert first.returncode == 1, first.stdout + first.stderr
    assert len(issued) == 3
    assert_no_secrets(first.stdout + first.stderr, extra=issued.values())
    assert "every key received is safe in the journal" in first.stdout, first.stdout
    filler.unlink()
    second = apply(tiny_disk)
    assert second.returncode == 0, second.stdout + second.stderr
    assert stored_keys(tiny_disk) == issued
    assert slow.request_count("POST") == 3


def test_a_folder_made_immutable_after_the_intent_keeps_every_key_in_the_journal(
    make_emulator: Callable[..., Emulator], tiny_disk: Path
) -> None:
    # As root, chmod 0500 stops nothing; chattr +i does (the journal's open descriptor
    # still takes appends, nothing new can be created: the fold cannot write).
    slow = make_emulator(latency=1.0)
    write_manifest(tiny_disk, slow.url)
    folder = tiny_disk / ".mvsync"
    process = launch(tiny_disk, "apply", "--env", "dev", "--yes", "--concurrency", "1")
    wait_for(has_intent(tiny_disk), "the first intent in the journal", process)
    frozen = subprocess.run(["chattr", "+i", str(folder)], capture_output=True, text=True)
    if frozen.returncode != 0:
        process.kill()
        process.wait()
        pytest.skip(f"chattr +i is not supported here: {frozen.stderr.strip()}")
    first = finish(process)
    subprocess.run(["chattr", "-i", str(folder)], check=True)

    issued = slow.issued_keys(TEST_API_KEY)
    assert first.returncode == 1, first.stdout + first.stderr
    assert len(issued) == 3
    assert "every key received is safe in the journal" in first.stdout, first.stdout
    second = apply(tiny_disk)
    assert second.returncode == 0, second.stdout + second.stderr
    assert stored_keys(tiny_disk) == issued


# --- 5. two checkouts of one manifest on one machine -----------------------------------


def two_checkouts(tmp_path: Path, url: str) -> tuple[Path, Path]:
    first, second = tmp_path / "one", tmp_path / "two"
    for folder in (first, second):
        folder.mkdir()
        write_manifest(folder, url)
    return first, second


def holds_lock(folder: Path) -> Callable[[], bool]:
    lock = folder / ".mvsync" / "dev.secrets.yaml.lock"
    return lambda: lock.exists() and lock.stat().st_size > 0


def test_a_second_checkout_is_refused_naming_the_holder(
    make_emulator: Callable[..., Emulator], tmp_path: Path
) -> None:
    slow = make_emulator(latency=0.5)
    one, two = two_checkouts(tmp_path, slow.url)
    holder = launch(one, "apply", "--env", "dev", "--yes", "--concurrency", "1")
    wait_for(holds_lock(one), "the first checkout holding its lock", holder)
    refused = apply(two, "--lock-timeout", "0")
    first = finish(holder)
    assert first.returncode == 0, first.stdout + first.stderr
    assert refused.returncode == 1, refused.stdout + refused.stderr
    assert f"pid {holder.pid}" in refused.stderr, refused.stderr
    assert slow.request_count("POST") == 3  # never both create


def test_a_second_checkout_waits_for_the_lock_and_then_creates_nothing(
    make_emulator: Callable[..., Emulator], tmp_path: Path
) -> None:
    slow = make_emulator(latency=0.5)
    one, two = two_checkouts(tmp_path, slow.url)
    holder = launch(one, "apply", "--env", "dev", "--yes", "--concurrency", "1")
    wait_for(holds_lock(one), "the first checkout holding its lock", holder)
    waiter = apply(two, "--lock-timeout", "30")
    first = finish(holder)
    assert first.returncode == 0, first.stdout + first.stderr
    assert slow.request_count("POST") == 3, waiter.stdout + waiter.stderr
    assert "0 created" in waiter.stdout, waiter.stdout + waiter.stderr


@pytest.mark.parametrize(
    ("spelling", "variables"),
    [
        ("{url}", {"TMPDIR": "{tmp}"}),
        ("{url}", {"XDG_RUNTIME_DIR": "{tmp}"}),
        ("{url}/", {}),
        ("{upper}/", {"TMPDIR": "{tmp}", "XDG_RUNTIME_DIR": "{tmp}"}),
    ],
    ids=["TMPDIR", "XDG_RUNTIME_DIR", "trailing-slash", "host-case"],
)
def test_one_lock_per_account_whatever_the_variables_or_the_spelling_of_api_url(
    make_emulator: Callable[..., Emulator],
    tmp_path: Path,
    spelling: str,
    variables: dict[str, str],
) -> None:
    slow = make_emulator(latency=0.5)
    one, two = two_checkouts(tmp_path, slow.url)
    own_tmp = tmp_path / "own-tmp"
    own_tmp.mkdir(mode=0o700)
    upper = slow.url.replace("127.0.0.1", "LOCALHOST")
    if "LOCALHOST" in spelling.format(url="", upper=upper):
        write_manifest(one, slow.url.replace("127.0.0.1", "localhost"))
    write_manifest(two, spelling.format(url=slow.url, upper=upper))
    holder = launch(one, "apply", "--env", "dev", "--yes", "--concurrency", "1")
    wait_for(holds_lock(one), "the first checkout holding its lock", holder)
    extra = {name: value.format(tmp=own_tmp) for name, value in variables.items()}
    refused = apply(two, "--lock-timeout", "0", **extra)
    first = finish(holder)
    assert first.returncode == 0, first.stdout + first.stderr
    assert refused.returncode == 1, refused.stdout + refused.stderr
    assert f"pid {holder.pid}" in refused.stderr, refused.stderr
    assert slow.request_count("POST") == 3  # never both create


# --- 10. SIGTERM during the confirmation listing ---------------------------------------


def test_sigterm_during_the_confirm_listing_exits_130(
    make_emulator: Callable[..., Emulator], tmp_path: Path
) -> None:
    slow = make_emulator(latency=0.3)
    write_manifest(tmp_path, slow.url)
    process = launch(
        tmp_path,
        "apply",
        "--env",
        "dev",
        "--yes",
        "--concurrency",
        "1",
        MVSYNC_CONFIRM_DEADLINE="30",
    )
    wait_for(lambda: slow.request_count("POST") >= 1, "the first create")
    gets = slow.request_count("GET")  # the plan's list and the one right before creating
    slow.add_fault(Fault("slow", method="GET", delay=5.0, times=20))
    wait_for(
        lambda: slow.request_count("POST") == 3 and slow.request_count("GET") > gets,
        "the confirmation listing",
    )
    process.send_signal(signal.SIGTERM)
    done = finish(process)
    assert done.returncode == 130, done.stdout + done.stderr
    assert len(slow.issued_keys(TEST_API_KEY)) == 3
    assert stored_keys(tmp_path) == slow.issued_keys(TEST_API_KEY)
