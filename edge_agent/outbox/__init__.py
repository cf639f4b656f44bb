"""The hub's durable outbox (SQLite): readings are safe here before they are published."""

from edge_agent.outbox.sqlite_outbox import Outbox, OutboxRow

__all__ = ["Outbox", "OutboxRow"]
