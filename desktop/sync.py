"""What the window needs of the sync side: "work offline" and "sync now".

The app adapts ``core.satellite.client.SyncClient`` to :class:`SyncControl`; tests can pass
any object with these two methods (e.g. one that syncs a fake satellite).
"""

from __future__ import annotations

from typing import Protocol

__all__ = ["NoSync", "SyncControl"]


class SyncControl(Protocol):
    def set_offline(self, offline: bool) -> None:
        """Stop (True) or resume (False) talking to the hub."""
        ...

    def sync_now(self) -> None:
        """Connect now (skip any backoff wait) and send pending transactions."""
        ...


class NoSync:
    """No hub configured: the buttons do nothing."""

    def set_offline(self, offline: bool) -> None:
        pass

    def sync_now(self) -> None:
        pass
