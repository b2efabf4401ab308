"""The hub's limits: every bound on what one client can make the hub hold or do.

Each limit has a default that fits a team hub on one machine; ``outpost-hub serve`` exposes
the ones an operator is likely to change. When a limit is hit the client gets an error reply
(a request that is too big) or the connection is closed with a code and a reason that names
the limit (a client that floods or cannot keep up); memory never grows without bound.
"""

from __future__ import annotations

from dataclasses import dataclass

from core.wire import MAX_FRAME

__all__ = [
    "CLOSE_INTERNAL",
    "CLOSE_POLICY",
    "CLOSE_PROTOCOL",
    "CLOSE_SHUTDOWN",
    "CLOSE_TOO_SLOW",
    "MIN_MAX_MESSAGE",
    "Limits",
    "keepalive",
]

CLOSE_PROTOCOL = 1002
"""A frame the protocol forbids: no subject, an internal ``_`` subject, not UTF-8."""
CLOSE_POLICY = 1008
"""A client broke a limit of the hub (message rate, idle time)."""
CLOSE_INTERNAL = 1011
"""The hub hit a bug; the client may reconnect."""
CLOSE_SHUTDOWN = 1001
"""The hub is going away (shutdown)."""
CLOSE_TOO_SLOW = 1013
"""The client does not read its pushes fast enough; reconnect and resync from your rev."""

MIN_MAX_MESSAGE = 64 * 1024
"""The smallest ``--max-message`` ``outpost-hub serve`` takes: below, a satellite's
``evt.sat`` holds too few edits to be useful (its head alone, with many topics, takes some
KB) and replies too few events."""


@dataclass(frozen=True, slots=True)
class Limits:
    """Bounds the hub enforces.

    Attributes:
        max_message: largest frame accepted, in bytes (larger: close 1009); served in
            ``evt.stat`` (ours), so that a satellite keeps its requests under it.
        max_acts: most actions in one transaction (more: error reply).
        max_trans: most transactions in one ``evt.sat`` (more: error reply).
        max_tops: most topics or watches in one request.
        max_watch_keys: most keys in one watch of an ``evt.mon`` (more: error reply).
        max_monitors: most monitors one connection holds at once (more: error reply; an
            ``evt.unmon`` frees one).
        max_monitor_keys: most keys the monitors of one connection watch in all (more:
            error reply). With ``max_watch_keys`` and ``max_monitors``, what a connection's
            monitors hold is bounded (about 100 bytes per key: 2 MB at the default),
            whatever its frames (before session 11 one connection grew the hub by 10 MB per
            ``evt.mon`` of 100,000 keys, without end).
        rate: sustained messages per second per connection (above: close 1008).
        burst: messages a connection may send at once before ``rate`` applies.
        max_pending: most events waiting to be pushed to one connection; above, the
            connection is closed with 1013 and its satellite resyncs from its rev.
        max_pending_bytes: most bytes of events (their values' JSON) waiting to be pushed
            to one connection: above, the same (session 14: by count only, a subscriber
            that does not read held up to 50,000 values of any size).
        send_queue: most frames waiting to be written to one connection.
        send_queue_bytes: most characters of reply frames waiting to be written to one
            connection (above: close 1013, as a full ``send_queue``). Session 15: frames
            only, so 1,024 replies of any size could wait.
        max_connections: connections served at once (above: HTTP 503 at the handshake).
        max_connections_per_user: connections one user (one token's user) holds at once
            (above: HTTP 503 at the handshake naming the user, session 12: before, one
            token, even a reader's, could take every slot with idle connections and lock
            everyone else out); 0: no cap. Applies to authenticated users only: with
            ``--auth none`` every connection is the same user, bounded by
            ``max_connections``. The CLI's default is a tenth of ``--max-connections``.
        handshake_timeout: seconds to finish the opening handshake.
        idle_timeout: seconds without a message, ping or pong from the client before the
            hub closes the connection (0 = never). The hub pings at least twice per
            ``idle_timeout`` (:func:`keepalive`): a healthy but quiet client's pongs keep it
            alive; a client that answers nothing is closed.
        ping_interval, ping_timeout: WebSocket keepalive, seconds.
        compression: permessage-deflate when True (off by default: CPU and memory per
            connection for little gain on small frames).
        sat_batch: catch-up batch (events) when a satellite asks with ``lim`` 0 (0: use
            ``max_batch``).
        max_batch: most events in one ``evt.sat`` reply, whatever ``lim`` the client asks
            for (about: a revision is never cut); the reply then says ``more`` and the
            client asks again from its ``rev``. Bounds what one reply reads, encodes and
            holds on the event loop.
        heavy_writer: transactions one connection may submit within 1 s before the hub
            logs a warning (repeat-limited): one writer commits in order, so the other
            connections' publishes wait behind them (0: never logged).
    """

    max_message: int = MAX_FRAME
    max_acts: int = 10_000
    max_trans: int = 10_000
    max_tops: int = 1_000
    max_watch_keys: int = 10_000
    max_monitors: int = 100
    max_monitor_keys: int = 20_000
    rate: float = 200.0
    burst: int = 400
    max_pending: int = 50_000
    max_pending_bytes: int = 64 << 20
    send_queue: int = 1_024
    send_queue_bytes: int = 32 << 20
    max_connections: int = 1_000
    max_connections_per_user: int = 100
    handshake_timeout: float = 10.0
    idle_timeout: float = 0.0
    ping_interval: float = 20.0
    ping_timeout: float = 20.0
    compression: bool = False
    sat_batch: int = 0
    max_batch: int = 5_000
    heavy_writer: int = 10_000


def keepalive(limits: Limits) -> float:
    """Seconds between the hub's pings (0: none): ``ping_interval``, but at least two per
    ``idle_timeout``, so that a healthy quiet client's pongs keep it from being idle."""
    if limits.idle_timeout > 0:
        half = limits.idle_timeout / 2
        return min(limits.ping_interval, half) if limits.ping_interval else half
    return limits.ping_interval
