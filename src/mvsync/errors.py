"""Every error mvsync reports to its user.

The core raises these and never prints or exits; the CLI's one boundary
(``mvsync.cli``) turns each into one line on stderr and exit status 1. A
traceback is shown only with ``--debug``.

    MvsyncError                  base: ``str(error)`` is the whole user-facing message
    ├── UsageError               bad flags or flag combinations
    ├── ManifestError            the manifest: every problem with its file:line:col
    ├── PlanFileError            a saved plan that is malformed or stale
    ├── UnsafePlanError          a plan apply refuses (--max-creates, stale, ambiguous...)
    ├── SecretsError             a secrets file that is malformed, readable by others...
    ├── LockError                another apply holds the environment's lock
    ├── StateError               the PostgreSQL state (state_url) unreachable or unusable
    │   └── StateUrlError        a state_url refused as written (fix the variable)
    ├── AbortedError             the user answered no, or interrupted the run
    └── ApiError                 a non-2xx answer: method, URL, status, API error code
        ├── ApiResponseError     a 2xx answer whose body is not what the API documents
        ├── TransportError       no answer at all (connection refused, DNS, timeout on GET)
        └── OutcomeUnknownError  a POST that may have been committed (read timeout,
                                 reset after sending, 5xx other than 503+Retry-After)

No message ever contains an API key, a bearer token or a webhook secret.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # keep `mvsync --help` free of pydantic's import time
    from pydantic import SecretStr


class MvsyncError(Exception):
    """Base of every error shown to the user as one message and exit 1."""


class UsageError(MvsyncError):
    """The command line asks for something that cannot be done."""


@dataclass(frozen=True, order=True)
class Problem:
    """One manifest problem, located in its file.

    ``line`` and ``column`` are 1-based; 0 means "the file as a whole".
    """

    path: str
    line: int
    column: int
    message: str

    def __str__(self) -> str:
        if self.line <= 0:
            return f"{self.path}: {self.message}"
        return f"{self.path}:{self.line}:{self.column}: {self.message}"


class ManifestError(MvsyncError):
    """The manifest is not valid; carries every problem found, sorted by place."""

    def __init__(self, problems: Iterable[Problem]) -> None:
        self.problems: tuple[Problem, ...] = tuple(sorted(set(problems)))
        super().__init__("\n".join(str(p) for p in self.problems))


class PlanFileError(MvsyncError):
    """A saved plan file that cannot be read, or no longer matches reality."""


class UnsafePlanError(MvsyncError):
    """apply refuses this plan; nothing was created."""


class SecretsError(MvsyncError):
    """A secrets file (or its journal) that mvsync must not use or could not write."""


class LockError(MvsyncError):
    """Another apply holds the lock of this environment."""


class StateError(MvsyncError):
    """The PostgreSQL state of an environment (``state_url``) cannot be reached or used."""


class StateUrlError(StateError):
    """A ``state_url`` that is refused as written: a configuration error, never a warning."""


class AbortedError(MvsyncError):
    """The user said no, or interrupted the run."""

    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        self.exit_code = exit_code


class ApiError(MvsyncError):
    """The MiniVoice API answered with a non-2xx status.

    Carries what is needed to act on it, and never the bearer token.
    """

    def __init__(
        self,
        message: str,
        *,
        method: str,
        url: str,
        status: int | None = None,
        code: str | None = None,
    ) -> None:
        self.method = method
        self.url = url
        self.status = status
        self.code = code
        super().__init__(message)


class ApiResponseError(ApiError):
    """A 2xx answer whose body does not match what the API documents.

    A create answer can be malformed and still carry the new application's key: the
    client then hands over ``issued_key`` (and ``app_id`` when it was readable), so
    that the applier stores the key rather than lose it. Neither is ever in the message.
    """

    def __init__(
        self,
        message: str,
        *,
        issued_key: SecretStr | None = None,
        app_id: str | None = None,
        **context: Any,  # method, url, status, code: as ApiError
    ) -> None:
        super().__init__(message, **context)
        self.issued_key = issued_key
        self.app_id = app_id


class TransportError(ApiError):
    """No usable answer at all: connection refused, DNS failure, timeouts."""


class OutcomeUnknownError(ApiError):
    """A POST that may or may not have created the application.

    The applier must list again before deciding anything (SPEC guarantee 2).
    """
