"""``Satellite.new_key`` on an int-keyed topic (the app's Ctrl+N, ``outpost pub TOPIC - new``):
the first call reads the greatest key of the replica's events of the topic (one index scan);
later calls use the value ``write()`` keeps up to date.

    PYTHONPATH=. .venv/bin/python bench/new_key.py [EVENTS]    (default 1,000,000)
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

from core.model import Cmd, Event
from core.satellite.satellite import Satellite
from core.schema import parse_project

ITEM = "inv.item"
PROJECT = parse_project("""
[project]
name = "bench"

[inv.item]
key = "int"

[inv.item.fields]
name = "str"
""")
REV0 = 63931358000000  # a revision in 2026


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
    with tempfile.TemporaryDirectory() as tmp:
        sat = Satellite(Path(tmp) / "s", PROJECT)
        evs = [Event(k, REV0 + k // 1000, ITEM, str(k), Cmd.NEW, {"name": f"n{k}"})
               for k in range(1, n + 1)]
        for i in range(0, n, 50_000):
            chunk = evs[i:i + 50_000]
            sat.replica.apply(chunk[-1].rev, chunk)
        first, later = [], []
        key = ""
        for _ in range(5):
            sat._int_max.clear()  # as after opening the satellite
            t = time.perf_counter()
            key = sat.new_key(ITEM)
            first.append(time.perf_counter() - t)
        for _ in range(5):
            t = time.perf_counter()
            key = sat.new_key(ITEM)
            later.append(time.perf_counter() - t)
        sat.close()
    print(f"{n:,} events: new key {key}; first call (scan) median "
          f"{statistics.median(first) * 1e3:.1f} ms (min {min(first) * 1e3:.1f}), later calls "
          f"median {statistics.median(later) * 1e6:.1f} us")


if __name__ == "__main__":
    main()
