"""Wire review 13, finding 2: once an int-keyed topic held key 9223372036854775807 (the
greatest 64-bit key: daql's int64), no new record of it got an automatic key: one above it is
beyond 64 bits and refused (`outpost pub T - new`, a CSV's keyless rows, the app's New
record). Now the new key is one above the greatest key below the run of keys at the top of
the range. Real satellite on SQLite, a real hub (websockets on 127.0.0.1), the CLI as a
subprocess."""

from __future__ import annotations

import json
from pathlib import Path

from core.ledger.memory import MemLedger
from core.model import Action, Cmd, Trans
from core.satellite.satellite import Satellite
from core.schema import MAX_INT, Project
from hubserver.server import Hub
from tests.satellite.test_cli import cli
from tests.satellite.test_int_keys import ITEM, int_project  # noqa: F401 (a fixture)


async def _synced(tmp_path: Path, project: Project, keys: list[int]) -> tuple[Path, Hub]:
    led = MemLedger(project)
    led.publish(Trans(tuple(Action(ITEM, str(k), Cmd.NEW, {"name": f"item {k}"})
                            for k in keys)), "office")
    hub = Hub(led, port=0, anon_user="office")
    await hub.__aenter__()
    d = tmp_path / "sat"
    rc, _, err = await cli(d, "connect", hub.url)
    assert rc == 0, err
    rc, _, err = await cli(d, "sync", "--once", "--timeout", "10")
    assert rc == 0, err
    return d, hub


async def test_pub_new_after_the_greatest_64_bit_key_goes_on_after_the_others(
        tmp_path: Path, int_project: Project) -> None:  # noqa: F811
    d, hub = await _synced(tmp_path, int_project, [1, 2, MAX_INT - 1, MAX_INT])
    try:
        rc, out, err = await cli(d, "pub", ITEM, "-", "new", "name=a")
        assert rc == 0, err
        assert json.loads(out)["key"] == "3"
        rc, out, err = await cli(d, "pub", ITEM, "-", "new", "name=b")  # the queue counts
        assert rc == 0, err
        assert json.loads(out)["key"] == "4"
        rc, _, err = await cli(d, "sync", "--once", "--timeout", "10")
        assert rc == 0, err
        st = hub.ledger.state(ITEM, "4")  # type: ignore[attr-defined]
        assert st is not None and st["name"] == "b"
    finally:
        await hub.__aexit__(None, None, None)


async def test_only_the_top_key_taken_new_keys_start_at_1(
        tmp_path: Path, int_project: Project) -> None:  # noqa: F811
    d, hub = await _synced(tmp_path, int_project, [MAX_INT])
    try:
        rc, out, err = await cli(d, "pub", ITEM, "-", "new", "name=a")
        assert rc == 0, err
        assert json.loads(out)["key"] == "1"
    finally:
        await hub.__aexit__(None, None, None)


async def test_csv_rows_without_a_key_get_free_keys_beside_the_greatest_64_bit_key(
        tmp_path: Path, int_project: Project) -> None:  # noqa: F811
    d, hub = await _synced(tmp_path, int_project, [1, MAX_INT])
    try:
        rc, out, err = await cli(d, "export", ITEM, json_out=False)
        assert rc == 0, err
        assert str(MAX_INT) in out
        # the export (which names the top key) with two new rows, and a file naming key 7
        lines = out.rstrip("\n").split("\n")
        header = lines[0].split(",")
        assert header[:2] == ["key", "name"], header
        pad = "," * (len(header) - 2)
        f = tmp_path / "items.csv"
        f.write_text("\n".join([*lines, f",new one{pad}", f",new two{pad}", f"7,seven{pad}"])
                     + "\n", encoding="utf-8")
        rc, out, err = await cli(d, "import", ITEM, str(f))
        assert rc == 0, err
        sat = Satellite(d, int_project)
        try:
            names = {k: (rv.fields or {}).get("name") for k in sat.keys(ITEM)
                     if (rv := sat.record(ITEM, k)) is not None}
        finally:
            sat.close()
        assert names == {"1": "item 1", str(MAX_INT): f"item {MAX_INT}", "7": "seven",
                         "8": "new one", "9": "new two"}, names
        rc, _, err = await cli(d, "sync", "--once", "--timeout", "10")
        assert rc == 0, err
        rc, out, err = await cli(d, "status")
        assert rc == 0, err
        st = json.loads(out)
        assert (st["pending"], st["conflicts"]) == (0, 0), st
    finally:
        await hub.__aexit__(None, None, None)
