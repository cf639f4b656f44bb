"""A patient's RiskAssessment history by method, compact: the newest score of each method with its
reasons, the few before it, and which way it went. Pure: score rows in, view values out.

Three kinds of method are stored (``scores.method``): NEWS2 (``news2``, an aggregate with a band; its
reasons are the parameters that scored, ``presenters.top_reasons``), the disease rules
(``hf-weight-gain-3d`` and the others of ``gateway.alerts.home_rules``: a score of 1 each time a rule
fired, with one reason) and the 30-day admission risk (``admission-risk-30d``: a probability, with the
model's top factors in words). Anything else is shown by its method name with whatever reasons it has.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from gateway.alerts.home_rules import RULE_TITLES
from gateway.api.i18n import gettext
from gateway.api.model_words import model_text, rule_title
from gateway.api.presenters import score_text, top_reasons
from gateway.api.review_presenters import risk_percent
from gateway.store.patient_views import NEWS2, ScoreRow
from gateway.store.reviews import ADMISSION_RISK

# How many reasons the newest score of a method shows (NEWS2 has up to 7 parameters).
_REASONS = 7


@dataclass(frozen=True, slots=True)
class MethodHistory:
    """One method's newest score and the ones before it, newest first."""

    method: str
    title: str
    newest: ScoreRow
    value: str  # the newest score in words: "8", "12 %", "fired"
    reasons: tuple[str, ...]
    earlier: tuple[tuple[ScoreRow, str], ...]  # (score, its value in words)
    trend: str  # "rising", "falling", "unchanged" or "" (one score, or a rule)


def method_title(method: str) -> str:
    """A method's name for people."""
    if method == NEWS2:
        return "NEWS2"
    if method == ADMISSION_RISK:
        return gettext("30-day admission risk")
    return rule_title(method)


def score_value(score: ScoreRow) -> str:
    """A score in words: NEWS2 as its number, the 30-day risk as a percentage, a rule as "fired"."""
    if score.method == ADMISSION_RISK:
        return risk_percent(score.score)
    if score.method in RULE_TITLES:
        return gettext("fired")
    return score_text(score.score)


def score_reasons(detail: Mapping[str, Any] | None, limit: int = _REASONS) -> list[str]:
    """Why a score is what it is: the scoring NEWS2 parameters, a rule's reason, the risk's factors (the
    models' sentences in the current language)."""
    if detail and isinstance(detail.get("reason"), str):
        return [model_text(detail["reason"])]
    return [model_text(reason) for reason in top_reasons(detail, limit)]


def _trend(scores: Sequence[ScoreRow]) -> str:
    if len(scores) < 2 or scores[0].method in RULE_TITLES:
        return ""
    newest, before = scores[0].score, scores[1].score
    if newest > before:
        return gettext("rising")
    if newest < before:
        return gettext("falling")
    return gettext("unchanged")


def method_histories(by_method: Mapping[str, Sequence[ScoreRow]]) -> list[MethodHistory]:
    """Each method's history (newest first within it), NEWS2 first, then the 30-day risk, then the rest
    in the order given."""
    order = {NEWS2: 0, ADMISSION_RISK: 1}
    methods = sorted(by_method, key=lambda m: order.get(m, 2))
    return [
        MethodHistory(
            method=method,
            title=method_title(method),
            newest=scores[0],
            value=score_value(scores[0]),
            reasons=tuple(score_reasons(scores[0].detail)),
            earlier=tuple((score, score_value(score)) for score in scores[1:]),
            trend=_trend(scores),
        )
        for method in methods
        if (scores := by_method[method])
    ]
