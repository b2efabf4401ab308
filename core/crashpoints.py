"""Named crash points for crash testing: kill the process at an exact place in the code.

Set ``OUTPOST_CRASH_AT=name`` (optionally ``name:N`` to crash at the N-th pass, counting from 1)
and the process exits at once with status 137 — like ``kill -9``: no cleanup, no flush, no
``finally`` — when it reaches ``crash_point("name")``. Unset, a crash point costs one dict
lookup. Names in use are listed in :data:`POINTS` and in ``docs/reliability.md``.
"""

from __future__ import annotations

import os

__all__ = ["POINTS", "crash_point"]

POINTS = {
    "sat.before_local_commit": "satellite: an edit is about to be committed to the queue",
    "sat.after_local_commit": "satellite: an edit is in the queue, nothing sent",
    "sat.mid_import": ("satellite: an import (pub_many, or the app's Satellite.staged) queued "
                       "or staged a batch, the file not committed"),
    "sat.mid_resolve_many": ("satellite: resolve_many resolved an edit in its one commit, "
                             "not committed"),
    "sat.after_send": "satellite: queued transactions were sent, no answer read",
    "sat.after_ack_before_record": "satellite: the hub's ack arrived, not yet recorded",
    "sat.mid_catchup": "satellite: between two catch-up batches",
    "sat.mid_format_upgrade": ("satellite: the upgrade of a replica to data format 2 deleted "
                               "its evt_uid rows, not committed"),
    "hub.after_append_before_ack": "hub: the transaction is committed, the ack not sent",
    "ops.restore.mid_copy": "restore: every event written to the target, nothing committed",
}

_spec = os.environ.get("OUTPOST_CRASH_AT", "")
_name, _, _nth = _spec.partition(":")
_count = int(_nth) if _nth.isdigit() else 1
_seen = 0


def crash_point(name: str) -> None:
    """Exit the process at once if ``OUTPOST_CRASH_AT`` names this point."""
    global _seen
    if not _name or name != _name:
        return
    _seen += 1
    if _seen >= _count:
        os._exit(137)
