"""Pointing a replica at another hub (``outpost connect``, the app's ``--hub`` and its
connection settings): refused when that hub cannot hold the ledger the replica came from."""

from __future__ import annotations

from core.errors import ConfigError, OutpostError
from core.model import Status
from core.revision import Rev, format_rev
from core.satellite.config import DataDir
from core.satellite.machine import carry_conflicts, restore_lost
from core.satellite.replica import stored_version
from core.satellite.satellite import Satellite
from core.schema import Project

__all__ = ["other_history", "replica_last", "same_ledger"]


def same_ledger(dd: DataDir, url: str, before: str, have: Project, proj: Project,
                hub: Status) -> None:
    """Refuse to point a replica at a hub that cannot hold the ledger it came from: another
    schema version, another ledger (the hub serves a ledger id and the replica stored
    another one), a restore from a backup older than the replica's revision (the hub serves
    a restore point other than the replica's, before its revision: the replica holds
    revisions the hub lost), or a revision behind the replica's (another ledger, one
    restored from an older backup, or a hub that has not caught up yet). Syncing would
    stop, leave the hub's records out, or fail on every event; nothing is changed. A hub
    that serves no ledger id (daql, an older Outpost hub), or a replica that stored none
    yet, is checked by schema and revision only (and by restore point when served).

    Raises:
        ConfigError: naming the hub, the replica and the fix.
    """
    back = f" (or connect back to {before})" if before and before != url else ""
    # the replica's own version: schema.json may have been edited by hand (then storing the
    # hub's schema, as connect does, is the fix)
    made = stored_version(dd.db_file) or have.version
    if made != proj.version:
        raise ConfigError(
            f"the hub at {url} has schema version {proj.version}, the replica in {dd.path} "
            f"{made}: nothing was changed; use a new --data DIR for this hub{back}"
            f"{_carry(dd, _unresolved(dd, have))}")
    # the caller holds the lock: no writer meanwhile
    sat = Satellite(dd, proj, read_only=True)
    try:
        mine = sat.rev()
        lid = sat.ledger()
        known = sat.restore_points()
        acked = sat.acked_rev()  # acks stored without their events count as held
        rejected = sat.unresolved()  # carried only with --rejected
    finally:
        sat.close()
    if hub.ledger and lid and hub.ledger != lid:
        raise ConfigError(
            f"this replica came from another ledger: the hub at {url} serves ledger "
            f"{hub.ledger}, the replica in {dd.path} holds ledger {lid} (another hub, or "
            "another project with the same schema): nothing was changed; use a new --data "
            f"DIR for this hub{back}{_carry(dd, rejected)}")
    lost = restore_lost(hub, known, max(mine, acked))
    if lost:
        raise ConfigError(
            f"the hub at {url}: {lost} (the replica in {dd.path}): nothing was changed; use a "
            f"new --data DIR for this hub{back}; `outpost carry {dd.path} --data DIR "
            f"--accepted{_flag(rejected)}` then copies into it this replica's edits not synced "
            f"yet{', ' if rejected else ' and '}those the hub accepted and lost"
            f"{',' if rejected else ''}{_also(rejected)}")
    if hub.rev < max(mine, acked):
        # an edit the hub accepted past its revision counts as held (session 14: a rollback
        # of the hub's file before it, the replica's catch-up cut short before its events)
        at = f"at revision {format_rev(hub.rev)}" if hub.rev else "empty"
        gone = acked > hub.rev
        held = (f"({format_rev(mine)})" if hub.rev < mine else
                f"(at {format_rev(mine)}; the hub accepted an edit of it at "
                f"{format_rev(acked)})")
        raise ConfigError(
            f"the hub at {url} is {at}, behind the replica in "
            f"{dd.path} {held}: it does not hold the ledger this replica came "
            "from (another hub, a restore of an older backup or a rollback of its file, or a "
            f"hub still catching up): nothing was changed; use a new --data DIR for this "
            f"hub{back}" + (_carry_lost(dd, rejected) if gone else _carry(dd, rejected)))


def replica_last(dd: DataDir, proj: Project) -> tuple[Rev, tuple[int, Rev]] | None:
    """The revision of the replica in ``dd`` and its last event ``(id, rev)``, to ask the hub
    whether its history up to that revision is the replica's
    (:func:`core.satellite.client.hub_history`); ``None`` for a replica at no revision yet
    (nothing to compare). The caller holds the lock."""
    sat = Satellite(dd, proj, read_only=True)
    try:
        rev = sat.rev()
        return (rev, sat.last_event()) if rev else None
    finally:
        sat.close()


def other_history(dd: DataDir, url: str, before: str, proj: Project, rev: Rev,
                  mine: tuple[int, Rev], hub: tuple[int, Rev]) -> ConfigError:
    """The refusal of a hub whose history up to the replica's revision ``rev`` is not the
    replica's: its last event at or before it is ``hub``, the replica's ``mine`` (the hub's
    file rolled back, then publishes with its clock behind the lost revisions: no revision
    check sees it), as sync says it (``diverged``)."""
    back = f" (or connect back to {before})" if before and before != url else ""
    sat = Satellite(dd, proj, read_only=True)
    try:
        rejected = sat.unresolved()
    finally:
        sat.close()

    def said(e: tuple[int, Rev]) -> str:
        return f"event {e[0]} at {format_rev(e[1])}" if e[0] else "none"

    return ConfigError(
        f"the hub at {url}: its history up to revision {format_rev(rev)} of the replica in "
        f"{dd.path} is not the one the replica holds (the hub's last event at or before it "
        f"is {said(hub)}, the replica's {said(mine)}): the hub lost or reused revisions "
        "this replica holds (its file was rolled back to an older copy and it published "
        "again with its clock behind them): nothing was changed; use a new --data DIR for "
        f"this hub{back}" + _carry_lost(dd, rejected).replace(
            "those the hub accepted after its revision", "those the hub accepted and lost"))


def _carry_lost(dd: DataDir, rejected: int) -> str:
    """The carry advice when the hub may lack edits it accepted (``--accepted``)."""
    return (f"; `outpost carry {dd.path} --data DIR --accepted{_flag(rejected)}` then copies "
            f"into it this replica's edits not synced yet{', ' if rejected else ' and '}those "
            f"the hub accepted after its revision{',' if rejected else ''}{_also(rejected)}")


def _carry(dd: DataDir, rejected: int) -> str:
    return (f"; `outpost carry {dd.path} --data DIR{_flag(rejected)}` then copies this "
            f"replica's edits not synced yet{_also(rejected)} into it")


def _flag(rejected: int) -> str:
    return " --rejected" if rejected else ""


def _also(rejected: int) -> str:
    """The conflicts not resolved yet, which carry copies only with --rejected."""
    return f" and its {carry_conflicts(rejected)} (to resolve there)" if rejected else ""


def _unresolved(dd: DataDir, proj: Project) -> int:
    """The conflicts not resolved yet of the replica in ``dd`` (0 when it cannot be read:
    the advice then names no --rejected)."""
    try:
        sat = Satellite(dd, proj, read_only=True)
    except OutpostError:
        return 0
    try:
        return sat.unresolved()
    finally:
        sat.close()
