"""Helpers for the hub agent's integration tests: device bytes, a hub config, and an MQTT sink that keeps
every Observation the hub publishes.

Bytes are written with the encoders of :mod:`edge_agent.gatt`, which the parser tests round-trip field by
field; the devices are real Bumble peripherals and the broker a real process (``broker`` fixture).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import orjson
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from edge_agent.agent import HubAgent
from edge_agent.ble.connection import LinkPolicy
from edge_agent.config import DeviceConfig, DeviceKind, HubConfig, MqttConfig
from edge_agent.emulation.clock import DeviceClock
from edge_agent.emulation.peripheral import EmulatedPeripheral
from edge_agent.gatt.blood_pressure import BloodPressureMeasurement, encode_blood_pressure_measurement
from edge_agent.gatt.cgm import CgmMeasurement, encode_cgm_measurement
from edge_agent.gatt.glucose import (
    GlucoseMeasurement,
    GlucoseType,
    SampleLocation,
    encode_glucose_measurement,
)
from edge_agent.gatt.glucose_context import (
    GlucoseMeasurementContext,
    Meal,
    encode_glucose_measurement_context,
)
from edge_agent.gatt.health_thermometer import (
    TemperatureMeasurement,
    TemperatureType,
    encode_temperature_measurement,
)
from edge_agent.gatt.pulse_oximeter import PlxSpotCheckMeasurement, encode_plx_spot_check_measurement
from edge_agent.gatt.weight_scale import WeightMeasurement, encode_weight_measurement
from gateway.broker import BrokerEndpoint

ZONE = ZoneInfo("Europe/Copenhagen")
PATIENT = "p1"
HUB = "hub1"

# Emulated devices advertise every 20 ms and answer in about a millisecond, so everything is short.
FAST = LinkPolicy(
    scan_timeout=0.5,
    connect_timeout=1.0,
    max_attempts=3,
    backoff_base=0.02,
    backoff_cap=0.1,
    idle_retry=0.3,
    drain_timeout=1.0,
    idle_release=0.1,
    revisit_after=0.1,
    settle=0.05,
)


Devices = Sequence[tuple[str, EmulatedPeripheral, DeviceKind]]
#: The ``start_agent`` fixture: ``await start_agent(devices, max_connections=..., policy=...)``.
StartAgent = Callable[..., Awaitable[HubAgent]]


def local_now() -> datetime:
    """The true local wall time in the hub's zone (naive), what a correct device clock shows."""
    return datetime.now(ZONE).replace(tzinfo=None)


def correct_clock() -> DeviceClock:
    return DeviceClock.correct(local_now)


def stamp(device: EmulatedPeripheral, ago: timedelta = timedelta(0)) -> datetime:
    """A time stamp on the device's own clock, whole seconds (Date Time has no fractions)."""
    return (device.device_now() - ago).replace(microsecond=0)


def blood_pressure(systolic: int, diastolic: int, pulse: int, when: datetime) -> bytes:
    mean = round((systolic + 2 * diastolic) / 3)
    return encode_blood_pressure_measurement(
        BloodPressureMeasurement(
            systolic=Decimal(systolic),
            diastolic=Decimal(diastolic),
            mean_arterial_pressure=Decimal(mean),
            time_stamp=when,
            pulse_rate=Decimal(pulse),
        )
    )


def spo2(percent: int, pulse: int, when: datetime) -> bytes:
    return encode_plx_spot_check_measurement(
        PlxSpotCheckMeasurement(spo2=Decimal(percent), pulse_rate=Decimal(pulse), time_stamp=when)
    )


def weight(kg: str, when: datetime) -> bytes:
    return encode_weight_measurement(WeightMeasurement(weight=Decimal(kg), time_stamp=when))


def temperature(celsius: str, when: datetime) -> bytes:
    return encode_temperature_measurement(
        TemperatureMeasurement(
            temperature=Decimal(celsius), time_stamp=when, temperature_type=TemperatureType.TYMPANUM
        )
    )


def glucose(sequence: int, when: datetime, mg_dl: int, *, context: bool = False) -> bytes:
    """A capillary whole-blood reading from a finger, in kg/L as meters send it (mg/dL x 10^-5)."""
    return encode_glucose_measurement(
        GlucoseMeasurement(
            sequence_number=sequence,
            base_time=when,
            concentration=Decimal(mg_dl).scaleb(-5),
            glucose_type=GlucoseType.CAPILLARY_WHOLE_BLOOD,
            sample_location=SampleLocation.FINGER,
            context_follows=context,
        )
    )


def glucose_context(sequence: int) -> bytes:
    return encode_glucose_measurement_context(
        GlucoseMeasurementContext(sequence_number=sequence, meal=Meal.PREPRANDIAL)
    )


def add_glucose_history(
    meter: EmulatedPeripheral, sequences: Sequence[int], *, hours_ago: int = 48
) -> list[datetime]:
    """Records with these sequence numbers, an hour apart from ``hours_ago`` hours back (on the meter's
    clock); odd ones with a context. Returns their stamps."""
    start = stamp(meter, timedelta(hours=hours_ago))
    stamps = []
    for sequence in sequences:
        with_context = sequence % 2 == 1
        when = start + timedelta(hours=sequence)
        meter.add_record(
            sequence,
            glucose(sequence, when, 80 + sequence, context=with_context),
            glucose_context(sequence) if with_context else None,
        )
        stamps.append(when)
    return stamps


def cgm_reading(offset: int, mg_dl: int) -> bytes:
    return encode_cgm_measurement(CgmMeasurement(glucose=Decimal(mg_dl), time_offset=offset))


def hub_config(
    tmp_path: Path,
    broker: BrokerEndpoint,
    devices: Sequence[tuple[str, EmulatedPeripheral, DeviceKind]],
    *,
    max_connections: int = 7,
    send_intermediate_cuff_pressure: bool = False,
) -> HubConfig:
    return HubConfig(
        municipality="0101",
        hub_id=HUB,
        patient_id=PATIENT,
        devices=tuple(DeviceConfig(id=i, address=p.address, kind=k) for i, p, k in devices),
        # No gateway in these tests: a plain subscriber reads what arrives, so rows go at the PUBACK.
        mqtt=MqttConfig(host=broker.host, port=broker.port, mqtt5=broker.mqtt5, delete_after="broker"),
        outbox_path=tmp_path / "outbox.sqlite3",
        timezone=str(ZONE),
        max_connections=max_connections,
        send_intermediate_cuff_pressure=send_intermediate_cuff_pressure,
    )


@dataclass(frozen=True, slots=True)
class Seen:
    """One published Observation, reduced to what the tests check."""

    identifier: str
    device: str
    kind: str
    value: tuple[Any, str] | None  # (value, UCUM unit)
    components: dict[str, Any]  # LOINC code -> value, for panels
    effective: datetime


def _seen(resource: dict[str, Any]) -> Seen:
    identifier = resource["identifier"][0]["value"]
    device = resource["device"]["reference"].removeprefix("Device/")
    kind = identifier.removeprefix(f"{device}-{PATIENT}-").rsplit("-", 1)[0]
    quantity = resource.get("valueQuantity")
    components = {
        c["code"]["coding"][0]["code"]: c["valueQuantity"]["value"]
        for c in resource.get("component", [])
        if "valueQuantity" in c
    }
    return Seen(
        identifier=identifier,
        device=device,
        kind=kind,
        value=None if quantity is None else (quantity["value"], quantity["unit"]),
        components=components,
        effective=datetime.fromisoformat(resource["effectiveDateTime"]),
    )


class ObservationSink:
    """A QoS 1 MQTT subscriber that keeps every Observation the hub publishes, in arrival order."""

    def __init__(self, broker: BrokerEndpoint) -> None:
        self._lock = threading.Lock()
        self._seen: list[Seen] = []
        self._resources: list[dict[str, Any]] = []
        ready = threading.Event()
        protocol = mqtt.MQTTv5 if broker.mqtt5 else mqtt.MQTTv311
        self._client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id="agent-test-sink", protocol=protocol
        )
        self._client.on_connect = lambda client, *_: client.subscribe("homewatch/v1/+/+/observations", qos=1)
        self._client.on_subscribe = lambda *_: ready.set()
        self._client.on_message = self._on_message
        self._client.connect(broker.host, broker.port)
        self._client.loop_start()
        if not ready.wait(5):
            raise RuntimeError("the test subscriber did not get its SUBACK")

    def _on_message(self, _client: object, _userdata: object, message: mqtt.MQTTMessage) -> None:
        bundle = orjson.loads(message.payload)
        with self._lock:
            self._seen += [_seen(entry["resource"]) for entry in bundle["entry"]]
            self._resources += [entry["resource"] for entry in bundle["entry"]]

    @property
    def seen(self) -> list[Seen]:
        with self._lock:
            return list(self._seen)

    @property
    def resources(self) -> list[dict[str, Any]]:
        """Every published Observation as sent, in arrival order."""
        with self._lock:
            return list(self._resources)

    def of(self, device: str, kind: str | None = None) -> list[Seen]:
        return [s for s in self.seen if s.device == device and (kind is None or s.kind == kind)]

    async def wait_for(self, condition: Callable[[ObservationSink], bool], within: float = 3.0) -> None:
        await eventually(lambda: condition(self), within)

    async def wait_count(self, device: str, count: int, within: float = 3.0) -> list[Seen]:
        await self.wait_for(lambda sink: len(sink.of(device)) >= count, within)
        return self.of(device)

    def close(self) -> None:
        self._client.disconnect()  # first: the network loop then ends at once, not at its 1 s timeout
        self._client.loop_stop()


async def eventually(condition: Callable[[], bool], within: float = 3.0) -> None:
    """Wait until ``condition()`` holds, polling: MQTT messages arrive on paho's thread."""
    async with asyncio.timeout(within):
        while not condition():  # noqa: ASYNC110
            await asyncio.sleep(0.005)


def duplicates(seen: Sequence[Seen]) -> list[str]:
    """Identifiers published more than once."""
    identifiers = [s.identifier for s in seen]
    return sorted({i for i in identifiers if identifiers.count(i) > 1})
