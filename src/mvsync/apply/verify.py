"""Whether a key that did not come from mvsync's own create is a key of the account.

A key typed into ``mvsync keys add``, or an entry of a committed secrets file that anyone
with write access to the repository could have edited, is recorded or handed to the key
sink only once MiniVoice vouches for it: the API authenticates with application keys, so
one ``GET /v1/applications`` with the key as the bearer must answer 200 and list the
account's applications — the ``customer_id`` of the environment's own API key, and the
application's id. Otherwise a pull request could slip its own key (or ciphertext sealed to
the recipients) into the ledger and have it shipped to production.
"""

from __future__ import annotations

from collections.abc import Callable

from mvsync.api.client import MiniVoiceClient
from mvsync.errors import ApiError, MvsyncError
from mvsync.escape import escape

# A client for one bearer: the same URL, timeout and retries as the environment's own.
ClientFor = Callable[[str], MiniVoiceClient]


class ForeignKeyError(MvsyncError):
    """A key MiniVoice does not vouch for as a key of this account and application."""


def customer_of(client: MiniVoiceClient) -> tuple[str | None, frozenset[str]]:
    """The account's ``customer_id`` (None when it has no application) and its ids."""
    apps = client.list_applications()
    customers = {app.customer_id for app in apps}
    if len(customers) > 1:
        raise MvsyncError(
            f"the list of applications names {len(customers)} customer ids, not one: "
            "an API key lists its own account only; nothing was changed"
        )
    return (customers.pop() if customers else None), frozenset(app.id for app in apps)


def verify_key(
    client_for: ClientFor, key: str, customer_id: str | None, name: str, app_id: str
) -> None:
    """Raise ``ForeignKeyError`` unless ``key`` authenticates as ``customer_id`` and its list
    holds ``app_id``. One list call; the key never reaches the message."""
    what = f'the key given for "{escape(name)}" ({escape(app_id)})'
    if customer_id is None:
        raise ForeignKeyError(
            f"{what} cannot be checked: the environment's API key lists no application; "
            "nothing was recorded"
        )
    try:
        with client_for(key) as client:
            apps = client.list_applications()
    except ApiError as error:
        if error.status not in (401, 403):
            raise ForeignKeyError(
                f"{what} could not be checked: {error}; nothing was recorded or delivered. "
                "Run the command again once MiniVoice answers"
            ) from None
        raise ForeignKeyError(
            f"{what} is refused by MiniVoice (HTTP {error.status}): it is not a key of this "
            "account; nothing was recorded or delivered. Check that it is this "
            "application's key (the console shows the keys it made)"
        ) from None
    customers = {app.customer_id for app in apps}
    if customers != {customer_id} or app_id not in {app.id for app in apps}:
        raise ForeignKeyError(
            f"{what} belongs to another account or application: nothing was recorded or delivered"
        )
