"""Scale-out: tell this hub about revisions other hubs published on the shared PostgreSQL ledger.

Several ``outpost-hub serve --db postgresql://...`` processes share one ledger (DESIGN §7).
Each publish notifies the channel :data:`core.ledger.sql.PG_CHANNEL` inside its transaction
(PostgreSQL delivers the notification only once the commit is visible). A
:class:`ClusterListener` holds one extra connection per hub that ``LISTEN``\\ s on that channel
and calls ``wake`` — :meth:`hubserver.server.Hub.request_catch_up` — on

- every notification,
- every (re)connect, for what was published while it was not listening,
- every ``poll`` seconds, a safety net that costs one indexed read.

The notification is only a wake-up call. The hub then reads the events after the last
revision it delivered from the ledger, in (rev, id) order, and fans them out; the payload
(the new revision) is never trusted, so a notification that is late, collapsed with another
or lost with the connection can neither skip nor duplicate an event. Why a subscriber can
never skip a revision is explained in ``docs/scaleout.md``.

A lost connection (server restart, ``pg_terminate_backend``, network) is retried forever
with exponential backoff and jitter; the hub keeps serving meanwhile (publishes through it
still work once the ledger's own pool reconnects).

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
from collections.abc import Callable
from typing import Any

import psycopg

from core.dburl import safe_url
from core.errors import ConfigError, StorageError
from core.ledger.sql import PG_CHANNEL

__all__ = ["ClusterListener", "is_postgres", "libpq_url"]

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

    Attributes:
        notifies: notifications received.
        reconnects: connections made after the first one.
        backend_pid: the server process of the current LISTEN connection (0 when none); an
            operator (or a test) can cut it with ``pg_terminate_backend``.
    """

    APP_NAME = "outpost-hub-listener"

    def __init__(self, url: str, wake: Callable[[], None], *, channel: str = PG_CHANNEL,
                 poll: float = 2.0, backoff: tuple[float, float] = (0.05, 5.0),
                 connect_timeout: float = 10.0):
        if not channel.isidentifier():
            raise ConfigError(f"channel {channel!r}: expected a plain SQL identifier")
        self.url = libpq_url(url)
        self.wake = wake
        self.channel = channel
        self.poll = poll
        self.backoff = backoff
        self.connect_timeout = connect_timeout
        self.notifies = 0
        self.reconnects = 0
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
                await self._close()
                if was_up:
                    first = False
                    log.warning("lost the LISTEN connection to %s: %s; reconnecting",
                                self._where, str(exc).strip().splitlines()[0] if str(exc)
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
        conn = await psycopg.AsyncConnection.connect(
            self.url, autocommit=True, connect_timeout=max(1, int(self.connect_timeout)),
            application_name=self.APP_NAME)
        self._conn = conn
        await conn.execute(f"LISTEN {self.channel}")
        self.backend_pid = conn.info.backend_pid
        if not first:
            self.reconnects += 1
            log.info("LISTEN on %s again (reconnect %d): catching up", self._where,
                     self.reconnects)
        self._connected.set()
        # whatever was published while nobody listened is read from the ledger now
        self.wake()
        while True:
            async for _n in conn.notifies(timeout=self.poll):
                self.notifies += 1
                self.wake()
            # a quiet period: check the connection is alive (a dead one raises) and catch up
            # anyway, in case a notification was lost between two connections
            await conn.execute("SELECT 1")
            self.wake()
