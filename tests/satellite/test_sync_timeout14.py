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
