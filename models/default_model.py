"""The day-one default: the 30-day admission-risk model that ships, trained over many SYNTHETIC populations
and measured on populations it never saw.

A municipality that installs homewatch scores with this model until it has trained one on its own history
(`models.validation`). The model trained on the project's one generator ranked worse than NEWS2 on a
population made by other code; this one is made to transfer:

- **Many populations.** `train_default` simulates `DEFAULT_TRAINING.populations` populations whose
  settings are drawn from wide ranges (`models.cohort.populations.TRAINING_RANGES`: prevalence, how
  unequal and how tied to the usual vitals the risk is, baselines, noise, adherence, artefacts,
  episode shapes, unheralded admissions, staff forms) and fits one calibrated logistic regression
  (`models.admission_risk.fit`) on all their patient-days together. What holds in one population only
  averages out; what holds in all of them is learnt.
- **Relative features, signed by clinical sense.** Every feature the default may use has a direction
  written down before fitting (`EXPECTED_SIGNS`): a SpO2 falling below the patient's own baseline, a
  pulse rising, a rule firing, a staff note, NEWS2 of the day and the patient's usual NEWS2 (the one
  absolute scale every population shares), age, a condition, a recent admission raise the risk. The
  absolute latest values (`*_latest`: a SpO2 of 93 %, a weight of 81 kg) and sex have none that every
  population shares, and are switched off; so is, round by round, every feature whose fitted
  coefficient points the other way (`sign_checked_exclusions`: a quirk of the training populations, or
  a share another feature carries). Every model still reads the same feature row; a switched-off
  feature has a coefficient of exactly zero, and no explanation ever gives a reason that points the
  wrong way.
- **Held-out populations.** `evaluate_default` measures the model on every setting of
  `populations.HELD_OUT` (each outside the training ranges or with a mechanism training never used) and
  on the project's standard test cohort, against NEWS2 of the day, the weight rule and, when given, the
  previously shipped model, on the same patient-days: AUROC with a 95 % patient-bootstrap interval
  (`models.validation.patient_bootstrap_auroc`), the model's AUROC minus NEWS2's with the interval of the
  paired difference (the same resamples for both), calibration slope and intercept
  (`models.validation.logistic_recalibration`), and sensitivity at equal alert burden: every method's
  threshold chosen on that population for one alert per patient-month, the models alerting on the rise
  in their risk as the gateway does (`models.evaluate` definitions).

"Never below NEWS2" is a target on these SYNTHETIC populations, all made by one author's generator; it
is not a guarantee on real people (`models/MODEL_CARD.md`, `docs/models.md`). Simulation and features are
pure; reading and writing files is the CLI's (`homewatch models train-default`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any, Final

import numpy as np
import numpy.typing as npt
from sklearn.linear_model import LogisticRegression

from models.admission_risk import (
    ALERTS_PER_PATIENT_MONTH,
    MODEL_VERSION,
    Dataset,
    ModelError,
    RiskModel,
    build_dataset,
    fit,
    monitored_rise,
    standardised_coefficients,
)
from models.cohort.history import simulate_history
from models.cohort.populations import (
    DEFAULT_TRAINING,
    HELD_OUT,
    HELD_OUT_DAYS,
    HELD_OUT_FIRST_SEED,
    HELD_OUT_PATIENTS,
    TrainingRecipe,
    outside_training,
    settings_dict,
    training_settings,
)
from models.cohort.records import history_cohort
from models.cohort.settings import DEFAULT_SETTINGS, GeneratorSettings
from models.cohort_reader import Cohort
from models.evaluate import (
    NEWS2_ALONE,
    WEIGHT_RULE_ALONE,
    FloatArray,
    admission_days,
    baseline_scores,
    home_scores,
    method_result,
)
from models.features import MODEL_FEATURES
from models.validation import logistic_recalibration, patient_bootstrap_auroc


def _expected_signs() -> dict[str, int]:
    """The direction in which each feature the default may use raises the 30-day risk, from clinical
    sense, not fitted: +1 raises it, -1 lowers it. A feature without a direction every population would
    share is not listed, and the default does not use it: the absolute latest values (what a SpO2 of 93 %
    means moves with a population's baseline, devices and case mix; the deviations and changes carry the
    same readings) and sex."""
    signs: dict[str, int] = {}
    for vital, sign in (("spo2", -1), ("pulse", 1), ("systolic", -1), ("temperature", 1), ("weight", 1)):
        for suffix in ("deviation", "change_3d", "change_7d"):  # towards illness: SpO2 and pressure fall
            signs[f"{vital}_{suffix}"] = sign
    for name in MODEL_FEATURES:
        if name.startswith(("rule_", "change_", "condition_")):  # a rule fired, a note, a condition
            signs[name] = 1
    signs |= {
        "missed_days_7d": 1,  # not measuring: often a sign of being unwell
        "missed_days_14d": 1,
        "adherence_drop_7d": 1,
        "symptoms_worst_7d": 1,  # the patient says they feel worse
        "symptoms_worse_7d": 1,
        "symptoms_unanswered_7d": 1,  # not answering, as not measuring
        "plan_missed_share_14d": 1,
        "news2": 1,
        "news2_usual": 1,  # ill at baseline
        "age": 1,
        "days_since_admission": -1,  # a recent admission raises the risk
    }
    return signs


#: `_expected_signs`: the features the default may use, and the direction each may push the risk.
EXPECTED_SIGNS: Final[Mapping[str, int]] = MappingProxyType(_expected_signs())
#: Rounds of the sign check before giving up (each round drops every feature found pointing the wrong way).
MAX_SIGN_ROUNDS: Final = 10
#: The regularisation of the default's logistic regression (C made no difference between 0.01 and 1).
DEFAULT_C: Final = 0.1
#: Patient-bootstrap resamples of every interval, and their seed.
REPLICATES: Final = 1000
BOOTSTRAP_SEED: Final = 0
#: The method keys of a report, in table order; "previous" only when a previous model is compared.
MODEL, PREVIOUS, NEWS2, WEIGHT_RULE = "model", "previous", "news2", "weight_rule"
METHOD_LABELS: Final = {
    MODEL: "Day-one default (this model)",
    PREVIOUS: "Previously shipped model",
    NEWS2: "NEWS2 of the day",
    WEIGHT_RULE: "Weight rule (gain over 3 days)",
}
#: The command that rebuilds the shipped default (and, with the previous model file, its figures).
COMMAND: Final = "homewatch models train-default --out models/admission_risk.joblib"
Progress = Callable[[str], None]


@dataclass(frozen=True, slots=True)
class Population:
    """One SYNTHETIC population to simulate: its settings, cohort seed and size."""

    name: str
    settings: GeneratorSettings
    seed: int
    patients: int
    days: int

    def cohort(self) -> Cohort:
        """The population as the models read it (`models.cohort.records.history_cohort`)."""
        history = simulate_history(self.patients, self.days, self.seed, settings=self.settings)
        return history_cohort(history)

    def describe(self) -> dict[str, Any]:
        """What was simulated, JSON-ready: enough to simulate it again."""
        return {
            "name": self.name,
            "seed": self.seed,
            "patients": self.patients,
            "days": self.days,
            "settings": settings_dict(self.settings),
        }


def training_populations(recipe: TrainingRecipe = DEFAULT_TRAINING) -> tuple[Population, ...]:
    """The training populations of `recipe`: population K has the K-th drawn settings and seed
    `first_cohort_seed + K`."""
    drawn = training_settings(recipe.populations, recipe.settings_seed)
    return tuple(
        Population(s.name, s, recipe.first_cohort_seed + k, recipe.patients, recipe.days)
        for k, s in enumerate(drawn, start=1)
    )


def held_out_populations() -> tuple[Population, ...]:
    """Every held-out setting (`populations.HELD_OUT`, in its order) at the held-out size."""
    return tuple(
        Population(name, s, HELD_OUT_FIRST_SEED + i, HELD_OUT_PATIENTS, HELD_OUT_DAYS)
        for i, (name, s) in enumerate(HELD_OUT.items(), start=1)
    )


#: The project's standard test cohort (docs/models.md): the default population, seed 12, 400 x 180.
STANDARD_TEST: Final = Population("standard-test", DEFAULT_SETTINGS, 12, 400, 180)


def pooled(datasets: Sequence[Dataset]) -> Dataset:
    """The patient-days of several data sets as one; patients numbered apart, each still contiguous."""
    offsets = np.cumsum([0] + [int(d.patient.max()) + 1 for d in datasets[:-1]])
    return Dataset(
        x=np.vstack([d.x for d in datasets]),
        y=np.concatenate([d.y for d in datasets]),
        admitted=np.concatenate([d.admitted for d in datasets]),
        patient=np.concatenate([d.patient + offset for d, offset in zip(datasets, offsets, strict=True)]),
        day=np.concatenate([d.day for d in datasets]),
    )


def _quiet(_message: str) -> None:
    return None


def sign_checked_exclusions(
    data: Dataset, *, c: float = DEFAULT_C, signs: Mapping[str, int] = EXPECTED_SIGNS
) -> tuple[tuple[str, ...], list[list[str]]]:
    """The features to switch off so that every coefficient left points the way `signs` says: first
    every feature without an expected sign, then, round by round, every feature whose fitted coefficient
    has the opposite sign (a quirk of the training populations, or a feature whose share another one
    carries), until none does. Returns the exclusions and the features dropped in each round."""
    excluded = [name for name in MODEL_FEATURES if name not in signs]
    rounds: list[list[str]] = []
    for _ in range(MAX_SIGN_ROUNDS):
        coefficients = standardised_coefficients(data, c=c, exclude=excluded)
        wrong = [
            name
            for name, value in coefficients.items()
            if name not in excluded and value != 0.0 and np.sign(value) == -signs[name]
        ]
        if not wrong:
            return tuple(name for name in MODEL_FEATURES if name in set(excluded)), rounds
        rounds.append(wrong)
        excluded += wrong
    raise ModelError(None, f"coefficients still point the wrong way after {MAX_SIGN_ROUNDS} rounds")


def train_default(
    recipe: TrainingRecipe = DEFAULT_TRAINING, *, c: float = DEFAULT_C, progress: Progress = _quiet
) -> RiskModel:
    """Simulate the training populations, fit the default on all of them together and say in its
    metadata what it was trained on (settings, seeds, sizes)."""
    started = time.perf_counter()
    datasets, described, admissions = [], [], 0
    for population in training_populations(recipe):
        cohort = population.cohort()
        datasets.append(build_dataset(cohort))
        admissions += sum(1 for p in cohort.patients for a in p.admissions if 0 <= a.start < cohort.days)
        described.append(population.describe())
        progress(f"simulated {population.name} ({time.perf_counter() - started:.0f} s)")
    data = pooled(datasets)
    excluded, rounds = sign_checked_exclusions(data, c=c)
    progress(
        f"checked the coefficients' signs in {len(rounds) + 1} rounds ({time.perf_counter() - started:.0f} s)"
    )
    model = fit(data, c=c, exclude=excluded)
    at_home = ~data.admitted
    progress(
        f"fitted the default on {int(at_home.sum()):,} patient-days ({time.perf_counter() - started:.0f} s)"
    )
    fitted = model.metadata
    model.metadata = {
        "model": MODEL_VERSION,
        "sklearn": fitted["sklearn"],
        "trained_at": datetime.now(UTC).replace(microsecond=0).isoformat(),
        "training_cohort": {
            "description": f"SYNTHETIC: {recipe.populations} populations x {recipe.patients} patients x "
            f"{recipe.days} days, settings drawn from models.cohort.populations.TRAINING_RANGES "
            f"(`{COMMAND}`)",
            "synthetic": True,
            "patients": recipe.populations * recipe.patients,
            "days": recipe.days,
            "populations": recipe.populations,
            "admissions": admissions,
            "patient_days": int(at_home.sum()),
            "positive_patient_days": int(data.y[at_home].sum()),
        },
        "training_recipe": {
            "populations": recipe.populations,
            "settings_seed": recipe.settings_seed,
            "patients": recipe.patients,
            "days": recipe.days,
            "first_cohort_seed": recipe.first_cohort_seed,
            "c": c,
            "command": COMMAND,
        },
        "training_populations": described,
        "expected_signs": dict(EXPECTED_SIGNS),
        "dropped_for_sign": rounds,
        **{key: value for key, value in fitted.items() if key not in ("model", "sklearn", "trained_at")},
    }
    return model


# --- measuring it ---------------------------------------------------------------------------------------


def _round(value: float | None, digits: int = 4) -> float | None:
    if value is None or not np.isfinite(value):
        return None
    return round(float(value), digits)


def _interval(values: FloatArray) -> list[float | None]:
    if not np.any(~np.isnan(values)):
        return [None, None]
    low, high = np.nanpercentile(values, [2.5, 97.5])
    return [_round(float(low)), _round(float(high))]


def _recalibration(y: npt.NDArray[np.int8], p: FloatArray) -> tuple[float, float]:
    """(slope, intercept) of the logistic recalibration (`models.validation.logistic_recalibration`); when
    its Newton steps overflow (risks near 0 or 1 on a population far from the model's), the same fit by
    scikit-learn's unpenalised logistic regression."""
    with np.errstate(over="ignore"):
        slope, intercept = logistic_recalibration(y, p)
    if np.isfinite(slope) and np.isfinite(intercept):
        return slope, intercept
    clipped = np.clip(p, 1e-6, 1 - 1e-6)
    logit = np.log(clipped / (1 - clipped))[:, np.newaxis]
    fitted = LogisticRegression(C=np.inf, max_iter=1000).fit(logit, y)
    return float(fitted.coef_[0, 0]), float(fitted.intercept_[0])


def method_figures(
    data: Dataset,
    admissions: Sequence[tuple[int, int]],
    models: Mapping[str, RiskModel],
    *,
    replicates: int = REPLICATES,
    seed: int = BOOTSTRAP_SEED,
) -> dict[str, dict[str, Any]]:
    """Every method's figures on the patient-days at home of `data` (see the module text): the models
    of `models` (by key: `MODEL`, `PREVIOUS`), NEWS2 of the day and the weight rule."""
    keep = ~data.admitted
    y = data.y[keep]
    patient = data.patient[keep]
    baselines = baseline_scores(data, seed)
    scored: dict[str, tuple[FloatArray, FloatArray, bool]] = {}
    for key, model in models.items():
        risk = model.predict(data.x)
        rise = monitored_rise(np.where(data.admitted, np.nan, risk), data.patient)
        scored[key] = (risk, rise, True)
    scored[NEWS2] = (baselines[NEWS2_ALONE], baselines[NEWS2_ALONE], False)
    scored[WEIGHT_RULE] = (baselines[WEIGHT_RULE_ALONE], baselines[WEIGHT_RULE_ALONE], False)
    boots: dict[str, FloatArray] = {}
    out: dict[str, dict[str, Any]] = {}
    for key in (MODEL, PREVIOUS, NEWS2, WEIGHT_RULE):
        if key not in scored:
            continue
        ranking, alerting, probabilities = scored[key]
        ranked = method_result(key, ranking, data, admissions, probabilities=probabilities, seed=seed)
        alerts = method_result(
            key, alerting, data, admissions, probabilities=False, per_patient_month=ALERTS_PER_PATIENT_MONTH
        ).budget
        s = home_scores(ranking, data.admitted)[keep]
        # The same seed draws the same patient resamples for every method: the differences are paired.
        boots[key] = patient_bootstrap_auroc(y, s, patient, replicates=replicates, seed=seed)
        entry: dict[str, Any] = {
            "name": METHOD_LABELS[key],
            "auroc": _round(ranked.auroc),
            "auroc_ci": _interval(boots[key]),
            "sensitivity": _round(alerts.sensitivity),
            "detected": alerts.detected,
            "admissions": alerts.admissions,
            "alerts_per_patient_week": _round(alerts.alerts_per_patient_week),
            "median_lead_days": _round(alerts.median_lead_days, 1),
        }
        if probabilities:
            slope, intercept = _recalibration(y, s)
            entry["calibration"] = {
                "slope": _round(slope, 3),
                "intercept": _round(intercept, 3),
                "mean_predicted": _round(float(np.mean(s))),
                "observed_rate": _round(float(np.mean(y))),
            }
            entry["brier"] = _round(ranked.brier)
        out[key] = entry
    for key in (MODEL, PREVIOUS, WEIGHT_RULE):
        if key in out:
            ranked_minus = (out[key]["auroc"] or 0.0) - (out[NEWS2]["auroc"] or 0.0)
            out[key]["auroc_minus_news2"] = _round(ranked_minus)
            out[key]["auroc_minus_news2_ci"] = _interval(boots[key] - boots[NEWS2])
    return out


def _population_report(
    population: Population,
    models: Mapping[str, RiskModel],
    *,
    replicates: int,
    seed: int,
) -> tuple[dict[str, Any], Dataset, list[tuple[int, int]]]:
    cohort = population.cohort()
    data = build_dataset(cohort)
    admissions = admission_days(data, cohort)
    at_home = ~data.admitted
    report = {
        "population": population.describe(),
        "outside_training": list(outside_training(population.settings)),
        "patient_days": int(at_home.sum()),
        "positive_patient_days": int(data.y[at_home].sum()),
        "admissions": len(admissions),
        "methods": method_figures(data, admissions, models, replicates=replicates, seed=seed),
    }
    return report, data, admissions


def evaluate_default(
    model: RiskModel,
    previous: RiskModel | None = None,
    *,
    replicates: int = REPLICATES,
    seed: int = BOOTSTRAP_SEED,
    progress: Progress = _quiet,
) -> dict[str, Any]:
    """The held-out report: per held-out population and on the standard test cohort, every method's
    figures; `methods` (the shape of `models.activation`) over all held-out populations together; and
    whether the model's AUROC is at or above NEWS2's on every held-out population."""
    started = time.perf_counter()
    models = {MODEL: model} | ({PREVIOUS: previous} if previous is not None else {})
    reports: dict[str, dict[str, Any]] = {}
    datasets: list[Dataset] = []
    all_admissions: list[tuple[int, int]] = []
    for population in held_out_populations():
        report, data, admissions = _population_report(population, models, replicates=replicates, seed=seed)
        reports[population.name] = report
        offset = sum(int(d.patient.max()) + 1 for d in datasets)
        datasets.append(data)
        all_admissions += [(p + offset, day) for p, day in admissions]
        progress(f"measured {population.name} ({time.perf_counter() - started:.0f} s)")
    standard, _data, _admissions = _population_report(STANDARD_TEST, models, replicates=replicates, seed=seed)
    progress(f"measured {STANDARD_TEST.name} ({time.perf_counter() - started:.0f} s)")
    together = pooled(datasets)
    at_home = ~together.admitted
    margins = {name: r["methods"][MODEL]["auroc_minus_news2"] for name, r in reports.items()}
    return {
        "synthetic": True,
        "held_out": {
            "populations": list(reports),
            "patients": sum(r["population"]["patients"] for r in reports.values()),
            "patient_days": int(at_home.sum()),
            "positive_patient_days": int(together.y[at_home].sum()),
            "admissions": len(all_admissions),
        },
        "methods": method_figures(together, all_admissions, models, replicates=replicates, seed=seed),
        "populations": reports,
        "standard_test": standard,
        "never_below_news2": all(m is not None and m >= 0 for m in margins.values()),
        "smallest_margin_to_news2": _round(min(m for m in margins.values() if m is not None)),
        "bootstrap": {"unit": "patient", "replicates": replicates, "seed": seed, "interval": 0.95},
        "alert_budget_per_patient_month": ALERTS_PER_PATIENT_MONTH,
    }


# --- tables ---------------------------------------------------------------------------------------------


def _ci(entry: Mapping[str, Any], key: str) -> str:
    value, (low, high) = entry.get(key), entry.get(f"{key}_ci") or (None, None)
    if value is None:
        return "n/a"
    sign = "+" if key.endswith("news2") else ""
    shown = f"{value:{sign}.3f}"
    return shown if low is None or high is None else f"{shown} ({low:{sign}.3f} to {high:{sign}.3f})"


def _row(population: str, entry: Mapping[str, Any]) -> str:
    calibration = entry.get("calibration") or {}
    slope, intercept = calibration.get("slope"), calibration.get("intercept")
    lead = entry.get("median_lead_days")
    return (
        f"| {population} | {entry['name']} | {_ci(entry, 'auroc')} | "
        f"{_ci(entry, 'auroc_minus_news2') if 'auroc_minus_news2' in entry else '—'} | "
        f"{'n/a' if slope is None else f'{slope:.2f}'} | "
        f"{'n/a' if intercept is None else f'{intercept:+.2f}'} | "
        f"{entry['sensitivity']:.2f} ({entry['detected']}/{entry['admissions']}) | "
        f"{'n/a' if lead is None else f'{lead:.1f}'} |"
    )


def markdown_tables(report: Mapping[str, Any]) -> str:
    """The report as Markdown: one table of every population and method, and one line per population
    saying how it lies outside the training ranges."""
    lines = [
        "| Population (SYNTHETIC) | Method | AUROC (95 % CI) | AUROC minus NEWS2 (95 % CI) "
        "| Calibration slope | Calibration intercept | Sensitivity at equal alert burden "
        "| Median lead (days) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    named = [*report["populations"].items(), ("standard test (seed 12)", report["standard_test"])]
    for name, population in named:
        for entry in population["methods"].values():
            lines.append(_row(name, entry))
    for entry in report["methods"].values():
        lines.append(_row("all held-out together", entry))
    lines += ["", "| Held-out population | Unlike training in |", "|---|---|"]
    for name, population in report["populations"].items():
        lines.append(f"| {name} | {'; '.join(population['outside_training'])} |")
    return "\n".join(lines) + "\n"


def coefficients(model: RiskModel) -> dict[str, float]:
    """The logistic regression's coefficients on standardised features, by feature (0 when switched off)."""
    fitted = model.estimator.calibrated_classifiers_[0].estimator
    coef: npt.NDArray[np.float64] = fitted[-1].coef_[0]
    return {name: float(c) for name, c in zip(model.features, coef, strict=True)}
