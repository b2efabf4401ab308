"""What storing an ``evt.sat`` reply reads back on the sync loop (real SQLite files).

Replaying an offline queue stores one reply of 1,000 acks and their events per request; the
satellite's refresh after each reply runs on the event loop (the desktop's UI thread) while
the next reply is written on a worker thread. These tests pin what that refresh may skip:
the acknowledged receipts' rows (the reply says what they became) and the replica's revision
(only ``Replica.apply`` moves it), and that what it keeps in memory still equals what a
satellite opened afresh from the same files reads.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event

from core.errors import ValidationError
from core.model import Action, Audit, Cmd, Event
from core.revision import parse_rev
from core.satellite.api import ReceiptState
from core.satellite.satellite import Satellite
from core.schema import Project
from core.wire import Ack, SatRes

SITE = "field.site"


@contextmanager
def statements(sat: Satellite) -> Iterator[list[str]]:
    """Every SQL statement SQLite runs for ``sat`` inside the block (all pooled connections:
    the pool is emptied first, so each connection is made again with the trace set)."""
    seen: list[str] = []
    engine = sat.replica.ledger.engine

    def on_connect(dbapi: sqlite3.Connection, _rec: Any) -> None:
        dbapi.set_trace_callback(seen.append)

    event.listen(engine, "connect", on_connect)
    engine.dispose()
    try:
        yield seen
    finally:
        event.remove(engine, "connect", on_connect)
        engine.dispose()


def reply(sat: Satellite, uids: list[str], rev0: int, first_id: int) -> SatRes:
    """The hub's reply that publishes ``uids`` (their one ``new`` each), one revision each."""
    by_uid = {t.uid: t for t in sat.outbox()}
    evs, acks, audits = [], [], []
    for i, u in enumerate(uids):
        t = by_uid[u]
        a = t.acts[0]
        rev = rev0 + i
        evs.append(Event(first_id + i, rev, a.top, a.key, a.cmd, a.arg))
        acks.append(Ack(u, rev))
        audits.append(Audit(rev, t.created, 0, "ann", None, u))
    return SatRes(rev0 + len(uids) - 1, tuple(evs), tuple(acks), audits=tuple(audits))


def snapshot(sat: Satellite) -> dict[str, Any]:
    """What the user and the sync machine see of a satellite."""
    return {
        "rev": sat.rev(),
        "outbox": [(t.uid, t.base) for t in sat.outbox()],
        "records": [(r.key, r.fields, r.confirmed, r.pending, r.conflict)
                    for r in sat.records(SITE)],
        "receipts": [(r.uid, r.state, r.rev) for r in sat.receipts()],
        "status": (sat.status().pending, sat.status().conflicts),
    }


def assert_reopened_equal(path: Path, project: Project, mine: dict[str, Any]) -> None:
    """What the satellite kept in memory equals what a satellite opened afresh reads."""
    fresh = Satellite(path, project)
    try:
        assert snapshot(fresh) == mine
    finally:
        fresh.close()


def test_a_reply_of_acks_is_stored_without_reading_its_receipts_or_the_revision_back(
        tmp_path: Path, project: Project) -> None:
    sat = Satellite(tmp_path / "s", project)
    try:
        uids = [sat.pub([Action(SITE, f"k{i}", Cmd.NEW, {"name": f"n{i}"})]) for i in range(6)]
        # a later edit of k0 waits behind its first one, and then its base moves
        later = sat.pub([Action(SITE, "k0", Cmd.MOD, {"name": "again"})])
        rev0 = parse_rev("2026-11-26T10:00:00Z")
        res = reply(sat, uids[:4], rev0, 1)
        sat.write(res)
        with statements(sat) as seen:
            sat.written(res)
            assert sat.rev() == res.rev
        receipt_reads = [s for s in seen if "FROM sat_receipt" in s and "uid IN" in s]
        meta_reads = [s for s in seen if "evt_meta" in s]
        # the edits queued since the last refresh are read (once); the acked ones are not
        assert not [u for u in uids[:4] if any(u in s for s in receipt_reads)], receipt_reads
        assert meta_reads == [], meta_reads
        mine = snapshot(sat)
        assert [u for u, _ in mine["outbox"]] == [uids[4], uids[5], later]
        assert dict(mine["outbox"])[later] == res.rev  # moved past its own first edit
        assert [r[1] for r in mine["receipts"]] == [ReceiptState.ACCEPTED] * 4 + [
            ReceiptState.PENDING] * 3
    finally:
        sat.close()
    assert_reopened_equal(tmp_path / "s", project, mine)


def test_a_repeated_ack_and_a_reject_are_read_back(tmp_path: Path, project: Project) -> None:
    """Only acks of receipts pending in memory are taken from the reply; an ack of one already
    accepted (a resend after a lost connection) and a reject are read as before."""
    from core.wire import Reject

    sat = Satellite(tmp_path / "s", project)
    try:
        u1 = sat.pub([Action(SITE, "a", Cmd.NEW, {"name": "A"})])
        u2 = sat.pub([Action(SITE, "b", Cmd.NEW, {"name": "B"})])
        rev0 = parse_rev("2026-11-26T10:00:00Z")
        first = SatRes(rev0 - 1, acks=(Ack(u1, rev0),), more=True)  # ack before its event
        sat.apply_sat(first)
        again = SatRes(rev0, (Event(1, rev0, SITE, "a", Cmd.NEW, {"name": "A"}),),
                       acks=(Ack(u1, rev0),), rejects=(Reject(u2, "no"),))
        sat.write(again)
        with statements(sat) as seen:
            sat.written(again)
        read = [s for s in seen if "FROM sat_receipt" in s and "uid IN" in s]
        assert len(read) == 1 and u1 in read[0] and u2 in read[0], read
        mine = snapshot(sat)
        assert [(u, st) for u, st, _ in mine["receipts"]] == [
            (u1, ReceiptState.ACCEPTED), (u2, ReceiptState.REJECTED)]
        assert mine["status"] == (0, 1)
    finally:
        sat.close()
    assert_reopened_equal(tmp_path / "s", project, mine)


def test_a_transaction_of_many_records_reads_their_states_at_once(
        tmp_path: Path, project: Project) -> None:
    """`outpost import` queues 500 rows per transaction: checking it on the user's view read
    each record's state with a statement of its own (500 reads per transaction)."""
    sat = Satellite(tmp_path / "sat", project)
    try:
        sat.pub([Action(SITE, "k0", Cmd.NEW, {"name": "Zero"})])  # one record pending
        acts = [Action(SITE, f"k{i}", Cmd.MOD if i == 0 else Cmd.NEW, {"name": f"N{i}"})
                for i in range(200)]
        with statements(sat) as seen:
            sat.pub(acts)
        reads = [s for s in seen if s.lstrip().upper().startswith("SELECT")
                 and "st_field_site" in s]
        assert 1 <= len(reads) <= 2, reads  # one read of the 199 records not pending
        assert [r.key for r in sat.records(SITE)][:3] == ["k0", "k1", "k10"]
        with pytest.raises(ValidationError):  # still checked on the view: k0 exists
            sat.pub([Action(SITE, "k0", Cmd.NEW, {"name": "Again"})])
    finally:
        sat.close()
