"""Reads of the queue that the app makes on its UI thread after every change (the status) or
every refresh of the conflicts view ("earlier, you"): they read index entries of the open
receipts and of the few revisions asked, not every accepted receipt (session 11). Real
SQLite files; the plans are SQLite's own (``EXPLAIN QUERY PLAN``)."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event

from core.model import Action, Cmd, Conflict, Trans
from core.satellite.conflicts import own_of
from core.satellite.queue import Queue
from core.satellite.satellite import Satellite
from core.schema import Project

SITE = "field.site"
ACCEPTED = 300


def filled(path: Path, project: Project) -> tuple[Satellite, int]:
    """A satellite with ACCEPTED accepted receipts (revisions 1001..), one pending and one
    rejected whose conflict's winner is the last accepted one. Returns it and that rev."""
    sat = Satellite(path, project)
    q = sat.queue
    q.add_many([(Trans((Action(SITE, f"k{i}", Cmd.NEW, {"name": f"N{i}"}),), base=0,
                       uid=f"u{i:05d}", created=5_000 + i), False, "", "", ())
                for i in range(ACCEPTED)])
    q.accept_many([(f"u{i:05d}", 1_001 + i) for i in range(ACCEPTED)])
    last = 1_000 + ACCEPTED
    q.add_many([(Trans((Action(SITE, "k0", Cmd.MOD, {"name": "mine"}),), base=0, uid="rej",
                       created=9_000), False, "", "conflict",
                 (Conflict(SITE, "k0", Cmd.MOD, "field changed", ("name",), {"name": "x"},
                           rev=last, usr="me"),)),
                (Trans((Action(SITE, "p", Cmd.NEW, {"name": "P"}),), base=0, uid="pend",
                       created=8_000), False, "", "", ())], rev=last)
    sat.close()
    return Satellite(path), last


def statements(sat: Satellite, fn: Any) -> list[tuple[str, Any]]:
    got: list[tuple[str, Any]] = []

    def seen(_c: Any, _cur: Any, stmt: str, params: Any, _ctx: Any, _many: bool) -> None:
        if not stmt.startswith(("BEGIN", "ROLLBACK", "COMMIT")):
            got.append((stmt, params))

    event.listen(sat.queue.engine, "before_cursor_execute", seen)
    try:
        fn()
    finally:
        event.remove(sat.queue.engine, "before_cursor_execute", seen)
    return got


def test_the_status_reads_index_entries_of_open_receipts_only(tmp_path: Path,
                                                              project: Project) -> None:
    sat, _ = filled(tmp_path, project)
    try:
        st = sat.status()
        # local_rev: the last receipt made (queue order), not the greatest created (review 16)
        assert (st.pending, st.conflicts, st.local_rev) == (1, 1, 8_000)
        said = statements(sat, sat.status)
        assert said
        db = sqlite3.connect(sat.data.db_file)
        aside = 0
        for stmt, params in said:
            plan = " ".join(r[3] for r in db.execute("EXPLAIN QUERY PLAN " + stmt, params))
            # before session 11: "SCAN sat_receipt USING INDEX ix_sat_receipt_state" (and a
            # read of every row for max(created)); since session 12 the pending ones are
            # the rows sat_pending names (by rowid), not the state index's pending entries
            # (which hold every receipt acked through sat_acked)
            assert "SCAN" not in plan, (stmt, plan)
            if "substr(err" in stmt:
                # session 12: the edits put aside are counted apart, from the rejected rows
                # (their error and conflicts), read by the index, only when some are rejected
                aside += 1
                assert "USING INDEX ix_sat_receipt_state_rev (state=?)" in plan, (stmt, plan)
            else:
                assert "COVERING INDEX" in plan or (
                    "SEARCH r USING INTEGER PRIMARY KEY" in plan and "sat_pending" in plan) or (
                    # the last receipt's created (review 16): max(seq), then that row
                    "SEARCH sat_receipt USING INTEGER PRIMARY KEY (rowid=?)" in plan), (
                        stmt, plan)
        assert aside == 1
        db.close()
    finally:
        sat.close()


def test_own_of_decodes_only_the_last_accepted_receipt(
        tmp_path: Path, project: Project, monkeypatch: pytest.MonkeyPatch) -> None:
    sat, last = filled(tmp_path, project)
    try:
        sat.config = sat.config.with_hub("ws://h", token="t")  # names: the last's user too
        decoded: list[str] = []
        real = Queue._receipt

        def counted(self: Queue, r: Any) -> Any:
            decoded.append(r["uid"])
            return real(self, r)

        monkeypatch.setattr(Queue, "_receipt", counted)
        own = own_of(sat, [last, 1_001, 77, 0])
        assert own.revs == {last, 1_001} and own.named
        assert decoded == [f"u{ACCEPTED - 1:05d}"]  # the last accepted, alone
    finally:
        sat.close()


def test_a_queue_made_before_session_11_gets_its_indexes_at_the_first_writable_open(
        tmp_path: Path, project: Project) -> None:
    sat, last = filled(tmp_path, project)
    sat.close()
    file = sat.data.db_file
    with sqlite3.connect(file) as db:  # as session 10 made it: an index by state alone
        db.execute("DROP INDEX ix_sat_receipt_state_rev")
        db.execute("DROP INDEX ix_sat_receipt_created")
        db.execute("DROP INDEX ix_sat_receipt_rejected_key")  # session 13's
        db.execute("CREATE INDEX ix_sat_receipt_state ON sat_receipt (state)")
    db.close()

    def indexes() -> set[str]:
        with sqlite3.connect(file) as db:
            return {r[0] for r in db.execute(
                "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = "
                "'sat_receipt' AND name LIKE 'ix_%'")}

    reader = Satellite(tmp_path, read_only=True)  # reads it as it is, changes nothing
    try:
        assert reader.status().pending == 1 and own_of(reader, [last]).revs == {last}
    finally:
        reader.close()
    assert indexes() == {"ix_sat_receipt_state"}
    again = Satellite(tmp_path)
    try:
        assert indexes() == {"ix_sat_receipt_state_rev", "ix_sat_receipt_created",
                             "ix_sat_receipt_rejected_key"}
        st = again.status()
        # local_rev: the last receipt made (queue order), not the greatest created (review 16)
        assert (st.pending, st.conflicts, st.local_rev) == (1, 1, 8_000)
        assert len(again.receipts()) == ACCEPTED + 2
    finally:
        again.close()
