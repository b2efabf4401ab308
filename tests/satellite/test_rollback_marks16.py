"""The edits a rolled-back hub lost are all marked, and none it holds (merge review 15a,
MEDIUM): after a rollback whose hub's lagging clock numbers its NEW events between the lost
ones, the hub's last event at or before the replica's revision is one it published after the
rollback, so session 15 marked only the edits after it: an earlier lost edit showed
"confirmed". Now the satellite looks for where the two histories part (probes: ``evt.sat`` of
no edits and no topics at earlier revisions, each with the replica's ``last`` there; a binary
search over event ids) and marks the accepted edits after the last event both hold; a search
cut short keeps a lower bound, said so in ``status``, ``show`` and the app. Real hubs on
127.0.0.1 over real SQLite files copied back; the machine's search also with scripted frames."""

from __future__ import annotations

import json
import random
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from core.errors import HubError
from core.ledger.sql import SqlLedger
from core.revision import Rev, format_rev, parse_rev
from core.satellite.client import SyncClient
from core.satellite.config import DataDir
from core.satellite.machine import Phase, SyncMachine, frames_of
from core.satellite.satellite import Satellite
from core.schema import Project
from core.wire import format_reply
from hubserver.server import Hub
from tests.satellite.test_carry import pub_here, sync_here
from tests.satellite.test_cli import cli
from tests.satellite.test_file_rollback14 import nightly, revs, roll_back
from tests.satellite.test_hub_clock_rollback15 import SITE, Clock, keys
from tests.satellite.test_machine import body, opened, trans
from tests.satellite.test_machine_last15 import LastStore, stat
from tests.support.procs import receipts


async def interleaved_rollback(tmp_path: Path, project: Project
                               ) -> tuple[SqlLedger, Clock, list[str], list[str]]:
    """``x`` makes b0..b5 (and ``o`` o0, another user's edit), all synced; the hub's file is
    copied (revision P); ``x`` makes s1 at P+1 s, s1b at P+2 s and s2 at P+10 s, accepted
    and held. The file is put back and the hub runs with its clock at P+5 s: ``v`` publishes
    v0 and v0b (between s1b and s2, with the ids of s1 and s1b), then at P+20 s v1 (past x's
    revision). The (open) ledger, the uids of x's
    edits the hub holds and of those it lost."""
    x, o, v, db = tmp_path / "x", tmp_path / "o", tmp_path / "v", tmp_path / "hub.db"
    clock = Clock()
    led = SqlLedger(f"sqlite:///{db}", project)
    try:
        async with Hub(led, port=0, clock=clock) as hub:
            assert (await cli(x, "connect", hub.url))[0] == 0
            held = []
            for i in range(6):
                held.append(pub_here(x, f"b{i}", "new", name=f"B{i}"))
                await sync_here(x)
                if i == 2:
                    pub_here(o, "o0", "new", project, name="O0")
                    await sync_here(o, hub.url, project)
            nightly(db, tmp_path / "nightly.db")
            point = led.rev()
            clock.t = point + 1000
            lost = [pub_here(x, "s1", "new", name="E1 at P+1s")]
            await sync_here(x)
            clock.t = point + 2000
            lost.append(pub_here(x, "s1b", "new", name="E1b at P+2s"))
            await sync_here(x)
            clock.t = point + 10_000
            lost.append(pub_here(x, "s2", "new", name="E2 at P+10s"))
            await sync_here(x)
    finally:
        led.close()
    mine, acked = revs(x)
    assert mine == acked == point + 10_000  # both accepted, their events held
    roll_back(db, tmp_path / "nightly.db")
    clock.t = point + 5000  # the restored VM's clock: between x's lost edits
    led = SqlLedger(f"sqlite:///{db}", project)
    assert led.rev() == point and all(led.uid_rev(u) is None for u in lost)
    async with Hub(led, port=0, clock=clock) as hub:
        pub_here(v, "v0", "new", project, name="V0")
        await sync_here(v, hub.url, project)
        pub_here(v, "v0b", "new", project, name="V0b")
        await sync_here(v, hub.url, project)
        clock.t = point + 20_000
        pub_here(v, "v1", "new", project, name="V1")
        await sync_here(v, hub.url, project)
    assert led.rev() > mine
    return led, clock, held, lost


async def test_every_edit_the_hub_lost_is_marked_none_it_holds(
        tmp_path: Path, project: Project) -> None:
    """Before: status named s2 alone (the hub's last event at or before x's revision is v0b,
    after s1 and s1b), and `show` said s1 and s1b "confirmed"; the hub holds none of
    them."""
    x = tmp_path / "x"
    led, clock, held, lost = await interleaved_rollback(tmp_path, project)
    try:
        async with Hub(led, port=0, clock=clock) as hub:
            before = (revs(x), receipts(x), keys(x), led.rev(), led.last_id())
            sat = Satellite(x)
            try:
                with pytest.raises(HubError) as err:
                    await SyncClient(sat, hub.url, rnd=random.Random(0)).sync_once(20)
            finally:
                sat.close()
            assert "the hub lost or reused revisions this replica holds" in str(err.value)
            # the probes changed nothing, here or there
            assert (revs(x), receipts(x), keys(x), led.rev(), led.last_id()) == before
        rc, out, e = await cli(x, "status")
        st = json.loads(out)
        assert rc == 0 and [d["uid"] for d in st["lost_by_hub"]] == lost, out
        assert st["lost_by_hub_partial"] is False
        assert all(led.uid_rev(u) is not None for u in held)  # the hub holds these
        rc, out, e = await cli(x, "show", SITE)
        states = {r["key"]: r["state"] for r in json.loads(out)}
        assert states == {**{f"b{i}": "confirmed" for i in range(6)}, "o0": "confirmed",
                          "s1": "lost by hub", "s1b": "lost by hub", "s2": "lost by hub"}, states
        assert "AT LEAST" not in e, e
        rc, out, e = await cli(x, "status", json_out=False)
        assert "3 edits the hub accepted and lacks" in out and "AT LEAST" not in out, out
    finally:
        led.close()


async def test_a_search_cut_short_says_the_marks_are_a_lower_bound(
        qtbot: Any, tmp_path: Path, project: Project) -> None:
    """The hub gone in the middle of the search (here: its connection closed at the second
    probe's answer, the first said the hub holds x's events up to o0): s1b and s2 (from
    the replica's event with the id of the hub's last one at or before x's revision) are
    surely lost and marked; s1 may be (and b3..b5, after o0), every place the marks show
    says they are a lower bound, b0 is still "Synced"; the next sync finds them all."""
    from desktop.mainwindow import MainWindow

    x = tmp_path / "x"
    led, clock, _, lost = await interleaved_rollback(tmp_path, project)
    try:
        async with Hub(led, port=0, clock=clock) as hub:
            sat = Satellite(x, project)
            try:
                client = SyncClient(sat, hub.url, rnd=random.Random(0))
                m = client.machine
                probe = m._on_probe

                answers: list[Any] = []

                def cut(body: Any, now: float) -> None:  # the connection lost at the 2nd reply
                    answers.append(body)
                    if len(answers) == 1:
                        probe(body, now)  # the hub holds x's events up to o0 (id 4)
                    else:
                        m.disconnected(now, "connection lost")

                m._on_probe = cut  # type: ignore[method-assign]
                with pytest.raises(HubError):
                    await client.sync_once(20)
                assert m.phase == Phase.STOPPED
                assert [r.uid for r in sat.lost_by_hub()] == lost[1:] and sat.lost_partial
                m._on_probe = probe  # type: ignore[method-assign]
                w = MainWindow(sat, None, "t")
                qtbot.addWidget(w)
                w.select_topic(SITE)
                qtbot.waitUntil(lambda: w.records.rowCount() == 10)
                assert w.select_key("s1b")
                said = w.form.state.text()
                assert said.startswith("⚠ Lost by the hub"), said
                assert w.select_key("s1")  # maybe lost: not "Synced with the hub."
                said = w.form.state.text()
                assert said.startswith("⚠ Maybe lost by the hub") and "--accepted" in said, said
                assert w.select_key("b0")  # before o0: the hub holds it
                assert w.form.state.text().startswith("Synced"), w.form.state.text()
                w.close()
            finally:
                sat.close()
            _, out, e = await cli(x, "status")
            st = json.loads(out)
            assert [d["uid"] for d in st["lost_by_hub"]] == lost[1:], out
            assert st["lost_by_hub_partial"] is True
            _, out, e = await cli(x, "status", json_out=False)
            assert "2 edits the hub accepted and lacks" in out and "AT LEAST these" in out, out
            _, out, e = await cli(x, "show", SITE, json_out=False)
            assert "s1\tconfirmed" in out and "s1b\tlost by hub" in out, out
            assert "AT LEAST" in e and "lost by hub" in e, e
            assert "shown confirmed but maybe lost too: b3, b4, b5, s1" in e, e
            # the next sync looks again and finds them all
            sat = Satellite(x, project)
            try:
                with pytest.raises(HubError):
                    await SyncClient(sat, hub.url, rnd=random.Random(0)).sync_once(20)
                assert [r.uid for r in sat.lost_by_hub()] == lost and not sat.lost_partial
            finally:
                sat.close()
    finally:
        led.close()


class SearchStore(LastStore):
    """LastStore with the replica's events (``event_upto``, ``last_event_at``) and
    ``note_lost`` kept."""

    def __init__(self, evs: list[tuple[int, Rev]]) -> None:
        super().__init__(evs[-1])
        self.evs = evs
        self._rev = evs[-1][1]
        self.noted: list[tuple[Rev | None, bool]] = []

    def event_upto(self, eid: int) -> tuple[int, Rev]:
        return max((e for e in self.evs if e[0] <= eid), default=(0, 0))

    def last_event_at(self, rev: Rev) -> tuple[int, Rev]:
        return max((e for e in self.evs if e[1] <= rev), default=(0, 0))

    def note_lost(self, after: Rev | None, exact: bool = True, since: Rev = 0) -> None:
        self.noted.append((after, exact))
        self.since = since


def hub_answer(hub: list[tuple[int, Rev]], f: str) -> str:
    """What an Outpost hub holding the events ``hub`` answers the probe ``f``."""
    head, b = body(f)
    assert b["trans"] == [] and b["tops"] == [], b  # nothing published, nothing subscribed
    rev = parse_rev(b["rev"])
    at = max((e for e in hub if e[1] <= rev), default=(0, 0))
    tok = head.partition("#")[2]
    if at == (b["last"]["id"], parse_rev(b["last"]["rev"])):
        return format_reply("evt.sat", tok, {"rev": b["rev"], "evs": []})
    return format_reply("evt.sat", tok, err="…", code="diverged",
                        last={"id": at[0], "rev": format_rev(at[1])})


def test_the_search_halves_and_marks_after_the_last_event_both_hold() -> None:
    """The replica holds events 1..40 (revisions 1000 + 10 i; event 25 and 26 one
    transaction), the hub the same up to 24 then others with revisions between: a binary
    search over ids, each probe at the revision of the replica's event there with its last
    event at or before it; the mark after event 24's revision, exact; at most ~log2 probes."""
    mine = [(i, 1000 + 10 * i) for i in range(1, 41)]
    mine[25] = (26, mine[24][1])  # 25 and 26: one transaction
    hub = [e for e in mine if e[0] <= 24] + [(i, 1245 + 10 * (i - 25)) for i in range(25, 60)]
    st = SearchStore(mine)
    m = SyncMachine(st, random.Random(1))
    opened(m)
    m.received(stat(3000, acks=True), 0.0)
    [f] = frames_of(m.take())
    tok = f.split("\n")[0].partition("#")[2]
    h = max(e for e in hub if e[1] <= st._rev)
    m.received(format_reply("evt.sat", tok, err="…", code="diverged",
                            last={"id": h[0], "rev": format_rev(h[1])}), 0.1)
    # the sure ones at once (a kill mid-search keeps them)
    assert st.noted == [(None, True), (h[1], False)]
    probes = 0
    for _ in range(20):
        out = frames_of(m.take())
        if not out:
            break
        [p] = out
        probes += 1
        m.received(hub_answer(hub, p), 0.2)
    assert m.phase == Phase.STOPPED and probes <= 6, probes
    assert st.noted[-1] == (mine[23][1], True)  # after event 24: every lost one, no held one


def test_a_probe_unanswered_or_refused_otherwise_keeps_the_sure_ones() -> None:
    mine = [(i, 1000 + 10 * i) for i in range(1, 41)]
    hub = [e for e in mine if e[0] <= 24] + [(i, 1245 + 10 * (i - 25)) for i in range(25, 60)]
    h = max(e for e in hub if e[1] <= mine[-1][1])
    for end in ("timeout", "error"):
        st = SearchStore(mine)
        m = SyncMachine(st, random.Random(1), timeout=5.0)
        opened(m)
        m.received(stat(3000, acks=True), 0.0)
        [f] = frames_of(m.take())
        tok = f.split("\n")[0].partition("#")[2]
        m.received(format_reply("evt.sat", tok, err="…", code="diverged",
                                last={"id": h[0], "rev": format_rev(h[1])}), 0.1)
        [p] = frames_of(m.take())
        if end == "timeout":
            m.tick(10.0)
        else:
            m.received(format_reply("evt.sat", p.split("\n")[0].partition("#")[2],
                                    err="evt.sat: the hub could not read", code="read"), 0.2)
        assert m.phase == Phase.STOPPED and m.wake_at() is None, end
        # those after the hub's last event at or before the replica's revision, surely lost;
        # and nothing known held (no probe answered yes): every other accepted edit maybe
        assert st.noted[-1] == (h[1], False) and st.since == 0, (end, st.noted)


async def test_a_replica_synced_past_the_rollback_before_the_check_is_stopped_once(
        tmp_path: Path, project: Project, monkeypatch: pytest.MonkeyPatch) -> None:
    """x's s1 accepted at P+1 s, the hub rolled back to P, its clock at P+0.5 s: v0 gets
    s1's event id; x, syncing as before session 15 (no ``last``), stored v1 (P+2 s) and
    skipped v0: its last event is the hub's, so the ``last`` check passes. Before: synced
    for good, s1 "confirmed" and lost, v0 never here. Now the first sync asks the hub once
    about each accepted edit's revision: stopped, s1 marked, b0 (held) not."""
    x, v, db = tmp_path / "x", tmp_path / "v", tmp_path / "hub.db"
    clock = Clock()
    led = SqlLedger(f"sqlite:///{db}", project)
    try:
        async with Hub(led, port=0, clock=clock) as hub:
            assert (await cli(x, "connect", hub.url))[0] == 0
            held = pub_here(x, "b0", "new", name="B0")
            await sync_here(x)
            nightly(db, tmp_path / "nightly.db")
            point = led.rev()
            clock.t = point + 1000
            lost = pub_here(x, "s1", "new", name="S1")
            await sync_here(x)
    finally:
        led.close()
    roll_back(db, tmp_path / "nightly.db")
    clock.t = point + 500
    led = SqlLedger(f"sqlite:///{db}", project)
    try:
        async with Hub(led, port=0, clock=clock) as hub:
            pub_here(v, "v0", "new", project, name="V0")
            await sync_here(v, hub.url, project)
            clock.t = point + 2000
            pub_here(v, "v1", "new", project, name="V1")
            await sync_here(v, hub.url, project)
            dd = DataDir(x)  # the hub back at its address
            dd.save_config(replace(dd.load_config(), hub=hub.url))
            sat = Satellite(x, project)
            try:  # a replica made before session 16 has no such mark
                sat.queue.set_meta("own_checked", None)
            finally:
                sat.close()
            with monkeypatch.context() as mp:  # a satellite before session 15
                mp.setattr(Satellite, "last_event", None)
                mp.setattr(Satellite, "own_unchecked", None, raising=False)
                await sync_here(x)
            assert keys(x) == {"b0", "s1", "v1"}  # v0 skipped, s1 lost: diverged
            before = (revs(x), receipts(x), keys(x), led.rev())
            sat = Satellite(x, project)
            try:
                with pytest.raises(HubError) as err:
                    await SyncClient(sat, hub.url, rnd=random.Random(0)).sync_once(20)
                assert [r.uid for r in sat.lost_by_hub()] == [lost] and not sat.lost_partial
            finally:
                sat.close()
            said = str(err.value)
            assert f"at which it accepted an edit of this replica ({lost})" in said, said
            assert "the hub lost or reused revisions this replica holds" in said, said
            assert "--accepted" in said, said
            assert (revs(x), receipts(x), keys(x), led.rev()) == before
            assert led.uid_rev(held) is not None
            rc, out, e = await cli(x, "show", SITE)
            states = {r["key"]: r["state"] for r in json.loads(out)}
            assert states == {"b0": "confirmed", "s1": "lost by hub", "v1": "confirmed"}
            # the next sync says it again (not marked checked)
            rc, _, e = await cli(x, "sync", "--once", "--timeout", "20")
            assert rc == 1 and f"({lost})" in e, e
            # a replica made before session 16 whose history is the hub's (v: its edits were
            # accepted after the rollback): asked once, no false alarm, then never again
            sat = Satellite(v, project)
            try:
                sat.queue.set_meta("own_checked", None)
                assert len(sat.own_unchecked(sat.rev()) or []) == 2
            finally:
                sat.close()
            pub_here(v, "v2", "new", project, name="V2")
            await sync_here(v, hub.url, project)
            sat = Satellite(v, project)
            try:
                assert sat.own_unchecked(sat.rev()) is None and sat.lost_by_hub() == []
            finally:
                sat.close()
            assert led.state(SITE, "v2") is not None
    finally:
        led.close()


class OwnStore(SearchStore):
    """SearchStore with accepted edits to check once (``own_unchecked``)."""

    def __init__(self, evs: list[tuple[int, Rev]], own: list[tuple[str, Rev]]) -> None:
        super().__init__(evs)
        self.own: list[tuple[str, Rev]] | None = own
        self.lost_uids: list[list[str]] = []

    def own_unchecked(self, at: Rev) -> list[tuple[str, Rev]] | None:
        return None if self.own is None else [o for o in self.own if o[1] <= at]

    def mark_own_checked(self) -> None:
        self.own = None

    def note_lost_uids(self, uids: list[str]) -> None:
        self.lost_uids.append(uids)


def test_accepted_edits_are_checked_once_before_the_first_request() -> None:
    """One probe per accepted edit's revision, before any evt.sat that publishes or
    subscribes; all the hub's: marked checked, then the catch-up (with ``last``); one not:
    stopped for good, nothing sent, that edit noted; a probe refused otherwise: dropped,
    asked again on the next connection."""
    mine = [(i, 1000 + 10 * i) for i in range(1, 11)]
    own = [("u4", 1040), ("u7", 1070)]
    for hub, want in ((mine, "ok"), ([*mine[:5], (6, 1055), (7, 1065), (8, 1075)], "lost"),
                      (mine, "error")):
        st = OwnStore(mine, own)
        st.pending = [trans("p1")]
        m = SyncMachine(st, random.Random(1))
        opened(m)
        m.received(stat(3000, acks=True), 0.0)
        probes = frames_of(m.take())
        assert len(probes) == 2 and all(body(f)[1]["trans"] == [] and body(f)[1]["tops"] == []
                                        for f in probes), probes
        assert {body(f)[1]["rev"] for f in probes} == {format_rev(1040), format_rev(1070)}
        for f in probes:
            tok = f.split("\n")[0].partition("#")[2]
            if want == "error":
                m.received(format_reply("evt.sat", tok, err="evt.sat: the hub could not read",
                                        code="read"), 0.1)
                break
            m.received(hub_answer(hub, f), 0.1)
        sent = frames_of(m.take())
        if want == "ok":
            [first] = sent  # the catch-up, with the pending edit and last, once checked
            assert body(first)[1]["tops"] and body(first)[1]["last"]["id"] == 10, first
            assert st.own is None and st.lost_uids == []
        elif want == "lost":
            assert sent == [] and m.phase == Phase.STOPPED, sent
            assert st.lost_uids == [["u7"]] and st.own is not None
            assert "at which it accepted an edit of this replica (u7)" in m.info.last_error
            assert "--accepted" in m.info.last_error
        else:
            assert sent == [] and m.phase != Phase.STOPPED and st.own is not None


async def test_a_catch_up_without_an_accepted_edit_marks_from_that_edit(
        tmp_path: Path, project: Project) -> None:
    """x holds the acks of e1 and e2, not their events (two syncs killed between catch-up
    batches); the hub's file is copied back to between them, the hub publishes on. The
    catch-up brings e1's events, not e2's: sync stops, e2 marked. Before: every accepted
    edit after x's revision was marked, e1 too, which the hub holds."""
    from tests.satellite.test_file_rollback14 import CRASHED
    from tests.support.procs import run

    x, w, db = tmp_path / "x", tmp_path / "w", tmp_path / "hub.db"
    led = SqlLedger(f"sqlite:///{db}", project)
    try:
        async with Hub(led, port=0) as hub:
            assert (await cli(x, "connect", hub.url))[0] == 0
            pub_here(x, "s1", "new", name="A")
            await sync_here(x)
            for i in range(12):
                pub_here(w, f"w{i}", "new", project, name=f"W{i}")
            await sync_here(w, hub.url, project)
            e1 = pub_here(x, "s1", "mod", notes="e1")
            rc, _, err = await run("sync", str(x), hub.url, "--lim", "3",
                                   crash="sat.mid_catchup")
            assert rc == CRASHED, err
            nightly(db, tmp_path / "nightly.db")
            e2 = pub_here(x, "s2", "new", name="e2")
            rc, _, err = await run("sync", str(x), hub.url, "--lim", "3",
                                   crash="sat.mid_catchup")
            assert rc == CRASHED, err
    finally:
        led.close()
    rev, _ = revs(x)
    roll_back(db, tmp_path / "nightly.db")
    led = SqlLedger(f"sqlite:///{db}", project)
    try:
        e1_rev = led.uid_rev(e1)
        assert e1_rev is not None and rev < e1_rev and led.uid_rev(e2) is None
        async with Hub(led, port=0) as hub:
            for i in range(3):
                pub_here(w, f"v{i}", "new", project, name=f"V{i}")
                await sync_here(w, hub.url, project)
            with pytest.raises(HubError) as err:
                await sync_here(x, hub.url, timeout=20)
            assert f"without the edit {e2}" in str(err.value), err.value
        rc, out, _ = await cli(x, "status")
        st = json.loads(out)
        assert [d["uid"] for d in st["lost_by_hub"]] == [e2], out
        assert st["lost_by_hub_partial"] is False
    finally:
        led.close()


async def test_a_new_replicas_check_mark_rides_on_its_first_write(tmp_path: Path,
                                                                  project: Project) -> None:
    """A replica with nothing accepted yet (a new one's first sync, a replay of offline
    edits) has nothing to ask: its ``own_checked`` mark is stored with the first reply's
    commit, not by a commit (an fsync) of its own before the first request; the next
    connection asks nothing either."""
    from core.model import Action, Cmd

    led = SqlLedger(f"sqlite:///{tmp_path / 'hub.db'}", project)
    try:
        async with Hub(led, port=0) as hub:
            sat = Satellite(tmp_path / "a", project)
            try:
                sat.pub([Action(SITE, "n1", Cmd.NEW, {"name": "N"})])
                commits: list[str] = []
                real = sat.queue.set_meta

                def spy(name: str, value: Any, conn: Any = None) -> None:
                    if name == "own_checked":
                        commits.append("own" if conn is None else "with a write")
                    real(name, value, conn)

                sat.queue.set_meta = spy  # type: ignore[method-assign]
                await SyncClient(sat, hub.url, rnd=random.Random(0)).sync_once(20)
                # in the first reply's commit, not a set_meta commit of its own before it
                assert commits == ["with a write"], commits
                assert sat.status().pending == 0
            finally:
                sat.close()
            again = Satellite(tmp_path / "a", project)
            try:
                assert again.queue.get_meta("own_checked") is True  # stored with the write
                assert again.own_unchecked(again.rev()) is None  # never asked again
            finally:
                again.close()
    finally:
        led.close()


def test_the_once_per_replica_check_keeps_few_probes_in_flight() -> None:
    """20 accepted edits at 20 revisions: at most OWN_IN_FLIGHT probes are out at once (256
    sent together went over a hub's --burst: closed with 1008 on every connection, the check
    never done; merge review 16d); each answer sends the next; all answered: the catch-up."""
    from core.satellite import machine

    OWN_IN_FLIGHT = getattr(machine, "OWN_IN_FLIGHT", 8)  # the revert check reads the count
    mine = [(i, 1000 + 10 * i) for i in range(1, 31)]
    own = [(f"u{i}", 1000 + 10 * i) for i in range(1, 21)]
    st = OwnStore(mine, own)
    st.pending = [trans("p1")]
    m = SyncMachine(st, random.Random(1))
    opened(m)
    m.received(stat(3000, acks=True), 0.0)
    out = frames_of(m.take())
    assert len(out) == OWN_IN_FLIGHT < len(own), out
    asked: set[str] = set()
    most = 0
    for _ in range(100):  # bounded
        if not out:
            break
        f, out = out[0], out[1:]
        if body(f)[1]["tops"]:  # the catch-up: the check is done
            assert not out and len(asked) == len(own)
            break
        asked.add(body(f)[1]["rev"])
        m.received(hub_answer(mine, f), 0.1)
        out += frames_of(m.take())
        most = max(most, len(out))
    assert len(asked) == len(own) and most <= OWN_IN_FLIGHT
    assert st.own is None and st.lost_uids == []
