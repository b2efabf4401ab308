"""File → Import CSV… and Export CSV… of the current topic: ``outpost import`` and ``outpost
export`` (:class:`desktop.headless.CsvImport`, :class:`desktop.headless.CsvExport`: one parser,
one set of rules and messages) run a step at a time on the window's event loop, with a
progress dialog and Cancel.

A step is one chunk of the import's check (500 rows), one transaction of the import made
and checked (500 rows, in memory: ``Satellite.staged``) or 2,000 exported rows: 5-40 ms of
CPU (docs/desktop.md), after which the window paints and takes the Cancel click. The import's
last step queues the whole file in one short local commit (all or nothing) and updates the
overlay (0.1-0.3 s for 20,000 rows; before session 11 this step made, checked and queued
every transaction: 1.4-2.9 s). The steps run on the UI thread, not a worker: the satellite's
pending-edit overlay and its change notices (which update the tables) belong to that thread.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

from PySide6.QtCore import QObject, Qt, QTimer, Signal
from PySide6.QtWidgets import QProgressDialog, QWidget

from core.errors import OutpostError
from core.satellite.api import SatelliteAPI
from desktop.headless import CsvExport, CsvImport, formula_warning

__all__ = ["EXPORT_CHUNK", "CsvJob", "export_steps", "import_steps"]

EXPORT_CHUNK = 2_000
"""Records read and written per step of an export."""

Step = tuple[int, int, str]
"""How far a job got: (done, of, the progress dialog's text)."""


class CsvJob(QObject):
    """Runs ``steps`` one per turn of the event loop, showing each in a progress dialog
    (window-modal: the window keeps painting; it shows after 0.3 s, so a small file does not
    flash one). Cancel (or :meth:`cancel`) closes the generator between two steps.

    ``finished(ok, title, text)``: ``ok`` False for an error or a cancel; ``text`` is the
    summary, the error (as the CLI words it, without the ``outpost:`` prefix), or what a
    cancel left.
    """

    finished = Signal(bool, str, str)

    def __init__(self, parent: QWidget, title: str, steps: Iterator[Step],
                 summary: Callable[[], str], stopped: Callable[[], str]):
        super().__init__(parent)
        self.title = title
        self._steps = steps
        self._summary, self._stopped = summary, stopped
        self.running = True
        self.progress = p = QProgressDialog(title + "…", "Cancel", 0, 1000, parent)
        p.setObjectName("csv_progress")
        p.setWindowTitle(title)
        p.setWindowModality(Qt.WindowModality.WindowModal)
        p.setMinimumDuration(300)
        p.setAutoClose(False)
        p.setAutoReset(False)
        p.canceled.connect(self.cancel)
        p.setValue(0)
        QTimer.singleShot(0, self._step)

    def _step(self) -> None:
        if not self.running:
            return
        try:
            done, of, text = next(self._steps)
        except StopIteration:
            self._end(True, f"{self.title}: done", self._summary())
            return
        except OutpostError as exc:
            self._end(False, f"{self.title}: failed", str(exc))
            return
        self.progress.setLabelText(text)
        # setValue of a modal dialog handles pending events: a Cancel clicked now stops here
        self.progress.setValue(int(1000 * done / of) if of else 0)
        if self.running:
            QTimer.singleShot(0, self._step)

    def cancel(self) -> None:
        """Stop between two steps (what was done stays done: see ``stopped``)."""
        if not self.running:
            return
        self._steps.close()
        self._end(False, f"{self.title}: cancelled", self._stopped())

    def _end(self, ok: bool, title: str, text: str) -> None:
        self.running = False
        self.progress.canceled.disconnect(self.cancel)
        self.progress.close()
        self.progress.deleteLater()
        self.finished.emit(ok, title, text)


def import_steps(job: CsvImport) -> Iterator[Step]:
    """:meth:`CsvImport.steps` as progress: the check by bytes read, the import by rows."""
    name = Path(job.file).name
    for s in job.steps():
        if s.phase == "check":
            yield s.done, s.size, f"Checking {name}: {s.rows:,} rows to import so far"
        elif s.phase == "stage":  # made and checked, in memory: queued at the end
            yield s.rows, s.total, (f"Importing {name}: {s.rows:,} of {s.total:,} rows ready "
                                    "(queued together at the end)")
        elif s.phase == "queue":  # one short commit: all or nothing, not cancellable once begun
            yield 0, 0, f"Importing {name}: queuing {s.total:,} rows in one go"
        else:
            yield s.rows, s.total, f"Importing {name}: {s.rows:,} of {s.total:,} rows"


class ExportRun:
    """An export of one topic's records (as the user sees them: pending edits included) to
    ``file``: written to a temporary file beside it, which replaces ``file`` only once
    complete (a cancel or a failure leaves ``file`` as it was)."""

    def __init__(self, sat: SatelliteAPI, topic: str, file: str, *, sheet: bool = False):
        self.sat, self.topic, self.file = sat, topic, file
        self.sheet = sheet  # for a spreadsheet: as `outpost export --for-spreadsheet`
        self.rows = 0
        self.formulas = 0  # cells a spreadsheet would run as formulas (a plain export)

    def summary(self) -> str:
        return (f"exported {self.rows} rows of {self.topic} to {self.file}"
                + (" for a spreadsheet (a cell starting with = + - @ has a ' before it; File → "
                   "Import CSV from a spreadsheet export… reads it back)" if self.sheet else "")
                + ", with the revision they were read at (the _rev column: leave it as it is, "
                "so that importing the file back changes only the cells you edit and keeps "
                "others' later changes)"
                + (f". Warning: {formula_warning(self.formulas)}: to open it in a "
                   "spreadsheet use File → Export CSV for a spreadsheet… instead"
                   if self.formulas else ""))

    def stopped(self) -> str:
        return f"nothing was written: {self.file} is as it was"


def export_steps(run: ExportRun) -> Iterator[Step]:
    sat, top, file = run.sat, run.topic, run.file
    # the _rev column (as `outpost export`): the revision before any record is read, so that
    # a change arriving between two steps is after it (an import then takes a cell as the
    # user's only where it differs from both: a conflict at worst, never an overwrite)
    out = CsvExport(sat.project.model(top), sat.rev(), sheet=run.sheet)
    keys = sat.keys(top)
    target = Path(file)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp",
                                   dir=target.parent)
    except OSError as exc:
        raise _write_error(file, exc) from exc
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as f:
            f.write(out.bom)
            w = out.writer(f)
            w.writerow(out.header())
            for i in range(0, len(keys), EXPORT_CHUNK):
                part = keys[i:i + EXPORT_CHUNK]
                views = sat.records_of(top, part)
                for k in part:
                    v = views.get(k)
                    if v is not None and v.fields is not None:
                        w.writerow(out.row(v))
                        run.rows += 1
                run.formulas = out.formulas
                yield i + len(part), len(keys), f"Exporting {top}: {run.rows:,} rows"
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, target)
    except OSError as exc:
        raise _write_error(file, exc) from exc
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _write_error(file: str, exc: OSError) -> OutpostError:
    from core.errors import ConfigError

    return ConfigError(f"cannot write {file}: {exc.strerror or exc}: choose another folder "
                       "or free some space")
