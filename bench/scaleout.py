"""Scale-out benchmark: 1, 2 and 3 ``outpost-hub serve`` processes on one PostgreSQL ledger.

For each hub count, on a fresh database: start the hubs (real processes), open one subscriber
per hub (all topics) and ``--writers`` writer connections spread round-robin over the hubs;
each writer publishes one-action transactions (``evt.pub``, new uid each) back to back for
``--seconds``. Prints:

- **durable publish rate**: acknowledged transactions per second (each ack comes after its
  commit, group commit included);
- **ack latency** p50/p99: writer send → reply;
- **cross-hub push latency** p50/p99: writer send → the ``evt.update`` push carrying that
  revision at a subscriber on *another* hub (with 1 hub: on the same hub); this includes the
  commit, the NOTIFY, the other hub's catch-up read and the push coalescing;
- the number of durable commits is not visible from outside, so the rate is the figure.

All clients run in this one process (one asyncio loop), which competes for the CPUs with the
hubs and PostgreSQL: on a small machine the figures are a lower bound. Never fails on time.

Usage::

    scripts/pg-test-cluster start      # prints a URL
    .venv/bin/python bench/scaleout.py --db postgresql://postgres@127.0.0.1:PORT/postgres \
        [--hubs 1,2,3] [--writers 12] [--seconds 5]

``--db`` defaults to ``$OUTPOST_TEST_PG_URL``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import orjson
import psycopg
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from core.revision import ZERO_REV, format_rev, parse_rev

ROOT = Path(__file__).resolve().parent.parent
ZERO = format_rev(ZERO_REV)


def _with_db(url: str, db: str) -> str:
    base, _, _tail = url.rpartition("/")
    return f"{base}/{db}"


class Hubs:
    """``n`` hub processes on a fresh database."""

    def __init__(self, admin_url: str, n: int):
        self.admin_url = admin_url
        self.name = f"outpost_bench_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(admin_url, autocommit=True) as c:
            c.execute(f'CREATE DATABASE "{self.name}"')
        self.db = _with_db(admin_url, self.name)
        self.procs: list[subprocess.Popen[bytes]] = []
        self.urls: list[str] = []
        for _ in range(n):  # one after the other: the first creates the tables
            p = subprocess.Popen(
                [sys.executable, "-m", "hubserver.cli", "serve", "--db", self.db, "--port", "0",
                 "--auth", "none", "--log-level", "WARNING", "--max-connections", "1000"],
                cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
            self.procs.append(p)
            assert p.stdout is not None
            for _ in range(100):
                line = p.stdout.readline().decode()
                if not line:
                    raise SystemExit("a hub exited before it was ready")
                if line.startswith("outpost-hub ready: "):
                    self.urls.append(line.split()[2])
                    break

    def close(self) -> None:
        for p in self.procs:
            p.terminate()
        for p in self.procs:
            try:
                p.wait(15)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(5)
            if p.stdout is not None:
                p.stdout.close()
        with psycopg.connect(self.admin_url, autocommit=True) as c:
            c.execute(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')


async def _open(url: str) -> ClientConnection:
    return await connect(url, open_timeout=10, max_size=None, ping_interval=None)


async def subscriber(url: str, seen: dict[int, float], stop: asyncio.Event) -> None:
    """Record the arrival time of every revision pushed to this subscriber."""
    ws = await _open(url)
    await ws.send("evt.sub#1\n" + orjson.dumps({"rev": ZERO, "tops": ["field.site"]}).decode())
    try:
        while not stop.is_set():
            try:
                text = await asyncio.wait_for(ws.recv(), 0.5)
            except TimeoutError:
                continue
            now = time.perf_counter()
            head, _, body = str(text).partition("\n")
            if head != "evt.update":
                continue
            for e in orjson.loads(body).get("evs") or []:
                seen.setdefault(parse_rev(e["rev"]), now)
    except ConnectionClosed:
        pass
    finally:
        await ws.close()


async def writer(url: str, w: int, deadline: float, sent: dict[int, tuple[float, int]],
                 ack_lat: list[float]) -> int:
    """Publish back to back until ``deadline``; record send time and hub index per rev."""
    ws = await _open(url)
    n = 0
    try:
        while time.perf_counter() < deadline:
            n += 1
            body = {"uid": f"b{w}-{n}-{uuid.uuid4().hex[:8]}", "base": ZERO,
                    "acts": [{"top": "field.site", "key": f"w{w}-{n}", "cmd": "new",
                              "arg": {"name": f"site {n}", "region": "north"}}]}
            t0 = time.perf_counter()
            await ws.send(f"evt.pub#{n}\n" + orjson.dumps(body).decode())
            while True:
                head, _, raw = str(await ws.recv()).partition("\n")
                if head == f"evt.pub#{n}":
                    break
            t1 = time.perf_counter()
            rep: Any = orjson.loads(raw)
            if "res" not in rep:
                raise SystemExit(f"publish failed: {rep}")
            sent[parse_rev(rep["res"]["rev"])] = (t0, w)
            ack_lat.append(t1 - t0)
    finally:
        await ws.close()
    return n


def pct(xs: list[float], p: float) -> float:
    if not xs:
        return float("nan")
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(p / 100 * len(xs)))]


async def run(admin_url: str, n_hubs: int, n_writers: int, seconds: float) -> dict[str, Any]:
    hubs = await asyncio.to_thread(Hubs, admin_url, n_hubs)
    try:
        stop = asyncio.Event()
        seen: list[dict[int, float]] = [{} for _ in range(n_hubs)]
        subs = [asyncio.create_task(subscriber(u, seen[i], stop))
                for i, u in enumerate(hubs.urls)]
        await asyncio.sleep(0.5)
        sent: dict[int, tuple[float, int]] = {}
        ack_lat: list[float] = []
        t0 = time.perf_counter()
        deadline = t0 + seconds
        counts = await asyncio.gather(*(
            writer(hubs.urls[w % n_hubs], w, deadline, sent, ack_lat)
            for w in range(n_writers)))
        elapsed = time.perf_counter() - t0
        await asyncio.sleep(1.0)  # let the last pushes arrive
        stop.set()
        await asyncio.gather(*subs)
        push_lat: list[float] = []
        missing = 0
        for rev, (ts, w) in sent.items():
            home = w % n_hubs
            for h in range(n_hubs):
                if n_hubs > 1 and h == home:
                    continue  # cross-hub only (the publisher's own hub excludes it anyway)
                got = seen[h].get(rev)
                if got is None:
                    missing += 1
                else:
                    push_lat.append(got - ts)
        return {"hubs": n_hubs, "writers": n_writers, "acks": sum(counts),
                "rate": sum(counts) / elapsed, "ack_p50": pct(ack_lat, 50),
                "ack_p99": pct(ack_lat, 99), "push_p50": pct(push_lat, 50),
                "push_p99": pct(push_lat, 99), "pushes": len(push_lat), "missing": missing}
    finally:
        await asyncio.to_thread(hubs.close)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--db", default=os.environ.get("OUTPOST_TEST_PG_URL", ""))
    ap.add_argument("--hubs", default="1,2,3")
    ap.add_argument("--writers", type=int, default=12)
    ap.add_argument("--seconds", type=float, default=5.0)
    args = ap.parse_args()
    if not args.db:
        raise SystemExit("give --db postgresql://... (or set OUTPOST_TEST_PG_URL); "
                         "scripts/pg-test-cluster start makes one")
    print(f"machine: {platform.machine()}, nproc {os.cpu_count()}, Python "
          f"{platform.python_version()}, load average {os.getloadavg()[0]:.2f}")
    print(f"{args.writers} writers, {args.seconds:g} s per configuration, one-action "
          "transactions, every client in this process")
    print("| hubs | acked tx | tx/s | ack p50 ms | ack p99 ms | cross-hub push p50 ms "
          "| p99 ms | pushes measured | missing |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for n in (int(x) for x in args.hubs.split(",")):
        r = asyncio.run(run(args.db, n, args.writers, args.seconds))
        print(f"| {r['hubs']} | {r['acks']} | {r['rate']:.0f} | {r['ack_p50'] * 1e3:.1f} | "
              f"{r['ack_p99'] * 1e3:.1f} | {r['push_p50'] * 1e3:.1f} | "
              f"{r['push_p99'] * 1e3:.1f} | {r['pushes']} | {r['missing']} |", flush=True)


if __name__ == "__main__":
    main()
