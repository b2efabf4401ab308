"""The invariants a simulated run must keep after the heal (issue: satellite, item 5).

1. every accepted transaction is in the hub ledger exactly once (its uid maps to its revision,
   the events at that revision are its actions, and no revision holds two transactions);
2. no pending edit was lost: every uid a satellite made has a receipt, accepted, rejected or
   resolved, none pending, none missing, none extra (but the resolution a satellite makes
   itself of an edit settled by itself: the same values on both sides);
3. every replica equals the hub: revision, event log and every record's state, and what the
   user sees equals the hub's state;
5. a daql client subscribed with ``evt.sub`` (reconnecting from the revision it has) got
   every event of the hub's log once, in order, each connection's reply before its pushes;
   its monitor (``evt.mon`` from that revision) on the last connection noted exactly the
   keys changed since, none before the monitor's reply;
4. every collision shows up as a conflict or merges cleanly per DESIGN §3: an accepted
   transaction collided with nothing the rules call a conflict (an oracle written here, apart
   from ``core.ledger.rules``), a rejected one names a change after its base that is in the
   hub's log, and the satellite's status counts every rejected transaction as a conflict.

:func:`check` returns a list of violations (empty: all good) so a failure prints all of them.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from core.model import Cmd, Event
from core.satellite.api import ReceiptState
from core.satellite.conflicts import settled_same
from tests.sim.world import TOPIC, World


def _oracle_collides(cmd: Cmd, arg: dict[str, Any] | None, later: list[Event]) -> str:
    """DESIGN §3 conflicts, re-stated: why ``cmd`` must conflict with ``later`` ("" if not)."""
    for e in later:
        if cmd == Cmd.NEW and e.cmd == Cmd.NEW:
            return f"key created at {e.rev}"
        if cmd in (Cmd.MOD, Cmd.DEL) and e.cmd == Cmd.DEL:
            return f"record deleted at {e.rev}"
        if cmd == Cmd.DEL and e.cmd == Cmd.MOD:
            return f"record modified at {e.rev}"
        if cmd == Cmd.MOD and e.cmd in (Cmd.MOD, Cmd.NEW):
            both = set(arg or ()) & set(e.arg or ())
            if both and e.cmd == Cmd.MOD:
                return f"fields {sorted(both)} changed at {e.rev}"
    return ""


def check(w: World) -> list[str]:
    """All invariant violations of a settled world."""
    bad: list[str] = []
    hub = w.hub_ledger
    bad.extend(f"hub verify: {p}" for p in hub.verify())
    hub_evs = hub.events(0)
    by_rev: dict[int, list[Event]] = {}
    for e in hub_evs:
        by_rev.setdefault(e.rev, []).append(e)
    hub_state = hub.states(TOPIC)

    accepted: dict[str, int] = {}
    for s in w.sats:
        sat = s.sat
        if sat is None:
            bad.append(f"{s.name}: still crashed after the heal")
            continue
        # 3. replica == hub
        if sat.rev() != hub.rev():
            bad.append(f"{s.name}: replica rev {sat.rev()} != hub rev {hub.rev()}")
        mine = sat.replica.read.events(0)
        if mine != hub_evs:
            bad.append(f"{s.name}: replica event log differs from the hub's "
                       f"({len(mine)} vs {len(hub_evs)} events)")
        # the audits as the hub sent them (arrived stays on the hub): the satellite rebuilds
        # those of its own transactions from what it sent when the hub leaves them out (own)
        got = [(a.rev, a.usr, a.created, a.uid, a.extra)
               for a in sat.replica.read.audits(0, sat.rev())]
        want = [(a.rev, a.usr, a.created, a.uid, a.extra) for a in hub.audits(0, sat.rev())]
        if got != want:
            bad.append(f"{s.name}: replica audits differ from the hub's "
                       f"({len(got)} vs {len(want)})")
        if sat.replica.read.states(TOPIC) != hub_state:
            bad.append(f"{s.name}: replica state differs: {sat.replica.read.states(TOPIC)} "
                       f"vs hub {hub_state}")
        seen = {r.key: r.fields for r in sat.records(TOPIC)}
        if seen != hub_state:
            bad.append(f"{s.name}: the user sees {seen}, the hub has {hub_state}")
        bad.extend(f"{s.name} replica verify: {p}" for p in sat.replica.read.verify())

        # 2. no edit lost, none pending
        recs = {r.uid: r for r in sat.receipts()}
        made = Counter(s.uids)
        for uid, n in made.items():
            if n > 1:
                bad.append(f"{s.name}: uid {uid} made {n} times")
            if uid not in recs:
                bad.append(f"{s.name}: the edit {uid} vanished from the queue")
        for uid, r in recs.items():
            # the satellite's own resolution of an edit settled by itself (the same values on
            # both sides: session 13) is made by no edit of the world's
            own = (r.resolves in recs and recs[r.resolves].resolved_by == uid
                   and settled_same(recs[r.resolves]))
            if uid not in made and not own:
                bad.append(f"{s.name}: receipt {uid} that no edit made")
        for r in recs.values():
            if r.state == ReceiptState.PENDING:
                bad.append(f"{s.name}: {r.uid} still pending after the heal")
            elif r.state == ReceiptState.ACCEPTED:
                if r.uid in accepted:
                    bad.append(f"{s.name}: uid {r.uid} accepted by two satellites")
                accepted[r.uid] = r.rev
            elif r.state in (ReceiptState.REJECTED, ReceiptState.RESOLVED):
                if hub.uid_rev(r.uid) is not None:
                    bad.append(f"{s.name}: {r.uid} is {r.state.value} here but applied on "
                               f"the hub at {hub.uid_rev(r.uid)}")
                bad.extend(_check_rejected(s.name, r, by_rev))

        # 4. conflicts visible: every rejected receipt counts
        st = sat.status()
        n_rej = sum(1 for r in recs.values() if r.state == ReceiptState.REJECTED)
        if st.conflicts != n_rej or st.pending != 0:
            bad.append(f"{s.name}: status says {st.conflicts} conflicts, {st.pending} pending;"
                       f" the queue has {n_rej} rejected, 0 pending")

    # 5. a daql client subscribed with evt.sub got the hub's log: every event once, in order
    for wa in w.watchers:
        bad.extend(f"{wa.name}: {e}" for e in wa.errors[:10])
        if wa.led.events(0) != hub_evs:
            bad.append(f"{wa.name}: got {len(wa.led.events(0))} events, the hub has "
                       f"{len(hub_evs)}")
        if wa.led.states(TOPIC) != hub_state:
            bad.append(f"{wa.name}: state {wa.led.states(TOPIC)} vs hub {hub_state}")
        changed = {e.key for e in hub_evs if e.rev > wa.mon_rev}
        if wa.noted != changed:
            bad.append(f"{wa.name}: its monitor (from rev {wa.mon_rev}) noted "
                       f"{sorted(wa.noted)}, the keys changed since are {sorted(changed)}")

    # 1. exactly once
    office = {u: hub.uid_rev(u) for u in w.office_uids}
    trans_revs = Counter([*accepted.values(), *(r for r in office.values() if r is not None)])
    for rev, n in trans_revs.items():
        if n > 1:
            bad.append(f"hub revision {rev} holds {n} accepted transactions")
    if set(by_rev) != set(trans_revs):
        extra = sorted(set(by_rev) - set(trans_revs))
        missing = sorted(set(trans_revs) - set(by_rev))
        bad.append(f"hub revisions without an accepted transaction: {extra}; "
                   f"accepted transactions without events: {missing}")
    for s in w.sats:
        if s.sat is None:
            continue
        for r in s.sat.receipts([ReceiptState.ACCEPTED]):
            if hub.uid_rev(r.uid) != r.rev:
                bad.append(f"{s.name}: {r.uid} accepted at {r.rev}, hub has it at "
                           f"{hub.uid_rev(r.uid)}")
                continue
            evs = by_rev.get(r.rev, [])
            got = [(e.top, e.key, e.cmd) for e in evs]
            want = [(a.top, a.key, a.cmd) for a in r.acts]
            if got != want:
                bad.append(f"{s.name}: {r.uid} at {r.rev}: hub events {got}, actions {want}")
            for a, e in zip(r.acts, evs, strict=False):
                if a.cmd == Cmd.MOD and e.arg != a.arg:
                    bad.append(f"{s.name}: {r.uid}: mod {a.arg} stored as {e.arg}")
            # 4. an accepted transaction collided with nothing after its base
            for a in r.acts:
                if r.base == 0 and a.cmd != Cmd.NEW:
                    continue  # daql's "no base": last writer wins (DESIGN, rules.py)
                later = [e for e in hub_evs if r.base < e.rev < r.rev
                         and (e.top, e.key) == (a.top, a.key)]
                why = _oracle_collides(a.cmd, a.arg, later)
                if why:
                    bad.append(f"{s.name}: {r.uid} ({a.cmd} {a.key} {a.arg}, base {r.base}) "
                               f"was accepted at {r.rev} although {why}")
    return bad


def _check_rejected(name: str, r: Any, by_rev: dict[int, list[Event]]) -> list[str]:
    bad = []
    if not r.err:
        bad.append(f"{name}: {r.uid} {r.state.value} without an error")
    for c in r.conflicts:
        if c.rev <= r.base:
            bad.append(f"{name}: {r.uid} conflict names rev {c.rev}, not after base {r.base}")
        if not any((e.top, e.key) == (c.top, c.key) for e in by_rev.get(c.rev, [])):
            bad.append(f"{name}: {r.uid} conflict names {c.top} {c.key} at {c.rev}, which is "
                       "not in the hub's log")
    return bad
