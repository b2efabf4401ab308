"""The ledger protocols, named as in daql's ``evt`` package.

``Ledger`` is read access: revision, project, events after a revision, state and history.
``Publisher`` adds ``publish`` (the hub's side); ``Replicator`` adds ``replicate`` (a satellite
storing events the hub confirmed, together with the new revision).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from core.frozen import fast_init
from core.model import Audit, Cmd, Event, Trans
from core.revision import Rev
from core.schema import Project

__all__ = ["HIST_ENTRY_BYTES", "HistoryEntry", "Ledger", "PubResult", "Publisher", "Replicator",
           "history_cut", "some_topics"]


def some_topics(project: Project, tops: Iterable[str] | None) -> frozenset[str] | None:
    """``tops`` as a set when they leave out a topic of ``project``; ``None`` when they are
    ``None`` or name every topic (what ``count_after`` of every topic answers cheaply)."""
    if tops is None:
        return None
    wanted = frozenset(tops)
    return None if wanted.issuperset(project.topics) else wanted


HIST_ENTRY_BYTES = 96
"""What one history entry takes in a reply besides its values' JSON and its user (its
revision, command and keys), as :func:`history_cut` counts bytes."""


def history_cut(rows: Sequence[tuple[Rev, int]], limit: int, max_bytes: int) -> int:
    """How many of ``rows`` (a record's changes in order: each its revision and its size in
    bytes) one page of history keeps: at most ``limit`` changes (0: any number) and about
    ``max_bytes`` (0: any size), never cutting a revision (its changes are one transaction's,
    within one message); at least the first revision's, whatever its size. ``len(rows)``
    when all fit."""
    size = 0
    keep = 0  # rows up to the last revision boundary that fit
    for i, (rev, n) in enumerate(rows):
        if i and rev != rows[i - 1][0]:
            keep = i
        size += n
        if (limit and i >= limit) or (max_bytes and size > max_bytes):
            return keep if keep else _first_rev(rows)
    return len(rows)


def _first_rev(rows: Sequence[tuple[Rev, int]]) -> int:
    first = rows[0][0]
    return next((i for i, r in enumerate(rows) if r[0] != first), len(rows))


@fast_init
@dataclass(frozen=True, slots=True)
class PubResult:
    """The outcome of a publish: revision and events; ``dup`` when the uid was applied before."""

    rev: Rev
    evs: tuple[Event, ...]
    dup: bool = False


@dataclass(frozen=True, slots=True)
class HistoryEntry:
    """One change of a record: revision, user, command and the fields it set."""

    rev: Rev
    usr: str
    cmd: Cmd
    arg: dict[str, Any] | None

    @property
    def fields(self) -> tuple[str, ...]:
        return tuple(self.arg or ())


class Ledger(Protocol):
    """Read access to an ordered event log and the latest state it produced."""

    @property
    def project(self) -> Project: ...

    def rev(self) -> Rev:
        """The revision of the last published (or replicated) transaction."""
        ...

    @property
    def ledger_id(self) -> str:
        """The ledger's identity: random, made once when the ledger was created and kept for
        its life (a restored backup keeps it); ``""`` when it has none (a ledger made before
        ids, opened read-only). A hub serves it (``evt.stat``) so that a replica is never
        synced against another ledger."""
        ...

    @property
    def restored(self) -> tuple[Rev, str]:
        """The restore point: the final revision of the backup the ledger was last restored
        from and a random id of that restore; ``(0, "")`` when never restored. A hub serves
        it (``evt.stat`` ``restored``)."""
        ...

    @property
    def restores(self) -> tuple[tuple[Rev, str], ...]:
        """Every restore point of the ledger's history, oldest first (the last one is
        :attr:`restored`); ``()`` when never restored. A hub serves the last ones
        (``evt.stat`` ``restores``)."""
        ...

    def events(self, rev: Rev, tops: Iterable[str] | None = None,
               limit: int = 0, max_bytes: int = 0) -> list[Event]:
        """Events after ``rev`` of the given topics (all when ``None``), in (rev, id) order.

        ``limit`` > 0 cuts the list after that many events, but never inside a revision.
        ``max_bytes`` > 0 (with a ``limit``) cuts it too once the events' arguments hold
        about that many bytes of JSON (at least one revision, never inside one): a catch-up
        of large values reads about what it sends.
        """
        ...

    def count_after(self, rev: Rev, tops: Iterable[str] | None = None) -> int:
        """At most how many events of ``tops`` (every topic when ``None`` or when they
        include every topic of the schema) follow ``rev``. Of every topic: exact when the
        ledger's event ids have no gap, an upper bound otherwise, read without counting rows
        (a few index lookups, whatever the answer). Of some topics: counted exactly among the
        events after ``rev`` (a scan of that range only, no row decoded: the catch-up it
        sizes reads the same rows). A hub tells a catch-up's first reply how big it is
        (``total_max``, docs/protocol.md) so the client can show "of N"."""
        ...

    def last_event_at(self, rev: Rev) -> tuple[int, Rev]:
        """``(id, rev)`` of the ledger's last event (of every topic) at or before ``rev``,
        ``(0, ZERO_REV)`` when there is none: a few index lookups. A hub compares it with
        the one a satellite holds (``evt.sat`` ``last``, docs/protocol.md) to tell a
        replica whose history the hub no longer has (its file rolled back, then published
        again with its clock behind the lost revisions)."""
        ...

    def event_keys(self, rev: Rev, tops: Iterable[str] | None = None,
                   limit: int = 0) -> list[Event]:
        """The events :meth:`events` returns, without their ``arg`` (``None``): topics, keys
        and commands only, read without decoding any argument (a monitor's notes)."""
        ...

    def state(self, top: str, key: str, rev: Rev | None = None) -> dict[str, Any] | None:
        """A record's fields now, or as of ``rev``; ``None`` when it does not exist."""
        ...

    def states(self, top: str, rev: Rev | None = None) -> dict[str, dict[str, Any]]:
        """Every record of a topic (key → fields), now or as of ``rev``."""
        ...

    def states_of(self, top: str, keys: Iterable[str],
                  rev: Rev | None = None) -> dict[str, dict[str, Any]]:
        """The fields of the given records of a topic (key → fields), now or as of ``rev``
        (what :meth:`state` returns for each); keys of records that do not exist (then) are
        left out. One read for many keys."""
        ...

    def events_of(self, top: str, keys: Iterable[str], rev: Rev) -> dict[str, list[Event]]:
        """The events of the given records of a topic after ``rev``, by key, each key's in
        (rev, id) order; keys without any are left out. One read for many keys."""
        ...

    def keys(self, top: str) -> list[str]:
        """The keys of a topic's current records, sorted."""
        ...

    def count(self, top: str) -> int:
        """How many current records a topic has (``len(keys(top))`` without reading them)."""
        ...

    def history(self, top: str, key: str) -> list[HistoryEntry]:
        """Every change of one record, oldest first."""
        ...

    def history_page(self, top: str, key: str, after: Rev = 0, limit: int = 0,
                     max_bytes: int = 0) -> tuple[list[HistoryEntry], bool]:
        """The changes of one record after revision ``after``, oldest first, at most
        ``limit`` of them and about ``max_bytes`` (:func:`history_cut`); and whether more
        remain (ask again after the last one's revision)."""
        ...

    def histories(self, top: str, keys: Iterable[str]) -> dict[str, list[HistoryEntry]]:
        """:meth:`history` of many records of one topic in one read (records without a
        change are left out)."""
        ...

    def audit(self, rev: Rev) -> Audit | None:
        """The audit row of one revision."""
        ...

    def audits(self, lo: Rev, hi: Rev) -> list[Audit]:
        """The audit rows of the revisions after ``lo`` up to ``hi`` (inclusive), in order."""
        ...

    def audits_at(self, revs: Sequence[Rev]) -> list[Audit]:
        """The audit rows of ``revs`` (ascending, distinct), in order; a revision without one
        is left out. Reads only those rows, not every revision in their range (a reply's
        events of some topics are a few of the revisions between its first and last)."""
        ...

    def verify(self) -> list[str]:
        """Replay the event log and compare with the state; one line per difference."""
        ...

    def close(self) -> None: ...


class Publisher(Ledger, Protocol):
    """A ledger that accepts transactions (the hub's ledger)."""

    def publish(self, trans: Trans, usr: str = "", now: Rev | None = None) -> PubResult:
        """Validate, check conflicts, assign a revision and store ``trans`` atomically.

        Args:
            trans: the transaction; its ``usr`` is ignored.
            usr: the authenticated user, recorded in the audit row.
            now: the clock reading to derive the revision from (default: wall clock).

        Raises:
            ValidationError: nothing applied.
            ConflictError: nothing applied; names every colliding record.
            StorageError: the database failed; nothing applied.
        """
        ...

    def publish_many(self, trans: Sequence[tuple[Trans, str]],
                     now: Rev | None = None) -> list[PubResult | Exception]:
        """Publish several transactions in one durable commit, each on its own.

        One rejected transaction does not block the others; the result list holds a
        :class:`PubResult` or the error for each, in order.
        """
        ...


class Replicator(Ledger, Protocol):
    """A ledger that stores events confirmed elsewhere (a satellite's replica)."""

    def replicate(self, rev: Rev, evs: Sequence[Event],
                  audits: Sequence[Audit] = ()) -> None:
        """Apply ``evs`` (all after the current rev) and set the rev to ``rev``, atomically."""
        ...
