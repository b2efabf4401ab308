"""The satellite: replica + local queue + view, behind :class:`~core.satellite.api.SatelliteAPI`.

:class:`Satellite` is what the desktop and the headless CLI use; it is also the
:class:`~core.satellite.machine.SyncStore` of the sync state machine. All methods are
synchronous local SQLite work. ``pub`` commits before it returns.

Decisions (see ``docs/satellite.md``):

- A pending transaction that no longer applies on the replica after hub events arrived is
  *marked* (``Receipt.err`` set, counted in ``conflicts``, shown on the record) but stays
  pending and is still sent: the hub's verdict is final.
- Keep theirs marks the rejected receipt resolved (``resolved_by = "theirs"``) and publishes
  nothing; keep mine and per field publish a new transaction on the current view whose
  ``extra`` is ``{"resolves": uid}``, in the same commit that marks the old one resolved.
- Authoritative topics: transactions touching only them are final locally (no pending mark, no
  conflict check) and forwarded to the hub like any other.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence, Set
from dataclasses import dataclass
from dataclasses import replace as dc_replace
from operator import itemgetter
from pathlib import Path
from typing import Any

from filelock import FileLock
from sqlalchemy import Connection

from core.crashpoints import crash_point
from core.errors import (
    ConfigError,
    ConflictError,
    HubDataError,
    LostRevisionsError,
    OutpostError,
    SchemaError,
    StaleConflictError,
    StorageError,
    ValidationError,
)
from core.ids import new_key, new_uid
from core.ledger.protocols import HistoryEntry
from core.ledger.rules import Later, conflict_of, plan, same_acts
from core.model import Action, Cmd, Conflict, Event, Sig, Trans, Update
from core.revision import ZERO_REV, Rev, format_rev, unix_rev
from core.satellite.api import (
    KEPT_MINE,
    NOT_SENT,
    Change,
    Keep,
    Listener,
    Receipt,
    ReceiptState,
    RecordView,
    SatStatus,
    is_put_aside,
    overwrote,
)
from core.satellite.config import DataDir, SatConfig, sat_clock
from core.satellite.conflicts import could_overwrite, same_value, seen_of, settled_same
from core.satellite.holder import STATUS_FILE, HolderStatus, HolderView, StatusWriter, read_status
from core.satellite.keepboth import check_new_keys, clashes, renamed, sig_text
from core.satellite.machine import (
    MAX_TRANS_BYTES,
    OVERWROTE_ON_HUB,
    REJECTED_BY_HUB,
    Phase,
    SyncInfo,
    new_dir_fix,
)
from core.satellite.order import key_order_sql, key_sort, order_sql
from core.satellite.queue import Queue, acts_decoded, acts_json
from core.satellite.replica import Replica, int_key
from core.satellite.view import Overlay, Queued, QueueView, keys_of, sigs_of
from core.satellite.view import _later as view_later
from core.schema import MAX_INT, Project
from core.wire import SatRes, dumps, enc_trans

__all__ = ["Satellite", "Staged"]

READ_ONLY = "read_only"
"""``sat_meta``: the hub's word that this user may only read (:meth:`Satellite.note_role`)."""
DISCARDED = "discarded"
LOST_AFTER = "lost_after"
"""``sat_meta``: ``{"after": REV, "exact": BOOL}``, the hub lacks the edits it accepted from
this replica after REV (:meth:`Satellite.note_lost`); ``exact`` false (or absent, as session
15 wrote it): at least those, earlier ones may be lost too; or ``{"uids": [UID, ...],
"exact": BOOL}``, it lacks those (:meth:`Satellite.note_lost_uids`); absent or null: none
known."""
OWN_CHECKED = "own_checked"
"""``sat_meta``: true once the hub was asked whether its history at each of the newest
:data:`OWN_CHECK_MAX` edits it accepted from this replica is the replica's (session 16: a
replica synced before session 15's ``last`` check may hold a rolled-back hub's history;
:meth:`Satellite.own_unchecked`)."""
OWN_CHECK_MAX = 256
"""Most accepted edits of one replica checked once (:data:`OWN_CHECKED`), the newest."""
_FREE_KEY_PROBES = 100_000
"""Most keys below 2**63 - 1 :meth:`Satellite._free_int_key` looks at for the run of used keys
that ends there (each one look-up of the events' index)."""
"""``resolved_by`` of a pending transaction the user discarded (:meth:`Satellite.discard`)."""
MARKS_STALE = "marks_stale"
"""``sat_meta``: set (true) in the commit of a hub reply or push holding another's change
while edits are pending, cleared in the commit of the local conflict marks checked against
it (:meth:`Satellite._store_marks`): until then a reader does not trust the stored marks but
builds its overlay (session 14: `outpost status` could miss a local conflict the reply just
made, between the two commits)."""
SAME = "same"
"""``resolved_by`` of a rejected transaction settled by itself with nothing left to send: the
fields that conflicted already held its values (:meth:`Satellite._settle_same`)."""
SETTLED_EXTRA = "same values on both sides"
"""``extra["settled"]`` of the transaction that settles one by itself (audited on the hub)."""


def _token_id(token: str) -> str:
    """A token's fingerprint (the token itself is never stored outside config.json)."""
    return hashlib.sha256(token.encode()).hexdigest()[:16]


_PENDING = ReceiptState.PENDING.value
_ACCEPTED = ReceiptState.ACCEPTED.value
_REJECTED = ReceiptState.REJECTED.value
_TOP, _KEY = itemgetter(0), itemgetter(1)  # a Sig's top and key, read in C (map over a reply's)
#: a uid a "rejected by the hub: UID: why; UID: why" error names (or a NOT_SENT one)
#: "; and N more: ..." ending an error that names only the first of several (MORE_REJECTED)
_MORE = re.compile(r"; and [\d,]+ more: ")
_NAMED_UID = re.compile(r"(?:^|; )([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}): ")


@dataclass(slots=True)
class _Open:
    """One receipt of the open part of the queue, in memory: pending, rejected, or accepted
    with a revision the replica has not reached yet."""

    seq: int
    state: str
    rev: int
    auth: bool
    trans: Trans
    sigs: tuple[Sig, ...]

    @staticmethod
    def of(row: Mapping[str, Any]) -> _Open:
        t = Queue.trans_of(row)
        return _Open(int(row["seq"]), row["state"], int(row["rev"] or 0), bool(row["auth"]),
                     t, sigs_of(t))

    def same(self, o: _Open) -> bool:
        return (self.seq, self.state, self.rev, self.auth, self.trans) == (
            o.seq, o.state, o.rev, o.auth, o.trans)

    def queued(self) -> Queued:
        return Queued(self.trans.uid, self.trans, self.auth, self.state == _ACCEPTED)



def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


WORK_OFFLINE = "work_offline"
"""``sat_meta`` name of the kept "Work offline" choice (:attr:`Satellite.work_offline`)."""


def _file_id(path: Path) -> tuple[int, int] | None:
    """``path``'s (device, inode); None when it does not exist (or cannot be told)."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_dev, st.st_ino)


class Satellite:
    """One satellite's data, in a data directory.

    Args:
        data: the data directory (a path or :class:`DataDir`).
        project: the schema; when given and the directory has none, it is stored. When not
            given, the stored schema is used.
        clock: wall clock as a revision (creation times of local transactions); default:
            the system clock plus ``OUTPOST_CLOCK_OFFSET_MS`` (:func:`config.sat_clock`).
        synchronous: SQLite's ``PRAGMA synchronous`` for the replica (``FULL``, the default,
            survives power loss; the simulation, which only closes and reopens the file, uses
            ``NORMAL``).
        lock: the directory's lock (:meth:`DataDir.lock`) when the caller already took it
            (to change the directory's settings first); the satellite releases it on close.
        read_only: read what is stored without taking the directory's lock (another process
            may have it open): the replica is opened read-only (SQLite ``mode=ro``), nothing
            is created, stored or migrated, and ``pub``/``resolve``/``write`` are refused.
        overlay_later: (the app) do not build the overlay of the pending edits at open:
            :meth:`build_overlay` builds it in steps; meanwhile the reads show what is built,
            each record an unapplied edit touches marked ``applying`` (see there).

    Raises:
        ConfigError: no schema given and none stored; another process has the directory;
            read-only: the directory does not exist.
    """

    def __init__(self, data: DataDir | Path | str, project: Project | None = None, *,
                 clock: Callable[[], Rev] = sat_clock, synchronous: str = "FULL",
                 lock: FileLock | None = None, read_only: bool = False,
                 overlay_later: bool = False):
        self.data = data if isinstance(data, DataDir) else DataDir(data)
        self.read_only = read_only
        # the app: the overlay of the pending edits is built after open, a few transactions
        # at a time (build_overlay), the reads showing what is built meanwhile
        self._later = overlay_later
        # the hub's events fit the schema (its version matched): see trust_hub
        self._trust_hub = True
        if read_only:
            if lock is not None:
                raise ValueError("a read-only satellite takes no lock: pass lock or read_only")
            self.data.check_readable()
        self._lock = None if read_only else lock if lock is not None else self.data.lock()
        try:
            self._open_dir(project, clock, synchronous)
        except BaseException:
            if self._lock is not None:
                self._lock.release()
            raise

    def _open_dir(self, project: Project | None, clock: Callable[[], Rev],
                  synchronous: str) -> None:
        stored = self.data.load_project()
        if project is None:
            if stored is None:
                raise ConfigError(
                    f"no schema in {self.data.path}: run `outpost connect URL` to fetch the "
                    "hub's schema first"
                )
            project = stored
        elif not self.read_only and (stored is None or stored.version != project.version):
            self.data.save_project(project)
        self._project = project
        self.config: SatConfig = self.data.load_config()
        self._check_auth_topics()
        self._clock = clock
        try:
            self.replica = Replica(self.data.db_file, project, synchronous=synchronous,
                                   read_only=self.read_only)
        except SchemaError as exc:
            raise self._other_schema(project, stored) from exc
        self.queue: Queue = self.replica.queue
        # the replica file as opened (device, inode): a directory deleted, moved or renamed
        # away while open is noticed by it (dir_gone)
        self._file_id = None if self.read_only else _file_id(self.data.db_file)
        self._listeners: list[Listener] = []
        self._info = SyncInfo()
        self._since: Rev = ZERO_REV
        self._last_sync: Rev = int(self.queue.get_meta("last_sync", 0))
        self._hub_rev: Rev = int(self.queue.get_meta("hub_rev", 0))
        # the id of the hub ledger this replica holds ("": none yet): see adopt_ledger
        self._ledger: str = str(self.queue.get_meta("ledger", "") or "")
        lost = self.queue.get_meta(LOST_AFTER)
        # the revision after which the hub lacks the edits it accepted (None: no such stop)
        self._lost_after: Rev | None = (int(lost["after"]) if isinstance(lost, dict)
                                        and isinstance(lost.get("after"), int) else None)
        # False: the edits after _lost_after are some of those lost, not all (where the hub's
        # history parts from the replica's was not found; session 15 did not look for it)
        self._lost_exact = isinstance(lost, dict) and lost.get("exact") is True
        self._own_total = 0  # the accepted edits own_unchecked saw (it named the newest)
        # with a lower bound: the hub holds the accepted edits at or before this revision
        # (those between it and _lost_after may be lost too; 0: not known)
        since = lost.get("since") if isinstance(lost, dict) else None
        self._lost_since: Rev = since if isinstance(since, int) and not self._lost_exact else 0
        uids = lost.get("uids") if isinstance(lost, dict) else None
        # the edits the hub lacks, by uid (note_lost_uids); None: by revision (_lost_after)
        self._lost_uids: frozenset[str] | None = (
            frozenset(u for u in uids if isinstance(u, str)) if isinstance(uids, list) else None)
        if self._lost_uids is not None:
            self._lost_after = ZERO_REV  # (some are lost: by uid)
        acks = self.queue.get_meta("hub_acks", None)
        self._hub_acks: bool | None = acks if isinstance(acks, bool) else None
        # the hub's word that this user may only read (note_role; None: none)
        self._ro_mark: Any = self.queue.get_meta(READ_ONLY)
        # the restore points of that ledger served when one was last adopted (oldest first;
        # (): none): see adopt_restore_points. A replica made before session 8 stored the
        # latest only ("restored"): a list of one
        point = self.queue.get_meta("restored") or [ZERO_REV, ""]
        served = self.queue.get_meta("restores") or []
        self._restores: tuple[tuple[Rev, str], ...] = tuple(
            (int(r), str(i)) for r, i in served) or (
            ((int(point[0]), str(point[1])),) if point[1] else ())
        # sat_meta values changed since they were last stored: written with the next batch of
        # hub data (same commit, no fsync of their own) or on close
        self._meta: dict[str, Any] = {}
        self._meta_lock = threading.Lock()
        self._offline_mode = False
        # the holder's connection status, for readers beside it (core.satellite.holder)
        self._status_out = None if self.read_only else StatusWriter(
            self.data.path / STATUS_FILE)
        self.on_local: Callable[[], None] | None = None   # set by the sync client
        # the open part of the queue, in memory (uid -> receipt, in queue order), kept up to
        # date from Queue.take_changed: reading and decoding every pending row after each
        # reply made an offline replay quadratic
        self._open: dict[str, _Open] = {}
        self._accepted: set[str] = set()   # uids in _open accepted (replica not there yet)
        self._rejects: set[str] = set()    # uids in _open rejected
        # overlay_later: the records the transactions of _qv_todo touch (how many each)
        self._unbuilt: dict[Sig, int] = {}
        self._todo_known = {}
        self._qv = QueueView()
        self._outbox: dict[str, Trans] | None = None  # uid -> pending trans, queue order
        self._outbox_sigs: set[Sig] | None = set()   # records in it (None: not known)
        self._outbox_cut = False                    # stopped before a record repeats
        self._outbox_list: list[Trans] | None = None  # outbox() while _outbox is unchanged
        self._marks: dict[str, str] = {}            # local conflict marks last stored
        # the stored marks may be out of date (MARKS_STALE: a reply stored, the marks not
        # yet checked against it): a reader builds its overlay, the writer stores them
        self._marks_stale = bool(self.queue.get_meta(MARKS_STALE, False))
        self._rejected: dict[Sig, list[str]] = {}
        self._refresh(persist=not self.read_only)

    def _other_schema(self, project: Project, stored: Project | None) -> ConfigError:
        """The error of a replica made with another schema version than ``project``: the
        fix is the satellite's, not the hub operator's backup and restore."""
        from core.satellite.replica import stored_version

        made = stored_version(self.data.db_file) or "another"
        if stored is not None and stored.version == project.version:
            return ConfigError(
                f"{self.data.schema_file} has schema version {project.version}, but the "
                f"replica {self.data.db_file} was made with version {made} (schema.json was "
                "edited or replaced): delete schema.json and run `outpost connect URL` to "
                "fetch the hub's again; the replica and its pending edits are kept")
        return ConfigError(
            f"the replica {self.data.db_file} was made with schema version {made}, this "
            f"schema is version {project.version}: it cannot follow it; use a new --data DIR "
            "for this schema")

    def _check_auth_topics(self) -> None:
        """``auth_topics`` names topics of the schema: a mistyped one would leave that
        topic's edits pending and conflict-checked, silently.

        Raises:
            ConfigError: a topic the schema does not have.
        """
        from core.schema import did_you_mean

        known = self._project.topics
        for t in self.config.auth_topics:
            if not self._project.has(t):
                raise ConfigError(
                    f"{self.data.config_file}: auth_topics names {t!r}, which is no topic of "
                    f"the schema{did_you_mean(t, known)}: the topics are {', '.join(known)}; "
                    "fix or remove it in config.json")

    # -- SatelliteAPI: reading ---------------------------------------------------------------

    @property
    def project(self) -> Project:
        return self._project

    @property
    def auth_topics(self) -> frozenset[str]:
        return frozenset(self.config.auth_topics)

    def status(self) -> SatStatus:
        """The status; read-only: the connection part is the holder's (:meth:`holder`), its
        ``online`` only from a live record. A data directory gone while open
        (:meth:`dir_gone`) is its ``last_error``, or the error raised when the status cannot
        be read from it any more.

        Raises:
            StorageError: the replica cannot be read.
        """
        try:
            st = self._status()
        except StorageError:
            self._here()  # the cause, when it is this: not SQLite's "unable to open"
            raise
        gone = self.dir_gone()
        return dc_replace(st, last_error=gone) if gone else st

    def _status(self) -> SatStatus:
        counts, local_rev = self.queue.summary()  # one read: the UI asks after every change
        rejected = counts.get(ReceiptState.REJECTED.value, 0)
        # put aside (sent, answer lost: a daql hub) is no conflict: counted apart (session
        # 12: `outpost status` and the status bar counted them as conflicts); read only
        # when something is rejected
        aside = self.queue.put_aside_count() if rejected else 0
        st = SatStatus(
            online=self._info.online, since=self._since, hub=self.config.hub,
            rev=self.replica.rev(), local_rev=local_rev,
            pending=counts.get(ReceiptState.PENDING.value, 0),
            conflicts=rejected - aside + self._local_conflicts(), put_aside=aside,
            mig=self._project.version, hub_confirms=self._hub_acks, **self._link())
        if self.read_only and (hv := self.holder()) is not None:
            h = hv.status
            # a record that is not live: offline since its last word at the latest
            st = dc_replace(st, online=h.online and hv.live,
                            since=h.since if hv.live else unix_rev(h.written),
                         hub_rev=max(st.hub_rev, h.hub_rev),
                         last_sync=max(st.last_sync, h.last_sync), last_error=h.last_error,
                         offline_mode=h.offline_mode, syncing=h.syncing and hv.live,
                         progress=h.progress if hv.live else (0, 0))
        if st.last_error.startswith((REJECTED_BY_HUB, NOT_SENT, OVERWROTE_ON_HUB)) and \
                self._rejection_resolved(
                st.last_error, rejected):
            st = dc_replace(st, last_error="")
        return st

    def _local_conflicts(self) -> int:
        """How many pending edits the overlay marks as local conflicts. A read-only
        satellite whose overlay is not built yet counts the marks the directory's writer
        stored with them (it stores them whenever they change: :meth:`_store_marks`), so
        that the status does not build the overlay of the whole queue."""
        if self._qv_todo is not None:
            return self.queue.local_conflicts()
        return len(self._ov.conflicts)

    def _rejection_resolved(self, err: str, rejected: int) -> bool:
        """The edits a "rejected by the hub" error names are all resolved (none is rejected
        any more): the error is stale until the next reply sets it (the status bar still
        said "1 edit rejected" after keep theirs)."""
        if rejected == 0:
            return True
        if _MORE.search(err):
            return False  # names the first of several (session 13): stale once none is left
        uids = _NAMED_UID.findall(err.removeprefix(REJECTED_BY_HUB).removeprefix(NOT_SENT)
                                  .removeprefix(OVERWROTE_ON_HUB))
        return bool(uids) and all(
            (r := self.queue.receipt(u)) is not None and r.state != ReceiptState.REJECTED
            for u in uids)

    def _link(self) -> dict[str, Any]:
        """The sync machine's part of the status (no database read)."""
        info = self._info
        return {"hub_rev": max(self._hub_rev, info.hub_rev), "last_sync": self._last_sync,
                "last_error": info.last_error,
                "syncing": info.phase in (Phase.HANDSHAKE, Phase.CATCHUP),
                "progress": info.progress, "sending": info.sending,
                "offline_mode": self._offline_mode,
                "ledger": self._ledger}

    def holder(self) -> HolderView | None:
        """The connection status the process holding the directory last recorded, as a
        reader sees it (its age, whether it is live); None when none was recorded."""
        return read_status(self.data.path / STATUS_FILE)

    @property
    def offline_mode(self) -> bool:
        """The user chose "work offline" (set by the app) for this run: no sync runs."""
        return self._offline_mode

    @offline_mode.setter
    def offline_mode(self, value: bool) -> None:
        self._offline_mode = value
        self._record_status()

    @property
    def work_offline(self) -> bool:
        """The user's "Work offline" choice kept for this data directory (in the replica's
        ``sat_meta``): the app opens it offline; ``outpost status`` reports it. Kept in the
        user's Qt settings before session 9 (by the directory's path: a reader could not see
        it, and a directory moved or opened by another account opened online)."""
        return bool(self.queue.get_meta(WORK_OFFLINE, False))

    @work_offline.setter
    def work_offline(self, value: bool) -> None:
        self._writable()
        if self.work_offline != value:
            self.queue.set_meta(WORK_OFFLINE, bool(value))  # a commit of its own: durable

    # -- the user's role (what the hub said) ---------------------------------------------------

    def read_only_reason(self) -> str:
        """Why this user may only read, as the hub said it (``""``: it did not, or it said
        since that the user may write, or the token was changed since: a new one may write).
        Edits are then refused here (:meth:`pub`) with the fix, and pending ones can be
        discarded (:meth:`discard`): the hub would never take them."""
        # the writer keeps it in memory (only its own sync machine changes it: pub reads it
        # for every edit); a reader beside the holder reads what the holder stored
        mark = self.queue.get_meta(READ_ONLY) if self.read_only else self._ro_mark
        if not isinstance(mark, dict) or mark.get("token") != _token_id(self.config.token):
            return ""
        return str(mark.get("why") or "the hub lets this user only read")

    def note_role(self, role: str, why: str = "") -> None:
        """What the hub said of this user (the sync machine calls it: ``evt.stat``'s role, an
        Outpost extension, or an ``evt.sat`` refused as read-only, ``why`` its message):
        ``"reader"`` is kept (with the token it holds for) until the hub says ``"writer"``
        or the token changes; anything else clears it."""
        if self.read_only:
            return
        if role == "reader":
            why = why or "the hub lets this user only read (role reader)"
            mark = {"why": why, "token": _token_id(self.config.token)}
            if self._ro_mark == mark:
                return
            self.queue.set_meta(READ_ONLY, mark)
            self._ro_mark = mark
        elif self._ro_mark is not None:
            self.queue.set_meta(READ_ONLY, None)
            self._ro_mark = None
        else:
            return
        self._notify(Change(status=True))

    def _check_writer(self) -> None:
        why = self.read_only_reason()
        if why:
            raise ValidationError(
                f"{why}: nothing was queued. Ask the hub's operator for a writer token "
                "(`outpost-hub user add NAME --role writer --replace`), then `outpost connect "
                "URL --token=TOKEN`; edits made before can be discarded (`outpost discard "
                "UID`)")

    def discard(self, uid: str) -> None:
        """Drop a pending transaction the hub will never take, recorded, not deleted: its
        receipt is resolved by ``"discarded"`` (as keep theirs resolves a rejected one) and
        its changes leave the user's view. Only for an edit the hub refused because the user
        may only read (:meth:`read_only_reason`: nothing of it is sent), or one that
        conflicts locally (a change from the hub collides with it, :meth:`receipts` shows
        why) while not connected: any other pending edit may be on its way to the hub.

        Raises:
            ValidationError: no pending transaction has that uid, or it is not one of those.
        """
        self._writable()
        rec = self.queue.receipt(uid)
        if rec is None:
            raise ValidationError(f"no local transaction with uid {uid}: see `outpost "
                                  "conflicts` (`outpost status` counts the pending ones)")
        if rec.state == ReceiptState.REJECTED:
            raise ValidationError(f"transaction {uid} was rejected by the hub: resolve it "
                                  f"(`outpost resolve {uid} --keep theirs` drops it)")
        if rec.state != ReceiptState.PENDING:
            raise self._not_rejected(uid, rec)
        local = uid in self._ov.conflicts
        if not self.read_only_reason() and not (local and not self._info.online):
            raise ValidationError(
                f"transaction {uid} is pending and may reach the hub: only an edit the hub "
                "refused (the user may only read) or one that conflicts locally can be "
                "discarded" + (" (stop syncing first)" if local else "")
                + "; if the hub rejects it, `outpost resolve --keep theirs` drops it")
        with self.queue._conn(None) as conn:
            if not self.queue.discard(uid, DISCARDED, conn):
                raise self._not_rejected(uid)
        self._refresh(persist=True, changed=set())
        self._notify(Change(status=True, receipts=True, records=self._sigs(rec.acts)))

    def status_wait(self) -> float | None:
        """Seconds until the sync client should call :meth:`set_sync` again (even with no
        change) so the status readers see is written (a held-back change, the heartbeat);
        None: nothing to write (read-only)."""
        return None if self._status_out is None else self._status_out.wait()

    def _record_status(self) -> None:
        out = self._status_out
        if out is None or (not out.written and self._info == SyncInfo()
                           and not self._offline_mode):
            return  # no sync ran: nothing to tell (tests and one-shot commands write no file)
        link = self._link()
        out.offer(HolderStatus(
            online=self._info.online, since=self._since, hub_rev=link["hub_rev"],
            last_sync=link["last_sync"], last_error=link["last_error"],
            offline_mode=link["offline_mode"], syncing=link["syncing"],
            progress=link["progress"]))

    def keys(self, top: str, confirmed: Sequence[str] | None = None) -> list[str]:
        m = self._project.model(top)
        base = self.replica.read.keys(top) if confirmed is None else confirmed
        return keys_of(base, self._shown, top, key_sort(m.key == "int"))

    def confirmed_keys(self, top: str) -> list[str]:
        """The replica's keys of a topic in key order (:func:`~core.satellite.order.key_sort`:
        numbers for an int-keyed topic, an index keeps it), without the pending edits. Safe
        on any thread (a pooled connection of its own)."""
        m = self._project.model(top)
        st = self.replica.ledger.tables.state(top)
        keys: list[str] = []
        self._raw_read(f"SELECT key FROM {_quote(st.table.name)} "
                       f"ORDER BY {key_order_sql(m.key == 'int')}",
                       lambda _c, r: keys.append(r[0]))
        return keys

    def confirmed_order(self, top: str, field: str, desc: bool = False,
                        ) -> tuple[list[str], list[Any]]:
        """The replica's keys of a topic ordered by ``field`` (:mod:`core.satellite.order`),
        and each one's sort value, without the pending edits. Safe on any thread (it only
        reads the replica, on a pooled connection of its own): SQLite sorts and the GIL is
        free meanwhile."""
        f = self._project.model(top).field(field)
        if f is None:
            raise ValidationError(f"topic {top} has no field {field!r}")
        sql = order_sql(f, self.replica.ledger.tables.state(top).table.name, desc)
        keys: list[str] = []
        vals: list[Any] = []
        ka, va = keys.append, vals.append

        def row(_c: Any, r: tuple[Any, ...]) -> None:
            ka(r[0])
            va(r[1])

        self._raw_read(sql, row)
        return keys, vals

    def _raw_read(self, sql: str, row: Callable[[Any, tuple[Any, ...]], Any]) -> None:
        """Run a SELECT on the replica's driver connection, handing every row to ``row``
        (which keeps what it needs and returns None). Reading a million rows this way
        holds the GIL for no long stretch (SQLAlchemy's result processing held it for
        ~0.2 s at once) and leaves no row tuple alive for the garbage collector to promote
        (full collections of 20-130 ms each, stopping the UI thread too)."""
        with self.replica.ledger.engine.connect() as conn:
            cur = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
            cur.row_factory = row  # type: ignore[union-attr]
            try:
                cur.execute(sql)
                while cur.fetchmany(5_000):
                    pass
            finally:
                cur.close()

    def confirmed_scan(self, top: str, chunk: int = 5_000, *,
                       where: tuple[str, Sequence[Any]] | None = None,
                       ) -> Iterator[list[RecordView]]:
        """The replica's records of a topic in the order of their key's text (the table's
        own order, also of an int-keyed topic: reading it by its key index cost a lookup a
        row; sort by :func:`~core.satellite.order.key_sort` what is kept), ``chunk`` at a
        time, as records without pending edits (``fields`` = ``confirmed``). Safe on any
        thread; the connection is held until the iterator is exhausted or closed.

        ``where``: an SQL condition on the state table's columns (``"key"`` and the field
        names) with its ``?`` parameters: only the rows it selects (a window's filter reads
        a superset of its matches this way instead of every record)."""
        st = self.replica.ledger.tables.state(top)
        cond = f" WHERE {where[0]}" if where is not None else ""
        sql = f"SELECT * FROM {_quote(st.table.name)}{cond} ORDER BY key"
        with self.replica.ledger.engine.connect() as conn:
            cur = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
            try:
                cur.execute(sql, tuple(where[1]) if where is not None else ())
                while rows := cur.fetchmany(chunk):
                    out = []
                    for r in rows:
                        v = st.values(r)
                        out.append(RecordView(top, r[0], v, v))
                    del rows
                    yield out
            finally:
                cur.close()

    def overlaid(self, top: str) -> frozenset[str]:
        """The keys of a topic whose fields the pending edits change (new, changed or
        deleted locally): what the user sees of them differs from the replica."""
        ov = self._shown
        return frozenset([*(s.key for s in ov.states if s.top == top),
                          *(s.key for s in self._unbuilt if s.top == top)])

    def records(self, top: str) -> list[RecordView]:
        self._project.model(top)
        base = self.replica.read.states(top)
        keys = set(base)
        ov = self._overlay_of(top)
        keys.update(s.key for s in ov.states if s.top == top)
        keys.update(s.key for s in ov.conflict_sigs if s.top == top)
        out = []
        for k in sorted(keys, key=key_sort(self._project.model(top).key == "int")):
            rv = self._view(top, k, base.get(k), ov)
            if rv.fields is not None:
                out.append(rv)
        return out

    def record(self, top: str, key: str) -> RecordView | None:
        self._project.model(top)
        rv = self._view(top, key, self.replica.read.state(top, key),
                        self._overlay_of(top, (key,)))
        if rv.fields is None and rv.confirmed is None and not rv.conflict:
            return None
        return rv

    def records_of(self, top: str, keys: Iterable[str]) -> dict[str, RecordView]:
        """:meth:`record` of many keys with one replica read (``states_of``): key -> view;
        keys :meth:`record` answers ``None`` for are left out."""
        self._project.model(top)
        keys = list(keys)
        base = self.replica.read.states_of(top, keys) if keys else {}
        ov = self._overlay_of(top, keys)
        out: dict[str, RecordView] = {}
        for k in keys:
            rv = self._view(top, k, base.get(k), ov)
            if rv.fields is not None or rv.confirmed is not None or rv.conflict:
                out[k] = rv
        return out

    def new_key(self, top: str, taken: Iterable[int] = ()) -> str:
        """A key for a new record of ``top``: a UUIDv7 for a model with ``str`` keys; for
        ``int`` keys one above the greatest key this satellite knows of the topic (1 at
        least): every key in the replica's events (records deleted since count too, so a
        deleted record's key is never given again) and in the local queue (pending,
        rejected and accepted edits), and ``taken`` (a CSV's keys). Two satellites offline
        can still pick the same key: the second to sync gets a conflict (``created``). A
        topic that holds the greatest 64-bit key (2**63 - 1) gets one above its greatest key
        below the keys at the top instead (:meth:`_free_int_key`, session 13; before, one
        above 2**63 - 1, which every new record was refused for).

        The replica's greatest key is kept by the replica, stored with the events that move
        it (:meth:`Replica.greatest_int_key`): no read of the events, but once per topic in a
        replica made before session 9."""
        m = self._project.model(top)
        if m.key != "int":
            return new_key()
        best = self.replica.greatest_int_key(top)
        mine: set[int] = set(taken)
        for e in self._open.values():
            for a in e.trans.acts:
                if a.top == top:
                    mine.add(int_key(a.key))
        best = max(best, *mine) if mine else best
        if best < MAX_INT:
            return str(best + 1)
        return str(self._free_int_key(top, mine))

    def _free_int_key(self, top: str, mine: set[int]) -> int:
        """:meth:`new_key` of an int-keyed topic that has the greatest 64-bit key (2**63 - 1:
        one above it would be refused, so no record got an automatic key any more; wire
        review 13): one above the greatest key below the run of consecutive keys that ends
        at it (so keys go on after the topic's others: 3 after 1, 2 and 2**63 - 1); ``mine``:
        the keys of the local queue (and ``taken``), used as well.

        Raises:
            ValidationError: no such key within :data:`_FREE_KEY_PROBES` keys below the top
                (every key below used): the user gives one.
        """
        bottom = MAX_INT  # the lowest key of the run at the top of the range (used)
        probed, n = 0, 4  # a few keys first (usually the next is free), then more at once
        while probed < _FREE_KEY_PROBES and bottom > 1:
            step = [bottom - i for i in range(1, n + 1) if bottom - i > 0]
            probed += len(step)
            n = min(n * 4, 1000)
            used = {k for k in step if k in mine} | self.replica.int_keys_used(
                top, [k for k in step if k not in mine])
            for k in step:
                if k not in used:  # the run ends at bottom: every key between h and it is free
                    h = max(self.replica.greatest_int_key_below(top, bottom),
                            max((x for x in mine if x < bottom), default=0))
                    return h + 1
                bottom = k
        raise ValidationError(
            f"{top}: no free key for a new record: the keys up to "
            f"{MAX_INT} (the greatest 64-bit key) are taken from {bottom} on: give the new "
            "record a key of your own")

    def learn_int_keys(self) -> list[str]:
        """Scan now, once, the events of each int-keyed topic whose greatest key a replica
        made before session 9 does not keep (0.3-0.5 s at 1,000,000 events), so that no
        :meth:`new_key` does it. Safe on a worker thread (the app runs it on one at start;
        ``Replica.greatest_int_key`` holds its lock and a pooled connection of its own).
        Returns the topics scanned."""
        todo = self.replica.unknown_int_tops()
        for top in todo:
            self.replica.greatest_int_key(top)
        return todo

    def count(self, top: str) -> int:
        """``len(keys(top))`` without reading every key (the sidebar counts topics no table
        shows: a read of a million keys held the UI thread for about a second)."""
        self._project.model(top)
        read = self.replica.read
        mine = {s.key: st for s, st in self._shown.states.items() if s.top == top}
        n = read.count(top)
        if mine:  # what the pending edits add (new keys) or remove (deleted ones): one read
            there = read.states_of(top, mine)
            for key, st in mine.items():
                if st is None and key in there:
                    n -= 1
                elif st is not None and key not in there:
                    n += 1
        return n

    def receipts(self, states: Sequence[ReceiptState] | None = None) -> list[Receipt]:
        return [self._with_local(r) for r in self.queue.receipts(states)]

    def accepted_among(self, revs: Iterable[Rev]) -> frozenset[Rev]:
        return frozenset(self.queue.accepted_among(revs))

    def last_accepted(self) -> Receipt | None:
        return self.queue.last_accepted()

    def accepted_at(self, revs: Iterable[Rev]) -> list[Receipt]:
        return self.queue.accepted_at(revs)

    def settled_receipts(self) -> list[Receipt]:
        return self.queue.settled(SAME)

    def receipt(self, uid: str) -> Receipt | None:
        r = self.queue.receipt(uid)
        return None if r is None else self._with_local(r)

    def history(self, top: str, key: str) -> list[HistoryEntry]:
        self._project.model(top)
        return self.replica.read.history(top, key)

    def state_at(self, top: str, key: str, rev: Rev) -> dict[str, Any] | None:
        return self.replica.read.state(top, key, rev)

    def own_revs(self, revs: Iterable[Rev]) -> set[Rev]:
        want = [r for r in revs if r]
        return self.queue.accepted_among(want) if want else set()

    def states_at(self, top: str, keys: Iterable[str], rev: Rev) -> dict[str, dict[str, Any]]:
        """:meth:`state_at` of many records in one read (key -> fields; records that did not
        exist at ``rev`` are left out)."""
        self._project.model(top)
        return self.replica.read.states_of(top, keys, rev)

    def conflicts_stamp(self) -> tuple[Any, ...]:
        """A value that changes whenever the conflict inbox's transactions do (one rejected,
        resolved or folded; a pending one marked or unmarked a local conflict), in one
        small read: the conflicts view rebuilds its rows only then (session 13)."""
        return (*self.queue.rejected_stamp(), frozenset(self._ov.conflicts))

    def histories_of(self, top: str, keys: Iterable[str]) -> dict[str, list[HistoryEntry]]:
        """:meth:`history` of many records of ``top`` in one read (key -> its changes,
        oldest first; records without any are left out)."""
        self._project.model(top)
        return self.replica.read.histories(top, keys)

    def listen(self, fn: Listener) -> Callable[[], None]:
        self._listeners.append(fn)

        def stop() -> None:
            if fn in self._listeners:
                self._listeners.remove(fn)
        return stop

    # -- SatelliteAPI: writing ---------------------------------------------------------------

    def pub(self, acts: Sequence[Action], *, resolves: str = "", base: Rev | None = None) -> str:
        """Queue a transaction (committed to SQLite before returning); returns its uid.

        ``base``: the replica revision the edit was made on (a form passes the revision it
        loaded the record at); default: the current one. Hub changes after it that collide
        with the edit make it a conflict, marked at once by the rebase and rejected by the hub
        (this satellite's own accepted edits since do not count).

        Raises:
            ValidationError: an action does not fit the schema or what the user sees (e.g.
                ``mod`` of a record that does not exist, ``new`` of one that does); ``base``
                is ahead of the replica.
        """
        self._writable()
        self._check_writer()
        self._refuse_applying(acts)
        uid = new_uid()
        trans = self._make_trans(acts, uid, resolves, base)
        # while the app builds the overlay in steps (overlay_later), a save of records no
        # unapplied edit touches is checked on, and added to, what is built: their state
        # there is final, and no unapplied (earlier) transaction's outcome depends on it
        # (session 15: a save elsewhere built the rest at once, a stall of seconds)
        aside = self._building()
        self._check_on_view(trans, shown=aside)
        crash_point("sat.before_local_commit")
        seq = self.queue.add(trans, auth=self._is_auth(trans), resolves=resolves)
        crash_point("sat.after_local_commit")
        self._after_pub(trans, seq, into=self._qview if aside else None)
        # building: its last step stores the local conflict marks (build_overlay)
        if not aside and trans.uid in self._ov.conflicts:
            self._store_marks()
        return uid

    def pub_many(self, batches: Iterable[tuple[Sequence[Action], Rev | None]]) -> list[str]:
        """Queue several transactions, one per ``(acts, base)`` of ``batches`` (each as
        :meth:`pub` makes it), in ONE local commit: all or none. Returns their uids in order.

        For a file import (``outpost import``, the app's File → Import CSV): the hub still
        gets one transaction per batch, each applied or rejected on its own (DESIGN §3), but
        locally the whole file is queued or nothing is. An import stopped half-way (an
        error, Ctrl+C, ``kill -9``, a power cut) leaves nothing queued, so running it again
        cannot queue its keyless rows twice (safety review 10, finding 3). ``batches`` may be
        a generator reading the file: an exception it raises (``KeyboardInterrupt`` too)
        rolls back what was queued and propagates. The queue's write lock is held until the
        commit (other writers of the directory wait; readers do not).

        Raises:
            ValidationError: a batch does not fit (as :meth:`pub`); nothing was queued.
            StorageError: the database failed; nothing was queued.
        """
        self._writable()
        self._check_writer()
        done: list[tuple[Trans, int]] = []
        made: dict[Sig, dict[str, Any] | None] = {}  # the records earlier batches left
        with self.queue._conn(None) as conn:
            for acts, base in batches:
                trans = self._make_trans(acts, new_uid(), "", base)
                self._check_on_view(trans, made)
                done.append((trans, self.queue.add(trans, auth=self._is_auth(trans),
                                                   conn=conn)))
                crash_point("sat.mid_import")
            crash_point("sat.before_local_commit")
        crash_point("sat.after_local_commit")
        marks = False
        for trans, seq in done:
            self._after_pub(trans, seq)
            marks = marks or trans.uid in self._ov.conflicts
        if marks:
            self._store_marks()
        return [t.uid for t, _ in done]

    def staged(self) -> Staged:
        """:meth:`pub_many` in steps, for a caller that must return to its event loop between
        two batches (the app's File → Import CSV, session 11): :meth:`Staged.add` makes and
        checks one transaction (on the view and the earlier ones) and keeps it in memory,
        writing nothing; :meth:`Staged.commit` queues them all in ONE short local commit. A
        staged set never committed (a Cancel, an error, ``kill -9``) queued nothing, and no
        write lock is held between the steps (the sync worker's writes go on).

        Raises:
            ConfigError: opened read-only.
            ValidationError: the hub lets this user only read.
        """
        self._writable()
        self._check_writer()
        _ = self._qv  # the rows are checked on the whole overlay (overlay_later: built now)
        return Staged(self)

    def resolve(self, uid: str, keep: Keep | Mapping[str, Mapping[str, Keep]], *,
                keys: Mapping[str, str] | None = None, seen: Rev | None = None) -> str:
        """Resolve a rejected transaction; see the module docstring. Returns the new uid or
        ``""`` when nothing was published.

        ``seen``: the replica revision of the conflict as the user was shown it (the
        conflicts view and ``outpost conflicts`` read it before their rows); default: the
        revision of the conflict (:func:`core.satellite.conflicts.seen_of`: for a receipt
        rejected before session 10 what its conflicts prove). Keep mine, keep both or a
        per-field choice is refused (:class:`StaleConflictError`) when someone else changed
        or deleted one of its records after that: the user chose against values they were not shown,
        and would overwrite (or undo a delete of) a change they never saw. Keep theirs drops
        the edit and overwrites nothing: never refused for this.

        ``keep`` :attr:`Keep.BOTH`: the records the transaction creates under a key taken
        meanwhile are created under new keys, ``keys`` (``{"top key": new key}``; a record
        left out gets :meth:`both_keys`'s), and the refs of the transaction that named them
        name the new keys; the rest as keep mine.

        Raises:
            ValidationError: no rejected transaction has that uid (already resolved: named
                with its resolution); keep both of one that creates no record under a taken
                key, or a new key that is not free; a per-field choice that leaves out a
                required field of a record it creates.
            StaleConflictError: a record of it changed after ``seen`` (not keep theirs).
        """
        self._writable()
        rec = self._rejected_receipt(uid)
        if is_put_aside(rec) and keep not in (Keep.MINE, Keep.THEIRS):
            raise ValidationError(
                f"edit {uid} was put aside (sent, its answer lost), not refused: keep mine "
                "sends it again whole, keep theirs drops it (`outpost resolve "
                f"{uid} --keep mine|theirs`); keep both and per-field choices are not for it; "
                "nothing was resolved")
        over = overwrote(rec)
        if over and keep == Keep.BOTH:
            raise ValidationError(
                f"edit {uid} is on the hub already (it overwrote a colleague's change): keep "
                "mine leaves it, keep theirs sends theirs back, or choose per field; keep both "
                "is not for it; nothing was resolved")
        if keep != (Keep.MINE if over else Keep.THEIRS):
            # an edit that overwrote theirs: keep theirs (or theirs for a field) is what
            # overwrites now, keep mine sends nothing
            self._check_seen(rec, seen)
        if over:
            acts = self._undo_overwrite(rec, keep)
        elif keep == Keep.BOTH:
            acts = self._both(rec, keys or {})
        else:
            if keys:
                raise ValidationError("new keys are for keep both only; nothing was resolved")
            acts = self._resolution(rec, keep)
        if acts:
            self._check_writer()  # keep theirs only marks the receipt: a reader may do it
        if not acts:
            # keep mine with nothing to send (the hub has the user's values: identical on
            # both sides) is the user's keep mine, not keep theirs (session 14: it was stored
            # and said "kept theirs", and listed as settled by itself)
            mine = over or keep == Keep.MINE or (not isinstance(keep, Keep) and bool(keep) and all(
                v == Keep.MINE for m in keep.values() for v in m.values()))
            with self.queue._conn(self._batch) as conn:
                if not self.queue.resolve(uid, KEPT_MINE if mine else "theirs", conn):
                    raise self._not_rejected(uid)
            self._refresh(persist=False, changed=set())
            self._notify(Change(status=True, receipts=True, records=self._sigs(rec.acts)))
            return ""
        new = new_uid()
        trans = self._make_trans(acts, new, uid)
        self._check_on_view(trans)
        with self.queue._conn(self._batch) as conn:
            seq = self.queue.add(trans, auth=self._is_auth(trans), resolves=uid, conn=conn)
            if not self.queue.resolve(uid, new, conn):
                # resolved meanwhile (another window's dialog, a stale choice): the commit is
                # rolled back, so the resolution is not queued twice
                raise self._not_rejected(uid)
        self._after_pub(trans, seq, also=rec.acts)
        self._refresh(persist=False, changed=set())  # the resolved receipt leaves
        return new

    # resolve_many: the one connection (SQLite transaction) its resolutions write through
    _batch: Connection | None = None

    def resolve_many(self, uids: Sequence[str], keep: Keep, *,
                     seen: Rev | None = None) -> list[str]:
        """Resolve several rejected transactions whole (keep mine or keep theirs), each as
        :meth:`resolve` does it, in the order given, in ONE local commit: all or none. Each
        resolution is still its own transaction naming the uid it resolves (the hub audits
        it so), or none for keep theirs. Returns the new uids ("" where nothing was
        published), in order.

        One commit instead of one per edit (session 14: ~10 ms each, 1,092 conflicts took
        12 s): the first that cannot be resolved (refused, stale, resolved meanwhile), an
        error or a crash (``kill -9``) leaves every one of them rejected as before (the
        commit rolled back; what memory made of them read from the queue again). Listeners
        hear one change notice at the end, and the sync is told once.

        Raises:
            ValidationError, StaleConflictError: as :meth:`resolve`, for the first that
                cannot be resolved; nothing was resolved.
        """
        self._writable()
        if keep not in (Keep.MINE, Keep.THEIRS):
            raise ValidationError("several edits are resolved whole, keeping mine or theirs; "
                                  "keep both and per-field choices take one edit at a time; "
                                  "nothing was resolved")
        if self._batch is not None:
            raise RuntimeError("resolve_many inside resolve_many")
        todo = list(dict.fromkeys(uids))
        _ = self._qv  # the whole overlay (overlay_later: built now)
        out: list[str] = []
        heard: list[Change] = []
        listeners, local = self._listeners, self.on_local
        self._listeners, self.on_local = [heard.append], None
        ok = False
        try:
            with self.queue._conn(None) as conn:
                self._batch = conn
                for uid in todo:
                    out.append(self.resolve(uid, keep, seen=seen))
                    crash_point("sat.mid_resolve_many")
                crash_point("sat.before_local_commit")
            ok = True
        finally:
            self._batch = None
            self._listeners, self.on_local = listeners, local
            if not ok:
                # rolled back: the queue holds none of them; memory is read from it again
                self.queue.take_changed(read=False)
                self._refresh(persist=False)
                _ = self._qv
                self._unsaid = False
                self._notify(Change(status=True, receipts=True, reset=True))
        crash_point("sat.after_local_commit")
        self._refresh(persist=True, changed=set())  # the resolved receipts leave; marks
        recs: dict[str, set[str]] = {}
        for ch in heard:
            for t, ks in ch.records.items():
                recs.setdefault(t, set()).update(ks)
        self._notify(Change(records={t: frozenset(k) for t, k in recs.items()}, status=True,
                            receipts=True))
        if local is not None and any(out):
            local()
        return out

    def _check_seen(self, rec: Receipt, seen: Rev | None) -> None:
        """Refuse a resolution of ``rec`` chosen on the records as of ``seen`` when another
        user's change of one of them arrived after it (see :meth:`resolve`).

        Raises:
            StaleConflictError: naming each record changed since, what and when, and the fix.
            ValidationError: ``seen`` after the replica's revision.
        """
        old = seen is None and not rec.rev  # rejected before session 10: see seen_of
        if seen is None:
            if not rec.conflicts:
                return  # rejected for another reason: no value of theirs was shown
            seen = seen_of(self, rec)
        elif seen > self.replica.rev():
            raise ValidationError(
                f"revision {format_rev(seen)} is after the replica's ({format_rev(self.rev())}):"
                " give the revision `outpost conflicts` shows; nothing was resolved")
        by_top: dict[str, list[str]] = {}
        for a in rec.acts:
            by_top.setdefault(a.top, []).append(a.key)
        later = [(top, key, e) for top, keys in by_top.items()
                 for key, evs in self.replica.read.events_of(top, keys, seen).items()
                 for e in evs]
        if old:  # changes keep mine cannot overwrite may have come before the rejection
            later = [(top, key, e) for top, key, e in later
                     if could_overwrite(rec, top, key, e.cmd, e.arg or ())]
        own = self.queue.accepted_among(e.rev for *_, e in later)
        last: dict[tuple[str, str], Any] = {}
        for top, key, e in later:
            if e.rev not in own:
                last[top, key] = e
        if not last:
            return
        parts = []
        for (top, key), e in last.items():
            au = self.replica.read.audit(e.rev)
            who = f" by {au.usr}" if au is not None and au.usr else ""
            what = {Cmd.DEL: "deleted", Cmd.NEW: "created again"}.get(e.cmd, "changed")
            parts.append(f"{top} {key} was {what} at {format_rev(e.rev)}{who}")
        raise StaleConflictError(
            f"transaction {rec.uid}: {'; '.join(parts)}, after the conflict you looked at "
            f"(as of {format_rev(seen)}): your choice would overwrite a change you were not "
            "shown. Look at the conflict again (the conflicts view shows it as it is now; "
            "`outpost conflicts` too, with the revision to pass to `outpost resolve --seen`) "
            "and resolve it again; nothing was resolved")

    def both_keys(self, uid: str) -> dict[str, str]:
        """The records the rejected transaction ``uid`` creates under a key another record
        has taken meanwhile (``"top key"``) and the free key keep both gives each: for
        ``int`` keys one above every key this satellite knows (:meth:`new_key`; several in
        one topic: the next ones), else a new UUIDv7. Empty when it creates none.

        Raises:
            ValidationError: no rejected transaction has that uid.
        """
        e = self._open.get(uid)  # rejected receipts are in memory: no read of the queue
        acts = (e.trans.acts if e is not None and e.state == _REJECTED
                else self._rejected_receipt(uid).acts)
        taken = self._both_keys(acts)
        if taken and (is_put_aside(rc := self._rejected_receipt(uid)) or overwrote(rc)):
            # its own record on the hub (the edit arrived; or a daql hub applied its new
            # over a colleague's record: keep theirs sets theirs back), not someone else's
            return {}
        return {sig_text(s): k for s, k in taken.items()}

    def later_edits(self, uid: str, records: Iterable[str]) -> dict[str, list[str]]:
        """This satellite's transactions queued after ``uid`` (pending, accepted or rejected)
        with an action on each of ``records`` (``"top key"``), by record: after keep both of
        ``uid`` they stay on that key, i.e. on the record someone else created there (keep
        both moves only ``uid``'s own actions and refs), so ``outpost resolve --keep both``
        names them for the user to check (session 9's note, said since session 11)."""
        out: dict[str, list[str]] = {}
        for name in records:
            top, _, key = name.partition(" ")
            found = [u for u, _ in self.queue.touching_after(uid, top, key)]
            if found:
                out[name] = found
        return out

    def _both_keys(self, acts: Sequence[Action]) -> dict[Sig, str]:
        taken = clashes(acts, self._seen(Sig(a.top, a.key) for a in acts))
        out: dict[Sig, str] = {}
        nxt: dict[str, int] = {}
        for s in taken:
            if self._project.model(s.top).key == "int":
                n = nxt.get(s.top)
                n = int(self.new_key(s.top)) if n is None else n
                nxt[s.top] = n + 1
                out[s] = str(n)
            else:
                out[s] = self.new_key(s.top)
        return out

    def _both(self, rec: Receipt, keys: Mapping[str, str]) -> list[Action]:
        """Keep both's actions: the clashing records under new keys (refs of the transaction
        to them too), then keep mine on that."""
        proposed = self._both_keys(rec.acts)
        if not proposed:
            had = [a for a in rec.acts if a.cmd == Cmd.NEW]
            raise ValidationError(
                f"keep both is for a record created under a key someone else took meanwhile; "
                f"transaction {rec.uid} creates "
                + ("no record" if not had else "no record whose key is taken now (they "
                   "deleted theirs since: keep mine creates yours under its key)")
                + ": keep mine or keep theirs; nothing was resolved")
        by_text = {sig_text(s): s for s in proposed}
        for name in keys:
            if name not in by_text:
                raise ValidationError(
                    f"{name!r} is not a record transaction {rec.uid} creates under a taken "
                    f"key: those are {', '.join(repr(t) for t in by_text)}; nothing was "
                    "resolved")
        chosen = {s: keys.get(t, proposed[s]) for t, s in by_text.items()}
        checked = check_new_keys(
            self._project, rec.acts, chosen,
            lambda sigs: {s: v is None for s, v in self._seen(sigs).items()})
        acts = renamed(self._project, rec.acts, checked)
        return self._resolution(dc_replace(rec, acts=tuple(acts)), Keep.MINE)

    def _rejected_receipt(self, uid: str) -> Receipt:
        rec = self.queue.receipt(uid)
        if rec is None:
            raise ValidationError(f"no local transaction with uid {uid}: see `outpost conflicts`")
        if rec.state != ReceiptState.REJECTED:
            raise self._not_rejected(uid, rec)
        return rec

    def _not_rejected(self, uid: str, rec: Receipt | None = None) -> ValidationError:
        """Why ``uid`` cannot be resolved: it is pending or accepted, or was resolved already
        (by what: resolving it twice, from two windows, or the app and then the CLI, must
        neither fail silently nor publish twice)."""
        rec = rec or self.queue.receipt(uid)
        if rec is not None and rec.state == ReceiptState.RESOLVED:
            how = ("by keeping theirs" if rec.resolved_by in ("theirs", "-", "")
                   else "by keeping yours, on the hub already" if rec.resolved_by == KEPT_MINE
                   else "by discarding it" if rec.resolved_by == DISCARDED
                   else "by itself: the same values on both sides" if rec.resolved_by == SAME
                   else f"by transaction {rec.resolved_by}")
            by = self.queue.receipt(rec.resolved_by) if how.startswith("by transaction") \
                else None
            if by is not None and by.resolves != uid:  # Queue.fold_into: a later save
                for _ in range(1000):  # saved again and again: the last one
                    nxt = (self.queue.receipt(by.resolved_by)
                           if by.state == ReceiptState.RESOLVED and by.resolved_by else None)
                    if nxt is None or nxt.resolves == by.uid:
                        break
                    by = nxt
                how = (f"folded into your later edit {by.uid} of the same fields, rejected "
                       "for the same change: " + (
                           "resolve that one" if by.state != ReceiptState.RESOLVED
                           # session 12: "resolve that one" of a resolved one
                           else "it was resolved, by keeping theirs"
                           if by.resolved_by in ("theirs", "-", "")
                           else "it was discarded" if by.resolved_by == DISCARDED
                           else f"it was resolved by transaction {by.resolved_by}"))
            return ValidationError(
                f"transaction {uid} was already resolved ({how}): nothing was done again; "
                "`outpost conflicts` lists what is left to resolve")
        state = rec.state.value if rec is not None else "gone"
        return ValidationError(
            f"transaction {uid} is {state}, not rejected: only rejected transactions can be "
            "resolved")

    def carry_in(self, items: Sequence[tuple[Trans, str, str, Sequence[Conflict]]]) -> None:
        """Queue transactions carried from another data directory (``outpost carry``,
        :mod:`core.satellite.carry`), in order and in ONE commit: all or none. Each
        ``(trans, resolves, err, conflicts)`` keeps its uid, base, creation time and extra;
        with ``err`` it is stored rejected (a conflict for the user to resolve), else pending.

        Raises:
            ValidationError: a uid is already queued (nothing was stored).
            StorageError: the database failed (nothing was stored).
        """
        self._writable()
        if not items:
            return
        self.queue.add_many([(t, self._is_auth(t), resolves, err, conflicts)
                             for t, resolves, err, conflicts in items], rev=self.replica.rev())
        self._refresh(persist=True)
        self._notify(Change(records=self._sigs([a for t, *_ in items for a in t.acts]),
                            status=True, receipts=True))
        if self.on_local is not None:
            self.on_local()

    # -- SyncStore (for the sync machine) ----------------------------------------------------

    def rev(self) -> Rev:
        return self.replica.rev()

    def mig(self) -> str:
        return self._project.version

    def last_event(self) -> tuple[int, Rev]:
        """``(id, rev)`` of the replica's last event (``(0, 0)``: none), sent to an Outpost
        hub as ``evt.sat``'s ``last`` (docs/protocol.md): a hub whose history up to the
        replica's revision is another refuses the request (sync stops)."""
        return self.replica.read.last_event_at(self.replica.rev())

    def last_event_at(self, rev: Rev) -> tuple[int, Rev]:
        """``(id, rev)`` of the replica's last event at or before ``rev`` (``(0, 0)``: none):
        the ``last`` of a probe of the hub's history at ``rev`` (``SyncMachine._diverged``)."""
        return self.replica.read.last_event_at(rev)

    def event_upto(self, eid: int) -> tuple[int, Rev]:
        """``(id, rev)`` of the replica's event with the greatest id at or below ``eid``
        (``(0, 0)``: none): where to probe the hub's history (``SyncMachine._diverged``)."""
        return self.replica.ledger.event_upto(eid)

    def topics(self) -> list[str]:
        return self._project.topics

    def ledger(self) -> str:
        """The id of the hub ledger this replica holds (``sat_meta`` ``ledger``), ``""``
        while none is stored: a replica made before ledger ids, or one that never synced
        with a hub that serves an id."""
        return self._ledger

    def adopt_ledger(self, lid: str) -> None:
        """Store ``lid`` as the id of the hub ledger this replica holds, in a commit of its
        own (the sync machine calls it once, after the first handshake that passed its
        checks and before anything is sent)."""
        self._writable()
        self.queue.set_meta("ledger", lid)
        self._ledger = lid

    def note_lost(self, after: Rev | None, exact: bool = True,
                  since: Rev = ZERO_REV) -> None:
        """Keep that the hub lacks the edits it accepted from this replica after revision
        ``after`` (sync stopped for good on it: its file was rolled back; the refusals of a
        handshake write nothing, they are said again at every one), in a commit of its own;
        ``None``: a hub that passed every check since (they are not lost). ``exact`` False:
        it lacks at least those (where its history parts from the replica's is not known:
        :attr:`lost_partial`), and maybe those after ``since`` (:meth:`maybe_lost_keys`).
        What :meth:`lost_by_hub` reads: ``outpost status``, ``show`` and the app mark those
        edits, which ``outpost carry --accepted`` keeps. Written only when it changes."""
        exact = exact or after is None
        if ((after, exact, since) == (self._lost_after, self._lost_exact, self._lost_since)
                and self._lost_uids is None) or self.read_only:
            return
        self.queue.set_meta(LOST_AFTER, None if after is None else {
            "after": int(after), "exact": exact, **({} if exact else {"since": int(since)})})
        self._lost_after = after
        self._lost_exact = exact
        self._lost_since = ZERO_REV if exact else since
        self._lost_uids = None

    def note_lost_uids(self, uids: Sequence[str]) -> None:
        """Keep that the hub lacks these edits it accepted from this replica (sync stopped for
        good: the check of :meth:`own_unchecked` found its history at their revisions is
        not the replica's); a lower bound when older accepted edits were not checked (more
        than :data:`OWN_CHECK_MAX`). As :meth:`note_lost`, read by :meth:`lost_by_hub`."""
        if self.read_only:
            return
        exact = self._own_total <= OWN_CHECK_MAX
        self.queue.set_meta(LOST_AFTER, {"uids": list(uids), "exact": exact})
        self._lost_after = ZERO_REV
        self._lost_exact = exact
        self._lost_uids = frozenset(uids)

    def own_unchecked(self, at: Rev) -> list[tuple[str, Rev]] | None:
        """``(uid, rev)`` of the newest :data:`OWN_CHECK_MAX` edits the hub accepted from this
        replica at or before ``at`` (the replica's revision: their events are held here),
        newest first, to ask the hub once whether its history at each of them is the
        replica's (``SyncMachine``; a replica synced before session 15 could have stored a
        rolled-back hub's later events, its last event then the hub's: the ``last`` check
        passes, while the hub lacks its accepted edits); ``None`` once asked
        (:meth:`mark_own_checked`)."""
        if self.queue.get_meta(OWN_CHECKED):
            return None
        acc = [(r.uid, r.rev) for r in self.queue.receipts([ReceiptState.ACCEPTED])
               if r.acts and 0 < r.rev <= at]
        acc.sort(key=lambda ur: ur[1], reverse=True)
        self._own_total = len(acc)
        return acc[:OWN_CHECK_MAX]

    def mark_own_checked(self) -> None:
        """The hub holds the history of every edit :meth:`own_unchecked` named (or there was
        none): not asked again."""
        if self.read_only:
            return
        if self._own_total == 0:
            # nothing accepted yet (a new replica's first sync): kept for the next write's
            # commit, not a commit (an fsync) of its own before the first request. Sound:
            # an edit is only ever accepted by such a write, which stores the mark with it
            self._put_meta({OWN_CHECKED: True})
        else:
            self.queue.set_meta(OWN_CHECKED, True)

    @property
    def lost_partial(self) -> bool:
        """True when :meth:`lost_by_hub` names some of the edits the hub lost, maybe not all
        (earlier ones may be lost too): the search for where the hub's history parts from
        the replica's was cut (the connection lost; the next sync looks again), or the mark
        was kept by session 15, which did not search. Its places say so."""
        return self._lost_after is not None and not self._lost_exact

    def lost_by_hub(self) -> list[Receipt]:
        """The edits the hub accepted from this replica and lacks as last seen (its file was
        rolled back: :meth:`note_lost`), in queue order; ``[]`` when none is known (one read
        of the accepted receipts only then)."""
        after = self._lost_after
        if after is None:
            return []
        uids = self._lost_uids
        if uids is not None:
            return [r for r in self.queue.receipts([ReceiptState.ACCEPTED])
                    if r.uid in uids and r.acts]
        return [r for r in self.queue.receipts([ReceiptState.ACCEPTED])
                if r.rev > after and r.acts]

    def lost_keys(self, top: str) -> frozenset[str]:
        """The keys of ``top`` that edits of :meth:`lost_by_hub` changed."""
        if self._lost_after is None:
            return frozenset()
        return frozenset(a.key for r in self.lost_by_hub() for a in r.acts if a.top == top)

    def maybe_lost_keys(self, top: str) -> frozenset[str]:
        """With marks that are a lower bound (:attr:`lost_partial`): the keys of ``top`` that
        other accepted edits changed which the hub may lack too (those after the revision
        up to which it is known to hold them), not in :meth:`lost_keys`; else empty."""
        if not self.lost_partial or self._lost_uids is not None:
            return frozenset()
        after, since = self._lost_after or ZERO_REV, self._lost_since
        return frozenset(a.key for r in self.queue.receipts([ReceiptState.ACCEPTED])
                         if since < r.rev <= after for a in r.acts if a.top == top)

    def acked_rev(self) -> Rev:
        """The highest revision the hub acked for one of this replica's transactions."""
        return self.queue.acked_rev()

    def unresolved(self) -> int:
        """How many transactions the hub rejected that are not resolved yet."""
        return self.queue.count(ReceiptState.REJECTED)

    def restore_point(self) -> tuple[Rev, str]:
        """The latest restore point of the hub ledger this replica holds (``sat_meta``
        ``restored``: ``[rev, restore id]``), ``(0, "")`` while none is stored: its hub was
        never restored since this replica first synced."""
        return self._restores[-1] if self._restores else (ZERO_REV, "")

    def restore_points(self) -> tuple[tuple[Rev, str], ...]:
        """The restore points the hub served when this replica last adopted one, oldest
        first (``sat_meta`` ``restores``; a replica made before session 8: its one
        ``restored`` point; ``()``: none)."""
        return self._restores

    def adopt_restore_points(self, points: tuple[tuple[Rev, str], ...]) -> None:
        """Store ``points`` (the hub's served list) as the hub ledger's restore points, in a
        commit of their own (the sync machine calls it when every restore since those
        stored was at or after this replica's revision, before anything is sent).
        ``restored`` keeps the latest for a replica opened by an older Outpost."""
        self._writable()
        with self.queue._conn(None) as conn:
            self.queue.set_meta("restores", [[r, i] for r, i in points], conn)
            self.queue.set_meta("restored", [points[-1][0], points[-1][1]], conn)
        self._restores = tuple(points)

    def outbox(self) -> list[Trans]:
        """The pending transactions that can be sent now, in queue order.

        A transaction that touches a record also touched by an earlier pending one waits
        (the list stops before it) until the earlier one is acknowledged; then its base moves
        past that acknowledged revision (:meth:`_advance_bases`). Otherwise the hub would see
        the satellite's own earlier edit as a change made after the base, and reject the
        second of two edits of one record made offline as a conflict with the first. The same
        holds after the ack while the acknowledged transaction's events are not replicated
        yet (a batched catch-up sends acks first).

        The list changes only in :meth:`written` (after bases moved) and :meth:`pub`, never
        while a reply is being stored on another thread (:meth:`write`): so the sync machine
        may read it at any time, e.g. to send the next ``evt.sat`` before storing a reply.
        It is the same list object until it changes: do not modify it.
        """
        if self._outbox is None:
            out: dict[str, Trans] = {}
            seen: set[Sig] = set()
            cut = False
            for e in self._open.values():
                if e.state == _ACCEPTED:
                    # acknowledged, its events not replicated yet (they come in a later reply):
                    # a later edit of its records waits for them, then its base moves
                    seen.update(e.sigs)
                    continue
                if e.state != _PENDING:
                    continue
                sigs = e.sigs
                if not seen.isdisjoint(sigs):
                    cut = True
                    break
                seen.update(sigs)
                out[e.trans.uid] = e.trans
            self._outbox, self._outbox_sigs, self._outbox_cut = out, seen, cut
            self._outbox_list = None
        if self._outbox_list is None:
            # the same list until the outbox changes (SyncStore.outbox: never modified by
            # the caller): the sync machine then skips the part it sent once, not per call
            self._outbox_list = list(self._outbox.values())
        return self._outbox_list

    def acts_json(self, t: Trans) -> str | None:
        """The JSON text of ``t.acts`` as stored in the queue, when this process read or
        queued it (the sync machine splices it into ``evt.sat`` requests)."""
        return acts_json(t.acts)

    def acts_decoded(self, t: Trans) -> bool:
        """Whether ``t.acts`` are exactly what the hub decoded of the ``evt.sat`` requests that
        carried them (:func:`core.satellite.queue.acts_decoded`): the sync machine then
        rebuilds the events of ``t`` the hub left out of its reply (``own``) from them,
        without decoding the text it sent again."""
        return acts_decoded(t.acts)

    def pending_among(self, uids: list[str]) -> set[str]:
        """Those of ``uids`` that are pending transactions here (``SyncStore.pending_among``:
        the sync machine acks those whose events a catch-up brings back, their acks lost).
        On the thread that owns the overlay, as :meth:`outbox`."""
        op = self._open
        if not op:
            return set()
        return {u for u in uids if (e := op.get(u)) is not None and e.state == _PENDING}

    def local_conflicts(self) -> Mapping[str, tuple[str, tuple[Conflict, ...]]]:
        """``SyncStore.local_conflicts``: the pending transactions the view marks as local
        conflicts (a change from the hub collides with them): uid -> (why, conflicts). The
        sync machine rejects them instead of sending them to a daql hub, which ignores
        ``base`` and would overwrite the change. On the thread that owns the overlay, as
        :meth:`outbox`; do not modify it."""
        return self._ov.conflicts

    def mark_unconfirmed(self, uids: list[str]) -> None:
        """``SyncStore.mark_unconfirmed``: ``uids`` are about to be sent to a hub that does
        not confirm edits (daql): kept in ``sat_meta`` ``unconfirmed`` (own commit, before
        the request goes out) with those of earlier marks still pending, so that a process
        stopped before the reply was stored puts them aside on its next handshake
        (:meth:`unconfirmed`) instead of sending them again."""
        self._writable()
        old = self.queue.get_meta("unconfirmed", []) or []
        keep = self.pending_among([u for u in old if isinstance(u, str)])
        self.queue.set_meta("unconfirmed", [u for u in old if u in keep] + list(uids))

    def unconfirmed(self) -> list[str]:
        """``SyncStore.unconfirmed``: the transactions sent to a hub that does not confirm
        edits whose answer was never stored (still pending here), in the order sent."""
        if self.read_only:
            return []
        old = self.queue.get_meta("unconfirmed", []) or []
        keep = self.pending_among([u for u in old if isinstance(u, str)])
        return [u for u in old if u in keep]

    def pending_same(self, evs: dict[str, list[Event]]) -> set[str]:
        """Those uids of ``evs`` whose pending transaction here is what the events (of the
        revision an audit names with that uid) hold (``SyncStore.pending_same``): another
        client's transaction under the same uid is not this one's ack."""
        op = self._open
        return {u for u, got in evs.items()
                if (e := op.get(u)) is not None and e.state == _PENDING
                and same_acts(self._project, e.trans.acts, got)}

    def _advance_bases(self, uids: Iterable[str], rev: Rev) -> set[str]:
        """Move pending transactions (of ``uids``) made before one of this satellite's own
        transactions on their records was acknowledged onto the replica's revision ``rev``,
        when no *other* change on their records since their base collides with them (the same
        rule the hub applies). Returns the uids moved (their ``_open`` entries are updated).

        Only transactions on records that just changed (or of a transaction just accepted)
        are asked about: the others' records have no new events, so moving them would change
        nothing the hub or the view decides.
        """
        todo = [(u, e) for u in uids
                if (e := self._open.get(u)) is not None and e.state == _PENDING
                and e.trans.base < rev]
        if not todo:
            return set()
        sigs = {s for _, e in todo for s in e.sigs}
        low = min(e.trans.base for _, e in todo)
        read = self.replica.read
        by_sig: dict[Sig, list[Later]] = {}
        if len(sigs) <= 64:
            for s in sigs:
                by_sig[s] = view_later(read, s, low)
        else:
            for ev in read.events(low, sorted({s.top for s in sigs})):
                sg = Sig(ev.top, ev.key)
                if sg in sigs:
                    by_sig.setdefault(sg, []).append(Later(ev))
        own = self.queue.accepted_among(x.ev.rev for ls in by_sig.values() for x in ls)
        if not own:
            return set()
        over = self.queue.overwrites_among(own)
        bases: dict[str, int] = {}
        for u, e in todo:
            base = e.trans.base
            mine = False
            ok = True
            for a in e.trans.acts:
                since = [x for x in by_sig.get(Sig(a.top, a.key), ()) if x.ev.rev > base]
                mine = mine or any(x.ev.rev in own for x in since)
                later = others_since(since, own, over)
                if conflict_of(a, later, None) is not None:
                    ok = False
                    break
            if ok and mine:
                bases[u] = rev
        if bases:
            if not self.read_only:  # read-only: the view moves them, the writer stores it
                self.queue.set_bases(bases)
            for u in bases:
                e = self._open[u]
                e.trans = dc_replace(e.trans, base=rev)
        return set(bases)

    def apply_sat(self, res: SatRes) -> None:
        self.write(res)
        self.written(res)

    def apply_update(self, upd: Update) -> None:
        self.write(upd)
        self.written(upd)

    def note_hub(self, acks: bool) -> None:
        """``SyncStore.note_hub``: whether the hub confirms edits (acks by uid), as its
        ``evt.stat`` said; kept in ``sat_meta`` ``hub_acks`` with the next stored reply (no
        commit of its own), so ``outpost status`` shows it without the holder."""
        if acks != self._hub_acks:
            self._hub_acks = acks
            if not self.read_only:
                self._put_meta({"hub_acks": acks})

    def trust_hub(self, trusted: bool) -> None:
        """``SyncStore.trust_hub``: whether the hub's events fit this satellite's schema (its
        schema version matched); when not (a daql hub serves none), :meth:`write` checks
        every event first (:meth:`_check_hub_events`)."""
        self._trust_hub = trusted

    def _check_hub_events(self, evs: Sequence[Event]) -> None:
        """Raise :class:`HubDataError` naming the first of ``evs`` (those after the replica's
        revision) that this satellite's schema refuses, or that changes or deletes a record
        the replica does not have (nothing is stored then)."""
        cur = self.replica.rev()
        fresh = [e for e in evs if e.rev > cur]
        if not fresh:
            return
        proj = self.project
        keys: dict[str, set[str]] = {}
        for e in fresh:
            if not proj.has(e.top):
                raise self._bad_event(e, f"its topic {e.top} is not in this satellite's schema")
            keys.setdefault(e.top, set()).add(e.key)
        have = {(t, k) for t, ks in keys.items() for k in self.replica.ledger.states_of(t, ks)}
        for e in fresh:
            m = proj.model(e.top)
            try:
                m.check_key(e.key)
                if e.cmd not in (Cmd.NEW, Cmd.MOD, Cmd.DEL):
                    raise ValidationError(f"unknown cmd {e.cmd!r}")
                m.check_arg(e.cmd, e.key, e.arg, stored=True)  # nested past the limit: taken
            except ValidationError as exc:
                raise self._bad_event(e, str(exc)) from exc
            sig = (e.top, e.key)
            if e.cmd != Cmd.NEW and sig not in have:
                raise self._bad_event(e, f"it changes record {e.top} {e.key}, which does not "
                                      "exist", "replica")
            if e.cmd == Cmd.DEL:
                have.discard(sig)
            else:
                have.add(sig)

    def _check_hub_values(self, evs: Sequence[Event]) -> None:
        """Raise :class:`HubDataError` naming the first of ``evs`` with a value its field
        cannot hold (:meth:`Model.check_stored_types`), from a hub whose schema version
        matched: its data, or something between it and this satellite, is broken or
        hostile. Nothing is stored (session 15: ``"lat": "north"`` was stored as received,
        and export, show, the app and every later edit of the record failed; a list for a
        scalar failed the commit with a message that blamed the disk)."""
        proj = self.project
        exact: dict[str, type] = {}
        top = ""
        for e in evs:
            arg = e.arg
            if not arg or type(arg) is not dict:
                continue
            if e.top != top:  # a reply's events come grouped by topic, mostly
                if not proj.has(e.top):
                    continue  # refused elsewhere (the replica knows no such topic)
                top = e.top
                exact = proj.model(top).stored_types
            for name, value in arg.items():
                if type(value) is not exact.get(name) and value is not None:
                    break  # inlined: what check_stored_types takes at a dict look-up
            else:
                continue
            why = proj.model(e.top).check_stored_types(arg)
            if why is not None:
                raise HubDataError(
                    f"the hub sent event {e.id} ({e.cmd} {e.top} {e.key} at revision "
                    f"{format_rev(e.rev)}) with a value this satellite's schema refuses: "
                    f"{why}. Nothing of that reply was stored and sync stopped: the hub "
                    "serves this satellite's schema version, so its data, or something "
                    "between it and this satellite (a proxy; use wss:// across networks), "
                    "is broken or hostile. Tell the hub's operator; sync again once it "
                    "is fixed")

    @staticmethod
    def _bad_event(e: Event, why: str, what: str = "schema") -> HubDataError:
        return HubDataError(
            f"the hub sent event {e.id} ({e.cmd} {e.top} {e.key} at revision "
            f"{format_rev(e.rev)}) that this satellite's {what} refuses: {why}. Nothing of "
            "that reply was stored and sync stopped: the hub's schema differs from this "
            "satellite's (this hub does not serve its schema version, so they could not be "
            "compared). Get the hub's schema from its operator, then `outpost connect URL "
            "--schema FILE --data NEWDIR` and `outpost carry THIS_DIR --data NEWDIR` copies "
            "the edits not synced yet into it")

    def _check_own_events(self, item: SatRes | Update) -> None:
        """Raise :class:`LostRevisionsError` when ``item`` takes the replica past the revision
        of an edit of this satellite the hub accepted (its ack stored, its events not yet:
        a catch-up cut short) without that revision's events: the hub lost the edit (its
        file was rolled back, e.g. a copy of an older file or a disk snapshot, and it has
        published since, so its revision passed the ack's) and storing the reply would show
        the edit confirmed here while the hub lacks it, for good (session 14). Nothing is
        stored; sync stops and the message names ``outpost carry --accepted``. The acks of
        ``item`` itself are not checked (their events come with it or after it). Reads the
        overlay's accepted receipts only (those ahead of the replica: usually none)."""
        waiting = list(self._accepted)
        if not waiting:
            return
        cur = self.replica.rev()
        if item.rev <= cur:
            return
        op = self._open
        mine = {a.uid for a in item.acks} if isinstance(item, SatRes) else set()
        have = {e.rev for e in item.evs}
        lost = sorted((e.rev, u) for u in waiting if (e := op.get(u)) is not None
                      and e.state == _ACCEPTED and e.trans.acts and cur < e.rev <= item.rev
                      and e.rev not in have and u not in mine)
        if not lost:
            return
        rev, uid = lost[0]
        with contextlib.suppress(OutpostError):  # the stop is said either way
            # from the first edit it lacks (session 16: from ``cur``, which also marked the
            # accepted edits before it whose events this reply brings: the hub holds them)
            self.note_lost(rev - 1)
        many = f" and {len(lost) - 1} more" if len(lost) > 1 else ""
        fix = new_dir_fix(lost=True, rejected=self.queue.count(ReceiptState.REJECTED))
        raise LostRevisionsError(
            f"the hub sent its changes up to revision {format_rev(item.rev)} without the edit "
            f"{uid}{many} it accepted from this replica at revision {format_rev(rev)}: the "
            "hub lost or reused revisions this replica holds (its file was rolled back to an "
            "older copy, e.g. a copy of last night's file or a disk or VM snapshot, and it "
            "has published since); nothing of them was stored, and the edit stays here "
            f"only. {fix[:1].upper()}{fix[1:]}")

    def write(self, item: SatRes | Update) -> None:
        """Store an ``evt.sat`` reply or a push in one commit, without notifying anyone.

        Safe on a worker thread (the sync client runs it there): it touches only the database
        (SQLAlchemy's pool gives the thread its own connection), never the overlay.
        """
        self._writable()
        if not self._trust_hub:
            self._check_hub_events(item.evs)
        else:
            self._check_hub_values(item.evs)
        self._check_own_events(item)
        meta = self._take_meta()
        if not self._marks_stale and self._may_mark(item):
            # in this commit: a reader between it and the marks' own does not trust them
            self._marks_stale = True
            meta[MARKS_STALE] = True
        try:
            if isinstance(item, SatRes):
                seq_revs: dict[int, int] | None = None
                if item.acks:
                    crash_point("sat.after_ack_before_record")
                    # the receipts' seq as the overlay holds them (a seq never changes; the
                    # dict is read, not changed, here): the acks need no look-up by uid.
                    # Built once, seq -> rev: what the queue stores (Queue.accept_seqs)
                    op = self._open
                    seq_revs = {e.seq: a.rev for a in item.acks
                                if (e := op.get(a.uid)) is not None}
                    if len(seq_revs) != len(item.acks):
                        seq_revs = None  # an ack of a uid not held here, or twice: by uid
                self.replica.apply(item.rev, item.evs, item.acks, item.rejects, item.audits,
                                   meta=meta, seq_revs=seq_revs)
                if item.more:
                    crash_point("sat.mid_catchup")
            else:
                self.replica.apply(item.rev, item.evs, audits=item.audits, meta=meta)
        except BaseException:
            self._put_meta(meta)  # not stored: keep for the next commit
            raise

    def _may_mark(self, item: SatRes | Update) -> bool:
        """Whether storing ``item`` may change the local conflict marks: it holds an event
        that is not one of the edits it acks (another's change) of a record a queued edit
        touches (a pending edit's mark is of its own records only). A replay of the user's
        own edits, acked in their reply, never does (no extra write), nor a catch-up of
        records no pending edit touches (merge review 14: any other's change set the flag
        whenever an edit was open, so a reader beside a running sync built its whole
        overlay: 5,000 pending edits, `outpost status` 0.19 s -> 3.56 s)."""
        if not item.evs or not self._open:
            return False
        own = {a.rev for a in item.acks} if isinstance(item, SatRes) else set()
        if self._qv_todo is not None:  # no overlay built (a writer has one): as if touched
            return any(e.rev not in own for e in item.evs)
        qv = self._qview  # read only, on the sync client's thread (write())
        return any(e.rev not in own and qv.touches(Sig(e.top, e.key)) for e in item.evs)

    def written(self, item: SatRes | Update) -> None:
        """After :meth:`write` (on the thread that owns the overlay): rebase the local queue on
        the new replica state and notify listeners."""
        receipts = isinstance(item, SatRes) and bool(item.acks or item.rejects)
        acked: dict[str, Rev] = {}
        if isinstance(item, SatRes):
            # write() marked these pending receipts accepted at the ack's revision (the only
            # writer of a receipt's state is write(), one item at a time, and nothing else
            # touches an accepted row's columns): their rows need not be read back
            op = self._open
            acked = {a.uid: a.rev for a in item.acks
                     if (e := op.get(a.uid)) is not None and e.state == _PENDING}
        self._after_hub(item.evs, receipts=receipts, acked=acked)
        if isinstance(item, SatRes) and item.rejects and not self.read_only:
            self._settle_same([r.uid for r in item.rejects if r.conflicts])

    def _settle_same(self, uids: Sequence[str]) -> list[str]:
        """Settle by themselves the just rejected transactions ``uids`` whose conflicting
        fields all hold their values already (:func:`~core.satellite.conflicts.settled_same`:
        both sides set lon to 9.9; user review 13 F4): as keep mine of what differs, a new
        transaction naming the rejected one (``extra`` ``{"resolves": uid, "settled": ...}``),
        or, with nothing left, marked resolved ``"same"`` (as keep theirs). Left to the user
        when a field changed again since (the replica no longer holds the user's value).
        Returns the uids settled."""
        done = []
        for uid in uids:
            rec = self.queue.receipt(uid)
            if rec is None or rec.state != ReceiptState.REJECTED or not settled_same(rec):
                continue
            acts = {(a.top, a.key): a for a in rec.acts}
            still = True
            for c in rec.conflicts:
                now = self.replica.read.state(c.top, c.key) or {}
                mine = acts[c.top, c.key].arg or {}
                still = still and all(same_value(now.get(f), mine[f]) for f in c.fields)
            if not still:
                continue
            try:
                self._check_writer()
                out = self._resolution(rec, Keep.MINE)
                if not out:
                    with self.queue._conn(None) as conn:
                        if not self.queue.resolve(uid, SAME, conn):
                            continue
                else:
                    trans = self._make_trans(out, new_uid(), uid, settled=True)
                    self._check_on_view(trans)
                    with self.queue._conn(None) as conn:
                        seq = self.queue.add(trans, auth=self._is_auth(trans), resolves=uid,
                                             conn=conn)
                        if not self.queue.resolve(uid, trans.uid, conn):
                            raise self._not_rejected(uid)
                    self._after_pub(trans, seq, also=rec.acts)
            except (ValidationError, ConflictError):
                continue  # not settled: the user resolves it as any other
            done.append(uid)
        if done:
            self._refresh(persist=False, changed=set())
            self._notify(Change(status=True, receipts=True,
                                records=self._sigs([a for u in done
                                                    if (r := self.queue.receipt(u)) is not None
                                                    for a in r.acts])))
        return done

    def _take_meta(self) -> dict[str, Any]:
        with self._meta_lock:
            meta, self._meta = self._meta, {}
        return meta

    def _put_meta(self, meta: dict[str, Any]) -> None:
        with self._meta_lock:
            self._meta = {**meta, **self._meta}

    def set_sync(self, info: SyncInfo) -> None:
        """Take the sync machine's status (called by the client after every input)."""
        old = self._info
        if info == old:
            self._record_status()  # the heartbeat, or a change held back
            return
        now = self._clock()
        stopped = info.phase == Phase.STOPPED
        if info.online != old.online or stopped != (old.phase == Phase.STOPPED):
            self._since = now
        if info.last_sync and info.last_sync != old.last_sync:
            self._last_sync = now
            self._hub_rev = max(self._hub_rev, info.hub_rev)
            self._put_meta({"last_sync": now, "hub_rev": self._hub_rev})
        self._info = info
        self._record_status()
        self._notify(Change(status=True))

    def changed(self) -> bool:
        """Read-only: whether the process that has the directory open committed since this
        satellite was opened (its reads may then not fit together: read again)."""
        return self.replica.changed()

    def close(self) -> None:
        meta = self._take_meta()
        if meta and not self.read_only:
            try:
                with self.queue._conn(None) as conn:
                    for name, value in meta.items():
                        self.queue.set_meta(name, value, conn)
            except StorageError:
                pass  # display values only (last sync, hub rev): not worth failing a close
        try:
            if self._status_out is not None:
                self._status_out.close()  # before the lock goes: a reader sees "closed"
            self.replica.close()
        finally:
            if self._lock is not None:
                self._lock.release()

    def dir_gone(self) -> str:
        """Why the data directory is no longer where it was opened ("": it is): deleted,
        moved or renamed away, its drive removed, or its ``satellite.db`` replaced. SQLite
        keeps writing to the file it has open: a deleted one took every save and lost them
        all at quit, a moved one failed only with "unable to open database file" on the next
        connection (session 16). One ``stat``: checked before each write and status."""
        if self._file_id is None:
            return ""
        now = _file_id(self.data.db_file)
        if now == self._file_id:
            return ""
        path = self.data.path
        what = (f"the data directory {path} is gone" if not path.is_dir() else
                f"the replica {self.data.db_file} is gone" if now is None else
                f"the replica {self.data.db_file} was replaced by another file")
        return (f"{what} (deleted, moved or renamed, or its drive removed) while Outpost had "
                "it open: nothing can be stored there any more, so nothing was saved. Put "
                f"the folder back at {path} (plug the drive in again), then quit and start "
                "Outpost again; the edits saved before are in the folder wherever it is now "
                "(lost if it was deleted)")

    def _here(self) -> None:
        """Raise StorageError (:meth:`dir_gone`) when the directory is no longer there."""
        gone = self.dir_gone()
        if gone:
            raise StorageError(gone, kind="gone")

    # -- internals ---------------------------------------------------------------------------

    def _writable(self) -> None:
        if self.read_only:
            raise ConfigError(f"the satellite in {self.data.path} was opened read-only: "
                              "open it without read_only to change it")
        self._here()

    def _make_trans(self, acts: Sequence[Action], uid: str, resolves: str,
                    base: Rev | None = None, settled: bool = False) -> Trans:
        if not acts:
            raise ValidationError("no actions: a transaction needs at least one action")
        for a in acts:
            self._project.check_action(a)
        extra: dict[str, Any] | None = {"resolves": resolves} if resolves else None
        if extra is not None and settled:
            extra["settled"] = SETTLED_EXTRA
        rev = self.replica.rev()
        if base is None:
            base = rev
        elif not 0 <= base <= rev:
            try:
                shown = format_rev(base)
            except ValueError:  # before 0001 or after 9999: as given
                shown = str(base)
            raise ValidationError(f"base revision {shown} is not between 0 and the replica's "
                                  f"revision {format_rev(rev)}")
        elif base < rev and self._only_own_since(acts, base):
            base = rev
        trans = Trans(tuple(acts), base=base, created=self._clock(), extra=extra, uid=uid)
        size = len(dumps(enc_trans(trans)))
        if size > MAX_TRANS_BYTES:
            raise ValidationError(
                f"transaction too large: {len(acts)} actions, {size // 1024} KiB encoded (at most "
                f"{MAX_TRANS_BYTES // 1024} KiB): split it into smaller transactions")
        return trans

    def clashes_since(self, acts: Sequence[Action], base: Rev) -> list[Conflict | None]:
        """For each of ``acts``, its conflict with a change on its record after ``base`` that
        the replica holds and this satellite did not make (what the hub would find, as far
        as the replica knows), or ``None``: one read per topic. ``outpost import`` puts a
        row that clashes in a transaction of its own (the hub rejects a transaction whole)."""
        own = self.queue.accepted_revs(base)
        by_top: dict[str, list[str]] = {}
        for a in acts:
            by_top.setdefault(a.top, []).append(a.key)
        since = {(top, k): evs for top, keys in by_top.items()
                 for k, evs in self.replica.read.events_of(top, keys, base).items()}
        # the user's own events of edits a daql hub applied over a colleague's change are
        # stored rejected (conflicts after the fact), not accepted: their own too
        over = self.queue.overwrites_among(
            e.rev for evs in since.values() for e in evs if e.rev not in own)
        own |= over
        return [conflict_of(a, others_since([Later(e) for e in since.get((a.top, a.key), ())],
                                            own, over), None) for a in acts]

    def _only_own_since(self, acts: Sequence[Action], base: Rev) -> bool:
        """Whether no change after ``base`` but this satellite's own accepted ones collides
        with ``acts`` (then the edit can take the replica's revision as its base: otherwise
        the hub would see the user's own earlier edit as a conflict; cf. _advance_bases)."""
        return all(c is None for c in self.clashes_since(acts, base))

    def _is_auth(self, trans: Trans) -> bool:
        auth = self.auth_topics
        return bool(auth) and all(a.top in auth for a in trans.acts)

    def _check_on_view(self, trans: Trans,
                       made: dict[Sig, dict[str, Any] | None] | None = None, *,
                       shown: bool = False) -> Mapping[Sig, Mapping[str, Any] | None]:
        """Raise ValidationError when ``trans`` does not apply on what the user sees; else
        return the states of its records after it (raw, as :func:`plan` gives them).
        ``made``: the records earlier transactions of the same call (:meth:`pub_many`, not
        yet in the view) left, read before the view and updated with what ``trans`` makes.
        ``shown``: on the overlay built so far (records no unapplied edit touches)."""
        states = self._seen((Sig(a.top, a.key) for a in trans.acts), shown=shown)
        if made:
            states.update((sg, st) for sg, st in made.items() if sg in states)
        try:
            p = plan(self._project, trans, last_rev=trans.base, last_id=0, states=states,
                     later={}, now=trans.base)
        except ConflictError as exc:  # cannot happen with base == rev; keep the type clear
            raise ValidationError(str(exc)) from exc
        if made is not None:
            made.update(p.states)
        return p.states

    def _seen(self, sigs: Iterable[Sig], *, shown: bool = False,
              ) -> dict[Sig, dict[str, Any] | None]:
        """What the user sees of these records now: the pending edits' state, else the
        replica's (one read per topic: an import's transaction names 500 records).
        ``shown``: of the overlay built so far (:attr:`_shown`), not the whole one."""
        out: dict[Sig, dict[str, Any] | None] = {}
        ask: dict[str, list[str]] = {}  # records the pending edits do not change, by topic
        states = (self._shown if shown else self._ov).states
        for s in sigs:
            if s in out:
                continue
            if s in states:
                out[s] = states[s]
            else:
                out[s] = None
                ask.setdefault(s.top, []).append(s.key)
        for top, keys in ask.items():
            for key, st in self.replica.read.states_of(top, keys).items():
                out[Sig(top, key)] = st
        return out

    # a read-only satellite's overlay not built yet: (the open transactions not applied
    # yet, in queue order, the replica's revision), built at the first use of _qv (see
    # _refresh); with overlay_later (the app) also in steps (build_overlay)
    _qv_todo: tuple[list[Queued], Rev] | None = None
    # of _qv_todo's transactions, the outcomes a staged import's steps checked (uid -> the
    # states of its records after it; see QueueView.update's ``known``), taken as they go in
    _todo_known: dict[str, Mapping[Sig, Mapping[str, Any] | None]]
    _later = False
    # overlay_later: edits left out of the outbox until the steps end (build_overlay)
    _held = False
    # overlay_later: whether the end of the build is still to be told (build_overlay)
    _unsaid = False

    @property
    def _qv(self) -> QueueView:
        """The overlay of the open queue (:class:`QueueView`), built here (the rest of it)
        at its first use in a read-only satellite or one opened with ``overlay_later`` (see
        :meth:`_refresh`): whatever needs the whole overlay (a save's check, hub data, a
        resolve, the conflicts) gets it whole."""
        todo = self._qv_todo
        if todo is not None:
            self._qv_todo = None
            ups, rev = todo
            self._qview.update(self.replica.read, ups, rev=rev)
            self._unbuilt = {}
            self._todo_known = {}
        return self._qview

    @_qv.setter
    def _qv(self, view: QueueView) -> None:
        self._qview = view
        self._qv_todo = None
        self._unbuilt = {}
        self._todo_known = {}

    @property
    def _shown(self) -> Overlay:
        """The overlay the record reads show: the whole one (built here if need be), but
        while an ``overlay_later`` satellite builds it in steps, what is built so far (the
        records of the rest are marked ``applying``: :meth:`_view`)."""
        if self._later and self._qv_todo is not None:
            return self._qview.ov
        return self._ov

    def build_overlay(self, budget: float = 0.05, *, whole: bool = False) -> bool:
        """Build more of the overlay of the pending edits of a satellite opened with
        ``overlay_later``: transactions in queue order until ``budget`` seconds of CPU
        were spent (at least one; ``whole``: all). True once it is whole *and* told: the
        last call stores the local conflict marks (when they changed) and sends one change
        notice with every record the build touched (``status`` and ``receipts`` too), so
        the window's rows, form and counts follow; False: call again.

        A QueueView fed its transactions in queue order, a few at a time, ends equal to one
        fed them at once (each step checks the new ones, appended: no earlier outcome
        depends on them; :meth:`QueueView.update`, ``tests/satellite/test_view_incremental.py``).
        Anything that needs the whole overlay meanwhile (a save, hub data, a resolve, the
        conflicts, the status's local conflicts use the stored marks) builds the rest at
        once (:attr:`_qv`); this call then only tells."""
        todo = self._qv_todo
        if todo is not None:
            ups, rev = todo
            if whole:
                _ = self._qv
            else:
                start = time.process_time()
                n = 0
                known = self._todo_known
                while n < len(ups):
                    n += 1
                    step = ups[n - 1:n]
                    kn = {q.uid: known.pop(q.uid) for q in step if q.uid in known}
                    self._qview.update(self.replica.read, step, rev=rev, known=kn or None)
                    if time.process_time() - start >= budget:
                        break
                left = self._unbuilt
                for q in ups[:n]:
                    for sg in sigs_of(q.trans):
                        # a record a later transaction touches too stays marked
                        if left[sg] == 1:
                            del left[sg]
                        else:
                            left[sg] -= 1
                del ups[:n]
                if ups:
                    return False
                self._qv_todo = None
                self._unbuilt = {}
                self._todo_known = {}
        if self._held:
            # edits held back from the outbox while applied (an import's, a save during
            # the steps): sent now (also when something built the rest at once meanwhile:
            # the window calls this until it says True)
            self._held = False
            self._outbox = self._outbox_list = None
            if self.on_local is not None:
                self.on_local()
        if not self._unsaid:
            return True
        self._unsaid = False
        if not self.read_only and \
                {u: err for u, (err, _) in self._ov.conflicts.items()} != self._marks:
            self._store_marks()
        recs: dict[str, set[str]] = {}
        for e in self._open.values():
            for sg in e.sigs:
                recs.setdefault(sg.top, set()).add(sg.key)
        self._notify(Change(records={t: frozenset(k) for t, k in recs.items()}, status=True,
                            receipts=True))
        return True

    def applying(self) -> int:
        """How many pending transactions are not applied to what the reads show yet (0 once
        the overlay is built; ``overlay_later``): the app says "applying N unsynced
        edits…"."""
        todo = self._qv_todo
        return len(todo[0]) if self._later and todo is not None else 0

    def _refuse_applying(self, acts: Iterable[Action]) -> None:
        """An edit of a record whose unsynced edit is not applied to what the window shows
        yet (``overlay_later``, the build going on) was made on a value without that edit:
        refused, nothing queued. Once the edit is applied the record's change notice comes
        (the form then says what changed under its typing), and the save can be made again.

        Raises:
            ValidationError: naming the record and what to do.
        """
        if not self._unbuilt or self._qv_todo is None:
            return
        for a in acts:
            if Sig(a.top, a.key) in self._unbuilt:
                raise ValidationError(
                    f"{a.top} {a.key} has an unsynced edit that is still being applied "
                    f"(applying {self.applying():,} unsynced edits…): nothing was saved, "
                    "as what you saw did not show that edit yet; look at the record again "
                    "once it shows its pending edit (a moment), then save again")

    @property
    def _ov(self) -> Overlay:
        return self._qv.ov

    def overlay_built(self) -> bool:
        """Whether the overlay of the pending edits is built: a read-only satellite builds
        it at the first read that needs it (a record's fields, the local conflicts), not at
        open, so that `outpost status` and other counts do not pay for the whole queue."""
        return self._qv_todo is None

    def _building(self) -> bool:
        """Whether the app is building the overlay in steps (``overlay_later``, not whole
        yet): :meth:`pub` then adds a save of records no unapplied edit touches to what is
        built (it refuses one of such records: :meth:`_refuse_applying`)."""
        # an empty todo (a queue empty at open) is no build: the window runs no steps that
        # would release what a save held back (the app on a daql hub sent nothing)
        return self._later and bool(self._qv_todo and self._qv_todo[0]) and not self.read_only

    def _after_pub(self, trans: Trans, seq: int, also: Sequence[Action] = (), *,
                   into: QueueView | None = None) -> None:
        # extend the overlay with the new transaction only: O(its records), not a rebase;
        # ``into``: the overlay built so far (pub while building it in steps): not sent
        # before the steps end (the hub's answer would build the rest at once; an import's
        # steps run while the sync does), as an import's transactions (_after_pub_many)
        if into is not None:
            self.outbox()  # computed without it
        e = _Open(seq, _PENDING, 0, self._is_auth(trans), trans, sigs_of(trans))
        self._open[trans.uid] = e
        (into if into is not None else self._qv).update(self.replica.read, [e.queued()],
                                                        rev=self.replica.rev())
        if into is not None:
            self._outbox_cut = self._held = True
        elif self._outbox is not None and not self._outbox_cut:
            sigs = sigs_of(trans)
            if self._outbox_sigs is None:
                self._outbox_sigs = {sg for u in (*self._outbox, *self._accepted)
                                     for sg in self._open[u].sigs}
            if self._outbox_sigs.isdisjoint(sigs):
                self._outbox[trans.uid] = trans
                self._outbox_list = None
                self._outbox_sigs.update(sigs)
            else:
                self._outbox_cut = True
        self._notify(Change(records=self._sigs((*trans.acts, *also)), status=True,
                            receipts=True))
        if self.on_local is not None:
            self.on_local()

    def _after_pub_many(self, done: Sequence[tuple[Trans, int, bool]],
                        known: Mapping[str, Mapping[Sig, Mapping[str, Any] | None]] | None
                        = None, *, steps: bool = False) -> None:
        """:meth:`_after_pub` of several new transactions ``(trans, seq, auth)`` in queue
        order: one overlay update and one change notice for all (a staged import's 40
        transactions of 500 rows: one refresh of the window, not 40). ``known``: their
        records' states as :class:`Staged` checked them (see :meth:`QueueView.update`).
        ``steps`` (the app, ``overlay_later``): added to the overlay in steps by
        :meth:`build_overlay`, as the pending edits at open, their records marked applying
        meanwhile (session 15: the end of a 50,000-row import checked them on the UI thread
        at once, seconds under load)."""
        steps = steps and self._later and not self.read_only
        if steps:
            self.outbox()  # computed without them (held back below until applied)
        entries = []
        for trans, seq, auth in done:
            e = self._open[trans.uid] = _Open(seq, _PENDING, 0, auth, trans, sigs_of(trans))
            entries.append(e)
        rev = self.replica.rev()
        # a staged import's transactions keep the base of their step: an ack of the user's
        # own earlier edit of their records that arrived between the steps moves them, as it
        # moves queued ones (else the import would conflict with the user's own edit)
        if self._advance_bases([e.trans.uid for e in entries], rev):
            known = None  # moved: checked again on their new base
        if steps:
            todo = self._qv_todo
            if todo is None:
                self._qv_todo = todo = ([], rev)
            if todo[1] != rev:  # cannot be: hub data builds the rest at once (_qv)
                _ = self._qv
                self._qv_todo = todo = ([], rev)
            todo[0].extend(e.queued() for e in entries)
            left = self._unbuilt
            for e in entries:
                for sg in e.sigs:
                    left[sg] = left.get(sg, 0) + 1
            if known:
                self._todo_known.update(known)
            self._unsaid = True
        else:
            self._qv.update(self.replica.read, [e.queued() for e in entries], rev=rev,
                            known=known)
        recs: dict[str, set[str]] = {}
        if steps:
            # not sent before they are applied to the overlay: the hub's answer would build
            # the rest at once (the stall the steps avoid); the outbox is computed again at
            # the steps' end (build_overlay), or at the next change of it, with them
            self._outbox_cut = self._held = True
        for e in entries:
            trans = e.trans
            if not steps and self._outbox is not None and not self._outbox_cut:
                if self._outbox_sigs is None:
                    self._outbox_sigs = {sg for u in (*self._outbox, *self._accepted)
                                         for sg in self._open[u].sigs}
                if self._outbox_sigs.isdisjoint(e.sigs):
                    self._outbox[trans.uid] = trans
                    self._outbox_list = None  # outbox() gives a new list (as _after_pub)
                    self._outbox_sigs.update(e.sigs)
                else:
                    self._outbox_cut = True
            for a in trans.acts:
                recs.setdefault(a.top, set()).add(a.key)
        # building in steps: the last step stores the local conflict marks (build_overlay)
        if not steps and any(e.trans.uid in self._ov.conflicts for e in entries):
            self._store_marks()
        self._notify(Change(records={t: frozenset(k) for t, k in recs.items()}, status=True,
                            receipts=True))
        if self.on_local is not None:
            self.on_local()

    def _after_hub(self, evs: Sequence[Any], receipts: bool,
                   acked: Mapping[str, Rev] | None = None) -> None:
        # Sig(top, key) without the named tuple's Python __new__ (a replay's reply: 1,000)
        new, sig = tuple.__new__, Sig
        changed = {new(sig, (e.top, e.key)) for e in evs}
        touched = self._refresh(persist=True, changed=changed, acked=acked)
        sigs = changed | touched if touched else changed  # a replay's: the same records
        tops = set(map(_TOP, sigs))
        records: dict[str, frozenset[str]]
        if len(tops) == 1:  # one topic (a replay's reply): its keys taken in C
            records = {tops.pop(): frozenset(map(_KEY, sigs))}
        else:
            recs: dict[str, set[str]] = {}
            for sg in sigs:
                recs.setdefault(sg.top, set()).add(sg.key)
            records = {t: frozenset(k) for t, k in recs.items()}
        self._notify(Change(records=records, status=True,
                            receipts=receipts or bool(self._ov.conflicts)))

    def _refresh(self, persist: bool, changed: set[Sig] | None = None,
                 acked: Mapping[str, Rev] | None = None) -> set[Sig]:
        """Bring the in-memory queue and the view up to date; persist local conflict marks.

        ``changed``: the records hub data just changed; then only the receipts written since
        the last refresh are read (:meth:`Queue.take_changed`) and only the transactions they
        and ``changed`` can affect are checked again (:class:`QueueView`). ``None``: read the
        open part of the queue and rebase all of it (on open). ``acked``: receipts pending in
        :attr:`_open` that the stored reply marked accepted (uid -> revision), known without
        reading them. Returns the records whose view may have changed.
        """
        rev = self.replica.rev()
        read = self.replica.read
        if changed is None:
            self.queue.take_changed(read=False)  # before the read: later writes are seen
            rows = self.queue.rows([ReceiptState.PENDING, ReceiptState.REJECTED],
                                   accepted_after=rev)
            self._open = {r["uid"]: _Open.of(r) for r in rows}
            self._accepted = {u for u, e in self._open.items() if e.state == _ACCEPTED}
            self._rejects = {u for u, e in self._open.items() if e.state == _REJECTED}
            self._qv = QueueView()
            self._advance_bases(list(self._open), rev)
            ups = [e.queued() for e in self._open.values() if e.state != _REJECTED]
            if (self.read_only and not persist and not self._marks_stale) or self._later:
                # a reader (`outpost status`, `show`, `conflicts`): the overlay is built at
                # its first use (:attr:`_qv`): a count or the status needs none (100 pending
                # transactions of 500 rows: 1.2 s of CPU at every open, session 13); the app
                # (``overlay_later``): in steps after its window appeared (build_overlay)
                self._qv_todo = (ups, rev)
                self._unbuilt = {}
                if self._later:
                    left = self._unbuilt
                    for q in ups:
                        for sg in sigs_of(q.trans):
                            left[sg] = left.get(sg, 0) + 1
                self._unsaid = self._later
                touched = set()
            else:
                touched = self._qview.update(read, ups, rev=rev)
            self._outbox = None
            self._rejected_map()
        else:
            touched = self._refresh_changed(rev, changed, acked)
        if persist and self._qv_todo is None and (
                self._marks_stale
                or {u: err for u, (err, _) in self._ov.conflicts.items()} != self._marks):
            self._store_marks()
        return touched

    def _refresh_changed(self, rev: Rev, changed: set[Sig],
                         acked: Mapping[str, Rev] | None = None) -> set[Sig]:
        read = self.replica.read
        rows = self.queue.take_changed(known=acked or ())
        upd: set[str] = set()        # entries new or changed (in the view: upsert)
        gone: set[str] = set()       # left the view (accepted and replicated, rejected, ...)
        newly_acked: list[tuple[Sig, ...]] = []
        # _open is in queue order: its last entry has the highest seq
        last = next(reversed(self._open.values())).seq if (rows or acked) and self._open else 0
        alone: set[Sig] = set()      # records left by a transaction alone on them
        dropped: list[str] = []      # those transactions (out of the view already)
        if acked:
            op = self._open
            # acknowledged and replicated by the same write (a replay's reply holds its own
            # transactions' events): they leave the open queue at once, as the loop below
            # would decide for their rows (no row made for them)
            now_in = (list(acked) if max(acked.values()) <= rev  # every one (a replay's)
                      else [u for u, at in acked.items() if at <= rev])
            # those that were the only queued transaction on their records: out of the view
            # now, and no other transaction's base or outcome depends on them
            alone, kept = self._qv.drop_alone_many(now_in)
            if len(kept) < len(now_in):
                ks = set(kept)
                dropped = [u for u in now_in if u not in ks] if kept else now_in
            for u in kept:
                newly_acked.append(op[u].sigs)
                gone.add(u)
            for u in now_in:
                del op[u]
            if len(now_in) < len(acked):
                for u, at in acked.items():
                    if at > rev:
                        e = op[u]
                        rows.append({"seq": e.seq, "uid": u, "base": e.trans.base,
                                     "state": _ACCEPTED, "rev": at, "auth": e.auth})
        unseen = [r["uid"] for r in rows if r["uid"] not in self._open]
        if unseen:
            # receipts this process holds nothing of (e.g. accepted ones it had dropped): all
            # their columns, actions included
            full = {r["uid"]: r for r in self.queue.rows_of(unseen)}
            rows = [full.get(r["uid"], r) for r in rows]
        rejects_changed = False
        resort = False
        for r in rows:
            uid = r["uid"]
            old = self._open.get(uid)
            state = r["state"]
            keep = state in (_PENDING, _REJECTED) or (state == _ACCEPTED and
                                                      int(r["rev"] or 0) > rev)
            if state == _ACCEPTED and (old is None or old.state != _ACCEPTED):
                newly_acked.append(old.sigs if old is not None else sigs_of(Queue.trans_of(r)))
            if (old is not None and old.state == _REJECTED) or state == _REJECTED:
                rejects_changed = True
            if not keep:
                if old is not None:
                    del self._open[uid]
                    gone.add(uid)
                continue
            if old is None:
                e = _Open.of(r)
                resort = resort or e.seq < last
            else:
                base = int(r["base"])
                t = old.trans if base == old.trans.base else dc_replace(old.trans, base=base)
                e = _Open(old.seq, state, int(r["rev"] or 0), bool(r["auth"]), t, old.sigs)
                if old.same(e):
                    continue
            self._open[uid] = e
            if state == _REJECTED:
                gone.add(uid)
            else:
                upd.add(uid)
        if resort:
            self._open = dict(sorted(self._open.items(), key=lambda kv: kv[1].seq))
        self._accepted = {u for u in self._accepted | upd
                          if u in self._open and self._open[u].state == _ACCEPTED}
        for u in [u for u in self._accepted if self._open[u].rev <= rev]:
            # acknowledged earlier, now replicated: it is part of the replica
            del self._open[u]
            self._accepted.discard(u)
            gone.add(u)
        # bases first: else an edit would be marked as colliding with this satellite's own
        # earlier edit and left out of what the user sees
        if alone:
            changed = changed - alone  # no queued transaction is on them any more
        near = set(changed)
        for sigs in newly_acked:
            near.update(sigs)
        moved = self._advance_bases(self._qv.on(near), rev) if near else set()
        upd |= moved
        if upd or gone or dropped:
            self._outbox_after(upd | gone, dropped)
        ups = sorted((u for u in upd if u in self._open), key=lambda u: self._open[u].seq)
        touched = self._qv.update(read, [self._open[u].queued() for u in ups],
                                    gone | (upd - set(ups)), changed, rev=rev)
        if alone:
            touched |= alone
        if rejects_changed:
            before = set(self._rejected)
            self._rejects = {u for u in self._rejects | {r["uid"] for r in rows}
                             if u in self._open and self._open[u].state == _REJECTED}
            self._rejected_map()
            touched |= before | set(self._rejected)
        return touched

    def _outbox_after(self, uids: set[str], left: Sequence[str] = ()) -> None:
        """Update the cached outbox after the receipts ``uids`` changed and the receipts
        ``left`` left the open queue (acked and replicated: a replay's reply drops its 1,000,
        no look-up each). While it holds every pending transaction (no record repeats: the
        common case) that is O(len(uids) + len(left)) plus a filter of the list; otherwise
        it is computed again when next asked."""
        ob = self._outbox
        self._outbox_list = None
        if ob is None or self._outbox_cut:
            self._outbox = None
            return
        self._outbox_sigs = None  # computed again when a new edit needs it
        for u in uids:
            e = self._open.get(u)
            if e is not None and e.state == _PENDING:
                if u not in ob:
                    self._outbox = None  # a pending one it did not hold: compute again
                    return
                ob[u] = e.trans  # e.g. its base moved
            elif u in ob:
                del ob[u]
        pop = ob.pop
        for u in left:
            pop(u, None)

    def _rejected_map(self) -> None:
        rejected: dict[Sig, list[str]] = {}
        for u in sorted(self._rejects, key=lambda u: self._open[u].seq):
            for sg in self._open[u].sigs:
                rejected.setdefault(sg, []).append(u)
        self._rejected = rejected

    def _store_marks(self) -> None:
        marks = {u: err for u, (err, _) in self._ov.conflicts.items()}
        if self._marks_stale:  # checked against what was stored: readers trust them again
            with self.queue._conn(None) as conn:
                self.queue.set_local(marks, conn)
                self.queue.set_meta(MARKS_STALE, False, conn)
            self._marks_stale = False
        else:
            self.queue.set_local(marks)
        self._marks = marks

    # pending transactions a reader checked for a part of its overlay (_overlay_of)
    _part_cost = 0

    def _overlay_of(self, top: str, keys: Sequence[str] | None = None) -> Overlay:
        """The overlay as far as the records of ``top`` (only ``keys`` of it, when given)
        need it: a reader whose overlay is not built (`outpost show TOPIC [KEY]`) checks only
        the pending transactions touching those records and, back in queue order, every
        earlier one touching a record of one taken (what its outcome depends on: the states
        its records are left in by the earlier transactions on them; nothing else: the rules
        read no other record), in a view of their own: these records' entries are those of
        the whole overlay (``tests/satellite/test_show_part14.py``). Before, `show` built the
        overlay of every pending edit (3.1-3.2 s for one key beside 100 pending transactions
        of 500 rows, review 13). Once such parts have checked as many transactions as the
        queue holds, the whole overlay is built instead (many calls cost at most twice it), and
        a part that is the whole queue is built as the whole overlay.
        Otherwise (built, or the app's window building it): :attr:`_shown`."""
        todo = self._qv_todo
        if todo is None or self._later or self._part_cost >= len(todo[0]):
            return self._shown
        ups, rev = todo
        want = set(keys) if keys is not None else None
        need: set[Sig] = set()
        part: list[Queued] = []
        for q in reversed(ups):
            sigs = self._open[q.uid].sigs if q.uid in self._open else sigs_of(q.trans)
            for sg in sigs:
                if sg in need or (sg.top == top and (want is None or sg.key in want)):
                    part.append(q)
                    need.update(sigs)
                    break
        if len(part) == len(ups):
            return self._ov  # all of it: built as the whole overlay, once
        self._part_cost += max(len(part), 1)
        view = QueueView()
        if part:
            part.reverse()
            view.update(self.replica.read, part, rev=rev)
        return view.ov

    def _view(self, top: str, key: str, confirmed: Mapping[str, Any] | None,
              ov: Overlay | None = None) -> RecordView:
        s = Sig(top, key)
        ov = self._shown if ov is None else ov
        fields = ov.states.get(s, confirmed)
        conflict = tuple(ov.conflict_sigs.get(s, ())) + tuple(self._rejected.get(s, ()))
        return RecordView(top, key, fields, confirmed, ZERO_REV,
                          tuple(ov.pending.get(s, ())), conflict, s in self._unbuilt)

    def _with_local(self, r: Receipt) -> Receipt:
        if r.state == ReceiptState.PENDING and not r.err and self._qv_todo is not None:
            # a reader whose overlay is not built: the writer stored no local conflict mark
            # on it (it stores them whenever they change), so it is none; `outpost
            # conflicts` beside 100 pending imports built the whole overlay for nothing
            return r
        if r.state == ReceiptState.PENDING and r.uid in self._ov.conflicts:
            from dataclasses import replace

            err, conflicts = self._ov.conflicts[r.uid]
            return replace(r, err=err, conflicts=conflicts)
        return r

    def _resolution(self, rec: Receipt,
                    keep: Keep | Mapping[str, Mapping[str, Keep]]) -> list[Action]:
        """The actions that carry out a resolution on the current view."""
        if keep == Keep.THEIRS:
            return []
        if not isinstance(keep, Keep):
            self._check_choice(rec, keep)
        out: list[Action] = []
        seen = self._seen(Sig(a.top, a.key) for a in rec.acts)
        for a in rec.acts:
            arg = dict(a.arg or {})
            cur = seen[Sig(a.top, a.key)]
            if not isinstance(keep, Keep):
                choice = keep.get(f"{a.top} {a.key}", {})
                if a.cmd != Cmd.DEL:
                    # a mod, a new that collided with a record created meanwhile (a mod of
                    # the fields kept as mine), or a new with no record now: only the fields
                    # kept as mine are sent (a field unticked on a new record is not)
                    arg = {f: v for f, v in arg.items() if choice.get(f) == Keep.MINE}
                    if not arg:
                        continue
                elif Keep.MINE not in choice.values():
                    continue  # a delete kept as theirs: the record stays
            if a.cmd == Cmd.DEL:
                if cur is not None:
                    out.append(Action(a.top, a.key, Cmd.DEL))
            elif cur is None:
                # a record deleted since is recreated as my edit saw it; a new one (under
                # its key, or keep both's new key) has only its own fields
                before = ({} if a.cmd == Cmd.NEW else
                          self.replica.read.state(a.top, a.key, rec.base) or {})
                full = {k: v for k, v in {**before, **arg}.items() if v is not None}
                if not isinstance(keep, Keep):
                    self._check_required(rec, a, full)
                out.append(Action(a.top, a.key, Cmd.NEW, full))
            else:
                delta = {k: v for k, v in arg.items() if cur.get(k) != v}
                if delta:
                    out.append(Action(a.top, a.key, Cmd.MOD, delta))
        return out

    def _undo_overwrite(self, rec: Receipt,
                        keep: Keep | Mapping[str, Mapping[str, Keep]]) -> list[Action]:
        """The actions resolving ``rec``, an edit the hub applied over a colleague's change
        (:func:`core.satellite.api.overwrote`), on the current view: keep mine nothing (the
        hub has it); keep theirs, for each change it overwrote (its conflicts), their values
        back (the record's state at their change ``c.rev``): a ``mod`` of the fields they set
        (per field: those kept theirs), a record deleted over their change created again as
        they left it. A value that is theirs already is not sent."""
        if not isinstance(keep, Keep):
            self._check_choice(rec, keep)
        out: list[Action] = []
        for c in rec.conflicts:
            if isinstance(keep, Keep):
                back = keep == Keep.THEIRS
                fields = list(c.fields)
            else:
                choice = keep.get(f"{c.top} {c.key}", {})
                fields = [f for f in c.fields if choice.get(f) == Keep.THEIRS]
                back = bool(fields) or (not c.fields and Keep.THEIRS in choice.values())
            if not back:
                continue
            theirs = self.replica.read.state(c.top, c.key, c.rev) or {}
            now = self._seen([Sig(c.top, c.key)])[Sig(c.top, c.key)]
            if c.cmd == Cmd.DEL or now is None:
                if now is None:
                    full = {k: v for k, v in theirs.items() if v is not None}
                    if full:
                        out.append(Action(c.top, c.key, Cmd.NEW, full))
                continue
            delta = {f: theirs.get(f) for f in fields if now.get(f) != theirs.get(f)}
            if delta:
                out.append(Action(c.top, c.key, Cmd.MOD, delta))
        return out

    def _check_required(self, rec: Receipt, a: Action, full: Mapping[str, Any]) -> None:
        """A per-field choice cannot leave out a required field of a record it creates (the
        conflicts view shows those ticked and disabled).

        Raises:
            ValidationError: naming the field, the record and the fix.
        """
        m = self._project.model(a.top)
        for f in m.fields:
            if f.required and f.default is None and full.get(f.name) is None:
                raise ValidationError(
                    f"field {f.name!r} of {a.top} {a.key} is required and this resolution "
                    f"creates the record (transaction {rec.uid}): keep {f.name!r} as mine, "
                    "or keep theirs to drop the whole edit; nothing was resolved")

    def _check_choice(self, rec: Receipt, keep: Mapping[str, Mapping[str, Keep]]) -> None:
        """A per-field choice names only records of the transaction, and of each only the
        fields its edit has (a delete: fields of the topic), each kept ``mine`` or
        ``theirs``: a mistyped name would silently be kept as theirs, dropping the user's
        value.

        Raises:
            ValidationError: a record, field or choice the transaction does not have.
        """
        acts = {f"{a.top} {a.key}": a for a in rec.acts}
        for sig, choice in keep.items():
            a = acts.get(sig)
            if a is None:
                raise ValidationError(
                    f"transaction {rec.uid} has no edit of {sig!r}: its records are "
                    f"{', '.join(repr(s) for s in acts)}; nothing was resolved")
            if a.cmd == Cmd.DEL:
                known = (self._project.model(a.top).field_names()
                         if self._project.has(a.top) else [])
            else:
                known = list(dict.fromkeys([*(a.arg or {}), *(
                    f for c in rec.conflicts if (c.top, c.key) == (a.top, a.key)
                    for f in c.fields)]))
            for name, k in choice.items():
                if name not in known:
                    raise ValidationError(
                        f"field {name!r} is not in transaction {rec.uid}'s {a.cmd.value} of "
                        f"{sig}: its fields are {', '.join(known) or 'none'}; nothing was "
                        "resolved")
                if k not in (Keep.MINE, Keep.THEIRS):
                    raise ValidationError(
                        f"{k!r} for field {name!r} of {sig} is not a choice: keep 'mine' or "
                        "'theirs'; nothing was resolved")

    @staticmethod
    def _sigs(acts: Sequence[Action]) -> dict[str, frozenset[str]]:
        out: dict[str, set[str]] = {}
        for a in acts:
            out.setdefault(a.top, set()).add(a.key)
        return {t: frozenset(k) for t, k in out.items()}

    def _notify(self, change: Change) -> None:
        for fn in list(self._listeners):
            fn(change)


class Staged:
    """Transactions made and checked one batch at a time, queued in ONE short local commit
    (:meth:`Satellite.staged`). Nothing is written before :meth:`commit`: a set dropped
    (never committed) queued nothing. Memory holds the staged transactions, as the
    satellite holds every pending one once queued."""

    def __init__(self, sat: Satellite):
        self._sat = sat
        self._done: list[tuple[Trans, bool, str]] = []  # (trans, auth, its actions' JSON)
        self._made: dict[Sig, dict[str, Any] | None] = {}  # the records earlier batches left
        # each staged transaction's records after it, as checked on the overlay of this
        # generation and replica revision: the commit's overlay update takes them when
        # neither moved (session 14: it checked the import's 100 transactions again)
        self._states: dict[str, Mapping[Sig, Mapping[str, Any] | None]] = {}
        self._on = (sat._qv.generation, sat.rev())
        self.closed = False
        # the app (``overlay_later``): the commit adds them to the overlay in steps
        # (:meth:`Satellite.build_overlay`), not at once on its UI thread (session 15)
        self.steps = sat._later

    def __len__(self) -> int:
        return len(self._done)

    def add(self, acts: Sequence[Action], base: Rev | None = None) -> str:
        """Make and check a transaction as :meth:`Satellite.pub_many` does one of its
        batches (on the view, and on what earlier batches made), keep it; returns its uid.

        Raises:
            ValidationError: the batch does not fit (nothing staged of it).
        """
        if self.closed:
            raise ValueError("staged transactions already committed")
        sat = self._sat
        trans = sat._make_trans(acts, new_uid(), "", base)
        self._states[trans.uid] = sat._check_on_view(trans, self._made)
        self._done.append((trans, sat._is_auth(trans), sat.queue.encode(trans)))
        crash_point("sat.mid_import")
        return trans.uid

    def commit(self) -> list[str]:
        """Queue every staged transaction, in order, in ONE local commit (all or none);
        returns their uids. What the view did meanwhile (the hub's changes arrived between
        two steps) is the overlay's to judge, as for edits queued before them: a staged
        transaction that no longer applies is marked a local conflict, not refused.

        Raises:
            ValidationError: the hub said meanwhile that this user may only read.
            StorageError: the database failed; nothing was queued.
        """
        if self.closed:
            raise ValueError("staged transactions already committed")
        sat = self._sat
        sat._writable()
        sat._check_writer()
        self.closed = True
        with sat.queue._conn(None) as conn:
            # one executemany (session 14: an insert built per transaction, 3,094 of them
            # for a sheet of 50,000 rows with its _rev column)
            seqs = sat.queue.add_many([(t, auth, "", "", ()) for t, auth, _ in self._done],
                                      conn=conn, acts=[a for _, _, a in self._done])
            done = [(t, seq, auth) for (t, auth, _), seq in zip(self._done, seqs, strict=True)]
            crash_point("sat.before_local_commit")
        crash_point("sat.after_local_commit")
        self._done = []
        if done:
            same = (sat._qv.generation, sat.rev()) == self._on
            sat._after_pub_many(done, known=self._states if same else None, steps=self.steps)
        self._states = {}
        return [t.uid for t, _, _ in done]


def others_since(since: Sequence[Later], own: Set[Rev], over: Set[Rev]) -> list[Later]:
    """The changes of ``since`` (a record's events after an edit's base, in order) that may
    collide with the edit: not the user's own (``own``), and without what a later own event
    of an edit a daql hub applied over a colleague's change (``over``, part of ``own``)
    overwrote: that colleague's change is reported by the overwrite's own conflict, and the
    record holds the user's value now (session 15: the user's next edit of the field, saved
    before the overwrite was known, was held back as a second conflict with it and never
    sent). A ``new`` or ``del`` overwrite replaced the record: every earlier change goes; a
    ``mod`` one removes the fields it set from the earlier changes (a ``del`` among them
    stays: that is no field the overwrite set)."""
    out: list[Later] = []
    for i, x in enumerate(since):
        if x.ev.rev in own:
            continue
        covered: set[str] = set()
        whole = False
        for y in since[i + 1:]:
            if y.ev.rev in over:
                if y.ev.cmd != Cmd.MOD:
                    whole = True
                    break
                covered.update(y.ev.arg or ())
        if whole:
            continue
        if covered and x.ev.cmd == Cmd.MOD:
            arg = {k: v for k, v in (x.ev.arg or {}).items() if k not in covered}
            if not arg:
                continue
            x = Later(dc_replace(x.ev, arg=arg), x.usr)
        out.append(x)
    return out
