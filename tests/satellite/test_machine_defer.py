"""The sync machine with ``defer_apply`` (what the asyncio client uses): hub data goes out as
:class:`Apply` commands, one at a time and in order; the next catch-up batch is requested before
the current one is stored (pipelining). Scripted frames, virtual clock, no sockets."""

from __future__ import annotations

import random

from core.model import Update
from core.satellite.machine import Apply, Close, Phase, SyncMachine, frames_of
from core.wire import Ack, SatRes, enc_update, format_push
from tests.satellite.test_machine import FakeStore, body, connect, ev, sat_reply, trans


class DeferStore(FakeStore):
    """FakeStore plus the deferred-apply half of SyncStore."""

    def __init__(self) -> None:
        super().__init__()
        self.written_items: list[SatRes | Update] = []

    def write(self, item: SatRes | Update) -> None:
        if isinstance(item, SatRes):
            self.apply_sat(item)
        else:
            self.apply_update(item)

    def written(self, item: SatRes | Update) -> None:
        self.written_items.append(item)


def applies(outs: list[object]) -> list[Apply]:
    return [o for o in outs if isinstance(o, Apply)]


def run_apply(st: DeferStore, m: SyncMachine, a: Apply, now: float) -> list[object]:
    st.write(a.item)
    m.applied(now)
    return list(m.take())


def test_next_batch_is_requested_before_the_current_one_is_stored() -> None:
    st = DeferStore()
    m = SyncMachine(st, random.Random(1), lim=2, defer_apply=True)
    connect(m)
    m.received(sat_reply("2", SatRes(2000, (ev(1), ev(2)), more=True)), 1.0)
    outs = m.take()
    [again] = frames_of(outs)  # type: ignore[arg-type]
    [a1] = applies(outs)  # type: ignore[arg-type]
    assert outs.index(a1) > outs.index(next(o for o in outs if not isinstance(o, Apply)))
    head, b = body(again)
    assert head == "evt.sat#3" and b["rev"] == "0001-01-01T00:00:02Z"
    assert st.rev() == 0 and m.applying  # nothing stored yet
    # batch 2 arrives while batch 1 is still being written: queued, not started
    m.received(format_push("evt.update", enc_update(Update(6000, (ev(6),)))), 1.05)
    m.received(sat_reply("3", SatRes(5000, (ev(3), ev(4), ev(5)))), 1.1)
    assert applies(m.take()) == []  # type: ignore[arg-type]
    assert m.phase == Phase.LIVE and not m.idle  # live, but not idle until stored
    outs = run_apply(st, m, a1, 1.2)
    [a2] = applies(outs)  # type: ignore[arg-type]
    assert st.rev() == 2000 and isinstance(a2.item, SatRes) and a2.item.rev == 5000
    [a3] = applies(run_apply(st, m, a2, 1.3))  # type: ignore[arg-type]
    assert isinstance(a3.item, Update) and a3.item.rev == 6000  # the held push, after
    run_apply(st, m, a3, 1.4)
    assert [e.id for e in st.evs] == [1, 2, 3, 4, 5, 6] and st.rev() == 6000
    assert len(st.written_items) == 3 and m.idle


def test_pending_sent_after_an_earlier_ack_is_stored() -> None:
    st = DeferStore()
    st.pending = [trans("u1")]
    m = SyncMachine(st, random.Random(1), defer_apply=True)
    connect(m)
    m.received(sat_reply("2", SatRes(6000, acks=(Ack("u1", 6000),))), 1.0)
    [a] = applies(m.take())  # type: ignore[arg-type]
    st.pending.append(trans("u2"))  # e.g. became sendable once u1's ack is stored
    outs = run_apply(st, m, a, 1.1)
    [f] = frames_of(outs)  # type: ignore[arg-type]
    _head, b = body(f)
    assert [t["uid"] for t in b["trans"]] == ["u2"] and b["rev"] == "0001-01-01T00:00:06Z"


def test_storage_failure_drops_queued_data_and_closes() -> None:
    st = DeferStore()
    m = SyncMachine(st, random.Random(1), lim=2, defer_apply=True)
    connect(m)
    m.received(sat_reply("2", SatRes(2000, (ev(1), ev(2)), more=True)), 1.0)
    m.take()
    m.received(sat_reply("3", SatRes(4000, (ev(3), ev(4)), more=True)), 1.1)
    m.take()
    m.applied(1.2, "disk full")
    outs = m.take()
    assert any(isinstance(o, Close) for o in outs) and not applies(outs)  # type: ignore[arg-type]
    assert not m.applying and "disk full" in m.info.last_error
    m.disconnected(1.3, "")
    assert st.rev() == 0  # the next connection asks again from the replica's revision


def test_frames_decoded_elsewhere_are_taken_as_they_are() -> None:
    from core.satellite.machine import Incoming, decode_incoming

    st = DeferStore()
    m = SyncMachine(st, random.Random(1), lim=2, defer_apply=True)
    connect(m)
    inc = decode_incoming(sat_reply("2", SatRes(2000, (ev(1), ev(2)))))
    assert isinstance(inc.res, SatRes) and inc.res.evs == (ev(1), ev(2))
    m.received(inc, 1.0)
    [a] = applies(m.take())  # type: ignore[arg-type]
    assert a.item is inc.res and m.phase == Phase.LIVE
    bad = decode_incoming("")
    assert isinstance(bad, Incoming) and bad.err is not None
    m.received(bad, 1.1)
    assert any(isinstance(o, Close) for o in m.take()) and "bad frame" in m.info.last_error


def test_next_transactions_leave_when_a_reply_arrives_not_when_it_is_stored() -> None:
    from core.revision import format_rev

    st = DeferStore()
    st.pending = [trans("u1"), trans("u2"), trans("u3")]
    m = SyncMachine(st, random.Random(1), max_trans=1, defer_apply=True)
    _head, b = body(connect(m))
    assert [t["uid"] for t in b["trans"]] == ["u1"]
    m.received(sat_reply("2", SatRes(6000, (ev(6),), acks=(Ack("u1", 6000),))), 1.0)
    outs = m.take()
    [a1] = applies(outs)  # type: ignore[arg-type]
    [f] = frames_of(outs)  # type: ignore[arg-type]
    _head, b = body(f)
    # pipelined: u2 goes out while the reply that acked u1 is still to be stored, asking for
    # events after that reply's revision (not the replica's, which has not moved yet)
    assert [t["uid"] for t in b["trans"]] == ["u2"] and b["rev"] == format_rev(6000)
    assert st.rev() == 0 and m.applying
    # the next reply arrives while the first one is still being stored: u3 leaves at once
    m.received(sat_reply("3", SatRes(7000, (ev(7),), acks=(Ack("u2", 7000),))), 1.1)
    outs = m.take()
    assert applies(outs) == []  # type: ignore[arg-type]  # queued behind a1: in order
    [f] = frames_of(outs)  # type: ignore[arg-type]
    _head, b = body(f)
    assert [t["uid"] for t in b["trans"]] == ["u3"] and b["rev"] == format_rev(7000)
    [a2] = applies(run_apply(st, m, a1, 1.2))  # type: ignore[arg-type]
    m.received(sat_reply("4", SatRes(8000, (ev(8),), acks=(Ack("u3", 8000),))), 1.3)
    [a3] = applies(run_apply(st, m, a2, 1.4))  # type: ignore[arg-type]
    assert frames_of(run_apply(st, m, a3, 1.5)) == []  # type: ignore[arg-type]
    assert [e.id for e in st.evs] == [6, 7, 8] and st.acked == {"u1": 6000, "u2": 7000,
                                                                 "u3": 8000}
    assert m.idle


def test_a_new_edit_is_sent_while_a_reply_is_being_stored() -> None:
    st = DeferStore()
    m = SyncMachine(st, random.Random(1), defer_apply=True)
    connect(m)
    m.received(sat_reply("2", SatRes(6000, (ev(6),))), 1.0)
    [a] = applies(m.take())  # type: ignore[arg-type]
    st.pending.append(trans("u1"))
    m.local_change(1.1)
    [f] = frames_of(m.take())  # type: ignore[arg-type]
    assert [t["uid"] for t in body(f)[1]["trans"]] == ["u1"]
    run_apply(st, m, a, 1.2)


def test_prepare_encodes_the_next_request_ahead_and_sends_the_same_bytes() -> None:
    def run(prepare: bool) -> str:
        st = DeferStore()
        st.pending = [trans(f"u{i}") for i in range(5)]
        m = SyncMachine(st, random.Random(1), max_trans=2, defer_apply=True)
        connect(m)
        if prepare:
            m.prepare()
            assert set(m._encoded) == {"u2", "u3"}
        m.received(sat_reply("2", SatRes(6000, acks=(Ack("u0", 6000), Ack("u1", 6000)))), 1.0)
        [f] = frames_of(m.take())  # type: ignore[arg-type]
        assert not m._encoded
        return f

    assert run(True) == run(False)
    assert [t["uid"] for t in body(run(True))[1]["trans"]] == ["u2", "u3"]


def test_replies_that_queued_up_are_stored_in_one_write() -> None:
    """A satellite that fell behind (two replies arrived while the first was being stored)
    stores the waiting replies in one write, in order."""
    st = DeferStore()
    st.pending = [trans(f"u{i}") for i in range(4)]
    m = SyncMachine(st, random.Random(1), max_trans=1, defer_apply=True)
    connect(m)
    m.received(sat_reply("2", SatRes(6000, (ev(6),), (Ack("u0", 6000),), cont=True)), 1.0)
    [a1] = applies(m.take())  # type: ignore[arg-type]
    m.received(sat_reply("3", SatRes(7000, (ev(7),), (Ack("u1", 7000),), cont=True)), 1.1)
    m.received(sat_reply("4", SatRes(8000, (ev(8),), (Ack("u2", 8000),), cont=True)), 1.2)
    assert applies(m.take()) == []  # type: ignore[arg-type]
    [a2] = applies(run_apply(st, m, a1, 1.3))  # type: ignore[arg-type]
    assert isinstance(a2.item, SatRes) and a2.item.rev == 8000
    assert [e.id for e in a2.item.evs] == [7, 8]
    assert [a.uid for a in a2.item.acks] == ["u1", "u2"]
    run_apply(st, m, a2, 1.4)
    assert st.acked == {"u0": 6000, "u1": 7000, "u2": 8000} and st.rev() == 8000
    assert [e.id for e in st.evs] == [6, 7, 8] and len(st.written_items) == 2


def test_last_sync_moves_once_the_reply_is_stored_not_when_it_is_handled() -> None:
    """Session 10: ``last_sync`` moved when the last reply was handled, before it was stored:
    a reply a full disk refused showed a fresh last sync. It moves once everything received
    up to the sync is stored (not waiting for what came after), and not on a failed store."""
    st = DeferStore()
    m = SyncMachine(st, random.Random(1), lim=2, defer_apply=True)
    connect(m)
    m.received(sat_reply("2", SatRes(2000, (ev(1), ev(2)))), 1.0)  # the whole catch-up
    [a1] = applies(m.take())  # type: ignore[arg-type]
    assert m.phase == Phase.LIVE and m.info.last_sync == 0.0  # received, not stored
    m.received(format_push("evt.update", enc_update(Update(3000, (ev(3),)))), 1.1)
    [a2] = applies(run_apply(st, m, a1, 1.2))  # type: ignore[arg-type]
    assert m.info.last_sync == 1.2  # the reply is stored; the push after it need not be
    run_apply(st, m, a2, 1.3)
    assert m.info.last_sync == 1.3  # the push is a sync too, once stored
    m.received(format_push("evt.update", enc_update(Update(4000, (ev(4),)))), 1.4)
    [a3] = applies(m.take())  # type: ignore[arg-type]
    m.applied(1.5, "database or disk is full")
    assert a3.item.rev == 4000 and m.info.last_sync == 1.3  # not stored: no sync
    assert "disk is full" in m.info.last_error
