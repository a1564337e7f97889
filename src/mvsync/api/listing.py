"""Every environment of a plan listed at once: one GET each, in parallel threads."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor

from mvsync.api.client import MiniVoiceClient, RetryPolicy
from mvsync.errors import ApiError, MvsyncError
from mvsync.model import DesiredEnvironment, RemoteApp


def list_environments(
    desired_envs: Sequence[DesiredEnvironment],
    api_keys: Sequence[str],
    *,
    deadline: float,
    on_retry: Callable[[str], None] | None = None,
) -> list[list[RemoteApp]]:
    """One GET per environment, all at once; every failure reported, one line each;
    ``on_retry`` is told of each retry as it is decided."""
    retry = RetryPolicy(deadline=deadline, on_retry=on_retry)

    def list_one(desired: DesiredEnvironment, api_key: str) -> list[RemoteApp]:
        with MiniVoiceClient(desired.api_url, api_key, retry=retry) as client:
            return client.list_applications()

    if not desired_envs:
        return []
    with ThreadPoolExecutor(max_workers=len(desired_envs), thread_name_prefix="plan") as pool:
        futures = [pool.submit(list_one, d, k) for d, k in zip(desired_envs, api_keys, strict=True)]
    results: list[list[RemoteApp]] = []
    problems: list[str] = []
    for desired, future in zip(desired_envs, futures, strict=True):
        error = future.exception()
        if error is None:
            results.append(future.result())
        elif isinstance(error, ApiError) and error.status == 401:
            problems.append(
                f"environment '{desired.name}': the API key in {desired.api_key_env} "
                f"was refused by {error.url} (401 unauthorized)"
            )
        elif isinstance(error, MvsyncError):
            problems.append(f"environment '{desired.name}': {error}")
        else:
            raise error
    if problems:
        raise MvsyncError("\n".join(problems))
    return results
