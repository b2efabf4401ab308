"""Leaks: connect/disconnect cycles against a live hub (in a thread of this process) by real
satellites (SyncClient) and bare websockets clients. File descriptors, memory and asyncio task
counts must stay flat; every connection is gone from the hub afterwards.

Fast tier: 300 cycles; soak (``OUTPOST_SOAK=1``): 2,000.
"""

from __future__ import annotations

import asyncio
import gc
import os
import time
from pathlib import Path

import pytest
from websockets.asyncio.client import connect

from core.model import Action, Cmd
from core.satellite.client import SyncClient
from core.satellite.machine import Backoff
from core.satellite.satellite import Satellite
from core.schema import Project
from hubserver.server import Hub
from tests.reliability.hubthread import hub_thread


def fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def rss_kb() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def hub_tasks(hub: Hub) -> int:
    loop = hub.loop
    assert loop is not None
    fut = asyncio.run_coroutine_threadsafe(_count_tasks(), loop)
    return fut.result(10)


async def _count_tasks() -> int:
    return len(asyncio.all_tasks())


async def cycles(hub: Hub, sat: Satellite, n: int, tag: str) -> None:
    for i in range(n):
        if i % 2:
            sat.pub([Action("field.site", f"{tag}{i}", Cmd.NEW, {"name": str(i)})])
            await SyncClient(sat, hub.url, backoff=Backoff(0.05, 0.2)).sync_once(20)
        else:
            async with connect(hub.url) as ws:
                await ws.send("evt.stat#1")
                await asyncio.wait_for(ws.recv(), 10)


def measure(hub: Hub) -> dict[str, int]:
    gc.collect()
    return {"fds": fds(), "rss_kb": rss_kb(), "hub_tasks": hub_tasks(hub),
            "my_tasks": len(asyncio.all_tasks()), "conns": hub.connections}


async def leak_run(tmp_path: Path, project: Project, n: int) -> None:
    with hub_thread(tmp_path / "hub.db", project) as hub:
        sat = Satellite(tmp_path / "s", project)
        try:
            warm = max(20, n // 10)
            await cycles(hub, sat, warm, "w")
            await asyncio.sleep(0.3)
            before = measure(hub)
            t0 = time.monotonic()
            await cycles(hub, sat, n, "c")
            await asyncio.sleep(0.5)   # the hub notices the last close
            after = measure(hub)
            took = time.monotonic() - t0
        finally:
            sat.close()
    print(f"LEAKS {n} cycles in {took:.1f} s: before {before} after {after}; "
          f"RSS growth {after['rss_kb'] - before['rss_kb']} kB")
    assert after["conns"] == 0
    assert after["fds"] <= before["fds"] + 2, (before, after)
    assert after["hub_tasks"] <= before["hub_tasks"], (before, after)
    assert after["my_tasks"] <= before["my_tasks"], (before, after)
    # memory: flat within noise (allocator, caches); a leak of one socket or task per cycle
    # would be far above this
    assert after["rss_kb"] - before["rss_kb"] < 8 * 1024 + n * 2, (before, after)


@pytest.mark.timeout(300)
async def test_connect_disconnect_cycles_leak_nothing(tmp_path: Path, project: Project) -> None:
    await leak_run(tmp_path, project, 300)


@pytest.mark.soak
@pytest.mark.slow
@pytest.mark.timeout(1800)
async def test_connect_disconnect_cycles_leak_nothing_soak(tmp_path: Path,
                                                           project: Project) -> None:
    await leak_run(tmp_path, project, 2000)
