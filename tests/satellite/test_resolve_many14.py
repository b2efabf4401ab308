"""``Satellite.resolve_many`` (session 14, big replicas 3): many conflicts resolved in ONE
local commit (each resolve committed on its own: ~10 ms, 1,092 took 12 s), each resolution
still its own transaction naming the rejected uid it resolves, all or nothing: a refusal
mid-way or a ``kill -9`` (a child process) leaves every edit rejected as before. Real
satellites (SQLite in tmp_path), a real hub on 127.0.0.1; commits counted through
SQLAlchemy's events on the queue's engine."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import pytest
from sqlalchemy import event

from core.errors import ValidationError
from core.satellite.api import Change, Keep, ReceiptState
from core.satellite.satellite import Satellite
from core.schema import Project
from hubserver.server import Hub
from tests.satellite.test_cli import ROOT
from tests.satellite.test_resolve_many13 import four_conflicts
from tests.satellite.test_stale_theirs import SITE, sync
from tests.support.procs import reap


def _commits(sat: Satellite) -> list[int]:
    n: list[int] = []
    event.listen(sat.queue.engine, "commit", lambda _c: n.append(1))
    return n


async def test_keep_mine_on_four_is_one_commit_four_audited_resolutions(
        tmp_path: Path, project: Project, hub: Hub) -> None:
    uids = await four_conflicts(tmp_path, project, hub)
    sat = Satellite(tmp_path / "a", project)
    heard: list[Change] = []
    try:
        sat.listen(heard.append)
        commits = _commits(sat)
        news = sat.resolve_many(uids, Keep.MINE)
        assert len(commits) == 1 and len(heard) == 1  # one commit, one notice
        assert heard[0].records[SITE] == frozenset({"r1", "r2", "r3", "r4"})
        assert all(news) and len(set(news)) == 4
        pending = sat.receipts([ReceiptState.PENDING])
        assert [(r.uid, r.resolves) for r in pending] == list(zip(news, uids, strict=True))
        assert not sat.receipts([ReceiptState.REJECTED])
        assert sat.record(SITE, "r3").fields["notes"] == "mine 3"  # type: ignore[union-attr,index]
        await sync(sat, hub)
        # each went to the hub as its own transaction: accepted, audited with what it resolves
        revs = {r.uid: r.rev for r in sat.receipts([ReceiptState.ACCEPTED])}
        for new, uid in zip(news, uids, strict=True):
            au = hub.ledger.audit(revs[new])
            assert au is not None and au.extra == {"resolves": uid}
    finally:
        sat.close()


async def test_a_refusal_mid_way_resolves_none(
        tmp_path: Path, project: Project, hub: Hub) -> None:
    uids = await four_conflicts(tmp_path, project, hub)
    sat = Satellite(tmp_path / "a", project)
    try:
        sat.resolve(uids[2], Keep.THEIRS)
        before = [(r.key, dict(r.fields or {}), r.conflict) for r in sat.records(SITE)]
        with pytest.raises(ValidationError, match=f"transaction {uids[2]} was already resolved"):
            sat.resolve_many(uids, Keep.MINE)
        rejected = [uids[0], uids[1], uids[3]]
        assert [r.uid for r in sat.receipts([ReceiptState.REJECTED])] == rejected
        assert not sat.receipts([ReceiptState.PENDING])
        # memory follows the queue: what the first two made is gone from the records
        assert [(r.key, dict(r.fields or {}), r.conflict) for r in sat.records(SITE)] == before
        assert sat.status().conflicts == 3 and sat.status().pending == 0
        with pytest.raises(ValidationError, match="whole"):
            sat.resolve_many(rejected, Keep.BOTH)
        assert sat.resolve_many(rejected, Keep.THEIRS) == ["", "", ""]
        assert not sat.receipts([ReceiptState.REJECTED])
    finally:
        sat.close()
    reopened = Satellite(tmp_path / "a", project)
    try:
        assert not reopened.receipts([ReceiptState.REJECTED])
        assert not reopened.receipts([ReceiptState.PENDING])
    finally:
        reopened.close()


async def test_killed_mid_way_resolves_none(
        tmp_path: Path, project: Project, hub: Hub) -> None:
    uids = await four_conflicts(tmp_path, project, hub)
    data = tmp_path / "a"
    code = ("import sys\nfrom core.satellite.api import Keep\n"
            "from core.satellite.satellite import Satellite\n"
            "sat = Satellite(sys.argv[1])\n"
            "sat.resolve_many(sys.argv[2:], Keep.MINE)\n")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OUTPOST_CRASH_AT": "sat.mid_resolve_many:3"}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", code, str(data), *uids, cwd=ROOT, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    _, err = await reap(proc, 60)
    assert proc.returncode == 137, err  # killed after three of the four were resolved
    sat = Satellite(data, project)
    try:
        assert [r.uid for r in sat.receipts([ReceiptState.REJECTED])] == uids
        assert not sat.receipts([ReceiptState.PENDING])
        assert sat.resolve_many(uids, Keep.MINE)  # and it runs whole afterwards
        assert len(sat.receipts([ReceiptState.PENDING])) == 4
    finally:
        sat.close()
