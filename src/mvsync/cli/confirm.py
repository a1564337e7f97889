"""apply's question before creating, and what is checked before it is asked.

On a terminal (stdin a tty) apply shows the plan and asks; only the answer ``yes``,
typed out, proceeds: ``y``, an empty line (Enter) and end of input are all "no", as in
Terraform (the API cannot delete what a slip of the finger created). ``--yes`` skips the
question. Without a terminal and without ``--yes`` apply refuses, exit 1, nothing
created: ``ssh host mvsync apply``, cron and ``< /dev/null`` never create unasked. A plan
with nothing to create asks nothing and needs no ``--yes``.

Everything apply can check before creating is checked before the question, so that
nobody answers ``yes`` to learn only then that something was missing: the secrets file
and the lock (``apply/run.py`` takes them before it lists), the variables the creates
send (read before ``confirm`` is called), and here the key sink's program on ``PATH``
(``check_before_asking``).
"""

from __future__ import annotations

import shutil
import sys
from typing import TYPE_CHECKING, TextIO

from mvsync.errors import AbortedError, MvsyncError
from mvsync.escape import escape
from mvsync.model import KeySink

if TYPE_CHECKING:
    from mvsync.apply.settings import Confirm
    from mvsync.model import DesiredEnvironment
    from mvsync.planner import EnvironmentPlan

ANSWER = "yes"


def question(plan: EnvironmentPlan) -> str:
    """The words of the question (the pty tests wait for its last line)."""
    count = len(plan.creates)
    noun = "application" if count == 1 else "applications"
    return (
        f"Create {count} {noun} in environment '{escape(plan.name)}'? "
        "mvsync cannot delete them.\n"
        f"Only '{ANSWER}' creates them; anything else cancels.\n"
        "Enter a value: "
    )


def no_terminal(plan: EnvironmentPlan) -> AbortedError:
    count = len(plan.creates)
    noun = "create" if count == 1 else "creates"
    return AbortedError(
        f"environment '{plan.name}': the plan has {count} {noun} and there is no terminal "
        "to ask on: pass --yes to apply without asking (in CI, the merged pull request is "
        "the approval); nothing was created"
    )


def make_confirm(
    *, yes: bool, terminal: bool, ask_in: TextIO | None = None, ask_on: TextIO | None = None
) -> Confirm:
    """The ``confirm`` callback ``apply_environment`` calls once, only when there are
    creates, after every check it can make and before its first POST."""
    stdin = ask_in if ask_in is not None else sys.stdin
    stderr = ask_on if ask_on is not None else sys.stderr

    def confirm(plan: EnvironmentPlan) -> bool:
        if yes:
            return True
        if not terminal:
            raise no_terminal(plan)
        stderr.write("\n" + question(plan))
        stderr.flush()
        answer = stdin.readline()  # "" at end of input: no
        if answer.strip() != ANSWER:
            raise AbortedError(
                f"apply cancelled (the answer was not '{ANSWER}'): nothing was created"
            )
        return True

    return confirm


def check_before_asking(desired: DesiredEnvironment) -> None:
    """Checks of the CLI's own before anything is listed or asked.

    The key sink's program (``key_sink``, SPEC 5.5), where the manifest has one, must be
    found on ``PATH``: a key handed to nothing is a key someone has to carry by hand.
    ``key_sink`` is read by name so that this check holds whatever order the sink's
    fields land in ``DesiredEnvironment``: a sequence whose first item is the program.
    """
    sink = getattr(desired, "key_sink", None)
    if not sink or isinstance(sink, KeySink):
        # A resolved ``KeySink``: ``cli.options.key_sink_of`` found its program already
        # (on PATH, or relative to the manifest's folder), before this is called.
        return
    program = str(sink[0])
    if shutil.which(program) is None:
        raise MvsyncError(
            f"environment '{desired.name}': the key_sink program '{program}' is not found "
            "on PATH: install it, or correct key_sink in the manifest; nothing was created"
        )
