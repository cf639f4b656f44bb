"""Which model scores a municipality's 30-day risk: its active version in the registry, loaded once.

``register_shipped_default`` puts the shipped day-one default (``models.model_bytes.shipped_model``: the
model file, its sidecar and the model card, nothing hard-coded) into the registry at gateway start;
registering the same file again is a no-op. ``ActiveModels.choose`` answers, per municipality, with the
version the registry says is active (``gateway.store.model_registry.active_version``) and the model
loaded from its stored bytes, checked against their sha256 (``models.model_bytes``). Loaded models are
kept by sha256, so each set of bytes is unpickled once per process, however many municipalities or
runs use it. A local version whose bytes fail to load (changed, or from an older feature set) is logged
and the municipality is scored with the default instead; the choice says so (``fallback``), and the
RiskAssessment and the score's detail carry that sentence.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from typing import Any

import psycopg

from gateway.store import model_registry as registry
from gateway.store.model_registry import ModelVersion
from models.admission_risk import ModelError, RiskModel
from models.model_bytes import ShippedModel, model_from_bytes, renamed, shipped_model

log = logging.getLogger(__name__)


def register_shipped_default(
    conn: psycopg.Connection[Any], shipped: ShippedModel | None = None
) -> ModelVersion:
    """Register the shipped default (read from its files unless given) as kind 'default', by 'homewatch',
    source 'shipped'; idempotent. ModelError when the files cannot be read; RegistrationRefused when
    its version is already registered with other bytes (a retrained file must get a new version)."""
    found = shipped if shipped is not None else shipped_model()
    return registry.register_version(
        conn,
        version=found.version,
        municipality_id=None,
        kind=registry.DEFAULT,
        created_by="homewatch",
        source="shipped",
        model_bytes=found.model_bytes,
        metadata=found.metadata,
        card=found.card,
        metrics=found.metrics,
    )


@dataclass(frozen=True, slots=True)
class ChosenModel:
    """The model that scores a municipality, the registered version it is, and, when the municipality's
    active local version could not be loaded, the sentence saying so (None otherwise)."""

    model: RiskModel
    version: ModelVersion
    fallback: str | None = None

    @property
    def synthetic_training(self) -> bool:
        """Whether the version was trained on SYNTHETIC data (the default always; a local one when its
        training cohort was marked synthetic, as the demo's and an imported synthetic cohort's are)."""
        if self.version.is_default:
            return True
        cohort = self.version.metadata.get("training_cohort")
        return bool(cohort.get("synthetic", True)) if isinstance(cohort, dict) else True


class ActiveModels:
    """Each municipality's active model, loaded from the registry and kept by sha256 (thread-safe)."""

    def __init__(self) -> None:
        self._loaded: dict[str, RiskModel] = {}
        self._lock = threading.Lock()

    def choose(self, conn: psycopg.Connection[Any], municipality_id: str) -> ChosenModel:
        """The model ``municipality_id`` scores with now. A local version that cannot be loaded falls back
        to the default (logged); RegistryError when no default is registered, ModelError when even the
        default cannot be loaded."""
        active = registry.active_version(conn, municipality_id)
        try:
            return ChosenModel(self._load(conn, active), active)
        except ModelError as exc:
            if active.is_default:
                raise
            default = registry.default_version(conn)
            if default is None:
                raise
            said = (
                f"the active model {active.version} could not be loaded ({exc.reason});"
                f" scored with the default {default.version}"
            )
            log.warning("30-day admission risk, municipality %s: %s", municipality_id, said)
            return ChosenModel(self._load(conn, default), default, said)

    def _load(self, conn: psycopg.Connection[Any], version: ModelVersion) -> RiskModel:
        with self._lock:
            cached = self._loaded.get(version.sha256)
        if cached is None:
            data = registry.model_bytes(conn, version.version)
            cached = model_from_bytes(data, version.metadata, sha256=version.sha256, version=version.version)
            with self._lock:
                self._loaded[version.sha256] = cached
        return renamed(cached, version.metadata, version.version)

    @property
    def loaded(self) -> int:
        """How many distinct models (by sha256) this process has loaded."""
        with self._lock:
            return len(self._loaded)
