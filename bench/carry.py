"""`outpost carry` at scale: N offline edits of N records carried into a new data directory.

An in-process hub (MemLedger) on 127.0.0.1; OLD and NEW replicas synced with N records, OLD
then edits each record offline (N pending transactions; their bases are kept: both replicas
hold the same history of the records). Times :func:`plan_carry` (reading both replicas) and
``Satellite.carry_in`` (one commit, then the new queue's rebase), median of --rounds runs,
each on a fresh copy of NEW.

    .venv/bin/python bench/carry.py --n 5000 --rounds 3
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.benchlib import cpu_model
from core.ledger.memory import MemLedger
from core.model import Action, Cmd
from core.satellite.carry import plan_carry
from core.satellite.client import SyncClient
from core.satellite.satellite import Satellite
from core.schema import load_project
from hubserver.server import Hub

SITE = "field.site"


async def setup(d: Path, n: int) -> None:
    proj = load_project(Path(__file__).resolve().parent.parent / "assets" / "demo-schema.toml")
    async with Hub(MemLedger(proj), port=0) as hub:
        old = Satellite(d / "old", proj, synchronous="OFF")
        for i in range(0, n, 500):
            old.pub([Action(SITE, f"k{j}", Cmd.NEW, {"name": f"n{j}"})
                     for j in range(i, min(n, i + 500))])
        await SyncClient(old, hub.url, rnd=random.Random(0)).sync_once(600)
        for j in range(n):
            old.pub([Action(SITE, f"k{j}", Cmd.MOD, {"notes": f"offline {j}"})])
        old.close()
        new = Satellite(d / "new", proj, synchronous="OFF")
        await SyncClient(new, hub.url, rnd=random.Random(0)).sync_once(600)
        new.close()


def one(d: Path) -> tuple[float, float, int]:
    work = d / "work"
    shutil.rmtree(work, ignore_errors=True)
    shutil.copytree(d / "new", work)
    new = Satellite(work)
    old = Satellite(d / "old", read_only=True)
    try:
        t0 = time.perf_counter()
        plan = plan_carry(old, new)
        t1 = time.perf_counter()
        new.carry_in([(i.trans, i.resolves, i.err, i.conflicts) for i in plan.items])
        t2 = time.perf_counter()
    finally:
        old.close()
        new.close()
    return t1 - t0, t2 - t1, plan.counts()["carried"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=5000)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    d = Path(tempfile.mkdtemp(prefix="carry-bench-"))
    try:
        asyncio.run(setup(d, args.n))
        runs = [one(d) for _ in range(args.rounds)]
    finally:
        shutil.rmtree(d, ignore_errors=True)
    plan = statistics.median(r[0] for r in runs)
    store = statistics.median(r[1] for r in runs)
    print(f"cpu: {cpu_model()}; load: {os.getloadavg()[0]:.2f}")
    print(f"carry {runs[0][2]} transactions ({args.n} records): plan {plan:.2f} s, "
          f"store {store:.2f} s (median of {args.rounds})")


if __name__ == "__main__":
    main()
