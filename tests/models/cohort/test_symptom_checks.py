"""The SYNTHETIC symptom checks and measurement plans (issue 21): none by default, answers that say
"worse" during a deterioration, plans whose misses follow the days without measuring, and the answers
written as QuestionnaireResponses that read back to the same cohort."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from fhir_contract.questionnaire import validate_response
from models.cohort.history import _unwell, simulate_history
from models.cohort.ndjson import RESPONSES_FILE, write_ndjson
from models.cohort.populations import named_settings
from models.cohort.records import history_cohort
from models.cohort.settings import GeneratorSettings
from models.cohort_reader import ndjson_resources, read_cohort


def test_the_default_population_has_no_answers_and_no_plans(tmp_path: Path) -> None:
    history = simulate_history(20, 30, 11)
    assert not any(p.plan or p.questionnaire or p.answer_days.size for p in history.patients)
    write_ndjson(history, tmp_path)
    assert not (tmp_path / RESPONSES_FILE).exists()


def test_answers_say_worse_during_a_deterioration_and_plans_miss_when_people_do_not_measure() -> None:
    history = simulate_history(120, 150, 3, settings=named_settings("symptom-checks"))
    inside, outside = [], []
    for p in history.patients:
        if p.answer_days.size == 0:
            continue
        assert p.questionnaire in ("heart-failure-daily", "copd-daily")
        worse = (p.answer_ordinals == 2).mean(axis=1)
        unwell = _unwell(p.episodes, p.answer_days) > 0.3
        inside += worse[unwell].tolist()
        outside += worse[~unwell].tolist()
    assert len(inside) > 50 and np.mean(inside) > 3 * np.mean(outside)
    planned = [p for p in history.patients if p.plan]
    assert 0.6 < len(planned) / len(history.patients) < 0.95
    missed = np.mean([not done for p in planned for _due, _deadline, done in p.plan_checks])
    assert 0.05 < missed < 0.6  # adherence of the project's population: most planned readings come


def test_the_answers_are_contract_responses_that_read_back_to_the_same_cohort(tmp_path: Path) -> None:
    history = simulate_history(15, 40, 4, settings=GeneratorSettings(name="answers", questionnaire_share=1.0))
    summary = write_ndjson(history, tmp_path)
    responses = list(ndjson_resources(tmp_path / RESPONSES_FILE))
    assert summary.questionnaire_responses == len(responses) > 50
    for resource in responses[:20]:
        body = {k: v for k, v in resource.items() if k not in ("id", "meta")}
        validate_response(body)
        assert resource["meta"]["tag"][0]["code"] == "synthetic"
    assert history_cohort(history) == read_cohort(tmp_path)
