"""Chaos: faults, kills and concurrent runs against a real ``mvsync apply`` process.

Each round (one fixed seed) builds a manifest of 20-60 applications, sometimes creates
a few of them out of band first, then runs a *chaotic* phase against an emulator with
latency and a random mix of injected faults (429 with and without ``Retry-After``,
500, 503, dropped connections before and after the commit, slow answers; on GET, on
POST or on both; some repeated, some injected while the creates run):

- ``plain``: one apply, left to finish;
- ``kill9`` / ``term`` / ``term2``: one apply, SIGKILLed, SIGTERMed (or SIGTERMed
  twice) at a random moment;
- ``two``: two applies at once (waiting for the lock or not), one of them sometimes
  SIGKILLed.

Then the faults are cleared and apply runs again, at most ``CONVERGE_RUNS`` times,
until one exits 0; one more apply must then create nothing. The invariants (SPEC
sections 4-6), checked against the emulator's real state and the secrets file:

1. no name is ever listed twice remotely, and apply never creates a name that was
   already there (the out-of-band ones stay the only one of their name);
2. every application apply created has an entry in the secrets file (mode 0600) with
   its id: either the very key the emulator issued for it (and the emulator accepts it
   as a bearer), or ``key_captured: false`` — and then some run reported that id as
   "created, key not captured" (no silent key loss);
3. every exit 0 (in the chaotic phase too) means the environment equals the manifest,
   every key is stored, no journal is left and nothing was reported not captured;
4. convergence: after the chaos, a few fault-free applies reach exit 0, and the next
   creates nothing and reports nothing (what was not captured is reported once).

``MVSYNC_CHAOS_SEEDS=1,2,3`` runs other seeds (the default list is fixed, so a failure
is reproducible with ``pytest tests/test_chaos.py -k seed<N>``); each failure message
starts with the round's full scenario. A round that plans a signal fails unless the
signal reaches a running apply (anchored on "Creating", a SIGKILL must be what ended
it): a seed whose faults stop apply before it creates (seed 1) tests no kill, and says so.
"""

from __future__ import annotations

import dataclasses
import email.utils
import os
import random
import re
import signal
import stat
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from helpers import TEST_API_KEY, TEST_WEBHOOK_SECRET
from mvsync.emulator import Emulator, Fault
from mvsync.store.journal import journal_path, read_journal
from mvsync.store.keys import read_secrets

pytestmark = pytest.mark.slow

DEFAULT_SEEDS = (5, 7, 13, 27, 31, 38, 54, 65, 75)
SEEDS = (
    tuple(int(s) for s in os.environ.get("MVSYNC_CHAOS_SEEDS", "").split(",") if s.strip())
    or DEFAULT_SEEDS
)

NOT_CAPTURED = "created, key not captured — issue a new key in MiniVoice"
ID = re.compile(r"\bapp_[0-9]{8}T[0-9]{6}\.[0-9]{9}\b")
CONVERGE_RUNS = 3
HTTP_TIMEOUT = 0.5
RUN_TIMEOUT = 25.0
MODES = ("plain", "kill9", "kill9", "term", "term2", "two", "two", "kill2", "kill2")
HTTP_DATE = "http-date+1s"
KINDS = ("429", "429", "500", "503", "503", "drop_before_commit", "drop_after_commit", "slow")


def cli_env() -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        MV_TEST_KEY=TEST_API_KEY,
        MV_WEBHOOK_SECRET=TEST_WEBHOOK_SECRET,
        MVSYNC_API_DEADLINE="3",
        MVSYNC_HTTP_TIMEOUT=str(HTTP_TIMEOUT),
        MVSYNC_CONFIRM_DEADLINE="1",
        MVSYNC_UNKNOWN_WAIT="0.05",
        # The emulator's list never lags: a create in doubt may be sent again at once.
        MVSYNC_LAG_WINDOW="0",
        NO_COLOR="1",
    )
    env.pop("MVSYNC_FILE", None)
    return env


# --- the scenario of one round ------------------------------------------------------------


def random_fault(rng: random.Random) -> Fault:
    kind = rng.choice(KINDS)
    method = rng.choice(("POST", "POST", "POST", "GET", None))
    times = rng.choice((1, 1, 2, 3))
    retry_after: str | None = None
    delay = 0.0
    if kind in ("429", "503") and rng.random() < 0.6:
        # An HTTP date is made when the fault is injected (HTTP_DATE stands for it here);
        # 9 s is past the API deadline: that call gives up at once.
        retry_after = rng.choice(("0", "0.2", "1", "1", HTTP_DATE, HTTP_DATE, "9"))
    if kind == "slow":
        # Past the client's read timeout (outcome unknown) or just under it.
        delay = rng.choice((HTTP_TIMEOUT + 0.3, HTTP_TIMEOUT + 0.8, 0.1))
    return Fault(kind, method=method, times=times, retry_after=retry_after, delay=delay)


def injected(fault: Fault) -> Fault:
    if fault.retry_after != HTTP_DATE:
        return fault
    when = email.utils.formatdate(time.time() + 1, usegmt=True)
    return dataclasses.replace(fault, retry_after=when)


@dataclass
class Scenario:
    seed: int
    apps: int
    concurrency: int
    concurrency2: int
    latency: float
    mode: str
    preexisting: list[int]
    faults: list[Fault]  # there from the start
    late_faults: list[Fault]  # injected late_after seconds after the anchor
    late_after: float
    signal_after: float  # seconds after the anchor (None: no signal)
    anchor_on_creating: bool  # the anchor: "Creating N applications" printed, or the start
    lock_timeout: tuple[str, str]
    kill_one_of_two: bool
    second_signal: str  # kill2: the signal of the run that resolves the first's journal
    second_after: float  # kill2: seconds after that run replaced the secrets file

    @classmethod
    def of(cls, seed: int) -> Scenario:
        rng = random.Random(seed)
        apps = rng.randint(20, 60)
        concurrency = rng.randint(1, 8)
        latency = rng.choice((0.0, 0.005, 0.01, 0.02))
        # Roughly how long the creates last without faults.
        creating = apps / concurrency * (latency + 0.006) + 0.05
        anchor_on_creating = rng.random() < 0.8
        span = creating if anchor_on_creating else 0.6
        return cls(
            seed=seed,
            apps=apps,
            concurrency=concurrency,
            concurrency2=rng.randint(1, 8),
            latency=latency,
            mode=rng.choice(MODES),
            preexisting=sorted(rng.sample(range(apps), rng.choice((0, 0, 1, 3)))),
            faults=[random_fault(rng) for _ in range(rng.randint(0, 3))],
            late_faults=[random_fault(rng) for _ in range(rng.randint(1, 6))],
            late_after=rng.uniform(0.0, span * 0.6),
            signal_after=rng.uniform(0.0, span),
            anchor_on_creating=anchor_on_creating,
            lock_timeout=(rng.choice(("0", "20")), rng.choice(("0", "20"))),
            kill_one_of_two=rng.random() < 0.5,
            second_signal=rng.choice(("SIGKILL", "SIGTERM")),
            second_after=rng.choice((0.0, rng.uniform(0.0, 0.02))),
        )

    def describe(self) -> str:
        def show(faults: list[Fault]) -> str:
            return ", ".join(
                f"{f.kind}:{f.method or '*'}:{f.times}"
                + (f":RA={f.retry_after}" if f.retry_after else "")
                + (f":delay={f.delay:g}" if f.kind == "slow" else "")
                for f in faults
            )

        two = (
            f", lock timeouts {self.lock_timeout}, kill one of two {self.kill_one_of_two}"
            if self.mode == "two"
            else ""
        )
        if self.mode == "kill2":
            two = (
                f", then a second apply gets {self.second_signal} {self.second_after:.4f}s "
                "after it replaced the secrets file"
            )
        return (
            f"seed {self.seed}: {self.apps} apps, mode {self.mode}, concurrency "
            f"{self.concurrency}/{self.concurrency2}, latency {self.latency:g}s, preexisting "
            f"{self.preexisting}, faults [{show(self.faults)}], late faults "
            f"[{show(self.late_faults)}] after {self.late_after:.3f}s, signal after "
            f"{self.signal_after:.3f}s, both from "
            f"{'Creating' if self.anchor_on_creating else 'the start'}{two}"
        )


def app_name(seed: int, n: int) -> str:
    return f"Chaos {seed} app {n}"


def write_manifest(folder: Path, url: str, scenario: Scenario) -> None:
    apps = "".join(
        f"  - name: {app_name(scenario.seed, n)}\n"
        f"    answer_url: https://example.com/{scenario.seed}/{n}/answer\n"
        for n in range(scenario.apps)
    )
    (folder / "mvsync.yaml").write_text(
        "version: 1\nenvironments:\n"
        f"  dev:\n    api_url: {url}\n    api_key_env: MV_TEST_KEY\n"
        "defaults:\n  webhook_url: https://example.com/hooks\n"
        "  webhook_secret: ${MV_WEBHOOK_SECRET}\n"
        f"applications:\n{apps}"
    )


# --- running apply ------------------------------------------------------------------------


@dataclass
class Run:
    label: str
    process: subprocess.Popen[bytes]
    out: Path
    code: int | None = None
    started: float = field(default_factory=time.monotonic)
    seconds: float = 0.0

    def stdout(self) -> str:
        return self.out.read_text(errors="replace")


@dataclass
class Round:
    scenario: Scenario
    folder: Path
    emulator: Emulator
    runs: list[Run] = field(default_factory=list)
    preexisting_ids: set[str] = field(default_factory=set)

    @property
    def secrets_path(self) -> Path:
        return self.folder / ".mvsync" / "dev.secrets.yaml"

    def summary(self) -> str:
        runs = "; ".join(
            f"{r.label} exit {r.code} {r.seconds:.2f}s "
            f"{r.stdout().count('+ created')} created {len(self.reported_ids([r]))} not captured"
            for r in self.runs
        )
        return f"{self.scenario.describe()}\n  {runs}"

    def where(self, what: str) -> str:
        codes = ", ".join(f"{r.label}={r.code}" for r in self.runs)
        return f"[{self.scenario.describe()}; runs: {codes}] {what}"

    def start(self, label: str, *extra: str) -> Run:
        out = self.folder / f"run{len(self.runs)}-{label}.out"
        command = [
            sys.executable,
            "-m",
            "mvsync",
            "-f",
            str(self.folder / "mvsync.yaml"),
            "apply",
            "--env",
            "dev",
            "--yes",
            *extra,
        ]
        with out.open("wb") as sink:
            process = subprocess.Popen(
                command,
                stdout=sink,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=cli_env(),
            )
        run = Run(label, process, out)
        self.runs.append(run)
        return run

    def wait(self, run: Run) -> int:
        try:
            run.code = run.process.wait(timeout=RUN_TIMEOUT)
            run.seconds = time.monotonic() - run.started
        except subprocess.TimeoutExpired:
            run.process.kill()
            run.process.wait()
            pytest.fail(self.where(f"{run.label} did not end within {RUN_TIMEOUT}s (hung)"))
        return run.code

    def wait_for_creating(self, runs: list[Run], limit: float = 20.0) -> Run | None:
        """The first of ``runs`` to print "Creating N applications", or ``None`` when none
        did within ``limit`` seconds (or all ended first)."""
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline and any(r.process.poll() is None for r in runs):
            for run in runs:
                if "Creating " in run.stdout():
                    return run
            time.sleep(0.005)
        return None

    def signal_running(self, run: Run, signum: int, what: str) -> None:
        """Send ``signum`` to ``run``, failing the round if it has already ended: a signal
        that reaches no running apply tests nothing the round claims to."""
        code = run.process.poll()
        assert code is None, self.where(f"{run.label} had already exited {code} before {what}")
        run.process.send_signal(signum)

    # --- invariants --------------------------------------------------------------------

    def remote(self) -> list[dict[str, str]]:
        return self.emulator.applications(TEST_API_KEY)

    def check_no_duplicates(self, when: str) -> None:
        names = Counter(app["name"] for app in self.remote())
        doubled = [(name, n) for name, n in names.items() if n > 1]
        assert not doubled, self.where(f"{when}: duplicate names {doubled}")
        ids = {app["id"] for app in self.remote() if app["name"] in self.preexisting_names()}
        assert ids == self.preexisting_ids, self.where(f"{when}: a preexisting name was created")

    def preexisting_names(self) -> set[str]:
        return {app_name(self.scenario.seed, n) for n in self.scenario.preexisting}

    def reported_ids(self, runs: list[Run] | None = None) -> set[str]:
        ids: set[str] = set()
        for run in self.runs if runs is None else runs:
            for line in run.stdout().splitlines():
                if NOT_CAPTURED in line:
                    ids.update(ID.findall(line))
        return ids

    def check_keys(self, when: str, *, complete: bool) -> None:
        """Every application apply created has its key or a reported not-captured entry."""
        remote = {app["name"]: app["id"] for app in self.remote()}
        loaded = None
        if self.secrets_path.exists():
            mode = stat.S_IMODE(self.secrets_path.stat().st_mode)
            assert mode == 0o600, self.where(f"{when}: secrets file mode {mode:o}")
            loaded = read_secrets(self.secrets_path)
            assert loaded is not None, self.where(f"{when}: secrets file vanished")
            remote_ids = set(remote.values())
            for name, entry in loaded.applications.items():
                assert entry.id in remote_ids, self.where(
                    f"{when}: entry {name!r} id {entry.id} is not remote"
                )
        if not complete:
            # Mid-way (after a kill): every created application is in the secrets file or
            # in the journal (its key, or at least the intent the next run resolves).
            journal = journal_path(self.secrets_path)
            in_journal: set[str] = set()
            if journal.exists():
                mode = stat.S_IMODE(journal.stat().st_mode)
                assert mode == 0o600, self.where(f"{when}: journal mode {mode:o}")
                in_journal = {record.name for record in read_journal(journal)}
            stored = set(loaded.applications) if loaded is not None else set()
            for name, app_id in remote.items():
                if app_id not in self.preexisting_ids:
                    assert name in stored | in_journal, self.where(
                        f"{when}: {name!r} ({app_id}) is in neither the secrets file nor journal"
                    )
            return
        assert loaded is not None, self.where(f"{when}: no secrets file")
        reported = self.reported_ids()
        for name, app_id in remote.items():
            if app_id in self.preexisting_ids:
                assert name not in loaded.applications, self.where(f"{when}: {name!r} stored")
                continue
            entry = loaded.applications.get(name)
            assert entry is not None, self.where(f"{when}: {name!r} ({app_id}) has no entry")
            assert entry.id == app_id, self.where(
                f"{when}: {name!r} stored id {entry.id} != {app_id}"
            )
            if entry.api_key is None:
                assert not entry.key_captured
                assert app_id in reported, self.where(
                    f"{when}: {name!r} ({app_id}) key_captured: false but never reported"
                )
                continue
            key = entry.api_key.get_secret_value()
            issued = self.emulator._store.app(app_id)  # the key the emulator issued for it
            assert issued is not None and issued.api_key == key, self.where(
                f"{when}: {name!r} stored a key that is not the one issued for {app_id}"
            )
            assert self.accepted(key), self.where(f"{when}: {name!r} key refused")

    def accepted(self, key: str) -> bool:
        """The emulator takes ``key`` as a bearer. Faults still pending are set aside for
        the check (no apply runs then): they are the round's, not this check's."""
        pending = self.emulator.faults()
        self.emulator.clear_faults()
        try:
            answer = httpx.get(
                f"{self.emulator.url}/v1/applications",
                headers={"Authorization": f"Bearer {key}"},
                timeout=5,
            )
        finally:
            for fault in pending:
                self.emulator.add_fault(fault)
        return answer.status_code == 200

    def check_exit_0(self, run: Run) -> None:
        """Exit 0: the environment equals the manifest and every new key is stored."""
        when = f"after {run.label} exited 0"
        wanted = {app_name(self.scenario.seed, n) for n in range(self.scenario.apps)}
        names = Counter(app["name"] for app in self.remote())
        assert names == Counter(wanted), self.where(f"{when}: remote {sorted(names)} != manifest")
        assert NOT_CAPTURED not in run.stdout(), self.where(f"{when}: it reported a lost key")
        assert not journal_path(self.secrets_path).exists(), self.where(f"{when}: journal left")
        self.check_keys(when, complete=True)


def chaos_phase(round_: Round) -> None:
    scenario = round_.scenario
    emulator = round_.emulator
    for fault in scenario.faults:
        emulator.add_fault(injected(fault))
    conc = ("--concurrency", str(scenario.concurrency))
    if scenario.mode == "two":
        first = round_.start("two-a", *conc, "--lock-timeout", scenario.lock_timeout[0])
        second = round_.start(
            "two-b",
            "--concurrency",
            str(scenario.concurrency2),
            "--lock-timeout",
            scenario.lock_timeout[1],
        )
        runs = [first, second]
    else:
        runs = [round_.start(scenario.mode, *conc)]
    signalled = scenario.mode in ("kill9", "kill2", "term", "term2") or (
        scenario.mode == "two" and scenario.kill_one_of_two
    )
    target = runs[0]
    if scenario.anchor_on_creating:
        # Of two applies, the one that got the lock is the one creating: it is the target.
        creating = round_.wait_for_creating(runs)
        if creating is not None:
            target = creating
        elif signalled:
            ended = {r.label: r.process.poll() for r in runs}
            pytest.fail(round_.where(f"no apply began creating within 20s (exits {ended})"))
    anchor = time.monotonic()
    events: list[tuple[float, str]] = [(scenario.late_after, "faults")]
    if signalled:
        events.append((scenario.signal_after, "signal"))
    for when, what in sorted(events):
        time.sleep(max(anchor + when - time.monotonic(), 0.0))
        if what == "faults":
            for fault in scenario.late_faults:
                emulator.add_fault(injected(fault))
        elif scenario.mode in ("kill9", "kill2", "two"):
            round_.signal_running(target, signal.SIGKILL, "SIGKILL")
        else:
            round_.signal_running(target, signal.SIGTERM, "SIGTERM")
            if scenario.mode == "term2":
                time.sleep(0.02 + scenario.signal_after / 4)
                if target.process.poll() is None:  # the first may have ended it already
                    target.process.send_signal(signal.SIGTERM)
    for run in runs:
        round_.wait(run)
    if signalled and scenario.mode in ("kill9", "kill2", "two"):
        # A SIGKILL that reached a running apply is what ended it (a SIGTERM lets apply
        # finish what is in flight: it was sent to a running apply, which is all it says).
        assert target.code == -signal.SIGKILL, round_.where(
            f"{target.label} exited {target.code}: the SIGKILL hit no running apply"
        )
    allowed = {0, 1, 130, -signal.SIGKILL, -signal.SIGTERM}
    for run in runs:
        assert run.code in allowed, round_.where(f"{run.label} exit status {run.code}")
    for run in runs:
        if run.code == 0:
            round_.check_exit_0(run)
        if run.code == 130 and scenario.mode == "term":
            # One SIGTERM: those in flight finish, every key is stored, then exit 130.
            where = round_.where(f"after {run.label} exited 130: journal left")
            assert not journal_path(round_.secrets_path).exists(), where
            if {app["id"] for app in round_.remote()} - round_.preexisting_ids:
                round_.check_keys(f"after {run.label} exited 130", complete=True)
    round_.check_no_duplicates("after the chaos")
    if scenario.mode == "kill2":
        kill_when_secrets_replaced(round_)


def kill_when_secrets_replaced(round_: Round) -> None:
    """A second apply, signalled right after it rewrites the secrets file: the moment
    it has folded what the first (killed) run left, before or while it reports it."""
    scenario = round_.scenario
    path = round_.secrets_path

    def inode() -> int | None:
        try:
            return path.stat().st_ino
        except FileNotFoundError:
            return None

    before = inode()
    run = round_.start("kill2-second", "--concurrency", str(scenario.concurrency))
    deadline = time.monotonic() + 5.0
    while run.process.poll() is None and inode() == before and time.monotonic() < deadline:
        pass
    assert inode() != before, round_.where(
        f"{run.label} did not replace the secrets file within 5s "
        f"(exit {run.process.poll()}): the signal would not come after it"
    )
    time.sleep(scenario.second_after)
    round_.signal_running(run, getattr(signal, scenario.second_signal), scenario.second_signal)
    round_.wait(run)
    if scenario.second_signal == "SIGKILL":
        assert run.code == -signal.SIGKILL, round_.where(
            f"{run.label} exited {run.code}: the SIGKILL hit no running apply"
        )
    allowed = {0, 1, 130, -signal.SIGKILL, -signal.SIGTERM}
    assert run.code in allowed, round_.where(f"{run.label} exit status {run.code}")
    if run.code == 0:
        round_.check_exit_0(run)
    round_.check_no_duplicates(f"after {run.label}")


def converge(round_: Round) -> None:
    round_.emulator.clear_faults()
    conc = ("--concurrency", str(round_.scenario.concurrency))
    for attempt in range(CONVERGE_RUNS):
        run = round_.start(f"converge{attempt}", *conc)
        code = round_.wait(run)
        round_.check_no_duplicates(f"after {run.label}")
        assert code in (0, 1), round_.where(f"{run.label} exit status {code}")
        if code == 0:
            round_.check_exit_0(run)
            break
    else:
        pytest.fail(round_.where(f"no fault-free apply exited 0 in {CONVERGE_RUNS} runs"))
    posts = round_.emulator.request_count("POST")
    again = round_.start("again", *conc)
    assert round_.wait(again) == 0, round_.where("the apply after convergence failed")
    assert round_.emulator.request_count("POST") == posts, round_.where("it created again")
    assert NOT_CAPTURED not in again.stdout(), round_.where("it reported a lost key again")
    round_.check_exit_0(again)


def create_out_of_band(emulator: Emulator, seed: int, numbers: list[int]) -> set[str]:
    """Applications of the manifest made by someone else, equal to it (no drift)."""
    ids = set()
    for n in numbers:
        answer = httpx.post(
            f"{emulator.url}/v1/applications",
            headers={"Authorization": f"Bearer {TEST_API_KEY}"},
            json={
                "name": app_name(seed, n),
                "answer_url": f"https://example.com/{seed}/{n}/answer",
                "webhook_url": "https://example.com/hooks",
            },
            timeout=5,
        )
        assert answer.status_code == 201
        ids.add(answer.json()["id"])
    return ids


# A round takes 10-35s here (2 shared cores); each apply is bounded by RUN_TIMEOUT.
@pytest.mark.timeout(300)
@pytest.mark.parametrize("seed", SEEDS, ids=[f"seed{s}" for s in SEEDS])
def test_chaos_round(seed: int, make_emulator: Callable[..., Emulator], tmp_path: Path) -> None:
    scenario = Scenario.of(seed)
    emulator = make_emulator(latency=scenario.latency)
    write_manifest(tmp_path, emulator.url, scenario)
    round_ = Round(scenario, tmp_path, emulator)
    round_.preexisting_ids = create_out_of_band(emulator, seed, scenario.preexisting)
    chaos_phase(round_)
    round_.check_keys("after the chaos", complete=False)
    converge(round_)
    print(round_.summary())
