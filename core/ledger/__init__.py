"""Ledgers: ordered event logs with latest state, audit and applied uids.

- :mod:`core.ledger.protocols`: the ``Ledger`` / ``Publisher`` / ``Replicator`` protocols.
- :mod:`core.ledger.rules`: the publish rules (validation, conflicts, revisions) without storage.
- :mod:`core.ledger.memory`: an in-memory ledger (tests and the simulator).
- :mod:`core.ledger.sql`: the SQL ledger (SQLite by default, PostgreSQL for scale-out).
"""

from core.ledger.memory import MemLedger
from core.ledger.protocols import HistoryEntry, Ledger, Publisher, PubResult, Replicator

__all__ = ["HistoryEntry", "Ledger", "MemLedger", "PubResult", "Publisher", "Replicator"]
