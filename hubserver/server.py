"""The asyncio adapter: moves frames between ``websockets`` connections and the HubService.

Everything that decides lives in :mod:`hubserver.service`; this module (with
:mod:`hubserver.peer`, one connection's queue and writes, and :mod:`hubserver.pipeline`, the
writer thread's commits and reads) only

- accepts connections (auth in the HTTP handshake, origin allowlist, connection cap, TLS),
- hands each complete message to the service as soon as it is parsed (no read task per
  connection: :class:`~hubserver.connection.HubConnection` overrides websockets'
  ``process_event``), one request at a time per connection: while a connection's publish
  waits for its commit, its next messages wait in its inbox (replies keep request order;
  reading is paused when the inbox fills, as websockets' own receive queue does),
- writes each connection's outputs at once when nothing is queued, else from one sender task
  with a bounded queue (a client that does not read is closed with 1013 instead of growing
  memory),
- runs publishes on one dedicated writer thread with **group commit**: jobs that arrive while
  a commit runs are published together by the next ``publish_many`` call (one durable
  commit), and each is acknowledged only after that commit returned. The writer thread
  takes the next batch itself as soon as a commit returns and hands each commit's results
  to the loop in one callback (no task or future per publish): :mod:`hubserver.pipeline`.

Use it in-process (tests, the desktop demo)::

    async with Hub(ledger, port=0, auth=None) as hub:
        url = hub.url            # ws://127.0.0.1:PORT

No ledger read runs on the event loop. An ``evt.hist`` page (at most ``max_batch`` changes
and about ``max_message`` bytes: :mod:`hubserver.hist`) is read and encoded on the writer
thread where its reply is in the connection's send order, and the connection's next requests
wait until it is sent (session 15: the whole history was read on the loop). An ``evt.sub``
catch-up (its reply's batch included) and an ``evt.mon`` catch-up (notes of changes after
its ``rev``) are read batch by batch off the loop by the connection's sender, where they are
in its send order (see :meth:`HubService.backlog`): on the reader thread when the ledger
reads beside its commits (SQLite in WAL mode, PostgreSQL; since session 15), else on the
writer thread, between commits. So is an ``evt.sat`` reply older than the recently
fanned-out events (up to ``max_batch`` events: :mod:`hubserver.satreply`), and the
connection's next requests wait until it is sent. Writes, which wait for the disk, never run
on the loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import itertools
import logging
import ssl as _ssl
import threading
import time
from collections.abc import Callable, Sequence
from functools import partial
from http import HTTPStatus
from types import TracebackType
from typing import TYPE_CHECKING, Any

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response
from websockets.typing import Origin

from core.errors import ConfigError, OutpostError, StorageError
from core.ledger.protocols import Publisher
from core.redact import install as install_redaction
from core.revision import Rev, now_rev
from core.subs import Delivery
from hubserver import pipeline, satreply
from hubserver.auth import User, Users, hash_token, parse_bearer
from hubserver.connection import HubConnection, WriterThread
from hubserver.fanout import GAP_BYTES
from hubserver.headwatch import HeadWatch
from hubserver.health import DbHealth
from hubserver.hist import HistRead, hist_read
from hubserver.limits import (
    CLOSE_INTERNAL,
    CLOSE_POLICY,
    CLOSE_SHUTDOWN,
    CLOSE_TOO_SLOW,
    Limits,
    keepalive,
)
from hubserver.logrepeat import RepeatLimit
from hubserver.metrics import CONTENT_TYPE, MODES, NO_METRICS_TOKEN, Metrics, render
from hubserver.outputs import LastRead
from hubserver.peer import FLUSH, Peer
from hubserver.proxy import TrustedProxies
from hubserver.service import Backlog, Close, Flush, HubService, Out, PubJob, Send

if TYPE_CHECKING:
    from hubserver.cluster import ClusterListener

__all__ = ["LOOPBACK", "Hub", "is_loopback"]

log = logging.getLogger("outpost.hub")
_ws_log = logging.getLogger("outpost.hub.ws")
install_redaction(_ws_log)  # websockets logs the handshake's headers (the token) at DEBUG
# the loggers a hub's records come from (hubserver's modules log to these three)
_HUB_LOGS = ("outpost.hub", "outpost.hub.ws", "outpost.hub.cluster")


def _not_a_probe(record: logging.LogRecord) -> bool:
    """Drop websockets' INFO lines (``connection open``, ``connection closed``, ``HTTP response
    sent (401 Unauthorized)``, ``server listening``...) unless the hub logs at DEBUG: they name
    no peer, and the hub logs one line of its own per connection opened (naming the peer) and
    closed, and a refused handshake as a warning, repeat-limited (before session 11 one client
    with a wrong token wrote ~720 lines a second, two per attempt). ``GET /healthz`` is never
    logged (a load balancer asks every few seconds: nothing to act on)."""
    if record.levelno != logging.INFO:
        return True
    req = getattr(getattr(record, "websocket", None), "request", None)
    return getattr(req, "path", "") not in _PROBES and _ws_log.isEnabledFor(logging.DEBUG)


_PROBES = ("/healthz", "/metrics")  # asked every few seconds: never logged


_ws_log.addFilter(_not_a_probe)

LOOPBACK = ("127.0.0.1", "::1", "localhost")


def is_loopback(host: str) -> bool:
    """True when ``host`` only accepts connections from this machine."""
    return host in LOOPBACK or host.startswith("127.")


class Hub:
    """A running hub: a websockets server around a :class:`HubService`.

    Args:
        ledger: the hub's ledger (any Publisher).
        host, port: where to listen; port 0 picks a free port.
        users: the users file; ``None`` means no authentication, which is only allowed on
            a loopback host. Every connection is then ``anon_user`` with ``anon_role``.
        limits: the bounds to enforce.
        origins: allowed ``Origin`` headers (``None``: any). A request without ``Origin``
            (satellites and other non-browser clients; browsers always send one) is accepted
            either way; a refused origin is answered 403 and logged at WARNING.
        ssl: a server TLS context (the URL becomes ``wss://``).
        clock: revision clock (tests inject one).
        close_ledger: close the ledger on :meth:`stop`.
        users_check: seconds between checks of the users file: the connections of a user
            removed (or whose token was replaced, or role changed) since are closed with
            1008, so a revoked token stops working within this time, also on connections
            opened before (the token is checked at the handshake).
        repeat_window: a warning the hub logs again within this many seconds is counted,
            not logged (:class:`~hubserver.logrepeat.RepeatLimit` on the hub's own loggers,
            from :meth:`start` to :meth:`stop`, which logs the counts held): a full disk
            refused every publish with a line each. Every hub has it, embedded in a program
            too (before session 10 only ``outpost-hub serve``'s log handlers had it); 0: off.
        db_check: seconds between checks of the database's health (when the ledger has a
            ``health()`` method; 0: only commits tell), see :mod:`hubserver.health`.
        trusted_proxies: the reverse proxies (``--trusted-proxy``) whose ``X-Forwarded-For``
            names the client in the log (:mod:`hubserver.proxy`); none by default: the
            header is ignored, since any client can send it.
        metrics: who may ``GET /metrics`` (:mod:`hubserver.metrics`): ``"off"``, ``"open"``
            (no token) or ``"token"`` (``metrics_token`` only: no user's token opens it);
            ``None``: ``"token"`` with a ``metrics_token``, else ``"open"`` with ``--auth
            none`` (the hub is on loopback), else ``"off"``.
        metrics_token: the scrape token (``--metrics-token-file``'s), ``None``: none.
    """

    def __init__(self, ledger: Publisher, *, host: str = "127.0.0.1", port: int = 0,
                 users: Users | None = None, anon_user: str = "anonymous",
                 anon_role: str = "writer", limits: Limits | None = None,
                 origins: Sequence[str] | None = None, ssl: _ssl.SSLContext | None = None,
                 clock: Callable[[], Rev] = now_rev, close_ledger: bool = False,
                 users_check: float = 2.0, repeat_window: float = 10.0,
                 db_check: float = 5.0, trusted_proxies: TrustedProxies | None = None,
                 metrics: str | None = None, metrics_token: str | None = None):
        if users is None and not is_loopback(host):
            raise ConfigError(f"--auth none on host {host!r}: without tokens the hub may only "
                              "listen on loopback (127.0.0.1); add users with "
                              "`outpost-hub user add NAME` instead")
        if metrics is None:
            metrics = "token" if metrics_token else "open" if users is None else "off"
        if metrics not in MODES:
            raise ConfigError(f"--metrics {metrics!r}: expected one of {', '.join(MODES)}")
        if metrics == "token" and not metrics_token:
            raise ConfigError(NO_METRICS_TOKEN)
        self.metrics_access = metrics
        self._metrics_digest = hash_token(metrics_token) if metrics_token else ""
        self.metrics = Metrics()
        """The counters of ``GET /metrics`` (:mod:`hubserver.metrics`)."""
        self.ledger = ledger
        self.host = host
        self.port = port
        self.users = users
        self.anon = User(anon_user, anon_role)
        self.limits = limits or Limits()
        self.origins = list(origins) if origins else None
        self.ssl = ssl
        self.proxies = trusted_proxies or TrustedProxies()
        self.service = HubService(ledger, clock, self.limits)
        self.db = DbHealth()
        """The database's health (evt.stat's ``db``, ``GET /healthz``): hubserver.health."""
        self.service.db = self.db
        self.service.last_off_loop = True  # evt.sat's ledger read of last: _send_last
        self.db_check = db_check
        self.heads = HeadWatch()
        """The ledger's head against this hub (behind it, clock behind it): fed by the
        database check, :mod:`hubserver.headwatch`."""
        self.cluster: ClusterListener | None = None
        """The LISTEN connection of a hub of a cluster (``outpost-hub serve`` on PostgreSQL
        sets it): its state is in ``/healthz``'s text and ``/metrics``, and the database
        check wakes a hub of a cluster that is behind the ledger."""
        self._db_watch: asyncio.Task[None] | None = None
        self._check_lock = threading.Lock()
        """Held by a database check's thread while it runs (:meth:`_check_db`); :meth:`stop`
        takes it before the ledger may be closed."""
        self.close_ledger = close_ledger
        self.users_check = users_check
        self._digests: dict[int, str] = {}
        """The SHA-256 of each connection's token (token auth)."""
        self._watch: asyncio.Task[None] | None = None
        self._server: Server | None = None
        self._peers: dict[int, Peer] = {}
        self._per_user: dict[str, int] = {}  # open connections by user name
        self._ids = itertools.count(1)
        self._jobs: list[tuple[PubJob, Peer]] = []
        self._lock = threading.Lock()
        """Guards ``_jobs`` and ``_chain``, shared with the writer thread."""
        self._chain = False
        """The writer thread runs a commit chain: it takes the waiting jobs itself."""
        self._writer: WriterThread | None = None
        self._reader: WriterThread | None = None
        """The thread of catch-up reads (:func:`pipeline.off_loop`) on a ledger that reads
        beside its commits (``concurrent_reads``: an SQL ledger on a file or PostgreSQL),
        so publishes do not wait behind them; ``None``: they run on the writer thread."""
        self._repeats = RepeatLimit(repeat_window) if repeat_window > 0 else None
        self._kick_soon = False
        self._to_push: list[Peer] = []
        self.loop: asyncio.AbstractEventLoop | None = None
        """The event loop the hub runs on (set by :meth:`start`)."""
        self._stopping = False
        self._closing: set[asyncio.Task[None]] = set()
        self.url = ""
        self.commits = 0
        """Number of durable commits made (group commit: ≤ the number of publishes)."""

    # -- lifecycle -----------------------------------------------------------------------------

    async def start(self) -> str:
        """Start listening; returns the ``ws://`` or ``wss://`` URL."""
        self.loop = asyncio.get_running_loop()
        self._writer = WriterThread(self.loop)
        if getattr(self.ledger, "concurrent_reads", False):
            self._reader = WriterThread(self.loop, "outpost-hub-reader")
        self._limit_repeats(True)
        try:
            # the Origin allowlist is checked in _process_request: a request without Origin
            # (an Outpost satellite, any non-browser client) is accepted, a refusal is logged
            self._server = await self._listen(None)
        except BaseException:
            # e.g. the port is taken: the writer thread would keep the process alive
            writer, self._writer = self._writer, None
            await writer.stop()
            if self._reader is not None:
                reader, self._reader = self._reader, None
                await reader.stop()
            self._limit_repeats(False)
            raise
        if self.db_check > 0 and callable(getattr(self.ledger, "health", None)):
            self._db_watch = asyncio.create_task(self._watch_db(), name="outpost-hub-db")
        if self.users is not None and self.users_check > 0:
            self.users.changed()  # what the handshakes are checked against from now on
            self._watch = asyncio.create_task(self._watch_users(), name="outpost-hub-users")
        sock = next(iter(self._server.sockets))
        self.port = sock.getsockname()[1]
        host = self.host if ":" not in self.host else f"[{self.host}]"
        self.url = f"{'wss' if self.ssl else 'ws'}://{host}:{self.port}"
        log.info("listening on %s", self.url)
        return self.url

    async def _listen(self, origins: list[Origin | None] | None) -> Server:
        lim = self.limits
        return await serve(
            self._handler, self.host, self.port,
            origins=origins,
            compression="deflate" if lim.compression else None,
            process_request=self._process_request,
            open_timeout=lim.handshake_timeout,
            ping_interval=keepalive(lim) or None,
            ping_timeout=lim.ping_timeout or None,
            max_size=lim.max_message,
            max_queue=16,
            create_connection=HubConnection,
            ssl=self.ssl,
            logger=_ws_log,
        )

    async def stop(self) -> None:
        """Stop accepting, finish in-flight publishes, close connections and the writer."""
        if self._server is None or self._stopping:
            return
        self._stopping = True
        if self._watch is not None:
            self._watch.cancel()
        checks_done = None
        if self._db_watch is not None:
            self._db_watch.cancel()
            # cancelling the watch does not stop a check already running on its thread:
            # the ledger is closed only once it is done (beside the drain, bounded)
            checks_done = asyncio.ensure_future(self._checks_done())
        self._server.close(close_connections=False)
        # in-flight publishes are acknowledged before the connections go
        for _ in range(1000):
            if not self._jobs and not self._busy:
                break
            await asyncio.sleep(0.01)
        # ... and their replies written (bounded: a client that does not read is not waited for)
        for _ in range(100):
            if all(p.gone or (p.idle and p.queue.empty()) for p in self._peers.values()):
                break
            await asyncio.sleep(0.01)
        # websockets' Server.close() acts only once (close_connections=False above), so the
        # connections are closed here: 1001, each waited for at most 1 s (_close_peer)
        for peer in list(self._peers.values()):
            self._close_now(peer, CLOSE_SHUTDOWN, "the hub is shutting down: reconnect later")
        if self._closing:
            await asyncio.gather(*list(self._closing), return_exceptions=True)
        await self._server.wait_closed()
        if self._writer is not None:
            await self._writer.stop()
        if self._reader is not None:  # a read of a connection closed meanwhile ends
            await self._reader.stop()
        if checks_done is not None:
            await checks_done
        if self.close_ledger:
            self.ledger.close()
        log.info("stopped")
        self._limit_repeats(False)

    def _limit_repeats(self, on: bool) -> None:
        """Add (``on``) or remove the repeat filter on the hub's loggers; removing logs the
        counts it still holds. On the loggers, not on handlers: a record is filtered once
        whatever handlers show it, and a program embedding the hub keeps its handlers."""
        f = self._repeats
        if f is None:
            return
        for name in _HUB_LOGS:
            lg = logging.getLogger(name)
            if on:
                lg.addFilter(f)
            else:
                lg.removeFilter(f)
        if not on:
            f.flush()

    async def __aenter__(self) -> Hub:
        await self.start()
        return self

    async def __aexit__(self, et: type[BaseException] | None, e: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.stop()

    @property
    def connections(self) -> int:
        return len(self._peers)

    @property
    def stopping(self) -> bool:
        """True once :meth:`stop` began: new connections and publishes are refused."""
        return self._stopping

    def peers(self) -> list[Peer]:
        """The open connections, a snapshot (for ``/metrics``)."""
        return list(self._peers.values())

    def waiting(self) -> tuple[int, int]:
        """Transactions waiting for the writer thread, and catch-up reads submitted to it and
        not started yet (one consistent reading, for ``/metrics``)."""
        with self._lock:
            return sum(len(job.items) for job, _ in self._jobs), self._reads_waiting

    # -- handshake -----------------------------------------------------------------------------

    def _process_request(self, ws: ServerConnection, request: Request) -> Response | None:
        path = request.path.split("?", 1)[0]
        if path == "/healthz":
            return self._healthz(ws)
        if path == "/metrics":
            return self._metrics(ws, request)
        # who the client is, for every line logged of this connection (_addr): behind a
        # trusted reverse proxy the address it forwards, else the TCP peer's
        ws.outpost_client = self._client(ws, request)  # type: ignore[attr-defined]
        if self._stopping:
            return ws.respond(HTTPStatus.SERVICE_UNAVAILABLE, "hub is shutting down\n")
        if len(self._peers) >= self.limits.max_connections:
            self._refused("connections")
            log.warning("connection refused from %s: %d connections is the limit "
                        "(--max-connections)", _addr(ws), self.limits.max_connections)
            return ws.respond(HTTPStatus.SERVICE_UNAVAILABLE,
                              f"too many connections (limit {self.limits.max_connections}); "
                              "retry later\n")
        origin = request.headers.get("Origin")
        if self.origins and origin is not None and origin not in self.origins:
            # browsers always send Origin; satellites and other non-browser clients send none
            # (a token still authenticates them)
            self._refused("origin")
            log.warning("connection refused from %s: Origin %r is not in --allow-origin",
                        _addr(ws), origin[:200])
            return ws.respond(HTTPStatus.FORBIDDEN,
                              f"origin {origin[:200]!r} is not allowed by the hub "
                              "(--allow-origin)\n")
        if len(request.headers.get_all("Authorization")) > 1:
            self._refused("auth")
            log.warning("connection refused from %s: %d Authorization headers",
                        _addr(ws), len(request.headers.get_all("Authorization")))
            return ws.respond(HTTPStatus.BAD_REQUEST,
                              "more than one Authorization header: send exactly one "
                              "'Authorization: Bearer <token>'\n")
        user = self._authenticate(request.headers)
        if user is None:
            self._refused("auth")
            log.warning("connection refused from %s: missing or unknown token (users file "
                        "%s)", _addr(ws), self.users.path if self.users else "-")
            resp = ws.respond(HTTPStatus.UNAUTHORIZED,
                              "missing or unknown token: send 'Authorization: Bearer <token>' "
                              "(made by `outpost-hub user add NAME`)\n")
            resp.headers["WWW-Authenticate"] = 'Bearer realm="outpost-hub"'
            return resp
        cap = self.limits.max_connections_per_user
        if self.users is not None and cap > 0 and self._per_user.get(user.name, 0) >= cap:
            # one token (a reader's too) could take every slot with idle connections
            self._refused("connections")
            log.warning("connection refused from %s: user %r has %d connections, the limit "
                        "per user (--max-connections-per-user)", _addr(ws), user.name, cap)
            return ws.respond(HTTPStatus.SERVICE_UNAVAILABLE,
                              f"too many connections for user {user.name!r} (limit {cap} per "
                              "user): close some of this user's connections, or ask the hub "
                              "operator to raise --max-connections-per-user; retry later\n")
        ws.outpost_user = user  # type: ignore[attr-defined]
        token = parse_bearer(request.headers.get("Authorization"))
        ws.outpost_digest = hash_token(token) if token else ""  # type: ignore[attr-defined]
        return None

    def _refused(self, reason: str) -> None:
        """Count a connection refused at its handshake (``outpost_hub_refused_total``)."""
        self.metrics.refused[reason] = self.metrics.refused.get(reason, 0) + 1

    def _client(self, ws: ServerConnection, request: Request) -> str:
        try:
            a: Any = ws.remote_address
            host, port = str(a[0]), int(a[1])
        except Exception:
            return "?"
        if not self.proxies:
            return f"{host}:{port}"
        return self.proxies.client(host, port, request.headers.get_all("X-Forwarded-For"))

    def _healthz(self, ws: ServerConnection) -> Response:
        """``GET /healthz`` (no token, for load balancers): 200 ``ok`` while the hub serves
        and its database works, else 503 naming why (never the database's URL): the database
        failing, or a hub of a cluster behind the ledger (:mod:`hubserver.headwatch`). A hub
        of a cluster whose LISTEN connection is down says so after its 200 ``ok``."""
        if self._stopping:
            return ws.respond(HTTPStatus.SERVICE_UNAVAILABLE, "hub is shutting down\n")
        problem = self.db.problem
        if problem:
            why = "" if problem == "unavailable" else f" ({problem})"
            return ws.respond(HTTPStatus.SERVICE_UNAVAILABLE, f"database unavailable{why}\n")
        now = time.monotonic()
        behind = self.heads.behind_for(now)
        if behind:
            # its satellites would be told "hub behind": a balancer sends them elsewhere
            return ws.respond(HTTPStatus.SERVICE_UNAVAILABLE,
                              f"behind the ledger for {behind:.0f} s (catching up)\n")
        lis = self.cluster
        if lis is not None and lis.down_since is not None:
            # the hub still learns of other hubs' revisions (the database check, every
            # db_check s): serving, with pushes from other hubs a few seconds late
            return ws.respond(HTTPStatus.OK, "ok (cluster LISTEN connection lost "
                              f"{now - lis.down_since:.0f} s ago, reconnecting: revisions of "
                              "other hubs arrive late)\n")
        return ws.respond(HTTPStatus.OK, "ok\n")

    def _metrics(self, ws: ServerConnection, request: Request) -> Response:
        """``GET /metrics``: the Prometheus exposition (:mod:`hubserver.metrics`), with a
        token of the users file unless ``--metrics open``."""
        if self.metrics_access == "off":
            return ws.respond(HTTPStatus.NOT_FOUND, "GET /metrics is off on this hub: start "
                              "it with --metrics-token-file FILE (a scrape token of its "
                              "own) or --metrics open (docs/operations.md, Monitoring)\n")
        if self.metrics_access == "token":
            auth = request.headers.get_all("Authorization")
            token = parse_bearer(auth[0]) if len(auth) == 1 else None
            # the scrape token only: a user's token reads the records, and any user (a
            # reader in the field) could read the hub's traffic with it (review 14)
            if not token or not hmac.compare_digest(hash_token(token), self._metrics_digest):
                self.metrics.refused["metrics_token"] = \
                    self.metrics.refused.get("metrics_token", 0) + 1
                log.warning("GET /metrics refused from %s: missing or wrong scrape token",
                            self._client(ws, request))
                resp = ws.respond(HTTPStatus.UNAUTHORIZED,
                                  "missing or wrong token: send 'Authorization: Bearer "
                                  "<token>' with the token of the hub's --metrics-token-file "
                                  "(users' tokens do not open /metrics; see "
                                  "docs/operations.md, Monitoring)\n")
                resp.headers["WWW-Authenticate"] = 'Bearer realm="outpost-hub"'
                return resp
        resp = ws.respond(HTTPStatus.OK, render(self))
        del resp.headers["Content-Type"]  # Headers is a multidict: setting adds
        resp.headers["Content-Type"] = CONTENT_TYPE
        return resp

    async def _watch_db(self) -> None:
        """Check the database every ``db_check`` s (:mod:`hubserver.health`)."""
        while True:
            await asyncio.sleep(self.db_check)
            # while commits fail, the check writes too (rolled back): a database that reads
            # but refuses writes is not "ok"
            write = self.db.writes_failing
            try:
                head = await asyncio.wait_for(asyncio.to_thread(self._check_db, write),
                                              max(self.db_check, 10.0))
            except TimeoutError as exc:
                self.db.failed(StorageError(f"the health check did not answer within "
                                            f"{max(self.db_check, 10.0):g} s: {exc}"))
            except OutpostError as exc:
                self.db.failed(exc)
            except Exception as exc:
                self.db.failed(exc)
            else:
                self.db.ok(write=write)
                if type(head) is int and not self._stopping:
                    self._note_head(head)

    def _note_head(self, head: Rev) -> None:
        """The check read the ledger's revision ``head`` (:mod:`hubserver.headwatch`): a hub
        of a cluster behind it catches up, whatever its LISTEN connection does."""
        if self.heads.note(head, self.service.rev, self.service.clock(), time.monotonic(),
                           cluster=self.cluster is not None):
            self.request_catch_up()

    def _check_db(self, write: bool) -> Rev | None:
        """One database check, on a thread of its own. A check still running when the hub
        stops (its task cancelled, its thread not) holds ``_check_lock``, so :meth:`stop`
        closes the ledger after it; one that starts after the stop began does nothing.
        Before session 14 the ledger's pool was disposed under a running check, which then
        handed its connection back to the disposed pool: an open PostgreSQL connection
        nobody closed (a ResourceWarning when the garbage collector found it)."""
        check = getattr(self.ledger, "health")  # noqa: B009 - checked callable in start()
        with self._check_lock:
            if self._stopping:
                return None
            got = check(write) if write else check()
            return got if type(got) is int else None

    async def _checks_done(self) -> None:
        """Wait until no database check runs (at most the check's own bound, 10 s: a check
        that hangs longer is left, and said)."""
        bound = max(self.db_check, 10.0)
        got = await asyncio.to_thread(self._check_lock.acquire, True, bound)
        if got:
            self._check_lock.release()  # _stopping is set: no check runs after this
        else:
            log.warning("stopping: a database check still runs after %g s; closing the "
                        "ledger anyway", bound)

    async def _watch_users(self) -> None:
        """Close the connections whose token was revoked (checked every ``users_check`` s)."""
        assert self.users is not None
        while True:
            await asyncio.sleep(self.users_check)
            try:
                if not self.users.changed():
                    continue
                for peer in list(self._peers.values()):
                    digest = self._digests.get(peer.conn)
                    if digest is None or self.users.holds(peer.user, digest):
                        continue
                    log.warning("conn %d: %s%s: token revoked (user removed, its token replaced "
                                "or its role changed): closing", peer.conn, peer.user.name,
                                f" (token {peer.user.token})" if peer.user.token else "")
                    self._close_now(peer, CLOSE_POLICY, "your token was revoked: ask the hub "
                                    "operator for a new one")
            except Exception:
                log.exception("checking the users file failed; checking again later")

    def _authenticate(self, headers: Headers) -> User | None:
        if self.users is None:
            return self.anon
        return self.users.authenticate(parse_bearer(headers.get("Authorization")))

    # -- connections ---------------------------------------------------------------------------

    async def _handler(self, ws: ServerConnection) -> None:
        assert isinstance(ws, HubConnection)
        user: User = getattr(ws, "outpost_user", self.anon)
        conn = next(self._ids)
        peer = Peer(conn, ws, user, self.limits.send_queue)
        self._peers[conn] = peer
        self._per_user[user.name] = self._per_user.get(user.name, 0) + 1
        if self.users is not None:
            self._digests[conn] = getattr(ws, "outpost_digest", "")
        self.service.connect(conn, user.name, user.role)
        peer.sender = asyncio.create_task(self._send_loop(peer), name=f"outpost-send-{conn}")
        # the token's name (`user token list`), never the token: which device of the user
        log.info("conn %d: %s (%s%s) connected from %s", conn, user.name, user.role,
                 f", token {user.token}" if user.token else "", _addr(ws))
        idle = self.limits.idle_timeout
        if idle > 0:
            assert self.loop is not None
            peer.last = self.loop.time()
            peer.timer = self.loop.call_later(idle, self._idle_check, peer)
        try:
            ws.sink = partial(self._pump, peer)
            self._pump(peer)  # what arrived with the handshake
            await ws.wait_closed()
        finally:
            peer.gone = True
            ws.sink = None
            if peer.timer is not None:
                peer.timer.cancel()
            self.service.disconnect(conn)
            self._peers.pop(conn, None)
            left = self._per_user.get(user.name, 0) - 1
            if left > 0:
                self._per_user[user.name] = left
            else:
                self._per_user.pop(user.name, None)
            self._digests.pop(conn, None)
            peer.sender.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await peer.sender
            sent = ws.protocol.close_sent
            if sent is not None and ws.protocol.close_rcvd_then_sent is not True and sent.code \
                    in (1002, 1007, 1009):
                # websockets closed it (a frame over --max-message: 1009, a bad frame: 1002 /
                # 1007; the hub's own closes, 1008, are logged where they are made): name the
                # code and reason sent, not the 1006 of a peer that did not answer. The
                # warning is repeat-limited (one client sending big frames again and again):
                # each connection's close still has its line (ops review 12: 19 of 20
                # closes showed only at shutdown)
                log.info("conn %d: %s disconnected (code %d sent by the hub)", conn,
                         user.name, sent.code)
                log.warning("conn %d: %s closed by the hub: code %d (%s)", conn, user.name,
                            sent.code, sent.reason[:200])
            else:
                log.info("conn %d: %s disconnected (code %s)", conn, user.name, ws.close_code)

    def _pump(self, peer: Peer) -> None:
        """Handle the connection's waiting messages in order, until one is a publish.

        Called when a message arrived and when the connection's publish was answered. A
        publish makes the connection busy until its commit's reply is out, so replies keep
        request order (as daql's one reader per connection).
        """
        ws = peer.ws
        inbox = ws.inbox
        if not inbox:
            return
        handled = False
        handle = self.service.handle
        while inbox and not peer.busy and not peer.held and not peer.gone:
            msg = inbox.popleft()
            handled = True
            try:
                outs, job = handle(peer.conn, msg)
                if outs:  # a publish has none until its commit
                    self._deliver(outs)
                if job is not None:
                    pipeline.submit(self, peer, job)
            except Exception:
                log.exception("conn %d: bug while serving; closing with 1011", peer.conn)
                self._close_now(peer, CLOSE_INTERNAL, "internal error")
        if handled:
            if ws.reading_paused:
                ws.taken()
            if peer.timer is not None:
                assert self.loop is not None
                peer.last = self.loop.time()

    def _idle_check(self, peer: Peer) -> None:
        if peer.gone:
            return
        assert self.loop is not None
        idle = self.limits.idle_timeout
        now = self.loop.time()
        if peer.busy or peer.held or peer.ws.inbox:
            peer.last = now  # a request is being served: not idle
        # a pong to the hub's ping (sent at least twice per idle timeout, see _listen) is a
        # sign of life: a healthy satellite with nothing to say is not idle
        peer.last = max(peer.last, getattr(peer.ws, "heard", 0.0))
        if now - peer.last >= idle:
            log.info("conn %d: closing: idle for %g s", peer.conn, idle)
            self._close_now(peer, CLOSE_POLICY, f"idle for {idle:g} s")
            return
        peer.timer = self.loop.call_later(peer.last + idle - now, self._idle_check, peer)

    async def _send_loop(self, peer: Peer) -> None:
        try:
            while True:
                peer.idle = True
                try:
                    item = await peer.queue.get()
                finally:
                    peer.idle = False
                if item is FLUSH:
                    peer.flushes -= 1
                    if peer.void:
                        peer.void -= 1
                        continue
                    # sealed, not taken as pending: cut under max_message, its rest goes
                    # before anything queued after it (a reply), and events fanned out while
                    # its parts are written go after it, in a push of their own
                    item = self.service.seal(peer.conn)
                    if item is None:
                        continue
                if isinstance(item, Delivery):
                    text = self._take_push(peer, item)
                    for _ in range(1 << 20):  # bounded: each frame takes events out
                        if text is None:
                            break
                        await peer.ws.send(text)
                        # the rest of a push over max_message, before what was queued after
                        text = self._take_push(peer, item) \
                            if self.service.sealed_left(peer.conn, item) else None
                elif isinstance(item, Backlog):
                    await self._send_catch_up(peer, item)
                elif isinstance(item, satreply.SatRead):
                    await self._send_sat(peer, item)
                elif isinstance(item, HistRead):
                    await self._send_hist(peer, item)
                elif isinstance(item, LastRead):
                    await self._send_last(peer, item)
                elif isinstance(item, bytes):  # a reply's UTF-8 text (Send.data)
                    peer.qbytes -= len(item)
                    await peer.ws.send(item, text=True)
                else:
                    assert isinstance(item, str)
                    peer.qbytes -= len(item)
                    await peer.ws.send(item)
        except ConnectionClosed:
            return
        except Exception:
            # a bug, or a catch-up read failing other than with an OutpostError (a corrupt
            # row): the sender would be gone with the connection left open and silent
            log.exception("conn %d: bug while sending; closing with 1011", peer.conn)
            self._close_now(peer, CLOSE_INTERNAL, "internal error")

    async def _send_catch_up(self, peer: Peer, first: Backlog) -> None:
        """Send an ``evt.sub`` or ``evt.mon`` catch-up (queued where its reply goes), batch by
        batch: every batch, the reply's included, is read on the writer thread, one batch in
        memory, each sent before the next is read. What was queued after it (later replies,
        live pushes) waits: they hold later revisions. An ``evt.unsub``/``evt.unmon`` may
        narrow it meanwhile (same ``seq``), or drop it."""
        svc = self.service
        while (bl := svc.backlog(peer.conn)) is not None and bl[0].seq == first.seq:
            b, limit = bl
            try:
                evs, more = await pipeline.off_loop(self, svc.backlog_read, b, limit)
            except OutpostError as exc:
                err = svc.backlog_failed(peer.conn, b, exc)
                if err is None:
                    self._close_now(peer, CLOSE_TOO_SLOW, "could not read your catch-up: "
                                    "reconnect and resync from your rev")
                    return
                await peer.ws.send(err)  # the request's error reply: nothing of it is kept
                continue
            for text in svc.backlog_push(peer.conn, b, evs, more):
                await peer.ws.send(text)

    async def _send_sat(self, peer: Peer, r: satreply.SatRead) -> None:
        """Send an ``evt.sat`` reply read from the ledger on the writer thread (queued where
        the reply goes); then handle the connection's next requests, which waited."""
        svc = self.service
        try:
            while True:
                upto = svc.rev
                try:
                    got = await pipeline.off_loop(self, satreply.sat_read, svc.ledger, r, upto)
                    text = satreply.sat_read_done(svc, r, got, upto)
                except OutpostError as exc:
                    text = satreply.sat_read_failed(svc, r, exc)
                if text is not None:
                    break
            if text and not peer.gone:
                await peer.ws.send(text)
                if r.follow is not None:
                    # a daql client's rest of the catch-up, right after the reply: before
                    # the live pushes queued meanwhile (they hold later revisions)
                    await self._send_catch_up(peer, r.follow)
                if svc.has_push(peer.conn):  # a failed read's pending pushes, after its reply
                    self._push(peer)
        finally:
            self._release(peer)

    def _release(self, peer: Peer) -> None:
        """A reply read off the loop was sent (or failed): the connection's next requests,
        which waited for it, are handled now."""
        peer.held = False
        if not peer.gone:
            if peer.timer is not None:
                assert self.loop is not None
                peer.last = self.loop.time()
            self._pump(peer)

    async def _send_hist(self, peer: Peer, r: HistRead) -> None:
        """Send an ``evt.hist`` page read and encoded on the writer thread; then handle the
        connection's next requests, which waited (a client that asks again and again without
        reading holds one page at a time)."""
        try:
            text = await pipeline.off_loop(self, hist_read, self.service.ledger, r)
            if not peer.gone:
                await peer.ws.send(text)
        finally:
            self._release(peer)

    async def _send_last(self, peer: Peer, r: LastRead) -> None:
        """Check an ``evt.sat``'s ``last`` against the ledger read on the reader (or writer)
        thread, then handle the request (publish or refuse it) and the connection's next
        requests, which waited. The loop serves everyone else meanwhile, however long the
        database takes to answer."""
        svc = self.service
        try:
            mine: tuple[int, Rev] | Exception
            try:
                mine = await pipeline.off_loop(self, svc.ledger.last_event_at, r.rev)
            except OutpostError as exc:
                mine = exc
            if peer.gone:
                return
            outs, job = svc.resume_sat(peer.conn, r, mine)
            if outs:
                self._deliver(outs)
            if job is not None:
                pipeline.submit(self, peer, job)
        finally:
            self._release(peer)

    def _deliver(self, outs: list[Out]) -> None:
        for o in outs:
            peer = self._peers.get(o.conn)  # type: ignore[call-overload]
            if peer is None:
                continue
            item: object
            if isinstance(o, Send):
                if peer.push_due or self.service.has_push(o.conn):
                    # events fanned out before this reply go first, and only those: a push
                    # taken later would also carry revisions after the reply's
                    self._push(peer, seal=True)
                if peer.send_now(o.data):
                    continue
                item = o.data
            elif isinstance(o, Flush):
                if o.catch_up is not None:
                    # in the send order right after its evt.sub reply: later replies and
                    # pushes wait for it
                    if peer.push_due or self.service.has_push(o.conn):
                        self._push(peer, seal=True)
                    item = o.catch_up
                    if isinstance(item, (satreply.SatRead, HistRead, LastRead)):
                        peer.held = True  # its next requests wait for this reply
                elif peer.idle and not peer.queue.qsize():
                    # written by _push_now at the end of this loop iteration (pushes of
                    # several commits coalesce), without waking the sender task
                    peer.push_due = True
                    self._to_push.append(peer)
                    if len(self._to_push) == 1:
                        assert self.loop is not None
                        self.loop.call_soon(self._push_now)
                    continue
                else:
                    item = FLUSH
            else:
                assert isinstance(o, Close)
                log.info("conn %d: closing: %d %s", peer.conn, o.code, o.reason)
                self._close_now(peer, o.code, o.reason)
                continue
            self._enqueue(peer, item)

    def _enqueue(self, peer: Peer, item: object) -> None:
        n = len(item) if isinstance(item, (str, bytes)) else 0
        try:
            if peer.qbytes + n > self.limits.send_queue_bytes:
                raise asyncio.QueueFull  # bounded in bytes too (session 15: frames only)
            peer.queue.put_nowait(item)
        except asyncio.QueueFull:
            log.warning("conn %d: send queue full; closing", peer.conn)
            self._close_now(peer, CLOSE_TOO_SLOW, "too slow: send queue full; "
                            "reconnect and resync from your rev")
            return
        peer.qbytes += n
        if item is FLUSH:
            peer.flushes += 1

    def _push_now(self) -> None:
        """Write the pending pushes of idle connections (else their sender task does)."""
        peers, self._to_push = self._to_push, []
        for peer in peers:
            if peer.push_due:
                self._push(peer)

    def _push(self, peer: Peer, seal: bool = False) -> None:
        """Write the connection's pending push now if it is idle, else queue it: as what is
        pending now when ``seal`` (a reply follows; :meth:`HubService.seal`, encoded when the
        sender gets there), else as a flush that the sender takes when it gets there (pushes
        keep coalescing behind a slow reader)."""
        peer.push_due = False
        if peer.gone:
            return
        item: object
        if seal or (peer.idle and not peer.queue.qsize()):
            # the flushes queued so far would now find later events: this frame is theirs
            peer.void = peer.flushes
            # sealed: a push cut under max_message keeps its rest ahead of what is queued
            # after it (a reply, a catch-up), and events fanned out later go after it.
            # Queued as what it holds, not as a frame: a catch-up queued before it whose
            # reply becomes an error takes that request's events out (backlog_failed)
            sealed = self.service.seal(peer.conn)
            if sealed is None:
                return
            if peer.ready():
                for _ in range(1 << 20):  # bounded: each frame takes events out
                    text = self._take_push(peer, sealed)
                    if text is None or peer.gone:
                        return
                    peer.write(text)
                    if not self.service.sealed_left(peer.conn, sealed):
                        return
                    if not peer.ready():
                        break  # the transport is full: the sender writes the rest
            item = sealed
        else:
            item = FLUSH
        self._enqueue(peer, item)

    def _take_push(self, peer: Peer, sealed: Delivery) -> str | None:
        """The next frame of the connection's ``sealed`` push (:meth:`HubService.seal`; cut
        under ``max_message``: :meth:`HubService.sealed_left` tells whether a rest is left);
        a failure to build it closes the connection (its client resyncs from its rev)
        instead of losing the push silently. Catch-ups: :meth:`_send_catch_up`."""
        try:
            return self.service.take_sealed(peer.conn, sealed)
        except OutpostError as exc:  # reading audits of old revisions failed
            log.warning("conn %d: building a push failed: %s", peer.conn, exc)
            self._close_now(peer, CLOSE_TOO_SLOW, "could not build your push: reconnect "
                            "and resync from your rev")
        except Exception:
            log.exception("conn %d: bug while building a push; closing with 1011", peer.conn)
            self._close_now(peer, CLOSE_INTERNAL, "internal error")
        return None

    def _close_now(self, peer: Peer, code: int, reason: str) -> None:
        if peer.gone:
            return  # closed or closing already
        peer.gone = True
        peer.ws.drop_inbox()  # and read on: the client's close reply is read
        self.service.disconnect(peer.conn)
        if peer.sender is not None:
            peer.sender.cancel()
        reason = reason.encode()[:120].decode(errors="ignore")
        task = asyncio.get_running_loop().create_task(self._close_peer(peer, code, reason))
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    @staticmethod
    async def _close_peer(peer: Peer, code: int, reason: str) -> None:
        # a peer that does not read never answers the close frame: do not wait 10 s for it
        try:
            async with asyncio.timeout(1.0):
                await peer.ws.close(code, reason)
        except TimeoutError:
            peer.ws.transport.abort()

    # -- group commit and scale-out (hubserver/pipeline.py) -------------------------------------

    _busy = False
    """The writer thread runs a commit or a catch-up read."""
    _catch_up = False
    _reads_waiting = 0  # off_loop reads submitted to the writer thread, not started yet
    CATCH_UP_BATCH = 5000
    """Most events one catch-up read fans out (a long outage is caught up in several)."""
    CATCH_UP_BYTES = GAP_BYTES
    """About the most bytes of values one catch-up read holds (at least one revision)."""

    def request_catch_up(self) -> None:
        """Fan out revisions other hubs published on the shared ledger (thread: event loop).

        :mod:`hubserver.cluster` calls this on every PostgreSQL NOTIFY, after a reconnect and
        on a timer. The read runs on the writer thread between commits, so it never sees a
        commit of this hub whose reply is not out yet (its events would be pushed to the
        publisher too); the service drops what it has already fanned out.
        """
        self._catch_up = True
        pipeline.kick_later(self)


def _addr(ws: ServerConnection) -> str:
    """The client of ``ws`` for the log: as :meth:`Hub._client` found it at the handshake."""
    client = getattr(ws, "outpost_client", None)
    if client is not None:
        return str(client)
    try:
        a: Any = ws.remote_address
        return f"{a[0]}:{a[1]}"
    except Exception:
        return "?"
