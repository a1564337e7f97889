"""The plan's fast paths give what the slow, one-by-one paths give (issue 13).

Each fast path checks a whole batch at once and falls back to the careful path when
anything might be wrong; these tests hold the two to the same answers, errors included.
"""

from __future__ import annotations

import hashlib
import io
import json
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st
from ruamel.yaml.error import YAMLError
from ruamel.yaml.resolver import VersionedResolver

from mvsync import planner, yamlpos
from mvsync.api import bodies
from mvsync.api.redact import Redactor
from mvsync.api.responses import Call
from mvsync.errors import ApiResponseError
from mvsync.escape import UNSAFE
from mvsync.manifest import fields, interpolate, load_manifest, resolve_environment
from mvsync.manifest import resolve as resolve
from mvsync.manifest.fields import is_absolute_http_url
from mvsync.model import DesiredApp, DesiredEnvironment, RemoteApp
from mvsync.planner import Plan, build_plan
from mvsync.render import json_, plan_json, render_json


def _old_is_identifier(value: object) -> bool:
    """The definition before the fast path: no character for which str.isspace holds."""
    return (
        isinstance(value, str)
        and 0 < len(value) <= 256
        and value.isprintable()
        and not any(char.isspace() for char in value)
    )


def test_is_identifier_agrees_with_isspace_over_all_of_unicode() -> None:
    for code in range(sys.maxunicode + 1):
        text = f"a{chr(code)}b"
        assert bodies.is_identifier(text) == _old_is_identifier(text), hex(code)


def _call() -> Call:
    url = httpx.URL("http://127.0.0.1:1/v1/applications")
    return Call(method="GET", url=url, shown_url=str(url), secrets=Redactor("tok"))


def _app(index: int, **fields: Any) -> dict[str, Any]:
    app: dict[str, Any] = {
        "id": f"app_{index}",
        "customer_id": "cus_1",
        "name": f"App {index}",
        "answer_url": f"https://example.com/{index}",
        "webhook_url": None,
        "created_at": "2026-01-01T00:00:00Z",
    }
    app.update(fields)
    return app


HOSTILE: list[dict[str, Any]] = [
    {"id": ""},
    {"id": "a b"},
    {"id": "a\u2028b"},
    {"id": "x" * 257},
    {"id": "x" * 256},
    {"customer_id": "c\td"},
    {"created_at": "2026\u200f"},
    {"name": "lone \ud800"},
    {"webhook_url": "https://h/\udfff"},
    {"name": "Zürich ☎"},
    {"id": 7},
    {"name": None},
    {"id": "app_0"},
]


@pytest.mark.parametrize("fields", HOSTILE, ids=repr)
@pytest.mark.parametrize("at", [0, 3])
def test_parse_list_fast_and_one_by_one_agree(fields: dict[str, Any], at: int) -> None:
    data = [_app(index) for index in range(5)]
    data[at] = _app(at, **fields)
    payload = {"data": data, "count": len(data)}

    def outcome(parse: Any) -> Any:
        try:
            return ("apps", parse())
        except ApiResponseError as error:
            return ("error", str(error))

    fast = outcome(lambda: bodies.parse_list(payload, _call()))
    slow = outcome(lambda: bodies._checked_one_by_one(data, _call(), 200))
    assert fast == slow


def test_parse_list_of_no_application() -> None:
    assert bodies.parse_list({"data": [], "count": 0}, _call()) == []


def _old_render_json(plan: Plan, file: io.StringIO) -> None:
    """render_json before one encode per environment: one encode per change."""
    json_encode = json.JSONEncoder(ensure_ascii=False).encode

    def encode(value: object) -> str:
        return UNSAFE.sub(lambda m: f"\\u{ord(m.group()):04x}", json_encode(value))

    document = plan_json(plan)
    environments = document.pop("environments")
    assert isinstance(environments, list)
    file.write(f'{encode(document)[:-1]}, "environments": [')
    for index, env in enumerate(environments):
        changes = env.pop("changes")
        file.write(("," if index else "") + f'\n  {encode(env)[:-1]}, "changes": [')
        file.write(",".join(f"\n    {encode(change)}" for change in changes))
        file.write("\n  ]}" if changes else "]}")
    file.write("\n]}\n" if environments else "]}\n")


TRICKY_NAMES = [
    'a}, {"action": "create"',
    '}, {\\"action\\": ',
    "del\x7f",
    "line\u2028sep",
    "new\nline",
    "Zürich ☎",
    "rtl\u202e",
    "plain",
]


def _remote(index: int, name: str, answer_url: str) -> RemoteApp:
    return RemoteApp(
        id=f"app_{index}",
        customer_id="cus_1",
        name=name,
        answer_url=answer_url,
        created_at="2026-01-01T00:00:00Z",
    )


@pytest.mark.parametrize("environments", [0, 1, 2])
def test_render_json_is_the_per_change_rendering(environments: int) -> None:
    wanted = tuple(
        DesiredApp(name, f"https://example.com/{index}", "https://h/\x7f", "${SECRET}")
        for index, name in enumerate(TRICKY_NAMES)
    )
    remote = [_remote(i, name, "https://example.com/old") for i, name in enumerate(TRICKY_NAMES)]
    plans = []
    for number in range(environments):
        desired = DesiredEnvironment(
            name=f"env{number}",
            api_url="https://api.example.com",
            api_key_env="KEY",
            secrets_path=Path("s.yaml"),
            apps=wanted[number:],  # some creates, some drifts, unmanaged ones
        )
        plans.append(build_plan(desired, remote[: 2 + number * 3]))
    if environments:
        plans.append(build_plan(replace(desired, name="empty", apps=()), []))  # no change
    plan = Plan(tuple(plans))
    new, old = io.StringIO(), io.StringIO()
    render_json(plan, new)
    _old_render_json(plan, old)
    assert new.getvalue() == old.getvalue()
    assert json.loads(new.getvalue()) == json.loads(old.getvalue())


@pytest.mark.parametrize("creates", [1999, 2000, 2001, 4001])
def test_render_json_in_chunks_is_the_per_change_rendering(
    creates: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Changes are encoded a chunk at a time: the text is the same at every boundary
    (a chunk of 7 here, so that the boundaries fall among every kind of change)."""
    monkeypatch.setattr(json_, "_CHANGES_PER_WRITE", 7 if creates != 4001 else 2000)
    tricky = TRICKY_NAMES * (1 + creates // len(TRICKY_NAMES))
    wanted = tuple(
        DesiredApp(f"{name} {index}", f"https://example.com/{index}", "https://h/\x7f")
        for index, name in enumerate(tricky[:creates])
    )
    remote = [_remote(i, app.name, "https://example.com/old") for i, app in enumerate(wanted[:9])]
    desired = DesiredEnvironment(
        name="env",
        api_url="https://a.example",
        api_key_env="K",
        secrets_path=Path("s.yaml"),
        apps=wanted,
    )
    plan = Plan((build_plan(desired, remote), build_plan(replace(desired, name="b"), [])))
    new, old = io.StringIO(), io.StringIO()
    render_json(plan, new)
    _old_render_json(plan, old)
    assert new.getvalue() == old.getvalue()


def _slow_url_check(value: str) -> bool:
    """The long way of fields._check_url: a template that parses, and a literal value
    that is an absolute http(s) URL."""
    try:
        interpolate.parse(value)
    except interpolate.TemplateSyntaxError:
        return False
    if interpolate.has_variables(value):
        return True
    return is_absolute_http_url(interpolate.literal_value(value))


PLAIN_LOOKING = [
    "https://example.com",
    "http://a/",
    "https://a.b-c.d/x?y=1#z",
    "https://./",
    "https://-/",
    "https://h/$$",
    "https://h/${X}",
    "https://h:99999/",
    "https://h:443/",
    "https://u@h/",
    "https://[::1]/",
    "https://h/[x]",
    "HTTPS://h/",
    "https:///path",
    "https://h/a b",
    'https://h/"q"',
    "https://h/\x7f",
    "https://h\\x/",
    "https://h/~!*'();:@&=+,%20",
]


@pytest.mark.parametrize("url", PLAIN_LOOKING)
def test_plain_url_fast_path_accepts_only_what_the_long_way_accepts(url: str) -> None:
    if fields._PLAIN_URL.match(url):
        assert _slow_url_check(url)
    assert (fields._check_url(url) == url) if _slow_url_check(url) else True


@given(st.text(alphabet=st.characters(min_codepoint=0, max_codepoint=0x7F), max_size=30))
def test_plain_url_fast_path_is_a_subset(tail: str) -> None:
    for url in (f"https://{tail}", f"http://h{tail}", f"https://h/{tail}"):
        if fields._PLAIN_URL.match(url):
            assert _slow_url_check(url), url


MANIFEST = """\
version: 1
environments:
  dev: {api_url: "http://127.0.0.1:9", api_key_env: KEY_DEV}
  prod: {api_url: "http://127.0.0.1:9", api_key_env: KEY_PROD}
defaults:
  webhook_url: https://hooks.example.com/
  webhook_secret: ${HOOK_SECRET}
applications:
  - {name: Plain, answer_url: https://a.example.com/1}
  - {name: "Var ${SUFFIX:-x}", answer_url: https://a.example.com/2}
  - {name: Over, answer_url: https://a.example.com/3, overrides: {prod: {name: Over Prod}}}
  - {name: Only dev, answer_url: https://a.example.com/4, environments: [dev]}
  - {name: No hook, answer_url: "https://a.example.com/${PATH_PART:-p}", webhook_url: null}
  - {name: Own secret, answer_url: https://a.example.com/7, webhook_secret: null}
"""


def test_resolve_with_shared_apps_is_resolve_app_by_app(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "mvsync.yaml"
    path.write_text(MANIFEST)
    lookup = {"SUFFIX": "y"}.get

    def resolved() -> list[Any]:
        manifest = load_manifest(path)
        return [resolve_environment(manifest, env, lookup) for env in ("dev", "prod")]

    fast = resolved()
    shared = resolve._shared_apps(load_manifest(path))
    assert sum(found is not None for found in shared) == 4  # the test covers both paths
    monkeypatch.setattr(resolve, "_shared_apps", lambda manifest: [None] * 6)
    assert resolved() == fast


def _old_manifest_fingerprint(desired: DesiredEnvironment) -> str:
    apps = sorted(
        ([app.name, app.answer_url, app.webhook_url or None] for app in desired.apps),
        key=lambda row: (row[0], row[1], row[2] or ""),
    )
    return hashlib.sha256(
        planner._canonical({"api_url": desired.api_url, "apps": apps})
    ).hexdigest()


def _old_remote_fingerprint(remote: list[RemoteApp]) -> str:
    rows = [
        [app.id, app.customer_id, app.name, app.answer_url, app.webhook_url or None, app.created_at]
        for app in remote
    ]
    rows.sort(key=lambda row: (row[0], row[2], row[3], row[4] or "", row[5], row[1]))
    return hashlib.sha256(planner._canonical(rows)).hexdigest()


@pytest.mark.parametrize("twice", [False, True], ids=["unique", "repeated"])
def test_fingerprints_and_order_are_those_of_the_full_sort_keys(twice: bool) -> None:
    names = ["b", "a", "c", "a2"] + (["a", "b"] if twice else [])
    wanted = tuple(
        DesiredApp(name, f"https://e.com/{len(names) - i}", None if i % 2 else "https://h/")
        for i, name in enumerate(names)
    )
    desired = DesiredEnvironment("dev", "https://api.e.com", "K", Path("s"), wanted)
    ids = ["z", "y", "x", "w"] + (["y", "x"] if twice else [])
    remote = [_remote(i, names[i], "https://e.com/0") for i in range(len(ids))]
    remote = [r.model_copy(update={"id": ids[i]}) for i, r in enumerate(remote)]
    assert planner.manifest_fingerprint(desired) == _old_manifest_fingerprint(desired)
    assert planner.remote_fingerprint(remote) == _old_remote_fingerprint(remote)
    changes = build_plan(desired, remote).changes
    by_action = [[c for c in changes if c.action is action] for action in planner.ACTION_ORDER]
    for same in by_action:
        assert same == sorted(same, key=lambda c: (c.name, c.id or ",".join(c.ids)))
    assert [c for same in by_action for c in same] == list(changes)


YAML_DOCUMENTS = [
    "%YAML 1.1\n---\na: yes\nb: 010\nc: on\n",
    "%YAML 1.2\n---\n[1, 0o10, 0x1f, 1.5, .inf, -.NaN, null, ~, true, False, 2001-12-14]\n",
    "a: &x {k: 1_000, t: 2001-12-14t21:59:43.10-05:00}\nb: *x\nc: {<<: *x, k: 2}\n",
    "--- a\n--- [yes, No, '', \"\", !!str 1, !!int '7']\n",
    "? [complex, key]\n: value\nempty:\nspaces: '  '\n",
]


def _load_all(text: str, resolver: Any) -> list[Any]:
    loader = yamlpos._yaml(pure=False)
    loader.Resolver = resolver
    return list(loader.load_all(text))


@pytest.mark.parametrize(
    "text",
    YAML_DOCUMENTS
    + [
        path.read_bytes().decode("utf-8", "replace")
        for path in sorted(Path(__file__).parent.glob("fixtures/**/*.yaml"))
    ],
)
def test_the_c_resolver_resolves_as_ruamels_own(text: str) -> None:
    try:
        expected = _load_all(text, VersionedResolver)
    except YAMLError as error:
        with pytest.raises(type(error)):
            _load_all(text, yamlpos._CResolver)
        return
    assert _load_all(text, yamlpos._CResolver) == expected
