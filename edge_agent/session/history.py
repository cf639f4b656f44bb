"""A device's record history, fetched exactly once through the Record Access Control Point (0x2A52).

The hub keeps, in the outbox's database, the key of the last record it stored for each device (a
glucose meter's sequence number; a CGM's time offset, per sensor session). On every connection it asks
for "report stored records >= last + 1" ("all" the first time), collects the records the device sends
(each glucose measurement with its context, matched by sequence number) in a :class:`RecordTransfer`
until the device's RACP response arrives, and then stores the readings of every record together with
the new last key in ONE outbox transaction.

All or nothing per transfer: a transfer that does not end in Success (link lost, an error response, no
answer) stores nothing, and the next connection asks again from the same key, so a record is never
skipped and never stored twice, across link drops and hub restarts alike. No assumption about the
order in which a device sends its records is needed, and a live reading interleaved with a back-fill
is simply one more record of it. The price is that a transfer cut short is sent again in full; at
BLE rates that is seconds for a meter's whole memory.

The transfer does no I/O: the session (:mod:`edge_agent.session.device`) writes the request, feeds the
values in and stores the outcome.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import Any

from edge_agent.ble.errors import RecordTransferError
from edge_agent.gatt.racp import (
    NumberOfStoredRecords,
    RacpOpCode,
    RacpResponse,
    RacpResponseCode,
    report_all_records,
    report_records_from,
)
from fhir_contract.readings import Reading

logger = logging.getLogger(__name__)

# The RACP operand is a uint16: a history whose last key is this has nothing "after" it to ask for.
MAX_KEY = 0xFFFF
# A device that sends nothing (no record, no response) for this long has abandoned the transfer.
QUIET_TIMEOUT = 10.0


def history_request(last_key: int | None) -> bytes:
    """The request for everything after ``last_key``: "all" before the first transfer, else ">= last + 1"."""
    if last_key is None:
        return report_all_records()
    return report_records_from(min(last_key + 1, MAX_KEY))


@dataclass(slots=True)
class HistoryRecord:
    """One record received in a transfer: its key and its readings (still undated)."""

    key: int
    readings: list[Reading]
    context_pending: bool = False


@dataclass(slots=True)
class TransferOutcome:
    """What a finished transfer brought: its records in arrival order (empty when none were found)."""

    records: list[HistoryRecord] = field(default_factory=list)

    @property
    def last_key(self) -> int | None:
        return max((record.key for record in self.records), default=None)


class RecordTransfer:
    """One Report Stored Records procedure: records collected until the device answers.

    ``outcome()`` returns once the procedure ended in Success or No Records Found; it raises
    RecordTransferError for any other response, a lost link, or a device gone quiet.
    """

    def __init__(self, address: str, *, quiet_timeout: float = QUIET_TIMEOUT) -> None:
        self.address = address
        self._quiet_timeout = quiet_timeout
        self._records: dict[int, HistoryRecord] = {}  # by key; a record sent twice counts once
        self._answer: asyncio.Future[RacpResponse] = asyncio.get_running_loop().create_future()
        self._activity = asyncio.Event()

    @property
    def received(self) -> int:
        return len(self._records)

    def add(self, key: int, readings: list[Reading], *, context_follows: bool = False) -> None:
        """A measurement record of this transfer (its context, if announced, should follow)."""
        self._records[key] = HistoryRecord(key, readings, context_follows)
        self._activity.set()

    def add_context(self, key: int) -> None:
        """The context of record ``key`` arrived."""
        record = self._records.get(key)
        if record is None:
            logger.warning("%s: context for record %d, which was not sent", self.address, key)
        else:
            record.context_pending = False
        self._activity.set()

    def respond(self, response: RacpResponse | NumberOfStoredRecords) -> None:
        """The device's RACP indication."""
        if self._answer.done():
            logger.warning("%s: RACP response after the transfer ended: %s", self.address, response)
            return
        if isinstance(response, NumberOfStoredRecords):
            self._answer.set_exception(
                RecordTransferError(self.address, f"answered a record count ({response.count}) to a report")
            )
        else:
            self._answer.set_result(response)

    def lose(self) -> None:
        """The link dropped before the device answered."""
        if not self._answer.done():
            self._answer.set_exception(
                RecordTransferError(
                    self.address, f"link lost after {self.received} record(s); nothing stored"
                )
            )

    async def outcome(self) -> TransferOutcome:
        """Wait for the answer; the records when it is Success, none for No Records Found."""
        while not self._answer.done():
            self._activity.clear()
            active = asyncio.ensure_future(self._activity.wait())
            waits: set[asyncio.Future[Any]] = {self._answer, active}
            try:
                done, _ = await asyncio.wait(
                    waits, timeout=self._quiet_timeout, return_when=asyncio.FIRST_COMPLETED
                )
            finally:
                active.cancel()
            if not done:
                self._answer.set_exception(
                    RecordTransferError(
                        self.address,
                        f"no answer for {self._quiet_timeout:.0f} s after {self.received} record(s)",
                    )
                )
        response = self._answer.result()
        if response.request_op_code != RacpOpCode.REPORT_STORED_RECORDS:
            raise RecordTransferError(
                self.address, f"answered op code {response.request_op_code}", int(response.response_code)
            )
        if response.response_code is RacpResponseCode.NO_RECORDS_FOUND:
            return TransferOutcome()
        if response.response_code is not RacpResponseCode.SUCCESS:
            raise RecordTransferError(
                self.address,
                response.response_code.name.lower().replace("_", " "),
                int(response.response_code),
            )
        records = list(self._records.values())
        missing = [record.key for record in records if record.context_pending]
        if missing:
            logger.warning("%s: no context arrived for record(s) %s", self.address, missing)
        return TransferOutcome(records)
