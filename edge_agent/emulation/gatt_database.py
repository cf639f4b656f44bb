"""Turn the profile table's rows into Bumble GATT attributes that behave like a real device's.

Bumble's server checks the ``*_REQUIRES_ENCRYPTION`` permissions but neither READABLE nor WRITEABLE: a
write to a read-only value would simply replace it. :func:`build_characteristic` therefore gives every
characteristic a value object whose read and write refuse what its properties do not allow (ATT errors
0x02 Read Not Permitted and 0x03 Write Not Permitted), and gives notifiable characteristics a CCCD of
its own, so that a characteristic requiring encryption also refuses subscriptions from an unbonded
central (ATT error 0x0F) instead of only refusing reads.

What a read returns and what a write does is passed in by the caller
(:mod:`edge_agent.emulation.peripheral`), as are the values of Device Information and Battery, built here
as :class:`~edge_agent.emulation.profiles.ServiceSpec` rows like every other service.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from bumble import att, gatt
from bumble.core import UUID
from bumble.device import Connection
from bumble.gatt_server import Server

from edge_agent.emulation.profiles import READ, CharacteristicSpec, Security, ServiceSpec

Reader = Callable[[Connection], bytes]
Writer = Callable[[Connection, bytes], None]
_Permissions = gatt.Characteristic.Permissions
_SUBSCRIBABLE = gatt.Characteristic.Properties.NOTIFY | gatt.Characteristic.Properties.INDICATE


@dataclass(frozen=True, slots=True)
class DeviceInformation:
    """Values of the Device Information service (0x180A)."""

    manufacturer: str = "Homewatch Emulation"
    model: str = "EMU-1"
    serial: str = "0000000"
    firmware: str = "1.0.0"


def uuid16(value: int) -> UUID:
    return UUID.from_16_bits(value)


def device_information_service(info: DeviceInformation) -> ServiceSpec:
    """Manufacturer Name, Model Number, Serial Number and Firmware Revision, all READ."""
    fields = (
        (0x2A29, info.manufacturer),
        (0x2A24, info.model),
        (0x2A25, info.serial),
        (0x2A26, info.firmware),
    )
    return ServiceSpec(0x180A, tuple(CharacteristicSpec(uuid, READ, text.encode()) for uuid, text in fields))


def battery_service(level: int) -> ServiceSpec:
    """Battery Level (READ, NOTIFY) holding ``level`` percent."""
    return ServiceSpec(
        0x180F, (CharacteristicSpec(0x2A19, READ | gatt.Characteristic.Properties.NOTIFY, bytes([level])),)
    )


def permissions(spec: CharacteristicSpec, *, encrypted: bool) -> gatt.Characteristic.Permissions:
    """READABLE/WRITEABLE from the properties, plus the encryption requirement where it applies."""
    result = _Permissions(0)
    if spec.properties & gatt.Characteristic.Properties.READ:
        result |= _Permissions.READABLE
        if encrypted:
            result |= _Permissions.READ_REQUIRES_ENCRYPTION
    if spec.properties & gatt.Characteristic.Properties.WRITE:
        result |= _Permissions.WRITEABLE
        if encrypted:
            result |= _Permissions.WRITE_REQUIRES_ENCRYPTION
    return result


def build_characteristic(
    spec: CharacteristicSpec,
    server: Server,
    *,
    read: Reader | None,
    write: Writer | None,
    require_bonding: bool = False,
) -> gatt.Characteristic[bytes]:
    """A Bumble characteristic for ``spec``; reads and writes its properties lack are refused.

    ``require_bonding`` adds the encryption requirement to a characteristic the table leaves open (the
    peripheral passes it for health-service characteristics only).
    """
    encrypted = spec.security is Security.ENCRYPTED or require_bonding
    properties = spec.properties

    def refuse_read(connection: Connection) -> bytes:
        raise att.ATT_Error(att.ErrorCode.READ_NOT_PERMITTED)

    def refuse_write(connection: Connection, value: bytes) -> None:
        raise att.ATT_Error(att.ErrorCode.WRITE_NOT_PERMITTED)

    readable = read is not None and bool(properties & gatt.Characteristic.Properties.READ)
    writable = write is not None and bool(properties & gatt.Characteristic.Properties.WRITE)
    value: gatt.CharacteristicValue[bytes] = gatt.CharacteristicValue(
        read=read if readable and read is not None else refuse_read,
        write=write if writable and write is not None else refuse_write,
    )
    characteristic: gatt.Characteristic[bytes] = gatt.Characteristic(
        uuid16(spec.uuid), properties, permissions(spec, encrypted=encrypted), value
    )
    if properties & _SUBSCRIBABLE:
        cccd_permissions = _Permissions.READABLE | _Permissions.WRITEABLE
        if encrypted:
            cccd_permissions |= _Permissions.WRITE_REQUIRES_ENCRYPTION
        characteristic.descriptors = [
            gatt.Descriptor(
                gatt.GATT_CLIENT_CHARACTERISTIC_CONFIGURATION_DESCRIPTOR,
                cccd_permissions,
                server.make_descriptor_value(characteristic),
            )
        ]
    return characteristic


__all__ = [
    "DeviceInformation",
    "Reader",
    "Writer",
    "battery_service",
    "build_characteristic",
    "device_information_service",
    "permissions",
    "uuid16",
]
