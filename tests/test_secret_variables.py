"""A variable that holds a secret may appear only where that secret goes: validate
refuses it anywhere else, located (file:line:column), naming what it holds."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

HEAD = """version: 1
environments:
  prod:
    api_url: https://api.minivoice.eu
    api_key_env: MINIVOICE_API_KEY_PROD
    state_url: ${MVSYNC_STATE_URL}
recipients: [age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p]
applications:
"""


def validate(tmp_path: Path, apps: str) -> subprocess.CompletedProcess[str]:
    manifest = tmp_path / "mvsync.yaml"
    manifest.write_text(HEAD + apps)
    return subprocess.run(
        [sys.executable, "-m", "mvsync", "-f", str(manifest), "validate"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize(
    ("apps", "line", "holds"),
    [
        # The production key inside a URL: every list would show it.
        (
            "  - name: Main IVR\n    answer_url: https://x.example/?k=${MINIVOICE_API_KEY_PROD}\n",
            10,
            "the API key",
        ),
        (
            "  - name: Main ${MINIVOICE_API_KEY_PROD}\n    answer_url: https://x.example/\n",
            9,
            "the API key",
        ),
        (
            "  - name: Main IVR\n    answer_url: https://x.example/\n"
            "    webhook_secret: ${MINIVOICE_API_KEY_PROD}\n",
            11,
            "the API key",
        ),
        (
            "  - name: Main IVR\n    answer_url: https://x.example/\n"
            "    webhook_url: https://x.example/${MVSYNC_AGE_IDENTITY}\n",
            11,
            "the age identity",
        ),
        (
            "  - name: Main IVR\n    answer_url: https://x.example/${MVSYNC_STATE_URL}\n",
            10,
            "the state_url",
        ),
        (
            "  - name: Main IVR\n    answer_url: https://x.example/\n"
            "    webhook_secret: ${MV_HOOK}\n"
            "  - name: Other\n    answer_url: https://x.example/${MV_HOOK}\n",
            13,
            "a webhook secret",
        ),
    ],
    ids=[
        "api-key-in-url",
        "api-key-in-name",
        "api-key-as-webhook-secret",
        "identity",
        "state-url",
        "webhook-secret-in-url",
    ],
)
def test_a_secret_variable_elsewhere_is_a_located_error(
    tmp_path: Path, apps: str, line: int, holds: str
) -> None:
    done = validate(tmp_path, apps)
    assert done.returncode == 1, done.stdout + done.stderr
    assert f"mvsync.yaml:{line}:" in done.stderr, done.stderr
    assert f"holds {holds}" in done.stderr, done.stderr
    assert "Traceback" not in done.stderr


def test_each_secret_in_its_own_place_is_valid(tmp_path: Path) -> None:
    done = validate(
        tmp_path,
        "  - name: Main IVR\n    answer_url: https://x.example/${ANSWER_HOST}\n"
        "    webhook_secret: ${MV_HOOK}\n"
        "  - name: Other\n    answer_url: https://x.example/b\n    webhook_secret: ${MV_HOOK}\n",
    )
    assert done.returncode == 0, done.stdout + done.stderr
