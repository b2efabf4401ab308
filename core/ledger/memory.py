"""An in-memory ledger: the reference implementation of the protocols, for tests and simulation.

It follows exactly the same rules as the SQL ledger (both call :func:`core.ledger.rules.plan`;
``publish_many`` uses the SQL ledger's batch planner, :mod:`core.ledger.batch`); a publish
computes everything first and mutates only when nothing can fail any more.
"""

from __future__ import annotations

import bisect
import uuid
from collections.abc import Iterable, Sequence
from typing import Any

import orjson

from core.errors import ValidationError
from core.ledger.batch import later_wanted, plan_batch
from core.ledger.protocols import (
    HIST_ENTRY_BYTES,
    HistoryEntry,
    PubResult,
    history_cut,
    some_topics,
)
from core.ledger.rules import Later, apply_events, needs_conflict_check, plan, sigs_of, uid_clash
from core.model import Audit, Cmd, Event, Sig, Trans
from core.revision import ZERO_REV, Rev, now_rev
from core.schema import Project

__all__ = ["MemLedger"]


class MemLedger:
    """A ledger held in memory (Publisher and Replicator)."""

    def __init__(self, project: Project, *, ledger_id: str = ""):
        self._project = project
        self._evs: list[Event] = []
        self._revs: list[Rev] = []  # parallel to _evs, for bisect
        self._audits: dict[Rev, Audit] = {}
        self._state: dict[Sig, dict[str, Any]] = {}
        self._state_rev: dict[Sig, Rev] = {}
        self._uids: dict[str, Rev] = {}
        self._rev: Rev = ZERO_REV
        self.ledger_id: str = ledger_id or uuid.uuid4().hex
        """The ledger's identity, made with it (as ``SqlLedger.ledger_id``; given: a
        simulation that replays a seed frame for frame)."""
        self.restored: tuple[Rev, str] = (ZERO_REV, "")
        """Never restored (as ``SqlLedger.restored``)."""
        self.restores: tuple[tuple[Rev, str], ...] = ()
        """Never restored (as ``SqlLedger.restores``)."""

    @property
    def project(self) -> Project:
        return self._project

    def rev(self) -> Rev:
        return self._rev

    def close(self) -> None:
        pass

    # -- reading -------------------------------------------------------------------------------

    def events(self, rev: Rev, tops: Iterable[str] | None = None, limit: int = 0,
               max_bytes: int = 0) -> list[Event]:
        start = bisect.bisect_right(self._revs, rev)
        wanted = None if tops is None else set(tops)
        out: list[Event] = []
        got = 0
        for e in self._evs[start:]:
            if limit and out and e.rev != out[-1].rev and (
                    len(out) >= limit or (max_bytes and got >= max_bytes)):
                break
            if wanted is None or e.top in wanted:
                out.append(e)
                if max_bytes and limit:
                    got += 100 + (0 if e.arg is None else len(orjson.dumps(e.arg)))
        return out

    def count_after(self, rev: Rev, tops: Iterable[str] | None = None) -> int:
        """How many events of ``tops`` (all: ``None``) follow ``rev`` (exact: as
        ``SqlLedger.count_after``)."""
        start = bisect.bisect_right(self._revs, rev)
        wanted = some_topics(self._project, tops)
        if wanted is None:
            return len(self._revs) - start
        return sum(1 for e in self._evs[start:] if e.top in wanted)

    def last_event_at(self, rev: Rev) -> tuple[int, Rev]:
        """As ``SqlLedger.last_event_at``."""
        i = bisect.bisect_right(self._revs, rev)
        if not i:
            return 0, ZERO_REV
        e = self._evs[i - 1]
        return e.id, e.rev

    def event_keys(self, rev: Rev, tops: Iterable[str] | None = None,
                   limit: int = 0) -> list[Event]:
        """:meth:`events` without their ``arg`` (``None``), as ``SqlLedger.event_keys``."""
        return [Event(e.id, e.rev, e.top, e.key, e.cmd) for e in self.events(rev, tops, limit)]

    def _sig_events(self, sig: Sig, after: Rev = ZERO_REV) -> list[Event]:
        start = bisect.bisect_right(self._revs, after)
        return [e for e in self._evs[start:] if e.top == sig.top and e.key == sig.key]

    def state(self, top: str, key: str, rev: Rev | None = None) -> dict[str, Any] | None:
        sig = Sig(top, key)
        if rev is None or rev >= self._rev:
            cur = self._state.get(sig)
            return None if cur is None else self._full(top, cur)
        folded: dict[Sig, dict[str, Any]] = {}
        apply_events(folded, [e for e in self._sig_events(sig) if e.rev <= rev])
        cur = folded.get(sig)
        return None if cur is None else self._full(top, cur)

    def states(self, top: str, rev: Rev | None = None) -> dict[str, dict[str, Any]]:
        if rev is None or rev >= self._rev:
            return {s.key: self._full(top, v) for s, v in self._state.items() if s.top == top}
        folded: dict[Sig, dict[str, Any]] = {}
        apply_events(folded, [e for e in self._evs if e.top == top and e.rev <= rev])
        return {s.key: self._full(top, v) for s, v in folded.items()}

    def states_of(self, top: str, keys: Iterable[str],
                  rev: Rev | None = None) -> dict[str, dict[str, Any]]:
        if rev is not None and rev < self._rev:
            return {k: st for k in keys if (st := self.state(top, k, rev)) is not None}
        out = {}
        for k in keys:
            cur = self._state.get(Sig(top, k))
            if cur is not None:
                out[k] = self._full(top, cur)
        return out

    def events_of(self, top: str, keys: Iterable[str], rev: Rev) -> dict[str, list[Event]]:
        want = set(keys)
        out: dict[str, list[Event]] = {}
        start = bisect.bisect_right(self._revs, rev)
        for e in self._evs[start:]:
            if e.top == top and e.key in want:
                out.setdefault(e.key, []).append(e)
        return out

    def keys(self, top: str) -> list[str]:
        self._project.model(top)
        return sorted(s.key for s in self._state if s.top == top)

    def count(self, top: str) -> int:
        self._project.model(top)
        return sum(1 for s in self._state if s.top == top)

    def _full(self, top: str, fields: dict[str, Any]) -> dict[str, Any]:
        return self._project.model(top).full(fields)

    def history(self, top: str, key: str) -> list[HistoryEntry]:
        out = []
        for e in self._sig_events(Sig(top, key)):
            a = self._audits.get(e.rev)
            out.append(HistoryEntry(e.rev, a.usr if a else "", e.cmd,
                                    dict(e.arg) if e.arg is not None else None))
        return out

    def history_page(self, top: str, key: str, after: Rev = 0, limit: int = 0,
                     max_bytes: int = 0) -> tuple[list[HistoryEntry], bool]:
        hist = [h for h in self.history(top, key) if h.rev > after]
        n = history_cut([(h.rev, HIST_ENTRY_BYTES + len(h.usr) + (
            0 if h.arg is None else len(orjson.dumps(h.arg)))) for h in hist], limit, max_bytes)
        return hist[:n], n < len(hist)

    def histories(self, top: str, keys: Iterable[str]) -> dict[str, list[HistoryEntry]]:
        return {k: h for k in dict.fromkeys(keys) if (h := self.history(top, k))}

    def audit(self, rev: Rev) -> Audit | None:
        return self._audits.get(rev)

    def audits(self, lo: Rev, hi: Rev) -> list[Audit]:
        return sorted((a for r, a in self._audits.items() if lo < r <= hi), key=lambda a: a.rev)

    def audits_at(self, revs: Sequence[Rev]) -> list[Audit]:
        return [a for r in revs if (a := self._audits.get(r)) is not None]

    def uid_rev(self, uid: str) -> Rev | None:
        """The revision a uid was applied at, or ``None``."""
        return self._uids.get(uid)

    def verify(self) -> list[str]:
        folded: dict[Sig, dict[str, Any]] = {}
        apply_events(folded, self._evs)
        problems = []
        for sig in sorted(set(folded) | set(self._state), key=lambda s: (s.top, s.key)):
            want = folded.get(sig)
            have = self._state.get(sig)
            if want is None:
                problems.append(f"{sig}: in state but deleted or absent in the event log")
            elif have is None:
                problems.append(f"{sig}: in the event log but missing from state")
            elif self._full(sig.top, want) != self._full(sig.top, have):
                problems.append(f"{sig}: state {have} differs from replay {want}")
        return problems

    # -- writing -------------------------------------------------------------------------------

    def publish(self, trans: Trans, usr: str = "", now: Rev | None = None) -> PubResult:
        if trans.uid and trans.uid in self._uids:
            rev = self._uids[trans.uid]
            evs = tuple(e for e in self._evs if e.rev == rev)
            a = self._audits.get(rev)
            clash = uid_clash(self._project, trans, usr, evs, a.usr if a else None)
            if clash is not None:
                raise clash
            return PubResult(rev, evs, dup=True)
        sigs = sigs_of(trans)
        states = {s: self._state.get(s) for s in sigs}
        later: dict[Sig, list[Later]] = {}
        if needs_conflict_check(trans, self._rev):
            for s in sigs:
                later[s] = [Later(e, self._usr(e.rev)) for e in self._sig_events(s, trans.base)]
        p = plan(self._project, trans, last_rev=self._rev,
                 last_id=self._evs[-1].id if self._evs else 0,
                 states=states, later=later, now=now_rev() if now is None else now)
        # nothing below can fail
        self._append(p.evs, Audit(p.rev, trans.created, now_rev() if now is None else now,
                                  usr, trans.extra, trans.uid))
        for sig, st in p.states.items():
            if st is None:
                self._state.pop(sig, None)
                self._state_rev.pop(sig, None)
            else:
                self._state[sig] = st
                self._state_rev[sig] = p.rev
        if trans.uid:
            self._uids[trans.uid] = p.rev
        self._rev = p.rev
        return PubResult(p.rev, p.evs)

    def publish_many(self, trans: Sequence[tuple[Trans, str]],
                     now: Rev | None = None) -> list[PubResult | Exception]:
        """Publish several transactions, each on its own, as one step.

        Goes through the SQL ledger's batch planner (:func:`core.ledger.batch.plan_batch`),
        so the reference implementation exercises it; :meth:`publish` stays the one-by-one
        oracle. A ValidationError or ConflictError takes the transaction's place in the
        result; anything else is a bug and propagates, with nothing applied.
        """
        items = list(trans)
        if not items:
            return []
        states = {s: self._state.get(s) for t, _ in items for s in sigs_of(t)}
        later: dict[Sig, list[Later]] = {}
        for top, (base, keys) in later_wanted(items, self._rev).items():
            for k in keys:
                sig = Sig(top, k)
                got = [Later(e, self._usr(e.rev)) for e in self._sig_events(sig, base)]
                if got:
                    later[sig] = got
        applied = {t.uid: self._uids[t.uid] for t, _ in items if t.uid in self._uids}
        bp = plan_batch(self._project, items, last_rev=self._rev,
                        last_id=self._evs[-1].id if self._evs else 0, states=states,
                        later=later, applied=applied,
                        clock=now_rev if now is None else (lambda: now))
        # nothing below can fail
        self._evs.extend(bp.events)
        self._revs.extend(e.rev for e in bp.events)
        for rev, created, arrived, usr, extra, uid in bp.audits:
            self._audits[rev] = Audit(rev, created, arrived, usr,
                                      None if extra is None else dict(extra), uid)
        self._uids.update(bp.uids)
        for sig, (st, rev) in bp.states.items():
            if st is None:
                self._state.pop(sig, None)
                self._state_rev.pop(sig, None)
            else:
                self._state[sig] = st
                self._state_rev[sig] = rev
        self._rev = bp.last_rev
        out: list[PubResult | Exception] = []
        for i, r in enumerate(bp.results):
            if r is None:
                rev = bp.dup_of[i]
                evs = tuple(e for e in self._evs if e.rev == rev)
                a = self._audits.get(rev)
                t, usr = items[i]
                out.append(uid_clash(self._project, t, usr, evs, a.usr if a else None)
                           or PubResult(rev, evs, dup=True))
            else:
                out.append(r)
        return out

    def _usr(self, rev: Rev) -> str:
        a = self._audits.get(rev)
        return a.usr if a else ""

    def _append(self, evs: Sequence[Event], audit: Audit) -> None:
        self._evs.extend(evs)
        self._revs.extend(e.rev for e in evs)
        self._audits[audit.rev] = audit

    def replicate(self, rev: Rev, evs: Sequence[Event], audits: Sequence[Audit] = ()) -> None:
        if rev < self._rev:
            raise ValidationError("replicate: revision goes back; replicas only move forward")
        fresh = [e for e in evs if e.rev > self._rev]
        apply_events(self._state, fresh)
        for e in fresh:
            if e.cmd == Cmd.DEL:
                self._state_rev.pop(e.sig, None)
            else:
                self._state_rev[e.sig] = e.rev
        self._evs.extend(fresh)
        self._revs.extend(e.rev for e in fresh)
        for a in audits:
            self._audits[a.rev] = a
            if a.uid:
                self._uids.setdefault(a.uid, a.rev)
        self._rev = rev
