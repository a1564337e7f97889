from __future__ import annotations

from mvsync.cli import main

if __name__ == "__main__":
    main()
