"""Queue durability on a real SQLite file."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.errors import ConfigError, ValidationError
from core.model import Action, Cmd
from core.revision import Rev
from core.satellite.api import ReceiptState
from core.satellite.config import DataDir, SatConfig
from core.satellite.satellite import Satellite
from core.schema import Project

SITE = "field.site"


def test_pub_close_reopen_still_pending(tmp_path: Path, project: Project) -> None:
    sat = Satellite(tmp_path, project)
    uid = sat.pub([Action(SITE, "s1", Cmd.NEW, {"name": "A"})])
    sat.close()
    again = Satellite(tmp_path)  # the schema was stored with the data
    try:
        rec = again.receipt(uid)
        assert rec is not None and rec.state == ReceiptState.PENDING
        assert [t.uid for t in again.outbox()] == [uid]
        rv = again.record(SITE, "s1")
        assert rv is not None and rv.is_pending and rv.confirmed is None
        assert rv.fields is not None and rv.fields["name"] == "A"
        assert again.status().pending == 1
    finally:
        again.close()


def test_pub_rejects_what_does_not_apply_on_the_view(tmp_path: Path, project: Project) -> None:
    sat = Satellite(tmp_path, project)
    try:
        with pytest.raises(ValidationError, match="no such record"):
            sat.pub([Action(SITE, "nope", Cmd.MOD, {"name": "x"})])
        with pytest.raises(ValidationError, match="unknown field 'nmae'"):
            sat.pub([Action(SITE, "s1", Cmd.NEW, {"nmae": "x"})])
        sat.pub([Action(SITE, "s1", Cmd.NEW, {"name": "A"})])
        sat.pub([Action(SITE, "s1", Cmd.DEL)])
        assert sat.record(SITE, "s1") is None
        assert sat.status().pending == 2
    finally:
        sat.close()


def test_no_schema_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="outpost connect"):
        Satellite(tmp_path)


def test_config_is_private_and_token_not_in_repr(tmp_path: Path) -> None:
    dd = DataDir(tmp_path)
    dd.save_config(SatConfig("ws://127.0.0.1:1", "s3cret"))
    assert dd.config_file.stat().st_mode & 0o777 == 0o600
    cfg = dd.load_config()
    assert cfg.token == "s3cret" and "s3cret" not in repr(cfg)


def test_listeners_hear_pub(tmp_path: Path, project: Project) -> None:
    sat = Satellite(tmp_path, project)
    seen = []
    stop = sat.listen(seen.append)
    sat.pub([Action(SITE, "s1", Cmd.NEW, {"name": "A"})])
    stop()
    sat.pub([Action(SITE, "s2", Cmd.NEW, {"name": "B"})])
    sat.close()
    assert len(seen) == 1 and seen[0].records == {SITE: frozenset({"s1"})}


def test_listeners_hear_each_topics_records_of_a_stored_reply(
        tmp_path: Path, project: Project) -> None:
    """After a reply is stored, listeners hear the records it changed, per topic: a reply of
    one topic (a replay's, whose keys are gathered in C) and one of two topics alike, the
    acked edit's record included."""
    from core.model import Event
    from core.revision import parse_rev
    from core.wire import Ack, SatRes

    sat = Satellite(tmp_path, project)
    try:
        u1 = sat.pub([Action(SITE, "s1", Cmd.NEW, {"name": "A"})])
        seen = []
        sat.listen(seen.append)
        rev = parse_rev("2026-11-26T10:00:00Z")
        one = SatRes(rev, (Event(1, rev, SITE, "s1", Cmd.NEW, {"name": "A"}),
                           Event(2, rev + 1, SITE, "s2", Cmd.NEW, {"name": "B"})),
                     acks=(Ack(u1, rev),))
        two = SatRes(rev + 3, (Event(3, rev + 2, SITE, "s3", Cmd.NEW, {"name": "C"}),
                               Event(4, rev + 3, "field.obs", "o1", Cmd.NEW, {"site": "s3"})))
        for res in (one, two):
            sat.write(res)
            sat.written(res)
        heard = [c.records for c in seen if c.records]
        assert heard == [{SITE: frozenset({"s1", "s2"})},
                         {SITE: frozenset({"s3"}), "field.obs": frozenset({"o1"})}]
    finally:
        sat.close()


def test_local_mark_only_sticks_to_pending_receipts(tmp_path: Path, project: Project) -> None:
    sat = Satellite(tmp_path, project)
    try:
        done = sat.pub([Action(SITE, "s1", Cmd.NEW, {"name": "A"})])
        open_ = sat.pub([Action(SITE, "s2", Cmd.NEW, {"name": "B"})])
        assert sat.queue.accept(done, 7)
        # a stale mark for a receipt the hub accepted meanwhile must not stick to it
        sat.queue.set_local({done: "stale conflict", open_: "field changed"})
        rec = sat.queue.receipt(done)
        assert rec is not None and rec.state == ReceiptState.ACCEPTED and rec.err == ""
        rec = sat.queue.receipt(open_)
        assert rec is not None and rec.err == "field changed"
        sat.queue.set_local({})
        rec = sat.queue.receipt(open_)
        assert rec is not None and rec.err == ""
    finally:
        sat.close()


def test_take_changed_sees_a_write_once_its_transaction_committed(
        tmp_path: Path, project: Project) -> None:
    sat = Satellite(tmp_path, project)
    q = sat.queue
    try:
        q.take_changed(read=False)
        uid = sat.pub([Action(SITE, "s1", Cmd.NEW, {"name": "A"})])
        [r] = q.take_changed()
        assert r["uid"] == uid and r["state"] == ReceiptState.PENDING.value
        assert q.take_changed() == []
        with sat.replica.ledger.begin() as conn:
            q.accept_many([(uid, 5)], conn)
            assert q.take_changed() == []  # not committed: a reader would cache the old row
        assert q.take_changed() == []      # the transaction's owner calls touch() after it
        q.touch()
        [r] = q.take_changed()
        assert r["state"] == ReceiptState.ACCEPTED.value and r["rev"] == 5
    finally:
        sat.close()


def test_outbox_changes_only_when_a_stored_reply_is_written(
        tmp_path: Path, project: Project) -> None:
    """The sync machine reads the outbox while a reply is stored on a worker thread: between
    ``write`` (the ack of u1 committed) and ``written`` it must not show u2, a later edit of
    the same record whose base is not yet moved past u1 (the hub would reject it as a
    conflict with the satellite's own edit)."""
    from core.model import Audit, Event
    from core.revision import parse_rev
    from core.wire import Ack, SatRes

    sat = Satellite(tmp_path, project)
    try:
        u1 = sat.pub([Action(SITE, "s1", Cmd.NEW, {"name": "A"})])
        u2 = sat.pub([Action(SITE, "s1", Cmd.MOD, {"name": "B"})])
        [t1] = sat.outbox()
        assert t1.uid == u1  # u2 waits for u1's ack
        rev = parse_rev("2026-11-26T10:00:00Z")
        res = SatRes(rev, (Event(1, rev, SITE, "s1", Cmd.NEW, {"name": "A"}),),
                     acks=(Ack(u1, rev),), audits=(Audit(rev, t1.created, 0, "ann", None, u1),))
        before = sat.outbox()
        assert sat.outbox() is before  # the same list while unchanged (SyncStore.outbox)
        sat.write(res)
        assert sat.outbox() is before  # as before, until written
        sat.written(res)
        [t2] = sat.outbox()
        assert before == [t1]  # a new list: the one handed out is never changed
        u3 = sat.pub([Action(SITE, "s3", Cmd.NEW, {"name": "C"})])
        assert [t.uid for t in sat.outbox()] == [u2, u3]
        assert t2.uid == u2 and t2.base == rev
        rec = sat.receipt(u1)
        assert rec is not None and rec.state == ReceiptState.ACCEPTED
        rv = sat.record(SITE, "s1")
        assert rv is not None and rv.fields is not None and rv.fields["name"] == "B"
        assert rv.pending == (u2,) and not rv.conflict
    finally:
        sat.close()


def test_a_replys_acks_are_stored_by_seq_made_once_or_by_uid(
        tmp_path: Path, project: Project, monkeypatch: pytest.MonkeyPatch) -> None:
    """``Satellite.write`` makes a reply's ``seq -> rev`` once from the overlay and the queue
    stores it as it is (``Queue.accept_seqs``: no look-up, no second list of the acks); a
    reply acking a uid not held here, or one uid twice, goes by uid (``accept_many``: the
    first ack of a uid counts, unknown uids are left alone). Same receipts either way."""
    from core.revision import parse_rev
    from core.satellite.queue import Queue
    from core.wire import Ack, SatRes

    calls: list[str] = []
    by_seq, by_uid = Queue.accept_seqs, Queue.accept_many

    def seqs_spy(q: Queue, *a: object, **k: object) -> None:
        calls.append("seq")
        by_seq(q, *a, **k)  # type: ignore[arg-type]

    def uids_spy(q: Queue, *a: object, **k: object) -> None:
        calls.append("uid")
        by_uid(q, *a, **k)  # type: ignore[arg-type]

    monkeypatch.setattr(Queue, "accept_seqs", seqs_spy)
    monkeypatch.setattr(Queue, "accept_many", uids_spy)
    sat = Satellite(tmp_path, project)
    try:
        u = [sat.pub([Action(SITE, f"s{i}", Cmd.NEW, {"name": str(i)})]) for i in range(5)]
        rev = parse_rev("2026-11-26T10:00:00Z")
        for res in (SatRes(rev, acks=(Ack(u[0], rev + 1), Ack(u[1], rev + 2))),
                    SatRes(rev, acks=(Ack(u[2], rev + 3), Ack(u[2], rev + 9))),
                    SatRes(rev, acks=(Ack("not-held-here", rev + 4), Ack(u[3], rev + 5)))):
            sat.write(res)
            sat.written(res)
        assert calls == ["seq", "uid", "uid"]
        got = {x: sat.receipt(x) for x in u}
        assert {x: (r.state, r.rev) for x, r in got.items() if r is not None} == {
            u[0]: (ReceiptState.ACCEPTED, rev + 1), u[1]: (ReceiptState.ACCEPTED, rev + 2),
            u[2]: (ReceiptState.ACCEPTED, rev + 3), u[3]: (ReceiptState.ACCEPTED, rev + 5),
            u[4]: (ReceiptState.PENDING, 0)}
        assert [t.uid for t in sat.outbox()] == [u[4]] and sat.status().pending == 1
    finally:
        sat.close()
    again = Satellite(tmp_path)  # as stored
    try:
        assert again.status().pending == 1
        assert [t.uid for t in again.outbox()] == [u[4]]
        r2 = again.receipt(u[2])
        assert r2 is not None and (r2.state, r2.rev) == (ReceiptState.ACCEPTED, rev + 3)
    finally:
        again.close()


def _acked_before_its_event(sat: Satellite) -> tuple[str, Rev]:
    """u1 makes s1, u2 modifies it; a batch of a catch-up acks u1 at ``rev`` before its
    event arrives: u2 is not sendable. (u2, rev)."""
    from core.revision import parse_rev
    from core.wire import Ack, SatRes

    u1 = sat.pub([Action(SITE, "s1", Cmd.NEW, {"name": "A"})])
    u2 = sat.pub([Action(SITE, "s1", Cmd.MOD, {"name": "B"})])
    rev = parse_rev("2026-11-26T10:00:00Z")
    sat.apply_sat(SatRes(rev - 5, acks=(Ack(u1, rev),), more=True))
    assert sat.outbox() == []
    return u2, rev


def test_an_edit_waits_until_the_acked_edit_before_it_is_replicated(
        tmp_path: Path, project: Project) -> None:
    """A batched catch-up sends acks before the events: u2 (same record as u1) must not be sent
    while u1 is acknowledged but its event not replicated, else it leaves with a base before
    u1 and the hub rejects it as a conflict with the satellite's own edit (found by the
    simulation with pipelined sync)."""
    from core.model import Event
    from core.wire import SatRes

    sat = Satellite(tmp_path, project)
    try:
        u2, rev = _acked_before_its_event(sat)
        rv = sat.record(SITE, "s1")
        assert rv is not None and rv.fields is not None and rv.fields["name"] == "B"
        sat.apply_sat(SatRes(rev, (Event(1, rev, SITE, "s1", Cmd.NEW, {"name": "A"}),)))
        [t2] = sat.outbox()
        assert t2.uid == u2 and t2.base == rev
    finally:
        sat.close()


def test_an_edit_blocked_behind_an_acked_one_is_sent_once_that_is_replicated(
        tmp_path: Path, project: Project) -> None:
    """As above, but u2 collides with a change of someone else, so its base cannot move: it is
    still sent once u1's event is in (the hub decides), not left out of a stale outbox (found
    by the simulation, seed 99)."""
    from core.model import Event, Update

    sat = Satellite(tmp_path, project)
    try:
        u2, rev = _acked_before_its_event(sat)
        sat.apply_update(Update(rev + 1, (Event(1, rev, SITE, "s1", Cmd.NEW, {"name": "A"}),
                                          Event(2, rev + 1, SITE, "s1", Cmd.MOD, {"name": "C"}))))
        [t2] = sat.outbox()
        assert t2.uid == u2 and t2.base == 0  # not moved: "name" changed by someone else
    finally:
        sat.close()


@pytest.mark.parametrize("update_from", [True, False], ids=["update-from", "sqlite<3.33"])
def test_accept_many_in_parts_marks_each_pending_receipt_once(
        tmp_path: Path, project: Project, update_from: bool,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Acks go into the receipts as ``UPDATE ... FROM (VALUES ...)`` of up to 400 rows (a
    replay's 1,000 per reply): every pending receipt acked gets its rev and loses its local
    mark, the first ack of a uid counts (as one update per ack), and receipts not pending
    (rejected) or unknown uids are left alone. A SQLite before 3.33 (no ``UPDATE ...
    FROM``) gets one statement per ack, with the same result (merge review 10)."""
    import core.satellite.queue as queue_mod

    monkeypatch.setattr(queue_mod, "_UPDATE_FROM", update_from)
    sat = Satellite(tmp_path, project, synchronous="OFF")
    q = sat.queue
    try:
        uids = [sat.pub([Action(SITE, f"s{i}", Cmd.NEW, {"name": str(i)})]) for i in range(903)]
        assert q.reject(uids[5], "no", [])
        q.set_local({uids[7]: "field changed"})
        acks = [(u, 1000 + i) for i, u in enumerate(uids)]
        q.accept_many([*acks[:450], (uids[0], 9), ("no-such-uid", 3), *acks[450:]])
        got = {r.uid: r for r in q.receipts()}
        assert got[uids[5]].state == ReceiptState.REJECTED and got[uids[5]].rev == 0
        accepted = {u: r.rev for u, r in got.items() if r.state == ReceiptState.ACCEPTED}
        assert accepted == {u: 1000 + i for i, u in enumerate(uids) if i != 5}
        assert got[uids[7]].err == "" and "no-such-uid" not in got
        q.accept_many([(uids[1], 5)])  # one ack: no longer pending, nothing changes
        rec = q.receipt(uids[1])
        assert rec is not None and rec.rev == 1001
    finally:
        sat.close()
