"""``outpost-hub``: serve a hub, manage its users, verify, back up and restore its ledger.

::

    outpost-hub serve [--db PATH|postgresql://...] [--schema FILE] [--host H] [--port P]
                      [--auth token|none] [--users FILE] [--max-message BYTES]
                      [--rate MSGS_PER_S] [--burst MSGS]
                      [--allow-origin ORIGIN ...] [--tls-cert PEM --tls-key PEM]
                      [--trusted-proxy ADDR ...] [--metrics off|open|token]
                      [--metrics-token-file FILE]
                      [--seed-demo] [--user NAME] [--log-level LEVEL]
    outpost-hub user add NAME [--role reader|writer]   prints the token once
    outpost-hub user list | user remove NAME
    outpost-hub verify | backup FILE | restore FILE

Without ``--schema`` an existing ledger is served, verified and backed up with the schema it
holds, a backup restored with its own; a new ledger gets the demo schema.

``serve`` prints exactly one line starting with ``outpost-hub ready: `` and holding the
``ws://`` (or ``wss://``) URL once it listens, then logs to stderr. SIGINT and SIGTERM finish
the publishes in flight and exit 0.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import shlex
import signal
import socket
import ssl
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import orjson
import platformdirs

from core.dburl import safe_url
from core.errors import ConfigError, OutpostError, SchemaError
from core.heap import GC_YOUNG, settle_heap
from core.ledger.opsguard import check_not_restoring, sqlite_file
from core.ledger.protocols import Publisher
from core.ledger.sql import SqlLedger, open_ledger, stored_project
from core.model import Trans
from core.redact import install as install_redaction
from core.revision import format_rev
from core.satellite.machine import MAX_TRANS_BYTES
from core.schema import Project, load_project
from core.wire import dec_trans
from hubserver.auth import FIRST, ROLES, Users, check_name
from hubserver.cluster import ClusterListener, is_postgres
from hubserver.dbguard import HubLock, check_hub_pg, check_hub_sqlite, check_port
from hubserver.limits import MIN_MAX_MESSAGE, Limits
from hubserver.metrics import NO_METRICS_TOKEN
from hubserver.proxy import TrustedProxies, parse_proxies
from hubserver.server import Hub, is_loopback
from hubserver.usersmove import (
    carry_users,
    old_users_files,
    target_problem,
    users_digest,
)

__all__ = ["DEMO_DATA", "DEMO_SCHEMA", "default_db", "main", "open_hub_ledger", "seed_demo"]

log = logging.getLogger("outpost.hub")

# package data (pyproject.toml): in a clone and in an installed wheel alike; the clone's
# assets/demo-schema.toml and assets/demo-data.json link here
_DATA = Path(__file__).resolve().parent / "data"
DEMO_SCHEMA = _DATA / "demo-schema.toml"
DEMO_DATA = _DATA / "demo-data.json"
_DEF = Limits()


def default_db() -> Path:
    """The default hub database: ``hub.db`` in the user data directory."""
    return Path(platformdirs.user_data_dir("outpost-hub", appauthor=False)) / "hub.db"


_LEGACY_USERS = "hub-users.db"
"""The users file's name before session 10: one per directory (SQLite) or per machine
(PostgreSQL), so every ledger there shared it: one team's users were accepted by another
team's hub. Still read when it is the only one (:func:`users_file`), with a warning."""


def _pg_users_name(db: str) -> str:
    """The default users file's name of a PostgreSQL ``db``: keyed by host, port and database
    (not by the login user or options: they reach the same database)."""
    from sqlalchemy.engine import make_url

    u = make_url(db)
    host = u.host or str(u.query.get("host") or "") or "localhost"
    port = str(u.port or str(u.query.get("port") or 5432).split(",")[0])
    key = f"pg-{host}-{port}-{u.database or u.username or 'postgres'}"
    return "".join(c if c.isalnum() or c in "._-" else "_" for c in key) + ".users.db"


def users_file(db: str, given: str | None,
               check: bool = False) -> tuple[Path, str | None]:
    """The users file of the ledger ``db`` (``--users`` when ``given``), and a warning to log
    when it is the old shared file.

    The default is per ledger: ``FILE.users.db`` beside an SQLite ``FILE``; for PostgreSQL
    ``users/pg-HOST-PORT-DBNAME.users.db`` in the data directory. A deployment from before
    session 10 kept every ledger's users in one ``hub-users.db`` (beside the SQLite files,
    or in the data directory for PostgreSQL); while that file exists and the per-ledger one
    does not (and the SQLite ledger exists already), it is still used, so no operator is
    locked out by an upgrade, and the warning names the fix.

    With ``check`` (``serve``, ``user``: they write a ``hub_user`` table into it) a ``given``
    file that is the ledger itself or another SQLite file is refused (:class:`ConfigError`).
    """
    if given:
        path = Path(given).expanduser()
        problem = check and target_problem(
            path, None if is_postgres(db) else sqlite_file(db), restore=False)
        if problem:
            raise ConfigError(problem)
        return path, None
    data = default_db().parent
    sqlite = None if is_postgres(db) else sqlite_file(db)
    if sqlite is None and not is_postgres(db):  # an SQLite database in memory
        return data / _LEGACY_USERS, None
    if sqlite is not None:
        ledger = sqlite.resolve()
        new = ledger.with_name(ledger.name + ".users.db")
        legacy = ledger.parent / _LEGACY_USERS
        shared = f"every SQLite ledger in {ledger.parent}"
        old_ledger = ledger.exists()
    else:
        new = data / "users" / _pg_users_name(db)
        legacy = data / _LEGACY_USERS
        shared = "every PostgreSQL database this machine's hubs serve without --users"
        old_ledger = True  # cannot tell without connecting: an upgrade must not lock out
    if new.exists() or not legacy.exists() or not old_ledger:
        return new, None
    mkdir = "" if new.parent.is_dir() else f"`mkdir -p {shlex.quote(str(new.parent))}`, "
    return legacy, (
        f"using the users file {legacy}, shared by {shared} (the default before session "
        f"10): a hub of any of them accepts these tokens. Give this ledger its own file: "
        f"{mkdir}`cp {shlex.quote(str(legacy))} {shlex.quote(str(new))}`, then `outpost-hub user "
        f"remove NAME --db {shlex.quote(safe_url(db))}` for the users of the other ledgers "
        f"(`mv` instead of `cp` when only this ledger used it); or keep sharing it on "
        f"purpose: --users {shlex.quote(str(legacy))} (silences this warning)")


def open_hub_ledger(db: str, project: Project) -> SqlLedger:
    """Open the hub's SQL ledger (SQLite path or URL, or PostgreSQL URL)."""
    if "://" not in db:
        Path(db).expanduser().resolve().parent.mkdir(parents=True, exist_ok=True)
    return open_ledger(db, project)


def seed_demo(ledger: Publisher, path: Path = DEMO_DATA) -> int:
    """Publish the demo data into an empty ledger; returns how many transactions were added.

    The file holds ``{"transactions": [{"acts": [...]}, ...]}``.
    """
    if ledger.rev():
        return 0
    try:
        data: Any = orjson.loads(path.read_bytes())
    except (OSError, orjson.JSONDecodeError) as exc:
        raise ConfigError(f"cannot read demo data {path}: {exc}") from exc
    items: list[tuple[Trans, str]] = []
    for i, t in enumerate(data.get("transactions", []) if isinstance(data, dict) else []):
        items.append((dec_trans(t, f"{path.name}: transactions[{i}]"), "demo"))
    results = ledger.publish_many(items)
    for i, r in enumerate(results):
        if isinstance(r, Exception):
            raise ConfigError(f"{path}: transactions[{i}] was rejected: {r}")
    return len(items)


_EXAMPLES = """\
examples:
  outpost-hub serve --db hub.sqlite --schema team.toml   # the first start makes the ledger
  outpost-hub user add ann --db hub.sqlite               # prints ann's token once
  outpost-hub backup /backups/hub.ledger --db hub.sqlite
  outpost-hub verify --db hub.sqlite
run `outpost-hub COMMAND --help` for each command's options"""


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="outpost-hub", description="The Outpost hub server: publishes the satellites' "
        "edits to its ledger, keeps the latest state and serves catch-ups, subscriptions and "
        "key monitors over WebSockets. docs/operations.md and docs/deployment.md say how to "
        "run it for a team.", epilog=_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd")

    def common(sp: argparse.ArgumentParser, schema: str | None = "ledger") -> None:
        sp.add_argument("--db", default=str(default_db()),
                        help="SQLite file or postgresql:// URL (default: %(default)s)")
        if schema == "ledger":
            sp.add_argument("--schema", default=None, metavar="FILE",
                            help="schema TOML file (default: the schema stored in the "
                            "ledger; for a new ledger, the demo schema). Give it to change "
                            "an existing ledger's schema only through backup and restore "
                            "(docs/operations.md)")
        elif schema == "backup":
            sp.add_argument("--schema", default=None, metavar="FILE",
                            help="schema TOML file for the restored ledger (default: the "
                            "schema stored in the backup); a new schema must accept every "
                            "event of the backup")
        sp.add_argument("--users", default=None,
                        help="users file (default: one per ledger: FILE.users.db beside an "
                        "SQLite FILE; for PostgreSQL users/pg-HOST-PORT-DBNAME.users.db in the "
                        "data directory; see docs/operations.md)")
        sp.add_argument("--log-level", default="INFO",
                        choices=["DEBUG", "INFO", "WARNING", "ERROR"],
                        help="how much goes to stderr (default: %(default)s; tokens are "
                        "never logged, at any level)")

    s = sub.add_parser(
        "serve", help="run the hub",
        description="Serve the ledger of --db on ws://HOST:PORT (wss:// with --tls-cert and "
        "--tls-key) until Ctrl+C or SIGTERM, which finish the publishes in flight. It prints "
        "one line `outpost-hub ready: URL (…)` once it listens, then logs to stderr. Every "
        "connection needs a user's token (`outpost-hub user add NAME`) unless --auth none.",
        epilog="examples:\n  outpost-hub serve --db hub.sqlite --schema team.toml\n"
        "  outpost-hub serve --host 0.0.0.0 --port 8765 --db /var/lib/outpost/hub.sqlite\n"
        "  outpost-hub serve --auth none --seed-demo --db /tmp/demo.sqlite   # a local demo",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    common(s)
    s.add_argument("--host", default="127.0.0.1",
                   help="address to listen on; 0.0.0.0: every interface (default: "
                   "%(default)s, this machine only)")
    s.add_argument("--port", type=int, default=8765,
                   help="0 picks a free port (default: %(default)s)")
    s.add_argument("--auth", choices=["token", "none"], default="token",
                   help="token: every connection needs a user's token (default: "
                   "%(default)s); none: loopback only")
    s.add_argument("--user", default="anonymous", help="the user of every connection with "
                   "--auth none (default: %(default)s)")
    s.add_argument("--max-message", type=int, default=_DEF.max_message,
                   help="largest frame in bytes (default: %(default)s)")
    s.add_argument("--max-connections", type=int, default=_DEF.max_connections,
                   help="connections served at once; more are answered 503 (default: "
                   "%(default)s)")
    s.add_argument("--max-connections-per-user", type=int, default=None,
                   help="connections one user (token) holds at once; more are answered 503 "
                   "naming the user (default: a tenth of --max-connections; 0: no cap; "
                   "not applied with --auth none)")
    s.add_argument("--rate", type=float, default=_DEF.rate,
                   help="messages per second one connection may send after its burst; above, "
                   "it is closed with 1008 (default: %(default)g)")
    s.add_argument("--burst", type=int, default=_DEF.burst,
                   help="messages one connection may send at once (default: %(default)s)")
    s.add_argument("--max-monitors", type=int, default=_DEF.max_monitors,
                   help="evt.mon monitors one connection may hold at once (default: "
                   "%(default)s)")
    s.add_argument("--max-monitor-keys", type=int, default=_DEF.max_monitor_keys,
                   help="keys the monitors of one connection may watch in all (default: "
                   "%(default)s)")
    s.add_argument("--max-watch-keys", type=int, default=_DEF.max_watch_keys,
                   help="keys in one watch of an evt.mon (default: %(default)s)")
    s.add_argument("--idle-timeout", type=float, default=_DEF.idle_timeout,
                   help="seconds without a message or a pong from a client before "
                   "closing it (0: never; default: %(default)g)")
    s.add_argument("--compression", action="store_true",
                   help="allow permessage-deflate (off by default)")
    s.add_argument("--allow-origin", action="append", default=None, metavar="ORIGIN",
                   help="accepted Origin header (repeat; default: any)")
    s.add_argument("--trusted-proxy", action="append", default=[], metavar="ADDR",
                   help="a reverse proxy's address or network (repeat): for a connection "
                   "from it, the log names the client its X-Forwarded-For header gives "
                   "(e.g. 127.0.0.1 for nginx or Caddy on this machine); default: none, "
                   "the header is ignored (any client can send it)")
    s.add_argument("--metrics", choices=["off", "open", "token"], default=None,
                   help="who may GET /metrics (Prometheus text format: numbers only, no "
                   "names): token: 'Authorization: Bearer' with the token of "
                   "--metrics-token-file (users' tokens do not open it); open: anyone who "
                   "reaches the port; off: 404 (default: token with --metrics-token-file, "
                   "open with --auth none, else off)")
    s.add_argument("--metrics-token-file", default=None, metavar="FILE",
                   help="a file holding the scrape token of GET /metrics (one line, at "
                   "least 16 characters, e.g. `openssl rand -hex 32 > FILE`; mode 0600): "
                   "read at start")
    s.add_argument("--tls-cert", default=None, metavar="PEM",
                   help="serve wss:// with this certificate chain (with --tls-key; default: "
                   "ws://, e.g. behind a TLS load balancer)")
    s.add_argument("--tls-key", default=None, metavar="PEM", help="its private key")
    s.add_argument("--seed-demo", action="store_true",
                   help="load the demo data (hubserver/data/demo-data.json) into an "
                   "empty ledger")

    u = sub.add_parser("user", help="manage users and tokens")
    us = u.add_subparsers(dest="ucmd", required=True)
    ua = us.add_parser(
        "add", help="add a user; prints the token once",
        description="Add a user to the hub's users file and print their token once (give it "
        "to them: `outpost connect URL --token=TOKEN`). The users file is the one of --db "
        "(or --users); a running hub sees the new user at once.",
        epilog="examples:\n  outpost-hub user add ann --db hub.sqlite\n"
        "  outpost-hub user add office --role reader --db hub.sqlite\n"
        "  outpost-hub user add ann --replace --db hub.sqlite   # a new first token\n"
        "  outpost-hub user token add ann --name laptop2 --db hub.sqlite  # one more, for a "
        "device\n  (one token a device: a lost laptop's is revoked alone, `user token revoke "
        "ann laptop2`)",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    ua.add_argument("name", help="the user's name, as the audit records each of their edits "
                    "(1 to 100 characters, no control characters)")
    ua.add_argument("--role", choices=list(ROLES), default="writer",
                    help="writer: publishes and reads; reader: reads only, its edits are "
                    "refused (default: %(default)s)")
    ua.add_argument("--replace", action="store_true",
                    help="replace an existing user's token and role (its old token stops "
                    "working within 2 s)")
    common(ua, schema=None)
    common(us.add_parser("list", help="list users",
                         description="List the users of the hub's users file (of --db, or "
                         "--users): name and role, one a line; tokens are never shown."),
           schema=None)
    ur = us.add_parser("remove", help="remove a user",
                       description="Remove a user: their token stops working within 2 s and "
                       "their open connections are closed (1008). Their edits stay in the "
                       "ledger. Example: outpost-hub user remove ann --db hub.sqlite")
    ur.add_argument("name", help="the user to remove")
    common(ur, schema=None)
    ut = us.add_parser(
        "token", help="a user's named tokens: one a device, each revoked alone",
        description="A user may have several tokens, one a device, each with a name: a lost "
        "laptop's token is revoked alone, the user's other devices keep working. The audit "
        "records the user, whichever token an edit came with. `user add`'s token is the "
        f"user's first one (named {FIRST!r} here).",
        epilog="examples:\n  outpost-hub user token add ann --name laptop2 --db hub.sqlite\n"
        "  outpost-hub user token list ann --db hub.sqlite\n"
        "  outpost-hub user token revoke ann laptop1 --db hub.sqlite   # the lost laptop",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    uts = ut.add_subparsers(dest="tcmd", required=True)
    uta = uts.add_parser("add", help="give a user another token; prints it once",
                         description="Give USER another token, named --name (the device "
                         "it is for), and print it once: `outpost connect URL "
                         "--token=TOKEN` on that device. A running hub accepts it at once.")
    uta.add_argument("user", help="the user (made by `user add`)")
    uta.add_argument("--name", required=True,
                     help="the token's name, e.g. the device: laptop2 (1 to 100 characters, "
                     "unique among the user's tokens)")
    common(uta, schema=None)
    utl = uts.add_parser("list", help="list a user's tokens (names, never the tokens)",
                         description="List USER's tokens: name, when it was made (UTC), and "
                         "'revoked' for a first token revoked; one a line.")
    utl.add_argument("user")
    common(utl, schema=None)
    utr = uts.add_parser("revoke", help="revoke one of a user's tokens",
                         description="Revoke one token of USER: it stops working within 2 s "
                         "and the connections made with it are closed (1008) on every hub; "
                         "the user's other tokens keep working, and their edits stay in the "
                         "ledger.")
    utr.add_argument("user")
    utr.add_argument("name", help=f"the token's name, as `user token list` shows it ({FIRST!r}: "
                     "the token of `user add`; `user add --replace` gives a new one)")
    common(utr, schema=None)

    v = sub.add_parser(
        "verify", help="replay the event log and compare with the state",
        description="Replay the ledger's events and compare them with its state tables; "
        "print one line per difference and exit 1 if any, else `ok` and exit 0. Read only: "
        "it may run while the hub serves. Example: outpost-hub verify --db hub.sqlite")
    common(v)
    b = sub.add_parser(
        "backup", help="write the events and audit to FILE",
        description="Write the ledger of --db (its events, audit, transaction uids and "
        "schema) to FILE, an SQLite file, in one consistent snapshot: the hub may keep "
        "serving meanwhile. FILE is written to a temporary file beside it and renamed into "
        "place when complete; an existing FILE is replaced only when it is an earlier "
        "Outpost backup (anything else is refused, nothing written). Restore it with "
        "`outpost-hub restore FILE --db NEW`; docs/operations.md, \"Backup, restore and "
        "verify\".")
    common(b)
    b.add_argument("file", help="the backup file to write, e.g. /backups/outpost-2026-11-27."
                   "ledger (an SQLite file; not the live --db)")
    r = sub.add_parser(
        "restore", help="restore a backup FILE into an empty database",
        description="Restore FILE (made by `outpost-hub backup`) into --db, a new empty "
        "database (an SQLite file or a postgresql:// URL), checked before and after; a "
        "database that already holds a ledger is refused, changing nothing. The schema "
        "file must accept every event of the backup: schema changes are add-only (a field, "
        "enum value or model any event set cannot be removed or renamed: leave it in the "
        "schema and stop using it; docs/schema.md, \"Changing a schema\"); stop every hub "
        "before the backup of a schema change. Satellites that synced after the "
        "backup was made hold revisions the restored hub lost: they stop syncing and say "
        "how to carry their edits to a new data directory (`outpost carry OLD --data NEW "
        "--accepted`, with --rejected for their conflicts not resolved yet).")
    common(r, schema="backup")
    r.add_argument("file", help="the backup file to read (from `outpost-hub backup`; only "
                   "read)")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``outpost-hub``; returns the exit status."""
    args = _parser().parse_args(argv)
    if args.cmd is None:
        args = _parser().parse_args(["serve", *(argv or [])])
    logging.basicConfig(level=args.log_level, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    install_redaction(*logging.getLogger().handlers)  # no token in any log line, any level
    out = sys.stdout
    try:
        if args.cmd == "serve":
            # one line per kind of repeated warning (a full disk refuses every publish): the
            # Hub filters its own loggers from start to stop (Hub's repeat_window)
            return asyncio.run(_serve(args))
        sys.stdout = _PipeSafe(out)
        rc = _user(args) if args.cmd == "user" else _ops(args)
        sys.stdout.flush()
        return rc
    except OutpostError as exc:
        print(f"outpost-hub: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 0
    finally:
        sys.stdout = out


class _PipeSafe:
    """stdout whose reader may go away (`outpost-hub restore ... | head -1`): the command
    goes on to its end, its output from then on to /dev/null, no traceback (session 15: a
    BrokenPipeError traceback, and a restore stopped at its "restore done" line, before it
    copied the users file)."""

    def __init__(self, stream: Any):
        self._stream = stream

    def write(self, text: str) -> int:
        try:
            return int(self._stream.write(text))
        except BrokenPipeError:
            self._gone()
            return len(text)

    def flush(self) -> None:
        try:
            self._stream.flush()
        except BrokenPipeError:
            self._gone()

    def _gone(self) -> None:
        # the buffered text goes to /dev/null at the next flush (the interpreter's last too)
        os.dup2(os.open(os.devnull, os.O_WRONLY), self._stream.fileno())

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


def _user_opts(args: argparse.Namespace) -> str:
    """The options that make ``outpost-hub user`` use the same users file as ``args``."""
    if args.users:
        return f"--users {shlex.quote(args.users)}"
    return f"--db {shlex.quote(safe_url(args.db))}"


def _user(args: argparse.Namespace) -> int:
    path, warning = users_file(args.db, args.users, check=True)
    if warning:
        print(f"outpost-hub: warning: {warning}", file=sys.stderr)
    # list and remove create nothing: a mistyped --db made an empty users file and said
    # "no user named …"
    users = Users(path, create=args.ucmd == "add")
    try:
        if args.ucmd == "add":
            old = next((u for u in users.list() if u.name == args.name), None)
            if old is not None and not args.replace:
                print(f"outpost-hub: user {args.name!r} ({old.role}) already exists in "
                      f"{users.path}: add --replace to give it a new token (and --role); its "
                      "old token then stops working within 2 s (its connections are closed)",
                      file=sys.stderr)
                return 1
            token = users.add(args.name, args.role)
            done = ("replaced; the old token stops working within 2 s" if old is not None
                    else "added")
            print(f"user {args.name} ({args.role}) {done} in {users.path}; a hub started with "
                  f"{_user_opts(args)} accepts it; token (shown once, keep it secret):")
            print(token)
            return 0
        if args.ucmd == "token":
            return _token(users, args)
        if args.ucmd == "remove":
            if not users.remove(args.name):
                print(f"outpost-hub: no user named {args.name!r} in {users.path}",
                      file=sys.stderr)
                return 1
            print(f"removed user {args.name} from {users.path}")
            return 0
        listed = users.list()
        for u in listed:
            print(f"{u.name}\t{u.role}")
        print(f"{len(listed)} users in {users.path}", file=sys.stderr)
        return 0
    finally:
        users.close()


def _token(users: Users, args: argparse.Namespace) -> int:
    """``outpost-hub user token add|list|revoke``."""
    if args.tcmd == "add":
        try:
            token = users.add_token(args.user, args.name)
        except ConfigError as exc:
            print(f"outpost-hub: {exc}", file=sys.stderr)
            return 1
        print(f"token {args.name} of user {args.user} added in {users.path}; a hub started "
              f"with {_user_opts(args)} accepts it; token (shown once, keep it secret):")
        print(token)
        return 0
    listed = users.tokens(args.user)
    if listed is None:
        print(f"outpost-hub: no user named {args.user!r} in {users.path}", file=sys.stderr)
        return 1
    if args.tcmd == "list":
        for t in listed:
            made = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(t.created))
            print(f"{t.name}\t{made}" + ("\trevoked" if t.revoked else ""))
        n = len(listed)
        print(f"{n} token{'' if n == 1 else 's'} of user {args.user} in {users.path}",
              file=sys.stderr)
        return 0
    if not users.revoke_token(args.user, args.name):
        names = ", ".join(t.name for t in listed if not t.revoked) or "none"
        print(f"outpost-hub: user {args.user!r} has no token named {args.name!r} in "
              f"{users.path} (not revoked yet: {names})", file=sys.stderr)
        return 1
    print(f"revoked token {args.name} of user {args.user} in {users.path}: it stops working "
          "within 2 s (its connections are closed); the user's other tokens keep working")
    return 0


def _load_schema(path: str) -> Project:
    """``--schema``; its default, the demo schema, is package data (in a clone and in an
    installed wheel since session 14); an installation without it (files removed, or a wheel
    built before session 14) is told to give a schema."""
    if path == str(DEMO_SCHEMA) and not DEMO_SCHEMA.exists():
        raise ConfigError("no --schema given, and its default, the demo schema "
                          f"({DEMO_SCHEMA}), is missing from this installation: give your "
                          "schema, --schema FILE (or reinstall Outpost); nothing was created")
    return load_project(path)


def _project(args: argparse.Namespace) -> tuple[Project, str]:
    """The schema ``args`` serve, verify, back up or restore with, and how it was chosen
    (named in the ready line): ``--schema FILE`` when given (refused when the ledger holds
    another schema: said with both names and the fix), else the schema the backup (restore)
    or the ledger holds, else (a new ledger) the demo schema. A team hub's commands without
    ``--schema`` were refused against the demo schema, and the advised backup failed the same
    way (firstday review 14)."""
    from core.ledger import ops

    if args.cmd == "restore":
        if args.schema is not None:
            return _load_schema(args.schema), args.schema
        project = ops.backup_project(args.file)
        return project, f"the backup's own (project {project.name!r})"
    # verify / backup of no ledger: said (no such file, no ledger) before any schema
    stored = stored_project(args.db, required=args.cmd != "serve")
    if args.schema is None:
        if stored is not None:
            return stored, f"the ledger's own (project {stored.name!r})"
        # a new ledger; or a PostgreSQL database not reached, whose open names why
        return _load_schema(str(DEMO_SCHEMA)), f"{DEMO_SCHEMA} (the demo schema)"
    project = _load_schema(args.schema)
    if stored is not None and stored.version != project.version:
        raise SchemaError(
            f"--schema {args.schema} (project {project.name!r}, version {project.version}) is "
            f"not the schema the ledger {safe_url(args.db)} was made with (project "
            f"{stored.name!r}, version {stored.version}): leave out --schema to use the "
            "ledger's own; to change its schema, back it up and restore the backup into a new "
            "database with the new schema (`outpost-hub restore FILE --db NEW --schema "
            f"{args.schema}`); nothing was changed")
    return project, args.schema


def _ops(args: argparse.Namespace) -> int:
    from core.ledger import ops

    project, _ = _project(args)
    if args.cmd == "restore":
        # the backup first: one that is not a backup, or of a newer ledger format, is refused
        # before anything (a users file, the target's directory) is looked at or made
        notes = ops.backup_notes(args.file)
        db = args.db if "://" in args.db else "sqlite:///" + str(
            Path(args.db).expanduser().resolve())
        target = users_file(args.db, args.users)[0]
        file = None if is_postgres(db) else sqlite_file(db)
        problem = target_problem(target, file)
        if problem:  # before the restore: a refused --users changes nothing
            raise ConfigError(problem)
        if "://" not in args.db:
            Path(args.db).expanduser().resolve().parent.mkdir(parents=True, exist_ok=True)
        unsendable: list[str] = []  # values no reply can carry (stored before session 12)
        restored = ops.restore(args.file, db, project, unsendable)
        rev, lid, fmt = restored.rev(), restored.ledger_id, restored.ledger_format
        restored.close()
        print(f"restore done: {args.file} -> {safe_url(args.db)} (rev {format_rev(rev)}, "
              f"ledger {lid}, ledger format {fmt})")
        if unsendable:
            # said at the restore, not first by every satellite stopping (1011) once served
            # (wire review 13)
            n = len(unsendable)
            print(f"outpost-hub restore: warning: the restored ledger holds {n} "
                  f"value{'' if n == 1 else 's'} nested too deep for any reply (a hub "
                  "before session 12 stored them): served as it is, every satellite whose "
                  "catch-up reaches one stops with 1011. Repair it before serving it: "
                  "docs/operations.md, \"Values nested too deep\" (fix the named values in "
                  f"{args.file}, then restore it into a new, empty database):",
                  file=sys.stderr)
            for line in unsendable[:20]:
                print(f"  {line}", file=sys.stderr)
            if len(unsendable) > 20:
                print(f"  and {len(unsendable) - 20} more (`outpost-hub verify --db ...` names "
                      "every one)", file=sys.stderr)
        # the users stay with the ledger: its new users file is another file (per ledger)
        print(carry_users(notes.get("users_file"), target, safe_url(args.db), lid,
                          notes.get("users_digest"), file))
        return 0
    # an existing ledger only: a mistyped --db made an empty one and reported success
    ledger = open_ledger(args.db, project, create=False)
    try:
        if args.cmd == "verify":
            deep: list[str] = []  # values nested past the limit, still sent
            problems = ops.verify(ledger, deep)
            for line in problems:
                print(line)
            for line in deep + ops.key_notes(ledger):  # not problems: the exit stays 0
                print(line)
            print(_format_line(ledger.ledger_format), file=sys.stderr)
            print("ok" if not problems else
                  f"{len(problems)} problem{'' if len(problems) == 1 else 's'}")
            return 0 if not problems else 1
        users = users_file(args.db, args.users)[0]
        # the path looked at is recorded even when no file is there (a backup made from
        # another machine, ops review 12): restore then names it instead of guessing why
        info = ops.backup(ledger, args.file, {"users_file": str(users.resolve()),
                                              "users_digest": users_digest(users)})
        print(f"backup done: {info.path} ({info.events} events, rev {format_rev(info.rev)}, "
              f"ledger {ledger.ledger_id}, ledger format {info.ledger_format})")
        if not users.is_file():
            # said, not warned (a hub served with --auth none has no users file, and a cron
            # job mailing stderr got a warning every night; muser review 12)
            print(f"users: none recorded (no users file at {users}: a hub served with --auth "
                  "none has none; if this hub has users, the backup was made on another "
                  "machine or with another HOME: give its users file with --users FILE)")
        return 0
    finally:
        ledger.close()


def _format_line(fmt: int | None) -> str:
    """``verify``'s line (on stderr: stdout stays ``ok``) naming the ledger's format."""
    from core.ledger.tables import LEDGER_FORMAT

    have = ("not recorded (no Outpost of session 13 or later served it yet; read as 1)"
            if fmt is None else str(fmt))
    return (f"ledger format {have}; this Outpost reads formats up to {LEDGER_FORMAT} "
            "(a backup records its format; a restore of a newer one is refused)")


def _tls(args: argparse.Namespace) -> ssl.SSLContext | None:
    if not args.tls_cert and not args.tls_key:
        return None
    if not (args.tls_cert and args.tls_key):
        raise ConfigError("TLS needs both --tls-cert and --tls-key")
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    try:
        ctx.load_cert_chain(args.tls_cert, args.tls_key)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(f"cannot load TLS certificate {args.tls_cert} / key "
                          f"{args.tls_key}: {exc}") from exc
    return ctx


METRICS_TOKEN_MIN = 16
"""Fewest characters of a scrape token (``--metrics-token-file``)."""


def _metrics_token(path: str | None) -> str | None:
    """The scrape token of ``--metrics-token-file`` (its first line, stripped), ``None``
    without one; a file that cannot be read or holds a short token is a ConfigError."""
    if path is None:
        return None
    try:
        with open(path, encoding="utf-8") as f:
            token = f.readline().strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"--metrics-token-file {path}: cannot read it ({exc}); give a "
                          "readable file holding the scrape token") from exc
    if len(token) < METRICS_TOKEN_MIN or any(c.isspace() for c in token):
        raise ConfigError(f"--metrics-token-file {path}: its first line must be one token "
                          f"of at least {METRICS_TOKEN_MIN} characters without spaces (make "
                          "one with `openssl rand -hex 32 > FILE`)")
    return token


async def _serve(args: argparse.Namespace) -> int:
    if args.auth == "none":
        check_name(args.user)  # the audit user of every publish
    if args.auth == "none" and not is_loopback(args.host):
        raise ConfigError(f"--auth none with --host {args.host}: without tokens the hub only "
                          "listens on loopback; add users with `outpost-hub user add NAME`")
    if args.auth == "none" and args.trusted_proxy:
        parse_proxies(args.trusted_proxy)  # a bad address is named first
        raise ConfigError(
            "--auth none with --trusted-proxy: a hub without tokens takes everyone who reaches "
            "it as a writer, and behind a proxy that is anyone the proxy lets through (the "
            "forwarded address is only logged). Add users (`outpost-hub user add NAME "
            "--role writer`) and serve with tokens, or drop --trusted-proxy for a hub on "
            "loopback used from this machine only")
    # read before anything is made (the hub takes it from args)
    args.metrics_token = metrics_token = _metrics_token(args.metrics_token_file)
    if args.metrics == "token" and metrics_token is None:
        raise ConfigError(NO_METRICS_TOKEN)
    if args.auth != "none":
        users_file(args.db, args.users, check=True)  # a --users naming the ledger: before it opens
    # The writer thread (SQL ledger) and the event loop share the GIL; with the default 5 ms
    # switch interval a commit in progress delays pushes by up to 5 ms per hand-over
    # (measured by bench/hub.py). A shorter interval keeps the loop responsive.
    sys.setswitchinterval(0.0005)
    project, args.schema_from = _project(args)  # named in the ready line
    if args.rate <= 0 or args.burst < 1:
        raise ConfigError(f"--rate {args.rate:g} --burst {args.burst}: the rate must be above 0 "
                          "and the burst at least 1")
    if args.max_message < MIN_MAX_MESSAGE:
        raise ConfigError(f"--max-message {args.max_message}: the least the hub takes is "
                          f"{MIN_MAX_MESSAGE} bytes (64 KiB); the default is {_DEF.max_message}")
    if not 0 <= args.port <= 65535:
        raise ConfigError(f"--port {args.port}: a port is 1 to 65535 (0 picks a free one)")
    if args.max_connections < 1:
        raise ConfigError(f"--max-connections {args.max_connections}: at least 1 (the "
                          f"default is {_DEF.max_connections})")
    per_user = args.max_connections_per_user
    if per_user is None:
        per_user = max(1, args.max_connections // 10)
    elif per_user < 0:
        raise ConfigError(f"--max-connections-per-user {per_user}: 0 or more (0: no cap; the "
                          "default is a tenth of --max-connections)")
    for opt in ("max_monitors", "max_monitor_keys", "max_watch_keys"):
        if getattr(args, opt) < 0:
            raise ConfigError(f"--{opt.replace('_', '-')} {getattr(args, opt)}: 0 or more (0: "
                              f"no evt.mon at all; the default is {getattr(_DEF, opt)})")
    if not args.idle_timeout >= 0:  # also NaN
        raise ConfigError(f"--idle-timeout {args.idle_timeout:g}: seconds, 0 or more (0: "
                          "never close an idle connection)")
    if args.max_message < MAX_TRANS_BYTES + 4096:
        log.warning("--max-message %d is below the largest edit an Outpost satellite makes "
                    "(%d bytes encoded): a satellite shows a larger one to its user as an "
                    "error on that edit and never sends it", args.max_message, MAX_TRANS_BYTES)
    limits = Limits(max_message=args.max_message, max_connections=args.max_connections,
                    max_connections_per_user=per_user,
                    idle_timeout=args.idle_timeout, compression=args.compression,
                    rate=args.rate, burst=args.burst, max_monitors=args.max_monitors,
                    max_monitor_keys=args.max_monitor_keys,
                    max_watch_keys=args.max_watch_keys)
    tls = _tls(args)  # before the ledger: a bad certificate creates nothing
    proxies = TrustedProxies(parse_proxies(args.trusted_proxy))  # a bad one creates nothing
    try:
        check_port(args.host, args.port)  # a port in use creates nothing either
    except socket.gaierror as exc:
        raise _unresolved(args.host, exc) from exc
    except OSError as exc:
        raise _cannot_listen(args, exc) from exc
    lock = None
    db_file = None if "://" in args.db and not args.db.startswith("sqlite:") else sqlite_file(
        args.db)
    if db_file is not None:
        db_file = db_file.resolve()
        check_hub_sqlite(db_file)  # never a satellite's replica or another program's file
        db_file.parent.mkdir(parents=True, exist_ok=True)
        lock = HubLock.acquire(db_file)  # one hub process per SQLite ledger
    elif args.db.startswith(("postgresql", "postgres:")):
        check_hub_pg(args.db)  # never another program's database
    try:
        return await _serve_locked(args, project, limits, tls, proxies)
    finally:
        if lock is not None:
            lock.release()


def _unresolved(host: str, exc: OSError) -> ConfigError:
    return ConfigError(f"--host {host}: this machine cannot resolve that name ({exc}): "
                       "give an address of this machine (0.0.0.0: every interface) or a "
                       "name that resolves to one")


def _cannot_listen(args: argparse.Namespace, exc: OSError) -> ConfigError:
    return ConfigError(f"cannot listen on {args.host}:{args.port}: {exc}: stop what uses "
                       "it, or choose another --port (0 picks a free one)")


async def _serve_locked(args: argparse.Namespace, project: Project, limits: Limits,
                        tls: ssl.SSLContext | None, proxies: TrustedProxies) -> int:
    ledger = open_hub_ledger(args.db, project)
    try:
        check_not_restoring(ledger)  # a restore that did not finish is never served
    except OutpostError:
        ledger.close()
        raise
    if args.seed_demo:
        n = seed_demo(ledger)
        if n:
            log.info("seeded %d demo transactions", n)
    users = None
    if args.auth != "none":
        path, warning = users_file(args.db, args.users, check=True)
        if warning:
            log.warning("%s", warning)
        users = Users(path)
    if users is None:
        log.warning("AUTH DISABLED (--auth none): every connection is user %r; loopback only",
                    args.user)
    elif not users.list():
        # `user add` without this --db writes the users file beside ITS default database
        log.warning("no users yet in %s: add one with `outpost-hub user add NAME %s` (token "
                    "auth; `user` takes the same --db or --users as `serve`)%s", users.path,
                    _user_opts(args), old_users_files(users.path, ledger.ledger_id))
    if proxies:
        log.info("client addresses: from X-Forwarded-For on connections from %s "
                 "(--trusted-proxy); from the connection itself otherwise",
                 ", ".join(str(n) for n in proxies.nets))
    hub = Hub(ledger, host=args.host, port=args.port, users=users, anon_user=args.user,
              limits=limits, origins=args.allow_origin, ssl=tls, close_ledger=True,
              trusted_proxies=proxies, metrics=args.metrics,
              metrics_token=args.metrics_token)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    got: list[str] = []

    def on_signal(sig: signal.Signals) -> None:
        got.append(sig.name)
        stop.set()

    # SIGHUP (a closed terminal or ssh session, `systemctl kill -s HUP`) drains like SIGTERM
    # instead of killing the hub with its in-flight publishes unanswered; a hub started
    # with `nohup` (SIGHUP ignored) keeps ignoring it, so it outlives the session as meant
    hup = getattr(signal, "SIGHUP", None)
    if hup is not None and signal.getsignal(hup) is signal.SIG_IGN:
        hup = None
    for sig in (signal.SIGINT, signal.SIGTERM, hup):
        if sig is not None:
            with contextlib.suppress(NotImplementedError):
                loop.add_signal_handler(sig, on_signal, sig)
    try:
        url = await hub.start()
    except socket.gaierror as exc:
        ledger.close()
        raise _unresolved(args.host, exc) from exc
    except OSError as exc:
        ledger.close()
        raise _cannot_listen(args, exc) from exc
    listener = None
    if is_postgres(args.db):
        # scale-out: learn about revisions published through other hubs (hubserver.cluster)
        listener = ClusterListener(args.db, hub.request_catch_up)
        try:
            await listener.start()
        except OutpostError:
            await hub.stop()
            raise
        hub.cluster = listener  # /healthz, /metrics; the database check wakes it if behind
    settle_heap(GC_YOUNG)  # core.heap: fewer GIL-holding full collections while serving
    where = safe_url(args.db)  # no password (``user:PW@`` or ``?password=``)
    auth = args.auth if users is None else f"{args.auth}, users {users.path}"
    print(f"outpost-hub ready: {url} (db {where}, schema {args.schema_from}, auth {auth}, "
          f"ledger {ledger.ledger_id})", flush=True)
    if users is not None:
        log.info("tokens are checked against the users file %s", users.path)
        if not args.tls_cert and not is_loopback(args.host) and not args.trusted_proxy:
            # once, at start: clients' tokens and every record cross the network in clear
            log.warning("--host %s without --tls-cert: clients send their tokens and "
                        "receive every record in clear text over the network; serve TLS "
                        "(--tls-cert/--tls-key) or put a TLS proxy in front (with "
                        "--trusted-proxy; docs/deployment.md)", args.host)
    try:
        await stop.wait()
    finally:
        log.info("shutting down%s: finishing in-flight publishes",
                 f" ({got[0]})" if got else "")
        if listener is not None:
            await listener.stop()
        await hub.stop()
        if users is not None:
            users.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
