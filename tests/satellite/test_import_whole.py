"""An import is queued whole or not at all (safety review 10, finding 3): one commit per 500
rows left part of a file queued when the import was stopped (Ctrl+C, kill -9), and running it
again doubled every row without a key. Real SQLite, the real CLI (a subprocess for kill -9,
in-process for Ctrl+C), a real hub on 127.0.0.1."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import desktop.headless as headless
from core.errors import ValidationError
from core.model import Action, Cmd
from core.satellite.api import ReceiptState
from core.satellite.satellite import Satellite
from core.schema import Project
from hubserver.server import Hub
from tests.satellite.test_cli import ROOT, cli
from tests.support.procs import reap

ROWS = 2_100  # five batches of 500 and one of 100


def keyless(path: Path) -> Path:
    path.write_text("name,region\n" + "".join(f"site {i},R{i % 7}\n" for i in range(ROWS)),
                    encoding="utf-8")
    return path


def queued_rows(data: Path) -> int:
    sat = Satellite(data, read_only=True)
    try:
        return sum(len(r.acts) for r in sat.receipts([ReceiptState.PENDING]))
    finally:
        sat.close()


async def test_an_import_killed_half_way_queues_nothing_and_runs_again_once(
        tmp_path: Path, hub: Hub) -> None:
    a, src = tmp_path / "a", keyless(tmp_path / "big.csv")
    assert (await cli(a, "connect", hub.url))[0] == 0
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OUTPOST_CRASH_AT": "sat.mid_import:3"}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "desktop.headless", "import", "field.site", str(src), "--data",
        str(a), cwd=ROOT, env=env, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE)
    _, err = await reap(proc, 60)
    assert proc.returncode == 137, err  # killed after three of its five batches were added
    assert "queued 1000 of" in err.decode()
    assert queued_rows(a) == 0
    rc, out, err2 = await cli(a, "import", "field.site", str(src))
    assert rc == 0, err2
    assert json.loads(out)["rows"] == ROWS and len(json.loads(out)["uids"]) == 5
    assert queued_rows(a) == ROWS
    assert (await cli(a, "sync", "--once"))[0] == 0
    assert hub.ledger.count("field.site") == ROWS  # type: ignore[attr-defined]


async def test_ctrl_c_during_an_import_says_nothing_was_imported(
        tmp_path: Path, hub: Hub, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    a, src = tmp_path / "a", keyless(tmp_path / "big.csv")
    assert (await cli(a, "connect", hub.url))[0] == 0
    real = headless._batches

    def interrupted(rows: Any) -> Iterator[Any]:
        for i, b in enumerate(real(rows)):
            if i == 3:
                raise KeyboardInterrupt  # Ctrl+C while the fourth batch is read
            yield b

    monkeypatch.setattr(headless, "_batches", interrupted)
    with pytest.raises(SystemExit) as ex:
        headless.main(["import", "field.site", str(src), "--data", str(a)])
    assert ex.value.code == 130
    err = capsys.readouterr().err
    assert "interrupted: nothing was imported" in err and "run it again" in err
    assert "Traceback" not in err and "KeyboardInterrupt" not in err
    assert queued_rows(a) == 0
    monkeypatch.setattr(headless, "_batches", real)
    assert headless.main(["import", "field.site", str(src), "--data", str(a)]) == 0
    assert queued_rows(a) == ROWS


async def test_a_batch_refused_late_queues_nothing(tmp_path: Path, hub: Hub,
                                                   project: Project) -> None:
    """``pub_many``: a batch the view refuses after others were added rolls them all back."""
    a = tmp_path / "a"
    assert (await cli(a, "connect", hub.url))[0] == 0
    sat = Satellite(a, project)
    try:
        def gen() -> Iterator[tuple[list[Action], None]]:
            yield [Action("field.site", "k1", Cmd.NEW, {"name": "One"})], None
            yield [Action("field.site", "zz", Cmd.MOD, {"name": "none"})], None  # no zz

        with pytest.raises(ValidationError):
            sat.pub_many(gen())
        assert sat.receipts() == [] and sat.record("field.site", "k1") is None
    finally:
        sat.close()


def test_each_batch_is_checked_on_what_the_earlier_batches_made(
        tmp_path: Path, project: Project) -> None:
    """`pub_many` checked each batch on the view without the call's earlier batches (final
    review 10): `new K` twice was queued (the second then pending with "already exists"),
    `new K` then `mod K` or `del K` was refused. It now answers as two `pub` calls do."""
    def new(name: str) -> list[Action]:
        return [Action("field.site", "K", Cmd.NEW, {"name": name})]

    for i, (second, ok) in enumerate([
            (new("b"), False),
            ([Action("field.site", "K", Cmd.MOD, {"name": "c"})], True),
            ([Action("field.site", "K", Cmd.DEL)], True)]):
        sat = Satellite(tmp_path / str(i), project)
        try:
            if ok:
                assert len(sat.pub_many([(new("a"), None), (second, None)])) == 2
                assert sat.status().pending == 2
                assert all(not r.err for r in sat.receipts())
            else:
                with pytest.raises(ValidationError):
                    sat.pub_many([(new("a"), None), (second, None)])
                assert sat.status().pending == 0  # nothing queued
        finally:
            sat.close()
