"""The manifest step: a YAML file in, a validated ``Manifest`` and per-environment
``DesiredEnvironment`` out. Imports run one way inside the package::

    interpolate  <-  fields  <-  schema  <-  problems  <-  checks  <-  load
                                                   ^------  resolve
                                                   ^------  secrets

``__init__`` re-exports the entry points; callers outside the package import from here.
"""

from __future__ import annotations

from mvsync.manifest.fields import API_URL_CREDENTIALS, is_absolute_http_url, url_has_credentials
from mvsync.manifest.load import environment_names, load_manifest, read_manifest
from mvsync.manifest.resolve import (
    is_loopback_environment,
    read_api_key,
    resolve_environment,
    resolve_ledger_place,
    unknown_environment,
)
from mvsync.manifest.schema import Application, Lookup, Manifest, json_schema
from mvsync.manifest.secrets import (
    describe_missing,
    expand_secret,
    missing_secret_variables,
    read_webhook_secrets,
)
from mvsync.manifest.sink import secret_values

__all__ = [
    "API_URL_CREDENTIALS",
    "Application",
    "Lookup",
    "Manifest",
    "describe_missing",
    "environment_names",
    "expand_secret",
    "is_absolute_http_url",
    "is_loopback_environment",
    "json_schema",
    "load_manifest",
    "missing_secret_variables",
    "read_api_key",
    "read_manifest",
    "read_webhook_secrets",
    "resolve_environment",
    "resolve_ledger_place",
    "secret_values",
    "unknown_environment",
    "url_has_credentials",
]
