"""Device Information service (0x180A): the strings and the System ID that identify a sensor.

The six strings (0x2A29 Manufacturer Name, 0x2A24 Model Number, 0x2A25 Serial Number, 0x2A27 Hardware
Revision, 0x2A26 Firmware Revision, 0x2A28 Software Revision) are UTF-8 of any length without a
terminator; some devices pad them with NULs, which are stripped. Bytes that are not UTF-8 are a
ParseError.

System ID (0x2A23) is eight bytes, little-endian: a 40-bit manufacturer-defined identifier, then the
24-bit Organizationally Unique Identifier. Together they are the device's EUI-64 (OUI in the top 24
bits), which the HL7 PHD IG writes as upper-case hex pairs joined by dashes, "FE-ED-AB-EE-DE-AD-77-C3",
in Device.identifier (type SYSID). Building the Device resource is left to ``fhir_contract``'s users.
"""

from __future__ import annotations

from dataclasses import dataclass

from edge_agent.gatt._fields import FieldReader, FieldWriter, check_exact_length
from edge_agent.gatt.errors import ParseError

MANUFACTURER_NAME = "0x2A29 Manufacturer Name String"
MODEL_NUMBER = "0x2A24 Model Number String"
SERIAL_NUMBER = "0x2A25 Serial Number String"
HARDWARE_REVISION = "0x2A27 Hardware Revision String"
FIRMWARE_REVISION = "0x2A26 Firmware Revision String"
SOFTWARE_REVISION = "0x2A28 Software Revision String"
SYSTEM_ID = "0x2A23 System ID"

_SYSTEM_ID_LENGTH = 8  # manufacturer identifier (5) + OUI (3)


def parse_utf8_string(data: bytes, characteristic: str) -> str:
    """Decode a UTF-8 string characteristic, trailing NULs stripped; ParseError (naming
    ``characteristic``) if the bytes are not UTF-8."""
    try:
        return bytes(data).rstrip(b"\x00").decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ParseError(characteristic, f"byte {exc.start} is not valid UTF-8 ({exc.reason})") from exc


def encode_utf8_string(text: str) -> bytes:
    """Encode a string characteristic value (no terminator)."""
    return text.encode("utf-8")


def parse_manufacturer_name(data: bytes) -> str:
    """Parse a Manufacturer Name String (0x2A29)."""
    return parse_utf8_string(data, MANUFACTURER_NAME)


def parse_model_number(data: bytes) -> str:
    """Parse a Model Number String (0x2A24)."""
    return parse_utf8_string(data, MODEL_NUMBER)


def parse_serial_number(data: bytes) -> str:
    """Parse a Serial Number String (0x2A25)."""
    return parse_utf8_string(data, SERIAL_NUMBER)


def parse_hardware_revision(data: bytes) -> str:
    """Parse a Hardware Revision String (0x2A27)."""
    return parse_utf8_string(data, HARDWARE_REVISION)


def parse_firmware_revision(data: bytes) -> str:
    """Parse a Firmware Revision String (0x2A26)."""
    return parse_utf8_string(data, FIRMWARE_REVISION)


def parse_software_revision(data: bytes) -> str:
    """Parse a Software Revision String (0x2A28)."""
    return parse_utf8_string(data, SOFTWARE_REVISION)


@dataclass(frozen=True, slots=True)
class SystemId:
    """The value of 0x2A23: a 40-bit manufacturer identifier and a 24-bit OUI."""

    manufacturer_identifier: int
    organizationally_unique_identifier: int

    def __post_init__(self) -> None:
        if not 0 <= self.manufacturer_identifier < 1 << 40:
            raise ValueError(f"manufacturer identifier {self.manufacturer_identifier:#x} exceeds 40 bits")
        if not 0 <= self.organizationally_unique_identifier < 1 << 24:
            raise ValueError(f"OUI {self.organizationally_unique_identifier:#x} exceeds 24 bits")

    @property
    def eui64(self) -> str:
        """The EUI-64 as the PHD IG writes it: "FE-ED-AB-EE-DE-AD-77-C3" (OUI first)."""
        value = self.organizationally_unique_identifier << 40 | self.manufacturer_identifier
        return "-".join(f"{byte:02X}" for byte in value.to_bytes(8, "big"))


def parse_system_id(data: bytes) -> SystemId:
    """Parse a System ID (0x2A23) value; ParseError unless it is eight bytes."""
    characteristic = SYSTEM_ID
    check_exact_length(data, characteristic, _SYSTEM_ID_LENGTH, "manufacturer identifier and OUI")
    reader = FieldReader(data, characteristic)
    manufacturer = int.from_bytes(reader.raw(5), "little")  # Manufacturer Identifier, uint40
    oui = reader.uint24()  # Organizationally Unique Identifier, uint24
    return SystemId(manufacturer_identifier=manufacturer, organizationally_unique_identifier=oui)


def encode_system_id(system_id: SystemId) -> bytes:
    """Encode a System ID as its eight little-endian bytes."""
    writer = FieldWriter()
    writer.raw(system_id.manufacturer_identifier.to_bytes(5, "little"))
    writer.uint24(system_id.organizationally_unique_identifier, "OUI")
    return writer.to_bytes()
