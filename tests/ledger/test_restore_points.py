"""Every restore point of a ledger's history is kept (``SqlLedger.restores``, session 8): a
backup carries the list, its restore appends its own point; a ledger restored by session 7
(one point in ``restored``/``restore_id``) has that point as the first. SQLite and
PostgreSQL."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import orjson
import pytest
from sqlalchemy import create_engine, text

from core.errors import StorageError
from core.ledger import ops
from core.ledger.sql import SqlLedger
from core.model import Action, Cmd, Trans
from core.schema import Project
from tests.ledger.test_ledger_id import HEX32, fill

SITE = "field.site"


def _engine_url(url: str) -> str:
    return url.replace("postgresql://", "postgresql+psycopg://", 1)


def _publish(led: SqlLedger, key: str) -> None:
    led.publish(Trans((Action(SITE, key, Cmd.NEW, {"name": key}),), base=led.rev()), "ann")


def test_two_restores_in_a_row_keep_both_points_in_order(sql_url: str, project: Project,
                                                          tmp_path: Path) -> None:
    src = SqlLedger(f"sqlite:///{tmp_path / 'src.db'}", project)
    fill(src)
    ops.backup(src, tmp_path / "b1.backup")
    p1 = src.rev()
    src.close()
    led = ops.restore(tmp_path / "b1.backup", sql_url, project)  # SQLite or PostgreSQL
    try:
        first = led.restored
        assert first[0] == p1 and HEX32.fullmatch(first[1]) and led.restores == (first,)
        _publish(led, "k9")
        ops.backup(led, tmp_path / "b2.backup")
        p2 = led.rev()
    finally:
        led.close()
    with sqlite3.connect(tmp_path / "b2.backup") as c:  # the backup carries the list
        meta = dict(c.execute("SELECT name, value FROM backup_meta").fetchall())
    assert orjson.loads(meta["restores"]) == [list(first)]
    led = ops.restore(tmp_path / "b2.backup", f"sqlite:///{tmp_path / 'r2.db'}", project)
    try:
        assert led.restores[0] == first and led.restores[1][0] == p2 > p1
        assert led.restored == led.restores[1] and led.restores[1][1] != first[1]
        both = led.restores
        ops.backup(led, tmp_path / "b3.backup")
    finally:
        led.close()
    led = SqlLedger(f"sqlite:///{tmp_path / 'r2.db'}", project, create=False)  # kept
    try:
        assert led.restores == both
    finally:
        led.close()
    # the same backup restored again elsewhere: the backup's list and a new point
    led = ops.restore(tmp_path / "b3.backup", f"sqlite:///{tmp_path / 'r3.db'}", project)
    try:
        assert led.restores[:2] == both and len(led.restores) == 3
        assert led.restores[2][1] not in {rid for _, rid in both}
    finally:
        led.close()


def test_a_ledger_restored_by_session_7_keeps_its_point_as_the_first(
        sql_url: str, project: Project, tmp_path: Path) -> None:
    """Session 7 stored one point (restored/restore_id) and no list: it becomes the first
    entry, read as it is by verify/backup (create=False), stored by the first writer, and
    carried by a backup to the next restore."""
    src = SqlLedger(f"sqlite:///{tmp_path / 'src.db'}", project)
    fill(src)
    ops.backup(src, tmp_path / "b1.backup")
    src.close()
    led = ops.restore(tmp_path / "b1.backup", sql_url, project)
    point = led.restored
    led.close()
    eng = create_engine(_engine_url(sql_url))
    with eng.begin() as c:  # the session-7 layout: no restores column
        c.execute(text("ALTER TABLE evt_meta DROP COLUMN restores"))
    eng.dispose()
    led = SqlLedger(sql_url, project, create=False)
    try:
        assert led.restores == (point,) and led.restored == point
        ops.backup(led, tmp_path / "b2.backup")
    finally:
        led.close()
    led = ops.restore(tmp_path / "b2.backup", f"sqlite:///{tmp_path / 'r2.db'}", project)
    try:
        assert led.restores[0] == point and len(led.restores) == 2
    finally:
        led.close()
    led = SqlLedger(sql_url, project)  # a writer adds the column; the point stays the first
    try:
        assert led.restores == (point,)
        _publish(led, "k8")
    finally:
        led.close()


def test_damaged_restore_points_are_refused_with_the_fix(project: Project,
                                                          tmp_path: Path) -> None:
    src = SqlLedger(f"sqlite:///{tmp_path / 'src.db'}", project)
    fill(src)
    ops.backup(src, tmp_path / "b.backup")
    src.close()
    with sqlite3.connect(tmp_path / "b.backup") as c:
        c.execute("INSERT INTO backup_meta VALUES ('restores', '[[1, 2]]')")
    target = tmp_path / "r.db"
    with pytest.raises(StorageError, match=r"restore points .* damaged.*nothing was restored"):
        ops.restore(tmp_path / "b.backup", f"sqlite:///{target}", project)
    assert not target.exists()
