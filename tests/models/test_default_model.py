"""The day-one default: training over many populations with clinically signed coefficients, the
held-out populations outside the training ranges, the held-out figures, and the shipped file's claims."""

from __future__ import annotations

import io
import json
from dataclasses import replace
from types import MappingProxyType

import joblib
import numpy as np
import pytest

from models.admission_risk import MODEL_VERSION, SHIPPED_MODEL, RiskModel, build_dataset, load
from models.cohort.populations import (
    DEFAULT_TRAINING,
    HELD_OUT,
    TRAINING_RANGES,
    TrainingRecipe,
    named_settings,
    outside_training,
    training_settings,
)
from models.cohort.profiles import Span
from models.cohort.settings import DEFAULT_SETTINGS
from models.cohort.synthetic import CohortError
from models.default_model import (
    EXPECTED_SIGNS,
    MODEL,
    NEWS2,
    WEIGHT_RULE,
    Population,
    coefficients,
    held_out_populations,
    markdown_tables,
    method_figures,
    pooled,
    train_default,
    training_populations,
)
from models.evaluate import admission_days
from models.features import COLUMN, MODEL_FEATURES

SMALL = TrainingRecipe(populations=3, settings_seed=5, patients=40, days=60, first_cohort_seed=100)


@pytest.fixture(scope="module")
def small_default() -> RiskModel:
    return train_default(SMALL)


# --- the populations ---------------------------------------------------------------------------------------


def test_every_held_out_setting_lies_outside_the_training_ranges() -> None:
    assert len(HELD_OUT) >= 3
    for name, settings in HELD_OUT.items():
        assert outside_training(settings), f"{name} is like a training population"
    for settings in training_settings(60, 7):
        assert outside_training(settings) == (), settings.name
    assert not outside_training(DEFAULT_SETTINGS)  # the project's own population is one of the family


def test_training_settings_are_seeded_and_a_smaller_draw_is_the_start_of_a_larger_one() -> None:
    assert training_settings(4, 1) == training_settings(4, 1)[:4] == training_settings(9, 1)[:4]
    assert training_settings(4, 1) != training_settings(4, 2)
    curves = {s.episode_curve for s in training_settings(40, 3)}
    assert curves == set(TRAINING_RANGES.episode_curves)


def test_symptom_checks_and_plans_are_drawn_from_a_stream_of_their_own() -> None:
    # Issue 21's shares vary over the training populations, within their ranges...
    drawn = training_settings(40, 3)
    for key, span in TRAINING_RANGES.symptom_checks.items():
        values = [getattr(s, key) for s in drawn]
        assert all(span.low <= v <= span.high for v in values) and len(set(values)) == len(values), key
    # ...and other ranges for them move nothing else: every other draw is what it was before them.
    none = replace(
        TRAINING_RANGES,
        symptom_checks=MappingProxyType({key: Span(0.0, 0.0) for key in TRAINING_RANGES.symptom_checks}),
    )
    without = training_settings(40, 3, none)
    assert [replace(s, questionnaire_share=0.0, plan_share=0.0) for s in drawn] == list(without)
    assert all(s.questionnaire_share == s.plan_share == 0.0 for s in without)


def test_settings_are_found_by_name_and_an_unknown_name_is_refused() -> None:
    assert named_settings("default") == DEFAULT_SETTINGS
    assert named_settings("heavy-artefacts") == HELD_OUT["heavy-artefacts"]
    assert named_settings("training-3") == training_settings(DEFAULT_TRAINING.populations, 2026)[2]
    for bad in ("nope", "training-0", f"training-{DEFAULT_TRAINING.populations + 1}"):
        with pytest.raises(CohortError, match="unknown"):
            named_settings(bad)


def test_held_out_and_training_populations_use_seeds_of_their_own() -> None:
    held = held_out_populations()
    assert [p.name for p in held] == list(HELD_OUT)
    training = {p.seed for p in training_populations()}
    assert len(training) == DEFAULT_TRAINING.populations
    assert not training & {p.seed for p in held} and 12 not in training | {p.seed for p in held}


# --- training ----------------------------------------------------------------------------------------------


def test_pooled_data_sets_keep_patients_apart_and_contiguous() -> None:
    a = build_dataset(Population("a", DEFAULT_SETTINGS, 1, 5, 30).cohort())
    b = build_dataset(Population("b", DEFAULT_SETTINGS, 2, 4, 30).cohort())
    both = pooled([a, b])
    assert both.x.shape[0] == a.x.shape[0] + b.x.shape[0]
    assert np.unique(both.patient).tolist() == list(range(9))
    assert np.all(np.diff(both.patient) >= 0)


def test_the_default_uses_only_features_with_a_direction_and_each_points_that_way(
    small_default: RiskModel,
) -> None:
    coef = coefficients(small_default)
    excluded = set(small_default.metadata["excluded_features"])
    assert {f"{v}_latest" for v in ("spo2", "pulse", "systolic", "temperature", "weight")} | {
        "female"
    } <= excluded
    for name, value in coef.items():
        if name in excluded:
            assert value == 0.0, name
        else:
            assert np.sign(value) in (0.0, EXPECTED_SIGNS[name]), (name, value)
    dropped = [name for round_ in small_default.metadata["dropped_for_sign"] for name in round_]
    assert set(dropped) <= excluded


def test_a_switched_off_feature_does_not_change_the_risk(small_default: RiskModel) -> None:
    data = build_dataset(Population("t", DEFAULT_SETTINGS, 3, 10, 60).cohort())
    changed = data.x.copy()
    changed[:, COLUMN["spo2_latest"]] = 60.0
    changed[:, COLUMN["female"]] = 1.0 - np.nan_to_num(changed[:, COLUMN["female"]])
    assert np.array_equal(small_default.predict(changed), small_default.predict(data.x))
    assert list(small_default.features) == list(MODEL_FEATURES)  # every model reads the same row


def test_the_metadata_says_what_it_was_trained_on(small_default: RiskModel) -> None:
    meta = small_default.metadata
    assert meta["model"] == MODEL_VERSION and meta["training_cohort"]["synthetic"] is True
    assert meta["training_recipe"]["settings_seed"] == SMALL.settings_seed
    described = meta["training_populations"]
    assert [p["seed"] for p in described] == [101, 102, 103]
    assert described[0]["settings"]["name"] == "training-1"
    assert json.loads(json.dumps(meta)) == meta  # JSON all the way down


def test_training_the_default_is_reproducible(small_default: RiskModel) -> None:
    def raw(model: RiskModel) -> bytes:
        buffer = io.BytesIO()
        joblib.dump(model.estimator, buffer)
        return buffer.getvalue()

    assert raw(train_default(SMALL)) == raw(small_default)


# --- measuring ---------------------------------------------------------------------------------------------


def test_held_out_figures_compare_every_method_on_the_same_days(small_default: RiskModel) -> None:
    cohort = Population("h", HELD_OUT["baseline-linked"], 4, 60, 90).cohort()
    data = build_dataset(cohort)
    figures = method_figures(data, admission_days(data, cohort), {MODEL: small_default}, replicates=40)
    assert list(figures) == [MODEL, NEWS2, WEIGHT_RULE]
    model, news2 = figures[MODEL], figures[NEWS2]
    assert model["auroc_minus_news2"] == pytest.approx(model["auroc"] - news2["auroc"], abs=2e-4)
    low, high = model["auroc_minus_news2_ci"]
    assert low <= high and model["auroc_ci"][0] <= model["auroc"] <= model["auroc_ci"][1]
    assert set(model["calibration"]) >= {"slope", "intercept"} and "calibration" not in news2
    assert model["admissions"] == news2["admissions"] == len(admission_days(data, cohort))
    # The same model twice: the paired difference is exactly zero in every resample.
    twice = method_figures(
        data, admission_days(data, cohort), {MODEL: small_default, "previous": small_default}, replicates=40
    )
    assert twice[MODEL]["auroc_minus_news2_ci"] == twice["previous"]["auroc_minus_news2_ci"]


# --- the shipped file --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def shipped() -> RiskModel:
    return load(SHIPPED_MODEL)


def test_the_shipped_default_is_the_recipes_and_says_so(shipped: RiskModel) -> None:
    meta = shipped.metadata
    assert meta["model"] == MODEL_VERSION
    assert meta["training_populations"] == [p.describe() for p in training_populations()]
    assert meta["training_cohort"]["synthetic"] is True
    for name, value in coefficients(shipped).items():
        assert value == 0.0 or np.sign(value) == EXPECTED_SIGNS[name], name


def test_the_shipped_default_is_not_below_news2_on_any_held_out_population(shipped: RiskModel) -> None:
    metrics = shipped.metadata["metrics"]
    assert list(metrics["populations"]) == list(HELD_OUT)
    for name, population in metrics["populations"].items():
        methods = population["methods"]
        assert methods[MODEL]["auroc"] >= methods[NEWS2]["auroc"], name
        assert population["outside_training"], name
    assert metrics["never_below_news2"] is True and metrics["synthetic"] is True
    assert (
        metrics["methods"][MODEL]["auroc"] > metrics["methods"][NEWS2]["auroc"]
    )  # models.activation's shape
    table = markdown_tables(metrics)
    assert all(name in table for name in HELD_OUT) and "standard test" in table
