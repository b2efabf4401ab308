"""The headless ``outpost`` commands: a scriptable satellite without the GUI.

``desktop.cli`` dispatches ``connect|pub|sync|status|show|history|conflicts|resolve|import|
export`` here (:func:`add_commands` + :func:`run`); ``python -m desktop.headless ...`` works
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
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from core.errors import ConfigError, OutpostError, ValidationError
from core.heap import GC_YOUNG, settle_heap
from core.ids import new_key
from core.model import Action, Cmd
from core.revision import format_rev
from core.satellite.api import Keep, ReceiptState
from core.satellite.config import DataDir
from core.satellite.satellite import Satellite
from core.wire import dumps, enc_action

__all__ = ["COMMANDS", "add_commands", "main", "run"]

COMMANDS = ("connect", "pub", "sync", "status", "show", "history", "conflicts", "resolve",
            "import", "export")
IMPORT_BATCH = 500
IMPORT_BYTES = 256 * 1024  # encoded actions per transaction at most (a long-text CSV)


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", metavar="DIR", default=None,
                   help="the satellite's data directory (default: the user data directory)")
    p.add_argument("--json", action="store_true", help="machine-readable output")


def add_commands(sub: Any) -> None:
    """Register the headless commands on an argparse ``subparsers`` object."""
    p = sub.add_parser("connect", help="store the hub URL and token; fetch the schema")
    p.add_argument("url")
    p.add_argument("--token", default=None)
    p.add_argument("--timeout", type=float, default=10.0)
    _common(p)
    p = sub.add_parser("pub", help="queue a change (works offline)")
    p.add_argument("topic")
    p.add_argument("key", help="record key; '-' with new makes a new key")
    p.add_argument("cmd", choices=["new", "mod", "del"])
    p.add_argument("fields", nargs="*", metavar="field=value")
    _common(p)
    p = sub.add_parser("sync", help="sync with the hub")
    p.add_argument("--once", action="store_true",
                   help="push the queue, catch up and exit (non-zero if the hub is unreachable)")
    p.add_argument("--timeout", type=float, default=30.0)
    _common(p)
    p = sub.add_parser("status", help="replica and queue status")
    _common(p)
    p = sub.add_parser("show", help="records as the user sees them")
    p.add_argument("topic")
    p.add_argument("key", nargs="?")
    _common(p)
    p = sub.add_parser("history", help="changes of one record")
    p.add_argument("topic")
    p.add_argument("key")
    _common(p)
    p = sub.add_parser("conflicts", help="the conflict inbox")
    _common(p)
    p = sub.add_parser("resolve", help="resolve a rejected transaction")
    p.add_argument("uid")
    p.add_argument("--keep", choices=["mine", "theirs"], required=True)
    _common(p)
    p = sub.add_parser("import", help="import a CSV file (one transaction per batch)")
    p.add_argument("topic")
    p.add_argument("file")
    _common(p)
    p = sub.add_parser("export", help="export a topic as CSV")
    p.add_argument("topic")
    _common(p)


def _out(args: argparse.Namespace, obj: Any, text: str) -> None:
    if args.json:
        print(json.dumps(obj, default=str))
    else:
        print(text)


def _open(args: argparse.Namespace) -> Satellite:
    """The satellite, for a command that changes it: takes the directory's lock. A directory
    that does not exist or has no schema yet is refused before anything is created in it."""
    dd = DataDir(args.data)
    _need_schema(dd)
    return Satellite(dd)


def _read(args: argparse.Namespace) -> Satellite:
    """The satellite, for a command that only reads: opened read-only, without the lock, so it
    works while the app or `outpost sync` has the directory open, and changes nothing."""
    return Satellite(DataDir(args.data), read_only=True)


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
        if not sep:
            raise ConfigError(f"{item!r} is not field=value: write e.g. name=Ridge")
        f = model.field(name)
        if f is None:
            from core.schema import did_you_mean

            raise ValidationError(f"unknown field {name!r} for {topic}"
                                  f"{did_you_mean(name, model.field_names())}")
        try:
            out[name] = f.parse_text(text)
        except ValueError as exc:
            raise ValidationError(str(exc)) from exc
    return out


def _cmd_connect(args: argparse.Namespace) -> int:
    from core.satellite.client import fetch_project

    dd = DataDir(args.data)
    lock = dd.lock()  # not under a running app or `outpost sync`: they would keep the old hub
    try:
        cfg = dd.load_config().with_hub(args.url, args.token)
        dd.save_config(cfg)
        fetched = False
        err = ""
        try:
            proj = asyncio.run(fetch_project(args.url, cfg.token, args.timeout))
            have = dd.load_project()
            if have is not None and have.version != proj.version and dd.db_file.exists():
                err = (f"the hub's schema version {proj.version} differs from this data "
                       f"directory's {have.version}: kept the local one; use a new --data DIR")
            else:
                dd.save_project(proj)
                fetched = True
        except OutpostError as exc:
            err = str(exc)
    finally:
        lock.release()
    _out(args, {"hub": args.url, "schema": fetched, "error": err},
         f"hub set to {args.url}" + ("; schema fetched" if fetched else
                                     f"; schema not fetched: {err}"))
    if err and dd.load_project() is None:
        print(f"outpost: {err}", file=sys.stderr)
        return 1
    return 0


def _cmd_pub(args: argparse.Namespace) -> int:
    sat = _open(args)
    try:
        key = args.key
        if key == "-":
            if args.cmd != "new":
                raise ConfigError("'-' as KEY makes a new key and only works with new")
            key = new_key()
        arg = _parse_fields(sat, args.topic, args.fields)
        cmd = Cmd(args.cmd)
        uid = sat.pub([Action(args.topic, key, cmd, None if cmd == Cmd.DEL else arg)])
    finally:
        sat.close()
    _out(args, {"key": key, "uid": uid}, f"{key} {uid}")
    return 0


def _cmd_sync(args: argparse.Namespace) -> int:
    from core.satellite.client import SyncClient

    dd = DataDir(args.data)
    dd.check_readable()
    cfg = dd.load_config()
    if not cfg.hub:
        raise ConfigError(f"no hub set for {dd.path}: run `outpost connect URL` first")
    lock = dd.lock()  # before the schema is stored: nothing changes under a running app
    try:
        project = dd.load_project()
        if project is None:
            from core.satellite.client import fetch_project

            project = asyncio.run(fetch_project(cfg.hub, cfg.token, args.timeout))
        sat = Satellite(dd, project, lock=lock)
    except BaseException:
        lock.release()
        raise
    # the pending queue is loaded: keep it and start-up out of full collections, which held
    # the GIL for 150-450 ms per 10,000-edit replay (core.heap, docs/benchmarks.md Sync (b))
    settle_heap(GC_YOUNG)
    try:
        client = SyncClient(sat, cfg.hub, cfg.token)
        if args.once:
            asyncio.run(client.sync_once(args.timeout))
        else:
            with contextlib.suppress(KeyboardInterrupt):
                asyncio.run(client.run())
        st = sat.status()
    finally:
        sat.close()
    _out(args, _status_dict(st), f"synced: rev {format_rev(st.rev)}, {st.pending} pending, "
                                 f"{st.conflicts} conflicts")
    return 0


def _status_dict(st: Any) -> dict[str, Any]:
    return {
        "rev": format_rev(st.rev), "local_rev": format_rev(st.local_rev),
        "hub_rev": format_rev(st.hub_rev), "pending": st.pending, "conflicts": st.conflicts,
        "online": st.online, "last_sync": format_rev(st.last_sync) if st.last_sync else None,
        "hub": st.hub, "mig": st.mig, "last_error": st.last_error,
    }


def _cmd_status(args: argparse.Namespace) -> int:
    sat = _read(args)
    try:
        d = _status_dict(sat.status())
    finally:
        sat.close()
    _out(args, d, "\n".join(f"{k}: {v}" for k, v in d.items()))
    return 0


def _cmd_show(args: argparse.Namespace) -> int:
    sat = _read(args)
    try:
        if args.key:
            rv = sat.record(args.topic, args.key)
            if rv is None or rv.fields is None:
                raise ValidationError(f"no record {args.topic} {args.key}: see "
                                      f"`outpost show {args.topic}` for the keys")
            views = [rv]
        else:
            views = sat.records(args.topic)
    finally:
        sat.close()
    rows = [{"key": v.key, "state": "conflict" if v.conflict else
             "pending" if v.pending else "confirmed", "fields": dict(v.fields or {})}
            for v in views]
    _out(args, rows if not args.key else rows[0],
         "\n".join(f"{r['key']}\t{r['state']}\t{json.dumps(r['fields'])}" for r in rows))
    return 0


def _cmd_history(args: argparse.Namespace) -> int:
    sat = _read(args)
    try:
        hist = sat.history(args.topic, args.key)
    finally:
        sat.close()
    rows: list[dict[str, Any]] = [
        {"rev": format_rev(h.rev), "usr": h.usr, "cmd": h.cmd.value, "fields": list(h.fields),
         "arg": h.arg} for h in hist]
    _out(args, rows, "\n".join(f"{format_rev(h.rev)}\t{h.usr or '-'}\t{h.cmd.value}\t"
                               f"{','.join(h.fields)}" for h in hist))
    return 0


def _cmd_conflicts(args: argparse.Namespace) -> int:
    sat = _read(args)
    try:
        recs = [r for r in sat.receipts([ReceiptState.REJECTED, ReceiptState.PENDING])
                if r.state == ReceiptState.REJECTED or r.err]
    finally:
        sat.close()
    rows = [{"uid": r.uid, "state": r.state.value, "err": r.err,
             "records": [f"{a.top} {a.key}" for a in r.acts],
             "conflicts": [{"top": c.top, "key": c.key, "reason": c.reason,
                            "fields": list(c.fields), "theirs": c.theirs, "usr": c.usr}
                           for c in r.conflicts]} for r in recs]
    _out(args, rows, "\n".join(f"{r['uid']}\t{r['state']}\t{r['err']}" for r in rows)
         or "no conflicts")
    return 0


def _cmd_resolve(args: argparse.Namespace) -> int:
    sat = _open(args)
    try:
        new = sat.resolve(args.uid, Keep(args.keep))
    finally:
        sat.close()
    _out(args, {"uid": args.uid, "resolved_by": new or "theirs"},
         f"resolved {args.uid}" + (f" by {new}" if new else " (kept theirs)"))
    return 0


def _cmd_import(args: argparse.Namespace) -> int:
    sat = _open(args)
    uids: list[str] = []
    n = 0
    try:
        model = sat.project.model(args.topic)
        try:
            fh = Path(args.file).open(newline="", encoding="utf-8")  # noqa: SIM115
        except OSError as exc:
            raise ConfigError(f"cannot read {args.file}: {exc}") from exc
        with fh:
            reader = csv.DictReader(fh)
            batch: list[Action] = []
            size = 0
            for line, row in enumerate(reader, start=2):
                key = (row.pop("key", "") or "").strip() or new_key()
                try:
                    arg = _parse_fields(sat, args.topic,
                                        [f"{k}={v}" for k, v in row.items() if k])
                except OutpostError as exc:
                    raise ValidationError(f"{args.file} line {line}: {exc}") from exc
                arg = {k: v for k, v in arg.items() if v is not None}
                exists = sat.record(args.topic, key) is not None
                act = Action(model.topic, key, Cmd.MOD if exists else Cmd.NEW, arg)
                grow = len(dumps(enc_action(act))) + 1
                if batch and size + grow > IMPORT_BYTES:
                    uids.append(sat.pub(batch))
                    n += len(batch)
                    batch, size = [], 0
                    if not args.json:
                        print(f"imported {n} rows", file=sys.stderr)
                batch.append(act)
                size += grow
                if len(batch) >= IMPORT_BATCH:
                    uids.append(sat.pub(batch))
                    n += len(batch)
                    batch, size = [], 0
                    if not args.json:
                        print(f"imported {n} rows", file=sys.stderr)
            if batch:
                uids.append(sat.pub(batch))
                n += len(batch)
    finally:
        sat.close()
    _out(args, {"rows": n, "uids": uids}, f"imported {n} rows in {len(uids)} transactions")
    return 0


def _cmd_export(args: argparse.Namespace) -> int:
    sat = _read(args)
    try:
        names = sat.project.model(args.topic).field_names()
        views = sat.records(args.topic)
    finally:
        sat.close()
    w = csv.writer(sys.stdout, lineterminator="\n")
    w.writerow(["key", *names])
    for v in views:
        f = v.fields or {}
        w.writerow([v.key, *("" if f.get(n) is None else
                             json.dumps(f[n]) if isinstance(f[n], dict | list | bool)
                             else f[n] for n in names)])
    return 0


_HANDLERS = {
    "connect": _cmd_connect, "pub": _cmd_pub, "sync": _cmd_sync, "status": _cmd_status,
    "show": _cmd_show, "history": _cmd_history, "conflicts": _cmd_conflicts,
    "resolve": _cmd_resolve, "import": _cmd_import, "export": _cmd_export,
}


def run(args: argparse.Namespace) -> int:
    """Run a parsed headless command; errors go to stderr, the exit code is returned."""
    try:
        return _HANDLERS[args.command](args)
    except OutpostError as exc:
        print(f"outpost: {exc}", file=sys.stderr)
        return 1


def main(argv: Sequence[str] | None = None) -> int:
    """Standalone entry: ``python -m desktop.headless COMMAND ...``."""
    parser = argparse.ArgumentParser(prog="outpost", description="Outpost satellite (headless)")
    sub = parser.add_subparsers(dest="command", required=True)
    add_commands(sub)
    args = parser.parse_args(argv)
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
