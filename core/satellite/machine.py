"""The satellite's sync state machine, without I/O.

Inputs are method calls — :meth:`SyncMachine.start`, :meth:`~SyncMachine.connected`,
:meth:`~SyncMachine.received`, :meth:`~SyncMachine.disconnected`, :meth:`~SyncMachine.tick`,
:meth:`~SyncMachine.local_change` — each with the current time ``now`` in seconds of any
monotonic clock (a virtual one in the simulation). Outputs are :class:`Open`, :class:`Send`
and :class:`Close` commands collected in an outbox (:meth:`~SyncMachine.take`), and
:meth:`~SyncMachine.wake_at`, the time the next ``tick`` is due. Randomness (backoff jitter)
comes from a ``random.Random`` passed in, so a seed replays identically.

Storage is reached through :class:`SyncStore` (local, synchronous SQLite in the real satellite;
anything in a simulation).

Protocol (see ``docs/satellite.md``)::

    OFFLINE --tick at wake--> CONNECTING --connected--> HANDSHAKE: evt.stat
    HANDSHAKE --Status (mig ok)--> CATCHUP: evt.sat {rev, trans: pending queue*, tops, lim}
    CATCHUP --SatRes more--> evt.sat {rev: reply rev, trans: []}  (batches, progress: of
        the first reply's total_max when the hub says it, ours)
    CATCHUP --SatRes final--> LIVE: pushes (evt.update) applied as they come
    LIVE --local_change--> evt.sat {rev, trans: pending not yet sent on this connection}
    any --disconnected / request timeout--> OFFLINE, retry after backoff with jitter
    HANDSHAKE --Status mig differs--> STOPPED (clear error, nothing touched, no retry)
    HANDSHAKE --Status ledger id differs from the stored one--> STOPPED (likewise)
    HANDSHAKE --Status restore point new, before the replica's rev--> STOPPED (likewise)
    HANDSHAKE --Status rev behind the replica--> OFFLINE (nothing sent; retry later)
    CATCHUP/LIVE --hub data reusing held event ids (applied final)--> STOPPED (nothing stored)
    CATCHUP --evt.sat refused "diverged": the hub's last event at or before the replica's
        rev is not the replica's (its ``last``, ours)--> probes (evt.sat of no edits and no
        topics, each with an earlier rev and its ``last``: a binary search for where the two
        histories part, so the edits the hub lost are all marked)--> STOPPED (nothing stored)

    * the first evt.sat of a connection carries at most ``first_trans`` (100) pending
      transactions, each later one up to ``max_trans`` (1,000), and a long queue's last one
      ``last_trans`` (200): a long queue goes out in requests, in queue order, pipelined
      (``cont``)

A daql hub (no uids: its ``evt.sat`` reply has no ``acks``/``rejects``; its ``evt.stat`` has
no Outpost extension, ours says ``"acks": true``): the handshake's ``evt.sat`` is a catch-up
alone; edits go once live with everything received stored (a pending edit the store's view
marks as a local conflict is rejected with its reason instead: daql ignores ``base``), one
transaction per ``evt.sat``, one in flight (:meth:`SyncMachine._daql_ready`); a ``res``
reply is the ack of that transaction (:meth:`SyncMachine._daql_acks`), an error reply its
rejection; a request whose answer never came (connection lost, process stopped: marked
before it is sent) is put aside as rejected for the user to check, never resent blindly,
since daql cannot tell a resend from a new edit; and its events, whose schema version
(``mig: ""``) could not be compared, are checked by the store before they are stored
(docs/satellite.md, "Syncing with a daql hub").

Ledger identity (Outpost extension): an Outpost hub's ``evt.stat`` result names its ledger
(``ledger``, random, made with the ledger). The replica stores the id the first time a
handshake passes every check (same schema, hub not behind), before anything is sent, and from
then on refuses a hub serving another id. A hub that serves none (daql, an older Outpost
hub) is not checked.

Restore points (Outpost extension): a hub restored from a backup serves the backup's final
revision (``restored``) and an id of that restore (``restore_id``), and (session 8) every
restore point of the ledger's history (``restores``, oldest first, the last
:data:`core.wire.MAX_RESTORES`). The replica stores the points served when it adopts
them. A handshake whose latest restore id is not the one the replica stored checks every
restore served after the last one the replica knew (all served when it knew none; an older
one it did not know is of the history it already synced with, e.g. the first restore of a
backup restored twice) against the replica's revision (and the highest revision the hub acked
it): at or before each such point the replica is a prefix of the restored ledger and stores
the points served (before anything is sent); after one of them the replica holds revisions
the hub lost, whose event ids the hub reuses for its new events, so sync stops (STOPPED,
nothing sent or changed) whatever the hub's revision: revisions are wall-clock times, so the
restored hub's next publish is already "ahead" of the replica (:func:`restore_lost`).

Exactly once: pending transactions are resent with the same uid on every connection until the
hub acks or rejects them; the hub acks a uid it applied before with its original revision.
Pushes that arrive during a batched catch-up are held and applied after the last batch, so the
replica never skips a revision.

Storing hub data: with ``defer_apply=False`` (the simulation, tests) the machine calls
``store.apply_sat`` / ``store.apply_update`` inside the input that brought the data. With
``defer_apply=True`` (the asyncio client) it emits :class:`Apply` instead: the adapter runs
``store.write(item)`` wherever it likes (a worker thread, so the event loop stays responsive)
and reports :meth:`SyncMachine.applied`; the machine then calls ``store.written(item)`` (on the
adapter's thread: notifications) and starts the next. At most one Apply is outstanding and
they run in the order the data arrived; ``evt.sat`` replies that queued up meanwhile go out as
one Apply (:func:`merge_sat`, up to :data:`MERGE_EVENTS` events), so a satellite that fell
behind the hub stores them in one commit. Either way sync is *pipelined*: the next
``evt.sat`` — the next catch-up batch after a reply with ``more``, or the next pending
transactions after a final reply — is sent as soon as the reply arrives, before it is stored,
with the reply's revision as ``rev``; so the hub prepares batch n+1 (or publishes the next
transactions) while the satellite writes batch n. Replies come in request order.

Two requests in flight (ours, ``cont``): every ``evt.sat`` says ``"cont": true``; a hub that
echoes it in its reply starts each reply where the connection's previous reply ended (when
that is after the request's ``rev``). Once a reply on the connection echoed it, the machine
sends pending transactions while live even with one request still unanswered (at most
``pipeline`` in flight), so the hub reads and decodes the next batch as soon as it answered
the previous one, instead of waiting for the satellite to receive that answer and send again.
Without the echo (a daql hub, an older Outpost hub) one request stays in flight, as before:
its ``rev`` then never runs ahead of what the hub sent. A hub that says ``"cont": true`` in
its ``evt.stat`` result (ours, session 10) is known to honour it before the first reply: the
second request (up to ``max_trans``) goes out with the first, during the catch-up, so the hub
goes on to it as soon as it answered the first.
"""

from __future__ import annotations

import contextlib
import random
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from enum import StrEnum
from itertools import islice
from typing import Any, Protocol

from core.errors import OutpostError, WireError
from core.ledger.rules import uid_clash_prefix
from core.model import Action, Cmd, Conflict, Event, Status, Trans, Update
from core.revision import ZERO_REV, Rev, format_rev, parse_rev
from core.satellite.api import NOT_SENT, NOT_SENT_WHY, OVERWROTE, PUT_ASIDE, put_aside_err
from core.wire import (
    ERR_CODE_DIVERGED,
    ERR_CODE_READ,
    ERR_CODE_READONLY,
    Ack,
    Frame,
    Reject,
    SatReq,
    SatRes,
    dec_last,
    dec_read_failed,
    dec_sat_res,
    dec_status,
    dec_update,
    decode_error,
    decode_json,
    dumps,
    enc_sat,
    enc_trans,
    format_frame,
    parse_frame,
    rev_memo,
    with_own,
)

#: bytes of encoded transactions sent in one ``evt.sat`` at most (the rest follow after the
#: reply; at least one is always sent): the hub takes frames of up to 1 MiB (MAX_FRAME) and
#: closes the connection on a bigger one, which then was resent forever
SAT_BYTES = 512 * 1024
#: largest encoded transaction ``Satellite.pub`` accepts (so one always fits in a frame)
MAX_TRANS_BYTES = 768 * 1024
#: the least ``max_bytes`` falls to after closes with 1009 (message too big) from a hub that
#: does not serve its limit in ``evt.stat`` (halved on each: a daql or an older Outpost hub)
MIN_SAT_BYTES = 16 * 1024
#: the close code of a peer that received a message too big for it (RFC 6455)
CLOSE_TOO_BIG = 1009
#: bytes of an ``evt.sat`` frame beside its transactions' JSON kept free under the hub's limit
_SAT_HEAD = 1024
#: how ``SyncInfo.last_error`` starts after a reply that rejected edits (they are named in it)
REJECTED_BY_HUB = "rejected by the hub: "
#: how ``SyncInfo.last_error`` starts after a reply showing edits a daql hub applied over a
#: colleague's change (named in it; ``_daql_acks``): conflicts after the fact, not refusals
OVERWROTE_ON_HUB = "overwrote a colleague's change on the hub: "
#: how a rejection's ``last_error`` ends when it names only the first of several edits
#: (:func:`rejection_text`)
MORE_REJECTED = "; and {n:,} more: see them all with `outpost conflicts` (the app: Conflicts)"
#: the start of the last_error of hub data that could not be stored (a full disk, ...)
STORE_FAILED = "storing hub data failed"
#: how ``SyncInfo.last_error`` starts while the hub's ``evt.stat`` says its own database is
#: unavailable (an Outpost extension: ``db``, ``db_why``; :func:`hub_db_problem`)
HUB_DB_DOWN = "the hub's database is unavailable"


def hub_db_problem(res: Any) -> str:
    """The ``last_error`` for an ``evt.stat`` result whose ``db`` is ``"unavailable"``
    (``""`` for one that works, or says nothing: daql, hubs before session 9). Cluster
    review 15: a satellite whose hub's database hung said "still catching up"."""
    if not isinstance(res, dict) or res.get("db") != "unavailable":
        return ""
    why = res.get("db_why")
    # the hub's words, shown in a terminal: a short printable kind only
    why = why if isinstance(why, str) and 0 < len(why) <= 80 and why.isprintable() \
        and why != "unavailable" else ""  # the kind when none is known: said already
    return (f"{HUB_DB_DOWN}{f' ({why})' if why else ''}, the hub said: it can send and "
            "store nothing until its operator brings the database back (its GET /healthz "
            "answers 503 meanwhile); what arrived is kept and this replica's edits stay "
            "pending, sent once it works")
#: the rest of a hub's reject of this satellite's very edit, applied before with another
#: user's token (``rules.uid_clash``, after its prefix): the revision it was applied at
_SAME_ELSEWHERE = re.compile(r" with these same actions at revision (\S+), sent with user ")
#: most events of ``evt.sat`` replies stored in one write when several wait (see ``_pump``)
MERGE_EVENTS = 10_000
#: the stored reason of an edit a daql hub's reply shows its record and command changed, but
#: under no revision with exactly the edit's changes (``SyncMachine._daql_acks``): put aside
DAQL_UNCLEAR = (
    f"{PUT_ASIDE}the hub answered the request that carried this edit, but no change in its "
    "answer is exactly this edit (the hub changed its values, or took it with other changes): "
    "it cannot be told whether the hub applied it as it was made, so it is not taken as "
    "yours and was put aside. Check the record (outpost show TOPIC KEY: the hub's version "
    "is shown), then send it again (outpost resolve UID --keep mine) or drop it (outpost "
    "resolve UID --keep theirs)")
#: the stored reason of an edit a daql hub applied over a colleague's change it had applied
#: just before (``SyncMachine._daql_acks``): a conflict after the fact (its conflicts name it)
DAQL_OVERWROTE = (
    f"{OVERWROTE}the hub (a daql hub, which does not check an edit against changes made "
    "after it) applied this edit over a colleague's change it had taken just before, which "
    "this replica had not received yet: the hub has your values. Keep mine leaves them "
    "(outpost resolve UID --keep mine); keep theirs sends theirs back as a new edit (outpost "
    "resolve UID --keep theirs, or per field --field FIELD=mine|theirs)")

__all__ = [
    "CLOSE_TOO_BIG",
    "DAQL_UNCLEAR",
    "HUB_DB_DOWN",
    "MAX_INCOMING",
    "MAX_REPLY_MIB",
    "MAX_TRANS_BYTES",
    "MERGE_EVENTS",
    "MIB",
    "MIN_SAT_BYTES",
    "MORE_REJECTED",
    "OVERWROTE_ON_HUB",
    "REJECTED_BY_HUB",
    "REPLY_TOO_BIG",
    "SAT_BYTES",
    "Apply",
    "Backoff",
    "Close",
    "Incoming",
    "Open",
    "Output",
    "Phase",
    "Send",
    "SyncInfo",
    "SyncMachine",
    "SyncStore",
    "batch_too_big",
    "carry_conflicts",
    "decode_incoming",
    "hub_db_problem",
    "hub_restores",
    "merge_sat",
    "new_dir_fix",
    "rejection_text",
    "reply_too_big",
    "restore_lost",
]


def rejection_text(prefix: str, named: Sequence[tuple[str, str]]) -> str:
    """A ``last_error`` for edits rejected (or not sent), ``named`` as (uid, why): the first
    whole, then how many more (:data:`MORE_REJECTED`); "" for none. The conflicts list has
    each one's text: 17 rejections made one line of about 5 KB in `outpost status` (scale
    review 13)."""
    if not named:
        return ""
    uid, why = named[0]
    more = MORE_REJECTED.format(n=len(named) - 1) if len(named) > 1 else ""
    return f"{prefix}{uid}: {why}{more}"


class Phase(StrEnum):
    OFFLINE = "offline"        # waiting to (re)connect
    CONNECTING = "connecting"  # asked the adapter to open a connection
    HANDSHAKE = "handshake"    # evt.stat sent
    CATCHUP = "catchup"        # evt.sat batches
    LIVE = "live"              # caught up, receiving pushes
    STOPPED = "stopped"        # will not retry (schema mismatch, or stopped by the user)


@dataclass(frozen=True, slots=True)
class Open:
    """Open a connection to the hub; answer with ``connected`` or ``disconnected``."""


@dataclass(frozen=True, slots=True)
class Send:
    """Send one text frame."""

    text: str


@dataclass(frozen=True, slots=True)
class Close:
    """Close the connection; the adapter then calls ``disconnected``."""

    reason: str


@dataclass(frozen=True, slots=True)
class Apply:
    """Store hub data with ``SyncStore.write(item)``, then report ``applied``."""

    item: SatRes | Update


Output = Open | Send | Close | Apply


@dataclass(frozen=True, slots=True)
class Incoming:
    """A frame from the hub, already parsed and decoded by :func:`decode_incoming`.

    ``res`` is the decoded ``evt.sat`` result or ``evt.update`` push (``None`` for anything
    else, or when it does not decode: the machine then decodes again and reports the error);
    ``err`` is set when the frame itself could not be parsed.
    """

    frame: Frame | None
    body: Any = None
    res: SatRes | Update | None = None
    err: WireError | None = None


MIB = 1024 * 1024
MAX_INCOMING = 64 * MIB
"""Largest frame a satellite takes from its hub by default (its socket's limit too; the data
directory's config.json ``max_reply_mib`` changes it: ``SatConfig.max_incoming``). A reply
may hold thousands of events, far more than the 1 MiB a hub takes from one client frame: a
satellite holding to that limit could never catch up once a batch grew past it. An Outpost
hub cuts a catch-up into batches; a daql hub answers it in one message, however big."""
#: the most ``max_reply_mib`` may say (decoding a message takes several times its size)
MAX_REPLY_MIB = 4096
#: how ``SyncInfo.last_error`` starts when the hub sent a message over this side's limit
REPLY_TOO_BIG = "the hub sent a message bigger than this satellite takes"


def reply_too_big(limit: int, stop: bool) -> str:
    """The status error of a message from the hub over ``limit`` bytes (this side closed the
    connection with 1009); ``stop``: sync stopped (a daql hub: asking again gets the same
    message, bigger)."""
    more = min(MAX_REPLY_MIB, max(1, limit // MIB) * 4)
    why = "; a daql hub answers a whole catch-up in one message, however big" if stop else ""
    return (f"{REPLY_TOO_BIG} ({limit / MIB:g} MiB{why}): nothing of it was stored"
            + ("; sync stopped, as asking again would get the same message" if stop else "")
            + f". Raise the limit: set \"max_reply_mib\": {more} in the data directory's "
            "config.json (the app: quit it first; decoding a message takes several times its "
            "size in memory), then sync again")


def batch_too_big(limit: int) -> str:
    """The status error when even the smallest catch-up batch an Outpost hub sends (one
    event: ``lim`` 1) was over this side's ``limit`` bytes: sync stopped, as asking again
    would get the same message."""
    more = min(MAX_REPLY_MIB, max(1, limit // MIB) * 4)
    return (f"{REPLY_TOO_BIG} ({limit / MIB:g} MiB) even when asked for one event at a time: "
            "one change on the hub is bigger than that; nothing of it was stored; sync "
            f"stopped, as asking again would get the same message. Raise the limit: set "
            f"\"max_reply_mib\": {more} in the data directory's config.json (the app: quit it "
            "first; decoding a message takes several times its size in memory), then sync "
            "again")


def decode_incoming(text: str | bytes, limit: int = MAX_INCOMING) -> Incoming:
    """Parse and decode a frame from the hub (of at most ``limit`` bytes): pure, safe on any
    thread. The asyncio client runs it on a worker thread for big frames (a batch of 5,000
    events took 30-100 ms to decode, a pause of the desktop's event loop)."""
    try:
        frame = parse_frame(text, limit)
        body = decode_json(frame.body, frame.subj, frame.tok)
    except WireError as exc:
        return Incoming(None, err=exc)
    res: SatRes | Update | None = None
    try:
        if not frame.tok and frame.subj == "evt.update":
            res = dec_update(body)
        elif (frame.subj == "evt.sat" and frame.tok and isinstance(body, dict)
              and decode_error(body) is None):
            res = dec_sat_res(body.get("res"), "evt.sat result")
    except WireError:
        res = None
    return Incoming(frame, body, res)


def hub_restores(hub: Status) -> tuple[tuple[Rev, str], ...]:
    """The restore points a hub's ``evt.stat`` serves, oldest first: ``restores`` (session 8
    on), else the one ``restored``/``restore_id`` (a hub of session 7), else none."""
    if hub.restores:
        return hub.restores
    return ((hub.restored, hub.restore_id),) if hub.restore_id else ()


def restore_lost(hub: Status, known: Sequence[tuple[Rev, str]], mine: Rev) -> str:
    """Why a replica holding revisions up to ``mine`` must never sync with the hub serving
    ``hub``, or ``""``. ``known``: the restore points the hub served when the replica last
    adopted one (oldest first; a replica made before session 8 stored the latest only, a
    list of one; none adopted: empty).

    The served points after the last one the replica knew (all served when it knew none of
    them) are the restores that happened since the replica last synced: one at a revision
    before ``mine`` lost revisions the replica holds (and the hub's new events reuse their
    event ids); the message names the earliest such. An older point the replica did not
    know is one of the history it already synced with: not checked (the same backup
    restored twice leaves the first restore in the list of the second, not the id the
    replica adopted from the first). A hub whose latest point the replica knew but not as
    its latest lacks a restore the replica adopted since: every served point is checked.
    When the hub left earlier points out (``restores_omitted``) and the replica knew none
    of those served, a restore not served may be one: the replica stops unless it holds
    nothing (``mine`` 0). A hub serving no restore point (never restored, daql) passes."""
    points = hub_restores(hub)
    if not points or (known and points[-1][1] == known[-1][1]):
        return ""
    ids = {rid for _, rid in known if rid}
    last = max((i for i, (_, rid) in enumerate(points) if rid in ids), default=-1)
    if last < 0 and hub.restores_omitted and mine:
        return (f"the hub was restored {hub.restores_omitted + len(points)} times in all, "
                f"and serves the last {len(points)} restore points only, none of them one "
                "this replica synced with: it cannot be told whether this replica's "
                f"revisions (up to {format_rev(mine)}) are still on the hub")
    after = points if last == len(points) - 1 else points[last + 1:]
    for rev, _ in after:
        if mine > rev:
            return (f"the hub was restored from a backup at revision {format_rev(rev)}; "
                    f"this replica holds revisions after it (up to {format_rev(mine)}) that "
                    "the hub lost")
    return ""


class SyncStore(Protocol):
    """What the machine needs from local storage."""

    def rev(self) -> Rev:
        """The replica's revision."""
        ...

    def mig(self) -> str:
        """The local schema version (``Project.version``)."""
        ...

    def topics(self) -> list[str]: ...

    def ledger(self) -> str:
        """The id of the hub ledger this replica holds (``""``: none stored yet)."""
        ...

    def adopt_ledger(self, lid: str) -> None:
        """Store ``lid`` as the id of the hub ledger this replica holds (committed on return).

        Raises:
            OutpostError: it could not be stored.
        """
        ...

    def acked_rev(self) -> Rev:
        """The highest revision the hub acked for one of this replica's transactions (0:
        none). It can be past :meth:`rev`: acks stored without the events (a failed read's
        reply, a catch-up cut short), so a restore between the two lost an accepted edit."""
        ...

    def restore_points(self) -> tuple[tuple[Rev, str], ...]:
        """The restore points the hub served when this replica last adopted one, oldest
        first (:func:`hub_restores`; a replica made before session 8 stored the latest only:
        a tuple of one; ``()``: none adopted)."""
        ...

    def adopt_restore_points(self, points: tuple[tuple[Rev, str], ...]) -> None:
        """Store ``points`` (the hub's served list, latest last) as the restore points of
        the hub ledger (committed on return).

        Raises:
            OutpostError: it could not be stored.
        """
        ...

    def unresolved(self) -> int:
        """How many of this replica's transactions the hub rejected and the user has not
        resolved yet (what ``outpost carry --rejected`` copies)."""
        ...

    def outbox(self) -> list[Trans]:
        """Pending transactions that can be sent (with uid, base, created, acts), in queue
        order. Read at any time, also while hub data is being stored (``write`` running on
        another thread): it must not change until ``written`` (or ``apply_*``) of that data,
        so it never shows an edit whose base is not yet moved past an ack being stored. The
        caller never modifies the list: a store may return the same list object while its
        outbox is unchanged (the machine then skips what it sent of it once, not per call)."""
        ...

    def apply_sat(self, res: SatRes) -> None:
        """Store one ``evt.sat`` reply: events, new rev, acks and rejects in one commit."""
        ...

    def apply_update(self, upd: Update) -> None:
        """Store a pushed update (events after the replica's rev)."""
        ...

    def write(self, item: SatRes | Update) -> None:
        """``defer_apply``: store a reply or push (may run on another thread); no notices."""
        ...

    # optional: ``note_lost(after: Rev | None, exact: bool = True, since: Rev = 0)``: the hub
    # lacks the edits it accepted after ``after`` (sync stopped for good on a hub whose
    # history up to the replica's revision is another; ``exact`` False: at least those,
    # those after ``since`` may be lost too); None: a hub passed every check since. The
    # refusals of the handshake (a hub behind, restored, another ledger) write nothing:
    # they say it at every handshake
    # optional: ``last_event() -> tuple[int, Rev]``, ``(id, rev)`` of the replica's last
    # event ((0, 0): none): sent as evt.sat's ``last`` (ours) on a connection's first
    # requests, so an Outpost hub refuses them when its history up to the replica's revision
    # is another (``diverged``: sync stops); a store without it is not checked so
    # optional: ``last_event_at(rev) -> tuple[int, Rev]`` and ``event_upto(id) -> tuple[int,
    # Rev]`` (the replica's last event at or before a revision, and its event with the
    # greatest id at or below an id; (0, 0): none): after ``diverged``, to probe the hub for
    # where its history parts from the replica's (without them: the marks are a lower bound)
    # optional: ``acts_json(t: Trans) -> str | None``, the JSON text of ``t.acts`` as
    # ``[enc_action(a) ...]`` encodes them, when the store has it (the queue's stored text):
    # requests splice it instead of encoding the actions again
    # optional: ``pending_among(uids: list[str]) -> set[str]``, those of ``uids`` that are
    # pending transactions of this store (see SyncMachine._own_applied), and
    # ``pending_same(evs: dict[str, list[Event]]) -> set[str]``, those uids whose pending
    # transaction's actions are what the events of their revision hold;
    # optional, for a hub that does not confirm edits (daql, see the module docstring):
    # ``mark_unconfirmed(uids)`` (kept durably before they are sent; raises OutpostError),
    # ``unconfirmed() -> list[str]`` (those marked still pending: put aside before the
    # next edit is sent, once nothing is in flight or being stored),
    # ``note_hub(acks: bool)`` (for the status), ``trust_hub(trusted: bool)`` (False: check
    # the hub's events against the schema before storing them), ``local_conflicts() ->
    # Mapping[uid, (error, conflicts)]`` (the pending edits the view marks as local
    # conflicts: rejected with that reason instead of sent)

    def written(self, item: SatRes | Update) -> None:
        """``defer_apply``: ``item`` is stored: update what the user sees (adapter's thread)."""
        ...


@dataclass(slots=True)
class _Probe:
    """The search, after a ``diverged`` refusal, for where the hub's history parts from the
    replica's (:meth:`SyncMachine._diverged`). Both number their events by id in revision
    order, and a rolled-back hub holds the replica's events up to some id (the point it was
    rolled back to), then others: every event of the replica up to ``lo`` is the hub's, the
    replica's event ``hi`` is not, and each probe halves ``(lo, hi)``."""

    why: str           # the stop's error
    lo: int            # the hub holds the replica's events up to this id (0: none known)
    hi: int            # the replica's event of this id is not the hub's
    sure: Rev          # the replica's edits at or after this revision are surely lost
    asked: int = 0     # the replica's event the probe in flight asks about
    top: int = 0       # the last event of its revision (the probe's ``last``)
    sent: int = 0      # probes sent (bounded: PROBES_MAX)


@dataclass(slots=True)
class _OwnCheck:
    """The check, once per replica, of the hub's history at its accepted edits
    (:meth:`SyncMachine._check_own`): the probes in flight by token (their revision and the
    uids of the edits accepted at it), the edits found not the hub's (revision, uid)."""

    cont: bool
    asks: dict[str, tuple[Rev, list[str]]]
    lost: list[tuple[Rev, str]]
    todo: list[tuple[Rev, list[str], Any]]
    """The probes not sent yet (revision, uids, ``last``): at most :data:`OWN_IN_FLIGHT` go
    at once."""


OWN_IN_FLIGHT = 8
"""Most probes of the once-per-replica check in flight at once: 256 sent together went over
a hub's ``--burst`` (merge review 16d: closed with 1008 on every connection, the check never
done, the replica never synced again)."""

PROBES_MAX = 64
"""Most probes of one search (:class:`_Probe`): a binary search over event ids needs at most
~log2 of the hub's last event id (23 for 5,000,000 events); a hub that answers otherwise
ends it early (the marks are then a lower bound)."""


@dataclass(frozen=True, slots=True)
class Backoff:
    """Exponential backoff with jitter: attempt n waits a uniform time in
    ``[d/2, d]`` where ``d = min(high, low * 2**n)``."""

    low: float = 0.5
    high: float = 30.0

    def delay(self, attempt: int, rnd: random.Random) -> float:
        d = min(self.high, self.low * (2 ** min(attempt, 62)))
        return rnd.uniform(d / 2, d)


@dataclass(frozen=True, slots=True)
class SyncInfo:
    """The machine's part of the satellite status."""

    phase: Phase = Phase.OFFLINE
    since: float = 0.0               # machine time of the last online/offline switch
    hub_rev: Rev = ZERO_REV
    hub_mig: str = ""
    last_sync: float = 0.0           # machine time of the last completed catch-up (0: never)
    last_error: str = ""
    progress: tuple[int, int] = (0, 0)  # (done, total) events of a catch-up; total 0: unknown
    # (answered, total) edits (pending transactions) being sent on this connection: the
    # hub acked or rejected ``answered`` of them; (0, 0) when none is waiting for an answer
    sending: tuple[int, int] = (0, 0)
    attempts: int = 0
    retry_at: float | None = None

    @property
    def online(self) -> bool:
        return self.phase in (Phase.CATCHUP, Phase.LIVE)


class SyncMachine:
    """Sync logic of one satellite; see the module docstring for the protocol.

    Args:
        store: local storage.
        rnd: random source for jitter (seed it for replays).
        lim: events per catch-up batch asked of the hub (0: the hub's default).
        backoff: reconnect delays.
        timeout: seconds a request may stay unanswered before the connection is dropped.
        max_trans: most transactions sent in one ``evt.sat`` (the rest follow after the reply).
        max_bytes: most bytes of encoded transactions in one ``evt.sat`` (at least one is sent).
        first_trans: most transactions in the first ``evt.sat`` of a connection: its reply
            tells whether the hub honours ``cont`` (two requests in flight; a hub that says so
            in ``evt.stat`` gets the second request at once), and until then the hub has
            nothing else to work on, so a small first request gets the pipeline going sooner
            (a replay's first request of 1,000 left the hub idle while the satellite encoded
            it, and again while it received the reply).
        last_trans: the size of the last ``evt.sat`` of a long queue: when more than twice
            this many are left to send (but at most ``max_trans`` more), the request leaves
            this many for a last one. After the hub's last reply the satellite still decodes,
            stores and refreshes it while the hub has nothing left to do; a small last reply
            makes that tail short, and the one before it is stored while the hub publishes
            the last (0: no smaller last request).
        defer_apply: emit :class:`Apply` for hub data instead of storing it in the input
            (see the module docstring).
        pipeline: most ``evt.sat`` requests in flight on a connection whose hub honours
            ``cont`` (see the module docstring; 1: never more than one).
    """

    def __init__(self, store: SyncStore, rnd: random.Random | None = None, *, lim: int = 5000,
                 backoff: Backoff | None = None, timeout: float = 60.0,
                 max_trans: int = 1000, max_bytes: int = SAT_BYTES,
                 defer_apply: bool = False, pipeline: int = 2, first_trans: int = 100,
                 last_trans: int = 200):
        self.store = store
        self.rnd = rnd or random.Random()
        self.lim = lim
        self.backoff = backoff or Backoff()
        self.timeout = timeout
        self.max_trans = max_trans
        self.max_bytes = max_bytes
        self.first_trans = max(1, first_trans)
        self.last_trans = max(0, last_trans)
        self.defer_apply = defer_apply
        self.pipeline = max(1, pipeline)
        self.own = True
        """Ask an Outpost hub to leave the events and audits of this satellite's own applied
        transactions out of its ``evt.sat`` replies (``own``, ours, session 16): they are
        rebuilt here from what was sent (:func:`core.wire.with_own`). False: full replies
        (tests compare the two)."""
        self.info = SyncInfo()
        self._applies: list[SatRes | Update] = []          # to store, in order (deferred)
        self._applying: SatRes | Update | None = None      # the Apply outstanding
        self._out: list[Output] = []
        self._tok = 0
        self._waiting: dict[str, tuple[str, float]] = {}   # tok -> (kind, sent at)
        self._sent: set[str] = set()                       # uids sent on this connection
        self._held: list[Update] = []                      # pushes held during catch-up
        self._sat_out = 0                                  # evt.sat requests in flight
        self._cont = False                                 # the hub echoed "cont"
        self._sats = 0                                     # evt.sat sent on the connection
        self._encoded: dict[str, tuple[Trans, bytes]] = {}  # uid -> JSON made by prepare()
        # the outbox list last walked and how many of its first entries are sent (all of
        # them: _sent only grows on a connection); a store that returns the same list while
        # its outbox is unchanged (Satellite) is walked past the sent ones once, not per call
        self._ob: list[Trans] | None = None
        self._ob_sent = 0
        self._prepared: tuple[list[Trans], int] | None = None  # what prepare() last saw
        self._done_evs = 0
        # a sync reached while hub data was still being stored (deferred): ``last_sync`` is
        # set once everything received up to then is stored, not before (a reply a full disk
        # refused is no sync): how many items had been queued at each sync still waiting
        self._synced_at: list[int] = []
        self._queued = 0   # items handed to _store (deferred), ever
        self._stored = 0   # ... of them stored (or dropped: then nothing waits for them)
        self._in_apply = 0  # ... of them in the Apply outstanding (merged replies: several)
        self._total = 0  # a catch-up's size as its first reply said (total_max; 0: unknown)
        # edits sent on this connection the hub answered, and all there are to send (sent
        # on it and not yet sent): SyncInfo.sending, counted per request, not per edit
        self._answered = 0
        self._to_send = 0
        # of ``_sent``, those answered by the time every edit sent had been: the count
        # starts again after them (session 14: the total kept them, "sending 2 of 3" for good)
        self._sent_done = 0
        self._stopped_by_user = False
        self._dropping = False  # a failed connection is closing: ignore its frames
        self._read_only = ""    # the hub refuses this user's edits (its message): hold them
        self.behind: tuple[Rev, Rev] | None = None
        """(hub's revision, replica's) when the last handshake found the hub behind the
        replica (nothing was sent; retried later); ``None`` once a handshake passed. The
        replica's is the highest of its revision and of the revisions the hub accepted its
        edits at (:meth:`SyncStore.acked_rev`)."""
        self.behind_lost = False
        """With :attr:`behind`: the hub's revision is before an edit of this replica it
        accepted (it lost it: ``outpost carry --accepted`` keeps it)."""
        # (the replica's revision at the handshake, its last event (id, rev)): sent as
        # evt.sat's "last" while the request's rev is that revision and no reply came yet
        # (ours, session 15: the hub refuses it when its history up to that revision is not
        # the replica's); None: not sent
        self._last_held: tuple[Rev, tuple[int, Rev]] | None = None
        # after a "diverged" refusal: the search for where the histories part (None: none)
        self._probe: _Probe | None = None
        # the once-per-replica check of the hub's history at its accepted edits (None: none)
        self._own: _OwnCheck | None = None
        self._hub_max = 0       # the hub's largest frame (its evt.stat's max_message; 0: unknown)
        # (uid, encoded bytes) of the last evt.sat sent when it carried one transaction
        self._sat_one: tuple[str, int] | None = None
        # a 1009 close came with several evt.sat in flight: one at a time from now on, so
        # that a request of one transaction that is closed on is known to be the culprit
        self._one_sat = False
        # the hub names each transaction of an evt.sat in "acks" or "rejects" (an Outpost
        # hub: its evt.stat says so, or a reply did); a daql hub names none: see
        # "Syncing with a daql hub" in docs/satellite.md
        self._hub_acks = False
        # evt.sat requests in flight: token -> the transactions it carried
        self._inflight: dict[str, tuple[Trans, ...]] = {}
        # the JSON each transaction in flight was sent as (beside _inflight): a reply that
        # leaves out the events of the satellite's own transactions (own, ours) is rebuilt
        # from exactly what the hub decoded
        self._inflight_text: dict[str, list[bytes]] = {}
        # no new edits go out while set (see hold_edits)
        self._hold = False
        # held: the edits whose answer a closed connection took (an Outpost hub), sent again
        # alone, before any other, until answered (see edits_unanswered); and the outbox
        # list they were last checked against
        self._lost: set[str] = set()
        self._lost_ob: list[Trans] | None = None
        # what the last connection lost with a daql hub put aside (said in last_error)
        self._aside_note = ""
        # the lim asked of an Outpost hub after its batch was over this side's limit (0: not
        # cut, self.lim): halved at each such close, down to 1; self.lim again once caught up
        self._lim_cut = 0

    @property
    def _ask_lim(self) -> int:
        """The ``lim`` of the next catch-up request: :attr:`lim`, or less after a batch over
        this side's limit (``_lim_cut``)."""
        return self._lim_cut or self.lim

    # -- outputs -------------------------------------------------------------------------------

    def take(self) -> list[Output]:
        """The commands produced since the last call, in order."""
        out, self._out = self._out, []
        return out

    def wake_at(self) -> float | None:
        """When ``tick`` is next due (``None``: nothing scheduled)."""
        times: list[float] = []
        if self.info.phase == Phase.OFFLINE and self.info.retry_at is not None:
            times.append(self.info.retry_at)
        times.extend(t + self.timeout for _, t in self._waiting.values())
        return min(times) if times else None

    @property
    def phase(self) -> Phase:
        return self.info.phase

    @property
    def _sat_busy(self) -> bool:
        """An ``evt.sat`` is in flight (its reply may overlap pushes: they are held)."""
        return self._sat_out > 0

    @property
    def edits_in_flight(self) -> int:
        """This replica's transactions sent on this connection and not answered yet (lost
        with it if the connection closes now: resent on the next)."""
        return sum(len(ts) for ts in self._inflight.values())

    @property
    def hold_edits(self) -> bool:
        """While set, no new edits go out (requests carry none; catch-up goes on): the edits
        in flight are let be answered before the user behind the connection changes (a new
        token in the app: :attr:`edits_unanswered`). Kept across connections and
        :meth:`start` (session 15: a connection dropped or restarted by "Sync now" during the
        wait lost the answers, and the next one sent them, and the held edits, as whoever
        came next); cleared only by setting it False."""
        return self._hold

    @hold_edits.setter
    def hold_edits(self, hold: bool) -> None:
        self._hold = hold
        if not hold:
            self._lost.clear()
            self._lost_ob = None

    @property
    def edits_unanswered(self) -> int:
        """While :attr:`hold_edits`: the edits sent and not answered yet, those in flight
        and those whose answer a closed connection took (an Outpost hub acks a resend from
        the same user: they go out again, alone, on the next connection; a daql hub's are
        put aside instead). 0: the user behind the connection may change without an edit
        being sent as two users'."""
        lost = self._lost_left()
        if not lost:
            return self.edits_in_flight
        return len(lost.union(t.uid for ts in self._inflight.values() for t in ts))

    def _lost_left(self) -> set[str]:
        """:attr:`_lost` without the edits answered meanwhile (acked by a catch-up's audit,
        rejected, resolved: gone from the outbox); checked once per outbox list."""
        lost = self._lost
        if not lost:
            return lost
        ob = self.store.outbox()
        if ob is not self._lost_ob:
            left: set[str] = set()
            for t in ob:  # they are the oldest pending: found at its start
                if t.uid in lost:
                    left.add(t.uid)
                    if len(left) == len(lost):
                        break
            self._lost, self._lost_ob = left, ob
        return self._lost

    @property
    def idle(self) -> bool:
        """Caught up, nothing in flight and nothing left to send."""
        return self.caught_up and not self.store.outbox()

    @property
    def caught_up(self) -> bool:
        """Live, nothing in flight and everything received stored (edits may be pending).
        Not while a failed connection is closing (its data was not stored: the next one
        resyncs)."""
        return self.info.phase == Phase.LIVE and not self._sat_busy and not self.applying \
            and not self._dropping

    @property
    def read_only(self) -> str:
        """The hub's reason when it refused this user's edits on this connection (a reader's
        token; ``""`` otherwise): the satellite then only catches up, and the edits stay
        pending until the next connection (e.g. with a writer token)."""
        return self._read_only

    @property
    def applying(self) -> bool:
        """Hub data received but not stored yet (an Apply outstanding or queued)."""
        return self._applying is not None or bool(self._applies)

    def drop_applies(self) -> None:
        """Forget hub data not stored yet (the adapter lost track of an Apply): the next
        connection resyncs from the replica's revision."""
        self._applies.clear()
        self._applying = None
        self._synced_at.clear()
        self._stored = self._queued
    def applied(self, now: float, error: str = "", *, final: bool = False) -> None:
        """The outstanding :class:`Apply` finished (``error``: the storage failure; ``final``:
        storing the hub's data can never succeed, e.g. its events reuse event ids the replica
        holds (``LostRevisionsError``): sync stops for good, as a refused handshake does)."""
        item, self._applying = self._applying, None
        if item is None:
            return
        if error:
            # nothing of it was stored: drop what was queued behind it and resync from the
            # replica's revision on the next connection (or never: final)
            self._applies.clear()
            self._synced_at.clear()  # not synced: last_sync stays the last stored one
            self._stored = self._queued
            why = f"{STORE_FAILED}: {error}"
            if final:
                # every connection would get the same events and fail the same way: stop
                # until the user acts (a new data directory and outpost carry, as it says)
                if self.info.phase not in (Phase.OFFLINE, Phase.STOPPED):
                    self._out.append(Close("hub data cannot be stored"))
                self._reset_conn()
                self._set(phase=Phase.STOPPED, since=now, retry_at=None, last_error=why)
                return
            self._set(last_error=why)
            if self.info.phase not in (Phase.OFFLINE, Phase.STOPPED):
                self._drop("storage failed")
            return
        self._stored += self._in_apply
        self.store.written(item)
        self._pump()
        waits = self._synced_at
        if waits and self._stored >= waits[0]:
            # everything received up to a sync is stored: now it is one
            while waits and self._stored >= waits[0]:
                waits.pop(0)
            self._set(last_sync=now)
        # the stored acks may have made edits waiting behind them sendable
        self._send_unsent(now)

    # -- inputs --------------------------------------------------------------------------------

    def start(self, now: float) -> None:
        """Begin syncing: connect at once."""
        self._stopped_by_user = False
        if self.info.phase in (Phase.OFFLINE, Phase.STOPPED):
            self._set(phase=Phase.CONNECTING, retry_at=None)
            self._out.append(Open())

    def stop(self, now: float, reason: str = "stopped") -> None:
        """Stop syncing (the user chose to work offline); no retry until ``start``."""
        self._stopped_by_user = True
        if self.info.phase not in (Phase.OFFLINE, Phase.STOPPED):
            self._out.append(Close(reason))
        self._reset_conn()
        note, self._aside_note = self._aside_note, ""
        self._set(phase=Phase.STOPPED, since=now, retry_at=None,
                  **({"last_error": note} if note else {}))

    def connected(self, now: float) -> None:
        """The connection is open: ask the hub's status first."""
        self._dropping = False
        if self.info.phase != Phase.CONNECTING:
            self._out.append(Close("unexpected connection"))
            return
        self._set(phase=Phase.HANDSHAKE)
        self._request("evt.stat", None, "stat", now)

    def disconnected(self, now: float, reason: str = "", code: int = 0,
                     too_big: int = 0) -> None:
        """The connection closed or could not be opened: retry after a backoff. ``code``:
        the close code the hub sent first (0: none, or this side closed first). ``too_big``:
        this side closed it (1009) on a message from the hub over this limit, in bytes: the
        status says so in the user's words, with the fix (:func:`reply_too_big`); with a
        daql hub sync stops (it answers a catch-up in one message: every retry downloaded
        the same message, bigger, and failed again, for ever; wire review 12, finding 2)."""
        stop = bool(too_big) and not self._hub_acks
        cut = False
        if too_big and self._hub_acks:
            # an Outpost hub cuts a catch-up in batches of at most lim events: ask again
            # for half as many (session 12's note: the same batch came for ever, with
            # backoff); one event at a time too big: nothing smaller to ask for
            asked = self._ask_lim or 5000  # lim 0: the hub's default, at most 5,000
            if asked > 1:
                self._lim_cut, cut = max(1, asked // 2), True
                reason = (f"{REPLY_TOO_BIG} ({too_big / MIB:g} MiB): nothing of it was "
                          f"stored; asking again for {self._lim_cut:,} events per batch "
                          f"instead of {asked:,}")
            else:
                stop, reason = True, batch_too_big(too_big)
        elif too_big:
            reason = reply_too_big(too_big, stop)
        if self._probe is not None:
            # the search for where the histories part was cut: stop with what is known
            self._end_probe(now, exact=False)
        was_online = self.info.online
        if code == CLOSE_TOO_BIG and self._sat_out:
            self._closed_too_big()
            self._inflight.clear()  # the hub closed on the request: it published nothing
            self._inflight_text.clear()
        self._reset_conn()
        self._dropping = False
        note, self._aside_note = self._aside_note, ""
        if self.info.phase == Phase.STOPPED:
            if note:
                self._set(last_error=note)
            return
        if stop:  # an edit in flight was put aside (_reset_conn), as on any lost answer
            self._set(phase=Phase.STOPPED, since=now, retry_at=None, progress=(0, 0),
                      sending=(0, 0), last_error=f"{reason}; {note}" if note else reason)
            return
        # a smaller batch asked for (cut): at once, as after a first failure (at most ~13
        # times from lim 5000 to 1), the backoff kept for failures of the hub or the link
        delay = self.backoff.delay(0 if cut else self.info.attempts, self.rnd)
        err = reason or self.info.last_error
        if note:
            err = f"{err}; {note}" if err else note
        since = now if was_online or not self.info.since else self.info.since
        self._set(phase=Phase.OFFLINE, since=since, retry_at=now + delay,
                  attempts=self.info.attempts + (not cut), last_error=err, progress=(0, 0),
                  sending=(0, 0))

    def tick(self, now: float) -> None:
        """Time passed: reconnect when the backoff is over; drop a connection whose request
        went unanswered for ``timeout`` seconds."""
        ph = self.info.phase
        if ph == Phase.OFFLINE and self.info.retry_at is not None and now >= self.info.retry_at:
            self._set(phase=Phase.CONNECTING, retry_at=None)
            self._out.append(Open())
            return
        for kind, sent in self._waiting.values():
            if now >= sent + self.timeout and self._probe is not None:
                self._end_probe(now, exact=False)  # a probe unanswered: stop with what is known
                return
            if now >= sent + self.timeout:  # the same sum as wake_at (float rounding)
                self._set(last_error=(
                    f"the hub did not answer {kind} within {self.timeout:g} s and sent nothing "
                    "meanwhile: the network is down or stalled (a slow link is fine while "
                    "data arrives); check it; the sync retries and resumes where it stopped"))
                # stop timing this connection's requests (a wake time left in the past made the
                # adapter spin on tick() until the close completed) and store nothing more from
                # it: a late reply would be ignored and later pushes would skip its events
                self._drop("request timeout")
                return

    def receiving(self, now: float) -> None:
        """Bytes are arriving from the hub (the adapter says so at most about once a
        second): the requests in flight are not unanswered, their replies are on the way.
        On a slow link a catch-up reply of ~1 MB takes minutes (8 KB/s: two); timed from
        the request, it was dropped at ``timeout`` and asked again, forever (safety review
        10, finding 4). Their timers restart now: ``timeout`` counts silence, not size."""
        if self._waiting:
            self._waiting = {tok: (kind, now) for tok, (kind, _) in self._waiting.items()}

    def local_change(self, now: float) -> None:
        """The user queued a transaction: send it now when live (even while hub data is
        being stored: ``SyncStore.outbox`` never shows an edit whose base is not yet moved
        past a stored ack)."""
        self._send_unsent(now)

    def received(self, text: str | bytes | Incoming, now: float) -> None:
        """A frame arrived from the hub (its text, or :func:`decode_incoming` of it)."""
        if self._dropping:
            return  # the connection is being dropped: storing more would skip what failed
        inc = text if isinstance(text, Incoming) else decode_incoming(text)
        frame, body = inc.frame, inc.body
        if inc.err is not None or frame is None:
            self._set(last_error=f"bad frame from the hub: {inc.err}")
            self._drop("bad frame")
            return
        if not frame.tok:
            if frame.subj == "evt.update":
                self._on_push(body, now, inc.res)
            return
        waiting = self._waiting.pop(frame.tok, None)
        if waiting is None:
            return  # a stale or duplicated reply: ignore
        kind = waiting[0]
        try:
            if kind == "stat":
                self._on_stat(body, now)
            elif kind == "sat":
                self._on_sat(body, now, inc.res, self._inflight.pop(frame.tok, ()),
                             self._inflight_text.pop(frame.tok, ()))
            elif kind == "probe":
                self._on_probe(body, now)
            elif kind == "own":
                self._on_own(frame.tok, body, now)
        except WireError as exc:
            self._set(last_error=f"bad {kind} reply from the hub: {exc}")
            self._drop("bad reply")

    # -- handlers ------------------------------------------------------------------------------

    def _refuse(self, now: float, st: Status, close: str, why: str, back: str = "",
                lost: bool = False) -> None:
        """Stop sync for good with this hub (its ``evt.stat`` ``st``): nothing is sent or
        stored, no retry. The status error is ``why`` (what the handshake found), then that
        sync stopped and the fix (:func:`new_dir_fix`, with ``back`` and ``lost``)."""
        self._set(phase=Phase.STOPPED, since=now, hub_rev=st.rev, hub_mig=st.mig,
                  last_error=f"{why}: sync stopped, nothing was sent or changed; "
                             f"{new_dir_fix(back, lost, self.store.unresolved())}")
        self._out.append(Close(close))
        self._reset_conn()

    def _hub_lacks(self, st: Status) -> str:
        """``"; ..."`` naming the edits of this replica its hub accepted that the hub serving
        ``st`` (the same ledger) does not hold, or ``""``: it was restored from a backup
        taken before the last of them (a restore point at a revision before it), or its
        revision is before it (a copy of an older file)."""
        acked = self.store.acked_rev()
        if not acked or not (st.rev < acked
                             or restore_lost(st, self.store.restore_points(), acked)):
            return ""
        return ("; the hub does not hold every edit of this replica it accepted (up to "
                f"revision {format_rev(acked)}; its backup was taken before them, or a hub "
                "still running on the old database accepted them): they are on this replica "
                "only")

    def _on_stat(self, body: Any, now: float) -> None:
        err = decode_error(body)
        if err is not None:
            self._set(last_error=f"hub refused evt.stat: {err[0]}")
            self._drop("stat refused")
            return
        st = dec_status(body.get("res") if isinstance(body, dict) else None, "evt.stat result")
        res0 = body.get("res") if isinstance(body, dict) else None
        # an Outpost hub says "acks" (session 11); one of its other extensions says the same
        # of an older one (every Outpost hub acks uids); a daql hub serves none of them
        self._hub_acks = isinstance(res0, dict) and any(
            k in res0 for k in ("acks", "ledger", "max_message", "cont", "role"))
        mine = self.store.mig()
        have = self.store.ledger()
        if st.mig and mine and st.mig != mine:
            # a schema change restores a backup into a new database: the edits the old hub
            # accepted after that backup (or a hub left running on the old database accepted
            # after the switch) are not on this hub: said here too, with --accepted (session
            # 15, before: this check returned first, the message said only "schema differs",
            # and a replica with nothing pending looked safe to leave behind)
            lacks = "" if st.ledger and have and st.ledger != have else self._hub_lacks(st)
            self._refuse(now, st, "schema mismatch", f"the hub's schema version {st.mig} "
                         f"differs from this satellite's {mine}" + lacks, "its own hub",
                         lost=bool(lacks))
            return
        if st.ledger and have and st.ledger != have:
            self._refuse(now, st, "another ledger", (
                f"this replica came from another ledger: the hub serves ledger {st.ledger}, "
                f"this replica holds ledger {have} (another hub, or another project with the "
                "same schema)"), "the hub of its ledger")
            return
        mine_rev = self.store.rev()
        known = self.store.restore_points()
        # what the hub acked counts as held: a restore before it lost an accepted edit
        acked = self.store.acked_rev()
        held = max(mine_rev, acked)
        lost = restore_lost(st, known, held)
        if lost:
            self._refuse(now, st, "hub restored", lost, lost=True)
            return
        if st.rev < held:
            # not the ledger this replica came from (another one, an older backup), a
            # rollback of the hub's file (a copy of an older one, a disk or VM snapshot: no
            # restore point says so), or a hub of a cluster still catching up: never sync
            # against it; try again later. The edits it accepted after its revision (the
            # replica holds their acks, perhaps not their events: a catch-up cut short)
            # are counted as held: a hub behind them lost them (session 14, before: only
            # the replica's revision was compared, the hub's catch-up then said "synced"
            # and the accepted edit stayed shown confirmed here, lost on the hub)
            gone = acked > st.rev
            what = (f"behind this replica's {format_rev(mine_rev)}" if st.rev < mine_rev else
                    f"behind revision {format_rev(acked)} at which it accepted an edit of "
                    f"this replica (this replica is at {format_rev(mine_rev)})")
            self._set(hub_rev=st.rev, hub_mig=st.mig, last_error=(
                f"the hub is at revision {format_rev(st.rev)}, {what}: it does not hold the "
                "ledger this replica came from (another hub, a restore of an older backup or "
                "a rollback of its file, or a hub still catching up)"
                + ("; the edits it accepted after its revision are on this replica only"
                   if gone else "")
                + "; nothing was sent or changed, retrying later. For another ledger or a "
                f"hub that lost them, {new_dir_fix(lost=gone, rejected=self.store.unresolved())}"))
            self.behind = (st.rev, held)
            self.behind_lost = gone
            self._drop("hub behind the replica")
            return
        self.behind = None
        self.behind_lost = False
        self._note_lost(None)  # a hub that passes every check (one put right) lacks none
        if st.ledger and not have:
            # the first handshake that passed the checks: this replica holds that ledger from
            # now on (stored before anything is sent or stored from it)
            try:
                self.store.adopt_ledger(st.ledger)
            except OutpostError as exc:
                self._set(last_error=f"storing the hub's ledger id failed: {exc}")
                self._drop("storage failed")
                return
        points = hub_restores(st)
        if points and points != tuple(known):
            # every restore since the last one adopted was at or after this replica's
            # revision: the replica is a prefix of the restored ledger; it holds the hub's
            # restore points from now on (before anything is sent): the next handshake
            # checks only the restores made since
            try:
                self.store.adopt_restore_points(points)
            except OutpostError as exc:
                self._set(last_error=f"storing the hub's restore point failed: {exc}")
                self._drop("storage failed")
                return
        note_hub: Callable[[bool], None] | None = getattr(self.store, "note_hub", None)
        if note_hub is not None:
            note_hub(self._hub_acks)
        trust: Callable[[bool], None] | None = getattr(self.store, "trust_hub", None)
        if trust is not None:
            # a hub whose schema version matched (it was compared above) sends events that
            # fit the schema; one serving none (daql: "") was not compared: the store
            # checks every event of it before storing it (HubDataError: sync stops)
            trust(bool(st.mig and mine))
        self._last_held = None
        last_event: Callable[[], tuple[int, Rev]] | None = getattr(self.store, "last_event",
                                                                    None)
        at = self._rev()  # the requests' rev: hub data still being stored counts (deferred)
        if last_event is not None and self._hub_acks and at:
            # an Outpost hub checks that its history up to this revision is the replica's
            # (a daql hub ignores the field: not checked; an empty replica has none to check).
            # Never skipped: once the replica has stored a catch-up past a rolled-back
            # hub's new events, its last event is the hub's, and the check would pass
            pend = [it for it in (self._applying, *self._applies) if it is not None and it.evs]
            try:
                self._last_held = (at, (pend[-1].evs[-1].id, pend[-1].evs[-1].rev) if pend
                                   else last_event())
            except OutpostError as exc:
                self._set(last_error=f"reading the replica failed: {exc}")
                self._drop("storage failed")
                return
        res = body.get("res") if isinstance(body, dict) else None
        # the hub's own database failing: said while this connection waits for it (one that
        # works again clears what an earlier connection said)
        down = hub_db_problem(res)
        before = self.info.last_error
        self._set(phase=Phase.CATCHUP, since=now, hub_rev=st.rev, hub_mig=st.mig,
                  progress=(0, 0), last_error=down or (
                      "" if before.startswith(HUB_DB_DOWN) else before))
        self._done_evs = 0
        self._total = 0
        most = res.get("max_message") if isinstance(res, dict) else None  # ours: its limit
        self._hub_max = most if type(most) is int and most > 0 else 0
        role = res.get("role") if isinstance(res, dict) else None  # ours: what the user may do
        if role in ("reader", "writer"):
            self._note_role(role)
        cont = isinstance(res, dict) and res.get("cont") is True
        if self._check_own(now, cont):
            return  # the first evt.sat once the hub answered
        self._first_sat(now, cont)

    def _first_sat(self, now: float, cont: bool) -> None:
        self._send_sat(now, only_new=False)
        if cont:
            # ours: the hub honours cont (it says so up front): the second request goes
            # with the first, so the hub does not idle while the first reply travels
            self._cont = True
            self._fill(now)

    def _check_own(self, now: float, cont: bool) -> bool:
        """Once per replica (session 16), before anything is sent: ask an Outpost hub whether
        its history at each of the newest edits it accepted from this replica (the store's
        optional ``own_unchecked``) is the replica's, with a probe per revision (an
        ``evt.sat`` of no edits and no topics at that revision with the replica's last
        event at or before it: the ``last`` check, asked there). The ``last`` check of the
        connection's first request looks at the replica's revision only: a replica that
        stored a rolled-back hub's later events (synced before session 15, which sent no
        ``last``) has the hub's last event, and passes it, while the hub lacks edits it
        accepted from it (merge review 15a). True: probes sent (:meth:`_on_own`)."""
        own: Callable[[Rev], list[tuple[str, Rev]] | None] | None = getattr(
            self.store, "own_unchecked", None)
        last_at: Callable[[Rev], tuple[int, Rev]] | None = getattr(self.store, "last_event_at",
                                                                    None)
        if own is None or last_at is None or not self._hub_acks:
            return False
        try:
            todo = own(self.store.rev())  # stored: their events are held
            if todo is None:
                return False
            if not todo:
                self.store.mark_own_checked()  # type: ignore[attr-defined]
                return False
            by_rev: dict[Rev, list[str]] = {}
            for uid, rev in todo:
                by_rev.setdefault(rev, []).append(uid)
            asks = [(rev, uids, last_at(rev)) for rev, uids in by_rev.items()]
        except OutpostError:
            return False  # asked on a later connection
        c = self._own = _OwnCheck(cont, {}, [], asks[::-1])
        for _ in range(OWN_IN_FLIGHT):
            self._own_next(c, now)
        return True

    def _own_next(self, c: _OwnCheck, now: float) -> None:
        """Send the next probe of the once-per-replica check, if any is left."""
        if c.todo:
            rev, uids, last = c.todo.pop()
            tok = self._request("evt.sat", enc_sat(SatReq(rev, (), (), last=last)), "own", now)
            c.asks[tok] = (rev, uids)

    def _on_own(self, tok: str, body: Any, now: float) -> None:
        """A probe of :meth:`_check_own` answered: once all are, the first ``evt.sat`` goes,
        or sync stops for good when the hub's history at one of them is not the replica's."""
        c = self._own
        if c is None or tok not in c.asks:
            return
        rev, uids = c.asks.pop(tok)
        err = decode_error(body)
        if err is not None:
            if not (isinstance(body, dict) and body.get("code") == ERR_CODE_DIVERGED):
                self._set(last_error=f"hub refused evt.sat: {err[0]}")
                self._drop("sat refused")  # asked again on the next connection
                return
            c.lost.extend((rev, u) for u in uids)
        self._own_next(c, now)
        if c.asks:
            return
        self._own = None
        if c.lost:
            self._own_lost(now, c)
            return
        with contextlib.suppress(OutpostError):  # asked again next time
            self.store.mark_own_checked()  # type: ignore[attr-defined]
        self._first_sat(now, c.cont)

    def _own_lost(self, now: float, c: _OwnCheck) -> None:
        """The hub's history at edits it accepted from this replica is another: it lacks
        them (its file rolled back, its clock behind them), and this replica synced past
        its new events before that was checked. Sync stops for good, nothing sent or
        stored; the edits are marked (``note_lost_uids``)."""
        note: Callable[[list[str]], None] | None = getattr(self.store, "note_lost_uids", None)
        lost = sorted(c.lost)
        if note is not None:
            with contextlib.suppress(OutpostError):
                note([u for _, u in lost])
        first, uid = lost[0]
        n = len(lost)
        why = (f"the hub's history at revision {format_rev(first)}, at which it accepted "
               f"an edit of this replica ({uid}), is not the one this replica holds"
               f"{f' (nor at {n - 1} later edits of it the hub accepted)' if n > 1 else ''}"
               ": the hub lost or reused revisions this replica holds (its file was "
               "rolled back to an older copy, e.g. a VM snapshot reverted with its clock or "
               "a point-in-time recovery, and it published again with its clock behind "
               "them), and this replica synced with it before that was checked, so it may "
               "also lack the hub's changes made since. Sync stopped; nothing was sent or "
               f"stored; {new_dir_fix(lost=True, rejected=self.store.unresolved())}")
        self._stop_diverged(now, why)

    def _on_sat(self, body: Any, now: float, pre: SatRes | Update | None = None,
                sent: tuple[Trans, ...] = (), texts: Sequence[bytes] = ()) -> None:
        self._sat_out = max(0, self._sat_out - 1)
        err = decode_error(body)
        if err is not None and sent and not self._hub_acks and len(sent) == 1 \
                and not (isinstance(body, dict) and body.get("code")):
            # a daql hub publishes all of a request's transactions or answers an error: it
            # refused this one (a request carries one, see _send_sat), and would refuse it
            # every time: it goes to the user's conflicts with the hub's words, the others
            # go on (before, it was sent again and refused for ever, holding back the rest)
            t = sent[0]
            self._store(SatRes(ZERO_REV, (), (), (Reject(t.uid, (
                f"the hub refused this edit: {err[0]} (it applied nothing of it); change it "
                "and save it again, or drop it (outpost resolve UID --keep theirs)")),)))
            self._set(last_error=f"{REJECTED_BY_HUB}{t.uid}: {err[0]}")
            self._answer(1)
            self._send_sat(now, only_new=self.info.phase == Phase.LIVE)
            return
        if err is not None:
            if (isinstance(body, dict) and body.get("code") == ERR_CODE_READONLY
                    and self._read_only):
                # another request in flight refused the same way (cont): already handled,
                # its edits stay pending as well
                return
            if (isinstance(body, dict) and body.get("code") == ERR_CODE_READONLY
                    and not self._read_only):
                # the user may only read: nothing was stored. Catch up without the edits (they
                # stay pending, the reason stays in the status) instead of reconnecting for
                # ever without ever getting the hub's changes
                self._read_only = f"hub refused the edits: {err[0]}"
                self._note_role("reader", self._read_only)
                self._sent.clear()
                self._encoded.clear()
                self._ob = self._prepared = None
                self._answered = self._to_send = self._sent_done = 0
                self._set(last_error=self._read_only, sending=(0, 0))
                self._send_sat(now, only_new=False)
                return
            if isinstance(body, dict) and body.get("code") == ERR_CODE_DIVERGED:
                self._diverged(now, body)
                return
            if isinstance(body, dict) and body.get("code") == ERR_CODE_READ:
                # the hub could not read its ledger to answer: the request's transactions it
                # published or refused before are in the reply (stored now, never sent
                # again); the replica stays where it was and the read is asked for again on
                # the next connection, after the backoff
                res = dec_read_failed(body, self._rev())
                if res.rejects:  # its very edit, applied with another token: the ack
                    res = self._applied_as_another(res)
                if res.acks or res.rejects:
                    self._store(res)
                # the hub's evt.stat said its database is down: that is the reason, said
                # in its words (merge review 16a: a stopped PostgreSQL showed only this)
                before = self.info.last_error
                self._set(last_error=before if before.startswith(HUB_DB_DOWN)
                          else f"the hub could not answer evt.sat: {err[0]}")
                self._drop("hub read failed")
                return
            self._set(last_error=f"hub refused evt.sat: {err[0]}")
            self._drop("sat refused")
            return
        res = pre if isinstance(pre, SatRes) else dec_sat_res(
            body.get("res") if isinstance(body, dict) else None, "evt.sat result")
        if res.own is not None:
            # ours: the hub left out the events and audits of this request's transactions
            # it applied (own): rebuilt from what was sent, the reply is what a full one is
            res = with_own(res, sent, texts, getattr(self.store, "acts_decoded", None))
        self._last_held = None  # the hub answered: its history up to the replica's is it
        if res.acks or res.rejects:
            self._hub_acks = True  # an Outpost hub (it names each transaction by uid)
        elif sent and not self._hub_acks:
            acks, rejects = self._daql_acks(sent, res)
            res = replace(res, acks=acks, rejects=rejects)
        res = self._own_applied(res)
        if res.cont:
            self._cont = True  # the hub continues each reply where the last one ended
        known = self._rev()
        if res.rev < known:
            # an answer from behind our replica (e.g. after a reconnect race): keep ours
            res = replace(res, rev=known)
        self._done_evs += len(res.evs)
        if res.total_max and self.info.phase == Phase.CATCHUP and not self._total:
            # ours: the hub said how big the catch-up is when it read this reply; this
            # replica's edits in the requests still in flight (sent with this one, cont) are
            # published after that count, and their events come in the catch-up too (a
            # laptop pushing 6,000 rows said "2,500 of 4,500 events", then "caught up:
            # 6,000 events"; user review 13, F6): once per catch-up
            self._total = res.total_max + sum(
                len(t.acts) for ts in self._inflight.values() for t in ts)
        elif sent and self._total and self.info.phase == Phase.CATCHUP and res.rejects:
            # counted above, not published: their events never come
            no = {r.uid for r in res.rejects}
            self._total -= sum(len(t.acts) for t in sent if t.uid in no)
        if sent:
            self._answer(len(sent))
            if self._lost:
                self._lost.difference_update(t.uid for t in sent)
        hub_rev = max(self.info.hub_rev, res.rev)
        if self._held and self._held[0].rev <= res.rev:
            # held pushes this reply covers (it carries every event up to its revision) would
            # be skipped after the last reply anyway: a long pipelined replay held them all
            self._held = [u for u in self._held if u.rev > res.rev]
        if res.more:
            # events published meanwhile may pass the hub's count: never "13 of 12"
            self._set(progress=(self._done_evs, max(self._total, self._done_evs)
                                if self._total else 0), hub_rev=hub_rev)
            # pipelined: ask for the next batch before storing this one
            self._sat_one = None  # no transactions in it
            self._request("evt.sat", enc_sat(SatReq(res.rev, (), self._tops(), self._ask_lim,
                                                    audits=True, cont=True)), "sat", now)
            self._sat_out += 1
            self._store(res)
            return
        self._store(res)
        if self._sat_out:
            # another request is in flight (cont): its reply follows this one; held pushes
            # wait for the last reply (they may overlap its events)
            self._set(phase=Phase.LIVE, last_sync=self._sync_time(now), hub_rev=hub_rev,
                      attempts=0,
                      progress=(self._done_evs, self._done_evs),
                      last_error=self._rejected_text(res) or self._read_only)
            self._send_unsent(now)
            return
        held, self._held = self._held, []
        self._lim_cut = 0  # caught up: the next catch-up asks for self.lim again
        for upd in held:
            if upd.rev > self._rev():
                self._store(upd)
                hub_rev = max(hub_rev, upd.rev)
        self._set(phase=Phase.LIVE, last_sync=self._sync_time(now), hub_rev=hub_rev, attempts=0,
                  progress=(self._done_evs, self._done_evs),
                  last_error=self._rejected_text(res) or self._read_only)
        # pipelined: the next transactions go out now, while this reply is stored (deferred),
        # so the hub publishes them while the satellite writes; its rev is this reply's
        self._send_unsent(now)

    def _diverged(self, now: float, body: dict[str, Any]) -> None:
        """The hub refused an ``evt.sat`` whose ``last`` was not its own last event at or
        before the replica's revision (``code`` ``diverged``, ours): its history up to that
        revision is not the replica's (its file rolled back, then publishes with its clock
        behind the lost revisions: no other check sees it once its revision passed the
        replica's). It published nothing of the request and nothing is stored: sync stops
        for good, as on event ids reused (``LostRevisionsError``)."""
        held = self._last_held
        try:
            hub = dec_last(body.get("last"), "evt.sat error")
        except WireError:
            hub = None

        def said(e: tuple[int, Rev] | None) -> str:
            return f"event {e[0]} at {format_rev(e[1])}" if e and e[0] else "none"

        at = format_rev(held[0]) if held is not None else "its revision"
        why = (f"the hub's history up to this replica's revision {at} is not the one this "
               f"replica holds: the hub's last event at or before it is {said(hub)}, this "
               f"replica's {said(held[1] if held is not None else None)}: the hub lost or "
               "reused revisions this replica holds (its file was rolled back to an older "
               "copy, e.g. a copy of last night's file, a VM snapshot reverted with its "
               "clock or a point-in-time recovery, and it published again with its clock "
               "behind them): edits it accepted from this replica may be lost on it, and "
               "its new changes up to that revision would be skipped here. Sync stopped; "
               "the hub refused the request whole (it stored none of the edits sent with "
               "it) and none of its data was stored here; "
               f"{new_dir_fix(lost=True, rejected=self.store.unresolved())}")
        self._reset_conn()
        # which of the replica's accepted edits the hub lacks: those after the last event both
        # hold. The hub's last event at or before the replica's revision may be one it
        # published after the rollback (its clock lagging: between the lost revisions), so
        # the edits after it are some of those lost, not all (merge review 15a): where the
        # histories part is looked for by probes, each an evt.sat of no edits and no topics
        # with an earlier rev and the replica's last event at or before it (the check
        # above, asked again: a session-15 hub answers it; nothing is published or sent back)
        upto: Callable[[int], tuple[int, Rev]] | None = getattr(self.store, "event_upto", None)
        last_at: Callable[[Rev], tuple[int, Rev]] | None = getattr(self.store, "last_event_at",
                                                                    None)
        hid, hrev = hub if hub else (0, ZERO_REV)
        sure = hrev + 1 if hid else ZERO_REV  # the hub holds no event in (hrev, rev]
        searchable = upto is not None and last_at is not None
        try:
            mine = upto(hid) if upto is not None and searchable and hid else None
        except OutpostError:
            mine = None
        if not hid or not searchable or mine == (hid, hrev):
            # the hub holds none up to the replica's revision, or its last one is the
            # replica's own: they part right after it (session 15's mark, exact here); a
            # store that cannot be searched: session 15's mark
            self._note_lost(sure - 1 if hid else ZERO_REV)
            self._stop_diverged(now, why)
            return
        self._note_lost(sure - 1, exact=False)  # kept at once: a kill during the search
        if mine is None:  # the replica could not be read: at least those
            self._stop_diverged(now, why)
            return
        if mine[0] == hid:
            sure = min(sure, mine[1])  # the replica's event hid is not the hub's: lost
        self._probe = _Probe(why=why, lo=0, hi=hid, sure=sure)
        self._next_probe(now)

    def _stop_diverged(self, now: float, why: str) -> None:
        self._out.append(Close("hub history differs"))
        self._reset_conn()
        self._set(phase=Phase.STOPPED, since=now, retry_at=None, progress=(0, 0),
                  sending=(0, 0), last_error=why)

    def _next_probe(self, now: float) -> None:
        """Send the next probe of the search (:class:`_Probe`), or end it once ``lo`` and
        ``hi`` meet: the hub lacks the replica's accepted edits after the revision of its
        event ``lo``, and holds those up to it."""
        p = self._probe
        assert p is not None
        upto: Callable[[int], tuple[int, Rev]] = self.store.event_upto  # type: ignore[attr-defined]
        at: Callable[[Rev], tuple[int, Rev]] = self.store.last_event_at  # type: ignore[attr-defined]
        try:
            while p.hi - p.lo > 1:
                if p.sent >= PROBES_MAX:
                    self._end_probe(now, exact=False)
                    return
                mid = (p.lo + p.hi) // 2
                eid, erev = upto(mid)
                if eid <= p.lo:
                    p.lo = mid  # the replica holds no event in (lo, mid]: nothing differs
                    continue
                last = at(erev)
                p.asked, p.top = eid, max(last[0], mid)
                p.sent += 1
                self._request("evt.sat", enc_sat(SatReq(erev, (), (), last=last)), "probe", now)
                return
        except OutpostError:
            self._end_probe(now, exact=False)
            return
        self._end_probe(now, exact=True)

    def _on_probe(self, body: Any, now: float) -> None:
        """A probe's answer: the same history up to its revision (a reply), or another
        (``diverged``); any other answer ends the search with what is known."""
        p = self._probe
        if p is None:
            return
        err = decode_error(body)
        if err is None:
            p.lo = min(p.top, p.hi - 1)  # (p.hi - 1: a hub whose answers do not fit together)
        elif isinstance(body, dict) and body.get("code") == ERR_CODE_DIVERGED:
            p.hi = p.asked
            try:
                rev = self.store.event_upto(p.asked)[1]  # type: ignore[attr-defined]
            except OutpostError:
                rev = p.sure
            p.sure = min(p.sure, rev)
        else:
            self._end_probe(now, exact=False)
            return
        self._next_probe(now)

    def _end_probe(self, now: float, exact: bool) -> None:
        """End the search: mark the accepted edits after the last event both hold (exact),
        else those surely lost (a lower bound, said so where they show), and stop."""
        p, self._probe = self._probe, None
        if p is None:
            return
        after: Rev = p.sure - 1 if p.sure else ZERO_REV
        try:
            # the hub holds the replica's events up to lo: its edits up to there are held
            held = self.store.event_upto(p.lo)[1] if p.lo else ZERO_REV  # type: ignore[attr-defined]
        except OutpostError:
            held, exact = ZERO_REV, False
        self._note_lost(held if exact else after, exact=exact, since=held)
        if self.info.phase != Phase.STOPPED:
            self._stop_diverged(now, p.why)

    def _note_lost(self, after: Rev | None, exact: bool = True,
                   since: Rev = ZERO_REV) -> None:
        """Tell the store the hub lacks the edits it accepted after ``after`` (``None``: a
        hub passed every check; ``exact`` False: at least those, and maybe those after
        ``since``, before which it holds them), when it keeps that (optional
        ``note_lost``)."""
        note: Callable[..., None] | None = getattr(self.store, "note_lost", None)
        if note is not None:
            # a mark for the user: the sync error says what matters either way
            with contextlib.suppress(OutpostError):
                if exact:
                    note(after)
                else:
                    note(after, exact=False, since=since)

    def _own_applied(self, res: SatRes) -> SatRes:
        """``res`` with an ack for each event's audit naming a transaction still pending here:
        the hub applied it before and its ack was lost (a crash before the reply was stored,
        a connection lost with requests in flight), so a catch-up brings its events back
        ahead of the ack (which comes later, when the uid is sent again). The audit's ``uid``
        and ``rev`` are what that ack says (the hub acks a uid it applied with its original
        revision), so the edit leaves the queue with its events instead of being checked, and
        shown, as a conflict with itself until then. Needs the store's optional
        ``pending_among`` and the hub's audits (ours); else ``res`` as is."""
        if res.rejects:
            res = self._applied_as_another(res)
        among: Callable[[list[str]], set[str]] | None = getattr(self.store, "pending_among",
                                                                None)
        if among is None or not res.audits or res.acks is res.audits:
            return res  # (the audits are the acks, dec_sat_res: each audit's uid is acked)
        # a uid the hub rejects in this reply is not this satellite's, whatever an audit
        # says: another transaction (another user's) was applied under it (rules.uid_clash),
        # unless the audit's events are this pending transaction's (checked below): then it
        # is this very edit, applied with another token (the token changed between its send
        # and its lost answer; a hub before session 16 rejected it as "other actions")
        clash = {r.uid for r in res.rejects if r.err.startswith(uid_clash_prefix(r.uid))}
        acked = {a.uid for a in res.acks} | {r.uid for r in res.rejects if r.uid not in clash}
        uids = [a.uid for a in res.audits if a.uid and a.uid not in acked]
        mine = among(uids) if uids else None
        if not mine:
            return res
        same: Callable[[dict[str, list[Event]]], set[str]] | None = getattr(
            self.store, "pending_same", None)
        if same is None:
            mine -= clash
            if not mine:
                return res
        else:
            # only an audit whose events are what the pending transaction makes (another
            # client's transaction under this uid is not this one: it stays pending, and the
            # hub rejects it when it is sent: rules.uid_clash)
            revs = {a.rev: a.uid for a in res.audits if a.uid in mine}
            evs: dict[str, list[Event]] = {u: [] for u in revs.values()}
            for e in res.evs:
                u = revs.get(e.rev)
                if u is not None:
                    evs[u].append(e)
            mine = same(evs)
            if not mine:
                return res
        extra = tuple(Ack(a.uid, a.rev) for a in res.audits if a.uid in mine)
        rejects = (tuple(r for r in res.rejects if r.uid not in mine) if clash & mine else
                   res.rejects)
        return replace(res, acks=res.acks + extra, rejects=rejects)

    @staticmethod
    def _applied_as_another(res: SatRes) -> SatRes:
        """``res`` with each reject that says the transaction was applied, with these same
        actions, under another user's token (a hub since session 16: ``rules.uid_clash``)
        made the ack it stands for, at the revision it names: the token changed between the
        edit's send and its lost answer, so its resend came with the new token. The edit is
        accepted (its history names the first user, as the hub's audit does), not a conflict
        to resolve (session 16: "nothing of this one was applied", which was false)."""
        acks: list[Ack] = []
        rejects: list[Reject] = []
        for r in res.rejects:
            m = _SAME_ELSEWHERE.match(r.err, len(uid_clash_prefix(r.uid))) \
                if r.err.startswith(uid_clash_prefix(r.uid)) else None
            rev = ZERO_REV
            if m:
                with contextlib.suppress(ValueError):
                    rev = parse_rev(m.group(1))
            if rev:
                acks.append(Ack(r.uid, rev))
            else:
                rejects.append(r)
        if not acks:
            return res
        return replace(res, acks=res.acks + tuple(acks), rejects=tuple(rejects))

    @staticmethod
    def _daql_acks(sent: tuple[Trans, ...], res: SatRes
                   ) -> tuple[tuple[Ack, ...], tuple[Reject, ...]]:
        """The acks a daql hub's ``res`` reply to a request carrying ``sent`` stands for: it
        published every transaction of the request (else it answers an error). The reply
        holds every event of the request's topics (all of the schema's) after its ``rev``,
        the request's own included, each transaction's events under one revision of their
        own. A transaction is acked at the **earliest** revision of the reply whose events
        are exactly its actions (record, command and values; :func:`_daql_same`), and only
        the events of that revision count as the user's own (``accepted_among``). A
        colleague's publish that lands between the hub applying the edit and building its
        reply comes later in the reply: taken as the edit's own (the latest event of its
        record and command, before session 12), the colleague's change was never checked,
        and the next edit overwrote it with no conflict (wire review 12, finding 1).

        One with an action that no event of the reply matches (record and command) was not
        applied (a hub that drops a transaction it refuses and answers all the same):
        rejected, so that it is neither lost as accepted nor sent again blindly. One whose
        record and command are there but under no revision with exactly its changes (the hub
        changed its values, or merged it with another change) cannot be told applied or
        not: put aside (:data:`PUT_ASIDE`, as an answer lost), never taken as the user's
        own. Stored with the reply, in one commit, the acks take the user's own events out
        of the conflict check, as an Outpost hub's acks do.

        A colleague's change the hub applied before the edit (after the request's ``rev``:
        the replica had not received it when the edit was sent, the Go hub pushes every 200
        ms) is in the reply before the edit's revision. daql ignores ``base``: the edit
        overwrote it. Such an edit is stored rejected with :data:`DAQL_OVERWROTE` (its reason
        code :data:`core.satellite.api.OVERWROTE`) and the changes it overwrote as conflicts
        (:func:`_overwritten`: a ``mod`` of a field they set, a ``del`` of a record they
        changed; a ``mod`` of other fields merges, DESIGN §3): a conflict after the fact,
        whose keep theirs sends their values back (wire review 13; before, acked: "0
        conflicts")."""
        have = {(e.top, e.key, e.cmd) for e in res.evs}
        by_rev: dict[Rev, list[Event]] = {}
        for e in res.evs:
            by_rev.setdefault(e.rev, []).append(e)
        revs = sorted(by_rev)
        acks: list[Ack] = []
        rejects: list[Reject] = []
        first = 0  # daql publishes a request's transactions in order: each after the last
        for t in sent:
            if not all((a.top, a.key, a.cmd) in have for a in t.acts):
                rejects.append(Reject(t.uid, (
                    "the hub answered the request that carried this edit, but its answer "
                    "holds none of the edit's changes: it did not apply it (it gave no "
                    "reason); check the record, then send it again (outpost resolve UID "
                    "--keep mine) or drop it (outpost resolve UID --keep theirs)")))
                continue
            at = next((i for i in range(first, len(revs))
                       if _daql_same(t.acts, by_rev[revs[i]])), None)
            if at is None:
                rejects.append(Reject(t.uid, DAQL_UNCLEAR))
                continue
            over = _overwritten(t.acts, [e for r in revs[first:at] for e in by_rev[r]])
            if over:
                # applied over a colleague's change the hub took just before it (the replica
                # had not received it when the edit was sent): a conflict after the fact
                rejects.append(Reject(t.uid, DAQL_OVERWROTE, over, revs[at]))
            else:
                acks.append(Ack(t.uid, revs[at]))
            first = at + 1
        return tuple(acks), tuple(rejects)

    def _daql_ready(self, now: float) -> bool:
        """Whether an edit may go to a daql hub now. A daql hub ignores ``base``: an edit sent
        with the catch-up overwrote a colleague's later change before the replica knew of
        it. So edits go only when live, nothing in flight and everything received stored
        (the store's view has checked the pending edits against it: a push that came
        meanwhile too), one at a time. First, an edit still marked unconfirmed (sent
        earlier, its answer never stored: a process stopped, a reply that could not be
        stored, a connection lost) is put aside, never sent again: with nothing in flight
        or being stored, its fate cannot be learnt any more; and a pending edit the view
        marks as a local conflict (``local_conflicts``, optional in :class:`SyncStore`) is
        rejected with the view's reason, as an Outpost hub would reject it, for the user to
        resolve. False while those are being stored: the next send comes after them."""
        if self.info.phase != Phase.LIVE or self._sat_out or self.applying or self._inflight:
            return False
        unconfirmed: Callable[[], list[str]] | None = getattr(self.store, "unconfirmed", None)
        lost_uids = unconfirmed() if unconfirmed is not None else []
        if lost_uids:
            self._sent.update(lost_uids)  # the outbox has them until the reject is stored
            self._set_aside(lost_uids, "the app or command stopped (or could not store "
                            "the hub's reply)")
            note, self._aside_note = self._aside_note, ""
            self._set(last_error=note)
            if self.applying:
                return False
        lc: Callable[[], Mapping[str, tuple[str, tuple[Conflict, ...]]]] | None = getattr(
            self.store, "local_conflicts", None)
        marked = lc() if lc is not None else None
        if marked:
            sendable = {t.uid for t in self.store.outbox()}
            bad = [u for u in marked if u in sendable and u not in self._sent]
            if bad:
                self._sent.update(bad)
                # NOT_SENT first: its reason code (core.satellite.api.refused_here), so the
                # status line and the conflicts views say it was not sent, not "rejected by
                # the hub" (session 12: they did, though the hub never saw it)
                why = {u: f"{marked[u][0]}{NOT_SENT_WHY}" for u in bad}
                rejects = tuple(Reject(u, f"{NOT_SENT}{why[u]}", marked[u][1]) for u in bad)
                self._store(SatRes(ZERO_REV, (), (), rejects))
                self._set(last_error=rejection_text(NOT_SENT, [(u, why[u]) for u in bad]))
                if self.applying:
                    return False
        return True

    def _put_aside(self) -> None:
        """The connection ends with ``evt.sat`` requests in flight. An Outpost hub acks a
        resent uid with its original revision: they are simply sent again. A daql hub does
        not know uids: it may have published the request before the connection broke, and
        sending it again could make the edit twice. So its transactions are put aside (stored
        as rejected, with why, among the user's conflicts): the user checks the hub and sends
        them again (keep mine) or drops them (keep theirs)."""
        sent = [t for ts in self._inflight.values() for t in ts]
        self._inflight.clear()
        self._inflight_text.clear()
        if sent and self._hub_acks and self._hold:
            self._lost.update(t.uid for t in sent)  # sent again first (hold_edits)
            self._lost_ob = None
        if not sent or self._hub_acks:
            return
        self._set_aside([t.uid for t in sent], "the connection to the hub was lost")

    def _set_aside(self, uids: Sequence[str], what: str) -> None:
        """Store ``uids`` as rejected (put aside: :meth:`_put_aside`) because of ``what``."""
        # PUT_ASIDE first: its reason code (core.satellite.api.is_put_aside), so the
        # conflicts views show it as sent with its answer lost, not as refused
        why = put_aside_err(what)
        self._store(SatRes(ZERO_REV, (), (), tuple(Reject(u, why) for u in uids)))
        n = len(uids)
        self._aside_note = (
            f"{n} edit{'' if n == 1 else 's'} put aside: {what} before the hub answered, "
            f"and this hub (daql) does not confirm edits, so {'it' if n == 1 else 'they'} "
            "may have reached it; see outpost conflicts (resolve --keep mine sends again, "
            "--keep theirs drops)")

    @staticmethod
    def _rejected_text(res: SatRes) -> str:
        errs = [(r.uid, r.err) for r in res.rejects if not r.err.startswith(OVERWROTE)]
        if errs:
            return rejection_text(REJECTED_BY_HUB, errs)
        return rejection_text(OVERWROTE_ON_HUB, [(r.uid, r.err) for r in res.rejects])

    def _on_push(self, body: Any, now: float, pre: SatRes | Update | None = None) -> None:
        if self.info.phase not in (Phase.CATCHUP, Phase.LIVE):
            return
        try:
            upd = pre if isinstance(pre, Update) else dec_update(body)
        except WireError as exc:
            self._set(last_error=f"bad evt.update from the hub: {exc}")
            self._drop("bad push")
            return
        if self.info.phase == Phase.CATCHUP or self._sat_busy:
            # a reply is outstanding: its events and the push may overlap; keep the order
            self._held.append(upd)
            return
        if upd.rev > self._rev():
            self._store(upd)
        self._set(hub_rev=max(self.info.hub_rev, upd.rev), last_sync=self._sync_time(now))

    # -- helpers -------------------------------------------------------------------------------

    def _tops(self) -> tuple[str, ...]:
        return tuple(self.store.topics())

    def _rev(self) -> Rev:
        """The replica's revision once everything received is stored."""
        rev = self.store.rev()
        if self._applying is not None:
            rev = max(rev, self._applying.rev)
        for it in self._applies:
            rev = max(rev, it.rev)
        return rev

    def _sync_time(self, now: float) -> float:
        """``last_sync`` for a sync reached at ``now``: ``now`` when everything received is
        stored, else the one before, and ``now`` is set by :meth:`applied` once it is (with
        ``defer_apply`` the reply is stored after it is handled: a full disk refuses it)."""
        if not self.applying:
            return now
        self._synced_at.append(self._queued)
        return self.info.last_sync

    def _store(self, item: SatRes | Update) -> None:
        if not self.defer_apply:
            if isinstance(item, SatRes):
                self.store.apply_sat(item)
            else:
                self.store.apply_update(item)
            return
        self._applies.append(item)
        self._queued += 1
        self._pump()

    def _pump(self) -> None:
        if self._applying is None and self._applies:
            item = self._applies.pop(0)
            n = 1
            # replies that queued up while the last one was stored go in one write (one
            # commit, one refresh): a satellite that fell behind the hub catches up
            while isinstance(item, SatRes) and self._applies:
                nxt = self._applies[0]
                if not isinstance(nxt, SatRes) or len(item.evs) + len(nxt.evs) > MERGE_EVENTS:
                    break
                self._applies.pop(0)
                item = merge_sat(item, nxt)
                n += 1
            self._applying, self._in_apply = item, n
            self._out.append(Apply(item))

    def _closed_too_big(self) -> None:
        """The hub closed the connection with 1009 (message too big) while ``evt.sat`` was
        in flight: the request was bigger than the hub takes."""
        one = self._sat_one if self._sat_out == 1 else None
        if one is not None:
            # a request of this one transaction: it would be closed on every time, for ever
            # (halving the batch cannot help). Rejected like an edit over a limit the hub
            # serves: shown to the user among the conflicts, with the size and the fix
            uid, size = one
            self._store(SatRes(ZERO_REV, (), (), (Reject(uid, (
                f"this edit is {size:,} bytes encoded, too big for this hub's message limit "
                "(the hub closed the connection with 1009, message too big, on the request "
                "that carried it alone): it was not sent; make it smaller (split it into "
                "several edits), or ask the hub operator to raise the hub's message limit "
                "and make it again")),)))
            return
        if not self._hub_max:
            # a hub that does not say its limit: send less per request
            self.max_bytes = max(MIN_SAT_BYTES, self.max_bytes // 2)
        if self._sat_out > 1:
            self._one_sat = True

    def _send_unsent(self, now: float) -> None:
        """When live and idle (or pipelining, see the module docstring): send pending
        transactions not yet sent on this connection (one waiting for an earlier one's ack
        becomes sendable once that ack is stored)."""
        if self.info.phase != Phase.LIVE:
            return
        self._fill(now)

    def _fill(self, now: float) -> None:
        """Send pending transactions not yet sent on this connection while fewer requests
        than allowed are in flight (``pipeline`` once the hub honours ``cont``, else one)."""
        if self._read_only:
            return
        most = self.pipeline if self._cont and not self._one_sat and self._hub_acks else 1
        while self._sat_out < most:
            ob, i = self._unsent()
            if i == len(ob):
                return
            out = self._sat_out
            self._send_sat(now, only_new=True)
            if self._sat_out == out:
                return  # nothing could go (a daql hub: held back, or not now)

    def _unsent(self) -> tuple[list[Trans], int]:
        """The store's outbox and the position of its first transaction not sent on this
        connection (``len``: none). Every one before it is sent; after it, some may be (the
        callers check). The sent ones are skipped once per outbox list, not on every call:
        the store may return the same list object while its outbox is unchanged (the list is
        never modified; :meth:`SyncStore.outbox`)."""
        ob = self.store.outbox()
        i = self._ob_sent if ob is self._ob else 0
        sent = self._sent
        n = len(ob)
        while i < n and ob[i].uid in sent:
            i += 1
        self._ob, self._ob_sent = ob, i
        return ob, i

    def prepare(self) -> None:
        """Encode, ahead of time, the transactions the next ``evt.sat`` will carry: pure CPU
        work an adapter may do while a request is in flight, so that sending the next one when
        the reply arrives takes less time (the hub waits for it). Optional; no outputs."""
        if not self._sat_busy or not self.info.online or self._read_only:
            return
        ob, i = self._unsent()
        seen = (ob, len(self._sent))
        if self._prepared is not None and self._prepared[0] is ob \
                and self._prepared[1] == seen[1]:
            return  # the same outbox, nothing sent since: what was encoded stands
        self._prepared = seen
        old, new = self._encoded, {}
        fmt = rev_memo()
        enc = self._encoder()
        sent = self._sent
        for t in islice(ob, i, None):
            if t.uid in sent:
                continue
            c = old.get(t.uid)
            new[t.uid] = c if c is not None and c[0] is t else (t, enc(t, fmt))
            if len(new) >= self.max_trans:
                break
        self._encoded = new  # only the next request's: nothing stale is kept

    def _encoder(self) -> Callable[[Trans, Callable[[Rev], str]], bytes]:
        """Encode a transaction of an ``evt.sat`` request: with the JSON of its actions the
        store kept (``acts_json``, optional in :class:`SyncStore`) spliced in when it has it."""
        known: Callable[[Trans], str | None] | None = getattr(self.store, "acts_json", None)
        if known is None:
            return lambda t, fmt: dumps(enc_trans(t, fmt))
        return lambda t, fmt: dumps(enc_trans(t, fmt, known(t)))

    def _send_sat(self, now: float, *, only_new: bool) -> None:
        most = self.max_trans if self._sats else min(self.max_trans, self.first_trans)
        last = self.last_trans if self._sats else 0
        if not self._hub_acks:
            # a daql hub: one transaction per request, one request in flight, so a refusal
            # names it and a connection lost leaves at most one edit of unknown fate
            most, last = 1, 0
        trans: list[Trans] = []
        left = 0  # pending transactions not sent on this connection, these included
        if not self._read_only and self._hold and self._hub_acks:
            trans = self._lost_unsent(most)  # held: only edits whose answer was lost
            left = len(trans)
        elif not self._read_only and not self._hold and \
                (self._hub_acks or self._daql_ready(now)):
            sent = self._sent
            upto = most + last  # enough to tell whether the rest would fit in a last request
            ob, i = self._unsent()
            left = len(ob) - i
            for t in islice(ob, i, None):  # not the whole pending queue
                if t.uid not in sent:
                    trans.append(t)
                    if len(trans) > upto:
                        break
            if len(trans) > upto:
                del trans[most:]
            elif last and len(trans) > 2 * last:
                del trans[len(trans) - last:]  # the rest goes in a last request of ``last``
            else:
                del trans[most:]
        if only_new and not trans:
            return
        if trans:
            # all there is to send: what was sent on this connection and what is left
            # (edits made meanwhile raise it); counted per request, not per edit
            self._to_send = max(self._to_send, len(self._sent) - self._sent_done + left)
        rev = self._rev()
        held = self._last_held
        head = enc_sat(SatReq(rev, (), self._tops(), self._ask_lim, audits=True, cont=True,
                              last=held[1] if held is not None and held[0] == rev else None,
                              own=self._hub_acks and self.own))
        del head["trans"]
        head_text = dumps(head)
        budget = self.max_bytes
        room = self._hub_max - len(head_text) - _SAT_HEAD  # a transaction bigger never fits
        if room > 0:  # the hub said its limit (and the head leaves room under it)
            budget = min(budget, room)
        parts: list[bytes] = []
        sending: list[Trans] = []
        too_big: list[Reject] = []
        size = 0
        encoded = self._encoded
        fmt = rev_memo()
        enc = self._encoder()
        for t in trans:
            c = encoded.pop(t.uid, None)
            b = c[1] if c is not None and c[0] is t else enc(t, fmt)
            if 0 < room < len(b):
                # the hub would close the connection on it, every time: never sent, shown
                # to the user as an error on this transaction (it lands in the conflicts)
                self._sent.add(t.uid)
                too_big.append(Reject(t.uid, (
                    f"this edit is {len(b):,} bytes encoded, more than the hub takes in one "
                    f"message ({self._hub_max:,} bytes, its --max-message): it was not sent; "
                    "make it smaller (split it into several edits), or ask the hub operator to "
                    "raise --max-message and make it again")))
                continue
            size += len(b) + 1
            if parts and size > budget:
                break
            parts.append(b)
            sending.append(t)
        if too_big:
            self._store(SatRes(ZERO_REV, (), (), tuple(too_big)))
            self._answer(len(too_big))
        trans = sending
        if only_new and not trans:
            return
        self._sent.update(t.uid for t in trans)
        if trans:
            self._set(sending=(self._answered, self._to_send))
        self._sat_one = (trans[0].uid, len(parts[0])) if len(trans) == 1 else None
        # each transaction serialized once: the body is spliced from their JSON texts
        body = head_text[:-1] + b',"trans":[' + b",".join(parts) + b"]}"
        mark: Callable[[list[str]], None] | None = getattr(self.store, "mark_unconfirmed",
                                                           None)
        if trans and not self._hub_acks and mark is not None:
            # kept before it is sent: a process that stops before the reply is stored
            # (kill -9, a power cut) puts the edit aside on its next handshake instead of
            # sending it again to a hub that cannot tell a resend from a new edit
            try:
                mark([t.uid for t in trans])
            except OutpostError as exc:
                self._set(last_error=f"storing the edit being sent failed: {exc}")
                self._drop("storage failed")
                return
        tok = self._request("evt.sat", body, "sat", now)
        if trans:
            self._inflight[tok] = tuple(trans)
            self._inflight_text[tok] = parts
        self._sat_out += 1
        self._sats += 1

    def _lost_unsent(self, most: int) -> list[Trans]:
        """While :attr:`hold_edits`: up to ``most`` of the edits whose answer a closed
        connection took, not sent on this one yet, in queue order."""
        lost = self._lost_left()
        if not lost:
            return []
        ob, i = self._unsent()
        sent = self._sent
        out: list[Trans] = []
        found = sum(1 for u in lost if u in sent)
        for t in islice(ob, i, None):
            if found >= len(lost) or len(out) >= most:
                break
            if t.uid in lost and t.uid not in sent:
                out.append(t)
                found += 1
        return out

    def _request(self, subj: str, body: Any, kind: str, now: float) -> str:
        """Send a request; ``body``: a JSON value, or its encoding (bytes), or None. Returns
        its token."""
        self._tok += 1
        tok = str(self._tok)
        self._waiting[tok] = (kind, now)
        raw = body if body is None or isinstance(body, bytes) else dumps(body)
        self._out.append(Send(format_frame(subj, tok, raw)))
        return tok

    def _drop(self, reason: str) -> None:
        """Close the connection and ignore everything that still arrives on it: after a
        failure (storage, a bad frame, a refused or unanswered request) the replica must not
        move past what failed; the next connection resyncs from the replica's revision."""
        self._out.append(Close(reason))
        self._reset_conn()
        self._dropping = True

    def _note_role(self, role: str, why: str = "") -> None:
        """Tell the store what the hub said of the user (``note_role``, optional in
        :class:`SyncStore`: the satellite keeps a reader's mark so that edits are refused
        with the fix, and the app shows topics read-only). A store that fails to keep it
        changes nothing of the sync."""
        note: Callable[[str, str], None] | None = getattr(self.store, "note_role", None)
        if note is None:
            return
        try:
            note(role, why)
        except OutpostError as exc:
            self._set(last_error=f"storing the user's role failed: {exc}")

    def _answer(self, n: int) -> None:
        """``n`` edits sent on this connection were answered (acked, rejected, or refused
        here as too big): the status's ``sending``; (0, 0) once every one sent is answered
        and none waits to go."""
        self._answered += n
        if self._answered >= self._to_send:
            self._answered = self._to_send = 0
            self._sent_done = len(self._sent)  # every one sent so far is answered
        self._set(sending=(self._answered, self._to_send))

    def _reset_conn(self) -> None:
        self._answered = self._to_send = self._sent_done = 0
        self._put_aside()
        self._read_only = ""
        self._waiting.clear()
        self._sent.clear()
        self._encoded.clear()
        self._ob = self._prepared = None
        self._held.clear()
        self._sat_out = 0
        self._sats = 0
        self._cont = False
        self._last_held = None
        self._own = None

    def _set(self, **kw: Any) -> None:
        self.info = replace(self.info, **kw)


def new_dir_fix(back: str = "", lost: bool = False, rejected: int = 0,
                old: str = "OLD_DIR", new: str = "NEWDIR") -> str:
    """The fix for a replica that cannot sync with a hub, in one wording for every such
    message: a new data directory for the hub (``back``: or connect this one back to it,
    e.g. ``"its own hub"``), then ``outpost carry`` of this replica's edits not synced yet
    (``lost``: with ``--accepted``, also those the hub accepted and lost; ``rejected``: the
    replica's conflicts not resolved yet, with ``--rejected``, which carry leaves behind
    without it: before session 10 the advice left them out, and carry said "0 rejected")."""
    also = [*(["those the hub accepted and lost"] if lost else []),
            *([f"its {carry_conflicts(rejected)} (to resolve there)"] if rejected else [])]
    return (f"use a new --data DIR for this hub (outpost connect URL --data {new})"
            + (f", or connect this one back to {back}" if back else "")
            + f"; `outpost carry {old} --data {new}" + (" --accepted" if lost else "")
            + (" --rejected" if rejected else "")
            + "` then copies into it this replica's edits not synced yet"
            + (f" and {also[0]}" if len(also) == 1 else f", {also[0]}, and {also[1]}"
               if also else ""))


def carry_conflicts(n: int) -> str:
    """"1 unresolved conflict", "2 unresolved conflicts"."""
    return f"{n} unresolved conflict{'' if n == 1 else 's'}"


def merge_sat(a: SatRes, b: SatRes) -> SatRes:
    """Two consecutive ``evt.sat`` replies as one: storing it is storing ``a`` then ``b``
    (events in order, acks and rejects of both, the later revision, ``b``'s ``more``)."""
    return SatRes(max(a.rev, b.rev), a.evs + b.evs, a.acks + b.acks, a.rejects + b.rejects,
                  b.more, a.audits + b.audits, b.cont)


def frames_of(outs: Sequence[Output]) -> list[str]:
    """The texts of the ``Send`` commands among ``outs`` (a helper for tests and simulation)."""
    return [o.text for o in outs if isinstance(o, Send)]


def _overwritten(acts: Sequence[Action], before: Sequence[Event]) -> tuple[Conflict, ...]:
    """The changes of others among ``before`` (events a daql hub applied ahead of the edit
    ``acts``, in order) that the edit overwrote, one :class:`Conflict` per record: a ``mod``
    over their values of fields it sets (reason ``"field changed"``, ``fields`` those,
    ``theirs`` their last values), a ``del`` of a record they created or changed (reason
    ``"modified"``, ``theirs`` the values they set). ``rev``: their last such change (their
    values are the record's state at it); ``usr``: none (daql names no user). A ``mod`` of
    other fields merges (DESIGN §3): no conflict. A ``new`` of a key a colleague created just
    before (daql applies a ``new`` over the record: it replaced theirs; session 14: not
    looked at) is one too (reason ``"created"``, ``fields`` those whose values differ,
    ``theirs`` their record's values of them), unless theirs was deleted again."""
    out: list[Conflict] = []
    for a in acts:
        if a.cmd == Cmd.NEW:
            c = _replaced(a, before)
            if c is not None:
                out.append(c)
            continue
        theirs: dict[str, Any] = {}
        at: dict[str, Rev] = {}
        last = ZERO_REV
        for e in before:
            if (e.top, e.key) != (a.top, a.key) or e.cmd == Cmd.DEL:
                continue
            for f, v in (e.arg or {}).items():
                theirs[f] = v
                at[f] = e.rev
            last = e.rev
        if not last:
            continue
        if a.cmd == Cmd.DEL:
            out.append(Conflict(a.top, a.key, a.cmd, "modified", (), theirs, last))
            continue
        fields = tuple(f for f in (a.arg or {}) if f in theirs)
        if fields:
            out.append(Conflict(a.top, a.key, a.cmd, "field changed", fields,
                                {f: theirs[f] for f in fields}, max(at[f] for f in fields)))
    return tuple(out)


def _replaced(a: Action, before: Sequence[Event]) -> Conflict | None:
    """The conflict of the user's ``new`` ``a`` with a record a colleague created under its
    key among ``before`` (:func:`_overwritten`), or ``None``: no such record left, or the
    same values (both made the same record)."""
    theirs: dict[str, Any] | None = None
    last = ZERO_REV
    for e in before:
        if (e.top, e.key) != (a.top, a.key):
            continue
        last = e.rev
        if e.cmd == Cmd.NEW:
            theirs = dict(e.arg or {})
        elif e.cmd == Cmd.DEL:
            theirs = None
        elif theirs is not None:
            theirs.update(e.arg or {})
    if theirs is None:
        return None
    mine = a.arg or {}
    fields = tuple(f for f in dict.fromkeys([*mine, *theirs]) if mine.get(f) != theirs.get(f))
    if not fields:
        return None
    return Conflict(a.top, a.key, a.cmd, "created", fields,
                    {f: theirs.get(f) for f in fields}, last)


def _daql_same(acts: Sequence[Action], evs: Sequence[Event]) -> bool:
    """Whether ``evs`` (the events of one revision) are exactly what daql makes of ``acts``:
    one event per action, same record, command and values (a ``del`` has none), in any
    order. Values compare as decoded JSON (``2 == 2.0``: a hub re-encoding numbers matches)."""
    if len(acts) != len(evs):
        return False
    left = list(evs)
    for a in acts:
        for i, e in enumerate(left):
            if (e.top == a.top and e.key == a.key and e.cmd == a.cmd
                    and (a.cmd == Cmd.DEL or (e.arg or {}) == (a.arg or {}))):
                del left[i]
                break
        else:
            return False
    return True
