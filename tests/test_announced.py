"""The limit an API announces (api/announced.py): what parses, and what is ignored.

IETF ``RateLimit-Policy`` / ``RateLimit`` (Structured Fields lists), the older drafts'
``RateLimit-Remaining`` / ``-Reset`` and GitHub's ``x-ratelimit-*``. A field that does
not parse is ignored as a whole; an answer with nothing usable announces nothing.
"""

from __future__ import annotations

import httpx
import pytest

from mvsync.api.announced import Announced, announced_limit, parse_list

NOW = 1_800_000_000.0


def read(**fields: str) -> Announced | None:
    # As bytes, the way they come off the wire (httpx decodes them when read).
    headers = httpx.Headers(
        {name.replace("_", "-"): value.encode() for name, value in fields.items()}
    )
    return announced_limit(headers.get, NOW)


def test_the_drafts_example_gives_the_rate_what_remains_and_the_reset() -> None:
    assert read(RateLimit_Policy='"default";q=100;w=1', RateLimit='"default";r=42;t=1') == (
        Announced(rate=100.0, remaining=42, reset_after=1.0)
    )


def test_a_window_of_a_minute_is_a_rate_per_second() -> None:
    found = read(RateLimit_Policy='"permin";q=600;w=60')
    assert found == Announced(rate=10.0, remaining=None, reset_after=None)


def test_of_several_policies_the_tightest_rate_paces() -> None:
    found = read(RateLimit_Policy='"burst";q=100;w=1, "day";q=86400;w=86400, "hour";q=720;w=3600')
    assert found is not None and found.rate == pytest.approx(0.2)


def test_repeated_fields_are_one_list() -> None:
    headers = httpx.Headers(
        [("RateLimit-Policy", '"a";q=50;w=1'), ("RateLimit-Policy", "b;q=5;w=1")]
    )
    found = announced_limit(headers.get, NOW)
    assert found is not None and found.rate == 5.0


def test_the_least_remaining_of_several_policies_is_taken_with_its_reset() -> None:
    found = read(RateLimit='"a";r=40;t=1, "b";r=3;t=30')
    assert found == Announced(rate=None, remaining=3, reset_after=30.0)


def test_unknown_parameters_and_token_names_are_accepted() -> None:
    found = read(RateLimit_Policy='default;q=10;w=1;qu="requests";pk=:abc=:;x')
    # ":abc=:" is a byte sequence, which this reader does not know: the field is ignored.
    assert found is None
    found = read(RateLimit_Policy='default;q=10;w=1;qu="requests";x')
    assert found is not None and found.rate == 10.0


@pytest.mark.parametrize(
    "policy",
    [
        "",
        " ",
        '"default";q=100',  # no window
        '"default";w=1',  # no quota
        '"default";q=0;w=1',  # a quota of nothing is no pace
        '"default";q=100;w=0',
        '"default";q=-5;w=1',
        '"default";q=100;w=-1',
        '"default";q=1.5;w=1',  # a decimal quota is not a count
        '"default";q="100";w=1',
        '"default";q=?1;w=1',
        '"default";q=100;w=1,',  # a trailing comma
        ',"default";q=100;w=1',
        '"default;q=100;w=1',  # an unterminated string
        '"default"q=100;w=1',
        '"default";q=100abc;w=1',
        '"default";Q=100;w=1',  # keys are lower case
        '"default";q=1000000000000000000;w=1',  # more than 15 digits
        '"default";q=100;w=100000000',  # a window longer than a day
        '"de\\fault";q=100;w=1',  # an escape RFC 8941 does not have
        '"défaut";q=100;w=1',
        "(a b);q=100;w=1",  # an inner list
        "\x00",
        "q=100;w=1;;",
    ],
)
def test_a_malformed_policy_is_ignored(policy: str) -> None:
    assert read(RateLimit_Policy=policy) is None


@pytest.mark.parametrize(
    "current",
    ['"default";t=1', '"default";r=-1;t=1', '"default";r=1.5', '"default";r=5;t=-2', "r=5,,"],
)
def test_a_malformed_ratelimit_field_is_ignored(current: str) -> None:
    assert read(RateLimit=current) is None


def test_a_malformed_field_leaves_the_other_one_read() -> None:
    found = read(RateLimit_Policy='"default";q=100;w=1', RateLimit="r=oops;;")
    assert found == Announced(rate=100.0, remaining=None, reset_after=None)


def test_githubs_fields_give_what_remains_and_the_seconds_to_the_reset() -> None:
    found = read(
        x_ratelimit_limit="5000", x_ratelimit_remaining="0", x_ratelimit_reset=str(int(NOW) + 90)
    )
    assert found == Announced(rate=None, remaining=0, reset_after=90.0)


def test_a_small_reset_is_seconds_and_a_past_one_is_now() -> None:
    assert read(x_ratelimit_remaining="7", x_ratelimit_reset="12") == Announced(None, 7, 12.0)
    past = read(x_ratelimit_remaining="0", x_ratelimit_reset=str(int(NOW) - 5))
    assert past == Announced(None, 0, 0.0)


def test_the_older_drafts_separate_fields_are_read_in_seconds() -> None:
    found = read(RateLimit_Limit="100", RateLimit_Remaining="0", RateLimit_Reset="2")
    assert found == Announced(rate=None, remaining=0, reset_after=2.0)


@pytest.mark.parametrize(
    ("remaining", "reset"),
    [
        ("-1", "5"),
        ("1.5", "5"),
        ("", "5"),
        ("five", "5"),
        ("٣", "5"),
        ("1" * 16, "5"),
        ("3, 4", "5"),
    ],
)
def test_malformed_separate_fields_are_ignored(remaining: str, reset: str) -> None:
    assert read(x_ratelimit_remaining=remaining, x_ratelimit_reset=reset) is None


def test_a_malformed_or_absurd_reset_keeps_what_remains_without_it() -> None:
    assert read(x_ratelimit_remaining="3", x_ratelimit_reset="soon") == Announced(None, 3, None)
    far = str(int(NOW) + 400 * 24 * 3600)
    assert read(x_ratelimit_remaining="3", x_ratelimit_reset=far) == Announced(None, 3, None)


def test_no_field_announces_nothing() -> None:
    assert read(Retry_After="1", Content_Type="application/json") is None


def test_the_ietf_field_wins_over_githubs() -> None:
    found = read(RateLimit='"default";r=9;t=1', x_ratelimit_remaining="0", x_ratelimit_reset="60")
    assert found == Announced(rate=None, remaining=9, reset_after=1.0)


def test_the_list_parser_reads_strings_tokens_numbers_and_flags() -> None:
    assert parse_list('"a\\"b";n=-3;d=1.25;f;g=?0, tok/en:1') == [
        ('a"b', {"n": -3, "d": 1.25, "f": True, "g": False}),
        ("tok/en:1", {}),
    ]
