"""Monitoring a 30-day admission-risk model on live data: how it ranks and how it is calibrated, and
whether that has fallen below what its model card promised.

Input: one row per scored patient-day whose outcome is known: the predicted probability, whether an
admission started 1-30 days later, the day's NEWS2 (NaN when none) and the patient (for the bootstrap).
``monitor`` returns, as values:

- predicted against observed admissions by risk decile (tenths of the patient-days ranked by predicted
  risk; the tenths' counts and admissions add up to the totals);
- the AUROC of the model and of NEWS2 on the same patient-days (the Mann-Whitney statistic with tied
  scores counted half, which is what ``sklearn.metrics.roc_auc_score`` computes; a day without NEWS2
  counts as the lowest score, as in ``models.evaluate``), each with a 95 % patient-bootstrap interval,
  and the interval of their difference from the same resamples (paired);
- calibration-in-the-large as observed/expected (admission days over the sum of the predicted
  probabilities), with its patient-bootstrap interval, and the calibration slope (the logistic
  regression of the outcome on the logit of the prediction; 1 is perfect, below 1 the predictions are
  too extreme), with a 95 % interval from a patient-clustered (sandwich) standard error: a bootstrap of
  a fitted regression would cost a thousand fits per page;
- the verdict (``DRIFT_RULE``): "drift" when any of the four findings below holds, "no drift" when none
  does, and "too few" (no verdict) with fewer than :data:`MIN_ADMISSIONS` admissions.

Patient-days of one patient are not independent (a month before an admission gives 30 positive days),
so every interval resamples patients, not days, and "admissions" counts distinct hospital stays, not
positive days. The promised figures are read by ``promised_figures`` from the version's held-out report
(``models.activation`` documents its shape; ``models.validation`` writes it) or, for the shipped
default without one, its sidecar; a figure that is not there is not judged.

Pure: arrays in, frozen values out; the SQL that finds the rows is ``gateway.store.model_monitoring``'s,
the wording the page's. Everything measured here about the shipped model is about a model trained on
SYNTHETIC data: a drift verdict says that the model no longer does what it did on its test data, never
that it is clinically valid when it does.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Final, Literal

import numpy as np
import numpy.typing as npt

from models.errors import ModelsError

FloatArray = npt.NDArray[np.float64]

#: Days of scores the page looks back over (the issue's "last 90 days").
WINDOW_DAYS: Final = 90
#: Below this many admissions (distinct hospital stays after scored days) there is no verdict: a patient
#: bootstrap over a handful of admissions resamples some of them away entirely and its interval is not
#: to be trusted, and a model that is fine would be called drifted by chance too often to be useful.
MIN_ADMISSIONS: Final = 20
#: Patient-bootstrap resamples (1000: the 2.5 and 97.5 percentiles rest on 25 resamples each) and seed
#: (fixed: the same data give the same interval on every page load).
BOOTSTRAP_RESAMPLES: Final = 1000
BOOTSTRAP_SEED: Final = 19
#: Two-sided 95 % intervals.
CONFIDENCE: Final = 0.95
_Z95: Final = 1.959963984540054
#: Calibration-in-the-large drifts when the whole interval of observed/expected lies beyond this factor
#: of the promised ratio (1 when none was promised), either way: 25 % more or fewer admissions than the
#: model predicts is a change a nurse's list feels (1 in 4 of its "expected" admissions), and a smaller
#: one is within what a few hundred patients' three months cannot tell from chance.
OE_TOLERANCE: Final = 1.25
#: The calibration slope drifts when its whole interval lies below this share of the promised slope (1
#: when none was promised), or above its inverse: a slope of 0.7 means the risks are spread 1.4 times too
#: wide (the issue measured 0.38 for the shipped model on a population it never saw).
SLOPE_TOLERANCE: Final = 0.7
#: The rule in one sentence per finding, for the docs and the page's "how this is judged".
DRIFT_RULE: Final = (
    "discrimination: the upper end of the live AUROC's 95 % interval is below the lower end of the "
    "promised AUROC's interval (below the promised AUROC itself when no interval was promised)",
    "news2: the 95 % interval of the live AUROC minus NEWS2's on the same patient-days lies wholly below 0",
    "calibration-in-the-large: the 95 % interval of observed/expected lies wholly above 1.25 times the "
    "promised ratio (1 when none was promised) or wholly below it divided by 1.25",
    "calibration-slope: the 95 % interval of the calibration slope lies wholly below 0.7 times the "
    "promised slope (1 when none was promised) or wholly above it divided by 0.7",
)
# Predictions are clipped this far from 0 and 1 before the logit (a stored 0 or 1 would be infinite).
_LOGIT_EPS: Final = 1e-6
_DECILES: Final = 10

FindingKind = Literal["discrimination", "news2", "calibration-in-the-large", "calibration-slope"]
VerdictStatus = Literal["drift", "no-drift", "too-few"]


class MonitoringError(ModelsError, ValueError):
    """The rows handed in do not fit together (lengths, probabilities outside 0..1)."""


@dataclass(frozen=True, slots=True)
class Interval:
    """A two-sided 95 % interval."""

    low: float
    high: float

    def __contains__(self, value: object) -> bool:
        return isinstance(value, int | float) and self.low <= value <= self.high


@dataclass(frozen=True, slots=True)
class Decile:
    """One tenth of the patient-days ranked by predicted risk (1: the lowest risks)."""

    number: int
    patient_days: int
    lowest: float  # the lowest and highest predicted risk in it
    highest: float
    mean_predicted: float
    expected: float  # the sum of the predicted probabilities: admission days the model expects
    observed: int  # patient-days followed by an admission within 30 days
    observed_rate: float


@dataclass(frozen=True, slots=True)
class Promise:
    """What the version's card promised, as far as it says; ``source``: 'held-out' (its held-out report),
    'training' (only the sidecar's figures on its training data) or 'none'."""

    source: Literal["held-out", "training", "none"]
    auroc: float | None = None
    auroc_ci: Interval | None = None
    news2_auroc: float | None = None
    observed_expected: float | None = None
    calibration_slope: float | None = None


@dataclass(frozen=True, slots=True)
class Finding:
    """One rule of ``DRIFT_RULE`` that holds: the live figure and interval against the reference."""

    kind: FindingKind
    live: float
    live_interval: Interval
    reference: float  # the promised figure (or 0 for the difference with NEWS2, 1 for an unstated O/E)


@dataclass(frozen=True, slots=True)
class Verdict:
    status: VerdictStatus
    findings: tuple[Finding, ...] = ()
    judged: tuple[FindingKind, ...] = ()  # the rules that could be applied (the promise had their figure)


@dataclass(frozen=True, slots=True)
class Monitoring:
    """All figures of one model version on the patient-days handed in. AUROCs and calibration are None
    when the rows have no admission, or nothing but."""

    patient_days: int
    patients: int
    admissions: int  # distinct hospital stays following a scored day within 30 days
    positive_days: int  # patient-days followed by an admission within 30 days
    news2_missing_days: int  # patient-days without a NEWS2 (ranked lowest)
    deciles: tuple[Decile, ...]
    auroc: float | None
    auroc_ci: Interval | None
    news2_auroc: float | None
    news2_auroc_ci: Interval | None
    difference_ci: Interval | None  # model minus NEWS2, paired resamples
    expected: float
    observed_expected: float | None
    observed_expected_ci: Interval | None
    calibration_slope: float | None
    calibration_slope_ci: Interval | None
    verdict: Verdict


def auroc(scores: npt.ArrayLike, outcome: npt.ArrayLike) -> float | None:
    """The AUROC of ``scores`` for the 0/1 ``outcome`` (ties counted half: ``roc_auc_score``'s value);
    None when only one class is present."""
    s = np.asarray(scores, dtype=np.float64)
    y = np.asarray(outcome).astype(bool)
    levels = np.unique(s, return_inverse=True)[1].reshape(-1)
    value = _weighted_auroc(levels, y, np.ones(s.size))
    return None if np.isnan(value) else value


def _weighted_auroc(levels: npt.NDArray[np.intp], y: npt.NDArray[np.bool_], weights: FloatArray) -> float:
    """Mann-Whitney AUROC with row weights: for each positive, the weight of the negatives scored below
    it plus half of those tied with it. ``levels``: each row's rank among the distinct scores. O(rows);
    NaN when a class has no weight."""
    size = int(levels.max()) + 1 if levels.size else 0
    positive = np.bincount(levels[y], weights=weights[y], minlength=size)
    negative = np.bincount(levels[~y], weights=weights[~y], minlength=size)
    return float(_auroc_of_counts(positive[None, :], negative[None, :])[0])


def deciles(
    predicted: FloatArray, outcome: npt.NDArray[np.bool_], parts: int = _DECILES
) -> tuple[Decile, ...]:
    """The patient-days ranked by predicted risk and cut into ``parts`` groups of (nearly) equal size;
    fewer rows than parts give one group per row."""
    order = np.argsort(predicted, kind="stable")
    groups = [g for g in np.array_split(order, min(parts, predicted.size)) if g.size]
    out = []
    for number, rows in enumerate(groups, start=1):
        p, y = predicted[rows], outcome[rows]
        out.append(
            Decile(
                number=number,
                patient_days=int(rows.size),
                lowest=float(p.min()),
                highest=float(p.max()),
                mean_predicted=float(p.mean()),
                expected=float(p.sum()),
                observed=int(y.sum()),
                observed_rate=float(y.mean()),
            )
        )
    return tuple(out)


def calibration_slope(
    predicted: FloatArray, outcome: npt.NDArray[np.bool_], patient: npt.NDArray[np.intp]
) -> tuple[float, Interval] | None:
    """The slope of the logistic regression of ``outcome`` on logit(``predicted``) (Newton's method),
    with a 95 % interval from the patient-clustered sandwich variance; None when it cannot be fitted
    (one class only, or all predictions equal)."""
    if outcome.all() or not outcome.any():
        return None
    p = np.clip(predicted, _LOGIT_EPS, 1 - _LOGIT_EPS)
    x = np.column_stack([np.ones(p.size), np.log(p / (1 - p))])
    y = outcome.astype(np.float64)
    beta = np.zeros(2)
    for _ in range(50):
        mu = 1.0 / (1.0 + np.exp(-(x @ beta)))
        information = (x * (mu * (1 - mu))[:, None]).T @ x
        try:
            step = np.linalg.solve(information, x.T @ (y - mu))
        except np.linalg.LinAlgError:
            return None
        beta = beta + step
        if np.max(np.abs(step)) < 1e-10:
            break
    mu = 1.0 / (1.0 + np.exp(-(x @ beta)))
    information = (x * (mu * (1 - mu))[:, None]).T @ x
    try:
        bread = np.linalg.inv(information)
    except np.linalg.LinAlgError:
        return None
    # Sum each patient's score contributions, so that a patient's days count as one draw.
    contributions = x * (y - mu)[:, None]
    clusters = int(patient.max()) + 1
    per_patient = np.column_stack(
        [np.bincount(patient, weights=contributions[:, j], minlength=clusters) for j in range(2)]
    )
    correction = clusters / (clusters - 1) if clusters > 1 else 1.0
    variance = bread @ (per_patient.T @ per_patient) @ bread * correction
    slope = float(beta[1])
    half = _Z95 * float(np.sqrt(max(variance[1, 1], 0.0)))
    if not np.isfinite(slope) or not np.isfinite(half):
        return None
    return slope, Interval(slope - half, slope + half)


@dataclass(frozen=True, slots=True)
class _Bootstrap:
    auroc: Interval | None
    news2_auroc: Interval | None
    difference: Interval | None
    observed_expected: Interval | None


def _interval(values: FloatArray) -> Interval | None:
    finite = values[np.isfinite(values)]
    if finite.size < 2:
        return None
    tail = (1 - CONFIDENCE) / 2 * 100
    low, high = np.percentile(finite, [tail, 100 - tail])
    return Interval(float(low), float(high))


def _bootstrap(
    predicted: FloatArray,
    outcome: npt.NDArray[np.bool_],
    news2: FloatArray,
    patient: npt.NDArray[np.intp],
    resamples: int,
    seed: int,
) -> _Bootstrap:
    """Patient-bootstrap intervals: each resample draws as many patients as there are, with replacement,
    and weighs every patient-day by how often its patient was drawn; the model and NEWS2 share the
    resamples, so their difference's interval is paired."""
    patients = int(patient.max()) + 1
    draws = np.random.default_rng(seed).multinomial(patients, np.full(patients, 1.0 / patients), resamples)
    weights_all = draws.astype(np.float64)
    # Observed/expected: each resample's sums are its multiplicities times the patients' own sums.
    observed_of = np.bincount(patient, weights=outcome.astype(np.float64), minlength=patients)
    expected_of = np.bincount(patient, weights=predicted, minlength=patients)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratios = (weights_all @ observed_of) / (weights_all @ expected_of)
    news2_values = _few_level_aurocs(news2, outcome, patient, weights_all)
    # The model's risks are (nearly) all distinct: one weighted pass over the rows per resample.
    levels = np.unique(predicted, return_inverse=True)[1].reshape(-1)
    size = int(levels.max()) + 1
    pos_levels, neg_levels = levels[outcome], levels[~outcome]
    pos_patient, neg_patient = patient[outcome], patient[~outcome]
    model_values = np.empty(resamples)
    for b in range(resamples):
        positive = np.bincount(pos_levels, weights=weights_all[b, pos_patient], minlength=size)
        negative = np.bincount(neg_levels, weights=weights_all[b, neg_patient], minlength=size)
        model_values[b] = _auroc_of_counts(positive[None, :], negative[None, :])[0]
    return _Bootstrap(
        auroc=_interval(model_values),
        news2_auroc=_interval(news2_values),
        difference=_interval(model_values - news2_values),
        observed_expected=_interval(ratios),
    )


def _few_level_aurocs(
    scores: FloatArray, outcome: npt.NDArray[np.bool_], patient: npt.NDArray[np.intp], draws: FloatArray
) -> FloatArray:
    """The AUROC of a score with few distinct values (NEWS2: whole points) in every resample at once:
    each patient's positive and negative days per score level, times the resamples' multiplicities."""
    levels = np.unique(scores, return_inverse=True)[1].reshape(-1)
    size = int(levels.max()) + 1
    patients = draws.shape[1]
    cell = patient * size + levels
    per_patient_pos = np.bincount(cell[outcome], minlength=patients * size).reshape(patients, size)
    per_patient_neg = np.bincount(cell[~outcome], minlength=patients * size).reshape(patients, size)
    return _auroc_of_counts(draws @ per_patient_pos, draws @ per_patient_neg)


def _auroc_of_counts(positive: npt.NDArray[Any], negative: npt.NDArray[Any]) -> FloatArray:
    """Row by row: the AUROC of positive and negative weights per score level (levels ascending), ties
    counted half; NaN where a class has no weight."""
    total = positive.sum(axis=1) * negative.sum(axis=1)
    below = np.cumsum(negative, axis=1) - negative
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(total > 0, np.sum(positive * (below + 0.5 * negative), axis=1) / total, np.nan)


def monitor(
    predicted: npt.ArrayLike,
    outcome: npt.ArrayLike,
    news2: npt.ArrayLike,
    patient: Sequence[str] | npt.ArrayLike,
    admission: Sequence[object | None],
    promise: Promise,
    *,
    resamples: int = BOOTSTRAP_RESAMPLES,
    seed: int = BOOTSTRAP_SEED,
) -> Monitoring:
    """Every figure of the page for one version's patient-days (module docstring): ``predicted`` risks,
    ``outcome`` (admission within 1-30 days), ``news2`` (NaN: none that day), ``patient`` ids and, per
    row, the id of the hospital stay that made it positive (None for a negative day)."""
    p = np.asarray(predicted, dtype=np.float64)
    y = np.asarray(outcome).astype(bool)
    n2 = np.asarray(news2, dtype=np.float64)
    ids = np.asarray(patient)
    if not (p.shape == y.shape == n2.shape == ids.shape) or p.ndim != 1 or len(admission) != p.size:
        raise MonitoringError("predicted, outcome, news2, patient and admission must be equally long")
    if p.size and (np.isnan(p).any() or p.min() < 0 or p.max() > 1):
        raise MonitoringError("a predicted risk is not a probability")
    admissions = len({a for a, positive in zip(admission, y, strict=True) if positive and a is not None})
    patient_index = np.unique(ids, return_inverse=True)[1].reshape(-1) if p.size else np.zeros(0, np.intp)
    missing = np.isnan(n2)
    # A day without NEWS2 ranks below every day with one (models.evaluate does the same).
    n2_ranked = np.where(missing, (np.nanmin(n2) - 1.0) if (~missing).any() else 0.0, n2)
    expected = float(p.sum())
    both_classes = bool(y.any() and not y.all())
    model_auc = auroc(p, y) if both_classes else None
    news2_auc = auroc(n2_ranked, y) if both_classes else None
    boot = (
        _bootstrap(p, y, n2_ranked, patient_index, resamples, seed)
        if both_classes
        else _Bootstrap(None, None, None, None)
    )
    slope = calibration_slope(p, y, patient_index) if both_classes else None
    figures = Monitoring(
        patient_days=int(p.size),
        patients=len(set(ids.tolist())),
        admissions=admissions,
        positive_days=int(y.sum()),
        news2_missing_days=int(missing.sum()),
        deciles=deciles(p, y) if p.size else (),
        auroc=model_auc,
        auroc_ci=boot.auroc,
        news2_auroc=news2_auc,
        news2_auroc_ci=boot.news2_auroc,
        difference_ci=boot.difference,
        expected=expected,
        observed_expected=float(y.sum()) / expected if both_classes and expected > 0 else None,
        observed_expected_ci=boot.observed_expected,
        calibration_slope=None if slope is None else slope[0],
        calibration_slope_ci=None if slope is None else slope[1],
        verdict=Verdict("too-few"),
    )
    return replace(figures, verdict=judge(figures, promise))


def judge(figures: Monitoring, promise: Promise) -> Verdict:
    """The drift verdict of ``DRIFT_RULE`` (module docstring); 'too-few' below :data:`MIN_ADMISSIONS`."""
    if figures.admissions < MIN_ADMISSIONS or figures.auroc is None:
        return Verdict("too-few")
    findings: list[Finding] = []
    judged: list[FindingKind] = []
    promised_floor = promise.auroc_ci.low if promise.auroc_ci is not None else promise.auroc
    if promised_floor is not None and figures.auroc_ci is not None:
        judged.append("discrimination")
        if figures.auroc_ci.high < promised_floor:
            findings.append(Finding("discrimination", figures.auroc, figures.auroc_ci, promised_floor))
    if figures.difference_ci is not None and figures.news2_auroc is not None:
        judged.append("news2")
        if figures.difference_ci.high < 0:
            gain = figures.auroc - figures.news2_auroc
            findings.append(Finding("news2", gain, figures.difference_ci, 0.0))
    oe, oe_ci = figures.observed_expected, figures.observed_expected_ci
    if oe is not None and oe_ci is not None:
        judged.append("calibration-in-the-large")
        reference = promise.observed_expected if promise.observed_expected else 1.0
        if oe_ci.low > reference * OE_TOLERANCE or oe_ci.high < reference / OE_TOLERANCE:
            findings.append(Finding("calibration-in-the-large", oe, oe_ci, reference))
    slope, slope_ci = figures.calibration_slope, figures.calibration_slope_ci
    if slope is not None and slope_ci is not None:
        judged.append("calibration-slope")
        reference = promise.calibration_slope if promise.calibration_slope else 1.0
        if slope_ci.high < reference * SLOPE_TOLERANCE or slope_ci.low > reference / SLOPE_TOLERANCE:
            findings.append(Finding("calibration-slope", slope, slope_ci, reference))
    return Verdict("drift" if findings else "no-drift", tuple(findings), tuple(judged))


# --- what the card promised ------------------------------------------------------------------------------


def _number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    number = float(value)
    return number if np.isfinite(number) else None


def _pair(value: object) -> Interval | None:
    if isinstance(value, Sequence) and not isinstance(value, str) and len(value) == 2:
        low, high = _number(value[0]), _number(value[1])
        if low is not None and high is not None and low <= high:
            return Interval(low, high)
    return None


def _mapping(value: object, *keys: str) -> Mapping[str, Any]:
    for key in keys:
        value = value.get(key) if isinstance(value, Mapping) else None
    return value if isinstance(value, Mapping) else {}


def _first(entry: Mapping[str, Any], *keys: str) -> float | None:
    for key in keys:
        if (number := _number(entry.get(key))) is not None:
            return number
    return None


def _calibration(entry: Mapping[str, Any]) -> tuple[float | None, float | None]:
    """(observed/expected, slope) from a method's entry, in the spellings a report may use: flat keys,
    or a ``calibration`` object; O/E also from the observed rate over the mean prediction."""
    nested = _mapping(entry, "calibration")
    slope = _either(_first(entry, "calibration_slope"), _first(nested, "slope", "calibration_slope"))
    oe = _either(
        _first(entry, "observed_expected", "calibration_in_the_large"),
        _first(nested, "observed_expected", "calibration_in_the_large", "oe"),
    )
    if oe is None:
        observed = _either(_first(entry, "observed_rate"), _first(nested, "observed_rate"))
        predicted = _either(_first(entry, "mean_predicted"), _first(nested, "mean_predicted"))
        if observed is not None and predicted:
            oe = observed / predicted
    return oe, slope


def _either(first: float | None, second: float | None) -> float | None:
    return first if first is not None else second


def promised_figures(metrics: Mapping[str, Any], metadata: Mapping[str, Any]) -> Promise:
    """What a version promised: its held-out report (``metrics``, the shape of ``models.activation``)
    when it has the model's AUROC; else the sidecar's (``metadata``) held-out figures when it has them
    (``metrics``, ``held_out`` or ``evaluation`` in the shape of a report), else its training figures
    (``training_metrics``: measured on the data it was fitted to, so flattering); missing keys are
    left unjudged."""
    for report in (metrics, *(_mapping(metadata, key) for key in ("metrics", "held_out", "evaluation"))):
        model = _mapping(report, "methods", "model")
        model_auroc = _first(model, "auroc")
        if model_auroc is not None:
            oe, slope = _calibration(model)
            return Promise(
                source="held-out",
                auroc=model_auroc,
                auroc_ci=_pair(model.get("auroc_ci")),
                news2_auroc=_first(_mapping(report, "methods", "news2"), "auroc"),
                observed_expected=oe,
                calibration_slope=slope,
            )
    training = _mapping(metadata, "training_metrics")
    training_auroc = _first(training, "auroc")
    if training_auroc is not None:
        oe, slope = _calibration(training)
        return Promise(
            source="training",
            auroc=training_auroc,
            auroc_ci=_pair(training.get("auroc_ci")),
            observed_expected=oe,
            calibration_slope=slope,
        )
    return Promise(source="none")
