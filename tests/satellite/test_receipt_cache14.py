"""``Queue._receipt`` decodes a row's actions through the queue's cache (session 14, big
replicas 5): the conflicts view and `outpost conflicts` read the rejected receipts at every
refresh, and each read decoded every receipt's actions again. Real SQLite files."""

from __future__ import annotations

from pathlib import Path

from core.model import Action, Cmd
from core.satellite.api import ReceiptState
from core.satellite.satellite import Satellite
from core.schema import Project
from tests.satellite.test_acts_cache13 import _empty_caches  # noqa: F401 (autouse fixture)

SITE = "field.site"


def test_a_receipt_read_again_is_served_from_the_cache(tmp_path: Path, project: Project) -> None:
    sat = Satellite(tmp_path, project)
    try:
        uids = [sat.pub([Action(SITE, f"k{i}", Cmd.NEW, {"name": f"K{i}"})]) for i in range(3)]
        first = {r.uid: r.acts for r in sat.receipts([ReceiptState.PENDING])}
        again = {r.uid: r.acts for r in sat.receipts([ReceiptState.PENDING])}
        assert list(first) == uids
        assert all(first[u] is again[u] for u in uids)  # decoded once
        one = sat.receipt(uids[1])
        assert one is not None and one.acts is first[uids[1]]
        assert one.acts[0].arg["name"] == "K1"  # type: ignore[index]
    finally:
        sat.close()
