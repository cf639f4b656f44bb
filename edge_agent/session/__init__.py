"""Per-connection device sessions: the clock step, record histories, and what each value becomes.

``device`` (:class:`~edge_agent.session.device.DeviceSession`, the agent's session for one configured
device), ``clock`` (read, judge and set a device clock over GATT) and ``history`` (a RACP transfer,
stored exactly once). Connecting is :mod:`edge_agent.ble`'s business; parsing :mod:`edge_agent.gatt`'s;
durability the outbox's.
"""

from edge_agent.session.device import AgentStats, DeviceSession

__all__ = ["AgentStats", "DeviceSession"]
