"""The manifest step: a YAML file in, a validated ``Manifest`` and per-environment
``DesiredEnvironment`` out. Imports run one way inside the package::

    interpolate  <-  schema  <-  problems  <-  checks  <-  load
                                                   ^------  resolve

``__init__`` re-exports the entry points; callers outside the package import from here.
"""

from __future__ import annotations

from mvsync.manifest.load import environment_names, load_manifest
from mvsync.manifest.resolve import (
    expand_secret,
    read_api_key,
    resolve_environment,
    resolve_ledger_place,
)
from mvsync.manifest.schema import (
    API_URL_CREDENTIALS,
    Application,
    Lookup,
    Manifest,
    is_absolute_http_url,
    json_schema,
    url_has_credentials,
)

__all__ = [
    "API_URL_CREDENTIALS",
    "Application",
    "Lookup",
    "Manifest",
    "environment_names",
    "expand_secret",
    "is_absolute_http_url",
    "json_schema",
    "load_manifest",
    "read_api_key",
    "resolve_environment",
    "resolve_ledger_place",
    "url_has_credentials",
]
