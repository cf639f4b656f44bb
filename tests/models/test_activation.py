"""The activation gate: a local version must beat NEWS2 by the margin on its held-out days; ranking below
the model active when it was trained is reported, not gated."""

from __future__ import annotations

from models.activation import ACTIVATION_MARGIN, activation_check


def _metrics(model: float, news2: float, active: float | None = None) -> dict[str, object]:
    methods: dict[str, object] = {"model": {"auroc": model}, "news2": {"auroc": news2}}
    if active is not None:
        methods["active"] = {"auroc": active, "version": "admission-risk-2.0"}
    return {"methods": methods, "margin": ACTIVATION_MARGIN}


def test_a_version_passes_only_when_it_beats_news2_by_the_margin() -> None:
    assert activation_check(_metrics(0.62, 0.60)).passed
    assert not activation_check(_metrics(0.619, 0.60)).passed
    assert not activation_check(_metrics(0.55, 0.60)).passed


def test_a_version_without_a_news2_comparison_does_not_pass() -> None:
    for metrics in ({}, {"methods": {"model": {"auroc": 0.7}}}, {"methods": {"model": {"auroc": True}}}):
        check = activation_check(metrics)
        assert not check.passed
        assert "no held-out comparison" in check.reason


def test_ranking_below_the_active_model_is_reported_but_does_not_close_the_gate() -> None:
    check = activation_check(_metrics(0.612, 0.518, active=0.641))
    assert check.passed
    assert check.below_active
    assert check.active_auroc == 0.641
    assert not activation_check(_metrics(0.65, 0.518, active=0.641)).below_active
    assert not activation_check(_metrics(0.65, 0.518)).below_active
