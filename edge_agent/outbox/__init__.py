"""The hub's durable, bounded outbox (SQLite): readings are safe here before they are published."""

from edge_agent.outbox.priority import is_critical, observation_kind
from edge_agent.outbox.sqlite_outbox import DEFAULT_MAX_BYTES, DEFAULT_MAX_ROWS, Outbox, OutboxRow

__all__ = ["DEFAULT_MAX_BYTES", "DEFAULT_MAX_ROWS", "Outbox", "OutboxRow", "is_critical", "observation_kind"]
