"""One device's session with the hub: what each connection does, and what each value becomes.

A :class:`DeviceSession` is the :class:`~edge_agent.ble.link_session.LinkSession` of one configured
device and also its link's ``on_value``. Per connection, by its profile row
(:mod:`edge_agent.ble.profiles`):

1. ``on_connected``: read Current Time and judge the clock (:mod:`edge_agent.session.clock`); read a
   CGM's feature and session start.
2. ``on_subscribed``: fetch the record history (:mod:`edge_agent.session.history`) and store it with its
   new last key in one outbox transaction, or wait until the device has handed over what it stored (it
   sent nothing for ``settle`` seconds). Only then set a clock that is wrong, unset or unknown, where the
   profile and the device allow it. Values that arrived before are dated with the measured offset,
   values after on the new clock: by arrival, because the stamps of a clock that was ahead overlap the
   new clock's first minutes. Release the link of a device that sends nothing live.
3. ``on_value``: decode (:mod:`edge_agent.gatt`), date each reading with ``effective_time(..., correction)``
   (the device's own stamp stays the basis of the Observation identifier), build the Observation
   (:mod:`fhir_contract.observation`) and put it in the outbox. Bad bytes are counted and logged and
   never stop later values. A cuff's intermediate cuff pressure (0x2A36, subscribed only when the hub
   opts in) becomes ``preliminary`` Observations identified by their receipt time, and passes
   ``fhir_contract.status.should_send`` under the same opt-in.

Each Observation is about the resident the measurement belongs to (:mod:`edge_agent.household`): a
personal device's patient, or, on a device residents share, the resident of the User Index the
measurement carries. A shared device's measurement that no resident's index names is never guessed:
it goes to the store of unattributed readings (:mod:`edge_agent.unattributed`), not the outbox, until a
resident claims it on the patient view.

The outbox's unique identifier makes a stored reading a device sends again after a reconnection a
no-op; two equal readings taken a minute apart have different stamps and stay two.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from edge_agent import household
from edge_agent.ble.errors import BleError
from edge_agent.ble.link_session import LinkConnection
from edge_agent.ble.profiles import DeviceProfile
from edge_agent.clock_sync import ClockCorrection, correction_after_setting, steady_correction
from edge_agent.config import DeviceConfig, HubConfig
from edge_agent.gatt import ParseError, blood_pressure, cgm, decode, glucose, glucose_context, racp
from edge_agent.gatt.registry import (
    CGM_FEATURE_UUID,
    CGM_MEASUREMENT_UUID,
    CGM_SESSION_START_TIME_UUID,
    GLUCOSE_MEASUREMENT_CONTEXT_UUID,
    GLUCOSE_MEASUREMENT_UUID,
    INTERMEDIATE_CUFF_PRESSURE_UUID,
    RECORD_ACCESS_CONTROL_POINT_UUID,
)
from edge_agent.outbox import Outbox
from edge_agent.session.clock import measure_clock, set_clock
from edge_agent.session.history import RecordTransfer, history_request
from edge_agent.timing import effective_time
from edge_agent.unattributed import NOBODY, UnattributedReadings
from fhir_contract.observation import build_observation
from fhir_contract.readings import Reading
from fhir_contract.status import should_send

logger = logging.getLogger(__name__)


@dataclass(slots=True)
class AgentStats:
    """Counters of one hub agent, shared by its device sessions."""

    values_received: int = 0
    observations_stored: int = 0  # new rows in the outbox (or held in memory while its disk is full)
    parse_errors: int = 0
    receipt_time_used: int = 0  # readings dated by the hub because the device's stamp was missing or wrong
    clock_corrected: int = 0  # readings whose device stamp was shifted by the measured clock offset
    history_records: int = 0  # records stored from RACP transfers
    unattributed: int = 0  # shared-device measurements no resident's User Index named: held on the hub


class DeviceSession:
    """The per-connection steps and the value handling of one device."""

    def __init__(
        self,
        device: DeviceConfig,
        profile: DeviceProfile,
        *,
        hub: HubConfig,
        outbox: Outbox,
        stats: AgentStats,
        clock: Callable[[], datetime],
        correct_clock: bool = True,
        settle: float = 1.0,
        unattributed: UnattributedReadings | None = None,
    ) -> None:
        self.device = device
        self._unattributed = unattributed  # where a shared device's unclaimed measurements wait
        self.profile = profile
        self._hub = hub
        self._outbox = outbox
        self._stats = stats
        self._clock = clock
        self._zone = ZoneInfo(hub.timezone)
        self._correct_clock = correct_clock and profile.clock != "none"
        self._settle = settle
        self._last_value_at = 0.0  # monotonic
        self._correction: ClockCorrection | None = None  # of the current connection
        self._last_correction: ClockCorrection | None = None  # of the previous one
        self._crc = False  # CGM: measurements end in an E2E-CRC
        self._session_start: datetime | None = None  # CGM: naive, on the device clock
        self._transfer: RecordTransfer | None = None
        self._last_key: int | None = None  # last history record stored
        self._backfilled = False  # this connection's history transfer completed
        self._connection: LinkConnection | None = None  # the current connection, to report state on
        # Told (on the event loop) of the Observations each put stored, once they are durable: the
        # hub's reminders confirm a planned measurement with it (edge_agent.reminders).
        self.on_stored: Callable[[list[dict[str, Any]]], None] | None = None

    @property
    def correction(self) -> ClockCorrection | None:
        """The clock correction of the current (or last) connection."""
        return self._correction

    @property
    def progress_key(self) -> str:
        """Under which key the outbox keeps this device's history progress (per CGM sensor session)."""
        if self.profile.history != "time-offset":
            return self.device.id
        start = "unknown" if self._session_start is None else self._session_start.isoformat()
        return f"{self.device.id}#session-{start}"

    # -- LinkSession ------------------------------------------------------------------------------

    async def on_connected(self, connection: LinkConnection) -> None:
        self._connection = connection
        self._last_value_at = time.monotonic()
        self._backfilled = False
        self._transfer = None
        if self._correct_clock:
            await self._measure_clock(connection)
        if self.profile.history == "time-offset":
            await self._read_cgm_session(connection)

    async def on_subscribed(self, connection: LinkConnection) -> bool:
        if self.profile.history is not None:
            complete = await self._fetch_history(connection)
        else:
            complete = True
            if self._may_set_clock():
                await self._quiet()
        if complete and self._may_set_clock():
            await self._set_clock(connection)
        return self.profile.live

    async def on_disconnected(self) -> None:
        self._connection = None
        transfer, self._transfer = self._transfer, None
        if transfer is not None:
            transfer.lose()

    # -- the clock ----------------------------------------------------------------------------------

    async def _measure_clock(self, connection: LinkConnection) -> None:
        measured = await measure_clock(connection, self._clock, self._zone)
        if measured is None:
            self._correction = None
            return
        self._correction = steady_correction(self._last_correction, measured)
        self._last_correction = self._correction
        connection.report_clock(measured.status, measured.offset, was_set=False)

    def _may_set_clock(self) -> bool:
        correction = self._correction
        return (
            self.profile.clock == "read-and-set"
            and correction is not None
            and correction.needs_setting
            and not correction.clock_was_set
        )

    async def _quiet(self) -> None:
        """Return once no value came for ``settle`` seconds: the device has sent what it stored."""
        # A deadline that every value moves on: sleeping until it is simpler than an event per value.
        while (idle := time.monotonic() - self._last_value_at) < self._settle:  # noqa: ASYNC110
            await asyncio.sleep(self._settle - idle)

    async def _set_clock(self, connection: LinkConnection) -> None:
        measured = self._correction
        assert measured is not None
        if await set_clock(connection, self._clock, self._zone):
            self._correction = correction_after_setting(self._clock(), self._zone)
            self._last_correction = self._correction
            connection.report_clock(measured.status, measured.offset, was_set=True)

    # -- history ------------------------------------------------------------------------------------

    async def _read_cgm_session(self, connection: LinkConnection) -> None:
        if connection.has(CGM_FEATURE_UUID):
            try:
                self._crc = cgm.parse_cgm_feature(await connection.read(CGM_FEATURE_UUID)).e2e_crc
            except ParseError as exc:
                logger.warning("%s: unreadable CGM Feature: %s", connection.address, exc)
        self._session_start = None
        if connection.has(CGM_SESSION_START_TIME_UUID):
            data = await connection.read(CGM_SESSION_START_TIME_UUID)
            try:
                self._session_start = cgm.parse_cgm_session_start_time(data, crc=self._crc).start
            except ParseError as exc:
                logger.warning("%s: unreadable CGM Session Start Time: %s", connection.address, exc)

    async def _fetch_history(self, connection: LinkConnection) -> bool:
        """One transfer of everything after the stored last key; True when it completed."""
        self._last_key = await asyncio.to_thread(self._outbox.progress, self.progress_key)
        transfer = self._transfer = RecordTransfer(connection.address)
        try:
            await connection.write(RECORD_ACCESS_CONTROL_POINT_UUID, history_request(self._last_key))
            outcome = await transfer.outcome()
        except BleError as exc:  # refused, answered with an error, link lost, gone quiet: nothing stored
            resume = "the first record" if self._last_key is None else f"record {self._last_key + 1}"
            logger.warning("%s; the next connection asks again from %s", exc, resume)
            connection.report_error(exc)
            return False
        finally:
            if self._transfer is transfer:
                self._transfer = None
        if outcome.records:
            readings = [reading for record in outcome.records for reading in record.readings]
            last = max(outcome.last_key or 0, self._last_key or 0)
            stored = await self._store(readings, progress=last)
            self._stats.history_records += len(outcome.records)
            self._last_key = last
            logger.info(
                "%s: %d record(s) up to %d, %d new Observation(s)",
                connection.address,
                len(outcome.records),
                last,
                stored,
            )
        else:
            logger.info("%s: no records after %s", connection.address, self._last_key)
        self._backfilled = True
        connection.report_history(self._last_key)
        return True

    # -- values -------------------------------------------------------------------------------------

    async def on_value(self, uuid: str, data: bytes) -> None:
        """Decode one characteristic value and store its Observations durably."""
        self._stats.values_received += 1
        self._last_value_at = time.monotonic()
        try:
            await self._dispatch(uuid, data)
        except ParseError as exc:
            self._stats.parse_errors += 1
            logger.warning(
                "hub %s, device %s: %s (bytes %s)", self._hub.hub_id, self.device.id, exc, data.hex()
            )

    async def _dispatch(self, uuid: str, data: bytes) -> None:
        transfer = self._transfer
        if uuid == RECORD_ACCESS_CONTROL_POINT_UUID:
            response = racp.parse_racp_response(data)
            if transfer is None:
                logger.warning("%s: RACP response outside a transfer: %s", self.device.id, response)
            else:
                transfer.respond(response)
        elif uuid == GLUCOSE_MEASUREMENT_UUID:
            measurement = glucose.parse_glucose_measurement(data)
            key, readings = measurement.sequence_number, glucose.to_readings(measurement)
            if transfer is not None:
                transfer.add(key, readings, context_follows=measurement.context_follows)
            else:
                await self._store_live_record(key, readings)
        elif uuid == GLUCOSE_MEASUREMENT_CONTEXT_UUID:
            # The context qualifies its measurement (meal, tester); the contract carries no field for it.
            context = glucose_context.parse_glucose_measurement_context(data)
            if transfer is not None:
                transfer.add_context(context.sequence_number)
        elif uuid == CGM_MEASUREMENT_UUID:
            for record in cgm.parse_cgm_measurements(data, crc=self._crc):
                readings = cgm.to_readings([record], self._session_start)
                if transfer is not None:
                    transfer.add(record.time_offset, readings)
                else:
                    await self._store_live_record(record.time_offset, readings)
        elif uuid == INTERMEDIATE_CUFF_PRESSURE_UUID:
            # decode() gives no readings for 0x2A36 (a progress value); here the hub asked for them.
            cuff = blood_pressure.parse_intermediate_cuff_pressure(data)
            index = household.user_index(uuid, data) if self.device.shared else None
            await self._store(blood_pressure.to_readings(cuff), preliminary=True, user_index=index)
        else:
            readings = decode(uuid, data)
            index = household.user_index(uuid, data) if self.device.shared else None
            await self._store(readings, user_index=index)

    async def _store_live_record(self, key: int, readings: list[Reading]) -> None:
        """A record sent live. Once this connection's back-fill completed, nothing can lie between the
        stored last key and this one, so it moves the last key on; before, it is stored without."""
        if self._backfilled and (self._last_key is None or key > self._last_key):
            await self._store(readings, progress=key)
            self._last_key = key
            if self._connection is not None:
                self._connection.report_history(key)
        else:
            await self._store(readings)

    async def _store(
        self,
        readings: list[Reading],
        *,
        progress: int | None = None,
        preliminary: bool = False,
        user_index: int | None = None,
    ) -> int:
        received = self._clock()
        patient_id = household.patient_of(self.device, self._hub.patient_id, user_index)
        observations: list[dict[str, Any]] = []
        for reading in readings:
            when = effective_time(reading.device_time, received, self._zone, self._correction)
            if when.source.startswith("receipt"):
                self._stats.receipt_time_used += 1
            elif when.source == "device-corrected":
                self._stats.clock_corrected += 1
            observations.append(
                build_observation(
                    reading,
                    patient_id=NOBODY if patient_id is None else patient_id,
                    device_id=self.device.id,
                    hub_id=self._hub.hub_id,
                    effective=when.at,
                    received=received,
                    preliminary=preliminary,
                )
            )
        # The contract's delivery rule: a preliminary value is kept off the outbox unless the hub opted in.
        send_preliminary = self._hub.send_intermediate_cuff_pressure
        observations = [obs for obs in observations if should_send(obs, send_preliminary=send_preliminary)]
        if not observations and progress is None:
            return 0
        if patient_id is None:
            await self._hold(observations, user_index, preliminary=preliminary)
            observations = []
            if progress is None:
                return 0
        marker = None if progress is None else (self.progress_key, progress)
        # SQLite with synchronous=FULL waits for the disk: off the event loop.
        added = await asyncio.to_thread(self._outbox.put, observations, progress=marker)
        self._stats.observations_stored += added
        if self.on_stored is not None and observations:
            self.on_stored(observations)
        return added

    async def _hold(
        self, observations: list[dict[str, Any]], index: int | None, *, preliminary: bool
    ) -> None:
        """Keep a shared device's measurement no resident's index named until one claims it."""
        if not observations or preliminary:  # a value still being measured is nobody's to claim
            return
        if self._unattributed is None:
            logger.warning(
                "hub %s, device %s: a measurement with user index %s names no resident and is dropped"
                " (no store of unattributed readings)",
                self._hub.hub_id,
                self.device.id,
                index,
            )
            return
        pending = await asyncio.to_thread(self._unattributed.add, self.device.id, index, observations)
        self._stats.unattributed += 1
        logger.info(
            "hub %s, device %s: measurement with user index %s names no resident; held as %d until claimed",
            self._hub.hub_id,
            self.device.id,
            index,
            pending,
        )
