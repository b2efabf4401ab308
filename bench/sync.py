"""Satellite sync benchmark (issue: satellite, item 7); each figure beside its reference.

(a) catch-up: a fresh satellite catches up E events on R records from a real ``outpost-hub``
    (SQLite) — seconds, events/s, peak RSS of the satellite process — vs raw ``sqlite3``
    inserting the same event rows with latest-state upserts, batch for batch (target ≤ 3x).
(b) replay: T offline transactions (made offline, then the satellite restarts) pushed on
    reconnect until all are acknowledged — vs the SQL ledger publishing the same transactions
    directly, in the same batches of 1000 (``publish_many``), and one by one (target ≤ 2x).
    The satellite settles its heap as ``outpost sync`` does (``--default-gc``: it does not);
    the GC settings then stay for the reference in this process, as the hub has them.
(c) lag: publish on satellite A → the change visible in satellite B (B's change listener), both
    syncing live through the hub — p50/p99 (target p50 ≤ 20 ms, p99 ≤ 100 ms).

Prints figures; never fails on time. The satellites run with ``synchronous=FULL`` (default).

Usage::

    .venv/bin/python bench/sync.py                  # 100,000 events / 10,000 records, 2,000 tx
    .venv/bin/python bench/sync.py --full           # 1,000,000 / 100,000, 10,000 tx
    .venv/bin/python bench/sync.py --only a --events 300000 --records 30000
    .venv/bin/python bench/sync.py --only b --trans 10000 --rounds 5   # paired, medians
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import resource
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import orjson  # noqa: E402
from benchlib import start_hub, stop_hub  # noqa: E402

from core.heap import GC_YOUNG, settle_heap  # noqa: E402
from core.ledger.sql import SqlLedger  # noqa: E402
from core.model import Action, Cmd, Event, Trans  # noqa: E402
from core.revision import parse_rev  # noqa: E402
from core.schema import Project, load_project  # noqa: E402

SCHEMA = ROOT / "assets" / "demo-schema.toml"
TOP = "field.site"
LIM = 5000  # the satellite's default catch-up batch


def pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(len(xs) * p))] if xs else float("nan")


def events_for(n_events: int, n_records: int, start: int = 0, stop: int = -1) -> list[Event]:
    """Events ``start..stop`` of E events on R records: one ``new`` per record, then ``mod``s
    round robin; one revision per 10 events (a realistic mix of small transactions)."""
    rev0 = parse_rev("2026-01-01T00:00:00Z")
    out = []
    for i in range(start, n_events if stop < 0 else min(stop, n_events)):
        k = f"r{i % n_records:07d}"
        rev = rev0 + i // 10 + 1
        if i < n_records:
            out.append(Event(i + 1, rev, TOP, k, Cmd.NEW,
                             {"name": f"site {k}", "region": "north", "lat": 1.5, "lon": None,
                              "notes": None}))
        else:
            out.append(Event(i + 1, rev, TOP, k, Cmd.MOD, {"name": f"v{i}"}))
    return out


def peak_rss_mb() -> float:
    """This process's peak RSS (VmHWM: unlike ru_maxrss it is not inherited across exec)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# -- (a) catch-up ------------------------------------------------------------------------------

def build_hub_db(path: Path, project: Project, n_events: int, n_records: int) -> None:
    led = SqlLedger(f"sqlite:///{path}", project, synchronous="OFF")
    step = 50_000
    for i in range(0, n_events, step):
        chunk = events_for(n_events, n_records, i, i + step)
        led.replicate(chunk[-1].rev, chunk)
    led.close()


def child_catchup(url: str, data: str) -> None:
    """In a fresh process: connect a new satellite and catch up; print JSON figures."""
    from core.satellite.client import SyncClient
    from core.satellite.satellite import Satellite

    project = load_project(SCHEMA)
    sat = Satellite(Path(data), project)
    t0 = time.perf_counter()
    asyncio.run(SyncClient(sat, url, lim=LIM).sync_once(3600))
    secs = time.perf_counter() - t0
    n = len(sat.replica.read.states(TOP))
    rev = sat.rev()
    sat.close()
    print(json.dumps({"secs": secs, "records": n, "rev": rev,
                      "maxrss_mb": peak_rss_mb()}))


def child_raw(path: str, n_events: int, n_records: int) -> None:
    """Raw sqlite3: the same event rows and latest-state upserts, one commit per LIM events."""
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=FULL")
    db.execute("CREATE TABLE ev (id INTEGER PRIMARY KEY, rev INTEGER, top TEXT, key TEXT, "
               "cmd TEXT, arg TEXT)")
    db.execute("CREATE INDEX ev_rev ON ev (rev)")
    db.execute("CREATE TABLE st (key TEXT PRIMARY KEY, name TEXT, region TEXT, lat REAL, "
               "lon REAL, notes TEXT, rev INTEGER)")
    t0 = time.perf_counter()
    for i in range(0, n_events, LIM):
        chunk = events_for(n_events, n_records, i, i + LIM)  # made inside the timing, as
        db.execute("BEGIN")                                  # the satellite decodes them
        db.executemany("INSERT INTO ev VALUES (?,?,?,?,?,?)",
                       [(e.id, e.rev, e.top, e.key, e.cmd.value, orjson.dumps(e.arg).decode())
                        for e in chunk])
        for e in chunk:
            a = e.arg or {}
            if e.cmd == Cmd.NEW:
                db.execute("INSERT INTO st VALUES (?,?,?,?,?,?,?) ON CONFLICT(key) DO UPDATE "
                           "SET name=excluded.name, region=excluded.region, lat=excluded.lat, "
                           "lon=excluded.lon, notes=excluded.notes, rev=excluded.rev",
                           (e.key, a.get("name"), a.get("region"), a.get("lat"), a.get("lon"),
                            a.get("notes"), e.rev))
            else:
                db.execute("UPDATE st SET name=?, rev=? WHERE key=?", (a["name"], e.rev, e.key))
        db.execute("COMMIT")
    secs = time.perf_counter() - t0
    db.close()
    print(json.dumps({"secs": secs,
                      "maxrss_mb": peak_rss_mb()}))


def run_child(*args: str) -> dict[str, Any]:
    out = subprocess.run([sys.executable, __file__, *args], check=True, capture_output=True,
                         text=True, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def bench_catchup(tmp: Path, project: Project, n_events: int, n_records: int) -> None:
    print(f"\n(a) catch-up of {n_events:,} events on {n_records:,} records (batches of {LIM})")
    t0 = time.perf_counter()
    build_hub_db(tmp / "hub-a.db", project, n_events, n_records)
    print(f"    (hub ledger built in {time.perf_counter() - t0:.1f} s)")
    proc, url = start_hub(tmp / "hub-a.db")
    try:
        sat = run_child("_catchup", url, str(tmp / "sat-a"))
    finally:
        stop_hub(proc)
    assert sat["records"] == n_records, sat
    raw = run_child("_raw", str(tmp / "raw-a.db"), str(n_events), str(n_records))
    ratio = sat["secs"] / raw["secs"]
    print(f"    satellite  {sat['secs']:8.2f} s  {n_events / sat['secs']:10,.0f} events/s  "
          f"peak RSS {sat['maxrss_mb']:.0f} MB")
    print(f"    raw sqlite3{raw['secs']:8.2f} s  {n_events / raw['secs']:10,.0f} events/s  "
          f"peak RSS {raw['maxrss_mb']:.0f} MB")
    print(f"    ratio {ratio:.2f}x (target <= 3x): {'met' if ratio <= 3 else 'MISSED'}")


# -- (b) offline replay ------------------------------------------------------------------------

def offline_trans(n: int) -> list[list[Action]]:
    return [[Action(TOP, f"t{i:06d}", Cmd.NEW, {"name": f"offline {i}", "lat": 2.5})]
            for i in range(n)]


def proc_cpu(pid: int) -> float:
    """CPU seconds (user + system) a process used so far (Linux /proc; 0.0 elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _replay_once(tmp: Path, project: Project, made: Path, n: int,
                 r: int, settle: bool = True) -> tuple[float, float, float]:
    """One replay of the prepared offline queue (a copy of it) into a fresh hub process:
    wall seconds, and the CPU seconds of this (the satellite's) process and of the hub's."""
    from core.satellite.client import SyncClient
    from core.satellite.satellite import Satellite

    data = tmp / f"sat-b{r}"
    shutil.copytree(made, data)
    proc, url = start_hub(tmp / f"hub-b{r}.db")
    try:
        sat = Satellite(data, project)  # FULL, as in the field
        if settle:  # as `outpost sync` does once its queue is loaded (core.heap)
            settle_heap(GC_YOUNG)
        hub0, sat0 = proc_cpu(proc.pid), time.process_time()
        t0 = time.perf_counter()
        asyncio.run(SyncClient(sat, url).sync_once(3600))
        secs = time.perf_counter() - t0
        sat_cpu, hub_cpu = time.process_time() - sat0, proc_cpu(proc.pid) - hub0
        st = sat.status()
        sat.close()
    finally:
        stop_hub(proc)
    assert st.pending == 0 and st.conflicts == 0, st
    return secs, sat_cpu, hub_cpu


def _publish_many_once(tmp: Path, project: Project, acts: list[list[Action]], r: int) -> float:
    led = SqlLedger(f"sqlite:///{tmp / f'ref-b{r}.db'}", project)
    t0 = time.perf_counter()
    for i in range(0, len(acts), 1000):
        led.publish_many([(Trans(tuple(a), uid=f"u{i + j}"), "bench")
                          for j, a in enumerate(acts[i:i + 1000])])
    secs = time.perf_counter() - t0
    led.close()
    return secs


def bench_replay(tmp: Path, project: Project, n: int, rounds: int = 1,
                 settle: bool = True) -> None:
    from core.satellite.satellite import Satellite

    print(f"\n(b) {n:,} offline transactions replayed on reconnect until all acknowledged"
          + (f" ({rounds} paired rounds: replay, then publish_many)" if rounds > 1 else ""))
    acts = offline_trans(n)
    made = tmp / "sat-b-made"
    prep = Satellite(made, project, synchronous="OFF")  # making the edits is not measured
    t0 = time.perf_counter()
    for a in acts:
        prep.pub(a)
    make_secs = time.perf_counter() - t0
    prep.close()
    pairs = []
    cpus = []
    for r in range(rounds):
        secs, sat_cpu, hub_cpu = _replay_once(tmp, project, made, n, r, settle)
        ref_many = _publish_many_once(tmp, project, acts, r)
        pairs.append((secs, ref_many))
        cpus.append((sat_cpu, hub_cpu))
        print(f"    round {r + 1}: replay {secs:6.2f} s (CPU: satellite {sat_cpu:.2f} s, hub "
              f"{hub_cpu:.2f} s), publish_many {ref_many:5.2f} s, ratio {secs / ref_many:.2f}x"
              f"  (load {os.getloadavg()[0]:.1f})")
    led = SqlLedger(f"sqlite:///{tmp / 'ref-b-one.db'}", project)  # not a ref-b{r}.db
    m = min(n, 2000)
    t0 = time.perf_counter()
    for i, a in enumerate(acts[:m]):
        led.publish(Trans(tuple(a), uid=f"u{i}"), "bench")
    ref_one = (time.perf_counter() - t0) * n / m
    led.close()
    secs = sorted(p[0] for p in pairs)[len(pairs) // 2]
    ref_many = sorted(p[1] for p in pairs)[len(pairs) // 2]
    ratios = sorted(a / b for a, b in pairs)
    ratio = ratios[len(ratios) // 2]
    med = "median " if rounds > 1 else ""
    print(f"    (making them offline: {make_secs:.1f} s, {n / make_secs:,.0f}/s, "
          "synchronous=OFF)")
    print(f"    satellite replay        {secs:8.2f} s  {n / secs:8,.0f} tx/s"
          + ("   (medians)" if rounds > 1 else ""))
    print(f"    ledger publish_many/1000{ref_many:8.2f} s  {n / ref_many:8,.0f} tx/s   "
          f"{med}ratio {ratio:.2f}x" + (f" (range {ratios[0]:.2f}-{ratios[-1]:.2f})"
                                        if rounds > 1 else "")
          + f" (target <= 2x): {'met' if ratio <= 2 else 'MISSED'}")
    if rounds > 1:
        sc = sorted(c[0] for c in cpus)
        hc = sorted(c[1] for c in cpus)
        print(f"    CPU per replay (median, range): satellite {sc[len(sc) // 2]:.2f} s "
              f"({sc[0]:.2f}-{sc[-1]:.2f}), hub {hc[len(hc) // 2]:.2f} s "
              f"({hc[0]:.2f}-{hc[-1]:.2f})")
    print(f"    ledger publish 1 by 1   {ref_one:8.2f} s  {n / ref_one:8,.0f} tx/s   "
          f"ratio {secs / ref_one:.2f}x" + ("" if m == n else f" (extrapolated from {m:,})"))


# -- (c) lag A -> B ----------------------------------------------------------------------------

async def _lag(url: str, project: Project, tmp: Path, n: int) -> list[float]:
    from core.satellite.client import SyncClient
    from core.satellite.satellite import Satellite

    a = Satellite(tmp / "sat-ca", project)
    b = Satellite(tmp / "sat-cb", project)
    ca, cb = SyncClient(a, url), SyncClient(b, url)
    ta, tb = asyncio.create_task(ca.run()), asyncio.create_task(cb.run())
    seen: dict[str, float] = {}
    waiter: asyncio.Future[None] | None = None
    want = ""

    def on_b(change: Any) -> None:
        recs = getattr(change, "records", None) or {}
        if want and want in recs.get(TOP, ()) and want not in seen:
            seen[want] = time.perf_counter()
            if waiter is not None and not waiter.done():
                waiter.set_result(None)

    b.listen(on_b)
    lags: list[float] = []
    try:
        for _ in range(200):  # wait until both are live (bounded)
            if ca.machine.idle and cb.machine.idle:
                break
            await asyncio.sleep(0.05)
        for i in range(n):
            want = f"lag{i:05d}"
            waiter = asyncio.get_running_loop().create_future()
            t0 = time.perf_counter()
            a.pub([Action(TOP, want, Cmd.NEW, {"name": want})])
            await asyncio.wait_for(waiter, 10)
            lags.append((seen[want] - t0) * 1000)
            await asyncio.sleep(0.01)
    finally:
        ca.stop()
        cb.stop()
        await asyncio.gather(ta, tb)
        a.close()
        b.close()
    return lags


def bench_lag(tmp: Path, project: Project, n: int) -> None:
    print(f"\n(c) lag publish on A -> visible in B ({n} samples, both live, hub in a process)")
    proc, url = start_hub(tmp / "hub-c.db")
    try:
        lags = asyncio.run(_lag(url, project, tmp, n))
    finally:
        stop_hub(proc)
    p50, p99 = pct(lags, 0.5), pct(lags, 0.99)
    print(f"    p50 {p50:.1f} ms  p90 {pct(lags, 0.9):.1f} ms  p99 {p99:.1f} ms  "
          f"max {max(lags):.1f} ms  (targets p50 <= 20, p99 <= 100: "
          f"{'met' if p50 <= 20 and p99 <= 100 else 'MISSED'})")
    print("    includes A's durable local commit (WAL fsync) before anything is sent")


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "_catchup":
        child_catchup(sys.argv[2], sys.argv[3])
        return
    if len(sys.argv) > 1 and sys.argv[1] == "_raw":
        child_raw(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
        return
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else "")
    ap.add_argument("--full", action="store_true",
                    help="issue sizes: 1,000,000 events / 100,000 records, 10,000 tx")
    ap.add_argument("--events", type=int, default=0)
    ap.add_argument("--records", type=int, default=0)
    ap.add_argument("--trans", type=int, default=0)
    ap.add_argument("--lag-samples", type=int, default=200)
    ap.add_argument("--rounds", type=int, default=1,
                    help="(b): paired rounds of replay and publish_many; prints the medians")
    ap.add_argument("--only", choices=["a", "b", "c"], action="append")
    ap.add_argument("--default-gc", action="store_true",
                    help="(b): replay with Python's default garbage collector settings instead "
                    "of those `outpost sync` applies (core.heap.settle_heap)")
    args = ap.parse_args()
    n_ev = args.events or (1_000_000 if args.full else 100_000)
    n_rec = args.records or max(1, n_ev // 10)
    n_tx = args.trans or (10_000 if args.full else 2_000)
    only = set(args.only or ["a", "b", "c"])
    print(f"bench/sync.py on {platform.node()}: {platform.processor() or platform.machine()}, "
          f"{os.cpu_count()} CPUs, Python {platform.python_version()}, "
          f"SQLite {sqlite3.sqlite_version}")
    project = load_project(SCHEMA)
    tmp = Path(tempfile.mkdtemp(prefix="outpost-bench-sync-"))
    try:
        if "a" in only:
            bench_catchup(tmp, project, n_ev, n_rec)
        if "b" in only:
            bench_replay(tmp, project, n_tx, args.rounds, not args.default_gc)
        if "c" in only:
            bench_lag(tmp, project, args.lag_samples)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
