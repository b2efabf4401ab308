"""Hub benchmark: the event-loop thread's whole work per publish, sockets included.

``bench/hubloop.py`` counts the service's work per publish without sockets; this one runs a
real ``outpost-hub serve`` process (SQLite in ``/dev/shm`` when it exists, auth none, flood
limit raised) and drives it with ``--clients`` lean websockets clients (those of
``bench/hub.py --lean``: one masked ``evt.pub`` frame each, the next sent as soon as the
ack arrives), each publishing exactly ``--n`` transactions. What the hub's loop thread does
per publish is then everything: the epoll wake-up, the socket read, the frame parse,
``HubService.handle``, the hand-off to the writer thread, the commit's callback,
``HubService.finish``, the ack's frame and its socket write.

``--wrap`` runs the hub under another command; for instruction counts per thread::

    for n in 200 400; do .venv/bin/python bench/hubws.py --n $n --wrap "valgrind \\
        --tool=callgrind --separate-threads=yes --dump-instr=no \\
        --callgrind-out-file=/tmp/cg.$n.%p"; done

then ``(Ir of the main thread at 400 - at 200) / (10 * 200)`` is the loop's instructions per
publish (the hub's start and stop cancel out; ``PYTHONHASHSEED=0`` is set for the hub).
``--subs N`` adds N websockets clients subscribed to the topic: each publish is then also
pushed to N connections (``--clients 1 --subs 10``: ``bench/hub.py``'s latency shape, one
event per push, the publisher waiting for its ack), and the run ends once every subscriber
has every event. ``--root`` runs another checkout's hub (a base to compare with). Without
``--wrap`` it prints the rate and each hub thread's CPU per transaction (noisy on a shared
machine).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson
from benchlib import ROOT, stop_hub
from hub import NO_FLOOD_LIMIT, ZERO, Client, _LeanClient, load, thread_cpu
from websockets.asyncio.client import connect


class _CountClient(_LeanClient):
    """A lean client that stops after ``limit`` acknowledged publishes."""

    def __init__(self, tag: str, limit: int, done: asyncio.Future[int]):
        super().__init__(tag, float("inf"), done)
        self.limit = limit

    def _send(self) -> None:
        if self.n >= self.limit:
            if not self.done.done():
                self.done.set_result(self.n)
            return
        super()._send()


def start(db: Path, root: Path, wrap: str) -> tuple[subprocess.Popen[str], str]:
    cmd = [*shlex.split(wrap), sys.executable, "-m", "hubserver.cli", "serve", "--db", str(db),
           "--port", "0", "--auth", "none", "--log-level", "WARNING", *NO_FLOOD_LIMIT]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, cwd=root,
                            env={**os.environ, "PYTHONHASHSEED": "0",
                                 "PYTHONPATH": os.pathsep.join(
                                     [str(root), *filter(None, [os.environ.get("PYTHONPATH")])])})
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line.startswith("outpost-hub ready: "):
        proc.kill()
        raise SystemExit(f"hub did not start: {line!r}")
    return proc, line.split()[2]


async def drive(url: str, clients: int, n: int, tag: str = "ws", subs: int = 0) -> float:
    host, port = url.split("//", 1)[1].rsplit(":", 1)
    loop = asyncio.get_running_loop()
    got = [0] * subs  # events pushed to each subscriber
    all_in = asyncio.Event()

    def counter(i: int) -> Any:
        def on_push(_now: float, body: str) -> None:
            got[i] += len(orjson.loads(body).get("evs", ()))
            if min(got) >= clients * n:
                all_in.set()
        return on_push

    readers = [Client(await connect(url, compression=None)) for _ in range(subs)]
    for i, c in enumerate(readers):
        c.on_push = counter(i)
        await c.req("evt.sub", {"rev": ZERO, "tops": ["field.site"]})
    dones: list[asyncio.Future[int]] = [loop.create_future() for _ in range(clients)]
    t0 = time.perf_counter()
    conns = [await loop.create_connection(
        lambda i=i: _CountClient(f"{tag}-{i}", n, dones[i]), host, int(port))  # type: ignore[misc]
        for i in range(clients)]
    counts = await asyncio.wait_for(asyncio.gather(*dones), 600)
    if subs:
        await asyncio.wait_for(all_in.wait(), 600)
    elapsed = time.perf_counter() - t0
    for tr, _ in conns:
        tr.close()
    for c in readers:
        await c.close()
    assert counts == [n] * clients, counts
    assert got == [clients * n] * subs, got
    return elapsed


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else "")
    ap.add_argument("--n", type=int, default=200, help="publishes per client")
    ap.add_argument("--clients", type=int, default=10)
    ap.add_argument("--wrap", default="", help="command to run the hub under (valgrind ...)")
    ap.add_argument("--instr-on", action="store_true", help="with callgrind's "
                    "--instr-atstart=no: count only while the clients publish (instrumentation "
                    "on once the hub is ready, off before it stops)")
    ap.add_argument("--root", default=str(ROOT), help="the checkout whose hub runs")
    ap.add_argument("--url", default="", help="drive this running hub instead (e.g. one "
                    "under py-spy); it needs --rate/--burst raised")
    ap.add_argument("--tag", default="ws", help="key prefix (another per run on one hub)")
    ap.add_argument("--subs", type=int, default=0, help="websockets clients subscribed to the "
                    "topic, each pushed every publish (with --clients 1: bench/hub.py's "
                    "latency shape, one event per push); the run ends once all have them")
    args = ap.parse_args()
    if args.url:
        elapsed = asyncio.run(drive(args.url, args.clients, args.n, args.tag, args.subs))
        total = args.clients * args.n
        print(f"{total} publishes in {elapsed:.2f} s ({total / elapsed:.0f} tx/s); {load()}")
        return
    shm = Path("/dev/shm")
    with tempfile.TemporaryDirectory(dir=shm if shm.is_dir() else None) as d:
        proc, url = start(Path(d) / "hub.db", Path(args.root), args.wrap)
        try:
            if args.instr_on:  # valgrind --tool=callgrind --instr-atstart=no: count from here
                subprocess.run(["callgrind_control", "-i", "on", str(proc.pid)], check=True,
                               stdout=subprocess.DEVNULL)
            cpu0 = thread_cpu(proc.pid)
            elapsed = asyncio.run(drive(url, args.clients, args.n, subs=args.subs))
            cpu1 = thread_cpu(proc.pid)
            if args.instr_on:  # the hub's exit (its caches' size grows with --n) not counted
                subprocess.run(["callgrind_control", "-i", "off", str(proc.pid)], check=True,
                               stdout=subprocess.DEVNULL)
        finally:
            stop_hub(proc)
    total = args.clients * args.n
    print(f"{total} publishes by {args.clients} clients in {elapsed:.2f} s "
          f"({total / elapsed:.0f} tx/s); {load()}")
    for name, (u1, s1, _w1) in cpu1.items():
        u0, s0, _w0 = cpu0.get(name, (0.0, 0.0, 0.0))
        cpu = (u1 - u0 + s1 - s0) / total * 1e6
        if cpu >= 1:
            print(f"  {name}: {cpu:.0f} us CPU per publish ({(u1 - u0) / total * 1e6:.0f} user)")


if __name__ == "__main__":
    main()
