"""Undo and redo as compensating actions (``QUndoStack``).

Nothing is ever taken out of the ledger: undoing a publish publishes its inverse (``new`` →
``del``, ``del`` → ``new`` with the old fields, ``mod`` → ``mod`` back to the old values of the
changed fields); redo publishes the original again.

Both publish on the base of the edit they undo or redo: the replica revision the user saw
when making it (a form's load, else the revision when it was published). A colleague's
change of the same fields since then makes the undo (or redo) a conflict shown in the
Conflicts view, not a silent overwrite of their value; the satellite moves the base up when
the only changes since are this satellite's own (the edit itself, an earlier undo).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from PySide6.QtGui import QUndoCommand

from core.errors import OutpostError
from core.model import Action, Cmd
from core.revision import Rev
from core.satellite.api import SatelliteAPI

__all__ = ["PubCommand", "RevertCommand", "inverse"]


def inverse(sat: SatelliteAPI, acts: Sequence[Action]) -> list[Action]:
    """The actions that undo ``acts`` given the records as the user sees them now."""
    out: list[Action] = []
    for a in reversed(acts):
        rv = sat.record(a.top, a.key)
        cur = dict(rv.fields) if rv is not None and rv.fields is not None else None
        if a.cmd == Cmd.NEW:
            out.append(Action(a.top, a.key, Cmd.DEL))
        elif a.cmd == Cmd.DEL:
            out.append(Action(a.top, a.key, Cmd.NEW,
                              {k: v for k, v in (cur or {}).items() if v is not None}))
        else:
            out.append(Action(a.top, a.key, Cmd.MOD,
                              {k: (cur or {}).get(k) for k in a.arg or {}}))
    return out


class PubCommand(QUndoCommand):
    """A published edit; its undo publishes the compensating actions.

    Create it *after* the first publish succeeded (``done``), so a rejected edit never enters
    the stack; pass the inverse computed before that publish and ``base``, the revision the
    edit was published on: undo and redo publish on it (see the module docstring).
    """

    def __init__(self, sat: SatelliteAPI, text: str, acts: Sequence[Action],
                 undo_acts: Sequence[Action], on_error: Callable[[str], None],
                 base: Rev | None = None, undone: Callable[[], None] | None = None):
        super().__init__(text)
        self._undone = undone  # after an undo that published (a delete: select it again)
        self._sat = sat
        self._acts = list(acts)
        self._undo = list(undo_acts)
        self._base = base
        self._on_error = on_error
        self._first = True

    def redo(self) -> None:
        if self._first:  # already published by the caller
            self._first = False
            return
        self._run(self._acts, "redo")

    def undo(self) -> None:
        if self._run(self._undo, "undo") and self._undone is not None:
            self._undone()

    def _run(self, acts: list[Action], what: str) -> bool:
        try:
            base = self._base
            if base is not None:
                # never ahead of the replica (a replica that adopted a hub's restore point
                # went back): then the current revision
                base = min(base, self._sat.rev())
            self._sat.pub(acts, base=base)
        except OutpostError as exc:
            self.setObsolete(True)
            self._on_error(f"cannot {what} {self.text()!r}: {exc}")
            return False
        return True


class RevertCommand(QUndoCommand):
    """A Revert of a form's typing (Ctrl+R, the Revert button): nothing is published, but the
    typing is one undo step (merge review 11: Ctrl+R, "reload" in a browser, threw a whole
    form's typing away with no undo). Push it *after* the revert; its undo calls
    ``put_back`` (the typing back in the form; False when it cannot be, said by the caller:
    then its redo does nothing, a later undo tries again), its redo ``revert`` again.

    ``refusal`` says why the typing cannot be put back now (None: it can): the window asks
    it *before* undoing, so a refused undo leaves the step on top of the stack (review
    muser12: the stack's index had already moved below it, and the next Esc, Ctrl+R or save
    pushed a step that discarded it, the typing with it)."""

    def __init__(self, text: str, put_back: Callable[[], bool], revert: Callable[[], None],
                 refusal: Callable[[], str | None] = lambda: None,
                 redo_refusal: Callable[[], str | None] = lambda: None):
        super().__init__(text)
        self._put_back = put_back
        self._revert = revert
        self.refusal = refusal
        self.redo_refusal = redo_refusal
        """Why reverting again (the redo, after an undo put the typing back) would throw
        away changes made since (None: it would not), asked before the stack moves, as
        ``refusal`` (session 13)."""
        self._first = True
        self._back = False

    def redo(self) -> None:
        if self._first:  # already reverted by the caller
            self._first = False
            return
        if self._back:
            self._back = False
            self._revert()

    def undo(self) -> None:
        self._back = self._put_back()

    @property
    def back(self) -> bool:
        """Whether the last undo put the typing back (False: nothing was done)."""
        return self._back
