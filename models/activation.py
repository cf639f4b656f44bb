"""When a model version may be made active: it must beat NEWS2 on the municipality's held-out data.

The held-out report (``models.validation``, stored as ``model_versions.metrics``) has this shape; the
registry (``gateway.store.model_registry``) reads it through :func:`activation_check` only::

    {"held_out": {"patients": int, "patient_days": int, "admissions": int, "from": "YYYY-MM-DD", "to": ...},
     "methods": {"model":  {"auroc": float, "auroc_ci": [lo, hi], ...},
                 "news2":  {"auroc": float, "auroc_ci": [lo, hi], ...},
                 "weight_rule": {...}, "active": {..., "version": str}},   # "active" when one was compared
     "margin": float}                                                     # ACTIVATION_MARGIN when made

A version without such a report (the shipped default, whose figures are on synthetic populations) is
never checked here: the default is what a municipality falls back to, not something it activates.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

#: A local model must rank the held-out patient-days better than NEWS2 by at least this much AUROC
#: (0.02: about the half-width of the patient-bootstrap interval on a municipality's few hundred patients).
ACTIVATION_MARGIN: Final = 0.02


@dataclass(frozen=True, slots=True)
class ActivationCheck:
    """Whether a version clears the margin, and the one sentence that says why or why not."""

    passed: bool
    model_auroc: float | None
    news2_auroc: float | None
    reason: str
    #: The AUROC of the model that was active when this one was trained, on the same held-out days (None
    #: when none was compared). Not part of the gate (the issue's gate is NEWS2), but a version that ranks
    #: below it would make the worklist worse, so the CLI and the page say so before activation.
    active_auroc: float | None = None

    @property
    def below_active(self) -> bool:
        """The version ranks the held-out patient-days worse than the model active when it was trained."""
        return (
            self.model_auroc is not None
            and self.active_auroc is not None
            and self.model_auroc < self.active_auroc
        )


def activation_check(metrics: Mapping[str, Any], margin: float = ACTIVATION_MARGIN) -> ActivationCheck:
    """Read a held-out report: does the model's AUROC beat NEWS2's by ``margin`` on the same patient-days?"""
    methods = metrics.get("methods") if isinstance(metrics, Mapping) else None
    model = _auroc(methods, "model")
    news2 = _auroc(methods, "news2")
    active = _auroc(methods, "active")
    if model is None or news2 is None:
        return ActivationCheck(False, model, news2, "no held-out comparison with NEWS2 was recorded", active)
    gain = model - news2
    if gain >= margin:
        said = f"AUROC {model:.3f} beats NEWS2 ({news2:.3f}) by {gain:.3f} (margin {margin:.2f})"
        return ActivationCheck(True, model, news2, said, active)
    said = f"AUROC {model:.3f} does not beat NEWS2 ({news2:.3f}) by the margin {margin:.2f} ({gain:+.3f})"
    return ActivationCheck(False, model, news2, said, active)


def _auroc(methods: object, name: str) -> float | None:
    if not isinstance(methods, Mapping):
        return None
    entry = methods.get(name)
    if not isinstance(entry, Mapping):
        return None
    value = entry.get("auroc")
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None
