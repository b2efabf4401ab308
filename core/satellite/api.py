"""What the desktop (and the headless CLI) see of a satellite: the contract between them.

The satellite (``core.satellite.satellite.Satellite``) implements :class:`SatelliteAPI`; the
desktop's item models and widgets use only this surface, so they can be developed and tested
against any implementation of it. Everything here is synchronous and fast (local SQLite
reads and writes of a few rows); syncing runs in ``core.satellite.client`` on asyncio.

Listeners are called on the thread that made the change (the asyncio/Qt thread in the app),
after the change is committed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol

from core.ledger.protocols import HistoryEntry
from core.model import Action, Conflict
from core.revision import ZERO_REV, Rev
from core.schema import Project

__all__ = [
    "ASIDE",
    "KEPT_MINE",
    "NOT_SENT",
    "NOT_SENT_WHY",
    "OVERWROTE",
    "PUT_ASIDE",
    "Change",
    "Keep",
    "Listener",
    "Receipt",
    "ReceiptState",
    "RecordView",
    "SatStatus",
    "SatelliteAPI",
    "conflict_seen",
    "is_put_aside",
    "overwrote",
    "put_aside_err",
    "refused_here",
]


class ReceiptState(StrEnum):
    """Where a local transaction stands."""

    PENDING = "pending"      # made locally, not yet accepted by the hub
    ACCEPTED = "accepted"    # the hub applied it at ``rev``
    REJECTED = "rejected"    # the hub (or a local rebase) refused it: a conflict to resolve
    RESOLVED = "resolved"    # the user resolved the rejection (kept as a receipt)


class Keep(StrEnum):
    """How a rejected transaction is resolved (``BOTH``: only for the whole transaction)."""

    MINE = "mine"
    THEIRS = "theirs"
    BOTH = "both"  # a record created under a key taken meanwhile: mine again under a new key


@dataclass(frozen=True, slots=True)
class Receipt:
    """One local transaction and its outcome; receipts are kept, never silently deleted."""

    uid: str
    base: Rev
    created: Rev
    acts: tuple[Action, ...]
    state: ReceiptState
    rev: Rev = ZERO_REV
    """Accepted: the hub's revision of it. Rejected: the replica's revision when the
    rejection was stored (0: older or carried receipts), see :func:`conflict_seen`."""
    err: str = ""
    conflicts: tuple[Conflict, ...] = ()
    resolved_by: str = ""   # uid of the transaction that resolved this one
    resolves: str = ""      # uid of the rejected transaction this one resolves
    settled: bool = False
    """A resolution the satellite made by itself (``extra["settled"]``): the rejected edit it
    resolves conflicted only where the other side had set the same values (session 13)."""


PUT_ASIDE = "put aside (answer lost): "
"""How the error of a put-aside transaction begins (the reason code of its stored reject): it
was sent to a hub that does not confirm edits (daql) and the answer was lost, so the hub may or
may not hold it (``core.satellite.machine``, docs/satellite.md "Syncing with a daql hub").
Nothing conflicted and nothing was refused: the user sends it again or drops it."""

def put_aside_err(what: str) -> str:
    """The error a put-aside transaction is stored with (:data:`PUT_ASIDE` first, its reason
    code): ``what`` happened after it was sent and before the hub's answer was stored. One
    text for the sync machine and ``outpost carry`` (session 12: carry had its own words)."""
    return (f"{PUT_ASIDE}{what} after this edit was sent and before the hub's answer was "
            "stored; this hub (a daql hub) does not confirm edits, so it cannot be told "
            "whether the hub applied it, and sending it again could make it twice: it was put "
            "aside. Check the record (outpost sync, then outpost show TOPIC KEY: the hub's "
            "version is shown), then send it again (outpost resolve UID --keep mine) or drop "
            "it (outpost resolve UID --keep theirs)")


ASIDE = "put aside"
"""The ``reason`` of the rows of a put-aside transaction (:func:`is_put_aside`)."""


def is_put_aside(rc: Receipt) -> bool:
    """Whether the rejected transaction ``rc`` was put aside (its answer lost), not refused."""
    return not rc.conflicts and rc.err.startswith(PUT_ASIDE)


NOT_SENT = "not sent (a conflict found here): "
"""How the error of a transaction refused here begins (the reason code of its stored reject),
and the status's ``last_error`` naming such transactions (``NOT_SENT UID: why; UID: why``): a
pending edit the satellite's view marks as a local conflict (a change from the hub collides
with it) is not sent to a hub that does not check an edit's base (daql), which would
overwrite the newer change; it is stored rejected for the user to resolve, never sent."""

NOT_SENT_WHY = (" (this hub, a daql hub, does not check an edit against changes made after "
                "it: sent, the edit would have overwritten them)")
"""How the error of a transaction refused here (:data:`NOT_SENT`) ends."""

_NOT_SENT_11 = " (not sent: this hub, a daql hub, does not check an edit"
"""How session 11 ended the error of a transaction refused here (no reason code then)."""


def refused_here(rc: Receipt) -> bool:
    """Whether the rejected transaction ``rc`` was refused here, never sent (:data:`NOT_SENT`):
    not rejected by the hub."""
    return rc.err.startswith(NOT_SENT) or _NOT_SENT_11 in rc.err


OVERWROTE = "applied over a colleague's change: "
"""How the error of a transaction that overwrote a colleague's change begins (the reason code
of its stored reject): a hub that does not check an edit's base (daql) applied it over a change
it had applied just before, which the replica had not received when the edit was sent (wire
review 13). The hub holds the edit (its event is in the replica); its conflicts name the
change it overwrote (``theirs``: their values, ``rev``: theirs). It is a conflict after the
fact: keep mine leaves the hub as it is, keep theirs sends their values back as a new edit
(``Satellite.resolve``)."""

KEPT_MINE = "mine"
"""``resolved_by`` of an :func:`overwrote` transaction resolved by keeping it (nothing sent)."""


def overwrote(rc: Receipt) -> bool:
    """Whether the rejected transaction ``rc`` was applied by the hub over a colleague's
    change (:data:`OVERWROTE`): a conflict after the fact, not a refusal."""
    return bool(rc.conflicts) and rc.err.startswith(OVERWROTE)


def conflict_seen(rc: Receipt) -> Rev:
    """The revision a rejected transaction's conflicts show the records at: the later of
    the rejection's (``rc.rev``) and of the changes that won. A change of its records after
    it is one the conflict did not show (the inbox says "changed since"; a resolution chosen
    without a newer view is refused)."""
    return max([rc.rev, *(c.rev for c in rc.conflicts)])


@dataclass(frozen=True, slots=True)
class RecordView:
    """A record as the user sees it: the replica with pending actions applied on top.

    ``confirmed`` is the replica's state (``None`` when the hub has no such record); ``fields``
    what the user sees (``None`` when deleted locally). ``pending`` lists the uids of pending
    transactions touching it; ``conflict`` the uids of rejected ones; ``applying``: a pending
    edit of it is not applied to ``fields`` yet (see there).
    """

    top: str
    key: str
    fields: Mapping[str, Any] | None
    confirmed: Mapping[str, Any] | None
    rev: Rev = ZERO_REV
    pending: tuple[str, ...] = ()
    conflict: tuple[str, ...] = ()
    # an unsynced edit of it is not applied to ``fields`` yet (the app's window opened before
    # the overlay of a long queue was built: ``Satellite.build_overlay``): shown as pending,
    # its fields not to be edited until it is
    applying: bool = False

    @property
    def is_pending(self) -> bool:
        return bool(self.pending) or self.applying

    @property
    def is_conflict(self) -> bool:
        return bool(self.conflict)


@dataclass(frozen=True, slots=True)
class SatStatus:
    """Everything the status bar shows."""

    online: bool = False
    since: Rev = ZERO_REV          # online/offline since
    hub: str = ""                  # hub URL ("" when none is set)
    rev: Rev = ZERO_REV            # replica revision: the hub's state we have
    hub_rev: Rev = ZERO_REV        # the hub's revision as last heard
    local_rev: Rev = ZERO_REV      # revision of the last local change
    pending: int = 0
    conflicts: int = 0             # rejected (by the hub or here) and locally marked edits
    # edits put aside (:func:`is_put_aside`: sent to a daql hub, the answer lost), not in
    # ``conflicts``: the conflicts inbox lists them too, for send again / drop
    put_aside: int = 0
    last_sync: Rev = ZERO_REV
    last_error: str = ""
    mig: str = ""                  # schema version
    syncing: bool = False
    # (done, total) events of a running catch-up; total: at most that many, as the hub's first
    # reply said (its total_max, ours), never below done; 0: unknown (a daql or older hub)
    progress: tuple[int, int] = (0, 0)
    # (answered, total) edits being sent to the hub on this connection: the hub acked or
    # rejected ``answered`` of the ``total`` sent or still to send on it; (0, 0): none waits
    # (a long queue of edits shows "sending: 2,000 of 6,000 edits"; user review 13, F6)
    sending: tuple[int, int] = (0, 0)
    offline_mode: bool = False     # the user chose "work offline"
    ledger: str = ""               # id of the hub ledger the replica holds ("" : none yet)
    # the hub confirms each edit (acks by uid: an Outpost hub), or not (False: a daql hub,
    # whose edits with a lost answer are put aside, docs/satellite.md); None: not known yet
    hub_confirms: bool | None = None


@dataclass(frozen=True, slots=True)
class Change:
    """A notice to listeners: records that changed (by topic) and/or a status change."""

    records: Mapping[str, frozenset[str]] = field(default_factory=dict)  # topic -> keys
    status: bool = False
    receipts: bool = False
    reset: bool = False  # everything may have changed (e.g. schema fetched, big catch-up)


Listener = Callable[[Change], None]


class SatelliteAPI(Protocol):
    """The satellite surface used by the desktop and the headless CLI."""

    @property
    def project(self) -> Project: ...

    def status(self) -> SatStatus: ...

    def rev(self) -> Rev:
        """The replica's revision (``status().rev`` without the rest: no read)."""
        ...

    def dir_gone(self) -> str:
        """Why the data directory is no longer where it was opened ("": it is there)."""
        ...

    def applying(self) -> int:
        """How many pending transactions are not applied to what the reads show yet: the
        app's window opens before the overlay of a long queue is built (0: all applied)."""
        ...

    def build_overlay(self, budget: float = 0.05, *, whole: bool = False) -> bool:
        """Apply more pending transactions to what the reads show (about ``budget`` seconds
        of CPU; ``whole``: all); True once all are and the change notice of their records
        was sent."""
        ...

    def keys(self, top: str, confirmed: Sequence[str] | None = None) -> list[str]:
        """Keys of the records the user sees in a topic (replica + pending), in key order
        (:func:`core.satellite.order.key_sort`).

        ``confirmed``: the replica's keys as :meth:`confirmed_keys` returned them (read on
        another thread): only the pending edits are merged in here."""
        ...

    def confirmed_keys(self, top: str) -> list[str]:
        """The replica's keys of a topic in key order (:func:`core.satellite.order.key_sort`:
        by number for an int-keyed topic), without the pending edits. Safe to call on
        any thread (it only reads the replica): a window reads a million keys off its UI
        thread with it, then merges them with :meth:`keys` ``(top, confirmed=...)``."""
        ...

    def confirmed_order(self, top: str, field: str, desc: bool = False,
                        ) -> tuple[list[str], list[Any]]:
        """The replica's keys of a topic ordered by a field (the rule of
        :mod:`core.satellite.order`), and each one's sort value, without the pending edits.
        Safe to call on any thread: a window sorts a million records off its UI thread
        with it, then places the records of :meth:`overlaid` itself."""
        ...

    def confirmed_scan(self, top: str, chunk: int = 5_000, *,
                       where: tuple[str, Sequence[Any]] | None = None,
                       ) -> Iterator[list[RecordView]]:
        """The replica's records of a topic in the order of the key's text (also for an
        int-keyed topic: sort what is kept by ``key_sort``), in chunks, without the pending
        edits (``fields`` is ``confirmed``). Safe to call on any thread (a window filters a
        million records off its UI thread). ``where``: an SQL condition on the state table's
        columns (``"key"``, the field names) and its ``?`` parameters: only those rows."""
        ...

    def overlaid(self, top: str) -> frozenset[str]:
        """Keys of a topic whose fields the pending edits change (new, changed or deleted
        locally)."""
        ...

    def records(self, top: str) -> list[RecordView]:
        """Every record the user sees in a topic (replica + pending; locally deleted ones are
        left out), in key order (:func:`core.satellite.order.key_sort`)."""
        ...

    def record(self, top: str, key: str) -> RecordView | None: ...

    def records_of(self, top: str, keys: Iterable[str]) -> dict[str, RecordView]:
        """:meth:`record` of many keys in one read: key -> view, keys without a record left
        out (the records of a big topic's pending edits, placed in its rows at once)."""
        ...

    def count(self, top: str) -> int: ...

    def new_key(self, top: str) -> str:
        """A key for a new record of ``top``: a UUIDv7, or for ``int`` keys one above every
        key the satellite knows of the topic (deleted and pending ones included)."""
        ...

    def pub(self, acts: Sequence[Action], *, resolves: str = "", base: Rev | None = None) -> str:
        """Queue a local transaction (durable before returning) and return its uid.

        ``base``: the replica revision the user's edit was made on (e.g. when a form loaded
        the record); default: the current one. A change the hub made to the same fields after
        it is then a conflict (marked at once, rejected by the hub), not overwritten.

        Raises:
            ValidationError: an action does not fit the schema or the local view.
        """
        ...

    def pub_many(self, batches: Iterable[tuple[Sequence[Action], Rev | None]]) -> list[str]:
        """Queue one transaction per ``(acts, base)`` in ONE local commit (all or none: an
        import stopped half-way queues nothing) and return their uids; the hub still gets
        them as separate transactions. ``batches`` may be a generator: what it raises rolls
        back and propagates.

        Raises:
            ValidationError: a batch does not fit the schema or the local view.
        """
        ...

    def receipts(self, states: Sequence[ReceiptState] | None = None) -> list[Receipt]: ...

    def accepted_among(self, revs: Iterable[Rev]) -> frozenset[Rev]:
        """Those of ``revs`` that are revisions of this satellite's accepted transactions
        (reads only those: the conflicts view asks on every refresh)."""
        ...

    def last_accepted(self) -> Receipt | None:
        """The accepted receipt with the highest revision among those with actions (None:
        none), read alone."""
        ...

    def accepted_at(self, revs: Iterable[Rev]) -> list[Receipt]:
        """This satellite's accepted receipts at ``revs`` (reads only those), queue order."""
        ...

    def settled_receipts(self) -> list[Receipt]:
        """The rejected receipts that settled by themselves (the other side had set the same
        values: :func:`core.satellite.conflicts.settled_same`), in queue order; not those
        the user resolved."""
        ...

    def receipt(self, uid: str) -> Receipt | None: ...

    def resolve(self, uid: str, keep: Keep | Mapping[str, Mapping[str, Keep]], *,
                keys: Mapping[str, str] | None = None, seen: Rev | None = None) -> str:
        """Resolve a rejected transaction: keep mine (republish on the current base), keep
        theirs (drop it), keep both (the records it created under keys taken meanwhile again
        under new keys: ``keys`` ``{"top key": new key}``, default :meth:`both_keys`), or per
        field: ``{"top key": {"field": Keep}}``. Returns the uid of the new transaction (""
        when nothing needed publishing).

        ``seen``: the replica revision at which the user was shown the conflict (read
        :meth:`rev` before reading its rows); default: the conflict's revision. Anything but
        keep theirs is refused (``StaleConflictError``, nothing resolved) when another user
        changed or deleted one of its records after it: look again, resolve again.
        """
        ...

    def resolve_many(self, uids: Sequence[str], keep: Keep, *,
                     seen: Rev | None = None) -> list[str]:
        """:meth:`resolve` of each of ``uids`` whole (keep mine or theirs), in ONE local
        commit: all or none (the first that cannot be resolved raises, nothing resolved).
        Returns the new uids in order ("" where nothing was published)."""
        ...

    def both_keys(self, uid: str) -> dict[str, str]:
        """For the rejected transaction ``uid``: each record it creates under a key another
        record has taken meanwhile (``"top key"``) and a free key keep both would give it
        (``new_key``'s rules); empty when it creates none (keep both does not apply)."""
        ...

    def later_edits(self, uid: str, records: Iterable[str]) -> dict[str, list[str]]:
        """This satellite's transactions queued after ``uid`` with an action on each of
        ``records`` (``"top key"``), by record: after keep both of ``uid`` they stay on that
        key, on the record someone else created there (the CLI and the app name them)."""
        ...

    def read_only_reason(self) -> str:
        """Why the hub lets this user only read (``""``: it did not say so): edits are then
        refused, and the app shows every topic read-only."""
        ...

    def discard(self, uid: str) -> None:
        """Drop a pending transaction the hub will never take (the user may only read, or
        it conflicts locally while offline), kept as a receipt resolved ``"discarded"``."""
        ...

    def history(self, top: str, key: str) -> list[HistoryEntry]: ...

    def own_revs(self, revs: Iterable[Rev]) -> set[Rev]:
        """Those of ``revs`` at which the hub accepted this satellite's own transactions (the
        conflict inbox says the user's own later edits as such, not "changed since")."""
        ...

    def state_at(self, top: str, key: str, rev: Rev) -> dict[str, Any] | None: ...

    def listen(self, fn: Listener) -> Callable[[], None]:
        """Call ``fn`` on every change; returns a function that stops the calls."""
        ...
