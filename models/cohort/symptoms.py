"""SYNTHETIC answers to the daily symptom check and a SYNTHETIC measurement plan (issue 21's features).

Nothing here describes a real person. `symptom_checks_and_plan` adds to one simulated patient
(`history.simulate_patient`), from a random stream of its own so that nothing else moves:

- **A measurement plan**, with the chance `GeneratorSettings.plan_share`: the nurse plans what the
  patient already measures (`history._plans`): with heart failure weight and blood pressure every day,
  with COPD SpO2 every day, with frailty weight once a week, everyone else blood pressure three days a
  week; due at :data:`PLAN_TIME` in the home's time (the history start's offset), with
  :data:`PLAN_GRACE` to spare. Its occurrences are judged against the simulated readings by the
  gateway's own rule (`models.plan_checks.judged_occurrences`), so every way the simulator loses a
  reading (a day without measuring, a single miss, a lapse, a drop-out, a device clock hours off, a
  stay in hospital) is a missed occurrence, and being unwell (which makes people measure less unless
  the population says otherwise) shows as misses.
- **The daily symptom check**, with the chance `GeneratorSettings.questionnaire_share` for a patient
  with heart failure (the heart-failure check) or COPD (the COPD check): answered on
  :data:`ANSWER_WHEN_MEASURING` of the days the patient measures and :data:`ANSWER_OTHERWISE` of the
  others, never in hospital or away, in the morning. Each item is answered "worse" (or "present",
  ordinal 2) with a chance of :data:`WORSE_BACKGROUND` times the patient's own way of reporting plus
  :data:`WORSE_IN_EPISODE` times how far a deterioration episode has come; otherwise the middle answer
  ("same", "fair"), when the item has one, with :data:`MIDDLE_SHARE`, else the fine one.

Those numbers are one author's guesses, not measured on patients.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import Final
from zoneinfo import ZoneInfo

import numpy as np
import numpy.typing as npt

from fhir_contract.plan import ALL_DAYS, PlanItem
from fhir_contract.questionnaire import Questionnaire, current
from models.cohort.profiles import MORNING_HOUR, Condition
from models.cohort.settings import GeneratorSettings
from models.plan_checks import judged_occurrences, readings_from

FloatArray = npt.NDArray[np.float64]

#: When the SYNTHETIC nurse plans the measurements, and how long after they still count.
PLAN_TIME: Final = time(7, 30)
PLAN_GRACE: Final = timedelta(hours=3)
#: The chance to answer the symptom check on a day the patient measures, and on another day at home.
ANSWER_WHEN_MEASURING: Final = 0.9
ANSWER_OTHERWISE: Final = 0.1
#: The chance of a "worse" answer to an item with no episode, for a patient of usual reporting, and
#: what a deterioration at its peak adds to it; the spread (log SD) of patients' ways of reporting.
WORSE_BACKGROUND: Final = 0.03
WORSE_IN_EPISODE: Final = 0.6
REPORTING_SD: Final = 0.5
#: The chance of the middle answer ("same", "fair") when the answer is not "worse".
MIDDLE_SHARE: Final = 0.5
#: The symptom check of each condition, in this order of preference.
CHECK_OF_CONDITION: Final = {"heart-failure": "heart-failure-daily", "copd": "copd-daily"}


@dataclass(frozen=True, slots=True)
class SymptomInputs:
    """What the patient's simulation already decided: conditions, the weekday (0-6 from the start) of
    the weekly measurements, the days measuring (bool per day), the spans in hospital or away, how far
    an episode has come at given days (0..1), and the reading days of each planned measurement."""

    conditions: tuple[Condition, ...]
    weekday: int
    measuring: npt.NDArray[np.bool_]
    blocked: tuple[tuple[float, float], ...]
    unwell: Callable[[FloatArray], FloatArray]
    taken: Mapping[str, FloatArray]


@dataclass(frozen=True, slots=True)
class SymptomsAndPlan:
    """The plan (empty: none) with its judged occurrences as (due day, deadline day, done), and the
    symptom check (None: none) with the answers' days and ordinals (one row per answer, one column per
    item, in the Questionnaire's order)."""

    plan: tuple[PlanItem, ...]
    plan_checks: tuple[tuple[float, float, bool], ...]
    questionnaire: str | None
    answer_days: FloatArray
    answer_ordinals: npt.NDArray[np.int8]


def home_zone(start: datetime) -> ZoneInfo:
    """The fixed offset of `start` as a zone `fhir_contract.plan` takes (Etc/GMT-1 for +01:00); UTC for
    an offset that is not whole hours (none of the project's starts)."""
    offset = start.utcoffset() or timedelta(0)
    hours = offset.total_seconds() / 3600
    if hours == int(hours) and -12 <= hours <= 14:
        return ZoneInfo("Etc/UTC" if hours == 0 else f"Etc/GMT{-int(hours):+d}")
    return ZoneInfo("Etc/UTC")


def synthetic_plan(conditions: tuple[Condition, ...], weekday: int, start: datetime) -> tuple[PlanItem, ...]:
    """The plan of what the patient measures (`history._plans`), in ISO weekdays of `start`'s calendar."""

    def iso(day: int) -> int:
        return (start.date() + timedelta(days=day)).isoweekday()

    items = []
    if "heart-failure" in conditions:
        items.append(PlanItem("weight", (PLAN_TIME,), ALL_DAYS, PLAN_GRACE))
        items.append(PlanItem("blood-pressure", (PLAN_TIME,), ALL_DAYS, PLAN_GRACE))
    else:
        if "frailty" in conditions:
            items.append(PlanItem("weight", (PLAN_TIME,), frozenset({iso(weekday)}), PLAN_GRACE))
        days = frozenset(iso(weekday + k) for k in (0, 2, 4))
        items.append(PlanItem("blood-pressure", (PLAN_TIME,), days, PLAN_GRACE))
    if "copd" in conditions:
        items.append(PlanItem("spo2", (PLAN_TIME,), ALL_DAYS, PLAN_GRACE))
    return tuple(items)


def _judge(
    plan: tuple[PlanItem, ...], taken: Mapping[str, FloatArray], days: int, start: datetime
) -> tuple[tuple[float, float, bool], ...]:
    def at(day: float) -> datetime:
        return start + timedelta(seconds=round(day * 86400.0))

    def day_of(moment: datetime) -> float:
        return (moment - start).total_seconds() / 86400.0

    end = at(days)
    earliest = readings_from(start)
    judged = judged_occurrences(
        plan,
        start=start,
        end=end,
        zone=home_zone(start),
        taken={m: [at(float(d)) for d in t if at(float(d)) >= earliest] for m, t in taken.items()},
    )
    return tuple((day_of(o.due_at), day_of(o.deadline), o.done) for o in judged)


def _answers(
    rng: np.random.Generator,
    questionnaire: Questionnaire,
    inputs: SymptomInputs,
    days: int,
) -> tuple[FloatArray, npt.NDArray[np.int8]]:
    # Every draw is made whatever is answered, so that one choice never moves the others.
    reporting = math.exp(float(rng.normal(0.0, REPORTING_SD)) - REPORTING_SD**2 / 2)
    answer_draw = rng.random(days)
    hour = np.clip(rng.normal(0.0, 0.5, days), -1.5, 1.5)
    items = questionnaire.questions
    worse_draw, middle_draw = rng.random((days, len(items))), rng.random((days, len(items)))
    day = np.arange(days, dtype=np.float64)
    t = day + (MORNING_HOUR + 0.25 + hour) / 24.0
    chance = np.where(inputs.measuring, ANSWER_WHEN_MEASURING, ANSWER_OTHERWISE)
    answered = answer_draw < chance
    for low, high in inputs.blocked:
        answered &= ~((t >= low) & (t < high))
    worse_chance = np.minimum(WORSE_BACKGROUND * reporting + WORSE_IN_EPISODE * inputs.unwell(t), 0.95)
    ordinals = np.zeros((days, len(items)), dtype=np.int8)
    for column, question in enumerate(items):
        levels = {option.ordinal for option in question.options}
        middle = 1 in levels
        worse = worse_draw[:, column] < worse_chance
        ordinals[:, column] = np.where(
            worse, 2, np.where(middle & (middle_draw[:, column] < MIDDLE_SHARE), 1, 0)
        )
    return t[answered], ordinals[answered]


def symptom_checks_and_plan(
    rng: np.random.Generator, inputs: SymptomInputs, days: int, start: datetime, settings: GeneratorSettings
) -> SymptomsAndPlan:
    """The patient's plan and symptom check, as the module docstring says; none of either at the
    settings' defaults (and then no draw changes anything)."""
    plan_draw, check_draw = rng.random(2)
    plan: tuple[PlanItem, ...] = ()
    checks: tuple[tuple[float, float, bool], ...] = ()
    if plan_draw < settings.plan_share:
        plan = synthetic_plan(inputs.conditions, inputs.weekday, start)
        checks = _judge(plan, inputs.taken, days, start)
    key = next((CHECK_OF_CONDITION[c] for c in CHECK_OF_CONDITION if c in inputs.conditions), None)
    if key is None or check_draw >= settings.questionnaire_share:
        return SymptomsAndPlan(plan, checks, None, np.zeros(0), np.zeros((0, 0), dtype=np.int8))
    questionnaire = current(key)
    answer_days, ordinals = _answers(rng, questionnaire, inputs, days)
    return SymptomsAndPlan(plan, checks, key, answer_days, ordinals)
