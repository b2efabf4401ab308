"""The daql hub wire format, sans I/O: text frames in, typed messages out, and back.

A frame is one WebSocket text message: ``subj[#tok]``, then optionally ``\\n`` and a JSON body.
A request with a token gets a reply with the same subject and token; a reply body is
``{"res": ...}`` or ``{"err": "...", ...}`` (we add ``conflicts`` beside ``err``). Pushes
(``evt.update``) carry no token and, as daql writes them, end with a newline.

Nothing here raises anything but :class:`~core.errors.WireError` on bad input: no subject, an
internal (``_``) subject, invalid UTF-8 or an oversized frame are *fatal* (the peer is closed,
as daql does); bad JSON or a wrong field type is not (an error reply is enough).

JSON is handled by orjson: ``bench/wire.py`` measured it about 10x faster than the stdlib at
writing and 1.5-2.5x at reading a 100-event batch; building the typed values dominates the
whole round trip (figures in ``docs/benchmarks.md``).
"""

from __future__ import annotations

import builtins
import contextlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import orjson

from core.errors import WireError
from core.frozen import builder, fast_init
from core.model import (
    Action,
    Audit,
    Cmd,
    Conflict,
    Event,
    Note,
    Status,
    Trans,
    Update,
    Watch,
)
from core.revision import ZERO_REV, Rev, format_rev, parse_rev

__all__ = [
    "MAX_FRAME",
    "MAX_RESTORES",
    "Ack",
    "Frame",
    "MonReq",
    "Reject",
    "SatReq",
    "SatRes",
    "SubReq",
    "decode_body",
    "decode_error",
    "decode_json",
    "dumps",
    "enc_action",
    "enc_audits",
    "enc_conflict",
    "enc_event",
    "enc_status",
    "enc_trans",
    "enc_update",
    "format_frame",
    "format_push",
    "format_reply",
    "format_reply_bytes",
    "parse_frame",
    "pub_reply",
    "rev_memo",
    "with_own",
]

MAX_FRAME = 1 << 20
"""Default largest frame we accept: 1 MiB."""

MAX_RESTORES = 64
"""Most restore points an ``evt.stat`` result carries (``restores``, Outpost extension): the
last ones; how many earlier ones were left out is ``restores_omitted``."""

T = TypeVar("T")


# ---------------------------------------------------------------------------------------------
# frames


@fast_init
@dataclass(frozen=True, slots=True)
class Frame:
    """One frame: subject, token (``""`` when absent) and raw JSON body (``None`` when absent)."""

    subj: str
    tok: str = ""
    body: str | None = None


def parse_frame(data: str | bytes, max_size: int = MAX_FRAME) -> Frame:
    """Split a frame into subject, token and raw body.

    Raises:
        WireError: fatal for no subject, a ``_`` subject, invalid UTF-8 or a frame over
            ``max_size`` bytes.
    """
    if type(data) is str and len(data) <= max_size and data.isascii():
        text = data  # ASCII text within the limit (what clients send): as it is
    else:
        text = _frame_text(data, max_size)
    head, sep, body = text.partition("\n")
    head = head.rstrip("\r")
    subj, _, tok = head.partition("#")
    if not subj or subj.strip() != subj or " " in subj:
        raise WireError("frame without subject: expected 'subj[#tok]' on the first line",
                        tok=tok, fatal=True)
    if subj.startswith("_"):
        raise WireError(f"internal subject {subj!r} is not accepted from clients",
                        subj=subj, tok=tok, fatal=True)
    if not (subj.isprintable() and tok.isprintable()):
        # control characters or lone surrogates could not even be echoed back in a reply
        raise WireError("subject or token with control or non-text characters", fatal=True)
    if len(subj) > 128 or len(tok) > 128:
        raise WireError("subject or token longer than 128 characters", subj=subj[:128],
                        tok=tok[:128], fatal=True)
    stripped = body.strip() if sep else ""
    return Frame(subj, tok, stripped or None)


def _frame_text(data: str | bytes, max_size: int) -> str:
    """``parse_frame``'s size limit (in bytes) and UTF-8 check of a frame's data; its text."""
    size = len(data)
    if isinstance(data, str) and not data.isascii() and size <= max_size:
        # the limit is in bytes: text of max_size characters can be up to 4x as many bytes
        size = len(data.encode("utf-8", "surrogatepass"))
    if size > max_size:
        raise WireError(
            f"frame of {size} bytes is over the limit of {max_size} bytes", fatal=True
        )
    if isinstance(data, bytes | bytearray | memoryview):
        try:
            data = bytes(data).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise WireError(f"frame is not valid UTF-8: {exc.reason} at byte {exc.start}",
                            fatal=True) from exc
    return data


def format_frame(subj: str, tok: str = "", body: bytes | None = None, *, push: bool = False) -> str:
    """Build a frame. Pushes end with a newline, as daql writes them."""
    head = f"{subj}#{tok}" if tok else subj
    if body is None:
        return head
    text = head + "\n" + body.decode("utf-8")
    return text + "\n" if push else text


ERR_CODE_READONLY = "readonly"
"""``code`` of the hub's error reply to edits from a user who may only read (ours)."""

ERR_CODE_DIVERGED = "diverged"
"""``code`` of the hub's error reply to an ``evt.sat`` whose ``last`` (the client's last
event at or before its ``rev``) is not the hub's (ours, session 15): the hub's history up
to ``rev`` is not the one the client holds (its ledger file was rolled back, then it
published again with its clock behind the revisions it lost). Nothing of the request was
published or subscribed; the reply's ``last`` is the hub's own ``{"id", "rev"}`` (``null``:
none)."""

ERR_CODE_READ = "read"
"""``code`` of the hub's error reply to a request it could not answer because reading its
ledger failed (ours; every request, every read: an ``evt.sat`` reply's first read or a later
batch's, an ``evt.sub`` or ``evt.mon`` catch-up, ``evt.hist``, the reads of fanning out a
publish). The client asks again later. An ``evt.sat``'s transactions the hub stored or
refused before the read failed are in the reply's ``acks`` and ``rejects``, as in a result
(:func:`dec_read_failed`): they are not to be sent again."""


def format_reply(subj: str, tok: str, res: Any = None, err: str | None = None,
                 **extra: Any) -> str:
    """A reply frame: ``{"res": res}``, or ``{"err": err, **extra}`` when ``err`` is given."""
    if err is not None:
        payload: dict[str, Any] = {"err": err}
        payload.update(extra)
    else:
        payload = {"res": res}
    return format_frame(subj, tok, dumps(payload))


def format_reply_bytes(subj: str, tok: str, res: Any) -> bytes:
    """:func:`format_reply`'s frame of a result as UTF-8 bytes: ``orjson``'s encoding
    behind the head line, without decoding it to text (for a sender that writes bytes:
    the hub's ``evt.sat`` replies, up to megabytes)."""
    head = f"{subj}#{tok}\n" if tok else f"{subj}\n"
    return head.encode("utf-8") + orjson.dumps({"res": res})


def format_push(subj: str, body: Any) -> str:
    """A push frame (no token, trailing newline)."""
    return format_frame(subj, "", dumps(body), push=True)


def dumps(obj: Any) -> bytes:
    """Encode JSON (orjson; keys as given; no NaN)."""
    return orjson.dumps(obj)


def decode_json(raw: str | bytes | None, subj: str = "", tok: str = "") -> Any:
    """Decode a raw JSON body (``None`` stays ``None``).

    Raises:
        WireError: not JSON, too deep, a number out of range; names the position.
    """
    if raw is None:
        return None
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise WireError(f"invalid JSON body: {exc}", subj=subj, tok=tok) from exc


def decode_body(frame: Frame, required: bool = True) -> Any:
    """Decode a frame's body, failing clearly when a required body is missing."""
    if frame.body is None:
        if required:
            raise WireError(f"{frame.subj}: missing JSON body after the subject line",
                            subj=frame.subj, tok=frame.tok)
        return None
    return decode_json(frame.body, frame.subj, frame.tok)


# ---------------------------------------------------------------------------------------------
# field readers: each names the field, the bad value's type and what was expected


class _Reader:
    __slots__ = ("obj", "where")

    def __init__(self, obj: Any, where: str):
        if obj is None:
            obj = {}
        if not isinstance(obj, dict):
            raise WireError(f"{where}: expected a JSON object, got {_jtype(obj)}")
        self.obj: dict[str, Any] = obj
        self.where = where

    def fail(self, name: str, expected: str, value: Any) -> WireError:
        return WireError(f"{self.where}: field {name!r} must be {expected}, got {_jtype(value)}")

    def str(self, name: str, default: str = "", required: bool = False) -> str:
        v = self.obj.get(name)
        if v is None:
            if required:
                raise WireError(f"{self.where}: field {name!r} is missing")
            return default
        if not isinstance(v, str):
            raise self.fail(name, "a string", v)
        return v

    def flag(self, name: builtins.str) -> bool:
        """An optional ``true``/``false`` field (absent: false)."""
        v = self.obj.get(name, False)
        if not isinstance(v, bool):
            raise self.fail(name, "true or false", v)
        return v

    def int(self, name: builtins.str, default: int = 0) -> int:
        v = self.obj.get(name)
        if v is None:
            return default
        if isinstance(v, bool) or not isinstance(v, int) or not -(2**63) <= v < 2**63:
            raise self.fail(name, "an integer within 64 bits", v)
        return v

    def rev(self, name: builtins.str, default: Rev = ZERO_REV) -> Rev:
        v = self.obj.get(name)
        if v is None or v == "":
            return default
        if not isinstance(v, str):
            raise self.fail(name, "an RFC 3339 time string", v)
        try:
            return _parse_rev_cached(v)
        except ValueError as exc:
            raise WireError(f"{self.where}: field {name!r}: {exc}") from exc

    def dict(self, name: builtins.str) -> builtins.dict[builtins.str, Any] | None:
        v = self.obj.get(name)
        if v is None:
            return None
        if not isinstance(v, dict):
            raise self.fail(name, "an object", v)
        return v

    def list(self, name: builtins.str, item: Callable[[Any, builtins.str], T]) -> tuple[T, ...]:
        v = self.obj.get(name)
        if v is None:
            return ()
        if not isinstance(v, list):
            raise self.fail(name, "a list", v)
        return tuple(item(x, f"{self.where}.{name}[{i}]") for i, x in enumerate(v))

    def strs(self, name: builtins.str) -> tuple[builtins.str, ...]:
        return self.list(name, _str_item)


_last_rev: tuple[str, Rev] = ("", ZERO_REV)


def _parse_rev_cached(text: str) -> Rev:
    """``parse_rev`` remembering the last text: the events of a revision share its text, so a
    batch parses each revision once (parsing was a third of decoding an event)."""
    global _last_rev
    last = _last_rev  # one tuple, read and replaced whole: safe across threads
    if last[0] == text and text:
        return last[1]
    rev = parse_rev(text)
    _last_rev = (text, rev)
    return rev


class _RevTexts(dict[str, Rev]):
    """Revision texts parsed within one frame (``memo[text]``): the revisions of a frame repeat
    (an event's, its ack's and its audit's; every transaction's ``base``), so each distinct
    text is parsed once. Raises ValueError like ``parse_rev`` (nothing is stored then)."""

    __slots__ = ()

    def __missing__(self, text: str) -> Rev:
        rev = self[text] = parse_rev(text)
        return rev


_CMDS: dict[str, Cmd] = {c.value: c for c in Cmd}


def _jtype(v: Any) -> str:
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "a boolean"
    if isinstance(v, int | float):
        return f"the number {v!r}" if len(repr(v)) < 30 else "a number"
    if isinstance(v, str):
        return f"the string {v!r}" if len(v) < 40 else "a long string"
    if isinstance(v, list):
        return "a list"
    return "an object"


def _str_item(v: Any, where: str) -> str:
    if not isinstance(v, str):
        raise WireError(f"{where}: must be a string, got {_jtype(v)}")
    return v


def _cmd(r: _Reader) -> Cmd:
    c = r.str("cmd", required=True)
    try:
        return Cmd(c)
    except ValueError:
        raise WireError(f"{r.where}: unknown cmd {c!r}: expected new, mod or del") from None


# ---------------------------------------------------------------------------------------------
# decoders


def _fast_action(obj: Any) -> Action | None:
    """A well-formed action built without the careful reader; ``None``: take the reader."""
    if type(obj) is not dict:
        return None
    top = obj.get("top")
    key = obj.get("key", "")
    c = obj.get("cmd")
    arg = obj.get("arg")
    cmd = _CMDS.get(c) if type(c) is str else None
    if cmd is None or type(top) is not str or type(key) is not str \
            or (arg is not None and type(arg) is not dict):
        return None
    return Action(top, key, cmd, arg)


def dec_action(obj: Any, where: str = "action") -> Action:
    a = _fast_action(obj)
    if a is not None:
        return a
    r = _Reader(obj, where)
    cmd = _cmd(r)
    arg = r.dict("arg")
    return Action(r.str("top", required=True), r.str("key"), cmd, arg)


_new_event = builder(Event)
_new_audit = builder(Audit)
"""The satellite's bulk decoding of a reply's events and audits (2,000 per reply of 1,000
transactions): :func:`core.frozen.builder`, not the dataclass ``__init__``."""


def _fast_event(obj: Any, prs: Callable[[str], Rev] = _parse_rev_cached) -> Event | None:
    """A well-formed event built without the careful reader; ``None``: take the reader."""
    if type(obj) is not dict:
        return None
    get = obj.get
    i = get("id", 0)
    rv = get("rev")
    top = get("top")
    key = get("key", "")
    arg = get("arg")
    c = get("cmd")
    cmd = _CMDS.get(c) if type(c) is str else None
    if (cmd is not None and type(i) is int and type(rv) is str and rv
            and type(top) is str and type(key) is str
            and (arg is None or type(arg) is dict) and -(2**63) <= i < 2**63):
        try:
            return _new_event(i, prs(rv), top, key, cmd, arg)
        except ValueError:
            pass
    return None


def dec_event(obj: Any, where: str = "event",
              prs: Callable[[str], Rev] = _parse_rev_cached) -> Event:
    # fast path for a well-formed event; anything unusual takes the careful reader below,
    # which names what is wrong
    e = _fast_event(obj, prs)
    if e is not None:
        return e
    r = _Reader(obj, where)
    cmd = _cmd(r)
    return Event(r.int("id"), r.rev("rev"), r.str("top", required=True), r.str("key"), cmd,
                 r.dict("arg"))


def _fast_trans(obj: Any, prs: Callable[[str], Rev] = _parse_rev_cached) -> Trans | None:
    """A well-formed transaction built without the careful reader (about 4x faster: the hub
    decodes one per publish); ``None`` for anything unusual, which the reader then names."""
    if type(obj) is not dict:
        return None
    raw = obj.get("acts")
    acts: list[Action] = []
    if raw is not None:
        if type(raw) is not list:
            return None
        for x in raw:
            a = _fast_action(x)
            if a is None:
                return None
            acts.append(a)
        if len(obj) == 1:  # only "acts" (an evt.pub as daql sends it): every other default
            return Trans(tuple(acts), ZERO_REV, 0, ZERO_REV, ZERO_REV, ZERO_REV, "", None, "")
    get = obj.get
    # _opt_rev, inlined (the hub decodes 1,000 per evt.sat; a satellite sends no rev/arrived)
    base = get("base")
    rev = get("rev")
    created = get("created")
    arrived = get("arrived")
    try:
        base = ZERO_REV if base is None else prs(base) if type(base) is str and base \
            else _no_rev(base)
        rev = ZERO_REV if rev is None else prs(rev) if type(rev) is str and rev \
            else _no_rev(rev)
        created = ZERO_REV if created is None else prs(created) \
            if type(created) is str and created else _no_rev(created)
        arrived = ZERO_REV if arrived is None else prs(arrived) \
            if type(arrived) is str and arrived else _no_rev(arrived)
    except (ValueError, TypeError):
        return None
    i = get("id")
    usr = get("usr")
    extra = get("extra")
    uid = get("uid")
    if i is None:
        i = 0
    elif type(i) is not int or not -(2**63) <= i < 2**63:
        return None
    if (usr is not None and type(usr) is not str) or (uid is not None and type(uid) is not str) \
            or (extra is not None and type(extra) is not dict):
        return None
    return Trans(tuple(acts), base, i, rev, created, arrived, usr or "", extra, uid or "")


def _no_rev(v: Any) -> Rev:
    """An optional revision field that is not a non-empty string: ``""`` is the zero
    revision; anything else raises TypeError (the fast path then gives up)."""
    if v == "" and type(v) is str:
        return ZERO_REV
    raise TypeError


def _opt_rev(v: Any, prs: Callable[[str], Rev]) -> Rev:
    """An optional revision field of a fast path: absent, ``null`` or ``""`` is the zero
    revision; anything but a string raises TypeError (the fast path then gives up)."""
    if v is None or v == "":
        return ZERO_REV
    if type(v) is not str:
        raise TypeError
    return prs(v)


def dec_trans(obj: Any, where: str = "trans") -> Trans:
    t = _fast_trans(obj)
    if t is not None:
        return t
    r = _Reader(obj, where)
    return Trans(
        acts=r.list("acts", dec_action),
        base=r.rev("base"),
        id=r.int("id"),
        rev=r.rev("rev"),
        created=r.rev("created"),
        arrived=r.rev("arrived"),
        usr=r.str("usr"),
        extra=r.dict("extra"),
        uid=r.str("uid"),
    )


def _fast_audit(obj: Any, prs: Callable[[str], Rev] = _parse_rev_cached) -> Audit | None:
    """A well-formed audit built without the careful reader (a reply carries one per
    revision); ``None``: take the reader."""
    if type(obj) is not dict:
        return None
    get = obj.get
    usr = get("usr")
    extra = get("extra")
    uid = get("uid")
    if (usr is None or type(usr) is str) and (uid is None or type(uid) is str) \
            and (extra is None or type(extra) is dict):
        # _opt_rev, inlined (a reply carries one audit per transaction; a hub sends no
        # ``arrived``)
        rev = get("rev")
        created = get("created")
        arrived = get("arrived")
        try:
            rev = prs(rev) if type(rev) is str and rev else _opt_rev(rev, prs)
            created = prs(created) if type(created) is str and created \
                else _opt_rev(created, prs)
            arrived = ZERO_REV if arrived is None else _opt_rev(arrived, prs)
            return _new_audit(rev, created, arrived, usr or "", extra, uid or "")
        except (ValueError, TypeError):
            pass
    return None


def dec_audit(obj: Any, where: str = "audit",
              prs: Callable[[str], Rev] = _parse_rev_cached) -> Audit:
    a = _fast_audit(obj, prs)
    if a is not None:
        return a
    r = _Reader(obj, where)
    return Audit(r.rev("rev"), r.rev("created"), r.rev("arrived"), r.str("usr"),
                 r.dict("extra"), r.str("uid"))


def dec_watch(obj: Any, where: str = "watch") -> Watch:
    r = _Reader(obj, where)
    return Watch(r.str("top", required=True), r.strs("keys"))


def dec_note(obj: Any, where: str = "note") -> Note:
    r = _Reader(obj, where)
    return Note(r.int("mon"), r.list("watch", dec_watch))


def dec_update(obj: Any, where: str = "update") -> Update:
    r = _Reader(obj, where)
    return Update(r.rev("rev"), r.list("evs", dec_event), r.list("note", dec_note),
                  r.list("audits", dec_audit))


def _dec_restore(obj: Any, where: str) -> tuple[Rev, str]:
    r = _Reader(obj, where)
    return r.rev("rev"), r.str("id", required=True)


def dec_status(obj: Any, where: str = "status") -> Status:
    r = _Reader(obj, where)
    omitted = r.int("restores_omitted")
    if omitted < 0:
        raise r.fail("restores_omitted", "a count (0 or more)", omitted)
    return Status(r.rev("rev"), r.str("mig"), r.rev("on"), r.rev("off"), r.str("ledger"),
                  r.rev("restored"), r.str("restore_id"), r.list("restores", _dec_restore),
                  omitted)


def dec_conflict(obj: Any, where: str = "conflict") -> Conflict:
    r = _Reader(obj, where)
    by = r.dict("by")
    return Conflict(r.str("top"), r.str("key"), _cmd(r), r.str("reason"), r.strs("fields"),
                    r.dict("theirs"), r.rev("rev"), r.str("usr"),
                    None if by is None else _dec_by(by, f"{where}.by"))


def _dec_by(obj: dict[str, Any], where: str) -> dict[str, tuple[Rev, str]]:
    """A conflict's ``by`` (ours): ``{field: {"rev", "usr"}}``."""
    out: dict[str, tuple[Rev, str]] = {}
    for name, v in obj.items():
        r = _Reader(v, f"{where}.{name}")
        out[name] = (r.rev("rev"), r.str("usr"))
    return out


@fast_init
@dataclass(frozen=True, slots=True)
class SubReq:
    """``evt.sub`` / ``evt.unsub`` body: ``{"rev", "tops"}``."""

    rev: Rev
    tops: tuple[str, ...]


@fast_init
@dataclass(frozen=True, slots=True)
class MonReq:
    """``evt.mon`` body: ``{"rev", "watch": [Watch]}``."""

    rev: Rev
    watch: tuple[Watch, ...]


@fast_init
@dataclass(frozen=True, slots=True)
class SatReq:
    """``evt.sat`` body: ``{"rev", "trans": [Trans] | null, "tops"}``.

    Ours: ``lim`` (events per catch-up batch), ``audits`` (``true``: this connection is an
    Outpost satellite and wants the ``audits`` extension in replies and pushes; a daql client
    never sends it, so what it receives stays byte-identical to daql) and ``cont`` (``true``:
    the reply starts after what this connection's previous ``evt.sat`` reply ended with, when
    that is later than ``rev``: a satellite may then send a request before the previous reply
    arrived; see ``docs/protocol.md``).
    """

    rev: Rev
    trans: tuple[Trans, ...]
    tops: tuple[str, ...]
    lim: int = 0
    audits: bool = False
    cont: bool = False
    last: tuple[int, Rev] | None = None
    """Ours (session 15): ``(id, rev)`` of the last event the client holds at or before
    ``rev`` (of every topic; ``(0, ZERO_REV)``: none); an Outpost hub whose own last event at
    or before ``rev`` differs refuses the request before anything (``code``
    :data:`ERR_CODE_DIVERGED`). ``None``: not sent, not checked (daql's clients)."""
    own: bool = False
    """Ours (session 16): the client rebuilds the events and audits of its own transactions
    of this request from what it sent: the hub may leave them out of the reply
    (:attr:`SatRes.own`). Only with ``audits``; a hub that does not know it replies in full."""


@fast_init
@dataclass(frozen=True, slots=True)
class Ack:
    """One accepted offline transaction of an ``evt.sat`` reply (ours)."""

    uid: str
    rev: Rev


@fast_init
@dataclass(frozen=True, slots=True)
class Reject:
    """One rejected offline transaction of an ``evt.sat`` reply (ours)."""

    uid: str
    err: str
    conflicts: tuple[Conflict, ...] = ()
    rev: Rev = ZERO_REV
    """Not on the wire: the hub's revision of an edit it applied all the same (a daql hub's
    edit over a colleague's change, ``core.satellite.machine``), stored as the receipt's
    ``rev`` so that its event counts as the user's own (session 14); 0: none."""


@fast_init
@dataclass(frozen=True, slots=True)
class SatRes:
    """``evt.sat`` result: an Update plus per-transaction outcomes (``acks``, ``rejects``).

    ``acks`` (ours): ``(uid, rev)`` of each transaction of the request the hub applied, as
    :class:`Ack` objects, or as the reply's own :class:`Audit` objects when they say the same
    (:func:`dec_sat_res` of a replay's reply: the audits are the acks, one for one; readers
    use ``uid`` and ``rev`` only, which both have).
    ``more`` (ours) says the catch-up was cut at a batch limit: ask again from ``rev``.
    ``audits`` (ours) holds the audit (user, creation time, uid) of each revision of ``evs``.
    ``cont`` (ours) says the hub honours ``cont`` requests on this connection.
    ``total_max`` (ours) is sent on the first reply of a catch-up cut into batches (with
    ``more``): at most how many events follow the request's ``rev`` (of every topic, up to
    the hub's revision then; 0: not said), so the client can show "12,000 of 100,000".
    """

    rev: Rev
    evs: tuple[Event, ...] = ()
    acks: tuple[Ack | Audit, ...] = ()
    rejects: tuple[Reject, ...] = ()
    more: bool = False
    audits: tuple[Audit, ...] = ()
    cont: bool = False
    total_max: int = 0
    own: tuple[str, tuple[int, ...]] | None = None
    """Ours (session 16), a reply to a request with ``own``: ``(usr, ids)``, ``ids`` one per
    ack in order: the first event id of that transaction when the hub left its events and
    audit out of ``evs`` and ``audits`` (0: sent in full); ``usr`` is their audits' user.
    :func:`with_own` rebuilds them from the request; ``None``: a full reply."""


def dec_sub(obj: Any, where: str = "evt.sub") -> SubReq:
    r = _Reader(obj, where)
    return SubReq(r.rev("rev"), r.strs("tops"))


def dec_mon(obj: Any, where: str = "evt.mon") -> MonReq:
    r = _Reader(obj, where)
    return MonReq(r.rev("rev"), r.list("watch", dec_watch))


def dec_unmon(obj: Any, where: str = "evt.unmon") -> int:
    return _Reader(obj, where).int("mon")


_SAT_SHAPE = True
"""``dec_sat`` decodes a satellite's transactions (exactly ``base``, ``created``, ``uid`` and
one action) inline, before the general fast path (tests turn it off to compare)."""

_new_trans = builder(Trans)
_new_action = builder(Action)


def dec_sat(obj: Any, where: str = "evt.sat") -> SatReq:
    r = _Reader(obj, where)
    lim = r.int("lim")
    if lim < 0:
        raise WireError(f"{where}: field 'lim' must not be negative")
    audits = r.flag("audits")
    cont = r.flag("cont")
    raw = r.obj.get("trans")
    trans: tuple[Trans, ...] = ()
    if type(raw) is list:
        # one pass over well-formed transactions (the hub decodes up to 1,000 per request);
        # the first unusual one goes to the careful reader, which names what is wrong
        prs = _RevTexts().__getitem__
        fast: list[Trans] = []
        add = fast.append
        cmds = _CMDS.get
        shape = _SAT_SHAPE
        new_trans, new_action = _new_trans, _new_action
        for x in raw:
            # a satellite's transaction (exactly base, created, uid and one action, see
            # Satellite.prepare) without the general fast path's calls and look-ups of the
            # five fields it lacks (len 4 with these four present: none of the others);
            # the same Trans as _fast_trans makes, which takes anything else
            if shape and type(x) is dict and len(x) == 4:
                acts = x.get("acts")
                base = x.get("base")
                created = x.get("created")
                uid = x.get("uid")
                if type(acts) is list and len(acts) == 1 and type(base) is str and base \
                        and type(created) is str and created and type(uid) is str:
                    a = acts[0]
                    if type(a) is dict:
                        top = a.get("top")
                        key = a.get("key", "")
                        c = a.get("cmd")
                        arg = a.get("arg")
                        cmd = cmds(c) if type(c) is str else None
                        if cmd is not None and type(top) is str and type(key) is str \
                                and (arg is None or type(arg) is dict):
                            try:
                                add(new_trans((new_action(top, key, cmd, arg),), prs(base),
                                              0, ZERO_REV, prs(created), ZERO_REV, "", None,
                                              uid))
                                continue
                            except ValueError:
                                pass  # _fast_trans gives up on it too: the reader names it
            t = _fast_trans(x, prs)
            if t is None:
                break
            add(t)
        else:
            trans = tuple(fast)
        if len(fast) < len(raw):
            trans = r.list("trans", dec_trans)
    elif raw is not None:
        trans = r.list("trans", dec_trans)  # names the bad type
    last = dec_last(r.obj.get("last"), f"{where} field 'last'")
    return SatReq(r.rev("rev"), trans, r.strs("tops"), lim, audits, cont, last,
                  r.flag("own"))


def enc_last(last: tuple[int, Rev] | None) -> dict[str, Any] | None:
    """``evt.sat``'s ``last`` (and the hub's in a ``diverged`` error): ``{"id", "rev"}``."""
    return None if last is None else {"id": last[0], "rev": format_rev(last[1])}


def dec_last(obj: Any, where: str) -> tuple[int, Rev] | None:
    """:func:`enc_last` read back (``None``: null or absent)."""
    if obj is None:
        return None
    r = _Reader(obj, where)
    return r.int("id"), r.rev("rev")


def _fast_ack(obj: Any, prs: Callable[[str], Rev] = _parse_rev_cached) -> Ack | None:
    if type(obj) is dict:
        uid = obj.get("uid")
        rv = obj.get("rev")
        if (uid is None or type(uid) is str) and type(rv) is str and rv:
            try:
                return Ack(uid or "", prs(rv))
            except ValueError:
                pass
    return None


def _dec_ack(obj: Any, where: str, prs: Callable[[str], Rev] = _parse_rev_cached) -> Ack:
    a = _fast_ack(obj, prs)
    if a is not None:
        return a
    r = _Reader(obj, where)
    return Ack(r.str("uid"), r.rev("rev"))


def _dec_reject(obj: Any, where: str) -> Reject:
    r = _Reader(obj, where)
    return Reject(r.str("uid"), r.str("err"), r.list("conflicts", dec_conflict))


def dec_sat_res(obj: Any, where: str = "evt.sat result") -> SatRes:
    r = _Reader(obj, where)
    more = r.flag("more")
    cont = r.flag("cont")
    total = r.int("total_max")  # ours: a catch-up's size (0: not said)
    prs = _RevTexts().__getitem__  # an event's, its ack's and its audit's rev: parsed once
    rev = r.rev("rev")
    evs = _items(r, "evs", _fast_event, prs, dec_event)
    raw = r.obj.get("acks")
    audits: tuple[Audit, ...] | None = None
    acks: tuple[Ack | Audit, ...] | None = None
    if _same_pairs(raw, r.obj.get("audits")):
        # a replay's reply: its audits are its acks (uid, rev), one for one and in order;
        # equal raw values decode to equal pairs (an ack's and an audit's uid and rev are
        # read by the same rules), so the acks are not decoded (the Ack objects, the
        # parsing). A bad audit: decoded again below, in the careful reader's order
        with contextlib.suppress(WireError):
            audits = _items(r, "audits", _fast_audit, prs, dec_audit)
            acks = audits
    if acks is None:
        acks = _items(r, "acks", _fast_ack, prs, _dec_ack)
    rejects = r.list("rejects", _dec_reject)
    if audits is None:
        audits = _items(r, "audits", _fast_audit, prs, dec_audit)
    own = r.obj.get("own")
    return SatRes(rev, evs, acks, rejects, more, audits, cont, max(0, total),
                  None if own is None else _dec_own(own, len(acks), where))


def _dec_own(obj: Any, n: int, where: str) -> tuple[str, tuple[int, ...]]:
    """A reply's ``own`` (ours): ``{"usr", "ids"}``, ``ids`` one int (0 or more) per ack."""
    usr = obj.get("usr") if type(obj) is dict else None
    ids = obj.get("ids") if type(obj) is dict else None
    if type(usr) is not str or type(ids) is not list or len(ids) != n \
            or not all(type(i) is int and 0 <= i < 2**63 for i in ids):
        raise WireError(f"{where}: field 'own' must be {{\"usr\": a string, \"ids\": one "
                        f"event id (0 or more) per ack ({n})}}, got {str(obj)[:80]}")
    return usr, tuple(ids)


def _rev_id(e: Event) -> tuple[Rev, int]:
    return e.rev, e.id


def with_own(res: SatRes, sent: Sequence[Trans], texts: Sequence[bytes],
             decoded: Callable[[Trans], bool] | None = None) -> SatRes:
    """``res`` (a reply with :attr:`SatRes.own`) whole: the events and audits the hub left out
    (the client's own transactions, acked with a first event id) rebuilt from ``texts``, the
    JSON each of ``sent`` (the request's transactions) was sent as, exactly as the hub
    decoded them, and merged with the reply's by revision; the same :class:`SatRes` a full
    reply decodes to (``own`` ``None``). ``res`` as is when it has no ``own``.
    ``decoded(t)``: ``t``'s actions are the very values the hub decoded of its text (the
    client spliced the text they were decoded from, ``SyncStore.acts_decoded``): built from
    them and ``t.created`` without decoding its text again, unless it has ``extra``.

    Raises:
        WireError: an ack with an id names no transaction of ``sent``, or twice; a text that
            does not decode to a transaction.
    """
    if res.own is None:
        return res
    usr, ids = res.own
    at = {t.uid: i for i, t in enumerate(sent)}
    picked: list[tuple[Ack | Audit, int, Trans | None]] = []
    parts: list[bytes] = []
    n_picked = 0
    for a, n in zip(res.acks, ids, strict=True):
        if n:
            i = at.pop(a.uid, None)
            if i is None or i >= len(texts):
                raise WireError(f"evt.sat result: an ack of {a.uid!r} says its events were "
                                "left out, but that uid was not sent in this request (or "
                                "is acked so twice)")
            t = sent[i]
            n_picked += 1
            if decoded is not None and not t.extra and decoded(t):
                picked.append((a, n, t))
            else:
                picked.append((a, n, None))
                parts.append(texts[i])
    if not n_picked:
        return SatRes(res.rev, res.evs, res.acks, res.rejects, res.more, res.audits, res.cont,
                      res.total_max)
    evs: list[Event] = []
    audits: list[Audit] = []
    new_event, new_audit, cmds, dl = _new_event, _new_audit, _CMDS, Cmd.DEL
    try:
        raw = iter(orjson.loads(b"[" + b",".join(parts) + b"]") if parts else ())
        prs = _parse_rev_cached
        for a, n, mine in picked:
            rev = a.rev
            if mine is not None:  # its actions as the hub decoded them, its created as sent
                audits.append(new_audit(rev, mine.created, ZERO_REV, usr, None, a.uid))
                for x in mine.acts:
                    evs.append(new_event(n, rev, x.top, x.key, x.cmd,
                                         None if x.cmd is dl else x.arg))
                    n += 1
                continue
            j = next(raw)
            c = j.get("created")
            audits.append(new_audit(rev, prs(c) if c else ZERO_REV, ZERO_REV, usr,
                                    j.get("extra") or None, a.uid))
            for x in j["acts"]:
                cmd = cmds[x["cmd"]]
                evs.append(new_event(n, rev, x["top"], x.get("key", ""), cmd,
                                     None if cmd is dl else x.get("arg")))
                n += 1
    except (orjson.JSONDecodeError, KeyError, TypeError, AttributeError, ValueError,
            StopIteration) as exc:
        raise WireError(f"evt.sat result: an own transaction could not be rebuilt from the "
                        f"request: {exc}") from None
    acks = res.acks
    if res.evs:
        evs = sorted((*res.evs, *evs), key=_rev_id)
    if res.audits:
        audits = sorted((*res.audits, *audits), key=_audit_rev)
    elif n_picked == len(acks):
        both = tuple(audits)  # the audits are the acks, one for one (as dec_sat_res)
        return SatRes(res.rev, tuple(evs), both, res.rejects, res.more, both, res.cont,
                      res.total_max)
    return SatRes(res.rev, tuple(evs), acks, res.rejects, res.more, tuple(audits), res.cont,
                  res.total_max)


def _audit_rev(a: Audit) -> Rev:
    return a.rev


def _same_pairs(raw: Any, raw_audits: Any) -> bool:
    """Whether an ``evt.sat`` reply's raw ``acks`` and ``audits`` (JSON values) hold the
    same ``(uid, rev)`` values, one for one and in order (and at least one)."""
    if type(raw) is not list or not raw or type(raw_audits) is not list \
            or len(raw_audits) != len(raw):
        return False
    try:  # two lists of pairs compared in C: ~0.5 M instructions per 1,000
        return [(d.get("uid"), d.get("rev")) for d in raw] \
            == [(d.get("uid"), d.get("rev")) for d in raw_audits]
    except AttributeError:  # an item that is not an object: the careful reader names it
        return False


def enc_verdicts(acks: Sequence[Ack], rejects: Sequence[Reject]) -> dict[str, Any]:
    """The ``acks`` and ``rejects`` fields of an ``evt.sat`` result (as :func:`enc_sat_res`),
    for an error reply with :data:`ERR_CODE_READ`."""
    d = enc_sat_res(SatRes(ZERO_REV, (), tuple(acks), tuple(rejects)))
    del d["rev"]
    return d


def dec_read_failed(payload: Any, rev: Rev) -> SatRes:
    """The verdicts of an :data:`ERR_CODE_READ` error reply to an ``evt.sat`` (its ``acks``
    and ``rejects``), as a result of revision ``rev`` without events (the client's own
    revision: the reply moves it nowhere)."""
    obj: dict[str, Any] = {"rev": format_rev(rev)}
    if isinstance(payload, dict):
        for name in ("acks", "rejects"):
            if name in payload:
                obj[name] = payload[name]
    return dec_sat_res(obj, "evt.sat error reply")


def _items(r: _Reader, name: str, fast: Callable[[Any, Callable[[str], Rev]], T | None],
           prs: Callable[[str], Rev],
           careful: Callable[[Any, str, Callable[[str], Rev]], T]) -> tuple[T, ...]:
    """``r.list(name, ...)`` of a reply's events, acks or audits: one pass of ``fast`` over
    well-formed items (no per-item name or closure); the first unusual one sends the whole
    list to the careful reader, which names what is wrong."""
    raw = r.obj.get(name)
    if type(raw) is list:
        out: list[T] = []
        for x in raw:
            v = fast(x, prs)
            if v is None:
                break
            out.append(v)
        else:
            return tuple(out)
    return r.list(name, lambda x, w: careful(x, w, prs))


def decode_error(payload: Any) -> tuple[str, tuple[Conflict, ...]] | None:
    """``(err, conflicts)`` of an error reply payload, or ``None`` when it is a result.

    A payload with an ``err`` field is an error, even an empty one (its message is then
    "unknown error from the hub"); only ``"err": null`` beside a ``res`` reads as a result.
    """
    if not isinstance(payload, dict) or "err" not in payload:
        return None
    err = payload["err"]
    if err is None and "res" in payload:
        return None
    conflicts = _Reader(payload, "error reply").list("conflicts", dec_conflict)
    msg = err if isinstance(err, str) else ("" if err is None else str(err))
    return (msg or "unknown error from the hub"), conflicts


# ---------------------------------------------------------------------------------------------
# encoders: JSON-ready dicts with daql's names and omission rules


class _RevMemo(dict[Rev, str]):
    """Revisions formatted within one frame (``memo[rev]``): an event's, its ack's and its
    audit's revision are the same, and ``format_rev``'s own cache of the last second is lost
    when texts alternate between seconds (an audit's ``rev`` and ``created``)."""

    __slots__ = ()

    def __missing__(self, rev: Rev) -> str:
        text = self[rev] = format_rev(rev)
        return text


def rev_memo() -> Callable[[Rev], str]:
    """A ``format_rev`` that remembers what it formatted: for the revisions of one frame."""
    return _RevMemo().__getitem__


def enc_action(a: Action) -> dict[str, Any]:
    d: dict[str, Any] = {"top": a.top, "key": a.key, "cmd": a.cmd.value}
    if a.arg is not None and a.cmd != Cmd.DEL:
        d["arg"] = a.arg
    return d


def enc_event(e: Event, fmt: Callable[[Rev], str] = format_rev) -> dict[str, Any]:
    d: dict[str, Any] = {"id": e.id, "rev": fmt(e.rev), "top": e.top, "key": e.key,
                         "cmd": e.cmd.value}
    if e.arg is not None and e.cmd != Cmd.DEL:
        d["arg"] = e.arg
    return d


def enc_events(evs: Sequence[Event], fmt: Callable[[Rev], str] | None = None,
               ) -> list[dict[str, Any]]:
    fmt = fmt or _RevMemo().__getitem__
    out: list[dict[str, Any]] = []
    dl = Cmd.DEL
    for e in evs:  # enc_event, inlined: a reply carries up to thousands
        # the Cmd itself: orjson writes a str subclass as its text, without the enum's
        # ``value`` property (as pub_reply)
        d: dict[str, Any] = {"id": e.id, "rev": fmt(e.rev), "top": e.top, "key": e.key,
                             "cmd": e.cmd}
        if e.arg is not None and e.cmd is not dl:
            d["arg"] = e.arg
        out.append(d)
    return out


def enc_trans(t: Trans, fmt: Callable[[Rev], str] = format_rev,
              acts: str | None = None) -> dict[str, Any]:
    """``fmt``: ``format_rev``, or a :func:`rev_memo` shared by the transactions of a frame
    (their ``base`` and ``created`` are in different seconds: ``format_rev``'s cache of the
    last second does not help). ``acts``: the JSON text of ``t.acts`` when known (as
    ``[enc_action(a) ...]`` encodes them): spliced by :func:`dumps` (``orjson.Fragment``), not
    encoded again."""
    d: dict[str, Any] = {}
    if t.id:
        d["id"] = t.id
    d["base"] = fmt(t.base)
    if t.rev:
        d["rev"] = fmt(t.rev)
    if t.created:
        d["created"] = fmt(t.created)
    if t.arrived:
        d["arrived"] = fmt(t.arrived)
    if t.usr:
        d["usr"] = t.usr
    if t.extra:
        d["extra"] = t.extra
    if t.uid:
        d["uid"] = t.uid
    d["acts"] = [enc_action(a) for a in t.acts] if acts is None else orjson.Fragment(acts)
    return d


def enc_audits(audits: Sequence[Audit], fmt: Callable[[Rev], str] | None = None,
               ) -> list[dict[str, Any]]:
    """The ``audits`` of an Update or SatRes (our extension, for satellites only):
    ``{"rev", "usr", "created"?, "uid"?, "extra"?}`` per revision (``arrived`` stays on the hub).
    """
    fmt = fmt or _RevMemo().__getitem__
    out: list[dict[str, Any]] = []
    for a in audits:
        d: dict[str, Any] = {"rev": fmt(a.rev), "usr": a.usr}
        if a.created:
            d["created"] = fmt(a.created)
        if a.uid:
            d["uid"] = a.uid
        if a.extra:
            d["extra"] = a.extra
        out.append(d)
    return out


def enc_watch(w: Watch) -> dict[str, Any]:
    return {"top": w.top, "keys": list(w.keys)}


def enc_note(n: Note) -> dict[str, Any]:
    return {"mon": n.mon, "watch": [enc_watch(w) for w in n.watch]}


def enc_update(u: Update) -> dict[str, Any]:
    fmt = _RevMemo().__getitem__
    d: dict[str, Any] = {"rev": fmt(u.rev)}
    if u.evs:
        d["evs"] = enc_events(u.evs, fmt)
    if u.note:
        d["note"] = [enc_note(n) for n in u.note]
    if u.audits:
        d["audits"] = enc_audits(u.audits, fmt)
    return d


def pub_reply(subj: str, tok: str, rev: Rev, evs: Sequence[Event]) -> str:
    """The reply frame to a publish of one transaction: ``format_reply(subj, tok,
    enc_update(Update(rev, evs)))``, built without the ``Update`` and the per-frame memo.

    The hub answers every ``evt.pub`` with it. Its events are of the one revision ``rev``
    (formatted once; an event of another revision, which a publish never returns, is
    formatted on its own); each ``cmd`` goes into the dict as the ``Cmd`` itself, which
    ``orjson`` writes as its text (a ``str`` subclass), without the enum's ``value``
    property. The bytes are ``format_reply``'s (tests/unit/test_wire.py compares them).
    """
    rt = format_rev(rev)
    out: list[dict[str, Any]] = []
    dl = Cmd.DEL
    for e in evs:
        d: dict[str, Any] = {"id": e.id, "rev": rt if e.rev == rev else format_rev(e.rev),
                             "top": e.top, "key": e.key, "cmd": e.cmd}
        if e.arg is not None and e.cmd is not dl:
            d["arg"] = e.arg
        out.append(d)
    body = {"res": {"rev": rt, "evs": out} if out else {"rev": rt}}
    head = f"{subj}#{tok}" if tok else subj
    return head + "\n" + orjson.dumps(body).decode("utf-8")


def enc_status(s: Status) -> dict[str, Any]:
    d: dict[str, Any] = {"rev": format_rev(s.rev), "mig": s.mig, "on": format_rev(s.on),
         "off": format_rev(s.off)}
    if s.ledger:  # Outpost extension (docs/protocol.md): daql's decoder ignores it
        d["ledger"] = s.ledger
    if s.restore_id:  # Outpost extension too: the restore point (omitted: never restored)
        d["restored"] = format_rev(s.restored)
        d["restore_id"] = s.restore_id
    if s.restores:  # and every restore point of its history (session 8), oldest first
        d["restores"] = [{"rev": format_rev(rev), "id": rid} for rev, rid in s.restores]
        if s.restores_omitted:
            d["restores_omitted"] = s.restores_omitted
    return d


def enc_conflict(c: Conflict) -> dict[str, Any]:
    d: dict[str, Any] = {"top": c.top, "key": c.key, "cmd": c.cmd.value, "reason": c.reason}
    if c.fields:
        d["fields"] = list(c.fields)
    if c.theirs is not None:
        d["theirs"] = c.theirs
    d["rev"] = format_rev(c.rev)
    if c.usr:
        d["usr"] = c.usr
    if c.by:  # ours: per field, its own last change after base (absent: rev/usr say it all)
        d["by"] = {f: ({"rev": format_rev(r), "usr": u} if u else {"rev": format_rev(r)})
                   for f, (r, u) in c.by.items()}
    return d


def enc_sub(req: SubReq) -> dict[str, Any]:
    return {"rev": format_rev(req.rev), "tops": list(req.tops)}


def enc_mon(req: MonReq) -> dict[str, Any]:
    return {"rev": format_rev(req.rev), "watch": [enc_watch(w) for w in req.watch]}


def enc_sat(req: SatReq) -> dict[str, Any]:
    fmt = _RevMemo().__getitem__
    d: dict[str, Any] = {"rev": fmt(req.rev), "trans": [enc_trans(t, fmt) for t in req.trans],
                         "tops": list(req.tops)}
    if req.lim:
        d["lim"] = req.lim
    if req.audits:
        d["audits"] = True
    if req.cont:
        d["cont"] = True
    if req.last is not None:
        d["last"] = enc_last(req.last)
    if req.own:
        d["own"] = True
    return d


def enc_sat_res(res: SatRes) -> dict[str, Any]:
    memo = _RevMemo()  # each revision is formatted once for its event, ack, audit
    fmt = memo.__getitem__
    d: dict[str, Any] = {"rev": fmt(res.rev)}
    evs = res.evs
    if evs:
        # the events' revisions formatted in one C-driven pass and put in the memo (the
        # acks' and audits' are the same): no memo miss (a Python call) per revision
        revs = [e.rev for e in evs]
        texts = list(map(format_rev, revs))
        memo.update(zip(revs, texts, strict=True))
        dl = Cmd.DEL
        # enc_events with these texts (same dicts, same key order)
        d["evs"] = [{"id": e.id, "rev": t, "top": e.top, "key": e.key, "cmd": e.cmd,
                     "arg": e.arg} if e.arg is not None and e.cmd is not dl else
                    {"id": e.id, "rev": t, "top": e.top, "key": e.key, "cmd": e.cmd}
                    for e, t in zip(evs, texts, strict=True)]
    if res.acks:
        d["acks"] = [{"uid": a.uid, "rev": fmt(a.rev)} for a in res.acks]
    if res.rejects:
        rj: list[dict[str, Any]] = []
        for x in res.rejects:
            item: dict[str, Any] = {"uid": x.uid, "err": x.err}
            if x.conflicts:
                item["conflicts"] = [enc_conflict(c) for c in x.conflicts]
            rj.append(item)
        d["rejects"] = rj
    if res.more:
        d["more"] = True
    if res.audits:
        # enc_audits, the common shape (a satellite's: created and uid, no extra) without
        # the appends and tests per field
        d["audits"] = [{"rev": fmt(a.rev), "usr": a.usr, "created": fmt(a.created),
                        "uid": a.uid} if a.created and a.uid and not a.extra
                       else enc_audits((a,), fmt)[0] for a in res.audits]
    if res.cont:
        d["cont"] = True
    if res.total_max:  # ours: the first reply of a catch-up in batches (daql ignores it)
        d["total_max"] = res.total_max
    if res.own is not None:  # ours: only to a request with own
        d["own"] = {"usr": res.own[0], "ids": list(res.own[1])}
    return d


def enc_args(arg: Mapping[str, Any] | None) -> bytes:
    """Canonical JSON of an argument dict (sorted keys), for storage and comparison."""
    return orjson.dumps(arg, option=orjson.OPT_SORT_KEYS)
