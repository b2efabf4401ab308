"""Widgets and dialogs of the desktop app; they display, the item models adapt."""
