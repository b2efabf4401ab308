"""``outpost carry OLD_DIR --data NEW``: the edits not synced yet of a data directory that can
no longer sync, queued in a new one connected to the hub (:mod:`core.satellite.carry`).

No Qt is imported here (a headless command, dispatched by ``desktop.headless``).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

from core.errors import ConfigError
from core.revision import format_rev
from core.satellite.api import PUT_ASIDE
from core.satellite.carry import CONFLICT, PENDING, CarryPlan, plan_carry
from core.satellite.config import DataDir
from core.satellite.machine import carry_conflicts
from core.satellite.satellite import Satellite
from desktop.format import plural
from desktop.headless import read_settled

__all__ = ["add_carry", "cmd_carry"]

DESCRIPTION = """\
Copy the edits not synced yet (pending transactions) of OLD_DIR, a data directory that can no
longer sync (its hub was restored from an older backup, its schema changed, it holds another
ledger, or its replica is damaged), into the queue of --data DIR, a data directory already
connected to the hub and synced (`outpost connect URL --data DIR`, `outpost sync --once
--data DIR`). Then `outpost sync --once --data DIR` sends them.

OLD_DIR is only read, never changed. Each transaction keeps its uid, so a second run copies
nothing twice and one an Outpost hub has already applied is answered as accepted, never
applied again. A daql hub does not know uids and cannot answer so (nor does a replica of it
record them): carry knows only what OLD_DIR stored. An edit OLD_DIR sent to a daql hub
without storing the answer may be applied there already: it is carried as a conflict (put
aside, `outpost conflicts`) for you to check and resolve, never sent again by itself; its
other pending edits it never sent. Its base revision is kept when the new replica holds the
same changes of its records up to it (the hub then detects conflicts as for any edit);
otherwise its base is the new replica's revision, and where the hub changed since what the
edit depends on, it is queued as a conflict (`outpost conflicts`, `outpost resolve UID
--keep mine|theirs`): never overwritten silently. Actions the new schema refuses are listed
and nothing is carried: --drop-invalid-fields leaves out the fields it refuses (an unknown
field, a value of another type); --skip-invalid leaves in OLD_DIR the transactions it still
refuses (a new record without a field the new schema requires, a key of another key type, a
model it lacks) and every later one of their records, lists them (uid, record, reason), and
carries the rest. Make those records again in DIR with what the new schema requires.

After a restore of an older backup (or a rollback of the hub's file: a copy of an older file,
a disk or VM snapshot), --accepted also copies the edits the hub had accepted after that
backup (it lost them; the old replica's receipts hold them). Without it, carry names those
edits (how many, their uids; "accepted_left" in --json) and leaves them out."""


def add_carry(sub: Any, common: Any) -> None:
    """Register ``carry`` on an argparse ``subparsers`` object (``common`` adds --data/--json)."""
    p = sub.add_parser("carry", help="copy another data directory's edits not synced yet "
                       "into this one", description=DESCRIPTION,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("old", metavar="OLD_DIR", help="the data directory to copy from (only read)")
    p.add_argument("--rejected", action="store_true",
                   help="also copy its rejected transactions not resolved yet (as conflicts "
                   "to resolve here)")
    p.add_argument("--accepted", action="store_true",
                   help="also copy the edits its hub accepted that this hub does not have (a "
                   "restore of an older backup lost them); only for the same ledger")
    p.add_argument("--drop-invalid-fields", action="store_true",
                   help="leave out the fields the new schema refuses (instead of refusing to "
                   "carry); a change left without fields is left out")
    p.add_argument("--skip-invalid", action="store_true",
                   help="leave the transactions the new schema refuses (and later edits of "
                   "their records) in OLD_DIR, listed, and carry the rest (instead of "
                   "carrying nothing)")
    p.add_argument("--dry-run", action="store_true", help="say what would be copied; copy "
                   "nothing")
    common(p)


def cmd_carry(args: argparse.Namespace) -> int:
    """Run ``outpost carry``; returns the exit code (1 when something could not be carried)."""
    new_dd, old_dd = DataDir(args.data), DataDir(args.old)
    old_dd.check_readable()
    new_dd.check_readable()
    if os.path.samefile(old_dd.path, new_dd.path):
        raise ConfigError(f"{old_dd.path} is the data directory given with --data: carry "
                          "copies from another one (`outpost carry OLD_DIR --data NEW_DIR`)")
    if not new_dd.schema_file.exists():
        raise ConfigError(f"no schema in {new_dd.path}: run `outpost connect URL --data "
                          f"{new_dd.path}` and `outpost sync --once --data {new_dd.path}` first")
    # a dry run reads NEW_DIR only: a writable open would also upgrade its data format, which
    # an older Outpost then refuses (merge review 16a)
    new = Satellite(new_dd, read_only=args.dry_run)
    try:
        st = new.status()
        if not st.hub or not st.last_sync:
            raise ConfigError(
                f"{new_dd.path} has not synced with a hub yet: run `outpost sync --once "
                f"--data {new_dd.path}` first (after `outpost connect URL`), so the edits are "
                "compared with the hub's records")

        def read(old: Satellite) -> tuple[CarryPlan, int]:
            # carried only with --rejected: said, not left behind silently
            return (plan_carry(old, new, rejected=args.rejected, accepted=args.accepted,
                               drop_invalid=args.drop_invalid_fields,
                               skip_invalid=args.skip_invalid),
                    0 if args.rejected else old.unresolved())

        # read again while a process that has OLD_DIR open commits meanwhile, as every read
        # command does (at most three times, then a note)
        plan, left = read_settled(args, read, old_dd)
        if not plan.invalid and not args.dry_run:
            new.carry_in([(i.trans, i.resolves, i.err, i.conflicts) for i in plan.items])
        rev = new.rev()
    finally:
        new.close()
    _report(args, plan, rev, left)
    if plan.left and not args.json:
        uids = list(dict.fromkeys(i.uid for i in plan.left))
        print(f"outpost: {plural(len(uids), 'transaction')} of {old_dd.path} left there, not "
              f"carried (--skip-invalid; listed above as 'left'): {', '.join(uids[:10])}"
              f"{', ...' if len(uids) > 10 else ''}. Make those records again in "
              f"{new_dd.path} with what the new schema requires (`outpost show --data "
              f"{old_dd.path} TOPIC KEY` shows them as they were)", file=sys.stderr)
    if plan.invalid:
        bad = len({i.uid for i in plan.invalid})
        print(f"outpost: {plural(bad, 'transaction')} of {old_dd.path} "
              f"{'has' if bad == 1 else 'have'} changes the new schema refuses (listed "
              f"above): nothing was carried; "
              f"{invalid_advice(plan, args.drop_invalid_fields)}", file=sys.stderr)
        return 1
    return 0


def invalid_advice(plan: CarryPlan, dropping: bool) -> str:
    """What gets past the invalid actions of ``plan``: --drop-invalid-fields where leaving
    fields out makes them valid (not yet given), --skip-invalid for the others (a missing
    required field, a key of another type, a model the new schema lacks: no field to drop
    fixes them; session 15: --drop-invalid-fields was advised for every one, again once
    given)."""
    fix = {i.uid for i in plan.invalid if i.fixable}
    stuck = {i.uid for i in plan.invalid if not i.fixable} - fix
    out = []
    if fix and not dropping:
        out.append(f"{plural(len(fix), 'transaction')} only set{'s' if len(fix) == 1 else ''}"
                   " fields the new schema refuses (an unknown field, a value of another "
                   "type): --drop-invalid-fields leaves those fields out")
    if stuck or (fix and dropping):
        n = len(stuck | (fix if dropping else set()))
        out.append(f"dropping fields cannot fix {plural(n, 'transaction')} (a new record "
                   "without a field the new schema requires, a key the new key type refuses, "
                   "a model it lacks): --skip-invalid carries the rest and leaves "
                   f"{'it' if n == 1 else 'those'} (and later edits of "
                   f"{'its' if n == 1 else 'their'} records) in the old directory, listed; then "
                   "make those records again in the new one with what the new schema requires")
    return "; ".join(out)


def _accepted_left(n: int) -> str:
    """"1 accepted edit this hub does not have", "2 accepted edits ..."."""
    return f"{plural(n, 'accepted edit')} this hub does not have"


def _report(args: argparse.Namespace, plan: CarryPlan, rev: int, left: int) -> None:
    n = plan.counts()
    if left and not args.json:
        print(f"outpost: {carry_conflicts(left)} of {args.old} not carried: add --rejected "
              "to carry them as conflicts to resolve here", file=sys.stderr)
    lost = plan.accepted_left
    if lost and not args.json:
        # the old hub accepted them; this one lacks them (a restore of an older backup or a
        # rollback of its file): left behind only when asked, never silently (session 14)
        print(f"outpost: {_accepted_left(len(lost))} ({', '.join(lost[:10])}"
              f"{', ...' if len(lost) > 10 else ''}): the hub of {args.old} accepted "
              f"{'it' if len(lost) == 1 else 'them'}, this one lost "
              f"{'it' if len(lost) == 1 else 'them'}; not carried: add --accepted to carry "
              f"{'it' if len(lost) == 1 else 'them'}", file=sys.stderr)
    if args.json:
        print(json.dumps({
            **n, "unresolved_left": left, "dry_run": args.dry_run, "rev": format_rev(rev),
            "uids": [i.trans.uid for i in plan.items],
            # put aside (sent to a daql hub, its answer lost) is not a conflict: apart, as
            # the counts are (session 13)
            "conflict_uids": [i.trans.uid for i in plan.items
                              if i.kind == CONFLICT and not i.put_aside],
            "put_aside_uids": [i.trans.uid for i in plan.items if i.put_aside],
            "already_uids": plan.already, "emptied_uids": plan.emptied,
            # accepted by the old hub, not on this one, not carried (no --accepted)
            "accepted_left_uids": plan.accepted_left,
            "invalid_actions": [{"uid": i.uid, "topic": i.top, "key": i.key,
                                 "reason": i.reason, "fixable": i.fixable}
                                for i in plan.invalid],
            # --skip-invalid: left in OLD_DIR, not carried
            "left_uids": list(dict.fromkeys(i.uid for i in plan.left)),
            "left_actions": [{"uid": i.uid, "topic": i.top, "key": i.key,
                              "reason": i.reason} for i in plan.left],
            "dropped": [f for i in plan.items for f in i.dropped]}))
        return
    verb = "would carry" if args.dry_run or plan.invalid else "carried"
    lines = [f"{verb} {plural(n['carried'], 'transaction')}: {n['pending']} pending"
             + (f" ({n['rebased']} on this replica's revision {format_rev(rev)}: their "
                "records' history differs from the old replica's)" if n["rebased"] else "")
             + (f" ({n['lost']} accepted by the old hub, lost by this one)" if n["lost"] else "")
             + f", {plural(n['conflicts'], 'conflict')}"
             + (f", {n['put_aside']} put aside" if n["put_aside"] else "")
             + f", {n['rejected']} rejected; "
             f"{n['already']} already here or on the hub; "
             f"{plural(n['invalid'], 'invalid action')}"
             + (f"; {carry_conflicts(left)} not carried: add --rejected" if left else "")
             + (f"; {_accepted_left(len(lost))}: add --accepted" if lost else "")
             + (f"; {plural(n['left'], 'transaction')} left in {args.old} (--skip-invalid)"
                if n["left"] else "")]
    if n["dropped_fields"]:
        lines.append(f"fields left out: {', '.join(f for i in plan.items for f in i.dropped)}")
    if plan.emptied:
        lines.append(f"left out, nothing left once those fields were dropped: "
                     f"{', '.join(plan.emptied)}")
    for i in plan.items:
        if i.put_aside:  # the words of `outpost conflicts` for it
            lines.append(f"put aside\t{i.trans.uid}\tsent to the hub, but its answer was "
                         f"lost: {i.err.removeprefix(PUT_ASIDE)}")
        elif i.kind != PENDING:
            lines.append(f"{i.kind}\t{i.trans.uid}\t{i.err}")
    for b in plan.invalid:
        lines.append(f"invalid\t{b.uid}\t{b.top}\t{b.key}\t{b.reason}")
    for b in plan.left:
        lines.append(f"left\t{b.uid}\t{b.top}\t{b.key}\t{b.reason}")
    if n["conflicts"] or n["rejected"] or n["put_aside"]:
        lines.append("see `outpost conflicts` and resolve them with `outpost resolve UID "
                     "--keep mine|theirs`, or field by field `outpost resolve UID --field "
                     "FIELD=mine|theirs ...`")
    print("\n".join(lines))
