"""What ``mvsync keys deliver`` did: each key handed to the sink, each one not, and why.

Names, ids and reasons come from the ledger and the API: escaped before they reach a
terminal. A reason is already masked (``sink.environment.masked_tail``): no key in it.
"""

from __future__ import annotations

from typing import TextIO

from mvsync.apply.deliver import DeliverResult
from mvsync.render.text import id_of, name_of, text_of


def _keys(count: int) -> str:
    return f"{count} key" if count == 1 else f"{count} keys"


def render_deliver_result(result: DeliverResult, out: TextIO) -> None:
    """One line per key, then the verdict; nothing to deliver says so."""
    env = text_of(result.environment)
    sink = text_of(result.sink)
    if not result.delivered and not result.failed:
        out.write(
            f"Environment '{env}': every stored key was delivered already; nothing to"
            f" deliver (key sink: {sink}).\n"
        )
        return
    lines = [f"+ delivered {name_of(name)} ({id_of(app_id)})" for name, app_id in result.delivered]
    lines += [
        f"x {name_of(name)} ({id_of(app_id)}): not delivered: {text_of(why)}"
        for name, app_id, why in result.failed
    ]
    verdict = f"{_keys(len(result.delivered))} delivered to {sink}"
    if result.failed:
        verdict += (
            f"; {_keys(len(result.failed))} not delivered (still stored in"
            f" {text_of(result.location)}: fix what is said above and run"
            f" mvsync keys deliver --env {env} again)"
        )
    lines.append(f"Environment '{env}': {verdict}.")
    out.write("\n".join(lines) + "\n")
    out.flush()
