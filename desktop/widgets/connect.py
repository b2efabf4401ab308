"""The connect / settings dialog, also the first-run dialog (hub URL + token, or the demo)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from core.errors import ConfigError
from core.satellite.config import DataDir, DataDirUnusable, check_hub_url, read_schema_file
from desktop.icons import icon
from desktop.look import set_tone
from desktop.settings import Profile

__all__ = ["ConnectDialog"]


class ConnectDialog(QDialog):
    """Asks for hub URL, token and data directory; ``wants_demo`` after "Start the demo".

    ``schema_error``: the hub answered ``evt.stat`` but not ``dom.project`` (a daql hub,
    which serves no schema): the error is shown and a "Schema file" row asks for the hub's
    schema (a .toml or a schema.json, checked on Connect as ``--schema FILE`` is: the same
    errors); :meth:`schema` gives it. ``in_window``: File → Connection settings of a running
    window: the row is always there (the settings may name a daql hub; session 12: only the
    start dialog had it), with the profile's schema file, checked the same way.

    ``attempt``: Connect tries the settings while the dialog stays open (the first run,
    session 14: the dialog closed first, and a wrong token or a hub not running ended the
    app). ``attempt(profile)`` gives "" once it opened the window (the dialog is accepted),
    else the error, shown in the dialog as a malformed URL's is; :meth:`retry_after` has
    Connect tried again by itself (a hub not running yet), until a field is edited."""

    def __init__(self, profile: Profile | None = None, *, first_run: bool = False,
                 parent: QWidget | None = None, schema_error: str = "",
                 schema: Path | None = None, in_window: bool = False,
                 attempt: Callable[[Profile], Awaitable[str]] | None = None):
        super().__init__(parent)
        self._attempt = attempt
        self._job: asyncio.Future[None] | None = None
        self._retry = QTimer(self)
        self._retry.setSingleShot(True)
        self._retry.timeout.connect(self._accept)
        self.setWindowTitle("Welcome to Outpost" if first_run else "Connection settings")
        self.setWindowIcon(icon("app"))
        self.wants_demo = False
        p = profile or Profile("default")
        self.name = QLineEdit(p.name)
        self.hub = QLineEdit(p.hub)
        self.hub.setPlaceholderText("ws://hub.example.org:8765")
        self.token = QLineEdit(p.token)
        self.token.setEchoMode(QLineEdit.EchoMode.Password)
        self.token.setPlaceholderText("from `outpost-hub user add NAME`")
        self.data_dir = QLineEdit(p.data_dir)
        self.data_dir.setPlaceholderText(str(p.path))
        browse = QPushButton("Browse…")
        browse.clicked.connect(self._browse)
        row = QHBoxLayout()
        row.addWidget(self.data_dir, 1)
        row.addWidget(browse)
        if schema is None and in_window and p.schema:
            schema = Path(p.schema)
        self.schema_file = QLineEdit(str(schema) if schema is not None else "")
        self.schema_file.setPlaceholderText(
            "only for a hub that serves none (daql): a .toml or a schema.json" if in_window
            else "the hub's schema: a .toml or a schema.json")
        self.schema_file.setToolTip(
            "The hub's schema, for a hub that does not serve it (a daql hub): read when the "
            "data directory has no schema yet, as `outpost app --schema FILE`")
        pick = QPushButton("Browse…")
        pick.setObjectName("browse_schema")
        pick.clicked.connect(self._browse_schema)
        schema_row = QHBoxLayout()
        schema_row.addWidget(self.schema_file, 1)
        schema_row.addWidget(pick)
        self.error = QLabel()
        set_tone(self.error, "error")
        self.error.setWordWrap(True)
        form = QFormLayout()
        form.addRow("Profile", self.name)
        form.addRow("Hub URL", self.hub)
        form.addRow("Token", self.token)
        form.addRow("Data directory", row)
        self.asks_schema = bool(schema_error or schema is not None or in_window)
        self._form = form
        form.addRow("Schema file", schema_row)
        self._schema_row = form.rowCount() - 1
        if self.asks_schema:  # for a hub that serves no schema (daql), and in a window
            self.error.setText(schema_error)
        else:
            form.setRowVisible(self._schema_row, False)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok
                                   | QDialogButtonBox.StandardButton.Cancel)
        self.connect_button = buttons.button(QDialogButtonBox.StandardButton.Ok)
        self.connect_button.setText("Connect")
        for edit in (self.name, self.hub, self.token, self.data_dir, self.schema_file):
            edit.textEdited.connect(self._retry.stop)  # the user is changing them
        buttons.accepted.connect(self._accept)
        buttons.rejected.connect(self.reject)
        lay = QVBoxLayout(self)
        if first_run:
            intro = QLabel("Outpost keeps a copy of your records on this computer, so you can "
                           "edit offline, and syncs with a hub when online.\nConnect to your "
                           "team's hub, or try the demo (a local hub with sample data).")
            intro.setWordWrap(True)
            lay.addWidget(intro)
        lay.addLayout(form)
        lay.addWidget(self.error)
        if first_run:
            demo = QPushButton("Start the demo")
            demo.setObjectName("start_demo")
            demo.clicked.connect(self._demo)
            buttons.addButton(demo, QDialogButtonBox.ButtonRole.ActionRole)
        lay.addWidget(buttons)
        self.resize(520, 0)

    def profile(self) -> Profile:
        given = self.schema()
        return Profile(self.name.text().strip() or "default", self.hub.text().strip(),
                       self.token.text().strip(), self.data_dir.text().strip(),
                       str(given) if given is not None else "")

    def schema(self) -> Path | None:
        """The schema file given (None: none asked or given)."""
        text = self.schema_file.text().strip()
        return Path(text).expanduser() if self.asks_schema and text else None

    def _browse_schema(self) -> None:
        f, _ = QFileDialog.getOpenFileName(self, "The hub's schema", self.schema_file.text(),
                                           "Schema (*.toml *.json);;All files (*)")
        if f:
            self.schema_file.setText(f)

    def _browse(self) -> None:
        d = QFileDialog.getExistingDirectory(self, "Data directory", self.data_dir.text())
        if d:
            self.data_dir.setText(d)

    def _accept(self) -> None:
        p = self.profile()
        try:
            check_hub_url(p.hub)
            if p.data_dir:
                DataDir(p.data_dir).check_not_file()
            if self.asks_schema:
                given = self.schema()
                if given is not None:  # none: the hub is asked for its schema again
                    read_schema_file(given)  # the same check and errors as --schema FILE
        except DataDirUnusable as exc:  # the fix is this dialog's row, not --data DIR
            self.error.setText(exc.in_dialog())
            return
        except ConfigError as exc:
            self.error.setText(str(exc))
            return
        if self._attempt is None:
            self.accept()
            return
        if self._job is not None and not self._job.done():
            return  # trying already
        self._retry.stop()
        self.error.setText(f"Connecting to {p.hub}…")
        self.connect_button.setEnabled(False)
        self._job = asyncio.ensure_future(self._try(self._attempt, p))

    async def _try(self, attempt: Callable[[Profile], Awaitable[str]], p: Profile) -> None:
        try:
            error = await attempt(p)
        finally:
            self.connect_button.setEnabled(True)
        if error:
            self.error.setText(error)
            self._fit()
        else:
            self._job = None  # done: not cancelled by the close
            self.accept()

    def _fit(self) -> None:
        """Grow to show the whole error (a long one was cut at the dialog's first height)."""
        lay = self.layout()
        h = (lay.totalHeightForWidth(self.width()) if lay.hasHeightForWidth()
             else lay.totalSizeHint().height())
        if h > self.height():
            self.resize(self.width(), h)

    @property
    def trying(self) -> bool:
        """Whether Connect is being tried (``attempt`` running)."""
        return self._job is not None and not self._job.done()

    def retry_after(self, ms: int) -> None:
        """Try Connect again in ``ms`` ms, unless a field is edited meanwhile."""
        self._retry.start(ms)

    def ask_schema(self, error: str) -> None:
        """The hub serves no schema (daql): show ``error`` and the schema file row."""
        self.asks_schema = True
        self._form.setRowVisible(self._schema_row, True)
        self.error.setText(error)
        self._fit()

    def done(self, result: int) -> None:
        """Closed (Connect's window opened, Cancel, Esc, a signal): a try still running is
        cancelled (what it began it undoes: ``open_windows``), no retry is left waiting."""
        self._retry.stop()
        if self._job is not None and not self._job.done():
            self._job.cancel()
        super().done(result)

    def _demo(self) -> None:
        self.wants_demo = True
        self.accept()
