"""Errors of the hub's Bluetooth layer: one root, structured fields, no string matching.

Everything :mod:`edge_agent.ble.connection` raises or records derives from :class:`BleError` and carries
the device address plus the fields that say what went wrong. bleak's and Bumble's own exceptions are
translated at the boundary with ``raise ... from exc``; callers never parse messages. The Bumble backend
(:mod:`edge_agent.ble.bumble_backend`) is a bleak backend and therefore raises bleak's exceptions, which
the connection layer translates into these.
"""

from __future__ import annotations


class BleError(Exception):
    """Root of every error of the hub's Bluetooth layer."""

    def __init__(self, address: str, message: str) -> None:
        super().__init__(f"{address}: {message}")
        self.address = address


class DeviceNotFoundError(BleError):
    """A scan of ``scan_timeout`` seconds did not see the device advertise (asleep, out of range, off)."""

    def __init__(self, address: str, scan_timeout: float) -> None:
        super().__init__(address, f"not seen advertising within {scan_timeout:.1f} s")
        self.scan_timeout = scan_timeout


class ConnectAttemptError(BleError):
    """One connection attempt (connect, discovery, setup) failed; ``cause`` names the failure."""

    def __init__(self, address: str, cause: str) -> None:
        super().__init__(address, f"connection attempt failed: {cause}")
        self.cause = cause


class ConnectError(BleError):
    """Every one of ``attempts`` bounded connection attempts failed; ``last`` is the final failure.

    Advice: the device is usually asleep (health devices advertise only around a measurement); the
    link keeps trying on a slower schedule, so this is a state to show, not a crash.
    """

    def __init__(self, address: str, attempts: int, last: BleError) -> None:
        super().__init__(address, f"gave up after {attempts} attempts (last: {last})")
        self.attempts = attempts
        self.last = last


class CharacteristicMissingError(BleError):
    """The device does not expose a characteristic the link needs (wrong device kind or firmware)."""

    def __init__(self, address: str, uuid: str) -> None:
        super().__init__(address, f"characteristic {uuid} not found")
        self.uuid = uuid


class GattError(BleError):
    """A GATT operation failed; ``att_error`` is the ATT error code when the peer returned one."""

    def __init__(self, address: str, operation: str, uuid: str, att_error: int | None = None) -> None:
        code = "" if att_error is None else f" (ATT error 0x{att_error:02X})"
        super().__init__(address, f"{operation} of {uuid} failed{code}")
        self.operation = operation
        self.uuid = uuid
        self.att_error = att_error


class LinkLostError(BleError):
    """An established link dropped without the hub asking (battery pulled, out of range)."""

    def __init__(self, address: str) -> None:
        super().__init__(address, "link lost; reconnecting")


class ValueHandlerError(BleError):
    """The ``on_value`` callback raised for a received value; the link itself stays up."""

    def __init__(self, address: str, uuid: str, error: str) -> None:
        super().__init__(address, f"on_value for {uuid} raised {error}")
        self.uuid = uuid
        self.error = error


class ScanError(BleError):
    """The hub's one scan could not be started (adapter off, busy or missing); no device can be found."""

    def __init__(self, reason: str) -> None:
        super().__init__("hub radio", reason)
        self.reason = reason


class RecordTransferError(BleError):
    """A history transfer over the Record Access Control Point did not complete.

    ``response_code`` is the RACP Response Code Value the device answered (e.g. 0x04 operator not
    supported), or None when it never answered (``reason`` says why: link lost, timed out, malformed).
    Nothing of the transfer was stored; the next connection asks again from the same record.
    """

    def __init__(self, address: str, reason: str, response_code: int | None = None) -> None:
        code = "" if response_code is None else f" (RACP response code 0x{response_code:02X})"
        super().__init__(address, f"record transfer failed: {reason}{code}")
        self.reason = reason
        self.response_code = response_code


class SessionError(BleError):
    """The per-connection session (clock, history) failed unexpectedly; the link is released and retried."""

    def __init__(self, address: str, stage: str, error: str) -> None:
        super().__init__(address, f"session {stage} raised {error}")
        self.stage = stage
        self.error = error
