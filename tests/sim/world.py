"""The deterministic simulation: one hub and several satellites over a simulated network.

Everything runs in one thread on a virtual clock, driven by a single seeded
``random.Random``: the same seed replays the same run, frame for frame.

- The **hub** is the real :class:`hubserver.service.HubService` over a synchronous in-memory
  ledger (:class:`core.ledger.memory.MemLedger`): a publish runs at once; its outputs go
  through one send queue per connection in the asyncio adapter's order (a reply seals the
  pushes fanned out before it; catch-ups are read batch by batch where they are queued), and
  coalesced pushes (``Flush``) are taken after a short virtual delay, as the adapter's writer.
  An ``evt.sat`` reply older than the hub's recent events (kept small for some seeds) is read
  where it is queued as the adapter's writer thread reads it (``hubserver.satreply``): the
  read starts bounded by the revision fanned out then, ends a random while later (what was
  fanned out meanwhile comes from the recent events), fails now and then during the session
  (its error reply carries the acks of the request's transactions), and the connection's
  next requests wait until its reply is sent (``Peer.held``).
- Each **satellite** is the real :class:`core.satellite.satellite.Satellite` on its own SQLite
  file in the test's ``tmp_path``, with the real :class:`core.satellite.machine.SyncMachine`
  (jitter from the seeded random, time from the virtual clock). A satellite clock may be off by
  a day: it only stamps ``created``.
- The **network** is ours. Every frame gets a random delay (sometimes a long one), so frames of
  different satellites and connections reach the hub in shuffled order; hub → satellite frames
  are sometimes delivered twice; a frame may be lost, which breaks its connection (as on TCP:
  a lost segment is never skipped over, the stream stalls) — then either both ends see a close
  after a while, or the connection hangs until the machine's request timeout; connection
  attempts fail at random; satellites are partitioned from the hub for long stretches (offline
  sessions), switch to "work offline" and back, and **crash** (the SQLite file is closed
  mid-flight and reopened later, with a new machine; replies in flight are lost).
  Within one live connection frames stay in order, because a WebSocket over TCP guarantees
  that and the protocol relies on it (a push carries no sequence number).
- **Edits** collide on purpose: a handful of keys, a few fields, new/mod/del chosen from what
  the user sees, two-record transactions, and an "office" publishing on the hub directly with
  stale bases. Rejected transactions are sometimes resolved (keep mine / theirs / per field).

After the session the network heals (no faults, partitions end, crashed satellites restart,
everyone back online) and the run continues until every satellite is idle and nothing is in
flight — bounded in steps and virtual time. :mod:`tests.sim.invariants` then checks the
invariants.
"""

from __future__ import annotations

import heapq
import random
import re
import shutil
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from core.errors import OutpostError, StorageError, ValidationError
from core.ledger.memory import MemLedger
from core.model import Action, Cmd, Event, Trans
from core.revision import Rev, format_rev, parse_rev
from core.satellite.api import Keep, ReceiptState
from core.satellite.machine import Apply, Backoff, Close, Open, Phase, Send, SyncMachine
from core.satellite.satellite import Satellite
from core.schema import Project
from core.subs import Delivery
from core.wire import dec_update, parse_frame
from hubserver import satreply
from hubserver import service as hubsvc
from hubserver.limits import Limits
from hubserver.recent import RecentEvents

BASE_REV: Rev = parse_rev("2026-11-26T00:00:00Z")
DAY_MS = 86_400_000
TOPIC = "field.site"
FIELDS = ("name", "region", "lat", "lon", "notes")
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


@dataclass(frozen=True)
class Size:
    """How big one simulated session is."""

    sats: tuple[int, int] = (2, 3)        # satellites (min, max)
    edits: tuple[int, int] = (2, 4)       # edits per satellite
    office: tuple[int, int] = (0, 2)      # edits published on the hub directly
    keys: int = 4                         # keys edits pick from (few: collisions)
    duration: float = 25.0                # virtual seconds of faulty session
    max_steps: int = 20_000               # bound on simulation steps after the heal
    max_heal: float = 900.0               # bound on virtual seconds after the heal


SMALL = Size()
LONG = Size(sats=(3, 5), edits=(5, 20), office=(1, 5), keys=6, duration=120.0,
            max_steps=200_000, max_heal=1800.0)


@dataclass
class Faults:
    """Fault probabilities of the network while the session runs (all off after the heal)."""

    on: bool = True
    drop: float = 0.03          # a frame is lost (its connection breaks)
    hang: float = 0.5           # a broken connection hangs until keepalive ends it
    dup: float = 0.05           # a hub -> satellite frame is delivered twice
    slow: float = 0.1           # a frame is slow (0.3-3 s) instead of fast (1-50 ms)
    connect_fail: float = 0.15  # a connection attempt fails


@dataclass
class Conn:
    """One simulated WebSocket connection."""

    id: int
    sat: SimSat | None           # None: a watcher's
    gen: int                     # the satellite's incarnation that opened it
    alive: bool = True           # the hub still has it
    broken: bool = False         # a frame was lost: nothing more gets through
    open_: bool = False          # the satellite's machine was told it is connected
    last: dict[str, float] = field(default_factory=lambda: {"up": 0.0, "down": 0.0})
    outq: deque[Any] = field(default_factory=deque)  # the hub's send queue (texts, pushes,
    sending: bool = False                             # catch-ups); a step is scheduled
    watcher: Watcher | None = None
    held: bool = False           # an evt.sat reply is being read: requests wait in inbox
    inbox: deque[str] = field(default_factory=deque)


@dataclass
class Watcher:
    """A daql client on the hub: on every connection it subscribes to the topic from the
    revision it has (``evt.sub``) and applies the events of every reply and push in arrival
    order, as daql's client does; with a small ``max_batch`` its catch-ups span batches.
    What it got must be the hub's log: every event once, in order (ids are dense: one
    topic), the reply before any push of the connection. It also monitors every key of the
    topic (``evt.mon`` from the revision it has, so the missed changes are noted first): a
    connection that lasts to the end is noted every key changed after that revision, and
    no note comes before the ``evt.mon`` reply.

    A ``sat`` watcher catches up with ``evt.sat`` instead (no transactions: batches of
    ``lim``, ``more`` asked for again), as a satellite does; its ``evt.mon`` right behind it
    then waits at the hub while that reply is read from the ledger. A failed read's error
    reply makes it reconnect and ask again from the revision it has."""

    idx: int
    led: MemLedger
    sat: bool = False
    lim: int = 0
    conn: Conn | None = None
    tok: int = 0
    subscribed: bool = False     # the evt.sub reply of this connection arrived
    mon_rev: Rev = 0             # the rev the connection's evt.mon asked from
    mon: int | None = None       # its monitor id, once the evt.mon reply arrived
    noted: set[str] = field(default_factory=set)  # keys noted on this connection
    last_id: int = 0
    frames: int = 0
    errors: list[str] = field(default_factory=list)

    @property
    def name(self) -> str:
        return f"watch{self.idx}"


_PUSH = object()
"""A coalesced push in a connection's send queue (the adapter's ``hubserver.peer.FLUSH``)."""


@dataclass
class SimSat:
    """One satellite: its data directory, its Satellite and machine (None while crashed)."""

    idx: int
    path: Path
    skew: int                                  # clock offset in ms
    sat: Satellite | None = None
    m: SyncMachine | None = None
    conn: Conn | None = None
    gen: int = 0
    partitioned: bool = False
    tick_at: float | None = None
    uids: list[str] = field(default_factory=list)   # every uid this satellite made
    crashes: int = 0

    @property
    def name(self) -> str:
        return f"sat{self.idx}"


@dataclass
class Stats:
    """What happened in a run (so tests can assert the faults really occurred)."""

    frames: int = 0
    drops: int = 0
    dups: int = 0
    hangs: int = 0
    connect_fails: int = 0
    crashes: int = 0
    partitions: int = 0
    pubs: int = 0
    pub_refused: int = 0
    resolves: int = 0
    boths: int = 0              # resolved by keep both (a key taken meanwhile)
    office: int = 0
    pipelined: int = 0
    catch_ups: int = 0          # catch-up batches read for watchers (evt.sub)
    sat_reads: int = 0          # evt.sat replies read from the ledger off the "loop"
    sat_read_fails: int = 0     # ... whose read failed (injected)
    held_requests: int = 0      # requests that waited for such a read
    own_left_out: int = 0       # evt.sat replies without the satellite's own events (own)
    heal_time: float = 0.0
    steps: int = 0


class World:
    """One simulated run for ``seed``; see the module docstring.

    Args:
        seed: the seed of everything random in the run.
        root: a directory for the satellites' data (the test's ``tmp_path``).
        project: the schema.
        size: session size.
        template: a satellite data directory with the schema and an empty replica, copied
            for each satellite (creating the tables costs more than copying a file).
        trace: keep a trace of every input (for the replay test and for debugging).
        synchronous: the satellites' SQLite ``PRAGMA synchronous``. A simulated crash closes
            and reopens the file (the process survives), which WAL with ``NORMAL`` keeps
            exactly as ``FULL`` does, without an fsync per commit; power loss is not
            simulated (the real-process tests kill -9 satellites that run with ``FULL``).
    """

    def __init__(self, seed: int, root: Path, project: Project, size: Size = SMALL, *,
                 template: Path | None = None, trace: bool = False,
                 synchronous: str = "NORMAL", own: bool = True):
        self.seed = seed
        self.own = own  # the satellites ask the hub not to echo their own transactions
        self.rng = random.Random(seed)
        # the watchers' (and the hub's batch sizes'): the satellites' random stream stays
        # what it was without them
        self.wrng = random.Random(f"watchers-{seed}")
        self.root = root
        self.project = project
        self.size = size
        self.template = template
        self.synchronous = synchronous
        self.faults = Faults()
        self.stats = Stats()
        self.now = 0.0
        self._q: list[tuple[float, int, Callable[..., None], tuple[Any, ...]]] = []
        self._seq = 0
        self._in_flight = 0
        self._next_conn = 0
        self.conns: dict[int, Conn] = {}
        # the ledger id from the seed too (its own stream: the others' draws are unchanged)
        lid = f"{random.Random(f'ledger-{seed}').getrandbits(128):032x}"
        self.hub_ledger = MemLedger(project, ledger_id=lid)
        # a small max_batch makes catch-ups (evt.sat replies, evt.sub) span several batches
        batch = self.wrng.choice([2, 5000, 5000, 5000])
        self.hub = hubsvc.HubService(self.hub_ledger, clock=self.hub_clock,
                                     limits=Limits(rate=1e6, burst=1_000_000, max_batch=batch))
        self.hub.BACKLOG_BATCH = self.wrng.choice([1, 2, 1000])
        # the hub's own draws (its off-loop evt.sat reads): a stream of their own, so the
        # satellites' and the watchers' stay what they were
        self.hrng = random.Random(f"hub-{seed}")
        # few recent events (some seeds): evt.sat replies are read from the ledger, off the
        # loop, as a satellite back after a while gets them from a busy hub
        self.hub._recent = RecentEvents(self.hub.rev, self.hrng.choice([2, 4, 16, 8192]))
        self.read_fail = self.hrng.choice([0.0, 0.2, 0.5])  # while faults are on
        self.watchers: list[Watcher] = []
        self.office_uids: list[str] = []
        self._trace: list[str] | None = [] if trace else None
        self._uid_names: dict[str, str] = {}
        self.sats: list[SimSat] = []

    # -- clocks and the event queue ------------------------------------------------------------

    def hub_clock(self) -> Rev:
        return BASE_REV + int(self.now * 1000)

    def at(self, t: float, fn: Callable[..., None], *args: Any) -> None:
        self._seq += 1
        heapq.heappush(self._q, (max(t, self.now), self._seq, fn, args))

    def log(self, text: str) -> None:
        if self._trace is not None:
            text = _UUID.sub(self._uid_name, text)
            self._trace.append(f"{self.now:.6f} {text}")

    def _uid_name(self, m: re.Match[str]) -> str:
        return self._uid_names.setdefault(m[0], f"U{len(self._uid_names)}")

    @property
    def trace(self) -> list[str]:
        return list(self._trace or [])

    def _step(self) -> bool:
        if not self._q:
            return False
        t, _, fn, args = heapq.heappop(self._q)
        self.now = t
        self.stats.steps += 1
        fn(*args)
        return True

    # -- the run -------------------------------------------------------------------------------

    def run(self) -> None:
        """The whole run: set up, faulty session, heal, settle."""
        rng = self.rng
        size = self.size
        self._office_seed()
        for i in range(rng.randint(*size.sats)):
            skew = rng.choice([0, 0, DAY_MS, -DAY_MS, rng.randint(-5000, 5000)])
            s = SimSat(i, self.root / f"sat{i}", skew)
            self.sats.append(s)
            self._open_sat(s)
            self.at(rng.uniform(0, 2), self._start, s)
            for _ in range(rng.randint(*size.edits)):
                self.at(rng.uniform(0, size.duration), self._edit, s)
            for _ in range(rng.randint(0, 2)):
                t0 = rng.uniform(0, size.duration)
                self.at(t0, self._partition, s, True)
                self.at(t0 + rng.uniform(1, size.duration / 2), self._partition, s, False)
            if rng.random() < 0.2:
                t0 = rng.uniform(0, size.duration)
                self.at(t0, self._offline_mode, s, True)
                self.at(t0 + rng.uniform(1, 10), self._offline_mode, s, False)
            for _ in range(rng.choice([0, 0, 1, 1, 2])):
                self.at(rng.uniform(0, size.duration), self._crash, s)
            if rng.random() < 0.5:
                self.at(rng.uniform(size.duration / 2, size.duration), self._resolve_some, s)
        for _ in range(rng.randint(*size.office)):
            self.at(rng.uniform(0, size.duration), self._office_edit)
        for i in range(self.wrng.randint(1, 2)):
            w = Watcher(i, MemLedger(self.project), self.wrng.random() < 0.5,
                        self.wrng.choice([0, 3]))
            self.watchers.append(w)
            self.at(self.wrng.uniform(0, size.duration), self._watch_open, w)
        while self._q and self._q[0][0] <= size.duration:
            if self.stats.steps > size.max_steps:
                raise AssertionError(f"more than {size.max_steps} steps before the heal (at "
                                     f"{self.now:.3f} s): something loops; last: "
                                     f"{(self._trace or ['(run with a trace)'])[-5:]}")
            self._step()
        self._heal()
        self._settle()

    def close(self) -> None:
        for s in self.sats:
            if s.sat is not None:
                s.sat.close()
                s.sat = None

    def _heal(self) -> None:
        self.now = max(self.now, self.size.duration)
        self.log("heal")
        self.faults.on = False
        self.stats.heal_time = self.now
        for s in self.sats:
            s.partitioned = False
            if s.sat is None:
                self._restart(s, s.gen)
            assert s.m is not None
            if s.m.phase == Phase.STOPPED:
                s.m.start(self.now)
                self._pump(s)
        for w in self.watchers:
            if w.conn is None:
                self.at(self.now + self.wrng.uniform(0.0, 1.0), self._watch_open, w)

    def quiet(self) -> bool:
        """Nothing in flight, no pushes waiting at the hub, every satellite idle."""
        if self._in_flight:
            return False
        for c in self.conns.values():
            if c.alive and self.hub.pending(c.id):
                return False
        if not all(w.conn is not None and w.subscribed and w.mon is not None and w.conn.alive
                   and not w.conn.broken for w in self.watchers):
            return False
        # a satellite on a dead link looks idle until keepalive notices: not quiet yet
        return all(s.m is not None and s.m.idle and s.conn is not None and s.conn.alive
                   and not s.conn.broken for s in self.sats)

    def _settle(self) -> None:
        start, steps = self.now, 0
        while not self.quiet():
            if steps >= self.size.max_steps or self.now - start > self.size.max_heal:
                raise AssertionError(
                    f"no quiescence after the heal within {self.size.max_steps} steps / "
                    f"{self.size.max_heal:g} virtual s: " + "; ".join(
                        f"{s.name} {s.m.phase if s.m else 'crashed'} "
                        f"pending={len(s.sat.outbox()) if s.sat else '?'} "
                        f"err={s.m.info.last_error if s.m else ''!r}" for s in self.sats))
            if not self._step():
                raise AssertionError("the simulation ran out of events before quiescence")
            steps += 1

    # -- satellites ----------------------------------------------------------------------------

    def _open_sat(self, s: SimSat) -> None:
        if not s.path.exists() and self.template is not None:
            shutil.copytree(self.template, s.path)
        s.sat = Satellite(s.path, self.project, synchronous=self.synchronous,
                          clock=lambda: BASE_REV + int(self.now * 1000) + s.skew)
        # half the satellites store hub data as the asyncio client does (defer_apply: an Apply
        # done later, "on a worker thread"), so the next evt.sat leaves before a reply is
        # stored and edits are sent while one is being stored (pipelining); a third keep one
        # evt.sat in flight (as with a hub that does not echo "cont"), the others up to 2 or 3
        s.m = SyncMachine(s.sat, random.Random(self.rng.random()), lim=self.rng.choice([3, 50]),
                          backoff=Backoff(0.2, 8.0), timeout=5.0,
                          max_trans=self.rng.choice([2, 1000]),
                          first_trans=self.rng.choice([1, 100]),
                          last_trans=self.rng.choice([0, 2, 200]),
                          defer_apply=self.rng.random() < 0.5,
                          pipeline=self.rng.choice([1, 2, 3]))
        s.m.own = self.own

    def _start(self, s: SimSat) -> None:
        if s.m is not None and s.m.phase == Phase.OFFLINE and s.m.info.retry_at is None:
            s.m.start(self.now)
            self._pump(s)

    def _pump(self, s: SimSat) -> None:
        """Carry out the machine's outputs, as the asyncio adapter does."""
        m, sat = s.m, s.sat
        if m is None or sat is None:
            return
        for out in m.take():
            if isinstance(out, Open):
                self._next_conn += 1
                c = Conn(self._next_conn, s, s.gen)
                self.conns[c.id] = c
                self.log(f"{s.name} open c{c.id}")
                if s.partitioned or (self.faults.on and
                                     self.rng.random() < self.faults.connect_fail):
                    self.stats.connect_fails += 1
                    self.at(self.now + self.rng.uniform(0.01, 3.0), self._open_failed, c)
                else:
                    self.at(self.now + self.rng.uniform(0.001, 0.05), self._opened, c)
            elif isinstance(out, Send):
                if s.conn is not None and s.conn.open_:
                    if out.text.startswith("evt.sat#") and m._sat_out >= 2:
                        self.stats.pipelined += 1  # sent before the previous reply arrived
                    self._transmit(s.conn, "up", out.text)
            elif isinstance(out, Close):
                c = s.conn
                if c is not None:
                    self.log(f"{s.name} close c{c.id} {out.reason}")
                    self._hub_drop(c)
                    self.at(self.now + self.rng.uniform(0.001, 0.05), self._sat_closed, c,
                            out.reason)
            elif isinstance(out, Apply):
                # stored "on a worker thread": takes a while; frames keep arriving meanwhile
                slow = self.rng.random() < 0.2
                self.at(self.now + self.rng.uniform(0.05, 1.0) if slow else
                        self.now + self.rng.uniform(0.0005, 0.02), self._apply, s, s.gen, m, out)
        if self.rng.random() < 0.5:
            m.prepare()  # what the asyncio client does while a request is in flight
        sat.set_sync(m.info)
        w = m.wake_at()
        if w is not None and w != s.tick_at:
            s.tick_at = w
            self.at(w, self._tick, s, s.gen)

    def _apply(self, s: SimSat, gen: int, m: SyncMachine, out: Apply) -> None:
        if gen != s.gen or s.m is not m or s.sat is None:
            return  # crashed meanwhile: what was received and not stored is gone
        err = ""
        try:
            s.sat.write(out.item)
        except OutpostError as exc:
            err = str(exc)
        self.log(f"{s.name} stored {type(out.item).__name__} rev {out.item.rev} {err}")
        m.applied(self.now, err)
        self._pump(s)

    def _tick(self, s: SimSat, gen: int) -> None:
        if gen != s.gen or s.m is None:
            return
        w = s.m.wake_at()
        if w is not None and self.now >= w:
            s.tick_at = None
            s.m.tick(self.now)
            self._pump(s)

    def _opened(self, c: Conn) -> None:
        s = c.sat
        if s is None:
            return
        if c.gen != s.gen or s.m is None or not c.alive:
            return
        if s.partitioned:
            self._open_failed(c)
            return
        if s.m.phase != Phase.CONNECTING:
            self._hub_drop(c)
            return
        self.hub.connect(c.id, s.name)
        s.conn, c.open_ = c, True
        self.log(f"{s.name} connected c{c.id}")
        s.m.connected(self.now)
        self._pump(s)

    def _open_failed(self, c: Conn) -> None:
        s = c.sat
        c.alive = False
        if s is None:
            return
        if c.gen != s.gen or s.m is None:
            return
        self.log(f"{s.name} open failed c{c.id}")
        s.m.disconnected(self.now, "connect failed")
        self._pump(s)

    def _sat_closed(self, c: Conn, reason: str) -> None:
        if c.watcher is not None:
            self._watch_closed(c, reason)
            return
        s = c.sat
        if s is None:
            return
        if c.gen != s.gen or s.m is None or s.conn is not c:
            return
        s.conn = None
        c.open_ = False
        self.log(f"{s.name} closed c{c.id} {reason}")
        s.m.disconnected(self.now, reason)
        self._pump(s)

    def _edit(self, s: SimSat) -> None:
        sat = s.sat
        if sat is None:
            return
        rng = self.rng
        acts = [self._action(sat, rng)]
        if rng.random() < 0.2:
            a2 = self._action(sat, rng)
            if a2.key != acts[0].key:
                acts.append(a2)
        try:
            uid = sat.pub(acts)
        except ValidationError as exc:
            self.stats.pub_refused += 1
            self.log(f"{s.name} pub refused {exc}")
            return
        s.uids.append(uid)
        self.stats.pubs += 1
        self.log(f"{s.name} pub {uid} {acts}")
        if s.m is not None:
            s.m.local_change(self.now)
            self._pump(s)

    def _action(self, sat: Satellite, rng: random.Random) -> Action:
        key = f"k{rng.randrange(self.size.keys)}"
        seen = sat.record(TOPIC, key)
        if seen is None or seen.fields is None:
            return Action(TOPIC, key, Cmd.NEW, {"name": f"n{rng.randrange(100)}",
                                                "lat": float(rng.randrange(90))})
        if rng.random() < 0.15:
            return Action(TOPIC, key, Cmd.DEL)
        fields = rng.sample(FIELDS[:4], rng.randint(1, 2))
        arg: dict[str, Any] = {}
        for f in fields:
            arg[f] = (float(rng.randrange(90)) if f in ("lat", "lon")
                      else f"{f}{rng.randrange(100)}")
        return Action(TOPIC, key, Cmd.MOD, arg)

    def _resolve_some(self, s: SimSat) -> None:
        sat = s.sat
        if sat is None:
            return
        for r in sat.receipts([ReceiptState.REJECTED]):
            taken = sat.both_keys(r.uid)  # a record created under a key taken meanwhile
            choice = self.rng.choice(["mine", "theirs", "fields", *(["both"] if taken else [])])
            keep: Keep | dict[str, dict[str, Keep]]
            keys = None
            if choice == "both":  # under new keys the seed draws (a replay is the same)
                keep = Keep.BOTH
                keys = {sig: f"b{self.rng.randrange(10**9)}" for sig in taken}
            elif choice == "mine":
                keep = Keep.MINE
            elif choice == "theirs":
                keep = Keep.THEIRS
            else:
                keep = {f"{a.top} {a.key}": {f: self.rng.choice([Keep.MINE, Keep.THEIRS])
                                             for f in (a.arg or {"name": None})}
                        for a in r.acts}
            try:
                new = sat.resolve(r.uid, keep, keys=keys)
            except ValidationError as exc:
                self.log(f"{s.name} resolve refused {r.uid} {exc}")
                continue
            self.stats.resolves += 1
            self.stats.boths += choice == "both"
            self.log(f"{s.name} resolve {r.uid} {choice} -> {new}")
            if new:
                s.uids.append(new)
        if s.m is not None:
            s.m.local_change(self.now)
            self._pump(s)

    def _partition(self, s: SimSat, on: bool) -> None:
        if not self.faults.on:
            return
        self.log(f"{s.name} partition {on}")
        s.partitioned = on
        if on:
            self.stats.partitions += 1
            if s.conn is not None:
                self._break(s.conn)

    def _offline_mode(self, s: SimSat, on: bool) -> None:
        if not self.faults.on or s.m is None:
            return
        self.log(f"{s.name} offline mode {on}")
        if on:
            c = s.conn
            s.m.stop(self.now, "work offline")
            self._pump(s)
            if c is not None:
                # the adapter closes the socket; the stopped machine ignores the close
                self._hub_drop(c)
                s.conn = None
        elif s.m.phase == Phase.STOPPED:
            s.m.start(self.now)
            self._pump(s)

    def _crash(self, s: SimSat) -> None:
        if not self.faults.on or s.sat is None:
            return
        self.log(f"{s.name} crash")
        self.stats.crashes += 1
        s.crashes += 1
        c = s.conn
        s.gen += 1
        s.sat.close()
        s.sat, s.m, s.conn, s.tick_at = None, None, None, None
        if c is not None:
            c.open_ = False
            # the hub sees the TCP reset a little later
            self.at(self.now + self.rng.uniform(0.001, 1.0), self._hub_drop, c)
        self.at(self.now + self.rng.uniform(0.1, 5.0), self._restart, s, s.gen)

    def _restart(self, s: SimSat, gen: int) -> None:
        if s.sat is not None or gen != s.gen:
            return
        self.log(f"{s.name} restart")
        self._open_sat(s)
        assert s.m is not None
        s.m.start(self.now)
        self._pump(s)

    # -- the office: publishes on the hub directly --------------------------------------------

    def _office_seed(self) -> None:
        acts = tuple(Action(TOPIC, f"k{i}", Cmd.NEW, {"name": f"office{i}"})
                     for i in range(0, self.size.keys, 2))
        self._office_pub(Trans(acts, base=self.hub.rev, uid=f"office-{len(self.office_uids)}"))

    def _office_edit(self) -> None:
        if not self.faults.on:
            return
        key = f"k{self.rng.randrange(self.size.keys)}"
        cur = self.hub_ledger.state(TOPIC, key)
        if cur is None:
            act = Action(TOPIC, key, Cmd.NEW, {"name": "office"})
        else:
            act = Action(TOPIC, key, Cmd.MOD, {self.rng.choice(FIELDS): "office"}
                         if self.rng.random() < 0.5 else {"notes": "office"})
        # a stale base, sometimes: the office also edits from an old view
        base = self.hub.rev if self.rng.random() < 0.5 else self.rng.randint(0, self.hub.rev)
        self._office_pub(Trans((act,), base=base, uid=f"office-{len(self.office_uids)}"))

    def _office_pub(self, t: Trans) -> None:
        try:
            res = self.hub_ledger.publish(t, "office", now=self.hub_clock())
        except OutpostError as exc:
            self.log(f"office refused {exc}")
            return
        self.office_uids.append(t.uid)
        self.stats.office += 1
        self.log(f"office pub {t.uid} rev {res.rev}")
        self._hub_outs(self.hub.published(list(res.evs)))

    # -- the network ---------------------------------------------------------------------------

    def _transmit(self, c: Conn, way: str, text: str) -> None:
        if not c.alive or c.broken:
            return
        f = self.faults
        rng = self._rng(c)
        self.stats.frames += 1
        if way == "down" and '"own":{' in text:
            self.stats.own_left_out += 1
        if f.on and rng.random() < f.drop:
            self.stats.drops += 1
            self.log(f"lost {way} c{c.id} {text[:40]!r}")
            self._break(c)
            return
        d = rng.uniform(0.3, 3.0) if f.on and rng.random() < f.slow else rng.uniform(0.001, 0.05)
        t = max(self.now + d, c.last[way])   # FIFO within a connection
        c.last[way] = t
        n = 1
        if way == "down" and f.on and rng.random() < f.dup and c.watcher is None:
            self.stats.dups += 1
            n = 2
        for _ in range(n):
            self._in_flight += 1
            self.at(t, self._deliver, c, way, text)

    def _deliver(self, c: Conn, way: str, text: str) -> None:
        self._in_flight -= 1
        if way == "up":
            if not c.alive:
                return
            self.log(f"hub <- c{c.id} {text}")
            self._hub_handle(c, text)
            return
        if c.watcher is not None:
            self._watch_frame(c, text)
            return
        s = c.sat
        if s is None or c.gen != s.gen or s.conn is not c or s.m is None:
            return
        self.log(f"{s.name} <- c{c.id} {text}")
        try:
            s.m.received(text, self.now)
        except OutpostError as exc:  # as the adapter: storage failed, drop and retry
            self.log(f"{s.name} input failed {exc}")
            self._hub_drop(c)
            self.at(self.now + 0.01, self._sat_closed, c, str(exc))
        self._pump(s)

    def _break(self, c: Conn) -> None:
        """A frame was lost: the connection stalls; maybe both ends see a close later."""
        if c.broken or not c.alive:
            return
        c.broken = True
        rng = self._rng(c)
        if rng.random() < self.faults.hang:
            # a dead link without a close: a request times out in the machine, or (no request
            # waiting) websockets' keepalive (ping every 20 s, 20 s timeout) ends it
            self.stats.hangs += 1
            self.log(f"hang c{c.id}")
            later = self.now + rng.uniform(20.0, 40.0)
        else:
            later = self.now + rng.uniform(0.05, 4.0)
        self.at(later, self._hub_drop, c)
        self.at(later + rng.uniform(0.0, 0.5), self._sat_closed, c, "connection reset")

    def _rng(self, c: Conn) -> random.Random:
        return self.rng if c.watcher is None else self.wrng

    def _hub_drop(self, c: Conn) -> None:
        if c.alive:
            c.alive = False
            self.hub.disconnect(c.id)

    def _hub_handle(self, c: Conn, text: str) -> None:
        """The hub handles a request (``HubService.handle_sync`` but for an ``evt.sat`` reply to
        read from the ledger: queued, read later by :meth:`_send_step`), or, while one of the
        connection's replies is being read, keeps it for later (the adapter's ``Peer.held``)."""
        if c.held:
            self.stats.held_requests += 1
            c.inbox.append(text)
            return
        hub = self.hub
        outs, job = hub.handle(c.id, text)
        if job is not None:
            outs.extend(hub.finish(job, hub.run_job(job)))
        for i, o in enumerate(outs):
            if isinstance(o, hubsvc.Flush) and isinstance(o.catch_up, hubsvc.Backlog) \
                    and o.catch_up.reply is not None:
                outs[i:i + 1] = hub.catch_up_sync(c.id, o.catch_up, reply_only=True)
                break
        self._hub_outs(outs)

    def _hub_outs(self, outs: list[hubsvc.Out]) -> None:
        """Carry out the hub's outputs in the asyncio adapter's send order
        (``hubserver.server.Hub._deliver``): per connection one queue, written in order; a
        reply or a catch-up first seals the events fanned out before it into a push of their
        own (the pushes queued before it are then void); a catch-up is read and sent batch by
        batch where it is in the queue, and what was queued after it waits."""
        for o in outs:
            c = self.conns.get(o.conn)  # type: ignore[arg-type]
            if c is None:
                continue
            if isinstance(o, hubsvc.Close):
                self.log(f"hub closes c{c.id} {o.code} {o.reason}")
                self._hub_drop(c)
                self.at(self.now + self._rng(c).uniform(0.001, 0.05), self._sat_closed, c,
                        o.reason)
                continue
            if not c.alive:
                continue
            if isinstance(o, hubsvc.Flush) and o.catch_up is None:
                self._enqueue(c, _PUSH)
                continue
            if self.hub.has_push(c.id):
                # sealed as a delivery, encoded when sent (a failed catch-up before it in the
                # queue takes its topics' events out)
                sealed = self.hub.seal(c.id)
                if _PUSH in c.outq:
                    c.outq = deque(x for x in c.outq if x is not _PUSH)
                if sealed is not None:
                    self._enqueue(c, sealed)
            if isinstance(o, hubsvc.Flush) and isinstance(o.catch_up, satreply.SatRead):
                c.held = True  # its next requests wait for this reply
            self._enqueue(c, o.text if isinstance(o, hubsvc.Send) else o.catch_up)

    def _enqueue(self, c: Conn, item: Any) -> None:
        c.outq.append(item)
        if not c.sending:
            self._send_next(c)

    def _send_next(self, c: Conn) -> None:
        """The connection's sender: texts go at once; a push is taken, or a catch-up batch
        read, a little later (the adapter's end of loop iteration, its writer thread)."""
        while c.outq and c.alive:
            if isinstance(c.outq[0], str):
                self._transmit(c, "down", c.outq.popleft())
                continue
            if isinstance(c.outq[0], Delivery):
                text = self.hub.take_sealed(c.id, c.outq.popleft())
                if text is not None:
                    self._transmit(c, "down", text)
                continue
            c.sending = True
            self._in_flight += 1
            self.at(self.now + self._rng(c).uniform(0.0, 0.02), self._send_step, c)
            return
        if not c.alive:
            c.outq.clear()

    def _send_step(self, c: Conn) -> None:
        self._in_flight -= 1
        c.sending = False
        if not c.alive:
            c.outq.clear()
            return
        if c.outq and c.outq[0] is _PUSH:
            c.outq.popleft()
            text = self.hub.take_push(c.id)
            if text is not None:
                self._transmit(c, "down", text)
        elif c.outq and isinstance(c.outq[0], satreply.SatRead):
            self._sat_read(c, c.outq[0])
            return  # the sender waits for the read (still "sending")
        elif c.outq and isinstance(c.outq[0], hubsvc.Backlog):
            b = c.outq[0]
            bl = self.hub.backlog(c.id)
            if bl is None or bl[0].seq != b.seq:
                c.outq.popleft()  # sent, or stopped (evt.unsub, evt.sat)
            else:
                cur, limit = bl
                self.stats.catch_ups += 1
                evs, more = self.hub.backlog_read(cur, limit)
                for text in self.hub.backlog_push(c.id, cur, evs, more):
                    self._transmit(c, "down", text)
        self._send_next(c)


    def _sat_read(self, c: Conn, r: satreply.SatRead) -> None:
        """The writer thread starts reading an ``evt.sat`` reply: bounded by the revision
        fanned out now; it ends a while later, when other commits may have been fanned out
        (``Hub._send_sat``)."""
        c.sending = True
        self._in_flight += 1
        upto = self.hub.rev
        self.log(f"hub reads c{c.id} upto {upto}")
        # the writer thread is often free, sometimes behind a few commits or a long read
        d = self.hrng.uniform(0.3, 2.0) if self.hrng.random() < 0.2 else \
            self.hrng.uniform(0.0, 0.05)
        self.at(self.now + d, self._sat_read_end, c, r, upto)

    def _sat_read_end(self, c: Conn, r: satreply.SatRead, upto: Rev) -> None:
        self._in_flight -= 1
        if not c.alive:
            c.sending, c.held = False, False
            c.outq.clear()
            c.inbox.clear()
            return
        hub = self.hub
        self.stats.sat_reads += 1
        text: str | None
        if self.faults.on and self.hrng.random() < self.read_fail:
            self.stats.sat_read_fails += 1
            self.log(f"hub read fails c{c.id}")
            text = satreply.sat_read_failed(hub, r, StorageError("simulated read failure"))
        else:
            text = satreply.sat_read_done(hub, r, satreply.sat_read(hub.ledger, r, upto), upto)
        if text is None:  # the recent events moved past upto meanwhile: read on from there
            self._sat_read(c, r)
            return
        c.outq.popleft()
        c.sending, c.held = False, False
        if text:
            self._transmit(c, "down", text)
            if r.follow is not None:
                # a daql client's rest of the catch-up, right after the reply, ahead of what
                # was queued meanwhile (Hub._send_sat)
                c.outq.appendleft(r.follow)
            if hub.has_push(c.id):  # a failed read's pending pushes, after its reply
                c.outq.append(_PUSH)
        while c.inbox and not c.held and c.alive:  # the requests that waited
            self._hub_handle(c, c.inbox.popleft())
        if not c.sending:
            self._send_next(c)

    # -- watchers: daql clients subscribed with evt.sub ------------------------------------

    def _watch_open(self, w: Watcher) -> None:
        if w.conn is not None:
            return
        self._next_conn += 1
        c = Conn(self._next_conn, None, 0, watcher=w)
        self.conns[c.id] = c
        w.conn, w.subscribed = c, False
        self.log(f"{w.name} open c{c.id}")
        if self.faults.on and self.wrng.random() < self.faults.connect_fail:
            self.stats.connect_fails += 1
            c.alive = False
            self.at(self.now + self.wrng.uniform(0.01, 3.0), self._watch_closed, c,
                    "connect failed")
            return
        self.hub.connect(c.id, w.name, "reader")
        c.open_ = True
        w.tok += 1
        if w.sat:
            self._watch_sat(w, c, w.led.rev())
        else:
            body = orjson.dumps({"rev": format_rev(w.led.rev()), "tops": [TOPIC]}).decode()
            self._transmit(c, "up", f"evt.sub#{w.tok}\n{body}")
        # a non-zero rev (ours): the changes after it are noted first
        w.mon_rev, w.mon, w.noted = max(1, w.led.rev()), None, set()
        watch = [{"top": TOPIC, "keys": ["new", *(f"k{i}" for i in range(self.size.keys))]}]
        body = orjson.dumps({"rev": format_rev(w.mon_rev), "watch": watch}).decode()
        self._transmit(c, "up", f"evt.mon#m{w.tok}\n{body}")

    def _watch_sat(self, w: Watcher, c: Conn, rev: Rev) -> None:
        req: dict[str, Any] = {"rev": format_rev(rev), "tops": [TOPIC], "trans": []}
        if w.lim:
            req["lim"] = w.lim
        self._transmit(c, "up", f"evt.sat#s{w.tok}\n{orjson.dumps(req).decode()}")

    def _watch_closed(self, c: Conn, reason: str) -> None:
        w = c.watcher
        if w is None or w.conn is not c:
            return
        self.log(f"{w.name} closed c{c.id} {reason}")
        self._hub_drop(c)
        w.conn, w.subscribed, c.open_ = None, False, False
        self.at(self.now + self.wrng.uniform(0.05, 3.0), self._watch_open, w)

    def _watch_frame(self, c: Conn, text: str) -> None:
        w = c.watcher
        if w is None or w.conn is not c:
            return
        self.log(f"{w.name} <- c{c.id} {text}")
        w.frames += 1
        fr = parse_frame(text)
        body = orjson.loads(fr.body) if fr.body else None
        if fr.subj == "evt.sub" and fr.tok == str(w.tok):
            if w.subscribed:
                w.errors.append(f"c{c.id}: a second evt.sub reply: {text[:80]}")
            w.subscribed = True
            if body is None or "err" in body:
                w.errors.append(f"c{c.id}: evt.sub failed: {text[:200]}")
                return
            if body["res"] is not None:
                self._watch_apply(w, c, body["res"])
        elif fr.subj == "evt.sat" and fr.tok == f"s{w.tok}":
            if w.subscribed:
                w.errors.append(f"c{c.id}: an evt.sat reply after the last: {text[:80]}")
            if body is None or "err" in body:
                if body is not None and body.get("code") == "read":
                    self._watch_closed(c, "hub read failed")  # asks again, reconnected
                    return
                w.errors.append(f"c{c.id}: evt.sat failed: {text[:200]}")
                return
            res = body["res"]
            self._watch_apply(w, c, {k: res[k] for k in ("rev", "evs") if k in res})
            if res.get("more"):
                self._watch_sat(w, c, w.led.rev())
            else:
                w.subscribed = True
        elif fr.subj == "evt.mon" and fr.tok == f"m{w.tok}":
            if body is None or not isinstance(body.get("res"), int) or w.mon is not None:
                w.errors.append(f"c{c.id}: evt.mon reply {text[:200]}")
                return
            w.mon = body["res"]
        elif fr.subj == "evt.update":
            if not w.subscribed and body.get("evs"):
                w.errors.append(f"c{c.id}: a push before the evt.sub reply: {text[:80]}")
            for note in body.get("note") or ():
                if note["mon"] != w.mon or w.mon is None:
                    w.errors.append(f"c{c.id}: a note of monitor {note['mon']} (the "
                                    f"connection's: {w.mon})")
                for wa in note["watch"]:
                    w.noted.update(wa["keys"])
            self._watch_apply(w, c, body)
        else:
            w.errors.append(f"c{c.id}: unexpected frame {text[:80]}")

    def _watch_apply(self, w: Watcher, c: Conn, obj: Any) -> None:
        up = dec_update(obj)
        evs: list[Event] = list(up.evs)
        for e in evs:
            if e.id != w.last_id + 1:
                w.errors.append(f"c{c.id}: event {e.id} after {w.last_id} (a gap, a "
                                "duplicate or out of order)")
            w.last_id = max(w.last_id, e.id)
        if evs and evs[-1].rev > up.rev:
            w.errors.append(f"c{c.id}: an update of rev {up.rev} holds events up to "
                            f"{evs[-1].rev}")
        if up.rev < w.led.rev():
            w.errors.append(f"c{c.id}: an update of rev {up.rev} after rev {w.led.rev()}")
            return
        w.led.replicate(up.rev, evs)


def replay_command(seed: int, long: bool = False) -> str:
    """The command that replays one seed."""
    k = "replay_long" if long else "replay"
    return f"OUTPOST_SIM_SEED={seed} .venv/bin/python -m pytest tests/sim -k {k} -p no:randomly"
