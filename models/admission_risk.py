"""The learned 30-day admission risk: labels, training, the model file, scores, alerts and explanations.

- `labels(patient, n_days)`: day D is positive when an admission starts on day D+1 .. D+30; days the
  patient is in hospital are excluded (an admission without an end counts to the end of the cohort).
- `train(cohort, ...)`: mean imputation -> standardisation -> L2 logistic regression, calibrated with
  `CalibratedClassifierCV(method="sigmoid", ensemble=False)` on patient-grouped folds. Sigmoid (Platt)
  calibration is a monotone map of the logistic regression's log-odds, so the ranking is unchanged and
  each score still decomposes exactly into per-feature contributions (`contributions`); isotonic
  calibration is a step function that would tie patients, break that decomposition and needs more
  admissions than a municipality's cohort has. `fit(dataset, ...)` does the same on a data set built
  elsewhere (the day-one default pools many SYNTHETIC populations: `models.default_model`), and
  `exclude=` switches features off: they are held at zero while fitting, so their coefficients are
  exactly zero and every model still reads the same feature row (`MODEL_FEATURES`).
- `save`/`load`: the estimator as a joblib (pickle) file plus a JSON sidecar with version, training
  cohort, feature list, alert threshold and metrics. Pickle runs code when loaded: load model files only
  from trusted sources. A model reads the feature columns its sidecar names, so a file of the previous
  version (`admission-risk-1.0`, whose features are all still computed the same way) still loads.
- `explain(model, row)`: the top factors that raise one patient's risk, in words.
- `rise_scores(risk)`: the alert score, the log-odds of a patient's risk today minus the median log-odds of
  their previous 14 scored days; it removes the patient's static level (age, conditions), so an alert
  says that a patient's risk has risen, while the risk itself ranks the weekly list.
- `alert_days(scores, threshold)`: an alert is the first day a score reaches the threshold after 7 quiet
  days; `threshold_for_budget` picks the threshold that raises a given number of alerts per patient-month.
  `train` picks the rise score's threshold on the training cohort and saves it in the sidecar;
  `patient_alerts` applies it to one patient's days.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

import joblib
import numpy as np
import numpy.typing as npt
from sklearn.calibration import CalibratedClassifierCV
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import brier_score_loss, roc_auc_score
from sklearn.model_selection import GroupKFold
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from models.codes import CHANGE_OBSERVATIONS
from models.cohort_reader import Cohort, PatientRecord
from models.errors import ModelsError
from models.features import (
    COLUMN,
    DAYS_SINCE_ADMISSION_CAP,
    MODEL_FEATURES,
    NEWS2_USUAL_DAYS,
    PLAN_DAYS,
    RULE_TEXT,
    SYMPTOM_DAYS,
    TREND_VITALS,
    Matrix,
    patient_features,
)

MODEL_VERSION: Final = "admission-risk-2.1"
#: Versions whose files `load` reads: their features are all still computed as they were (2.1 added
#: issue 21's symptom and plan features to the default's training; 2.0 files read their 46 columns).
READABLE_VERSIONS: Final = ("admission-risk-1.0", "admission-risk-2.0", MODEL_VERSION)
HORIZON_DAYS: Final = 30
QUIET_DAYS: Final = 7
#: The alert budget the threshold is chosen for: one alert per patient per month (30 days).
ALERTS_PER_PATIENT_MONTH: Final = 1.0
#: The rise score compares today's risk with the median of this many previous scored days.
RISE_WINDOW_DAYS: Final = 14
# Quantile grid of the threshold search: fine enough that the bisection between two points is short.
_GRID: Final = 201


def _columns(features: Sequence[str]) -> npt.NDArray[np.intp]:
    return np.array([COLUMN[name] for name in features], dtype=np.intp)


def _reference(features: Sequence[str] = MODEL_FEATURES) -> npt.NDArray[np.float64]:
    """The patient-day explanations are told against: counts, flags and conditions at "none" (0: no
    "worse" answer, no unanswered day, no planned measurement missed), no admission on record, every
    other feature missing (so imputed to the training mean)."""
    ref = np.full(len(features), np.nan)
    for i, name in enumerate(features):
        if name.startswith(("rule_", "missed_days_", "change_", "condition_")) or name in (
            "adherence_drop_7d",
            "female",
            "symptoms_worse_7d",
            "symptoms_unanswered_7d",
            "plan_missed_share_14d",
        ):
            ref[i] = 0.0
        elif name == "days_since_admission":
            ref[i] = DAYS_SINCE_ADMISSION_CAP
    return ref


class ModelError(ModelsError):
    """A model that cannot be trained, loaded or used."""

    def __init__(self, path: Path | None, reason: str) -> None:
        super().__init__(f"{path}: {reason}" if path else reason)
        self.path = path
        self.reason = reason


# --- labels and data sets -----------------------------------------------------------------------------


def labels(patient: PatientRecord, n_days: int) -> tuple[npt.NDArray[np.int8], npt.NDArray[np.bool_]]:
    """(label per day, in hospital per day): label 1 when an admission starts on day D+1 .. D+30."""
    y = np.zeros(n_days, dtype=np.int8)
    admitted = np.zeros(n_days, dtype=bool)
    for a in patient.admissions:
        start = int(np.floor(a.start))
        end = n_days - 1 if a.end is None else int(np.floor(a.end))
        admitted[max(start, 0) : max(end + 1, 0)] = True
        y[max(start - HORIZON_DAYS, 0) : max(start, 0)] = 1
    return y, admitted


@dataclass(frozen=True, slots=True)
class Dataset:
    """All patient-days of a cohort: features (all columns), labels, who and when, and the exclusions."""

    x: Matrix
    y: npt.NDArray[np.int8]
    admitted: npt.NDArray[np.bool_]
    patient: npt.NDArray[np.intp]  # index into cohort.patients
    day: npt.NDArray[np.intp]


def build_dataset(cohort: Cohort) -> Dataset:
    """Features and labels of every patient-day of the cohort."""
    n = cohort.days
    xs, ys, adm = [], [], []
    for p in cohort.patients:
        xs.append(patient_features(p, cohort))
        y, a = labels(p, n)
        ys.append(y)
        adm.append(a)
    count = len(cohort.patients)
    if count == 0:
        raise ModelError(None, "the cohort has no patients")
    return Dataset(
        x=np.vstack(xs),
        y=np.concatenate(ys),
        admitted=np.concatenate(adm),
        patient=np.repeat(np.arange(count), n),
        day=np.tile(np.arange(n), count),
    )


# --- the model ------------------------------------------------------------------------------------------


@dataclass(slots=True)
class RiskModel:
    """A calibrated logistic regression and what is known about it."""

    estimator: CalibratedClassifierCV
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def threshold(self) -> float:
        """The alert threshold on the rise score (`rise_scores`), chosen on the training cohort."""
        return float(self.metadata.get("alert_threshold", np.inf))

    @property
    def features(self) -> tuple[str, ...]:
        """The feature columns the estimator reads, in its order (the sidecar's list)."""
        names = self.metadata.get("features")
        return tuple(names) if names else MODEL_FEATURES

    def predict(self, x: Matrix) -> npt.NDArray[np.float64]:
        """Calibrated probability of admission within 30 days for each row (all feature columns)."""
        columns = _columns(self.features)
        proba: npt.NDArray[np.float64] = self.estimator.predict_proba(x[:, columns])[:, 1]
        return proba

    def contributions(self, x: Matrix) -> Matrix:
        """Each of the model's features' share of each row's log-odds (columns in `features` order),
        relative to the reference patient-day (`_reference`: nothing noted, no rule fired, nothing
        missed; vitals at the cohort mean). The shares and the reference's log-odds add up exactly to
        the row's calibrated log-odds; a switched-off feature's share is always 0."""
        features = self.features
        fitted = self.estimator.calibrated_classifiers_[0]
        pipe: Pipeline = fitted.estimator
        z = pipe[:-1].transform(x[:, _columns(features)])
        z_ref = pipe[:-1].transform(_reference(features)[np.newaxis, :])
        coef = pipe[-1].coef_[0]
        slope = -float(fitted.calibrators[0].a_)  # Platt: p = 1 / (1 + exp(a f + b))
        out: Matrix = slope * coef * (z - z_ref)
        return out


def _pipeline(c: float) -> Pipeline:
    return Pipeline(
        [
            ("impute", SimpleImputer(strategy="mean", keep_empty_features=True)),
            ("scale", StandardScaler()),
            ("logreg", LogisticRegression(C=c, max_iter=2000)),
        ]
    )


def standardised_coefficients(
    data: Dataset, *, c: float = 0.1, exclude: Collection[str] = ()
) -> dict[str, float]:
    """The coefficients (on standardised features) of the logistic regression `fit` would calibrate, fitted
    on every patient-day of `data` not in hospital, by feature; 0 for the excluded. Cheaper than `fit`
    (one fit, no calibration folds): for choosing what to exclude."""
    keep = ~data.admitted
    x = data.x[keep][:, _columns(MODEL_FEATURES)]
    x[:, [MODEL_FEATURES.index(name) for name in exclude]] = 0.0
    coef = _pipeline(c).fit(x, data.y[keep])[-1].coef_[0]
    return {name: float(value) for name, value in zip(MODEL_FEATURES, coef, strict=True)}


def train(
    cohort: Cohort, *, description: str = "", c: float = 0.1, exclude: Collection[str] = ()
) -> RiskModel:
    """Fit and calibrate on every patient-day not in hospital; the threshold meets the alert budget.
    `exclude`: features switched off (see `fit`)."""
    data = build_dataset(cohort)
    model = fit(data, c=c, exclude=exclude)
    fitted = model.metadata
    head = ("model", "sklearn", "trained_at")
    model.metadata = {key: fitted[key] for key in head}
    model.metadata["training_cohort"] = {
        "description": description,
        "synthetic": cohort.synthetic,
        "patients": len(cohort.patients),
        "days": cohort.days,
        "origin": cohort.origin.isoformat(),
        "admissions": sum(len(p.admissions) for p in cohort.patients),
        "patient_days": int((~data.admitted).sum()),
        "positive_patient_days": int(data.y[~data.admitted].sum()),
    }
    model.metadata.update({key: value for key, value in fitted.items() if key not in head})
    return model


def fit(data: Dataset, *, c: float = 0.1, exclude: Collection[str] = ()) -> RiskModel:
    """Fit and calibrate on every patient-day of `data` not in hospital (rows of a patient contiguous,
    in day order; `data.patient` tells the patients apart for the folds and the alert budget). The
    features in `exclude` are switched off: held at zero while fitting, so that their coefficients are
    exactly zero and the model reads the same columns as every other (`MODEL_FEATURES`) without using
    them. The metadata says how the model was fitted, not on what: that is the caller's to add."""
    unknown = sorted(set(exclude) - set(MODEL_FEATURES))
    if unknown:
        raise ModelError(None, f"cannot exclude {', '.join(unknown)}: not features of the model")
    keep = ~data.admitted
    x, y, groups = data.x[keep][:, _columns(MODEL_FEATURES)], data.y[keep], data.patient[keep]
    off = [MODEL_FEATURES.index(name) for name in exclude]
    x[:, off] = 0.0
    if len(set(y.tolist())) < 2:
        raise ModelError(None, "the training cohort needs both admitted and not admitted patient-days")
    folds = min(5, len(set(groups[y == 1].tolist())), len(set(groups.tolist())))
    if folds < 2:
        raise ModelError(None, "the training cohort needs admissions in at least two patients")
    splits = list(GroupKFold(n_splits=folds).split(x, y, groups))
    estimator = CalibratedClassifierCV(_pipeline(c), method="sigmoid", cv=splits, ensemble=False)
    estimator.fit(x, y)
    estimator.cv = folds  # the fold index arrays are not needed once fitted (and would bloat the file)
    # A column of zeros gets no gradient, so its coefficient stays exactly zero; say so rather than hope.
    final: Pipeline = estimator.calibrated_classifiers_[0].estimator
    if np.any(final[-1].coef_[0, off] != 0.0):
        raise ModelError(None, "a switched-off feature got a coefficient")
    model = RiskModel(estimator, {"features": list(MODEL_FEATURES)})
    scores = model.predict(data.x)
    scores[data.admitted] = np.nan
    threshold = threshold_for_budget(
        monitored_rise(scores, data.patient), data.patient, ALERTS_PER_PATIENT_MONTH
    )
    model.metadata = {
        "model": MODEL_VERSION,
        "sklearn": __import__("sklearn").__version__,
        "trained_at": datetime.now(UTC).replace(microsecond=0).isoformat(),
        "estimator": f"CalibratedClassifierCV(sigmoid, {folds} patient-grouped folds) of "
        f"mean-impute -> standardise -> LogisticRegression(L2, C={c})",
        "features": list(MODEL_FEATURES),
        "excluded_features": [name for name in MODEL_FEATURES if name in set(exclude)],
        "alert_score": f"log-odds of risk_30d minus the median log-odds of the previous "
        f"{RISE_WINDOW_DAYS} days at home (rise_scores)",
        "alert_threshold": threshold,
        "alert_budget_per_patient_month": ALERTS_PER_PATIENT_MONTH,
        "training_metrics": {
            "auroc": float(roc_auc_score(y, scores[keep])),
            "brier": float(brier_score_loss(y, scores[keep])),
            "mean_predicted": float(np.mean(scores[keep])),
            "observed_rate": float(np.mean(y)),
        },
    }
    return model


def save(model: RiskModel, path: Path) -> Path:
    """Write the estimator to `path` (joblib) and the metadata to `path` + '.json'; returns the sidecar."""
    path.parent.mkdir(parents=True, exist_ok=True)
    joblib.dump({"model": MODEL_VERSION, "estimator": model.estimator}, path)
    sidecar = path.with_name(path.name + ".json")
    sidecar.write_text(json.dumps(model.metadata, indent=2) + "\n", encoding="utf-8")
    return sidecar


#: The model that ships with homewatch (trained on a SYNTHETIC cohort: `models/MODEL_CARD.md`).
SHIPPED_MODEL = Path(__file__).with_name("admission_risk.joblib")


def load(path: Path) -> RiskModel:
    """Read a model written by `save`. Pickle: only from trusted sources."""
    sidecar = path.with_name(path.name + ".json")
    if not path.is_file() or not sidecar.is_file():
        raise ModelError(path, "no model file and JSON sidecar here (run `homewatch models train`)")
    try:
        blob = joblib.load(path)
        metadata = json.loads(sidecar.read_text(encoding="utf-8"))
    except Exception as exc:  # any unpickling or JSON failure means the same thing to the caller
        raise ModelError(path, f"cannot read the model ({exc})") from exc
    problem = blob_problem(blob) or sidecar_problem(metadata)
    if problem is not None:
        raise ModelError(path, problem)
    return RiskModel(blob["estimator"], metadata)


def blob_problem(blob: object) -> str | None:
    """Why an unpickled model file is not a model this code reads; None when it is (``load`` and the
    registry's ``models.model_bytes`` both ask)."""
    if not isinstance(blob, dict) or blob.get("model") not in READABLE_VERSIONS or "estimator" not in blob:
        return f"not a {MODEL_VERSION} model"
    return None


def sidecar_problem(metadata: Mapping[str, Any]) -> str | None:
    """Why a model's sidecar metadata is not one this code scores with; None when it is."""
    features = metadata.get("features")
    if not isinstance(features, list) or not features or not set(features) <= set(MODEL_FEATURES):
        return "the model's features differ from this version's; retrain it"
    if "alert_score" not in metadata:  # its alert_threshold is on the risk, not on the rise in risk
        return "the model predates alerts on the rise in risk; retrain it"
    return None


# --- alerts ---------------------------------------------------------------------------------------------


def alert_days(scores: npt.NDArray[np.float64], threshold: float) -> npt.NDArray[np.bool_]:
    """Alerts of one patient's daily scores: at or above `threshold` after `QUIET_DAYS` days below it
    (NaN counts as quiet)."""
    high = np.nan_to_num(scores, nan=-np.inf) >= threshold
    prior = np.concatenate([[0], np.cumsum(high)])
    idx = np.arange(high.size)
    recent = prior[idx] - prior[np.maximum(idx - QUIET_DAYS, 0)]
    out: npt.NDArray[np.bool_] = high & (recent == 0)
    return out


def rise_scores(risk: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """One patient's daily alert score: log-odds of the risk on day D minus the median log-odds of the
    scored days among D-14 .. D-1. Causal (day D uses days up to D only). NaN risks (days in hospital)
    are skipped; NaN on a day without a risk or without a scored day in the window before it."""
    clipped = np.clip(risk, 1e-9, 1 - 1e-9)
    logit = np.log(clipped / (1 - clipped))
    padded = np.concatenate([np.full(RISE_WINDOW_DAYS, np.nan), logit])
    windows = np.lib.stride_tricks.sliding_window_view(padded[:-1], RISE_WINDOW_DAYS)
    empty = np.all(np.isnan(windows), axis=1)
    before = np.full(logit.size, np.nan)
    if np.any(~empty):
        before[~empty] = np.nanmedian(windows[~empty], axis=1)
    out: npt.NDArray[np.float64] = logit - before
    return out


def monitored_rise(risk: npt.NDArray[np.float64], patient: npt.NDArray[np.intp]) -> npt.NDArray[np.float64]:
    """`rise_scores` of every patient (rows contiguous, in day order; NaN risk = in hospital). A day at
    home without a rise score is monitored and never alerts: it takes a score below every real one."""
    bounds = np.flatnonzero(np.diff(patient)) + 1
    rise = np.concatenate([rise_scores(r) for r in np.split(risk, bounds)])
    home = ~np.isnan(risk)
    floor = float(np.nanmin(rise[home])) - 1.0 if np.any(~np.isnan(rise[home])) else 0.0
    out: npt.NDArray[np.float64] = np.where(home, np.nan_to_num(rise, nan=floor), np.nan)
    return out


def patient_alerts(
    model: RiskModel, risk: npt.NDArray[np.float64], in_hospital: npt.NDArray[np.bool_]
) -> npt.NDArray[np.bool_]:
    """One patient's alerts: the first day the rise in risk reaches the model's threshold after 7 quiet
    days; days in hospital are not scored and never alert."""
    return alert_days(rise_scores(np.where(in_hospital, np.nan, risk)), model.threshold)


def count_alerts(scores: npt.NDArray[np.float64], patient: npt.NDArray[np.intp], threshold: float) -> int:
    """Alerts over all patients; rows of one patient are contiguous and in day order. The same count
    as `alert_days` patient by patient, in one pass: a row's quiet window stops at its patient's first
    row (the threshold search calls this hundreds of times over pooled populations)."""
    return int(np.sum(_alerts_in_rows(scores, _first_rows(patient), threshold)))


def _first_rows(patient: npt.NDArray[np.intp]) -> npt.NDArray[np.intp]:
    """For every row, the index of its patient's first row (rows of a patient contiguous)."""
    starts = np.flatnonzero(np.r_[True, patient[1:] != patient[:-1]])
    lengths = np.diff(np.r_[starts, patient.size])
    first: npt.NDArray[np.intp] = np.repeat(starts, lengths)
    return first


def _alerts_in_rows(
    scores: npt.NDArray[np.float64], first: npt.NDArray[np.intp], threshold: float
) -> npt.NDArray[np.bool_]:
    high = np.nan_to_num(scores, nan=-np.inf) >= threshold
    prior = np.concatenate([[0], np.cumsum(high)])
    idx = np.arange(high.size)
    recent = prior[idx] - prior[np.maximum(idx - QUIET_DAYS, first)]
    out: npt.NDArray[np.bool_] = high & (recent == 0)
    return out


def threshold_for_budget(
    scores: npt.NDArray[np.float64], patient: npt.NDArray[np.intp], per_patient_month: float
) -> float:
    """The lowest threshold, coming down from the highest score, whose alerts stay within
    `per_patient_month` alerts per 30 monitored days (NaN days are not monitored).

    Alerts are not monotone in the threshold: one far below every score alerts once per patient and
    then never again (the score never goes quiet). So the search walks down a grid of quantiles until
    the budget is first exceeded, then bisects between the last two grid points; a score too steady to
    spend the budget gets the grid point that alerts most.
    """
    present = scores[~np.isnan(scores)]
    if present.size == 0:
        return float("inf")
    budget = per_patient_month * present.size / 30.0
    grid = np.unique(np.quantile(present, np.linspace(0.0, 1.0, _GRID), method="higher"))[::-1]
    counts = [count_alerts(scores, patient, float(g)) for g in grid]
    over = next((i for i, n in enumerate(counts) if n > budget), None)
    if over is None:  # the budget cannot be spent: take the threshold that alerts most (highest if tied)
        return float(grid[int(np.argmax(counts))])
    if over == 0:
        return float("inf")
    ok, high = float(grid[over - 1]), float(grid[over])
    between = np.unique(present[(present > high) & (present < ok)])
    lo, hi = 0, between.size  # between[hi] stands for `ok`
    while lo < hi:
        mid = (lo + hi) // 2
        if count_alerts(scores, patient, float(between[mid])) <= budget:
            hi = mid
        else:
            lo = mid + 1
    return float(between[lo]) if lo < between.size else ok


# --- explanations ---------------------------------------------------------------------------------------


def _pronoun(row: Matrix) -> str:
    female = row[COLUMN["female"]]
    return "their" if np.isnan(female) else ("her" if female == 1 else "his")


# (unit of a difference, unit of a value) per vital.
_UNIT: Final = {
    "spo2": (" points", " %"),
    "pulse": (" beats/min", "/min"),
    "systolic": (" mmHg", " mmHg"),
    "temperature": (" °C", " °C"),
    "weight": (" kg", " kg"),
}
_DIGITS: Final = {"spo2": 0, "pulse": 0, "systolic": 0, "temperature": 1, "weight": 1}


#: The worst answer of a symptom check in words, by ordinal (`fhir_contract.questionnaire`).
_SYMPTOM_LEVEL: Final = {0: "fine", 1: "in between", 2: "worse"}


def _times(n: float) -> str:
    return {1: "once", 2: "twice"}.get(int(n), f"{int(n)} times")


def describe(name: str, row: Matrix) -> str:
    """One feature of one patient-day in words."""
    value = float(row[COLUMN[name]])
    vital = name.split("_")[0] if name.split("_")[0] in TREND_VITALS else ""
    label = TREND_VITALS.get(vital, "")
    label = label[:1].upper() + label[1:]
    if vital:
        diff_unit, unit = _UNIT[vital]
        d = _DIGITS[vital]
        if name.endswith("_deviation"):
            latest, usual = row[COLUMN[f"{vital}_latest"]], row[COLUMN[f"{vital}_usual"]]
            gap = latest - usual
            side = "above" if gap >= 0 else "below"
            amount = f"{abs(gap):.{d}f}"
            diff = " point" if diff_unit == " points" and amount == "1" else diff_unit
            return f"{label} {amount}{diff} {side} {_pronoun(row)} usual {usual:.{d}f}{unit}"
        if "_change_" in name:
            days = name.rsplit("_", 1)[1].removesuffix("d")
            way = "up" if value >= 0 else "down"
            amount = f"{abs(value):.{d}f}"
            diff = " point" if diff_unit == " points" and amount == "1" else diff_unit
            return f"{label} {way} {amount}{diff} in {days} days"
        return f"{label} {value:.{d}f}{unit} (latest)"
    if name.startswith("rule_"):
        text = RULE_TEXT[name.removeprefix("rule_")]
        return f"{text[:1].upper()}{text[1:]} fired in the last 3 days"
    if name.startswith("missed_days_"):
        k = name.removeprefix("missed_days_").removesuffix("d")
        return f"Missed {value:.0f} of the last {k} days of measurements"
    if name == "adherence_drop_7d":
        usual = row[COLUMN["usual_measured_share"]]
        return f"Measured on {(usual - value) * 7:.0f} of the last 7 days, usually {usual * 7:.0f} of 7"
    if name == "symptoms_worst_7d":
        return f"Symptom check: worst answer of the last {SYMPTOM_DAYS} days was {_SYMPTOM_LEVEL[int(value)]}"
    if name == "symptoms_worse_7d":
        said = "1 answer" if int(value) == 1 else f"{value:.0f} answers"
        return f"Symptom check: {said} of the last {SYMPTOM_DAYS} days said worse"
    if name == "symptoms_unanswered_7d":
        return f"Symptom check not answered on {value:.0f} of the last {SYMPTOM_DAYS} days"
    if name == "plan_missed_share_14d":
        due = row[COLUMN["plan_due_14d"]]
        return f"Missed {value * due:.0f} of {due:.0f} planned measurements in the last {PLAN_DAYS} days"
    if name.startswith("change_"):
        key = name.removeprefix("change_").removesuffix("_7d")
        return f"Staff noted {CHANGE_OBSERVATIONS[key].split(' (')[0]} {_times(value)} this week"
    if name == "news2":
        return f"NEWS2 {value:.0f} from the day's readings"
    if name == "news2_usual":
        shown = f"{value:.0f}" if value == round(value) else f"{value:.1f}"
        return f"Usual NEWS2 {shown} (median of the last {NEWS2_USUAL_DAYS} days)"
    if name == "age":
        return f"Age {value:.0f}"
    if name == "female":
        return "Sex: female" if value == 1 else "Sex: male"
    if name.startswith("condition_"):
        has = "Has" if value == 1 else "Does not have"
        return f"{has} {name.removeprefix('condition_').replace('_', ' ')}"
    if name == "days_since_admission":
        if value >= DAYS_SINCE_ADMISSION_CAP:
            return "No recent hospital admission"
        return f"Admitted to hospital {value:.0f} days ago"
    return f"{name} = {value:g}"


def top_factors(model: RiskModel, row: Matrix, k: int = 3) -> list[tuple[str, float]]:
    """The (feature, contribution) pairs that raise this row's risk most, largest first; only measured
    features (an imputed value contributes nothing and is never a reason)."""
    features = model.features
    contrib = model.contributions(row[np.newaxis, :])[0]
    measured = ~np.isnan(row[_columns(features)])
    order = np.argsort(-contrib)
    return [(features[i], float(contrib[i])) for i in order if contrib[i] > 0 and measured[i]][:k]


def explain(model: RiskModel, features: Matrix, k: int = 3) -> list[str]:
    """The top `k` factors raising one patient-day's risk (a row with all feature columns), in words."""
    return [describe(name, features) for name, _c in top_factors(model, features, k)]


def explain_many(model: RiskModel, x: Matrix, k: int = 3) -> list[list[str]]:
    """`explain` for many rows at once (one contributions pass)."""
    features = model.features
    contrib = model.contributions(x)
    contrib[np.isnan(x[:, _columns(features)])] = 0.0
    order = np.argsort(-contrib, axis=1)[:, :k]
    out = []
    for r, idx in enumerate(order):
        out.append([describe(features[i], x[r]) for i in idx if contrib[r, i] > 0])
    return out
