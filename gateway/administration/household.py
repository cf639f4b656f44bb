"""Two patients on one hub: who lives with a hub, and whose user slot on a shared device is whose.

A hub is enrolled for one patient (``hubs.patient_id``, for its life: ``gateway.administration.homes``);
a second person of the home who is monitored too becomes a *resident* of that hub
(:func:`add_resident`). A device then belongs to one resident (``homes.assign_device`` with that
resident's id), or the residents share it: a blood-pressure cuff or a scale that keeps users apart by
the User Index it sends with every measurement gets one slot per resident (:func:`assign_user`). The
hub attributes each measurement by its index and holds one with no known index until a resident claims
it on the hub's patient view; the gateway accepts a device's readings only for the residents it
measures (``gateway.ingest.processing`` rule 5). So two residents never get each other's readings.

Each function checks its input, changes the database in one transaction with an audit row per patient
concerned (who: ``by``), counts one change of the hub's configuration and publishes it after the commit
(``gateway.hub_config.publish_hub_config``; when the broker is away the config job publishes it later).
Errors are one ``AdministrationError`` line in the reader's language; nothing is changed then.
``within``: the one municipality a caller may change (None: any, the command line).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import psycopg

from gateway.administration.checks import checked_by as _by
from gateway.administration.checks import checked_id as _id
from gateway.administration.checks import fail as _fail
from gateway.administration.errors import AdministrationError
from gateway.administration.homes import assign_device_outcome, bluetooth_address, device_kind
from gateway.administration.transactions import committed as _committed
from gateway.api.i18n import gettext as _
from gateway.hub_config import ConfigPublisher, publish_hub_config
from gateway.settings import GatewaySettings
from gateway.store import administration as store
from gateway.store import household

# A hub measures a household, not a ward: the hub's configuration takes at most four residents.
MAX_RESIDENTS = 4
# The device kinds whose measurements carry a User Index (Blood Pressure Measurement 0x2A35, Weight
# Measurement 0x2A9D, Body Composition Measurement 0x2A9C); other kinds cannot tell users apart.
SHARED_KINDS: tuple[str, ...] = ("blood-pressure-cuff", "scale", "body-composition-scale")


@dataclass(frozen=True, slots=True)
class HouseholdChange:
    """Whether a change was made (False: it was so already) and whether the hub's new config reached
    the broker (False: the broker was away or none was given; the config job sends it)."""

    changed: bool
    published: bool


def _hub(conn: psycopg.Connection[Any], hub_id: str, within: str | None) -> store.HubRecord:
    hub = store.hub_record(conn, hub_id)
    if hub is None or (within is not None and hub.municipality_id != within):
        raise _fail(_("There is no hub %(hub)s.", hub=hub_id))
    if hub.revoked_at is not None:
        raise _fail(_("Hub %(hub)s is revoked: it serves no one.", hub=hub_id))
    return hub


def _resident_ids(conn: psycopg.Connection[Any], hub_id: str) -> list[str]:
    return [r.patient_id for r in household.hub_residents(conn, hub_id)]


def _changed(
    conn: psycopg.Connection[Any], publisher: ConfigPublisher | None, hub: store.HubRecord
) -> HouseholdChange:
    return HouseholdChange(True, publish_hub_config(conn, publisher, hub.municipality_id, hub.id))


# --- residents ------------------------------------------------------------------------------------


def add_resident(
    conn: psycopg.Connection[Any],
    hub_id: str,
    patient_id: str,
    *,
    by: str,
    publisher: ConfigPublisher | None,
    within: str | None = None,
    client: str | None = None,
) -> HouseholdChange:
    """The patient lives with the hub from now: the hub measures them too, and ingest accepts their
    readings from it. A patient lives in one home at a time."""
    hub_id, patient_id, by = _id(hub_id), _id(patient_id), _by(by)
    with _committed(conn):
        hub = _hub(conn, hub_id, within)
        patient = store.patient_record(conn, patient_id)
        if patient is None or patient.municipality_id != hub.municipality_id:
            raise _fail(_("There is no patient %(patient)s.", patient=patient_id))
        residents = _resident_ids(conn, hub_id)
        if patient_id in residents:
            return HouseholdChange(False, True)
        home = household.home_of(conn, patient_id)
        if home is not None:
            raise _fail(
                _(
                    "Patient %(patient)s lives with hub %(hub)s: remove them there first.",
                    patient=patient_id,
                    hub=home,
                )
            )
        if len(residents) >= MAX_RESIDENTS:
            raise _fail(_("A hub measures at most %(count)d residents.", count=MAX_RESIDENTS))
        household.insert_resident(conn, hub.municipality_id, hub_id, patient_id, by)
        store.bump_config_version(conn, hub_id)
        store.audit_administration(
            conn, by, hub.municipality_id, "hub-resident-add", [patient_id], hub_id, client=client
        )
    return _changed(conn, publisher, hub)


def remove_resident(
    conn: psycopg.Connection[Any],
    hub_id: str,
    patient_id: str,
    *,
    by: str,
    publisher: ConfigPublisher | None,
    within: str | None = None,
    client: str | None = None,
) -> HouseholdChange:
    """The patient no longer lives with the hub: their user slots on its shared devices go with them,
    and ingest refuses their readings from it. Their own devices must be removed first; the patient the
    hub was enrolled for stays (revoke the hub instead)."""
    hub_id, patient_id, by = _id(hub_id), _id(patient_id), _by(by)
    with _committed(conn):
        hub = _hub(conn, hub_id, within)
        if patient_id == hub.patient_id:
            raise _fail(
                _(
                    "Hub %(hub)s was enrolled for patient %(patient)s, who stays with it: revoke the hub"
                    " instead.",
                    hub=hub_id,
                    patient=patient_id,
                )
            )
        own = household.personal_devices(conn, hub_id, patient_id)
        if own:
            raise _fail(
                _(
                    "Patient %(patient)s still has device %(device)s on hub %(hub)s: remove it first.",
                    patient=patient_id,
                    device=own[0],
                    hub=hub_id,
                )
            )
        if not household.remove_resident(conn, hub_id, patient_id, by):
            return HouseholdChange(False, True)
        slots = household.remove_device_users(conn, hub_id, patient_id, by)
        store.bump_config_version(conn, hub_id)
        detail = hub_id + (f" (user slots on {', '.join(slots)} removed)" if slots else "")
        store.audit_administration(
            conn, by, hub.municipality_id, "hub-resident-remove", [patient_id], detail, client=client
        )
    return _changed(conn, publisher, hub)


# --- user slots of a shared device ----------------------------------------------------------------


def _shared_device(conn: psycopg.Connection[Any], device_id: str, within: str | None) -> store.DeviceRecord:
    device = store.device_record(conn, device_id)
    if (
        device is None
        or device.removed_at is not None
        or (within is not None and device.municipality_id != within)
    ):
        raise _fail(_("There is no device %(device)s.", device=device_id))
    if device.kind not in SHARED_KINDS:
        raise _not_shareable(device.kind)
    return device


def _not_shareable(kind: str) -> AdministrationError:
    return _fail(
        _(
            "A %(kind)s cannot tell its users apart; only %(kinds)s can be shared.",
            kind=kind,
            kinds=", ".join(SHARED_KINDS),
        )
    )


def assign_user(
    conn: psycopg.Connection[Any],
    device_id: str,
    patient_id: str,
    user_index: int,
    *,
    by: str,
    publisher: ConfigPublisher | None,
    within: str | None = None,
    client: str | None = None,
) -> HouseholdChange:
    """User slot ``user_index`` (1-254, as set on the device) of the shared device is the resident's:
    the hub gives them the measurements the device sends with that index. A resident has one slot on
    a device (assigning another moves them); a slot taken by another resident is refused."""
    device_id, patient_id, by = _id(device_id), _id(patient_id), _by(by)
    if not 1 <= user_index <= 254:
        raise _fail(_("A User Index is 1 to 254 (255 means an unknown user)."))
    with _committed(conn):
        device = _shared_device(conn, device_id, within)
        hub = _hub(conn, device.hub_id, within)
        if patient_id not in _resident_ids(conn, hub.id):
            raise _fail(
                _(
                    "Patient %(patient)s does not live with hub %(hub)s: add them as a resident first.",
                    patient=patient_id,
                    hub=hub.id,
                )
            )
        slots = household.device_users(conn, device_id)
        if slots.get(user_index) == patient_id:
            return HouseholdChange(False, True)
        other = slots.get(user_index)
        if other is not None:
            raise _fail(
                _(
                    "User %(index)d of device %(device)s is patient %(other)s's: remove it first.",
                    index=user_index,
                    device=device_id,
                    other=other,
                )
            )
        household.set_device_user(conn, device.municipality_id, device_id, user_index, patient_id, by)
        store.bump_config_version(conn, hub.id)
        detail = f"{device_id} user {user_index} on {hub.id}"
        store.audit_administration(
            conn, by, hub.municipality_id, "device-user-assign", [patient_id], detail, client=client
        )
    return _changed(conn, publisher, hub)


def unassign_user(
    conn: psycopg.Connection[Any],
    device_id: str,
    patient_id: str,
    *,
    by: str,
    publisher: ConfigPublisher | None,
    within: str | None = None,
    client: str | None = None,
) -> HouseholdChange:
    """The resident's slot on the shared device is free again: its measurements with that index wait on
    the hub for someone to claim them, and ingest refuses the device's readings for the resident."""
    device_id, patient_id, by = _id(device_id), _id(patient_id), _by(by)
    with _committed(conn):
        device = _shared_device(conn, device_id, within)
        hub = _hub(conn, device.hub_id, within)
        slots = household.device_users(conn, device_id)
        if patient_id not in slots.values():
            return HouseholdChange(False, True)
        if set(slots.values()) == {patient_id} and device.patient_id not in _resident_ids(conn, hub.id):
            # The device would be nobody's: the hub could not read it for anyone.
            raise _fail(
                _("Device %(device)s would measure no resident: remove the device instead.", device=device_id)
            )
        household.remove_device_users(conn, hub.id, patient_id, by, device_id)
        store.bump_config_version(conn, hub.id)
        store.audit_administration(
            conn,
            by,
            hub.municipality_id,
            "device-user-remove",
            [patient_id],
            f"{device_id} on {hub.id}",
            client=client,
        )
    return _changed(conn, publisher, hub)


def share_device(
    conn: psycopg.Connection[Any],
    settings: GatewaySettings,
    hub_id: str,
    patient_id: str,
    kind: str,
    address: str,
    user_index: int,
    *,
    by: str,
    device_id: str | None = None,
    publisher: ConfigPublisher | None,
    within: str | None = None,
    client: str | None = None,
) -> tuple[str, HouseholdChange]:
    """``homewatch admin device assign --user-index``: the device at ``address`` on the hub (assigned to
    the resident first when the hub has none there) and the resident's slot on it; its id and the
    slot's change."""
    if device_kind(kind) not in SHARED_KINDS:
        raise _not_shareable(device_kind(kind))
    in_use = store.hub_device_at(conn, _id(hub_id), bluetooth_address(address))
    if in_use is None or in_use.removed_at is not None or (device_id is not None and in_use.id != device_id):
        assigned = assign_device_outcome(
            conn,
            settings,
            hub_id,
            patient_id,
            kind,
            address,
            by=by,
            device_id=device_id,
            publisher=publisher,
            within=within,
            client=client,
        )
        found = assigned.device_id
    else:
        found = in_use.id
    change = assign_user(
        conn, found, patient_id, user_index, by=by, publisher=publisher, within=within, client=client
    )
    return found, change
