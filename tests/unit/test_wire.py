"""The wire codec against every frame of the original daql hub, malformed input and properties."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import re
from collections.abc import Callable
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.errors import WireError
from core.model import Action, Audit, Cmd, Conflict, Event, Note, Status, Trans, Update, Watch
from core.revision import ZERO_REV, format_rev, parse_rev
from core.wire import (
    MAX_FRAME,
    Ack,
    Frame,
    MonReq,
    Reject,
    SatReq,
    SatRes,
    SubReq,
    dec_conflict,
    dec_mon,
    dec_sat,
    dec_sat_res,
    dec_status,
    dec_sub,
    dec_trans,
    dec_unmon,
    dec_update,
    decode_body,
    decode_error,
    decode_json,
    dumps,
    enc_conflict,
    enc_mon,
    enc_sat,
    enc_sat_res,
    enc_status,
    enc_sub,
    enc_trans,
    enc_update,
    format_frame,
    format_push,
    format_reply,
    parse_frame,
    pub_reply,
)
from tests.data.daql_frames import CLIENT_FRAMES, FRAMES, SERVER_FRAMES, DaqlFrame

R0 = parse_rev("2026-11-26T11:26:54.628Z")

# Which decoder reads the body of each client request subject (None: no body).
REQUEST_DECODERS: dict[str, Callable[[Any], Any] | None] = {
    "evt.stat": None,
    "evt.pub": dec_trans,
    "evt.sub": dec_sub,
    "evt.unsub": dec_sub,
    "evt.mon": dec_mon,
    "evt.unmon": dec_unmon,
    "evt.sat": dec_sat,
}


def fid(f: DaqlFrame) -> str:
    return f"{f.session}-{f.conn}-{f.text.split(chr(10))[0]}"


def test_the_capture_is_complete() -> None:
    assert len(FRAMES) == 75
    assert len(CLIENT_FRAMES) == 34
    assert len(SERVER_FRAMES) == 41
    assert {f.session for f in FRAMES} == {"session1", "session2", "go-client"}


# --- client -> server --------------------------------------------------------------------------


def decode_request(text: str) -> tuple[Frame, Any]:
    frame = parse_frame(text)
    dec = REQUEST_DECODERS[frame.subj]
    if dec is None:
        return frame, None
    return frame, dec(decode_body(frame))


@pytest.mark.parametrize("f", CLIENT_FRAMES, ids=fid)
def test_every_client_frame_parses(f: DaqlFrame) -> None:
    text = f.text
    if text == "evt.pub#13\nnot json":
        with pytest.raises(WireError, match="invalid JSON body") as info:
            decode_request(text)
        assert (info.value.subj, info.value.tok, info.value.fatal) == ("evt.pub", "13", False)
        return
    if text == "evt.sub#14":
        with pytest.raises(WireError, match="missing JSON body") as info:
            decode_request(text)
        assert (info.value.subj, info.value.tok, info.value.fatal) == ("evt.sub", "14", False)
        return
    if text == "evt.nope#15\n{}":
        frame = parse_frame(text)
        assert frame == Frame("evt.nope", "15", "{}")
        assert frame.subj not in REQUEST_DECODERS  # the hub answers: unknown subject
        return
    frame, value = decode_request(text)
    head = text.split("\n")[0]
    assert frame.subj + (f"#{frame.tok}" if frame.tok else "") == head
    expected_type = {
        "evt.stat": type(None), "evt.pub": Trans, "evt.sub": SubReq, "evt.unsub": SubReq,
        "evt.mon": MonReq, "evt.unmon": int, "evt.sat": SatReq,
    }[frame.subj]
    assert isinstance(value, expected_type)
    if frame.body is not None:
        # nothing the client said is lost: re-encoding gives its fields back
        sent = json.loads(frame.body)
        again = {
            "evt.pub": enc_trans, "evt.sub": enc_sub, "evt.unsub": enc_sub, "evt.mon": enc_mon,
            "evt.sat": enc_sat, "evt.unmon": lambda v: {"mon": v},
        }[frame.subj](value)
        assert covers(again, sent)


def covers(again: Any, sent: Any) -> bool:
    """``again`` holds every value of ``sent`` (null lists, zero ids and zero times are the
    defaults, so an encoder may leave them out)."""
    if isinstance(sent, dict):
        return isinstance(again, dict) and all(
            v in (None, 0, "0001-01-01T00:00:00Z") or (k in again and covers(again[k], v))
            for k, v in sent.items())
    if isinstance(sent, list):
        return (isinstance(again, list) and len(again) == len(sent)
                and all(covers(a, b) for a, b in zip(again, sent, strict=True)))
    return bool(again == sent)


def test_covers() -> None:
    assert covers({"a": 1, "b": [{"c": 2, "d": 3}]}, {"a": 1, "b": [{"c": 2}], "z": None})
    assert not covers({"a": 1}, {"a": 2})
    assert not covers({"b": [{"c": 2}]}, {"b": [{"c": 3}]})
    assert not covers({"b": []}, {"b": [1]})
    assert not covers({}, {"a": "x"})


def test_client_frames_decode_to_the_right_values() -> None:
    frames = {(f.session, f.conn, f.text.split("\n")[0]): f.text for f in CLIENT_FRAMES}

    def get(session: str, conn: str, head: str) -> Any:
        return decode_request(frames[session, conn, head])

    frame, value = get("session1", "A", "evt.stat#1")
    assert frame == Frame("evt.stat", "1", None) and value is None
    assert get("session1", "A", "evt.stat#2")[0] == Frame("evt.stat", "2", None)
    assert get("session1", "B", "evt.sub#1")[1] == SubReq(0, ("prod.cat", "prod.prod"))
    _, t = get("session1", "A", "evt.pub#4")
    assert t == Trans(acts=(Action("prod.cat", "1", Cmd.NEW, {"name": "a"}),))
    _, t = get("session1", "A", "evt.pub#6")
    assert t.acts == (Action("prod.cat", "1", Cmd.MOD, {"name": "b"}),
                      Action("prod.prod", "25", Cmd.NEW, {"name": "Y", "cat": 1}))
    _, t = get("session1", "B", "evt.pub#3")
    assert (t.base, t.usr, len(t.acts)) == (ZERO_REV, "bob", 1)
    assert get("session1", "A", "evt.pub#9")[1] == Trans(acts=())
    _, t = get("session1", "A", "evt.pub#11")
    assert t.acts == (Action("prod.cat", "99", Cmd.DEL, None),)
    assert get("session1", "B", "evt.mon#2")[1] == MonReq(
        0, (Watch("prod.cat", ("1",)), Watch("prod.prod", ("new",))))
    assert get("session1", "B", "evt.unmon#4")[1] == 1
    assert get("session1", "B", "evt.unsub#6")[1] == SubReq(0, ("prod.prod",))
    assert get("session1", "D", "evt.sat#1")[1] == SatReq(0, (), ("prod.cat",))
    _, sat = get("session1", "D", "evt.sat#2")
    assert sat == SatReq(0, (Trans(acts=(Action("prod.cat", "7", Cmd.NEW, {"name": "sat"}),)),),
                         ("prod.label",))
    frame, t = get("session1", "A", "evt.pub")
    assert frame.tok == "" and t.acts[0].top == "prod.label"


def test_go_client_frames() -> None:
    go = [f.text for f in CLIENT_FRAMES if f.session == "go-client"]
    assert decode_request(go[0]) == (Frame("evt.stat", "1", None), None)
    frame, sat = decode_request(go[1])
    assert frame.tok == "" and sat == SatReq(0, (), ("prod.cat",))  # "trans": null
    frame, t = decode_request(go[2])
    assert t == Trans(acts=(Action("prod.cat", "1", Cmd.NEW, {"name": "a </>"}),))
    assert decode_request(go[3])[1] == SubReq(0, ("prod.cat",))


# --- server -> client --------------------------------------------------------------------------

# Which decoder and encoder read and write the result of each reply subject.
RESULT_CODECS: dict[str, tuple[Callable[[Any], Any], Callable[[Any], Any]]] = {
    "evt.stat": (dec_status, enc_status),
    "evt.pub": (dec_update, enc_update),
    "evt.sub": (dec_update, enc_update),
    "evt.sat": (dec_sat_res, enc_sat_res),
}


@pytest.mark.parametrize("f", SERVER_FRAMES, ids=fid)
def test_every_server_frame_decodes_and_re_encodes_identically(f: DaqlFrame) -> None:
    frame = parse_frame(f.text)
    payload = decode_body(frame)
    if frame.subj == "evt.update":
        assert frame.tok == "" and f.text.endswith("\n")
        upd = dec_update(payload)
        assert isinstance(upd, Update) and upd.evs
        again = enc_update(upd)
        assert again == payload
        assert format_push("evt.update", again) == f.text  # byte for byte, as daql
        return
    assert set(payload) in ({"res"}, {"err"})
    err = decode_error(payload)
    if err is not None:
        message, conflicts = err
        assert message == payload["err"] and conflicts == ()
        assert format_reply(frame.subj, frame.tok, err=message) == f.text
        return
    res = payload["res"]
    if res is None or isinstance(res, bool | int):
        value: Any = res
        again = res
    else:
        dec, enc = RESULT_CODECS[frame.subj]
        value = dec(res)
        again = enc(value)
    assert again == res
    assert json.loads(format_reply(frame.subj, frame.tok, res=again).split("\n", 1)[1]) == payload
    assert format_reply(frame.subj, frame.tok, res=again) == f.text  # byte for byte


def test_status_ledger_extension() -> None:
    """The ledger id (Outpost extension) is a field of its own after daql's four; a Status
    without one encodes exactly as daql's, and a daql reply decodes with none."""
    daql = Status(R0, "m")
    assert list(enc_status(daql)) == ["rev", "mig", "on", "off"]
    ours = Status(R0, "m", ledger="9b2e4c0d5a7f41e68c3d2b1a0f9e8d7c")
    assert list(enc_status(ours)) == ["rev", "mig", "on", "off", "ledger"]
    assert dec_status(enc_status(ours)) == ours and dec_status(enc_status(daql)) == daql
    with pytest.raises(WireError, match="field 'ledger' must be a string"):
        dec_status({"rev": "0001-01-01T00:00:00Z", "ledger": 5})


def test_status_restore_points_extension() -> None:
    """Every restore point (session 8): ``restores`` after the latest one's fields, oldest
    first; ``restores_omitted`` only when the hub left earlier ones out."""
    pts = ((R0, "1" * 32), (R0 + 5, "2" * 32))
    st = Status(R0, "m", restored=R0 + 5, restore_id="2" * 32, restores=pts)
    enc = enc_status(st)
    assert list(enc) == ["rev", "mig", "on", "off", "restored", "restore_id", "restores"]
    assert enc["restores"][1] == {"rev": format_rev(R0 + 5), "id": "2" * 32}
    assert dec_status(enc) == st
    cut = Status(R0, "m", restored=R0 + 5, restore_id="2" * 32, restores=pts[1:],
                 restores_omitted=3)
    assert enc_status(cut)["restores_omitted"] == 3 and dec_status(enc_status(cut)) == cut
    with pytest.raises(WireError, match="field 'id' is missing"):
        dec_status({"rev": "0001-01-01T00:00:00Z", "restores": [{"rev": format_rev(R0)}]})
    with pytest.raises(WireError, match="restores_omitted"):
        dec_status({"rev": "0001-01-01T00:00:00Z", "restores_omitted": -1})


def test_server_values() -> None:
    texts = [f.text for f in SERVER_FRAMES]
    stat = dec_status(decode_body(parse_frame(texts[0]))["res"])
    assert stat == Status(0, "", 0, 0)
    pub = dec_update(decode_body(parse_frame(texts[4]))["res"])
    assert pub == Update(R0, (Event(1, R0, "prod.cat", "1", Cmd.NEW, {"name": "a"}),))
    note_push = next(t for t in texts if '"note"' in t)
    upd = dec_update(decode_body(parse_frame(note_push)))
    assert upd.note == (Note(1, (Watch("prod.cat", ("1",)), Watch("prod.prod", ("25",)))),)
    dels = [e for t in texts if t.startswith("evt.update")
            for e in dec_update(decode_body(parse_frame(t))).evs if e.cmd == Cmd.DEL]
    assert dels and all(e.arg is None for e in dels)


def test_pushes_end_with_newline_and_replies_do_not() -> None:
    u = Update(R0, (Event(1, R0, "a.b", "1", Cmd.DEL),))
    assert format_push("evt.update", enc_update(u)).endswith("}\n")
    assert format_reply("evt.pub", "4", res=enc_update(u)).endswith("}")
    assert format_frame("evt.stat", "1") == "evt.stat#1"
    assert format_frame("evt.stat") == "evt.stat"


def test_conflict_reply_round_trip() -> None:
    c = Conflict("field.site", "k1", Cmd.MOD, "field changed", ("name",), {"name": "x"}, R0, "bob")
    text = format_reply("evt.pub", "3", err="conflict", conflicts=[enc_conflict(c)])
    payload = decode_body(parse_frame(text))
    assert decode_error(payload) == ("conflict", (c,))


def test_a_conflict_names_each_fields_own_change_beside_the_records() -> None:
    # user review 13 F8: ``by`` (ours) per field; absent when rev/usr say it all (daql's shape)
    r1, r2 = R0 + 1000, R0 + 2000
    c = Conflict("field.site", "k1", Cmd.MOD, "field changed", ("lat", "region"),
                 {"lat": 46.0, "region": "East"}, r2, "bob",
                 {"lat": (r1, "alice"), "region": (r2, "bob")})
    d = enc_conflict(c)
    assert d["usr"] == "bob" and d["by"]["lat"]["usr"] == "alice"
    assert dec_conflict(d) == c
    plain = Conflict("field.site", "k1", Cmd.MOD, "field changed", ("lat",), {"lat": 1}, r2,
                     "bob")
    assert "by" not in enc_conflict(plain) and dec_conflict(enc_conflict(plain)) == plain


# --- frames: accepted shapes -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "frame"),
    [
        ("evt.stat", Frame("evt.stat", "", None)),
        ("evt.stat#1", Frame("evt.stat", "1", None)),
        ("evt.stat#1\n", Frame("evt.stat", "1", None)),
        ("evt.stat#1\r\n", Frame("evt.stat", "1", None)),
        ("evt.sub#2\n{}\n", Frame("evt.sub", "2", "{}")),
        ("evt.sub#2\n  {}  \n\n", Frame("evt.sub", "2", "{}")),
        (b"evt.sub#2\n{}", Frame("evt.sub", "2", "{}")),
        (bytearray(b"evt.sub\n{}"), Frame("evt.sub", "", "{}")),
        ("evt.sub#2\n{\"a\":\n1}", Frame("evt.sub", "2", "{\"a\":\n1}")),
    ],
)
def test_frame_shapes(text: str | bytes, frame: Frame) -> None:
    assert parse_frame(text) == frame


def test_body_null_is_no_body_content() -> None:
    assert decode_body(parse_frame("evt.sub#1\nnull")) is None
    assert dec_sub(None) == SubReq(0, ())
    assert decode_body(parse_frame("evt.stat#1"), required=False) is None


# --- malformed input ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "fatal", "match"),
    [
        ("", True, "frame without subject"),
        ("\n{}", True, "frame without subject"),
        ("#1\n{}", True, "frame without subject"),
        (" evt.sub#1\n{}", True, "frame without subject"),
        ("evt sub#1\n{}", True, "frame without subject"),
        ("_evt.internal#1\n{}", True, "internal subject '_evt.internal'"),
        ("_#1", True, "internal subject"),
        ("_", True, "internal subject"),
        (b"evt.sub#1\n{\"tops\": [\"\xff\"]}", True, "not valid UTF-8"),
        (b"\xc3\x28", True, "not valid UTF-8"),
        (b"evt.sub#1\n\xed\xa0\x80", True, "not valid UTF-8"),  # an encoded surrogate
        ("evt.x\x00#1\n{}", True, "control"),
        ("evt.x#1\x07\n{}", True, "control"),
        ("\ud800#1\n{}", True, "non-text"),
        ("e" * 129 + "#1", True, "longer than 128"),
        ("evt.x#" + "1" * 129, True, "longer than 128"),
        ("evt.pub#1\n" + "x" * MAX_FRAME, True, "over the limit"),
        (b"evt.pub#1\n" + b"x" * MAX_FRAME, True, "over the limit"),
        ("evt.pub#1\n" + "é" * (MAX_FRAME // 2 + 1), True, "over the limit"),  # bytes, not chars
    ],
)
def test_bad_frames_are_fatal(data: str | bytes, fatal: bool, match: str) -> None:
    with pytest.raises(WireError, match=match) as info:
        parse_frame(data)
    assert info.value.fatal is fatal


def test_frame_size_limit_is_configurable() -> None:
    assert parse_frame("evt.x#1\n" + "1" * 92, max_size=100).body == "1" * 92
    with pytest.raises(WireError, match="101 bytes is over the limit of 100") as info:
        parse_frame("evt.x#1\n" + "1" * 93, max_size=100)
    assert info.value.fatal


def body_error(text: str, dec: Callable[[Any], Any] | None = None) -> WireError:
    frame = parse_frame(text)
    with pytest.raises(WireError) as info:
        value = decode_body(frame)
        if dec is not None:
            dec(value)
    assert not info.value.fatal, "a bad body deserves an error reply, not a close"
    return info.value


@pytest.mark.parametrize(
    ("text", "dec", "match"),
    [
        ("evt.pub#1\nnot json", None, "invalid JSON body"),
        ("evt.pub#1\n{\"acts\": [}", None, "invalid JSON body"),
        ("evt.pub#1\n{\"a\": NaN}", None, "invalid JSON body"),
        ("evt.pub#1\n{\"a\": 1e999}", None, "invalid JSON body"),
        ("evt.pub#1\n{} {}", None, "invalid JSON body"),
        ("evt.pub#1\n\"\ud800\"", None, "invalid JSON body"),
        ("evt.pub#1\n" + "[" * 2000 + "]" * 2000, None, "invalid JSON body"),
        ("evt.pub#1\n" + "{\"a\":" * 2000 + "1" + "}" * 2000, None, "invalid JSON body"),
        ("evt.sub#1", None, "missing JSON body"),
        ("evt.sub#1\n[]", dec_sub, "expected a JSON object, got a list"),
        ("evt.sub#1\n\"x\"", dec_sub, "expected a JSON object, got the string 'x'"),
        ("evt.sub#1\n{\"rev\": 5}", dec_sub, "field 'rev' must be an RFC 3339 time string"),
        ("evt.sub#1\n{\"rev\": \"yesterday\"}", dec_sub, "invalid revision 'yesterday'"),
        ("evt.sub#1\n{\"tops\": \"prod.cat\"}", dec_sub, "field 'tops' must be a list"),
        ("evt.sub#1\n{\"tops\": [1]}", dec_sub, r"evt.sub.tops\[0\]: must be a string"),
        ("evt.unmon#1\n{\"mon\": \"1\"}", dec_unmon, "field 'mon' must be an integer"),
        ("evt.unmon#1\n{\"mon\": true}", dec_unmon, "field 'mon' must be an integer"),
        ("evt.unmon#1\n{\"mon\": 1.5}", dec_unmon, "field 'mon' must be an integer"),
        ("evt.unmon#1\n{\"mon\": 18446744073709551615}", dec_unmon, "within 64 bits"),
        ("evt.unmon#1\n{\"mon\": 123456789012345678901234567890}", dec_unmon, "integer"),
        ("evt.mon#1\n{\"watch\": [{\"keys\": [\"1\"]}]}", dec_mon, "field 'top' is missing"),
        ("evt.mon#1\n{\"watch\": {}}", dec_mon, "field 'watch' must be a list"),
        ("evt.pub#1\n{\"acts\": [{\"top\": \"a.b\", \"key\": \"1\", \"cmd\": \"upd\"}]}",
         dec_trans, "unknown cmd 'upd': expected new, mod or del"),
        ("evt.pub#1\n{\"acts\": [{\"top\": \"a.b\", \"key\": \"1\"}]}",
         dec_trans, "field 'cmd' is missing"),
        ("evt.pub#1\n{\"acts\": [{\"top\": \"a.b\", \"key\": 1, \"cmd\": \"new\"}]}",
         dec_trans, r"trans.acts\[0\]: field 'key' must be a string, got the number 1"),
        ("evt.pub#1\n{\"acts\": [{\"top\": \"a.b\", \"key\": \"1\", \"cmd\": \"new\", "
         "\"arg\": [1]}]}", dec_trans, "field 'arg' must be an object"),
        ("evt.pub#1\n{\"acts\": [], \"base\": \"2026-02-30T00:00:00Z\"}", dec_trans,
         "field 'base'"),
        ("evt.pub#1\n{\"acts\": [], \"id\": 1e3}", dec_trans, "field 'id' must be an integer"),
        ("evt.sat#1\n{\"trans\": [1]}", dec_sat, r"evt.sat.trans\[0\]: expected a JSON object"),
        ("evt.sat#1\n{\"lim\": -1}", dec_sat, "'lim' must not be negative"),
        ("evt.sat#1\n{\"rev\": \"9999-12-31T23:59:59Z\", \"lim\": 1}", None, ""),
        ("evt.sat#1\n{\"rev\": \"9999-12-31T23:59:59-01:00\"}", dec_sat, "after 9999-12-31"),
    ],
)
def test_bad_bodies_are_wire_errors_not_fatal(
    text: str, dec: Callable[[Any], Any] | None, match: str
) -> None:
    if match == "":  # a valid control case in the middle of the table
        assert dec_sat(decode_body(parse_frame(text))).lim == 1
        return
    err = body_error(text, dec)
    assert match and re.search(match, str(err)), str(err)


def test_json_errors_keep_subject_token_and_cause() -> None:
    err = body_error("evt.pub#13\nnot json")
    assert (err.subj, err.tok) == ("evt.pub", "13")
    assert isinstance(err.__cause__, orjson.JSONDecodeError)


@pytest.mark.parametrize(
    ("dec", "obj", "match"),
    [
        (dec_update, {"rev": "2026-01-01T00:00:00Z", "evs": [{"id": "1", "cmd": "new",
                                                             "top": "a"}]}, "field 'id'"),
        (dec_update, {"evs": [{"id": 1, "cmd": "new"}]}, "field 'top' is missing"),
        (dec_update, {"note": [{"mon": 1, "watch": [{"top": "a", "keys": [None]}]}]},
         "must be a string, got null"),
        (dec_status, {"rev": [], "mig": ""}, "field 'rev'"),
        (dec_status, {"mig": 5}, "field 'mig' must be a string"),
        (dec_sat_res, {"more": "yes"}, "field 'more' must be true or false"),
        (dec_sat_res, {"acks": [{"uid": 1}]}, "field 'uid' must be a string"),
        (dec_sat_res, {"rejects": [{"uid": "u", "err": "x", "conflicts": [{"cmd": "x"}]}]},
         "unknown cmd 'x'"),
        (dec_conflict, {"cmd": "mod", "fields": "name"}, "field 'fields' must be a list"),
        (decode_error, {"err": "x", "conflicts": "no"}, "field 'conflicts' must be a list"),
    ],
)
def test_bad_results_are_wire_errors(dec: Callable[[Any], Any], obj: Any, match: str) -> None:
    with pytest.raises(WireError, match=match):
        dec(obj)


# --- properties --------------------------------------------------------------------------------

revs = st.integers(min_value=0, max_value=parse_rev("9999-12-31T23:59:59.999Z"))
names = st.text(st.characters(codec="utf-8"), max_size=12)
ints64 = st.integers(min_value=-(2**63), max_value=2**63 - 1)
json_values = st.recursive(
    st.none() | st.booleans() | ints64 | st.floats(allow_nan=False, allow_infinity=False)
    | names,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(names, inner, max_size=3),
    max_leaves=8,
)
args = st.dictionaries(names, json_values, max_size=4)


@st.composite
def actions(draw: st.DrawFn) -> Action:
    cmd = draw(st.sampled_from(list(Cmd)))
    arg = None if cmd == Cmd.DEL else draw(st.none() | args)
    return Action(draw(names), draw(names), cmd, arg)


@st.composite
def events(draw: st.DrawFn) -> Event:
    a = draw(actions())
    return Event(draw(ints64), draw(revs), a.top, a.key, a.cmd, a.arg)


trans = st.builds(
    Trans,
    acts=st.lists(actions(), max_size=3).map(tuple),
    base=revs, id=ints64, rev=revs, created=revs, arrived=revs, usr=names,
    extra=st.none() | st.dictionaries(names, json_values, min_size=1, max_size=2),
    uid=names,
)
watches = st.builds(Watch, top=names, keys=st.lists(names, max_size=3).map(tuple))
notes = st.builds(Note, mon=ints64, watch=st.lists(watches, max_size=2).map(tuple))
updates = st.builds(Update, rev=revs, evs=st.lists(events(), max_size=4).map(tuple),
                    note=st.lists(notes, max_size=2).map(tuple))
statuses = st.builds(Status, rev=revs, mig=names, on=revs, off=revs,
                     ledger=st.just("") | st.from_regex(r"[0-9a-f]{32}", fullmatch=True))
conflicts = st.builds(
    Conflict, top=names, key=names, cmd=st.sampled_from(list(Cmd)), reason=names,
    fields=st.lists(names, max_size=3).map(tuple), theirs=st.none() | args, rev=revs, usr=names,
    by=st.none() | st.dictionaries(names, st.tuples(revs, names), min_size=1, max_size=2),
)
sat_reqs = st.builds(SatReq, rev=revs, trans=st.lists(trans, max_size=3).map(tuple),
                     tops=st.lists(names, max_size=3).map(tuple),
                     lim=st.integers(min_value=0, max_value=2**63 - 1), audits=st.booleans(),
                     cont=st.booleans())
sat_res = st.builds(
    SatRes, rev=revs, evs=st.lists(events(), max_size=3).map(tuple),
    acks=st.lists(st.builds(Ack, uid=names, rev=revs), max_size=3).map(tuple),
    rejects=st.lists(st.builds(Reject, uid=names, err=names,
                               conflicts=st.lists(conflicts, max_size=2).map(tuple)),
                     max_size=2).map(tuple),
    more=st.booleans(), cont=st.booleans(),
)

ROUND_TRIPS: list[tuple[str, Any, Callable[[Any], Any], Callable[[Any], Any]]] = [
    ("trans", trans, enc_trans, dec_trans),
    ("update", updates, enc_update, dec_update),
    ("status", statuses, enc_status, dec_status),
    ("sat_req", sat_reqs, enc_sat, dec_sat),
    ("sat_res", sat_res, enc_sat_res, dec_sat_res),
    ("conflict", conflicts, enc_conflict, dec_conflict),
]


@pytest.mark.parametrize(("name", "strategy", "enc", "dec"), ROUND_TRIPS,
                         ids=[r[0] for r in ROUND_TRIPS])
def test_round_trip(name: str, strategy: Any, enc: Callable[[Any], Any],
                    dec: Callable[[Any], Any]) -> None:
    @given(strategy)
    @settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow])
    def check(value: Any) -> None:
        assert dec(decode_json(dumps(enc(value)))) == value
        # and through a whole frame
        frame = parse_frame(format_reply("evt.x", "7", res=enc(value)))
        assert dec(decode_body(frame)["res"]) == value

    check()


DECODERS = [dec_sub, dec_mon, dec_unmon, dec_trans, dec_sat, dec_update, dec_status,
            dec_sat_res, decode_error]


def only_wire_errors(data: str | bytes) -> None:
    try:
        frame = parse_frame(data)
    except WireError:
        return
    try:
        body = decode_body(frame, required=False)
    except WireError as exc:
        assert not exc.fatal
        return
    for dec in DECODERS:
        with contextlib.suppress(WireError):
            dec(body)


# frames that look like requests, so the decoders get to see real JSON
json_bodies = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=30)
    | st.sampled_from(["2026-11-26T11:26:54.628Z", "0001-01-01T00:00:00Z", "new", "del"]),
    lambda inner: st.lists(inner, max_size=4)
    | st.dictionaries(st.sampled_from(["rev", "tops", "watch", "mon", "acts", "trans", "top",
                                       "key", "cmd", "arg", "evs", "note", "keys", "id",
                                       "base", "lim", "err", "conflicts", "more", "acks",
                                       "rejects", "uid", "fields", "theirs"]),
                      inner, max_size=6),
    max_leaves=20,
)


@given(st.text(max_size=200))
@settings(max_examples=200)
def test_arbitrary_text_only_raises_wire_error(text: str) -> None:
    only_wire_errors(text)
    only_wire_errors("evt.sub#1\n" + text)


@given(st.binary(max_size=200))
@settings(max_examples=200)
def test_arbitrary_bytes_only_raise_wire_error(data: bytes) -> None:
    only_wire_errors(data)
    only_wire_errors(b"evt.pub#2\n" + data)


@given(json_bodies)
@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
def test_arbitrary_json_bodies_only_raise_wire_error(body: Any) -> None:
    try:
        text = json.dumps(body)
    except ValueError:
        return
    only_wire_errors("evt.sat#3\n" + text)
    only_wire_errors(("evt.pub#4\n" + text).encode())


_FIELD_VALUES = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(2**64), max_value=2**64), st.text(max_size=8),
    st.sampled_from(["", "2026-11-26T11:26:54.628Z", "2026-11-26T11:26:54Z", "not a rev",
                     "new", "mod", "del"]),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
    st.lists(st.integers(), max_size=2))
_ACTION_LIKE = st.one_of(
    _FIELD_VALUES,
    st.fixed_dictionaries({}, optional={k: _FIELD_VALUES for k in ("top", "key", "cmd", "arg")}),
    st.fixed_dictionaries({"top": st.just("field.site"), "key": st.text(max_size=4),
                           "cmd": st.sampled_from(["new", "mod", "del"])},
                          optional={"arg": st.dictionaries(st.text(max_size=3), st.integers(),
                                                           max_size=2)}))
_TRANS_LIKE = st.fixed_dictionaries(
    {}, optional={"acts": st.one_of(_FIELD_VALUES, st.lists(_ACTION_LIKE, max_size=3)),
                  **{k: _FIELD_VALUES for k in ("base", "id", "rev", "created", "arrived", "usr",
                                                "extra", "uid")}})


@given(_TRANS_LIKE)
@settings(max_examples=600, suppress_health_check=[HealthCheck.too_slow])
def test_fast_trans_decoding_matches_the_careful_reader(obj: dict[str, Any]) -> None:
    """dec_trans takes a fast path for well-formed bodies: same value, or the reader's error."""
    from core import wire

    def careful() -> Any:
        fast = wire._fast_trans, wire._fast_action
        wire._fast_trans = wire._fast_action = lambda *a: None  # type: ignore[assignment]
        try:
            return dec_trans(obj, "evt.pub")
        except WireError as exc:
            return str(exc)
        finally:
            wire._fast_trans, wire._fast_action = fast

    try:
        got: Any = dec_trans(obj, "evt.pub")
    except WireError as exc:
        got = str(exc)
    assert got == careful()


def _plain_acks(res: Any) -> Any:
    """``res`` with its acks as :class:`Ack` objects (dec_sat_res gives a reply's audits as
    its acks when they say the same ``(uid, rev)``): to compare with a result built of Acks."""
    if not isinstance(res, SatRes):
        return res
    return dataclasses.replace(res, acks=tuple(Ack(a.uid, a.rev) for a in res.acks))


def _careful_sat_res(obj: Any) -> Any:
    """evt.sat result through the careful reader only (what dec_sat_res was before its fast
    paths for events, acks and audits): the value, or the error message."""
    from core import wire

    def ev(o: Any, where: str) -> Event:
        r = wire._Reader(o, where)
        cmd = wire._cmd(r)
        return Event(r.int("id"), r.rev("rev"), r.str("top", required=True), r.str("key"), cmd,
                     r.dict("arg"))

    def ack(o: Any, where: str) -> Ack:
        r = wire._Reader(o, where)
        return Ack(r.str("uid"), r.rev("rev"))

    def audit(o: Any, where: str) -> Any:
        r = wire._Reader(o, where)
        return wire.Audit(r.rev("rev"), r.rev("created"), r.rev("arrived"), r.str("usr"),
                          r.dict("extra"), r.str("uid"))

    try:
        r = wire._Reader(obj, "evt.sat result")
        more, cont = r.flag("more"), r.flag("cont")
        return SatRes(r.rev("rev"), r.list("evs", ev), r.list("acks", ack),
                      r.list("rejects", wire._dec_reject), more, r.list("audits", audit), cont)
    except WireError as exc:
        return str(exc)


_REV_LIKE = st.one_of(_FIELD_VALUES, st.sampled_from(["2026-11-26T11:26:54.628Z",
                                                      "2026-11-26T11:26:55.1Z", "bad"]))
_ITEM_LIKE = st.one_of(
    _FIELD_VALUES,
    st.fixed_dictionaries({}, optional={k: _REV_LIKE for k in (
        "id", "rev", "top", "key", "cmd", "arg", "uid", "usr", "created", "arrived", "extra")}),
    st.fixed_dictionaries({"id": st.integers(0, 9), "rev": st.just("2026-11-26T11:26:54.628Z"),
                           "top": st.just("field.site"), "key": st.text(max_size=3),
                           "cmd": st.sampled_from(["new", "mod", "del"])}),
    st.fixed_dictionaries({"rev": st.sampled_from(["2026-11-26T11:26:54.628Z", ""])},
                          optional={"usr": st.text(max_size=3), "uid": st.text(max_size=3),
                                    "created": _REV_LIKE, "extra": _FIELD_VALUES}))


@given(st.fixed_dictionaries({}, optional={
    "rev": _REV_LIKE, "more": st.booleans(), "cont": st.one_of(st.booleans(), st.none()),
    **{k: st.one_of(_FIELD_VALUES, st.lists(_ITEM_LIKE, max_size=4))
       for k in ("evs", "acks", "audits")}}))
@settings(max_examples=600, suppress_health_check=[HealthCheck.too_slow])
def test_sat_res_fast_paths_match_the_careful_reader(obj: dict[str, Any]) -> None:
    """dec_sat_res decodes well-formed events, acks and audits without the reader (and parses
    each revision text once per frame): same value, or the reader's error."""
    try:
        got: Any = dec_sat_res(obj)
    except WireError as exc:
        got = str(exc)
    assert _plain_acks(got) == _careful_sat_res(obj)


_SAT_ACTION = st.fixed_dictionaries({"top": st.just("field.site"), "key": st.text(max_size=4),
                                     "cmd": st.sampled_from(["new", "mod", "del"]),
                                     "arg": st.one_of(st.none(), st.dictionaries(
                                         st.text(max_size=3), st.integers(), max_size=2))})
def _broken(d: dict[str, Any], change: tuple[str, Any] | None) -> dict[str, Any]:
    """``d`` with one field replaced (or, ``"+"``, one more field), or as it is."""
    if change is None:
        return d
    name, value = change
    return {**d, "usr": value} if name == "+" else {**d, name: value}


# a satellite's transaction (Satellite.prepare; dec_sat decodes it inline, session 14), mostly
# well-formed, and its near misses: one field of another type or value, or a fifth field
_SAT_TRANS_LIKE = st.builds(
    _broken,
    st.fixed_dictionaries({
        "base": st.sampled_from(["0001-01-01T00:00:00Z", "2026-11-26T11:26:54.628Z"]),
        "created": st.sampled_from(["2026-11-26T11:26:55.1Z", "2026-11-26T11:26:55Z"]),
        "uid": st.text(min_size=1, max_size=6),
        "acts": st.lists(_SAT_ACTION, min_size=1, max_size=2)}),
    st.one_of(st.none(), st.tuples(
        st.sampled_from(["base", "created", "uid", "acts", "+"]),
        st.one_of(_REV_LIKE, st.lists(_ACTION_LIKE, min_size=1, max_size=1)))))


@given(st.lists(_SAT_TRANS_LIKE, min_size=1, max_size=3))
@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
def test_sat_request_of_a_satellites_shape_matches_the_careful_reader(trans: list[Any]) -> None:
    """A satellite's transactions (base, created, uid, one action) are decoded inline by
    dec_sat: the same Trans as the careful reader's (uid, both revisions, the action), or
    its error."""
    from core import wire

    obj = {"rev": "2026-11-26T11:26:54.628Z", "tops": ["field.site"], "trans": trans}
    try:
        got: Any = dec_sat(obj)
    except WireError as exc:
        got = str(exc)
    fast = wire._fast_trans, wire._fast_action
    wire._fast_trans = wire._fast_action = lambda *a: None  # type: ignore[assignment]
    wire._SAT_SHAPE = False
    try:
        want: Any = dec_sat(obj)
    except WireError as exc:
        want = str(exc)
    finally:
        wire._fast_trans, wire._fast_action = fast
        wire._SAT_SHAPE = True
    assert got == want


@given(st.fixed_dictionaries({}, optional={
    "rev": _REV_LIKE, "tops": st.lists(st.text(max_size=3), max_size=2),
    "trans": st.one_of(_FIELD_VALUES, st.lists(_TRANS_LIKE, max_size=4),
                       st.lists(st.fixed_dictionaries({
                           "base": st.sampled_from(["2026-11-26T11:26:54.628Z", ""]),
                           "uid": st.text(max_size=3),
                           "acts": st.lists(_ACTION_LIKE, max_size=2)}), max_size=4),
                       st.lists(_SAT_TRANS_LIKE, max_size=4))}))
@settings(max_examples=600, suppress_health_check=[HealthCheck.too_slow])
def test_sat_request_fast_path_matches_the_careful_reader(obj: dict[str, Any]) -> None:
    """dec_sat decodes the transactions of a request in one pass (each revision text parsed
    once; a satellite's shape inline): same value, or the reader's error."""
    from core import wire

    def careful() -> Any:
        fast = wire._fast_trans, wire._fast_action
        wire._fast_trans = wire._fast_action = lambda *a: None  # type: ignore[assignment]
        wire._SAT_SHAPE = False
        try:
            return dec_sat(obj)
        except WireError as exc:
            return str(exc)
        finally:
            wire._fast_trans, wire._fast_action = fast
            wire._SAT_SHAPE = True

    try:
        got: Any = dec_sat(obj)
    except WireError as exc:
        got = str(exc)
    assert got == careful()


def test_sat_res_encodes_each_revision_as_format_rev_does() -> None:
    """The reply encoder formats each revision once (events, acks and audits share them);
    the texts are format_rev's, also when an audit's created is in another second."""
    from core.model import Audit
    from core.revision import format_rev

    revs = [R0 + i * 37 for i in range(5)]
    res = SatRes(revs[-1], tuple(Event(i + 1, r, "a.b", str(i), Cmd.NEW, {"x": i})
                                 for i, r in enumerate(revs)),
                 tuple(Ack(f"u{i}", r) for i, r in enumerate(revs)), (), False,
                 tuple(Audit(r, r - 86_400_000 * (i + 1), 0, "me", None, f"u{i}")
                       for i, r in enumerate(revs)))
    d = enc_sat_res(res)
    assert [e["rev"] for e in d["evs"]] == [a["rev"] for a in d["acks"]] \
        == [a["rev"] for a in d["audits"]] == [format_rev(r) for r in revs]
    assert [a["created"] for a in d["audits"]] == [format_rev(a.created) for a in res.audits]
    back = dec_sat_res(orjson.loads(dumps(d)))
    assert back.acks == back.audits  # the audits say what the acks say: they stand for them
    assert _plain_acks(back) == res


@given(st.lists(st.builds(Event, id=ints64, rev=revs, top=names, key=names,
                         cmd=st.sampled_from(list(Cmd)), arg=st.none() | args), max_size=4),
       st.lists(st.builds(
    Audit, rev=revs, created=st.just(0) | revs, arrived=st.just(0), usr=names,
    extra=st.none() | args, uid=st.just("") | names), max_size=4))
@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
def test_sat_res_encodes_events_and_audits_as_their_own_encoders(evs: list[Event],
                                                                  audits: list[Any]) -> None:
    """enc_sat_res writes the events and audits inline (session 14): the bytes of
    enc_events' and enc_audits' (same keys, same order, same omissions)."""
    from core.wire import enc_audits, enc_events

    d = enc_sat_res(SatRes(R0, tuple(evs), (), (), False, tuple(audits)))
    assert dumps(d.get("evs", [])) == dumps(enc_events(evs))
    assert dumps(d.get("audits", [])) == dumps(enc_audits(audits))


_ARGS = st.none() | st.dictionaries(
    st.text(max_size=5), st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=8)
    | st.lists(st.integers(-(2**63), 2**63 - 1), max_size=3), max_size=4)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(rev=st.integers(3, 2**45), tok=st.sampled_from(["", "1", "evt-9", "x#y"]),
       evs=st.lists(st.tuples(st.integers(0, 2**63 - 1), st.integers(-3, 0),
                              st.text(min_size=1, max_size=6), st.text(max_size=6),
                              st.sampled_from(list(Cmd)), _ARGS), max_size=4))
def test_pub_reply_is_format_reply_of_enc_update(
        rev: int, tok: str, evs: list[tuple[int, int, str, str, Cmd, Any]]) -> None:
    """The hub's one-transaction reply (``pub_reply``) is byte for byte the general one,
    for events of the reply's revision and (never from a publish) of others."""
    events = tuple(Event(i, rev + d, top, key, cmd, arg) for i, d, top, key, cmd, arg in evs)
    general = format_reply("evt.pub", tok, enc_update(Update(rev, events)))
    assert pub_reply("evt.pub", tok, rev, events) == general
    if events:
        _head, _, body = general.partition("\n")
        assert json.loads(body)["res"]["evs"][0]["cmd"] == events[0].cmd.value


def _parse_frame_before(data: str | bytes, max_size: int) -> Frame:
    """``parse_frame`` as it was before its ASCII fast path (session 10): the oracle."""
    size = len(data)
    if isinstance(data, str) and not data.isascii() and size <= max_size:
        size = len(data.encode("utf-8", "surrogatepass"))
    if size > max_size:
        raise WireError(f"frame of {size} bytes is over the limit of {max_size} bytes",
                        fatal=True)
    if isinstance(data, bytes | bytearray | memoryview):
        try:
            data = bytes(data).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise WireError(f"frame is not valid UTF-8: {exc.reason} at byte {exc.start}",
                            fatal=True) from exc
    head, sep, body = data.partition("\n")
    head = head.rstrip("\r")
    subj, _, tok = head.partition("#")
    if not subj or subj.strip() != subj or " " in subj:
        raise WireError("frame without subject: expected 'subj[#tok]' on the first line",
                        tok=tok, fatal=True)
    if subj.startswith("_"):
        raise WireError(f"internal subject {subj!r} is not accepted from clients",
                        subj=subj, tok=tok, fatal=True)
    if not (subj + tok).isprintable():
        raise WireError("subject or token with control or non-text characters", fatal=True)
    if len(subj) > 128 or len(tok) > 128:
        raise WireError("subject or token longer than 128 characters", subj=subj[:128],
                        tok=tok[:128], fatal=True)
    stripped = body.strip() if sep else ""
    return Frame(subj, tok, stripped or None)


def _outcome(fn: Callable[[], Frame]) -> Any:
    try:
        return fn()
    except WireError as exc:
        return (str(exc), exc.subj, exc.tok, exc.fatal)


_FRAME_TEXT = st.one_of(
    st.text(alphabet=st.sampled_from("evt.pub#_ \r\n\t{}\"1a\x00\x7fé€\U0001f600\ud800"),
            max_size=40),
    st.builds(lambda s, t, b: f"{s}#{t}\n{b}", st.sampled_from(["evt.pub", "evt.sub", "_x",
                                                              "e v", " evt", "évt", ""]),
              st.text(max_size=6), st.text(max_size=20)),
)


@settings(max_examples=500, suppress_health_check=[HealthCheck.too_slow])
@given(text=_FRAME_TEXT, max_size=st.integers(0, 60), as_bytes=st.booleans())
def test_parse_frame_is_what_it_was(text: str, max_size: int, as_bytes: bool) -> None:
    """The ASCII fast path (text within the limit taken as it is) and the subject/token
    check without concatenating them change no outcome: the same frame or the same error,
    for text (ASCII or not, lone surrogates, control characters, at and over the byte
    limit) and for bytes (valid UTF-8 or not)."""
    data: str | bytes = text
    if as_bytes:
        data = text.encode("utf-8", "surrogatepass")
    assert _outcome(lambda: parse_frame(data, max_size)) == \
        _outcome(lambda: _parse_frame_before(data, max_size))


def test_a_replays_reply_gives_its_audits_as_its_acks() -> None:
    """dec_sat_res of a reply whose acks name its audits' uids at their revisions, one for
    one and in order (a satellite's replay), gives the audits themselves as the acks (no Ack
    objects built: ~3 M instructions per 1,000); any other reply decodes its acks as before,
    and a bad value is named as the careful reader names it."""
    from core.model import Audit

    revs = [R0 + i * 37 for i in range(4)]
    audits = [Audit(r, r - 5, 0, "me", None, f"u{i}") for i, r in enumerate(revs)]
    acks = [Ack(f"u{i}", r) for i, r in enumerate(revs)]

    def reply(acks: list[Ack], audits: list[Audit]) -> Any:
        d = enc_sat_res(SatRes(revs[-1], (), tuple(acks), (), False, tuple(audits)))
        return orjson.loads(dumps(d))

    res = dec_sat_res(reply(acks, audits))
    assert res.acks is res.audits and [Ack(a.uid, a.rev) for a in res.acks] == acks
    for other_acks, other_audits in [
            (acks[::-1], audits),                              # another order
            (acks[:3], audits),                                # one audit more
            (acks, audits[:3]),                                # one ack more
            ([*acks[:3], Ack("u3", revs[2])], audits),         # another revision
            ([Ack("x", revs[0]), *acks[1:]], audits),          # another uid
    ]:
        res = dec_sat_res(reply(other_acks, other_audits))
        assert all(type(a) is Ack for a in res.acks), (other_acks, other_audits)
        assert list(res.acks) == other_acks and list(res.audits) == other_audits
    # equal raw values, but bad: the ack's error, as before (not the audit's)
    bad = {"rev": "2026-11-26T11:26:54.628Z", "acks": [{"uid": "u0", "rev": 5}],
           "audits": [{"uid": "u0", "rev": 5}]}
    with pytest.raises(WireError, match=r"acks\[0\].*field 'rev' must be an RFC 3339"):
        dec_sat_res(bad)
    # an ack that is not an object
    with pytest.raises(WireError, match="acks"):
        dec_sat_res({"acks": [1], "audits": [{"uid": "u0"}]})


def test_a_replys_events_and_audits_are_built_as_their_classes() -> None:
    """dec_sat_res builds a reply's events and audits with ``core.frozen.builder`` (the
    satellite decodes 2,000 per reply of 1,000): each is exactly an ``Event`` / ``Audit``,
    equal to the constructor's, frozen, and read the same way."""
    from core.model import Audit

    ev = Event(3, R0, "field.site", "s1", Cmd.NEW, {"name": "A"})
    au = Audit(R0, R0 - 5, 0, "me", {"why": "x"}, "u1")
    res = dec_sat_res(orjson.loads(dumps(enc_sat_res(SatRes(R0, (ev,), (), (), False,
                                                            (au,))))))
    [e], [a] = res.evs, res.audits
    assert type(e) is Event and type(a) is Audit
    assert (e, a) == (ev, au)
    assert repr(e) == repr(ev) and dataclasses.astuple(a) == dataclasses.astuple(au)
    for obj in (e, a):
        with pytest.raises(dataclasses.FrozenInstanceError):
            obj.rev = 1  # type: ignore[misc]
