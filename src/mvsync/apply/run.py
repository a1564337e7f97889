"""Apply one environment: create what the manifest wants, exactly once, and keep every key.

The order of the steps is the design (SPEC sections 4-6)::

    check the secrets file and its journal (refuse malformed / readable by others)
    take the environment's lock (mvsync.store.lock)
    reconcile what a previous run left in the journal, and fold it
    list → plan (or check a saved plan is still fresh) → --max-creates
    refuse a create whose name already has a secrets entry (it could not be stored)
    read every webhook secret the creates send → ask (callback)
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
from dataclasses import replace

from pydantic import SecretStr

from mvsync.api.client import MiniVoiceClient
from mvsync.apply.create_once import UNKNOWN_ID_PREFIX, CreateOnce, Done, Outcome, Records
from mvsync.apply.deliver import after_apply
from mvsync.apply.doubt import confirm_visible
from mvsync.apply.fold import fold_at_end
from mvsync.apply.ledger import local_file_note, move_entry_advice
from mvsync.apply.reconcile import Doubt, reconcile, wait_out
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
from mvsync.model import Account, CreateRequest, DesiredEnvironment, LedgerPlace, RemoteApp
from mvsync.planfile import SavedEnvironment, check_fresh
from mvsync.planner import Action, Change, EnvironmentPlan, build_plan
from mvsync.sealing import sealer_for
from mvsync.store import keys
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
        self._local_only: frozenset[str] = frozenset()  # ids whose key is only local
        self._account = Account()  # what the list (or a create answer) says of the account
        self._learned = False  # whether a create answer named the customer the list did not
        # Applications a previous run created, found in the first list: already visible.
        self._listed_at_start: set[str] = set()

    # --- the steps -------------------------------------------------------------------

    def apply(self) -> ApplyResult:
        # Refuse a bad secrets file or journal before taking the lock or listing.
        self.store.check()
        with self.store.lock(timeout=self.settings.lock_timeout, command=self.settings.command):
            # The list first: its customer_id tells a shared database whose ledger to read.
            remote = self.client.list_applications()
            self._account = Account.of(None, remote)
            self.store.identify(replace(self._account, fingerprint=self.client.key_fingerprint))
            stored, leftover = self.store.read()
            self._local_only = self._note_local_file(stored)
            if leftover or self.store.has_journal():
                remote = self._reconcile(stored, leftover, remote)
            result = self._apply_locked(stored, remote)
            # The key sink (SPEC 5.5): earlier runs' keys handed on, the undelivered named.
            customer = self._account.customer_id
            return after_apply(
                self.store, stored, result, self.settings, customer, self.reporter.note
            )

    def _note_local_file(self, stored: keys.SecretsFile) -> frozenset[str]:
        """With ``state_url``: what the local secrets file still holds; its ids."""
        if self._fallback is None:
            return frozenset()
        note, local = local_file_note(LedgerPlace.of(self.desired), stored)
        if note:
            self.reporter.note(note)
        return local

    def _reconcile(
        self, stored: keys.SecretsFile, leftover: list[JournalRecord], remote: list[RemoteApp]
    ) -> list[RemoteApp]:
        """Fold a previous run's journal (``reconcile``); the latest list."""
        doubt = Doubt(stored, remote)

        def wait(intents: list[JournalRecord]) -> list[JournalRecord]:
            relist = self.client.list_applications
            return wait_out(doubt, intents, relist, self.settings, self.stop, self.reporter)

        doubtful = reconcile(
            self.store, stored, leftover, doubt, wait, self.result, self.reporter, self._local_only
        )
        self._records.extend(doubtful)
        self._listed_at_start.update(app_id for _name, app_id in self.result.not_captured)
        return doubt.remote

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
        requests = self._requests(creates)
        if creates and not self.confirm(plan):
            raise AbortedError("apply cancelled: nothing was created")
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
            f"hand. mvsync never overwrites a stored key: {move_entry_advice(self._fallback)}"
            ", then apply again; nothing was created"
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
        if self._learned:
            try:
                self.store.identify(self._account)
            except MvsyncError as error:  # the next run's list names the customer again
                self.reporter.note(f"the ledger could not record its account: {error}")
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
        if done.customer_id is not None and self._account.customer_id is None:
            # The account's first application: its ledger learns whose it is (at the fold).
            self._account = Account(done.customer_id)
            self._learned = True
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
