"""A satellite in its own process, for crash and chaos tests (run as a script).

::

    python tests/reliability/satdriver.py pub DIR [N]            queue N new sites, print uids
    python tests/reliability/satdriver.py sync DIR URL [--lim L] [--pub N]  sync once: 0, or 1
    python tests/reliability/satdriver.py chaos DIR URL NAME SEED editing + syncing until DIR/stop

Crash points (``OUTPOST_CRASH_AT``) apply as in the real satellite: this drives the real
:class:`~core.satellite.satellite.Satellite` and :class:`~core.satellite.client.SyncClient`.

Chaos mode writes two append-only logs in ``DIR``: ``journal`` (``uid wall-time`` once
``pub`` returned, i.e. the edit is committed locally) and ``acks`` (``uid wall-time`` when the
driver first saw the receipt accepted). When ``DIR/stop`` appears it stops editing, syncs until
idle (bounded by ``--drain`` seconds) and exits 0; exit 3 means it did not get idle.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from core.errors import OutpostError  # noqa: E402
from core.ids import new_key  # noqa: E402
from core.model import Action, Cmd  # noqa: E402
from core.satellite.api import ReceiptState  # noqa: E402
from core.satellite.client import SyncClient  # noqa: E402
from core.satellite.machine import Backoff  # noqa: E402
from core.satellite.satellite import Satellite  # noqa: E402
from core.schema import load_project  # noqa: E402

SCHEMA = ROOT / "assets" / "demo-schema.toml"
TOP = "field.site"


def open_sat(data: str) -> Satellite:
    return Satellite(data, load_project(SCHEMA))


def new_site(prefix: str, i: int) -> Action:
    return Action(TOP, f"{prefix}-{new_key()}", Cmd.NEW, {"name": f"site {i}", "lat": float(i)})


def cmd_pub(args: argparse.Namespace) -> int:
    sat = open_sat(args.data)
    try:
        for i in range(args.n):
            print(sat.pub([new_site("p", i)]), flush=True)
    finally:
        sat.close()
    return 0


async def cmd_sync(args: argparse.Namespace) -> int:
    sat = open_sat(args.data)
    for i in range(args.pub):
        sat.pub([new_site("p", i)])
    client = SyncClient(sat, args.url, lim=args.lim, timeout=10.0, open_timeout=5.0,
                        backoff=Backoff(0.05, 0.5))
    try:
        await client.sync_once(args.timeout)
    except OutpostError as exc:
        print(f"satdriver: {exc}", file=sys.stderr)
        return 1
    finally:
        sat.close()
    return 0


class Chaos:
    """Random offline edit sessions on one satellite, logging what it did."""

    def __init__(self, args: argparse.Namespace):
        self.args = args
        self.dir = Path(args.data)
        self.rng = random.Random(args.seed)
        self.sat = open_sat(args.data)
        self.client = SyncClient(self.sat, args.url, timeout=3.0, open_timeout=3.0,
                                 backoff=Backoff(0.1, 1.0), rnd=random.Random(args.seed + 1))
        self.journal = open(self.dir / "journal", "a", buffering=1)  # noqa: SIM115
        self.acklog = open(self.dir / "acks", "a", buffering=1)  # noqa: SIM115
        self.acked = {line.split()[0] for line in (self.dir / "acks").read_text().splitlines()
                      if line.strip()}
        self.task: asyncio.Task[None] | None = None
        self.n = 0

    def edit(self) -> None:
        r = self.rng.random()
        mine = [rv for rv in self.sat.records(TOP) if rv.key.startswith(self.args.name + "-")]
        if r < 0.55 or not mine:
            act = new_site(self.args.name, self.n)
        else:
            rv = self.rng.choice(mine)
            if r < 0.9:
                act = Action(TOP, rv.key, Cmd.MOD, {"notes": f"edit {self.n}",
                                                   "lat": self.rng.random()})
            else:
                act = Action(TOP, rv.key, Cmd.DEL)
        self.n += 1
        uid = self.sat.pub([act])
        self.journal.write(f"{uid} {time.time():.4f}\n")

    def poll_acks(self) -> None:
        now = time.time()
        for rec in self.sat.receipts([ReceiptState.ACCEPTED]):
            if rec.uid not in self.acked:
                self.acked.add(rec.uid)
                self.acklog.write(f"{rec.uid} {now:.4f}\n")

    def online(self) -> None:
        if self.task is None or self.task.done():
            self.task = asyncio.ensure_future(self.client.run())

    async def offline(self) -> None:
        if self.task is not None:
            self.client.stop()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.task, 5)
            self.task = None

    async def run(self) -> int:
        stop = self.dir / "stop"
        end = time.monotonic() + self.args.max_time
        self.online()
        offline_until = 0.0
        next_edit = 0.0
        while not stop.exists() and time.monotonic() < end:
            now = time.monotonic()
            if offline_until and now >= offline_until:
                offline_until = 0.0
                self.online()
            elif not offline_until and self.rng.random() < 0.01:
                offline_until = now + self.rng.uniform(0.5, 3.0)   # an offline edit session
                await self.offline()
            if now >= next_edit:
                self.edit()
                next_edit = now + self.rng.uniform(0.02, 0.25)
            self.poll_acks()
            await asyncio.sleep(0.05)
        # drain: online until idle
        self.online()
        deadline = time.monotonic() + self.args.drain
        while time.monotonic() < deadline:
            self.poll_acks()
            if self.client.machine.idle:
                break
            await asyncio.sleep(0.05)
        idle = self.client.machine.idle
        if not idle:
            m = self.client.machine
            print(f"satdriver {self.args.name}: not idle after the drain: phase "
                  f"{m.phase.value}, busy {m._sat_busy}, outbox {len(self.sat.outbox())}, "
                  f"pending {self.sat.status().pending}, waiting {m._waiting}, "
                  f"error {m.info.last_error!r}", file=sys.stderr, flush=True)
            for t in asyncio.all_tasks():
                print(f"task {t.get_name()}: {t.get_coro()!r}", file=sys.stderr)
                t.print_stack(limit=12, file=sys.stderr)
        self.poll_acks()
        await self.offline()
        self.sat.close()
        return 0 if idle else 3


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="satdriver")
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("pub")
    s.add_argument("data")
    s.add_argument("n", type=int, nargs="?", default=1)
    s = sub.add_parser("sync")
    s.add_argument("data")
    s.add_argument("url")
    s.add_argument("--lim", type=int, default=5000)
    s.add_argument("--pub", type=int, default=0, help="queue this many new sites first")
    s.add_argument("--timeout", type=float, default=15.0)
    s = sub.add_parser("chaos")
    s.add_argument("data")
    s.add_argument("url")
    s.add_argument("name")
    s.add_argument("seed", type=int)
    s.add_argument("--max-time", type=float, default=600.0)
    s.add_argument("--drain", type=float, default=60.0)
    args = p.parse_args(argv)
    os.makedirs(args.data, exist_ok=True)
    if args.cmd == "pub":
        return cmd_pub(args)
    if args.cmd == "sync":
        return asyncio.run(cmd_sync(args))
    import logging

    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(name)s %(levelname)s: %(message)s")
    for name in ("journal", "acks"):
        (Path(args.data) / name).touch()
    return asyncio.run(Chaos(args).run())


if __name__ == "__main__":
    raise SystemExit(main())
