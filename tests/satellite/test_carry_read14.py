"""Session 14: `outpost carry` reads OLD_DIR as every read command reads its directory
(``headless.read_settled``): again while the process that has it open commits, at most three times,
then with a note (it kept a loop of its own, twenty reads). The holder's commit during each
read is made deterministically from the read itself. Real SQLite data directories, a real
hub on 127.0.0.1."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import pytest

from core.ledger.memory import MemLedger
from core.model import Action, Audit, Cmd, Event
from core.satellite import carry
from core.satellite.satellite import Satellite
from core.schema import Project
from core.wire import SatRes
from desktop import carrycmd
from hubserver.server import Hub
from tests.satellite.test_carry import sync_here
from tests.satellite.test_cli import cli

SITE = "field.site"


async def test_carry_reads_a_moving_old_dir_three_times_with_a_note(
        tmp_path: Path, project: Project, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    async with Hub(MemLedger(project), port=0) as hub:
        new = tmp_path / "new"
        assert (await cli(new, "connect", hub.url))[0] == 0
        await sync_here(new)
        old = Satellite(tmp_path / "old", project)  # the app, holding OLD_DIR
        try:
            old.pub([Action(SITE, "x", Cmd.NEW, {"name": "X"})])
            reads: list[int] = []

            def plan(*a: Any, **k: Any) -> carry.CarryPlan:
                got = carry.plan_carry(*a, **k)
                reads.append(len(got.items))
                n = 1000 + len(reads)  # the holder stores a reply meanwhile
                res = SatRes(n, (Event(n, n, SITE, f"h{n}", Cmd.NEW, {"name": "H"}),), (),
                             audits=(Audit(n, n, n, "bob", None, f"bob-{n}"),))
                old.write(res)
                old.written(res)
                return got

            monkeypatch.setattr(carrycmd, "plan_carry", plan)
            args = argparse.Namespace(data=str(new), old=str(tmp_path / "old"), rejected=False,
                                      accepted=False, drop_invalid_fields=False,
                                      skip_invalid=False, dry_run=False, json=True)
            assert carrycmd.cmd_carry(args) == 0
            assert reads == [1, 1, 1]  # was 20
            out, err = capsys.readouterr()
            assert json.loads(out)["pending"] == 1
            assert f"{tmp_path / 'old'} changed while this was read, 3 times" in err, err
        finally:
            old.close()
