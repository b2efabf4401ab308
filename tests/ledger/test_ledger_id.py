"""The ledger's identity (``ledger_id``): made once when a ledger is created, kept for its life
(reopen, restart, backup and restore), given by the first writer to a ledger made before ids;
readers of such an old file get ``""`` and change nothing."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from sqlalchemy import text

from core.ledger import ops
from core.ledger.memory import MemLedger
from core.ledger.sql import SqlLedger
from core.model import Action, Cmd, Trans
from core.satellite.replica import read_only_url
from core.schema import Project

SITE = "field.site"
HEX32 = re.compile(r"[0-9a-f]{32}")


def fill(led: SqlLedger, n: int = 3) -> None:
    for i in range(n):
        led.publish(Trans((Action(SITE, f"k{i}", Cmd.NEW, {"name": f"n{i}"}),),
                          base=led.rev(), uid=f"u{i}"), "ann", now=1000 * (i + 1))


def snapshot(led: SqlLedger) -> tuple[Any, ...]:
    return led.rev(), led.last_id(), led.states(SITE), led.verify()


def test_a_new_ledger_gets_an_id_that_outlives_a_reopen(sql_url: str, project: Project,
                                                        tmp_path: Path) -> None:
    led = SqlLedger(sql_url, project)
    lid = led.ledger_id
    assert HEX32.fullmatch(lid)
    fill(led)
    led.close()
    led = SqlLedger(sql_url, project)  # a hub restart
    try:
        assert led.ledger_id == lid
    finally:
        led.close()
    other = SqlLedger(f"sqlite:///{tmp_path / 'other.db'}", project)
    try:
        assert HEX32.fullmatch(other.ledger_id) and other.ledger_id != lid
    finally:
        other.close()


def test_memory_ledgers_have_ids_of_their_own(project: Project) -> None:
    a, b = MemLedger(project), MemLedger(project)
    assert HEX32.fullmatch(a.ledger_id) and HEX32.fullmatch(b.ledger_id)
    assert a.ledger_id != b.ledger_id


def test_a_restored_backup_keeps_the_id(sql_url: str, project: Project,
                                        tmp_path: Path) -> None:
    src = SqlLedger(f"sqlite:///{tmp_path / 'src.db'}", project)
    fill(src)
    lid = src.ledger_id
    info = ops.backup(src, tmp_path / "b.bak")
    src.close()
    assert info.rev == 3000
    led = ops.restore(tmp_path / "b.bak", sql_url, project)  # SQLite or PostgreSQL
    try:
        assert led.ledger_id == lid and led.rev() == 3000
    finally:
        led.close()
    led = SqlLedger(sql_url, project)  # and it stays after a reopen
    try:
        assert led.ledger_id == lid
    finally:
        led.close()


def test_a_backup_made_before_ids_restores_with_an_id_of_its_own(project: Project,
                                                                 tmp_path: Path) -> None:
    import sqlite3

    src = SqlLedger(f"sqlite:///{tmp_path / 'src.db'}", project)
    fill(src)
    ops.backup(src, tmp_path / "b.bak")
    src.close()
    with sqlite3.connect(tmp_path / "b.bak") as c:  # the old format had no such row
        c.execute("DELETE FROM backup_meta WHERE name = 'ledger_id'")
    led = ops.restore(tmp_path / "b.bak", f"sqlite:///{tmp_path / 'r.db'}", project)
    try:
        assert HEX32.fullmatch(led.ledger_id) and led.rev() == 3000
    finally:
        led.close()


def _make_old(url: str) -> None:
    """The layout before ledger ids: evt_meta without the column (nor the restore point's)."""
    from sqlalchemy import create_engine

    eng = create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
    with eng.begin() as c:
        for col in ("ledger_id", "restored", "restore_id", "restores"):
            c.execute(text(f"ALTER TABLE evt_meta DROP COLUMN {col}"))
    eng.dispose()


def _meta_columns(url: str) -> list[str]:
    from sqlalchemy import create_engine, inspect

    eng = create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
    try:
        return sorted(c["name"] for c in inspect(eng).get_columns("evt_meta"))
    finally:
        eng.dispose()


def test_verify_and_backup_of_an_old_ledger_change_nothing(sql_url: str, project: Project,
                                                           tmp_path: Path) -> None:
    """`outpost-hub verify` / `backup` (create=False) read the ledger as it is: no column
    added, no id written; the backup holds no id (its restore makes one)."""
    led = SqlLedger(sql_url, project)
    fill(led)
    before = snapshot(led)
    led.close()
    _make_old(sql_url)
    cols = _meta_columns(sql_url)
    assert "ledger_id" not in cols
    led = SqlLedger(sql_url, project, create=False)
    try:
        assert led.ledger_id == "" and led.restored == (0, "") and led.verify() == []
        assert snapshot(led) == before
        ops.backup(led, tmp_path / "b.backup")
    finally:
        led.close()
    assert _meta_columns(sql_url) == cols
    import sqlite3

    with sqlite3.connect(tmp_path / "b.backup") as c:
        names = [r[0] for r in c.execute("SELECT name FROM backup_meta")]
    assert "ledger_id" not in names
    led = SqlLedger(sql_url, project)  # its first writer adds them
    try:
        assert HEX32.fullmatch(led.ledger_id) and led.restored == (0, "")
    finally:
        led.close()
    assert {"ledger_id", "restored", "restore_id", "restores"} <= set(_meta_columns(sql_url))


def test_a_restore_records_its_point_and_a_second_restore_replaces_it(
        sql_url: str, project: Project, tmp_path: Path) -> None:
    src = SqlLedger(f"sqlite:///{tmp_path / 'src.db'}", project)
    fill(src)
    assert src.restored == (0, "")
    ops.backup(src, tmp_path / "b.backup")
    rev = src.rev()
    src.close()
    led = ops.restore(tmp_path / "b.backup", sql_url, project)
    try:
        point = led.restored
        assert point[0] == rev and HEX32.fullmatch(point[1])
        led.publish(Trans((Action(SITE, "k9", Cmd.NEW, {"name": "n9"}),), base=led.rev()),
                    "ann", now=9000)
        ops.backup(led, tmp_path / "c.backup")
        later = led.rev()
        assert later > rev
    finally:
        led.close()
    led = SqlLedger(sql_url, project, create=False)  # kept, read by every open
    try:
        assert led.restored == point
    finally:
        led.close()
    led = ops.restore(tmp_path / "c.backup", f"sqlite:///{tmp_path / 'again.db'}", project)
    try:
        assert led.restored[0] == later and led.restored[1] not in ("", point[1])
    finally:
        led.close()


def test_an_old_ledger_gets_an_id_from_its_first_writer(sql_url: str,
                                                        project: Project) -> None:
    led = SqlLedger(sql_url, project)
    fill(led)
    before = snapshot(led)
    led.close()
    _make_old(sql_url)
    led = SqlLedger(sql_url, project)  # the first writer after the upgrade
    try:
        lid = led.ledger_id
        assert HEX32.fullmatch(lid)
        assert snapshot(led) == before and before[3] == []
        fill(led, 4)  # publishes still work (k3 is new)
    finally:
        led.close()
    led = SqlLedger(sql_url, project)
    try:
        assert led.ledger_id == lid  # made once
    finally:
        led.close()


def test_a_reader_of_an_old_file_works_and_changes_nothing(project: Project,
                                                           tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    url = f"sqlite:///{path}"
    led = SqlLedger(url, project)
    fill(led)
    before = snapshot(led)
    led.close()
    _make_old(url)
    content = path.read_bytes()
    ro = SqlLedger(read_only_url(path), project)
    try:
        assert ro.ledger_id == "" and snapshot(ro) == before
    finally:
        ro.close()
    assert path.read_bytes() == content
    led = SqlLedger(url, project)
    try:
        lid = led.ledger_id
        assert HEX32.fullmatch(lid)
    finally:
        led.close()
    ro = SqlLedger(read_only_url(path), project)  # a reader once it has one
    try:
        assert ro.ledger_id == lid
    finally:
        ro.close()
