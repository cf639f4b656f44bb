"""The world of the alert browser tests: the browser tests' people and patients (``world.seed``: readings
stored and scored by the real scorer, which raises Karen's NEWS2 alert and Ole's weight gain), everyone
with an e-mail address from then on (so later alerts are delivered, not escalated as undeliverable), and
Inge's missing blood pressure. Alerts are raised as every scorer raises them:
``gateway.alerts.lifecycle.record_trigger`` in a committed transaction, with the sentences the models
write as their reasons (``gateway.api.model_words`` shows them in Danish).

``raise_alert`` is how a test raises one while a browser looks on.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg

from browser.world import BrowserWorld, seed
from gateway.alerts.home_rules import RULE_TITLES
from gateway.alerts.lifecycle import Trigger, record_trigger

Conn = psycopg.Connection[Any]
KOBENHAVN = "0101"


@dataclass(frozen=True, slots=True)
class AlertWorld:
    """``world.seed``'s world and the alerts added to it (alert ids by patient id)."""

    base: BrowserWorld
    added: dict[str, int]


def missing_blood_pressure(now: datetime, patient_id: str = "p-inge") -> Trigger:
    """The patient (Inge) has not measured her blood pressure for three days."""
    since = (now - timedelta(days=3, hours=1)).astimezone(UTC)
    reason = f"No blood pressure received since {since:%Y-%m-%d %H:%M} UTC (expected every 24 h)"
    return Trigger(
        KOBENHAVN, patient_id, "missing", "blood-pressure", "medium", reason, now - timedelta(minutes=30)
    )


def spo2_drop(now: datetime, patient_id: str = "p-jens") -> Trigger:
    """A COPD patient's saturation well below her own usual: what a test raises while the GP looks on."""
    reason = f"{RULE_TITLES['copd-spo2-drop']}: SpO2 86 %, 7 points below this patient's usual 93 %"
    return Trigger(
        KOBENHAVN, patient_id, "disease-rule", "copd-spo2-drop", "high", reason, now - timedelta(minutes=2)
    )


def raise_alert(conn: Conn, trigger: Trigger, now: datetime) -> int:
    """Raise ``trigger``'s alert in a transaction of its own (committed on return); its id."""
    with conn.transaction():
        outcome = record_trigger(conn, trigger, now=now)
    assert outcome.action == "raise" and outcome.alert_id is not None, outcome
    return outcome.alert_id


def seed_alert_world(conn: Conn, now: datetime) -> AlertWorld:
    """``world.seed`` (its scorer raised Karen's NEWS2 alert and Ole's weight gain), e-mail addresses for
    everyone, and Inge's missing blood pressure."""
    base = seed(conn, now)
    conn.execute("UPDATE users SET email = username || '@kk.example.dk'")
    added = {
        "p-inge": raise_alert(conn, missing_blood_pressure(now), now - timedelta(minutes=20)),
    }
    return AlertWorld(base, added)
