"""The hub as a long-running service: one :class:`~edge_agent.agent.HubAgent`, its remote configuration and
its retained status, until asked to stop.

:class:`HubService` starts the agent with the local file's configuration merged with the last good remote
one (cached next to the outbox), applies each new retained ``config`` message (a changed effective
configuration restarts the agent in place: devices closed, publisher drained, outbox closed, then the new
agent; a bad message is logged and reported in the status and changes nothing), and republishes the
retained ``status`` every ``status_interval_s`` and when a device's state changes or the outbox's disk
fills or has room again (at most every :data:`MIN_STATUS_GAP_S`). It keeps one
:class:`~edge_agent.reminders.Reminders` per resident (``reminders``: the enrolled patient's;
``resident_reminders``: the others'), each fed every Observation the agent stores and counting only its
resident's, all speaking through one speaker; each runs while its resident has a measurement plan
(``HubConfig.plan_of``) and the voice is on. A config message that changes only the plans, the care
team's messages or the residents (:data:`LIVE_KEYS`) is applied without restarting the agent. With
``[patient_view] enabled`` it serves the patient view (:mod:`edge_agent.patient_view`) on the home
network as one more task, keeps the residents' recent readings for it (fed by the same hook as the
reminders) and puts what a resident sends there (answers, "contact my nurse", a claimed reading) into
the current agent's outbox.
:meth:`HubService.run` returns when its stop event is set; signals are the caller's business (``homewatch
edge run`` sets the event on SIGTERM/SIGINT).

Emulation (``[emulation]`` in the file, or ``--emulate``) is for tests and demos only: the configured
devices are replaced by Bumble-emulated peripherals of the same kinds on an in-process radio, each taking
a SYNTHETIC measurement every ``interval_s``. Nothing of it runs on a real hub, where bleak uses its
platform backend (BlueZ over D-Bus).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from edge_agent.agent import HubAgent
from edge_agent.announcements import Announcements
from edge_agent.ble.backend import BleBackend
from edge_agent.ble.connection import DeviceState, LinkPolicy
from edge_agent.config import DeviceConfig, EmulationConfig, HubConfig, HubConfigError
from edge_agent.patient_view import HubPort, HubUnavailable, LocalHistory, PatientViewServer, create_app
from edge_agent.patient_view.history import HistoryFeed
from edge_agent.reminders import Reminders, ReminderSettings, speaker_for
from edge_agent.remote_config import (
    RemoteConfig,
    RemoteConfigError,
    describe,
    load_cache,
    merge,
    parse_remote,
    save_cache,
)

log = logging.getLogger(__name__)

# A device that flaps (connect, drop, connect) must not flood the broker with retained status messages.
MIN_STATUS_GAP_S = 5.0
# What a config message may change without restarting the agent (no device, link or delivery depends on
# them): the plan (the reminders follow it), the care team's messages and the residents' names and
# questionnaires (the patient view reads the configuration on every page).
LIVE_KEYS = ("plan", "messages", "residents")
# How often device states are looked at for changes: cheap (a dict of immutable snapshots).
POLL_S = 0.5


def device_status(device: DeviceConfig, state: DeviceState | None) -> dict[str, Any]:
    """One device in the status message (pure)."""
    entry: dict[str, Any] = {"id": device.id, "kind": device.kind, "address": device.address}
    if state is None:
        return entry | {"connected": False}
    error = state.last_error
    return entry | {
        "connected": state.connected,
        "lastSeen": state.last_seen.isoformat() if state.last_seen else None,
        "battery": state.battery,
        "firmware": state.firmware,
        "model": state.model,
        "serial": state.serial,
        "clock": state.clock_status,
        "clockOffsetS": state.clock_offset.total_seconds() if state.clock_offset is not None else None,
        "errors": state.errors,
        "lastError": None if error is None else {"type": type(error).__name__, "message": str(error)},
    }


def _change_key(
    devices: list[dict[str, Any]], outbox_full: bool = False
) -> tuple[list[dict[str, Any]], bool]:
    """What counts as a state change: the outbox's disk filling or having room again, and everything of
    a device but ``lastSeen`` (which moves with each value)."""
    return [{k: v for k, v in d.items() if k != "lastSeen"} for d in devices], outbox_full


class HubService:
    """Runs one hub until ``stop`` is set: agent, remote configuration, status."""

    def __init__(
        self,
        local: HubConfig,
        *,
        backend: BleBackend | None = None,
        link_policy: LinkPolicy | None = None,
        correct_device_clocks: bool = True,
        emulate: bool = False,
        monotonic: Callable[[], float] = time.monotonic,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        """``now`` and ``sleep`` are the reminders' clock (a simulated one in tests)."""
        self.local = local
        self._backend = backend
        self._policy = link_policy
        self._correct_clocks = correct_device_clocks
        emulation = local.emulation or (EmulationConfig() if emulate else None)
        self._emulator = EmulatedDevices(emulation, local.timezone) if emulation is not None else None
        self._monotonic = monotonic
        self._payloads: asyncio.Queue[bytes] = asyncio.Queue()
        self._remote: RemoteConfig | None = None
        self._remote_payload: bytes | None = None
        self._config_error: dict[str, Any] | None = None
        self._status_fields: dict[str, Any] = {}
        self._last_key: tuple[list[dict[str, Any]], bool] | None = None
        self._last_status = float("-inf")
        self.agent: HubAgent | None = None
        self.config = local
        # Fed every stored reading from the start, so a plan that arrives later knows what was measured.
        # One speaker for every resident's reminders: it says one prompt at a time.
        self._speaker = speaker_for(local.voice)
        self.reminders = Reminders(self._speaker, ReminderSettings.from_config(local), now=now, sleep=sleep)
        # The other residents' reminders, by patient id (made when a resident appears in the config).
        self.resident_reminders: dict[str, Reminders] = {}
        # The running loops: patient id -> (the Reminders it runs, its task).
        self._reminding: dict[str, tuple[Reminders, asyncio.Task[None]]] = {}
        self._now = now
        self._sleep = sleep
        self._sync_residents()
        # The care team's messages, read aloud once each (the same speaker, the same clock).
        self.announcements = Announcements(
            self._speaker, Announcements.path_next_to(local.outbox_path), now=now, sleep=sleep
        )
        # The patient view (local only: the server's config cannot switch it on) and its memory.
        self.history: LocalHistory | None = None
        self.patient_view: PatientViewServer | None = None
        self._feed: HistoryFeed | None = None

    # -- life --------------------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        """Start, serve until ``stop`` is set, then stop cleanly."""
        cached = load_cache(self.local.remote_cache_path)
        if cached is not None:
            try:
                self.config = merge(self.local, cached[0])
                self._remote, self._remote_payload = cached
                log.info("hub %s: using the cached remote config %s", self.local.hub_id, describe(cached[0]))
            except RemoteConfigError as exc:
                log.error("hub %s: cached remote config ignored: %s", self.local.hub_id, exc)
        if self._emulator is not None:
            await self._emulator.start()
        try:
            await self._start_agent()
            await self._start_patient_view()
            self.announcements.follow(self.config)
            await self._serve(stop)
        finally:
            await self.announcements.close()
            await self._stop_patient_view()
            await self._stop_reminders()
            await self._stop_agent()
            await self._close_history()
            if self._emulator is not None:
                await self._emulator.close()

    async def _serve(self, stop: asyncio.Event) -> None:
        stopping = asyncio.create_task(stop.wait())
        try:
            while not stop.is_set():
                getting = asyncio.create_task(self._payloads.get())
                done, _ = await asyncio.wait(
                    {getting, stopping}, timeout=POLL_S, return_when="FIRST_COMPLETED"
                )
                if getting in done:
                    await self._apply(getting.result())
                else:
                    getting.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await getting
                self._tick()
        finally:
            stopping.cancel()

    async def _start_agent(self) -> None:
        config = self.config
        backend = self._backend
        if self._emulator is not None:
            config, backend = await self._emulator.take_over(config)
        agent = HubAgent(
            config, backend=backend, link_policy=self._policy, correct_device_clocks=self._correct_clocks
        )
        loop = asyncio.get_running_loop()
        agent.publisher.status_extra = lambda: self._status_fields

        def on_config(payload: bytes) -> None:  # paho's thread
            loop.call_soon_threadsafe(self._payloads.put_nowait, payload)

        agent.publisher.on_config = on_config
        for session in agent.sessions.values():
            session.on_stored = self._stored
        self.agent = agent
        self._last_key = None
        self._refresh_status_fields()
        self._sync_residents()  # before the devices: a resident's first readings count for their plan
        await agent.start()
        await self._follow_plan()
        log.info(
            "hub %s: agent started for patient %s with %d device(s)%s",
            config.hub_id,
            config.patient_id,
            len(config.devices),
            " (EMULATED devices)" if self._emulator is not None else "",
        )

    async def _stop_agent(self) -> None:
        agent, self.agent = self.agent, None
        if agent is not None:
            await agent.stop()
            log.info("hub %s: agent stopped", self.config.hub_id)

    # -- remote configuration ----------------------------------------------------------------------

    async def _apply(self, payload: bytes) -> None:
        hub = self.local.hub_id
        if payload == self._remote_payload:
            return
        if not payload:  # the server cleared its retained config: back to the local file
            remote, merged = None, self.local
        else:
            try:
                remote = parse_remote(payload)
                merged = merge(self.local, remote)
                if self._emulator is not None:
                    self._emulator.check(merged)
            except RemoteConfigError as exc:
                log.error("hub %s: rejected a config message: %s", hub, exc)
                self._config_error = {"field": exc.field, "reason": exc.reason, "at": _now_iso()}
                self._publish_status(force=True)
                return
        self._config_error = None
        self._remote, self._remote_payload = remote, payload
        if payload:
            save_cache(self.local.remote_cache_path, payload)
        else:
            self.local.remote_cache_path.unlink(missing_ok=True)
        if merged == self.config:
            log.info("hub %s: config message changes nothing", hub)
            self._publish_status(force=True)
            return
        unchanged = {key: getattr(self.config, key) for key in LIVE_KEYS}
        if merged.model_copy(update=unchanged) == self.config:
            changed = [key for key in LIVE_KEYS if getattr(merged, key) != getattr(self.config, key)]
            log.info("hub %s: applying new %s without a restart", hub, ", ".join(changed))
            self.config = merged
            await self._follow_plan()  # a resident's plan or name may have changed; the same is a no-op
            self.announcements.follow(merged)
            self._publish_status(force=True)
            return
        log.info(
            "hub %s: applying remote config %s; restarting the agent", hub, describe(remote) if remote else {}
        )
        self.config = merged
        await self._stop_agent()
        await self._start_agent()
        self.announcements.follow(merged)

    # -- what was stored; the patient view ---------------------------------------------------------

    def _stored(self, observations: list[dict[str, Any]]) -> None:
        """A device session stored these (on the loop): the reminders count them, the view keeps them."""
        for reminders in self._every_reminders().values():
            reminders.stored(observations)
        if self._feed is not None:
            self._feed.add(observations)  # the view's SQLite, off the loop

    async def _send(self, resources: list[dict[str, Any]]) -> int:
        """A resident's entries into the current agent's outbox (HubUnavailable while it restarts)."""
        agent = self.agent
        if agent is None:
            raise HubUnavailable("the hub's agent is restarting")
        added = await asyncio.to_thread(agent.outbox.put, resources)
        for task in (r for r in resources if r.get("resourceType") == "Task"):
            patient = str(task.get("for", {}).get("reference", "")).removeprefix("Patient/")
            self.announcements.contact_requested(self.config, patient)
        observations = [r for r in resources if r.get("resourceType") == "Observation"]
        for reminders in self._every_reminders().values():
            reminders.stored(observations)
        return added

    async def _start_patient_view(self) -> None:
        view = self.local.patient_view
        if not view.enabled:
            return
        self.history = LocalHistory(LocalHistory.path_next_to(self.local.outbox_path))
        self._feed = HistoryFeed(self.history)
        port = HubPort(
            config=lambda: self.config,
            send=self._send,
            history=self.history,
            # The store of unclaimed readings is the agent's (edge_agent.unattributed), when it keeps one.
            unattributed=lambda: getattr(self.agent, "unattributed", None),
            now=self._now,
        )
        server = PatientViewServer(create_app(port, view.secret()), view.host, view.port)
        await server.start()
        self.patient_view = server

    async def _stop_patient_view(self) -> None:
        server, self.patient_view = self.patient_view, None
        if server is not None:
            await server.stop()

    async def _close_history(self) -> None:
        feed, self._feed, self.history = self._feed, None, None
        if feed is not None:
            await feed.close()

    # -- reminders ---------------------------------------------------------------------------------

    def _every_reminders(self) -> dict[str, Reminders]:
        """Each resident's reminders by patient id, the enrolled patient's first."""
        return {self.config.patient_id: self.reminders} | self.resident_reminders

    def _sync_residents(self) -> None:
        """One Reminders for each resident other than the enrolled patient: made when they appear in
        the configuration (fed from then on), dropped when they leave it."""
        config = self.config
        others = [p for p in config.resident_ids if p != config.patient_id]
        for gone in set(self.resident_reminders) - set(others):
            del self.resident_reminders[gone]
        for patient in others:
            if patient not in self.resident_reminders:
                settings = ReminderSettings.from_config(config, patient)
                self.resident_reminders[patient] = Reminders(
                    self._speaker, settings, now=self._now, sleep=self._sleep
                )

    async def _follow_plan(self) -> None:
        """Run each resident's reminders while they have a plan and the voice is on, with their settings;
        stop those of a resident without a plan any more or who left."""
        self._sync_residents()
        following = self._every_reminders()
        for patient, (reminders, _) in list(self._reminding.items()):
            if following.get(patient) is not reminders or not self.config.speaks_for(patient):
                await self._stop_reminders(patient)
        for patient, reminders in following.items():
            if not self.config.speaks_for(patient):
                continue
            reminders.update(ReminderSettings.from_config(self.config, patient))
            running = self._reminding.get(patient)
            if running is None or running[1].done():
                task = asyncio.create_task(reminders.run(), name=f"reminders-{patient}")
                self._reminding[patient] = (reminders, task)
                log.info(
                    "hub %s: reminders on for %d planned measurement(s) of patient %s",
                    self.local.hub_id,
                    len(reminders.settings.items),
                    patient,
                )

    async def _stop_reminders(self, patient: str | None = None) -> None:
        """Stop the reminders of ``patient`` (None: everyone's)."""
        for key in [patient] if patient is not None else list(self._reminding):
            running = self._reminding.pop(key, None)
            if running is not None:
                running[1].cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await running[1]

    # -- status ------------------------------------------------------------------------------------

    def _refresh_status_fields(self) -> list[dict[str, Any]]:
        states = self.agent.device_states() if self.agent is not None else {}
        devices = [device_status(d, states.get(d.id)) for d in self.config.devices]
        self._status_fields = {
            "patientId": self.config.patient_id,
            "configVersion": self._remote.version if self._remote is not None else None,
            "configError": self._config_error,
            "emulated": self._emulator is not None,
            "devices": devices,
        }
        return devices

    def _tick(self) -> None:
        if self.agent is None:
            return
        key = _change_key(self._refresh_status_fields(), self.agent.outbox.full)
        now = self._monotonic()
        due = now - self._last_status >= self.config.status_interval_s
        changed = key != self._last_key and now - self._last_status >= MIN_STATUS_GAP_S
        if due or changed:
            self._publish_status(force=False, key=key)

    def _publish_status(self, *, force: bool, key: tuple[list[dict[str, Any]], bool] | None = None) -> None:
        if self.agent is None:
            return
        devices = self._refresh_status_fields()
        if self.agent.publisher.publish_status():
            self._last_status = self._monotonic()
            self._last_key = key if key is not None else _change_key(devices, self.agent.outbox.full)
        elif force:
            log.debug("hub %s: status not sent (offline); it goes out on connect", self.local.hub_id)


def _now_iso() -> str:
    return datetime.now().astimezone().isoformat(timespec="seconds")


class EmulatedDevices:
    """TESTS AND DEMOS ONLY: Bumble peripherals standing in for the configured devices."""

    SUPPORTED = ("blood-pressure-cuff", "pulse-oximeter", "scale", "thermometer")

    def __init__(self, config: EmulationConfig, timezone: str) -> None:
        self._config = config
        self._zone = ZoneInfo(timezone)
        self._radio: Any = None
        self._peripherals: dict[str, Any] = {}
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        from edge_agent.emulation.radio import HomeRadio

        self._radio = await HomeRadio("hub-emulation").start()

    def check(self, config: HubConfig) -> None:
        """RemoteConfigError when a device of ``config`` cannot be emulated."""
        for index, device in enumerate(config.devices):
            if device.kind not in self.SUPPORTED:
                raise RemoteConfigError(f"devices.{index}.kind", f"cannot emulate {device.kind!r}")

    async def take_over(self, config: HubConfig) -> tuple[HubConfig, BleBackend]:
        """The configuration with each device's address replaced by its emulated peripheral's."""
        from edge_agent.emulation.clock import DeviceClock
        from edge_agent.emulation.peripheral import create_peripheral

        devices = []
        for device in config.devices:
            if device.kind not in self.SUPPORTED:
                raise HubConfigError("emulation", "devices", f"cannot emulate {device.kind!r}")
            if device.id not in self._peripherals:
                clock = DeviceClock.correct(lambda: datetime.now(self._zone).replace(tzinfo=None))
                peripheral = await create_peripheral(self._radio, device.kind, clock=clock)
                self._peripherals[device.id] = peripheral
                users = tuple(sorted(device.users or ()))  # a shared device measures its users in turn
                self._tasks.append(asyncio.create_task(self._measure(device.kind, peripheral, users)))
                log.info("EMULATION: %s %s is %s", device.kind, device.id, peripheral.address)
            devices.append(device.model_copy(update={"address": self._peripherals[device.id].address}))
        return config.model_copy(update={"devices": tuple(devices)}), self._radio.backend

    async def _measure(self, kind: str, peripheral: Any, users: tuple[int, ...] = ()) -> None:
        count = 0
        while True:
            await asyncio.sleep(self._config.interval_s)
            count += 1
            user = users[(count - 1) % len(users)] if users else None
            await peripheral.measure(
                _synthetic_bytes(kind, count, peripheral.device_now().replace(microsecond=0), user),
                intermediate=_synthetic_inflation(kind),
            )

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._radio is not None:
            await self._radio.close()


def _synthetic_inflation(kind: str) -> list[bytes]:
    """A cuff's 0x2A36 cuff pressures while it inflates (sent only to a hub that subscribed to them)."""
    from edge_agent.gatt.blood_pressure import encode_intermediate_cuff_pressure

    if kind != "blood-pressure-cuff":
        return []
    return [encode_intermediate_cuff_pressure(Decimal(mmhg)) for mmhg in (40, 90, 140, 160)]


def _synthetic_bytes(kind: str, count: int, when: datetime, user: int | None = None) -> bytes:
    """A plausible SYNTHETIC reading of ``kind`` (values vary a little with ``count``); a cuff's or a
    scale's names ``user`` as its User Index (a device two residents share), and each user has a level
    of their own (systolic 120-124 for user 1, 128-132 for user 2, ...), so whose a reading is shows."""
    from edge_agent.gatt.blood_pressure import BloodPressureMeasurement, encode_blood_pressure_measurement
    from edge_agent.gatt.health_thermometer import TemperatureMeasurement, encode_temperature_measurement
    from edge_agent.gatt.pulse_oximeter import PlxSpotCheckMeasurement, encode_plx_spot_check_measurement
    from edge_agent.gatt.weight_scale import WeightMeasurement, encode_weight_measurement

    wobble = count % 5
    level = 0 if user is None else 8 * (user - 1) % 64
    if kind == "blood-pressure-cuff":
        return encode_blood_pressure_measurement(
            BloodPressureMeasurement(
                systolic=Decimal(120 + level + wobble),
                diastolic=Decimal(80),
                mean_arterial_pressure=Decimal(93),
                time_stamp=when,
                pulse_rate=Decimal(70 + wobble),
                user_id=user,
            )
        )
    if kind == "pulse-oximeter":
        return encode_plx_spot_check_measurement(
            PlxSpotCheckMeasurement(spo2=Decimal(95 + wobble % 3), pulse_rate=Decimal(70), time_stamp=when)
        )
    if kind == "scale":
        return encode_weight_measurement(
            WeightMeasurement(weight=Decimal("80.5") + level, time_stamp=when, user_id=user)
        )
    return encode_temperature_measurement(
        TemperatureMeasurement(temperature=Decimal("36.8") + Decimal(wobble) / 10, time_stamp=when)
    )
