"""Exit statuses, defined once (SPEC section 4): 2 means "changes" and nothing else."""

from __future__ import annotations

EXIT_OK = 0
EXIT_ERROR = 1  # any error, usage errors included
EXIT_CHANGES = 2  # plan --detailed-exitcode: a create, drift or ambiguous name is pending
EXIT_INTERRUPTED = 130  # apply interrupted: creates in flight finished, their keys stored
