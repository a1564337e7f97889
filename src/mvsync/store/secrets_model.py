"""The secrets file's data: its entries (a key, sealed or plain, or the fact it was never
captured; when the key sink took it; the keys it replaced) and the header comment."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, SecretStr, model_validator

from mvsync.sealing import is_armored
from mvsync.store.yamlquote import quote as _quote


class ReplacedKey(BaseModel):
    """A key ``keys add --replace`` replaced: sealed when the environment has recipients
    (without them only its dates are kept: the file would hold a second live key)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    sealed_api_key: str | None = None
    created_at: str | None = None
    replaced_at: str

    @model_validator(mode="after")
    def _armored(self) -> ReplacedKey:
        if self.sealed_api_key is not None and not is_armored(self.sealed_api_key):
            raise ValueError("'sealed_api_key' is not an age armored message")
        return self


class SecretEntry(BaseModel):
    """One application of the secrets file: its key, or the fact it was never captured."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str
    api_key: SecretStr | None = None
    sealed_api_key: str | None = None
    created_at: str | None = None
    key_captured: bool = True
    # When the key sink took this key (SPEC 5.5); None: not delivered (yet).
    delivered_at: str | None = None
    # The keys ``mvsync keys add --replace`` replaced, oldest first (SPEC 5.3).
    history: tuple[ReplacedKey, ...] = ()

    @model_validator(mode="after")
    def _key_or_not_captured(self) -> SecretEntry:
        held = (self.api_key is not None) + (self.sealed_api_key is not None)
        if held > 1:
            raise ValueError("has both 'api_key' and 'sealed_api_key'")
        if self.key_captured and not held:
            raise ValueError("has neither 'api_key', 'sealed_api_key' nor 'key_captured: false'")
        if not self.key_captured and held:
            raise ValueError("has a key and 'key_captured: false'")
        if self.sealed_api_key is not None and not is_armored(self.sealed_api_key):
            raise ValueError("'sealed_api_key' is not an age armored message")
        return self

    @property
    def state(self) -> str:
        """``plain``, ``sealed`` or ``not_captured`` (SPEC 5.3)."""
        if self.sealed_api_key is not None:
            return "sealed"
        return "plain" if self.api_key is not None else "not_captured"


class SecretsFile(BaseModel):
    """The whole file."""

    model_config = ConfigDict(extra="forbid")

    environment: str
    api_url: str
    applications: dict[str, SecretEntry] = {}


def header(environment: str, *, sealed_only: bool = False) -> str:
    """The comment that opens every secrets file."""
    if sealed_only:
        return (
            f"# mvsync keys for environment {_quote(environment)}, sealed with age: no plaintext"
            " key here (mvsync keys show, or age -d); it may be committed.\n"
        )
    return (
        f"# mvsync secrets for environment {_quote(environment)}: live MiniVoice API keys."
        " Do not commit.\n"
    )
