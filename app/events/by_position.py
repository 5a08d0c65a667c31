"""An event's resource bytes by log position, as an SQL expression for the queries over the
projections: the current state holds the position of each resource's last event, not a copy of
its bytes (:mod:`app.projections.current_state`), so reads take them from the log here (one probe
of the log's primary key)."""

from __future__ import annotations


def resource_at(position_sql: str) -> str:
    """The bytes (NULL for a deletion) of the event at ``position_sql`` (an SQL expression)."""
    return f"(SELECT e.resource FROM event_log e WHERE e.position = {position_sql})"
