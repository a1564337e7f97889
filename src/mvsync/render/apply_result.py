"""The final summary of an apply: what was done, what is left, and where the keys are."""

from __future__ import annotations

from typing import TextIO

from mvsync.apply.settings import NOT_CAPTURED_ADVICE, ApplyResult
from mvsync.render.text import id_of, name_of, text_of


def _count(count: int, one: str, many: str) -> str:
    return f"{count} {one if count == 1 else many}"


def _shown(value: str | None) -> str:
    return "(unset)" if value is None else name_of(value)


def render_last_resort(result: ApplyResult, err: TextIO) -> None:
    """Keys received that no disk took: each sealed one printed as its age armor, with its
    name and id (ciphertext: a CI log is a fine place for it). A plain key is never
    printed; the summary names its application instead."""
    for name, app_id, sealed in result.unstored:
        if sealed is None:
            continue
        err.write(
            f"mvsync: the key of {name_of(name)} ({id_of(app_id)}) in environment "
            f"{text_of(result.environment)} could not be stored; here it is, sealed to the "
            "manifest's recipients (open it with age -d):\n"
        )
        err.write(sealed.strip() + "\n")
    err.flush()


def render_apply_result(
    result: ApplyResult, out: TextIO, *, allow_drift: bool = False, list_created: bool = True
) -> None:
    """The final summary: what was done, what is left, and where the keys are.

    ``list_created=False`` when each create already had its own line as it happened (no
    terminal: a CI log), so that no create is reported twice; the count stays."""
    env = result.environment
    lines = [""]
    for change in result.drift:
        fields = ", ".join(
            f"{d.field} remote {_shown(d.remote)}, manifest {_shown(d.desired)}"
            for d in change.drift
        )
        lines.append(
            f"~ {name_of(change.name)} ({id_of(change.id or '')}) drifted: {fields}; the API "
            "cannot update: change it in MiniVoice or in the manifest"
        )
    for change in result.ambiguous:
        lines.append(
            f"! {name_of(change.name)}: {len(change.ids)} applications have this name "
            f"({', '.join(id_of(i) for i in change.ids)}); apply leaves it alone: delete or "
            "rename all but one"
        )
    for name, app_id in result.not_captured:
        lines.append(
            f"environment {text_of(env)}, name {name_of(name)}, id {id_of(app_id)}: "
            f"{NOT_CAPTURED_ADVICE}"
        )
    not_captured_ids = {app_id for _, app_id in result.not_captured}
    for name, app_id in result.unconfirmed:
        key = "key not captured" if app_id in not_captured_ids else "key stored"
        lines.append(
            f"? {name_of(name)} ({id_of(app_id)}) was created ({key}) but is not yet in the list; "
            "run mvsync plan later to check"
        )
    for name, message in result.failed:
        lines.append(f"x {name_of(name)}: {text_of(message)}")
    if result.skipped:
        why = "interrupted" if result.interrupted else "stopped after the error above"
        skipped = _count(len(result.skipped), "create", "creates")
        lines.append(f"- {skipped} not started ({why}); apply again")
    for wanted, actual, app_id in result.renamed_by_api:
        lines.append(
            f"! {name_of(wanted)} was created as {name_of(actual)} ({id_of(app_id)}): the API "
            f"changed the name; its key is stored as {name_of(actual)}. Write {name_of(actual)} "
            "in the manifest, or the next apply creates another one"
        )
    for name, since in result.held_back:
        lines.append(
            f"- {name_of(name)}: its create at {text_of(since)} may have gone through and the "
            "list does not show it yet; not sent again until the lag window has passed "
            "(MVSYNC_LAG_WINDOW): apply again later"
        )
    if result.store_problem is not None:
        lines.append(f"x the keys could not be stored: {text_of(result.store_problem)}")
    for name, app_id in result.kept_locally:
        lines.append(
            f"x environment {text_of(env)}, name {name_of(name)}, id {id_of(app_id)}: the "
            f"database did not take its key; it is written, sealed, to "
            f"{text_of(str(result.kept_locally_at))}: keep that file, and once the database "
            f"is back run mvsync state push --env {text_of(env)}"
        )
    for name, app_id, sealed in result.unstored:
        where = (
            "its sealed key is printed on stderr above: save it"
            if sealed is not None
            else f"{NOT_CAPTURED_ADVICE} (the key could not be written anywhere)"
        )
        lines.append(
            f"x environment {text_of(env)}, name {name_of(name)}, id {id_of(app_id)}: {where}"
        )
    for name, app_id in result.renamed:
        lines.append(
            f"note: the key of {id_of(app_id)} is stored as {name_of(name)}: its name already "
            "had an entry"
        )
    # Sorted, so that the summary is the same whatever order the creates finished in
    # (the live lines above follow completion order).
    shown = sorted(result.created) if list_created else []
    lines.extend(f"+ created {name_of(name)} ({id_of(app_id)})" for name, app_id in shown[:50])
    if len(shown) > 50:
        lines.append(f"+ ... and {len(shown) - 50} more created (every one is in the secrets file)")
    created = len(result.created)
    already = len(result.already_existed)
    if result.interrupted:
        verdict = "Interrupted"
    elif result.ok:
        verdict = "Apply complete"
    elif allow_drift and result.creates_done:
        verdict = "Apply complete except drift and ambiguous names (allowed by --allow-drift)"
    else:
        verdict = "Apply incomplete"
    done = [f"{created} created"]
    if already:
        done.append(f"{already} already existed")
    if result.not_captured:
        done.append(_count(len(result.not_captured), "key", "keys") + " not captured")
    if result.failed:
        done.append(f"{len(result.failed)} failed")
    if result.undelivered:
        done.append(_count(len(result.undelivered), "key", "keys") + " not delivered")
    lines.append(
        f"{verdict} for environment '{text_of(env)}': {', '.join(done)}; now "
        f"{result.unchanged} equal to the manifest, {len(result.drift)} drifted, "
        f"{len(result.ambiguous)} ambiguous."
    )
    where = text_of(result.keys_location or str(result.secrets_path))
    if result.kept_locally:
        kept = _count(len(result.kept_locally), "key", "keys")
        where += f" (but for {kept} in {text_of(str(result.kept_locally_at))}, above)"
    if result.keys_location is not None:  # the state_url database: nothing to commit
        lines.append(f"Keys are in {where}, sealed with age.")
    elif result.sealed:
        lines.append(
            f"Keys are in {where}, sealed with age (no plaintext key: it may be kept or committed)."
        )
    else:
        lines.append(f"Keys are in {where} (mode 0600; keep it out of git).")
    lines.extend(_sink_lines(result))
    out.write("\n".join(lines) + "\n")
    out.flush()


def _sink_lines(result: ApplyResult) -> list[str]:
    """With a key sink (SPEC 5.5): where the keys went, and each one it has not taken."""
    if result.key_sink is None:
        return []
    env = text_of(result.environment)
    undelivered = {app_id for _name, app_id in result.undelivered}
    handed = [c for c in result.created if c[1] not in undelivered] + result.delivered_later
    lines = [
        f"Key sink: {_count(len(handed), 'key', 'keys')} delivered to {text_of(result.key_sink)}."
    ]
    for name, app_id in result.undelivered[:50]:
        lines.append(
            f"x {name_of(name)} ({id_of(app_id)}): stored, not delivered to the key sink; "
            f"mvsync keys deliver --env {env} hands it on"
        )
    if len(result.undelivered) > 50:
        lines.append(f"x ... and {len(result.undelivered) - 50} more not delivered")
    return lines
