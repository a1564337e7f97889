"""``mvsync emulator`` (owner: issue 2). Imports mvsync.emulator lazily: the core never does."""

from __future__ import annotations

import signal
import threading
from pathlib import Path
from types import FrameType

import click

FAULT_HELP = (
    "Inject a fault, repeatable: KIND[:METHOD[:TIMES[:ARG]]]. KIND is 429, 500, 503, "
    "drop_before_commit, drop_after_commit or slow; METHOD is GET, POST or * (default both); "
    "TIMES is how many matching requests it hits (default 1); ARG is the Retry-After value "
    "for 429/503 (seconds or an HTTP date) or the delay in seconds for slow. "
    "Example: --fault 429:POST:2:1 --fault slow:GET:1:30."
)


@click.command()
@click.option(
    "--host", default="127.0.0.1", show_default=True, help="Listen on this address (loopback)."
)
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=8787,
    show_default=True,
    help="Listen on this port (0: any free port).",
)
@click.option(
    "--state",
    "state_file",
    type=click.Path(dir_okay=False),
    help="Keep the data in this file across restarts (JSON lines, mode 0600: it holds keys).",
)
@click.option(
    "--api-key",
    "api_keys",
    multiple=True,
    help="Accept this bearer key (one customer per key; repeatable). Without it, one "
    "key is generated and printed.",
)
@click.option(
    "--latency-ms",
    type=click.FloatRange(min=0),
    default=0.0,
    show_default=True,
    help="Wait this long before every API answer.",
)
@click.option("--fault", "fault_specs", multiple=True, metavar="SPEC", help=FAULT_HELP)
@click.option(
    "--rate-limit",
    "rate_limit_spec",
    metavar="RATE[/BURST]",
    help="Per customer, serve RATE requests a second in bursts of BURST (default: RATE, "
    "at least 1) and answer 429 with Retry-After beyond that. Example: --rate-limit 100/10.",
)
@click.option(
    "--receiver",
    "receiver_secret",
    metavar="SECRET",
    envvar="MVSYNC_RECEIVER_SECRET",
    help="Also serve a sample application backend under /_receiver/ for mvsync check: "
    "/_receiver/answer, /_receiver/webhooks (verifies Standard Webhooks signatures made "
    "with SECRET), and /_receiver/slow, /html, /open for each failure "
    "(env MVSYNC_RECEIVER_SECRET keeps SECRET out of the process list).",
)
@click.option(
    "--rate-limit-headers",
    is_flag=True,
    help="With --rate-limit, announce the limit in every answer: the IETF RateLimit-Policy "
    "and RateLimit fields ('\"default\";q=100;w=1', '\"default\";r=7;t=1').",
)
def emulator(
    host: str,
    port: int,
    state_file: str | None,
    api_keys: tuple[str, ...],
    latency_ms: float,
    fault_specs: tuple[str, ...],
    rate_limit_spec: str | None,
    receiver_secret: str | None,
    rate_limit_headers: bool,
) -> int:
    """Run a local MiniVoice API on loopback (no account needed).

    \b
    Serves GET and POST /v1/applications as the MiniVoice API does. Every key given
    with --api-key is one customer; keys issued by a create authenticate as that
    customer too. Stop it with Ctrl-C (exit 0).

    \b
    Test controls over HTTP (no auth, loopback clients only):
      POST   /_emulator/faults    add faults: {"kind": "429", "method": "POST",
                                  "times": 1, "retry_after": "2", "delay": 0}, or a list
      GET    /_emulator/faults    the faults not yet spent
      DELETE /_emulator/faults    clear them
      PUT    /_emulator/latency   {"seconds": 0.02}
      PUT    /_emulator/rate-limit  {"rate": 100, "burst": 10}; {"rate": null} lifts it
      GET    /_emulator/rate-limit  the limit and the requests it refused
      DELETE /_emulator/rate-limit  lift the limit
      GET    /_emulator/requests  {"counts": {"GET /v1/applications": n, ...}}
      DELETE /_emulator/requests  reset the counts
    """
    import secrets

    from mvsync.emulator import Emulator, Fault, RateLimit

    faults = [Fault.parse(spec) for spec in fault_specs]
    rate_limit = RateLimit.parse(rate_limit_spec) if rate_limit_spec is not None else None
    generated = None
    if not api_keys:
        # An emulator that accepts no key answers 401 to everything: make one. It is a
        # key of this local emulator only, so it is shown.
        generated = f"mvemu_{secrets.token_hex(12)}"
        api_keys = (generated,)
    server = Emulator(
        api_keys,
        host=host,
        port=port,
        state_file=Path(state_file) if state_file else None,
        latency=latency_ms / 1000.0,
        rate_limit=rate_limit,
        receiver_secret=receiver_secret,
        rate_limit_headers=rate_limit_headers,
    )
    for fault in faults:
        server.add_fault(fault)

    stop = threading.Event()

    def request_stop(_signum: int, _frame: FrameType | None) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, request_stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        server.start()
        keys = f"{len(api_keys)} key{'s' if len(api_keys) != 1 else ''}"
        where = f"; state in {state_file}" if state_file else ""
        if rate_limit is not None:
            where += f"; rate limit {rate_limit.rate:g}/s, burst {rate_limit.burst}"
            where += ", announced in RateLimit fields" if rate_limit_headers else ""
        click.echo(f"mvsync emulator: serving the MiniVoice API on {server.url} ({keys}{where})")
        if receiver_secret is not None:
            click.echo(f"mvsync emulator: sample receiver on {server.url}/_receiver/")
        if generated is not None:
            click.echo(
                f"mvsync emulator: no --api-key given; it accepts this generated key:\n"
                f"  export MINIVOICE_API_KEY={generated}\n"
                f"  curl -H 'Authorization: Bearer {generated}' {server.url}/v1/applications"
            )
        click.echo("mvsync emulator: press Ctrl-C to stop", err=True)
        while not stop.wait(1.0):
            pass
    finally:
        server.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    click.echo("mvsync emulator: stopped", err=True)
    return 0
