"""Apply one environment: create what the manifest wants, exactly once, and keep every key.

The order of the steps is the design (SPEC sections 4-6)::

    check the secrets file and its journal (refuse malformed / readable by others)
    take the environment's lock (mvsync.store.lock)
    reconcile what a previous run left in the journal, and fold it
    list → plan (or check a saved plan is still fresh) → --max-creates
    refuse a create whose name already has a secrets entry (it could not be stored)
    ask (callback) → read every webhook secret the creates send
    re-list, drop the creates that now exist
    create, bounded concurrency: journal "intent" → POST → journal "created"
        outcome unknown → wait, re-list → there: "not captured"; absent: POST again
    fold the journal into the secrets file (one atomic rewrite), remove the journal
    list until every new application is visible (deadline)

A create counts as done when its key is fsynced in the journal: two appends per
create, whatever the number of keys already stored. The applier never prints and
never touches signals: it reports through ``Reporter`` and stops starting creates
when the ``stop`` event is set.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

from pydantic import SecretStr

from mvsync.api.client import MiniVoiceClient
from mvsync.apply.create_once import UNKNOWN_ID_PREFIX, CreateOnce, Done, Outcome, Records
from mvsync.apply.deliver import after_apply
from mvsync.apply.doubt import confirm_visible, in_doubt_within
from mvsync.apply.fold import fold_at_end
from mvsync.apply.settings import (
    ApplyResult,
    ApplySettings,
    Confirm,
    NullReporter,
    Reporter,
    SecretOf,
    confirm_always,
    no_secret,
)
from mvsync.apply.stores import local_store, open_store
from mvsync.errors import (
    AbortedError,
    MvsyncError,
    UnsafePlanError,
)
from mvsync.manifest import read_webhook_secrets
from mvsync.model import CreateRequest, DesiredEnvironment, RemoteApp
from mvsync.planfile import SavedEnvironment, check_fresh
from mvsync.planner import Action, Change, EnvironmentPlan, build_plan
from mvsync.sealing import sealer_for
from mvsync.store import journal, keys
from mvsync.store.base import KeyStore
from mvsync.store.files import FileStore
from mvsync.store.journal import JournalRecord


def apply_environment(
    desired: DesiredEnvironment,
    client: MiniVoiceClient,
    *,
    settings: ApplySettings = ApplySettings(),  # frozen: sharing the default is safe
    saved: SavedEnvironment | None = None,
    confirm: Confirm = confirm_always,
    secret_of: SecretOf = no_secret,
    reporter: Reporter | None = None,
    stop: threading.Event | None = None,
    store: KeyStore | None = None,
) -> ApplyResult:
    """Make environment ``desired.name`` equal to the manifest; see the module docstring.

    ``store`` holds the ledger, journal and lock (default: ``stores.open_store``, the
    ``state_url`` database or the secrets file beside the manifest)."""
    run = _Run(
        desired,
        client,
        store or open_store(desired, retry_for=settings.store_retry, sleep=settings.sleep),
        settings,
        saved,
        confirm,
        secret_of,
        reporter or NullReporter(),
        stop or threading.Event(),
    )
    return run.apply()


class _Run:
    def __init__(
        self,
        desired: DesiredEnvironment,
        client: MiniVoiceClient,
        store: KeyStore,
        settings: ApplySettings,
        saved: SavedEnvironment | None,
        confirm: Confirm,
        secret_of: SecretOf,
        reporter: Reporter,
        stop: threading.Event,
    ) -> None:
        self.desired = desired
        self.client = client
        self.store = store
        self.settings = settings
        self.saved = saved
        self.confirm = confirm
        self.secret_of = secret_of
        self.reporter = reporter
        self.stop = stop
        self.secrets_path = desired.secrets_path
        self.result = ApplyResult(
            environment=desired.name,
            secrets_path=self.secrets_path,
            sealed=bool(desired.recipients),
        )
        self._fallback: FileStore | None = None  # with state_url: what the database cannot take
        if store.location != str(self.secrets_path):  # the database of state_url
            self.result.keys_location = store.location
            self._fallback = local_store(
                desired, retry_for=settings.store_retry, sleep=settings.sleep
            )
        # Every record of this run, kept in memory too (see create_once.Records).
        self._records = Records()
        # Set on an error that every further create would meet (401, no connection...).
        self._halt = threading.Event()
        # Applications a previous run created, found in the first list: already visible.
        self._listed_at_start: set[str] = set()

    # --- the steps -------------------------------------------------------------------

    def apply(self) -> ApplyResult:
        # Refuse a bad secrets file or journal before taking the lock or listing.
        self.store.check()
        if self._fallback is not None and self.secrets_path.exists():
            self.reporter.note(
                f"{self.secrets_path} holds keys a run could not commit to the database: "
                f"mvsync state push --env {self.desired.name} copies them in"
            )
        with self.store.lock(timeout=self.settings.lock_timeout, command=self.settings.command):
            stored, leftover = self.store.read()
            remote = self.client.list_applications()
            if leftover or self.store.has_journal():
                self._reconcile(stored, leftover, remote)
            result = self._apply_locked(stored, remote)
            # The key sink (SPEC 5.5): earlier runs' keys handed on, the undelivered named.
            return after_apply(self.store, stored, result, self.settings.sink, self.reporter.note)

    def _reconcile(
        self, stored: keys.SecretsFile, leftover: list[JournalRecord], remote: list[RemoteApp]
    ) -> None:
        """Fold a previous run's journal; its unanswered intents become "not captured"
        when the list shows them; those it does not show yet stay in doubt (held back)
        until the lag window has passed."""
        records = [r for r in leftover if r.event in ("created", "not_captured")]
        stored_ids = {entry.id for entry in stored.applications.values()}
        doubtful: list[JournalRecord] = []
        for intent in journal.in_doubt(leftover):
            listed = [a for a in remote if a.name == intent.name and a.id not in stored_ids]
            if listed:
                records.extend(journal.not_captured(intent.name, a.id) for a in listed)
            elif in_doubt_within(intent, self.settings.doubt_window):
                doubtful.append(intent)
                self.result.held_back.append((intent.name, intent.ts or ""))
                self.reporter.note(
                    f"'{intent.name}': a create in doubt since {intent.ts} is not in the list "
                    f"yet; not sent again before {self.settings.doubt_window:g}s have passed "
                    "(a list can lag behind creates): apply again later"
                )
        self._records.extend(doubtful)
        folded = keys.add_records(stored, records)  # in memory only, so far
        self.result.renamed.extend(folded.renamed)
        # Reported BEFORE the secrets file records it: once the entry is on disk, no later
        # run reports it again, so a run killed in between would lose the report for good.
        # Killed after the report instead, the next run reconciles and reports it again.
        for name, app_id in folded.not_captured:
            self.result.not_captured.append((name, app_id))
            self._listed_at_start.add(app_id)
            self.reporter.not_captured(name, app_id)
        try:
            self.store.save(stored, doubtful)
        except MvsyncError as error:
            raise MvsyncError(
                f"{error}; nothing was created: the keys a previous run received are still "
                f"in its journal ({self.store.location})"
            ) from None
        if folded.stored:
            self.reporter.note(
                f"stored {len(folded.stored)} key(s) a previous run received in "
                f"{self.store.location}"
            )

    def _apply_locked(self, stored: keys.SecretsFile, remote: list[RemoteApp]) -> ApplyResult:
        plan = build_plan(self.desired, remote)
        if self.saved is not None:
            check_fresh(self.saved, plan)
        self.result.plan = plan
        self.reporter.plan_ready(plan)
        held = {name for name, _since in self.result.held_back}
        creates = tuple(c for c in plan.creates if c.name not in held)
        self._refuse_unstorable(creates, stored)
        limit = self.settings.max_creates
        if limit is not None and len(creates) > limit:
            raise UnsafePlanError(
                f"environment '{self.desired.name}': the plan has {len(creates)} creates, "
                f"more than --max-creates {limit}; nothing was created"
            )
        if self.stop.is_set():
            self.result.interrupted = True
            return self._finish(plan, remote)
        if creates and not self.confirm(plan):
            raise AbortedError("apply cancelled: nothing was created")
        requests = self._requests(creates)
        if creates:
            # The plan's list may be minutes old (the question): list again right before.
            remote = self.client.list_applications()
            present = {app.name for app in remote}
            for change in creates:
                if change.name in present:
                    self.result.already_existed.append(change.name)
            creates = tuple(c for c in creates if c.name not in present)
        if creates:
            self._create_all(creates, requests, {app.id for app in remote}, stored)
        return self._finish(plan, remote)

    def _refuse_unstorable(self, creates: Sequence[Change], stored: keys.SecretsFile) -> None:
        taken = [c.name for c in creates if c.name in stored.applications]
        if not taken:
            return
        first = taken[0]
        more = f" (and {len(taken) - 1} more)" if len(taken) > 1 else ""
        raise UnsafePlanError(
            f"environment '{self.desired.name}': '{first}'{more} must be created, but "
            f"{self.store.location} already has an entry for it (id "
            f"{stored.applications[first].id}): its application was probably deleted by "
            "hand. mvsync never overwrites a stored key: move that entry out of the secrets "
            "file (keep its key if you still need it), then apply again; nothing was created"
        )

    def _requests(self, creates: Sequence[Change]) -> dict[str, CreateRequest]:
        """Every create's body, each webhook secret read now: a missing variable fails
        before the first POST, not halfway through."""
        desired = [change.desired for change in creates if change.desired is not None]
        # Every missing variable at once, with the applications that need it.
        values = read_webhook_secrets(desired, self.secret_of, self.desired.name)
        requests: dict[str, CreateRequest] = {}
        for change in creates:
            app = change.desired
            if app is None:  # pragma: no cover - the planner always sets it on a create
                raise MvsyncError(f"the plan's create of '{change.name}' has no desired fields")
            secret: SecretStr | None = None
            if app.webhook_secret_ref is not None:
                secret = SecretStr(values[app.webhook_secret_ref])
            requests[change.name] = CreateRequest(
                name=app.name,
                answer_url=app.answer_url,
                webhook_url=app.webhook_url or None,
                webhook_secret=secret,
            )
        return requests

    # --- creating --------------------------------------------------------------------

    def _create_all(
        self,
        creates: Sequence[Change],
        requests: dict[str, CreateRequest],
        known_ids: set[str],
        stored: keys.SecretsFile,
    ) -> None:
        self.reporter.creating(len(creates))
        try:
            with (
                self.store.journal() as writer,
                ThreadPoolExecutor(
                    max_workers=self.settings.concurrency, thread_name_prefix="mvsync-create"
                ) as pool,
            ):
                # Workers hand their outcome to a queue: waiting on 1,000 futures at
                # once would cost O(n) per completion, a measurable share of an apply.
                outcomes: queue.SimpleQueue[Done | BaseException] = queue.SimpleQueue()
                creator = CreateOnce(
                    client=self.client,
                    writer=writer,
                    records=self._records,
                    known_ids=known_ids,
                    settings=self.settings,
                    note=self.reporter.note,
                    stop=self.stop,
                    halt=self._halt,
                    location=self.store.location,
                    seal=sealer_for(self.desired.recipients),
                )
                for change in creates:
                    pool.submit(self._worker, outcomes, creator, requests[change.name])
                first_error: BaseException | None = None
                for _ in creates:
                    outcome = self._next(outcomes)
                    if isinstance(outcome, BaseException):
                        self._halt.set()
                        first_error = first_error or outcome
                    else:
                        self._record(outcome)
                if first_error is not None:
                    raise first_error
        except BaseException:
            self._halt.set()  # the pool's exit waits for queued creates: make them skip
            raise
        finally:
            # Whatever happened, every key received is folded now (one rewrite).
            self._fold(stored)

    def _fold(self, stored: keys.SecretsFile) -> None:
        fold_at_end(self.store, stored, self._records.snapshot(), self.result, self._fallback)

    def _next(self, outcomes: queue.SimpleQueue[Done | BaseException]) -> Done | BaseException:
        while True:
            try:
                # A bounded wait: the main thread stays free to run signal handlers.
                return outcomes.get(timeout=0.5)
            except queue.Empty:
                continue

    def _worker(
        self,
        outcomes: queue.SimpleQueue[Done | BaseException],
        creator: CreateOnce,
        request: CreateRequest,
    ) -> None:
        try:
            outcomes.put(creator.run(request))
        except BaseException as error:  # noqa: BLE001 - handed to the main thread, re-raised there
            outcomes.put(error)

    def _record(self, done: Done) -> None:
        if done.outcome is Outcome.RENAMED and done.app_id is not None:
            actual = done.actual_name or done.name
            self.result.created.append((actual, done.app_id))
            self.result.renamed_by_api.append((done.name, actual, done.app_id))
            self.reporter.created(actual, done.app_id)
        elif done.outcome is Outcome.CREATED and done.app_id is not None:
            self.result.created.append((done.name, done.app_id))
            self.reporter.created(done.name, done.app_id)
        elif done.outcome is Outcome.NOT_CAPTURED and done.app_id is not None:
            self.result.not_captured.append((done.name, done.app_id))
            self.reporter.not_captured(done.name, done.app_id)
        elif done.outcome is Outcome.FAILED:
            message = done.message or "failed"
            self.result.failed.append((done.name, message))
            self.reporter.failed(done.name, message)
        else:
            self.result.skipped.append(done.name)

    # --- after creating -----------------------------------------------------------

    def _finish(self, plan: EnvironmentPlan, remote: list[RemoteApp]) -> ApplyResult:
        result = self.result
        new_ids = {
            app_id: name
            for name, app_id in result.created + result.not_captured
            if app_id not in self._listed_at_start
        }
        if self.stop.is_set():
            # Interrupted: keys are stored; no confirmation round, the plan says what is left.
            result.interrupted = True
            final = plan
        elif new_ids:
            # An unknown id can never show up in a list: do not wait for it (it stays
            # unconfirmed, its key stored).
            listed = confirm_visible(
                self.client,
                {app_id for app_id in new_ids if not app_id.startswith(UNKNOWN_ID_PREFIX)},
                self.settings,
                self.stop,
                self.reporter.note,
            )
            # A signal during the confirmation listing is an interruption too (exit 130).
            result.interrupted = self.stop.is_set()
            final = build_plan(self.desired, listed) if listed is not None else plan
            missing = set(new_ids) - {app.id for app in listed or ()}
            result.unconfirmed = sorted((new_ids[app_id], app_id) for app_id in missing)
        else:
            final = build_plan(self.desired, remote)
        result.drift = [c for c in final.changes if c.action is Action.DRIFT]
        result.ambiguous = [c for c in final.changes if c.action is Action.AMBIGUOUS]
        result.unchanged = final.summary["unchanged"]
        accounted = set(new_ids.values()) | {name for name, _ in result.failed}
        accounted.update(result.skipped)
        accounted.update(name for name, _since in result.held_back)
        accounted.update(name for name, _actual, _id in result.renamed_by_api)
        result.not_created = [c.name for c in final.creates if c.name not in accounted]
        return result
