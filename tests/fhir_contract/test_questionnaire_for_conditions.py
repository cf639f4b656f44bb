"""``fhir_contract.questionnaire.for_conditions``: which daily check a patient is offered, from their
conditions (main condition first), as the gateway tells the hub and the demo sets up."""

from __future__ import annotations

import pytest

from fhir_contract.questionnaire import for_conditions, questionnaires


@pytest.mark.parametrize(
    ("conditions", "key"),
    [
        (("heart-failure",), "heart-failure-daily"),
        (("copd", "heart-failure"), "copd-daily"),
        (("heart-failure", "copd"), "heart-failure-daily"),
        (("diabetes", "copd"), "copd-daily"),
        (("diabetes", "frailty"), None),
        ((), None),
    ],
)
def test_the_first_condition_with_a_check_decides(conditions: tuple[str, ...], key: str | None) -> None:
    found = for_conditions(conditions)
    assert (found.key if found is not None else None) == key


def test_the_newest_version_is_offered() -> None:
    found = for_conditions(("copd",))
    assert found is not None
    versions = [q.version for q in questionnaires().values() if q.key == found.key]
    assert found.version == max(versions, key=lambda v: (len(v), v))
