"""Resolving a key clash and the other holes of the resolve path (session 9, s9-conf).

Two laptops offline create a record under the same key; the second to sync is rejected.
Keep both publishes mine under a new key (refs of the same transaction follow it), audited
as resolving the rejected uid. Also: a per-field choice that leaves out a required field of a
record it creates is refused before anything is sent; a conflict resolved twice is refused
the second time, never published twice; a resolution the hub rejects is in the inbox again;
a record the other side deleted and created again is said so. Real satellites on SQLite, a
real hub (websockets on 127.0.0.1)."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from core.errors import ValidationError
from core.ledger.memory import MemLedger
from core.model import Action, Cmd, Trans
from core.satellite.api import Keep, Receipt, ReceiptState
from core.satellite.client import SyncClient
from core.satellite.conflicts import conflict_fields, explain
from core.satellite.satellite import Satellite
from core.schema import Project
from hubserver.server import Hub
from tests.satellite.test_int_keys import ITEM, items_hub

SITE, OBS = "field.site", "field.obs"


@pytest.fixture
async def hub(project: Project) -> AsyncIterator[Hub]:
    led = MemLedger(project)
    led.publish(Trans((Action(SITE, "s1", Cmd.NEW, {"name": "Alder", "region": "North"}),)),
                "office")
    async with Hub(led, port=0, anon_user="office") as h:
        yield h


async def sync(sat: Satellite, hub: Hub) -> None:
    await SyncClient(sat, hub.url, rnd=random.Random(0)).sync_once(10)


def state(hub: Hub, top: str, key: str) -> dict[str, Any] | None:
    st = hub.ledger.state(top, key)  # type: ignore[attr-defined]
    return None if st is None else {k: v for k, v in st.items() if v is not None}


def rejected(sat: Satellite) -> list[Receipt]:
    return sat.receipts([ReceiptState.REJECTED])


async def clash(tmp_path: Path, project: Project, hub: Hub,
                mine: list[Action]) -> tuple[Satellite, Satellite, str]:
    """A and B offline both create site "camp"; A syncs first; B's ``mine`` is rejected."""
    a, b = Satellite(tmp_path / "a", project), Satellite(tmp_path / "b", project)
    await sync(a, hub)
    await sync(b, hub)
    a.pub([Action(SITE, "camp", Cmd.NEW, {"name": "A's camp", "region": "East"})])
    ub = b.pub(mine)
    await sync(a, hub)
    await sync(b, hub)
    [rej] = rejected(b)
    assert rej.uid == ub and rej.conflicts[0].reason == "created"
    return a, b, ub


async def test_keep_both_on_string_keys_moves_the_record_and_its_refs(
        tmp_path: Path, project: Project, hub: Hub) -> None:
    """B's site and an observation of it, made together: keep both creates B's site under
    the key B chose and the observation names it; A's site is untouched."""
    a, b, ub = await clash(tmp_path, project, hub, [
        Action(SITE, "camp", Cmd.NEW, {"name": "B's camp"}),
        Action(OBS, "o1", Cmd.NEW, {"species": "heron", "site": "camp"}),
        Action(OBS, "o2", Cmd.NEW, {"species": "owl", "site": "s1"})])
    proposed = b.both_keys(ub)
    assert list(proposed) == [f"{SITE} camp"]
    assert proposed[f"{SITE} camp"] not in ("camp", "s1")  # a fresh UUIDv7
    assert "keep both" in rejected(b)[0].err  # the hub's message names the choice
    new = b.resolve(ub, Keep.BOTH, keys={f"{SITE} camp": " camp-b\u200b"})  # typed: cleaned
    old = b.receipt(ub)
    assert old is not None and old.state == ReceiptState.RESOLVED and old.resolved_by == new
    await sync(b, hub)
    assert state(hub, SITE, "camp") == {"name": "A's camp", "region": "East"}
    assert state(hub, SITE, "camp-b") == {"name": "B's camp"}
    assert state(hub, OBS, "o1") == {"species": "heron", "site": "camp-b"}
    assert state(hub, OBS, "o2") == {"species": "owl", "site": "s1"}  # not the clashing key
    audit = hub.ledger.audit(hub.ledger.rev())
    assert audit is not None and audit.extra == {"resolves": ub}
    assert b.status().conflicts == 0 and b.status().pending == 0
    a.close()
    b.close()


async def test_keep_both_default_key_and_keep_mine_replaces(
        tmp_path: Path, project: Project, hub: Hub) -> None:
    a, b, ub = await clash(tmp_path, project, hub,
                           [Action(SITE, "camp", Cmd.NEW, {"name": "B's camp"})])
    [(sig, key)] = b.both_keys(ub).items()
    # the explanation names all three choices, and that keep mine replaces their record
    text = " ".join(explain(rejected(b)[0]))
    assert "keep mine sets your values on their record" in text
    assert "Keep both adds yours as a new record under another key" in text
    # final reread 9: later edits saved apart do not follow the new key: said, not silent
    assert "your later edits of it, saved apart, stay on their record" in text
    b.resolve(ub, Keep.BOTH, keys={sig: key})  # the key shown is the key used
    await sync(b, hub)
    assert state(hub, SITE, key) == {"name": "B's camp"}
    assert state(hub, SITE, "camp") == {"name": "A's camp", "region": "East"}
    a.close()
    b.close()


async def test_keep_both_on_int_keys_uses_new_key(tmp_path: Path) -> None:
    from core.schema import parse_project
    from tests.satellite.test_int_keys import SCHEMA

    p = parse_project(SCHEMA)
    async with items_hub(p, "3") as hub:
        a, b = Satellite(tmp_path / "a", p), Satellite(tmp_path / "b", p)
        await sync(a, hub)
        await sync(b, hub)
        a.pub([Action(ITEM, "4", Cmd.NEW, {"name": "from A"})])
        ub = b.pub([Action(ITEM, "4", Cmd.NEW, {"name": "from B"}),
                    Action(ITEM, "5", Cmd.NEW, {"name": "B's other"})])
        await sync(a, hub)
        await sync(b, hub)
        assert b.both_keys(ub) == {f"{ITEM} 4": "6"}  # above 5, which B's edit holds
        with pytest.raises(ValidationError, match="a key this transaction uses itself"):
            b.resolve(ub, Keep.BOTH, keys={f"{ITEM} 4": "5"})
        with pytest.raises(ValidationError, match="is taken"):
            b.resolve(ub, Keep.BOTH, keys={f"{ITEM} 4": "1"})
        with pytest.raises(ValidationError, match="not an integer"):
            b.resolve(ub, Keep.BOTH, keys={f"{ITEM} 4": "x"})
        with pytest.raises(ValidationError, match="not a record transaction"):
            b.resolve(ub, Keep.BOTH, keys={f"{ITEM} 5": "9"})
        assert [r.uid for r in rejected(b)] == [ub]  # none of those resolved anything
        b.resolve(ub, Keep.BOTH)
        await sync(b, hub)
        assert [state(hub, ITEM, k) for k in ("4", "5", "6")] == [
            {"name": "from A"}, {"name": "B's other"}, {"name": "from B"}]
        a.close()
        b.close()


async def test_keep_both_needs_a_taken_key(tmp_path: Path, project: Project, hub: Hub) -> None:
    a, b = Satellite(tmp_path / "a", project), Satellite(tmp_path / "b", project)
    await sync(a, hub)
    await sync(b, hub)
    a.pub([Action(SITE, "s1", Cmd.MOD, {"name": "A"})])
    ub = b.pub([Action(SITE, "s1", Cmd.MOD, {"name": "B"})])
    await sync(a, hub)
    await sync(b, hub)
    assert b.both_keys(ub) == {}
    with pytest.raises(ValidationError, match="keep both is for a record created"):
        b.resolve(ub, Keep.BOTH)
    with pytest.raises(ValidationError, match="new keys are for keep both only"):
        b.resolve(ub, Keep.MINE, keys={f"{SITE} s1": "x"})
    assert [r.uid for r in rejected(b)] == [ub]
    a.close()
    b.close()


async def test_per_field_choice_cannot_leave_out_a_required_field_of_a_new_record(
        tmp_path: Path, project: Project, hub: Hub) -> None:
    a, b = Satellite(tmp_path / "a", project), Satellite(tmp_path / "b", project)
    await sync(a, hub)
    await sync(b, hub)
    a.pub([Action(SITE, "s1", Cmd.MOD, {"name": "A"})])
    ub = b.pub([Action(SITE, "s1", Cmd.MOD, {"name": "B"}),
                Action(SITE, "s2", Cmd.NEW, {"name": "New", "region": "R"})])
    await sync(a, hub)
    await sync(b, hub)
    choice = {f"{SITE} s1": {"name": Keep.THEIRS},
              f"{SITE} s2": {"name": Keep.THEIRS, "region": Keep.MINE}}
    with pytest.raises(ValidationError, match=r"'name' of field\.site s2 is required") as exc:
        b.resolve(ub, choice)
    assert "nothing was resolved" in str(exc.value)
    assert [r.uid for r in rejected(b)] == [ub]
    assert b.status().pending == 0
    choice[f"{SITE} s2"]["name"] = Keep.MINE
    b.resolve(ub, choice)
    await sync(b, hub)
    assert state(hub, SITE, "s2") == {"name": "New", "region": "R"}
    assert state(hub, SITE, "s1") == {"name": "A", "region": "North"}
    a.close()
    b.close()


async def test_resolving_twice_is_refused_and_publishes_once(
        tmp_path: Path, project: Project, hub: Hub) -> None:
    a, b, ub = await clash(tmp_path, project, hub,
                           [Action(SITE, "camp", Cmd.NEW, {"name": "B's camp"})])
    first = b.resolve(ub, Keep.BOTH)
    # a second window's (or a stale dialog's) choice, or `outpost resolve` afterwards
    for keep in (Keep.MINE, Keep.BOTH, Keep.THEIRS):
        with pytest.raises(ValidationError, match=f"already resolved .by transaction {first}"):
            b.resolve(ub, keep)
    await sync(b, hub)
    named = [e for e in hub.ledger.events(0) if (e.arg or {}).get("name") == "B's camp"]
    assert len(named) == 1
    a.close()
    b.close()


class Racing(Satellite):
    """A satellite on which the same conflict is resolved a second time while the first
    resolution is being prepared (what two views of one conflict could do)."""

    inner: tuple[str, Keep] | None = None

    def _resolution(self, rec: Receipt, keep: Any) -> list[Action]:
        if self.inner is not None:
            uid, k = self.inner
            self.inner = None
            self.resolve(uid, k)
        return super()._resolution(rec, keep)


async def test_a_resolve_racing_another_is_rolled_back(
        tmp_path: Path, project: Project, hub: Hub) -> None:
    a = Satellite(tmp_path / "a", project)
    b = Racing(tmp_path / "b", project)
    await sync(a, hub)
    await sync(b, hub)
    a.pub([Action(SITE, "s1", Cmd.MOD, {"name": "A"})])
    ub = b.pub([Action(SITE, "s1", Cmd.MOD, {"name": "B"})])
    await sync(a, hub)
    await sync(b, hub)
    b.inner = (ub, Keep.MINE)
    with pytest.raises(ValidationError, match="already resolved"):
        b.resolve(ub, Keep.MINE)
    pending = b.receipts([ReceiptState.PENDING])
    assert len(pending) == 1 and pending[0].resolves == ub  # one resolution, not two
    await sync(b, hub)
    assert len([e for e in hub.ledger.events(0) if (e.arg or {}).get("name") == "B"]) == 1
    a.close()
    b.close()


async def test_a_resolution_the_hub_rejects_is_in_the_inbox_again(tmp_path: Path) -> None:
    from core.schema import parse_project
    from tests.satellite.test_int_keys import SCHEMA

    p = parse_project(SCHEMA)
    async with items_hub(p, "3") as hub:
        a, b = Satellite(tmp_path / "a", p), Satellite(tmp_path / "b", p)
        await sync(a, hub)
        await sync(b, hub)
        a.pub([Action(ITEM, "4", Cmd.NEW, {"name": "A4"})])
        ub = b.pub([Action(ITEM, "4", Cmd.NEW, {"name": "B"})])
        await sync(a, hub)
        await sync(b, hub)
        r1 = b.resolve(ub, Keep.BOTH)  # offline: item 5
        a.pub([Action(ITEM, "5", Cmd.NEW, {"name": "A5"})])  # A took 5 meanwhile
        await sync(a, hub)
        await sync(b, hub)
        [rej] = rejected(b)
        assert rej.uid == r1 and rej.resolves == ub and rej.conflicts[0].reason == "created"
        assert b.status().conflicts == 1
        assert f"your resolution of an earlier conflict (transaction {ub})" in explain(rej)[-1]
        assert b.both_keys(r1) == {f"{ITEM} 5": "6"}
        b.resolve(r1, Keep.BOTH)
        await sync(b, hub)
        assert [state(hub, ITEM, k) for k in ("4", "5", "6")] == [
            {"name": "A4"}, {"name": "A5"}, {"name": "B"}]
        assert b.status().conflicts == 0
        assert len([e for e in hub.ledger.events(0) if (e.arg or {}).get("name") == "B"]) == 1
        a.close()
        b.close()


async def test_a_record_they_deleted_and_created_again_is_said_so(
        tmp_path: Path, project: Project, hub: Hub) -> None:
    """My change of s1 and my delete of s2; they deleted both and created them again. The
    inbox said "Keep mine recreates it" (it exists) and "it stays deleted either way"."""
    a, b = Satellite(tmp_path / "a", project), Satellite(tmp_path / "b", project)
    a.pub([Action(SITE, "s2", Cmd.NEW, {"name": "Birch"})])
    await sync(a, hub)
    await sync(b, hub)
    a.pub([Action(SITE, "s1", Cmd.DEL), Action(SITE, "s2", Cmd.DEL)])
    a.pub([Action(SITE, "s1", Cmd.NEW, {"name": "Alder 2"}),
           Action(SITE, "s2", Cmd.NEW, {"name": "Birch 2"})])
    u1 = b.pub([Action(SITE, "s1", Cmd.MOD, {"region": "West"})])
    u2 = b.pub([Action(SITE, "s2", Cmd.DEL)])
    await sync(a, hub)
    await sync(b, hub)
    r1, r2 = b.receipt(u1), b.receipt(u2)
    assert r1 is not None and r2 is not None
    assert r1.state == r2.state == ReceiptState.REJECTED
    t1, t2 = " ".join(explain(r1)), " ".join(explain(r2))
    assert "deleted this record and created it again" in t1 and "recreates" not in t1
    assert "Keep mine sets your values on the record they created again" in t1
    assert "deleted this record and created it again" in t2
    assert "stays deleted either way" not in t2 and "Keep mine deletes" in t2
    whole = {f.key: f.theirs for f in conflict_fields(b, r1) + conflict_fields(b, r2)
             if not f.field}
    assert whole == {"s1": "recreated", "s2": "recreated"}
    b.resolve(u1, Keep.MINE)
    b.resolve(u2, Keep.THEIRS)
    await sync(b, hub)
    assert state(hub, SITE, "s1") == {"name": "Alder 2", "region": "West"}
    assert state(hub, SITE, "s2") == {"name": "Birch 2"}
    a.close()
    b.close()


def test_keep_both_key_given_is_canonical_for_int_topics() -> None:
    """`resolve --keep both --key 0021` printed "yours is now … 0021" while the record was
    stored as 21 (final review 10): the key given is made canonical first."""
    from core.schema import parse_project
    from desktop.headless import _both_keys
    from tests.satellite.test_int_keys import SCHEMA

    p = parse_project(SCHEMA)
    taken = {f"{ITEM} 4": "5"}
    assert _both_keys(["0021"], taken, p) == {f"{ITEM} 4": "21"}
    assert _both_keys([f"{ITEM} 4=+7"], taken, p) == {f"{ITEM} 4": "7"}
