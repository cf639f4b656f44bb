"""How often the monitoring page's drift rule fires: on the model's own population, and on two planted drifts.

Each window is SYNTHETIC: ``--patients`` patients x ``--days`` scored days whose 30 days have passed. A
patient's daily admission hazard comes from a frailty of their own (log-normal day-to-day variation on
top); admissions are events drawn from it; a day is positive when an admission follows within 1-30 days
(distinct admissions are counted as such). The model knows each patient's usual hazard and predicts the
30-day probability from it, so on its own population it is calibrated; NEWS2 knows a little of the
frailty, in whole points. The promise is the model's figures on one more window of the same population
(its AUROC and patient-bootstrap interval, and NEWS2's). Then ``--windows`` live windows per scenario
go through ``models.monitoring.monitor`` (exactly what the page runs):

- the same population and model: every warning is a false alarm;
- the risks 0.6 times too low: calibration-in-the-large should fire;
- the model knowing each patient's log-hazard only with noise (SD 1.2): a model that ranks worse.

``--open-window-bias`` measures instead why the page leaves out the days whose 30 days have not passed
even when an admission already followed them: over 90 days of scores, observed/expected of the same
calibrated model with and without those early admissions.

    .venv/bin/python bench/monitoring_drift.py [--windows 100] [--patients 300] [--days 60]
    .venv/bin/python bench/monitoring_drift.py --open-window-bias [--windows 20]

The rows are one author's simulator, like everything SYNTHETIC here; the figures say how the rule
behaves, not how any real model does.
"""

from __future__ import annotations

import argparse
import time
from collections import Counter
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from models.monitoring import Monitoring, Promise, monitor

HORIZON = 30
# Daily hazard: exp(-6.2 + frailty), frailty ~ N(0, 0.8): about 10 % of days are followed by an admission.
_BASE_LOG_HAZARD = -6.2
_FRAILTY_SD = 0.8
_DAILY_SD = 0.5  # day-to-day variation of the hazard (log scale)


@dataclass(frozen=True, slots=True)
class Window:
    predicted: npt.NDArray[np.float64]
    outcome: npt.NDArray[np.bool_]
    news2: npt.NDArray[np.float64]
    patient: list[str]
    admission: list[str | None]


def window(
    rng: np.random.Generator, patients: int, days: int, *, scale: float = 1.0, noise: float = 0.0
) -> Window:
    """One window of scored days; ``scale`` multiplies the model's risks, ``noise`` blurs what it knows."""
    frailty = rng.normal(0.0, _FRAILTY_SD, patients)
    log_hazard = _BASE_LOG_HAZARD + frailty
    # The model's 30-day probability from the usual hazard (the mean of the log-normal daily variation).
    known = log_hazard + (rng.normal(0.0, noise, patients) if noise else 0.0)
    p_patient = 1.0 - np.exp(-HORIZON * np.exp(known + _DAILY_SD**2 / 2) * scale)
    predicted, outcome, news2, who, admission = [], [], [], [], []
    for i in range(patients):
        daily = np.exp(log_hazard[i] + rng.normal(0.0, _DAILY_SD, days + HORIZON))
        events = np.flatnonzero(rng.random(days + HORIZON) < daily)
        for d in range(days):
            following = events[(events > d) & (events <= d + HORIZON)]
            predicted.append(p_patient[i])
            outcome.append(following.size > 0)
            admission.append(f"{i}-{following[0]}" if following.size else None)
            news2.append(float(np.clip(np.round(2 + frailty[i] + rng.normal(0.0, 1.5)), 0, 15)))
            who.append(f"pt-{i}")
    return Window(np.array(predicted), np.array(outcome), np.array(news2), who, admission)


def run(w: Window, promise: Promise) -> Monitoring:
    return monitor(w.predicted, w.outcome, w.news2, w.patient, w.admission, promise)


def open_window_bias(rng: np.random.Generator, patients: int, windows: int, days: int = 90) -> None:
    """Observed/expected over ``days`` of scores ending today: closed windows only, against closed
    windows plus the open ones already followed by an admission (their negatives are not known yet)."""
    closed_only, with_early = [], []
    for _ in range(windows):
        frailty = rng.normal(0.0, _FRAILTY_SD, patients)
        log_hazard = _BASE_LOG_HAZARD + frailty
        p = 1.0 - np.exp(-HORIZON * np.exp(log_hazard + _DAILY_SD**2 / 2))
        observed = {"closed": 0.0, "early": 0.0}
        expected = {"closed": 0.0, "early": 0.0}
        for i in range(patients):
            daily = np.exp(log_hazard[i] + rng.normal(0.0, _DAILY_SD, days + HORIZON))
            events = np.flatnonzero(rng.random(days + HORIZON) < daily)
            for d in range(days):
                following = events[(events > d) & (events <= d + HORIZON)]
                if d + HORIZON < days:  # its 30 days have passed by today (day ``days``)
                    for kind in observed:
                        observed[kind] += following.size > 0
                        expected[kind] += p[i]
                elif following[following < days].size:  # an admission has come already
                    observed["early"] += 1
                    expected["early"] += p[i]
        closed_only.append(observed["closed"] / expected["closed"])
        with_early.append(observed["early"] / expected["early"])
    print(
        f"observed/expected over {days} days of scores, {windows} windows of {patients} patients: closed"
        f" windows only {np.mean(closed_only):.2f}; with the early admissions of open windows"
        f" {np.mean(with_early):.2f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--windows", type=int, default=100)
    parser.add_argument("--patients", type=int, default=300)
    parser.add_argument("--days", type=int, default=60)
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--open-window-bias", action="store_true")
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    started = time.perf_counter()
    if args.open_window_bias:
        open_window_bias(rng, args.patients, args.windows)
        print(f"{time.perf_counter() - started:.0f} s")
        return
    ref = run(window(rng, args.patients, args.days), Promise("none"))
    assert ref.auroc is not None and ref.auroc_ci is not None
    promise = Promise("held-out", ref.auroc, ref.auroc_ci, ref.news2_auroc)
    print(
        f"promise (one window of the same population): {ref.patient_days} patient-days, {ref.admissions}"
        f" admissions, AUROC {ref.auroc:.3f} ({ref.auroc_ci.low:.3f}-{ref.auroc_ci.high:.3f}),"
        f" NEWS2 {ref.news2_auroc:.3f}, O/E {ref.observed_expected:.2f}, slope {ref.calibration_slope:.2f}"
    )
    scenarios = {
        "same population and model": {},
        "risks 0.6 times too low": {"scale": 0.6},
        "ranking degraded (noise SD 1.2)": {"noise": 1.2},
    }
    for name, change in scenarios.items():
        fired: Counter[str] = Counter()
        aurocs: list[float] = []
        ratios: list[float] = []
        for _ in range(args.windows):
            m = run(window(rng, args.patients, args.days, **change), promise)
            aurocs.append(np.nan if m.auroc is None else m.auroc)
            ratios.append(np.nan if m.observed_expected is None else m.observed_expected)
            if m.verdict.status == "drift":
                fired["any"] += 1
                fired.update(f.kind for f in m.verdict.findings)
        print(
            f"{name}: drift in {fired['any']} of {args.windows}; by finding"
            f" {dict((k, v) for k, v in fired.items() if k != 'any')}; mean AUROC {np.nanmean(aurocs):.3f},"
            f" mean O/E {np.nanmean(ratios):.2f}"
        )
    print(f"{time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
