"""Ledgers: ordered event logs with latest state, audit and applied uids.

- :mod:`core.ledger.protocols`: the ``Ledger`` / ``Publisher`` / ``Replicator`` protocols.
- :mod:`core.ledger.rules`: the publish rules (validation, conflicts, revisions) without storage.
- :mod:`core.ledger.memory`: an in-memory ledger (tests and the simulator).
- :mod:`core.ledger.tables`: the SQL ledger's tables, generated from the schema.
- :mod:`core.ledger.sql`: the SQL ledger (SQLite by default, PostgreSQL for scale-out).
- :mod:`core.ledger.ops`: verify, backup and restore.
"""

from core.ledger.memory import MemLedger
from core.ledger.protocols import HistoryEntry, Ledger, Publisher, PubResult, Replicator
from core.ledger.sql import SqlLedger, open_ledger

__all__ = [
    "HistoryEntry",
    "Ledger",
    "MemLedger",
    "PubResult",
    "Publisher",
    "Replicator",
    "SqlLedger",
    "open_ledger",
]
