"""The sync state machine with scripted frames and a virtual clock (no sockets)."""

from __future__ import annotations

import random

import orjson

from core.model import Action, Cmd, Event, Trans, Update
from core.revision import Rev, format_rev
from core.satellite.machine import Backoff, Close, Open, Phase, SyncMachine, frames_of
from core.wire import Ack, Reject, SatRes, enc_sat_res, enc_update, format_push, format_reply


class FakeStore:
    """Our own SyncStore interface, in memory."""

    def __init__(self, mig: str = "v1") -> None:
        self._rev: Rev = 0
        self._mig = mig
        self.pending: list[Trans] = []
        self.evs: list[Event] = []
        self.acked: dict[str, Rev] = {}
        self.rejected: dict[str, str] = {}
        self.lid = ""
        self.point: tuple[Rev, str] = (0, "")
        self.known: tuple[tuple[Rev, str], ...] = ()

    def ledger(self) -> str:
        return self.lid

    def adopt_ledger(self, lid: str) -> None:
        self.lid = lid

    def restore_points(self) -> tuple[tuple[Rev, str], ...]:
        # ``point`` set by a test: a replica that stored one point (made before session 8)
        if self.known and self.known[-1] == self.point:
            return self.known
        return (self.point,) if self.point[1] else ()

    def acked_rev(self) -> Rev:
        return max(self.acked.values(), default=0)

    def unresolved(self) -> int:
        return len(self.rejected)

    def adopt_restore_points(self, points: tuple[tuple[Rev, str], ...]) -> None:
        self.known = tuple(points)
        self.point = points[-1]

    def rev(self) -> Rev:
        return self._rev

    def mig(self) -> str:
        return self._mig

    def topics(self) -> list[str]:
        return ["field.site"]

    def outbox(self) -> list[Trans]:
        return list(self.pending)

    def pending_among(self, uids: list[str]) -> set[str]:
        mine = {t.uid for t in self.pending}
        return {u for u in uids if u in mine}

    def apply_sat(self, res: SatRes) -> None:
        self._apply(res.rev, res.evs)
        for a in res.acks:
            self.acked[a.uid] = a.rev
        for r in res.rejects:
            self.rejected[r.uid] = r.err
        done = {a.uid for a in res.acks} | {r.uid for r in res.rejects}
        self.pending = [t for t in self.pending if t.uid not in done]

    def apply_update(self, upd: Update) -> None:
        self._apply(upd.rev, upd.evs)

    def _apply(self, rev: Rev, evs: tuple[Event, ...]) -> None:
        assert rev >= self._rev, "the replica must never go back"
        self.evs.extend(e for e in evs if e.rev > self._rev)
        self._rev = rev


def ev(i: int) -> Event:
    return Event(i, 1000 * i, "field.site", f"k{i}", Cmd.NEW, {"name": str(i)})


def trans(uid: str) -> Trans:
    return Trans((Action("field.site", uid, Cmd.NEW, {"name": uid}),), uid=uid)


def body(text: str) -> tuple[str, dict]:  # type: ignore[type-arg]
    head, _, raw = text.partition("\n")
    return head, orjson.loads(raw) if raw else {}


def stat_reply(tok: str, rev: Rev = 0, mig: str = "v1") -> str:
    # an Outpost hub (it acks by uid: "acks", ours); a daql hub's: tests/satellite/test_daql.py
    return format_reply("evt.stat", tok, {"rev": format_rev(rev), "mig": mig, "acks": True})


def sat_reply(tok: str, res: SatRes) -> str:
    return format_reply("evt.sat", tok, enc_sat_res(res))


def opened(m: SyncMachine, now: float = 0.0) -> str:
    """Start and connect: the evt.stat frame sent (not answered)."""
    m.start(now)
    assert m.take() == [Open()]
    m.connected(now)
    [stat] = frames_of(m.take())
    return stat


def connect(m: SyncMachine, now: float = 0.0) -> str:
    """Start and connect; answer evt.stat; return the evt.sat frame sent."""
    assert opened(m, now) == "evt.stat#1"
    m.received(stat_reply("1", 5000), now)
    [sat] = frames_of(m.take())
    return sat


def test_connect_sends_pending_queue_and_all_topics() -> None:
    st = FakeStore()
    st.pending = [trans("u1"), trans("u2")]
    m = SyncMachine(st, random.Random(1), lim=2)
    sat = connect(m)
    head, b = body(sat)
    assert head == "evt.sat#2"
    assert [t["uid"] for t in b["trans"]] == ["u1", "u2"]
    assert b["tops"] == ["field.site"] and b["lim"] == 2
    assert m.phase == Phase.CATCHUP and m.info.hub_rev == 5000


def test_catch_up_in_batches_with_more_and_held_pushes() -> None:
    st = FakeStore()
    m = SyncMachine(st, random.Random(1), lim=2)
    connect(m)
    m.received(sat_reply("2", SatRes(2000, (ev(1), ev(2)), more=True)), 1.0)
    [again] = frames_of(m.take())
    head, b = body(again)
    assert head == "evt.sat#3" and b["trans"] == [] and b["rev"] == format_rev(2000)
    assert m.info.progress == (2, 0) and m.phase == Phase.CATCHUP
    # a push during catch-up is held, not applied past the missing batch
    m.received(format_push("evt.update", enc_update(Update(6000, (ev(6),)))), 1.1)
    assert st.rev() == 2000
    m.received(sat_reply("3", SatRes(5000, (ev(3), ev(4), ev(5)))), 1.2)
    assert m.phase == Phase.LIVE and m.idle
    assert [e.id for e in st.evs] == [1, 2, 3, 4, 5, 6] and st.rev() == 6000
    m.received(format_push("evt.update", enc_update(Update(7000, (ev(7),)))), 2.0)
    assert st.rev() == 7000 and m.info.last_sync == 2.0


def test_acks_rejects_and_live_publish() -> None:
    st = FakeStore()
    st.pending = [trans("u1"), trans("u2")]
    m = SyncMachine(st, random.Random(1))
    connect(m)
    m.received(sat_reply("2", SatRes(6000, acks=(Ack("u1", 6000),),
                                     rejects=(Reject("u2", "conflict: x"),))), 1.0)
    assert st.acked == {"u1": 6000} and "u2" in st.rejected
    assert m.phase == Phase.LIVE and "u2" in m.info.last_error
    st.pending.append(trans("u3"))
    m.local_change(2.0)
    [f] = frames_of(m.take())
    head, b = body(f)
    assert head.startswith("evt.sat#") and [t["uid"] for t in b["trans"]] == ["u3"]
    assert not m.idle


def test_lost_ack_resends_same_uid_after_reconnect() -> None:
    st = FakeStore()
    st.pending = [trans("u1")]
    rnd = random.Random(7)
    m = SyncMachine(st, rnd, backoff=Backoff(0.5, 30.0))
    first = body(connect(m))[1]
    m.disconnected(1.0, "connection lost")  # the ack never came
    assert m.phase == Phase.OFFLINE and m.info.retry_at is not None
    assert 1.0 + 0.25 <= m.info.retry_at <= 1.0 + 0.5
    m.tick(m.info.retry_at)
    assert m.take() == [Open()]
    m.connected(2.0)
    [stat] = frames_of(m.take())
    m.received(stat_reply(stat.split("#")[1]), 2.0)
    [sat] = frames_of(m.take())
    second = body(sat)[1]
    assert [t["uid"] for t in second["trans"]] == [t["uid"] for t in first["trans"]] == ["u1"]
    # a stale reply to the first connection's token is ignored
    m.received(sat_reply("2", SatRes(9000, acks=(Ack("u1", 9000),))), 2.1)
    assert st.acked == {}


def test_backoff_grows_to_the_cap_with_bounded_jitter() -> None:
    st = FakeStore()
    m = SyncMachine(st, random.Random(3), backoff=Backoff(0.5, 30.0))
    m.start(0.0)
    m.take()
    now = 0.0
    delays = []
    for attempt in range(12):
        m.disconnected(now, "refused")
        assert m.info.retry_at is not None
        d = m.info.retry_at - now
        cap = min(30.0, 0.5 * 2 ** attempt)
        assert cap / 2 <= d <= cap, (attempt, d)
        delays.append(d)
        assert m.wake_at() == m.info.retry_at
        m.tick(now + d / 2)
        assert m.take() == []  # not yet
        now += d
        m.tick(now)
        assert m.take() == [Open()]
    assert delays[-1] >= 15.0 and m.info.attempts == 12


def test_same_seed_same_delays() -> None:
    def run(seed: int) -> list[float]:
        m = SyncMachine(FakeStore(), random.Random(seed))
        m.start(0.0)
        out = []
        for _ in range(5):
            m.disconnected(0.0, "x")
            out.append(m.info.retry_at or 0.0)
            m.tick(1e9)
        return out
    assert run(42) == run(42) and run(42) != run(43)


def test_schema_mismatch_stops_without_touching_data() -> None:
    st = FakeStore(mig="mine")
    st.pending = [trans("u1")]
    m = SyncMachine(st, random.Random(1))
    opened(m)
    m.received(stat_reply("1", 5000, mig="theirs"), 0.5)
    outs = m.take()
    assert outs == [Close("schema mismatch")]
    assert m.phase == Phase.STOPPED and "schema version theirs" in m.info.last_error
    assert st.rev() == 0 and st.pending and st.evs == []
    m.disconnected(1.0, "closed")
    assert m.phase == Phase.STOPPED and m.wake_at() is None


def test_unanswered_request_times_out() -> None:
    m = SyncMachine(FakeStore(), random.Random(1), timeout=10.0)
    opened(m)
    assert m.wake_at() == 10.0
    m.tick(10.0)
    assert m.take() == [Close("request timeout")]
    assert "did not answer" in m.info.last_error


def test_bad_frame_closes_with_error() -> None:
    m = SyncMachine(FakeStore(), random.Random(1))
    opened(m)
    m.received("evt.stat#1\n{not json", 0.1)
    assert m.take() == [Close("bad frame")] and "bad frame" in m.info.last_error


def _live(m: SyncMachine) -> None:
    """Connect and finish the catch-up so the machine is LIVE."""
    connect(m)
    m.received(sat_reply("2", SatRes(5000)), 0.0)
    m.take()
    assert m.phase == Phase.LIVE


def _push(i: int) -> str:
    return format_push("evt.update", enc_update(Update(1000 * i, (ev(i),))))


def test_nothing_is_stored_after_a_failure_until_reconnected() -> None:
    """A push that arrives after a failed one (bad push here; storage failures and timeouts
    take the same path) must not be stored: the replica would move past the failed events."""
    st = FakeStore()
    m = SyncMachine(st, random.Random(1))
    _live(m)
    m.received(_push(6), 0.1)
    assert [e.id for e in st.evs] == [6]
    m.received("evt.update\n{\"rev\": 12}", 0.2)  # a bad push: dropped, connection closes
    assert m.take() == [Close("bad push")]
    m.received(_push(8), 0.3)  # still in flight on the dying connection
    assert [e.id for e in st.evs] == [6] and st.rev() == 6000
    m.disconnected(0.4, "closed")
    assert m.phase == Phase.OFFLINE


def test_a_late_reply_after_a_timeout_is_not_followed_by_its_pushes() -> None:
    st = FakeStore()
    m = SyncMachine(st, random.Random(1), timeout=10.0)
    connect(m)  # evt.sat#2 outstanding
    m.tick(10.0)
    assert m.take() == [Close("request timeout")]
    m.received(sat_reply("2", SatRes(7000, (ev(7),))), 10.1)
    m.received(_push(9), 10.2)
    assert st.evs == [] and st.rev() == 0


def _live_with_pending(n: int, *, cont: bool, pipeline: int = 2) -> tuple[FakeStore,
                                                                           SyncMachine]:
    st = FakeStore()
    st.pending = [trans(f"u{i}") for i in range(n)]
    m = SyncMachine(st, random.Random(1), max_trans=1, pipeline=pipeline)
    sat = connect(m)
    _head, b = body(sat)
    assert b["cont"] is True and [t["uid"] for t in b["trans"]] == ["u0"]
    m.received(sat_reply("2", SatRes(6000, (), (Ack("u0", 6000),), cont=cont)), 1.0)
    return st, m


def test_two_sat_requests_in_flight_once_the_hub_echoes_cont() -> None:
    st, m = _live_with_pending(5, cont=True)
    sent = [body(f) for f in frames_of(m.take())]
    # u1 and u2 leave at once: the second before the first's reply (the hub continues it)
    assert [[t["uid"] for t in b["trans"]] for _, b in sent] == [["u1"], ["u2"]]
    assert [h for h, _ in sent] == ["evt.sat#3", "evt.sat#4"]
    assert m.phase == Phase.LIVE and not m.caught_up
    # a push while requests are in flight is held until the last reply
    late = Event(10, 9500, "field.site", "k10", Cmd.NEW, {"name": "x"})
    m.received(format_push("evt.update", enc_update(Update(9500, (late,)))), 1.05)
    assert st.rev() == 6000
    m.received(sat_reply("3", SatRes(7000, (), (Ack("u1", 7000),), cont=True)), 1.1)
    assert [[t["uid"] for t in body(f)[1]["trans"]] for f in frames_of(m.take())] == [["u3"]]
    m.received(sat_reply("4", SatRes(8000, (), (Ack("u2", 8000),), cont=True)), 1.2)
    m.received(sat_reply("5", SatRes(9000, (), (Ack("u3", 9000),), cont=True)), 1.3)
    [last] = frames_of(m.take())
    assert [t["uid"] for t in body(last)[1]["trans"]] == ["u4"]
    m.received(sat_reply("6", SatRes(9200, (), (Ack("u4", 9200),), cont=True)), 1.4)
    assert m.idle and st.acked == {f"u{i}": 6000 + 1000 * i for i in range(4)} | {"u4": 9200}
    assert st.rev() == 9500 and [e.id for e in st.evs] == [10]  # the held push, stored last


def test_one_sat_request_in_flight_without_the_echo_or_with_pipeline_1() -> None:
    for cont, pipeline in ((False, 2), (True, 1)):
        _st, m = _live_with_pending(3, cont=cont, pipeline=pipeline)
        [only] = frames_of(m.take())
        assert [t["uid"] for t in body(only)[1]["trans"]] == ["u1"]
        m.local_change(1.05)
        assert frames_of(m.take()) == []  # still one in flight


def test_held_pushes_a_reply_covers_are_dropped_at_once() -> None:
    """While requests stay in flight (a long pipelined replay) every push is held; those a
    reply covers are dropped when it arrives instead of piling up until the last reply."""
    st, m = _live_with_pending(6, cont=True)
    m.take()
    pushes = [Update(r, (Event(20 + i, r, "field.site", f"p{i}", Cmd.NEW, {"name": "x"}),))
              for i, r in enumerate((6100, 6200, 7500))]
    for upd in pushes:
        m.received(format_push("evt.update", enc_update(upd)), 1.05)
    assert len(m._held) == 3
    covered = SatRes(7000, tuple(e for u in pushes[:2] for e in u.evs), (Ack("u1", 7000),),
                     cont=True)
    m.received(sat_reply("3", covered), 1.1)
    assert [u.rev for u in m._held] == [7500]  # after the reply: still held
    m.received(sat_reply("4", SatRes(8000, pushes[2].evs, (Ack("u2", 8000),), cont=True)), 1.2)
    assert m._held == []
    assert [e.id for e in st.evs] == [20, 21, 22] and st.rev() == 8000


def test_the_last_sat_request_of_a_long_queue_is_small() -> None:
    """After the hub's last reply the satellite still stores it while the hub has nothing
    left to do: a request that would leave more than ``last_trans`` but at most ``max_trans``
    transactions behind leaves exactly ``last_trans`` for a small last request (queue order
    kept); a short rest goes whole."""
    st = FakeStore()
    st.pending = [trans(f"u{i}") for i in range(11)]
    m = SyncMachine(st, random.Random(1), max_trans=4, first_trans=2, last_trans=2)
    _head, b = body(connect(m))
    assert [t["uid"] for t in b["trans"]] == ["u0", "u1"]
    m.received(sat_reply("2", SatRes(6000, (), (), cont=True)), 0.1)
    sent = [body(f)[1] for f in frames_of(m.take())]
    # 9 left: 4 (5 left), then 3 of those 5, leaving 2 for the last request
    assert [[t["uid"] for t in b["trans"]] for b in sent] == [["u2", "u3", "u4", "u5"],
                                                              ["u6", "u7", "u8"]]
    m.received(sat_reply("3", SatRes(6000, (), (), cont=True)), 0.2)
    [last] = [body(f)[1] for f in frames_of(m.take())]
    assert [t["uid"] for t in last["trans"]] == ["u9", "u10"]
    # without it (0), the rest goes in requests of max_trans as before
    st2 = FakeStore()
    st2.pending = [trans(f"u{i}") for i in range(11)]
    m2 = SyncMachine(st2, random.Random(1), max_trans=4, first_trans=2, last_trans=0)
    connect(m2)
    m2.received(sat_reply("2", SatRes(6000, (), (), cont=True)), 0.1)
    sent = [body(f)[1] for f in frames_of(m2.take())]
    assert [[t["uid"] for t in b["trans"]] for b in sent] == [["u2", "u3", "u4", "u5"],
                                                              ["u6", "u7", "u8", "u9"]]


def test_the_first_sat_request_of_a_connection_is_small() -> None:
    """Until the first reply the hub has nothing else to work on (and the satellite does not
    know yet whether it may keep two requests in flight): the first ``evt.sat`` carries at
    most ``first_trans`` transactions, the next ones up to ``max_trans``, on every new
    connection."""
    st = FakeStore()
    st.pending = [trans(f"u{i}") for i in range(10)]
    m = SyncMachine(st, random.Random(1), max_trans=4, first_trans=2)
    _head, b = body(connect(m))
    assert [t["uid"] for t in b["trans"]] == ["u0", "u1"]
    m.received(sat_reply("2", SatRes(6000, (), (), cont=True)), 0.1)
    sent = [body(f)[1] for f in frames_of(m.take())]
    assert [[t["uid"] for t in b["trans"]] for b in sent] == [["u2", "u3", "u4", "u5"],
                                                              ["u6", "u7", "u8", "u9"]]
    m.disconnected(0.2, "gone")  # nothing acked: all ten are sent again
    m.tick(100.0)
    assert m.take() == [Open()]
    m.connected(100.0)
    [stat] = frames_of(m.take())
    m.received(stat_reply(stat.partition("#")[2], 7000), 100.0)  # not behind the replica
    [sat] = frames_of(m.take())
    assert [t["uid"] for t in body(sat)[1]["trans"]] == ["u0", "u1"]


def stat_cont(tok: str, rev: Rev = 0) -> str:
    """An ``evt.stat`` reply of a hub that says it honours ``cont`` (ours, session 10)."""
    return format_reply("evt.stat", tok, {"rev": format_rev(rev), "mig": "v1", "cont": True})


def test_a_hub_saying_cont_in_evt_stat_gets_the_second_request_with_the_first() -> None:
    """The hub said up front that it honours ``cont``: the first ``evt.sat`` (``first_trans``)
    and the second (up to ``max_trans``) leave together, before any reply; a hub that does
    not say it gets one request until a reply echoes ``cont`` (as before)."""
    st = FakeStore()
    st.pending = [trans(f"u{i}") for i in range(10)]
    m = SyncMachine(st, random.Random(1), max_trans=4, first_trans=2, last_trans=0)
    opened(m)
    m.received(stat_cont("1", 5000), 0.0)
    sent = [body(f) for f in frames_of(m.take())]
    assert [h for h, _ in sent] == ["evt.sat#2", "evt.sat#3"]
    assert [[t["uid"] for t in b["trans"]] for _, b in sent] == [["u0", "u1"],
                                                                 ["u2", "u3", "u4", "u5"]]
    assert all(b["cont"] is True and b["rev"] == format_rev(0) for _, b in sent)
    assert m.phase == Phase.CATCHUP
    # the first reply: live, the third request goes (two in flight again)
    m.received(sat_reply("2", SatRes(6000, (), (Ack("u0", 6000), Ack("u1", 6000)),
                                     cont=True)), 0.1)
    assert m.phase == Phase.LIVE and not m.caught_up
    [third] = [body(f)[1] for f in frames_of(m.take())]
    assert [t["uid"] for t in third["trans"]] == ["u6", "u7", "u8", "u9"]
    m.received(sat_reply("3", SatRes(7000, (), tuple(Ack(f"u{i}", 7000) for i in range(2, 6)),
                                     cont=True)), 0.2)
    m.received(sat_reply("4", SatRes(8000, (), tuple(Ack(f"u{i}", 8000) for i in range(6, 10)),
                                     cont=True)), 0.3)
    assert m.idle and len(st.acked) == 10 and st.rev() == 8000
    # a hub that does not say it: one request in flight until a reply echoes cont
    st2 = FakeStore()
    st2.pending = [trans(f"u{i}") for i in range(10)]
    m2 = SyncMachine(st2, random.Random(1), max_trans=4, first_trans=2, last_trans=0)
    [first] = [body(connect(m2))[1]]
    assert [t["uid"] for t in first["trans"]] == ["u0", "u1"] and frames_of(m2.take()) == []


def test_a_catch_up_with_more_and_the_second_request_in_flight() -> None:
    """A catch-up cut into batches while the second request (edits) is in flight: each reply
    with ``more`` asks for the next batch, every reply is stored in order, held pushes wait
    for the last reply, and the edits are acked once."""
    st = FakeStore()
    st.pending = [trans(f"u{i}") for i in range(3)]
    m = SyncMachine(st, random.Random(1), max_trans=4, first_trans=1, last_trans=0)
    opened(m)
    m.received(stat_cont("1", 9000), 0.0)
    assert len(frames_of(m.take())) == 2
    m.received(sat_reply("2", SatRes(2000, (ev(1), ev(2)), (Ack("u0", 9100),), more=True,
                                     cont=True)), 0.1)
    [nxt] = [body(f) for f in frames_of(m.take())]
    assert nxt[0] == "evt.sat#4" and nxt[1]["trans"] == [] and m.phase == Phase.CATCHUP
    m.received(_push(10), 0.15)  # held: a catch-up is under way
    # the hub continued the first reply: the second request's reply holds the next batch
    m.received(sat_reply("3", SatRes(4000, (ev(3), ev(4)), (Ack("u1", 9200), Ack("u2", 9200)),
                                     more=True, cont=True)), 0.2)
    assert [b["trans"] for _, b in (body(f) for f in frames_of(m.take()))] == [[]]
    m.received(sat_reply("4", SatRes(9200, (ev(5),), cont=True)), 0.3)
    assert m.phase == Phase.LIVE and not m.caught_up
    m.received(sat_reply("5", SatRes(9200, (), cont=True)), 0.4)
    assert m.caught_up and m.idle
    # every batch once, in order, then the held push (after the last reply's revision)
    assert [e.id for e in st.evs] == [1, 2, 3, 4, 5, 10] and st.rev() == 10000
    assert st.acked == {"u0": 9100, "u1": 9200, "u2": 9200}


def test_two_requests_refused_as_read_only_catch_up_once_without_the_edits() -> None:
    """A reader's token with both first requests in flight: the hub refuses each with
    ``readonly``; the first sends the catch-up without edits, the second changes nothing more
    (it used to drop the connection: "hub refused evt.sat"), and the edits stay pending."""
    st = FakeStore()
    st.pending = [trans(f"u{i}") for i in range(5)]
    m = SyncMachine(st, random.Random(1), max_trans=4, first_trans=2, last_trans=0)
    opened(m)
    m.received(stat_cont("1", 5000), 0.0)
    assert len(frames_of(m.take())) == 2
    refused = {"err": "user 'r' may only read", "code": "readonly"}
    m.received("evt.sat#2\n" + orjson.dumps(refused).decode(), 0.1)
    [catch] = [body(f)[1] for f in frames_of(m.take())]
    assert catch["trans"] == []
    m.received("evt.sat#3\n" + orjson.dumps(refused).decode(), 0.2)
    assert [o for o in m.take() if isinstance(o, Close)] == []
    m.received(sat_reply("4", SatRes(7000, (ev(7),), cont=True)), 0.3)
    assert m.caught_up and m.phase == Phase.LIVE and "may only read" in m.info.last_error
    assert [e.id for e in st.evs] == [7] and len(st.pending) == 5 and st.acked == {}


def test_events_of_own_pending_edits_with_their_audits_ack_them() -> None:
    """The hub applied u2 and u3 before, their acks lost (a crash, a connection lost with
    requests in flight): the catch-up brings their events back, with audits naming their
    uids, ahead of their acks. Each such audit acks its edit at its revision (what the
    hub's ack of the resent uid says), so the edits leave the queue with their events; an
    audit of another satellite's edit acks nothing."""
    from core.model import Audit

    st = FakeStore()
    st.pending = [trans("u1"), trans("u2"), trans("u3")]
    m = SyncMachine(st, random.Random(1), first_trans=1, last_trans=0)
    opened(m)
    m.received(stat_cont("1", 9000), 0.0)
    assert len(frames_of(m.take())) == 2  # u1, then u2 and u3
    evs = (Event(1, 7000, "field.site", "u2", Cmd.NEW, {"name": "u2"}),
           Event(2, 8000, "field.site", "other", Cmd.NEW, {"name": "x"}),
           Event(3, 8500, "field.site", "u3", Cmd.NEW, {"name": "u3"}),
           Event(4, 9100, "field.site", "u1", Cmd.NEW, {"name": "u1"}))
    audits = (Audit(7000, 6900, 0, "me", None, "u2"), Audit(8000, 7900, 0, "bo", None, "ob"),
              Audit(8500, 8400, 0, "me", None, "u3"), Audit(9100, 9000, 0, "me", None, "u1"))
    m.received(sat_reply("2", SatRes(9100, evs, (Ack("u1", 9100),), audits=audits,
                                     cont=True)), 0.1)
    assert st.acked == {"u1": 9100, "u2": 7000, "u3": 8500} and st.pending == []
    assert "ob" not in st.acked
    # the hub's own acks of the resent u2 and u3 follow: the same revisions, nothing else
    m.received(sat_reply("3", SatRes(9100, (), (Ack("u2", 7000), Ack("u3", 8500)),
                                     cont=True)), 0.2)
    assert st.acked == {"u1": 9100, "u2": 7000, "u3": 8500} and m.idle


# -- ledger identity (Outpost extension of evt.stat) ---------------------------------------------

LID_A, LID_B = "a" * 32, "b" * 32


def stat_with(tok: str, rev: Rev, lid: str, mig: str = "v1") -> str:
    res = {"rev": format_rev(rev), "mig": mig, "ledger": lid} if lid else {
        "rev": format_rev(rev), "mig": mig, "acks": True}
    return format_reply("evt.stat", tok, res)


def handshake(m: SyncMachine, reply: str, now: float = 0.0) -> list[str]:
    """Start, connect, answer evt.stat with ``reply`` (its token is 1); the frames sent
    after it."""
    assert opened(m, now) == "evt.stat#1"
    m.received(reply, now)
    return frames_of(m.take())


def test_the_first_handshake_stores_the_hubs_ledger_id_before_sending() -> None:
    st = FakeStore()
    st.pending = [trans("u1")]
    m = SyncMachine(st, random.Random(1))
    adopted: list[tuple[str, int]] = []
    real = st.adopt_ledger

    def adopt(lid: str) -> None:  # stored before the evt.sat goes out
        adopted.append((lid, len(m._out)))
        real(lid)

    st.adopt_ledger = adopt  # type: ignore[method-assign]
    [sat] = handshake(m, stat_with("1", 5000, LID_A))
    assert sat.startswith("evt.sat#2") and adopted == [(LID_A, 0)]
    assert st.ledger() == LID_A and m.phase == Phase.CATCHUP


def test_a_hub_serving_another_ledger_stops_sync_and_nothing_is_sent_or_stored() -> None:
    st = FakeStore()
    st.lid = LID_A
    st._rev = 3000
    st.pending = [trans("u1")]
    m = SyncMachine(st, random.Random(1))
    opened(m)
    m.received(stat_with("1", 9000, LID_B), 0.0)  # ahead of the replica: not "behind"
    outs = m.take()
    assert frames_of(outs) == [] and any(isinstance(o, Close) for o in outs)
    assert m.phase == Phase.STOPPED and m.wake_at() is None  # no retry
    err = m.info.last_error
    assert "this replica came from another ledger" in err and "new --data DIR" in err
    assert LID_A in err and LID_B in err and "nothing was sent or changed" in err
    assert st.lid == LID_A and st.rev() == 3000 and st.evs == [] and st.acked == {}
    # a push arriving anyway is ignored
    m.received(format_push("evt.update", enc_update(Update(9500, (ev(9),)))), 0.1)
    assert st.rev() == 3000 and st.evs == []


def test_the_same_ledger_id_syncs() -> None:
    st = FakeStore()
    st.lid = LID_A
    m = SyncMachine(st, random.Random(1))
    [sat] = handshake(m, stat_with("1", 5000, LID_A))
    assert sat.startswith("evt.sat#2") and m.phase == Phase.CATCHUP and st.lid == LID_A


def test_a_hub_without_ledger_id_is_not_checked_and_nothing_is_adopted() -> None:
    """daql (or an older Outpost hub) serves no id: no check, as before."""
    for stored in ("", LID_A):
        st = FakeStore()
        st.lid = stored
        m = SyncMachine(st, random.Random(1))
        [sat] = handshake(m, stat_with("1", 5000, ""))
        assert sat.startswith("evt.sat#2") and st.lid == stored


def test_the_id_is_adopted_only_when_the_other_checks_pass() -> None:
    # another schema: stopped, no id stored
    st = FakeStore()
    m = SyncMachine(st, random.Random(1))
    assert handshake(m, stat_with("1", 5000, LID_A, mig="v2")) == []
    assert m.phase == Phase.STOPPED and st.lid == ""
    # a hub behind the replica: nothing sent, no id stored, retried; then adopted once the
    # hub has caught up
    st = FakeStore()
    st._rev = 7000
    st.pending = [trans("u1")]
    m = SyncMachine(st, random.Random(1), backoff=Backoff(1.0, 1.0))
    assert handshake(m, stat_with("1", 6000, LID_A)) == []
    assert st.lid == "" and m.behind == (6000, 7000)
    m.disconnected(0.1)
    assert m.phase == Phase.OFFLINE
    wake = m.wake_at()
    assert wake is not None
    m.tick(wake)
    assert m.take() == [Open()]
    m.connected(wake)
    [stat] = frames_of(m.take())
    m.received(stat_with(stat.partition("#")[2], 7000, LID_A), wake)
    [sat] = frames_of(m.take())
    assert sat.startswith("evt.sat#") and st.lid == LID_A and m.behind is None


def test_a_failure_to_store_the_id_drops_the_connection_before_sending() -> None:
    from core.errors import StorageError

    st = FakeStore()
    st.pending = [trans("u1")]

    def fail(lid: str) -> None:
        raise StorageError("disk full (simulated)")

    st.adopt_ledger = fail  # type: ignore[method-assign]
    m = SyncMachine(st, random.Random(1))
    opened(m)
    m.received(stat_with("1", 5000, LID_A), 0.0)
    outs = m.take()
    assert frames_of(outs) == [] and any(isinstance(o, Close) for o in outs)
    assert "ledger id" in m.info.last_error and "disk full" in m.info.last_error
    m.disconnected(0.1)
    assert m.phase == Phase.OFFLINE and m.wake_at() is not None  # retried


# -- restore point (Outpost extension of evt.stat) ---------------------------------------------

RID_1, RID_2 = "1" * 32, "2" * 32


def stat_restored(tok: str, rev: Rev, restored: Rev, rid: str, lid: str = LID_A) -> str:
    return format_reply("evt.stat", tok, {
        "rev": format_rev(rev), "mig": "v1", "ledger": lid,
        "restored": format_rev(restored), "restore_id": rid})


def test_a_hub_restored_before_the_replicas_rev_stops_sync_even_when_ahead() -> None:
    """The case that slipped: the restored hub published since, so its revision (a wall
    clock) is past the replica's; its new events reuse the ids of the ones it lost."""
    st = FakeStore()
    st.lid = LID_A
    st._rev = 3000
    st.pending = [trans("u1")]
    m = SyncMachine(st, random.Random(1))
    assert handshake(m, stat_restored("1", 9000, 2000, RID_1)) == []  # nothing sent
    outs = m.take()
    assert m.phase == Phase.STOPPED and m.wake_at() is None  # no retry
    err = m.info.last_error
    assert "restored from a backup at revision " + format_rev(2000) in err
    assert "up to " + format_rev(3000) in err and "nothing was sent or changed" in err
    assert "outpost carry OLD_DIR --data NEWDIR --accepted" in err
    assert st.point == (0, "") and st.rev() == 3000 and st.evs == [] and st.acked == {}
    assert st.pending == [trans("u1")] and outs == []
    m.received(format_push("evt.update", enc_update(Update(9500, (ev(9),)))), 0.1)
    assert st.rev() == 3000 and st.evs == []


def test_a_hub_restored_and_still_behind_stops_rather_than_waits() -> None:
    st = FakeStore()
    st.lid = LID_A
    st._rev = 3000
    m = SyncMachine(st, random.Random(1))
    assert handshake(m, stat_restored("1", 2000, 2000, RID_1)) == []
    assert m.phase == Phase.STOPPED and "restored from a backup" in m.info.last_error


def test_a_replica_at_or_before_the_restore_point_adopts_it_before_sending() -> None:
    for mine in (0, 1500, 2000):
        st = FakeStore()
        st.lid = LID_A if mine else ""
        st._rev = mine
        st.pending = [trans("u1")]
        m = SyncMachine(st, random.Random(1))
        adopted: list[tuple[tuple[Rev, str], int]] = []
        real = st.adopt_restore_points

        def adopt(points: tuple[tuple[Rev, str], ...], real=real, m=m,
                  adopted=adopted) -> None:
            adopted.append((points[-1], len(m._out)))
            real(points)

        st.adopt_restore_points = adopt  # type: ignore[method-assign]
        [sat] = handshake(m, stat_restored("1", 9000, 2000, RID_1))
        assert sat.startswith("evt.sat#2") and m.phase == Phase.CATCHUP
        assert adopted == [((2000, RID_1), 0)] and st.point == (2000, RID_1)


def test_the_adopted_restore_point_syncs_and_a_new_restore_is_checked_again() -> None:
    st = FakeStore()
    st.lid = LID_A
    st._rev = 5000  # synced past the restore point it adopted
    st.point = (2000, RID_1)
    m = SyncMachine(st, random.Random(1))
    [sat] = handshake(m, stat_restored("1", 9000, 2000, RID_1))
    assert sat.startswith("evt.sat#2") and st.point == (2000, RID_1)
    # the same backup restored again: another restore id, the replica is past it
    m2 = SyncMachine(st, random.Random(1))
    assert handshake(m2, stat_restored("1", 9000, 2000, RID_2)) == []
    assert m2.phase == Phase.STOPPED and st.point == (2000, RID_1)
    # a later backup restored, the replica within it: adopted
    m3 = SyncMachine(st, random.Random(1))
    [sat] = handshake(m3, stat_restored("1", 9000, 6000, RID_2))
    assert sat.startswith("evt.sat#2") and st.point == (6000, RID_2)


def test_a_hub_serving_no_restore_point_is_not_checked() -> None:
    st = FakeStore()
    st.lid = LID_A
    st._rev = 5000
    st.point = (2000, RID_1)
    m = SyncMachine(st, random.Random(1))
    [sat] = handshake(m, stat_with("1", 9000, LID_A))
    assert sat.startswith("evt.sat#2") and st.point == (2000, RID_1)


def test_an_edit_the_hub_acked_after_the_restore_point_counts_as_held() -> None:
    """Review: the check used the replica's revision only. Acks stored without their events
    (a failed read's reply, a catch-up cut short) leave an accepted receipt past it; a
    restore between the two lost that edit, and adopting the point hid the loss."""
    st = FakeStore()
    st.lid = LID_A
    st._rev = 1500
    st.acked = {"u1": 3000}  # accepted at 3000, its events never stored
    m = SyncMachine(st, random.Random(1))
    assert handshake(m, stat_restored("1", 9000, 2000, RID_1)) == []  # nothing sent
    assert m.phase == Phase.STOPPED and st.point == (0, "")
    assert "up to " + format_rev(3000) in m.info.last_error
    # at or before the point, the same replica adopts it
    st2 = FakeStore()
    st2.lid = LID_A
    st2._rev = 1500
    st2.acked = {"u1": 2000}
    m2 = SyncMachine(st2, random.Random(1))
    [sat] = handshake(m2, stat_restored("1", 9000, 2000, RID_1))
    assert sat.startswith("evt.sat#2") and st2.point == (2000, RID_1)


# -- every restore point (session 8: evt.stat "restores") --------------------------------------

RID_3 = "3" * 32


def stat_restores(tok: str, rev: Rev, points: list[tuple[Rev, str]], omitted: int = 0,
                  lid: str = LID_A) -> str:
    res: dict[str, object] = {
        "rev": format_rev(rev), "mig": "v1", "ledger": lid,
        "restored": format_rev(points[-1][0]), "restore_id": points[-1][1],
        "restores": [{"rev": format_rev(r), "id": i} for r, i in points]}
    if omitted:
        res["restores_omitted"] = omitted
    return format_reply("evt.stat", tok, res)


def test_two_restores_in_a_row_a_replica_past_the_first_stops() -> None:
    """Review of session 7: only the latest point was served. A replica that synced past
    the first restore's point (2000) before it and not since, the ledger then restored a
    second time from a backup taken after the replica's revision (4000): the second point
    alone lets it through (it adopted it, then failed on every retry, or kept records the
    hub lost). Every point after the one adopted is checked."""
    st = FakeStore()
    st.lid = LID_A
    st._rev = 3000
    st.pending = [trans("u1")]
    m = SyncMachine(st, random.Random(1))
    assert handshake(m, stat_restores("1", 9000, [(2000, RID_1), (4000, RID_2)])) == []
    assert m.phase == Phase.STOPPED and m.wake_at() is None and m.take() == []
    err = m.info.last_error
    assert "restored from a backup at revision " + format_rev(2000) in err
    assert "up to " + format_rev(3000) in err and "nothing was sent or changed" in err
    assert st.point == (0, "") and st.pending == [trans("u1")] and st.evs == []
    # an edit acked past a point counts as held: the same with the replica at 1500
    st2 = FakeStore()
    st2.lid = LID_A
    st2._rev = 1500
    st2.acked = {"u0": 2500}
    m2 = SyncMachine(st2, random.Random(1))
    assert handshake(m2, stat_restores("1", 9000, [(2000, RID_1), (4000, RID_2)])) == []
    assert m2.phase == Phase.STOPPED and "up to " + format_rev(2500) in m2.info.last_error


def test_only_the_restores_after_the_adopted_one_are_checked_and_the_latest_adopted() -> None:
    st = FakeStore()
    st.lid = LID_A
    st._rev = 3000  # synced past the first point after adopting it: fine
    st.point = (2000, RID_1)
    m = SyncMachine(st, random.Random(1))
    [sat] = handshake(m, stat_restores("1", 9000, [(2000, RID_1), (4000, RID_2),
                                                   (5000, RID_3)]))
    assert sat.startswith("evt.sat#2") and st.point == (5000, RID_3)
    # a restore after the adopted one below the replica's revision: stopped
    st.point = (2000, RID_1)
    st._rev = 4500
    m2 = SyncMachine(st, random.Random(1))
    assert handshake(m2, stat_restores("1", 9000, [(2000, RID_1), (4000, RID_2),
                                                   (5000, RID_3)])) == []
    assert m2.phase == Phase.STOPPED and format_rev(4000) in m2.info.last_error
    assert st.point == (2000, RID_1)


def test_an_adopted_point_the_hub_does_not_serve_checks_every_point() -> None:
    """The replica adopted a restore of another history (the same old backup restored
    again, so the hub's list lacks it): every point served is checked."""
    st = FakeStore()
    st.lid = LID_A
    st._rev = 3000
    st.point = (2000, RID_1)
    m = SyncMachine(st, random.Random(1))
    assert handshake(m, stat_restores("1", 9000, [(2000, RID_2), (6000, RID_3)])) == []
    assert m.phase == Phase.STOPPED and format_rev(2000) in m.info.last_error
    st.point = (1000, RID_1)
    st._rev = 1500
    m2 = SyncMachine(st, random.Random(1))
    [sat] = handshake(m2, stat_restores("1", 9000, [(2000, RID_2), (6000, RID_3)]))
    assert sat.startswith("evt.sat#2") and st.point == (6000, RID_3)


def test_restore_points_left_out_by_the_hub_stop_a_replica_that_holds_revisions() -> None:
    """The hub serves the last 64 points (restores_omitted: how many earlier ones it left
    out). A replica whose adopted point is not among those served may be past one left out:
    it stops (carry), unless it holds nothing yet."""
    pts = [(2000 + i, f"{i:032x}") for i in range(64)]
    st = FakeStore()
    st.lid = LID_A
    st._rev = 1000  # before every point served
    m = SyncMachine(st, random.Random(1))
    assert handshake(m, stat_restores("1", 9000, pts, omitted=2)) == []
    assert m.phase == Phase.STOPPED and "restored 66 times" in m.info.last_error
    assert "serves the last 64" in m.info.last_error and st.point == (0, "")
    empty = FakeStore()
    m2 = SyncMachine(empty, random.Random(1))
    [sat] = handshake(m2, stat_restores("1", 9000, pts, omitted=2))
    assert sat.startswith("evt.sat#2") and empty.point == pts[-1]
    # its adopted point among those served: checked as usual
    st.point = pts[10]
    m3 = SyncMachine(st, random.Random(1))
    [sat] = handshake(m3, stat_restores("1", 9000, pts, omitted=2))
    assert sat.startswith("evt.sat#2") and st.point == pts[-1]


def test_the_same_backup_restored_again_stops_no_replica_that_lost_nothing() -> None:
    """Review of session 8: the ledger restored once at 2000 (RID_1); backup B at 4000
    carries [RID_1]; restoring B gives [RID_1, RID_2]; the replica adopts that and sits at
    3000; B is restored again: [RID_1, RID_3]. Its RID_2 is not served, so every point was
    checked and 3000 > 2000 stopped it for good, though it holds a prefix of the hub's
    data. Only the restores it did not know (RID_3 at 4000) are checked now."""
    st = FakeStore()
    st.lid = LID_A
    st._rev = 1000
    m = SyncMachine(st, random.Random(1))
    [sat] = handshake(m, stat_restores("1", 4000, [(2000, RID_1), (4000, RID_2)]))
    assert sat.startswith("evt.sat#2") and st.known == ((2000, RID_1), (4000, RID_2))
    st._rev = 3000
    m2 = SyncMachine(st, random.Random(1))
    [sat] = handshake(m2, stat_restores("1", 9000, [(2000, RID_1), (4000, RID_3)]))
    assert sat.startswith("evt.sat#2") and m2.phase == Phase.CATCHUP
    assert st.known == ((2000, RID_1), (4000, RID_3))
    # past the new restore: stopped, and the message names it, not the old one
    st._rev = 5000
    m3 = SyncMachine(st, random.Random(1))
    RID_4 = "4" * 32
    assert handshake(m3, stat_restores("1", 9000, [(2000, RID_1), (4000, RID_4)])) == []
    err = m3.info.last_error
    assert m3.phase == Phase.STOPPED and "at revision " + format_rev(4000) in err
    assert format_rev(2000) not in err and st.known == ((2000, RID_1), (4000, RID_3))


def test_a_hub_lacking_a_restore_the_replica_adopted_checks_every_point() -> None:
    """The replica knew [RID_1, RID_2] (synced past RID_2's 4000); the hub serves [RID_1]
    only (a database from before the second restore): every point is checked."""
    st = FakeStore()
    st.lid = LID_A
    st._rev = 5000
    st.point = (4000, RID_2)
    st.known = ((2000, RID_1), (4000, RID_2))
    m = SyncMachine(st, random.Random(1))
    assert handshake(m, stat_restores("1", 9000, [(2000, RID_1)])) == []
    assert m.phase == Phase.STOPPED and format_rev(2000) in m.info.last_error


def test_a_reply_still_arriving_is_not_timed_out() -> None:
    """Safety review 10, finding 4: on a slow link a catch-up reply takes longer than the
    request timeout to arrive; timed from the request, it was dropped and asked again,
    forever. Bytes arriving restart the timers: the timeout counts silence."""
    m = SyncMachine(FakeStore(), random.Random(1), timeout=10.0)
    opened(m)
    for t in range(1, 40):  # 39 s of a reply trickling in: no timeout
        m.receiving(float(t))
        assert m.wake_at() == t + 10.0
        m.tick(float(t) + 0.5)
        assert m.take() == [] and m.phase == Phase.HANDSHAKE
    m.tick(49.0)  # then 10 s of silence
    assert m.take() == [Close("request timeout")]


class _CountingSet(set):  # type: ignore[type-arg]
    """The machine's set of uids sent, counting the look-ups (the walk past sent ones)."""

    looks = 0

    def __contains__(self, x: object) -> bool:
        _CountingSet.looks += 1
        return super().__contains__(x)


class _SameListStore(FakeStore):
    """A store that returns the same outbox list while its outbox is unchanged (as
    ``Satellite.outbox`` does)."""

    def __init__(self) -> None:
        super().__init__()
        self._list: list[Trans] = []
        self._of: list[Trans] | None = None

    def outbox(self) -> list[Trans]:
        if self._of is not self.pending:
            self._of, self._list = self.pending, list(self.pending)
        return self._list


def test_the_sent_part_of_an_unchanged_outbox_is_walked_once() -> None:
    """A replay keeps its first requests' transactions in the outbox until their acks are
    stored, and the sync loop asks for the next request's encoding (``prepare``) after every
    input: each call walked past every sent transaction again. With a store that returns
    the same list while the outbox is unchanged, the sent part is walked once; what is sent
    and encoded stays the same."""
    st = _SameListStore()
    st.pending = [trans(f"u{i}") for i in range(5000)]
    m = SyncMachine(st, random.Random(1), max_trans=1000, first_trans=1000, last_trans=0)
    m._sent = _CountingSet()
    _head, b = body(connect(m))
    assert len(b["trans"]) == 1000
    m.received(sat_reply("2", SatRes(6000, (), (), cont=True)), 0.1)  # two more in flight
    sent = [body(f)[1] for f in frames_of(m.take())]
    assert [[t["uid"] for t in b["trans"]] for b in sent] == [
        [f"u{i}" for i in range(1000, 2000)], [f"u{i}" for i in range(2000, 3000)]]
    _CountingSet.looks = 0
    for _ in range(20):  # as the sync loop does after every input
        m.prepare()
    # the 3,000 sent ones once and the next 1,000 encoded once (not 20 times each)
    assert _CountingSet.looks <= 4001
    m.received(sat_reply("3", SatRes(6000, (), (), cont=True)), 0.2)
    [nxt] = [body(f)[1] for f in frames_of(m.take())]
    assert [t["uid"] for t in nxt["trans"]] == [f"u{i}" for i in range(3000, 4000)]
    # a new list (the outbox changed: acks stored) is walked from its start again
    st.pending = st.pending[500:]
    m.prepare()
    m.received(sat_reply("4", SatRes(6000, (), (), cont=True)), 0.3)
    [last] = [body(f)[1] for f in frames_of(m.take())]
    assert [t["uid"] for t in last["trans"]] == [f"u{i}" for i in range(4000, 5000)]


def test_sending_counts_the_edits_of_this_round_only() -> None:
    """Session 14 (review "firstday"): once every edit sent was answered the count started
    again from 0 answered, but its total still held the edits answered before: a delete and
    its undo while online left "Pending: 0 (sending 2 of 3)" for good."""
    st = FakeStore()
    st.pending = [trans("u1")]
    m = SyncMachine(st, random.Random(1))
    connect(m)
    assert m.info.sending == (0, 1)
    m.received(sat_reply("2", SatRes(6000, acks=(Ack("u1", 6000),))), 1.0)
    assert m.info.sending == (0, 0)
    rev = 6000
    for i, uids in enumerate((["u2"], ["u3"], ["u4", "u5"])):
        st.pending.extend(trans(uid) for uid in uids)
        m.local_change(2.0 + i)
        [f] = frames_of(m.take())
        head, b = body(f)
        assert [t["uid"] for t in b["trans"]] == uids
        assert m.info.sending == (0, len(uids)), uids
        rev += 1
        m.received(sat_reply(head.split("#")[1], SatRes(
            rev, acks=tuple(Ack(uid, rev) for uid in uids))), 2.5 + i)
        assert m.info.sending == (0, 0), uids
    assert st.pending == []
