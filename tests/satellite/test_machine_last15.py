"""The sync machine's ``last`` (ours, session 15): the replica's last event at or before its
revision goes in the connection's first ``evt.sat`` requests to an Outpost hub (both, when
the hub said ``cont``), not to a daql hub, not from a replica at no revision, not once a
reply came; a ``diverged`` error stops sync for good, nothing stored, the status naming
``outpost carry --accepted``. Scripted frames, no sockets."""

from __future__ import annotations

import random

from core.model import Cmd, Event
from core.revision import Rev, format_rev
from core.satellite.machine import Phase, SyncMachine, frames_of
from core.wire import SatRes, format_reply
from desktop.format import sync_problem
from tests.satellite.test_machine import FakeStore, body, opened, sat_reply, trans
from tests.satellite.test_machine_defer import DeferStore, applies, run_apply


class LastStore(FakeStore):
    """FakeStore with the optional ``last_event``."""

    def __init__(self, last: tuple[int, Rev]) -> None:
        super().__init__()
        self.last = last

    def last_event(self) -> tuple[int, Rev]:
        return self.last


def stat(rev: Rev, **ext: object) -> str:
    return format_reply("evt.stat", "1", {"rev": format_rev(rev), "mig": "v1", **ext})


def test_last_goes_in_the_first_requests_to_an_outpost_hub_only() -> None:
    st = LastStore((7, 4000))
    st._rev = 4000
    st.pending = [trans(f"u{i}") for i in range(5)]
    m = SyncMachine(st, random.Random(1), first_trans=2, max_trans=2, last_trans=0)
    opened(m)
    m.received(stat(5000, acks=True, cont=True), 0.0)
    first, second = frames_of(m.take())  # cont: two requests at once, both checked
    for f in (first, second):
        assert body(f)[1]["last"] == {"id": 7, "rev": format_rev(4000)}, f
        assert body(f)[1]["rev"] == format_rev(4000)
    ev = Event(8, 5000, "field.site", "k", Cmd.NEW, {})
    m.received(sat_reply("2", SatRes(5000, (ev,))), 0.1)
    later = [f for f in frames_of(m.take()) if f.startswith("evt.sat")]
    assert later and all("last" not in body(f)[1] for f in later), later
    # a daql hub (no extension in evt.stat): never sent
    ds = LastStore((7, 4000))
    ds._rev = 4000
    d = SyncMachine(ds, random.Random(1))
    opened(d)
    d.received(stat(5000), 0.0)
    [f] = frames_of(d.take())
    assert "last" not in body(f)[1]
    # a replica at no revision: nothing to compare
    e = SyncMachine(LastStore((0, 0)), random.Random(1))
    opened(e)
    e.received(stat(5000, acks=True), 0.0)
    [f] = frames_of(e.take())
    assert "last" not in body(f)[1]


def test_a_diverged_hub_stops_sync_for_good_nothing_stored() -> None:
    st = LastStore((2, 4000))
    st._rev = 4000
    st.pending = [trans("u1")]
    m = SyncMachine(st, random.Random(1))
    opened(m)
    m.received(stat(6000, acks=True), 0.0)
    [f] = frames_of(m.take())
    tok = f.split("\n")[0].partition("#")[2]
    m.received(format_reply("evt.sat", tok, err="evt.sat: … is not the client's …",
                            code="diverged", last={"id": 3, "rev": format_rev(3500)}), 0.1)
    assert m.phase == Phase.STOPPED and m.wake_at() is None
    err = m.info.last_error
    assert f"event 3 at {format_rev(3500)}" in err and f"event 2 at {format_rev(4000)}" in err
    assert "`outpost carry OLD_DIR --data NEWDIR --accepted`" in err, err
    assert sync_problem(err) == "Sync stopped: the hub lost revisions this replica holds"
    assert st.rev() == 4000 and st.acked == {} and [t.uid for t in st.pending] == ["u1"]
    m.tick(1000.0)
    assert not [o for o in m.take() if type(o).__name__ == "Open"]  # no retry


class NoteStore(LastStore):
    """LastStore keeping what ``note_lost`` was told."""

    def __init__(self, last: tuple[int, Rev]) -> None:
        super().__init__(last)
        self.noted: list[Rev | None] = []

    def note_lost(self, after: Rev | None) -> None:
        self.noted.append(after)


def test_the_edits_a_hub_lacks_are_noted_and_cleared_once_a_hub_passes() -> None:
    """Behind an accepted edit (for now: a cluster hub catching up; or for good: a rolled
    back file): nothing written (a refused handshake changes nothing, it says so at every
    one); a diverged hub (sync stopped for good) notes its last event's revision; a later
    handshake that passes clears it."""
    st = NoteStore((2, 4000))
    st._rev = 4000
    st.acked = {"u0": 4500}
    m = SyncMachine(st, random.Random(1))
    opened(m)
    m.received(stat(4200, acks=True), 0.0)
    assert st.noted == []
    m.disconnected(0.0)
    assert m.phase == Phase.OFFLINE
    m.tick(m.wake_at() or 0.0)
    m.take()
    m.connected(100.0)
    m.take()
    m.received(format_reply("evt.stat", "2", {"rev": format_rev(4600), "mig": "v1",
                                               "acks": True}), 100.0)
    assert m.phase == Phase.CATCHUP and st.noted == [None]
    [f] = frames_of(m.take())
    tok = f.split("\n")[0].partition("#")[2]
    m.received(format_reply("evt.sat", tok, err="…", code="diverged",
                            last={"id": 1, "rev": format_rev(3000)}), 100.1)
    assert m.phase == Phase.STOPPED and st.noted == [None, 3000]
    m.start(200.0)
    m.take()
    m.connected(200.0)
    m.take()
    m.received(format_reply("evt.stat", "4", {"rev": format_rev(4600), "mig": "v1",
                                               "acks": True}), 200.0)
    assert st.noted == [None, 3000, None]


class DeferLastStore(DeferStore):
    """DeferStore with ``last_event`` (of what it stored)."""

    def last_event(self) -> tuple[int, Rev]:
        return (self.evs[-1].id, self.evs[-1].rev) if self.evs else (0, 0)


def test_last_counts_hub_data_still_being_stored() -> None:
    """A reconnect while the last connection's reply is still being stored (deferred): the
    request's rev is that reply's, and so is ``last`` (it was skipped: once that catch-up is
    stored past a rolled-back hub's new events, the replica's last event is the hub's and no
    later check would see it)."""
    st = DeferLastStore()
    st._rev = 4000
    st.evs = [Event(2, 4000, "field.site", "a", Cmd.NEW, {})]
    m = SyncMachine(st, random.Random(1), defer_apply=True)
    opened(m)
    m.received(stat(6000, acks=True), 0.0)
    [f] = frames_of(m.take())
    assert body(f)[1]["last"] == {"id": 2, "rev": format_rev(4000)}
    ev = Event(5, 5000, "field.site", "b", Cmd.NEW, {})
    m.received(sat_reply("2", SatRes(6000, (ev,))), 0.1)
    [a] = applies(m.take())  # not stored yet
    m.disconnected(0.2)
    m.tick(m.wake_at() or 0.0)
    m.take()
    m.connected(10.0)
    m.take()
    m.received(format_reply("evt.stat", "3", {"rev": format_rev(6000), "mig": "v1",
                                               "acks": True}), 10.0)
    [f] = [x for x in frames_of(m.take()) if x.startswith("evt.sat")]
    assert body(f)[1]["rev"] == format_rev(6000)
    assert body(f)[1]["last"] == {"id": 5, "rev": format_rev(5000)}
    run_apply(st, m, a, 10.1)
