"""Hypothesis state machine: random valid and invalid transactions on random bases, published
to the SQLite ledger and the in-memory ledger side by side with the same clock.

Checked after every step: same outcome on both (result, or error type and message); a failed
transaction leaves the SQLite database unchanged in content; conflicts are reported exactly
when DESIGN §3 says (an oracle written here from the table, independent of rules.py); a resent
uid changes nothing; the state tables equal a replay of the event log (``verify``).

CI runs a few hundred steps; ``OUTPOST_STATEFUL_EXAMPLES=200 OUTPOST_STATEFUL_STEPS=50`` runs
more by hand.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule
from sqlalchemy import select

from core.errors import ConflictError, ValidationError
from core.ledger.memory import MemLedger
from core.ledger.protocols import PubResult
from core.ledger.sql import SqlLedger
from core.model import Action, Cmd, Event, Sig, Trans
from core.schema import Project, load_project
from tests.conftest import DEMO_SCHEMA

PROJECT: Project = load_project(DEMO_SCHEMA)
EXAMPLES = int(os.environ.get("OUTPOST_STATEFUL_EXAMPLES", "30"))
STEPS = int(os.environ.get("OUTPOST_STATEFUL_STEPS", "30"))

KEYS = ["a", "b", "c"]
good_values = {
    "name": st.sampled_from(["n1", "n2", "ünï"]),
    "region": st.sampled_from(["north", "south", None]),
    "lat": st.sampled_from([1.5, -2.25, 3, None]),
}
bad_values = {"lat": st.just("north"), "nmae": st.just("x"), "name": st.just(None)}


@st.composite
def actions(draw: st.DrawFn) -> Action:
    top = draw(st.sampled_from(["field.site"] * 12 + ["field.sit"]))
    key = draw(st.sampled_from([*KEYS, *KEYS, ""] if draw(st.integers(0, 20)) == 0 else KEYS))
    cmd = draw(st.sampled_from([Cmd.NEW, Cmd.MOD, Cmd.MOD, Cmd.DEL]))
    if cmd == Cmd.DEL:
        return Action(top, key, cmd)
    names = draw(st.lists(st.sampled_from(list(good_values)), min_size=1, max_size=2,
                          unique=True))
    arg: dict[str, Any] = {n: draw(good_values[n]) for n in names}
    if cmd == Cmd.NEW and "name" not in arg:
        arg["name"] = "n0"
    if draw(st.integers(0, 15)) == 0:
        bad = draw(st.sampled_from(list(bad_values)))
        arg[bad] = draw(bad_values[bad])
    return Action(top, key, cmd, arg)


def dump(led: SqlLedger) -> list[list[tuple[Any, ...]]]:
    with led.engine.connect() as conn:
        return [[tuple(r) for r in conn.execute(select(t).order_by(*t.primary_key.columns))]
                for t in led.metadata.sorted_tables]


def oracle_conflicts(trans: Trans, evs: list[Event]) -> set[Sig]:
    """The Sigs DESIGN §3 says collide, from the event log (any action on a Sig may collide).

    A zero base is daql's "no base" (rules.py): ``mod``/``del`` never conflict then.
    """
    out: set[Sig] = set()
    for a in trans.acts:
        sig = Sig(a.top, a.key)
        later = [e for e in evs if e.sig == sig and e.rev > trans.base]
        cmds = {e.cmd for e in later}
        if trans.base == 0 and a.cmd != Cmd.NEW:
            hit = False  # the zero base is daql's "no base": mod/del apply to the current state
        elif a.cmd == Cmd.NEW:
            hit = Cmd.NEW in cmds
        elif Cmd.DEL in cmds:
            hit = True
        elif a.cmd == Cmd.DEL:
            hit = Cmd.MOD in cmds or Cmd.NEW in cmds
        else:
            hit = any(set(e.arg or ()) & set(a.arg or ()) for e in later)
        if hit:
            out.add(sig)
    return out


def shape_ok(trans: Trans, rev: int) -> bool:
    if not trans.acts or trans.base > rev:
        return False
    try:
        for a in trans.acts:
            PROJECT.check_action(a)
    except ValidationError:
        return False
    return True


class LedgerMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.dir = tempfile.mkdtemp(prefix="outpost-stateful-")
        self.sql = SqlLedger(f"sqlite:///{self.dir}/l.db", PROJECT)
        self.mem = MemLedger(PROJECT)
        self.clock = 10_000
        self.revs = [0]
        self.applied: dict[str, PubResult] = {}
        self.sent: dict[str, tuple[tuple[Action, ...], str]] = {}  # uid: its actions, user
        self.n = 0

    def teardown(self) -> None:
        self.sql.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    def both(self, trans: Trans, usr: str, now: int) -> tuple[Any, Any]:
        out = []
        for led in (self.mem, self.sql):
            try:
                out.append(led.publish(trans, usr, now))
            except (ValidationError, ConflictError) as exc:
                out.append(exc)
        return out[0], out[1]

    @rule(acts=st.lists(actions(), min_size=0, max_size=4), base_i=st.integers(0, 1000),
          future=st.integers(0, 30), step=st.integers(-3000, 3000), usr=st.sampled_from("xyz"))
    def publish(self, acts: list[Action], base_i: int, future: int, step: int,
                usr: str) -> None:
        base = self.revs[base_i % len(self.revs)]
        if future == 0:
            base = self.mem.rev() + 5
        self.clock = max(0, self.clock + step)
        self.n += 1
        uid = f"u{self.n}"
        trans = Trans(tuple(acts), base=base, uid=uid, usr="client-says")
        evs_before = self.mem.events(0)
        rev_before = self.mem.rev()
        before = dump(self.sql)
        m, s = self.both(trans, usr, self.clock)
        assert type(m) is type(s), (m, s)
        if isinstance(m, Exception):
            assert str(m) == str(s)
            assert dump(self.sql) == before, "a failed transaction changed the database"
            assert self.sql.uid_rev(uid) is None
        else:
            assert m == s
            assert m.rev > rev_before
            assert s.rev >= self.clock or s.rev == rev_before + 1
            audit = self.sql.audit(s.rev)
            assert audit is not None and audit.usr == usr
            self.applied[uid] = s
            self.sent[uid] = (tuple(acts), usr)
            self.revs.append(s.rev)
        if shape_ok(trans, rev_before) and trans.base < rev_before:
            expected = oracle_conflicts(trans, evs_before)
            if expected:
                assert isinstance(m, ConflictError), (expected, m)
                assert {Sig(c.top, c.key) for c in m.conflicts} == expected
            else:
                assert not isinstance(m, ConflictError), m

    @precondition(lambda self: bool(self.applied))
    @rule(pick=st.integers(0, 1000), acts=st.lists(actions(), min_size=1, max_size=2),
          same=st.booleans(), usr=st.sampled_from("xyz"))
    def resend(self, pick: int, acts: list[Action], same: bool, usr: str) -> None:
        uid = sorted(self.applied)[pick % len(self.applied)]
        original = self.applied[uid]
        before = dump(self.sql)
        first_acts, first_usr = self.sent[uid]
        if same:  # a resend: the same actions by the same user
            acts, usr = list(first_acts), first_usr
        trans = Trans(tuple(acts), base=0, uid=uid)
        m, s = self.both(trans, usr, self.clock + 99_999)
        if (tuple(acts) == first_acts and usr == first_usr) or (
                isinstance(m, PubResult) and usr == first_usr):  # acts equal to the events
            assert m == s == PubResult(original.rev, original.evs, dup=True)
        else:  # other actions under the uid, or another user's (session 11): refused
            assert isinstance(m, ValidationError) and isinstance(s, ValidationError)
            assert str(m) == str(s) and f"uid {uid} was already applied" in str(m)
        assert dump(self.sql) == before

    @invariant()
    def same_and_consistent(self) -> None:
        assert self.sql.rev() == self.mem.rev()
        assert self.sql.events(0) == self.mem.events(0)
        assert self.sql.states("field.site") == self.mem.states("field.site")
        assert self.sql.verify() == []
        assert self.mem.verify() == []


LedgerMachine.TestCase.settings = settings(
    max_examples=EXAMPLES, stateful_step_count=STEPS, deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
TestLedgerMachine = LedgerMachine.TestCase
