"""Rejected transactions as rows of base / mine / theirs, one per field of the edit.

Every field of a rejected edit is a row, the conflicting ones and, marked "(no conflict)", the
others: keep theirs drops the whole edit, so what it drops is on screen before the choice
(``core.satellite.conflicts``). Each field row carries a "keep mine" check box, as does a
delete of a record the other side changed ("delete anyway"), so the conflicts view can resolve
per field; the model builds the ``{"top key": {"field": Keep}}`` mapping
:meth:`SatelliteAPI.resolve` takes. :meth:`ConflictsModel.explain` words each record's
conflict (``core.satellite.conflicts.explain``) for the view and the rows' tooltips.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, fields
from typing import Any

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QPersistentModelIndex, Qt
from PySide6.QtGui import QBrush, QGuiApplication

from core.model import Cmd
from core.revision import ZERO_REV, Rev
from core.satellite.api import (
    ASIDE,
    Change,
    Keep,
    Receipt,
    ReceiptState,
    SatelliteAPI,
    is_put_aside,
    overwrote,
    refused_here,
)
from core.satellite.conflicts import (
    WHOLE,
    FieldConflict,
    Own,
    conflict_fields,
    explain,
    explain_aside,
    last_changes,
    own_of,
    since_sentences,
)
from core.satellite.prefetch import Prefetched
from desktop.format import display_value, readable_rev
from desktop.look import row_colors
from desktop.models.records import ref_label

__all__ = ["WHOLE", "ConflictRow", "ConflictsModel"]

_Index = QModelIndex | QPersistentModelIndex
HEADERS = ("Record", "Field", "Base", "Mine", "Theirs", "Changed by", "When", "Keep")
COL_KEEP = 7
# a whole-record row's cells: what the record was, what I did, what they did
_BASE_TEXT = {"exists": "existed", "absent": "did not exist"}
_MINE_TEXT = {"create": "you created it", "modify": "you changed it (fields below)",
              "delete": "you deleted it"}
_THEIRS_TEXT = {"deleted": "they deleted it", "modified": "they changed it",
                "created": "they created it too", "no conflict": "(no conflict)",
                "recreated": "they deleted it, then created it again"}


# an overwrite row's theirs (what the user's edit overwrote) changed after the conflict
_AGAIN = {"changed": "changed again", "created": "created again"}

# theirs changed after the conflict by the user's own accepted edit ("you changed it since")
_OWN_DID = {"deleted": "deleted it", "created": "created it again"}


@dataclass(slots=True)
class ConflictRow(FieldConflict):
    """One conflicting field (or a whole record) of a rejected transaction, as
    :func:`conflict_fields` gives it, with the record's label and the "keep mine" choice."""

    label: str = ""
    keep_mine: bool = True
    locked: str = ""
    """Why "keep mine" cannot be unticked ("" when it can): a required field of a record the
    resolution creates (it cannot be created without it)."""

    @classmethod
    def of(cls, c: FieldConflict, label: str) -> ConflictRow:
        return cls(*(getattr(c, f.name) for f in fields(FieldConflict)), label=label)

    @property
    def sig(self) -> str:
        return f"{self.top} {self.key}"

    @property
    def choosable(self) -> bool:
        """A field row, or a delete (kept: delete anyway; else the record stays); never a
        row of a put-aside edit (sent, answer lost: sent again or dropped whole)."""
        if self.reason == ASIDE or self.same or self.theirs_only:  # nothing to choose
            return False
        return self.field != WHOLE or (self.cmd == Cmd.DEL and (
            self.reason in ("deleted", "modified") or not self.conflict))


class ConflictsModel(QAbstractTableModel):
    """Every rejected, unresolved local transaction, flattened to conflicting fields."""

    def __init__(self, sat: SatelliteAPI, parent: Any = None):
        super().__init__(parent)
        self._sat = sat
        self._rows: list[ConflictRow] = []
        self._explain: dict[tuple[str, str, str], str] = {}  # (uid, top, key) -> sentence
        self._gone_keys: set[tuple[str, str]] = set()  # records the hub has not (now)
        self._here: set[str] = set()  # uids refused here, never sent (refused_here)
        self._over: set[str] = set()  # uids a daql hub applied over theirs (overwrote)
        self._own = Own()  # this satellite's accepted edits (explain: "you")
        self._reads: SatelliteAPI | Prefetched = sat  # during _build: what it read at once
        self._held = 0  # inside held(): changes rebuild nothing
        self._stamp: Any = None  # the satellite's conflicts_stamp() the rows were built at
        self._shown: dict[str, frozenset[str]] = {}  # the records of the rows, by topic
        self.seen: Rev = ZERO_REV
        """The replica revision the rows show (read before them): the view resolves with it
        (``resolve(seen=...)``), so a change arriving after it is refused, not overwritten
        unseen; the rows refresh on every change of one of their records, so it stays current
        for them (a change of another record does not matter to a resolution)."""
        self._rows = self._build()

    # -- public --------------------------------------------------------------------------------

    def rows(self) -> list[ConflictRow]:
        return list(self._rows)

    def row(self, i: int) -> ConflictRow:
        return self._rows[i]

    def uids(self) -> list[str]:
        """The uids of the rejected transactions shown, in order."""
        return list(dict.fromkeys(r.uid for r in self._rows))

    def explain(self, uids: list[str] | None = None) -> list[str]:
        """What happened to each record of the transactions ``uids`` (all: ``None``), in
        plain words, and what keep mine / keep theirs do (``core.satellite.conflicts``)."""
        return [t for (uid, _, _), t in self._explain.items() if uids is None or uid in uids]

    def put_aside(self, uid: str) -> bool:
        """Whether the edit ``uid`` shown was put aside (sent, its answer lost), not refused:
        sent again (keep mine) or dropped (keep theirs) whole, no keep both, no per field."""
        return any(r.uid == uid and r.reason == ASIDE for r in self._rows)

    def not_sent(self, uid: str) -> bool:
        """Whether the edit ``uid`` shown was refused here, never sent (a daql hub would have
        overwritten a newer change: ``core.satellite.api.refused_here``), not rejected by the
        hub."""
        return uid in self._here

    def overwrote(self, uid: str) -> bool:
        """Whether the edit ``uid`` shown is on the hub already, applied over a colleague's
        change (a daql hub: ``core.satellite.api.overwrote``): keep mine leaves it, keep
        theirs sends theirs back; a conflict after the fact, not a rejection."""
        return uid in self._over

    def set_keep(self, i: int, keep: Keep) -> None:
        self.setData(self.index(i, COL_KEEP),
                     (Qt.CheckState.Checked if keep == Keep.MINE
                      else Qt.CheckState.Unchecked).value,
                     Qt.ItemDataRole.CheckStateRole)

    def picks(self, uid: str) -> dict[str, dict[str, Keep]]:
        """The per-field choice for one transaction, as ``resolve`` takes it.

        Fields of the transaction that did not conflict are kept (mine): only the conflicting
        ones are a choice.
        """
        r = self._sat.receipt(uid)
        out: dict[str, dict[str, Keep]] = {}
        if r is not None:
            for a in r.acts:
                for f in a.arg or {}:
                    out.setdefault(f"{a.top} {a.key}", {})[f] = Keep.MINE
        for row in self._rows:
            if row.uid != uid or not row.choosable:
                continue
            keep = Keep.MINE if row.keep_mine else Keep.THEIRS
            if row.field != WHOLE:
                out.setdefault(row.sig, {})[row.field] = keep
            elif self._sat.project.has(row.top):
                # a delete: resolve takes a field of the topic for it (any: a delete has none)
                out[row.sig] = {self._sat.project.model(row.top).field_names()[0]: keep}
        return out

    @contextmanager
    def held(self) -> Iterator[None]:
        """Rebuild nothing for the changes notified meanwhile: the caller refreshes once
        after (the conflicts view resolving many edits: session 13, one rebuild per edit
        resolved, 1.2 s each with 1,092 conflicts, froze the window for tens of minutes)."""
        self._held += 1
        try:
            yield
        finally:
            self._held -= 1

    @property
    def holding(self) -> bool:
        """Inside :meth:`held`."""
        return bool(self._held)

    def on_change(self, ch: Change) -> None:
        if not self._held and self.wants(ch):
            self.refresh()

    def wants(self, ch: Change) -> bool:
        """Whether the change ``ch`` may change the rows: :meth:`touches` them, or changes
        the receipts and :meth:`inbox_changed` (session 13: every change rebuilt the rows,
        1.2 s each with 1,092 conflicts)."""
        return self.touches(ch) or (ch.receipts and self.inbox_changed())

    def touches(self, ch: Change) -> bool:
        """Whether ``ch`` is a reset or a change of a record the rows show (theirs, a
        label): no read (set intersections, each walking the smaller set)."""
        return ch.reset or any(self._shown.get(top, frozenset()) & keys
                               for top, keys in ch.records.items())

    def inbox_changed(self) -> bool:
        """Whether the inbox's transactions changed since the rows were built (one was
        rejected, resolved, folded, or marked a local conflict): ``conflicts_stamp``, one
        small read; not for a save or an ack of another edit. A satellite without it: yes."""
        stamp = getattr(self._sat, "conflicts_stamp", None)
        return stamp is None or stamp() != self._stamp

    def refresh(self) -> None:
        rows = self._build()
        keep = {(r.uid, r.sig, r.field): r.keep_mine for r in self._rows}
        for r in rows:
            r.keep_mine = keep.get((r.uid, r.sig, r.field), r.keep_mine)
        self.beginResetModel()
        self._rows = rows
        self.endResetModel()

    # -- Qt ------------------------------------------------------------------------------------

    def rowCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self._rows)

    def columnCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(HEADERS)

    def headerData(self, section: int, orientation: Qt.Orientation,
                   role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if (role == Qt.ItemDataRole.DisplayRole and orientation == Qt.Orientation.Horizontal
                and 0 <= section < len(HEADERS)):
            return HEADERS[section]
        return None

    def flags(self, index: _Index) -> Qt.ItemFlag:
        if not index.isValid():
            return Qt.ItemFlag.NoItemFlags
        fl = Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable
        r = self._rows[index.row()]
        if index.column() == COL_KEEP and r.choosable:
            fl |= Qt.ItemFlag.ItemIsUserCheckable
            if r.locked:  # shown ticked, greyed: a required field of a record to create
                fl &= ~Qt.ItemFlag.ItemIsEnabled
        return fl

    def data(self, index: _Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or not (0 <= index.row() < len(self._rows)):
            return None
        r = self._rows[index.row()]
        col = index.column()
        if role == Qt.ItemDataRole.CheckStateRole and col == COL_KEEP and r.choosable:
            return Qt.CheckState.Checked if r.keep_mine else Qt.CheckState.Unchecked
        if role in (Qt.ItemDataRole.BackgroundRole, Qt.ItemDataRole.ForegroundRole):
            # the side kept, tinted from the palette with its text colour (review a11y 16:
            # fixed pale backgrounds under a dark theme's light text read 1.0:1)
            if (col == 3 and r.keep_mine) or (col == 4 and not r.keep_mine):
                bg, fg = row_colors("mine" if col == 3 else "theirs",
                                    QGuiApplication.palette())
                return QBrush(bg if role == Qt.ItemDataRole.BackgroundRole else fg)
            return None
        if role == Qt.ItemDataRole.ToolTipRole:
            if col == COL_KEEP and r.locked:
                return r.locked
            return self._explain.get((r.uid, r.top, r.key))
        if role != Qt.ItemDataRole.DisplayRole:
            return None
        if col == 0:
            return r.label
        if col == 1:
            if r.field == WHOLE:
                return "(whole record)"
            return self._title(r.top, r.field) + (
                " (only theirs: stays)" if r.theirs_only
                else "" if r.conflict and not r.same
                else " (identical)" if r.same else " (no conflict)")
        if col in (2, 3, 4):
            text = self._show(r, (r.base, r.mine, r.theirs)[col - 2], col)
            if col == 4 and r.since and r.overwrote:
                # theirs is the value the user's edit overwrote, not the record now (session
                # 15: "(changed since)" read as if the cell showed the newer value)
                text += f" (overwritten; {_AGAIN.get(r.since, r.since)} since)"
            elif col == 4 and r.since:  # the hub's value now: changed after the conflict
                text += f" ({r.since} since)"
            elif col == 4 and r.own_since:  # by the user's own later edit: no one else's
                text += f" (you {_OWN_DID.get(r.own_since, 'changed it')} since)"
            return text
        if col == 5:  # who last changed theirs (user review 12: its creator was named)
            if r.last_rev:  # "created by" (or "deleted by": deleted, then created again)
                return f"{r.last_usr or 'someone'} ({r.reason} by {r.usr or 'someone'})"
            return r.usr or "—"
        if col == 6:
            rev = r.last_rev or r.rev
            return readable_rev(rev) if rev else "—"
        if col == COL_KEEP:
            if r.reason == ASIDE:  # sent again or dropped whole (the buttons)
                return "whole edit"
            if r.field != WHOLE:
                return "mine" if r.keep_mine else "theirs"
            if r.choosable:
                return "delete anyway" if r.keep_mine else "keep the record"
            return "by field below" if r.cmd != Cmd.DEL else ""
        return None

    def setData(self, index: _Index, value: Any, role: int = Qt.ItemDataRole.EditRole) -> bool:
        if (not index.isValid() or index.column() != COL_KEEP
                or role != Qt.ItemDataRole.CheckStateRole):
            return False
        r = self._rows[index.row()]
        if not r.choosable or r.locked:
            return False
        state = value.value if isinstance(value, Qt.CheckState) else int(value)
        r.keep_mine = state == Qt.CheckState.Checked.value
        self.dataChanged.emit(self.index(index.row(), 0), self.index(index.row(), COL_KEEP))
        return True

    # -- building rows -------------------------------------------------------------------------

    def _show(self, r: ConflictRow, value: Any, col: int) -> str:
        if r.reason == ASIDE and col == 4 and (value is None or r.field == WHOLE):
            # what the hub's replica holds now: the user sees whether the edit arrived
            if r.field == WHOLE:
                return "the hub has it" if value == "exists" else "not on the hub"
            return "(not on the hub)" if self._gone(r.top, r.key) else "(empty)"
        if r.field == WHOLE:
            if value is None:
                return "—"
            if r.conflict and r.reason not in _THEIRS_TEXT:
                return str(value)  # a rejection that is no conflict: the command, the error
            return {2: _BASE_TEXT, 3: _MINE_TEXT, 4: _THEIRS_TEXT}[col].get(str(value),
                                                                           str(value))
        if r.theirs_only and col == 3:
            return "(not set: theirs stays)"  # keep mine leaves their field as it is
        m = self._sat.project.model(r.top)
        f = m.field(r.field)
        if value is None:
            gone = col == 4 and r.reason == "deleted" and self._gone(r.top, r.key)
            return "(deleted)" if gone else "(empty)"
        if f is not None and f.type == "ref":
            return ref_label(self._sat, f.ref, str(value))
        return display_value(f, value)

    def _gone(self, top: str, key: str) -> bool:
        """Whether the hub has no such record now (a record they deleted and created again
        exists: its empty fields are empty, not deleted): read once per refresh
        (:meth:`_build`), not per painted cell (each was a database read, session 9)."""
        return (top, key) in self._gone_keys

    def _build(self) -> list[ConflictRow]:
        rows: list[ConflictRow] = []
        self._explain = {}
        self.seen = self._sat.rev()
        stamp = getattr(self._sat, "conflicts_stamp", None)
        self._stamp = stamp() if stamp is not None else None  # read before the receipts
        rejected = self._sat.receipts([ReceiptState.REJECTED])
        # edits of this satellite's own the rejected ones lost to: "you", not "they"
        self._own = own_of(self._sat, (c.rev for rc in rejected for c in rc.conflicts)
                           ) if rejected else Own()
        self._here = {rc.uid for rc in rejected if refused_here(rc)}
        self._over = {rc.uid for rc in rejected if overwrote(rc)}
        # the records of every conflict, as of now and of each base, and their histories:
        # read at once, not 4-10 reads per conflict (session 13: 1.2 s with 1,092 of them)
        self._reads = Prefetched(self._sat, rejected) if rejected else self._sat
        try:
            for rc in rejected:
                rows.extend(self._rows_of(rc))
        finally:
            reads, self._reads = self._reads, self._sat
        # the records of "they deleted" rows: one read per topic
        deleted: dict[str, set[str]] = {}
        for r in rows:
            if r.reason in ("deleted", ASIDE) and r.field != WHOLE and r.top:
                deleted.setdefault(r.top, set()).add(r.key)
        shown: dict[str, set[str]] = {}
        for rc in rejected:
            for a in rc.acts:
                shown.setdefault(a.top, set()).add(a.key)
            for c in rc.conflicts:
                shown.setdefault(c.top, set()).add(c.key)
        # the records a ref value of a row names: their labels are shown too (session 14:
        # a referenced record renamed kept its old label until the view was opened again)
        for r in rows:
            if r.field == WHOLE or not self._sat.project.has(r.top):
                continue
            f = self._sat.project.model(r.top).field(r.field)
            if f is None or f.type != "ref":
                continue
            for v in (r.base, r.mine, r.theirs):
                if v is not None:
                    shown.setdefault(f.ref, set()).add(str(v))
        self._shown = {top: frozenset(keys) for top, keys in shown.items()}
        self._gone_keys = set()
        for top, keys in deleted.items():
            there = reads.records_of(top, keys)
            self._gone_keys.update((top, k) for k in keys
                                   if there.get(k) is None or there[k].confirmed is None)
        return rows

    def title(self, top: str, field: str) -> str:
        """A field's title (its name when the schema has none)."""
        return self._title(top, field)

    def _title(self, top: str, field: str) -> str:
        f = self._sat.project.model(top).field(field) if self._sat.project.has(top) else None
        return f.title if f is not None else field

    def _cell(self, top: str, field: str, value: Any) -> str:
        if value is None:
            return "(empty)"
        f = self._sat.project.model(top).field(field) if self._sat.project.has(top) else None
        if f is not None and f.type == "ref":
            return f"“{ref_label(self._sat, f.ref, str(value))}”"
        text = display_value(f, value)
        return f"“{text if len(text) <= 60 else text[:59] + '…'}”"

    def _rows_of(self, rc: Receipt) -> list[ConflictRow]:
        labels: dict[tuple[str, str], str] = {}
        out: list[ConflictRow] = []
        for c in conflict_fields(self._reads, rc):  # the same values as `outpost conflicts`
            label = labels.get((c.top, c.key))
            if label is None:
                label = labels[c.top, c.key] = self._label(c.top, c.key, rc) if c.top else ""
            row = ConflictRow.of(c, label)
            row.locked = self._locked(rc, c)
            out.append(row)
        sigs = list(dict.fromkeys((a.top, a.key) for a in rc.acts))
        if is_put_aside(rc):  # sent, its answer lost: not a conflict, no one else's change
            said = explain_aside(
                self._reads, rc, name=self._title, show=self._cell,
                record=lambda top, key: labels.get((top, key)) or f"{top} {key}",
                send="send it again (Keep mine)", drop="drop it (Keep theirs)")
            for a, text in zip(rc.acts, said, strict=False):
                self._explain[rc.uid, a.top, a.key] = text
            return out
        texts = explain(rc, name=self._title, show=self._cell, when=readable_rev, own=self._own,
                        record=lambda top, key: labels.get((top, key)) or f"{top} {key}",
                        last=last_changes(out))
        if rc.conflicts:
            order = list(dict.fromkeys([*((c.top, c.key) for c in rc.conflicts), *sigs]))
        else:
            order = sigs[:1] or [("", "")]
        for (top, key), text in zip(order, texts, strict=False):
            self._explain[rc.uid, top, key] = text
        for r in out:  # a record changed after the conflict: said, theirs shows it now
            if (r.since or r.own_since) and (rc.uid, r.top, r.key) in self._explain:
                more = since_sentences([r], when=readable_rev,
                                       record=lambda top, key, lb=r.label: lb or f"{top} {key}")
                if more and more[0] not in self._explain[rc.uid, r.top, r.key]:
                    self._explain[rc.uid, r.top, r.key] += ". " + more[0]
        return out

    def _locked(self, rc: Receipt, c: FieldConflict) -> str:
        """Why the field row ``c`` must stay "keep mine" ("" when it may be unticked): a
        required field (without a default) of a record the transaction creates that does not
        exist now; a resolution creates it, and cannot without that field."""
        if c.field == WHOLE or c.cmd != Cmd.NEW or not self._sat.project.has(c.top):
            return ""
        if not any(a.cmd == Cmd.NEW and (a.top, a.key) == (c.top, c.key) for a in rc.acts):
            return ""
        f = self._sat.project.model(c.top).field(c.field)
        if f is None or not f.required or f.default is not None:
            return ""
        rv = self._reads.record(c.top, c.key)
        if rv is not None and rv.fields is not None:
            return ""  # the record exists now: keeping mine changes it, a field may be left
        return (f"{f.title} is required: the record is created with your values and cannot "
                f"be created without {f.title}. Keep theirs drops your whole edit, this record "
                "too.")

    def record_label(self, top: str, key: str, rc: Receipt) -> str:
        """How the view names a record of ``rc`` (:meth:`_label`)."""
        return self._label(top, key, rc)

    def _label(self, top: str, key: str, rc: Receipt) -> str:
        """The record's display field and its topic; a record deleted since is named as the
        edit saw it ("(deleted)"), a record the edit creates that does not exist yet by its
        new value ("(new)"), not by its raw key."""
        if not self._sat.project.has(top):
            return f"{top} {key}"
        m = self._sat.project.model(top)
        rv = self._reads.record(top, key)
        if rv is None or rv.fields is None:
            then = self._reads.state_at(top, key, rc.base)
            if then is None:
                # never synced: a record this transaction creates, named by its new value
                made = next((a.arg or {} for a in rc.acts
                             if (a.top, a.key) == (top, key) and a.cmd == Cmd.NEW), None)
                if made is not None:
                    v = made.get(m.display)
                    return f"{m.title}: {v if v not in (None, '') else key} (new)"
            v = (then or {}).get(m.display)
            return f"{m.title}: {v if v not in (None, '') else key} (deleted)"
        return f"{m.title}: {ref_label(self._reads, top, key)}"
