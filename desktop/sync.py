"""What the window needs of the sync side: "work offline" and "sync now".

The app adapts ``core.satellite.client.SyncClient`` to :class:`SyncControl`; tests can pass
any object with these two methods (e.g. one that syncs a fake satellite).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any, Protocol

__all__ = ["ClientSync", "NoSync", "SyncControl"]

log = logging.getLogger("outpost.desktop")


class SyncControl(Protocol):
    def set_offline(self, offline: bool) -> None:
        """Stop (True) or resume (False) talking to the hub."""
        ...

    def sync_now(self) -> None:
        """Connect now (skip any backoff wait) and send pending transactions."""
        ...

    # optional: ``retry_in() -> float | None``, seconds until the next attempt to reach the
    # hub (None: none waiting); the status bar counts down to it; ``refused() -> int``, 401
    # or 403 when sync stopped on the hub's (or a proxy's) refusal, not retried


class NoSync:
    """No hub configured: the buttons do nothing."""

    def set_offline(self, offline: bool) -> None:
        pass

    def sync_now(self) -> None:
        pass

    def retry_in(self) -> float | None:
        return None


class ClientSync:
    """Runs a :class:`~core.satellite.client.SyncClient` as an asyncio task and adapts it to
    :class:`SyncControl` ("work offline" stops the task, "sync now" restarts it, which skips
    any backoff wait).

    Args:
        client: the sync client (its satellite gets ``offline_mode`` set).
        on_error: shows an unexpected failure of the task to the user.
    """

    def __init__(self, client: Any, on_error: Callable[[str], None] | None = None):
        self.client = client
        self._on_error = on_error or (lambda _msg: None)
        self._task: asyncio.Task[None] | None = None
        self._started = False  # the task has begun running the client
        self._jobs: set[asyncio.Future[None]] = set()
        #: a new token waiting for the hub to answer the edits sent with the old one
        #: (``app.use_token``; "": none): Sync now keeps the connection meanwhile
        self.switching = ""
        self._stopping: asyncio.Future[None] | None = None  # "Work offline"'s stop, running

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    def start(self) -> None:
        """Start syncing (on the running asyncio loop)."""
        if self.running or self.client.sat.offline_mode:
            return
        self._started = False
        self._task = asyncio.ensure_future(self._run())
        self._task.add_done_callback(self._done)

    async def _run(self) -> None:
        self._started = True
        # until stopped, or the hub (or a proxy) refuses the token or the connection (HTTP
        # 401, 403: SyncClient.refused): retrying cannot help, as the CLI's continuous sync
        # stops (review 10: the app retried a 403 for ever). "Sync now" tries again.
        self.client.refused, self.client.refused_code = "", 0  # the last run's: tried again
        await self.client.run_until(lambda: bool(self.client.refused), None)

    def refused(self) -> int:
        """401 or 403 when sync stopped because the hub (or a proxy) refused the token or
        the connection (it is not retried; "Sync now" tries again); 0 otherwise."""
        if self._task is None:  # stopped by the user (offline), or never started
            return 0
        return int(self.client.refused_code) if self.client.refused else 0

    def _done(self, task: asyncio.Task[None]) -> None:
        if task.cancelled():
            return
        exc = task.exception()
        if exc is not None:
            log.error("sync stopped: %s", exc, exc_info=exc)
            self._on_error(f"sync stopped: {exc}")

    async def stop(self) -> None:
        """Stop syncing and wait until the connection is closed."""
        task = self._task
        if task is None:
            return
        if not self._started:
            # not begun yet (a window closed right after it opened): SyncClient.run would
            # clear the stop asked now and sync on, for 5 s, until cancelled below
            task.cancel()
            await asyncio.wait({task})
            self._task = None
            return
        self.client.stop()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await asyncio.wait_for(asyncio.shield(task), 5)
        if not task.done():
            task.cancel()
        self._task = None

    def retry_in(self) -> float | None:
        """Seconds until the client tries the hub again (None: no retry waiting: online,
        connecting, stopped, or not running)."""
        if not self.running:
            return None
        at = self.client.machine.info.retry_at
        return None if at is None else max(0.0, at - self.client.clock())

    def set_offline(self, offline: bool) -> None:
        self.client.sat.offline_mode = offline
        if offline:
            self._stopping = self._spawn(self.stop())
        elif self._stopping is not None and not self._stopping.done():
            # unticked while the stop it made still runs (closing the connection takes a
            # moment): start once it is done (session 15: start() saw the sync still
            # running and did nothing, so it stayed stopped while "Work offline" was off)
            self._spawn(self._resume(self._stopping))
        else:
            self.start()

    async def _resume(self, stopping: asyncio.Future[None]) -> None:
        await asyncio.wait({stopping})
        if not self.client.sat.offline_mode:  # not ticked again meanwhile
            self.start()

    def sync_now(self) -> None:
        if self.client.sat.offline_mode:
            self._on_error("working offline: untick \"Work offline\" to sync")
            return
        if self.switching and self.client.connected:
            # restarting would lose the answers the new token waits for (session 15: it
            # did, and their edits were sent again as the new token's user); a connection
            # waiting to retry is made at once, with the old token, edits still held
            self._on_error("Sync now waits: the new token is used once the hub answered the "
                           "edits sent with the old one; the connection stays open until then")
            return

        async def restart() -> None:
            await self.stop()
            self.start()

        self._spawn(restart())

    def _spawn(self, coro: Any) -> asyncio.Future[None]:
        job = asyncio.ensure_future(coro)
        self._jobs.add(job)
        job.add_done_callback(self._jobs.discard)
        return job
