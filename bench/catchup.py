"""Hub catch-up benchmark: what a big ``evt.mon``, ``evt.sub`` or ``evt.sat`` catch-up costs the
other connections (the event loop's stall) and the client (its largest frame).

A real ``outpost-hub serve`` process on a SQLite ledger of ``--events`` records created one per
revision in ``field.site``. While one client asks for a catch-up from the start (``evt.mon``
with an old ``rev`` watching creations: ``keys: ["new"]``; ``evt.sub`` from the zero rev;
``evt.sat`` from the zero rev with audits, as a satellite: batch after batch of ``max_batch``
events, each request sent when the previous reply said ``more``), a
probe client sends ``evt.stat`` one after the other on another connection: its round trips
show how long the hub's event loop was held (the probe runs in a process of its own).
Printed per run: time to the reply and to the
last event or note, the probe's p50/p99/max round trip during the catch-up, the largest
frame the client got.

``--ref DIR`` runs each round against a reference checkout too (e.g. made with ``git archive
a2f1c94 core hubserver | tar -x -C DIR``), back to back with ours, ``--rounds`` pairs, and
prints medians. Never passes or fails on time. Usage::

    .venv/bin/python bench/catchup.py [--events N] [--rounds N] [--ref DIR] [--kinds sat,mon]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
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
OLD = "2000-01-01T00:00:00Z"
sys.path.insert(0, str(ROOT))


def load() -> str:
    return "load {:.2f} {:.2f} {:.2f}".format(*os.getloadavg())


def build(path: Path, n: int) -> None:
    """A ledger of ``n`` records of field.site, one created per revision."""
    from core.ledger.sql import SqlLedger
    from core.model import Cmd, Event
    from core.revision import parse_rev
    from core.schema import load_project

    led = SqlLedger(f"sqlite:///{path}", load_project(ROOT / "assets" / "demo-schema.toml"))
    base = parse_rev("2026-01-01T00:00:00Z")
    chunk = 20_000
    for lo in range(0, n, chunk):
        evs = [Event(i + 1, base + i, "field.site", f"s{i:07d}", Cmd.NEW,
                     {"name": f"site {i}", "lat": float(i % 90)})
               for i in range(lo, min(n, lo + chunk))]
        led.replicate(evs[-1].rev, evs)
    led.close()


async def probe_main(url: str) -> None:
    """The probe, in a process of its own (the catch-up client's decoding would otherwise
    show in its round trips): ``evt.stat`` one after the other until stdin has a line, then
    prints ``[[start, ms], ...]`` (start: time.monotonic(), the same clock in every
    process)."""
    out: list[tuple[float, float]] = []
    loop = asyncio.get_running_loop()
    stop = loop.run_in_executor(None, sys.stdin.readline)
    if url == "-":  # no probe: the catch-up alone
        print("ready", flush=True)
        await stop
        print("[]", flush=True)
        return
    async with connect(url) as ws:
        print("ready", flush=True)
        i = 0
        while not stop.done():
            i += 1
            t = time.monotonic()
            await ws.send(f"evt.stat#{i}")
            await ws.recv()
            out.append((t, (time.monotonic() - t) * 1000))
    print(orjson.dumps(out).decode(), flush=True)


def sat_req(tok: int, rev: str) -> str:
    """A satellite's ``evt.sat`` without transactions (as ``core.sync`` sends it)."""
    return f"evt.sat#{tok}\n" + orjson.dumps(
        {"rev": rev, "trans": [], "tops": ["field.site"], "audits": True}).decode()


async def one(url: str, kind: str, n: int, with_probe: bool = True) -> dict[str, Any]:
    pr = subprocess.Popen([sys.executable, __file__, "--probe", url if with_probe else "-"],
                          stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert pr.stdin is not None and pr.stdout is not None
    assert pr.stdout.readline().strip() == "ready"
    async with connect(url, max_size=None) as c:
        await asyncio.sleep(0.3)
        t0 = time.perf_counter()
        m0 = time.monotonic()
        tok = 1
        if kind == "mon":
            await c.send("evt.mon#1\n" + orjson.dumps(
                {"rev": OLD, "watch": [{"top": "field.site", "keys": ["new"]}]}).decode())
        elif kind == "sat":
            await c.send(sat_req(tok, ZERO))
        else:
            await c.send("evt.sub#1\n" + orjson.dumps(
                {"rev": ZERO, "tops": ["field.site"]}).decode())
        got = 0
        reply = 0.0
        biggest = 0
        while got < n:
            text = await asyncio.wait_for(c.recv(), 300)
            assert isinstance(text, str)
            biggest = max(biggest, len(text))
            head, _, body = text.partition("\n")
            obj = orjson.loads(body)
            if head.endswith("#1"):
                reply = time.perf_counter() - t0
            if head.endswith(f"#{tok}"):
                obj = obj.get("res")
                if kind == "sat" and obj.get("more"):  # a satellite asks for the next batch
                    tok += 1
                    await c.send(sat_req(tok, obj["rev"]))
            if isinstance(obj, dict):
                got += len(obj.get("evs") or ())
                for note in obj.get("note") or ():
                    got += sum(len(w["keys"]) for w in note["watch"])
        total = time.perf_counter() - t0
        m1 = time.monotonic()
    out, _ = pr.communicate("stop\n", timeout=60)
    during = sorted(ms for t, ms in orjson.loads(out) if m0 <= t + ms / 1000 and t <= m1)
    during = during or [0.0]
    return {"reply": reply * 1000, "total": total * 1000, "p50": statistics.median(during),
            "p99": during[min(len(during) - 1, int(len(during) * 0.99))], "max": during[-1],
            "probes": len(during), "frame": biggest}


async def run(n: int, rounds: int, ref: Path | None, with_probe: bool = True,
              kinds: tuple[str, ...] = ("mon", "sub", "sat")) -> None:
    print(f"machine: {platform.machine()} {cpu_model()}, {os.cpu_count()} CPUs; {load()}")
    db = Path(tempfile.gettempdir()) / f"outpost-bench-catchup-{n}.db"
    if not db.exists():
        t = time.perf_counter()
        build(db, n)
        print(f"built {db} ({n:,} events) in {time.perf_counter() - t:.1f} s")
    sides = [("ours", ROOT)] + ([("ref", ref)] if ref is not None else [])
    res: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for r in range(rounds):
        for kind in kinds:
            for name, root in sides:
                proc, url = start_hub(db, "--rate", "1000000", "--burst", "1000000", root=root)
                try:
                    x = await one(url, kind, n, with_probe)
                finally:
                    stop_hub(proc)
                res.setdefault((name, kind), []).append(x)
                print(f"round {r + 1} {name:4} evt.{kind}: reply {x['reply']:7.0f} ms, all "
                      f"{x['total']:7.0f} ms; probe p50 {x['p50']:6.1f} p99 {x['p99']:7.1f} "
                      f"max {x['max']:7.1f} ms ({x['probes']} probes); largest frame "
                      f"{x['frame'] / 1e6:.2f} MB; {load()}", flush=True)
    print("medians:")
    for (name, kind), xs in res.items():
        def med(k: str, xs: list[dict[str, Any]] = xs) -> float:
            return float(statistics.median(x[k] for x in xs))
        print(f"  {name:4} evt.{kind}: reply {med('reply'):7.0f} ms, all {med('total'):7.0f} ms,"
              f" probe p99 {med('p99'):7.1f} max {med('max'):7.1f} ms, largest frame "
              f"{med('frame') / 1e6:.2f} MB")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--events", type=int, default=200_000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--ref", type=Path, default=None,
                    help="a reference checkout (core/, hubserver/) run back to back with ours")
    ap.add_argument("--no-probe", action="store_true",
                    help="no probe client: the catch-up's own duration, without other traffic")
    ap.add_argument("--kinds", default="mon,sub,sat",
                    help="which catch-ups to run, comma-separated (mon, sub, sat)")
    ap.add_argument("--probe", default="", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.probe:
        asyncio.run(probe_main(a.probe))
        return
    kinds = tuple(k for k in a.kinds.split(",") if k)
    if not kinds or set(kinds) - {"mon", "sub", "sat"}:
        ap.error("--kinds: a comma-separated list of mon, sub, sat")
    asyncio.run(run(a.events, a.rounds, a.ref, not a.no_probe, kinds))


if __name__ == "__main__":
    main()
