"""The limit an API announces in its answers' header fields (SPEC guarantee 2).

Two families, read in this order:

- IETF (draft-ietf-httpapi-ratelimit-headers), Structured Fields (RFC 8941) lists:
  ``RateLimit-Policy: "default";q=100;w=1`` — a quota of ``q`` units in a window of
  ``w`` seconds, per named policy — and ``RateLimit: "default";r=42;t=1`` — ``r`` units
  remain, for ``t`` more seconds.
- the separate fields of the older drafts (``RateLimit-Remaining`` / ``RateLimit-Reset``,
  seconds) and GitHub's (``x-ratelimit-remaining`` / ``x-ratelimit-reset``, a Unix time;
  a small number is read as seconds), which say what remains, not the window.

Only a policy gives a rate (``q / w``; of several, the tightest); what remains and when
it is restored come from the first family that says so. A field that does not parse —
a wrong type, a negative or absurd number, a missing parameter, a broken list — is
ignored as a whole, as RFC 8941 asks, and the answer is read as if it were absent. The
values come from a server: they are bounded here, never trusted to be sane.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

# Bounds on what a server may announce: a longer window, a larger quota or a later reset
# than these is not a limit mvsync can use (and not one a real API sends).
MAX_WINDOW = 24 * 3600
MAX_QUOTA = 10**9
MAX_RESET = 24 * 3600.0
# x-ratelimit-reset above this is a Unix time (GitHub), below it seconds from now.
EPOCH_AFTER = 10**9

_KEY = re.compile(r"[a-z*][a-z0-9_\-.*]*")
_TOKEN = re.compile(r"[A-Za-z*][A-Za-z0-9!#$%&'*+\-.^_`|~:/]*")
_INTEGER = re.compile(r"-?[0-9]{1,15}")
_DECIMAL = re.compile(r"-?[0-9]{1,12}\.[0-9]{1,3}")
_STRING_CHAR = re.compile(r"[\x20-\x21\x23-\x5b\x5d-\x7e]*")

Value = int | float | str | bool
Item = tuple[Value, dict[str, Value]]


@dataclass(frozen=True)
class Announced:
    """What one answer says of the account's limit; ``None`` where it says nothing."""

    rate: float | None  # requests a second the API allows (quota over window)
    remaining: int | None  # requests left before the API refuses
    reset_after: float | None  # seconds until what remains is restored


def announced_limit(get: Callable[[str], str | None], now: float) -> Announced | None:
    """The limit announced by an answer whose header fields ``get`` reads (``None``
    when absent; ``httpx.Headers.get`` joins repeated fields with ``", "``), ``now``
    the Unix time (for GitHub's reset); ``None`` when it announces nothing usable."""
    policy = get("ratelimit-policy")
    current = get("ratelimit")
    rate = _policy_rate(policy) if policy is not None else None
    remaining: int | None = None
    reset_after: float | None = None
    if current is not None:
        remaining, reset_after = _current(current)
    if remaining is None:
        remaining, reset_after = _separate(
            get("ratelimit-remaining"), get("ratelimit-reset"), now, epoch=False
        )
    if remaining is None:
        remaining, reset_after = _separate(
            get("x-ratelimit-remaining"), get("x-ratelimit-reset"), now, epoch=True
        )
    if rate is None and remaining is None:
        return None
    return Announced(rate, remaining, reset_after)


# --- the IETF fields ------------------------------------------------------------------


def _policy_rate(text: str) -> float | None:
    """The tightest ``q / w`` of a ``RateLimit-Policy`` list, or ``None``."""
    items = parse_list(text)
    if not items:
        return None
    rates = []
    for _name, params in items:
        quota, window = params.get("q"), params.get("w")
        if not (_is_count(quota, MAX_QUOTA) and _is_count(window, MAX_WINDOW)):
            continue  # that policy says nothing usable; another may
        assert isinstance(quota, int) and isinstance(window, int)
        if quota >= 1 and window >= 1:
            rates.append(quota / window)
    return min(rates) if rates else None


def _current(text: str) -> tuple[int | None, float | None]:
    """The least ``r`` of a ``RateLimit`` list, with its ``t`` (``None`` when absent)."""
    items = parse_list(text)
    best: tuple[int | None, float | None] = (None, None)
    for _name, params in items or []:
        remaining, reset = params.get("r"), params.get("t", None)
        if not _is_count(remaining, MAX_QUOTA):
            continue
        if reset is not None and not _is_count(reset, int(MAX_RESET)):
            continue
        assert isinstance(remaining, int)
        if best[0] is None or remaining < best[0]:
            best = (remaining, float(reset) if isinstance(reset, int) else None)
    return best


def _is_count(value: object, most: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= most


# --- the separate fields (older drafts, GitHub) ----------------------------------------


def _separate(
    remaining_text: str | None, reset_text: str | None, now: float, *, epoch: bool
) -> tuple[int | None, float | None]:
    remaining = _whole(remaining_text)
    if remaining is None or remaining > MAX_QUOTA:
        return None, None
    reset = _whole(reset_text)
    reset_after: float | None = None
    if reset is not None:
        seconds = reset - now if epoch and reset > EPOCH_AFTER else float(reset)
        if seconds <= MAX_RESET:
            reset_after = max(seconds, 0.0)
    return remaining, reset_after


def _whole(text: str | None) -> int | None:
    """A non-negative whole number field, or ``None`` (absent, repeated, or not one)."""
    if text is None:
        return None
    value = text.strip()
    if not value.isascii() or not value.isdigit() or len(value) > 15:
        return None
    return int(value)


# --- RFC 8941 lists (the part these fields use) -----------------------------------------


def parse_list(text: str) -> list[Item] | None:
    """An sf-list of items with parameters, or ``None`` when any of it does not parse."""
    parser = _Parser(text)
    try:
        items = parser.list_()
    except ValueError:
        return None
    return items


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.at = 0

    def list_(self) -> list[Item]:
        items: list[Item] = []
        self._skip(" \t")
        if self.at == len(self.text):
            raise ValueError("empty")
        while True:
            items.append(self._item())
            self._skip(" \t")
            if self.at == len(self.text):
                return items
            self._expect(",")
            self._skip(" \t")
            if self.at == len(self.text):
                raise ValueError("a trailing comma")

    def _item(self) -> Item:
        bare = self._bare()
        params: dict[str, Value] = {}
        while self.at < len(self.text) and self.text[self.at] == ";":
            self.at += 1
            self._skip(" ")
            key = self._match(_KEY)
            value: Value = True
            if self.at < len(self.text) and self.text[self.at] == "=":
                self.at += 1
                value = self._bare()
            params[key] = value
        return bare, params

    def _bare(self) -> Value:
        if self.at >= len(self.text):
            raise ValueError("a value is missing")
        char = self.text[self.at]
        if char == '"':
            return self._string()
        if char == "?":
            self.at += 1
            flag = self._match(re.compile("[01]"))
            return flag == "1"
        if char == "-" or char.isdigit():
            decimal = _DECIMAL.match(self.text, self.at)
            if decimal is not None:
                self.at = decimal.end()
                return float(decimal.group())
            return int(self._match(_INTEGER))
        return self._match(_TOKEN)

    def _string(self) -> str:
        self.at += 1
        out = []
        while True:
            run = _STRING_CHAR.match(self.text, self.at)
            assert run is not None  # the pattern matches the empty string
            out.append(run.group())
            self.at = run.end()
            if self.at >= len(self.text):
                raise ValueError("an unterminated string")
            char = self.text[self.at]
            self.at += 1
            if char == '"':
                return "".join(out)
            if char != "\\" or self.at >= len(self.text) or self.text[self.at] not in '"\\':
                raise ValueError("a character a string may not hold")
            out.append(self.text[self.at])
            self.at += 1

    def _match(self, pattern: re.Pattern[str]) -> str:
        found = pattern.match(self.text, self.at)
        if found is None or not found.group():
            raise ValueError("unexpected text")
        self.at = found.end()
        # A number must end where the item does: "12abc" is not 12.
        if self.at < len(self.text) and self.text[self.at] not in ",; \t=":
            raise ValueError("unexpected text")
        return found.group()

    def _expect(self, char: str) -> None:
        if self.at >= len(self.text) or self.text[self.at] != char:
            raise ValueError(f"expected {char!r}")
        self.at += 1

    def _skip(self, chars: str) -> None:
        while self.at < len(self.text) and self.text[self.at] in chars:
            self.at += 1
