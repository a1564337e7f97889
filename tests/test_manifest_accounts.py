"""One account behind two environments is recognised after ${} expansion too."""

from __future__ import annotations

from pathlib import Path

import pytest

from mvsync.errors import ManifestError
from mvsync.manifest import load_manifest, resolve_environment

MANIFEST = """\
version: 1
environments:
  a:
    api_url: ${U1:-http://127.0.0.1:18787}
    api_key_env: KEY1
  b:
    api_url: http://127.0.0.1:18787
    api_key_env: KEY1
applications:
  - name: X
    answer_url: https://example.com/x
"""


@pytest.fixture
def manifest_path(tmp_path: Path) -> Path:
    path = tmp_path / "mvsync.yaml"
    path.write_text(MANIFEST)
    return path


@pytest.mark.parametrize("env", ["a", "b"])
def test_a_name_in_two_environments_that_expand_to_one_account_is_refused(
    manifest_path: Path, env: str
) -> None:
    manifest = load_manifest(manifest_path)
    with pytest.raises(ManifestError) as refused:
        resolve_environment(manifest, env, {}.get)
    (problem,) = refused.value.problems
    line = {"a": 3, "b": 6}[env]
    assert (problem.line, problem.column) == (line, 3)
    assert "expand to one account (http://127.0.0.1:18787, KEY1)" in problem.message
    assert "'X'" in problem.message


def test_environments_that_expand_to_two_accounts_may_share_names(manifest_path: Path) -> None:
    manifest = load_manifest(manifest_path)
    lookup = {"U1": "http://127.0.0.1:28787"}.get
    assert [app.name for app in resolve_environment(manifest, "b", lookup).apps] == ["X"]


def test_an_environment_whose_variables_are_unset_is_not_compared(tmp_path: Path) -> None:
    path = tmp_path / "mvsync.yaml"
    path.write_text(MANIFEST.replace("${U1:-http://127.0.0.1:18787}", "${U1}"))
    manifest = load_manifest(path)
    assert [app.name for app in resolve_environment(manifest, "b", {}.get).apps] == ["X"]
