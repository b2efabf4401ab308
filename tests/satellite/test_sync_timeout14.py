"""Operator review 14 (finding 3): a `sync --once` whose own --timeout ran out in the middle
of a long catch-up said "the hub went away during the catch-up" and "did not finish within
30 s: still offline; … check that the hub runs" — the hub was up and answering. It says the
time given ran out, that what arrived is kept, and what to do (a larger --timeout, or
`outpost sync`)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from core.ledger.memory import MemLedger
from core.model import Action, Cmd, Trans
from core.satellite.machine import Phase
from core.schema import Project
from hubserver.limits import Limits
from hubserver.server import Hub
from tests.satellite.test_cli import cli


async def test_sync_once_says_its_own_timeout_ran_out_mid_catch_up(
        tmp_path: Path, project: Project, monkeypatch: pytest.MonkeyPatch) -> None:
    ledger = MemLedger(project)
    for t in range(6):
        ledger.publish(Trans(tuple(
            Action("field.site", f"t{t}-{i:03d}", Cmd.NEW, {"name": f"Site {t}.{i}"})
            for i in range(100))), "office")
    sent: list[int] = []
    release = asyncio.Event()
    send_sat = Hub._send_sat

    async def slow_after_first(self: Hub, peer: Any, r: Any) -> None:
        if sent:  # the hub stays up and connected, but the next replies take long
            await asyncio.wait_for(release.wait(), 30)
        sent.append(1)
        await send_sat(self, peer, r)

    monkeypatch.setattr(Hub, "_send_sat", slow_after_first)
    async with Hub(ledger, port=0, limits=Limits(max_batch=100)) as hub:
        d = tmp_path / "a"
        assert (await cli(d, "connect", hub.url))[0] == 0
        try:
            rc, out, err = await cli(d, "sync", "--once", "--progress", "--timeout", "3",
                                     json_out=False)
        finally:
            release.set()
    assert sent
    assert rc == 1, (out, err)
    assert "went away" not in err and "still offline" not in err, err
    assert "check that the hub runs" not in err, err
    assert "stopped at --timeout: 100 of 600 events" in err, err
    assert "did not finish within 3 s (--timeout): connected, still catching up" in err, err
    assert "larger --timeout" in err and "`outpost sync` without --once" in err, err


async def _timed_out_live(tmp_path: Path, project: Project, monkeypatch: pytest.MonkeyPatch,
                          pending: int) -> str:
    """`sync_once(1)` on a replica with ``pending`` edits whose run is held live: with
    edits, the hub's publishing them is held; without, storing the last batch received is.
    Gives the error said."""
    import random
    import threading

    from core.errors import HubError
    from core.satellite.client import SyncClient
    from core.satellite.satellite import Satellite

    ledger = MemLedger(project)
    ledger.publish(Trans(tuple(Action("field.site", f"h{i:03d}", Cmd.NEW, {"name": f"S{i}"})
                               for i in range(50))), "office")
    release = threading.Event()  # the held write or publish goes on (the run is over)
    made = threading.Event()  # the edits are made
    held: list[str] = []
    write = Satellite.write
    publish_many = ledger.publish_many
    finish = SyncClient._finish_applies

    def slow_write(self: Satellite, item: Any) -> None:
        if not held and (pending or getattr(item, "evs", None)):
            # the last (only) batch received: stored slowly; with edits to send, until
            # they are made (live: they go alone, not with the catch-up request)
            held.append("write")
            (made if pending else release).wait(30)
        write(self, item)

    def slow_publish(items: Any, now: Any = None) -> Any:
        held.append("publish")  # this replica's edits: answered late
        release.wait(30)
        return publish_many(items, now)

    async def released(self: SyncClient) -> None:
        release.set()
        await finish(self)

    async with Hub(ledger, port=0) as hub:
        sat = Satellite(tmp_path / "s", project)
        try:
            if pending:  # caught up first: the edits go once live
                await SyncClient(sat, hub.url, "", rnd=random.Random(0)).sync_once(30)
            monkeypatch.setattr(Satellite, "write", slow_write)
            monkeypatch.setattr(ledger, "publish_many", slow_publish)
            monkeypatch.setattr(SyncClient, "_finish_applies", released)
            client = SyncClient(sat, hub.url, "", rnd=random.Random(0))

            async def edit_when_live() -> None:
                for _ in range(500):  # bounded: the machine is live within moments
                    if client.machine.phase == Phase.LIVE or not pending:
                        break
                    await asyncio.sleep(0.01)
                for i in range(pending):
                    sat.pub([Action("field.site", f"k{i}", Cmd.NEW, {"name": f"n{i}"})])
                made.set()

            editing = asyncio.ensure_future(edit_when_live())
            with pytest.raises(HubError) as exc:
                await client.sync_once(1)
            await editing
            assert held and client.timed_out_in == Phase.LIVE, (held, client.timed_out_in)
        finally:
            release.set()
            sat.close()
    return str(exc.value)


async def test_timeout_live_storing_is_not_sending(
        tmp_path: Path, project: Project, monkeypatch: pytest.MonkeyPatch) -> None:
    """Merge review 14: a replica with nothing pending, live and storing the last batch at
    --timeout, was said to be "still sending this replica's edits"."""
    err = await _timed_out_live(tmp_path, project, monkeypatch, 0)
    assert "connected, still storing what arrived" in err, err
    assert "sending" not in err, err


async def test_timeout_live_sending_counts_the_edits(
        tmp_path: Path, project: Project, monkeypatch: pytest.MonkeyPatch) -> None:
    err = await _timed_out_live(tmp_path, project, monkeypatch, 3)
    assert "connected, still sending 3 edits of this replica" in err, err
