"""``mvsync keys deliver``: hand the stored keys the key sink has not taken to it again.

A thin shell around ``mvsync.apply.deliver.deliver_stored`` (SPEC 5.5): it reads the
manifest, the environment's key sink and API key, the age identity as ``keys show``
takes it (``cli/identity.py``), and renders what was delivered and what was not. The
API key names the account (a ``state_url`` database keeps one ledger per account) and,
for a secrets file, vouches for each key with one list call before the sink gets it.
"""

from __future__ import annotations

import io
import os

import click

from mvsync.cli.identity import identity_option
from mvsync.cli.options import (
    API_DEADLINE_VARIABLE,
    env_option,
    env_seconds,
    key_sink_of,
    lock_timeout_option,
    manifest_option,
    manifest_path,
)
from mvsync.cli.pipe import write_result


@click.command("deliver")
@manifest_option
@env_option("The environment whose keys to deliver.")
@identity_option
@lock_timeout_option
@click.argument("names", nargs=-1, metavar="[NAME]...")
@click.pass_context
def deliver(
    ctx: click.Context, env: str, identity: str | None, lock_timeout: float, names: tuple[str, ...]
) -> int:
    """Hand each stored key the key sink has not taken to ENV's key_sink again.

    \b
    Without NAME, every key not delivered yet; with NAMEs, those keys (again, even if
    delivered: a sink is idempotent). A sealed key needs the age identity: -i FILE,
    -i - (stdin), or MVSYNC_AGE_IDENTITY / MVSYNC_AGE_IDENTITY_FILE.
    The environment's API key variable must be set: it names the account, and a key
    from a secrets file (which anyone who can change the repository may have edited)
    is checked with MiniVoice first (one list call with that key); a key MiniVoice does
    not vouch for is not handed on. Exit 0 when every key asked for was delivered (or
    none was left to deliver), 1 naming each key not delivered and why.
    """
    from mvsync.api.client import MiniVoiceClient, RetryPolicy
    from mvsync.apply.deliver import deliver_stored
    from mvsync.apply.stores import open_store
    from mvsync.apply.verify import customer_of
    from mvsync.cli.identity import WAYS, identity_source
    from mvsync.errors import MvsyncError
    from mvsync.manifest import load_manifest, read_api_key, resolve_environment
    from mvsync.model import Account
    from mvsync.render.deliver import render_deliver_result

    lookup = os.environ.get
    path = manifest_path(ctx)
    manifest = load_manifest(path)
    desired = resolve_environment(manifest, env, lookup)
    if desired.key_sink is None:
        raise MvsyncError(
            f"no key_sink in environment {env}: add one to the manifest (docs/keys.md)"
        )
    sink = key_sink_of(manifest, desired, path)
    assert sink is not None
    api_key = read_api_key(desired, lookup)
    timeout = env_seconds("MVSYNC_HTTP_TIMEOUT", 10.0, positive=True)
    retry = RetryPolicy(deadline=env_seconds(API_DEADLINE_VARIABLE, 60.0, positive=True))

    def client_for(key: str) -> MiniVoiceClient:
        return MiniVoiceClient(desired.api_url, key, timeout=timeout, retry=retry)

    def customer() -> str | None:
        with client_for(api_key) as client:
            return customer_of(client)[0]

    result = deliver_stored(
        open_store(desired, lookup),
        sink,
        names,
        identity_source(identity),
        account=Account.of(api_key),
        client_for=client_for,
        customer_id=customer,
        lock_timeout=lock_timeout,
        ways=WAYS,
    )
    out = io.StringIO()
    render_deliver_result(result, out)
    write_result(out.getvalue())
    return 0 if result.ok else 1
