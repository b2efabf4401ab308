"""Hub benchmark: publish → push latency and durable publish rate, beside raw baselines.

Runs ``outpost-hub serve`` as a separate process (SQLite ledger, WAL, synchronous=FULL, auth
none on loopback) and drives it from this process over real websockets:

1. latency from ``evt.pub`` sent to ``evt.update`` received at 1, 10 and 100 subscribers
   (p50/p99 over every subscriber's receipt), with a raw websockets echo server's round trip
   as the floor;
2. sustained durable publish rate with 10 concurrent clients (each waits for its ack), beside
   raw sqlite3 doing one commit per transaction (same pragmas, an event and an audit row),
   in ``--rounds`` pairs run back to back (hub, then raw), each with the load average and the
   CPU each hub thread (event loop, writer) and the clients spent per transaction (and how
   long each waited for a CPU while runnable: Linux schedstat), then the
   medians and the range of the per-pair ratios. ``--slices K`` splits each round's 8 s of
   the hub and of raw sqlite3 into K alternating slices (hub, raw, hub, raw...): raw
   sqlite3's rate is one ``fdatasync`` per transaction and swings several-fold within
   seconds on a shared disk, and the hub's needs most of both CPUs; measured in two
   separate 8 s windows the ratio carries both swings (docs/benchmarks.md, "Hub, session
   12"). Per round it then also prints the slices' ranges.

``--root DIR`` runs another checkout's hub (a base) with this benchmark's code.

The hub runs with ``--rate``/``--burst`` raised: the default flood limit (200 messages/s per
connection) would otherwise close a client of this benchmark at about 2,000 tx/s in total,
which is the limit's job, not what is measured here.

Prints figures; never passes or fails on time. Usage::

    .venv/bin/python bench/hub.py [--quick] [--rounds N] [--slices K] [--root DIR]
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import os
import platform
import sqlite3
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson
from benchlib import cpu_model, start_hub, stop_hub
from websockets.asyncio.client import ClientConnection, connect
from websockets.asyncio.server import ServerConnection, serve

ROOT = Path(__file__).resolve().parents[1]
ZERO = "0001-01-01T00:00:00Z"


def pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(len(xs) * p))] if xs else float("nan")


class Client:
    """A minimal daql client: numbered tokens, replies matched, pushes to a callback."""

    def __init__(self, ws: ClientConnection):
        self.ws = ws
        self.tok = 0
        self.waiting: dict[str, asyncio.Future[Any]] = {}
        self.on_push: Any = None
        self.reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        async for text in self.ws:
            assert isinstance(text, str)
            now = time.perf_counter()
            head, _, body = text.partition("\n")
            if head == "evt.update":
                if self.on_push:
                    self.on_push(now, body)
                continue
            fut = self.waiting.pop(head, None)
            if fut is not None and not fut.done():
                fut.set_result(orjson.loads(body) if body else None)

    async def req(self, subj: str, body: Any = None) -> Any:
        self.tok += 1
        head = f"{subj}#{self.tok}"
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self.waiting[head] = fut
        await self.ws.send(head if body is None else head + "\n" + orjson.dumps(body).decode())
        return await asyncio.wait_for(fut, 30)

    async def close(self) -> None:
        await self.ws.close()
        self.reader.cancel()


def act(key: str) -> dict[str, Any]:
    return {"top": "field.site", "key": key, "cmd": "new", "arg": {"name": "bench " + key}}


async def latency(url: str, nsubs: int, n: int, tag: str) -> tuple[list[float], list[float]]:
    subs = [Client(await connect(url)) for _ in range(nsubs)]
    pub = Client(await connect(url))
    sent: dict[str, float] = {}
    lat: list[float] = []
    acks: list[float] = []
    got = 0
    done = asyncio.Event()

    def on_push(now: float, body: str) -> None:
        nonlocal got
        for e in orjson.loads(body).get("evs", ()):
            t0 = sent.get(e["key"])
            if t0 is not None:
                lat.append((now - t0) * 1000)
                got += 1
        if got >= n * nsubs:
            done.set()

    for s in subs:
        s.on_push = on_push
        await s.req("evt.sub", {"rev": ZERO, "tops": ["field.site"]})
    for i in range(n):
        key = f"{tag}-{nsubs}-{i}"
        sent[key] = t0 = time.perf_counter()
        await pub.req("evt.pub", {"acts": [act(key)]})
        acks.append((time.perf_counter() - t0) * 1000)
        await asyncio.sleep(0.002)  # a steady stream, not one burst
    try:
        await asyncio.wait_for(done.wait(), 60)
    except TimeoutError:
        print(f"  warning: {got} of {n * nsubs} pushes arrived")
    for c in [*subs, pub]:
        await c.close()
    return lat, acks


async def publish_rate(url: str, clients: int, seconds: float, tag: str = "rate",
                       ) -> tuple[float, int]:
    """``clients`` websockets clients publishing for ``seconds``, each waiting for its ack;
    timed from when all are connected (the handshakes are not in the rate)."""
    cs = [Client(await connect(url)) for _ in range(clients)]
    stop_at = time.perf_counter() + seconds
    counts = [0] * clients

    async def one(i: int) -> None:
        c = cs[i]
        n = 0
        while time.perf_counter() < stop_at:
            r = await c.req("evt.pub", {"acts": [act(f"{tag}-{i}-{n}")]})
            assert "res" in r, r
            n += 1
        counts[i] = n

    t0 = time.perf_counter()
    await asyncio.gather(*(one(i) for i in range(clients)))
    rate = sum(counts) / (time.perf_counter() - t0)
    for c in cs:
        await c.close()
    return rate, sum(counts)


class _LeanClient(asyncio.Protocol):
    """The rate's client without a websockets library: one HTTP upgrade, then each reply
    parsed in ``data_received``, which sends the next ``evt.pub`` at once (no task switch,
    no future). Frames are masked with a zero key (valid, RFC 6455: any 32-bit key), so the
    payload goes out as is. What the hub receives is the same as from :class:`Client`."""

    def __init__(self, tag: str, stop_at: float, done: asyncio.Future[int]):
        self.tag = tag
        self.stop_at = stop_at
        self.done = done
        self.n = 0
        self.buf = b""
        self.open = False
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        transport.write(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
                        b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                        b"Sec-WebSocket-Version: 13\r\n\r\n")

    def connection_lost(self, exc: Exception | None) -> None:
        # an error reply (the assert in data_received), a close or a reset: fail the round
        # instead of waiting for ever
        if not self.done.done():
            self.done.set_exception(RuntimeError(
                f"lean client {self.tag}: connection lost after {self.n} publishes: {exc!r}"))

    def _send(self) -> None:
        assert self.transport is not None
        data = (f"evt.pub#{self.n}\n".encode()
                + orjson.dumps({"acts": [act(f"{self.tag}-{self.n}")]}))
        n = len(data)
        head = bytes((0x81, 0x80 | n)) if n < 126 else b"\x81\xfe" + n.to_bytes(2, "big")
        self.transport.write(head + b"\0\0\0\0" + data)

    def data_received(self, data: bytes) -> None:
        buf = self.buf + data
        if not self.open:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                self.buf = buf
                return
            assert buf.startswith(b"HTTP/1.1 101"), buf[:80]
            self.open = True
            buf = buf[end + 4:]
            self._send()
        i = 0
        while len(buf) - i >= 2:
            ln = buf[i + 1] & 0x7F
            j = i + 2
            if ln == 126:
                if len(buf) - i < 4:
                    break
                ln = int.from_bytes(buf[j:j + 2], "big")
                j += 2
            elif ln == 127:
                if len(buf) - i < 10:
                    break
                ln = int.from_bytes(buf[j:j + 8], "big")
                j += 8
            if j + ln > len(buf):
                break
            payload = buf[j:j + ln]
            op = buf[i] & 0x0F
            i = j + ln
            if op == 0x9:  # the hub's keepalive ping: answered (a run may outlast its timeout)
                assert self.transport is not None and ln < 126
                self.transport.write(bytes((0x8A, 0x80 | ln)) + b"\0\0\0\0" + payload)
                continue
            if payload.startswith(f"evt.pub#{self.n}\n".encode()):
                assert b'"res"' in payload, payload[:200]
                self.n += 1
                if time.perf_counter() < self.stop_at:
                    self._send()
                elif not self.done.done():
                    self.done.set_result(self.n)
        self.buf = buf[i:]


async def publish_rate_lean(url: str, clients: int, seconds: float, tag: str = "rate",
                            ) -> tuple[float, int]:
    """:func:`publish_rate` with :class:`_LeanClient` (``--lean``)."""
    host, port = url.split("//", 1)[1].rsplit(":", 1)
    loop = asyncio.get_running_loop()
    stop_at = time.perf_counter() + seconds
    dones: list[asyncio.Future[int]] = [loop.create_future() for _ in range(clients)]
    t0 = time.perf_counter()
    conns = [await loop.create_connection(
        functools.partial(_LeanClient, f"{tag}-{i}", stop_at, dones[i]), host, int(port))
        for i in range(clients)]
    counts = await asyncio.gather(*dones)
    elapsed = time.perf_counter() - t0
    for tr, _ in conns:
        tr.close()
    return sum(counts) / elapsed, sum(counts)


class RawSqlite:
    """Raw sqlite3 doing one commit per transaction (WAL, ``synchronous=FULL``, an event
    row and an audit row each), in one file, for one or more slices of time."""

    def __init__(self, path: Path):
        self.db = sqlite3.connect(path, isolation_level=None)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=FULL")
        self.db.execute("CREATE TABLE ev (id INTEGER PRIMARY KEY, rev INTEGER, top TEXT, "
                        "key TEXT, cmd TEXT, arg BLOB)")
        self.db.execute("CREATE TABLE audit (rev INTEGER PRIMARY KEY, usr TEXT, uid TEXT "
                        "UNIQUE)")
        self.n = 0

    def run(self, seconds: float) -> tuple[int, float]:
        """Commit for ``seconds``: the transactions committed and the seconds taken."""
        db = self.db
        n = n0 = self.n
        t0 = time.perf_counter()
        stop_at = t0 + seconds
        while time.perf_counter() < stop_at:
            db.execute("BEGIN IMMEDIATE")
            db.execute("INSERT INTO ev (rev, top, key, cmd, arg) VALUES (?,?,?,?,?)",
                       (n, "field.site", f"k{n}", "new", orjson.dumps({"name": "x"})))
            db.execute("INSERT INTO audit VALUES (?,?,?)", (n, "bench", f"u{n}"))
            db.execute("COMMIT")
            n += 1
        self.n = n
        return n - n0, time.perf_counter() - t0

    def close(self) -> None:
        self.db.close()


def raw_sqlite_rate(path: Path, seconds: float) -> float:
    raw = RawSqlite(path)
    n, took = raw.run(seconds)
    raw.close()
    return n / took


async def echo_latency(n: int) -> list[float]:
    async def handler(ws: ServerConnection) -> None:
        async for m in ws:
            await ws.send(m)

    async with serve(handler, "127.0.0.1", 0, compression=None) as srv:
        port = next(iter(srv.sockets)).getsockname()[1]
        async with connect(f"ws://127.0.0.1:{port}", compression=None) as ws:
            out = []
            for i in range(n):
                t0 = time.perf_counter()
                await ws.send(f"echo {i}")
                await ws.recv()
                out.append((time.perf_counter() - t0) * 1000)
            return out


NO_FLOOD_LIMIT = ("--rate", "1000000", "--burst", "1000000")


def thread_cpu(pid: int) -> dict[str, tuple[float, float, float]]:
    """User and system CPU seconds of each thread of a process, and the seconds it waited
    for a CPU while runnable (Linux ``/proc``: ``stat`` and ``schedstat``): the main thread
    is the hub's event loop, the other busy one its writer thread."""
    tck = os.sysconf("SC_CLK_TCK")
    out: dict[str, tuple[float, float, float]] = {}
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return out
    for tid in tids:
        try:
            stat = Path(f"/proc/{pid}/task/{tid}/stat").read_text()
            sched = Path(f"/proc/{pid}/task/{tid}/schedstat").read_text().split()
        except OSError:
            continue
        f = stat[stat.rindex(")") + 2:].split()
        out["loop" if tid == str(pid) else f"thread {tid}"] = (int(f[11]) / tck,
                                                               int(f[12]) / tck,
                                                               int(sched[1]) / 1e9)
    return out


def my_wait() -> float:
    """Seconds this process's threads waited for a CPU while runnable (``schedstat``)."""
    total = 0.0
    for tid in os.listdir("/proc/self/task"):
        try:
            total += int(Path(f"/proc/self/task/{tid}/schedstat").read_text().split()[1]) / 1e9
        except OSError:
            continue
    return total


def cpu_per_tx(before: dict[str, tuple[float, float, float]],
               after: dict[str, tuple[float, float, float]], n: int) -> str:
    """'loop 95 (80u+15s, ran after waiting 40)...' in µs per transaction, threads that did
    work: CPU (user+system), and the time the thread waited for a CPU while runnable."""
    parts = []
    for name, (u1, s1, w1) in after.items():
        u0, s0, w0 = before.get(name, (0.0, 0.0, 0.0))
        du, ds, dw = (u1 - u0) / n * 1e6, (s1 - s0) / n * 1e6, (w1 - w0) / n * 1e6
        if du + ds >= 1:
            label = name if name == "loop" else "writer"
            parts.append(f"{label} {du + ds:.0f} ({du:.0f}u+{ds:.0f}s; waited {dw:.0f} for a "
                         "CPU)")
    return ", ".join(parts)


def load() -> str:
    return "load {:.2f} {:.2f} {:.2f}".format(*os.getloadavg())


async def run(quick: bool, db: str = "", rounds: int = 3, lean: bool = False,
              slices: int = 1, root: Path = ROOT) -> None:
    n = 100 if quick else 300
    secs = 3.0 if quick else 8.0
    print(f"machine: {platform.machine()} {cpu_model()}, "
          f"{os.cpu_count()} cpus, Python {platform.python_version()}, "
          f"{platform.system()} {platform.release()}; {load()}")
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        echo = await echo_latency(n * 3)
        print(f"raw websockets echo round trip: p50 {pct(echo, .5):.3f} ms, "
              f"p99 {pct(echo, .99):.3f} ms")
        proc, url = start_hub(db or tmp / "hub.db", *NO_FLOOD_LIMIT, root=root)
        print(f"hub ledger: {db or 'SQLite file, WAL, synchronous=FULL'}; rate clients: "
              f"{'lean (--lean)' if lean else 'websockets'}; hub code: {root}")
        if slices > 1:
            print(f"each round: {slices} slices of {secs / slices:g} s of the hub, then of raw "
                  "sqlite3, alternating (--slices)")
        rates: list[float] = []
        raws: list[float] = []
        try:
            for nsubs in (1, 10, 100):
                lat, acks = await latency(url, nsubs, n if nsubs < 100 else n // 3, "lat")
                print(f"publish -> push, {nsubs:3d} subscribers: p50 {pct(lat, .5):.2f} ms, "
                      f"p99 {pct(lat, .99):.2f} ms ({len(lat)} receipts); publish -> ack "
                      f"p50 {pct(acks, .5):.2f} ms, p99 {pct(acks, .99):.2f} ms; {load()}")
            for r in range(rounds):
                before = load()
                raw_db = RawSqlite(tmp / f"raw{r}.db")
                total = raw_n = 0
                took = raw_took = me = wait = 0.0
                cpu: dict[str, tuple[float, float, float]] = {}
                hub_sl: list[float] = []
                raw_sl: list[float] = []
                for k in range(slices):
                    cpu0, me0, w0 = thread_cpu(proc.pid), time.process_time(), my_wait()
                    rate_k, n_k = await (publish_rate_lean if lean else publish_rate)(
                        url, 10, secs / slices, f"rate{r}" if slices == 1 else f"rate{r}s{k}")
                    cpu1, me1, w1 = thread_cpu(proc.pid), time.process_time(), my_wait()
                    me, wait = me + me1 - me0, wait + w1 - w0
                    for name, (u1, s1, x1) in cpu1.items():  # the hub's CPU in its slices only
                        u0, s0, x0 = cpu0.get(name, (u1, s1, x1))
                        u, s_, x = cpu.get(name, (0.0, 0.0, 0.0))
                        cpu[name] = (u + u1 - u0, s_ + s1 - s0, x + x1 - x0)
                    total += n_k
                    took += n_k / rate_k if rate_k else secs / slices
                    hub_sl.append(rate_k)
                    m, t = raw_db.run(secs / slices)
                    raw_n, raw_took = raw_n + m, raw_took + t
                    raw_sl.append(m / t)
                raw_db.close()
                rate, raw = total / took, raw_n / raw_took
                rates.append(rate)
                raws.append(raw)
                print(f"round {r + 1}: hub durable publish rate, 10 clients: {rate:.0f} tx/s "
                      f"({total} in {secs:g} s); raw sqlite3, one commit per transaction (WAL, "
                      f"synchronous=FULL): {raw:.0f} tx/s; hub / raw {rate / raw:.2f}x; {before}")
                if slices > 1:
                    print(f"  per slice, tx/s: hub {min(hub_sl):.0f}-{max(hub_sl):.0f}, raw "
                          f"{min(raw_sl):.0f}-{max(raw_sl):.0f}; hub / raw "
                          f"{min(a / b for a, b in zip(hub_sl, raw_sl, strict=True)):.2f}x-"
                          f"{max(a / b for a, b in zip(hub_sl, raw_sl, strict=True)):.2f}x")
                print(f"  CPU per transaction, us: hub {cpu_per_tx({}, cpu, total)}; the 10 "
                      f"clients (this process) {me / total * 1e6:.0f} (waited "
                      f"{wait / total * 1e6:.0f} for a CPU)")
        finally:
            stop_hub(proc)
        ratios = sorted(a / b for a, b in zip(rates, raws, strict=True))
        print(f"median hub {statistics.median(rates):.0f} tx/s, median raw "
              f"{statistics.median(raws):.0f} tx/s; hub / raw per round {ratios[0]:.2f}x to "
              f"{ratios[-1]:.2f}x (median {statistics.median(ratios):.2f}x)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else "")
    ap.add_argument("--quick", action="store_true", help="fewer samples, shorter runs")
    ap.add_argument("--rounds", type=int, default=3, help="paired hub/raw rate runs")
    ap.add_argument("--db", default="", help="hub database (default: a SQLite file in a temp "
                    "dir; 'sqlite://' = in memory, to see the cost without the disk)")
    ap.add_argument("--lean", action="store_true", help="the rate's 10 clients without the "
                    "websockets library (less of the 2 shared CPUs; the hub gets the same "
                    "frames)")
    ap.add_argument("--slices", type=int, default=1, help="split each round's hub and raw "
                    "time into this many alternating slices (hub, raw, hub, raw...), so that "
                    "the machine's load swings hit both alike (default 1: the hub's 8 s, then "
                    "raw's 8 s)")
    ap.add_argument("--root", default=str(ROOT), help="the checkout whose hub runs (a base "
                    "to compare with; this benchmark's code stays this one)")
    args = ap.parse_args()
    if args.slices < 1:
        ap.error("--slices: 1 or more")
    asyncio.run(run(args.quick, args.db, args.rounds, args.lean, args.slices,
                    Path(args.root).resolve()))


if __name__ == "__main__":
    main()
