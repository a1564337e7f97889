#!/usr/bin/env python3
"""A key sink that writes the key it reads on stdin to a file, mode 0600.

    key_sink: [python3, examples/sinks/to-file.py, "delivered/{environment}/{slug}.key"]

mvsync runs it once per new key, the key on stdin with no newline. It writes the key
exactly as read to PATH (relative paths are from the manifest's folder, the sink's working
directory): its folder made 0700 if missing, a temporary file made 0600 and fsynced, then
renamed over PATH. Running it again for the same key overwrites the file with the same
content, so it is idempotent, as a sink must be (delivery is at least once). It prints
nothing that holds the key; it exits 1 on empty input or an error, 0 once the key is safe.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path


def deliver(target: Path, key: bytes) -> None:
    target.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    temporary = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, key)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(temporary, target)
    folder = os.open(target.parent, os.O_RDONLY)
    try:
        os.fsync(folder)
    finally:
        os.close(folder)


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: to-file.py PATH  (the key on stdin)", file=sys.stderr)
        return 1
    key = sys.stdin.buffer.read()
    if not key:
        print("to-file.py: nothing on stdin", file=sys.stderr)
        return 1
    try:
        deliver(Path(argv[0]), key)
    except OSError as error:
        print(f"to-file.py: {argv[0]}: {error.strerror}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
