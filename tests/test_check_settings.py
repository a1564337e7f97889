"""The manifest's ``checks:`` settings: their defaults, their values, their errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from mvsync.check import CheckSettings, checks_of
from mvsync.errors import ManifestError, MvsyncError
from mvsync.manifest import load_manifest

BASE = """\
version: 1
environments:
  staging:
    api_key_env: KEY_STAGING
  prod:
    checks:
      answer_method: POST
      answer_timeout_ms: 250
      webhook_timeout_ms: 750
      webhook_signature: standard-webhooks
defaults:
  webhook_url: https://crm.example.com/hooks
  webhook_secret: ${HOOK}
applications:
  - name: IVR
    answer_url: https://example.com/answer
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "mvsync.yaml"
    path.write_text(text)
    return path


def test_defaults_and_values_are_read_per_environment(tmp_path: Path) -> None:
    manifest = load_manifest(write(tmp_path, BASE))
    found = dict(checks_of(manifest, [], {"HOOK": "s3cret"}.get))
    assert found["staging"][0].settings == CheckSettings("GET", 1000, 5000)
    assert found["prod"][0].settings == CheckSettings("POST", 250, 750)
    assert found["prod"][0].webhook_secret == "s3cret"
    assert "s3cret" not in repr(found["prod"][0])


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("answer_method: PUT", "7:22: answer_method: input should be 'GET' or 'POST'"),
        (
            "answer_timeout_ms: 0",
            "7:26: answer_timeout_ms: input should be greater than or equal to 1",
        ),
        ('webhook_timeout_ms: "5"', "7:27: webhook_timeout_ms: input should be a valid integer"),
        ("webhook_signature: hmac", "7:26: webhook_signature: input should be 'standard-webhooks'"),
        ("timeout: 5", "7:7: unknown key 'timeout'"),
    ],
)
def test_a_bad_setting_is_a_located_error(tmp_path: Path, line: str, message: str) -> None:
    text = BASE.replace(
        "      answer_method: POST\n      answer_timeout_ms: 250\n      webhook_timeout_ms: 750\n"
        "      webhook_signature: standard-webhooks\n",
        f"      {line}\n",
    )
    with pytest.raises(ManifestError) as invalid:
        load_manifest(write(tmp_path, text))
    assert any(str(p).endswith(message) for p in invalid.value.problems), invalid.value.problems


def test_an_unknown_environment_is_refused(tmp_path: Path) -> None:
    with pytest.raises(MvsyncError, match=r"unknown environment 'Prod'.*did you mean 'prod'"):
        checks_of(load_manifest(write(tmp_path, BASE)), ["Prod"], {"HOOK": "x"}.get)
