"""The manifest's field types: patterns, URL and recipient predicates, and the checks
pydantic runs on each value (every message locatable, none quoting a secret)."""

from __future__ import annotations

import re
from typing import Annotated
from urllib.parse import urlsplit

from pydantic import AfterValidator, Field
from pydantic_core import PydanticCustomError

from mvsync.manifest import interpolate
from mvsync.urls import is_loopback_host

ENV_NAME_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,62}$"
# Upper case only: a lower-case value in api_key_env is most likely the key itself
# (MiniVoice keys look like mv_live_...), and it is then never echoed back.
KEY_VAR_PATTERN = r"^[A-Z_][A-Z0-9_]*$"
SECRET_REF_PATTERN = r"^\$\{[A-Za-z_][A-Za-z0-9_]*\}$"


_WHITESPACE = re.compile(r"\s")


def is_absolute_http_url(url: str) -> bool:
    """Whether ``url`` is an absolute http or https URL with a host (and a valid port)."""
    if not url or _WHITESPACE.search(url):
        return False
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a bad port
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.hostname)


def custom_error(message: str) -> PydanticCustomError:
    return PydanticCustomError("mvsync", message)


def _check_template(value: str) -> str:
    try:
        interpolate.parse(value)
    except interpolate.TemplateSyntaxError as error:
        raise custom_error(f"bad ${{}} syntax: {error}") from None
    return value


def _check_name(value: str) -> str:
    _check_template(value)
    if not value.strip():
        raise custom_error("must not be empty")
    return value


# A literal http(s) URL in its plainest form: lower-case scheme, a host of letters,
# digits, dots and dashes (no port, no user), then printable ASCII without '"' or '$'.
# What it matches passes every check below (no ${}, no space, urlsplit parses it, a
# host); what it does not match is checked the long way.
_PLAIN_URL = re.compile(r"https?://[A-Za-z0-9.-]+(?:[/?#][!#%-~]*)?\Z")


def _check_url(value: str) -> str:
    if _PLAIN_URL.match(value):  # the common case, decided by one regex
        return value
    _check_template(value)
    if not interpolate.has_variables(value):
        url = interpolate.literal_value(value)
        if not is_absolute_http_url(url):
            raise custom_error(f"must be an absolute http(s) URL, got {url!r}")
    return value


API_URL_CREDENTIALS = (
    "api_url must not carry credentials (user:password@): the API key comes from api_key_env"
)


def url_has_credentials(url: str) -> bool:
    """Whether ``url`` (a ``${}`` template or a value) has a ``user:password@`` part.

    A template is judged by its text, each variable read as its default or a plain word:
    ``https://user:${PASS}@host`` has credentials whatever PASS holds.
    """
    try:
        parts = interpolate.parse(url)
    except interpolate.TemplateSyntaxError:
        text = url
    else:
        text = "".join(part if isinstance(part, str) else (part.default or "x") for part in parts)
    try:
        return "@" in urlsplit(text).netloc
    except ValueError:
        return "@" in text.partition("://")[2].partition("/")[0]


is_loopback = is_loopback_host  # the same hosts the client allows plain http to


def api_url_problem(url: str) -> str | None:
    """Why an (expanded) absolute ``api_url`` cannot be used, or ``None``.

    Plain http off loopback would send the API key unencrypted (the client refuses it
    too, but only at plan time and with no line); a path ending in ``/v1`` would make
    every call ``/v1/v1/applications``.
    """
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    host = parts.hostname or ""
    if parts.scheme == "http" and host and not is_loopback(host):
        return (
            f"plain http to {host} would send the API key unencrypted: use https "
            "(plain http is allowed only to a loopback host: localhost, 127.0.0.0/8, ::1)"
        )
    if parts.path.rstrip("/").lower().endswith("/v1"):
        path = parts.path.rstrip("/")[: -len("/v1")]
        base = f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}{path}"  # never userinfo
        return (
            f"must be the API's base URL, without /v1 (mvsync adds /v1/applications): "
            f"write {base!r}"
        )
    return None


def _check_api_url(value: str) -> str:
    # Before any other check: those quote the URL, and this one must not.
    if url_has_credentials(value):
        raise custom_error(API_URL_CREDENTIALS)
    _check_url(value)
    if not interpolate.has_variables(value):
        problem = api_url_problem(interpolate.literal_value(value))
        if problem:
            raise custom_error(problem)
    return value


def _check_secret_ref(value: str) -> str:
    # The value is never quoted back: it may be the very secret we refuse.
    try:
        parts = interpolate.parse(value)
    except interpolate.TemplateSyntaxError:
        raise custom_error(
            "must be exactly ${VARIABLE} (letters, digits and '_'); the value is not shown"
        ) from None
    variables = [part for part in parts if isinstance(part, interpolate.Variable)]
    if len(parts) == 1 and variables and variables[0].default is not None:
        raise custom_error(
            f"the default of ${{{variables[0].name}:-...}} is a literal secret in git;"
            f" write ${{{variables[0].name}}} and set {variables[0].name} where mvsync runs"
        )
    if len(parts) != 1 or not variables:
        raise custom_error(
            "a literal secret is refused (secrets do not go into git);"
            " write ${VARIABLE} and set VARIABLE where mvsync runs"
        )
    return value


RECIPIENT_PATTERN = r"^age1[02-9ac-hj-np-z]{58}$"


def _check_recipient(value: str) -> str:
    # Never quoted back: a secret identity pasted here must not reach a CI log.
    if value.strip().upper().startswith("AGE-SECRET-KEY-"):
        raise custom_error(
            "this is an age identity (a secret key), not a recipient: remove it from the"
            " manifest, consider it leaked, and list its public key (age-keygen -y) instead"
        )
    from mvsync.sealing import parse_recipient  # pyrage: only when recipients are given

    try:
        parse_recipient(value)
    except ValueError as error:
        raise custom_error(f"{error} (an age X25519 public key, as age-keygen prints it)") from None
    return value


def _check_state_url(value: str) -> str:
    # The value may hold a password: never quoted back, and never literal in git.
    try:
        parts = interpolate.parse(value)
    except interpolate.TemplateSyntaxError:
        parts = ()
    if not any(isinstance(part, interpolate.Variable) for part in parts):
        raise custom_error(
            "must be a ${VARIABLE} (it may hold a password, which does not go into git);"
            " the value is not shown"
        )
    literal = "".join(part if isinstance(part, str) else (part.default or "") for part in parts)
    if "@" in literal:
        raise custom_error(
            "a password must not be written in the manifest: put the whole URL in a variable"
        )
    return value


def _check_sink_argument(value: str) -> str:
    _check_template(value)
    from mvsync.model import PLACEHOLDER, SINK_PLACEHOLDERS

    known = " ".join(f"{{{name}}}" for name in SINK_PLACEHOLDERS)
    for part in interpolate.parse(value):
        if isinstance(part, str):
            for match in PLACEHOLDER.finditer(part):
                if match.group(1) not in SINK_PLACEHOLDERS:
                    raise custom_error(
                        f"unknown placeholder {{{match.group(1)}}} (the placeholders are {known})"
                    )
    return value


SINK_ENV_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*$"


def _check_sink_env_name(value: str) -> str:
    if not re.fullmatch(SINK_ENV_PATTERN, value):
        raise custom_error(
            "must be the name of an environment variable (letters, digits and '_', not"
            " starting with a digit); its value is read where mvsync runs"
        )
    if value.startswith("MVSYNC_"):
        raise custom_error(
            f"mvsync's own variables ({value}) are never passed to the sink; it sets"
            " MVSYNC_ENVIRONMENT, MVSYNC_APP_NAME, MVSYNC_APP_ID and MVSYNC_APP_SLUG itself"
        )
    return value


def _check_env_name(value: str) -> str:
    if not re.fullmatch(ENV_NAME_PATTERN, value):
        raise custom_error(
            f"environment name {value!r} must be 1-63 lower-case letters, digits, '-' or '_',"
            " starting with a letter or digit (it becomes a file name)"
        )
    return value


def _check_key_var(value: str) -> str:
    # The value is not quoted back: a wrong one is often the API key pasted in.
    if not re.fullmatch(KEY_VAR_PATTERN, value):
        raise custom_error(
            "must be the name of the environment variable that holds the API key, in upper"
            " case (A-Z, 0-9, '_'), such as MINIVOICE_API_KEY_PROD; never the key itself"
        )
    return value


def _check_version(value: int) -> int:
    if value != 1:
        raise custom_error(f"unsupported version {value} (this mvsync reads version 1)")
    return value


# A strict int, not Literal[1]: a literal compares equal, so true and 1.0 would pass.
Version = Annotated[int, AfterValidator(_check_version), Field(json_schema_extra={"const": 1})]
Template = Annotated[str, AfterValidator(_check_template)]
NameTemplate = Annotated[str, AfterValidator(_check_name)]
UrlTemplate = Annotated[str, AfterValidator(_check_url)]
ApiUrlTemplate = Annotated[str, AfterValidator(_check_api_url)]
SecretRef = Annotated[
    str,
    AfterValidator(_check_secret_ref),
    Field(json_schema_extra={"pattern": SECRET_REF_PATTERN}),
]
Recipient = Annotated[
    str,
    AfterValidator(_check_recipient),
    Field(json_schema_extra={"pattern": RECIPIENT_PATTERN}),
]
StateUrlTemplate = Annotated[str, AfterValidator(_check_state_url)]
SinkArgument = Annotated[str, AfterValidator(_check_sink_argument)]
SinkEnvName = Annotated[
    str,
    AfterValidator(_check_sink_env_name),
    Field(json_schema_extra={"pattern": SINK_ENV_PATTERN}),
]
RECIPIENTS_DOC = (
    "age X25519 public keys (age1...): every new API key is sealed to all of them before it"
    " is written anywhere (SPEC 5.2)."
)
EnvName = Annotated[
    str, AfterValidator(_check_env_name), Field(json_schema_extra={"pattern": ENV_NAME_PATTERN})
]
KeyVarName = Annotated[
    str, AfterValidator(_check_key_var), Field(json_schema_extra={"pattern": KEY_VAR_PATTERN})
]
