"""What an ``Outcome`` means for each check, in words (SPEC section 8).

answer_url passes on a 2xx within its budget whose body parses as JSON with an object
or a non-empty array at the top (an action, or actions). webhook_url passes when the
signed event gets a 2xx within its budget and the same event under a wrong signature
gets an answer that is not 2xx. Every reason names the status and the time against the
budget; none quotes the body.
"""

from __future__ import annotations

import json
from typing import Any

from mvsync.check.exchange import Outcome

MAX_ANSWER_BYTES = 1 << 20  # an action is a few hundred bytes; 1 MiB is plenty


def ms(value: int) -> str:
    return f"{value:,} ms"


def _kind_of_json(value: Any) -> str:
    names = {str: "a string", bool: "a boolean", int: "a number", float: "a number"}
    if value is None:
        return "null"
    return names.get(type(value), "a value")


def no_answer(outcome: Outcome, budget_ms: int, cut_by_deadline: bool) -> str:
    """Why there was no usable answer at all."""
    if outcome.timed_out:
        if cut_by_deadline:
            return "not finished when the run's deadline passed (MVSYNC_CHECK_DEADLINE)"
        return f"no complete answer within its {ms(budget_ms)}"
    return outcome.problem or "no answer"


def status_problem(status: int) -> str | None:
    """What is wrong with a status, or ``None`` for a 2xx."""
    if 200 <= status < 300:
        return None
    if 300 <= status < 400:
        return f"answered {status}: redirects are not followed"
    return f"answered {status}"


def answer_verdict(outcome: Outcome, budget_ms: int) -> tuple[bool, str]:
    """(passed, why) for the answer_url request."""
    assert outcome.status is not None
    problem = status_problem(outcome.status)
    timing = f"in {ms(outcome.elapsed_ms)} of its {ms(budget_ms)}"
    if problem is not None:
        return False, f"{problem} ({timing})"
    if outcome.too_large:
        return False, f"answered {outcome.status} with more than 1 MiB, not an action"
    if outcome.encoded:
        return False, (
            f"answered {outcome.status} with a compressed body though identity was asked for"
        )
    try:
        value = json.loads(outcome.body)
    except (ValueError, RecursionError):
        shown = outcome.media_type or "a body without a content type"
        if outcome.media_type in ("application/json",) or (outcome.media_type or "").endswith(
            "+json"
        ):
            return False, f"answered {outcome.status} {shown} that does not parse as JSON"
        if not outcome.body:
            return False, f"answered {outcome.status} with an empty body, not JSON"
        return False, f"answered {shown}, not JSON"
    if isinstance(value, dict):
        return True, f"answered {outcome.status} with a JSON object {timing}"
    if isinstance(value, list):
        if value:
            return True, f"answered {outcome.status} with a JSON array of actions {timing}"
        return False, f"answered {outcome.status} with an empty JSON array: no action"
    return False, (
        f"answered {outcome.status} with JSON that is {_kind_of_json(value)}, "
        "not an object or a non-empty array"
    )


def webhook_verdict(
    signed: Outcome, forged: Outcome | None, budget_ms: int, forged_cut: bool = False
) -> tuple[bool, str]:
    """(passed, why) from the signed event's outcome and the forged event's (``None``
    when it was not sent because the signed one already failed); ``forged_cut``: the
    forged event's time ran out with the run's deadline, not its budget."""
    assert signed.status is not None
    problem = status_problem(signed.status)
    timing = f"in {ms(signed.elapsed_ms)} of its {ms(budget_ms)}"
    if problem is not None:
        hint = (
            ": is webhook_secret the secret this receiver verifies with?"
            if signed.status in (401, 403)
            else ""
        )
        return False, f"refused the signed event: {problem} ({timing}){hint}"
    accepted = f"accepted the signed event ({signed.status} {timing})"
    if forged is None:
        return False, accepted
    if forged.status is None:
        why = no_answer(forged, budget_ms, cut_by_deadline=forged_cut)
        return False, f"{accepted}, but gave no answer to an event with a wrong signature: {why}"
    if 200 <= forged.status < 300:
        return False, (
            f"{accepted}, but also accepted an event with a wrong signature "
            f"({forged.status}): it would act on forged events"
        )
    return True, f"{accepted}; refused an event with a wrong signature ({forged.status})"
