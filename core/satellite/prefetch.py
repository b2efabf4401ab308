"""The reads of the conflicts inbox for many rejected transactions at once.

:func:`core.satellite.conflicts.conflict_fields` and the conflicts view's labels read each
conflict's record as it is now, as the edit saw it and its history: 4-10 database reads per
conflict, 1.2-1.3 s of CPU per refresh of the view with 1,092 conflicts (review "scale",
session 13). :class:`Prefetched` reads them for every receipt of the inbox first, one read
per topic (and per base revision), and answers those functions from memory; any other read
goes to the satellite. It holds what was read then: made for one refresh, then dropped.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from core.ledger.protocols import HistoryEntry
from core.revision import ZERO_REV, Rev
from core.satellite.api import Receipt, RecordView, SatelliteAPI

__all__ = ["Prefetched"]


class Prefetched:
    """``sat`` for the reads of ``receipts``' conflicts: :meth:`record`, :meth:`state_at` and
    :meth:`history` of their records answered from reads made at once (``records_of``,
    ``states_at``, ``histories_of``: one per topic, per base revision for ``states_at``);
    everything else is the satellite's (attribute access passes through)."""

    def __init__(self, sat: SatelliteAPI, receipts: Sequence[Receipt]):
        self._sat = sat
        project = sat.project
        recs: dict[str, set[str]] = {}
        bases: dict[tuple[str, Rev], set[str]] = {}
        for rc in receipts:
            sigs = {(a.top, a.key) for a in rc.acts} | {(c.top, c.key) for c in rc.conflicts}
            for top, key in sigs:
                if not top or not project.has(top):
                    continue
                recs.setdefault(top, set()).add(key)
                if rc.base != ZERO_REV:
                    bases.setdefault((top, rc.base), set()).add(key)
        self._records: dict[tuple[str, str], RecordView | None] = {}
        self._states: dict[tuple[str, str, Rev], dict[str, Any] | None] = {}
        self._history: dict[tuple[str, str], list[HistoryEntry]] = {}
        many_states = getattr(sat, "states_at", None)
        many_histories = getattr(sat, "histories_of", None)
        for top, keys in recs.items():
            got = sat.records_of(top, keys)
            self._records.update(((top, k), got.get(k)) for k in keys)
            if many_histories is not None:
                hist = many_histories(top, keys)
                self._history.update(((top, k), hist.get(k, [])) for k in keys)
        if many_states is not None:
            for (top, rev), keys in bases.items():
                st = many_states(top, keys, rev)
                self._states.update(((top, k, rev), st.get(k)) for k in keys)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sat, name)

    @property
    def project(self) -> Any:
        return self._sat.project

    def record(self, top: str, key: str) -> RecordView | None:
        try:
            return self._records[top, key]
        except KeyError:
            return self._sat.record(top, key)

    def state_at(self, top: str, key: str, rev: Rev) -> dict[str, Any] | None:
        try:
            st = self._states[top, key, rev]
        except KeyError:
            return self._sat.state_at(top, key, rev)
        return None if st is None else dict(st)

    def history(self, top: str, key: str) -> list[HistoryEntry]:
        try:
            return list(self._history[top, key])
        except KeyError:
            return self._sat.history(top, key)

    def records_of(self, top: str, keys: Iterable[str]) -> dict[str, RecordView]:
        keys = list(keys)
        if all((top, k) in self._records for k in keys):
            return {k: rv for k in keys if (rv := self._records[top, k]) is not None}
        return self._sat.records_of(top, keys)
