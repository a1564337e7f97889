"""``mvsync apply`` as a real process against a hostile API on loopback (issue 9 items 3,
4, 6): two create answers carrying one id, an API that renames what it creates, a list
that lags behind creates. ``MVSYNC_CLI_SRC`` works as in tests/test_apply_faults.py.
"""

from __future__ import annotations

import json
import secrets
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from helpers import assert_no_secrets
from mvsync.store.keys import read_secrets
from test_apply_faults import apply, finish, launch, wait_for
from test_cli_apply import secrets_path, write_manifest


class Hostile(ThreadingHTTPServer):
    """A MiniVoice that commits every POST, with one of these faults: ``same_id`` (every
    answer carries the first id), ``rename`` (the API writes spaces as dashes),
    ``drop_first`` (the first answer never sent) and ``lagging`` (the list hides what was
    created until ``reveal`` is set)."""

    daemon_threads = True

    def __init__(self, *, same_id: bool = False, rename: bool = False) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.same_id = same_id
        self.rename = rename
        self.drop_first = False
        self.lagging = False
        self.reveal = threading.Event()
        self.apps: list[dict[str, Any]] = []
        self.keys: list[str] = []
        self.lists = 0  # list requests answered
        self.lock = threading.Lock()
        self.url = f"http://127.0.0.1:{self.server_address[1]}"

    def listed(self) -> list[dict[str, Any]]:
        with self.lock:
            self.lists += 1
            if self.lagging and not self.reveal.is_set():
                return []
            seen: dict[str, dict[str, Any]] = {}
            for app in self.apps:
                seen.setdefault(app["id"], app)  # a list never shows one id twice
            return list(seen.values())


class _Handler(BaseHTTPRequestHandler):
    server: Hostile

    def _send(self, status: int, body: Any) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        apps = self.server.listed()
        self._send(200, {"data": apps, "count": len(apps)})

    def do_POST(self) -> None:
        sent = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        server = self.server
        with server.lock:
            number = 1 if server.same_id else len(server.apps) + 1
            app = {
                "id": f"app_20260529T120000.{number:09d}",
                "customer_id": "cust_1",
                "name": sent["name"].replace(" ", "-") if server.rename else sent["name"],
                "answer_url": sent["answer_url"],
                "webhook_url": sent.get("webhook_url"),
                "created_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            }
            key = f"mv_live_HOSTILE_{secrets.token_hex(8)}"
            server.apps.append(app)
            server.keys.append(key)
            drop = server.drop_first and len(server.apps) == 1
        if drop:
            self.close_connection = True  # committed; the answer is lost
            return
        self._send(201, {**app, "api_key": key})

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def hostile() -> Iterator[Callable[..., Hostile]]:
    servers: list[Hostile] = []

    def serve(**faults: bool) -> Hostile:
        server = Hostile(**faults)
        threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
        servers.append(server)
        return server

    yield serve
    for server in servers:
        server.shutdown()
        server.server_close()


def entries(folder: Path) -> dict[str, tuple[str, str | None]]:
    loaded = read_secrets(secrets_path(folder))
    assert loaded is not None, "no secrets file"
    return {
        name: (entry.id, entry.api_key.get_secret_value() if entry.api_key else None)
        for name, entry in loaded.applications.items()
    }


# --- 3. two create answers carrying the same id ----------------------------------------


def test_two_create_answers_with_one_id_keep_both_keys(
    hostile: Callable[..., Hostile], tmp_path: Path
) -> None:
    server = hostile(same_id=True)
    write_manifest(tmp_path, server.url, count=2)
    done = apply(tmp_path, "--concurrency", "1")
    output = done.stdout + done.stderr
    assert_no_secrets(output, extra=server.keys)
    assert len(server.apps) == 2 and len(set(server.keys)) == 2
    stored = entries(tmp_path)
    # Both keys kept: the second under an unknown- marker, never dropped.
    assert sorted(key for _id, key in stored.values() if key) == sorted(server.keys), output
    ids = sorted(app_id for app_id, _key in stored.values())
    assert ids[0] == server.apps[0]["id"] and ids[1].startswith("unknown-"), ids
    assert "which another application already has" in output, output
    # The output never says both were created under that one id.
    assert output.count(f'created "App 1" ({server.apps[0]["id"]})') == 0
    assert done.returncode == 1, output  # the marker's application is never confirmed


# --- 6. a create answer whose name differs from the one sent ---------------------------


def test_a_renamed_create_is_stored_under_the_api_name_and_the_next_run_can_go_on(
    hostile: Callable[..., Hostile], tmp_path: Path
) -> None:
    server = hostile(rename=True)
    write_manifest(tmp_path, server.url, count=1)
    first = apply(tmp_path)
    output = first.stdout + first.stderr
    assert_no_secrets(output, extra=server.keys)
    assert first.returncode == 1, output
    assert '"App 0" was created as "App-0"' in first.stdout, output
    assert entries(tmp_path) == {"App-0": (server.apps[0]["id"], server.keys[0])}
    # The manifest fixed to the API's name: nothing to create, nothing refused.
    manifest = tmp_path / "mvsync.yaml"
    manifest.write_text(manifest.read_text().replace("name: App 0", "name: App-0"))
    second = apply(tmp_path)
    assert second.returncode == 0, second.stdout + second.stderr
    assert "Apply complete" in second.stdout and len(server.apps) == 1


# --- 4. a list that lags behind creates -------------------------------------------------


def test_a_create_in_doubt_is_never_sent_again_while_the_list_lags(
    hostile: Callable[..., Hostile], tmp_path: Path
) -> None:
    server = hostile()
    server.drop_first = True
    server.lagging = True
    write_manifest(tmp_path, server.url, count=1)

    # The answer is lost and the list lags: the run keeps listing within its lag window,
    # never POSTing again, until the list catches up and shows what was created.
    first = launch(tmp_path, "apply", "--env", "dev", "--yes", MVSYNC_LAG_WINDOW="60")
    wait_for(lambda: server.lists >= 4, "the apply listing again while in doubt", first)
    assert len(server.apps) == 1, "POSTed again within the lag window"
    server.reveal.set()  # the list catches up
    done = finish(first)
    output = done.stdout + done.stderr
    assert_no_secrets(output)
    assert done.returncode == 1, output
    assert [app["name"] for app in server.apps] == ["App 0"]  # never duplicated
    assert entries(tmp_path) == {"App 0": (server.apps[0]["id"], None)}
    assert "created, key not captured" in output, output
