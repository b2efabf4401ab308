"""What an operator can watch: ``GET /metrics`` in the Prometheus text format (0.0.4), and a
log line when a commit or a catch-up read stays slow.

Counting costs next to nothing where the work is done: the writer thread bumps integers once
per commit (:meth:`Metrics.committed`: its transactions' outcomes, its duration in a fixed
histogram) and the loop one per publish request (:func:`hubserver.pipeline.submit`).
Everything else (connections by role, pushes pending, catch-ups running, the revision,
memory) is read from the hub's state when ``/metrics`` is asked, on the event loop.

Numbers only: no user names, topics, keys or addresses (low cardinality, no personal data).
Access (``--metrics``, :data:`MODES`): ``off`` (404), ``open`` (no token, like
``/healthz``) or ``token`` (``Authorization: Bearer`` with the scrape token of
``--metrics-token-file``: a credential that opens ``/metrics`` only; users' tokens do not,
since session 15: any user's, a reader's in the field too, opened it). The default is
``token`` with a token file, ``open`` with ``--auth none`` (which only listens on loopback),
else ``off``: a hub behind a reverse proxy on the same machine listens on 127.0.0.1, and an
"open on loopback" default would have published its metrics through the proxy to anyone
(docs/operations.md, "Monitoring").
"""

from __future__ import annotations

import logging
import os
import threading
import time
from bisect import bisect_left
from collections.abc import Sequence
from typing import TYPE_CHECKING

from core.errors import ConflictError, ValidationError
from core.ledger.protocols import PubResult

if TYPE_CHECKING:
    from hubserver.server import Hub

__all__ = ["CONTENT_TYPE", "MODES", "NO_METRICS_TOKEN", "REFUSALS", "SLOW", "Metrics", "SlowLog",
           "render", "resident_bytes"]

log = logging.getLogger("outpost.hub")

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
MODES = ("off", "open", "token")
NO_METRICS_TOKEN = ("--metrics token needs --metrics-token-file FILE: a file holding a "
                    "scrape token of its own (e.g. `openssl rand -hex 32 > FILE`, mode "
                    "0600); users' tokens do not open /metrics. Or use --metrics open "
                    "(anyone who reaches the port) or off")
REFUSALS = ("auth", "connections", "frame", "invalid", "metrics_token", "origin", "rate",
            "read_only")
"""The reasons of ``outpost_hub_refused_total`` (each shown, 0 until one happens)."""

BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.1, 0.5, 1.0, 5.0)
"""Upper bounds (s) of the commit duration histogram's buckets (then ``+Inf``)."""

SLOW = 1.0
"""A commit or a catch-up read taking this many seconds or more is logged (:class:`SlowLog`)."""


class SlowLog:
    """Log a warning when something took :data:`SLOW` s or more, at most once per ``every``
    seconds per kind; the ones held back meanwhile are counted in the next line. Thread-safe
    (the writer thread notes, the loop may too)."""

    def __init__(self, every: float = 60.0):
        self.every = every
        self.seen: dict[str, int] = {}
        """How many slow ones of each kind (``outpost_hub_slow_total``)."""
        self._last: dict[str, float] = {}
        self._held: dict[str, int] = {}
        self._lock = threading.Lock()

    def note(self, kind: str, seconds: float, what: str, why: str) -> None:
        """``what`` took ``seconds``: log it (``why`` says what waited) unless a line of
        this ``kind`` was logged within ``every`` seconds."""
        now = time.monotonic()
        with self._lock:
            self.seen[kind] = self.seen.get(kind, 0) + 1
            last = self._last.get(kind)
            if last is not None and now - last < self.every:
                self._held[kind] = self._held.get(kind, 0) + 1
                return
            self._last[kind] = now
            held = self._held.pop(kind, 0)
        more = f" ({held} more over {SLOW:g} s since the last such line)" if held else ""
        log.warning("slow %s: %s took %.1f s: %s%s", kind, what, seconds, why, more)


class Metrics:
    """The hub's counters. Each is written by one thread: ``publishes`` by the event loop,
    the commit ones by the writer thread (:meth:`committed`); ``/metrics`` reads them."""

    def __init__(self) -> None:
        self.started = time.monotonic()
        self.publishes = 0
        """``evt.pub`` / ``evt.sat`` requests handed to the writer for a commit."""
        self.accepted = 0  # transactions stored
        self.duplicates = 0  # transactions whose uid was stored before (acknowledged again)
        self.rejected = 0  # the ledger's verdict: a ValidationError or ConflictError
        self.failed = 0  # not stored for another reason (the database failing, stopping)
        self.events = 0  # events the stored transactions made
        self.commit_buckets = [0] * (len(BUCKETS) + 1)  # per bucket, not cumulative
        self.commit_sum = 0.0
        self.slow = SlowLog()
        self.refused: dict[str, int] = {}
        """Connections refused at the handshake (``auth``, ``origin``, ``connections``) and
        scrapes without the scrape token (``metrics_token``), by reason (the loop); the
        requests' refusals are the service's (``HubService.refused``)."""

    def committed(self, results: Sequence[PubResult | Exception], seconds: float) -> None:
        """One commit returned (the writer thread): count its outcomes and its duration.
        Lean on purpose (about 3,700 instructions for a commit of one transaction, against
        about 360,000 for the commit itself: docs/benchmarks.md, "Hub, session 14")."""
        self.commit_buckets[bisect_left(BUCKETS, seconds)] += 1
        self.commit_sum += seconds
        for r in results:
            if type(r) is PubResult and not r.dup:  # the common case first
                self.accepted += 1
                self.events += len(r.evs)
            else:
                self._other(r)
        if seconds >= SLOW:
            self.slow.note("commit", seconds, f"a commit of {len(results)} transaction(s)",
                           "every publish waits behind it (one writer commits in order)")

    def _other(self, r: PubResult | Exception) -> None:
        if type(r) is PubResult:
            self.duplicates += 1
        elif isinstance(r, ValidationError | ConflictError):
            self.rejected += 1
        else:
            self.failed += 1


def resident_bytes() -> int | None:
    """The process's resident memory (``/proc/self/statm``), ``None`` where there is none."""
    try:
        with open("/proc/self/statm", "rb") as f:
            pages = int(f.read().split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return pages * os.sysconf("SC_PAGE_SIZE")


def _num(v: float) -> str:
    return repr(float(v)) if isinstance(v, float) else str(v)


def render(hub: Hub) -> str:
    """The exposition (thread: the event loop): every family with HELP and TYPE."""
    m = hub.metrics
    svc = hub.service
    lines: list[str] = []

    def family(name: str, kind: str, text: str,
               samples: Sequence[tuple[str, float]]) -> None:
        lines.append(f"# HELP {name} {text}")
        lines.append(f"# TYPE {name} {kind}")
        lines.extend(f"{name}{labels} {_num(v)}" for labels, v in samples)

    peers = hub.peers()
    roles = {"reader": 0, "writer": 0}
    for p in peers:
        roles[p.user.role] = roles.get(p.user.role, 0) + 1
    family("outpost_hub_connections", "gauge", "Open websocket connections.",
           [("", len(peers))])
    family("outpost_hub_connections_by_role", "gauge", "Open connections by the user's role.",
           [(f'{{role="{r}"}}', n) for r, n in sorted(roles.items())])
    family("outpost_hub_publishes_total", "counter",
           "evt.pub and evt.sat requests handed to the writer for a commit.",
           [("", m.publishes)])
    family("outpost_hub_transactions_total", "counter",
           "Transactions committed, by outcome (rejected: the ledger's verdict; failed: not "
           "stored, e.g. the database failing; duplicate: stored before, acknowledged again).",
           [('{outcome="accepted"}', m.accepted), ('{outcome="duplicate"}', m.duplicates),
            ('{outcome="rejected"}', m.rejected), ('{outcome="failed"}', m.failed)])
    refused = dict.fromkeys(REFUSALS, 0)
    for d in (m.refused, svc.refused):
        for k, n in d.items():
            refused[k] = refused.get(k, 0) + n
    family("outpost_hub_refused_total", "counter",
           "Refused before any commit, by reason: requests (frame: not a frame or over "
           "--max-message; invalid: a bad request or value, over a limit; read_only: a "
           "reader's edits; rate: over --rate), connections at the handshake (auth, origin, "
           "connections: over a connection limit) and scrapes (metrics_token).",
           [(f'{{reason="{k}"}}', n) for k, n in sorted(refused.items())])
    family("outpost_hub_events_published_total", "counter",
           "Events made by the transactions stored.", [("", m.events)])
    family("outpost_hub_commits_total", "counter",
           "Durable commits (group commit: one holds the publishes that waited).",
           [("", hub.commits)])
    cum = 0
    samples: list[tuple[str, float]] = []
    counts = list(m.commit_buckets)
    for le, n in zip((*(repr(b) for b in BUCKETS), "+Inf"), counts, strict=True):
        cum += n
        samples.append((f'_bucket{{le="{le}"}}', cum))
    samples += [("_sum", m.commit_sum), ("_count", cum)]
    family("outpost_hub_commit_seconds", "histogram",
           "Time the writer thread spent in each commit.", samples)
    waiting, reads = hub.waiting()
    family("outpost_hub_transactions_waiting", "gauge",
           "Transactions waiting for the writer (a commit or a catch-up read runs).",
           [("", waiting)])
    pc = svc.push_counts()
    family("outpost_hub_pushes_pending", "gauge",
           "Connections with events fanned out but not yet written to them.",
           [("", pc.conns)])
    family("outpost_hub_push_events_pending", "gauge",
           "Events fanned out but not yet written, over all subscribers.",
           [("", pc.events)])
    family("outpost_hub_send_queue_items", "gauge",
           "Frames and pushes queued behind connections' senders.",
           [("", sum(p.queue.qsize() for p in peers))])
    family("outpost_hub_catchups_running", "gauge",
           "evt.sub / evt.mon catch-ups and evt.sat replies being read and sent.",
           [("", pc.catch_ups + sum(1 for p in peers if p.held))])
    family("outpost_hub_writer_reads_waiting", "gauge",
           "Catch-up reads waiting for the writer thread.", [("", reads)])
    family("outpost_hub_slow_total", "counter",
           f"Commits and catch-up reads that took {SLOW:g} s or more (each logged, at most "
           "once a minute per kind).",
           [(f'{{kind="{k}"}}', m.slow.seen.get(k, 0)) for k in ("commit", "catch-up read")])
    family("outpost_hub_ledger_revision_ms", "gauge",
           "The ledger's revision the hub has fanned out (ms, as the wire's rev).",
           [("", svc.rev)])
    family("outpost_hub_database_up", "gauge",
           "1 while the database works (as GET /healthz says), else 0.",
           [("", 0 if hub.db.problem or hub.stopping else 1)])
    now = time.monotonic()
    heads = hub.heads
    family("outpost_hub_behind_seconds", "gauge",
           "Seconds this hub has been behind the ledger (a revision stored 10 s ago or more "
           "not fanned out yet; a hub of a cluster), 0 when it is not.",
           [("", round(heads.behind_for(now), 3))])
    family("outpost_hub_ledger_ahead_of_clock_seconds", "gauge",
           "How far the ledger's newest revision was ahead of this hub's clock at the last "
           "database check (a hub clock ahead somewhere: synchronise them).",
           [("", heads.ahead_ms / 1000)])
    lis = hub.cluster
    if lis is not None:
        family("outpost_hub_cluster_listener_up", "gauge",
               "1 while the LISTEN connection of this hub of a cluster is up, else 0.",
               [("", 1 if lis.connected else 0)])
        family("outpost_hub_cluster_listener_reconnects_total", "counter",
               "LISTEN connections made again after one was lost.", [("", lis.reconnects)])
        family("outpost_hub_cluster_listener_stalls_total", "counter",
               "LISTEN connections dropped because their liveness check did not answer "
               "in time (dropped silently by the network, or the database not answering).",
               [("", lis.stalls)])
    family("outpost_hub_uptime_seconds", "gauge", "Seconds since the hub started.",
           [("", round(now - m.started, 3))])
    rss = resident_bytes()
    if rss is not None:
        family("process_resident_memory_bytes", "gauge", "Resident memory size in bytes.",
               [("", rss)])
    return "\n".join(lines) + "\n"
