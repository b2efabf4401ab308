"""Hypothesis-generated frames against a live hub: it stays up, answers a well-formed request
afterwards, and its per-connection state stays bounded."""

from __future__ import annotations

import asyncio
import tracemalloc

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from core.ledger import MemLedger
from core.schema import parse_project
from hubserver.limits import Limits
from hubserver.server import Hub
from tests.hub.conftest import PROD

SUBJECTS = ["evt.stat", "evt.pub", "evt.sub", "evt.unsub", "evt.mon", "evt.unmon", "evt.sat",
            "evt.hist", "dom.project", "evt.nope", "_x", ""]
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                max_size=4),
    max_leaves=20)
revs = st.sampled_from(["0001-01-01T00:00:00Z", "2026-11-26T11:26:54.628Z", "bad", "", 5])
acts = st.fixed_dictionaries({
    "top": st.sampled_from(["prod.cat", "prod.prod", "prod.nope", ""]),
    "key": st.sampled_from(["1", "2", "x", ""]) | st.integers(-5, 5),
    "cmd": st.sampled_from(["new", "mod", "del", "zap"]),
}, optional={"arg": st.dictionaries(st.sampled_from(["name", "cat", "zz"]), json_values,
                                    max_size=3)})
bodies = st.one_of(
    json_values,
    st.fixed_dictionaries({"rev": revs, "tops": st.lists(st.sampled_from(
        ["prod.cat", "prod.prod", "nope"]), max_size=3)}),
    st.fixed_dictionaries({"acts": st.lists(acts, max_size=3)}, optional={"base": revs}),
    st.fixed_dictionaries({"rev": revs, "tops": st.just(["prod.cat"]), "trans": st.lists(
        st.fixed_dictionaries({"acts": st.lists(acts, max_size=2)},
                              optional={"uid": st.text(max_size=5)}), max_size=2)},
                          optional={"lim": st.integers(-2, 5)}),
    st.fixed_dictionaries({"rev": revs, "watch": st.lists(st.fixed_dictionaries(
        {"top": st.sampled_from(["prod.cat", "x"]), "keys": st.lists(st.text(max_size=3),
                                                                     max_size=2)}),
        max_size=2)}),
)


@st.composite
def frames(draw: st.DrawFn) -> str:
    subj = draw(st.sampled_from(SUBJECTS) | st.text(max_size=10))
    tok = draw(st.sampled_from(["", "1", "abc"]))
    head = f"{subj}#{tok}" if tok else subj
    kind = draw(st.integers(0, 3))
    if kind == 0:
        return head
    if kind == 1:
        return head + "\n" + draw(st.text(max_size=40))
    return head + "\n" + orjson.dumps(draw(bodies)).decode()


@pytest.mark.timeout(360)  # tracemalloc slows every frame: 23 s alone, >120 s at load 10
def test_live_hub_survives_generated_frames() -> None:
    project = parse_project(PROD)

    async def run(batch: list[str], hub: Hub) -> None:
        ws = await connect(hub.url)
        try:
            for f in batch:
                try:
                    await ws.send(f)
                except ConnectionClosed:
                    ws = await connect(hub.url)  # a fatal frame closed us: reconnect
            await ws.send("evt.stat#ok")
            for _ in range(200):  # bounded: at most one reply per frame sent
                text = await asyncio.wait_for(ws.recv(), 5)
                if isinstance(text, str) and text.startswith("evt.stat#ok\n"):
                    assert "res" in orjson.loads(text.split("\n", 1)[1])
                    return
            raise AssertionError("no reply to the final well-formed request")
        except ConnectionClosed:
            # the last batch frame was fatal and raced the stat: a new connection must work
            async with connect(hub.url) as ws2:
                await ws2.send("evt.stat#ok")
                text = await asyncio.wait_for(ws2.recv(), 5)
                assert isinstance(text, str) and text.startswith("evt.stat#ok\n")
        finally:
            await ws.close()

    loop = asyncio.new_event_loop()
    hub = Hub(MemLedger(project), limits=Limits(rate=1e6, burst=10**6))
    loop.run_until_complete(hub.start())
    sizes: list[int] = []

    @settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
    @given(st.lists(frames(), min_size=1, max_size=15))
    def check(batch: list[str]) -> None:
        loop.run_until_complete(run(batch, hub))
        sizes.append(len(hub.service.subs) + hub.service.connections)

    tracemalloc.start()
    try:
        check()
        loop.run_until_complete(asyncio.sleep(0.1))
        # every connection was cleaned up: nothing left per connection
        assert hub.service.connections == 0 and len(hub.service.subs) == 0
        assert max(sizes) <= 2
        cur, _peak = tracemalloc.get_traced_memory()
        assert cur < 50 * 2**20
    finally:
        tracemalloc.stop()
        loop.run_until_complete(hub.stop())
        loop.close()


