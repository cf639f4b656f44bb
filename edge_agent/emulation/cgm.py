"""The CGM Service's own control point and session values for the emulated CGM (0x181F).

:class:`SpecificOpsControlPoint` answers CGM Specific Ops Control Point (0x2AAC) writes byte for byte
for the op codes a home CGM needs: Set/Get CGM Communication Interval (0x01/0x02, answered by 0x03),
Start Session (0x1A) and Stop Session (0x1B); every other op code is answered with Response Code 0x1C
"Op Code not supported". End-to-end CRC is not supported (CGM Feature says so with CRC 0xFFFF), so no
value carries a CRC. A write refused outright (SOCP indications off, a procedure still unanswered) is an
ATT error with the Core Specification Supplement's common codes, as the CGM Service asks.

:func:`session_start_time` writes the 9-byte CGM Session Start Time value. Sending the indications is
left to :mod:`edge_agent.emulation.peripheral`; this module only decides what to answer.
"""

from __future__ import annotations

import enum
import struct
from datetime import datetime

# Date Time (7 bytes), Time Zone (int8, 15-minute steps), DST Offset (uint8).
_SESSION_START_TIME = struct.Struct("<HBBBBBbB")
SESSION_START_TIME_SIZE = _SESSION_START_TIME.size  # 9
# Time Zone and DST Offset values the CGM Service defines as "unknown".
TIME_ZONE_UNKNOWN = -128
DST_OFFSET_UNKNOWN = 255
# ATT errors (Core Specification Supplement, Common Profile and Service Error Codes).
CCCD_IMPROPERLY_CONFIGURED = 0xFD
PROCEDURE_ALREADY_IN_PROGRESS = 0xFE
ATT_INVALID_ATTRIBUTE_LENGTH = 0x0D


class SocpOpcode(enum.IntEnum):
    SET_COMMUNICATION_INTERVAL = 0x01
    GET_COMMUNICATION_INTERVAL = 0x02
    COMMUNICATION_INTERVAL_RESPONSE = 0x03
    START_SESSION = 0x1A
    STOP_SESSION = 0x1B
    RESPONSE_CODE = 0x1C


class SocpResponse(enum.IntEnum):
    SUCCESS = 0x01
    OPCODE_NOT_SUPPORTED = 0x02
    INVALID_OPERAND = 0x03
    PROCEDURE_NOT_COMPLETED = 0x04
    PARAMETER_OUT_OF_RANGE = 0x05


def socp_response(request_opcode: int, value: SocpResponse) -> bytes:
    """Response Code (0x1C) with the request op code and the response value."""
    return bytes([SocpOpcode.RESPONSE_CODE, request_opcode, value])


def session_start_time(start: datetime, time_zone: int = 0, dst_offset: int = 0) -> bytes:
    """CGM Session Start Time: Date Time, Time Zone (15-min steps, -128 unknown), DST Offset."""
    return _SESSION_START_TIME.pack(
        start.year, start.month, start.day, start.hour, start.minute, start.second, time_zone, dst_offset
    )


class SpecificOpsControlPoint:
    """A CGM's session state and its answers to SOCP writes."""

    def __init__(self, *, communication_interval: int = 5, session_running: bool = True) -> None:
        # Minutes between measurement notifications; 0 stops periodic communication.
        self.communication_interval = communication_interval
        self.session_running = session_running
        self._pending = False

    def refusal(self, data: bytes, *, socp_indications: bool) -> int | None:
        """The ATT error code refusing this write, or None when it is accepted."""
        if not data:
            return ATT_INVALID_ATTRIBUTE_LENGTH
        if not socp_indications:
            return CCCD_IMPROPERLY_CONFIGURED
        if self._pending:
            return PROCEDURE_ALREADY_IN_PROGRESS
        return None

    def begin(self) -> None:
        """An accepted write is being answered; further writes are refused until :meth:`end`."""
        self._pending = True

    def end(self) -> None:
        self._pending = False

    def answer(self, data: bytes) -> bytes:
        """Carry out an accepted request and return the indication that answers it."""
        opcode, operand = data[0], data[1:]
        match opcode:
            case SocpOpcode.SET_COMMUNICATION_INTERVAL:
                if len(operand) != 1:
                    return socp_response(opcode, SocpResponse.INVALID_OPERAND)
                self.communication_interval = operand[0]
                return socp_response(opcode, SocpResponse.SUCCESS)
            case SocpOpcode.GET_COMMUNICATION_INTERVAL:
                if operand:
                    return socp_response(opcode, SocpResponse.INVALID_OPERAND)
                return bytes([SocpOpcode.COMMUNICATION_INTERVAL_RESPONSE, self.communication_interval])
            case SocpOpcode.START_SESSION:
                if self.session_running:
                    return socp_response(opcode, SocpResponse.PROCEDURE_NOT_COMPLETED)
                self.session_running = True
                return socp_response(opcode, SocpResponse.SUCCESS)
            case SocpOpcode.STOP_SESSION:
                self.session_running = False
                return socp_response(opcode, SocpResponse.SUCCESS)
        return socp_response(opcode, SocpResponse.OPCODE_NOT_SUPPORTED)


__all__ = [
    "SESSION_START_TIME_SIZE",
    "SocpOpcode",
    "SocpResponse",
    "SpecificOpsControlPoint",
    "session_start_time",
    "socp_response",
]
