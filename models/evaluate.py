"""Evaluate daily risk scores against 30-day admission on a held-out cohort.

Pure metric functions take arrays and return numbers: `sensitivity_at_budget` (the threshold chosen so
that a method raises `ALERTS_PER_PATIENT_MONTH` alerts per 30 monitored patient-days; sensitivity = the
share of admissions with an alert 1-30 days before; lead time = days from the first such alert to the
admission), AUROC, AUPRC and Brier score over the patient-days not in hospital. `evaluate_cohort`
scores a cohort with the learned model (its 30-day risk, and its alerts on the rise in risk at the
threshold chosen on the training cohort) and the baselines (NEWS2 of the day; the weight gain over 3
days, the quantity of the weight-gain rule; a random score), `markdown_table` formats the results and
`reliability_plot` writes the calibration curve as a PNG (matplotlib, Agg backend). The CLI does the I/O.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import numpy as np
import numpy.typing as npt
from sklearn.metrics import average_precision_score, brier_score_loss, roc_auc_score

from models.admission_risk import (
    ALERTS_PER_PATIENT_MONTH,
    HORIZON_DAYS,
    Dataset,
    RiskModel,
    alert_days,
    build_dataset,
    monitored_rise,
    threshold_for_budget,
)
from models.cohort_reader import Cohort
from models.features import COLUMN

FloatArray = npt.NDArray[np.float64]
# Tied scores (NEWS2 is a whole number) would make "equal alert burden" impossible to meet; a tiny
# seeded jitter, far below any score's resolution, breaks ties at random (the usual randomised threshold).
_TIE_JITTER: Final = 1e-6
#: The names of the two baselines in `baseline_scores` (the held-out report, models.validation, picks them).
NEWS2_ALONE: Final = "NEWS2 alone"
WEIGHT_RULE_ALONE: Final = "Weight-gain rule alone (kg over 3 days)"


@dataclass(frozen=True, slots=True)
class BudgetResult:
    """Alerts at a threshold chosen for an alert budget, and what they caught."""

    threshold: float
    alerts: int
    alerts_per_patient_week: float
    admissions: int
    detected: int
    sensitivity: float
    median_lead_days: float | None


@dataclass(frozen=True, slots=True)
class MethodResult:
    """All metrics of one scoring method on one cohort."""

    name: str
    auroc: float
    auprc: float
    brier: float | None  # only for calibrated probabilities
    budget: BudgetResult


def admission_days(data: Dataset, cohort: Cohort) -> list[tuple[int, int]]:
    """(patient index, admission day) of every admission within the cohort's days."""
    return [
        (i, int(np.floor(a.start)))
        for i, p in enumerate(cohort.patients)
        for a in p.admissions
        if 0 <= a.start < cohort.days
    ]


def sensitivity_at_budget(
    scores: FloatArray,
    patient: npt.NDArray[np.intp],
    day: npt.NDArray[np.intp],
    admissions: Sequence[tuple[int, int]],
    *,
    per_patient_month: float = ALERTS_PER_PATIENT_MONTH,
    threshold: float | None = None,
) -> BudgetResult:
    """Alerts at the budget's threshold (or the one given); rows of a patient contiguous, in day order.
    NaN scores (days in hospital) never alert and do not count as monitored days."""
    if threshold is None:
        threshold = threshold_for_budget(scores, patient, per_patient_month)
    alert = np.zeros(scores.size, dtype=bool)
    bounds = np.flatnonzero(np.diff(patient)) + 1
    for rows in np.split(np.arange(scores.size), bounds):
        alert[rows] = alert_days(scores[rows], threshold)
    alerted = {(int(p), int(d)) for p, d in zip(patient[alert], day[alert], strict=True)}
    leads = []
    for p, adm in admissions:
        window = [adm - lead for lead in range(HORIZON_DAYS, 0, -1) if (p, adm - lead) in alerted]
        if window:
            leads.append(adm - window[0])
    monitored = float(np.sum(~np.isnan(scores)))
    return BudgetResult(
        threshold=float(threshold),
        alerts=int(alert.sum()),
        alerts_per_patient_week=float(alert.sum() / (monitored / 7.0)) if monitored else 0.0,
        admissions=len(admissions),
        detected=len(leads),
        sensitivity=len(leads) / len(admissions) if admissions else float("nan"),
        median_lead_days=float(np.median(leads)) if leads else None,
    )


def home_scores(scores: FloatArray, admitted: npt.NDArray[np.bool_]) -> FloatArray:
    """The scores every method is judged on: NaN on days in hospital (not monitored). A day at home
    without a score (no readings) is monitored and never alerts: it takes a score below every real one,
    so that every method is judged on the same patient-days and the same burden."""
    keep = ~admitted
    floor = float(np.nanmin(scores[keep])) - 1.0 if np.any(~np.isnan(scores[keep])) else 0.0
    out: FloatArray = np.where(admitted, np.nan, np.nan_to_num(scores, nan=floor))
    return out


def method_result(
    name: str,
    scores: FloatArray,
    data: Dataset,
    admissions: Sequence[tuple[int, int]],
    *,
    probabilities: bool,
    per_patient_month: float = ALERTS_PER_PATIENT_MONTH,
    threshold: float | None = None,
    seed: int = 0,
) -> MethodResult:
    """AUROC, AUPRC (and Brier for probabilities) over patient-days not in hospital, and the alerts at
    the budget's threshold chosen on these data, or at `threshold` (one chosen elsewhere)."""
    keep = ~data.admitted
    s = home_scores(scores, data.admitted)
    ranked = s[keep]
    y = data.y[keep]
    jitter = np.random.default_rng(seed).uniform(0, _TIE_JITTER, s.size)
    return MethodResult(
        name=name,
        auroc=float(roc_auc_score(y, ranked)),
        auprc=float(average_precision_score(y, ranked)),
        brier=float(brier_score_loss(y, ranked)) if probabilities else None,
        budget=sensitivity_at_budget(
            s + jitter,
            data.patient,
            data.day,
            admissions,
            per_patient_month=per_patient_month,
            threshold=threshold,
        ),
    )


def baseline_scores(data: Dataset, seed: int = 0) -> dict[str, FloatArray]:
    """NEWS2 of the day, and the weight gain over 3 days (kg), as daily scores (NaN when unknown); and a
    random score, which shows how much sensitivity an alert budget buys by chance alone."""
    return {
        NEWS2_ALONE: data.x[:, COLUMN["news2"]].copy(),
        WEIGHT_RULE_ALONE: data.x[:, COLUMN["weight_change_3d"]].copy(),
        "Random score (chance level)": np.random.default_rng(seed).uniform(0, 1, data.y.size),
    }


def evaluate_cohort(model: RiskModel, cohort: Cohort) -> tuple[list[MethodResult], FloatArray, Dataset]:
    """The learned model and the baselines on `cohort`; also the model's scores and the data set.

    The model's alerts (the rise in risk, `rise_scores`) use the threshold saved with the model, chosen
    on the training cohort. Every other method is held to the alert burden those alerts reach here:
    its threshold is chosen on this cohort for that burden (which favours the other methods, if
    anything). The 30-day risk as an alert score gets the same rule; it is too steady to spend the
    burden (an alert needs 7 quiet days first) and reaches what it can.
    """
    data = build_dataset(cohort)
    admissions = admission_days(data, cohort)
    risk = model.predict(data.x)
    rise = monitored_rise(np.where(data.admitted, np.nan, risk), data.patient)
    alerts = method_result(
        "Learned model, rise in risk (alerts)",
        rise,
        data,
        admissions,
        probabilities=False,
        threshold=model.threshold,
    )
    burden = alerts.budget.alerts_per_patient_week * 30.0 / 7.0
    learned = method_result(
        "Learned model (risk_30d)", risk, data, admissions, probabilities=True, per_patient_month=burden
    )
    results = [learned, alerts]
    for name, scores in baseline_scores(data).items():
        results.append(
            method_result(name, scores, data, admissions, probabilities=False, per_patient_month=burden)
        )
    return results, risk, data


def markdown_table(results: Sequence[MethodResult]) -> str:
    """The results as a Markdown table."""
    lines = [
        "| Method | AUROC | AUPRC | Sensitivity at equal alert burden | Alerts / patient-week "
        "| Median lead time (days) | Brier |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in results:
        b = r.budget
        lead = "n/a" if b.median_lead_days is None else f"{b.median_lead_days:.1f}"
        brier = "n/a" if r.brier is None else f"{r.brier:.4f}"
        lines.append(
            f"| {r.name} | {r.auroc:.3f} | {r.auprc:.3f} | {b.sensitivity:.2f} ({b.detected}/{b.admissions}) "
            f"| {b.alerts_per_patient_week:.3f} | {lead} | {brier} |"
        )
    return "\n".join(lines) + "\n"


def reliability_plot(y: npt.NDArray[np.int8], p: FloatArray, path: Path, bins: int = 10) -> Path:
    """Observed rate against mean predicted probability in quantile bins, saved as PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from sklearn.calibration import calibration_curve

    observed, predicted = calibration_curve(y, p, n_bins=bins, strategy="quantile")
    fig, ax = plt.subplots(figsize=(5, 5))
    top = max(float(np.max(predicted)), float(np.max(observed)), 0.05) * 1.05
    ax.plot([0, top], [0, top], linestyle="--", color="grey", label="perfect calibration")
    ax.plot(predicted, observed, marker="o", label="learned model")
    ax.set_xlabel("predicted 30-day admission risk")
    ax.set_ylabel("observed share admitted within 30 days")
    ax.set_title("Reliability (held-out SYNTHETIC cohort)")
    ax.legend(loc="upper left")
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100, bbox_inches="tight")
    plt.close(fig)
    return path
