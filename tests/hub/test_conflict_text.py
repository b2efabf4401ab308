"""The hub's conflict error text (sent on the wire as ``err``) names every choice the CLI
offers: keep mine|theirs, per field (`--field FIELD=mine|theirs`) and, for a key taken
meanwhile, keep both (session 10's note: it named only `--keep mine|theirs`). The reply's
shape is daql's: ``err`` text and ``conflicts``. A real hub on 127.0.0.1 over websockets."""

from __future__ import annotations

from typing import Any

from websockets.asyncio.client import connect

from hubserver.server import Hub
from tests.hub.conftest import request


def act(cmd: str, key: str, name: str | None = None) -> dict[str, Any]:
    return {"top": "prod.cat", "key": key, "cmd": cmd,
            **({"arg": {"name": name}} if name is not None else {})}


async def test_conflict_err_names_keep_and_per_field(hub: Hub) -> None:
    async with connect(hub.url) as ws:
        base = (await request(ws, "evt.pub", {"acts": [act("new", "1", "a")]}))["res"]["rev"]
        await request(ws, "evt.pub", {"base": base, "acts": [act("mod", "1", "theirs")]})
        got = await request(ws, "evt.pub", {"base": base, "acts": [act("mod", "1", "mine")]})
    assert set(got) == {"err", "conflicts"}  # daql's shape: only the text changed
    err = got["err"]
    assert err.startswith("conflict: mod prod.cat 1: field name changed at ")
    assert "`outpost resolve UID --keep mine|theirs`" in err
    assert "`outpost resolve UID --field FIELD=mine|theirs`" in err
    assert "both" not in err  # keep both applies to a key taken meanwhile only
    assert [c["fields"] for c in got["conflicts"]] == [["name"]]


async def test_taken_key_err_names_keep_both_too(hub: Hub) -> None:
    async with connect(hub.url) as ws:
        base = (await request(ws, "evt.pub", {"acts": [act("new", "1", "a")]}))["res"]["rev"]
        await request(ws, "evt.pub", {"base": base, "acts": [act("new", "2", "theirs")]})
        got = await request(ws, "evt.pub", {"base": base, "acts": [act("new", "2", "mine")]})
    err = got["err"]
    assert "key 2 was taken" in err
    assert "`outpost resolve UID --keep mine|theirs|both`" in err
    assert "`outpost resolve UID --field FIELD=mine|theirs`" in err
    assert [c["reason"] for c in got["conflicts"]] == ["created"]
