"""The Outpost desktop app: PySide6 on qasync (item models, widgets, dialogs, CLI ``outpost``).

Only this package imports Qt. ``desktop.cli`` itself imports no Qt, so the headless
subcommands (``desktop.headless``) run without PySide6.
"""
