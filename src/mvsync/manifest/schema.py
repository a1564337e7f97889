"""The manifest file as pydantic models: patterns, URL predicates, field checks.

Decisions (see docs/manifest.md):
- environment names match ``[a-z0-9][a-z0-9_-]{0,62}``: they become file names
  (``.mvsync/<env>.secrets.yaml``), so no separators, no dots, and lower case so
  that ``prod`` and ``Prod`` cannot share one file on case-insensitive disks;
- ``name`` is not allowed in ``defaults``: one name for every application would
  always collide;
- ``api_key_env`` is an upper-case variable name: a lower-case value is most likely
  the key itself pasted in, and is never echoed back;
- ``webhook_secret`` must be exactly ``${VAR}``: any literal part, including a
  ``${VAR:-default}`` default, would be a secret committed to git;
- an application or override may set ``webhook_url``/``webhook_secret`` to
  ``null`` to drop the default.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    field_validator,
)

from mvsync.manifest.fields import (
    ENV_NAME_PATTERN,
    RECIPIENTS_DOC,
    ApiUrlTemplate,
    EnvName,
    KeyVarName,
    NameTemplate,
    Recipient,
    SecretRef,
    SinkArgument,
    SinkEnvName,
    StateUrlTemplate,
    Template,
    UrlTemplate,
    Version,
    custom_error,
)
from mvsync.model import DEFAULT_API_KEY_ENV, DEFAULT_API_URL

Lookup = Callable[[str], str | None]

_STRICT = ConfigDict(extra="forbid", strict=True, frozen=True)

_NAME_DOC = "Application name in MiniVoice; applications are matched by name. ${} allowed."
_ANSWER_DOC = "Absolute http(s) URL MiniVoice calls when a call arrives. ${} allowed."
_WEBHOOK_DOC = "Absolute http(s) URL that receives the call events. ${} allowed; null drops it."
_SECRET_DOC = (
    "Secret that signs webhook events. Must be exactly ${VARIABLE}: a literal secret "
    "(or a ${VAR:-default} default) is refused. null drops the default."
)


class ChecksConfig(BaseModel):
    """How ``mvsync check`` tests this environment's answer and webhook URLs."""

    model_config = _STRICT

    answer_method: Literal["GET", "POST"] = Field(
        "GET",
        description="GET answer_url with call_id, from and to, or POST it the call as JSON.",
    )
    answer_timeout_ms: int = Field(
        1000, ge=1, le=60_000, description="The answer's budget, the whole exchange (ms)."
    )
    webhook_timeout_ms: int = Field(
        5000, ge=1, le=60_000, description="Each webhook event's budget, the whole exchange (ms)."
    )
    webhook_signature: Literal["standard-webhooks"] = Field(
        "standard-webhooks", description="How events are signed: Standard Webhooks (the only one)."
    )


class EnvironmentConfig(BaseModel):
    """One MiniVoice account to keep equal to the manifest."""

    model_config = _STRICT

    api_url: ApiUrlTemplate = Field(
        DEFAULT_API_URL, description="Base URL of the MiniVoice API. ${} allowed."
    )
    api_key_env: KeyVarName = Field(
        DEFAULT_API_KEY_ENV,
        description="Name of the environment variable that holds this account's API key.",
    )
    secrets_file: Template | None = Field(
        None,
        description=(
            "Where apply stores the keys of created applications (mode 0600), relative to "
            "the manifest's folder. Default .mvsync/<environment>.secrets.yaml. ${} allowed."
        ),
    )
    recipients: list[Recipient] | None = Field(
        None, description=RECIPIENTS_DOC + " Replaces the top-level list for this environment."
    )
    state_url: StateUrlTemplate | None = Field(
        None,
        description=(
            "Shared state in PostgreSQL: a ${VARIABLE} expanding to a postgresql:// URL. The"
            " journal, keys and lock then live in that database. Requires recipients."
        ),
    )
    checks: ChecksConfig = Field(
        default_factory=ChecksConfig, description="Settings of mvsync check (preflight)."
    )
    key_sink: list[SinkArgument] | None = Field(
        None,
        min_length=1,
        description=(
            "A program and its arguments, run without a shell, that each new key is handed"
            " to on its stdin (no newline): a GitHub secret, Vault, a password store."
            " {name} {slug} {id} {environment} are filled in per application; ${} allowed."
        ),
    )
    key_sink_env: list[SinkEnvName] | None = Field(
        None,
        description=(
            "The variables the key sink may see besides PATH, HOME, LANG, LC_*, TMPDIR and"
            " MVSYNC_ENVIRONMENT/APP_NAME/APP_ID/APP_SLUG (its store's token, say); never"
            " a variable that holds a secret of mvsync's."
        ),
    )


class Defaults(BaseModel):
    """Fields merged under every application (the application and its override win)."""

    model_config = _STRICT

    answer_url: UrlTemplate | None = Field(None, description=_ANSWER_DOC)
    webhook_url: UrlTemplate | None = Field(None, description=_WEBHOOK_DOC)
    webhook_secret: SecretRef | None = Field(None, description=_SECRET_DOC)


class _NotNullFields(BaseModel):
    @field_validator("name", "answer_url", mode="before", check_fields=False)
    @classmethod
    def _not_null(cls, value: Any) -> Any:
        if value is None:
            raise custom_error("must be a string, got null")
        return value


class Override(_NotNullFields):
    """Fields of one application that differ in one environment."""

    model_config = _STRICT

    name: NameTemplate | None = Field(None, description=_NAME_DOC)
    answer_url: UrlTemplate | None = Field(None, description=_ANSWER_DOC)
    webhook_url: UrlTemplate | None = Field(None, description=_WEBHOOK_DOC)
    webhook_secret: SecretRef | None = Field(None, description=_SECRET_DOC)


class Application(_NotNullFields):
    """One MiniVoice application, created in every environment it lists."""

    model_config = _STRICT

    name: NameTemplate = Field(description=_NAME_DOC)
    answer_url: UrlTemplate | None = Field(
        None, description=_ANSWER_DOC + " Required here or in defaults."
    )
    webhook_url: UrlTemplate | None = Field(None, description=_WEBHOOK_DOC)
    webhook_secret: SecretRef | None = Field(None, description=_SECRET_DOC)
    environments: list[EnvName] | None = Field(
        None, description="The environments this application exists in (default: all)."
    )
    overrides: dict[EnvName, Override] = Field(
        default_factory=dict,
        description="Per environment, the fields that differ there.",
        json_schema_extra={"propertyNames": {"pattern": ENV_NAME_PATTERN}},
    )


class Manifest(BaseModel):
    """mvsync manifest: the MiniVoice applications of every environment."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True, title="mvsync manifest")

    version: Version = Field(description="Format version of this file; must be 1.")
    environments: dict[EnvName, EnvironmentConfig] = Field(
        description="The MiniVoice accounts, by name (lower case; the name becomes a file name).",
        json_schema_extra={"propertyNames": {"pattern": ENV_NAME_PATTERN}, "minProperties": 1},
    )
    recipients: list[Recipient] | None = Field(None, description=RECIPIENTS_DOC)
    defaults: Defaults = Field(
        default_factory=Defaults, description="Fields merged under every application."
    )
    applications: list[Application] = Field(
        default_factory=list, description="The applications, in any order."
    )

    _source: Path = PrivateAttr(default=Path("mvsync.yaml"))
    _text: str = PrivateAttr(default="")
    # The applications as resolve finds them where nothing is per environment (resolve.py).
    _shared_apps: list[Any] | None = PrivateAttr(default=None)

    @property
    def source(self) -> Path:
        """The file this manifest was read from."""
        return self._source

    @property
    def label(self) -> str:
        """The file name as given, for messages."""
        return str(self._source)


def json_schema() -> dict[str, Any]:
    """The manifest's JSON Schema (draft 2020-12), for editors and CI."""
    schema = Manifest.model_json_schema()
    schema["patternProperties"] = {
        "^x-": {"description": "Free for anchors (&name) to alias or merge elsewhere."}
    }
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        **schema,
    }
