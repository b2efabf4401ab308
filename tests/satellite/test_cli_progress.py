"""`outpost sync --once` reports a catch-up's progress on stderr (with --progress, or when
stderr is a terminal) and leaves stdout as it was: a subprocess against a real hub on
127.0.0.1 whose replies hold at most 100 events, so the catch-up takes several batches."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from core.ledger.memory import MemLedger
from core.model import Action, Cmd, Trans
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
