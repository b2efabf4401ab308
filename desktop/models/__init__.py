"""Qt item models adapting the satellite (:class:`core.satellite.api.SatelliteAPI`) to views."""

from desktop.models.conflicts import ConflictRow, ConflictsModel
from desktop.models.history import HistoryModel
from desktop.models.records import PENDING_ROLE, RECORD_ROLE, RecordTableModel
from desktop.models.topics import TopicListModel

__all__ = [
    "PENDING_ROLE",
    "RECORD_ROLE",
    "ConflictRow",
    "ConflictsModel",
    "HistoryModel",
    "RecordTableModel",
    "TopicListModel",
]
