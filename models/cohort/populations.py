"""Many SYNTHETIC populations: the ranges the day-one default is trained over, and the held-out
settings it is measured on, which lie outside those ranges or work by another mechanism.

- `TRAINING_RANGES`: for every numeric field of `GeneratorSettings` the interval a training population
  draws it from (uniformly; the personal-rate shape log-uniformly), plus the choices for the episode
  curve, which vitals an episode moves and whether staff fill in change forms, and (issue 21, from a
  random stream of their own, so the other draws are as before) the shares of patients answering a
  daily symptom check and with a measurement plan. The ranges are wide on
  purpose (a third to three times the project's own values) so that no single population's quirks
  (how much a recent admission predicts the next, how noisy a device is, how often people measure)
  can be learnt as if they held everywhere.
- `training_settings(count, seed)`: `count` populations drawn from those ranges, a pure function of
  `seed`; `DEFAULT_TRAINING` is the recipe of the shipped default (`models.default_model`).
- `HELD_OUT`: populations unlike any in training. Each has at least one setting outside its training
  range or a mechanism training never uses (`outside_training` names them; a test holds that every
  held-out setting has some): heavy artefacts, very low adherence with unwell patients measuring more,
  mostly unheralded admissions with an even risk, abrupt late episodes, a shifted and more varied
  baseline population, a risk tied strongly to the usual vitals, a case mix whose conditions and ages
  weigh the other way, and slow episodes that move only SpO2, pulse and temperature.
- `named_settings(name)`: "default", a held-out name, or "training-K" (the K-th population of the
  shipped default's training, from 1): what `homewatch models cohort --setting NAME` simulates.

Everything these settings make is SYNTHETIC; "unlike training" is unlike the training *ranges* of one
author's generator, not unlike real people.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from types import MappingProxyType
from typing import Final

import numpy as np

from models.cohort.profiles import Span, Vital
from models.cohort.settings import (
    DEFAULT_SETTINGS,
    ConditionRisk,
    EpisodeCurve,
    GeneratorSettings,
    VitalShift,
)
from models.cohort.synthetic import CohortError

_ALL_VITALS: Final[tuple[Vital, ...]] = DEFAULT_SETTINGS.episode_vitals


@dataclass(frozen=True, slots=True)
class TrainingRanges:
    """Where the training populations' settings are drawn from."""

    numeric: Mapping[str, Span]  # field (or "baseline_shift.<vital>", "adherence_mean", ...) -> span
    log_uniform: frozenset[str]  # fields drawn uniformly on the log scale
    episode_curves: tuple[EpisodeCurve, ...]
    #: An episode moves every vital with this chance, else every vital but one of these.
    all_vitals_share: float
    one_vital_still: tuple[Vital, ...]
    staff_forms_share: float
    #: Issue 21's settings (the shares answering a daily symptom check and with a measurement plan),
    #: drawn uniformly from a random stream of their own (`SYMPTOM_STREAM`), so that every draw above
    #: is the same as before they existed.
    symptom_checks: Mapping[str, Span]


TRAINING_RANGES: Final = TrainingRanges(
    numeric=MappingProxyType(
        {
            "event_rate_per_day": Span(0.003, 0.012),
            "personal_rate_shape": Span(0.8, 12.0),
            "baseline_risk_link": Span(0.0, 0.8),
            "condition_risk.heart_failure": Span(0.6, 1.7),
            "condition_risk.copd": Span(0.6, 1.7),
            "condition_risk.diabetes": Span(0.6, 1.7),
            "condition_risk.frailty": Span(0.6, 1.7),
            "age_risk_per_decade": Span(-0.2, 0.6),
            "unheralded_share": Span(0.05, 0.40),
            "baseline_shift.spo2": Span(-1.5, 1.0),
            "baseline_shift.pulse": Span(-8.0, 8.0),
            "baseline_shift.systolic": Span(-12.0, 12.0),
            "baseline_shift.temperature": Span(-0.3, 0.3),
            "baseline_shift.weight": Span(-10.0, 10.0),
            "baseline_spread": Span(0.7, 1.5),
            "noise_scale": Span(0.6, 1.8),
            "wander_scale": Span(0.5, 1.8),
            "adherence_mean": Span(0.60, 0.92),  # mean of the beta distribution
            "adherence_concentration": Span(5.0, 12.0),  # a + b of the beta distribution
            "lapse_start": Span(0.004, 0.03),
            "missed_one": Span(0.01, 0.10),
            "unwell_adherence_drop": Span(0.0, 0.6),
            "dropout_per_180_days": Span(0.0, 0.15),
            "outlier_share": Span(0.0, 0.02),
            "repeat_share": Span(0.0, 0.05),
            "clock_error_share": Span(0.0, 0.10),
            "wrong_arm_share": Span(0.0, 0.15),
            "build_up_scale": Span(0.6, 1.6),
            "severity_scale": Span(0.7, 1.25),
            "daily_visits_share": Span(0.15, 0.60),
            "change_background_scale": Span(0.5, 2.0),
            "change_in_episode_scale": Span(0.4, 1.4),
        }
    ),
    log_uniform=frozenset(
        {
            "personal_rate_shape",
            "condition_risk.heart_failure",
            "condition_risk.copd",
            "condition_risk.diabetes",
            "condition_risk.frailty",
        }
    ),
    episode_curves=("s-curve", "linear", "early"),
    all_vitals_share=0.7,
    one_vital_still=("spo2", "weight", "temperature"),
    staff_forms_share=0.75,
    symptom_checks=MappingProxyType({"questionnaire_share": Span(0.0, 0.9), "plan_share": Span(0.0, 0.9)}),
)
#: The third part of the seed of the stream that draws `TrainingRanges.symptom_checks` (issue 21).
SYMPTOM_STREAM: Final = 21


def _value(settings: GeneratorSettings, key: str) -> float:
    """A setting by its `TRAINING_RANGES` key."""
    if key.startswith("baseline_shift."):
        return settings.baseline_shift.get(key.removeprefix("baseline_shift."))
    if key.startswith("condition_risk."):
        return settings.condition_risk.get(key.removeprefix("condition_risk."))
    if key == "adherence_mean":
        return settings.adherence_mean
    if key == "adherence_concentration":
        return sum(settings.adherence_beta)
    value: float = getattr(settings, key)
    return value


def training_settings(
    count: int, seed: int, ranges: TrainingRanges = TRAINING_RANGES
) -> tuple[GeneratorSettings, ...]:
    """`count` training populations drawn from `ranges`, named "training-1" .. "training-<count>"; a pure
    function of (count, seed), and the first k of a larger draw are the k of a smaller one."""
    if count < 1:
        raise CohortError("count", count, "must be at least 1")
    return tuple(
        _with_symptom_checks(
            _training_setting(np.random.default_rng([seed, k]), k, ranges),
            np.random.default_rng([seed, k, SYMPTOM_STREAM]),
            ranges,
        )
        for k in range(1, count + 1)
    )


def _with_symptom_checks(
    settings: GeneratorSettings, rng: np.random.Generator, ranges: TrainingRanges
) -> GeneratorSettings:
    """`settings` with issue 21's shares drawn from `rng`, a stream of their own (in this order)."""
    questionnaire, plan = (ranges.symptom_checks[key] for key in ("questionnaire_share", "plan_share"))
    return replace(
        settings,
        questionnaire_share=float(rng.uniform(questionnaire.low, questionnaire.high)),
        plan_share=float(rng.uniform(plan.low, plan.high)),
    )


def _training_setting(rng: np.random.Generator, k: int, ranges: TrainingRanges) -> GeneratorSettings:
    drawn: dict[str, float] = {}
    for key, span in ranges.numeric.items():  # a fixed order: the dict's
        if key in ranges.log_uniform:
            drawn[key] = math.exp(float(rng.uniform(math.log(span.low), math.log(span.high))))
        else:
            drawn[key] = float(rng.uniform(span.low, span.high))
    curve = ranges.episode_curves[int(rng.integers(len(ranges.episode_curves)))]
    still = ranges.one_vital_still[int(rng.integers(len(ranges.one_vital_still)))]
    moved = (
        _ALL_VITALS if rng.random() < ranges.all_vitals_share else tuple(v for v in _ALL_VITALS if v != still)
    )
    forms = bool(rng.random() < ranges.staff_forms_share)
    mean, concentration = drawn.pop("adherence_mean"), drawn.pop("adherence_concentration")
    risk = ConditionRisk(
        **{
            name: drawn.pop(f"condition_risk.{name}")
            for name in ("heart_failure", "copd", "diabetes", "frailty")
        }
    )
    shift = VitalShift(
        **{
            vital: drawn.pop(f"baseline_shift.{vital}")
            for vital in ("spo2", "pulse", "systolic", "temperature", "weight")
        }
    )
    return GeneratorSettings(
        name=f"training-{k}",
        event_rate_per_day=drawn["event_rate_per_day"],
        personal_rate_shape=drawn["personal_rate_shape"],
        unheralded_share=drawn["unheralded_share"],
        baseline_risk_link=drawn["baseline_risk_link"],
        condition_risk=risk,
        age_risk_per_decade=drawn["age_risk_per_decade"],
        baseline_shift=shift,
        baseline_spread=drawn["baseline_spread"],
        noise_scale=drawn["noise_scale"],
        wander_scale=drawn["wander_scale"],
        adherence_beta=(mean * concentration, (1.0 - mean) * concentration),
        lapse_start=drawn["lapse_start"],
        missed_one=drawn["missed_one"],
        unwell_adherence_drop=drawn["unwell_adherence_drop"],
        dropout_per_180_days=drawn["dropout_per_180_days"],
        outlier_share=drawn["outlier_share"],
        repeat_share=drawn["repeat_share"],
        clock_error_share=drawn["clock_error_share"],
        wrong_arm_share=drawn["wrong_arm_share"],
        build_up_scale=drawn["build_up_scale"],
        severity_scale=drawn["severity_scale"],
        episode_curve=curve,
        episode_vitals=moved,
        staff_forms=forms,
        daily_visits_share=drawn["daily_visits_share"],
        change_background_scale=drawn["change_background_scale"],
        change_in_episode_scale=drawn["change_in_episode_scale"],
    )


def outside_training(
    settings: GeneratorSettings, ranges: TrainingRanges = TRAINING_RANGES
) -> tuple[str, ...]:
    """What puts `settings` outside the training populations: every numeric setting beyond its training
    range, an episode curve training never uses, or a set of moving vitals no training draw has."""
    out = []
    for key, span in (*ranges.numeric.items(), *ranges.symptom_checks.items()):
        value = _value(settings, key)
        if not span.low <= value <= span.high:
            out.append(f"{key} {value:g} (training {span.low:g} to {span.high:g})")
    if settings.episode_curve not in ranges.episode_curves:
        out.append(f"episode_curve {settings.episode_curve} (training: {', '.join(ranges.episode_curves)})")
    moved = set(settings.episode_vitals)
    possible = [set(_ALL_VITALS)] + [set(_ALL_VITALS) - {v} for v in ranges.one_vital_still]
    if moved not in possible:
        still = ", ".join(v for v in _ALL_VITALS if v not in moved)
        out.append(f"episodes leave {still} unchanged (training: all vitals or all but one)")
    return tuple(out)


#: Populations the default never sees in training (`outside_training` says how each differs).
HELD_OUT: Final[Mapping[str, GeneratorSettings]] = MappingProxyType(
    {
        # Readings as badly taken as one can imagine: 8 % implausible values, 15 % taken twice, 30 % of
        # patients with a device clock hours off, 40 % sometimes using the other arm; twice the noise.
        "heavy-artefacts": GeneratorSettings(
            name="heavy-artefacts",
            outlier_share=0.08,
            repeat_share=0.15,
            clock_error_share=0.30,
            wrong_arm_share=0.40,
            noise_scale=2.2,
        ),
        # Measuring on 4 days in 10, long lapses, 40 % dropping out; and unwell patients measure MORE.
        "low-adherence": GeneratorSettings(
            name="low-adherence",
            adherence_beta=(3.2, 4.8),
            lapse_start=0.06,
            missed_one=0.20,
            dropout_per_180_days=0.40,
            unwell_adherence_drop=-0.30,
        ),
        # Two admissions in three come without warning, and everyone's risk is about the same.
        "mostly-unheralded": GeneratorSettings(
            name="mostly-unheralded", unheralded_share=0.65, personal_rate_shape=20.0
        ),
        # Episodes that stay quiet and then move abruptly in their last day or two (x^4, a third of the
        # usual build-up).
        "abrupt-episodes": GeneratorSettings(
            name="abrupt-episodes", episode_curve="late", build_up_scale=0.35
        ),
        # Another population: lower SpO2, faster pulse, higher pressure, heavier; twice as varied; more
        # admissions; no staff change forms.
        "shifted-population": GeneratorSettings(
            name="shifted-population",
            baseline_shift=VitalShift(spo2=-2.5, pulse=14.0, systolic=20.0, temperature=0.5, weight=18.0),
            baseline_spread=2.0,
            event_rate_per_day=0.016,
            staff_forms=False,
        ),
        # Risk tied strongly to how ill a patient is at baseline (and hardly to anything else personal).
        "baseline-linked": GeneratorSettings(
            name="baseline-linked", baseline_risk_link=1.3, personal_rate_shape=8.0
        ),
        # A case mix that weighs the other way: heart failure and COPD bring few admissions, diabetes and
        # frailty many, and the oldest are admitted far more often.
        "case-mix-risk": GeneratorSettings(
            name="case-mix-risk",
            condition_risk=ConditionRisk(heart_failure=0.4, copd=0.4, diabetes=2.5, frailty=2.5),
            age_risk_per_decade=1.0,
        ),
        # Slow episodes (2.6 times the build-up) that move only SpO2, pulse and temperature.
        "slow-episodes": GeneratorSettings(
            name="slow-episodes", build_up_scale=2.6, episode_vitals=("spo2", "pulse", "temperature")
        ),
    }
)


@dataclass(frozen=True, slots=True)
class TrainingRecipe:
    """How many training populations, of what size, from which seeds."""

    populations: int
    settings_seed: int  # `training_settings(populations, settings_seed)`
    patients: int
    days: int
    first_cohort_seed: int  # population K (from 1) is simulated with seed first_cohort_seed + K


#: The shipped default's training populations (`models.default_model.train_default`).
DEFAULT_TRAINING: Final = TrainingRecipe(
    populations=16, settings_seed=2026, patients=250, days=180, first_cohort_seed=1000
)
#: The held-out populations' size; population number i (from 1, in `HELD_OUT` order) uses seed
#: HELD_OUT_FIRST_SEED + i, far from every training seed.
HELD_OUT_PATIENTS: Final = 300
HELD_OUT_DAYS: Final = 180
HELD_OUT_FIRST_SEED: Final = 9000


#: The project's own population where most patients answer a daily symptom check and have a measurement
#: plan (issue 21); `homewatch models cohort --setting symptom-checks` writes its answers as
#: QuestionnaireResponses. The day-one default's training populations draw both shares
#: (`TrainingRanges.symptom_checks`); its held-out populations have neither.
SYMPTOM_CHECKS: Final = replace(
    DEFAULT_SETTINGS, name="symptom-checks", questionnaire_share=0.8, plan_share=0.8
)
#: Settings fields that a sidecar names only when they differ from their default: added after
#: `admission-risk-2.0` was trained, so that a population without them is described as it was then.
_NAMED_WHEN_SET: Final = {"questionnaire_share": 0.0, "plan_share": 0.0}


def named_settings(name: str) -> GeneratorSettings:
    """The settings called `name`: "default", "symptom-checks", a `HELD_OUT` name, or "training-K" of
    `DEFAULT_TRAINING`."""
    if name == DEFAULT_SETTINGS.name:
        return DEFAULT_SETTINGS
    if name == SYMPTOM_CHECKS.name:
        return SYMPTOM_CHECKS
    if name in HELD_OUT:
        return HELD_OUT[name]
    if name.startswith("training-") and name.removeprefix("training-").isdigit():
        k = int(name.removeprefix("training-"))
        if 1 <= k <= DEFAULT_TRAINING.populations:
            return training_settings(DEFAULT_TRAINING.populations, DEFAULT_TRAINING.settings_seed)[k - 1]
    known = ", ".join(
        [
            DEFAULT_SETTINGS.name,
            SYMPTOM_CHECKS.name,
            *HELD_OUT,
            f"training-1 .. training-{DEFAULT_TRAINING.populations}",
        ]
    )
    raise CohortError("setting", name, f"unknown (known: {known})")


def settings_dict(settings: GeneratorSettings) -> dict[str, object]:
    """The settings as JSON-ready values (for a model's sidecar)."""
    out: dict[str, object] = {}
    for f in fields(settings):
        value = getattr(settings, f.name)
        if f.name in _NAMED_WHEN_SET and value == _NAMED_WHEN_SET[f.name]:
            continue
        if isinstance(value, VitalShift | ConditionRisk):
            out[f.name] = {g.name: getattr(value, g.name) for g in fields(value)}
        elif isinstance(value, tuple):
            out[f.name] = list(value)
        else:
            out[f.name] = value
    return out
