"""``SyncMachine.hold_edits`` (a new token waits for the answers to the edits sent with the
old one, ``desktop.app.use_token``) across a lost connection and a restart (session 15):
the edits whose answer was lost are sent again, alone, and counted as unanswered until
answered; the held ones stay held until the hold is lifted."""

from __future__ import annotations

import random

from core.satellite.machine import Open, Phase, SyncMachine, frames_of
from core.wire import Ack, SatRes
from tests.satellite.test_machine import FakeStore, body, connect, sat_reply, stat_reply, trans


def _uids(frame: str) -> list[str]:
    return [t["uid"] for t in body(frame)[1]["trans"]]


def test_held_edits_lost_with_the_connection_go_again_alone_until_answered() -> None:
    st = FakeStore()
    st.pending = [trans("u1"), trans("u2")]
    m = SyncMachine(st, random.Random(1))
    assert _uids(connect(m)) == ["u1", "u2"]
    m.hold_edits = True
    st.pending.append(trans("u3"))  # made during the wait: held
    m.local_change(1.0)
    assert frames_of(m.take()) == [] and m.edits_unanswered == 2
    m.disconnected(1.5, "connection lost")  # the answers lost with it
    assert m.edits_in_flight == 0 and m.edits_unanswered == 2
    m.start(2.0)  # "Sync now" while waiting to retry: the hold is kept
    assert m.hold_edits
    m.tick(m.info.retry_at or 2.0)
    assert Open() in m.take()
    m.connected(2.5)
    [stat] = frames_of(m.take())
    m.received(stat_reply(stat.split("#")[1], 5000), 2.5)
    [sat] = frames_of(m.take())
    assert _uids(sat) == ["u1", "u2"]  # not u3
    tok = sat.split("\n")[0].split("#")[1]
    m.received(sat_reply(tok, SatRes(6000, acks=(Ack("u1", 5000), Ack("u2", 5000)))), 3.0)
    assert m.phase == Phase.LIVE and m.edits_unanswered == 0
    assert st.acked == {"u1": 5000, "u2": 5000}
    m.local_change(3.1)
    assert frames_of(m.take()) == []  # u3 still held
    m.hold_edits = False
    m.local_change(3.2)
    [f] = frames_of(m.take())
    assert _uids(f) == ["u3"]


def test_a_lost_edit_acked_by_the_catch_up_is_answered() -> None:
    st = FakeStore()
    st.pending = [trans("u1")]
    m = SyncMachine(st, random.Random(1))
    connect(m)
    m.hold_edits = True
    m.disconnected(1.0, "connection lost")
    assert m.edits_unanswered == 1
    st.pending = []  # e.g. a catch-up's audit named it (Satellite acks it): gone
    assert m.edits_unanswered == 0
    m.hold_edits = False
    assert m.edits_unanswered == 0
