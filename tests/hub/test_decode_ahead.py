"""The hub decodes a busy connection's next message while its publish commits
(``Hub._decode_ahead``, ``HubService.decode_ahead``): the replies, closes and their order are
exactly those of decoding it when its turn comes, decode errors included."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import Any

import orjson
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from core.ledger import MemLedger
from core.ledger.sql import open_ledger
from core.schema import Project
from hubserver.limits import CLOSE_POLICY, CLOSE_PROTOCOL, Limits
from hubserver.server import Hub
from hubserver.service import Close, HubService, Out, Send
from tests.hub.conftest import Clock

Z = "0001-01-01T00:00:00Z"


def new(key: str, name: str) -> dict[str, Any]:
    return {"top": "prod.cat", "key": key, "cmd": "new", "arg": {"name": name}}


def sat(tok: str, *keys: str, **extra: Any) -> str:
    trans = [{"uid": f"u{k}", "acts": [new(k, "n" + k)]} for k in keys]
    body = {"rev": Z, "tops": ["prod.cat"], "trans": trans, "audits": True, "cont": True}
    return f"evt.sat#{tok}\n" + orjson.dumps({**body, **extra}).decode()


def pub(tok: str, key: str) -> str:
    return f"evt.pub#{tok}\n" + orjson.dumps({"uid": "p" + key, "acts": [new(key, "p")]}).decode()


# every way decoding can fail, between publishes (so each is the next message of a busy
# connection), then a frame without subject: the hub closes with 1002
PIPELINED = [
    sat("1", "1", "2"),
    'evt.sat#2\n{"rev": 5, "tops": ["prod.cat"]}',  # a bad field: an error reply
    pub("3", "3"),
    "evt.sat#4\n{not json",  # not JSON: an error reply
    sat("5", "4"),
    "evt.pub#6\n" + orjson.dumps({"acts": "nope"}).decode(),  # a bad transaction
    pub("7", "5"),
    "evt.sat#8",  # no body
    pub("9", "6"),
    "evt.sub#10\n" + orjson.dumps({"rev": Z, "tops": ["prod.cat"]}).decode(),
    sat("11", "7", "8"),
    "evt.pub#12\n" + orjson.dumps({"uid": "pz", "acts": [{"top": "prod.nope", "key": "1",
                                                          "cmd": "new"}]}).decode(),
    sat("13", "9"),
    pub("14", "10"),
    "#15\n{}",  # no subject: fatal, the connection is closed (1002) in its turn
    pub("16", "11"),  # never served
]


class Gate:
    """Holds every ``publish_many`` of a ledger until the test lets it through."""

    def __init__(self, led: Any):
        self.entered = 0
        self.sem = threading.Semaphore(0)
        inner = led.publish_many

        def publish_many(*a: Any, **kw: Any) -> Any:
            self.entered += 1
            assert self.sem.acquire(timeout=30), "the test never released the commit"
            return inner(*a, **kw)

        led.publish_many = publish_many


async def replay(tmp_path: Path, prod: Project, ahead: bool) -> tuple[list[str], Any, int]:
    """Send PIPELINED at once; let each commit through only once the next message waits
    decoded (``ahead``) or not. Returns every frame received, the close, and how many
    messages were decoded ahead."""
    led = open_ledger(tmp_path / ("ahead.db" if ahead else "plain.db"), prod)
    gate = Gate(led)
    async with Hub(led, port=0, clock=Clock(), close_ledger=True) as hub:
        hub.DECODE_AHEAD = 0 if ahead else 1 << 62  # type: ignore[misc]
        decoded = 0
        real = hub.service.decode_ahead

        def counting(text: str | bytes) -> Any:
            nonlocal decoded
            decoded += 1
            return real(text)

        hub.service.decode_ahead = counting  # type: ignore[method-assign]
        got: list[str] = []
        async with connect(hub.url) as ws:
            for f in PIPELINED:
                await ws.send(f)
            (peer,) = hub._peers.values()
            for _ in range(5000):  # everything is in the hub's inbox behind the first publish
                if len(peer.ws.inbox) == len(PIPELINED) - 1:
                    break
                await asyncio.sleep(0.001)
            assert len(peer.ws.inbox) == len(PIPELINED) - 1

            async def read() -> None:
                with pytest.raises(ConnectionClosed):
                    while True:
                        got.append(str(await ws.recv()))

            reader = asyncio.create_task(read())
            released = 0
            while not reader.done():
                if gate.entered > released:  # a commit waits: the next message too?
                    for _ in range(5000):
                        if not ahead or peer.ahead is not None or not peer.ws.inbox \
                                or peer.gone:
                            break
                        await asyncio.sleep(0.001)
                    if ahead and peer.ws.inbox and not peer.gone:
                        assert peer.ahead is not None and peer.ahead.text is peer.ws.inbox[0]
                    released += 1
                    gate.sem.release()
                await asyncio.sleep(0.001)
            await reader
            close = (ws.close_code, ws.close_reason)
    return got, close, decoded


async def test_pipelined_replies_are_those_of_the_plain_path(tmp_path: Path,
                                                             prod: Project) -> None:
    plain, plain_close, n_plain = await replay(tmp_path, prod, ahead=False)
    got, close, n_ahead = await replay(tmp_path, prod, ahead=True)
    assert n_plain == 0
    # each message after a publish (1, 3, 5, 7, 9, 11, 12, 13, 14): 2, 4, 6, 8, 10, 12, 13,
    # 14 and the frame without subject
    assert n_ahead == 9
    assert got == plain
    assert close == plain_close
    assert close[0] == CLOSE_PROTOCOL and "without subject" in close[1]
    heads = [f.partition("\n")[0] for f in got]
    replies = [h for h in heads if "#" in h]
    assert replies == [f"{s}#{i}" for i, s in enumerate(
        ["evt.sat", "evt.sat", "evt.pub", "evt.sat", "evt.sat", "evt.pub", "evt.pub",
         "evt.sat", "evt.pub", "evt.sub", "evt.sat", "evt.pub", "evt.sat", "evt.pub"],
        start=1)]
    body = {h: orjson.loads(f.partition("\n")[2]) for h, f in zip(heads, got, strict=True)
            if "#" in h}
    for tok in ("2", "4", "6", "8", "12"):
        head = next(h for h in body if h.endswith("#" + tok))
        assert "err" in body[head], (head, body[head])
    assert "rev" in body["evt.sat#2"]["err"]
    assert [a["uid"] for a in body["evt.sat#1"]["res"]["acks"]] == ["u1", "u2"]
    assert [a["uid"] for a in body["evt.sat#11"]["res"]["acks"]] == ["u7", "u8"]
    assert [e["key"] for e in body["evt.sat#13"]["res"]["evs"]] == ["9"]
    assert "err" not in body["evt.pub#14"]


async def test_decode_error_of_a_decoded_ahead_frame_is_answered_in_order(
        tmp_path: Path, prod: Project) -> None:
    """A bad evt.sat behind a publish (both over the hub's DECODE_AHEAD size): decoded (and
    failed) while the publish commits, its error reply comes after the publish's reply, and
    the next request is served; a small frame is not decoded ahead."""
    led = open_ledger(tmp_path / "hub.db", prod)
    gate = Gate(led)
    bad = "evt.sat#2\n{" + " " * Hub.DECODE_AHEAD + '"rev": 5}'
    async with Hub(led, port=0, clock=Clock(), close_ledger=True) as hub:
        async with connect(hub.url) as ws:
            first = sat("1", *[str(k) for k in range(100)])
            assert len(first) >= Hub.DECODE_AHEAD
            await ws.send(first)
            await ws.send(bad)
            await ws.send(pub("3", "x"))
            await ws.send("evt.stat#4")
            (peer,) = hub._peers.values()
            for _ in range(5000):
                if peer.ahead is not None and len(peer.ws.inbox) == 3:
                    break
                await asyncio.sleep(0.001)
            gate.sem.release()
            assert peer.ahead is not None and peer.ahead.text == bad
            for _ in range(5000):  # evt.pub#3 commits: evt.stat#4 waits, not decoded ahead
                if gate.entered == 2:
                    break
                await asyncio.sleep(0.001)
            assert gate.entered == 2 and len(peer.ws.inbox) == 1
            await asyncio.sleep(0.01)
            assert peer.ahead is None
            gate.sem.release()
            heads = []
            for _ in range(4):
                text = str(await asyncio.wait_for(ws.recv(), 10))
                heads.append(text.partition("\n")[0])
                if heads[-1] == "evt.sat#2":
                    assert "rev" in orjson.loads(text.partition("\n")[2])["err"]
            assert heads == ["evt.sat#1", "evt.sat#2", "evt.pub#3", "evt.stat#4"]
            assert peer.ahead is None


# -- the service alone: handle(text) and handle(text, decode_ahead(text)) give the same outputs


FRAMES = [
    sat("1", "1", "2"),
    'evt.sat#2\n{"rev": 5}',
    "evt.sat#3\n[1, 2]",
    "evt.sat#4",
    "evt.sat#5\n{not json",
    sat("6", *[str(k) for k in range(3, 13)]),
    pub("7", "20"),
    pub("7b", "20"),  # a conflict: the record exists
    'evt.pub#8\n{"acts": 3}',
    "evt.pub#9",
    "evt.sub#10\n" + orjson.dumps({"rev": Z, "tops": ["prod.cat"]}).decode(),
    "evt.stat#11",
    "evt.nope#12\n{}",
    "_internal#13\n{}",
    " bad subject\n{}",
    "evt.sat#14\n" + orjson.dumps({"rev": Z, "tops": ["prod.nope"], "trans": []}).decode(),
    b"evt.pub#15\n\xff",
    "x" * 70_000,
]


def shape(outs: list[Out]) -> list[tuple[str, Any]]:
    out: list[tuple[str, Any]] = []
    for o in outs:
        if isinstance(o, Send):
            out.append(("send", o.text))
        elif isinstance(o, Close):
            out.append(("close", (o.code, o.reason)))
        else:
            out.append((type(o).__name__, None))
    return out


def serve(svc: HubService, conn: str, text: str | bytes, ahead: bool) -> list[Out]:
    pre = svc.decode_ahead(text) if ahead else None
    outs, job = svc.handle(conn, text, pre)
    if job is not None:
        outs.extend(svc.finish(job, svc.run_job(job)))
    return outs


@pytest.mark.parametrize("role", ["writer", "reader"])
def test_service_outputs_are_the_same_decoded_ahead(prod: Project, role: str) -> None:
    lim = Limits(max_message=65_536)
    plain = HubService(MemLedger(prod), Clock(), lim)
    ahead = HubService(MemLedger(prod), Clock(), lim)
    for svc in (plain, ahead):
        svc.connect("C", "u", role)
    for f in FRAMES:
        want = shape(serve(plain, "C", f, False))
        assert shape(serve(ahead, "C", f, True)) == want, f
    assert plain.rev == ahead.rev


def test_rate_limit_comes_before_a_decoded_ahead_frame(prod: Project) -> None:
    """The rate token is taken at handle time, as before: a frame decoded ahead (even a bad
    one) is refused for the rate, not answered for its body."""
    lim = Limits(rate=0.001, burst=1)
    svc = HubService(MemLedger(prod), Clock(), lim)
    svc.connect("C", "u")
    first, second = sat("1", "1"), "evt.sat#2\n{not json"
    pre1, pre2 = svc.decode_ahead(first), svc.decode_ahead(second)
    outs, job = svc.handle("C", first, pre1)
    assert job is not None and outs == []
    outs, job = svc.handle("C", second, pre2)
    assert job is None and len(outs) == 1 and isinstance(outs[0], Close)
    assert outs[0].code == CLOSE_POLICY
