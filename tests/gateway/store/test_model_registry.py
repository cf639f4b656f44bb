"""``gateway.store.model_registry``: versions registered idempotently, one name one set of bytes, the NEWS2
margin gate with a recorded override, rollback as a stack, every change audited, and one municipality's
versions invisible to another. Real PostgreSQL; the model bytes are the shipped model's (no training)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from gateway.store import model_registry as registry
from gateway.store.model_registry import ActivationRefused, RegistrationRefused
from models.model_bytes import ModelBytesError, ShippedModel, digest, model_from_bytes, shipped_model

Conn = psycopg.Connection[Any]


def report(model: float, news2: float) -> dict[str, Any]:
    """A held-out report of the shape ``models.activation`` reads."""
    return {
        "held_out": {"patients": 80, "patient_days": 4000, "admissions": 30},
        "methods": {
            "model": {"auroc": model, "auroc_ci": [model - 0.03, model + 0.03]},
            "news2": {"auroc": news2, "auroc_ci": [news2 - 0.03, news2 + 0.03]},
        },
        "margin": 0.02,
    }


GOOD = report(0.74, 0.61)
POOR = report(0.62, 0.61)


class Admin:
    username = "ada"
    municipality_id = "0101"
    role = "municipality_admin"


ADA = Admin()


@pytest.fixture(scope="module")
def shipped() -> ShippedModel:
    return shipped_model()


@pytest.fixture
def conn(database_url: str) -> Iterator[Conn]:
    with psycopg.connect(database_url, autocommit=True) as c:
        c.execute("INSERT INTO municipalities (id, name) VALUES ('0101', 'København'), ('0202', 'Aarhus')")
        yield c


def register_default(conn: Conn, shipped: ShippedModel) -> registry.ModelVersion:
    return registry.register_version(
        conn,
        version=shipped.version,
        municipality_id=None,
        kind="default",
        created_by="homewatch",
        source="shipped",
        model_bytes=shipped.model_bytes,
        metadata=shipped.metadata,
        card=shipped.card,
        metrics=shipped.metrics,
    )


def register_local(
    conn: Conn, shipped: ShippedModel, version: str, municipality_id: str = "0101", metrics: Any = None
) -> registry.ModelVersion:
    """A local version: the shipped bytes under another name, with chosen held-out figures."""
    return registry.register_version(
        conn,
        version=version,
        municipality_id=municipality_id,
        kind="local",
        created_by="ada",
        source="database",
        model_bytes=shipped.model_bytes,
        metadata={**shipped.metadata, "model": version},
        card=f"# {version}\nSYNTHETIC test card",
        metrics=GOOD if metrics is None else metrics,
    )


def _audit(conn: Conn) -> list[tuple[str, str]]:
    return [(r[0], r[1]) for r in conn.execute("SELECT username, action FROM audit_log ORDER BY id")]


def test_registering_the_same_version_twice_is_a_no_op(conn: Conn, shipped: ShippedModel) -> None:
    first = register_default(conn, shipped)
    again = register_default(conn, shipped)
    assert again == first
    assert first.sha256 == digest(shipped.model_bytes) and first.kind == "default"
    assert conn.execute("SELECT count(*) FROM model_versions").fetchone() == (1,)
    assert _audit(conn) == [("homewatch", "model-register")]
    assert registry.model_bytes(conn, first.version) == shipped.model_bytes


def test_other_bytes_under_a_registered_version_are_refused(conn: Conn, shipped: ShippedModel) -> None:
    register_local(conn, shipped, "local-1")
    with pytest.raises(RegistrationRefused, match="other bytes"):
        registry.register_version(
            conn,
            version="local-1",
            municipality_id="0101",
            kind="local",
            created_by="ada",
            source="database",
            model_bytes=shipped.model_bytes + b"x",
            metadata={},
            card="",
            metrics={},
        )
    with pytest.raises(RegistrationRefused, match="another municipality"):
        register_local(conn, shipped, "local-1", municipality_id="0202")
    with pytest.raises(RegistrationRefused, match="default version has no municipality"):
        registry.register_version(
            conn,
            version="x",
            municipality_id="0101",
            kind="default",
            created_by="ada",
            source="database",
            model_bytes=b"",
            metadata={},
            card="",
            metrics={},
        )


def test_the_default_is_active_until_a_local_version_is_activated(conn: Conn, shipped: ShippedModel) -> None:
    default = register_default(conn, shipped)
    register_local(conn, shipped, "local-1")
    assert registry.active_version(conn, "0101") == default
    done = registry.activate(conn, "0101", "local-1", actor=ADA, client="10.0.0.9")
    assert (done.version, done.action, done.actor, done.override_reason) == (
        "local-1",
        "activate",
        "ada",
        None,
    )
    assert registry.active_version(conn, "0101").version == "local-1"
    assert registry.active_version(conn, "0202") == default
    row = conn.execute("SELECT username, role, client, detail FROM audit_log WHERE action = 'model-activate'")
    username, role, client, detail = row.fetchone() or ("", "", "", "")
    assert (username, role, client) == ("ada", "municipality_admin", "10.0.0.9")
    assert "local-1" in detail and "beats NEWS2" in detail


def test_a_version_that_does_not_beat_news2_by_the_margin_needs_a_recorded_override(
    conn: Conn, shipped: ShippedModel
) -> None:
    register_default(conn, shipped)
    register_local(conn, shipped, "poor", metrics=POOR)
    register_local(conn, shipped, "no-report", metrics={})
    for name, why in (("poor", "does not beat NEWS2"), ("no-report", "no held-out comparison")):
        with pytest.raises(ActivationRefused) as refused:
            registry.activate(conn, "0101", name, actor=ADA, override_reason="  ")
        assert refused.value.kind == "gate" and why in refused.value.reason
    assert registry.activations(conn, "0101") == []
    assert registry.active_version(conn, "0101").kind == "default"
    done = registry.activate(conn, "0101", "poor", actor=ADA, override_reason="local audit asked for it")
    assert done.override_reason == "local audit asked for it"
    assert registry.activations(conn, "0101")[0].override_reason == "local audit asked for it"
    assert registry.active_version(conn, "0101").version == "poor"


def test_rollback_returns_to_the_version_active_before_then_to_the_default(
    conn: Conn, shipped: ShippedModel
) -> None:
    default = register_default(conn, shipped)
    for name in ("a", "b", "c"):
        register_local(conn, shipped, name)
        registry.activate(conn, "0101", name, actor=ADA)
    with pytest.raises(ActivationRefused) as refused:
        registry.activate(conn, "0101", "c", actor=ADA)
    assert refused.value.kind == "active"
    assert [registry.rollback(conn, "0101", actor=ADA).version for _ in range(3)] == ["b", "a", None]
    assert registry.active_version(conn, "0101") == default
    with pytest.raises(ActivationRefused) as nothing:
        registry.rollback(conn, "0101", actor=ADA)
    assert nothing.value.kind == "nothing"
    history = registry.activations(conn, "0101")
    assert [(a.action, a.version, a.actor) for a in history][:3] == [
        ("rollback", None, "ada"),
        ("rollback", "a", "ada"),
        ("rollback", "b", "ada"),
    ]
    assert [action for _, action in _audit(conn)].count("model-rollback") == 3


def test_activating_the_default_goes_back_to_it_and_can_be_rolled_back(
    conn: Conn, shipped: ShippedModel
) -> None:
    default = register_default(conn, shipped)
    register_local(conn, shipped, "a")
    with pytest.raises(ActivationRefused, match="already active"):
        registry.activate(conn, "0101", default.version, actor=ADA)
    registry.activate(conn, "0101", "a", actor=ADA)
    back = registry.activate(conn, "0101", default.version, actor=ADA)
    assert (back.action, back.version) == ("default", None)
    assert registry.active_version(conn, "0101") == default
    assert registry.rollback(conn, "0101", actor=ADA).version == "a"


def test_a_version_of_another_municipality_is_invisible_and_cannot_be_activated(
    conn: Conn, shipped: ShippedModel
) -> None:
    default = register_default(conn, shipped)
    register_local(conn, shipped, "aarhus-1", municipality_id="0202")
    register_local(conn, shipped, "kbh-1", municipality_id="0101")
    assert [v.version for v in registry.versions(conn, "0101")] == ["kbh-1", default.version]
    assert registry.version(conn, "0101", "aarhus-1") is None
    assert registry.version(conn, "0202", "aarhus-1") is not None
    with pytest.raises(ActivationRefused) as refused:
        registry.activate(conn, "0101", "aarhus-1", actor=ADA)
    assert refused.value.kind == "unknown"
    assert registry.activations(conn, "0101") == []
    with pytest.raises(ActivationRefused, match="no model version 'nowhere'"):
        registry.activate(conn, "0101", "nowhere", actor=ADA)


def test_stored_bytes_load_only_with_their_own_sha256(conn: Conn, shipped: ShippedModel) -> None:
    stored = register_local(conn, shipped, "kbh-1")
    data = registry.model_bytes(conn, "kbh-1")
    model = model_from_bytes(data, stored.metadata, sha256=stored.sha256, version=stored.version)
    assert model.metadata["model"] == "kbh-1"
    with pytest.raises(ModelBytesError, match="sha256"):
        model_from_bytes(data[:-1] + b"\0", stored.metadata, sha256=stored.sha256)


def test_managers_are_the_municipality_admin_and_system_admins(conn: Conn) -> None:
    for name, municipality, role in (
        ("ada", "0101", "municipality_admin"),
        ("aage", "0202", "municipality_admin"),
        ("sys", "0202", "system_admin"),
        ("nina", "0101", "nurse"),
    ):
        conn.execute(
            "INSERT INTO users (username, municipality_id, role, password_hash) VALUES (%s, %s, %s, 'x')",
            (name, municipality, role),
        )
    assert [
        registry.manager(conn, n, "0101") is not None for n in ("ada", "aage", "sys", "nina", "nobody")
    ] == [
        True,
        False,
        True,
        False,
        False,
    ]
