"""The asyncio adapter: moves frames between ``websockets`` connections and the HubService.

Everything that decides lives in :mod:`hubserver.service`; this module only

- accepts connections (auth in the HTTP handshake, origin allowlist, connection cap, TLS),
- reads frames and feeds them to the service, one at a time per connection (replies keep
  request order),
- writes each connection's outputs from one sender task with a bounded queue (a client that
  does not read is closed with 1013 instead of growing memory),
- runs publishes on one dedicated writer thread with **group commit**: jobs that arrive while
  a commit runs are published together by the next ``publish_many`` call (one durable
  commit), and each is acknowledged only after that commit returned.

Use it in-process (tests, the desktop demo)::

    async with Hub(ledger, port=0, auth=None) as hub:
        url = hub.url            # ws://127.0.0.1:PORT

Ledger reads (``evt.sub`` catch-up, ``evt.hist``) run on the event loop: they are short
indexed reads; writes, which wait for the disk, never do.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import ssl as _ssl
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from http import HTTPStatus
from types import TracebackType
from typing import Any

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response
from websockets.protocol import State
from websockets.typing import Origin

from core.crashpoints import crash_point
from core.errors import ConfigError, OutpostError, StorageError
from core.ledger.protocols import Publisher, PubResult
from core.model import Trans
from core.revision import Rev, now_rev
from hubserver.auth import User, Users, parse_bearer
from hubserver.limits import CLOSE_INTERNAL, CLOSE_POLICY, CLOSE_TOO_SLOW, Limits
from hubserver.service import Close, Flush, HubService, Out, PubJob, Send

__all__ = ["LOOPBACK", "Hub", "is_loopback"]

log = logging.getLogger("outpost.hub")

LOOPBACK = ("127.0.0.1", "::1", "localhost")
_FLUSH = object()


def is_loopback(host: str) -> bool:
    """True when ``host`` only accepts connections from this machine."""
    return host in LOOPBACK or host.startswith("127.")


class _Peer:
    """One connection: its socket, its outbound queue and its sender task."""

    __slots__ = ("conn", "idle", "queue", "sender", "user", "ws")

    def __init__(self, conn: int, ws: ServerConnection, user: User, size: int):
        self.conn = conn
        self.ws = ws
        self.user = user
        self.queue: asyncio.Queue[object] = asyncio.Queue(maxsize=size)
        self.sender: asyncio.Task[None] | None = None
        self.idle = False
        """The sender waits for the queue: nothing of this connection is being written."""

    def send_now(self, text: str) -> bool:
        """Write ``text`` at once when nothing is queued or in flight; False: queue it.

        The sender task's ``ws.send`` does the same (``protocol.send_text`` then
        ``send_data``) after a queue hop and a task switch, which cost more CPU than the
        write itself for a small reply. Only taken while the connection is open and its
        transport accepts more (not paused): a client that does not read still fills the
        bounded queue and is closed with 1013.
        """
        ws = self.ws
        if not self.idle or self.queue.qsize() or ws.paused or ws.send_in_progress is not None \
                or ws.protocol.state is not State.OPEN:
            return False
        ws.protocol.send_text(text.encode())
        ws.send_data()
        return True


class Hub:
    """A running hub: a websockets server around a :class:`HubService`.

    Args:
        ledger: the hub's ledger (any Publisher).
        host, port: where to listen; port 0 picks a free port.
        users: the users file; ``None`` means no authentication, which is only allowed on
            a loopback host. Every connection is then ``anon_user`` with ``anon_role``.
        limits: the bounds to enforce.
        origins: allowed ``Origin`` headers (``None``: any, including none).
        ssl: a server TLS context (the URL becomes ``wss://``).
        clock: revision clock (tests inject one).
        close_ledger: close the ledger on :meth:`stop`.
    """

    def __init__(self, ledger: Publisher, *, host: str = "127.0.0.1", port: int = 0,
                 users: Users | None = None, anon_user: str = "anonymous",
                 anon_role: str = "writer", limits: Limits | None = None,
                 origins: Sequence[str] | None = None, ssl: _ssl.SSLContext | None = None,
                 clock: Callable[[], Rev] = now_rev, close_ledger: bool = False):
        if users is None and not is_loopback(host):
            raise ConfigError(f"--auth none on host {host!r}: without tokens the hub may only "
                              "listen on loopback (127.0.0.1); add users with "
                              "`outpost-hub user add NAME` instead")
        self.ledger = ledger
        self.host = host
        self.port = port
        self.users = users
        self.anon = User(anon_user, anon_role)
        self.limits = limits or Limits()
        self.origins = list(origins) if origins else None
        self.ssl = ssl
        self.service = HubService(ledger, clock, self.limits)
        self.close_ledger = close_ledger
        self._server: Server | None = None
        self._peers: dict[int, _Peer] = {}
        self._ids = itertools.count(1)
        self._jobs: list[tuple[PubJob, asyncio.Future[None]]] = []
        self._wake: asyncio.Event | None = None
        self._writer: asyncio.Task[None] | None = None
        self._exec: ThreadPoolExecutor | None = None
        self._stopping = False
        self._closing: set[asyncio.Task[None]] = set()
        self.url = ""
        self.commits = 0
        """Number of durable commits made (group commit: ≤ the number of publishes)."""

    # -- lifecycle -----------------------------------------------------------------------------

    async def start(self) -> str:
        """Start listening; returns the ``ws://`` or ``wss://`` URL."""
        self._wake = asyncio.Event()
        self._exec = ThreadPoolExecutor(1, thread_name_prefix="outpost-hub-writer")
        self._writer = asyncio.create_task(self._write_loop(), name="outpost-hub-writer")
        lim = self.limits
        origins: list[Origin | None] | None = None
        if self.origins:
            origins = [Origin(o) for o in self.origins]
        self._server = await serve(
            self._handler, self.host, self.port,
            origins=origins,
            compression="deflate" if lim.compression else None,
            process_request=self._process_request,
            open_timeout=lim.handshake_timeout,
            ping_interval=lim.ping_interval or None,
            ping_timeout=lim.ping_timeout or None,
            max_size=lim.max_message,
            max_queue=16,
            ssl=self.ssl,
            logger=logging.getLogger("outpost.hub.ws"),
        )
        sock = next(iter(self._server.sockets))
        self.port = sock.getsockname()[1]
        host = self.host if ":" not in self.host else f"[{self.host}]"
        self.url = f"{'wss' if self.ssl else 'ws'}://{host}:{self.port}"
        log.info("listening on %s", self.url)
        return self.url

    async def stop(self) -> None:
        """Stop accepting, finish in-flight publishes, close connections and the writer."""
        if self._server is None or self._stopping:
            return
        self._stopping = True
        self._server.close(close_connections=False)
        # in-flight publishes are acknowledged before the connections go
        for _ in range(1000):
            if not self._jobs and not self._busy:
                break
            await asyncio.sleep(0.01)
        self._server.close(close_connections=True)
        await self._server.wait_closed()
        if self._writer is not None:
            self._writer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._writer
        if self._exec is not None:
            self._exec.shutdown(wait=True)
        if self.close_ledger:
            self.ledger.close()
        log.info("stopped")

    async def __aenter__(self) -> Hub:
        await self.start()
        return self

    async def __aexit__(self, et: type[BaseException] | None, e: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.stop()

    @property
    def connections(self) -> int:
        return len(self._peers)

    # -- handshake -----------------------------------------------------------------------------

    def _process_request(self, ws: ServerConnection, request: Request) -> Response | None:
        if self._stopping:
            return ws.respond(HTTPStatus.SERVICE_UNAVAILABLE, "hub is shutting down\n")
        if len(self._peers) >= self.limits.max_connections:
            log.warning("connection refused: %d connections is the limit",
                        self.limits.max_connections)
            return ws.respond(HTTPStatus.SERVICE_UNAVAILABLE,
                              f"too many connections (limit {self.limits.max_connections}); "
                              "retry later\n")
        user = self._authenticate(request.headers)
        if user is None:
            log.warning("connection refused from %s: missing or unknown token",
                        _addr(ws))
            resp = ws.respond(HTTPStatus.UNAUTHORIZED,
                              "missing or unknown token: send 'Authorization: Bearer <token>' "
                              "(made by `outpost-hub user add NAME`)\n")
            resp.headers["WWW-Authenticate"] = 'Bearer realm="outpost-hub"'
            return resp
        ws.outpost_user = user  # type: ignore[attr-defined]
        return None

    def _authenticate(self, headers: Headers) -> User | None:
        if self.users is None:
            return self.anon
        return self.users.authenticate(parse_bearer(headers.get("Authorization")))

    # -- connections ---------------------------------------------------------------------------

    async def _handler(self, ws: ServerConnection) -> None:
        user: User = getattr(ws, "outpost_user", self.anon)
        conn = next(self._ids)
        peer = _Peer(conn, ws, user, self.limits.send_queue)
        self._peers[conn] = peer
        self.service.connect(conn, user.name, user.role)
        peer.sender = asyncio.create_task(self._send_loop(peer), name=f"outpost-send-{conn}")
        log.info("conn %d: %s (%s) connected from %s", conn, user.name, user.role, _addr(ws))
        try:
            await self._read_loop(peer)
        except ConnectionClosed:
            pass
        except Exception:
            log.exception("conn %d: bug while serving; closing with 1011", conn)
            await ws.close(CLOSE_INTERNAL, "internal error")
        finally:
            self.service.disconnect(conn)
            self._peers.pop(conn, None)
            peer.sender.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await peer.sender
            log.info("conn %d: %s disconnected (code %s)", conn, user.name, ws.close_code)

    async def _read_loop(self, peer: _Peer) -> None:
        idle = self.limits.idle_timeout
        while True:
            if idle > 0:
                try:
                    async with asyncio.timeout(idle):
                        msg = await peer.ws.recv()
                except TimeoutError:
                    await peer.ws.close(CLOSE_POLICY, f"idle for {idle:g} s")
                    return
            else:
                msg = await peer.ws.recv()
            outs, job = self.service.handle(peer.conn, msg)
            self._deliver(outs)
            if job is not None:
                await self._submit(job)

    async def _send_loop(self, peer: _Peer) -> None:
        try:
            while True:
                peer.idle = True
                try:
                    item = await peer.queue.get()
                finally:
                    peer.idle = False
                if item is _FLUSH:
                    text = self.service.take_push(peer.conn)
                    if text is None:
                        continue
                else:
                    assert isinstance(item, str)
                    text = item
                await peer.ws.send(text)
        except ConnectionClosed:
            return

    def _deliver(self, outs: list[Out]) -> None:
        for o in outs:
            peer = self._peers.get(o.conn)  # type: ignore[call-overload]
            if peer is None:
                continue
            item: object
            if isinstance(o, Send):
                if peer.send_now(o.text):
                    continue
                item = o.text
            elif isinstance(o, Flush):
                item = _FLUSH
            else:
                assert isinstance(o, Close)
                log.info("conn %d: closing: %d %s", peer.conn, o.code, o.reason)
                self._close_now(peer, o.code, o.reason)
                continue
            try:
                peer.queue.put_nowait(item)
            except asyncio.QueueFull:
                log.warning("conn %d: send queue full; closing", peer.conn)
                self._close_now(peer, CLOSE_TOO_SLOW, "too slow: send queue full; "
                                "reconnect and resync from your rev")

    def _close_now(self, peer: _Peer, code: int, reason: str) -> None:
        self.service.disconnect(peer.conn)
        if peer.sender is not None:
            peer.sender.cancel()
        reason = reason.encode()[:120].decode(errors="ignore")
        task = asyncio.get_running_loop().create_task(self._close_peer(peer, code, reason))
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    @staticmethod
    async def _close_peer(peer: _Peer, code: int, reason: str) -> None:
        # a peer that does not read never answers the close frame: do not wait 10 s for it
        try:
            async with asyncio.timeout(1.0):
                await peer.ws.close(code, reason)
        except TimeoutError:
            peer.ws.transport.abort()

    # -- scale-out -----------------------------------------------------------------------------

    _catch_up = False
    CATCH_UP_BATCH = 5000
    """Most events one catch-up read fans out (a long outage is caught up in several)."""

    def request_catch_up(self) -> None:
        """Fan out revisions other hubs published on the shared ledger (thread: event loop).

        :mod:`hubserver.cluster` calls this on every PostgreSQL NOTIFY, after a reconnect and
        on a timer. The read runs in the writer loop, between commits, so it never sees a
        commit of this hub whose reply is not out yet (its events would be pushed to the
        publisher too); the service drops what it has already fanned out.
        """
        self._catch_up = True
        if self._wake is not None:
            self._wake.set()

    async def _run_catch_up(self, loop: asyncio.AbstractEventLoop) -> None:
        self._catch_up = False
        try:
            evs = await loop.run_in_executor(self._exec, self.ledger.events,
                                             self.service.rev, None, self.CATCH_UP_BATCH)
        except Exception as exc:  # the cluster listener asks again after its reconnect/timer
            log.warning("catch-up from the ledger failed: %s", exc)
            return
        self._deliver(self.service.catch_up(evs))
        if len(evs) >= self.CATCH_UP_BATCH:
            self.request_catch_up()

    # -- group commit --------------------------------------------------------------------------

    _busy = False

    async def _submit(self, job: PubJob) -> None:
        if self._stopping:
            # publishes in flight are finished; new ones are refused (the satellite keeps
            # them pending and resends them to the next hub)
            err = StorageError("the hub is shutting down: publish again after reconnecting")
            self._deliver(self.service.finish(job, [err] * len(job.items)))
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._jobs.append((job, fut))
        assert self._wake is not None
        self._wake.set()
        await fut

    async def _write_loop(self) -> None:
        assert self._wake is not None and self._exec is not None
        loop = asyncio.get_running_loop()
        while True:
            await self._wake.wait()
            self._wake.clear()
            if self._catch_up:
                await self._run_catch_up(loop)
            if not self._jobs:
                continue
            self._busy = True
            try:
                await self._commit_pipeline(loop)
            finally:
                self._busy = False

    async def _commit_pipeline(self, loop: asyncio.AbstractEventLoop) -> None:
        """Commit the waiting jobs, then keep committing while more wait.

        Pipelined: as soon as a commit returns, the jobs that arrived meanwhile go to the
        writer thread, and only then are the returned commit's replies built and fanned
        out, so the thread commits the next batch while the event loop answers the last one.
        Replies still follow commit order, each only after its own commit returned. A
        requested catch-up stops the pipeline: it runs between commits, after every reply
        of this hub's commits is out (see :meth:`request_catch_up`).
        """
        batch, self._jobs = self._jobs, []
        running: asyncio.Future[list[PubResult | Exception]] | None
        running = self._start_commit(loop, batch)
        while running is not None:
            try:
                results = await running
            except BaseException:
                _release(batch)  # stopping: never leave a submitter waiting
                raise
            nxt: list[tuple[PubJob, asyncio.Future[None]]] = []
            running = None
            if self._jobs and not self._catch_up:
                nxt, self._jobs = self._jobs, []
                running = self._start_commit(loop, nxt)
            self._finish_batch(batch, results)
            batch = nxt

    def _start_commit(self, loop: asyncio.AbstractEventLoop,
                      batch: list[tuple[PubJob, asyncio.Future[None]]],
                      ) -> asyncio.Future[list[PubResult | Exception]]:
        """Run one ``publish_many`` of ``batch`` on the writer thread (one durable commit)."""
        items = [it for job, _ in batch for it in job.items]
        return loop.run_in_executor(self._exec, self._commit, items, self.service.clock())

    def _commit(self, items: list[tuple[Trans, str]], now: Rev,
                ) -> list[PubResult | Exception]:
        """The writer thread's part: publish, and turn a failed commit into per-item errors."""
        try:
            results = self.ledger.publish_many(items, now)
            crash_point("hub.after_append_before_ack")
        except Exception as exc:  # the whole commit failed: every item gets the error
            if isinstance(exc, OutpostError):
                log.error("commit of %d transactions failed: %s", len(items), exc)
            else:  # publish_many reports storage errors itself: this is a bug
                log.error("commit of %d transactions failed with an unexpected error "
                          "(a hub bug)", len(items), exc_info=exc)
            # not a verdict on the transactions: the service answers with an error
            # reply and they stay pending on their satellites
            return [exc] * len(items)
        self.commits += 1
        return results

    def _finish_batch(self, batch: list[tuple[PubJob, asyncio.Future[None]]],
                      results: list[PubResult | Exception]) -> None:
        """Reply to every job of a returned commit, in order, and release its submitter."""
        i = 0
        try:
            for job, fut in batch:
                n = len(job.items)
                try:
                    self._deliver(self.service.finish(job, results[i:i + n]))
                except Exception:
                    # no reply would come: close, so the client reconnects and resends
                    # now instead of waiting for its request to time out
                    log.exception("conn %s: bug while finishing a publish; closing with "
                                  "1011", job.conn)
                    peer = self._peers.get(job.conn)  # type: ignore[call-overload]
                    if peer is not None:
                        self._close_now(peer, CLOSE_INTERNAL, "internal error")
                i += n
                if not fut.done():
                    fut.set_result(None)
        finally:
            _release(batch)


def _release(batch: list[tuple[PubJob, asyncio.Future[None]]]) -> None:
    for _, fut in batch:
        if not fut.done():
            fut.set_result(None)


def _addr(ws: ServerConnection) -> str:
    try:
        a: Any = ws.remote_address
        return f"{a[0]}:{a[1]}"
    except Exception:
        return "?"
