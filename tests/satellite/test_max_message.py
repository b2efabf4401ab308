"""A hub with a small ``--max-message``: the satellite keeps its ``evt.sat`` requests under
the limit the hub serves in ``evt.stat``, halves its batches after a close with 1009 from a
hub that does not serve it, and shows an edit bigger than the limit to its user as an error
on that edit instead of reconnecting for ever (review session 7, MEDIUM 5)."""

from __future__ import annotations

import random
import subprocess
import sys
from pathlib import Path

from core.ledger.memory import MemLedger
from core.model import Action, Cmd, Trans
from core.revision import Rev, format_rev
from core.satellite.api import ReceiptState
from core.satellite.client import SyncClient
from core.satellite.machine import MIN_SAT_BYTES, SAT_BYTES, SyncMachine, frames_of
from core.satellite.satellite import Satellite
from core.schema import Project
from core.wire import SatRes, format_reply
from hubserver.limits import MIN_MAX_MESSAGE, Limits
from hubserver.server import Hub
from tests.hub.conftest import request
from tests.satellite.test_machine import FakeStore, body, sat_reply

SITE = "field.site"
ROOT = Path(__file__).resolve().parents[2]


def big(uid: str, size: int) -> Trans:
    return Trans((Action(SITE, uid, Cmd.NEW, {"name": uid, "notes": "x" * size}),), uid=uid)


def handshake(m: SyncMachine, max_message: int | None, rev: Rev = 0) -> str:
    m.start(0.0)
    m.take()
    m.connected(0.0)
    m.take()
    res: dict[str, object] = {"rev": format_rev(rev), "mig": "v1"}
    if max_message is not None:
        res["max_message"] = max_message
    m.received(format_reply("evt.stat", "1", res), 0.0)
    [sat] = frames_of(m.take())
    return sat


def test_requests_stay_under_the_limit_the_hub_serves() -> None:
    st = FakeStore()
    st.pending = [big(f"u{i}", 2000) for i in range(200)]  # ~420 KB
    m = SyncMachine(st, random.Random(1), first_trans=1000)
    sat = handshake(m, 65536)
    sizes, tok = [], 2
    while True:
        sizes.append(len(sat.encode()))
        _, b = body(sat)
        uids = [t["uid"] for t in b["trans"]]
        m.received(sat_reply(str(tok), SatRes(0, acks=())), 1.0)  # nothing acked: resent later
        st.pending = [t for t in st.pending if t.uid not in uids]
        tok += 1
        out = frames_of(m.take())
        if not st.pending or not out:
            break
        sat = out[0]
    assert len(sizes) > 5 and max(sizes) <= 65536, sizes
    assert SAT_BYTES > 65536  # without the hub's limit a request would have been bigger


def test_an_edit_bigger_than_the_hub_takes_is_an_error_on_that_edit() -> None:
    st = FakeStore()
    st.pending = [big("small1", 100), big("huge", 100_000), big("small2", 100)]
    m = SyncMachine(st, random.Random(1))
    sat = handshake(m, 65536)
    _, b = body(sat)
    assert [t["uid"] for t in b["trans"]] == ["small1", "small2"]
    assert "huge" in st.rejected and "not sent" in st.rejected["huge"]
    assert "65,536 bytes, its --max-message" in st.rejected["huge"]


def test_a_close_with_1009_halves_the_batch_for_a_hub_that_does_not_say_its_limit() -> None:
    st = FakeStore()
    st.pending = [big(f"u{i}", 2000) for i in range(400)]
    m = SyncMachine(st, random.Random(1), first_trans=1000)
    handshake(m, None)
    assert m.max_bytes == SAT_BYTES
    reason = "the connection closed: received 1009 (message too big) frame exceeds limit"
    for want in (SAT_BYTES // 2, SAT_BYTES // 4):
        m.disconnected(1.0, reason)
        assert m.max_bytes == want
        m.tick(1000.0)
        m.take()
        m.connected(1000.0)
        [stat] = frames_of(m.take())
        tok = stat.split("#", 1)[1]
        m.received(format_reply("evt.stat", tok, {"rev": format_rev(0), "mig": "v1"}), 1000.0)
        [sat] = frames_of(m.take())
        assert len(sat.encode()) <= want + 4096
    for _ in range(10):
        m.disconnected(2.0, reason)
        m._sat_out = 1  # as if a request were in flight again
    assert m.max_bytes == MIN_SAT_BYTES


async def test_a_hub_with_a_small_max_message_syncs_a_big_queue(tmp_path: Path,
                                                                 project: Project) -> None:
    limit = 131072
    async with Hub(MemLedger(project), port=0, limits=Limits(max_message=limit)) as hub:
        from websockets.asyncio.client import connect

        async with connect(hub.url) as ws:
            stat = await request(ws, "evt.stat", None)
            assert stat["res"]["max_message"] == limit
        sat = Satellite(tmp_path / "a", project)
        try:
            note = "x" * 2000
            uids = [sat.pub([Action(SITE, f"s{i}", Cmd.NEW, {"name": f"n{i}", "notes": note})])
                    for i in range(300)]  # ~630 KB: several requests under 128 KiB
            huge = sat.pub([Action(SITE, "huge", Cmd.NEW, {"name": "h", "notes": "y" * 200_000})])
            # was: closed with 1009 on every retry, for ever
            await SyncClient(sat, hub.url, rnd=random.Random(0)).sync_once(30)
            for u in (uids[0], uids[-1]):
                r = sat.receipt(u)
                assert r is not None and r.state == ReceiptState.ACCEPTED
            r = sat.receipt(huge)
            assert r is not None and r.state == ReceiptState.REJECTED
            assert "--max-message" in r.err
            st = sat.status()
            assert st.pending == 0 and st.conflicts == 1
            assert len(hub.ledger.keys(SITE)) == 300
        finally:
            sat.close()


def test_serve_refuses_a_max_message_too_small_to_be_useful(tmp_path: Path) -> None:
    r = subprocess.run([sys.executable, "-m", "hubserver.cli", "serve", "--db",
                        str(tmp_path / "hub.db"), "--port", "0", "--auth", "none",
                        "--max-message", "1000"], capture_output=True, text=True,
                       cwd=tmp_path, env={"PYTHONPATH": str(ROOT), "PATH": ""}, timeout=60)
    assert r.returncode == 2
    assert f"the least the hub takes is {MIN_MAX_MESSAGE} bytes" in r.stderr
    assert not (tmp_path / "hub.db").exists()

