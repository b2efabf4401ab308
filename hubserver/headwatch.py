"""The hub against the ledger's head: is it behind the revisions stored, is its clock behind
them? Fed by the periodic database check (:meth:`hubserver.server.Hub._watch_db`), which
reads the ledger's revision anyway (:meth:`core.ledger.sql.SqlLedger.health` returns it).

- **Behind** (a hub of a cluster, :attr:`Hub.cluster <hubserver.server.Hub>` set): a
  revision the ledger held at one check and that the hub has still not fanned out
  ``behind_after`` seconds later means its wake-ups stopped (a LISTEN connection dropped
  silently, cluster review 15) or its catch-up reads fail or cannot keep up. Each check that
  finds the ledger ahead wakes the hub (:meth:`Hub.request_catch_up`), whatever its LISTEN
  connection does; a hub behind for longer is logged and ``GET /healthz`` answers 503 (its
  satellites would be told "hub behind": a load balancer sends them elsewhere).
- **Clock** (warned of by a hub of a cluster; measured by every hub): revisions are the
  publishing hub's wall-clock milliseconds, never lower than the last one. A hub whose clock
  is ahead makes every later revision of every hub follow its clock (``next_rev``: last +
  1 ms), so the other hubs see the ledger's newest revision ahead of their own clock. More
  than ``clock_bound_ms`` ahead is logged once per change (NTP: docs/operations.md) and
  shown in ``/metrics``. A burst of more than 1,000 transactions a second also runs ahead of
  the clock for a while (one millisecond each), so the bound is far above that; a hub alone
  only measures it (its newest revision is its own burst's).

No sockets and no threads: the loop calls :meth:`HeadWatch.note` with the readings.
"""

from __future__ import annotations

import logging

from core.revision import Rev, format_rev

__all__ = ["BEHIND_AFTER", "CLOCK_BOUND_MS", "HeadWatch"]

log = logging.getLogger("outpost.hub")

BEHIND_AFTER = 10.0
"""Seconds a revision the ledger held may stay not fanned out before the hub counts as behind
(two database checks at the default 5 s)."""

CLOCK_BOUND_MS = 60_000
"""How far (ms) the ledger's newest revision may be ahead of this hub's clock unsaid."""


class HeadWatch:
    """What the database checks found about the ledger's head (thread: the event loop).

    Attributes:
        head: the ledger's revision at the last check (0 before one).
        ahead_ms: how far that revision was ahead of this hub's clock (0 when behind it).
        behind_since: ``time.monotonic()`` of the check that first read a revision still not
            fanned out ``behind_after`` seconds later (``None``: not behind).
        clock_warned: the clock warning is in force (logged once until it clears).
    """

    def __init__(self, behind_after: float = BEHIND_AFTER,
                 clock_bound_ms: int = CLOCK_BOUND_MS):
        self.behind_after = behind_after
        self.clock_bound_ms = clock_bound_ms
        self.head: Rev = 0
        self.ahead_ms = 0
        self.behind_since: float | None = None
        self.clock_warned = False
        self._mark: tuple[Rev, float] | None = None
        """(a revision the ledger held, when it was read) not fanned out since."""

    def behind_for(self, mono: float) -> float:
        """Seconds the hub has been behind at ``mono`` (0: it is not)."""
        return 0.0 if self.behind_since is None else max(0.0, mono - self.behind_since)

    def note(self, head: Rev, fanned: Rev, clock: Rev, mono: float, *,
             cluster: bool) -> bool:
        """A check read the ledger's ``head``; the hub has fanned out up to ``fanned``; its
        clock reads ``clock`` and ``time.monotonic()`` ``mono``. Returns True when the hub
        should catch up (a hub of a ``cluster`` behind the ledger)."""
        self.head = head
        if not cluster:
            # a single hub's newest revision is its own: ahead of its clock only after a
            # burst of more than 1,000 transactions a second (one millisecond each; the
            # end-of-session benchmark at 10,000 a second ran 75 s ahead and was warned of
            # as a clock ahead): measured (``ahead_ms``, /metrics), not warned of
            self.ahead_ms = max(0, head - clock)
            return False
        self._clock(head, clock)
        mark = self._mark
        if mark is not None and fanned >= mark[0]:
            mark = None  # what the ledger held then is out: not behind (any more)
            if self.behind_since is not None:
                log.warning("caught up with the ledger again (behind for %.0f s): GET /healthz "
                            "answers 200", mono - self.behind_since,
                            extra={"state_change": True})
                self.behind_since = None
        if mark is None:
            if head > fanned:
                mark = (head, mono)
        elif self.behind_since is None and mono - mark[1] >= self.behind_after:
            self.behind_since = mark[1]
            log.error("behind the ledger: revision %s, stored %.0f s ago, is not fanned out "
                      "yet (this hub is at %s): its wake-ups from other hubs stopped or its "
                      "catch-up reads fail; catching up, GET /healthz answers 503 until it "
                      "is done (check the outpost.hub.cluster lines above)",
                      format_rev(mark[0]), mono - mark[1], format_rev(fanned),
                      extra={"state_change": True})
        self._mark = mark
        return head > fanned

    def _clock(self, head: Rev, clock: Rev) -> None:
        ahead = head - clock
        self.ahead_ms = max(0, ahead)
        if ahead > self.clock_bound_ms and not self.clock_warned:
            self.clock_warned = True
            log.warning(
                "the ledger's newest revision %s is %.0f s ahead of this hub's clock: a hub "
                "whose clock is ahead published it (every later revision of every hub follows "
                "it), or this host's clock is behind, or a burst of more than 1,000 "
                "transactions a second ran the revisions ahead (then it shrinks by a second "
                "a second once the burst ends); if it stays, synchronise the clocks of every "
                "hub host (NTP, e.g. chrony or systemd-timesyncd; docs/operations.md)",
                format_rev(head), ahead / 1000, extra={"state_change": True})
        elif ahead <= self.clock_bound_ms and self.clock_warned:
            self.clock_warned = False
            log.warning("the ledger's newest revision is no longer ahead of this hub's clock "
                        "by more than %.0f s", self.clock_bound_ms / 1000,
                        extra={"state_change": True})
