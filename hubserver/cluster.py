"""Scale-out: tell this hub about revisions other hubs published on the shared PostgreSQL ledger.

Several ``outpost-hub serve --db postgresql://...`` processes share one ledger (DESIGN §7).
Each publish notifies the channel :data:`core.ledger.sql.PG_CHANNEL` inside its transaction
(PostgreSQL delivers the notification only once the commit is visible). A
:class:`ClusterListener` holds one extra connection per hub that ``LISTEN``\\ s on that channel
and calls ``wake`` — :meth:`hubserver.server.Hub.request_catch_up` — on

- every notification,
- every (re)connect, for what was published while it was not listening,
- every ``poll`` seconds, a safety net that costs one indexed read, after a liveness check
  of the connection (``SELECT 1``) that must answer within ``check_timeout`` seconds.

The notification is only a wake-up call. The hub then reads the events after the last
revision it delivered from the ledger, in (rev, id) order, and fans them out; the payload
(the new revision) is never trusted, so a notification that is late, collapsed with another
or lost with the connection can neither skip nor duplicate an event. Why a subscriber can
never skip a revision is explained in ``docs/scaleout.md``.

A lost connection (server restart, ``pg_terminate_backend``, network) is retried forever
with exponential backoff and jitter; the hub keeps serving meanwhile (publishes through it
still work once the ledger's own pool reconnects). A connection dropped *silently* (a
partition, a firewall or NAT forgetting it: no error, no close, nothing arrives) is noticed
by the liveness check's timeout, at most ``poll + check_timeout`` seconds after it went
quiet, plus up to 10 s for psycopg to give up its cancel of the check (cluster review 15:
before, the check had no timeout and the hub stayed behind the other hubs for good), and by
the kernel's keepalives and ``tcp_user_timeout`` (:data:`core.dburl.PG_CONNECT_DEFAULTS`).
Meanwhile the hub's own periodic check (:meth:`hubserver.server.Hub._watch_db`) wakes it when
the ledger holds revisions it has not fanned out, so it never stays behind for long whatever
happens to this connection.

Usage, beside a running :class:`~hubserver.server.Hub`::

    listener = ClusterListener(db_url, hub.request_catch_up)
    await listener.start()          # returns once LISTEN is in place (or raises)
    ...
    await listener.stop()
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Callable
from typing import Any

import psycopg
from psycopg.conninfo import conninfo_to_dict

from core.dburl import pg_connect_args, safe_url
from core.errors import ConfigError, StorageError
from core.ledger.sql import PG_CHANNEL

__all__ = ["ClusterListener", "ListenerStalled", "is_postgres", "libpq_url"]

log = logging.getLogger("outpost.hub.cluster")


def is_postgres(db: str) -> bool:
    """True when ``db`` (a ``--db`` value) names a PostgreSQL database."""
    return db.split("://", 1)[0].split("+", 1)[0] in ("postgresql", "postgres")


def libpq_url(db: str) -> str:
    """``db`` as libpq understands it: ``postgresql+psycopg://`` → ``postgresql://``."""
    _scheme, sep, rest = db.partition("://")
    if not sep or not is_postgres(db):
        raise ConfigError(f"{db!r} is not a PostgreSQL URL: scale-out needs "
                          "--db postgresql://user@host:port/dbname")
    return "postgresql://" + rest


class ListenerStalled(OSError):
    """The LISTEN connection's liveness check did not answer in time (a silent drop);
    ``since``: ``time.monotonic()`` when the check was sent."""

    def __init__(self, message: str, since: float):
        super().__init__(message)
        self.since = since


class ClusterListener:
    """LISTEN on the ledger's channel and wake the hub; reconnect and catch up when cut off.

    Args:
        url: the ledger's PostgreSQL URL (``postgresql://`` or ``postgresql+psycopg://``).
        wake: called on the event loop when the hub should read new revisions from the ledger
            (must not block; :meth:`Hub.request_catch_up` only sets a flag).
        channel: the notification channel (default :data:`core.ledger.sql.PG_CHANNEL`).
        poll: seconds between safety-net wake-ups and liveness checks of the connection.
        backoff: first and largest delay in seconds between reconnect attempts.
        connect_timeout: seconds to wait for one connection attempt.
        check_timeout: seconds the liveness check may take; a connection whose check does
            not answer in time is dropped (:class:`ListenerStalled`) and made again.

    Attributes:
        notifies: notifications received.
        reconnects: connections made after the first one.
        stalls: liveness checks that did not answer within ``check_timeout`` (each a
            connection dropped silently, or a database that stopped answering).
        down_since: ``time.monotonic()`` when the connection was last lost (``None`` while
            it is up, and before the first connection).
        backend_pid: the server process of the current LISTEN connection (0 when none); an
            operator (or a test) can cut it with ``pg_terminate_backend``.
    """

    APP_NAME = "outpost-hub-listener"

    def __init__(self, url: str, wake: Callable[[], None], *, channel: str = PG_CHANNEL,
                 poll: float = 2.0, backoff: tuple[float, float] = (0.05, 5.0),
                 connect_timeout: float = 10.0, check_timeout: float = 5.0):
        if not channel.isidentifier():
            raise ConfigError(f"channel {channel!r}: expected a plain SQL identifier")
        self.url = libpq_url(url)
        self.wake = wake
        self.channel = channel
        self.poll = poll
        self.backoff = backoff
        self.connect_timeout = connect_timeout
        self.check_timeout = check_timeout
        self.notifies = 0
        self.reconnects = 0
        self.stalls = 0
        self.down_since: float | None = None
        self.backend_pid = 0
        self._connected = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._conn: psycopg.AsyncConnection[Any] | None = None
        self._stopping = False
        self._where = safe_url(self.url)  # no password, also not one in ?password=

    @property
    def connected(self) -> bool:
        """True while the LISTEN connection is up."""
        return self._connected.is_set()

    async def start(self, timeout: float = 30.0) -> None:
        """Start listening; returns once LISTEN is in place.

        Raises:
            StorageError: no connection within ``timeout`` seconds (the listener is stopped).
        """
        self._stopping = False
        self._task = asyncio.create_task(self._run(), name="outpost-hub-cluster")
        try:
            await asyncio.wait_for(self._connected.wait(), timeout)
        except TimeoutError as exc:
            await self.stop()
            raise StorageError(
                f"cannot LISTEN on {self.channel!r} at {self._where} within {timeout:g} s: "
                "check that PostgreSQL runs and the URL is right (the hub needs it to learn "
                "about revisions published through other hubs)") from exc

    async def stop(self) -> None:
        """Stop listening and close the connection."""
        self._stopping = True
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self._close()

    async def wait_connected(self, timeout: float) -> bool:
        """Wait until the LISTEN connection is up; False after ``timeout`` seconds."""
        try:
            await asyncio.wait_for(self._connected.wait(), timeout)
        except TimeoutError:
            return False
        return True

    async def _close(self) -> None:
        conn, self._conn = self._conn, None
        self._connected.clear()
        self.backend_pid = 0
        if conn is not None:
            with contextlib.suppress(psycopg.Error, OSError):
                await conn.close()

    async def _run(self) -> None:
        attempt = 0
        first = True
        while not self._stopping:
            try:
                await self._listen(first)
                first = False
                attempt = 0
            except (psycopg.Error, OSError) as exc:
                was_up = self._connected.is_set()
                if was_up:  # a silent connection: since its check went unanswered
                    self.down_since = exc.since if isinstance(exc, ListenerStalled) \
                        else time.monotonic()
                await self._close()
                if was_up:
                    first = False
                    log.warning("lost the LISTEN connection to %s: %s; reconnecting (the hub "
                                "keeps reading the ledger for revisions of other hubs "
                                "meanwhile)", self._where,
                                str(exc).strip().splitlines()[0] if str(exc)
                                else type(exc).__name__)
                else:
                    log.warning("cannot LISTEN at %s: %s; retrying", self._where,
                                str(exc).strip().splitlines()[0] if str(exc)
                                else type(exc).__name__)
                lo, hi = self.backoff
                delay = min(hi, lo * (2 ** min(attempt, 16)))
                attempt += 1
                await asyncio.sleep(delay * random.uniform(0.5, 1.0))

    async def _listen(self, first: bool) -> None:
        # keepalives and tcp_user_timeout as the ledger's own connections (the URL's own
        # parameters win); connect_timeout is this listener's
        kw: dict[str, Any] = pg_connect_args(conninfo_to_dict(self.url))
        kw["connect_timeout"] = max(1, int(self.connect_timeout))
        conn = await psycopg.AsyncConnection.connect(
            self.url, autocommit=True, application_name=self.APP_NAME, **kw)
        self._conn = conn
        await self._check(conn, f"LISTEN {self.channel}")
        self.backend_pid = conn.info.backend_pid
        if not first:
            self.reconnects += 1
            down = "" if self.down_since is None else \
                f" after {time.monotonic() - self.down_since:.1f} s"
            log.info("LISTEN on %s again (reconnect %d%s): catching up", self._where,
                     self.reconnects, down)
        self.down_since = None
        self._connected.set()
        # whatever was published while nobody listened is read from the ledger now
        self.wake()
        while True:
            async for _n in conn.notifies(timeout=self.poll):
                self.notifies += 1
                self.wake()
            # a quiet period: check the connection is alive (a dead one raises, a silent one
            # times out) and catch up anyway, in case a notification was lost between two
            # connections
            await self._check(conn, "SELECT 1")
            self.wake()

    async def _check(self, conn: psycopg.AsyncConnection[Any], sql: str) -> None:
        """Run ``sql``; :class:`ListenerStalled` when it does not answer within
        ``check_timeout`` seconds (cancelling it takes psycopg up to 10 s more)."""
        sent = time.monotonic()
        try:
            await asyncio.wait_for(conn.execute(sql), self.check_timeout)
        except TimeoutError:
            self.stalls += 1
            raise ListenerStalled(
                f"{sql!r} did not answer within {self.check_timeout:g} s (the connection was "
                "dropped silently, e.g. by a partition or a firewall, or the database stopped "
                "answering)", sent) from None
