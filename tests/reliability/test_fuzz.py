"""Fuzzing the frame parser, the hub's service and a live hub with Hypothesis.

Properties: no uncaught exception (the parser raises only WireError; the service returns
outputs for every input), the hub stays up and answers ``evt.stat`` afterwards, and a connection
is only ever closed with a documented code (DESIGN §4, hubserver/limits.py): 1002 protocol,
1008 policy, 1009 too big, 1013 too slow — never 1011 (a bug).

Fast tier: 300 cases against the live hub (plus 1,000 on the parser and the service);
soak (``OUTPOST_SOAK=1``): 10,000 against the live hub.
"""

from __future__ import annotations

import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from core.errors import WireError
from core.ledger import MemLedger
from core.schema import Project
from core.wire import parse_frame
from hubserver.limits import Limits
from hubserver.service import SUBJECTS, Close, HubService
from tests.reliability.hubthread import hub_thread

DOCUMENTED = {1000, 1002, 1008, 1009, 1013}
SOAK_CASES = 10_000

_json = st.recursive(
    st.none() | st.booleans() | st.integers(-2**63, 2**63) | st.floats(allow_nan=False)
    | st.text(max_size=20),
    lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=8), c, max_size=4),
    max_leaves=12)
_keys = st.sampled_from(["rev", "base", "acts", "tops", "trans", "top", "key", "cmd", "arg",
                         "uid", "usr", "watch", "mon", "lim", "keys", "id"])
_tops = st.sampled_from(["field.site", "field.obs", "nope", "", "field"])
_act = st.fixed_dictionaries({"top": _tops, "key": st.text(max_size=6),
                              "cmd": st.sampled_from(["new", "mod", "del", "x"])},
                             optional={"arg": st.dictionaries(
                                 st.sampled_from(["name", "lat", "notes", "bad"]), _json,
                                 max_size=3)})
_rev = st.one_of(st.sampled_from(["0001-01-01T00:00:00Z", "2026-01-01T00:00:00Z",
                                  "2999-01-01T00:00:00+02:00", "bad"]), _json)
_body = st.one_of(
    _json,
    st.dictionaries(_keys, _json, max_size=5),
    st.fixed_dictionaries({"base": _rev, "acts": st.lists(_act, max_size=3)},
                          optional={"uid": st.text(max_size=10), "usr": st.text(max_size=5)}),
    st.fixed_dictionaries({"rev": _rev, "tops": st.lists(_tops, max_size=3)},
                          optional={"trans": st.lists(st.fixed_dictionaries(
                              {"base": _rev, "acts": st.lists(_act, max_size=2),
                               "uid": st.text(max_size=8)}), max_size=2)}),
)
_subj = st.one_of(st.sampled_from([*SUBJECTS, "_internal", "evt.update", ""]),
                  st.text(max_size=12))
_tok = st.one_of(st.just(""), st.text(alphabet="0123456789abc#", max_size=4))


@st.composite
def frames(draw: Any) -> str:
    """A frame: mostly well-formed subjects with odd bodies, sometimes pure noise."""
    if draw(st.integers(0, 9)) == 0:
        return str(draw(st.text(max_size=60)))
    subj = draw(_subj)
    tok = draw(_tok)
    head = f"{subj}#{tok}" if tok else subj
    kind = draw(st.integers(0, 3))
    if kind == 0:
        return head
    if kind == 1:
        return head + "\n" + str(draw(st.text(max_size=40)))
    body = orjson.dumps(draw(_body), option=orjson.OPT_NON_STR_KEYS).decode()
    return head + "\n" + body + ("\n" if draw(st.booleans()) else "")


@settings(max_examples=1000, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.one_of(frames(), st.binary(max_size=80)))
def test_parser_raises_only_wire_error(frame: str | bytes) -> None:
    try:
        f = parse_frame(frame, 1 << 20)
    except WireError as exc:
        assert str(exc)  # the message says what is wrong
    else:
        assert isinstance(f.subj, str) and f.subj


@settings(max_examples=1000, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.lists(st.one_of(frames(), st.binary(max_size=40)), min_size=1, max_size=5))
def test_service_answers_every_input(project: Project, batch: list[str | bytes]) -> None:
    svc = HubService(MemLedger(project), limits=Limits(rate=1e9, burst=10**9))
    svc.connect(1, "fuzz", "writer")
    for text in batch:
        outs = svc.handle_sync(1, text)
        for o in outs:
            if isinstance(o, Close):
                assert o.code in DOCUMENTED, o
                svc.connect(1, "fuzz", "writer")


class LiveFuzz:
    """One websockets client to a live hub; reconnects after a documented close."""

    def __init__(self, url: str):
        self.url = url
        self.ws: ClientConnection | None = None
        self.stack = ExitStack()
        self.closes: dict[int, int] = {}
        self.sent = 0

    def conn(self) -> ClientConnection:
        if self.ws is None:
            self.stack.close()
            self.ws = self.stack.enter_context(connect(self.url, open_timeout=10,
                                                       max_size=None))
        return self.ws

    def send(self, frame: str) -> None:
        ws = self.conn()
        self.sent += 1
        try:
            ws.send(frame)
            # a request with a token gets a reply; read whatever comes within a moment
            for _ in range(3):
                ws.recv(timeout=0.02 if "#" in frame.split("\n", 1)[0] else 0.001)
        except TimeoutError:
            return
        except ConnectionClosed as exc:
            code = exc.rcvd.code if exc.rcvd is not None else 1006
            self.closes[code] = self.closes.get(code, 0) + 1
            assert code in DOCUMENTED, f"closed with undocumented code {code}: {exc}"
            self.ws = None

    def close(self) -> None:
        self.stack.close()
        self.ws = None


def fuzz_live(tmp_path: Path, project: Project, cases: int) -> None:
    with hub_thread(tmp_path / "hub.db", project,
                    limits=Limits(rate=1e6, burst=10**6, max_message=1 << 16)) as hub:
        client = LiveFuzz(hub.url)
        t0 = time.monotonic()

        @settings(max_examples=cases, deadline=None, database=None,
                  suppress_health_check=list(HealthCheck))
        @given(frames())
        def one(frame: str) -> None:
            client.send(frame)

        try:
            one()
        finally:
            client.close()
        # the hub is still up and answers
        with connect(hub.url, open_timeout=10) as ws:
            ws.send("evt.stat#1")
            assert ws.recv(timeout=10).startswith("evt.stat#1\n{\"res\"")
        print(f"FUZZ live hub: {client.sent} frames in {time.monotonic() - t0:.1f} s, "
              f"closes by code {client.closes}; hub up afterwards")


@pytest.mark.timeout(300)
def test_live_hub_survives_fuzzing(tmp_path: Path, project: Project) -> None:
    fuzz_live(tmp_path, project, 300)


@pytest.mark.soak
@pytest.mark.slow
@pytest.mark.timeout(3600)
def test_live_hub_survives_fuzzing_soak(tmp_path: Path, project: Project) -> None:
    fuzz_live(tmp_path, project, SOAK_CASES)
