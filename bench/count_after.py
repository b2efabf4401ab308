"""``Ledger.count_after`` (session 9): a catch-up's first reply says how many events follow
its revision (``total_max``). How long the count takes on a big ledger, beside an exact
``SELECT count(*) ... WHERE rev > ?`` (the reference: what counting the rows would cost),
on both SQLite layouts and, given ``OUTPOST_BENCH_PG_URL``, on PostgreSQL. Session 10: the
count of some topics (``count_after(rev, tops)``, a catch-up that leaves a topic out), which
counts the events after ``rev``: here every event is of the topic asked (its worst case).

    PYTHONPATH=. .venv/bin/python bench/count_after.py [EVENTS]    (default 1,000,000)
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import create_engine, text  # noqa: E402
from sync import SCHEMA, TOP, events_for  # noqa: E402

from core.ledger.sql import SqlLedger  # noqa: E402
from core.ledger.tables import REV_INDEX  # noqa: E402
from core.schema import load_project  # noqa: E402

ROUNDS = 7


def best(fn: Callable[[], object], n: int = ROUNDS) -> tuple[float, float]:
    """Best and median of ``n`` timed calls, in milliseconds."""
    xs = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        xs.append((time.perf_counter() - t) * 1000)
    return min(xs), statistics.median(xs)


def fill(url: str, n: int) -> SqlLedger:
    project = load_project(SCHEMA)
    led = SqlLedger(url, project, synchronous="OFF") if url.startswith("sqlite") \
        else SqlLedger(url, project)
    for i in range(0, n, 50_000):
        chunk = events_for(n, n // 10, i, i + 50_000)
        led.replicate(chunk[-1].rev, chunk)
    return led


def measure(name: str, led: SqlLedger, n: int) -> None:
    eng = led.engine
    first = led.events(0, None, 1)[0].rev
    revs = [first] + [first + n // 10 * f // 100 for f in (50, 99)]
    for rev in revs:
        want = n - (rev - revs[0] + 1) * 10
        got = led.count_after(rev)
        with eng.connect() as c:
            exact = c.execute(text("SELECT count(*) FROM evt_event WHERE rev > :r"),
                              {"r": rev}).scalar()
        assert got == exact == want, (got, exact, want)
        ours = best(lambda r=rev: led.count_after(r))

        def count(r: int = rev) -> None:
            with eng.connect() as c:
                c.execute(text("SELECT count(*) FROM evt_event WHERE rev > :r"),
                          {"r": r}).scalar()
        ref = best(count, 3)
        assert led.count_after(rev, [TOP]) == want
        some = best(lambda r=rev: led.count_after(r, [TOP]), 3)
        print(f"  {name:10s} {want:>10,} after: count_after {ours[0]:8.3f} ms (median "
              f"{ours[1]:.3f})   of {TOP} only {some[0]:8.1f} ms (median {some[1]:.1f})   "
              f"count(*) {ref[0]:9.1f} ms (median {ref[1]:.1f})", flush=True)


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
    print(f"count_after on {n:,} events; load {os.getloadavg()[0]:.1f}", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        led = fill(f"sqlite:///{Path(tmp) / 'by-id.db'}", n)
        measure("by-id", led, n)
        led.close()
        url = f"sqlite:///{Path(tmp) / 'rev.db'}"
        led = fill(url, n)
        led.close()
        eng = create_engine(url)  # the layout of ledgers made before session 8
        with eng.begin() as c:
            c.execute(text(f"CREATE INDEX {REV_INDEX} ON evt_event (rev)"))
        eng.dispose()
        led = SqlLedger(url, load_project(SCHEMA))
        assert led.layout == "rev-index"
        measure("rev-index", led, n)
        led.close()
    pg = os.environ.get("OUTPOST_BENCH_PG_URL")
    if pg:
        led = fill(pg, n)
        measure("postgresql", led, n)
        led.close()
    print(f"load {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
