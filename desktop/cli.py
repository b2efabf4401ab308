"""``outpost``: the desktop app and the headless satellite commands.

::

    outpost                      open the app with the last profile (first run: a dialog)
    outpost demo [--two]         start a local demo hub and open the app connected to it
    outpost app [--data DIR] [--hub URL] [--token TOKEN] [--profile NAME]
    outpost connect|pub|sync|status|show|history|conflicts|resolve|discard|import|export|carry

This module imports no Qt: the headless commands (``desktop.headless``) run without PySide6;
the GUI modules are imported only when a window is opened.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

__all__ = ["main"]

_EPILOG = """\
Headless commands (no GUI; every one takes --data DIR and --json):
  connect URL      store the hub URL and token, fetch the schema
  pub              queue a change (works offline)
  sync             sync with the hub (--once: push, catch up and exit)
  status           replica and queue status
  show / history   records, and the changes of one record
  conflicts        the conflict inbox; resolve UID --keep mine|theirs|both, or per field
                   resolve UID --field FIELD=mine|theirs ...
  discard UID      drop a pending edit the hub will never take (a reader's token)
  import / export  CSV in and out
  carry OLD_DIR    copy the edits not synced yet of a data directory that can no longer
                   sync (hub restored from an older backup, another schema or ledger) here
Run `outpost COMMAND --help` for the options of one command.

Quick start: `outpost demo --two` opens two windows on a local demo hub, so you can edit
offline ("Work offline"), sync, and watch a conflict appear and get resolved.
"""


def _parser() -> argparse.ArgumentParser:
    from desktop.headless import add_commands, data_arg

    p = argparse.ArgumentParser(
        prog="outpost",
        description="Outpost: an offline-first record editor that syncs with a hub. "
                    "Without a command, opens the app with the last profile.",
        epilog=_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    d = sub.add_parser("demo", help="start a local demo hub and open the app on it",
                       description="Start `outpost-hub serve --auth none` on 127.0.0.1 with "
                       "the demo schema and data in its own data directory, and open the app "
                       "connected to it. The hub stops when the app closes.")
    d.add_argument("--two", action="store_true",
                   help="open two windows with separate replicas, side by side")
    d.add_argument("--data", metavar="DIR", type=data_arg, default=None,
                   help="demo data directory (default: the user data directory + /demo)")
    a = sub.add_parser("app", help="open the app on a data directory or profile",
                       description="Open the app. With --hub, the satellite in --data (or the "
                       "profile's directory) connects to that hub; its schema is fetched on "
                       "first use.")
    a.add_argument("--data", metavar="DIR", type=data_arg, default=None,
                   help="the satellite's data directory (default: the profile's); DIR's own "
                   "hub and token (its config.json) are used unless --hub/--token are given; "
                   "a DIR not connected yet takes the profile's hub and token. Opened this "
                   "once: the next plain `outpost` opens the profile's directory again (with "
                   "--profile NAME, DIR becomes that profile's)")
    a.add_argument("--hub", metavar="URL", default="",
                   help="hub URL, e.g. ws://host:8765 (default: DIR's own hub, else the "
                   "profile's)")
    a.add_argument("--token", default="",
                   help="hub token (stored, never logged; default: DIR's own token, else the "
                   "profile's); alone, a new token for the profile's hub, checked with it as "
                   "File → Connection settings does; `--token -` reads it from standard "
                   "input; on the command line it is seen by other users (ps): prefer "
                   "--token-file ($OUTPOST_TOKEN is read by `outpost connect` only)")
    a.add_argument("--token-file", metavar="FILE", default=None,
                   help="read the hub token from the first line of FILE")
    a.add_argument("--profile", metavar="NAME", default="",
                   help="profile to use and remember (default: the last one)")
    a.add_argument("--schema", metavar="FILE", type=Path, default=None,
                   help="the hub's schema for a new data directory, when the hub does not "
                   "serve it (a daql hub): a schema .toml or a schema.json")
    add_commands(sub)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``outpost`` console script."""
    args = _parser().parse_args(argv)
    cmd = args.command
    if cmd == "demo":
        if not _have_qt():
            return 1
        from desktop.demo import run_demo

        return _guard(lambda: run_demo(two=args.two, data=args.data))
    if cmd is None or cmd == "app":
        if not _have_qt():
            return 1
        from core.satellite.config import clear_text_warning, given_token
        from desktop.launch import launch

        def token() -> str:
            # not $OUTPOST_TOKEN: a token given to the app replaces the profile's, and a
            # variable left in the environment (stale, or another user's) replaced a good
            # stored token for good, unchecked while the hub was out of reach (merge
            # review 15c); `outpost connect` reads it, where a token is asked for
            t = given_token(getattr(args, "token", "") or None,
                            getattr(args, "token_file", None), sys.stdin, env={}) or ""
            warn = clear_text_warning(getattr(args, "hub", ""), bool(t))
            if warn:
                print(f"outpost: {warn}", file=sys.stderr)
            return t

        return _guard(lambda: launch(data=getattr(args, "data", None),
                                     hub=getattr(args, "hub", ""),
                                     token=token(),
                                     profile=getattr(args, "profile", ""),
                                     schema=getattr(args, "schema", None)))
    from desktop.headless import run

    return run(args)


QT_MISSING = ("outpost: the desktop app needs PySide6 and qasync, which this installation "
              "lacks (no {missing}): install Outpost with its desktop extra, pip install "
              "'SRC[desktop]' where SRC is an Outpost clone or wheel (the 'outpost' on PyPI is "
              "another project), or run `make venv` in a clone; the headless commands "
              "(connect, sync, status, pub, import, export, ...) work without it")
"""What ``outpost``/``outpost app``/``outpost demo`` say in an installation made without the
``desktop`` extra (a server's: docs/deployment.md), instead of a traceback."""


def _have_qt() -> bool:
    """Whether the app's packages are installed (looked up, not imported: a Qt that cannot
    start is named where it starts); else say which is missing and how to add it."""
    from importlib.util import find_spec

    for mod in ("PySide6", "qasync"):
        try:
            found = find_spec(mod) is not None
        except (ImportError, ValueError):
            found = False
        if not found:
            print(QT_MISSING.format(missing=mod), file=sys.stderr)
            return False
    return True


def _guard(fn: object) -> int:
    from core.errors import OutpostError

    try:
        return int(fn())  # type: ignore[operator]
    except OutpostError as exc:
        print(f"outpost: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
