"""The local publish queue: the user's transactions and their receipts, in SQLite.

Table ``sat_receipt`` (one row per local transaction, kept forever as a receipt):

=============  ==================================================================================
``seq``        queue order (integer primary key, autoincrement)
``uid``        the transaction uid, UNIQUE (made when the user made the edit)
``base``       the replica revision the edit was made on
``created``    when the user made it (revision int, the satellite's clock: display only)
``acts``       the actions, JSON
``extra``      the transaction's ``extra`` (e.g. ``{"resolves": uid}``), JSON
``state``      pending | accepted | rejected | resolved
``rev``        the hub's revision once accepted
``err``        the hub's error once rejected
``conflicts``  the hub's conflicts once rejected, JSON
``local_err``  set while a pending transaction no longer applies on the replica (rebase);
               of a rejected one, :data:`OWN_EVENT` when ``rev`` is its own event's revision
``resolves``   uid of the rejected transaction this one resolves
``resolved_by`` uid of the transaction that resolved this one (or ``-`` for keep theirs)
``auth``       1 when it only touches authoritative topics
=============  ==================================================================================

and ``sat_meta`` (key → JSON value) for the satellite's own settings kept with the data
(hub revision last heard, last sync time).

An ack does not rewrite its receipt (session 12: that ``UPDATE``, the row and its entry in the
``state`` index moved, was the largest statement of storing a replay's reply). Two narrow
tables keyed by ``seq`` hold it instead:

=================  ===============================================================================
``sat_pending``    ``seq`` of every receipt still pending (the open part of the queue: what the
                   status counts and the satellite loads, without walking accepted receipts)
``sat_acked``      ``seq`` → ``rev``: a receipt stored ``pending`` with a row here is accepted at
                   ``rev`` (its ``local_err`` no longer counts); indexed by ``rev``
=================  ===============================================================================

so an ack is one entry added to ``sat_acked`` and one removed from ``sat_pending``. Readers see
the state the receipt has (:meth:`Queue.rows` and the others return ``accepted`` for such
rows); other changes of state (rejected, resolved, discarded) still rewrite the row.
``sat_meta`` ``pending_upto`` is the highest ``seq`` whose pending state ``sat_pending`` is
sure to hold: rows after it (made by an Outpost before session 12 in this directory since,
or added since the last ack) are pending by their ``state`` alone. A queue made before session
12 gets the two tables at its first writable open (:meth:`Queue.upgrade`, its pending
receipts copied into ``sat_pending``); until then (a read-only reader) it is read as it is,
and a reader that opened it before reads through the tables from its next read on.

An Outpost before session 12 knows nothing of ``sat_acked``: to it, the receipts acked there
read pending (docs/benchmarks.md, "Sync (b), session 12: the satellite").

The tables live in the replica's SQLite file, on the ledger's ``MetaData``, so that marking
receipts and replicating the hub's events commit in one transaction: every method takes an
optional open connection ``conn`` to join the caller's transaction.

Readers that keep the open part of the queue in memory (the satellite: pending, rejected, and
accepted rows the replica has not reached) ask :meth:`Queue.take_changed` for the rows written
since they last asked: every write method remembers the uids it touched, and they become
visible to ``take_changed`` once the transaction that wrote them has committed
(:meth:`Queue.touch`), so a reader never caches a row as it was before a commit that changed
it. This assumes one process writes the data directory (as the whole satellite does).
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from itertools import chain
from operator import itemgetter
from typing import Any

import orjson
from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Connection,
    Engine,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    func,
    select,
)
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from core.errors import StorageError, ValidationError
from core.model import Action, Cmd, Conflict, Trans
from core.satellite.api import PUT_ASIDE, Receipt, ReceiptState
from core.wire import dec_action, dec_conflict, enc_action, enc_conflict

__all__ = ["Queue", "queue_tables"]


def queue_tables(metadata: MetaData) -> tuple[Table, Table]:
    """Add the queue's tables to ``metadata`` (idempotent) and return them."""
    if "sat_receipt" in metadata.tables:
        return metadata.tables["sat_receipt"], metadata.tables["sat_meta"]
    receipt = Table(
        "sat_receipt", metadata,
        Column("seq", Integer, primary_key=True, autoincrement=True),
        Column("uid", String(64), nullable=False, unique=True),
        Column("base", BigInteger, nullable=False),
        # indexed (session 11): the status reads the newest after every change
        Column("created", BigInteger, nullable=False, index=True),
        Column("acts", Text, nullable=False),
        Column("extra", Text),
        Column("state", String(16), nullable=False),
        Column("rev", BigInteger, nullable=False, default=0),
        Column("err", Text, nullable=False, default=""),
        Column("conflicts", Text),
        Column("local_err", Text, nullable=False, default=""),
        Column("resolves", String(64), nullable=False, default=""),
        Column("resolved_by", String(64), nullable=False, default=""),
        Column("auth", Boolean(create_constraint=False), nullable=False, default=False),
        # by state and revision (session 11; before: by state alone): the same index
        # updates per ack, and "which of these revisions are mine" and "the last accepted"
        # (the conflicts view's "earlier, you") read a few entries, not every accepted row
        Index("ix_sat_receipt_state_rev", "state", "rev"),
        sqlite_autoincrement=True,
    )
    meta = Table(
        "sat_meta", metadata,
        Column("name", String(64), primary_key=True),
        Column("value", Text, nullable=False),
    )
    return receipt, meta


_ACCEPT_SQL = (f"UPDATE sat_receipt SET state = '{ReceiptState.ACCEPTED.value}', rev = ?, "
               f"local_err = '' WHERE uid = ? AND state = '{ReceiptState.PENDING.value}'")
_ACCEPT_PART = 400
_UPDATE_FROM = sqlite3.sqlite_version_info >= (3, 33, 0)
"""Whether the linked SQLite has ``UPDATE ... FROM`` (3.33.0 on; a Python linked to an older
system SQLite, e.g. RHEL 8's 3.26, marks acks one statement per ack, as before session 10)."""
"""Acks per ``UPDATE ... FROM (VALUES ...)`` of :meth:`Queue.accept_many` (800 parameters,
under SQLite's oldest limit of 999)."""
_accept_parts: dict[int, str] = {}  # rows -> statement


def _accept_sql(k: int) -> str:
    """:data:`_ACCEPT_SQL` for ``k`` acks at once: one statement step (and one hand-off of
    the GIL) instead of one per row; each receipt found through its ``uid`` index."""
    sql = _accept_parts.get(k)
    if sql is None:
        sql = _accept_parts[k] = (
            f"UPDATE sat_receipt SET state = '{ReceiptState.ACCEPTED.value}', "
            "rev = v.column1, local_err = '' FROM (VALUES " + ", ".join(["(?, ?)"] * k)
            + f") AS v WHERE sat_receipt.uid = v.column2 AND sat_receipt.state = "
            f"'{ReceiptState.PENDING.value}'")
    return sql


_P = ReceiptState.PENDING.value
_A = ReceiptState.ACCEPTED.value
UPTO = "pending_upto"
"""``sat_meta`` name of the highest ``seq`` ``sat_pending`` is complete up to (see the module
docstring)."""
_UPTO_SQL = f"(SELECT CAST(value AS INTEGER) FROM sat_meta WHERE name = '{UPTO}')"
_SET_UPTO = (f"INSERT OR REPLACE INTO sat_meta (name, value) SELECT '{UPTO}', "
             "coalesce(max(seq), 0) FROM sat_receipt")
_SET_META = "INSERT OR REPLACE INTO sat_meta (name, value) VALUES (?, ?)"
_COLS = ("seq", "uid", "base", "created", "acts", "extra", "state", "rev", "err", "conflicts",
         "local_err", "resolves", "resolved_by", "auth")
_FAST_COLS = {c: f"r.{c}" for c in _COLS} | {
    # a receipt acked through sat_acked: accepted at its rev, no local conflict mark
    "state": f"CASE WHEN k.seq IS NULL THEN r.state ELSE '{_A}' END AS state",
    "rev": "CASE WHEN k.seq IS NULL THEN r.rev ELSE k.rev END AS rev",
    "local_err": "CASE WHEN k.seq IS NULL THEN r.local_err ELSE '' END AS local_err",
}
_FAST_FROM = f" FROM sat_receipt r LEFT JOIN sat_acked k ON k.seq = r.seq AND r.state = '{_P}'"
_ACK_PART = 400
"""Acks per statement of the ``sat_acked`` path (800 parameters)."""


def _j(v: Any) -> str:
    return orjson.dumps(v).decode()


_SETTLED_MARK = '"settled":'
OWN_EVENT = "(own event)"
"""The ``local_err`` of a rejected receipt whose ``rev`` is the revision of its own event (an
edit a daql hub applied over a colleague's change, stored by :meth:`Queue.reject` with
``own``): :meth:`Queue.accepted_among` counts that revision as the user's own. Written only
there: a receipt carried from another directory (``outpost carry``, stored at the new
replica's revision) and one stored before session 14 (at its reply's revision, which may be a
colleague's later change) are not marked, and their revision is not the user's own. No local
mark reads so (those are sentences), and a rejected receipt's ``err`` is what it shows."""
"""How the ``extra`` of a resolution the satellite made by itself holds its mark
(``{"resolves": uid, "settled": ...}``: :attr:`core.satellite.api.Receipt.settled`)."""


_FOLD_KEY = "json_extract(acts, '$[0].key')"
"""The key of a receipt's first action: :meth:`Queue.fold_into` finds the earlier rejected
saves of a record by it, through the partial index :data:`_FOLD_INDEX` (session 13: it
looked at the latest 50 rejected receipts only, so a record saved three times among 5,000
offline saves stayed three conflicts: 1,092 for 400 records)."""
_FOLD_INDEX = (f"CREATE INDEX IF NOT EXISTS ix_sat_receipt_rejected_key ON sat_receipt "
               f"({_FOLD_KEY}, seq) WHERE state = '{ReceiptState.REJECTED.value}'")


def _same_conflicts(cs: Sequence[Conflict]) -> frozenset[tuple[Any, ...]]:
    """What makes two rejections the same: each conflict's record, reason, fields and the
    change that won (not ``theirs``: its values at each rejection)."""
    return frozenset((c.top, c.key, c.reason, frozenset(c.fields), c.rev, c.usr) for c in cs)


_ACTS: dict[str, tuple[Action, ...]] = {}
"""Stored ``acts`` JSON -> its decoded actions (:func:`_acts_of`)."""
_TEXTS: dict[int, tuple[tuple[Action, ...], str]] = {}
"""``id(acts)`` -> (those actions, their stored JSON): the entry holds the tuple, so its id
is not reused while the entry exists; a lookup checks the identity."""
_CACHE_BYTES = 4 << 20
"""The budget of both caches in characters of the JSON text they hold (4 Mi), and at most
``_CACHE_ENTRIES`` entries. An entry costs its text, its decoded actions (about 1.5 times the
text again) and ~600 bytes of objects: at most ~10-14 MB for large transactions (an
import's: 500 rows each), ~30 MB for 40,000 tiny ones. Sized for an offline replay, which
reads its pending queue after every reply: 10,000 transactions of up to ~200 characters of
actions each stay cached when they were queued by the same process (an entry as queued and
one as read back; bench/sync.py's are ~90), up to ~400 when only read back (a restart).
Past the budget the older half of the entries goes: an import of a large file keeps a few
MB of its latest actions, not all of them (before: 100,000 entries whatever their size)."""
_CACHE_ENTRIES = 40_000
_held = 0
"""Characters of JSON text held by ``_TEXTS`` (each entry counted once; ``_ACTS`` keys are
texts of ``_TEXTS`` entries)."""


def _acts_of(text: str) -> tuple[Action, ...]:
    """Decode a row's ``acts`` JSON, remembering it: the satellite reads its pending queue after
    every reply (outbox, rebase), and decoding the same 10,000 rows each time dominated an
    offline replay. Rows never change their actions."""
    acts = _ACTS.get(text)
    if acts is None:
        acts = tuple(dec_action(a) for a in orjson.loads(text))
        _remember(acts, text)
        _ACTS[text] = acts
    return acts


def _remember(acts: tuple[Action, ...], text: str) -> None:
    """Keep ``text`` as the JSON of ``acts`` (for :func:`acts_json`), within the budget."""
    global _held
    if id(acts) in _TEXTS:
        return
    _TEXTS[id(acts)] = (acts, text)
    _held += len(text)
    if _held > _CACHE_BYTES or len(_TEXTS) > _CACHE_ENTRIES:
        _shed()


def _shed() -> None:
    """Drop the older half of the cached entries (amortized: each entry is moved at most once
    per halving), and the decoded actions of their texts."""
    global _held
    keep = list(_TEXTS.items())[len(_TEXTS) // 2:]
    _TEXTS.clear()
    _TEXTS.update(keep)
    _held = sum(len(t) for _, (_, t) in keep)
    kept = {t: a for _, (a, t) in keep if _ACTS.get(t) is a}
    _ACTS.clear()
    _ACTS.update(kept)


def acts_json(acts: tuple[Action, ...]) -> str | None:
    """The JSON text stored for these actions (``acts`` of a queued transaction, as read or
    queued by this process), or ``None``: an ``evt.sat`` request splices it instead of
    encoding the actions again (``SyncMachine``)."""
    ent = _TEXTS.get(id(acts))
    return ent[1] if ent is not None and ent[0] is acts else None


def acts_decoded(acts: tuple[Action, ...]) -> bool:
    """Whether ``acts`` are the decoding (:func:`_acts_of`) of the JSON text kept for them,
    read from the queue's rows by this process (not queued by it from the caller's objects:
    :meth:`Queue.encode`). Such an entry lives from the decoding on (never added again for
    the same actions once shed), so while this holds, every ``evt.sat`` request that carried
    ``acts`` spliced that text (:func:`acts_json`): the hub decoded exactly these values."""
    ent = _TEXTS.get(id(acts))
    return ent is not None and ent[0] is acts and _ACTS.get(ent[1]) is acts


def _own_overwrites(c: Any, revs: list[int]) -> Iterator[int]:
    """Those of ``revs`` (at most 500) that are the own events of edits a daql hub applied
    over a colleague's change: receipts rejected or resolved at their own revision, marked
    :data:`OWN_EVENT` (one read)."""
    rows = c.exec_driver_sql(
        "SELECT rev FROM sat_receipt WHERE state IN (?, ?) AND rev IN ("
        + ",".join("?" * len(revs)) + ") AND local_err = ?",
        (ReceiptState.REJECTED.value, ReceiptState.RESOLVED.value, *revs, OWN_EVENT))
    return (int(r[0]) for r in rows)


class Queue:
    """The receipts of local transactions, on an SQLAlchemy engine (the replica's)."""

    def __init__(self, engine: Engine, metadata: MetaData,
                 begin: Callable[[], AbstractContextManager[Connection]] | None = None,
                 error: Callable[[str, BaseException], StorageError] | None = None):
        self.engine = engine
        self._begin = begin or engine.begin
        # the words of a failure: the replica's ledger's (its cause and fix: a full disk, a
        # directory gone), not SQLAlchemy's text with its link (session 16)
        self._error = error or (lambda what, exc: StorageError(
            f"{what} ({self.engine.url}): {exc}"))
        self.version = 0
        """Counts writes (bumped after each commit, see :meth:`touch`): readers cache by it."""
        self._lock = threading.Lock()
        self._local = threading.local()   # uids written by this thread's open transaction
        self._changed: set[str] = set()   # uids written by committed transactions, not taken
        self.t, self.meta = queue_tables(metadata)
        try:
            metadata.create_all(engine, tables=[self.t, self.meta])
        except SQLAlchemyError as exc:
            raise StorageError(f"cannot create the queue tables in {engine.url}: {exc}") from exc
        self.fast = False
        self._has_json: bool | None = None  # see _json
        """Whether acks go to ``sat_acked`` (the tables exist: see the module docstring); a
        queue made before session 12 is read as it is until :meth:`upgrade` made them."""
        self._set_layout(self._has_ack_tables())

    def _has_ack_tables(self) -> bool:
        with self._read() as c:
            have = {r[0] for r in c.exec_driver_sql(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name IN "
                "('sat_pending', 'sat_acked')")}
        return len(have) == 2

    def _seen_layout(self) -> None:
        """Before a read: a queue that had no ``sat_acked`` when this instance opened it (made
        before session 12, opened read-only) may have been upgraded since by the process
        that writes it, and acks may be there now: read through them from then on (one
        look at ``sqlite_master`` per read until then; an upgraded queue, none)."""
        if not self.fast and self._has_ack_tables():
            self._set_layout(True)

    def _set_layout(self, fast: bool) -> None:
        self.fast = fast
        # the pending condition of an UPDATE of sat_receipt (a writer: its sat_pending holds
        # every pending receipt, see upgrade())
        self._open_w = " AND seq IN (SELECT seq FROM sat_pending)" if fast else ""

    def touch(self) -> None:
        """The transaction of this thread committed (or ended): bump :attr:`version` and hand
        the uids it wrote to :meth:`take_changed`. Callers that write with their own
        transaction (``conn``) call it after their commit, on the same thread (so a cache
        filled before the commit cannot keep the old rows)."""
        staged: set[str] | None = getattr(self._local, "staged", None)
        if staged:
            with self._lock:
                self._changed |= staged
            staged.clear()
        self.version += 1

    def _mark(self, uids: Iterable[str]) -> None:
        """Remember uids written in this thread's open transaction (see :meth:`touch`)."""
        staged: set[str] | None = getattr(self._local, "staged", None)
        if staged is None:
            staged = self._local.staged = set()
        staged.update(uids)

    def take_changed(self, read: bool = True,
                     known: Collection[str] = ()) -> list[dict[str, Any]]:
        """The rows (any state) of the uids written by transactions committed since the last
        call, in queue order; ``read=False`` only forgets them (the caller reads everything).
        Only the columns that change are read (``seq, uid, base, state, rev, auth``): a row's
        actions, ``created`` and ``extra`` never do (:meth:`rows` has them).

        ``known``: uids whose rows the caller knows as they are now (e.g. the acks it just
        stored on pending rows): taken like the others, but not read nor returned.
        """
        with self._lock:
            uids, self._changed = self._changed, set()
        if not uids or not read:
            return []
        try:
            out: list[dict[str, Any]] = []
            ids = sorted(uids.difference(known) if known else uids)
            for i in range(0, len(ids), 500):
                chunk = ids[i:i + 500]
                out += self._select(" WHERE r.uid IN (" + ",".join("?" * len(chunk)) + ")",
                                    tuple(chunk), ("seq", "uid", "base", "state", "rev", "auth"))
        except BaseException:
            with self._lock:
                self._changed |= uids  # not read: keep them for the next call
            raise
        out.sort(key=lambda r: r["seq"])
        return out

    @contextmanager
    def _conn(self, conn: Connection | None) -> Iterator[Connection]:
        if conn is not None:
            yield conn  # the caller commits, then calls touch()
            return
        try:
            with self._begin() as c:
                yield c
        except IntegrityError:
            raise
        except SQLAlchemyError as exc:
            raise self._error("writing the local queue", exc) from exc
        finally:
            self.touch()

    @contextmanager
    def _read(self, conn: Connection | None = None) -> Iterator[Connection]:
        """A read-only connection: reads take no write lock, so the queue stays readable on a
        read-only or full database (the user still sees their pending work)."""
        if conn is not None:
            yield conn
            return
        try:
            with self.engine.connect() as c:
                yield c
                c.rollback()
        except SQLAlchemyError as exc:
            raise self._error("reading the local queue", exc) from exc

    # -- writing -------------------------------------------------------------------------------

    @staticmethod
    def encode(trans: Trans) -> str:
        """The JSON :meth:`add` stores for ``trans``'s actions (made ahead of the commit by
        ``Satellite.staged``, so that the commit is short)."""
        acts = _j([enc_action(a) for a in trans.acts])
        _remember(trans.acts, acts)
        return acts

    def add(self, trans: Trans, *, auth: bool = False, resolves: str = "",
            conn: Connection | None = None, acts: str | None = None) -> int:
        """Append a pending transaction (durable once the surrounding commit returns); returns
        its ``seq``. ``acts``: its actions as :meth:`encode` made them (default: made here).

        Raises:
            ValidationError: the uid is already queued.
            StorageError: the database failed.
        """
        if acts is None:
            acts = self.encode(trans)
        row = {
            "uid": trans.uid, "base": trans.base, "created": trans.created,
            "acts": acts,
            "extra": _j(trans.extra) if trans.extra else None,
            "state": ReceiptState.PENDING.value, "rev": 0, "err": "", "conflicts": None,
            "local_err": "", "resolves": resolves, "resolved_by": "", "auth": auth,
        }
        try:
            with self._conn(conn) as c:
                self._mark((trans.uid,))
                r = c.execute(self.t.insert().values(**row))
                seq = r.inserted_primary_key[0] if r.inserted_primary_key else 0
                if self.fast:
                    c.exec_driver_sql("INSERT INTO sat_pending (seq) VALUES (?)", (seq,))
                return int(seq or 0)
        except (IntegrityError, StorageError) as exc:
            if isinstance(exc, IntegrityError) or isinstance(exc.__cause__, IntegrityError):
                raise ValidationError(f"transaction uid {trans.uid} is already queued") from exc
            raise

    def add_many(self, items: Sequence[tuple[Trans, bool, str, str, Sequence[Conflict]]],
                 conn: Connection | None = None, rev: int = 0,
                 acts: Sequence[str] | None = None) -> list[int]:
        """Append transactions in order with one ``executemany`` (``outpost carry``, the
        app's import: ``Satellite.staged``): each ``(trans, auth, resolves, err,
        conflicts)`` is pending, or rejected when ``err`` (stored rejected at the replica
        revision ``rev``, as :meth:`reject` does); ``acts``: their actions as :meth:`encode`
        made them (default: made here). Returns their ``seq``, in order.

        Raises:
            ValidationError: a uid is already queued (nothing of them was stored).
            StorageError: the database failed.
        """
        if not items:
            return []
        texts = acts if acts is not None else [
            _j([enc_action(a) for a in t.acts]) for t, *_ in items]
        rows = [(t.uid, t.base, t.created, text,
                 _j(t.extra) if t.extra else None,
                 (ReceiptState.REJECTED if err else ReceiptState.PENDING).value,
                 rev if err else 0, err,
                 _j([enc_conflict(x) for x in conflicts]) if err else None, "", resolves,
                 "", int(auth)) for (t, auth, resolves, err, conflicts), text
                in zip(items, texts, strict=True)]
        try:
            with self._conn(conn) as c:
                self._mark(r[0] for r in rows)
                before = c.exec_driver_sql("SELECT coalesce(max(seq), 0) FROM sat_receipt"
                                           ).scalar()
                c.exec_driver_sql(
                    "INSERT INTO sat_receipt (uid, base, created, acts, extra, state, rev, err, "
                    "conflicts, local_err, resolves, resolved_by, auth) VALUES "
                    "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
                if self.fast:
                    c.exec_driver_sql("INSERT INTO sat_pending (seq) SELECT seq FROM sat_receipt "
                                      f"WHERE seq > ? AND state = '{_P}'", (before,))
                seqs: dict[str, int] = dict(c.exec_driver_sql(
                    "SELECT uid, seq FROM sat_receipt WHERE seq > ?", (before,)).all())
                return [int(seqs[r[0]]) for r in rows]
        except (IntegrityError, StorageError) as exc:
            if isinstance(exc, IntegrityError) or isinstance(exc.__cause__, IntegrityError):
                raise ValidationError("a carried transaction's uid is already queued: "
                                      "nothing was stored") from exc
            raise

    def accept(self, uid: str, rev: int, conn: Connection | None = None) -> bool:
        """Mark a pending transaction accepted at ``rev``; False when it was not pending."""
        with self._conn(conn) as c:
            self._mark((uid,))
            if self.fast:
                seq = c.exec_driver_sql(
                    f"SELECT seq FROM sat_receipt WHERE uid = ? AND state = '{_P}'"
                    + self._open_w, (uid,)).scalar()
                if seq is None:
                    return False
                self._ack_seqs(c, [(int(seq), rev)])
                return True
            r = c.execute(self.t.update()
                          .where(self.t.c.uid == uid,
                                 self.t.c.state == ReceiptState.PENDING.value)
                          .values(state=ReceiptState.ACCEPTED.value, rev=rev, local_err=""))
            return bool(r.rowcount)

    def accept_many(self, acks: Sequence[tuple[str, int]],
                    conn: Connection | None = None) -> None:
        """Mark pending transactions (uid, rev) accepted (the first ack of a uid counts, as
        one update per ack would: the receipt is no longer pending after it).

        With ``sat_acked`` (see the module docstring) each ack is an entry added there and one
        removed from ``sat_pending`` (the receipts' ``seq`` looked up by uid;
        :meth:`accept_seqs` when the caller knows them); before (a queue not upgraded) one
        ``UPDATE ... FROM (VALUES ...)`` per :data:`_ACCEPT_PART` acks rewrites the
        receipts."""
        if not acks:
            return
        with self._conn(conn) as c:
            self._mark(uid for uid, _ in acks)
            if self.fast:
                first: dict[str, int] = {}
                for uid, rev in acks:
                    first.setdefault(uid, rev)
                missing = list(first)
                acked: list[tuple[int, int]] = []
                for i in range(0, len(missing), 500):
                    chunk = missing[i:i + 500]
                    acked += [(int(r[0]), first[r[1]]) for r in c.exec_driver_sql(
                        "SELECT seq, uid FROM sat_receipt WHERE uid IN ("
                        + ",".join("?" * len(chunk)) + ")", tuple(chunk))]
                self._ack_seqs(c, acked)
                return
            # the two states as literals, not parameters per row (binding a text copies it:
            # ~2,000 instructions each, 20,000 per replay)
            if len(acks) == 1:
                c.exec_driver_sql(_ACCEPT_SQL, (acks[0][1], acks[0][0]))
                return
            seen: set[str] = set()
            rows: list[tuple[int, str]] = []
            for uid, rev in acks:
                if uid not in seen:
                    seen.add(uid)
                    rows.append((rev, uid))
            if not _UPDATE_FROM:  # SQLite before 3.33: no UPDATE ... FROM; one per ack
                c.exec_driver_sql(_ACCEPT_SQL, [(rev, uid) for rev, uid in rows])
                return
            for i in range(0, len(rows), _ACCEPT_PART):
                part = rows[i:i + _ACCEPT_PART]
                c.exec_driver_sql(_accept_sql(len(part)), tuple([v for r in part for v in r]))

    def accept_seqs(self, seq_revs: Mapping[int, int], uids: Iterable[str],
                    conn: Connection | None = None) -> None:
        """:meth:`accept_many` of acks whose receipts the caller knows by ``seq`` (a
        receipt's ``seq`` never changes): ``seq -> rev``, one entry per ack (no uid acked
        twice), and the acks' ``uids``. A queue with ``sat_acked`` only (:attr:`fast`: every
        writer's); a reply's acks from :meth:`Satellite.write`, made once there."""
        if not seq_revs:
            return
        if not self.fast:
            raise ValueError("accept_seqs needs the sat_acked layout (a writer's queue)")
        with self._conn(conn) as c:
            self._mark(uids)
            self._ack_seqs(c, seq_revs.items())

    @staticmethod
    def _ack_seqs(c: Connection, rows: Iterable[tuple[int, int]]) -> None:
        """Mark the receipts ``(seq, rev)`` accepted through ``sat_acked``: those still
        pending only (in ``sat_pending``), each ``seq`` once; then ``pending_upto`` moves to
        the newest receipt (every pending one is in ``sat_pending`` in a writer)."""
        rows = sorted(rows)
        if not rows:
            return
        for i in range(0, len(rows), _ACK_PART):
            part = rows[i:i + _ACK_PART]
            # one statement step per part (not per row), the rows in seq order; the
            # parameters flattened in C (no Python loop per ack)
            c.exec_driver_sql(
                "INSERT OR IGNORE INTO sat_acked (seq, rev) SELECT column1, column2 FROM "
                "(VALUES " + ", ".join(["(?, ?)"] * len(part)) + ") "
                "WHERE column1 IN (SELECT seq FROM sat_pending)",
                tuple(chain.from_iterable(part)))
            c.exec_driver_sql("DELETE FROM sat_pending WHERE seq IN ("
                              + ",".join("?" * len(part)) + ")",
                              tuple(map(itemgetter(0), part)))
        c.exec_driver_sql(_SET_UPTO)

    def reject(self, uid: str, err: str, conflicts: Sequence[Conflict],
               conn: Connection | None = None, rev: int = 0, own: bool = False) -> bool:
        """Mark a pending transaction rejected by the hub; False when it was not pending.
        ``rev``: the replica revision the rejection is stored at (its conflicts' values are
        as of then at least: what the inbox compares with to say "changed since"). ``own``:
        ``rev`` is the revision of the edit's own event (a daql hub applied it over a
        colleague's change), marked :data:`OWN_EVENT` for :meth:`accepted_among`."""
        with self._conn(conn) as c:
            self._mark((uid,))
            r = c.exec_driver_sql(
                f"UPDATE sat_receipt SET state = '{ReceiptState.REJECTED.value}', err = ?, "
                f"rev = ?, conflicts = ?, local_err = ? WHERE uid = ? AND state = '{_P}'"
                + self._open_w,
                (err, rev, _j([enc_conflict(x) for x in conflicts]), OWN_EVENT if own else "",
                 uid))
            return self._left_pending(c, uid, r.rowcount)

    def fold_into(self, uid: str, conflicts: Sequence[Conflict],
                  conn: Connection | None = None) -> list[str]:
        """Resolve, as folded into the transaction ``uid`` just rejected with ``conflicts``,
        the earlier rejected ones it makes redundant (session 11: one field saved several
        times offline made one conflict per save): each earlier one (not itself a
        resolution) whose actions are all ``mod`` of records and fields ``uid`` changes too,
        rejected for the same changes (the same records, reasons, fields, revisions and
        users). Keep theirs of ``uid`` then drops what it would have, keep mine sends the
        later values, which the hub would have left standing anyway; its values were
        replaced by the later save. Their ``resolved_by`` is ``uid``, and so is that of the
        ones folded into them before: the save whose conflict the user resolves (its own
        ``resolved_by`` then says how). Returns their uids."""
        if not conflicts or any(x.reason != "field changed" for x in conflicts):
            return []
        with self._conn(conn) as c:
            me = c.exec_driver_sql(
                "SELECT seq, acts, resolves FROM sat_receipt WHERE uid = ? AND state = ?",
                (uid, ReceiptState.REJECTED.value)).first()
            if me is None or me[2]:
                return []
            acts = _acts_of(me[1])
            if any(a.cmd != Cmd.MOD for a in acts):
                return []
            mine: dict[tuple[str, str], set[str]] = {}
            for a in acts:
                mine.setdefault((a.top, a.key), set()).update(a.arg or ())
            want = _same_conflicts(conflicts)
            keys = list(dict.fromkeys(k for _, k in mine))
            # every earlier rejected one whose first action is on a record of this one (each
            # of its actions must be), however far back: the partial index by that key (a
            # queue not upgraded, or an SQLite without JSON: every rejected one, filtered by
            # the key's text first)
            rows = c.exec_driver_sql(
                "SELECT uid, acts, conflicts, resolves FROM sat_receipt WHERE state = "
                f"'{ReceiptState.REJECTED.value}' AND {_FOLD_KEY} IN ("
                + ",".join("?" * len(keys)) + ") AND seq < ? ORDER BY seq",
                (*keys, me[0])).all() if self._json(c) else [
                r for r in c.exec_driver_sql(
                    "SELECT uid, acts, conflicts, resolves FROM sat_receipt WHERE state = ? "
                    "AND seq < ? ORDER BY seq", (ReceiptState.REJECTED.value, me[0]))
                if any(_j(k) in r[1] for k in keys)]
            folded = []
            for r in rows:
                if r[3]:
                    continue
                theirs = tuple(dec_conflict(x) for x in orjson.loads(r[2] or "[]"))
                old = _acts_of(r[1])
                if _same_conflicts(theirs) != want or not all(
                        a.cmd == Cmd.MOD and set(a.arg or ()) <= mine.get((a.top, a.key), set())
                        for a in old):
                    continue
                done = c.execute(self.t.update()
                                 .where(self.t.c.uid == r[0],
                                        self.t.c.state == ReceiptState.REJECTED.value)
                                 .values(state=ReceiptState.RESOLVED.value, resolved_by=uid))
                if done.rowcount:
                    folded.append(r[0])
            if folded:
                # those folded into them before now point here too: ``resolved_by`` names the
                # save holding the conflict (the one the user resolves), not the next save,
                # itself folded (session 12). Only that column changes: nothing to mark
                c.exec_driver_sql(
                    "UPDATE sat_receipt SET resolved_by = ? WHERE state = ? AND resolved_by IN "
                    f"({','.join('?' * len(folded))})",
                    (uid, ReceiptState.RESOLVED.value, *folded))
            self._mark(folded)
            return folded

    def _json(self, c: Connection) -> bool:
        """Whether this SQLite has ``json_extract`` (3.38 on always; an older one if built
        with JSON1), asked once."""
        if self._has_json is None:
            try:
                c.exec_driver_sql("SELECT json_extract('[{\"key\": 1}]', '$[0].key')")
                self._has_json = True
            except SQLAlchemyError:
                self._has_json = False
        return self._has_json

    def accepted_revs(self, after: int) -> set[int]:
        """The revisions of this satellite's accepted transactions after ``after``."""
        self._seen_layout()
        with self._read() as c:
            rows = c.execute(select(self.t.c.rev).where(
                self.t.c.state == ReceiptState.ACCEPTED.value, self.t.c.rev > after))
            out = {int(r[0]) for r in rows}
            if self.fast:
                out.update(int(r[0]) for r in c.exec_driver_sql(
                    "SELECT k.rev FROM sat_acked k JOIN sat_receipt r ON r.seq = k.seq "
                    f"WHERE k.rev > ? AND r.state = '{_P}'", (after,)))
            return out

    def accepted_among(self, revs: Iterable[int]) -> set[int]:
        """Those of ``revs`` that are revisions of this satellite's accepted transactions."""
        self._seen_layout()
        want = sorted(set(revs))
        out: set[int] = set()
        with self._read() as c:
            for i in range(0, len(want), 500):
                chunk = want[i:i + 500]
                rows = c.exec_driver_sql(
                    "SELECT rev FROM sat_receipt WHERE state = ? AND rev IN ("
                    + ",".join("?" * len(chunk)) + ")",
                    (ReceiptState.ACCEPTED.value, *chunk))
                out.update(int(r[0]) for r in rows)
                # an edit a daql hub applied over a colleague's change is stored rejected (a
                # conflict after the fact) at its own revision: its event is the user's own
                # too (session 14: a later edit of the record named it "someone"'s change).
                # Only when marked so (OWN_EVENT): a carried receipt's revision, or one stored
                # before session 14 at its reply's, may be a colleague's change
                out.update(_own_overwrites(c, chunk))
                if self.fast:
                    out.update(int(r[0]) for r in c.exec_driver_sql(
                        "SELECT k.rev FROM sat_acked k JOIN sat_receipt r ON r.seq = k.seq "
                        "WHERE k.rev IN (" + ",".join("?" * len(chunk)) + ") AND "
                        f"r.state = '{_P}'", tuple(chunk)))
        return out

    def overwrites_among(self, revs: Iterable[int]) -> set[int]:
        """Those of ``revs`` that are the own events of edits a daql hub applied over a
        colleague's change (receipts rejected or resolved, marked :data:`OWN_EVENT`): a
        subset of :meth:`accepted_among`'s answer. The colleague's change such an event
        overwrote is reported by its receipt (session 15: a later edit of the record was held
        back as a conflict with it a second time)."""
        self._seen_layout()
        want = sorted(set(revs))
        out: set[int] = set()
        with self._read() as c:
            for i in range(0, len(want), 500):
                chunk = want[i:i + 500]
                out.update(_own_overwrites(c, chunk))
        return out

    def accepted_at(self, revs: Iterable[int]) -> list[Receipt]:
        """This satellite's accepted receipts at ``revs`` (a record's history names the user's
        own resolutions among its changes), in queue order; reads only those revisions."""
        self._seen_layout()
        want = sorted({r for r in revs if r})
        out: list[Receipt] = []
        for i in range(0, len(want), 400):
            chunk = tuple(want[i:i + 400])
            qs = ",".join("?" * len(chunk))
            wheres = [(f" WHERE r.state = '{_A}' AND r.rev IN ({qs})", chunk)]
            if self.fast:
                wheres.append((f" WHERE r.seq IN (SELECT seq FROM sat_acked WHERE rev IN ({qs}))"
                               " AND k.seq IS NOT NULL", chunk))
            out += [self._receipt(r) for r in self._select_all(wheres)]
        return out

    def settled(self, same: str) -> list[Receipt]:
        """The rejected receipts that settled by themselves (both sides had set the same
        values, session 13), in queue order: resolved ``same`` (nothing left to send) or by
        a resolution marked settled (:data:`_SETTLED_MARK`). A resolution the user chose (keep
        mine of such an edit) is not one (session 13 listed it as settled)."""
        return [self._receipt(r) for r in self._select(
            f" WHERE r.state = '{ReceiptState.RESOLVED.value}' AND (r.resolved_by = ? OR "
            "r.resolved_by IN (SELECT uid FROM sat_receipt WHERE resolves != '' AND "
            f"instr(extra, '{_SETTLED_MARK}') > 0))", (same,))]

    def last_accepted(self) -> Receipt | None:
        """The accepted receipt with the highest revision among those with actions (the
        first in queue order of equal ones), or None."""
        self._seen_layout()
        with self._read() as c:
            r = c.execute(select(self.t).where(
                self.t.c.state == ReceiptState.ACCEPTED.value, self.t.c.rev > 0,
                self.t.c.acts != "[]").order_by(self.t.c.rev.desc(), self.t.c.seq).limit(1)
            ).mappings().first()
            if self.fast:
                # walked down the rev index of sat_acked to the first with actions
                cur = c.connection.driver_connection.execute(  # type: ignore[union-attr]
                    f"SELECT {self._cols()} FROM sat_acked k JOIN sat_receipt r ON r.seq = k.seq "
                    f"WHERE r.state = '{_P}' AND r.acts != '[]' AND k.rev > 0 "
                    "ORDER BY k.rev DESC, k.seq LIMIT 1")
                names = [d[0] for d in cur.description]
                q = next((dict(zip(names, x, strict=True)) for x in cur), None)
                if q is not None and (r is None or (q["rev"], -q["seq"]) > (r["rev"], -r["seq"])):
                    return self._receipt(q)
        return None if r is None else self._receipt(r)

    def set_bases(self, bases: dict[str, int], conn: Connection | None = None) -> None:
        """Move pending transactions (uid → base) onto a later base revision."""
        if not bases:
            return
        with self._conn(conn) as c:
            self._mark(bases)
            c.exec_driver_sql(
                f"UPDATE sat_receipt SET base = ? WHERE uid = ? AND state = '{_P}'"
                + self._open_w, [(base, uid) for uid, base in bases.items()])

    def resolve(self, uid: str, by: str, conn: Connection | None = None) -> bool:
        """Mark a rejected transaction resolved by ``by`` (a uid, or ``-`` for keep theirs)."""
        with self._conn(conn) as c:
            self._mark((uid,))
            r = c.execute(self.t.update()
                          .where(self.t.c.uid == uid,
                                 self.t.c.state == ReceiptState.REJECTED.value)
                          .values(state=ReceiptState.RESOLVED.value, resolved_by=by))
            return bool(r.rowcount)

    def discard(self, uid: str, by: str, conn: Connection | None = None) -> bool:
        """Mark a pending transaction resolved by ``by`` (the user discarded it): kept as a
        receipt, never sent."""
        with self._conn(conn) as c:
            self._mark((uid,))
            r = c.exec_driver_sql(
                f"UPDATE sat_receipt SET state = '{ReceiptState.RESOLVED.value}', "
                f"resolved_by = ?, local_err = '' WHERE uid = ? AND state = '{_P}'"
                + self._open_w, (by, uid))
            return self._left_pending(c, uid, r.rowcount)

    def _left_pending(self, c: Connection, uid: str, n: int) -> bool:
        """After an update of the pending receipt ``uid`` to another state (``n`` rows):
        it leaves ``sat_pending``."""
        if n and self.fast:
            c.exec_driver_sql("DELETE FROM sat_pending WHERE seq = (SELECT seq FROM sat_receipt "
                              "WHERE uid = ?)", (uid,))
        return bool(n)

    def set_local(self, marks: dict[str, str], conn: Connection | None = None) -> None:
        """Set ``local_err`` of pending transactions: ``marks`` holds uid → error for those that
        no longer apply; every other pending one is cleared."""
        with self._conn(conn) as c:
            # the open receipts only (a receipt acked through sat_acked keeps its old mark,
            # which no reader shows: walking them all would grow with the accepted ones)
            c.exec_driver_sql(
                "UPDATE sat_receipt SET local_err = '' WHERE seq IN (SELECT seq FROM sat_pending) "
                f"AND +state = '{_P}' AND local_err != ''" if self.fast else
                f"UPDATE sat_receipt SET local_err = '' WHERE state = '{_P}' AND local_err != ''")
            if marks:
                c.exec_driver_sql(f"UPDATE sat_receipt SET local_err = ? WHERE uid = ? AND "
                                  f"state = '{_P}'" + self._open_w, list(
                                      (err, uid) for uid, err in marks.items()))

    def set_meta(self, name: str, value: Any, conn: Connection | None = None) -> None:
        """Store ``sat_meta`` ``name`` (``value`` as JSON), replacing what it held: one driver
        statement (a delete and an insert through SQLAlchemy's Core cost ~0.25 ms; a replay
        writes two with every reply it stores: ``last_sync``, ``hub_rev``)."""
        with self._conn(conn) as c:
            c.exec_driver_sql(_SET_META, (name, _j(value)))

    # -- reading -------------------------------------------------------------------------------

    def get_meta(self, name: str, default: Any = None) -> Any:
        with self._read() as c:
            v = c.execute(select(self.meta.c.value).where(self.meta.c.name == name)).scalar()
        return default if v is None else orjson.loads(v)

    def _cols(self, cols: Sequence[str] = _COLS) -> str:
        """The select list of ``cols`` as readers see them (``r``: ``sat_receipt``; with
        ``sat_acked`` as ``k``, a receipt acked there reads ``accepted`` at its revision)."""
        if not self.fast:
            return ", ".join(f"r.{c}" for c in cols)
        return ", ".join(_FAST_COLS[c] for c in cols)

    def _pending_where(self) -> str:
        """The receipts that may be pending, by ``sat_pending`` and ``seq`` (never a walk of
        the ``state`` index: it holds every receipt acked through ``sat_acked``), pending."""
        if not self.fast:
            return f" WHERE r.state = '{_P}'"
        return (f" WHERE (r.seq IN (SELECT seq FROM sat_pending) OR r.seq > {_UPTO_SQL}) "
                f"AND +r.state = '{_P}' AND k.seq IS NULL")

    def _state_wheres(self, states: Sequence[ReceiptState], accepted_after: int | None
                      ) -> list[tuple[str, tuple[Any, ...]]]:
        """The reads (``WHERE`` and its parameters) whose rows together are the receipts in
        ``states`` (and the accepted ones after ``accepted_after``), each by an index."""
        out: list[tuple[str, tuple[Any, ...]]] = []
        plain = [s.value for s in states if s not in (ReceiptState.PENDING, ReceiptState.ACCEPTED)
                 or not self.fast]
        if plain:
            out.append((" WHERE r.state IN (" + ",".join("?" * len(plain)) + ")", tuple(plain)))
        if self.fast and ReceiptState.PENDING in states:
            out.append((self._pending_where(), ()))
        if self.fast and ReceiptState.ACCEPTED in states:
            out.append((f" WHERE r.state = '{_A}' OR k.seq IS NOT NULL", ()))
        if accepted_after is not None:
            out.append((f" WHERE r.state = '{_A}' AND r.rev > ?", (accepted_after,)))
            if self.fast:
                out.append((" WHERE r.seq IN (SELECT seq FROM sat_acked WHERE rev > ?) AND "
                            "k.seq IS NOT NULL", (accepted_after,)))
        return out

    def accepted_uids(self) -> list[str]:
        """The uids of the accepted transactions that change something (actions), in queue
        order; their actions are not decoded."""
        rows = self._select_all(self._state_wheres([ReceiptState.ACCEPTED], None),
                                cols=("uid", "acts"))
        return [r["uid"] for r in rows if r["acts"] != "[]"]

    def receipts(self, states: Sequence[ReceiptState] | None = None,
                 conn: Connection | None = None) -> list[Receipt]:
        """Receipts in queue order, optionally only those in ``states``."""
        self._seen_layout()  # before the reads are chosen
        if states is None:
            return [self._receipt(r) for r in self._select("", (), conn=conn)]
        return [self._receipt(r) for r in self._select_all(self._state_wheres(states, None),
                                                          conn=conn)]

    def receipt(self, uid: str) -> Receipt | None:
        rows = self._select(" WHERE r.uid = ?", (uid,))
        return self._receipt(rows[0]) if rows else None

    def rows(self, states: Sequence[ReceiptState] | None = None, *,
             accepted_after: int | None = None) -> list[dict[str, Any]]:
        """Raw rows (with ``auth``, ``extra`` and ``local_err``), in queue order.

        ``accepted_after``: also the accepted rows whose revision is after it.
        """
        self._seen_layout()  # before the reads are chosen
        if states is None:
            return self._select("", ())
        return self._select_all(self._state_wheres(states, accepted_after))

    def _select_all(self, wheres: Sequence[tuple[str, tuple[Any, ...]]],
                    cols: Sequence[str] = _COLS,
                    conn: Connection | None = None) -> list[dict[str, Any]]:
        """The rows of several reads, each once, in queue order."""
        if len(wheres) == 1:
            return self._select(*wheres[0], cols=cols, conn=conn)
        got: dict[int, dict[str, Any]] = {}
        for where, params in wheres:
            for r in self._select(where, params, cols=("seq", *cols), conn=conn):
                got[r["seq"]] = r
        return [got[k] for k in sorted(got)]

    def _select(self, where: str, params: tuple[Any, ...],
                cols: Sequence[str] = _COLS,
                conn: Connection | None = None) -> list[dict[str, Any]]:
        self._seen_layout()
        with self._read(conn) as c:
            # the DBAPI cursor: SQLAlchemy's row machinery cost more than SQLite for 10,000 rows
            cur = c.connection.driver_connection.execute(  # type: ignore[union-attr]
                f"SELECT {self._cols(cols)}" + (_FAST_FROM if self.fast else " FROM sat_receipt r")
                + where + " ORDER BY r.seq", params)
            names = [d[0] for d in cur.description]
            return [dict(zip(names, r, strict=True)) for r in cur]

    def touching_after(self, uid: str, top: str, key: str) -> list[tuple[str, str]]:
        """``(uid, state)`` of the transactions queued after ``uid`` (not resolved) with an
        action on the record ``top key``, in queue order."""
        rows = self._select(
            " WHERE r.seq > (SELECT seq FROM sat_receipt WHERE uid = ?) AND r.state IN (?, ?, ?)"
            " AND instr(r.acts, ?) > 0",
            (uid, ReceiptState.PENDING.value, ReceiptState.ACCEPTED.value,
             ReceiptState.REJECTED.value, _j(key)), ("uid", "state", "acts"))
        return [(r["uid"], r["state"]) for r in rows
                if any((a.top, a.key) == (top, key) for a in _acts_of(r["acts"]))]

    def rows_of(self, uids: Sequence[str]) -> list[dict[str, Any]]:
        """Raw rows of these uids (all columns), in queue order."""
        out: list[dict[str, Any]] = []
        for i in range(0, len(uids), 500):
            chunk = tuple(uids[i:i + 500])
            out += self._select(" WHERE r.uid IN (" + ",".join("?" * len(chunk)) + ")", chunk)
        out.sort(key=lambda r: r["seq"])
        return out

    def _count_pending(self, c: Connection, extra: str = "") -> int:
        if not self.fast:
            n = c.exec_driver_sql(f"SELECT count(*) FROM sat_receipt WHERE state = '{_P}'"
                                  + extra).scalar()
        else:
            n = c.exec_driver_sql("SELECT count(*)" + _FAST_FROM + self._pending_where()
                                  + extra.replace("local_err", "r.local_err")).scalar()
        return int(n or 0)

    def summary(self) -> tuple[dict[str, int], int]:
        """The pending and rejected receipts per state and the creation time of the last
        receipt made (for the status, read after every change): from the indexes and
        ``sat_pending``, not the rows, so that it does not grow with the accepted receipts
        (session 11: one pass over every row, 2 ms per 20,000 receipts)."""
        self._seen_layout()
        with self._read() as c:
            rej = c.exec_driver_sql(
                f"SELECT count(*) FROM sat_receipt WHERE state = "
                f"'{ReceiptState.REJECTED.value}'").scalar()
            pend = self._count_pending(c)
            # the last own change in queue order (its primary key), not the greatest
            # creation time: after a clock set a year ahead was corrected, that one stayed
            # a year ahead for good (review 16)
            newest = c.exec_driver_sql(
                "SELECT created FROM sat_receipt WHERE seq = "
                "(SELECT max(seq) FROM sat_receipt)").scalar()  # two rowid look-ups
        counts = {k: n for k, n in ((_P, pend), (ReceiptState.REJECTED.value, int(rej or 0)))
                  if n}
        return counts, int(newest or 0)

    def rejected_stamp(self) -> tuple[int, int, int]:
        """What changes whenever a receipt is rejected, resolved or folded: the rejected
        ones' count, greatest ``seq`` and sum of ``seq``, read from the ``(state, rev)``
        index's entries (a rowid rides along). The conflicts view compares it to rebuild
        only when its rows could have changed (session 13: it rebuilt on every change)."""
        with self._read() as c:
            r = c.exec_driver_sql(
                "SELECT count(*), coalesce(max(seq), 0), coalesce(sum(seq), 0) FROM sat_receipt "
                f"WHERE state = '{ReceiptState.REJECTED.value}'").first()
        return (0, 0, 0) if r is None else (int(r[0]), int(r[1]), int(r[2]))

    def put_aside_count(self) -> int:
        """How many rejected receipts were put aside (sent, their answer lost:
        :func:`core.satellite.api.is_put_aside`), not refused: the status counts them apart
        from the conflicts. Reads the rejected rows only (the ``(state, rev)`` index)."""
        with self._read() as c:
            n = c.exec_driver_sql(
                f"SELECT count(*) FROM sat_receipt WHERE state = "
                f"'{ReceiptState.REJECTED.value}' AND (conflicts IS NULL OR conflicts = '[]') "
                "AND substr(err, 1, ?) = ?", (len(PUT_ASIDE), PUT_ASIDE)).scalar()
        return int(n or 0)

    def upgrade(self) -> None:
        """Bring a queue made by an older Outpost up to this one, at the first writable
        open (well under a second for 100,000 receipts):

        - the indexes of session 11 (:func:`queue_tables` makes them in a new one), and the
          index by state alone they replace dropped;
        - ``sat_pending`` and ``sat_acked`` (session 12, see the module docstring), the
          pending receipts copied into ``sat_pending``; at every writable open, the pending
          receipts an older Outpost added since (after ``pending_upto``) too.

        Not done (a full disk, a read-only file) is no error: the indexes' reads scan
        instead, and acks rewrite their receipts as before."""
        with self._read() as c:
            have = {r[0] for r in c.exec_driver_sql(
                "SELECT name FROM sqlite_master WHERE type = 'index' AND "
                "tbl_name = 'sat_receipt'")}
        if not {"ix_sat_receipt_created", "ix_sat_receipt_state_rev"} <= have:
            try:
                with self._conn(None) as c:
                    c.exec_driver_sql("CREATE INDEX IF NOT EXISTS ix_sat_receipt_created "
                                      "ON sat_receipt (created)")
                    c.exec_driver_sql("CREATE INDEX IF NOT EXISTS ix_sat_receipt_state_rev "
                                      "ON sat_receipt (state, rev)")
                    c.exec_driver_sql("DROP INDEX IF EXISTS ix_sat_receipt_state")
            except StorageError:
                pass
        if "ix_sat_receipt_rejected_key" not in have:
            try:  # apart: an SQLite without JSON cannot make it, and folds without it
                with self._conn(None) as c:
                    # rejected receipts only: an ack or a save does not touch it
                    c.exec_driver_sql(_FOLD_INDEX)
            except StorageError:
                pass
        if self._has_ack_tables():
            with self._read() as c:
                # nothing to do (the usual open) writes nothing: a command that changes
                # nothing leaves the file as it was
                todo = c.exec_driver_sql(
                    "SELECT EXISTS (SELECT 1 FROM sat_receipt WHERE seq > "
                    f"coalesce({_UPTO_SQL}, 0) AND +state = '{_P}' AND seq NOT IN (SELECT seq "
                    "FROM sat_pending) AND seq NOT IN (SELECT seq FROM sat_acked)) OR EXISTS "
                    "(SELECT 1 FROM sat_pending WHERE (SELECT state FROM sat_receipt r WHERE "
                    f"r.seq = sat_pending.seq) IS NOT '{_P}')").scalar()
            if not todo:
                self._set_layout(True)
                return
        try:
            with self._conn(None) as c:
                c.exec_driver_sql("CREATE TABLE IF NOT EXISTS sat_pending "
                                  "(seq INTEGER PRIMARY KEY)")
                c.exec_driver_sql("CREATE TABLE IF NOT EXISTS sat_acked "
                                  "(seq INTEGER PRIMARY KEY, rev INTEGER NOT NULL)")
                c.exec_driver_sql("CREATE INDEX IF NOT EXISTS ix_sat_acked_rev "
                                  "ON sat_acked (rev)")
                # pending receipts not in sat_pending: all of them in a queue made before
                # session 12, those an older Outpost added since the last open otherwise
                # (by seq from pending_upto on: not a walk of every pending state entry)
                c.exec_driver_sql(
                    "INSERT OR IGNORE INTO sat_pending (seq) SELECT seq FROM sat_receipt WHERE "
                    f"seq > coalesce({_UPTO_SQL}, 0) AND +state = '{_P}' "
                    "AND seq NOT IN (SELECT seq FROM sat_acked)")
                # and those an older Outpost accepted, rejected or discarded leave it
                c.exec_driver_sql(
                    "DELETE FROM sat_pending WHERE (SELECT state FROM sat_receipt r WHERE "
                    f"r.seq = sat_pending.seq) IS NOT '{_P}'")
                c.exec_driver_sql(_SET_UPTO)
        except StorageError:
            return
        self._set_layout(True)

    def acked_rev(self) -> int:
        """The highest revision the hub acked for a transaction of this queue (0: none)."""
        self._seen_layout()
        with self._read() as c:
            n = c.execute(select(func.max(self.t.c.rev))
                          .where(self.t.c.state == ReceiptState.ACCEPTED.value)).scalar()
            if self.fast:
                k = c.exec_driver_sql(
                    "SELECT k.rev FROM sat_acked k JOIN sat_receipt r ON r.seq = k.seq WHERE "
                    f"r.state = '{_P}' ORDER BY k.rev DESC LIMIT 1").scalar()
                n = max(int(n or 0), int(k or 0))
        return int(n or 0)

    def last_created(self) -> int:
        """The creation time of the newest local transaction (0 when there is none)."""
        with self._read() as c:
            n = c.execute(select(func.max(self.t.c.created))).scalar()
        return int(n or 0)

    def count(self, state: ReceiptState) -> int:
        self._seen_layout()
        with self._read() as c:
            if state == ReceiptState.PENDING:
                return self._count_pending(c)
            n = c.execute(select(func.count()).select_from(self.t)
                          .where(self.t.c.state == state.value)).scalar()
            if state == ReceiptState.ACCEPTED and self.fast:
                n = int(n or 0) + int(c.exec_driver_sql(
                    "SELECT count(*) FROM sat_acked k JOIN sat_receipt r ON r.seq = k.seq "
                    f"WHERE r.state = '{_P}'").scalar() or 0)
        return int(n or 0)

    def local_conflicts(self) -> int:
        self._seen_layout()
        with self._read() as c:
            return self._count_pending(c, " AND local_err != ''")

    @staticmethod
    def trans_of(row: Any) -> Trans:
        """The transaction of a row, ready to send (uid, base, created, extra, acts)."""
        acts = _acts_of(row["acts"])
        extra = orjson.loads(row["extra"]) if row["extra"] else None
        return Trans(acts, base=row["base"], created=row["created"], extra=extra,
                     uid=row["uid"])

    def _receipt(self, r: Any) -> Receipt:
        # through the cache, as trans_of (session 14: the conflicts view and `outpost
        # conflicts` decoded a receipt's actions at every read)
        acts = _acts_of(r["acts"])
        conflicts = tuple(dec_conflict(x) for x in orjson.loads(r["conflicts"] or "[]"))
        return Receipt(r["uid"], r["base"], r["created"], acts, ReceiptState(r["state"]),
                       r["rev"] or 0, r["err"] or r["local_err"] or "", conflicts,
                       r["resolved_by"] or "", r["resolves"] or "",
                       bool(r["resolves"]) and _SETTLED_MARK in (r["extra"] or ""))


def touched(acts: Sequence[Action]) -> set[tuple[str, str]]:
    """(topic, key) of every record the actions touch."""
    return {(a.top, a.key) for a in acts}


