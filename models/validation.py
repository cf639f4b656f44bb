"""Training on a municipality's own history: a split by patient and by time, and the held-out report.

The split (``split_cohort``) holds out a seeded share of the patients (``HELD_OUT_SHARE``) and a cut in
time (the last ``HELD_OUT_PERIOD`` of the days). The model is trained (``models.admission_risk.train``,
its public API only) on the other patients' days before ``train_end = cut - HORIZON_DAYS``: a training
day's label looks 30 days ahead, so the last training day's window closes the day before the cut and no
label looks into the held-out period (``training_cohort`` drops every reading, staff change and day from
``train_end`` on and every admission from the cut on, so that nothing later can reach the model). The
held-out patients are scored only on days on or after the cut, from their whole history up to each day
(the features read data before the day only, as the gateway's live score does); the days before the cut
are there only so that trends and the rise in risk have their past.

The report (``validate``) compares, on the SAME held-out patient-days (days at home), the new model, NEWS2
of the day, the weight rule (the weight gain over 3 days) and the model now active (when one is given):

- AUROC with a 95 % patient-bootstrap interval (held-out patients resampled with replacement, all of a
  patient's days together, because a patient's days are not independent; ``patient_bootstrap_auroc``);
- calibration of the probabilistic models: slope and intercept of the logistic recalibration
  (``logit P(admitted) = intercept + slope * logit(p)``; 1 and 0 when calibrated) and observed against
  predicted by decile of predicted risk;
- sensitivity at equal alert burden and median lead time (``models.evaluate``'s definitions): every
  method's threshold is chosen on the held-out days for the same budget, one alert per patient-month;
  the models alert on the rise in their risk, as the gateway does.

The metrics dict has the shape ``models.activation`` documents (``held_out``, ``methods``, ``margin``);
``markdown_report`` and ``model_card`` are pure functions of it. Labels near the end of the history are
censored (an admission after the last day is not known): every method is judged on the same labels, so
the comparison holds, but the absolute sensitivity is a little low. Too little to train or test on is a
``ValidationError`` that says what was found and what is needed. Reading the history (the gateway's
database, an NDJSON export) and registering the model are the callers'.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from models.activation import ACTIVATION_MARGIN, activation_check
from models.admission_risk import (
    ALERTS_PER_PATIENT_MONTH,
    HORIZON_DAYS,
    Dataset,
    RiskModel,
    build_dataset,
    monitored_rise,
    train,
)
from models.cohort_reader import Admission, Cohort, PatientRecord, Series
from models.errors import ModelsError
from models.evaluate import (
    NEWS2_ALONE,
    WEIGHT_RULE_ALONE,
    FloatArray,
    baseline_scores,
    home_scores,
    method_result,
)

#: Share of the patients held out (seeded): about the share a municipality's few hundred patients can
#: spare while the interval stays informative.
HELD_OUT_SHARE: Final = 0.3
#: The held-out period: the last third of the days.
HELD_OUT_PERIOD: Final = 1 / 3
BOOTSTRAP_REPLICATES: Final = 1000
#: Below these, a model or its held-out figures would be noise: the logistic model needs admissions to
#: learn from, and the AUROC of 10 admissions already has an interval about 0.1 wide either side.
MIN_PATIENTS: Final = 20
MIN_TRAINING_ADMISSIONS: Final = 20
MIN_HELD_OUT_ADMISSIONS: Final = 10
MIN_TRAINING_DAYS: Final = 30
MIN_HELD_OUT_DAYS: Final = 14
DECILES: Final = 10
# Bootstrap replicates are weighed in chunks of at most this many cells (replicates x patient-days).
_CHUNK_CELLS: Final = 2_000_000
# The models in the report, keyed as in models.activation's shape.
MODEL: Final = "model"
NEWS2: Final = "news2"
WEIGHT_RULE: Final = "weight_rule"
ACTIVE: Final = "active"


class ValidationError(ModelsError):
    """Too little history to train or to test on: ``found`` of ``what``, ``needed`` at least."""

    def __init__(self, what: str, found: int, needed: int, detail: str = "") -> None:
        reason = f"{what}: found {found}, at least {needed} needed" + (f" ({detail})" if detail else "")
        super().__init__(reason)
        self.what = what
        self.found = found
        self.needed = needed
        self.reason = reason


# --- the split ----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Split:
    """Who and which days train and test. Days are days since the cohort's origin."""

    training: tuple[str, ...]  # patient ids
    held_out: tuple[str, ...]
    train_end: int  # the first day not trained on: cut - HORIZON_DAYS
    cut: int  # the first held-out day
    days: int  # the cohort's days; held-out days are cut .. days - 1


def split_cohort(
    cohort: Cohort,
    *,
    held_out_share: float = HELD_OUT_SHARE,
    held_out_period: float = HELD_OUT_PERIOD,
    seed: int = 0,
) -> Split:
    """Hold out a seeded share of the patients and the last part of the days (ValidationError when the
    history is too short or has too few patients for a split)."""
    ids = sorted(p.patient_id for p in cohort.patients)
    if len(ids) < MIN_PATIENTS:
        raise ValidationError("patients in the history", len(ids), MIN_PATIENTS)

    def held_days(days: int) -> int:
        return max(MIN_HELD_OUT_DAYS, math.ceil(days * held_out_period))

    cut = cohort.days - held_days(cohort.days)
    train_end = cut - HORIZON_DAYS
    if train_end < MIN_TRAINING_DAYS:
        needed = max(cohort.days, 1)
        while needed - held_days(needed) - HORIZON_DAYS < MIN_TRAINING_DAYS:
            needed += 1
        detail = (
            f"{MIN_TRAINING_DAYS} days to train on, {HORIZON_DAYS} more for their labels' window, then"
            f" {held_days(needed)} held out"
        )
        raise ValidationError("days of history", cohort.days, needed, detail)
    order = np.random.default_rng(seed).permutation(len(ids))
    n_held = min(len(ids) - 2, max(2, round(held_out_share * len(ids))))
    held = sorted(ids[i] for i in order[:n_held])
    chosen = set(held)
    return Split(tuple(i for i in ids if i not in chosen), tuple(held), train_end, cut, cohort.days)


def _truncated(patient: PatientRecord, split: Split) -> PatientRecord:
    end = float(split.train_end)
    readings = {}
    for vital, series in patient.readings.items():
        keep = [i for i, t in enumerate(series.days) if t < end]
        if keep:
            readings[vital] = Series(
                tuple(series.days[i] for i in keep), tuple(series.values[i] for i in keep)
            )
    # An admission from the cut on labels no training day: left out. One that started before the cut is
    # a label (or the days in hospital); its discharge after train_end is not known by then.
    admissions = tuple(
        Admission(a.start, a.end if a.end is not None and a.end < end else None)
        for a in patient.admissions
        if a.start < split.cut
    )
    return replace(
        patient,
        readings=readings,
        changes=tuple((t, key) for t, key in patient.changes if t < end),
        admissions=admissions,
    )


def training_cohort(cohort: Cohort, split: Split) -> Cohort:
    """The training patients' days before ``train_end``, with the admissions that label them."""
    chosen = set(split.training)
    patients = tuple(_truncated(p, split) for p in cohort.patients if p.patient_id in chosen)
    return Cohort(cohort.origin, split.train_end, patients, cohort.synthetic)


def held_out_cohort(cohort: Cohort, split: Split) -> Cohort:
    """The held-out patients with their whole history (the days before the cut give the features their
    past; only days from the cut on are scored)."""
    chosen = set(split.held_out)
    return replace(cohort, patients=tuple(p for p in cohort.patients if p.patient_id in chosen))


def _rows(data: Dataset, keep: npt.NDArray[np.bool_]) -> Dataset:
    return Dataset(data.x[keep], data.y[keep], data.admitted[keep], data.patient[keep], data.day[keep])


def training_admissions(cohort: Cohort, split: Split) -> int:
    """Admissions of the training patients that label a training day (started on day 1 .. cut - 1)."""
    chosen = set(split.training)
    return sum(
        1
        for p in cohort.patients
        if p.patient_id in chosen
        for a in p.admissions
        if 1 <= math.floor(a.start) < split.cut
    )


def held_out_admissions(held: Cohort, split: Split) -> list[tuple[int, int]]:
    """(patient index in ``held``, day) of the admissions with a held-out day before them (day cut + 1
    .. days - 1): the admissions sensitivity and lead time are counted on."""
    return [
        (i, math.floor(a.start))
        for i, p in enumerate(held.patients)
        for a in p.admissions
        if split.cut < math.floor(a.start) < split.days
    ]


# --- metrics ------------------------------------------------------------------------------------------


def patient_bootstrap_auroc(
    y: npt.NDArray[np.int8],
    scores: FloatArray,
    patient: npt.NDArray[np.intp],
    *,
    replicates: int = BOOTSTRAP_REPLICATES,
    seed: int = 0,
) -> FloatArray:
    """The AUROC of ``replicates`` resamples of the patients (with replacement; a patient drawn k times
    weighs k). Ties count one half, as in ``sklearn.metrics.roc_auc_score``; a resample without
    positives or negatives is NaN. Scores must be finite.

    Sorted once; each replicate weighs the tie groups' positives and negatives by its patient counts, so
    a replicate costs a pass over the rows, not a sort."""
    order = np.argsort(scores, kind="stable")
    positive = y[order].astype(bool)
    ordered = scores[order]
    starts = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]])
    ids, which = np.unique(patient[order], return_inverse=True)
    rng = np.random.default_rng(seed)
    out = np.empty(replicates)
    chunk = max(1, _CHUNK_CELLS // max(1, scores.size))
    for lo in range(0, replicates, chunk):
        k = min(chunk, replicates - lo)
        counts = rng.multinomial(ids.size, np.full(ids.size, 1.0 / ids.size), size=k).astype(float)
        out[lo : lo + k] = _weighted_auroc(counts[:, which], positive, starts)
    return out


def _weighted_auroc(
    weights: FloatArray, positive: npt.NDArray[np.bool_], starts: npt.NDArray[np.intp]
) -> FloatArray:
    """AUROC per row of ``weights`` (replicates x rows sorted by score; ``starts``: the tie groups)."""
    pos = np.add.reduceat(weights * positive, starts, axis=1)
    neg = np.add.reduceat(weights * ~positive, starts, axis=1)
    below = np.cumsum(neg, axis=1) - neg
    total = pos.sum(axis=1) * neg.sum(axis=1)
    wins = (pos * (below + 0.5 * neg)).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        result: FloatArray = np.where(total > 0, wins / total, np.nan)
    return result


def logistic_recalibration(y: npt.NDArray[np.int8], p: FloatArray) -> tuple[float, float]:
    """(slope, intercept) of ``logit P(y = 1) = intercept + slope * logit(p)`` by maximum likelihood
    (Newton's method from the calibrated answer, slope 1 and intercept 0). A slope below 1 says the
    predictions are too extreme, an intercept below 0 that they are too high on average."""
    clipped = np.clip(p, 1e-6, 1 - 1e-6)
    x = np.column_stack([np.ones(p.size), np.log(clipped / (1 - clipped))])
    beta = np.array([0.0, 1.0])
    target = y.astype(float)
    for _ in range(100):
        mu = 1.0 / (1.0 + np.exp(-(x @ beta)))
        hessian = x.T @ (x * (mu * (1 - mu))[:, None])
        try:
            step = np.linalg.solve(hessian, x.T @ (target - mu))
        except np.linalg.LinAlgError:
            return float("nan"), float("nan")
        beta = beta + step
        if np.max(np.abs(step)) < 1e-10:
            break
    return float(beta[1]), float(beta[0])


def calibration_deciles(
    y: npt.NDArray[np.int8], p: FloatArray, groups: int = DECILES
) -> list[dict[str, float | int | None]]:
    """Observed share admitted within 30 days against mean predicted risk, in ``groups`` groups of equal
    size by predicted risk (lowest first)."""
    order = np.argsort(p, kind="stable")
    return [
        {
            "patient_days": int(rows.size),
            "predicted": _round(float(np.mean(p[rows]))),
            "observed": _round(float(np.mean(y[rows]))),
            "admitted_within_30_days": int(np.sum(y[rows])),
        }
        for rows in np.array_split(order, groups)
        if rows.size
    ]


def _round(value: float | None, digits: int = 4) -> float | None:
    """JSON has no NaN (nor has PostgreSQL's jsonb): an undefined figure is None."""
    if value is None or not math.isfinite(value):
        return None
    return round(value, digits)


def _method(
    label: str,
    scores: FloatArray,
    data: Dataset,
    admissions: Sequence[tuple[int, int]],
    *,
    alert_scores: FloatArray,
    probabilities: bool,
    replicates: int,
    seed: int,
) -> dict[str, Any]:
    """One method's figures on the held-out rows: AUROC (and interval) of ``scores``, the alerts of
    ``alert_scores`` at the budget, calibration when ``scores`` are probabilities."""
    # The budget's threshold search is the costly part: done once, on the scores that alert.
    same = alert_scores is scores
    ranked = method_result(
        label,
        scores,
        data,
        admissions,
        probabilities=probabilities,
        seed=seed,
        threshold=None if same else math.inf,
    )
    alerts = (
        ranked
        if same
        else method_result(label, alert_scores, data, admissions, probabilities=False, seed=seed)
    )
    keep = ~data.admitted
    s = home_scores(scores, data.admitted)[keep]
    y = data.y[keep]
    boot = patient_bootstrap_auroc(y, s, data.patient[keep], replicates=replicates, seed=seed)
    lo, hi = np.nanpercentile(boot, [2.5, 97.5]) if np.any(~np.isnan(boot)) else (np.nan, np.nan)
    b = alerts.budget
    entry: dict[str, Any] = {
        "name": label,
        "auroc": _round(ranked.auroc),
        "auroc_ci": [_round(float(lo)), _round(float(hi))],
        "auprc": _round(ranked.auprc),
        "sensitivity": _round(b.sensitivity),
        "detected": b.detected,
        "admissions": b.admissions,
        "alerts": b.alerts,
        "alerts_per_patient_week": _round(b.alerts_per_patient_week),
        "median_lead_days": _round(b.median_lead_days, 1) if b.median_lead_days is not None else None,
    }
    if probabilities:
        slope, intercept = logistic_recalibration(y, s)
        entry["brier"] = _round(ranked.brier)
        entry["calibration"] = {
            "slope": _round(slope, 3),
            "intercept": _round(intercept, 3),
            "mean_predicted": _round(float(np.mean(s))),
            "observed_rate": _round(float(np.mean(y))),
            "observed_expected": _round(float(np.mean(y) / np.mean(s)), 3) if np.mean(s) > 0 else None,
            "deciles": calibration_deciles(y, s),
        }
    return entry


# --- training and the report --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Validation:
    """The model trained on the training part, the split, and its held-out report (``metrics``)."""

    model: RiskModel
    split: Split
    metrics: dict[str, Any]


def validate(
    cohort: Cohort,
    *,
    active: RiskModel | None = None,
    active_version: str | None = None,
    seed: int = 0,
    replicates: int = BOOTSTRAP_REPLICATES,
    held_out_share: float = HELD_OUT_SHARE,
    held_out_period: float = HELD_OUT_PERIOD,
    description: str = "",
) -> Validation:
    """Split, train on the training part, and report the held-out comparison (see the module text).
    ``active``: the model the municipality scores with now (named ``active_version``), compared on the
    same patient-days; None leaves it out. ValidationError when there is too little to train or test."""
    split = split_cohort(cohort, held_out_share=held_out_share, held_out_period=held_out_period, seed=seed)
    trained_on = training_admissions(cohort, split)
    if trained_on < MIN_TRAINING_ADMISSIONS:
        detail = f"{len(split.training)} patients, days before {_date(cohort, split.cut)}"
        raise ValidationError("admissions in the training part", trained_on, MIN_TRAINING_ADMISSIONS, detail)
    held = held_out_cohort(cohort, split)
    admissions = held_out_admissions(held, split)
    if len(admissions) < MIN_HELD_OUT_ADMISSIONS:
        detail = f"{len(split.held_out)} patients, days from {_date(cohort, split.cut)}"
        raise ValidationError(
            "admissions in the held-out part", len(admissions), MIN_HELD_OUT_ADMISSIONS, detail
        )
    training = training_cohort(cohort, split)
    model = train(training, description=description or "training part of the patient and time split")

    full = build_dataset(held)
    rows = full.day >= split.cut
    data = _rows(full, rows)
    figures: dict[str, dict[str, Any]] = {}
    named = [(MODEL, "New model", model)]
    if active is not None:
        named.append((ACTIVE, f"Active model {active_version or active.metadata.get('model', '')}", active))
    for key, label, scorer in named:
        risk = scorer.predict(full.x)
        rise = monitored_rise(np.where(full.admitted, np.nan, risk), full.patient)
        figures[key] = _method(
            label,
            risk[rows],
            data,
            admissions,
            alert_scores=rise[rows],
            probabilities=True,
            replicates=replicates,
            seed=seed,
        )
    baselines = baseline_scores(data, seed)
    for key, label, name in (
        (NEWS2, "NEWS2 of the day", NEWS2_ALONE),
        (WEIGHT_RULE, "Weight rule (gain over 3 days)", WEIGHT_RULE_ALONE),
    ):
        scores = baselines[name]
        figures[key] = _method(
            label,
            scores,
            data,
            admissions,
            alert_scores=scores,
            probabilities=False,
            replicates=replicates,
            seed=seed,
        )
    if active is not None:
        figures[ACTIVE]["version"] = active_version or str(active.metadata.get("model", ""))
    methods = {key: figures[key] for key in (MODEL, NEWS2, WEIGHT_RULE, ACTIVE) if key in figures}
    at_home = ~data.admitted
    train_meta = model.metadata.get("training_cohort", {})
    metrics: dict[str, Any] = {
        "held_out": {
            "patients": len(split.held_out),
            "patient_days": int(at_home.sum()),
            "admissions": len(admissions),
            "positive_patient_days": int(data.y[at_home].sum()),
            "from": _date(cohort, split.cut),
            "to": _date(cohort, split.days - 1),
        },
        "training": {
            "patients": len(split.training),
            "patient_days": int(train_meta.get("patient_days", 0)),
            "admissions": trained_on,
            "from": _date(cohort, 0),
            "to": _date(cohort, split.train_end - 1),
            "labels_until": _date(cohort, split.cut - 1),
        },
        "history": {
            "patients": len(cohort.patients),
            "days": cohort.days,
            "from": _date(cohort, 0),
            "to": _date(cohort, cohort.days - 1),
            "admissions": sum(len(p.admissions) for p in cohort.patients),
            "synthetic": cohort.synthetic,
        },
        "split": {
            "held_out_share": held_out_share,
            "held_out_period": round(held_out_period, 4),
            "seed": seed,
            "horizon_days": HORIZON_DAYS,
        },
        "methods": methods,
        "margin": ACTIVATION_MARGIN,
        "bootstrap": {"unit": "patient", "replicates": replicates, "seed": seed, "interval": 0.95},
        "alert_budget_per_patient_month": ALERTS_PER_PATIENT_MONTH,
    }
    return Validation(model, split, metrics)


def _date(cohort: Cohort, day: int) -> str:
    return (cohort.origin + timedelta(days=day)).isoformat()


def _figure(value: Any, digits: int = 3) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def report_rows(metrics: Mapping[str, Any]) -> list[tuple[str, str, str, str, str, str]]:
    """One row of figures per method compared (new model, active model, NEWS2, weight rule), as text:
    name, AUROC (95 % CI), calibration slope / intercept, sensitivity (detected/admissions), alerts per
    patient-week, median lead time. The Markdown report and the CLI's table both print these."""
    rows = []
    methods = metrics["methods"]
    for key in (MODEL, ACTIVE, NEWS2, WEIGHT_RULE):
        if key not in methods:
            continue
        m = methods[key]
        lo, hi = m["auroc_ci"]
        calibration = m.get("calibration")
        calibrated = (
            f"{_figure(calibration['slope'], 2)} / {_figure(calibration['intercept'], 2)}"
            if calibration
            else "n/a"
        )
        sensitivity = (
            f"{_figure(m['sensitivity'], 2)} ({m['detected']}/{m['admissions']})"
            if m["sensitivity"] is not None
            else "n/a"
        )
        rows.append(
            (
                str(m["name"]),
                f"{_figure(m['auroc'])} ({_figure(lo)}-{_figure(hi)})",
                calibrated,
                sensitivity,
                _figure(m["alerts_per_patient_week"]),
                _figure(m["median_lead_days"], 1),
            )
        )
    return rows


def markdown_report(metrics: Mapping[str, Any]) -> str:
    """The held-out comparison as Markdown: the summary table, then calibration by decile."""
    held = metrics["held_out"]
    lines = [
        f"Held out: {held['patients']} patients, {held['patient_days']} patient-days at home from"
        f" {held['from']} to {held['to']}, {held['admissions']} admissions.",
        "",
        "| Method | AUROC (95 % CI) | Calibration slope / intercept | Sensitivity at equal alert burden"
        " | Alerts / patient-week | Median lead time (days) |",
        "|---|---|---|---|---|---|",
    ]
    methods = metrics["methods"]
    for row in report_rows(metrics):
        lines.append("| " + " | ".join(row) + " |")
    for key in (MODEL, ACTIVE):
        calibration = methods.get(key, {}).get("calibration")
        if not calibration:
            continue
        lines += [
            "",
            f"{methods[key]['name']}: observed against predicted 30-day admission, by decile of risk",
            "",
            "| Decile | Patient-days | Mean predicted | Observed |",
            "|---|---|---|---|",
        ]
        for i, d in enumerate(calibration["deciles"], start=1):
            lines.append(
                f"| {i} | {d['patient_days']} | {_figure(d['predicted'])} | {_figure(d['observed'])} |"
            )
    return "\n".join(lines) + "\n"


def model_card(
    metrics: Mapping[str, Any],
    model: RiskModel,
    *,
    version: str,
    municipality: str,
    source: str,
) -> str:
    """The model card of a new local version: what it was trained on, its held-out figures, the
    activation gate's verdict, and what it is for (ranking for review, not a clinical prediction)."""
    history = metrics["history"]
    training = metrics["training"]
    held = metrics["held_out"]
    synthetic = bool(history.get("synthetic"))
    gate = activation_check(metrics)
    data_kind = "SYNTHETIC" if synthetic else "recorded (not marked synthetic)"
    banner = (
        "**Trained and evaluated on SYNTHETIC data. It says nothing about clinical validity.**"
        if synthetic
        else "**Trained on this municipality's own records. Not validated as a clinical prediction or a"
        " medical device.**"
    )
    verdict = "passes" if gate.passed else "does not pass"
    lines = [
        f"# Model card: 30-day admission risk, local version `{version}`",
        "",
        banner,
        "",
        "## Intended use",
        "",
        "Ranking the municipality's patients for a nurse's review (the weekly worklist, and alerts when a",
        "patient's risk rises): whom to look at first. It is not a clinical prediction or a diagnosis, it",
        "does not replace NEWS2, the disease rules or a nurse's judgement, and its figures hold for the",
        "period and patients below only.",
        "",
        "## Training data",
        "",
        f"- Municipality: {municipality}; source: {source}; data: {data_kind}.",
        f"- History: {history['patients']} patients, {history['days']} days ({history['from']} to"
        f" {history['to']}), {history['admissions']} admissions.",
        f"- Trained on {training['patients']} patients' days from {training['from']} to {training['to']}"
        f" ({training['patient_days']} patient-days at home, {training['admissions']} admissions; labels"
        f" look ahead to {training['labels_until']}).",
        f"- Held out: {held['patients']} other patients, scored on days from {held['from']} to {held['to']}"
        f" ({held['patient_days']} patient-days at home, {held['admissions']} admissions).",
        "- No held-out patient, and no day of the held-out period, reached training.",
        "",
        "## Model",
        "",
        f"- {model.metadata.get('estimator', 'calibrated logistic regression')}.",
        f"- {len(model.metadata.get('features', []))} features; alerts on the rise in risk"
        f" (threshold {_figure(model.metadata.get('alert_threshold'))}, chosen on the training part for"
        f" {ALERTS_PER_PATIENT_MONTH:g} alert per patient-month).",
        "",
        "## Held-out figures",
        "",
        "AUROC with a 95 % patient-bootstrap interval; every method's alert threshold chosen for the same",
        "alert burden on the held-out days; the models alert on the rise in their risk.",
        "",
        markdown_report(metrics).rstrip("\n"),
        "",
        "## Activation gate",
        "",
        f"The version {verdict} the gate (AUROC at least {metrics['margin']:.2f} above NEWS2 on the held-out"
        f" patient-days): {gate.reason}.",
        "",
        "## Limits",
        "",
        "- The interval shows how few held-out patients there are; a difference inside it may be chance.",
        "- Labels of the last 30 days are censored (an admission after the history ends is not known).",
        "- The model learns this municipality's devices, visiting habits and admission practice; when",
        "  they change, its figures no longer hold (watch the monitoring page).",
    ]
    return "\n".join(lines) + "\n"
