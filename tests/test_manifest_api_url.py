"""``api_url`` checks belong to validate: plain http off loopback and a ``/v1`` path are
located errors of the manifest (the API client keeps its own refusal of plain http)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from mvsync.errors import ManifestError
from mvsync.manifest import load_manifest, resolve_environment

MANIFEST = """\
version: 1
environments:
  prod:
    api_url: {url}
    api_key_env: KEY_PROD
applications:
  - name: Support IVR
    answer_url: https://example.com/answer
"""
PLAIN_HTTP = (
    "plain http to api.minivoice.eu would send the API key unencrypted: use https "
    "(plain http is allowed only to a loopback host: localhost, 127.0.0.0/8, ::1)"
)


def write(tmp_path: Path, url: str) -> Path:
    path = tmp_path / "mvsync.yaml"
    path.write_text(MANIFEST.format(url=url), encoding="utf-8")
    return path


def problems_of(path: Path) -> list[str]:
    with pytest.raises(ManifestError) as raised:
        load_manifest(path)
    return [str(problem) for problem in raised.value.problems]


def test_plain_http_off_loopback_is_a_located_validate_error(tmp_path: Path) -> None:
    path = write(tmp_path, "http://api.minivoice.eu")
    assert problems_of(path) == [f"{path}:4:14: api_url: {PLAIN_HTTP}"]


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1:8787", "http://localhost:8787", "http://[::1]:8787/"]
)
def test_plain_http_to_loopback_is_accepted(tmp_path: Path, url: str) -> None:
    assert load_manifest(write(tmp_path, url)).environments["prod"].api_url == url


@pytest.mark.parametrize(
    ("url", "base"),
    [
        ("https://api.minivoice.eu/v1", "https://api.minivoice.eu"),
        ("https://api.minivoice.eu/v1/", "https://api.minivoice.eu"),
        ("https://proxy.example.com/minivoice/V1", "https://proxy.example.com/minivoice"),
    ],
)
def test_an_api_url_ending_in_v1_is_a_located_validate_error(
    tmp_path: Path, url: str, base: str
) -> None:
    path = write(tmp_path, url)
    assert problems_of(path) == [
        f"{path}:4:14: api_url: must be the API's base URL, without /v1 (mvsync adds "
        f"/v1/applications): write {base!r}"
    ]


def test_validate_reports_it_with_exit_1_and_one_located_line(tmp_path: Path) -> None:
    path = write(tmp_path, "http://api.minivoice.eu")
    done = subprocess.run(
        [sys.executable, "-m", "mvsync", "validate", "-f", str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 1
    assert done.stderr.count(f"{path}:4:14: api_url: {PLAIN_HTTP}") == 1


def test_an_api_url_that_expands_to_v1_is_a_located_plan_error(tmp_path: Path) -> None:
    path = write(tmp_path, "${MV_API_URL}")
    manifest = load_manifest(path)  # validate cannot know what the variable holds
    with pytest.raises(ManifestError) as raised:
        resolve_environment(manifest, "prod", {"MV_API_URL": "https://api.minivoice.eu/v1"}.get)
    assert str(raised.value) == (
        f"{path}:4:14: api_url: '${{MV_API_URL}}' expands to a URL that cannot be used in "
        "environment 'prod': must be the API's base URL, without /v1 (mvsync adds "
        "/v1/applications): write 'https://api.minivoice.eu'"
    )


def test_an_expanded_v1_url_never_shows_its_userinfo(tmp_path: Path) -> None:
    manifest = load_manifest(write(tmp_path, "${MV_API_URL}"))
    with pytest.raises(ManifestError) as raised:
        resolve_environment(
            manifest, "prod", {"MV_API_URL": "https://u:pw_CANARY@api.example.com/v1"}.get
        )
    assert "pw_CANARY" not in str(raised.value)
