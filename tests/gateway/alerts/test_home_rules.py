"""Disease rules run in the gateway on stored readings: a heart-failure patient's weight gain and a COPD
patient's drop below their own baseline are stored once as RiskAssessments and open an alert; the same
readings in a patient without the condition, or a reading that is only preliminary, raise nothing."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import psycopg
import pytest
from fhir.resources.R4B.riskassessment import RiskAssessment

from fhir_contract.observation import build_observation
from fhir_contract.readings import Quantity, Reading
from fhir_contract.validate import validate_observation
from gateway.alerts.home_rules import fresh_hits, load_series
from gateway.alerts.scorer import score_patient
from gateway.store.enrolment import Home, HomeDevice, enroll_homes
from gateway.store.repository import Municipality, Patient, insert_observations

DAY0 = datetime(2026, 11, 1, 7, 30, tzinfo=UTC)
PATIENTS = {"hf": ("heart-failure",), "copd": ("copd",), "plain": ("diabetes",)}


@pytest.fixture
def conn(database_url: str) -> Iterator[psycopg.Connection[Any]]:
    with psycopg.connect(database_url, autocommit=True) as c:
        homes = [
            Home(
                # The COPD patient has hypercapnic respiratory failure: NEWS2 on SpO2 scale 2.
                Patient("0101", pid, f"Synthetic {pid}", conditions=conditions, spo2_scale2=pid == "copd"),
                f"hub-{pid}",
                (HomeDevice(f"scale-{pid}", "scale"), HomeDevice(f"oxi-{pid}", "pulse-oximeter")),
            )
            for pid, conditions in PATIENTS.items()
        ]
        enroll_homes(c, [Municipality("0101", "København")], homes)
        yield c


def _store(c: psycopg.Connection[Any], pid: str, kind: str, value: str, at: datetime, **kw: Any) -> None:
    unit, device = {"body-weight": ("kg", "scale"), "spo2": ("%", "oxi")}[kind]
    obs = build_observation(
        Reading(kind, Quantity(Decimal(value), unit)),
        patient_id=pid,
        device_id=f"{device}-{pid}",
        hub_id=f"hub-{pid}",
        effective=at,
        **kw,
    )
    insert_observations(c, "0101", f"hub-{pid}", [validate_observation(obs)])


def _weights(c: psycopg.Connection[Any], pid: str, kilos: list[str]) -> None:
    for day, kg in enumerate(kilos):
        _store(c, pid, "body-weight", kg, DAY0 + timedelta(days=day))


def _rule_scores(c: psycopg.Connection[Any], pid: str) -> list[tuple[str, dict[str, Any]]]:
    rows = c.execute(
        "SELECT method, resource FROM scores WHERE patient_id = %s AND method <> 'news2' ORDER BY id", (pid,)
    ).fetchall()
    return [(str(m), r) for m, r in rows]


def _open_alerts(c: psycopg.Connection[Any], pid: str) -> list[tuple[str, str]]:
    rows = c.execute(
        "SELECT severity, reason FROM alerts WHERE patient_id = %s AND status = 'open'", (pid,)
    ).fetchall()
    return [(str(s), str(r)) for s, r in rows]


def test_heart_failure_weight_gain_is_stored_once_and_alerts(conn: psycopg.Connection[Any]) -> None:
    _weights(conn, "hf", ["80.0", "80.1", "79.9", "80.0", "80.6", "81.4", "82.3"])  # +2.3 kg in 3 days
    outcome = score_patient(conn, "0101", "hf")
    assert outcome is not None and outcome.news2 is None  # weight is no NEWS2 vital
    assert outcome.alert is not None and outcome.alert_raised
    [(method, resource)] = _rule_scores(conn, "hf")
    assert method == "hf-weight-gain-3d"
    RiskAssessment.model_validate(resource)
    # From the lowest of the 3 days before (80.0 kg) to 82.3 kg.
    assert "2.3 kg" in resource["note"][0]["text"] and "3 days" in resource["note"][0]["text"]
    [(severity, reason)] = _open_alerts(conn, "hf")
    assert severity == "medium" and reason.startswith("Heart-failure weight gain: Weight up 2.3 kg")
    # Scored again on the same readings: the rule fires on the same reading, which its alert holds already.
    again = score_patient(conn, "0101", "hf")
    assert again is not None and again.alert is not None and not again.alert_raised
    assert len(_rule_scores(conn, "hf")) == 1 and len(_open_alerts(conn, "hf")) == 1


def test_the_same_gain_in_a_patient_without_heart_failure_raises_nothing(
    conn: psycopg.Connection[Any],
) -> None:
    _weights(conn, "plain", ["80.0", "80.1", "79.9", "80.0", "80.6", "81.4", "82.3"])
    assert score_patient(conn, "0101", "plain") is None
    assert _rule_scores(conn, "plain") == [] and _open_alerts(conn, "plain") == []


def test_a_stable_weight_fires_no_rule(conn: psycopg.Connection[Any]) -> None:
    _weights(conn, "hf", ["80.0", "80.3", "79.8", "80.1", "80.4", "80.0", "80.2"])
    assert score_patient(conn, "0101", "hf") is None
    assert _rule_scores(conn, "hf") == []


def test_copd_drop_below_the_patients_own_baseline_alerts(conn: psycopg.Connection[Any]) -> None:
    # 91-92 % is this patient's normal (NEWS2 scale 2 scores it 0): 14 quiet days, then 86 %, which
    # scale 2 scores 1 point only: the drop from her own baseline is what raises the alert.
    for day in range(14):
        _store(conn, "copd", "spo2", "91" if day % 2 else "92", DAY0 + timedelta(days=day))
    quiet = score_patient(conn, "0101", "copd")
    assert _rule_scores(conn, "copd") == [] and quiet is not None
    _store(conn, "copd", "spo2", "86", DAY0 + timedelta(days=14))
    score_patient(conn, "0101", "copd")
    [(method, resource)] = _rule_scores(conn, "copd")
    assert method == "copd-spo2-drop" and "86" in resource["note"][0]["text"]
    [(severity, reason)] = _open_alerts(conn, "copd")
    assert severity == "medium" and reason.startswith("COPD: SpO2 below personal baseline: SpO2 86 %")


def test_only_hits_on_the_last_days_readings_are_news(conn: psycopg.Connection[Any]) -> None:
    _weights(conn, "hf", ["80.0", "80.1", "79.9", "82.5", "82.6", "82.4", "82.5", "82.6"])  # gain on day 3
    as_of = DAY0 + timedelta(days=7)
    series = load_series(conn, "0101", "hf", as_of)
    assert fresh_hits(series, ["heart-failure"], as_of) == []  # it fired 4 days ago: old news
    old = fresh_hits(series, ["heart-failure"], DAY0 + timedelta(days=3))
    assert [f.hit.rule for f in old] == ["hf-weight-gain-3d"]


def test_a_preliminary_reading_never_fires_a_rule(conn: psycopg.Connection[Any]) -> None:
    _weights(conn, "hf", ["80.0", "80.1", "79.9", "80.0"])
    _store(conn, "hf", "body-weight", "83.0", DAY0 + timedelta(days=4), preliminary=True)
    series = load_series(conn, "0101", "hf", DAY0 + timedelta(days=4))
    assert len(series["weight"].values) == 4
    assert fresh_hits(series, ["heart-failure"], DAY0 + timedelta(days=4)) == []
