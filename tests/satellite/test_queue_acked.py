"""Acks through ``sat_acked`` (session 12): an ack adds an entry there and removes one from
``sat_pending`` instead of rewriting its receipt, and every reader of receipt state sees the
receipt accepted at the ack's revision. A queue made before (its acks rewrote the receipts,
no ``sat_pending``/``sat_acked``) is read as it is, and upgraded at its first writable open.
Real SQLite files; a real hub where the acks come from one."""

from __future__ import annotations

import random
import sqlite3
from contextlib import closing
from pathlib import Path

from core.model import Action, Cmd
from core.satellite.api import ReceiptState
from core.satellite.client import SyncClient
from core.satellite.conflicts import own_of
from core.satellite.satellite import Satellite
from core.schema import Project
from hubserver.server import Hub

SITE = "field.site"


def _rows(sat: Satellite) -> dict[str, tuple[str, int]]:
    """uid -> (stored state, stored rev) of ``sat_receipt`` as the file holds it."""
    with closing(sqlite3.connect(sat.data.db_file)) as db:
        return {u: (s, int(r)) for u, s, r in db.execute(
            "SELECT uid, state, rev FROM sat_receipt")}


def _tables(path: Path) -> set[str]:
    with closing(sqlite3.connect(path)) as db:
        return {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}


async def _sync(sat: Satellite, hub: Hub) -> None:
    await SyncClient(sat, hub.url, rnd=random.Random(0)).sync_once(20)


def _readers_say_accepted(sat: Satellite, uids: list[str]) -> None:
    """Every reader of receipt state: these are accepted at distinct revisions, nothing is
    pending."""
    recs = {r.uid: r for r in sat.receipts()}
    revs = [recs[u].rev for u in uids]
    assert all(recs[u].state == ReceiptState.ACCEPTED for u in uids)
    assert all(r > 0 for r in revs) and len(set(revs)) == len(revs)
    assert all(recs[u].err == "" for u in uids)
    for u in uids:
        one = sat.receipt(u)
        assert one is not None and one.state == ReceiptState.ACCEPTED and one.rev == recs[u].rev
    q = sat.queue
    assert sat.status().pending == 0 and q.count(ReceiptState.PENDING) == 0
    assert q.count(ReceiptState.ACCEPTED) == len(uids) and q.local_conflicts() == 0
    assert q.rows([ReceiptState.PENDING]) == []
    assert [r["uid"] for r in q.rows([ReceiptState.ACCEPTED])] == uids
    assert q.accepted_among([*revs, 1, 2]) == set(revs)
    assert q.accepted_revs(min(revs)) == set(revs) - {min(revs)}
    assert q.acked_rev() == max(revs)
    last = q.last_accepted()
    assert last is not None and last.uid == uids[revs.index(max(revs))]
    assert own_of(sat, revs).revs == set(revs)
    assert sat.outbox() == []


async def test_an_ack_is_stored_beside_its_receipt_and_every_reader_sees_it(
        tmp_path: Path, project: Project, hub: Hub) -> None:
    sat = Satellite(tmp_path / "a", project)
    try:
        uids = [sat.pub([Action(SITE, f"s{i}", Cmd.NEW, {"name": f"N{i}"})]) for i in range(3)]
        # a local mark on a pending edit: gone once it is accepted
        sat.queue.set_local({uids[0]: "collides"})
        assert sat.queue.local_conflicts() == 1
        await _sync(sat, hub)
        stored = _rows(sat)
        # the receipts were not rewritten: the acks are in sat_acked
        assert {stored[u][0] for u in uids} == {"pending"}
        with closing(sqlite3.connect(sat.data.db_file)) as db:
            acked = dict(db.execute("SELECT r.uid, k.rev FROM sat_acked k JOIN sat_receipt r "
                                    "ON r.seq = k.seq"))
            assert db.execute("SELECT count(*) FROM sat_pending").fetchone()[0] == 0
        assert set(acked) == set(uids)
        _readers_say_accepted(sat, uids)
        assert {sat.receipt(u).rev for u in uids} == set(acked.values())  # type: ignore[union-attr]
        # an accepted receipt is no longer pending: not discarded, rebased nor rejected
        assert not sat.queue.discard(uids[1], "-")
        assert not sat.queue.reject(uids[1], "late", ())
        sat.queue.set_bases({uids[1]: 1})
        assert _rows(sat)[uids[1]] == stored[uids[1]]
        _readers_say_accepted(sat, uids)
    finally:
        sat.close()
    with closing(sqlite3.connect(sat.data.db_file)) as db:
        # a local conflict mark left on an acked receipt (a pending edit's, from before its
        # ack): no reader shows it, none counts it
        db.execute("UPDATE sat_receipt SET local_err = 'stale' WHERE uid = ?", (uids[0],))
        db.commit()
    again = Satellite(tmp_path / "a")  # and after a reopen
    try:
        _readers_say_accepted(again, uids)
    finally:
        again.close()
    reader = Satellite(tmp_path / "a", read_only=True)
    try:
        _readers_say_accepted(reader, uids)
    finally:
        reader.close()


def _as_before_session_12(file: Path) -> None:
    """Make the queue in ``file`` what an Outpost before session 12 leaves: acks rewrote the
    receipts (accepted, rev), no sat_pending, sat_acked nor pending_upto."""
    with closing(sqlite3.connect(file)) as db:
        db.execute("UPDATE sat_receipt SET state = 'accepted', local_err = '', rev = (SELECT rev "
                   "FROM sat_acked k WHERE k.seq = sat_receipt.seq) WHERE state = 'pending' AND "
                   "seq IN (SELECT seq FROM sat_acked)")
        db.execute("DROP TABLE sat_acked")
        db.execute("DROP TABLE sat_pending")
        db.execute("DELETE FROM sat_meta WHERE name = 'pending_upto'")
        db.commit()


async def test_a_queue_made_before_session_12_is_read_as_it_is_then_upgraded(
        tmp_path: Path, project: Project, hub: Hub) -> None:
    data = tmp_path / "old"
    sat = Satellite(data, project)
    try:
        done = [sat.pub([Action(SITE, f"s{i}", Cmd.NEW, {"name": f"N{i}"})]) for i in range(2)]
        await _sync(sat, hub)
        later = sat.pub([Action(SITE, "s9", Cmd.NEW, {"name": "later"})])
        file = sat.data.db_file
    finally:
        sat.close()
    _as_before_session_12(file)
    assert "sat_acked" not in _tables(file)
    assert {u: s for u, (s, _) in _rows_of(file).items()} == {
        done[0]: "accepted", done[1]: "accepted", later: "pending"}

    reader = Satellite(data, read_only=True)  # reads it as it is, makes nothing
    try:
        assert reader.status().pending == 1
        assert [r.state for r in reader.receipts()] == [ReceiptState.ACCEPTED] * 2 + [
            ReceiptState.PENDING]
        assert [t.uid for t in reader.outbox()] == [later]
    finally:
        reader.close()
    assert "sat_acked" not in _tables(file)

    reader = Satellite(data, read_only=True)  # open beside the writer, from before its upgrade
    sat = Satellite(data)  # the first writable open: the tables, the pending one in them
    try:
        assert {"sat_pending", "sat_acked"} <= _tables(file)
        with closing(sqlite3.connect(file)) as db:
            assert [r[0] for r in db.execute(
                "SELECT r.uid FROM sat_pending p JOIN sat_receipt r ON r.seq = p.seq")] == [later]
        assert sat.status().pending == 1 and [t.uid for t in sat.outbox()] == [later]
        await _sync(sat, hub)
        assert _rows(sat)[later][0] == "pending"  # acked through sat_acked now
        _readers_say_accepted(sat, [*done, later])
        # the reader opened before the upgrade reads the ack the writer stored there
        assert reader.queue.receipt(later).state == ReceiptState.ACCEPTED  # type: ignore[union-attr]
        assert reader.queue.summary()[0] == {}
        assert [r["uid"] for r in reader.queue.rows([ReceiptState.PENDING])] == []
    finally:
        sat.close()
        reader.close()


def _rows_of(file: Path) -> dict[str, tuple[str, int]]:
    with closing(sqlite3.connect(file)) as db:
        return {u: (s, int(r)) for u, s, r in db.execute("SELECT uid, state, rev FROM sat_receipt")}


async def test_edits_an_older_outpost_queued_in_an_upgraded_directory_stay_pending(
        tmp_path: Path, project: Project, hub: Hub) -> None:
    """Opened by an Outpost before session 12 again (it knows nothing of sat_pending): the
    edits it queued are pending for this one's readers, and sent after its next open."""
    data = tmp_path / "d"
    sat = Satellite(data, project)
    try:
        first = sat.pub([Action(SITE, "s1", Cmd.NEW, {"name": "A"})])
        await _sync(sat, hub)
        file = sat.data.db_file
    finally:
        sat.close()
    with closing(sqlite3.connect(file)) as db:  # what an older Outpost's pub writes
        db.execute("INSERT INTO sat_receipt (uid, base, created, acts, extra, state, rev, err, "
                   "conflicts, local_err, resolves, resolved_by, auth) VALUES ('old-1', 0, 1, "
                   """'[{"top":"field.site","key":"s2","cmd":"new","arg":{"name":"B"}}]', """
                   "NULL, 'pending', 0, '', NULL, '', '', '', 0)")
        db.commit()
    reader = Satellite(data, read_only=True)
    try:
        assert reader.status().pending == 1
        assert [(r.uid, r.state) for r in reader.receipts()] == [
            (first, ReceiptState.ACCEPTED), ("old-1", ReceiptState.PENDING)]
    finally:
        reader.close()
    sat = Satellite(data)
    try:
        assert [t.uid for t in sat.outbox()] == ["old-1"]
        await _sync(sat, hub)
        _readers_say_accepted(sat, [first, "old-1"])
    finally:
        sat.close()


def test_rejected_and_discarded_receipts_leave_the_pending_ones(
        tmp_path: Path, project: Project) -> None:
    sat = Satellite(tmp_path, project)
    try:
        a, b, c = (sat.pub([Action(SITE, f"s{i}", Cmd.NEW, {"name": f"N{i}"})]) for i in range(3))
        q = sat.queue
        assert q.reject(a, "no", ()) and q.discard(b, "-")
        assert not q.reject(a, "again", ()) and not q.discard(b, "-")
        with closing(sqlite3.connect(sat.data.db_file)) as db:
            assert [r[0] for r in db.execute(
                "SELECT r.uid FROM sat_pending p JOIN sat_receipt r ON r.seq = p.seq")] == [c]
        assert q.summary()[0] == {"pending": 1, "rejected": 1}
        assert [r["uid"] for r in q.rows([ReceiptState.PENDING, ReceiptState.REJECTED])] == [a, c]
        assert q.accept(c, 7) and not q.accept(c, 8)
        assert q.receipt(c).rev == 7  # type: ignore[union-attr]
        assert q.count(ReceiptState.PENDING) == 0 and q.count(ReceiptState.ACCEPTED) == 1
    finally:
        sat.close()
