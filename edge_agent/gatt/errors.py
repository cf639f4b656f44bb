"""The one error of the GATT parsers: bytes that are not a valid value of a characteristic.

Every parser in ``edge_agent.gatt`` raises ``ParseError`` and nothing else for bad input (no
``IndexError`` or ``struct.error`` escapes). The error carries structured fields so that callers can
log or count failures per characteristic without matching on the message. Encoders, which take values
built by our own code, raise plain ``ValueError`` for values the format cannot carry.
"""

from __future__ import annotations


class ParseError(ValueError):
    """Bytes received for a GATT characteristic that do not form a valid value.

    ``characteristic`` names it as "<short UUID> <name>", e.g. "0x2A35 Blood Pressure Measurement";
    ``reason`` says what is wrong with the bytes.
    """

    characteristic: str
    reason: str

    def __init__(self, characteristic: str, reason: str) -> None:
        super().__init__(characteristic, reason)
        self.characteristic = characteristic
        self.reason = reason

    def __str__(self) -> str:
        return f"cannot parse {self.characteristic}: {self.reason}"
