"""``gateway.administration.homes``: enrolling homes on a real PostgreSQL, as the ``homewatch admin``
commands and the administrators' pages do. Every change is checked, audited, scoped to a municipality,
idempotent where it can be, and what goes wrong is one ``AdministrationError`` line."""

from __future__ import annotations

import stat
import tomllib
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any, get_args

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edge_agent.config import DeviceKind, HubConfig
from gateway.administration.errors import AdministrationError
from gateway.administration.homes import (
    CONDITIONS,
    DEVICE_KINDS,
    HubKit,
    add_care_team,
    add_municipality,
    add_patient,
    assign_device,
    assign_device_outcome,
    bluetooth_address,
    device_kind,
    enroll_hub,
    remove_device,
    revoke_hub,
    write_kit,
)
from gateway.administration.kit import KitDevice, KitSpec, render_hub_toml
from gateway.settings import GatewaySettings
from gateway.store.repository import hub_assignment
from models.features import CONDITIONS as MODEL_CONDITIONS

SETTINGS = GatewaySettings(environment="development", mqtt_host="broker.internal", mqtt_port=1884)
CUFF = "C4:7C:8D:6A:12:0F"
OXIMETER = "C4:7C:8D:6A:12:10"


@pytest.fixture
def conn(database_url: str) -> Iterator[psycopg.Connection[Any]]:
    with psycopg.connect(database_url, autocommit=True) as connection:
        yield connection


@pytest.fixture
def home(conn: psycopg.Connection[Any]) -> psycopg.Connection[Any]:
    """København with patient p-1 and hub hub-1 enrolled (no broker accounts)."""
    add_municipality(conn, "0101", "København", by="ops")
    add_municipality(conn, "0147", "Frederiksberg", by="ops")
    add_patient(
        conn, "0101", "p-1", name="Ane Hansen", care_team=None, phone="+45 00 00 00 01",
        conditions=["hf"], birth_date=date(1940, 5, 1), by="ops",
    )  # fmt: skip
    enroll_hub(conn, SETTINGS, "0101", "hub-1", "p-1", by="ops", accounts=None)
    return conn


def _audit(conn: psycopg.Connection[Any]) -> list[tuple[str, str, str | None]]:
    rows = conn.execute("SELECT username, action, patient_id FROM audit_log ORDER BY id").fetchall()
    return [(r[0], r[1], r[2]) for r in rows]


def _hub_row(conn: psycopg.Connection[Any], hub_id: str) -> tuple[Any, ...]:
    row = conn.execute(
        "SELECT config_version, revoked_at, revoked_by, broker_username, credentials_issued_at FROM hubs"
        " WHERE id = %s",
        (hub_id,),
    ).fetchone()
    assert row is not None
    return tuple(row)


# --- the vocabularies agree with the hub's and the models' ------------------------------------------


def test_the_device_kinds_are_exactly_the_hubs() -> None:
    assert set(DEVICE_KINDS) == set(get_args(DeviceKind))


def test_the_conditions_are_exactly_those_the_models_know() -> None:
    assert set(CONDITIONS) == set(MODEL_CONDITIONS)


def test_friendly_kind_names_and_addresses_are_normalised() -> None:
    assert device_kind("blood-pressure") == "blood-pressure-cuff"
    assert device_kind("Scale") == "scale"
    assert bluetooth_address("c4:7c:8d:6a:12:0f") == CUFF
    for bad in ("C4:7C:8D:6A:12", "C4-7C-8D-6A-12-0F", "G4:7C:8D:6A:12:0F", ""):
        with pytest.raises(AdministrationError, match="Bluetooth address"):
            bluetooth_address(bad)
    with pytest.raises(AdministrationError, match="Unknown device kind"):
        device_kind("toaster")


# --- municipalities, teams, patients -----------------------------------------------------------------


def test_adding_a_municipality_again_renames_it_and_the_same_name_is_a_no_op(
    conn: psycopg.Connection[Any],
) -> None:
    assert add_municipality(conn, "0101", "Kobenhavn", by="ops") == "added"
    assert add_municipality(conn, "0101", "København", by="ops") == "updated"
    assert add_municipality(conn, "0101", "København", by="ops") == "unchanged"
    assert conn.execute("SELECT name FROM municipalities WHERE id = '0101'").fetchone() == ("København",)
    # its default care team came with it
    assert conn.execute("SELECT id FROM care_teams WHERE municipality_id = '0101'").fetchall() == [("0101",)]
    assert [a[1] for a in _audit(conn)] == ["municipality-add", "municipality-add"]


@pytest.mark.parametrize("code", ["101", "01010", "abcd", "0101 ", ""])
def test_a_municipality_code_is_four_digits(conn: psycopg.Connection[Any], code: str) -> None:
    with pytest.raises(AdministrationError, match="four digits"):
        add_municipality(conn, code, "Somewhere", by="ops")


def test_a_patient_is_enrolled_updated_and_kept_to_their_municipality(home: psycopg.Connection[Any]) -> None:
    conn = home
    add_care_team(conn, "0101", "0101-nord", "Hjemmesygeplejen Nord", by="ops")
    conn.execute("UPDATE patients SET spo2_scale2 = true WHERE id = 'p-1'")  # set by a clinician
    outcome = add_patient(
        conn, "0101", "p-1", name="Ane Hansen", care_team="0101-nord", phone="+45 00 00 00 02",
        conditions=["hf", "copd", "copd"], birth_date=None, by="ops",
    )  # fmt: skip
    assert outcome == "updated"
    row = conn.execute(
        "SELECT care_team_id, phone, conditions, birth_date, spo2_scale2 FROM patients WHERE id = 'p-1'"
    ).fetchone()
    assert row == ("0101-nord", "+45 00 00 00 02", ["heart-failure", "copd"], None, True)
    again = add_patient(
        conn, "0101", "p-1", name="Ane Hansen", care_team="0101-nord", phone="+45 00 00 00 02",
        conditions=["heart-failure", "copd"], birth_date=None, by="ops",
    )  # fmt: skip
    assert again == "unchanged"
    with pytest.raises(AdministrationError, match="Patient id p-1 is taken"):
        add_patient(
            conn, "0147", "p-1", name="Other", care_team=None, phone=None, conditions=[],
            birth_date=None, by="ops",
        )  # fmt: skip
    with pytest.raises(AdministrationError, match="no care team 0101-nord"):
        add_patient(
            conn, "0147", "p-2", name="Other", care_team="0101-nord", phone=None, conditions=[],
            birth_date=None, by="ops",
        )  # fmt: skip


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"patient_id": "p 1"}, "is not a valid id"),
        ({"name": "  "}, "The name must be"),
        ({"phone": "call me"}, "not a phone number"),
        ({"conditions": ["gout"]}, "Unknown condition"),
        ({"birth_date": date.today() + timedelta(days=1)}, "The birth date"),
        ({"municipality_id": "0999"}, "There is no municipality 0999"),
        ({"by": ""}, "Who acts"),
    ],
)
def test_a_bad_patient_is_refused_in_one_line_and_nothing_is_written(
    home: psycopg.Connection[Any], change: dict[str, Any], message: str
) -> None:
    values: dict[str, Any] = {
        "municipality_id": "0101", "patient_id": "p-9", "name": "Bo", "care_team": None,
        "phone": None, "conditions": [], "birth_date": None, "by": "ops",
    }  # fmt: skip
    values.update(change)
    municipality_id, patient_id = values.pop("municipality_id"), values.pop("patient_id")
    with pytest.raises(AdministrationError, match=message) as refused:
        add_patient(home, municipality_id, patient_id, **values)
    assert "\n" not in str(refused.value)
    assert home.execute("SELECT count(*) FROM patients").fetchone() == (1,)


# --- hubs and their kits -------------------------------------------------------------------------------


def test_an_enrolled_hubs_kit_loads_as_the_hubs_configuration(
    home: psycopg.Connection[Any], tmp_path: Path
) -> None:
    conn = home
    assign_device(conn, SETTINGS, "hub-1", "p-1", "blood-pressure", CUFF.lower(), by="ops", publisher=None)
    kit = enroll_hub(
        conn, SETTINGS, "0101", "hub-1", "p-1", by="ops", accounts=None, outbox_path="outbox.sqlite3"
    )
    assert not kit.new and kit.password is None and kit.ca_certificate is None
    assert kit.pin is not None and kit.pin.isdigit() and len(kit.pin) == 6
    written = write_kit(kit, tmp_path / "kit")
    assert [p.name for p in written] == ["hub.toml", "patient-view-pin"]
    assert stat.S_IMODE((tmp_path / "kit" / "patient-view-pin").stat().st_mode) == 0o600
    config = HubConfig.from_toml(tmp_path / "kit" / "hub.toml")
    # the hub serves the patient view behind the household's PIN from its own file, never in hub.toml
    assert config.patient_view.enabled and config.patient_view.secret() == kit.pin
    assert kit.pin not in kit.hub_toml
    assert (config.municipality, config.hub_id, config.patient_id) == ("0101", "hub-1", "p-1")
    assert [(d.id, d.address, d.kind) for d in config.devices] == [
        ("dev-c47c8d6a120f", CUFF, "blood-pressure-cuff")
    ]
    assert (config.mqtt.host, config.mqtt.port, config.mqtt.tls, config.mqtt.username) == (
        "broker.internal", 1884, False, None
    )  # fmt: skip
    assert config.outbox_path == tmp_path / "kit" / "outbox.sqlite3"


def test_a_kit_with_a_password_and_our_ca_uses_tls_and_keeps_the_password_in_a_private_file(
    home: psycopg.Connection[Any], tmp_path: Path
) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_bytes(b"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n")
    settings = SETTINGS.model_copy(
        update={"hub_ca_file": ca, "hub_mqtt_host": "mqtt.kommune.example", "hub_mqtt_port": 8883}
    )
    kit = HubKit("0101", "hub-1", "p-1", "", "s3cret-password", ca.read_bytes())
    spec = KitSpec("0101", "hub-1", "p-1", [KitDevice("d-1", CUFF, "scale")], "mqtt.kommune.example", 8883,
                   username="hub-1", tls=True, ca=True, outbox_path="outbox.sqlite3")  # fmt: skip
    kit = HubKit("0101", "hub-1", "p-1", render_hub_toml(spec), "s3cret-password", ca.read_bytes())
    written = write_kit(kit, tmp_path / "kit")
    assert sorted(p.name for p in written) == ["ca.crt", "hub.toml", "mqtt-password"]
    assert stat.S_IMODE((tmp_path / "kit" / "mqtt-password").stat().st_mode) == 0o600
    assert "s3cret" not in (tmp_path / "kit" / "hub.toml").read_text()
    config = HubConfig.from_toml(tmp_path / "kit" / "hub.toml")
    assert config.mqtt.tls and config.mqtt.ca_file == tmp_path / "kit" / "ca.crt"
    assert config.mqtt.secret() == "s3cret-password" and config.mqtt.username == "hub-1"
    assert (config.mqtt.host, config.mqtt.port) == ("mqtt.kommune.example", 8883)
    # enrol_hub reads the CA named in the settings
    enrolled = enroll_hub(home, settings, "0101", "hub-1", "p-1", by="ops", accounts=None)
    assert enrolled.ca_certificate == ca.read_bytes()
    assert 'ca_file = "ca.crt"' in enrolled.hub_toml and "tls = true" in enrolled.hub_toml


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    timezone=st.text(min_size=1, max_size=40),
    host=st.text(min_size=1, max_size=60),
)
def test_no_string_breaks_out_of_its_toml_quotes(timezone: str, host: str, tmp_path: Path) -> None:
    # The service checks every value first; the renderer still escapes whatever it is given.
    spec = KitSpec("0101", "hub-1", "p-1", [KitDevice("d-1", CUFF, "scale")], host, 1883,
                   username=None, tls=False, timezone=timezone)  # fmt: skip
    try:
        data = tomllib.loads(render_hub_toml(spec))
    except tomllib.TOMLDecodeError:
        # TOML cannot hold some code points at all (lone surrogates): refused, never misread.
        assert any(0xD800 <= ord(c) <= 0xDFFF or c == "\x7f" or ord(c) < 0x20 for c in timezone + host)
        return
    assert data["timezone"] == timezone and data["mqtt"]["host"] == host
    assert set(data) == {"municipality", "hub_id", "patient_id", "timezone", "outbox_path", "devices", "mqtt"}


def test_enrolling_again_issues_new_credentials_and_is_audited(home: psycopg.Connection[Any]) -> None:
    conn = home
    first = _hub_row(conn, "hub-1")[4]
    kit = enroll_hub(conn, SETTINGS, "0101", "hub-1", "p-1", by="anna", accounts=None)
    assert not kit.new and _hub_row(conn, "hub-1")[4] > first
    assert [a for a in _audit(conn) if a[1].startswith("hub")] == [
        ("ops", "hub-enrol", "p-1"),
        ("anna", "hub-credentials", "p-1"),
    ]


def test_a_hub_serves_one_patient_and_one_municipality(home: psycopg.Connection[Any]) -> None:
    conn = home
    add_patient(
        conn, "0101", "p-2", name="Bo", care_team=None, phone=None, conditions=[], birth_date=None, by="ops"
    )
    add_patient(
        conn, "0147", "p-3", name="Cy", care_team=None, phone=None, conditions=[], birth_date=None, by="ops"
    )
    with pytest.raises(AdministrationError, match="Hub hub-1 serves patient p-1"):
        enroll_hub(conn, SETTINGS, "0101", "hub-1", "p-2", by="ops", accounts=None)
    with pytest.raises(AdministrationError, match="Hub id hub-1 is taken"):
        enroll_hub(conn, SETTINGS, "0147", "hub-1", "p-3", by="ops", accounts=None)
    with pytest.raises(AdministrationError, match="has no patient p-3"):
        enroll_hub(conn, SETTINGS, "0101", "hub-2", "p-3", by="ops", accounts=None)
    assert conn.execute("SELECT id, patient_id FROM hubs").fetchall() == [("hub-1", "p-1")]


# --- devices -------------------------------------------------------------------------------------------


def test_assigning_a_device_lets_the_gateway_accept_it_and_again_is_a_no_op(
    home: psycopg.Connection[Any],
) -> None:
    conn = home
    first = assign_device_outcome(
        conn, SETTINGS, "hub-1", "p-1", "pulse-oximeter", OXIMETER, by="ops", publisher=None,
        expected_interval=timedelta(hours=24),
    )  # fmt: skip
    assert (first.device_id, first.outcome, first.published) == ("dev-c47c8d6a1210", "added", False)
    assignment = hub_assignment(conn, "0101", "hub-1")
    assert assignment is not None and assignment.device_ids == {"dev-c47c8d6a1210"}
    again = assign_device_outcome(
        conn, SETTINGS, "hub-1", "p-1", "oximeter", OXIMETER.lower(), by="ops", publisher=None,
        expected_interval=timedelta(hours=24),
    )  # fmt: skip
    assert again.outcome == "unchanged"
    assert _hub_row(conn, "hub-1")[0] == 1  # one change of the hub's config, not two
    changed = assign_device_outcome(
        conn, SETTINGS, "hub-1", "p-1", "oximeter", OXIMETER, by="ops", publisher=None,
        expected_interval=timedelta(hours=12),
    )  # fmt: skip
    assert changed.outcome == "updated" and _hub_row(conn, "hub-1")[0] == 2
    assert conn.execute("SELECT expected_interval FROM devices").fetchone() == (timedelta(hours=12),)
    assert [a[1] for a in _audit(conn)].count("device-assign") == 2


def test_a_removed_device_is_refused_by_the_gateway_and_assigning_it_brings_it_back(
    home: psycopg.Connection[Any],
) -> None:
    conn = home
    device = assign_device(
        conn, SETTINGS, "hub-1", "p-1", "scale", CUFF, by="ops", publisher=None, device_id="scale-1"
    )
    assert remove_device(conn, SETTINGS, device, by="ops", publisher=None) is True
    assert remove_device(conn, SETTINGS, device, by="ops", publisher=None) is False
    assignment = hub_assignment(conn, "0101", "hub-1")
    assert assignment is not None and assignment.device_ids == frozenset()
    back = assign_device_outcome(conn, SETTINGS, "hub-1", "p-1", "scale", CUFF, by="ops", publisher=None)
    assert (back.device_id, back.outcome) == ("scale-1", "added")  # the address finds the same device
    assert _hub_row(conn, "hub-1")[0] == 3


def test_a_device_moves_with_its_patient_to_a_new_hub_and_both_configs_change(
    home: psycopg.Connection[Any],
) -> None:
    conn = home
    device = assign_device(conn, SETTINGS, "hub-1", "p-1", "scale", CUFF, by="ops", publisher=None)
    revoke_hub(conn, SETTINGS, "hub-1", by="ops", accounts=None, publisher=None)
    enroll_hub(conn, SETTINGS, "0101", "hub-2", "p-1", by="ops", accounts=None)
    moved = assign_device_outcome(conn, SETTINGS, "hub-2", "p-1", "scale", CUFF, by="ops", publisher=None)
    assert (moved.device_id, moved.outcome) == (device, "updated")
    assert _hub_row(conn, "hub-1")[0] == 2 and _hub_row(conn, "hub-2")[0] == 1
    assignment = hub_assignment(conn, "0101", "hub-2")
    assert assignment is not None and assignment.device_ids == {device}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("hub-9", "p-1", "scale", CUFF), "There is no hub hub-9"),
        (("hub-1", "p-2", "scale", CUFF), "serves patient p-1, not p-2"),
        (("hub-1", "p-1", "toaster", CUFF), "Unknown device kind"),
        (("hub-1", "p-1", "scale", "not-an-address"), "Bluetooth address"),
        (("hub/1", "p-1", "scale", CUFF), "is not a valid id"),
    ],
)
def test_a_bad_assignment_is_refused_in_one_line(
    home: psycopg.Connection[Any], args: tuple[str, str, str, str], message: str
) -> None:
    with pytest.raises(AdministrationError, match=message):
        assign_device(home, SETTINGS, *args, by="ops", publisher=None)
    assert home.execute("SELECT count(*) FROM devices").fetchone() == (0,)


def test_an_address_in_use_on_the_hub_is_not_given_a_second_id(home: psycopg.Connection[Any]) -> None:
    assign_device(
        home, SETTINGS, "hub-1", "p-1", "scale", CUFF, by="ops", publisher=None, device_id="scale-1"
    )
    with pytest.raises(AdministrationError, match="is device scale-1 on hub hub-1"):
        assign_device(
            home, SETTINGS, "hub-1", "p-1", "scale", CUFF, by="ops", publisher=None, device_id="scale-2"
        )
    with pytest.raises(AdministrationError, match="The expected interval"):
        assign_device(home, SETTINGS, "hub-1", "p-1", "scale", OXIMETER, by="ops", publisher=None,
                      expected_interval=timedelta(0))  # fmt: skip


# --- revocation and scope ------------------------------------------------------------------------------


def test_revoking_cuts_the_hub_off_at_the_gateway_and_again_is_safe(home: psycopg.Connection[Any]) -> None:
    conn = home
    assign_device(conn, SETTINGS, "hub-1", "p-1", "scale", CUFF, by="ops", publisher=None)
    first = revoke_hub(conn, SETTINGS, "hub-1", by="anna", accounts=None, publisher=None)
    assert not first.already and first.account_removed is None
    assert hub_assignment(conn, "0101", "hub-1") is None  # ingest refuses it
    again = revoke_hub(conn, SETTINGS, "hub-1", by="bo", accounts=None, publisher=None)
    assert again.already and again.revoked_at == first.revoked_at
    assert _hub_row(conn, "hub-1")[2] == "anna"
    with pytest.raises(AdministrationError, match="never used again"):
        enroll_hub(conn, SETTINGS, "0101", "hub-1", "p-1", by="ops", accounts=None)
    with pytest.raises(AdministrationError, match="never used again"):
        assign_device(conn, SETTINGS, "hub-1", "p-1", "scale", OXIMETER, by="ops", publisher=None)
    assert [a[1] for a in _audit(conn)].count("hub-revoke") == 1


def test_an_administrator_within_one_municipality_sees_anothers_homes_as_unknown(
    home: psycopg.Connection[Any],
) -> None:
    conn = home
    device = assign_device(conn, SETTINGS, "hub-1", "p-1", "scale", CUFF, by="ops", publisher=None)
    by, within = "frb-admin", "0147"
    with pytest.raises(AdministrationError, match="There is no hub hub-1"):
        assign_device(conn, SETTINGS, "hub-1", "p-1", "scale", OXIMETER, publisher=None, by=by, within=within)
    with pytest.raises(AdministrationError, match="There is no device"):
        remove_device(conn, SETTINGS, device, publisher=None, by=by, within=within)
    with pytest.raises(AdministrationError, match="There is no hub hub-1"):
        revoke_hub(conn, SETTINGS, "hub-1", accounts=None, publisher=None, by=by, within=within)
    with pytest.raises(AdministrationError, match="There is no municipality 0101"):
        enroll_hub(conn, SETTINGS, "0101", "hub-1", "p-1", accounts=None, by=by, within=within)
    with pytest.raises(AdministrationError, match="There is no municipality 0101"):
        add_patient(conn, "0101", "p-1", name="X", care_team=None, phone=None, conditions=[],
                    birth_date=None, by=by, within=within)  # fmt: skip
    with pytest.raises(AdministrationError, match="There is no municipality 0101"):
        add_municipality(conn, "0101", "Renamed", by=by, within=within)
    assert hub_assignment(conn, "0101", "hub-1") is not None
    # within its own municipality it may
    assert add_municipality(conn, "0147", "Frederiksberg Kommune", by=by, within=within) == "updated"


def test_a_page_users_change_is_audited_with_their_role_and_address(home: psycopg.Connection[Any]) -> None:
    conn = home
    conn.execute(
        "INSERT INTO users (username, municipality_id, role, password_hash) VALUES ('kbh-admin', '0101',"
        " 'municipality_admin', 'x')"
    )
    assign_device(conn, SETTINGS, "hub-1", "p-1", "scale", CUFF, by="kbh-admin", publisher=None,
                  within="0101", client="10.0.0.7")  # fmt: skip
    row = conn.execute(
        "SELECT username, role, municipality_id, client, patient_municipality_id FROM audit_log"
        " WHERE action = 'device-assign'"
    ).fetchone()
    assert row == ("kbh-admin", "municipality_admin", "0101", "10.0.0.7", "0101")


# Text as people paste it, and what the database would choke on (a NUL, a line break, a book).
_TYPED = st.one_of(
    st.text(max_size=80),
    st.sampled_from(["p-1", "hub-1", "0101", CUFF, "scale", "hf", "+45 00 00 00 01", "", " ", "dev-1"]),
    st.sampled_from(["A\x00B", "p\n1", "x" * 300, "c4:7c:8d:6a:12:0f\x00", "0101\n"]),
)


_PATIENT = {
    "patient_id": "p-2",
    "name": "Bo",
    "care_team": None,
    "phone": None,
    "condition": "hf",
    "by": "ops",
}
_DEVICE = {
    "hub_id": "hub-1",
    "patient_id": "p-1",
    "kind": "scale",
    "address": CUFF,
    "device_id": None,
    "by": "ops",
}
_MUNICIPALITY: dict[str, Any] = {"code": "0147", "name": "Frederiksberg", "by": "ops"}


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    what=st.sampled_from(
        [("patient", f) for f in _PATIENT]
        + [("device", f) for f in _DEVICE]
        + [("municipality", f) for f in _MUNICIPALITY]
    ),
    typed=_TYPED,
)
def test_whatever_a_person_types_is_taken_or_refused_in_one_line(
    home: psycopg.Connection[Any], what: tuple[str, str], typed: str
) -> None:
    # One field typed, the others right: never a database error, a traceback or a second line. What
    # the database would refuse (a NUL, an unknown team, an id too long) is checked before it is asked.
    change, field = what
    try:
        if change == "patient":
            p: dict[str, Any] = {**_PATIENT, field: typed}
            add_patient(
                home, "0101", p["patient_id"], name=p["name"], care_team=p["care_team"], phone=p["phone"],
                conditions=[p["condition"]], birth_date=None, by=p["by"],
            )  # fmt: skip
        elif change == "device":
            d: dict[str, Any] = {**_DEVICE, field: typed}
            assign_device(
                home, SETTINGS, d["hub_id"], d["patient_id"], d["kind"], d["address"], by=d["by"],
                device_id=d["device_id"], publisher=None,
            )  # fmt: skip
        else:
            m: dict[str, Any] = {**_MUNICIPALITY, field: typed}
            add_municipality(home, m["code"], m["name"], by=m["by"])
    except AdministrationError as refused:
        message = str(refused)
        assert message and "\n" not in message and "\r" not in message
