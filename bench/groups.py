"""Ledger benchmark: the hub's small group commits, µs per transaction, beside raw sqlite3.

The hub's writer thread calls ``SqlLedger.publish_many(items, now)`` with the transactions
that arrived during the previous commit: with 10 clients, groups of about 1-10 one-action
``new`` transactions. This benchmark publishes such groups (``--groups 1,5,10``; each
transaction one ``new`` of ``field.site`` with all five fields, a uid and the zero base, as
a satellite's first edit) into a fresh SQLite file and, in the same round, has raw
``sqlite3`` write the same rows (event, audit, uid and state row per transaction, in the
ledger's table layout) with the same commit per group: ``BEGIN IMMEDIATE``, one
``executemany`` per table, ``COMMIT``. Raw sqlite3 with groups of 1 is issue #4's
reference (one commit per transaction).

Two figures per group size, each over ``--rounds`` paired rounds (ours then raw, the order
alternating), medians with the range of the per-round ratios:

- ``cpu``: CPU µs per transaction of the publishing thread (``time.thread_time``) with
  ``synchronous=OFF`` (no fsync: the code's own cost; on a shared machine it still moves
  by up to 2x between runs, so read the per-round ratio; for a deterministic figure count
  instructions, as docs/benchmarks.md does: ``valgrind --tool=cachegrind --cache-sim=no``
  over a run that publishes, minus one that only builds the transactions);
- ``wall``: wall-clock µs per transaction with ``synchronous=FULL`` (one fsync per group).

The CPU rows also print how many SQL statements each side runs per commit (sqlite3's trace
callback: every run of a statement, each row of an ``executemany`` too): every one releases
the GIL for its step and takes it back, a hand-off to the hub's event loop.

``--profile N`` prints a cProfile of ours at group size N (synchronous=OFF) and exits.

``--count N`` publishes N transactions as ``bench/hub.py``'s rate clients send them (one
``new`` of ``field.site`` with a name only, no uid, 10 interleaved key streams) in groups of
the first ``--groups`` size, ``synchronous=OFF``, after building ``--n`` of them (at least N),
prints the thread CPU per transaction and exits; ``--count 0`` builds and publishes none.
For user-space instructions per transaction, the deterministic figure on a shared machine
(docs/benchmarks.md, "Hub: durable publish rate, session 6")::

    PYTHONHASHSEED=0 valgrind --tool=cachegrind --cache-sim=no --cachegrind-out-file=/dev/null \
        .venv/bin/python bench/groups.py --groups 4 --n 2000 --count 2000
    # minus the same with --count 0, divided by 2000

``--pages N`` prints which B-trees a commit of N transactions writes (WAL frames per commit,
by table or index, from the WAL file and SQLite's ``dbstat``), for ours and for raw sqlite3
writing the same rows, and exits. Its keys come from 10 interleaved streams as
``bench/hub.py``'s 10 clients send them (``rate0-<client>-<n>``): each commit's records land
on different leaf pages of the state table and of the event key index, as in the hub (in a
by-record ledger, made since session 10, of the topic's one B-tree ``sk_field_site``, which
holds both; raw sqlite3 keeps the older layout, with both indexes). The WAL's size per
commit is what its ``fdatasync`` writes.

Usage::

    .venv/bin/python bench/groups.py [--groups 1,5,10] [--n 600] [--rounds 5]
                                     [--mode cpu,wall] [--profile N] [--pages N]
                                     [--count N]

It prints figures; it never passes or fails on time.
"""

from __future__ import annotations

import argparse
import cProfile
import os
import platform
import pstats
import random
import sqlite3
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchlib import cpu_model  # noqa: E402

# the rows bench/ledger.py publishes: the same site records, the same demo schema
from ledger import PROJECT, TOP, arg_of  # noqa: E402

from core.ledger.sql import SqlLedger  # noqa: E402
from core.ledger.tables import dumps  # noqa: E402
from core.model import Action, Cmd, Trans  # noqa: E402
from core.revision import now_rev  # noqa: E402


def items_of(n: int, prefix: str = "g") -> list[tuple[Trans, str]]:
    return [(Trans((Action(TOP, f"{prefix}{t}", Cmd.NEW, arg_of(t)),), uid=str(uuid.uuid4())),
             "bench") for t in range(n)]


Clock = Callable[[], float]


STEPS = [0]
"""SQL statements run on the publishing connection (sqlite3's trace callback: every run of a
statement, each row of an ``executemany`` too); each one releases the GIL and takes it back."""


def count_step(_sql: str) -> None:
    STEPS[0] += 1


def ours(path: Path, items: list[tuple[Trans, str]], group: int, sync: str,
         clock: Clock) -> float:
    """Seconds (of ``clock``) to publish ``items`` ``group`` at a time."""
    led = SqlLedger(f"sqlite:///{path}", PROJECT, synchronous=sync)
    led.publish_many(items_of(1, "warm"))  # the first publish opens the publisher's connection
    led._pub.driver_connection.set_trace_callback(count_step)
    t0 = clock()
    for i in range(0, len(items), group):
        now = now_rev()  # as the hub: one clock reading per commit
        for res in led.publish_many(items[i:i + group], now):
            assert not isinstance(res, Exception), res
    dt = clock() - t0
    led.close()
    return dt


RAW_DDL = [
    "CREATE TABLE evt_event (id INTEGER PRIMARY KEY, rev BIGINT NOT NULL, top TEXT NOT NULL,"
    " key TEXT NOT NULL, cmd TEXT NOT NULL, arg TEXT)",
    "CREATE INDEX ix_evt_event_rev ON evt_event (rev)",
    "CREATE INDEX ix_evt_event_sig ON evt_event (top, key, rev)",
    "CREATE TABLE evt_audit (rev INTEGER PRIMARY KEY, created BIGINT, arrived BIGINT,"
    " usr TEXT, extra TEXT, uid TEXT)",
    "CREATE TABLE evt_uid (uid TEXT PRIMARY KEY, rev BIGINT NOT NULL) WITHOUT ROWID",
    "CREATE TABLE st (key TEXT PRIMARY KEY, name TEXT, region TEXT, lat REAL, lon REAL,"
    " notes TEXT, rev BIGINT NOT NULL) WITHOUT ROWID",
]
RAW_UPSERT = ("INSERT INTO st VALUES (?,?,?,?,?,?,?) ON CONFLICT(key) DO UPDATE SET "
              "name=excluded.name, region=excluded.region, lat=excluded.lat, lon=excluded.lon, "
              "notes=excluded.notes, rev=excluded.rev")


def raw_commit(db: sqlite3.Connection, chunk: list[tuple[Trans, str]], rev: list[int]) -> None:
    """One commit of ``chunk``'s rows (``rev[0]``: the last revision and event id, moved on)."""
    evs, auds, uids, sts = [], [], [], []
    for t, usr in chunk:
        rev[0] += 1
        r = rev[0]
        a = t.acts[0]
        arg = a.arg
        assert arg is not None
        evs.append((r, r, a.top, a.key, "new", dumps(arg)))
        auds.append((r, 0, r, usr, None, t.uid))
        if t.uid:
            uids.append((t.uid, r))
        sts.append((a.key, arg["name"], arg["region"], arg["lat"], arg["lon"],
                    arg["notes"], r))
    db.execute("BEGIN IMMEDIATE")
    db.executemany("INSERT INTO evt_event VALUES (?,?,?,?,?,?)", evs)
    db.executemany("INSERT INTO evt_audit VALUES (?,?,?,?,?,?)", auds)
    if uids:
        db.executemany("INSERT INTO evt_uid VALUES (?,?)", uids)
    db.executemany(RAW_UPSERT, sts)
    db.execute("COMMIT")


def raw(path: Path, items: list[tuple[Trans, str]], group: int, sync: str,
        clock: Clock, keep: list[sqlite3.Connection] | None = None) -> float:
    """Raw sqlite3 writing the same rows with the same commits (no reads, no rules);
    ``keep``: the connection is appended to it, open, instead of closed."""
    db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute(f"PRAGMA synchronous={sync}")
    for ddl in RAW_DDL:
        db.execute(ddl)
    db.set_trace_callback(count_step)
    rev = [0]
    t0 = clock()
    for i in range(0, len(items), group):
        raw_commit(db, items[i:i + group], rev)
    dt = clock() - t0
    if keep is None:
        db.close()
    else:
        db.set_trace_callback(None)
        keep.append(db)
    return dt


def med(xs: list[float]) -> float:
    return sorted(xs)[len(xs) // 2]


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def profile(tmp: Path, n: int, group: int) -> None:
    items = items_of(n)
    led = SqlLedger(f"sqlite:///{tmp / 'prof.db'}", PROJECT, synchronous="OFF")
    led.publish_many(items_of(1, "warm"))
    prof = cProfile.Profile(time.thread_time)
    prof.enable()
    for i in range(0, len(items), group):
        led.publish_many(items[i:i + group], now_rev())
    prof.disable()
    led.close()
    print(f"cProfile (thread CPU), {n} transactions in groups of {group}, synchronous=OFF, "
          f"load {load()}")
    st = pstats.Stats(prof)
    st.sort_stats("tottime").print_stats(30)
    st.sort_stats("cumulative").print_stats(25)


def hub_items(n: int, clients: int = 10, seed: int = 1) -> list[tuple[Trans, str]]:
    """``n`` transactions as bench/hub.py's clients send them: ``clients`` interleaved key
    streams, no uid (a daql client's publish)."""
    rng = random.Random(seed)
    counts = [0] * clients
    out = []
    for _ in range(n):
        i = rng.randrange(clients)
        key = f"rate0-{i}-{counts[i]}"
        counts[i] += 1
        out.append((Trans((Action(TOP, key, Cmd.NEW, arg_of(len(out))),)), "bench"))
    return out


def hub_rate_items(n: int, clients: int = 10) -> list[tuple[Trans, str]]:
    """``n`` transactions as bench/hub.py's rate clients send them: ``clients`` interleaved
    key streams, one ``new`` with a name only, no uid, the hub's user for auth none."""
    return [(Trans((Action(TOP, f"rate-{i % clients}-{i // clients}", Cmd.NEW,
                           {"name": f"bench rate-{i % clients}-{i // clients}"}),)),
             "anonymous") for i in range(n)]


def count(tmp: Path, n: int, build: int, group: int) -> None:
    """Publish ``n`` of ``build`` hub-shaped transactions ``group`` at a time (see --count)."""
    items = hub_rate_items(max(n, build))
    led = SqlLedger(f"sqlite:///{tmp / 'count.db'}", PROJECT, synchronous="OFF")
    led.publish_many(items_of(40, "warm"))
    t0 = time.thread_time()
    for i in range(0, n, group):
        for res in led.publish_many(items[i:i + group], now_rev()):
            assert not isinstance(res, Exception), res
    dt = time.thread_time() - t0
    led.close()
    if n:
        print(f"{n} hub-shaped transactions in groups of {group}, synchronous=OFF: "
              f"{dt / n * 1e6:.1f} µs thread CPU per transaction; load {load()}")


def wal_frames(path: Path, start: int) -> list[int]:
    """The page numbers of the WAL frames of ``path`` from byte ``start`` on."""
    size = 4096 + 24  # the ledger's page size (SQLite's default) plus the frame header
    with open(str(path) + "-wal", "rb") as f:
        f.seek(start)
        data = f.read()
    return [int.from_bytes(data[o:o + 4], "big") for o in range(0, len(data) - size + 1, size)]


def pages(tmp: Path, n: int, group: int, commits: int = 200) -> None:
    """Print the WAL frames per commit by B-tree, ours and raw (``--pages``)."""
    print(f"WAL frames per commit of {group} transactions, by B-tree, after {n} published "
          f"(synchronous=FULL, {commits} commits measured, checkpoints off while measuring)")
    warm, items = hub_items(n), hub_items(commits * group, seed=2)
    items = [(Trans((Action(TOP, "m" + t.acts[0].key, Cmd.NEW, t.acts[0].arg),)), u)
             for t, u in items]  # keys not in the warm-up's
    for side in ("ours", "raw"):
        path = tmp / f"pages-{side}.db"
        sink: list[sqlite3.Connection] = []
        led: SqlLedger | None = None
        rev = [n]
        if side == "ours":
            led = SqlLedger(f"sqlite:///{path}", PROJECT, synchronous="FULL")
            for i in range(0, n, group):
                led.publish_many(warm[i:i + group], now_rev())
            pub = led._pub.driver_connection
        else:
            raw(path, warm, group, "FULL", time.perf_counter, sink)
            pub = sink[0]
        pub.execute("PRAGMA wal_autocheckpoint=0")
        pub.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        by: dict[str, int] = {}
        names: dict[int, str] = {}
        look = sqlite3.connect(path)
        for c in range(commits):
            start = max(32, os.path.getsize(str(path) + "-wal"))
            chunk = items[c * group:(c + 1) * group]
            if led is not None:
                led.publish_many(chunk, now_rev())
            else:
                raw_commit(pub, chunk, rev)
            for pg in wal_frames(path, start):
                if pg not in names:
                    names = dict(look.execute("SELECT pageno, name FROM dbstat").fetchall())
                    names[1] = "page 1 (the database header)"
                name = names.get(pg, "?")
                by[name] = by.get(name, 0) + 1
        look.close()
        total = sum(by.values())
        print(f"  {'SqlLedger' if side == 'ours' else 'raw sqlite3, same rows'}: "
              f"{total / commits:.1f} frames per commit")
        for name, k in sorted(by.items(), key=lambda x: -x[1]):
            print(f"    {name:<32} {k / commits:5.2f}")
        if led is not None:
            led.close()
        else:
            pub.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--groups", default="1,5,10", help="group sizes, comma-separated")
    ap.add_argument("--n", type=int, default=600, help="transactions per run")
    ap.add_argument("--rounds", type=int, default=5, help="paired rounds per figure")
    ap.add_argument("--mode", default="cpu,wall", help="cpu, wall (comma-separated)")
    ap.add_argument("--profile", type=int, default=0, metavar="N",
                    help="print a cProfile of publish_many at group size N and exit")
    ap.add_argument("--pages", type=int, default=0, metavar="N",
                    help="print the WAL frames a commit of N transactions writes, by B-tree "
                    "(ours and raw), and exit")
    ap.add_argument("--count", type=int, default=-1, metavar="N",
                    help="publish N of --n hub-shaped transactions in groups of the first "
                    "--groups size and exit (0: build them only; for instruction counts)")
    a = ap.parse_args()
    groups = [int(g) for g in a.groups.split(",")]
    modes = [m.strip() for m in a.mode.split(",") if m.strip()]
    print(f"machine: {os.cpu_count()} CPUs, {cpu_model()}, Python {platform.python_version()}, "
          f"SQLite {sqlite3.sqlite_version}, load average {load()}")
    with tempfile.TemporaryDirectory(prefix="outpost-groups-") as d:
        tmp = Path(d)
        if a.profile:
            profile(tmp, a.n, a.profile)
            return
        if a.pages:
            pages(tmp, a.n, a.pages)
            return
        if a.count >= 0:
            count(tmp, a.count, a.n, groups[0])
            return
        print(f"{a.n} one-action transactions per run, {a.rounds} paired rounds; µs per "
              "transaction, medians; ratio = ours / raw per round")
        print()
        print(f"| {'figure':<36} | {'group':>5} | {'SqlLedger':>9} | {'raw sqlite3':>11} | "
              f"{'ratio':>6} | {'range':>11} | {'load':<14} |")
        print(f"|{'-' * 38}|{'-' * 7}|{'-' * 11}|{'-' * 13}|{'-' * 8}|{'-' * 13}|{'-' * 16}|")
        run_no = 0
        for mode in modes:
            sync = "FULL" if mode == "wall" else "OFF"
            clock: Clock = time.thread_time if mode == "cpu" else time.perf_counter
            label = {"cpu": "CPU µs/tx, synchronous=OFF",
                     "wall": "wall µs/tx, synchronous=FULL"}[mode]
            for g in groups:
                mine: list[float] = []
                ref: list[float] = []
                steps: dict[str, float] = {}
                for r in range(a.rounds):
                    items = items_of(a.n)
                    run_no += 1

                    for side in (("ours", "raw") if r % 2 == 0 else ("raw", "ours")):
                        fn = ours if side == "ours" else raw
                        path = tmp / f"{side}-{run_no}.db"
                        STEPS[0] = 0
                        dt = fn(path, items, g, sync, clock)
                        steps[side] = STEPS[0] / (a.n / g)
                        (mine if side == "ours" else ref).append(dt * 1e6 / a.n)
                ratios = [m / f for m, f in zip(mine, ref, strict=True)]
                print(f"| {label:<36} | {g:>5} | {med(mine):>9.1f} | {med(ref):>11.1f} | "
                      f"{med(ratios):>5.2f}x | {min(ratios):.2f}-{max(ratios):.2f}"
                      f"{'':>2} | {load():<14} |", flush=True)
                if steps and mode == "cpu":
                    print(f"|   (statements run per commit: SqlLedger {steps['ours']:.1f}, "
                          f"raw {steps['raw']:.1f})")


if __name__ == "__main__":
    main()
