"""When does a score become an alert, and how bad is it? Pure rules, one place.

NEWS2's own trigger thresholds (RCP 2017): an aggregate of 7 or more calls for an emergency response
(``high``); 5 or more, or 3 points in any single parameter (a "red score"), for an urgent response
(``medium``). Lower scores go to the worklist, not to anyone's phone.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from models.news2 import News2Result

Severity = Literal["medium", "high"]
SEVERITY_RANK: dict[str, int] = {"medium": 1, "high": 2}


@dataclass(frozen=True, slots=True)
class AlertDecision:
    severity: Severity
    reason: str


def decide_alert(result: News2Result) -> AlertDecision | None:
    """The alert a NEWS2 result calls for, with the reason a clinician reads first; None for no alert."""
    if result.total >= 7:
        severity: Severity = "high"
    elif result.total >= 5 or result.red_score:
        severity = "medium"
    else:
        return None
    scoring = sorted((p for p in result.parameters if p.points), key=lambda p: -p.points)
    why = "; ".join(p.describe() for p in scoring[:3])
    trigger = "red score in a single parameter" if result.total < 5 else f"aggregate {result.total}"
    reason = f"NEWS2 {result.total} ({result.band}, {trigger}): {why}"
    if result.missing:
        # Said once and short: the clinician must know the score is a lower bound.
        reason += f". Not measured: {', '.join(name.replace('_', ' ') for name in result.missing)}"
    return AlertDecision(severity, reason)


def decide_rule_alert(title: str, reason: str) -> AlertDecision:
    """A disease rule that fired calls for an urgent look (``medium``): a nurse contacts the patient the
    same day, as the heart-failure and COPD action plans ask."""
    return AlertDecision("medium", f"{title}: {reason}")
