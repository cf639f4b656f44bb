"""How long it takes to score and rank 100,000 patients' latest day with the learned admission risk.

The server keeps, per patient, what `models.features.DayState` holds (the last 15 days of readings, the
personal baseline of the latest reading, rule hits and staff notes counted as they arrive, age, sex and
conditions). Scoring a day is then: build the feature matrix for every patient at once
(`day_features`, vectorised), the calibrated probability (`RiskModel.predict`), the per-feature
contributions, the ranking, and the top three reasons in words for the patients at the top of the list.
The state is SYNTHETIC random data of plausible shape (not timed); the target is under 10 seconds.

    .venv/bin/python bench/score_patients.py [--patients 100000] [--model models/admission_risk.joblib]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from models.admission_risk import explain_many, load
from models.codes import CHANGE_OBSERVATIONS
from models.features import CONDITIONS, RULES, TREND_VITALS, WINDOW_DAYS, DayState, day_features

# Per vital: mean and spread between patients, day-to-day spread, decimals (SYNTHETIC, plausible).
_VITALS = {
    "spo2": (95.0, 1.5, 1.0, 0),
    "pulse": (72.0, 8.0, 4.0, 0),
    "systolic": (130.0, 12.0, 6.0, 0),
    "temperature": (36.7, 0.3, 0.2, 1),
    "weight": (78.0, 12.0, 0.5, 1),
}


def synthetic_state(patients: int, day: int, seed: int) -> DayState:
    """A random but plausible DayState: about 80 % of the days measured, a few rule hits and notes."""
    rng = np.random.default_rng(seed)
    measured = (rng.random((patients, WINDOW_DAYS)) < 0.8).astype(float)
    first = day - WINDOW_DAYS + 1
    values, times, center, spread = {}, {}, {}, {}
    for vital in TREND_VITALS:
        mean, sd, day_sd, digits = _VITALS[vital]
        usual = rng.normal(mean, sd, patients)
        if vital == "spo2":
            usual = np.clip(usual, 85, 99)
        daily = usual[:, None] + rng.normal(0, day_sd, (patients, WINDOW_DAYS))
        has = measured.astype(bool) & (rng.random((patients, 1)) < (0.4 if vital == "temperature" else 0.9))
        values[vital] = np.where(has, np.round(daily, digits), np.nan)
        times[vital] = np.where(has, first + np.arange(WINDOW_DAYS) + 0.3, np.nan)
        center[vital] = usual
        spread[vital] = np.full(patients, day_sd)
    return DayState(
        day=day,
        values=values,
        times=times,
        center=center,
        spread=spread,
        measured=measured,
        first_day=np.full(patients, 0.0),
        measured_before=np.round(0.8 * (day - 6)) * np.ones(patients),
        rule_hits=(rng.random((patients, len(RULES))) < 0.02).astype(float),
        changes=rng.poisson(0.1, (patients, len(CHANGE_OBSERVATIONS))).astype(float),
        age=rng.uniform(65, 95, patients),
        female=(rng.random(patients) < 0.55).astype(float),
        conditions=(rng.random((patients, len(CONDITIONS))) < 0.35).astype(float),
        days_since_admission=np.where(rng.random(patients) < 0.1, rng.integers(0, 365, patients), 365.0),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--patients", type=int, default=100_000)
    parser.add_argument("--model", type=Path, default=Path("models/admission_risk.joblib"))
    parser.add_argument("--top", type=int, default=100, help="patients at the top to explain in words")
    args = parser.parse_args()
    model = load(args.model)
    state = synthetic_state(args.patients, day=120, seed=1)

    started = time.perf_counter()
    x = day_features(state)
    built = time.perf_counter()
    risk = model.predict(x)
    scored = time.perf_counter()
    ranking = np.argsort(-risk, kind="stable")
    top = ranking[: args.top]
    reasons = explain_many(model, x[top])
    done = time.perf_counter()

    print(f"patients: {args.patients:,}  features: {x.shape[1]}")
    print(f"feature matrix (vectorised): {built - started:6.3f} s")
    print(f"calibrated risk:             {scored - built:6.3f} s")
    print(f"rank + reasons for top {args.top}: {done - scored:6.3f} s")
    print(f"total:                       {done - started:6.3f} s  (target < 10 s)")
    print(f"highest risk {risk[top[0]]:.3f}: {'; '.join(reasons[0])}")


if __name__ == "__main__":
    main()
