"""The asyncio adapter of the sync machine over websockets: :class:`SyncClient`.

It only moves bytes: it opens the connection the machine asks for (``Authorization: Bearer``
in the handshake), feeds received frames, closes and timer ticks to
:class:`~core.satellite.machine.SyncMachine`, and carries out the machine's outputs. All
decisions live in the machine. websockets errors are translated to
:class:`~core.errors.HubError` here, and only here, with the cause chained.

Hub data (catch-up batches, pushes) is stored on a worker thread (the client's own
``ThreadPoolExecutor`` of plain threads, whatever the loop's default executor is: under qasync
it is a pool of QThreads): the
machine emits :class:`~core.satellite.machine.Apply`, the adapter runs ``Satellite.write`` in
the thread and feeds ``applied`` back; ``Satellite.written`` (the overlay and listeners) runs
on the event loop's thread. So the loop (the desktop's UI) stays responsive while a batch of
5,000 events is written, and the next batch is already on its way (pipelining).

The token is never logged.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import ssl
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import (
    ConnectionClosed,
    InvalidHandshake,
    InvalidMessage,
    InvalidStatus,
    InvalidURI,
)
from websockets.frames import DATA_OPCODES, CloseCode, Frame

from core.crashpoints import crash_point
from core.errors import (
    HubDataError,
    HubError,
    LostRevisionsError,
    OutpostError,
    SchemaError,
    WireError,
)
from core.model import Status
from core.redact import install as install_redaction
from core.revision import ZERO_REV, Rev, format_rev
from core.satellite.config import SatConfig
from core.satellite.machine import (
    CLOSE_TOO_BIG,
    HUB_DB_DOWN,
    MAX_INCOMING,
    Apply,
    Backoff,
    Close,
    Incoming,
    Open,
    Phase,
    Send,
    SyncMachine,
    carry_conflicts,
    decode_incoming,
)
from core.satellite.satellite import Satellite
from core.schema import Project, parse_project
from core.wire import (
    ERR_CODE_DIVERGED,
    SatReq,
    dec_last,
    dec_status,
    decode_error,
    decode_json,
    dumps,
    enc_sat,
    format_frame,
    parse_frame,
)

__all__ = [
    "PROJECT_GRACE",
    "NoProjectError",
    "SyncClient",
    "fetch_hub",
    "fetch_project",
    "hub_error",
    "no_project",
    "refusal",
    "token_refused",
]

log = logging.getLogger("outpost.sat.client")
_ws_log = logging.getLogger("outpost.sat.ws")
install_redaction(_ws_log)  # websockets logs the handshake's headers (the token) at DEBUG

MAX_MESSAGE = MAX_INCOMING
BIG_FRAME = 32 * 1024
"""Frames at least this long are decoded on a worker thread, off the event loop."""


def _headers(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"} if token else {}


def token_refused(exc: BaseException) -> bool:
    """Whether ``exc`` (a :class:`HubError` of :func:`hub_error`) is the hub refusing the
    token (HTTP 401 on the WebSocket handshake; a 403 is the hub's policy, e.g. its
    --allow-origin list, not the token): retrying cannot help, and settings
    holding that token must not be stored."""
    cause = exc.__cause__
    return isinstance(cause, InvalidStatus) and cause.response.status_code == 401


def refusal(exc: BaseException) -> int:
    """401 or 403 when ``exc`` (a :class:`HubError` of :func:`hub_error`) is the hub (or a
    proxy) refusing the connection on the handshake for good: a refused token (401), or the
    hub's or a proxy's policy (403: its --allow-origin list, a proxy's rules). Neither heals
    by retrying: sync stops (:attr:`SyncClient.refused`). 0: anything else."""
    cause = exc.__cause__
    if isinstance(cause, InvalidStatus) and cause.response.status_code in (401, 403):
        return int(cause.response.status_code)
    return 0


def _body(exc: InvalidStatus) -> str:
    """The first line of an HTTP refusal's body (what the hub, or a proxy, said), printable,
    short, its double quotes made single (it is quoted in the message)."""
    body = exc.response.body or b""
    line = body.decode("utf-8", "replace").strip().splitlines()[:1]
    text = "".join(ch for ch in (line[0] if line else "") if ch.isprintable())
    return text.replace('"', "'")[:200]


_NAME_MISMATCH = (62, 64)
"""OpenSSL's X509_V_ERR_HOSTNAME_MISMATCH and X509_V_ERR_IP_ADDRESS_MISMATCH: the
``SSLCertVerificationError.verify_code`` of a trusted certificate that does not name the host
(or address) connected to."""


def hub_error(url: str, exc: BaseException) -> HubError:
    """A HubError for a failure to reach or talk to the hub at ``url``, naming the fix."""
    if isinstance(exc, InvalidStatus):
        code = exc.response.status_code
        if code == 401:
            # each front end adds where a valid token goes (CLI: connect; app: its settings)
            return HubError(f"the hub at {url} refused the token (HTTP {code}): it is wrong, "
                            "expired or revoked; a valid one comes from the hub operator")
        # the body may be the hub's words or a proxy's own page: what happened is said in
        # ours, the body only quoted as detail
        why = _body(exc)
        said = f'; the response said: "{why}"' if why else ""
        if code == 403:  # not the token: the hub's (or a proxy's) policy, e.g. --allow-origin
            return HubError(f"the hub at {url}, or a proxy between here and it, refused the "
                            "connection (HTTP 403 Forbidden): not a token problem; ask the "
                            "hub operator (the hub's --allow-origin list, or the proxy's "
                            f"rules){said}")
        return HubError(f"the hub at {url}, or a proxy between here and it, refused the "
                        f"connection (HTTP {code}){said}")
    if isinstance(exc, ssl.SSLCertVerificationError) and exc.verify_code in _NAME_MISMATCH:
        # trusted, but made for another name: trusting it again would not help
        host = urlsplit(url).hostname or url
        return HubError(f"the hub at {url} has a TLS certificate for another name than "
                        f"{host!r} ({exc.verify_message or exc}): connect with a name the "
                        "certificate holds (wss://NAME:PORT, as the hub operator gives it), "
                        "or have the hub operator put this name in the certificate")
    if isinstance(exc, ssl.SSLCertVerificationError):
        return HubError(f"the hub at {url} has a TLS certificate this machine does not trust "
                        f"({exc.verify_message or exc}): a self-signed or private-CA hub needs "
                        "its certificate (or CA) trusted: install it in the system's trust "
                        "store, or point SSL_CERT_FILE at a PEM file holding it")
    if isinstance(exc, InvalidURI):
        return HubError(f"{url!r} is not a hub URL: expected ws://host:port or wss://host:port")
    if isinstance(exc, TimeoutError):
        return HubError(f"the hub at {url} did not answer in time: check the URL and the "
                        "network; the satellite keeps working offline")
    if isinstance(exc, ConnectionClosed):
        return HubError(f"the connection to {url} closed: {exc}")
    scheme = url.split("://", 1)[0].lower()
    if scheme == "ws" and isinstance(exc, InvalidMessage):
        # a TLS hub answers a plain HTTP request with a TLS alert, not HTTP
        return HubError(f"the hub at {url} did not answer in HTTP ({exc}): if it speaks TLS "
                        f"(started with --tls-cert), use wss://{url.split('://', 1)[1]}")
    why = str(exc) or type(exc).__name__  # an exception object is always true: its text
    if scheme == "wss" and isinstance(exc, (ConnectionResetError, ssl.SSLError, EOFError)) \
            and not isinstance(exc, ssl.SSLCertVerificationError):
        return HubError(f"cannot reach the hub at {url}: the TLS handshake failed ({why}): if "
                        "the hub does not speak TLS (started without --tls-cert), use "
                        f"ws://{url.split('://', 1)[1]}; else check that `outpost-hub serve` "
                        "runs there; the satellite keeps working offline")
    return HubError(f"cannot reach the hub at {url}: {why}: check that "
                    "`outpost-hub serve` runs there; the satellite keeps working offline")


def hub_close_code(exc: ConnectionClosed) -> int:
    """The close code the hub sent first (0: it sent none, or this side closed first: a
    1009 this side sent for a reply too big for it is echoed by the hub, and is not the
    hub's)."""
    if exc.rcvd is None or exc.rcvd_then_sent is False:
        return 0
    return exc.rcvd.code


def closed_too_big(exc: ConnectionClosed) -> bool:
    """Whether this side closed the connection with 1009 (message too big) first: a message
    from the hub was over the limit this side takes (``max_size``)."""
    return (exc.sent is not None and exc.sent.code == CLOSE_TOO_BIG
            and not (exc.rcvd is not None and exc.rcvd_then_sent))


# -- the keepalive (shared with the hub's connections: hubserver.connection) -----------------

if TYPE_CHECKING:
    from websockets.asyncio.connection import Connection

    _KeepaliveBase = Connection
else:
    _KeepaliveBase = object

_alive_log = logging.getLogger("outpost.ws")


class LiveKeepalive(_KeepaliveBase):
    """A WebSocket keepalive that counts any byte received as a sign of life (the satellite's
    client and the hub's server connections use it; I/O glue, no decision logic).

    websockets' own keepalive sends a ping, waits for its pong at most ``ping_timeout`` seconds,
    and then closes the connection ("keepalive ping timeout"). On a slow link a ping or a pong
    queues behind a big message in the same byte stream (a 1 MB catch-up reply takes two minutes
    at 8 KB/s): both ends closed a link that was working, reconnected, asked again, and a
    catch-up never finished (safety review 10, finding 4). Here each end pings every
    ``ping_interval`` without waiting for earlier pongs, and gives the connection up only when a
    ping has gone unanswered for ``ping_timeout`` seconds *and* no byte at all has arrived for
    ``ping_interval + ping_timeout`` seconds: a peer that is sending (even only its own pings)
    is alive; a dead or stalled one is still found within about a minute.

    Mixin for a websockets asyncio connection class (before it in the bases): call
    :meth:`note_rx` from ``data_received``; :meth:`keepalive` replaces websockets' own."""

    last_rx: float = 0.0

    def note_rx(self) -> None:
        self.last_rx = self.loop.time()

    async def keepalive(self) -> None:
        assert self.ping_interval is not None
        timeout = self.ping_timeout or self.ping_interval
        window = self.ping_interval + timeout
        pings: list[tuple[float, asyncio.Future[float]]] = []
        if not self.last_rx:
            self.last_rx = self.loop.time()
        try:
            while True:
                await asyncio.sleep(self.ping_interval)
                now = self.loop.time()
                pings = [(t, f) for t, f in pings if not f.done()]
                if pings and now - pings[0][0] >= timeout and now - self.last_rx >= window:
                    async with self.send_context():
                        self.protocol.fail(CloseCode.INTERNAL_ERROR,
                                           f"keepalive: nothing received for {window:g} s")
                    return
                pings.append((now, asyncio.ensure_future(await self.ping())))
        except ConnectionClosed:
            pass
        except Exception:
            _alive_log.error("keepalive ping failed", exc_info=True)
        finally:
            for _, f in pings:
                if not f.done():
                    f.cancel()


PING_INTERVAL = 20.0
"""Seconds between keepalive pings."""
PING_TIMEOUT = 20.0
"""Seconds without a pong *and without any byte from the hub* before the connection is
given up (:class:`_LiveConn`)."""


_PARTIAL_BYTES = 1024
"""Bytes received since the last whole data frame above which a message is arriving: what
the sync machine's request timers take as progress. Control frames (pings, pongs: a few
bytes each, a handful a minute) stay far below it, so a hub that answers pings but never
the request still times out (final review 10: any byte reset the timer, and a hub stuck on
a database lock hung a sync for ever)."""


class _LiveConn(LiveKeepalive, ClientConnection):
    """The client's connection: any byte received is a sign of life for the keepalive
    (:class:`LiveKeepalive`), and ``on_bytes`` (set by :class:`SyncClient`) hears of a data
    message arriving (over :data:`_PARTIAL_BYTES` of it so far), so the sync machine's
    request timeout counts the time nothing of a message arrives, not the time a big reply
    takes on a slow link."""

    on_bytes: Callable[[], None] | None = None
    _partial = 0  # bytes received since the last whole data frame

    def data_received(self, data: bytes) -> None:
        self.note_rx()
        self._partial += len(data)
        super().data_received(data)
        if self.on_bytes is not None and self._partial >= _PARTIAL_BYTES:
            self.on_bytes()

    def process_event(self, event: Any) -> None:
        super().process_event(event)
        if isinstance(event, Frame) and event.opcode in DATA_OPCODES and event.fin:
            self._partial = 0  # a whole message: what follows is the next one


async def _open(url: str, token: str, timeout: float, max_size: int = MAX_MESSAGE
                ) -> _LiveConn:
    try:
        ws = await connect(url, additional_headers=_headers(token), open_timeout=timeout,
                           max_size=max_size, ping_interval=PING_INTERVAL,
                           ping_timeout=PING_TIMEOUT, logger=_ws_log,
                           create_connection=_LiveConn)
        assert isinstance(ws, _LiveConn)
        return ws
    except (OSError, InvalidHandshake, InvalidURI, TimeoutError) as exc:
        raise hub_error(url, exc) from exc


async def fetch_project(url: str, token: str = "", timeout: float = 10.0) -> Project:
    """Fetch the hub's schema (``dom.project``).

    Raises:
        HubError: the hub cannot be reached or answered with an error.
        SchemaError: the hub's schema cannot be used.
    """
    project, _ = await fetch_hub(url, token, timeout, stat=False)
    return project


#: seconds a hub that answered ``evt.stat`` gets to answer ``dom.project`` too (an Outpost
#: hub answers both at once; a daql hub never answers a subject it does not know)
PROJECT_GRACE = 3.0


class NoProjectError(HubError):
    """A hub answered ``evt.stat`` but not ``dom.project``: it serves no schema (daql)."""


def no_project(url: str) -> HubError:
    """The error of a hub that answered ``evt.stat`` but not ``dom.project`` (daql)."""
    return NoProjectError(f"the hub at {url} answered evt.stat but not dom.project: it may be a "
                    "daql hub, which does not serve its schema; give the schema with --schema "
                    "FILE (the project's schema file, .toml, or a schema.json)")


async def fetch_hub(url: str, token: str = "", timeout: float = 10.0, stat: bool = True,
                    schema: Project | None = None) -> tuple[Project, Status | None]:
    """Fetch the hub's schema (``dom.project``) and, with ``stat``, its status
    (``evt.stat``: its revision) over one connection. ``schema``: the schema given (a daql
    hub serves none): returned as is, and only ``evt.stat`` is asked.

    ``evt.stat`` is asked first, always: a hub that answers it and not ``dom.project``
    within :data:`PROJECT_GRACE` seconds is not an Outpost hub (daql answers no subject it
    does not know) and gets :func:`no_project`, not "did not answer in time".

    Raises:
        HubError: the hub cannot be reached or answered with an error.
        SchemaError: the hub's schema cannot be used.
    """
    want = {"2": "evt.stat", **({"1": "dom.project"} if schema is None else {})}
    # the replies waited for (evt.stat is asked always, to tell a daql hub, but needed only
    # with ``stat`` or when no schema is asked)
    need = {"1"} if schema is None and not stat else set(want)
    bodies: dict[str, Any] = {}
    async with asyncio.timeout(timeout):
        ws = await _open(url, token, timeout)
        try:
            for tok, subj in want.items():
                await ws.send(format_frame(subj, tok))
            loop = asyncio.get_running_loop()
            grace: float | None = None
            while not need <= bodies.keys():
                if grace is None and "2" in bodies:
                    grace = loop.time() + PROJECT_GRACE
                try:
                    if grace is None:
                        raw = await ws.recv()
                    else:
                        raw = await asyncio.wait_for(ws.recv(), max(0.0, grace - loop.time()))
                except TimeoutError:
                    raise no_project(url) from None
                frame = parse_frame(raw, MAX_MESSAGE)
                if want.get(frame.tok) == frame.subj:
                    bodies[frame.tok] = frame.body
        except ConnectionClosed as exc:
            raise hub_error(url, exc) from exc
        except WireError as exc:
            raise HubError(f"the hub at {url} sent a bad frame for {', '.join(want.values())}: "
                           f"{exc}") from exc
        finally:
            await ws.close()
    project = schema if schema is not None else _project_of(
        url, _reply(url, "dom.project", bodies["1"]))
    if not stat:
        return project, None
    try:
        st = dec_status(_reply(url, "evt.stat", bodies["2"]), "evt.stat result")
    except WireError as exc:
        raise HubError(f"the hub at {url} sent a bad evt.stat reply: {exc}") from exc
    return project, st


async def hub_history(url: str, token: str, rev: Rev, last: tuple[int, Rev],
                      timeout: float = 10.0) -> tuple[int, Rev] | None:
    """Ask the hub whether its history up to ``rev`` is the one a replica holds whose last
    event at or before ``rev`` is ``last`` (an ``evt.sat`` with that ``last``, no edits and
    no topics: nothing is published or sent back): the hub's own last event (``(0, 0)``:
    none) when it differs (``code`` ``diverged``, ours), else ``None``, also when the hub
    does not check (daql, an Outpost hub before session 15: no such answer = no check) or
    refused the request for another reason (a ``rev`` in its future: the caller's revision
    check says so).

    Raises:
        HubError: the hub cannot be reached or closed the connection.
    """
    body = dumps(enc_sat(SatReq(rev, (), (), last=last)))
    async with asyncio.timeout(timeout):
        ws = await _open(url, token, timeout)
        try:
            await ws.send(format_frame("evt.sat", "1", body))
            while True:
                frame = parse_frame(await ws.recv(), MAX_MESSAGE)
                if frame.subj == "evt.sat" and frame.tok == "1":
                    break
        except ConnectionClosed as exc:
            raise hub_error(url, exc) from exc
        except WireError as exc:
            raise HubError(f"the hub at {url} sent a bad frame for evt.sat: {exc}") from exc
        finally:
            await ws.close()
    try:
        reply = decode_json(frame.body or "null")
    except WireError:
        return None
    if not isinstance(reply, dict) or reply.get("code") != ERR_CODE_DIVERGED:
        return None
    try:
        return dec_last(reply.get("last"), "evt.sat error") or (0, ZERO_REV)
    except WireError:
        return (0, ZERO_REV)


def _reply(url: str, subj: str, raw: str) -> Any:
    try:
        body = decode_json(raw)
    except WireError as exc:
        raise HubError(f"the hub at {url} sent a bad {subj} reply: {exc}") from exc
    err = decode_error(body)
    if err is not None:
        raise HubError(f"the hub at {url} refused {subj}: {err[0]}")
    return body.get("res") if isinstance(body, dict) else None


def _project_of(url: str, res: Any) -> Project:
    if not isinstance(res, dict):
        raise SchemaError(f"the hub at {url} sent no schema (dom.project result is empty)")
    data = {k: v for k, v in res.items()}
    if isinstance(data.get("project"), dict):
        data["project"] = {k: v for k, v in data["project"].items() if k != "mig"}
    return parse_project(data, f"{url} dom.project")


class SyncClient:
    """Keeps one satellite in sync with a hub until stopped.

    Args:
        sat: the satellite.
        url: the hub's ``ws://`` URL.
        token: the bearer token ("" for none).
        rnd: random source for backoff jitter.
        backoff, lim, timeout: passed to the machine.
        open_timeout: seconds to open a connection.
        max_message: the largest message taken from the hub, in bytes (0: the satellite's
            config, ``max_reply_mib``, else :data:`MAX_MESSAGE`).
    """

    def __init__(self, sat: Satellite, url: str, token: str = "", *,
                 rnd: random.Random | None = None, backoff: Backoff | None = None,
                 lim: int = 5000, timeout: float = 60.0, open_timeout: float = 10.0,
                 clock: Callable[[], float] = time.monotonic, max_message: int = 0):
        self.sat = sat
        self.url = url
        self.token = token
        self.open_timeout = open_timeout
        cfg = getattr(sat, "config", None)
        self.max_message = max_message or (cfg.max_incoming if isinstance(cfg, SatConfig)
                                           else MAX_MESSAGE)
        self.clock = clock
        self.machine = SyncMachine(sat, rnd, lim=lim, backoff=backoff, timeout=timeout,
                                   defer_apply=True)
        self._applier: asyncio.Task[None] | None = None
        self._pool: ThreadPoolExecutor | None = None
        self._inbox: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
        self._ws: ClientConnection | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._self_closed: set[ClientConnection] = set()
        self._connector: asyncio.Task[None] | None = None
        self._connecting_since: float | None = None
        self._stop = asyncio.Event()
        self._rx_told = float("-inf")
        self._running = False
        #: the hub's refusal on the last connect attempt ("" : none): of the token (HTTP 401),
        #: or by its or a proxy's policy (403; see :func:`refusal`, :attr:`refused_code`)
        self.refused = ""
        self.refused_code = 0
        #: set by the app as the window closes: a :meth:`settle` waiting ends at once (the
        #: new token it waited for is kept for the next start)
        self.closing = False
        #: the phase the machine was in when :meth:`run_until`'s own timeout ended it (None:
        #: it did not): a connection closed so is this side's doing, not the hub's
        self.timed_out_in: Phase | None = None
        #: the edits of this replica not yet answered (in flight or pending) when that
        #: timeout ended it: none means it was storing what arrived, not sending
        self.timed_out_unsent = 0

    @property
    def timed_out_connected(self) -> bool:
        """Whether :meth:`run_until`'s own timeout ended a run that was connected to the hub
        (answering: the time given ran out, not the hub)."""
        return self.timed_out_in in (Phase.HANDSHAKE, Phase.CATCHUP, Phase.LIVE)

    # -- public --------------------------------------------------------------------------------

    async def run(self) -> None:
        """Sync until :meth:`stop` is called (reconnecting forever)."""
        await self.run_until(lambda: False, None)

    async def sync_once(self, timeout: float) -> None:
        """Connect, push the queue and catch up; return when idle.

        Raises:
            HubError: the hub refused the token or the connection (at once: 401 or 403,
                :func:`refusal`), not
                done within ``timeout`` seconds (with the last error), sync
                stopped (e.g. another schema or another ledger), the hub is behind the
                replica (at once: waiting would not help a hub that holds another ledger or
                an older backup; the message names both revisions), or the hub refuses this
                user's edits (a reader's token: caught up, the edits stay pending).
        """
        m = self.machine
        m.behind = None
        self.refused = ""
        held = ""  # the hub's reason for refusing this user's edits, once caught up

        def done() -> bool:
            nonlocal held
            if m.idle or self.refused:  # refused (401, 403): retrying cannot help
                return True
            if m.read_only and m.caught_up:
                held = m.read_only
                return True
            return m.behind is not None  # the handshake found the hub behind the replica

        ok = await self.run_until(done, timeout)
        if self.refused:
            raise HubError(f"sync with {self.url} not done: {self.refused}; nothing was sent")
        if ok and held:
            pending = self.sat.status().pending
            raise HubError(f"sync with {self.url}: caught up with the hub, but {held}" + (
                f"; the {pending:,} edit{'s' if pending != 1 else ''} pending here stay so: "
                "`outpost discard --all` drops them (kept as receipts), or with a writer "
                "token (`outpost connect URL --token=TOKEN`) they go out on the next sync"
                if pending else ""))
        info = self.machine.info
        if m.behind is not None:
            hub, mine = m.behind
            at = f"at revision {format_rev(hub)}" if hub else "empty"
            gone = m.behind_lost
            rej = self.sat.unresolved()
            raise HubError(
                f"sync with {self.url} not done: the hub is {at}, behind "
                + (f"revision {format_rev(mine)}, at which it accepted an edit of this "
                   "replica" if gone and self.sat.rev() < mine else
                   f"this replica's revision {format_rev(mine)}")
                + ", so it does not hold what this replica holds: another ledger (use a new "
                "--data DIR for this hub), a restore of an older backup or a rollback of its "
                "file (a copy of an older file, a disk or VM snapshot: what the hub lost is in "
                "this replica only: ask its operator), or a hub of a cluster still catching up "
                "(retry in a moment); nothing was sent or changed. To keep this replica's "
                "edits not synced yet"
                + (", and those this hub accepted after its revision" if gone else "")
                + (f" and its {carry_conflicts(rej)}" if rej else "")
                + f": `outpost carry OLD_DIR --data NEWDIR{' --accepted' if gone else ''}"
                f"{' --rejected' if rej else ''}` (docs/satellite.md)")
        if not ok:
            if m.phase == Phase.STOPPED and info.last_error:
                raise HubError(f"sync with {self.url} stopped: {info.last_error}")
            was = self.timed_out_in
            if self.timed_out_connected:
                # connected and answered all along: the time given ran out, not the hub
                # (operator review 14: "the hub went away … still offline" blamed the hub)
                # live: sending only while edits are in flight or pending; with none, the
                # last batch received was still being stored (merge review 14: "still
                # sending this replica's edits" was said of a replica with nothing pending)
                n = self.timed_out_unsent
                if was == Phase.CATCHUP and info.last_error.startswith(HUB_DB_DOWN):
                    raise HubError(
                        f"sync with {self.url} did not finish within {timeout:g} s "
                        f"(--timeout): connected, but {info.last_error}; run it again later")
                got = ("still catching up" if was == Phase.CATCHUP else
                       f"still sending {n:,} edit{'s' if n != 1 else ''} of this replica"
                       if was == Phase.LIVE and n else
                       "still storing what arrived" if was == Phase.LIVE else
                       "still connecting")
                raise HubError(
                    f"sync with {self.url} did not finish within {timeout:g} s (--timeout): "
                    f"connected, {got}, and what arrived is kept; run it again with a larger "
                    "--timeout, or `outpost sync` without --once to keep syncing until it is "
                    "done")
            why = info.last_error or f"still {info.phase.value}"
            raise HubError(f"sync with {self.url} did not finish within {timeout:g} s: {why}")

    def stop(self) -> None:
        self._stop.set()

    async def settle(self, timeout: float, poll: float = 0.05) -> int:
        """Stop sending edits and wait, ``timeout`` seconds at most, until the hub answered
        those sent; gives how many are still unanswered (0: none: the connection can be
        closed, and the user behind it changed, without losing an answer). The edits stay
        held until :meth:`release`, across connections: a connection that closes during the
        wait takes the answers of its edits in flight, and the next one sends those again,
        alone, with the same token, before the wait can end (session 15: it ended at once,
        and the new token's connection sent them again as another user). For a change of
        token: the hub takes a resend for the same transaction only from the same user
        (merge review 14: ~200 false conflicts "uid … was already applied with other
        actions"). The wait also ends when no answer can come: the hub refused the token
        (:attr:`refused`), the user chose to work offline, or the app's window closes
        (:attr:`closing`)."""
        m = self.machine
        m.hold_edits = True
        end = self.clock() + timeout
        for _ in range(int(timeout / poll) + 2):  # bounded in count and time
            if not m.edits_unanswered or self.clock() >= end or self.refused \
                    or self.closing or getattr(self.sat, "offline_mode", False):
                break
            await asyncio.sleep(poll)
        return m.edits_unanswered

    def release(self) -> None:
        """Send edits again after :meth:`settle`."""
        self.machine.hold_edits = False
        self._kick()

    @property
    def connected(self) -> bool:
        return self._ws is not None

    # -- loop ----------------------------------------------------------------------------------

    async def run_until(self, done: Callable[[], bool], timeout: float | None) -> bool:
        """Run the machine until ``done()`` (True), ``timeout`` seconds pass or sync stops
        for good (False)."""
        m = self.machine
        self._stop.clear()
        self.timed_out_in = None
        self.timed_out_unsent = 0
        self._inbox = asyncio.Queue()
        deadline = None if timeout is None else self.clock() + timeout
        if m.applying:
            # an earlier run was cancelled while storing: let that write end, then resync
            if self._applier is not None and not self._applier.done():
                await asyncio.wait({self._applier})
            m.drop_applies()
        self.sat.on_local = self._kick
        m.start(self.clock())
        try:
            while True:
                await self._carry_out()
                # while the hub works on the request just sent: encode the next one (after
                # letting a write just handed to the worker thread start)
                await asyncio.sleep(0)
                m.prepare()
                self.sat.set_sync(m.info)
                if done():
                    return True
                if self._stop.is_set() or m.phase == Phase.STOPPED:
                    return False
                now = self.clock()
                if deadline is not None and now >= deadline:
                    self.timed_out_in = m.phase  # before the connection is closed below
                    self.timed_out_unsent = len(self.sat.outbox())
                    return False
                guard = self._connect_guard()
                beat = self.sat.status_wait()  # the status readers see: write it again then
                beat_at = None if beat is None else now + beat
                waits = [t for t in (m.wake_at(), deadline, guard, beat_at) if t is not None]
                delay = max(0.0, min(waits) - now) if waits else None
                kind, arg = await self._next(delay)
                if kind == "tick":
                    if guard is not None and self.clock() >= guard \
                            and m.phase == Phase.CONNECTING and self._connector_lost():
                        # safety net: a connect attempt that ended without a word (should not
                        # happen) must not leave the machine CONNECTING forever
                        log.warning("connect attempt to %s never reported; retrying", self.url)
                        self._feed("closed", (f"the connect attempt to {self.url} was lost", 0))
                        continue
                    m.tick(self.clock())
                    continue
                self._feed(kind, arg)
        finally:
            self.sat.on_local = None
            await self._shutdown()
            self.sat.set_sync(m.info)

    async def _next(self, timeout: float | None) -> tuple[str, Any]:
        """The next input, ``("stop", None)``, or ``("tick", None)`` after ``timeout`` s.

        The timeout is handled here, not by cancelling this coroutine from outside: a getter
        left behind by a cancelled wait would take the next input (e.g. "opened") from the
        inbox and drop it, leaving the machine CONNECTING forever (found by the chaos run).
        """
        get = asyncio.ensure_future(self._inbox.get())
        stop = asyncio.ensure_future(self._stop.wait())
        try:
            await asyncio.wait({get, stop}, timeout=timeout,
                               return_when=asyncio.FIRST_COMPLETED)
        finally:
            stop.cancel()
            if not get.done():
                get.cancel()  # the item, if any, stays in the queue
        if get.done() and not get.cancelled():
            return get.result()
        if self._stop.is_set():
            return ("stop", None)
        return ("tick", None)

    def _feed(self, kind: str, arg: Any) -> None:
        m = self.machine
        now = self.clock()
        try:
            if kind == "frame":
                m.received(arg, now)
            elif kind == "opened":
                self._ws = arg
                m.connected(now)
            elif kind == "closed":
                self._ws = None
                reason, code, *big = arg  # big: this side's limit a message was over
                m.disconnected(now, reason, code, *big)
            elif kind == "kick":
                m.local_change(now)
            elif kind == "bytes":
                m.receiving(now)
            elif kind == "applied":
                m.applied(now, arg[0], final=arg[1])
        except OutpostError as exc:
            # local storage failed while applying hub data: drop the connection, retry later
            log.warning("sync input failed: %s", exc)
            m.info = replace(m.info, last_error=str(exc))
            self._close_ws()

    def _kick(self) -> None:
        self._inbox.put_nowait(("kick", None))

    def _connect_guard(self) -> float | None:
        """When to check that a connect attempt still runs (None: not connecting)."""
        if self.machine.phase != Phase.CONNECTING:
            self._connecting_since = None
            return None
        if self._connecting_since is None:
            self._connecting_since = self.clock()
        return self._connecting_since + self.open_timeout + 5.0

    def _connector_lost(self) -> bool:
        return self._connector is None or self._connector.done()

    async def _carry_out(self) -> None:
        for out in self.machine.take():
            if isinstance(out, Open):
                self._connecting_since = None
                self._connector = self._spawn(self._connect())
            elif isinstance(out, Send):
                ws = self._ws
                if ws is not None:
                    with contextlib.suppress(ConnectionClosed):  # the reader reports it
                        await ws.send(out.text)
                    if out.text.startswith("evt.sat"):
                        crash_point("sat.after_send")
            elif isinstance(out, Close):
                self._close_ws()
            elif isinstance(out, Apply):
                # not in self._tasks: the shutdown lets a write finish instead of cancelling
                self._applier = asyncio.ensure_future(self._apply(out))

    async def _in_thread(self, fn: Callable[[Any], Any], arg: Any) -> Any:
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="outpost-sync")
        return await asyncio.get_running_loop().run_in_executor(self._pool, fn, arg)

    async def _apply(self, out: Apply) -> None:
        err = ""
        final = False
        try:
            await self._in_thread(self.sat.write, out.item)
        except OutpostError as exc:
            # local storage failed (disk full, locked): the machine drops the connection;
            # for events reusing held ids (the hub lost revisions) it stops for good. Said
            # to the user as the machine's last_error (the CLI once, the app's status bar):
            # not a warning here too, which printed the same line on stderr every retry
            log.info("storing hub data failed: %s", exc)
            err = str(exc)
            final = isinstance(exc, (LostRevisionsError, HubDataError))
        except Exception as exc:  # a bug: keep the traceback, and do not leave the machine waiting
            log.error("storing hub data failed", exc_info=exc)
            err = f"{type(exc).__name__}: {exc}"
        self._inbox.put_nowait(("applied", (err, final)))

    async def _finish_applies(self) -> None:
        """Store what was received before stopping (bounded: a few batches at most)."""
        m = self.machine
        for _ in range(100):
            if not m.applying:
                return
            t = self._applier
            if t is not None and not t.done():
                await asyncio.wait({t})
            fed = False
            while not self._inbox.empty():
                kind, arg = self._inbox.get_nowait()
                if kind == "applied":
                    m.applied(self.clock(), arg[0], final=arg[1])
                    fed = True
            for out in m.take():
                if isinstance(out, Apply):
                    self._applier = asyncio.ensure_future(self._apply(out))
            if not fed and (t is None or t.done()) and m.applying and \
                    (self._applier is None or self._applier.done()):
                break  # lost track of it: resync later
        m.drop_applies()

    def _close_ws(self) -> None:
        ws = self._ws
        if ws is not None:
            self._self_closed.add(ws)
            self._spawn(self._close(ws))

    async def _close(self, ws: ClientConnection) -> None:
        # a blackholed link never answers the close frame: do not wait websockets' 10 s
        try:
            async with asyncio.timeout(2.0):
                await ws.close()
        except TimeoutError:
            ws.transport.abort()
        except asyncio.CancelledError:
            # cancelled by the shutdown: never leave the socket open behind (the hub would keep
            # the half-closed connection, and its satellite slot, until its pings time out)
            ws.transport.abort()
            raise
        except Exception:  # closing a broken connection: nothing left to do
            pass

    async def _connect(self) -> None:
        try:
            ws = await self._open_ws()
        except HubError as exc:
            self._inbox.put_nowait(("closed", (str(exc), 0)))
            return
        except Exception as exc:
            # whatever else a broken handshake raises must still end this attempt: a task that
            # dies silently would leave the machine CONNECTING forever
            log.warning("connecting to %s failed: %s: %s", self.url, type(exc).__name__, exc)
            self._inbox.put_nowait(("closed", (str(hub_error(self.url, exc)), 0)))
            return
        self._inbox.put_nowait(("opened", ws))
        reason, code, big = "", 0, 0
        try:
            async for text in ws:
                if len(text) >= BIG_FRAME:
                    # one at a time, in order: the next frame waits for this one
                    self._inbox.put_nowait(("frame", await self._in_thread(
                        self._decode_big, text)))
                else:
                    self._inbox.put_nowait(("frame", text))
        except ConnectionClosed as exc:
            reason, code = str(hub_error(self.url, exc)), hub_close_code(exc)
            big = self.max_message if closed_too_big(exc) else 0
        except asyncio.CancelledError:
            # stopped before the loop took this connection over (its "opened" still queued):
            # nobody else will close it, so do not leave the socket open behind
            ws.transport.abort()
            raise
        if ws in self._self_closed:
            # we closed it because of an error the machine already recorded (e.g. the hub
            # could not store the transactions): keep that error, not "connection closed"
            self._self_closed.discard(ws)
            reason = ""
        else:
            reason = reason or f"the connection to {self.url} closed"
        self._inbox.put_nowait(("closed", (reason, code, big)))

    def _decode_big(self, text: str | bytes) -> Incoming:
        return decode_incoming(text, self.max_message)

    async def _open_ws(self) -> ClientConnection:
        """A new connection to the hub; a refusal (401, 403) is kept in :attr:`refused`
        (``""`` once a connection opens)."""
        try:
            ws = await _open(self.url, self.token, self.open_timeout, self.max_message)
        except HubError as exc:
            self.refused_code = refusal(exc)
            self.refused = str(exc) if self.refused_code else ""
            raise
        self.refused, self.refused_code = "", 0
        ws.on_bytes = self._bytes_arriving
        return ws

    def _bytes_arriving(self) -> None:
        """Bytes came from the hub: tell the machine, at most once a second (its request
        timers then count silence, not the time a big reply takes on a slow link)."""
        now = self.clock()
        if now - self._rx_told >= min(1.0, self.machine.timeout / 4):
            self._rx_told = now
            self._inbox.put_nowait(("bytes", None))

    def _spawn(self, coro: Any) -> asyncio.Task[None]:
        task: asyncio.Task[None] = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def _shutdown(self) -> None:
        ws, self._ws = self._ws, None
        # the machine first, before anything that awaits: if this coroutine is cancelled
        # while closing a dead link, a machine left CONNECTING or LIVE would ignore the next
        # start() and never connect again
        if self.machine.phase not in (Phase.OFFLINE, Phase.STOPPED):
            self.machine.disconnected(self.clock(), "")
            self.machine.take()
        await self._finish_applies()
        for t in list(self._tasks):
            t.cancel()
        if ws is not None:
            await self._close(ws)
        for t in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t
        self._tasks.clear()
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)  # idle: the applies are finished

