"""An in-memory implementation of :class:`core.satellite.api.SatelliteAPI` for widget tests.

A fake of our own interface (allowed by the house rules): the replica is a
:class:`~core.ledger.memory.MemLedger`, the "hub" another one, and :meth:`FakeSatellite.sync`
publishes the pending queue to it and replicates what came back, the way the real satellite
does over the wire. Used to develop and test item models without sockets.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import replace
from typing import Any

from core.errors import ConflictError, ValidationError
from core.ids import new_key, new_uid
from core.ledger.memory import MemLedger
from core.ledger.protocols import HistoryEntry
from core.model import Action, Cmd, Trans, apply_action
from core.revision import Rev, now_rev
from core.satellite.api import (
    Change,
    Keep,
    Listener,
    Receipt,
    ReceiptState,
    RecordView,
    SatStatus,
)
from core.satellite.order import ordered_keys, sort_value
from core.schema import Project


class FakeSatellite:
    """Replica + local queue in memory; ``sync()`` talks to a :class:`MemLedger` hub."""

    def __init__(self, project: Project, hub: MemLedger | None = None, usr: str = "me"):
        self._project = project
        self.hub = hub
        self.usr = usr
        self.replica = MemLedger(project)
        self._receipts: dict[str, Receipt] = {}
        self._listeners: list[Listener] = []
        self.online = False
        self.last_error = ""

    # -- reading -------------------------------------------------------------------------------

    @property
    def project(self) -> Project:
        return self._project

    def _pending(self) -> list[Receipt]:
        return [r for r in self._receipts.values() if r.state == ReceiptState.PENDING]

    def rev(self) -> Rev:
        return self.replica.rev()

    def dir_gone(self) -> str:
        return ""  # in memory: no directory to lose

    def status(self) -> SatStatus:
        return SatStatus(
            online=self.online, hub="memory://hub" if self.hub else "", rev=self.replica.rev(),
            hub_rev=self.hub.rev() if self.hub and self.online else self.replica.rev(),
            pending=len(self._pending()),
            conflicts=sum(r.state == ReceiptState.REJECTED for r in self._receipts.values()),
            last_error=self.last_error, mig=self._project.version)

    def _view(self, top: str) -> dict[str, RecordView]:
        conf = self.replica.states(top)
        out: dict[str, RecordView] = {
            k: RecordView(top, k, v, v) for k, v in conf.items()}
        for r in self._receipts.values():
            for a in r.acts:
                if a.top != top:
                    continue
                cur = out.get(a.key) or RecordView(top, a.key, None, None)
                if r.state == ReceiptState.PENDING:
                    try:
                        fields = apply_action(cur.fields, a)
                    except ValidationError:
                        fields = cur.fields
                    if fields is not None:
                        full = {n: fields.get(n) for n in self._project.model(top).field_names()}
                        fields = full
                    cur = replace(cur, fields=fields, pending=(*cur.pending, r.uid))
                elif r.state == ReceiptState.REJECTED:
                    cur = replace(cur, conflict=(*cur.conflict, r.uid))
                else:
                    continue
                out[a.key] = cur
        return out

    def keys(self, top: str, confirmed: Sequence[str] | None = None) -> list[str]:
        out = set(self.replica.states(top) if confirmed is None else confirmed)
        for k, rv in self._view(top).items():
            if rv.pending:  # as the satellite: pending edits on top of the replica's keys
                if rv.fields is None:
                    out.discard(k)
                else:
                    out.add(k)
        return sorted(out)

    def confirmed_keys(self, top: str) -> list[str]:
        return sorted(self.replica.states(top))

    def confirmed_order(self, top: str, field: str, desc: bool = False,
                        ) -> tuple[list[str], list[Any]]:
        f = self._project.model(top).field(field)
        assert f is not None
        conf = self.replica.states(top)
        items = [(k, sort_value(f, v.get(field))) for k, v in conf.items()]
        keys = ordered_keys(f, items, desc)
        by = dict(items)
        return keys, [by[k] for k in keys]

    def confirmed_scan(self, top: str, chunk: int = 5_000, *,
                       where: tuple[str, Sequence[Any]] | None = None,
                       ) -> Iterator[list[RecordView]]:
        conf = self.replica.states(top)  # every record: a superset of any ``where``
        out = [RecordView(top, k, conf[k], conf[k]) for k in sorted(conf)]
        for i in range(0, len(out), chunk):
            yield out[i:i + chunk]

    def applying(self) -> int:
        return 0

    def build_overlay(self, budget: float = 0.05, *, whole: bool = False) -> bool:
        return True

    def overlaid(self, top: str) -> frozenset[str]:
        return frozenset(k for k, rv in self._view(top).items() if rv.pending)

    def records(self, top: str) -> list[RecordView]:
        v = self._view(top)
        return [v[k] for k in sorted(v) if v[k].fields is not None]

    def record(self, top: str, key: str) -> RecordView | None:
        return self._view(top).get(key)

    def lost_keys(self, top: str) -> frozenset[str]:
        return frozenset()  # no hub lost an accepted edit of this fake

    lost_partial = False  # (Satellite.lost_partial)

    def maybe_lost_keys(self, top: str) -> frozenset[str]:
        return frozenset()

    def records_of(self, top: str, keys: Iterable[str]) -> dict[str, RecordView]:
        v = self._view(top)
        return {k: v[k] for k in keys if k in v}

    def count(self, top: str) -> int:
        return len(self.keys(top))

    def new_key(self, top: str) -> str:
        if self._project.model(top).key != "int":
            return new_key()
        known = {e.key for e in self.replica.events(0, [top])}
        known.update(a.key for r in self._receipts.values() for a in r.acts if a.top == top)
        return str(max([0, *(int(k) for k in known if k.isascii() and k.isdigit())]) + 1)

    def pub_many(self, batches: Iterable[tuple[Sequence[Action], Rev | None]]) -> list[str]:
        return [self.pub(acts, base=base) for acts, base in batches]

    def receipts(self, states: Sequence[ReceiptState] | None = None) -> list[Receipt]:
        return [r for r in self._receipts.values() if states is None or r.state in states]

    def accepted_among(self, revs: Iterable[Rev]) -> frozenset[Rev]:
        mine = {r.rev for r in self._receipts.values() if r.state == ReceiptState.ACCEPTED}
        return frozenset(r for r in revs if r in mine)

    def last_accepted(self) -> Receipt | None:
        return max((r for r in self._receipts.values()
                    if r.state == ReceiptState.ACCEPTED and r.rev and r.acts),
                   key=lambda r: r.rev, default=None)

    def receipt(self, uid: str) -> Receipt | None:
        return self._receipts.get(uid)

    def accepted_at(self, revs: Iterable[Rev]) -> list[Receipt]:
        want = set(revs)
        return [r for r in self._receipts.values()
                if r.state == ReceiptState.ACCEPTED and r.rev in want]

    def settled_receipts(self) -> list[Receipt]:
        return [r for r in self._receipts.values() if r.state == ReceiptState.RESOLVED and (
            r.resolved_by == "same" or getattr(self._receipts.get(r.resolved_by), "settled",
                                               False))]

    def history(self, top: str, key: str) -> list[HistoryEntry]:
        return self.replica.history(top, key)

    def state_at(self, top: str, key: str, rev: Rev) -> dict[str, Any] | None:
        return self.replica.state(top, key, rev)

    def own_revs(self, revs: Iterable[Rev]) -> set[Rev]:
        mine = {r.rev for r in self._receipts.values() if r.state == ReceiptState.ACCEPTED}
        return {r for r in revs if r in mine}

    # -- writing -------------------------------------------------------------------------------

    def listen(self, fn: Listener) -> Callable[[], None]:
        self._listeners.append(fn)
        return lambda: self._listeners.remove(fn)

    def _notify(self, ch: Change) -> None:
        for fn in list(self._listeners):
            fn(ch)

    def pub(self, acts: Sequence[Action], *, resolves: str = "", base: Rev | None = None) -> str:
        view: dict[str, dict[str, RecordView]] = {}
        for a in acts:
            self._project.check_action(a)
            v = view.setdefault(a.top, self._view(a.top)).get(a.key)
            apply_action(v.fields if v else None, a)
        uid = new_uid()
        rev = self.replica.rev() if base is None else base
        self._receipts[uid] = Receipt(uid, rev, now_rev(), tuple(acts),
                                      ReceiptState.PENDING, resolves=resolves)
        recs: dict[str, set[str]] = {}
        for a in acts:
            recs.setdefault(a.top, set()).add(a.key)
        self._notify(Change({t: frozenset(k) for t, k in recs.items()}, status=True,
                            receipts=True))
        return uid

    def read_only_reason(self) -> str:
        return ""  # the fake's user may write (the real satellite: tests/satellite)

    def discard(self, uid: str) -> None:
        raise ValidationError(f"transaction {uid} may reach the hub: not discarded")

    def both_keys(self, uid: str) -> dict[str, str]:
        return {}  # the fake has no key clashes (tests/satellite/test_keep_both.py)

    def later_edits(self, uid: str, records: Iterable[str]) -> dict[str, list[str]]:
        return {}  # no key clashes, so no keep both (tests/satellite/test_keep_both_later.py)

    def resolve_many(self, uids: Sequence[str], keep: Keep, *,
                     seen: Rev | None = None) -> list[str]:
        return [self.resolve(u, keep, seen=seen) for u in uids]

    def resolve(self, uid: str, keep: Keep | Mapping[str, Mapping[str, Keep]], *,
                keys: Mapping[str, str] | None = None, seen: Rev | None = None) -> str:
        r = self._receipts[uid]
        new = ""
        if keep == Keep.MINE:
            acts = list(self._rebased(r.acts))
            new = self.pub(acts, resolves=uid) if acts else ""
        elif isinstance(keep, Mapping):
            acts = []
            for a in r.acts:
                picks = keep.get(f"{a.top} {a.key}", {})
                arg = {f: v for f, v in (a.arg or {}).items() if picks.get(f) == Keep.MINE}
                if arg and a.cmd == Cmd.MOD:
                    acts.append(Action(a.top, a.key, Cmd.MOD, arg))
            new = self.pub(acts, resolves=uid) if acts else ""
        self._receipts[uid] = replace(self._receipts[uid], state=ReceiptState.RESOLVED,
                                      resolved_by=new)
        recs: dict[str, set[str]] = {}
        for a in r.acts:
            recs.setdefault(a.top, set()).add(a.key)
        self._notify(Change({t: frozenset(k) for t, k in recs.items()}, status=True,
                            receipts=True))
        return new

    def _rebased(self, acts: Sequence[Action]) -> list[Action]:
        out = []
        for a in acts:
            cur = self.replica.state(a.top, a.key)
            if a.cmd == Cmd.MOD and cur is None:
                out.append(Action(a.top, a.key, Cmd.NEW, a.arg))
            else:
                out.append(a)
        return out

    def sync(self) -> None:
        """Publish pending receipts to the hub, then replicate everything new."""
        assert self.hub is not None
        self.online = True
        touched: dict[str, set[str]] = {}
        for r in self._pending():
            for a in r.acts:
                touched.setdefault(a.top, set()).add(a.key)
            try:
                res = self.hub.publish(Trans(r.acts, base=r.base, uid=r.uid), self.usr)
                self._receipts[r.uid] = replace(r, state=ReceiptState.ACCEPTED, rev=res.rev)
            except ConflictError as exc:
                self._receipts[r.uid] = replace(r, state=ReceiptState.REJECTED, err=str(exc),
                                                conflicts=exc.conflicts)
        evs = self.hub.events(self.replica.rev())
        audits = [a for a in (self.hub.audit(rv) for rv in {e.rev for e in evs}) if a]
        self.replica.replicate(self.hub.rev(), evs, audits)
        for e in evs:
            touched.setdefault(e.top, set()).add(e.key)
        self._notify(Change({t: frozenset(k) for t, k in touched.items()}, status=True,
                            receipts=True))
