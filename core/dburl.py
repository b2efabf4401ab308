"""A database URL as logs and messages may show it: no password, wherever it was given."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from sqlalchemy.engine import URL, make_url

__all__ = ["PG_CONNECT_DEFAULTS", "pg_connect_args", "safe_url"]


def safe_url(url: str | URL | Any) -> str:
    """``url`` without secrets: the password of ``user:PASSWORD@`` and the values of query
    parameters holding one (``?password=``, ``sslpassword=``, ``passfile=``) are ``***``
    (SQLAlchemy's ``hide_password`` only hides the first). A plain file path is returned as
    it is; a URL that cannot be parsed is not shown at all."""
    if isinstance(url, str) and "://" not in url:
        return url
    try:
        u = make_url(url) if isinstance(url, str) else url
        u = u.set(query={k: ("***" if "pass" in k.lower() else v) for k, v in u.query.items()})
        return str(u.render_as_string(hide_password=True)).replace("%2A%2A%2A", "***")
    except Exception:
        return "(database URL not shown: it could not be parsed)"


PG_CONNECT_DEFAULTS: dict[str, int] = {
    "connect_timeout": 10,
    "keepalives": 1,
    "keepalives_idle": 10,
    "keepalives_interval": 5,
    "keepalives_count": 3,
    "tcp_user_timeout": 30_000,
}
"""libpq connection parameters every PostgreSQL connection of Outpost gets (the ledger's
pool, the hub's LISTEN connection) unless its URL names them (``?tcp_user_timeout=0`` turns
one off): a connection attempt gives up after 10 s, and a connection whose peer vanished
silently (a partition, a firewall or NAT dropping it, the database host gone) is closed by
the kernel within about 25 s when idle or waiting for an answer (keepalives: 10 s idle, then
3 probes 5 s apart) and within 30 s when data it sent stays unacknowledged
(``tcp_user_timeout``, ms), instead of the ~15 minutes of TCP's retransmissions (cluster
review 15). A query that runs long on a live server is not cut (its connection stays
acknowledged). What they cannot notice: a server that is alive but does not answer (its
processes paused or stuck): the hub's own checks time out then (``hubserver.health``,
``hubserver.cluster``)."""


def pg_connect_args(query: Mapping[str, Any],
                    environ: Mapping[str, str] | None = None) -> dict[str, int]:
    """:data:`PG_CONNECT_DEFAULTS` less what the operator set another way: the parameters a
    URL's ``query`` gives itself, ``connect_timeout`` when ``$PGCONNECT_TIMEOUT`` is set, and
    all of them when a libpq service is named (``?service=`` or ``$PGSERVICE``: its file may
    set any of them). Explicit parameters beat libpq's environment and service files, so a
    default passed anyway would silently override the operator's own (merge review 16a)."""
    env = os.environ if environ is None else environ
    if "service" in query or env.get("PGSERVICE"):
        return {}
    return {k: v for k, v in PG_CONNECT_DEFAULTS.items()
            if k not in query and not (k == "connect_timeout" and env.get("PGCONNECT_TIMEOUT"))}
