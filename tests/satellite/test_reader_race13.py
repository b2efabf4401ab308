"""A reader (`outpost status`, show, export: a read-only replica) opening a data directory
while its holder (`outpost sync`, the app) is still making the replica's tables.

Session 12 saw `outpost status` fail "attempt to write a readonly database" under load: the
reader tried to make the missing tables, failed on its read-only file, and only then looked
whether the file was unfinished; when the holder finished in between, the look found it whole
and the SQL error went out. The window is hit here deterministically: the hook is the look
itself (``_unfinished``), and the holder finishes the file at that moment, before or after
the look answers."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest

import core.satellite.replica as replica_mod
from core.errors import StorageError
from core.ledger.sql import SqlLedger
from core.model import Action, Cmd, Trans
from core.satellite.api import ReceiptState
from core.satellite.replica import Replica, sqlite_url
from core.schema import Project


def _tables_only(db: Path, project: Project) -> None:
    with sqlite3.connect(db) as conn:  # the holder's first CREATE TABLE committed
        conn.execute("CREATE TABLE evt_event (id INTEGER PRIMARY KEY)")
    conn.close()


def _ledger_without_queue(db: Path, project: Project) -> None:
    SqlLedger(sqlite_url(db), project, layout="by-id").close()  # the queue's tables next


def _by_record_ledger_without_queue(db: Path, project: Project) -> None:
    """The by-record layout (a hub's default): its state tables are views, which the look
    counts as tables (it once found them missing and refused the whole file)."""
    SqlLedger(sqlite_url(db), project).close()


def _holder_finishes(db: Path, project: Project) -> None:
    """What the holder's first open does to the rest of the file (a writable Replica)."""
    rep = Replica(db, project)
    rep.queue.add(Trans((Action("field.site", "s1", Cmd.NEW, {"name": "Alder"}),),
                        uid="u1"))
    rep.ledger.close()


@pytest.mark.parametrize("half", [_tables_only, _ledger_without_queue,
                                  _by_record_ledger_without_queue])
def test_a_reader_never_fails_on_its_read_only_file_when_the_holder_finishes_meanwhile(
        tmp_path: Path, project: Project, monkeypatch: pytest.MonkeyPatch,
        half: Callable[[Path, Project], None]) -> None:
    db = tmp_path / "satellite.db"
    half(db, project)
    real = replica_mod._unfinished
    calls: list[bool] = []

    def finished_before_the_look(path: Path, proj: Project, immutable: bool = False) -> bool:
        if not calls:
            _holder_finishes(db, project)
        calls.append(real(path, proj, immutable))
        return calls[-1]

    monkeypatch.setattr(replica_mod, "_unfinished", finished_before_the_look)
    # before: the reader failed making a missing table, then looked: whole, so the SQL
    # error ("attempt to write a readonly database") went out. Now it looked first
    rep = Replica(db, project, read_only=True)
    try:
        assert calls == [False]
        assert rep.queue.count(ReceiptState.PENDING) == 1
    finally:
        rep.ledger.close()


@pytest.mark.parametrize("half", [_tables_only, _ledger_without_queue])
def test_a_reader_says_being_created_when_the_holder_finishes_just_after_its_look(
        tmp_path: Path, project: Project, monkeypatch: pytest.MonkeyPatch,
        half: Callable[[Path, Project], None]) -> None:
    db = tmp_path / "satellite.db"
    half(db, project)
    real = replica_mod._unfinished
    calls: list[bool] = []

    def finished_after_the_look(path: Path, proj: Project, immutable: bool = False) -> bool:
        calls.append(real(path, proj, immutable))
        if len(calls) == 1:
            _holder_finishes(db, project)
        return calls[-1]

    monkeypatch.setattr(replica_mod, "_unfinished", finished_after_the_look)
    with pytest.raises(StorageError) as exc:
        Replica(db, project, read_only=True)
    text = str(exc.value)
    assert calls[0] is True
    assert "is being created, or its creation was interrupted" in text, text
    assert "readonly" not in text and "CREATE TABLE" not in text
    # and the next look (the retry the message asks for) reads it whole
    monkeypatch.setattr(replica_mod, "_unfinished", real)
    rep = Replica(db, project, read_only=True)
    try:
        assert rep.queue.count(ReceiptState.PENDING) == 1
    finally:
        rep.ledger.close()
