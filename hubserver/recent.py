"""The events a hub fanned out most recently, so an ``evt.sat`` reply need not read them back.

A satellite that replays its offline edits sends them in batches; the reply to each batch
carries every event after the request's revision, which are mostly the batch's own events,
committed a moment before. Reading them back from the ledger (and decoding their JSON again)
was about a quarter of the hub's work per batch. :class:`RecentEvents` keeps what
:meth:`HubService.published <hubserver.service.HubService.published>` fanned out, which is
*every* event of the ledger after :attr:`RecentEvents.floor` (``published`` fetches any gap
left by other hubs first), so a read after a revision at or above the floor is answered from
memory exactly as ``Ledger.events`` would answer it; older reads go to the ledger.

They are bounded by count and by bytes (their values' JSON, :func:`arg_bytes`): by count only,
8,192 events of 800 KB values were 6.5 GB (operator review 14: 1.3 GB kept after 1,500).
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Sequence
from operator import attrgetter

import orjson

from core.model import Event
from core.revision import Rev

__all__ = ["RECENT_BYTES", "RecentEvents", "arg_bytes"]

_top_of = attrgetter("top")
_arg_of = attrgetter("arg")

RECENT_BYTES = 64 << 20
"""The bytes of values :class:`RecentEvents` keeps at most by default (64 MiB)."""

_EV_BYTES = 100  # an event's fields but its value, as hubserver.satreply.fit counts them


def arg_bytes(evs: Sequence[Event]) -> list[int]:
    """Each event's bytes: its value's JSON (orjson's) and about 100 for the rest; one encode
    of the lot when there is one (a publish's)."""
    if len(evs) == 1:
        a = evs[0].arg
        return [_EV_BYTES if a is None else _EV_BYTES + len(_dumps(a))]
    args = list(map(_arg_of, evs))
    if None not in args:  # a batch's (every event with a value): encoded in C, no call of _dumps
        try:
            return [_EV_BYTES + n for n in map(len, map(orjson.dumps, args))]
        except (TypeError, orjson.JSONEncodeError):
            pass  # one that does not encode: counted as _dumps does, below
    return [_EV_BYTES if a is None else _EV_BYTES + len(_dumps(a)) for a in args]


def _dumps(a: object) -> bytes:
    try:
        return orjson.dumps(a)
    except (TypeError, orjson.JSONEncodeError):  # what no reply carries: counted as text
        return str(a).encode()


class RecentEvents:
    """The newest events, contiguous: every event after :attr:`floor`, in (rev, id) order.

    Args:
        floor: the revision up to which nothing is kept (the hub's revision at start).
        cap: how many events to keep at most; when more are added, the oldest half goes
            (whole revisions) and :attr:`floor` moves up.
        max_bytes: how many bytes of events (:func:`arg_bytes`) to keep at most; past it
            the oldest go until half of it is left, as past ``cap``.
    """

    def __init__(self, floor: Rev, cap: int = 8192, max_bytes: int = RECENT_BYTES):
        self.floor = floor
        self.cap = max(1, cap)
        self.max_bytes = max(1, max_bytes)
        self._evs: list[Event] = []
        self._revs: list[Rev] = []
        self._ends: list[int] = []  # bytes of every event added up to each one (running)
        self._total = 0  # ... up to the last one
        self._gone = 0  # ... up to the last one trimmed

    def __len__(self) -> int:
        return len(self._evs)

    @property
    def nbytes(self) -> int:
        """The bytes of the events kept (:func:`arg_bytes`)."""
        return self._total - self._gone

    def add(self, evs: Sequence[Event], sizes: Sequence[int] | None = None) -> None:
        """Append the events of newly fanned-out revisions (all after the ones kept);
        ``sizes``: their :func:`arg_bytes`, when known."""
        if not evs:
            return
        if sizes is None:
            sizes = arg_bytes(evs)
        if len(evs) == 1:  # one publish of one action: no generator
            e = evs[0]
            self._evs.append(e)
            self._revs.append(e.rev)
            self._total += sizes[0]
            self._ends.append(self._total)
        else:
            self._evs.extend(evs)
            self._revs.extend([e.rev for e in evs])
            ends = self._ends
            total = self._total
            for n in sizes:
                total += n
                ends.append(total)
            self._total = total
        if len(self._evs) > self.cap:
            self._trim(len(self._evs) - self.cap // 2)
        if self._total - self._gone > self.max_bytes:
            # the oldest, until half the bytes are left
            self._trim(bisect.bisect_left(self._ends, self._total - self.max_bytes // 2))

    def _trim(self, cut: int) -> None:
        revs = self._revs
        cut = min(cut, len(revs) - 1)
        # never inside a revision: the floor must hold all of its events or none
        cut = bisect.bisect_right(revs, revs[cut])
        self.floor = revs[cut - 1]
        self._gone = self._ends[cut - 1]
        del self._evs[:cut]
        del self._revs[:cut]
        del self._ends[:cut]

    def tail_bytes(self, evs: Sequence[Event]) -> int | None:
        """The bytes (:func:`arg_bytes`) of ``evs``, counted when they were added, when they
        are the newest ``len(evs)`` events kept (what :meth:`after` returns whole: a
        replaying satellite's reply); ``None`` for any other list. Told by its ends alone:
        events kept are distinct objects in order, so a list of ``n`` that starts with the
        ``n``-th newest and ends with the newest is exactly those."""
        n = len(evs)
        kept = self._evs
        if not n or n > len(kept) or evs[-1] is not kept[-1] or evs[0] is not kept[-n]:
            return None
        return self._total - (self._ends[-n - 1] if n < len(kept) else self._gone)

    def covers(self, rev: Rev) -> bool:
        """True when every event after ``rev`` (up to the last one added) is kept."""
        return rev >= self.floor

    def last_at(self, rev: Rev) -> tuple[int, Rev] | None:
        """``(id, rev)`` of the last event at or before ``rev`` when one is kept (``rev`` at or
        after the oldest kept: the events are contiguous, so it is the ledger's), else
        ``None`` (not known here: ``Ledger.last_event_at``)."""
        i = bisect.bisect_right(self._revs, rev)
        if not i:
            return None
        e = self._evs[i - 1]
        return e.id, e.rev

    def count_after(self, rev: Rev, tops: frozenset[str] | None = None) -> int:
        """How many events (of ``tops``; of every topic when ``None``) follow ``rev`` up to
        the last one added; 0 when ``rev`` is not :meth:`covered <covers>` (not known
        here)."""
        if rev < self.floor:
            return 0
        start = bisect.bisect_right(self._revs, rev)
        if tops is None:
            return len(self._revs) - start
        evs = self._evs
        return sum(1 for i in range(start, len(evs)) if evs[i].top in tops)

    def after(self, rev: Rev, tops: Iterable[str], limit: int = 0) -> list[Event]:
        """``Ledger.events(rev, tops, limit)`` up to the last event added; ``rev`` must be
        :meth:`covered <covers>`. ``limit`` > 0 stops after that many events, but completes
        the last revision."""
        if rev < self.floor:
            raise ValueError(f"revision {rev} is before the kept events (floor {self.floor})")
        wanted = set(tops)
        out: list[Event] = []
        if not wanted:
            return out
        evs = self._evs
        start = bisect.bisect_right(self._revs, rev)
        if not limit or len(evs) - start <= limit:  # no cut (a replay's reply: its batch)
            tail = evs[start:]
            if wanted.issuperset(map(_top_of, tail)):  # all of them, without a Python loop
                return tail
            return [e for e in tail if e.top in wanted]
        for i in range(start, len(evs)):
            e = evs[i]
            if limit and len(out) >= limit and e.rev != out[-1].rev:
                break
            if e.top in wanted:
                out.append(e)
        return out
