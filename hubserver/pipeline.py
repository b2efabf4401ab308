"""The hub's commit pipeline: publishes run on one writer thread with **group commit**.

Jobs that arrive while a commit runs are published together by the next ``publish_many`` call
(one durable commit), and each is acknowledged only after that commit returned. The writer
thread takes the next batch itself as soon as a commit returns (:func:`commit_chain`) and hands
each commit's results to the loop in one callback (:func:`committed`; no task or future per
publish). The same thread reads a cluster catch-up (:meth:`Hub.request_catch_up
<hubserver.server.Hub.request_catch_up>`, :func:`caught_up`) between commits; the batches of
``evt.sub`` / ``evt.mon`` catch-ups and ``evt.sat`` replies older than the recent events
(:func:`off_loop`) are read on the hub's reader thread when the ledger reads beside its
commits, else on the writer thread too, between commits.

Functions of the running :class:`~hubserver.server.Hub`, whose state they use (``_jobs`` and
``_chain`` under ``_lock``, shared with the writer thread; ``_busy`` on the loop).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING, Any

from core.crashpoints import crash_point
from core.errors import OutpostError, StorageError
from core.ledger.protocols import PubResult
from core.model import Event, Trans
from core.revision import Rev
from hubserver.limits import CLOSE_INTERNAL
from hubserver.metrics import SLOW
from hubserver.outputs import HubStopping, PubJob
from hubserver.peer import Peer
from hubserver.satreply import under

if TYPE_CHECKING:
    from hubserver.server import Hub

__all__ = ["caught_up", "chain_failed", "commit", "commit_chain", "committed", "finish_batch",
           "kick", "kick_later", "off_loop", "submit"]

log = logging.getLogger("outpost.hub")

_READS = {"backlog_read": "a batch of an evt.sub / evt.mon catch-up",
          "sat_read": "the read of an evt.sat reply",
          "last_event_at": "the ledger lookup of an evt.sat's last (its history check)"}
"""What :func:`off_loop` reads, for the slow-read log line (:mod:`hubserver.metrics`)."""


def submit(hub: Hub, peer: Peer, job: PubJob) -> None:
    """Queue ``peer``'s publish job for the next commit (thread: event loop)."""
    if hub._stopping:
        # publishes in flight are finished; new ones are refused (the satellite keeps
        # them pending and resends them to the next hub)
        err = HubStopping("the hub is shutting down: publish again after reconnecting")
        hub._deliver(hub.service.finish(job, [err] * len(job.items)))
        return
    peer.busy = True
    hub.metrics.publishes += 1
    _note_heavy(hub, peer, len(job.items))
    with hub._lock:
        hub._jobs.append((job, peer))
        chained = hub._chain
    if not chained:  # else the writer thread takes it when its commit returns
        kick_later(hub)


def _note_heavy(hub: Hub, peer: Peer, n: int) -> None:
    """Log (a warning, repeat-limited) a connection submitting over ``heavy_writer``
    transactions within 1 s: one writer commits in order, and one ``evt.sat`` of 5,000
    transactions after another made everyone else's publishes ~500x slower (p50 372 ms
    against 0.6 ms), with nothing in the log (the rate limit counts messages)."""
    lim = hub.limits.heavy_writer
    if lim <= 0:
        return
    now = time.monotonic()
    if now - peer.pub_t >= 1.0:
        peer.pub_t, peer.pub_n = now, 0
    before = peer.pub_n
    peer.pub_n += n
    if before < lim <= peer.pub_n:
        log.warning("conn %d: %s published over %s transactions within 1 s: the other "
                    "connections' publishes wait behind them (one writer commits in order)",
                    peer.conn, peer.user.name, f"{lim:,}")


def kick_later(hub: Hub) -> None:
    """Start the next commit once the messages that arrived with this one are handled.

    ``call_soon`` runs after the callbacks already due in this loop iteration (every
    socket that was ready), so publishes that arrived together share a commit.
    """
    if not hub._busy and not hub._kick_soon and hub.loop is not None:
        hub._kick_soon = True
        hub.loop.call_soon(kick, hub)


def kick(hub: Hub) -> None:
    """Hand the waiting jobs (or a requested catch-up) to the writer thread if it is free."""
    hub._kick_soon = False
    if hub._busy or hub._writer is None:
        return
    if hub._catch_up:
        hub._catch_up = False
        hub._busy = True
        hub._writer.submit(_read_others, (hub, hub.service.rev), partial(caught_up, hub))
        return
    with hub._lock:
        if not hub._jobs:
            return
        batch, hub._jobs = hub._jobs, []
        hub._chain = True
    hub._busy = True
    hub._writer.submit(commit_chain, (hub, batch), chain_failed)


def commit_chain(hub: Hub, batch: list[tuple[PubJob, Peer]]) -> None:
    """The writer thread: commit ``batch``, then, while jobs wait, the next batch.

    Pipelined without the loop in between: as soon as a commit returns, the jobs that
    arrived meanwhile are committed, and the returned commit's replies go to the loop
    (one ``call_soon_threadsafe`` per commit; the loop answers them in commit order,
    each only after its own commit). A requested catch-up ends the chain: it runs after
    the last commit's replies are out (see :meth:`Hub.request_catch_up`).
    """
    assert hub.loop is not None
    while True:
        items = [it for job, _ in batch for it in job.items]
        try:
            results = commit(hub, items, hub.service.clock())
        except BaseException as exc:  # commit() catches Exception: never leave them waiting
            log.error("commit thread failed (a hub bug)", exc_info=exc)
            results = [StorageError(f"internal error: {type(exc).__name__}")] * len(items)
        with hub._lock:
            nxt: list[tuple[PubJob, Peer]] | None = None
            if hub._jobs and not hub._catch_up and not hub._reads_waiting:
                nxt, hub._jobs = hub._jobs, []
            else:
                hub._chain = False
        hub.loop.call_soon_threadsafe(committed, hub, batch, results, nxt is None)
        if nxt is None:
            return
        batch = nxt


def chain_failed(res: object) -> None:
    """The writer thread's callback after a commit chain: log what should never happen."""
    if isinstance(res, BaseException):  # only the loop being closed gets here
        log.error("commit chain failed (a hub bug)", exc_info=res)


def committed(hub: Hub, batch: list[tuple[PubJob, Peer]],
              results: list[PubResult | Exception], last: bool) -> None:
    """A commit returned (on the loop): answer it; ``last``: the chain ended with it."""
    if last:
        hub._busy = False
    finish_batch(hub, batch, results)
    for _, peer in batch:
        peer.busy = False
        if peer.timer is not None:
            assert hub.loop is not None
            peer.last = hub.loop.time()
        if peer.ws.inbox:  # its next requests, which waited for this reply
            hub._pump(peer)
    kick_later(hub)


def commit(hub: Hub, items: list[tuple[Trans, str]], now: Rev,
           ) -> list[PubResult | Exception]:
    """The writer thread's part: publish, and turn a failed commit into per-item errors."""
    t0 = time.perf_counter()
    try:
        results = hub.ledger.publish_many(items, now)
        crash_point("hub.after_append_before_ack")
    except Exception as exc:  # the whole commit failed: every item gets the error
        if isinstance(exc, OutpostError):
            log.error("commit of %d transactions failed: %s", len(items), exc)
        else:  # publish_many reports storage errors itself: this is a bug
            log.error("commit of %d transactions failed with an unexpected error "
                      "(a hub bug)", len(items), exc_info=exc)
        # not a verdict on the transactions: the service answers with an error
        # reply and they stay pending on their satellites
        if isinstance(exc, StorageError) and not isinstance(exc, HubStopping):
            hub.db.failed(exc, write=True)
        hub.metrics.committed([exc] * len(items), time.perf_counter() - t0)
        return [exc] * len(items)
    hub.metrics.committed(results, time.perf_counter() - t0)
    hub.commits += 1
    # a value the database cannot store is an UnstorableError (a ValidationError): not a
    # database failure
    failure = next((r for r in results if isinstance(r, StorageError)
                    and not isinstance(r, HubStopping)), None)
    if failure is not None:
        hub.db.failed(failure, write=True)
    elif any(not isinstance(r, Exception) for r in results):
        hub.db.ok(write=True)
    return results


def finish_batch(hub: Hub, batch: list[tuple[PubJob, Peer]],
                 results: list[PubResult | Exception]) -> None:
    """Reply to every job of a returned commit, in order."""
    i = 0
    for job, peer in batch:
        n = len(job.items)
        try:
            hub._deliver(hub.service.finish(job, results[i:i + n]))
        except Exception:
            # no reply would come: close, so the client reconnects and resends
            # now instead of waiting for its request to time out
            log.exception("conn %s: bug while finishing a publish; closing with "
                          "1011", job.conn)
            hub._close_now(peer, CLOSE_INTERNAL, "internal error")
        i += n


def _read_others(hub: Hub, rev: Rev) -> tuple[list[Event], bool]:
    """The writer thread's read of a cluster catch-up: revisions after ``rev`` (the hub's,
    taken on the loop) that other hubs published, ``CATCH_UP_BATCH`` events and about
    ``CATCH_UP_BYTES`` at most (whole revisions), and whether more may follow (the next
    read is asked at once). By count only, 5,000 values of 800 KB were 4 GB in one read."""
    t0 = time.perf_counter()
    try:
        evs = hub.ledger.events(rev, None, hub.CATCH_UP_BATCH, hub.CATCH_UP_BYTES)
        return evs, len(evs) >= hub.CATCH_UP_BATCH or not under(evs, hub.CATCH_UP_BYTES)
    finally:
        took = time.perf_counter() - t0
        if took >= SLOW:
            hub.metrics.slow.note("catch-up read", took, "the read of other hubs' "
                                  "revisions", "publishes waited for it (one writer thread "
                                  "commits and reads)")


def caught_up(hub: Hub, got: tuple[list[Event], bool] | BaseException) -> None:
    """A catch-up read of :meth:`Hub.request_catch_up` returned (on the loop): fan it out."""
    hub._busy = False
    if isinstance(got, BaseException):  # the cluster listener asks again later
        log.warning("catch-up from the ledger failed: %s", got)
    else:
        evs, more = got
        hub._deliver(hub.service.catch_up(evs))
        if more and evs:
            hub._catch_up = True
    kick(hub)


def off_loop(hub: Hub, fn: Callable[..., Any], *args: Any) -> asyncio.Future[Any]:
    """Run ``fn(*args)`` off the event loop; await the result.

    On the reader thread when the hub has one (a ledger that reads beside its commits:
    SQLite in WAL mode, PostgreSQL; each read is one read transaction on a pooled
    connection of its own, and bounded by the revision fanned out when it started, so a
    commit running beside it changes nothing it returns): publishes do not wait for it
    (session 15; a reader's catch-up of 800 KB values held every publish ~0.1-0.25 s per
    batch). Else on the writer thread, between commits: a commit chain running meanwhile
    ends after its current commit (as for a cluster catch-up), so the read runs next
    instead of after every publish that keeps coming.
    """
    assert hub.loop is not None and hub._writer is not None
    fut: asyncio.Future[Any] = hub.loop.create_future()
    thread = hub._reader
    if thread is None:
        thread = hub._writer
        with hub._lock:
            hub._reads_waiting += 1

    def run(*a: Any) -> Any:
        if thread is hub._writer:
            with hub._lock:
                hub._reads_waiting -= 1
        t0 = time.perf_counter()
        try:
            return fn(*a)
        finally:
            took = time.perf_counter() - t0
            if took >= SLOW:  # the log is not silent while it runs
                hub.metrics.slow.note("catch-up read", took, _READS.get(
                    getattr(fn, "__name__", ""), "a read"), "publishes waited for it "
                    "(one writer thread commits and reads)" if thread is hub._writer else
                    "the connection's later frames waited for it (the reader thread)")

    def done(res: Any) -> None:
        if fut.done():  # the waiter was cancelled (its connection closed)
            return
        if isinstance(res, BaseException):
            fut.set_exception(res)
        else:
            fut.set_result(res)

    thread.submit(run, args, done)
    return fut
