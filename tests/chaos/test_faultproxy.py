"""The fault proxy does what the chaos tests rely on, against a real echo server on loopback."""

from __future__ import annotations

import asyncio
import time

import pytest

from tests.support.faultproxy import FaultProxy


async def _echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except ConnectionError:
        pass
    finally:
        writer.close()


@pytest.fixture
async def proxy():
    server = await asyncio.start_server(_echo, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    p = FaultProxy("127.0.0.1", port, seed=1)
    await p.start()
    yield p
    await p.close()
    server.close()
    await server.wait_closed()


async def _roundtrip(p: FaultProxy, payload: bytes, timeout: float = 3) -> bytes:
    r, w = await asyncio.open_connection("127.0.0.1", p.port)
    try:
        w.write(payload)
        await w.drain()
        return await asyncio.wait_for(r.readexactly(len(payload)), timeout)
    finally:
        w.close()


async def test_pass_and_slices_deliver_bytes_intact(proxy: FaultProxy) -> None:
    payload = bytes(range(256)) * 20
    assert await _roundtrip(proxy, payload) == payload
    proxy.set_mode("slices", slice_max=3)
    assert await _roundtrip(proxy, payload) == payload


async def test_latency_delays(proxy: FaultProxy) -> None:
    proxy.set_mode("latency", delay=0.1)
    t0 = time.monotonic()
    assert await _roundtrip(proxy, b"hello") == b"hello"
    assert time.monotonic() - t0 >= 0.2  # delayed both ways


async def test_blackhole_forwards_nothing_and_cut_resets(proxy: FaultProxy) -> None:
    r, w = await asyncio.open_connection("127.0.0.1", proxy.port)
    w.write(b"x")
    await w.drain()
    assert await asyncio.wait_for(r.readexactly(1), 3) == b"x"
    proxy.set_mode("blackhole")
    w.write(b"y")
    await w.drain()
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(r.readexactly(1), 0.3)
    assert proxy.cut() == 1
    with pytest.raises((ConnectionError, asyncio.IncompleteReadError)):
        await asyncio.wait_for(r.readexactly(1), 3)
    w.close()
    assert proxy.cuts == 1


async def test_refuse_resets_new_connections(proxy: FaultProxy) -> None:
    proxy.set_mode("refuse")
    with pytest.raises((ConnectionError, asyncio.IncompleteReadError)):
        await _roundtrip(proxy, b"z")


def test_only_loopback_targets() -> None:
    with pytest.raises(ValueError, match="loopback"):
        FaultProxy("10.0.0.1", 80)
