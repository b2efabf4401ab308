"""The status's "rejected by the hub" error once the rejected edits are resolved."""

from __future__ import annotations

import random
from pathlib import Path

from core.model import Action, Cmd
from core.satellite.api import Keep, ReceiptState
from core.satellite.client import SyncClient
from core.satellite.machine import REJECTED_BY_HUB
from core.satellite.satellite import Satellite
from core.schema import Project
from desktop.format import sync_problem
from hubserver.server import Hub

SITE = "field.site"


async def _sync(sat: Satellite, hub: Hub) -> None:
    await SyncClient(sat, hub.url, rnd=random.Random(0)).sync_once(10)


async def test_a_resolved_rejection_is_no_longer_the_status_error(
        tmp_path: Path, project: Project, hub: Hub) -> None:
    """A and B change s1's name, B first: A's edit is rejected and the status says so. After
    keep theirs the status bar still said "1 edit rejected by the hub" (the error was only
    replaced by the next evt.sat reply): an error naming only resolved edits is none; one
    naming an edit still rejected stays."""
    a, b = Satellite(tmp_path / "a", project), Satellite(tmp_path / "b", project)
    a.pub([Action(SITE, "s1", Cmd.NEW, {"name": "One"}),
           Action(SITE, "s2", Cmd.NEW, {"name": "Two"})])
    await _sync(a, hub)
    await _sync(b, hub)
    b.pub([Action(SITE, "s1", Cmd.MOD, {"name": "B1"})])
    b.pub([Action(SITE, "s2", Cmd.MOD, {"name": "B2"})])
    await _sync(b, hub)
    a.pub([Action(SITE, "s1", Cmd.MOD, {"name": "A1"})])
    a.pub([Action(SITE, "s2", Cmd.MOD, {"name": "A2"})])
    await _sync(a, hub)
    first, second = (r.uid for r in a.receipts([ReceiptState.REJECTED]))
    st = a.status()
    assert st.conflicts == 2 and st.last_error.startswith(REJECTED_BY_HUB)
    # the first named, the other counted (session 13)
    assert (first in st.last_error) != (second in st.last_error), st.last_error
    assert "; and 1 more: see them all with `outpost conflicts`" in st.last_error
    a.resolve(first, Keep.THEIRS)
    st = a.status()  # one named edit is still rejected: the error stays
    assert st.conflicts == 1 and st.last_error.startswith(REJECTED_BY_HUB)
    a.resolve(second, Keep.THEIRS)
    st = a.status()
    assert st.conflicts == 0 and st.last_error == "" and not sync_problem(st.last_error)
    a.close()
    b.close()


async def test_an_error_naming_only_resolved_edits_goes_while_older_ones_wait(
        tmp_path: Path, project: Project, hub: Hub) -> None:
    """An older rejection is left for later; a newer sync's error names only the newer
    rejected edit: once that one is resolved, the error goes though a conflict remains."""
    a, b = Satellite(tmp_path / "a", project), Satellite(tmp_path / "b", project)
    a.pub([Action(SITE, "s1", Cmd.NEW, {"name": "One"}),
           Action(SITE, "s2", Cmd.NEW, {"name": "Two"})])
    await _sync(a, hub)
    await _sync(b, hub)
    b.pub([Action(SITE, "s1", Cmd.MOD, {"name": "B1"})])
    await _sync(b, hub)
    old = a.pub([Action(SITE, "s1", Cmd.MOD, {"name": "A1"})])
    await _sync(a, hub)
    b.pub([Action(SITE, "s2", Cmd.MOD, {"name": "B2"})])
    await _sync(b, hub)
    new = a.pub([Action(SITE, "s2", Cmd.MOD, {"name": "A2"})])
    await _sync(a, hub)
    st = a.status()
    assert st.conflicts == 2 and new in st.last_error and old not in st.last_error
    a.resolve(new, Keep.THEIRS)
    st = a.status()
    assert st.conflicts == 1 and st.last_error == ""
    a.close()
    b.close()


async def test_many_rejections_make_a_short_error(tmp_path: Path, project: Project,
                                                  hub: Hub) -> None:
    """17 edits rejected in one reply: the status's error names the first with its reason
    and counts the rest, pointing at the conflicts list (scale review 13: one line of about
    5 KB, the 17 reasons joined with ';'); the status bar's summary still counts 17."""
    a, b = Satellite(tmp_path / "a", project), Satellite(tmp_path / "b", project)
    a.pub([Action(SITE, f"m{i:02d}", Cmd.NEW, {"name": f"M{i}"}) for i in range(17)])
    await _sync(a, hub)
    await _sync(b, hub)
    for i in range(17):
        b.pub([Action(SITE, f"m{i:02d}", Cmd.MOD, {"name": f"B{i}"})])
    await _sync(b, hub)
    uids = [a.pub([Action(SITE, f"m{i:02d}", Cmd.MOD, {"name": f"A{i}"})]) for i in range(17)]
    await _sync(a, hub)
    st = a.status()
    assert st.conflicts == 17 and st.last_error.startswith(REJECTED_BY_HUB)
    err = st.last_error
    assert err.startswith(f"{REJECTED_BY_HUB}{uids[0]}: ") and "\n" not in err, err
    assert sum(u in err for u in uids) == 1, err
    assert err.endswith("; and 16 more: see them all with `outpost conflicts` (the app: "
                        "Conflicts)"), err
    rc = a.receipt(uids[0])
    assert rc is not None and len(err) < len(REJECTED_BY_HUB) + len(rc.err) + 200, err
    assert sync_problem(err).startswith("17 edits rejected by the hub"), sync_problem(err)
    for u in uids[:16]:
        a.resolve(u, Keep.THEIRS)
    assert a.status().last_error == err  # one is left: the error stays
    a.resolve(uids[16], Keep.THEIRS)
    assert a.status().last_error == ""
    a.close()
    b.close()
