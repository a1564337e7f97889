"""Private and metadata addresses are refused before any request — shown end to end by
running ``mvsync check`` inside a network namespace of its own (``unshare --net``, as
root), where nothing could leave even if it tried.

Inside the namespace the refused addresses (169.254.169.254, fd00:ec2::254, 10.0.0.1,
100.100.100.200, 192.168.1.1) are put on its own loopback interface, each with a trap
listening on ports 80 and 443 that counts every connection. A control connection proves
each trap answers; then ``mvsync check`` runs, and no trap may see one more connection.
A bind-mounted ``/etc/hosts`` (``unshare --mount``) gives two public-looking names
addresses that must be refused: one resolving to 127.0.0.1, one to the metadata address.
Skipped where ``unshare`` is missing or not permitted.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

TRAPS = ["169.254.169.254", "fd00:ec2::254", "10.0.0.1", "100.100.100.200", "192.168.1.1"]
HOSTS = (
    "127.0.0.1 localhost\n127.0.0.1 internal.example.com\n169.254.169.254 metadata.example.com\n"
)

MANIFEST = {
    "version": 1,
    "environments": {"ci": {}},
    "defaults": {"webhook_secret": "${HOOK_SECRET}"},
    "applications": [
        {"name": "metadata", "answer_url": "https://169.254.169.254/latest/meta-data/"},
        {"name": "metadata v6", "answer_url": "https://[fd00:ec2::254]/latest/"},
        {"name": "mapped", "answer_url": "https://[::ffff:169.254.169.254]/latest/"},
        {"name": "nat64", "answer_url": "https://[64:ff9b::a9fe:a9fe]/latest/"},
        {
            "name": "private",
            "answer_url": "https://10.0.0.1/answer",
            "webhook_url": "https://192.168.1.1/hooks",
        },
        {"name": "shared", "answer_url": "https://100.100.100.200/answer"},
        {"name": "plain http", "answer_url": "http://10.0.0.1/answer"},
        {"name": "public name to loopback", "answer_url": "https://internal.example.com/answer"},
        {"name": "public name to metadata", "answer_url": "https://metadata.example.com/answer"},
    ],
}

DRIVER = textwrap.dedent(
    """
    import json, socket, subprocess, sys, threading
    traps, manifest = json.loads(sys.argv[1]), sys.argv[2]
    seen = {}
    lock = threading.Lock()
    def serve(listener, name):
        while True:
            conn, _ = listener.accept()
            with lock:
                seen[name] = seen.get(name, 0) + 1
            conn.close()
    for address in traps:
        for port in (80, 443):
            family = socket.AF_INET6 if ":" in address else socket.AF_INET
            listener = socket.socket(family)
            listener.bind((address, port))
            listener.listen(16)
            threading.Thread(target=serve, args=(listener, address), daemon=True).start()
    for address in traps:  # the control: each trap does answer inside this namespace
        socket.create_connection((address, 443), timeout=5).close()
    import time; time.sleep(0.2)
    with lock:
        control = dict(seen)
    done = subprocess.run(
        [sys.executable, "-m", "mvsync", "-f", manifest, "check", "--format", "json"],
        capture_output=True, text=True, timeout=60,
    )
    time.sleep(0.2)
    with lock:
        after = dict(seen)
    print(json.dumps({"control": control, "after": after, "rc": done.returncode,
                      "stdout": done.stdout, "stderr": done.stderr}))
    """
)


def _namespaces_work() -> bool:
    if shutil.which("unshare") is None or shutil.which("ip") is None or os.geteuid() != 0:
        return False
    probe = subprocess.run(["unshare", "--net", "--mount", "true"], capture_output=True, timeout=30)
    return probe.returncode == 0


pytestmark = pytest.mark.skipif(
    not _namespaces_work(), reason="needs root and unshare --net --mount"
)


def run_in_namespace(tmp_path: Path) -> dict[str, Any]:
    manifest = tmp_path / "mvsync.yaml"
    manifest.write_text(json.dumps(MANIFEST))
    hosts = tmp_path / "hosts"
    hosts.write_text(HOSTS)
    driver = tmp_path / "driver.py"
    driver.write_text(DRIVER)
    setup = ["ip link set lo up"] + [
        f"ip addr add {a}/{128 if ':' in a else 32} dev lo" for a in TRAPS
    ]
    script = " && ".join(
        [
            *setup,
            f"mount --bind {hosts} /etc/hosts",
            f"exec {sys.executable} {driver} '{json.dumps(TRAPS)}' {manifest}",
        ]
    )
    env = {**os.environ, "HOOK_SECRET": "whsec_bXZzeW5jLW5ldG5zLXRlc3Q="}
    done = subprocess.run(
        ["unshare", "--net", "--mount", "sh", "-c", script],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout)


def test_private_and_metadata_addresses_are_refused_and_receive_nothing(tmp_path: Path) -> None:
    found = run_in_namespace(tmp_path)
    assert found["control"] == {address: 1 for address in TRAPS}
    assert found["after"] == found["control"], "mvsync connected to a refused address"
    assert found["rc"] == 1
    document = json.loads(found["stdout"])
    reasons = {
        (r["application"], r["check"]): r["reason"]
        for env in document["environments"]
        for r in env["results"]
    }
    answer = {name: why for (name, check), why in reasons.items() if check == "answer_url"}
    assert answer["metadata"].startswith("refused: 169.254.169.254 is a link-local address")
    assert answer["metadata v6"].startswith("refused: fd00:ec2::254 is a link-local address")
    assert "link-local" in answer["mapped"] and "link-local" in answer["nat64"]
    assert answer["private"].startswith("refused: 10.0.0.1 is a private address")
    assert answer["shared"].startswith("refused: 100.100.100.200 is a shared")
    assert "plain http is checked only on a loopback host" in answer["plain http"]
    assert answer["public name to loopback"].startswith(
        "refused: internal.example.com resolves to 127.0.0.1, a loopback address"
    )
    assert answer["public name to metadata"].startswith(
        "refused: metadata.example.com resolves to 169.254.169.254"
    )
    assert "192.168.1.1 is a private address" in reasons[("private", "webhook_url")]
    assert document["summary"]["passed"] == 0


PIN_DRIVER = textwrap.dedent(
    """
    import asyncio, json, socket, threading
    import httpx
    from mvsync.check.addresses import Target
    from mvsync.check.transport import PinnedBackend, pinned_client
    listener = socket.socket()
    listener.bind(("127.0.0.2", 0))
    listener.listen(8)
    port = listener.getsockname()[1]
    hosts = []
    def serve():
        while True:
            conn, _ = listener.accept()
            head = b""
            while b"\\r\\n\\r\\n" not in head:
                head += conn.recv(4096)
            lines = head.decode().split("\\r\\n")
            hosts.append([line for line in lines if line.lower().startswith("host:")][0])
            conn.sendall(
                b"HTTP/1.1 200 OK\\r\\nContent-Length: 2\\r\\nConnection: close\\r\\n\\r\\n{}"
            )
            conn.close()
    threading.Thread(target=serve, daemon=True).start()
    async def main():
        backend = PinnedBackend()
        backend.pin(Target("pinned.example", port, ("127.0.0.2",)))
        out = {}
        async with pinned_client(backend) as client:
            out["pinned"] = (await client.get(f"http://pinned.example:{port}/x")).status_code
            for name, url in (("other host", f"http://other.example:{port}/x"),
                              ("other port", f"http://pinned.example:{port + 1}/x")):
                try:
                    await client.get(url)
                    out[name] = "connected"
                except httpx.ConnectError as error:
                    out[name] = str(error)
        out["hosts"] = hosts
        print(json.dumps(out))
    asyncio.run(main())
    """
)


def test_the_connection_goes_to_the_checked_address_and_only_there(tmp_path: Path) -> None:
    # pinned.example is looked up by no resolver: the pin alone takes the connection to
    # 127.0.0.2 (in a namespace with nothing but its loopback, a lookup would fail).
    driver = tmp_path / "pin.py"
    driver.write_text(PIN_DRIVER)
    done = subprocess.run(
        ["unshare", "--net", "sh", "-c", f"ip link set lo up && exec {sys.executable} {driver}"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    found = json.loads(done.stdout)
    assert found["pinned"] == 200
    assert len(found["hosts"]) == 1  # Host still names the URL's host, not the address
    assert found["hosts"][0].startswith("Host: pinned.example:")
    assert "was not cleared to connect to" in found["other host"]
    assert "was not cleared to connect to" in found["other port"]
