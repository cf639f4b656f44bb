"""A 30-day admission-risk model as bytes, for a registry to keep (``gateway.store.model_registry``).

The bytes are what ``models.admission_risk.save`` writes to the ``.joblib`` file (a joblib pickle of the
format marker and the estimator); the sidecar's metadata travels next to them as JSON, not inside. So
the shipped model's file *is* its registered bytes, and a model trained anywhere is stored the same way.
``digest`` is the one fingerprint (SHA-256, hex). ``model_from_bytes`` refuses bytes whose digest is not
the one stored with them before unpickling anything (pickle runs code: only bytes the gateway itself
stored are loaded, and a changed row is not), then checks them as ``models.admission_risk.load`` checks
a file (the same format markers, ``READABLE_VERSIONS``, and the same sidecar rules).

``shipped_model`` reads the day-one default from the files that ship (model, sidecar, model card):
nothing about it is written here, so a retrained default brings its own version and figures.
"""

from __future__ import annotations

import hashlib
import io
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import joblib

from models.admission_risk import (
    MODEL_VERSION,
    SHIPPED_MODEL,
    ModelError,
    RiskModel,
    blob_problem,
    sidecar_problem,
)

#: The model card that ships next to the default model.
SHIPPED_CARD: Final = Path(__file__).with_name("MODEL_CARD.md")


class ModelBytesError(ModelError):
    """Model bytes that cannot be used: not the bytes stored (digest differs), not a model of this
    format, or features that differ from this version's."""

    def __init__(self, reason: str, version: str | None = None) -> None:
        super().__init__(None, f"model {version}: {reason}" if version else reason)
        self.version = version


def digest(data: bytes) -> str:
    """The model's fingerprint: SHA-256 of its bytes, hex."""
    return hashlib.sha256(data).hexdigest()


def model_to_bytes(model: RiskModel) -> bytes:
    """The bytes ``save`` would write to the model file (its metadata is the caller's to keep)."""
    buffer = io.BytesIO()
    joblib.dump({"model": MODEL_VERSION, "estimator": model.estimator}, buffer)
    return buffer.getvalue()


def model_from_bytes(
    data: bytes, metadata: Mapping[str, Any], *, sha256: str, version: str | None = None
) -> RiskModel:
    """The model in ``data``, with ``metadata``; ``version`` (the registry's name for it) becomes its
    ``metadata["model"]``, the version every score it makes names. ModelBytesError, before unpickling,
    when the bytes' digest is not ``sha256``; and when they are no model of this format or version."""
    found = digest(data)
    if found != sha256:
        raise ModelBytesError(f"the bytes' sha256 {found[:12]} is not the stored {sha256[:12]}", version)
    try:
        blob = joblib.load(io.BytesIO(data))
    except Exception as exc:  # any unpickling failure means the same thing to the caller
        raise ModelBytesError(f"cannot read the model ({exc})", version) from exc
    problem = blob_problem(blob)
    if problem is not None:
        raise ModelBytesError(problem, version)
    return renamed(RiskModel(blob["estimator"]), metadata, version)


def renamed(model: RiskModel, metadata: Mapping[str, Any], version: str | None) -> RiskModel:
    """``model``'s estimator with ``metadata``, named ``version`` (the same bytes may be registered under
    several names); ModelBytesError when the metadata is not what ``load`` accepts from a sidecar (the
    features some of this version's, an alert score on the rise in risk)."""
    problem = sidecar_problem(metadata)
    if problem is not None:
        raise ModelBytesError(problem, version)
    named = dict(metadata)
    if version is not None:
        named["model"] = version
    return RiskModel(model.estimator, named)


@dataclass(frozen=True, slots=True)
class ShippedModel:
    """The day-one default as it ships: its version (the sidecar's ``model``), bytes, sidecar, model card
    and held-out figures (the sidecar's ``metrics``; {} when it has none)."""

    version: str
    model_bytes: bytes
    metadata: dict[str, Any]
    card: str
    metrics: dict[str, Any]

    @property
    def sha256(self) -> str:
        return digest(self.model_bytes)


def shipped_model(path: Path = SHIPPED_MODEL, card: Path = SHIPPED_CARD) -> ShippedModel:
    """Read the shipped default (model file, its JSON sidecar, the model card); ModelError when the files
    are missing or are not a usable model."""
    sidecar = path.with_name(path.name + ".json")
    try:
        data = path.read_bytes()
        metadata = json.loads(sidecar.read_text(encoding="utf-8"))
        text = card.read_text(encoding="utf-8")
    except (OSError, ValueError) as exc:
        raise ModelError(path, f"cannot read the shipped model, its sidecar or its card ({exc})") from exc
    if not isinstance(metadata, dict) or not isinstance(metadata.get("model"), str):
        raise ModelError(path, "the sidecar names no model version ('model')")
    model_from_bytes(data, metadata, sha256=digest(data))  # refuse a file that would not load
    metrics = metadata.get("metrics")
    return ShippedModel(
        version=metadata["model"],
        model_bytes=data,
        metadata=metadata,
        card=text,
        metrics=dict(metrics) if isinstance(metrics, Mapping) else {},
    )
