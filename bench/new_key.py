"""``Satellite.new_key`` on an int-keyed topic (the app's Ctrl+N, ``outpost pub TOPIC - new``).

The replica keeps the greatest key of each int-keyed topic in ``sat_meta``, written in the
commit of the events that move it (``Replica.apply``); a replica made before it was kept
reads it once (one scan of the topic's index) and keeps it from then on.

Prints: the first call after opening the satellite (kept: no read of the events), the
one-time read of a replica made before (the scan, as every first call was until session 9),
later calls, and what keeping it costs a catch-up's writes (the same batches stored with and
without an int-keyed topic's keeping, alternating, medians).

    PYTHONPATH=. .venv/bin/python bench/new_key.py [EVENTS]    (default 1,000,000)
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

from core.model import Cmd, Event
from core.satellite.replica import INT_KEYS
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
REV0 = 63931358000000  # a revision in 2026 (each event a revision of its own: apply() skips
# events at or before the replica's revision, so a batch must not share one with the last)


def _events(n: int, rev0: int = REV0, id0: int = 0) -> list[Event]:
    return [Event(id0 + k, rev0 + k, ITEM, str(k), Cmd.NEW, {"name": f"n{k}"})
            for k in range(1, n + 1)]


def _write_cost(tmp: Path, n: int = 100_000, rounds: int = 5) -> None:
    """Storing ``n`` events in batches of 1,000 (the app's), with and without keeping."""
    kept, plain = [], []
    for r in range(rounds):
        for keep in ((True, False) if r % 2 == 0 else (False, True)):
            sat = Satellite(tmp / f"w{r}{keep}", PROJECT)
            if not keep:
                sat.replica._int_tops = frozenset()  # as before session 9
            evs = _events(n)
            t = time.process_time()
            for i in range(0, n, 1000):
                chunk = evs[i:i + 1000]
                sat.replica.apply(chunk[-1].rev, chunk)
            (kept if keep else plain).append(time.process_time() - t)
            sat.close()
    ratios = [k / p for k, p in zip(kept, plain, strict=True)]
    print(f"storing {n:,} events in batches of 1,000 (CPU): kept {statistics.median(kept):.2f} s,"
          f" without {statistics.median(plain):.2f} s, ratio median "
          f"{statistics.median(ratios):.3f} ({min(ratios):.3f}-{max(ratios):.3f}), {rounds} rounds")


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp) / "s"
        sat = Satellite(d, PROJECT)
        evs = _events(n)
        for i in range(0, n, 50_000):
            chunk = evs[i:i + 50_000]
            sat.replica.apply(chunk[-1].rev, chunk)
        sat.close()
        first, scan, later = [], [], []
        key = ""
        for _ in range(5):
            sat = Satellite(d, PROJECT)  # as the app opens it
            t = time.perf_counter()
            key = sat.new_key(ITEM)
            first.append(time.perf_counter() - t)
            for _ in range(5):
                t = time.perf_counter()
                key = sat.new_key(ITEM)
                later.append(time.perf_counter() - t)
            with sat.queue._conn(None) as conn:  # a replica made before session 9
                conn.exec_driver_sql("DELETE FROM sat_meta WHERE name = ?", (INT_KEYS,))
            sat.close()
            sat = Satellite(d, PROJECT)
            t = time.perf_counter()
            sat.new_key(ITEM)
            scan.append(time.perf_counter() - t)
            sat.close()
        print(f"{n:,} events: new key {key}; first call after opening (kept) median "
              f"{statistics.median(first) * 1e6:.1f} us (max {max(first) * 1e6:.1f}); once in a "
              f"replica made before session 9 (scan) median {statistics.median(scan) * 1e3:.1f}"
              f" ms (min {min(scan) * 1e3:.1f}); later calls median "
              f"{statistics.median(later) * 1e6:.1f} us")
        _write_cost(Path(tmp))


if __name__ == "__main__":
    main()
