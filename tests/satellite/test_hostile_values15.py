"""A hub whose schema version matches may still send values its schema forbids (a hostile
hub, or a man-in-the-middle on ws://): the satellite checks their types before storing them
and refuses the reply, naming the event (session 15 security review: ``"lat": "north"`` was
stored, then export, show and every edit of the record failed; a dict for a scalar failed
the commit with a message that blamed the disk)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from websockets.asyncio.client import connect
from websockets.asyncio.server import ServerConnection, serve

from core.ledger import MemLedger
from core.model import Action, Cmd, Trans
from core.schema import Project
from hubserver.server import Hub
from tests.hub.conftest import request
from tests.satellite.test_cli import cli

SITE = "field.site"


@asynccontextmanager
async def mitm(up: str, mutate: Callable[[dict[str, Any]], None]) -> AsyncIterator[str]:
    """A proxy on 127.0.0.1 to the hub at ``up`` that passes every frame, changing the
    first event of each ``evt.sat`` reply with ``mutate``."""

    def change(text: str) -> str:
        subj, _, body = text.partition("\n")
        if not subj.startswith("evt.sat") or not body:
            return text
        d = json.loads(body)
        evs = (d.get("res") or {}).get("evs") if isinstance(d.get("res"), dict) else None
        if not evs:
            return text
        mutate(evs[0])
        return subj + "\n" + json.dumps(d)

    async def handle(ws: ServerConnection) -> None:
        async with connect(up, max_size=None) as hub:
            async def down() -> None:
                async for m in hub:
                    await ws.send(change(m) if isinstance(m, str) else m)

            async def upward() -> None:
                async for m in ws:
                    await hub.send(m)

            tasks = [asyncio.create_task(down()), asyncio.create_task(upward())]
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            for t in tasks:
                t.cancel()

    async with serve(handle, "127.0.0.1", 0, max_size=None) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        yield f"ws://127.0.0.1:{port}"


@pytest.mark.parametrize("arg, why", [
    ({"name": "x", "lat": "north"}, "field 'lat' got 'north', expected a number"),
    ({"name": {"x": [1, 2]}, "lat": 1.5}, "field 'name' got"),
    ({"name": "x", "region": True}, "field 'region' got True, expected a string"),
])
async def test_a_matching_hubs_values_of_the_wrong_type_are_refused_nothing_stored(
        tmp_path: Path, project: Project, arg: dict[str, Any], why: str) -> None:
    led = MemLedger(project)
    led.publish(Trans((Action(SITE, "s1", Cmd.NEW, {"name": "one", "lat": 1.0}),)), "ann")
    async with Hub(led, port=0) as hub:
        d = tmp_path / "sat"
        assert (await cli(d, "connect", hub.url))[0] == 0
        assert (await cli(d, "sync", "--once", "--timeout", "20"))[0] == 0
        async with connect(hub.url) as w:  # through the hub: its revision moves on
            await request(w, "evt.pub", {"acts": [
                {"top": SITE, "key": "s2", "cmd": "new", "arg": {"name": "two"}}]})
        before = json.loads((await cli(d, "status"))[1])["rev"]

        def poison(ev: dict[str, Any]) -> None:
            ev["arg"] = arg

        async with mitm(hub.url, poison) as url:
            assert (await cli(d, "connect", url))[0] == 0
            rc, _, err = await cli(d, "sync", "--once", "--timeout", "30", json_out=False)
        assert rc == 1, err
        assert why in err and "Nothing of that reply was stored" in err, err
        assert "check the disk" not in err
        assert json.loads((await cli(d, "status"))[1])["rev"] == before  # nothing stored
        rc, out, err = await cli(d, "show", SITE)
        assert rc == 0, err
        assert [(r["key"], r["fields"]["name"], r["fields"]["lat"])
                for r in json.loads(out)] == [("s1", "one", 1.0)]
        # the honest hub again: the reply is stored as sent
        assert (await cli(d, "connect", hub.url))[0] == 0
        assert (await cli(d, "sync", "--once", "--timeout", "20"))[0] == 0
        rc, out, _ = await cli(d, "export", SITE)
        assert rc == 0 and "two" in out
