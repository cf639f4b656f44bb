"""The patient view's today page shows each resident of a household their own measurement plan
(``HubConfig.plan_of``): the second resident sees "Dagens målinger" with his plan and his readings, the
enrolled patient hers, neither the other's (the real app through Starlette's test client, a real history)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from view_helpers import ANNA, NOW, PIN, Hub, blood_pressure, client_for, config, csrf, make_hub, weight

from edge_agent.config import ResidentConfig

# 10:30 local now: Bent weighs himself at 10:00 (done at 10:00) and at 20:00 (later today).
BENT_PLAN = ({"measurement": "weight", "times": ["10:00", "20:00"], "grace_minutes": 120},)
BENT = ResidentConfig(patient_id="p-bent", name="Bent", questionnaire="copd-daily", plan=BENT_PLAN)


@pytest.fixture
def household(tmp_path: Path) -> Iterator[Hub]:
    hub = make_hub(tmp_path, config(tmp_path, residents=(ANNA, BENT)))
    hub.history.add(
        [
            blood_pressure("p-anna", NOW - timedelta(hours=1), 131, 81),
            weight("p-bent", NOW - timedelta(minutes=30), "92.5"),
        ],
        now=NOW,
    )
    yield hub
    hub.close()


def _today_of(hub: Hub, resident: str) -> str:
    client = client_for(hub)
    who = client.post("/login", data={"pin": PIN, "csrf": csrf(client.get("/login").text)})
    page: str = client.post("/who", data={"resident": resident, "csrf": csrf(who.text)}).text
    return page


def test_the_second_resident_sees_his_own_plan_and_what_he_measured(household: Hub) -> None:
    page = _today_of(household, "p-bent")
    assert "Hej Bent" in page and "Dagens målinger" in page
    assert 'data-state="done" data-measurement="weight"' in page and "Målt 10.00" in page
    assert 'data-state="upcoming" data-measurement="weight"' in page or "Senere i dag" in page
    assert 'data-measurement="blood-pressure"' not in page and "131/81" not in page  # Anna's plan, Anna's


def test_the_enrolled_patient_still_sees_hers_and_not_his(household: Hub) -> None:
    page = _today_of(household, "p-anna")
    assert "Hej Anna" in page and "Dagens målinger" in page
    assert 'data-state="done" data-measurement="blood-pressure"' in page
    assert 'data-measurement="weight"' not in page and "92,5" not in page


def test_a_resident_without_a_plan_has_no_plan_section(tmp_path: Path) -> None:
    unplanned = ResidentConfig(patient_id="p-bent", name="Bent")
    hub = make_hub(tmp_path, config(tmp_path, residents=(ANNA, unplanned)))
    try:
        page = _today_of(hub, "p-bent")
        assert "Hej Bent" in page and "Dagens målinger" not in page
    finally:
        hub.close()
