"""What a check may connect to, decided before any request: every address that is not
globally routable is refused (also when an IPv6 address carries it), plain http and
loopback only where the URL names a loopback host, and every resolved address must pass.

The resolver here is a function the test hands in: no name is looked up, nothing is sent.
(The same refusals, end to end in a network namespace of their own, are in
test_check_netns.py.)
"""

from __future__ import annotations

import asyncio

import httpx
import pytest

from mvsync.check.addresses import RefusedError, Target, clear


def resolver(table: dict[str, list[str]], calls: list[str] | None = None):  # type: ignore[no-untyped-def]
    async def resolve(host: str, port: int) -> list[str]:
        if calls is not None:
            calls.append(host)
        return table[host]

    return resolve


def never_resolve():  # type: ignore[no-untyped-def]
    async def resolve(host: str, port: int) -> list[str]:
        raise AssertionError(f"{host} was looked up")

    return resolve


def cleared(url: str, table: dict[str, list[str]] | None = None) -> Target:
    resolve = resolver(table) if table is not None else never_resolve()
    return asyncio.run(clear(httpx.URL(url), resolve))


def refusal(url: str, table: dict[str, list[str]] | None = None) -> str:
    with pytest.raises(RefusedError) as refused:
        cleared(url, table)
    return str(refused.value)


@pytest.mark.parametrize(
    ("address", "kind"),
    [
        ("169.254.169.254", "link-local"),
        ("[fd00:ec2::254]", "link-local"),
        ("[fe80::1]", "link-local"),
        ("10.1.2.3", "private"),
        ("172.16.0.1", "private"),
        ("192.168.0.1", "private"),
        ("[fc00::1]", "private"),
        ("100.64.0.1", "shared"),
        ("100.100.100.200", "shared"),
        ("0.0.0.0", "unspecified"),
        ("0.1.2.3", "private"),
        ("198.18.0.1", "private"),
        ("224.0.0.1", "multicast"),
        ("[::ffff:169.254.169.254]", "link-local"),
        ("[::ffff:10.0.0.1]", "private"),
        ("[64:ff9b::a9fe:a9fe]", "link-local"),
        ("[64:ff9b::a00:1]", "private"),
        ("[64:ff9b:1::a00:1]", "not globally routable"),
        ("[2002:a9fe:a9fe::1]", "link-local"),
        ("[::ffff:127.0.0.1]", "loopback"),
        ("[fec0::1]", "not globally routable"),
        ("[::a9fe:a9fe]", "not globally routable"),
        ("[3fff::1]", "not globally routable"),
    ],
)
def test_an_address_that_is_not_globally_routable_is_refused(address: str, kind: str) -> None:
    why = refusal(f"https://{address}/answer")
    assert kind in why
    assert "only globally routable addresses are checked" in why


def test_a_global_address_is_cleared_as_written() -> None:
    # Cleared only: nothing in this file connects anywhere.
    assert cleared("https://93.184.216.34/answer") == Target(
        "93.184.216.34", 443, ("93.184.216.34",)
    )


def test_a_name_is_cleared_with_every_address_it_resolves_to() -> None:
    table = {"crm.example.com": ["93.184.216.34", "2606:2800:220:1::1"]}
    target = cleared("https://crm.example.com:8443/hooks", table)
    assert target == Target("crm.example.com", 8443, ("93.184.216.34", "2606:2800:220:1::1"))


def test_a_name_with_one_private_address_among_global_ones_is_refused() -> None:
    table = {"crm.example.com": ["93.184.216.34", "10.0.0.7"]}
    why = refusal("https://crm.example.com/hooks", table)
    assert why.startswith("crm.example.com resolves to 10.0.0.7, a private address")


def test_a_public_name_resolving_to_loopback_is_refused() -> None:
    why = refusal("https://internal.example.com/answer", {"internal.example.com": ["127.0.0.1"]})
    assert "internal.example.com resolves to 127.0.0.1, a loopback address" in why
    assert "loopback only where the URL names it" in why


def test_a_name_resolving_to_the_metadata_address_is_refused() -> None:
    why = refusal("https://metadata.example.com/", {"metadata.example.com": ["169.254.169.254"]})
    assert "169.254.169.254" in why


@pytest.mark.parametrize(
    ("url", "addresses"),
    [
        ("http://127.0.0.1:8787/x", ("127.0.0.1",)),
        ("http://127.9.9.9:8787/x", ("127.9.9.9",)),
        ("http://[::1]:8787/x", ("::1",)),
        ("http://localhost:8787/x", ("127.0.0.1", "::1")),
        ("http://receiver.localhost:8787/x", ("127.0.0.1", "::1")),
    ],
)
def test_a_url_that_names_loopback_is_cleared_without_a_lookup(
    url: str, addresses: tuple[str, ...]
) -> None:
    assert cleared(url).addresses == addresses


def test_plain_http_to_a_host_that_is_not_loopback_is_refused_before_any_lookup() -> None:
    assert "plain http is checked only on a loopback host: use https" in refusal(
        "http://crm.example.com/hooks"
    )


def test_a_url_with_a_password_is_refused_without_showing_it() -> None:
    why = refusal("https://user:HUNTER2@crm.example.com/hooks")
    assert "user name or password" in why
    assert "HUNTER2" not in why


def test_a_numeric_spelling_of_loopback_that_is_not_an_address_literal_is_refused() -> None:
    # 127.1 is a *name* to the URL; whatever it resolves to, the URL does not name loopback.
    why = refusal("https://127.1/answer", {"127.1": ["127.0.0.1"]})
    assert "a loopback address" in why


def test_a_name_that_resolves_to_nothing_is_refused() -> None:
    assert "resolves to no address" in refusal(
        "https://void.example.com/", {"void.example.com": []}
    )
