"""Record keys with control or format characters (session 15 security review: the hub
refused only NUL; ``outpost show`` printed ``\\x1b]0;PWNED\\x07\\x1b[2J`` raw, setting the
terminal's title and clearing it, and ``line1\\nfake\\tconfirmed\\t{}`` forged a line of its
tab-separated output). New records refuse them, on the hub and in the satellite; keys that
exist already (a daql hub may hold some) stay editable and are printed escaped."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from websockets.asyncio.client import connect

from core.errors import ValidationError
from core.ledger import MemLedger
from core.printable import escape_controls, shown_key
from core.schema import Project
from hubserver.server import Hub
from tests.hub.conftest import request
from tests.satellite.test_cli import cli
from tests.support.fakedaql import FakeDaql

SITE = "field.site"
ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "assets" / "demo-schema.toml"
ODD = ["\x1b]0;PWNED\x07\x1b[2Jevil", "line1\nfake\tconfirmed\t{}", "\u202egnp.exe"]


def test_a_new_records_key_refuses_control_and_format_characters(project: Project) -> None:
    m = project.model(SITE)
    for key, code in zip(ODD, ("U+001B", "U+000A", "U+202E"), strict=True):
        with pytest.raises(ValidationError) as ei:
            m.check_key(key, new=True)
        assert code in str(ei.value) and "control character" in str(ei.value)
        m.check_key(key)  # a record that exists: its mod and del are taken
    m.check_key("Café 12 — Nord", new=True)  # letters, spaces, punctuation: fine
    assert shown_key(ODD[1]) == "line1\\x0afake\\x09confirmed\\x09{}"
    assert escape_controls("a\tb\x1b[2J\n\u202ec", keep="\n\t") == "a\tb\\x1b[2J\n\\u202ec"


def test_format_characters_of_normal_writing_are_fine_in_keys_and_printed_as_they_are(
        project: Project) -> None:
    """Merge review 15c: every format character (Cf) was refused, with it the zero-width
    non-joiner of Persian spelling, the joiner of emoji sequences and the soft hyphen, and
    text output escaped them in values; only controls, separators and bidirectional
    overrides/isolates are refused (and escaped)."""
    m = project.model(SITE)
    for key in ("Tehran \u0645\u06cc\u200c\u062e\u0648\u0627\u0647\u0645",
                "\U0001f469\u200d\U0001f4bb lab", "soft\xadhyphen",
                "\u05e9\u05dc\u05d5\u05dd \u200f1"):
        m.check_key(key, new=True)
        assert shown_key(key) == key
        assert escape_controls(f"notes: {key}", keep="\n\t") == f"notes: {key}"
    for bidi in ("\u202a", "\u202d", "\u2066", "\u2069", "\u2028"):
        with pytest.raises(ValidationError, match=f"U\\+{ord(bidi):04X}"):
            m.check_key(f"a{bidi}b", new=True)
        assert bidi not in shown_key(f"a{bidi}b")
    with pytest.raises(ValidationError) as ei:
        m.check_key("\u0645\u06cc\x1b", new=True)
    assert "\u0645\u06cc" in str(ei.value)  # the key as it reads, not as ASCII escapes


async def test_the_hub_and_outpost_pub_refuse_such_a_new_key(tmp_path: Path,
                                                              project: Project) -> None:
    async with Hub(MemLedger(project), port=0) as hub:
        async with connect(hub.url) as ws:
            for key in ODD:
                r = await request(ws, "evt.pub", {"acts": [
                    {"top": SITE, "key": key, "cmd": "new", "arg": {"name": "n"}}]})
                assert "control character" in r.get("err", ""), r
        d = tmp_path / "sat"
        assert (await cli(d, "connect", hub.url))[0] == 0
        rc, out, err = await cli(d, "pub", SITE, "a\u202eb", "new", "name=n", json_out=False)
        assert rc == 1 and "U+202E" in err and "nothing" not in out, (rc, out, err)
        rc, out, _ = await cli(d, "show", SITE)
        assert json.loads(out) == []


async def test_keys_a_daql_hub_holds_are_printed_escaped(tmp_path: Path) -> None:
    async with FakeDaql({SITE}) as daql:
        daql.publish([{"top": SITE, "key": k, "cmd": "new", "arg": {"name": f"n{i}"}}
                      for i, k in enumerate(ODD)])
        d = tmp_path / "sat"
        assert (await cli(d, "connect", daql.url, "--schema", str(DEMO)))[0] == 0
        assert (await cli(d, "sync", "--once", "--timeout", "20"))[0] == 0
        rc, out, err = await cli(d, "show", SITE, json_out=False)
        assert rc == 0, err
        assert "\x1b" not in out and "\x07" not in out and "\u202e" not in out, repr(out)
        lines = out.splitlines()
        assert len(lines) == 3, lines  # one line per record: nothing forged
        assert all(len(ln.split("\t")) == 3 for ln in lines), lines
        assert any(ln.startswith("line1\\x0afake\\x09confirmed\\x09{}\t") for ln in lines)
        # JSON output keeps the keys as they are (escaped by JSON itself)
        rc, out, _ = await cli(d, "show", SITE)
        assert sorted(r["key"] for r in json.loads(out)) == sorted(ODD)
        # such a record stays editable
        rc, out, err = await cli(d, "pub", SITE, ODD[2], "mod", "name=renamed", json_out=False)
        assert rc == 0, err
        assert "\u202e" not in out
