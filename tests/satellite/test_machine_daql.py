"""The sync machine with a daql hub (no uids, no base check; docs/satellite.md, "Syncing with
a daql hub"), deferred applies: scripted frames, virtual clock, no sockets. Edits go only
when caught up with everything received stored, one at a time; an edit marked unconfirmed is
never sent again; a local conflict is rejected, not sent (merge review 11)."""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import replace

from core.model import Action, Cmd, Conflict, Event, Trans, Update
from core.revision import Rev, format_rev
from core.satellite.api import OVERWROTE, PUT_ASIDE
from core.satellite.machine import (
    DAQL_UNCLEAR,
    MIB,
    OVERWROTE_ON_HUB,
    REPLY_TOO_BIG,
    Phase,
    SyncMachine,
    frames_of,
)
from core.wire import SatRes, enc_update, format_push, format_reply
from tests.satellite.test_machine import FakeStore, body, connect, opened, sat_reply, trans
from tests.satellite.test_machine_defer import DeferStore, applies, run_apply


class DaqlStore(DeferStore):
    """DeferStore plus the optional methods a daql hub uses."""

    def __init__(self) -> None:
        super().__init__()
        self.marked: list[str] = []
        self.conflicts: dict[str, tuple[str, tuple[Conflict, ...]]] = {}

    def apply_sat(self, res: SatRes) -> None:
        # rejects the machine makes itself (put aside, a local conflict) come at revision 0
        super().apply_sat(res if res.evs or res.rev else replace(res, rev=self._rev))

    def mark_unconfirmed(self, uids: list[str]) -> None:
        self.marked = [*self.unconfirmed(), *uids]

    def unconfirmed(self) -> list[str]:
        mine = {t.uid for t in self.pending}
        return [u for u in self.marked if u in mine]

    def local_conflicts(self) -> Mapping[str, tuple[str, tuple[Conflict, ...]]]:
        return {u: c for u, c in self.conflicts.items() if u in {t.uid for t in self.pending}}


def daql_stat(tok: str, rev: Rev) -> str:
    return format_reply("evt.stat", tok, {"rev": format_rev(rev), "mig": ""})


def new_ev(i: int, key: str, rev: Rev) -> Event:
    return Event(i, rev, "field.site", key, Cmd.NEW, {"name": key})


def handshake(m: SyncMachine, now: float, rev: Rev) -> tuple[str, dict]:  # type: ignore[type-arg]
    tok = opened(m, now).partition("#")[2]
    m.received(daql_stat(tok, rev), now)
    [sat] = frames_of(m.take())
    return body(sat)


def sent_uids(outs: list[object]) -> list[str]:
    return [t["uid"] for f in frames_of(outs) if f.startswith("evt.sat")  # type: ignore[arg-type]
            for t in body(f)[1].get("trans", [])]


def live(st: DaqlStore, m: SyncMachine) -> list[object]:
    """Connect, catch up (the handshake's request carries no edit): the outputs after the
    catch-up is stored."""
    head, b = handshake(m, 0.0, 5000)
    assert b["trans"] == []  # a catch-up alone: the view checks the edits against it first
    m.received(sat_reply(head.partition("#")[2], SatRes(5000, ())), 0.1)
    assert m.phase == Phase.LIVE
    outs = list(m.take())
    assert sent_uids(outs) == []  # nothing while the catch-up is stored
    [a] = applies(outs)
    return run_apply(st, m, a, 0.2)


def test_reconnecting_while_a_reply_is_stored_sends_no_edit_again() -> None:
    st = DaqlStore()
    st.pending = [trans("u1")]
    m = SyncMachine(st, random.Random(1), defer_apply=True)
    outs = live(st, m)
    [f] = frames_of(outs)
    assert sent_uids(outs) == ["u1"] and st.marked == ["u1"]
    # its reply arrives (the ack) and is being stored when the link drops
    m.received(sat_reply(f.partition("\n")[0].partition("#")[2],
                         SatRes(6000, (new_ev(1, "u1", 6000),))), 1.0)
    [ack] = applies(m.take())
    m.disconnected(1.1, "link lost")
    m.tick(m.wake_at() or 2.0)
    head, b = handshake(m, 3.0, 6000)
    assert b["trans"] == []  # the outbox still holds u1: before, it went out again here
    outs = run_apply(st, m, ack, 3.1)  # the ack is stored: u1 leaves the outbox
    assert st.acked == {"u1": 6000} and not st.pending
    m.received(sat_reply(head.partition("#")[2], SatRes(6000, ())), 3.2)
    outs += list(m.take())
    for a in applies(outs):
        outs += run_apply(st, m, a, 3.3)
    assert sent_uids(outs) == [] and m.idle


def test_an_edit_marked_unconfirmed_is_put_aside_once_caught_up_never_sent() -> None:
    st = DaqlStore()
    st.pending = [trans("u1"), trans("u2")]
    st.marked = ["u1"]  # sent by a process that stopped before storing the answer
    m = SyncMachine(st, random.Random(1), defer_apply=True)
    outs = live(st, m)
    assert sent_uids(outs) == []  # the put-aside is being stored first
    [aside] = applies(outs)
    outs = run_apply(st, m, aside, 0.3)
    assert "put aside" in st.rejected["u1"] and "does not confirm edits" in st.rejected["u1"]
    assert sent_uids(outs) == ["u2"]
    assert "1 edit put aside" in m.info.last_error


def test_a_local_conflict_is_rejected_with_its_reason_and_the_clean_edits_go() -> None:
    st = DaqlStore()
    st.pending = [trans("u1"), trans("u2")]
    st.conflicts = {"u1": ("conflict: mod field.site u1: field changed", ())}
    m = SyncMachine(st, random.Random(1), defer_apply=True)
    outs = live(st, m)
    assert sent_uids(outs) == []
    [rej] = applies(outs)
    outs = run_apply(st, m, rej, 0.3)
    # session 12: its reason code says it was not sent, in the receipt and the status
    assert st.rejected["u1"].startswith(
        "not sent (a conflict found here): conflict: mod field.site u1: field changed")
    assert "this hub, a daql hub, does not check an edit" in st.rejected["u1"]
    assert m.info.last_error.startswith("not sent (a conflict found here): u1: conflict: ")
    assert "rejected" not in m.info.last_error
    assert sent_uids(outs) == ["u2"]


def test_a_push_waiting_to_be_stored_holds_the_next_edit() -> None:
    st = DaqlStore()
    m = SyncMachine(st, random.Random(1), defer_apply=True)
    assert live(st, m) == []
    m.received(format_push("evt.update", enc_update(Update(7000, (new_ev(1, "k", 7000),)))), 1.0)
    [push] = applies(m.take())
    st.pending = [trans("u1")]
    m.local_change(1.1)
    assert sent_uids(list(m.take())) == []  # the push may collide with it: stored first
    st.conflicts = {"u1": ("conflict: new field.site u1: key taken", ())}  # the view saw it
    outs = run_apply(st, m, push, 1.2)
    assert sent_uids(outs) == []
    [rej] = applies(outs)
    run_apply(st, m, rej, 1.3)
    assert "key taken" in st.rejected["u1"] and m.idle


def mod_ev(i: int, key: str, rev: Rev, name: str) -> Event:
    return Event(i, rev, "field.site", key, Cmd.MOD, {"name": name})


def send_one_mod(st: DaqlStore, m: SyncMachine) -> str:
    """Live with one pending ``mod`` of record k (name=mine): the token of its request."""
    st.pending = [Trans((Action("field.site", "k", Cmd.MOD, {"name": "mine"}),), uid="u1")]
    outs = live(st, m)
    [f] = frames_of(outs)
    assert sent_uids(outs) == ["u1"]
    return f.partition("\n")[0].partition("#")[2]


def test_a_daql_edit_is_acked_at_the_revision_holding_exactly_its_changes() -> None:
    """Colleagues' changes of the same record and command before and after the edit's own
    revision in the reply (wire review 12, finding 1: the latest one was taken, so the
    colleague's change counted as the user's own): acked at its own revision."""
    st = DaqlStore()
    m = SyncMachine(st, random.Random(1), defer_apply=True)
    tok = send_one_mod(st, m)
    # before it: a change of another field (it merges, DESIGN §3: no conflict; session 13)
    before = Event(1, 6000, "field.site", "k", Cmd.MOD, {"region": "theirs before"})
    m.received(sat_reply(tok, SatRes(6002, (before, mod_ev(2, "k", 6001, "mine"),
                                            mod_ev(3, "k", 6002, "theirs after")))), 1.0)
    [a] = applies(m.take())
    run_apply(st, m, a, 1.1)
    assert st.acked == {"u1": 6001} and not st.rejected


def test_a_daql_edit_over_a_colleagues_change_of_its_field_is_a_conflict_after_the_fact(
        ) -> None:
    """A colleague's change of the same field before the edit's own revision in the reply
    (wire review 13, finding 1): daql applied the edit over it. Before, acked ("0
    conflicts"); now rejected with the OVERWROTE reason code and that change as conflict."""
    st = DaqlStore()
    m = SyncMachine(st, random.Random(1), defer_apply=True)
    tok = send_one_mod(st, m)
    m.received(sat_reply(tok, SatRes(6002, (mod_ev(1, "k", 6000, "theirs before"),
                                            mod_ev(2, "k", 6001, "mine"),
                                            mod_ev(3, "k", 6002, "theirs after")))), 1.0)
    [a] = applies(m.take())
    assert isinstance(a.item, SatRes)
    assert a.item.rejects[0].conflicts == (Conflict(
        "field.site", "k", Cmd.MOD, "field changed", ("name",), {"name": "theirs before"},
        6000),)
    run_apply(st, m, a, 1.1)
    assert not st.acked and st.rejected["u1"].startswith(OVERWROTE)
    assert m.info.last_error.startswith(OVERWROTE_ON_HUB) and "u1" in m.info.last_error


def test_a_daql_reply_without_the_edit_as_sent_puts_it_aside_not_taken_as_mine() -> None:
    """The edit's record and command are in the reply, but under no revision with exactly
    its values (the hub changed them, or took it with other changes): whether the hub
    applied it as made cannot be told, so it is put aside (the user decides), never acked."""
    for evs in ((mod_ev(1, "k", 6000, "MINE"),),  # the hub changed the value
                (mod_ev(1, "k", 6000, "mine"), new_ev(2, "x", 6000))):  # with another change
        st = DaqlStore()
        m = SyncMachine(st, random.Random(1), defer_apply=True)
        tok = send_one_mod(st, m)
        m.received(sat_reply(tok, SatRes(6000, evs)), 1.0)
        [a] = applies(m.take())
        run_apply(st, m, a, 1.1)
        assert not st.acked
        assert st.rejected["u1"] == DAQL_UNCLEAR
        assert st.rejected["u1"].startswith(PUT_ASIDE)  # shown as put aside, not refused
        assert "u1" in m.info.last_error


def test_a_message_over_this_sides_limit_stops_a_daql_sync_with_the_fix() -> None:
    """This side closed the connection (1009) on a message from the hub over its limit: a
    daql hub's catch-up comes in one message, so asking again gets it again, bigger (wire
    review 12, finding 2: retried for ever with "frame exceeds limit"). Sync stops, the
    status says why and how to lift the limit; an Outpost hub (batches) is asked again."""
    st = DaqlStore()
    m = SyncMachine(st, random.Random(1), defer_apply=True)
    handshake(m, 0.0, 5000)
    m.disconnected(1.0, "sent 1009 (message too big) frame exceeds limit", 0, 64 * MIB)
    assert m.phase == Phase.STOPPED and m.wake_at() is None
    assert m.info.last_error.startswith(REPLY_TOO_BIG)
    assert "(64 MiB" in m.info.last_error and '"max_reply_mib": 256' in m.info.last_error
    assert "frame exceeds limit" not in m.info.last_error
    m.tick(1000.0)
    assert m.take() == []  # no reconnect

    m = SyncMachine(FakeStore(), random.Random(1))
    connect(m)  # an Outpost hub: asked again for smaller batches (session 13)
    m.disconnected(1.0, "sent 1009", 0, 2 * MIB)
    assert m.phase == Phase.OFFLINE and m.wake_at() is not None
    assert m.info.last_error.startswith(REPLY_TOO_BIG) and "sync stopped" not in m.info.last_error
    assert "asking again for 2,500 events per batch instead of 5,000" in m.info.last_error
