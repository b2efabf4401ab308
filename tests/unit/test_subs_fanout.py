"""``Subs.fanout``: who gets which events of a commit, checked against a plain rule for every
shape its shortcuts take (one topic or several; one publisher that published every revision,
some of them, or several publishers; watermarks; paused subscribers)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from core.model import Cmd, Event
from core.revision import Rev
from core.subs import Subs

TOPS = ("a.x", "a.y", "b.z")
CONNS = (1, 2, 3)


def expected(subs: Subs, evs: list[Event], exclude: dict[Rev, int]) -> dict[int, list[Event]]:
    """The rule: a subscriber that is not paused gets the events of its topics after its
    watermark, except those of revisions it published, in (rev, id) order."""
    out: dict[int, list[Event]] = {}
    for conn in CONNS:
        if conn not in subs:
            continue
        s = subs.get(conn)
        if s.paused:
            continue
        mine = [e for e in evs if e.top in s.tops and e.rev > s.watermark
                and exclude.get(e.rev) != conn]
        if mine:
            out[conn] = sorted(mine, key=lambda e: (e.rev, e.id))
    return out


@st.composite
def commits(draw: st.DrawFn) -> tuple[list[Event], dict[Rev, int]]:
    """The events of 1-8 revisions (1-3 events each, of one topic or of several) and who
    published which revision (nobody, one connection for all, for some, or several)."""
    one_top = draw(st.booleans())
    evs: list[Event] = []
    rev, eid = 100, 0
    for _ in range(draw(st.integers(1, 8))):
        rev += draw(st.integers(1, 3))
        for _ in range(draw(st.integers(1, 3))):
            eid += 1
            top = TOPS[0] if one_top else draw(st.sampled_from(TOPS))
            evs.append(Event(eid, rev, top, f"k{eid}", Cmd.NEW, None))
    revs = sorted({e.rev for e in evs})
    kind = draw(st.sampled_from(["none", "all", "some", "several"]))
    exclude: dict[Rev, int] = {}
    if kind == "all":
        exclude = dict.fromkeys(revs, draw(st.sampled_from(CONNS)))
    elif kind == "some":
        conn = draw(st.sampled_from(CONNS))
        exclude = {r: conn for r in revs if draw(st.booleans())}
    elif kind == "several":
        exclude = {r: draw(st.sampled_from(CONNS)) for r in revs}
    return evs, exclude


@given(commits(), st.data())
@settings(max_examples=400)
def test_fanout_follows_the_rule(commit: tuple[list[Event], dict[Rev, int]],
                                 data: st.DataObject) -> None:
    evs, exclude = commit
    subs = Subs()
    for conn in CONNS:
        tops = data.draw(st.lists(st.sampled_from(TOPS), unique=True))
        if tops:
            subs.subscribe(conn, tops)
            s = subs.get(conn)
            s.watermark = data.draw(st.sampled_from([0, evs[0].rev, evs[-1].rev - 1]))
            s.paused = data.draw(st.booleans()) and data.draw(st.booleans())
    got = subs.fanout(evs, exclude or None)
    assert {c: d.evs for c, d in got.items()} == expected(subs, evs, exclude)
    assert all(d.rev == evs[-1].rev for d in got.values())


def test_a_publisher_of_every_revision_gets_none_and_the_others_all() -> None:
    evs = [Event(i + 1, 100 + i, "a.x", f"k{i}", Cmd.NEW, None) for i in range(5)]
    subs = Subs()
    subs.subscribe(1, ["a.x"])
    subs.subscribe(2, ["a.x"])
    got = subs.fanout(evs, dict.fromkeys(range(100, 105), 1))
    assert list(got) == [2] and got[2].evs == evs
    # one revision of the five was another's: the publisher gets that one
    got = subs.fanout(evs, {**dict.fromkeys(range(100, 105), 1), 102: 2})
    assert got[1].evs == [evs[2]] and got[2].evs == evs[:2] + evs[3:]


def test_one_event_goes_to_every_subscriber_but_its_publisher() -> None:
    # the one-event shape (an evt.pub's fan-out) takes its own path since session 12
    ev = Event(1, 100, "a.x", "k", Cmd.NEW, None)
    subs = Subs()
    for conn in CONNS:
        subs.subscribe(conn, ["a.x"])
    subs.get(3).watermark = 100  # already has it (a catch-up's reply)
    got = subs.fanout([ev], {100: 1})
    assert {c: d.evs for c, d in got.items()} == {2: [ev]}
    assert {c: d.evs for c, d in subs.fanout((ev,)).items()} == {1: [ev], 2: [ev]}
