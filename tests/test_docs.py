"""The documentation says what the code does: keys, links, commands."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from helpers import REPO_ROOT

DOCS = REPO_ROOT / "docs"
MANIFEST_DOC = DOCS / "manifest.md"
GUIDE = DOCS / "guide.md"
# A table row whose first cell is a `key` (or `a.b.key`): the reference tables' shape.
TABLE_KEY = re.compile(r"^\|\s*`([A-Za-z_][A-Za-z0-9_.<>\[\]-]*)`", re.MULTILINE)
LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")


def schema_property_names(node: Any) -> set[str]:
    """Every property name anywhere in a JSON Schema."""
    names: set[str] = set()
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "properties" and isinstance(value, dict):
                names.update(value)
            names |= schema_property_names(value)
    elif isinstance(node, list):
        for item in node:
            names |= schema_property_names(item)
    return names


def mvsync(*args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "mvsync", *args], capture_output=True, text=True, check=True
    )
    return done.stdout


def documented_keys() -> set[str]:
    assert MANIFEST_DOC.is_file(), f"{MANIFEST_DOC.relative_to(REPO_ROOT)} is missing"
    # The last dotted part is the key itself: `environments.<name>.api_url` -> api_url.
    return {match.split(".")[-1] for match in TABLE_KEY.findall(MANIFEST_DOC.read_text("utf-8"))}


def test_manifest_reference_documents_some_keys() -> None:
    assert {"version", "environments", "applications", "name", "answer_url"} <= documented_keys()


def test_every_key_of_the_manifest_reference_is_in_the_json_schema() -> None:
    keys = documented_keys()
    schema_keys = schema_property_names(json.loads(mvsync("schema")))
    assert sorted(keys - schema_keys) == []


def test_every_key_of_the_json_schema_is_in_the_manifest_reference() -> None:
    keys = documented_keys()
    schema_keys = schema_property_names(json.loads(mvsync("schema")))
    assert sorted(schema_keys - keys) == []


@pytest.mark.parametrize("page", ["guide.md", "../README.md"])
def test_every_relative_link_of_the_page_resolves(page: str) -> None:
    path = (DOCS / page).resolve()
    links = [link for link in LINK.findall(path.read_text("utf-8")) if "://" not in link]
    assert links, f"{page} links to no page"
    assert [link for link in links if not (path.parent / link).exists()] == []


def test_the_guide_covers_every_command() -> None:
    help_text = mvsync("--help")
    commands = re.findall(r"^  ([a-z]+)\s", help_text.split("Commands:")[1], re.MULTILINE)
    guide = GUIDE.read_text("utf-8")
    assert len(commands) >= 7
    assert [c for c in commands if f"mvsync {c}" not in guide] == []


def test_the_guide_documents_every_exit_status_the_cli_uses() -> None:
    guide = GUIDE.read_text("utf-8")
    assert all(f"| {status} |" in guide for status in (0, 1, 2, 130))


# Every page and recipe a user copies an install line from.
INSTALL_SOURCES = [
    REPO_ROOT / "README.md",
    *sorted(DOCS.glob("*.md")),
    *sorted((REPO_ROOT / "examples" / "ci").glob("*.yml")),
    REPO_ROOT / "action.yml",
]


def test_no_page_installs_mvsync_from_a_package_index() -> None:
    # mvsync is not published: `pip install mvsync` would fetch whatever holds the name.
    bare = re.compile(
        r"pip install\s+(?:-\S+\s+)*[\"']?mvsync(?!\s*@)(?:[=<>~!\s\"']|$)", re.MULTILINE
    )
    found = [p.name for p in INSTALL_SOURCES if bare.search(p.read_text("utf-8"))]
    assert found == []
    requirement = re.compile(r"MVSYNC_REQUIREMENT:\s*[\"']?mvsync[\"']?\s*$", re.MULTILINE)
    assert [p.name for p in INSTALL_SOURCES if requirement.search(p.read_text("utf-8"))] == []


def test_the_guide_installs_from_the_repository_pinned_to_a_commit() -> None:
    guide = GUIDE.read_text("utf-8")
    assert 'pip install "mvsync @ git+https://github.com/OWNER/mvsync@<commit-sha>"' in guide


def test_every_version_the_docs_print_is_the_package_version() -> None:
    from mvsync import __version__

    shown = {
        version
        for page in INSTALL_SOURCES
        for version in re.findall(r"mvsync (\d+\.\d+\.\d+\S*) \(commit ", page.read_text("utf-8"))
    }
    assert shown == {__version__}


# What users read: they have neither the project's specification nor its seed page.
USER_DOCS = sorted(
    [
        REPO_ROOT / "README.md",
        REPO_ROOT / "action.yml",
        *(p for p in DOCS.glob("*.md") if p.name != "ARCHITECTURE.md"),
        *(REPO_ROOT / "examples" / "ci").glob("*.yml"),
    ]
)


@pytest.mark.parametrize("path", USER_DOCS, ids=lambda p: p.name)
def test_user_docs_never_cite_the_spec_or_the_seed(path: Path) -> None:
    text = path.read_text("utf-8")
    assert re.findall(r"\bSPEC\b|\bseeds?\b|seeds/|seed's", text) == []


def test_the_readme_names_every_page_and_recipe() -> None:
    readme = (REPO_ROOT / "README.md").read_text("utf-8")
    documentation = readme.split("## Documentation")[1].split("\n## ")[0]
    pages = [f"docs/{p.name}" for p in DOCS.glob("*.md")]
    recipes = [f"examples/ci/{p.name}" for p in (REPO_ROOT / "examples" / "ci").glob("*.yml")]
    assert pages and recipes
    missing = [n for n in (*pages, *recipes, "action.yml") if f"]({n})" not in documentation]
    assert missing == []
