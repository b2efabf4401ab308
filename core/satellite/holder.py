"""The connection status of the process that has a data directory open, for readers.

A reader beside the app or ``outpost sync`` (``outpost status`` while they hold the
directory's lock) opens the replica read-only and has no sync machine of its own: it showed
``online: false`` and no ``last_error`` whatever the holder's state. The holder now writes its
connection status (online or offline since when, last error, hub revision, last sync, work
offline, catch-up progress) into ``status.json`` in the data directory, and a reader reports
it with its age.

A small JSON file, replaced atomically (written beside it, then ``os.replace``), and not a
table in the replica: a status change is no edit, and a commit of its own would fsync the
replica (``synchronous=FULL``) on the event loop's thread, or wait there for the write lock
while the sync client's worker thread stores a catch-up batch. The file costs a write and a
rename, no fsync: after a power loss it may be missing or old, and a reader then trusts it no
more than an old one (below). ``last_sync`` and ``hub_rev`` are also stored in the replica's
``sat_meta`` with the hub's data, as before; a reader takes the later of the two.

Written (:class:`StatusWriter`): at once when the online state, its time, the last error,
"work offline" or whether a catch-up runs change; a change of only the hub revision, the last
sync or the progress at most once per :data:`THROTTLE` seconds (a live hub pushes often);
and again every :data:`BEAT` seconds while the sync client runs (the heartbeat). Closing the
satellite writes a last record, ``closed``.

Read (:func:`read_status`): a record is *live* when it is not ``closed``, its process still
exists (same host; POSIX: ``kill(pid, 0)``) and it was written less than :data:`STALE`
seconds ago; a reader reports ``online`` only from a live record. So a holder that crashed
(``kill -9``, power loss) never leaves ``online: true`` behind: on the same host its pid is
gone at once; otherwise (a directory on a network share, the pid reused) its heartbeat stops.

Clock jumps (session 14): the writer times its heartbeat and throttle by the monotonic clock
(before, by the wall clock: set back an hour by NTP, it wrote no heartbeat for an hour, and
readers said the running app was "not live (its time is 3587 s ahead of this clock)"). A
record also holds the writer's monotonic time (``mono``) and the host's boot id (``boot``,
Linux: ``/proc/sys/kernel/random/boot_id``; ``""`` elsewhere). A reader on the same host
and boot judges the record's age by the monotonic clock, which is one clock for every
process of a boot and never jumps: a wall-clock jump in either direction changes nothing.
Elsewhere (another host: a directory on a network share; no boot id) the wall stamp
``written`` decides, as before, and the heartbeat, now written every :data:`BEAT` seconds
whatever the wall clock does, makes a record fresh again within :data:`BEAT` seconds of a
jump.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import platform
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from core.revision import ZERO_REV, Rev

__all__ = ["BEAT", "STALE", "STATUS_FILE", "THROTTLE", "HolderStatus", "HolderView",
           "StatusWriter", "read_status"]

log = logging.getLogger("outpost.sat.holder")

STATUS_FILE = "status.json"
BEAT = 10.0
"""Seconds: the holder writes its record at least this often while its sync client runs."""
STALE = 45.0
"""Seconds: a record older than this is not believed online (its holder stopped writing)."""
THROTTLE = 1.0
"""Seconds: changes of only the hub revision, last sync or progress are written this seldom."""


@dataclass(frozen=True, slots=True)
class HolderStatus:
    """What the holder records (``written``: its wall clock, seconds since the epoch)."""

    pid: int = 0
    host: str = ""
    written: float = 0.0
    online: bool = False
    since: Rev = ZERO_REV
    hub_rev: Rev = ZERO_REV
    last_sync: Rev = ZERO_REV
    last_error: str = ""
    offline_mode: bool = False
    syncing: bool = False
    progress: tuple[int, int] = (0, 0)
    closed: bool = False
    mono: float = 0.0   # the writer's monotonic clock when written (0: not recorded)
    boot: str = ""      # the host's boot id ("": unknown): ``mono`` compares within one

    def _key(self) -> tuple[Any, ...]:
        """The fields written at once when they change."""
        return (self.online, self.since, self.last_error, self.offline_mode, self.syncing,
                self.closed)


@dataclass(frozen=True, slots=True)
class HolderView:
    """A record as a reader sees it: ``age`` in seconds; ``live``: see the module docstring
    (``why``: why not, e.g. "process 123 is gone")."""

    status: HolderStatus
    age: float
    live: bool
    why: str = ""


class StatusWriter:
    """The holder's side: :meth:`offer` the status after every change of it, :meth:`wait`
    says when to call :meth:`offer` again for the heartbeat (or a held-back change).

    Args:
        path: the status file.
        clock: wall clock in seconds (``time.time``): the ``written`` stamp.
        mono: monotonic clock in seconds (``time.monotonic``): when writes are due, and the
            ``mono`` stamp.
    """

    def __init__(self, path: Path, clock: Callable[[], float] = time.time,
                 mono: Callable[[], float] = time.monotonic):
        self.path = path
        self._clock = clock
        self._mono = mono
        self._last: HolderStatus | None = None   # as last written
        self._want: HolderStatus | None = None   # as last offered
        self._at = 0.0                           # when last written (monotonic)
        self._host = platform.node()
        self._boot = boot_id()
        self._failed = False

    def offer(self, st: HolderStatus) -> None:
        """Take the current status; write it when due (see the module docstring)."""
        now = self._mono()
        self._want = st
        last = self._last
        moved = last is not None and (st.hub_rev, st.last_sync, st.progress) != (
            last.hub_rev, last.last_sync, last.progress)
        if (last is None or st._key() != last._key() or now - self._at >= BEAT
                or (moved and now - self._at >= THROTTLE)):
            self._write(st, now)

    def wait(self) -> float:
        """Seconds until :meth:`offer` should be called again (with the same status, if
        nothing changed): a held-back change, or the heartbeat."""
        now = self._mono()
        last, want = self._last, self._want
        if last is None or want is None:
            return BEAT  # nothing written yet (or the writes fail): try again then
        if (want.hub_rev, want.last_sync, want.progress) != (
                last.hub_rev, last.last_sync, last.progress):
            return max(0.0, self._at + THROTTLE - now)
        return max(0.0, self._at + BEAT - now)

    @property
    def written(self) -> bool:
        return self._last is not None

    def close(self) -> None:
        """Write the last record (``closed``, offline) when any was written."""
        if self._last is not None:
            base = self._want or self._last
            self._write(replace(base, online=False, syncing=False, closed=True),
                        self._mono())

    def _write(self, st: HolderStatus, now: float) -> None:
        rec = replace(st, pid=os.getpid(), host=self._host, written=self._clock(), mono=now,
                      boot=self._boot)
        tmp = self.path.with_name(f"{self.path.name}.{os.getpid()}.tmp")
        try:
            tmp.write_text(json.dumps(asdict(rec)), encoding="utf-8")
            os.replace(tmp, self.path)
        except OSError as exc:  # a full disk must not stop sync: readers see an old record
            with contextlib.suppress(OSError):
                tmp.unlink(missing_ok=True)  # not left behind, empty, for every failed write
            if not self._failed:
                log.warning("cannot write %s: %s", self.path, exc)
            self._failed = True
            self._at = now  # tried: again after THROTTLE or BEAT, not in a loop
            return
        self._failed = False
        self._last, self._at = st, now


_BOOT: list[str] = []


def boot_id() -> str:
    """This host's boot id (Linux; read once), ``""`` where there is none: monotonic times
    of two processes compare only within one boot."""
    if not _BOOT:
        try:
            _BOOT.append(Path("/proc/sys/kernel/random/boot_id").read_text("ascii").strip())
        except (OSError, ValueError):
            _BOOT.append("")
    return _BOOT[0]


def _alive(pid: int) -> bool:
    if os.name != "posix":  # elsewhere signal 0 is no probe: the heartbeat decides
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # e.g. another user's process: it exists
        return True
    return True


def read_status(path: Path, now: float | None = None,
                mono: float | None = None) -> HolderView | None:
    """The holder's record in ``path`` as a reader sees it; None when there is none (or it
    cannot be read: a record being replaced is never half written, an old one may be).
    ``now``, ``mono``: the reader's wall and monotonic clocks (default: read them); the
    record's age is by the monotonic one when it was written on this host and boot (module
    docstring)."""
    try:
        raw: Any = json.loads(path.read_text(encoding="utf-8"))
        prog = raw.get("progress", (0, 0))
        st = HolderStatus(
            pid=int(raw["pid"]), host=str(raw.get("host", "")), written=float(raw["written"]),
            online=bool(raw.get("online")), since=int(raw.get("since", 0)),
            hub_rev=int(raw.get("hub_rev", 0)), last_sync=int(raw.get("last_sync", 0)),
            last_error=str(raw.get("last_error", "")),
            offline_mode=bool(raw.get("offline_mode")), syncing=bool(raw.get("syncing")),
            progress=(int(prog[0]), int(prog[1])), closed=bool(raw.get("closed")),
            mono=float(raw.get("mono", 0.0)), boot=str(raw.get("boot", "")))
    except (OSError, ValueError, TypeError, KeyError, IndexError, AttributeError):
        return None
    if not (math.isfinite(st.written) and math.isfinite(st.mono) and 0 < st.pid < 2**31):
        return None  # not a record a holder writes (damaged): nothing to trust
    if st.boot and st.mono > 0 and st.boot == boot_id() and st.host == platform.node():
        # one clock for both processes, which no setting of the wall clock moves
        age = (time.monotonic() if mono is None else mono) - st.mono
    else:
        age = (time.time() if now is None else now) - st.written
    if age < -STALE:  # written "in the future": another host's clock, or a damaged file
        return HolderView(st, age, False, f"its time is {-age:.0f} s ahead of this clock")
    if st.closed:
        return HolderView(st, age, False, "closed")
    if st.host == platform.node() and st.pid != os.getpid() and not _alive(st.pid):
        return HolderView(st, age, False, f"process {st.pid} is gone")
    if age > STALE:
        return HolderView(st, age, False, f"no word from process {st.pid} for {age:.0f} s")
    return HolderView(st, age, True)
