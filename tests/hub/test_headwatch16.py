"""hubserver.headwatch: a hub of a cluster behind the ledger's head, and the head ahead of a
hub's clock (cluster review 15): the decisions, fed readings as the database check does."""

from __future__ import annotations

import asyncio
import logging
import time
import urllib.request
from pathlib import Path
from urllib.error import HTTPError

import pytest

from core.ledger.sql import open_ledger
from core.schema import Project
from hubserver.headwatch import HeadWatch
from hubserver.server import Hub


def test_behind_is_a_revision_held_long_ago_not_fanned_out(
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="outpost.hub")
    w = HeadWatch(behind_after=10.0)
    # under load the ledger is always a little ahead: never behind while each head read is
    # fanned out by the next check
    for i in range(5):
        assert w.note(1000 + i * 10, 1000 + i * 10 - 5, 10_000, 100.0 + i * 5, cluster=True)
        assert w.behind_since is None
    w = HeadWatch(behind_after=10.0)
    assert w.note(2000, 1000, 10_000, 100.0, cluster=True)  # wake: the ledger is ahead
    assert not w.note(2000, 2000, 10_000, 105.0, cluster=True)
    assert w.behind_since is None
    # wake-ups stopped: the same revision still not out 10 s later
    assert w.note(3000, 2000, 10_000, 110.0, cluster=True)
    assert w.note(3000, 2000, 10_000, 115.0, cluster=True)
    assert w.behind_since is None
    assert w.note(3100, 2000, 10_000, 120.0, cluster=True)
    assert w.behind_since == 110.0
    assert w.behind_for(125.0) == 15.0
    assert [r.levelname for r in caplog.records] == ["ERROR"]
    assert "behind the ledger" in caplog.records[0].getMessage()
    # caught up with what the ledger held then
    assert not w.note(3100, 3100, 10_000, 125.0, cluster=True)
    assert w.behind_since is None and w.behind_for(130.0) == 0
    assert "caught up with the ledger again" in caplog.records[-1].getMessage()
    # a hub alone (SQLite) is never woken nor behind
    assert not HeadWatch().note(5000, 1000, 10_000, 1.0, cluster=False)


def test_head_ahead_of_the_clock_is_said_once_per_change(
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="outpost.hub")
    w = HeadWatch(clock_bound_ms=60_000)
    w.note(100_000, 100_000, 100_000 - 59_000, 1.0, cluster=True)
    assert not w.clock_warned and w.ahead_ms == 59_000
    w.note(200_000, 200_000, 100_000, 2.0, cluster=True)
    w.note(200_001, 200_001, 100_100, 3.0, cluster=True)
    assert w.clock_warned and w.ahead_ms == 99_901
    said = [r.getMessage() for r in caplog.records]
    assert len(said) == 1 and "100 s ahead of this hub's clock" in said[0]
    w.note(200_001, 200_001, 300_000, 4.0, cluster=True)  # the clocks agree again
    assert not w.clock_warned and w.ahead_ms == 0
    assert len(caplog.records) == 2


def test_a_single_hubs_own_burst_ahead_of_its_clock_is_measured_not_warned(
        caplog: pytest.LogCaptureFixture) -> None:
    """A hub alone publishing 10,000 transactions a second runs its revisions ahead of its
    clock (one millisecond each): the end-of-session benchmark was warned of "a hub whose
    clock is ahead" 75 s ahead. Its newest revision is its own: measured, not warned of."""
    caplog.set_level(logging.WARNING, logger="outpost.hub")
    w = HeadWatch(clock_bound_ms=60_000)
    w.note(200_000, 200_000, 125_000, 1.0, cluster=False)
    assert w.ahead_ms == 75_000 and not w.clock_warned
    assert caplog.records == []


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            return r.status, r.read().decode()
    except HTTPError as exc:
        return exc.code, exc.read().decode()


async def test_a_hub_behind_answers_503_and_counts_it(tmp_path: Path, project: Project) -> None:
    """The wiring: what the watch found reaches /healthz and /metrics (the watch is fed here
    as the database check feeds it; a real one: tests/scaleout/test_pgwatch16.py)."""
    async with Hub(open_ledger(tmp_path / "hub.sqlite", project), port=0,
                   close_ledger=True, db_check=0) as hub:
        base = hub.url.replace("ws://", "http://")
        assert await asyncio.to_thread(_get, base + "/healthz") == (200, "ok\n")
        now = time.monotonic()
        hub.heads.note(5000, 1000, 10_000, now - 20, cluster=True)
        hub.heads.note(5000, 1000, 10_000, now - 5, cluster=True)
        status, text = await asyncio.to_thread(_get, base + "/healthz")
        assert status == 503 and text.startswith("behind the ledger for "), text
        _, metrics = await asyncio.to_thread(_get, base + "/metrics")
        line = next(ln for ln in metrics.splitlines()
                    if ln.startswith("outpost_hub_behind_seconds "))
        assert float(line.split()[1]) >= 15
        hub.heads.note(5000, 5000, 10_000, now, cluster=True)  # caught up
        assert await asyncio.to_thread(_get, base + "/healthz") == (200, "ok\n")
