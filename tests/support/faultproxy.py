"""A small TCP fault proxy for chaos tests (loopback only).

Sits between a satellite and the hub and misbehaves on demand:

- ``pass``: forward bytes as they come;
- ``latency``: delay every chunk by ``delay`` seconds;
- ``slices``: forward in tiny slices of 1..``slice_max`` bytes (exercises frame reassembly);
- ``blackhole``: keep connections open but forward nothing (a dead link without a close);
- ``cut()``: reset every open connection at once (RST, no FIN);
- ``silence()``: the connections open now go silent for good (bytes read and dropped both
  ways, sockets kept open: a partition, a firewall or NAT forgetting them); new ones work;
- ``refuse``: accept and immediately reset new connections (hub unreachable).

Everything is bounded: buffers are per connection and small, and ``close()`` stops it all.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import socket
import struct

__all__ = ["FaultProxy"]

MODES = ("pass", "latency", "slices", "blackhole", "refuse")


class FaultProxy:
    """Forward ``127.0.0.1:port`` to ``target_host:target_port`` with injectable faults."""

    def __init__(self, target_host: str, target_port: int, *, seed: int = 0):
        if target_host not in ("127.0.0.1", "localhost", "::1"):
            raise ValueError("the fault proxy only forwards to loopback")
        self.target = (target_host, target_port)
        self.mode = "pass"
        self.delay = 0.0
        self.slice_max = 7
        self.rng = random.Random(seed)
        self.cuts = 0
        self.connections = 0
        self._server: asyncio.Server | None = None
        self._pairs: set[tuple[asyncio.StreamWriter, asyncio.StreamWriter]] = set()
        self._silent: set[tuple[asyncio.StreamWriter, asyncio.StreamWriter]] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self.port = 0

    async def start(self) -> int:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self.port

    @property
    def url_host(self) -> str:
        return f"127.0.0.1:{self.port}"

    def set_mode(self, mode: str, *, delay: float = 0.0, slice_max: int = 7) -> None:
        if mode not in MODES:
            raise ValueError(f"unknown fault mode {mode!r}: expected one of {', '.join(MODES)}")
        self.mode = mode
        self.delay = delay
        self.slice_max = max(1, slice_max)

    def cut(self) -> int:
        """Reset every open connection; returns how many were cut."""
        n = 0
        for a, b in list(self._pairs):
            _reset(a)
            _reset(b)
            n += 1
        self._pairs.clear()
        self.cuts += n
        return n

    def silence(self) -> int:
        """Make every open connection silent (see the module doc); returns how many."""
        self._silent.update(self._pairs)
        return len(self._pairs)

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        self.cut()
        self._silent.clear()
        for t in list(self._tasks):
            t.cancel()
        for t in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t
        if self._server is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        if self.mode == "refuse":
            _reset(writer)
            return
        try:
            ur, uw = await asyncio.wait_for(asyncio.open_connection(*self.target), 5)
        except (OSError, TimeoutError):
            _reset(writer)
            return
        pair = (writer, uw)
        self._pairs.add(pair)
        t1 = asyncio.create_task(self._pump(reader, uw, pair))
        t2 = asyncio.create_task(self._pump(ur, writer, pair))
        self._tasks.update((t1, t2))
        t1.add_done_callback(self._tasks.discard)
        t2.add_done_callback(self._tasks.discard)

    async def _pump(self, src: asyncio.StreamReader, dst: asyncio.StreamWriter,
                    pair: tuple[asyncio.StreamWriter, asyncio.StreamWriter]) -> None:
        try:
            while True:
                data = await src.read(65536)
                if not data:
                    break
                while self.mode == "blackhole" and pair in self._pairs:
                    await asyncio.sleep(0.05)
                if pair not in self._pairs:
                    break
                if pair in self._silent:
                    continue  # read and dropped: the peer sees nothing, not even a close
                if self.mode == "latency" and self.delay:
                    await asyncio.sleep(self.delay)
                if self.mode == "slices":
                    i = 0
                    while i < len(data):
                        n = self.rng.randint(1, self.slice_max)
                        dst.write(data[i:i + n])
                        await dst.drain()
                        i += n
                else:
                    dst.write(data)
                    await dst.drain()
        except (OSError, asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            if pair in self._pairs:
                self._pairs.discard(pair)
                for w in pair:
                    with contextlib.suppress(Exception):
                        w.close()


def _reset(writer: asyncio.StreamWriter) -> None:
    """Close with RST (SO_LINGER 0) so the peer sees a reset, not a clean close."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    with contextlib.suppress(Exception):
        writer.transport.abort()
