"""Ledger benchmark: SqlLedger.publish beside raw drivers measured in the same run.

Rows (each beside its reference):

- SQLite, 100-action transactions (events/s) vs raw ``sqlite3`` inserting the same event rows,
  one audit row and the latest-state upserts in 100-row transactions, same ``synchronous``;
- SQLite, 1-action transactions (transactions/s) vs raw ``sqlite3`` one commit per row and vs
  the ``eventsourcing`` library's SQLite application recorder (WAL; its connections keep
  SQLite's default ``synchronous=FULL``, checked and printed: the same durability, one
  fsync per commit, same directory);
- SQLite, one-action transactions published ``--group`` at a time with ``publish_many`` (the
  hub's group commit: one durable commit per group) vs raw ``sqlite3`` one commit per
  transaction;
- PostgreSQL (when ``--pg URL`` or ``OUTPOST_TEST_PG_URL`` is given): the 100-action and
  1-action workloads vs raw ``psycopg`` ``executemany``, each run on a fresh database.

Every round runs each row's two sides back to back (alternating which goes first); the table
shows median rates and the median of the per-round ratios with their range, because the
shared disk's fsync time and the machine's load drift during a run.

Usage::

    .venv/bin/python bench/ledger.py [--n100 40] [--n1 300] [--group 10] [--sync FULL]
                                     [--rounds 5] [--pg URL] [--cpu] [--wal]

``--cpu --sync OFF`` measures the CPU each side spends per transaction in this process: on a
shared machine whose fsync time swings by 10x it is the stable figure for what the ledger's
own code costs (the wall-clock rows are what a user gets). ``--wal`` prints how many WAL
pages (and bytes) one 1-action commit appends on each side: every one is written and fsync'ed
by the commit.

It prints figures; it never passes or fails on time.
"""

from __future__ import annotations

import argparse
import os
import platform
import sqlite3
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchlib import cpu_model  # noqa: E402

from core.ledger.sql import SqlLedger  # noqa: E402
from core.ledger.tables import dumps  # noqa: E402
from core.model import Action, Cmd, Trans  # noqa: E402
from core.schema import load_project  # noqa: E402

PROJECT = load_project(ROOT / "assets" / "demo-schema.toml")
TOP = "field.site"


def arg_of(i: int) -> dict[str, object]:
    return {"name": f"site {i}", "region": "north", "lat": 46.5 + i * 1e-6, "lon": 7.25,
            "notes": "a short note"}


CLOCK: Callable[[], float] = time.perf_counter
"""Wall clock; ``--cpu`` switches to this process's CPU time (time.process_time)."""


def raw_rows(t: int, rev: int, per_tx: int, eid: int) -> tuple[list[tuple[Any, ...]],
                                                               list[tuple[Any, ...]]]:
    """The event and latest-state rows a raw reference writes for transaction ``t``."""
    evs, sts = [], []
    for j in range(per_tx):
        a = arg_of(j)
        evs.append((eid + j + 1, rev, TOP, f"k{t}-{j}", "new", dumps(a)))
        sts.append((f"k{t}-{j}", a["name"], a["region"], a["lat"], a["lon"], a["notes"], rev))
    return evs, sts


def timed(fn: Callable[[], None]) -> float:
    t0 = CLOCK()
    fn()
    return CLOCK() - t0


# -- SqlLedger ---------------------------------------------------------------------------------


def ledger_run(url: str, n_tx: int, per_tx: int, sync: str) -> float:
    led = SqlLedger(url, PROJECT, synchronous=sync)
    txs = [Trans(tuple(Action(TOP, f"k{t}-{j}", Cmd.NEW, arg_of(j)) for j in range(per_tx)),
                 uid=str(uuid.uuid4())) for t in range(n_tx)]

    def go() -> None:
        for tx in txs:
            led.publish(Trans(tx.acts, base=0, uid=tx.uid), "bench")

    dt = timed(go)
    led.close()
    return dt


def ledger_many_run(url: str, n_tx: int, group: int, sync: str) -> float:
    """``n_tx`` one-action transactions, ``group`` per ``publish_many`` (the hub's commit)."""
    led = SqlLedger(url, PROJECT, synchronous=sync)
    txs = [(Trans((Action(TOP, f"g{t}", Cmd.NEW, arg_of(t)),), uid=str(uuid.uuid4())), "bench")
           for t in range(n_tx)]

    def go() -> None:
        for i in range(0, n_tx, group):
            for res in led.publish_many(txs[i:i + group]):
                assert not isinstance(res, Exception), res

    dt = timed(go)
    led.close()
    return dt


# -- raw sqlite3 -------------------------------------------------------------------------------

RAW_DDL = [
    "CREATE TABLE ev (id INTEGER PRIMARY KEY, rev INTEGER NOT NULL, top TEXT NOT NULL,"
    " key TEXT NOT NULL, cmd TEXT NOT NULL, arg TEXT)",
    "CREATE INDEX ev_rev ON ev (rev)",
    "CREATE INDEX ev_sig ON ev (top, key, rev)",
    "CREATE TABLE au (rev INTEGER PRIMARY KEY, usr TEXT, uid TEXT)",
    "CREATE TABLE st (key TEXT PRIMARY KEY, name TEXT, region TEXT, lat REAL, lon REAL,"
    " notes TEXT, rev INTEGER NOT NULL)",
]
RAW_UPSERT = ("INSERT INTO st VALUES (?,?,?,?,?,?,?) ON CONFLICT(key) DO UPDATE SET "
              "name=excluded.name, region=excluded.region, lat=excluded.lat, lon=excluded.lon, "
              "notes=excluded.notes, rev=excluded.rev")


def raw_sqlite_run(path: Path, n_tx: int, per_tx: int, sync: str) -> float:
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute(f"PRAGMA synchronous={sync}")
    for ddl in RAW_DDL:
        db.execute(ddl)
    eid = 0

    def go() -> None:
        nonlocal eid
        for t in range(n_tx):
            rev = 1000 + t
            evs, sts = raw_rows(t, rev, per_tx, eid)
            eid += per_tx
            db.execute("BEGIN IMMEDIATE")
            db.executemany("INSERT INTO ev VALUES (?,?,?,?,?,?)", evs)
            db.execute("INSERT INTO au VALUES (?,?,?)", (rev, "bench", str(uuid.uuid4())))
            db.executemany(RAW_UPSERT, sts)
            db.execute("COMMIT")

    dt = timed(go)
    db.close()
    return dt


def eventsourcing_run(path: Path, n_tx: int) -> tuple[float, int]:
    from eventsourcing.persistence import StoredEvent
    from eventsourcing.sqlite import SQLiteApplicationRecorder, SQLiteDatastore

    ds = SQLiteDatastore(str(path))
    rec = SQLiteApplicationRecorder(ds)
    rec.create_table()
    with ds.transaction(commit=False) as curs:
        curs.execute("PRAGMA synchronous")
        sync = int(curs.fetchone()[0])
    evs = [StoredEvent(uuid.uuid4(), 1, "bench:Created", dumps(arg_of(i)).encode())
           for i in range(n_tx)]

    def go() -> None:
        for e in evs:
            rec.insert_events([e])

    dt = timed(go)
    ds.close()
    return dt, sync


# -- WAL written per commit ---------------------------------------------------------------------


def _wal_frames(db: Path) -> tuple[int, int]:
    """(frames in ``db``'s WAL file, page size): the WAL is a 32-byte header, then frames of a
    24-byte header and one page each. The file is never shrunk by a checkpoint (only reused),
    so the runs below stay under the 1,000-page auto-checkpoint."""
    wal = Path(str(db) + "-wal")
    with sqlite3.connect(db) as c:
        ps = int(c.execute("PRAGMA page_size").fetchone()[0])
    if not wal.exists():
        return 0, ps
    return max(0, wal.stat().st_size - 32) // (24 + ps), ps


def wal_per_commit(tmp: Path, n: int = 100, warm: int = 20) -> list[tuple[str, float, int]]:
    """WAL pages (and bytes) one 1-action commit appends: SqlLedger, raw sqlite3 and the
    eventsourcing recorder, each after ``warm`` commits into a fresh file in ``tmp``. Every
    page is written and fsync'ed by the commit (synchronous=FULL), and WAL pages are what a
    checkpoint later copies into the database file."""
    from eventsourcing.persistence import StoredEvent
    from eventsourcing.sqlite import SQLiteApplicationRecorder, SQLiteDatastore

    out: list[tuple[str, float, int]] = []

    def measure(name: str, db: Path, commit: Callable[[int], None]) -> None:
        for t in range(warm):
            commit(t)
        f0, ps = _wal_frames(db)
        for t in range(warm, warm + n):
            commit(t)
        f1, _ = _wal_frames(db)
        out.append((name, (f1 - f0) / n, round((f1 - f0) * (24 + ps) / n)))

    led = SqlLedger(f"sqlite:///{tmp / 'wal-l.db'}", PROJECT, synchronous="FULL")

    def ledger_commit(t: int) -> None:
        led.publish(Trans((Action(TOP, f"k{t}", Cmd.NEW, arg_of(t)),), uid=str(uuid.uuid4())),
                    "bench")

    measure("SqlLedger.publish", tmp / "wal-l.db", ledger_commit)
    led.close()

    db = sqlite3.connect(tmp / "wal-r.db", isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=FULL")
    for ddl in RAW_DDL:
        db.execute(ddl)

    def raw_commit(t: int) -> None:
        evs, sts = raw_rows(t, 1000 + t, 1, t)
        db.execute("BEGIN IMMEDIATE")
        db.executemany("INSERT INTO ev VALUES (?,?,?,?,?,?)", evs)
        db.execute("INSERT INTO au VALUES (?,?,?)", (1000 + t, "bench", str(uuid.uuid4())))
        db.executemany(RAW_UPSERT, sts)
        db.execute("COMMIT")

    measure("raw sqlite3", tmp / "wal-r.db", raw_commit)
    db.close()

    ds = SQLiteDatastore(str(tmp / "wal-e.db"))
    rec = SQLiteApplicationRecorder(ds)
    rec.create_table()
    def es_commit(t: int) -> None:
        rec.insert_events([StoredEvent(uuid.uuid4(), 1, "bench:Created",
                                       dumps(arg_of(t)).encode())])

    measure("eventsourcing recorder", tmp / "wal-e.db", es_commit)
    ds.close()
    return out


# -- raw psycopg -------------------------------------------------------------------------------


def raw_pg_run(url: str, n_tx: int, per_tx: int) -> float:
    import psycopg

    conn = psycopg.connect(url)
    with conn.cursor() as c:
        c.execute("DROP TABLE IF EXISTS bench_ev, bench_au, bench_st")
        c.execute("CREATE TABLE bench_ev (id BIGINT PRIMARY KEY, rev BIGINT NOT NULL, top TEXT,"
                  " key TEXT, cmd TEXT, arg TEXT)")
        c.execute("CREATE INDEX ON bench_ev (rev)")
        c.execute("CREATE INDEX ON bench_ev (top, key, rev)")
        c.execute("CREATE TABLE bench_au (rev BIGINT PRIMARY KEY, usr TEXT, uid TEXT)")
        c.execute("CREATE TABLE bench_st (key TEXT PRIMARY KEY, name TEXT, region TEXT,"
                  " lat DOUBLE PRECISION, lon DOUBLE PRECISION, notes TEXT, rev BIGINT)")
    conn.commit()
    upsert = ("INSERT INTO bench_st VALUES (%s,%s,%s,%s,%s,%s,%s) ON CONFLICT (key) DO UPDATE "
              "SET name=excluded.name, region=excluded.region, lat=excluded.lat, "
              "lon=excluded.lon, notes=excluded.notes, rev=excluded.rev")
    eid = 0

    def go() -> None:
        nonlocal eid
        for t in range(n_tx):
            rev = 1000 + t
            evs, sts = raw_rows(t, rev, per_tx, eid)
            eid += per_tx
            with conn.cursor() as c:
                c.executemany("INSERT INTO bench_ev VALUES (%s,%s,%s,%s,%s,%s)", evs)
                c.execute("INSERT INTO bench_au VALUES (%s,%s,%s)",
                          (rev, "bench", str(uuid.uuid4())))
                c.executemany(upsert, sts)
            conn.commit()

    dt = timed(go)
    with conn.cursor() as c:
        c.execute("DROP TABLE bench_ev, bench_au, bench_st")
    conn.commit()
    conn.close()
    return dt


def fresh_pg(url: str) -> tuple[str, Callable[[], None]]:
    import psycopg

    name = f"outpost_bench_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(url, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    base, _, _ = url.rpartition("/")
    db_url = f"{base}/{name}"

    def drop() -> None:
        with psycopg.connect(url, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    return db_url, drop


# -- main --------------------------------------------------------------------------------------


Row = tuple[str, str, Callable[[int], float], str, Callable[[int], float]]
"""(workload, unit, run ours in round i -> rate, reference name, run reference -> rate)."""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n100", type=int, default=40, help="100-action transactions per run")
    ap.add_argument("--n1", type=int, default=300, help="1-action transactions per run")
    ap.add_argument("--group", type=int, default=10,
                    help="transactions per publish_many commit in the group-commit row")
    ap.add_argument("--sync", default="FULL", help="SQLite synchronous setting (FULL)")
    ap.add_argument("--rounds", type=int, default=5,
                    help="rounds; in each, every row runs ours then its reference back to back")
    ap.add_argument("--pg", default=os.environ.get("OUTPOST_TEST_PG_URL", ""),
                    help="PostgreSQL URL (a scratch database is created and dropped)")
    ap.add_argument("--cpu", action="store_true",
                    help="rates per CPU-second of this process instead of per wall-clock "
                         "second (fsync waits and other jobs' load left out; use with "
                         "--sync OFF; PostgreSQL rows then leave out the server's work)")
    ap.add_argument("--wal", action="store_true",
                    help="only print the WAL pages and bytes one 1-action commit appends "
                         "(SqlLedger, raw sqlite3, eventsourcing) and exit")
    a = ap.parse_args()
    if a.wal:
        with tempfile.TemporaryDirectory(prefix="outpost-bench-") as d:
            print("WAL appended per 1-action commit (synchronous=FULL, after 20 commits, "
                  "mean of 100):")
            for name, pages, nbytes in wal_per_commit(Path(d)):
                print(f"  {name:<24} {pages:5.2f} pages  {nbytes:7,} bytes")
        return
    if a.cpu:
        global CLOCK
        CLOCK = time.process_time
    print(f"machine: {os.cpu_count()} CPUs, {cpu_model()}, Python {platform.python_version()}, "
          f"SQLite {sqlite3.sqlite_version}, synchronous={a.sync}, "
          f"{'CPU time of this process' if a.cpu else 'wall clock'}, "
          f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    r = max(1, a.rounds)
    ev100 = a.n100 * 100
    es_sync: list[int] = []

    with tempfile.TemporaryDirectory(prefix="outpost-bench-") as d:
        tmp = Path(d)

        def sq(name: str) -> str:
            return f"sqlite:///{tmp / name}"

        def es_rate(i: int) -> float:
            t, sync = eventsourcing_run(tmp / f"es-{i}.db", a.n1)
            es_sync.append(sync)
            return a.n1 / t

        rows: list[Row] = [
            ("SQLite 100-action tx", "events/s",
             lambda i: ev100 / ledger_run(sq(f"l100-{i}.db"), a.n100, 100, a.sync),
             "raw sqlite3",
             lambda i: ev100 / raw_sqlite_run(tmp / f"r100-{i}.db", a.n100, 100, a.sync)),
            ("SQLite 1-action tx", "tx/s",
             lambda i: a.n1 / ledger_run(sq(f"l1-{i}.db"), a.n1, 1, a.sync),
             "raw sqlite3",
             lambda i: a.n1 / raw_sqlite_run(tmp / f"r1-{i}.db", a.n1, 1, a.sync)),
            ("SQLite 1-action tx", "tx/s",
             lambda i: a.n1 / ledger_run(sq(f"le-{i}.db"), a.n1, 1, a.sync),
             "eventsourcing SQLite recorder", es_rate),
            (f"SQLite {a.group} tx per commit", "tx/s",
             lambda i: a.n1 / ledger_many_run(sq(f"lg-{i}.db"), a.n1, a.group, a.sync),
             "raw sqlite3, 1 commit per tx",
             lambda i: a.n1 / raw_sqlite_run(tmp / f"rg-{i}.db", a.n1, 1, a.sync)),
        ]
        if a.pg:
            def on_pg(fn: Callable[[str], float]) -> Callable[[int], float]:
                def run(_i: int) -> float:
                    db_url, drop = fresh_pg(a.pg)
                    try:
                        return fn(db_url)
                    finally:
                        drop()
                return run

            rows += [
                ("PostgreSQL 100-action tx", "events/s",
                 on_pg(lambda u: ev100 / ledger_run(u, a.n100, 100, a.sync)),
                 "raw psycopg executemany",
                 on_pg(lambda u: ev100 / raw_pg_run(u, a.n100, 100))),
                ("PostgreSQL 1-action tx", "tx/s",
                 on_pg(lambda u: a.n1 / ledger_run(u, a.n1, 1, a.sync)),
                 "raw psycopg executemany",
                 on_pg(lambda u: a.n1 / raw_pg_run(u, a.n1, 1))),
            ]
        else:
            print("(PostgreSQL rows skipped: give --pg URL or set OUTPOST_TEST_PG_URL)")
        # the disk's fsync time and the machine's load drift during a run: every round runs
        # each row's two sides back to back, and the ratio is the median of the per-round
        # ratios (paired), shown with its range
        ours: list[list[float]] = [[] for _ in rows]
        refs: list[list[float]] = [[] for _ in rows]
        for i in range(r):
            for k, (_n, _u, run_ours, _rn, run_ref) in enumerate(rows):
                if i % 2:  # alternate which side goes first
                    refs[k].append(run_ref(i))
                    ours[k].append(run_ours(i))
                else:
                    ours[k].append(run_ours(i))
                    refs[k].append(run_ref(i))

    def med(xs: list[float]) -> float:
        return sorted(xs)[len(xs) // 2]

    print(f"rounds: {r}; medians; eventsourcing connections: PRAGMA synchronous = "
          f"{sorted(set(es_sync))} (2 = FULL), journal_mode WAL, same directory")
    print()
    print(f"| {'workload':<26} | {'unit':<8} | {'SqlLedger':>10} | {'reference':<30} | "
          f"{'ref':>10} | {'ratio':>6} | {'ratio range':>12} |")
    print(f"|{'-' * 28}|{'-' * 10}|{'-' * 12}|{'-' * 32}|{'-' * 12}|{'-' * 8}|{'-' * 14}|")
    for k, (name, unit, _o, ref_name, _r) in enumerate(rows):
        ratios = [o / f for o, f in zip(ours[k], refs[k], strict=True)]
        rng = f"{min(ratios):.2f}-{max(ratios):.2f}"
        print(f"| {name:<26} | {unit:<8} | {med(ours[k]):>10,.0f} | {ref_name:<30} | "
              f"{med(refs[k]):>10,.0f} | {med(ratios):>5.2f}x | {rng:>12} |")


if __name__ == "__main__":
    main()
