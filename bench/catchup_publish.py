"""Publish latency beside a big catch-up of large values: do a reader's catch-up reads delay
other users' publishes?

A real ``outpost-hub serve`` process on a SQLite ledger of ``--records`` records of
``field.site``, each with a ``--kb`` KB name, one per revision. A reader subscribes from the
zero rev (``evt.sub``: its catch-up is read batch by batch, about one frame a batch); meanwhile
a publisher, in a process of its own, sends small ``evt.pub`` one after the other every
``--every`` ms, each waiting for its ack, until the catch-up is done. Printed per run: the
catch-up's time, the publishes' ack round trips (p50, p90, max). ``--ref DIR`` runs each
round against a reference checkout too (e.g. ``git archive main core hubserver | tar -x -C
DIR``), alternating which goes first, and prints medians. Never passes or fails on time::

    .venv/bin/python bench/catchup_publish.py [--records 300] [--kb 400] [--rounds 3] [--ref DIR]
        [--pg postgresql://...]   # the ledger in PostgreSQL (a database copied per run)
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson
from benchlib import cpu_model, start_hub, stop_hub
from websockets.asyncio.client import connect

ROOT = Path(__file__).resolve().parents[1]
ZERO = "0001-01-01T00:00:00Z"
sys.path.insert(0, str(ROOT))


def load() -> str:
    return "load {:.2f} {:.2f} {:.2f}".format(*os.getloadavg())


def build(url: str, n: int, kb: int) -> None:
    """A ledger of ``n`` records of field.site with a ``kb`` KB name, one per revision."""
    from core.ledger.sql import SqlLedger
    from core.model import Cmd, Event
    from core.revision import parse_rev
    from core.schema import load_project

    led = SqlLedger(url, load_project(ROOT / "assets" / "demo-schema.toml"))
    base = parse_rev("2026-01-01T00:00:00Z")
    for lo in range(0, n, 20):
        evs = [Event(i + 1, base + i, "field.site", f"s{i:07d}", Cmd.NEW,
                     {"name": chr(97 + i % 26) * (kb * 1000), "lat": float(i % 90)})
               for i in range(lo, min(n, lo + 20))]
        led.replicate(evs[-1].rev, evs)
    led.close()


async def publisher_main(url: str, every_ms: float) -> None:
    """The publisher, a process of its own: ``evt.pub`` of a small new record, each waiting
    for its ack, one every ``every_ms``, until stdin has a line; prints ``[[start, ms]...]``."""
    out: list[tuple[float, float]] = []
    loop = asyncio.get_running_loop()
    stop = loop.run_in_executor(None, sys.stdin.readline)
    async with connect(url) as ws:
        print("ready", flush=True)
        i = 0
        while not stop.done():
            i += 1
            t = time.monotonic()
            await ws.send(f"evt.pub#{i}\n" + orjson.dumps({"acts": [{
                "top": "field.site", "key": f"p{os.getpid()}-{i}", "cmd": "new",
                "arg": {"name": f"probe {i}"}}]}).decode())
            while True:
                text = await ws.recv()
                assert isinstance(text, str)
                if text.startswith(f"evt.pub#{i}\n"):
                    break
            ms = (time.monotonic() - t) * 1000
            out.append((t, ms))
            await asyncio.sleep(max(0.0, every_ms / 1000 - ms / 1000))
    print(orjson.dumps(out).decode(), flush=True)


async def one(url: str, n: int, every_ms: float) -> dict[str, Any]:
    pr = subprocess.Popen([sys.executable, __file__, "--publisher", url, "--every",
                           str(every_ms)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                          text=True)
    assert pr.stdin is not None and pr.stdout is not None
    assert pr.stdout.readline().strip() == "ready"
    async with connect(url, max_size=None) as c:
        await asyncio.sleep(0.5)
        m0 = time.monotonic()
        await c.send("evt.sub#1\n" + orjson.dumps({"rev": ZERO, "tops": ["field.site"]}).decode())
        got = 0
        while got < n:
            text = await asyncio.wait_for(c.recv(), 600)
            assert isinstance(text, str)
            head, _, body = text.partition("\n")
            obj = orjson.loads(body)
            if head == "evt.sub#1":
                obj = obj.get("res")
            if isinstance(obj, dict):
                got += sum(1 for e in obj.get("evs") or () if e["key"].startswith("s"))
        m1 = time.monotonic()
    out, _ = pr.communicate("stop\n", timeout=60)
    during = sorted(ms for t, ms in orjson.loads(out) if m0 <= t + ms / 1000 and t <= m1)
    during = during or [0.0]
    return {"total": (m1 - m0) * 1000, "p50": statistics.median(during),
            "p90": during[min(len(during) - 1, int(len(during) * 0.9))], "max": during[-1],
            "n": len(during)}


def _pg_db(url: str, db: str) -> str:
    base, _, tail = url.rpartition("/")
    return f"{base}/{db}" + ("?" + tail.split("?", 1)[1] if "?" in tail else "")


async def run(n: int, kb: int, rounds: int, ref: Path | None, every_ms: float,
              pg: str | None = None) -> None:
    print(f"{os.cpu_count()} CPUs {cpu_model()}; {load()}")
    db = Path(tempfile.gettempdir()) / f"outpost-bench-catchup-publish-{n}-{kb}.db"
    admin: Any = None
    if pg:  # a template database, copied per run
        import psycopg

        admin = psycopg.connect(pg, autocommit=True)
        base = f"outpost_bench_cp_{n}_{kb}"
        if not admin.execute("SELECT 1 FROM pg_database WHERE datname = %s",
                             (base,)).fetchone():
            admin.execute(f'CREATE DATABASE "{base}"')
            build(_pg_db(pg, base), n, kb)
            print(f"built PostgreSQL database {base} ({n} records of {kb} KB)")
    elif not db.exists():
        build(f"sqlite:///{db}", n, kb)
        print(f"built {db} ({n} records of {kb} KB)")
    sides = [("ours", ROOT)] + ([("ref", ref)] if ref is not None else [])
    res: dict[str, list[dict[str, Any]]] = {}
    for r in range(rounds):
        for name, root in (sides if r % 2 == 0 else sides[::-1]):
            # a copy per run: the probes' publishes do not grow the next run's ledger
            run_db: Any = db.with_suffix(f".{name}.db")
            if admin is not None:
                run_name = f"outpost_bench_cp_run_{name}"
                admin.execute(f'DROP DATABASE IF EXISTS "{run_name}" WITH (FORCE)')
                admin.execute(f'CREATE DATABASE "{run_name}" TEMPLATE "{base}"')
                run_db = _pg_db(pg or "", run_name)
            else:
                subprocess.run(["cp", str(db), str(run_db)], check=True)
            proc, url = start_hub(run_db, "--rate", "1000000", "--burst", "1000000", root=root)
            try:
                x = await one(url, n, every_ms)
            finally:
                stop_hub(proc)
                if admin is not None:
                    admin.execute(f'DROP DATABASE IF EXISTS "{run_name}" WITH (FORCE)')
                else:
                    for suffix in ("", "-wal", "-shm", ".hub-lock"):
                        Path(str(run_db) + suffix).unlink(missing_ok=True)
            res.setdefault(name, []).append(x)
            print(f"round {r + 1} {name:4}: catch-up {x['total']:7.0f} ms; publishes "
                  f"p50 {x['p50']:6.1f} p90 {x['p90']:6.1f} max {x['max']:7.1f} ms "
                  f"({x['n']}); {load()}", flush=True)
    print("medians:")
    for name, xs in res.items():
        def med(k: str, xs: list[dict[str, Any]] = xs) -> float:
            return float(statistics.median(x[k] for x in xs))
        print(f"  {name:4}: catch-up {med('total'):7.0f} ms; publishes p50 {med('p50'):6.1f}"
              f" p90 {med('p90'):6.1f} max {med('max'):7.1f} ms")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--records", type=int, default=300)
    ap.add_argument("--kb", type=int, default=400)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--every", type=float, default=50.0, help="ms between publishes")
    ap.add_argument("--ref", type=Path, default=None)
    ap.add_argument("--pg", default=None, help="a PostgreSQL server URL: the ledger there")
    ap.add_argument("--publisher", default=None, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.publisher:
        asyncio.run(publisher_main(a.publisher, a.every))
        return
    asyncio.run(run(a.records, a.kb, a.rounds, a.ref, a.every, a.pg))


if __name__ == "__main__":
    main()
