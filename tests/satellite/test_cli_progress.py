"""`outpost sync --once` reports a catch-up's progress on stderr (with --progress, or when
stderr is a terminal) and leaves stdout as it was: a subprocess against a real hub on
127.0.0.1 whose replies hold at most 100 events, so the catch-up takes several batches."""

from __future__ import annotations

import json
import random
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from core.ledger.memory import MemLedger
from core.model import Action, Cmd, Trans
from core.satellite.client import SyncClient
from core.satellite.satellite import Satellite
from core.schema import Project
from hubserver.limits import Limits
from hubserver.server import Hub
from tests.satellite.test_cli import cli


@pytest.fixture
async def hub(project: Project) -> AsyncIterator[Hub]:
    ledger = MemLedger(project)
    for t in range(6):
        ledger.publish(Trans(tuple(
            Action("field.site", f"t{t}-{i:03d}", Cmd.NEW, {"name": f"Site {t}.{i}"})
            for i in range(100))), "office")
    async with Hub(ledger, port=0, limits=Limits(max_batch=100)) as h:
        yield h


async def test_sync_once_reports_progress_on_stderr_only(tmp_path: Path, hub: Hub) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    assert (await cli(a, "connect", hub.url))[0] == 0
    assert (await cli(b, "connect", hub.url))[0] == 0
    rc, out, err = await cli(a, "sync", "--once", "--progress")
    assert rc == 0, err
    assert json.loads(out)["pending"] == 0  # stdout: the one JSON object, as before
    lines = err.splitlines()
    assert lines and lines[0].startswith("catching up: ") and " events" in lines[0], err
    assert lines[-1] == "caught up: 600 events" or lines[-1].startswith(
        "caught up: 600 events, "), err
    # not a terminal, no --progress: nothing on stderr, as before
    rc, out, err = await cli(b, "sync", "--once")
    assert rc == 0 and err == "" and json.loads(out)["pending"] == 0
    rc, out, _ = await cli(b, "sync", "--once", "--progress", json_out=False)
    assert rc == 0 and out.startswith("synced: ")


async def test_a_catch_up_shows_of_n_from_the_hubs_first_reply(tmp_path: Path, hub: Hub,
                                                                 project: Project) -> None:
    """The hub's first reply of a catch-up in batches says how many events follow
    (``total_max``, ours): the status's progress is "done of 600" while it runs, on the
    CLI's stderr too (before session 9: counts and rate, never "of N")."""
    sat = Satellite(tmp_path / "s", project)
    seen: list[tuple[int, int]] = []
    unlisten = sat.listen(lambda ch: seen.append(sat.status().progress) if ch.status else None)
    try:
        await SyncClient(sat, hub.url, rnd=random.Random(0)).sync_once(10)
    finally:
        unlisten()
    running = [p for p in seen if p[0] and p[0] < 600]
    assert running and all(total == 600 for _, total in running), seen
    sat.close()
    rc, _, err = await cli(tmp_path / "c", "connect", hub.url)
    assert rc == 0, err
    rc, _, err = await cli(tmp_path / "c", "sync", "--once", "--progress")
    assert rc == 0, err
    first = err.splitlines()[0]
    assert first.startswith("catching up: ") and " of 600 events" in first, err


async def test_pushing_a_long_queue_says_so_and_the_counts_agree(tmp_path: Path, hub: Hub,
                                                                  project: Project) -> None:
    """150 edits of 10 records queued offline go out in two requests at once (100, then 50:
    cont) and come back as a catch-up in batches of 100 events: the hub counted 1,000 when it
    read its first reply, the 50 edits of the second request it published after that. The
    CLI says the upload ("sending: 0 of 150 edits", "sent: 150 edits"), and every catch-up
    line says "of 1,500", as "caught up: 1,500 events" does (user review 13, F6: "catching
    up: 2,500 of 4,500 events" then "caught up: 6,000 events", and the upload said
    nothing)."""
    a = tmp_path / "a"
    assert (await cli(a, "connect", hub.url))[0] == 0
    rc, _, err = await cli(a, "sync", "--once")  # the hub's 600 first
    assert rc == 0, err
    sat = Satellite(a, project)
    try:
        sat.pub_many(([Action("field.site", f"q{t:03d}-{i}", Cmd.NEW, {"name": f"Q {t}.{i}"})
                       for i in range(10)], None) for t in range(150))
        assert sat.status().pending == 150
    finally:
        sat.close()
    rc, out, err = await cli(a, "sync", "--once", "--progress")
    assert rc == 0, err
    assert json.loads(out)["pending"] == 0
    lines = err.splitlines()
    sending = [ln for ln in lines if ln.startswith("sending: ")]
    assert sending and sending[0] == "sending: 0 of 150 edits", err
    assert all(ln.endswith(" of 150 edits") for ln in sending), err
    assert "sent: 150 edits" in lines, err
    catching = [ln for ln in lines if ln.startswith("catching up: ")]
    assert catching and all(" of 1,500 events" in ln for ln in catching), err
    assert lines[-1] == "caught up: 1,500 events" or lines[-1].startswith(
        "caught up: 1,500 events, "), err
