"""``backup`` never writes over the ledger's own files (or a file that is not a backup);
``restore`` never restores into its own backup file. Real SQLite files."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from core.errors import StorageError
from core.ledger import ops
from core.ledger.sql import SqlLedger
from core.model import Action, Cmd, Trans
from core.schema import Project
from hubserver.cli import main

SITE = "field.site"


def pub(led: SqlLedger, key: str) -> Any:
    return led.publish(Trans((Action(SITE, key, Cmd.NEW, {"name": key}),), uid=key), "ann")


def _dests(db: Path) -> list[tuple[str, Path]]:
    d = db.parent
    (d / "link.db").symlink_to(db)
    os.link(db, d / "hard.db")
    return [("same path", db), ("relative path", Path(os.path.relpath(db))),
            ("symlink", d / "link.db"), ("hard link", d / "hard.db"),
            ("-wal", Path(f"{db}-wal")), ("-shm", Path(f"{db}-shm")),
            ("-journal", Path(f"{db}-journal")),
            ("its .tmp is the ledger", db.with_name(db.name[:-len(".tmp")]))]


def test_backup_refuses_the_ledgers_own_files(tmp_path: Path, project: Project,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    db = tmp_path / "live.tmp"  # so that "live" + ".tmp" is the ledger too
    led = SqlLedger(f"sqlite:///{db}", project)
    try:
        for i in range(5):
            pub(led, f"k{i}")
        for what, dest in _dests(db):
            with pytest.raises(StorageError, match="the ledger's own file") as ei:
                ops.backup(led, dest)
            assert "nothing was written" in str(ei.value), what
        # the live ledger is intact and keeps working: every acknowledged edit is there
        pub(led, "after")
        assert ops.verify(led) == []
        assert [led.state(SITE, f"k{i}") is not None for i in range(5)] == [True] * 5
        assert led.state(SITE, "after") is not None
    finally:
        led.close()


def test_backup_replaces_only_an_earlier_backup(tmp_path: Path, project: Project) -> None:
    led = SqlLedger(f"sqlite:///{tmp_path / 'hub.db'}", project)
    try:
        pub(led, "a")
        users = tmp_path / "hub-users.db"
        users.write_bytes(b"SQLite format 3\x00" + b"\x00" * 100)
        notes = tmp_path / "notes.txt"
        notes.write_text("keep me")
        for f in (users, notes):
            before = f.read_bytes()
            with pytest.raises(StorageError, match="not an Outpost backup"):
                ops.backup(led, f)
            assert f.read_bytes() == before
        with pytest.raises(StorageError, match="directory"):
            ops.backup(led, tmp_path)
        bak = tmp_path / "b.backup"
        ops.backup(led, bak)
        pub(led, "b")
        assert ops.backup(led, bak).events == 2  # an earlier backup is replaced
        empty = tmp_path / "empty.backup"
        empty.touch()  # e.g. made by mktemp
        assert ops.backup(led, empty).events == 2
    finally:
        led.close()


def test_restore_refuses_its_own_backup_file_as_target(tmp_path: Path, project: Project) -> None:
    led = SqlLedger(f"sqlite:///{tmp_path / 'hub.db'}", project)
    pub(led, "a")
    bak = tmp_path / "b.backup"
    ops.backup(led, bak)
    led.close()
    before = bak.read_bytes()
    (tmp_path / "blink").symlink_to(bak)
    for target in (bak, tmp_path / "blink", Path(f"{bak}-wal")):
        with pytest.raises(StorageError, match="backup's own file"):
            ops.restore(bak, f"sqlite:///{target}", project)
    other = tmp_path / "other.backup"
    ops.backup(SqlLedger(f"sqlite:///{tmp_path / 'hub.db'}", project), other)
    with pytest.raises(StorageError, match="is an Outpost backup"):
        ops.restore(bak, f"sqlite:///{other}", project)
    assert bak.read_bytes() == before
    ops.restore(bak, f"sqlite:///{tmp_path / 'new.db'}", project).close()


def test_cli_backup_onto_the_ledger_is_refused(tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "hub.sqlite"
    assert main(["user", "list", "--db", str(db)]) == 2  # no users file: none is made
    assert not tmp_path.joinpath("hub.sqlite.users.db").exists()
    from core.schema import load_project
    from hubserver.cli import DEMO_SCHEMA, open_hub_ledger

    led = open_hub_ledger(str(db), load_project(DEMO_SCHEMA))
    pub(led, "kept")
    try:
        assert main(["backup", str(db), "--db", str(db)]) == 2
        err = capsys.readouterr().err
        assert "the ledger's own file" in err and "backup done" not in err
        assert main(["verify", "--db", str(db)]) == 0
        assert led.state(SITE, "kept") is not None
    finally:
        led.close()


def test_restore_refuses_a_ledger_a_hub_made(sql_url: str, project: Project,
                                             tmp_path: Path) -> None:
    src = SqlLedger(f"sqlite:///{tmp_path / 'src.db'}", project)
    pub(src, "a")
    ops.backup(src, tmp_path / "b.backup")
    src.close()
    served = SqlLedger(sql_url, project)  # `outpost-hub serve` made it; satellites saw its id
    lid = served.ledger_id
    served.close()
    with pytest.raises(StorageError, match="already holds a ledger") as ei:
        ops.restore(tmp_path / "b.backup", sql_url, project)
    assert "new, empty database" in str(ei.value) and "point the hubs" in str(ei.value)
    again = SqlLedger(sql_url, project)
    try:
        assert again.ledger_id == lid and again.rev() == 0  # untouched
    finally:
        again.close()


def test_a_failed_restore_can_be_retried(project: Project, tmp_path: Path,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    src = SqlLedger(f"sqlite:///{tmp_path / 'src.db'}", project)
    pub(src, "a")
    lid = src.ledger_id
    ops.backup(src, tmp_path / "b.backup")
    src.close()
    target = f"sqlite:///{tmp_path / 'r.db'}"

    def broken(*_a: Any, **_k: Any) -> None:
        raise ValueError("cut off")

    with monkeypatch.context() as m:
        m.setattr(ops, "_copy", broken)
        with pytest.raises(StorageError):
            ops.restore(tmp_path / "b.backup", target, project)
    led = ops.restore(tmp_path / "b.backup", target, project)  # the retry
    try:
        assert led.ledger_id == lid and led.state(SITE, "a") is not None
    finally:
        led.close()


def test_cli_restore_into_a_served_database_is_refused(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from core.schema import load_project
    from hubserver.cli import DEMO_SCHEMA, open_hub_ledger

    project = load_project(DEMO_SCHEMA)
    src = open_hub_ledger(str(tmp_path / "a.db"), project)
    pub(src, "a")
    src.close()
    assert main(["backup", str(tmp_path / "b.backup"), "--db", str(tmp_path / "a.db")]) == 0
    open_hub_ledger(str(tmp_path / "served.db"), project).close()
    capsys.readouterr()
    assert main(["restore", str(tmp_path / "b.backup"), "--db",
                 str(tmp_path / "served.db")]) == 2
    err = capsys.readouterr().err
    assert "already holds a ledger" in err and "restore done" not in err
