"""Pointing a replica at another hub (``outpost connect``, the app's ``--hub`` and its
connection settings): refused when that hub cannot hold the ledger the replica came from."""

from __future__ import annotations

from core.errors import ConfigError
from core.revision import Rev, format_rev
from core.satellite.config import DataDir
from core.satellite.satellite import Satellite
from core.schema import Project

__all__ = ["same_ledger"]


def same_ledger(dd: DataDir, url: str, before: str, have: Project, proj: Project,
                hub_rev: Rev) -> None:
    """Refuse to point a replica at a hub that cannot hold the ledger it came from: another
    schema version, or a revision behind the replica's (another ledger, one restored from
    an older backup, or a hub that has not caught up yet). Syncing would stop, leave the
    hub's records out, or fail on every event; nothing is changed.

    Raises:
        ConfigError: naming the hub, the replica and the fix.
    """
    back = f" (or connect back to {before})" if before and before != url else ""
    if have.version != proj.version:
        raise ConfigError(
            f"the hub at {url} has schema version {proj.version}, the replica in {dd.path} "
            f"{have.version}: nothing was changed; use a new --data DIR for this hub{back}"
            f"{_carry(dd)}")
    sat = Satellite(dd, read_only=True)  # the caller holds the lock: no writer meanwhile
    try:
        mine = sat.rev()
    finally:
        sat.close()
    if hub_rev < mine:
        at = f"at revision {format_rev(hub_rev)}" if hub_rev else "empty"
        raise ConfigError(
            f"the hub at {url} is {at}, behind the replica in "
            f"{dd.path} ({format_rev(mine)}): it does not hold the ledger this replica came "
            "from (another hub, a restore of an older backup, or a hub still catching up): "
            f"nothing was changed; use a new --data DIR for this hub{back}{_carry(dd)}")


def _carry(dd: DataDir) -> str:
    return (f"; `outpost carry {dd.path} --data DIR` then copies this replica's edits not "
            "synced yet into it")
