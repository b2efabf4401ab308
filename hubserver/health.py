"""The hub's view of its database's health, for monitoring: ``evt.stat``'s ``db`` field
(an Outpost extension) and ``GET /healthz`` (200 / 503, no authentication).

It is set from what really happens: every commit (a storage failure makes it
``unavailable``; a commit that stores something makes it ``ok``), and a cheap check every
``interval`` seconds (:meth:`core.ledger.sql.SqlLedger.health`: one read of the revision,
and for an SQLite file the free space of its disk), so an idle hub notices too. Clients are
told only the kind of failure (:func:`hubserver.outputs.db_reason`), never the database's
URL or message; the log has the whole error, once per change of state.
"""

from __future__ import annotations

import logging
import threading

from hubserver.outputs import db_reason

__all__ = ["DbHealth"]

log = logging.getLogger("outpost.hub")


class DbHealth:
    """``problem`` is ``""`` while the database works, else the kind of failure a client may
    know (:func:`~hubserver.outputs.db_reason`, ``"it cannot be reached"`` for a lost or
    refused connection among them; ``"unavailable"`` when none of these). Thread-safe:
    commits report from the writer thread."""

    def __init__(self) -> None:
        self.problem = ""
        self.writes_failing = False
        """The last commit failed: only a write that works (a commit, or the check's write
        probe) says ok again; a read does not (ops review 12: a read-only database read
        fine, and /healthz said ok while every publish failed)."""
        self._lock = threading.Lock()

    def failed(self, exc: Exception, write: bool = False) -> None:
        """A failure seen by a commit (``write``) or by the periodic check."""
        why = db_reason(exc) or "unavailable"
        with self._lock:
            was, self.problem = self.problem, why
            self.writes_failing = self.writes_failing or write
        if not was:
            log.error("the database is failing (%s): evt.stat says db %r and GET /healthz "
                      "answers 503 until it works again", exc, why,
                      extra={"state_change": True})

    def ok(self, write: bool = False) -> None:
        """A commit that stored something (``write``) or a check that passed: the latter
        does not clear a commit's failure unless the check wrote (``write``) too."""
        with self._lock:
            if self.writes_failing and not write:
                return
            was, self.problem, self.writes_failing = self.problem, "", False
        if was:
            log.warning("the database works again (it was failing: %s): evt.stat and "
                        "/healthz report ok", was, extra={"state_change": True})

    def fields(self) -> dict[str, str]:
        """The ``evt.stat`` fields: ``{"db": "ok"}`` or ``{"db": "unavailable", "db_why":
        KIND}``."""
        problem = self.problem
        if not problem:
            return {"db": "ok"}
        return {"db": "unavailable", "db_why": problem}
