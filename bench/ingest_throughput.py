"""How fast the gateway ingests Observations end to end, next to the broker and PostgreSQL alone.

All parts are real: a Mosquitto started here on a free port, an embedded PostgreSQL with the schema
migrated and ``--hubs`` homes enrolled (one patient, hub and oximeter each, so messages come from many
topics), and payloads that are FHIR batch Bundles of ``--bundle-size`` valid contract Observations, as a
hub sends them, built before any clock starts. Figures in Observations/s:

- ingest: ``--workers`` ``IngestWorker`` processes (spawned, one each, on the same MQTT 5 shared
  subscription) take what one publisher process sends at QoS 1 as fast as the broker takes it; timed
  from the first publish to the commit of the last row (each worker notes when its committed count last
  moved; the database's ``count(*)`` is checked at the end). A fresh broker and database per run.
- raw broker: the same publisher and the same number of paho subscriber processes on the same shared
  subscription doing nothing but counting (paho acknowledges), first publish to last message received;
  best of ``BROKER_ROUNDS`` runs, as one lasts under a second.
- raw COPY: the same rows COPYed straight into ``observations`` (no staging, no key upsert, triggers
  off, no validation), a commit per batch of the worker's largest size (``--bundle-size`` x
  ``BATCH_MAX_MESSAGES``, what it takes when it is behind); and the same rows through
  ``repository.insert_observation_batch`` (COPY into staging, key upsert, move) for comparison.

The table gives the ratios ingest / raw broker and ingest / raw COPY, and checks the target (at least
10,000 Observations/s and at least a third of the raw broker rate) as PASS/FAIL text: it reports, it
does not assert. ``--profile`` instead runs one worker in this process under cProfile (its own thread
and paho's network thread) while the publisher sends, and prints the top functions and where the busy
time goes: MQTT receive, JSON parse, validation, authorisation, database, acknowledgements; then the
same stages timed without the profiler (which inflates Python-heavy code such as validation).

    .venv/bin/python bench/ingest_throughput.py [--observations 100000] [--workers 1 2 4]
        [--bundle-size 50] [--hubs 20] [--profile]
"""

from __future__ import annotations

import argparse
import cProfile
import io
import logging
import multiprocessing
import os
import pickle
import pstats
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from multiprocessing.context import SpawnContext
from multiprocessing.sharedctypes import Synchronized, SynchronizedArray
from multiprocessing.synchronize import Event
from pathlib import Path
from typing import Any

import orjson
import paho.mqtt.client as mqtt
import psycopg
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from psycopg import sql
from psycopg.conninfo import make_conninfo

from fhir_contract.observation import build_bundle, build_observation
from fhir_contract.readings import Quantity, Reading
from fhir_contract.validate import parse_bundle, validate_observation
from gateway.broker import BrokerEndpoint, EmbeddedBroker
from gateway.ingest.mqtt_ingest import BATCH_MAX_MESSAGES, RECEIVE_MAXIMUM, IngestWorker
from gateway.ingest.processing import OBSERVATIONS_SUBSCRIPTION, parse_topic, process_message
from gateway.settings import GatewaySettings
from gateway.store.embedded import EmbeddedPostgres
from gateway.store.enrolment import Home, HomeDevice, enroll_homes
from gateway.store.migrate import migrate
from gateway.store.partitions import ensure_partitions_for
from gateway.store.repository import (
    OBSERVATION_COLUMNS,
    DeliveredObservation,
    HubAssignment,
    Municipality,
    Patient,
    hub_assignments,
    insert_observation_batch,
)

MUNICIPALITY = "0101"
# Recent readings, so they land in monthly partitions the repository creates (not in the default one).
START = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(days=3)
TARGET_RATE = 10_000  # Observations/s on this 2-core machine (the target)
TARGET_BROKER_SHARE = 1 / 3  # ingest must reach at least this share of the raw broker rate
PUBLISH_WINDOW = 100  # the publisher's QoS 1 messages in flight (paho)
# The raw broker run lasts under a second, so one run is at the mercy of the machine's other work: the
# best of a few is the reference (a conservative one: the higher it is, the harder the 1/3 target).
BROKER_ROUNDS = 3
POLL_S = 0.25  # how often the parent looks at progress (sparse: it shares the 2 cores)
PROGRESS_POLL_S = 0.005  # how often a worker process notes its committed count (sets the end's precision)
READY_TIMEOUT_S = 30.0
UNPROFILED_MESSAGES = 400  # Bundles timed without the profiler (--profile)

Message = tuple[str, bytes]  # (topic, payload)


# --- workload -------------------------------------------------------------------------------------


def hub_id(n: int) -> str:
    return f"hub{n}"


def fresh_database(admin_url: str, name: str, hubs: int) -> str:
    """A new database ``name`` with the schema migrated and one patient per hub, with its oximeter."""
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    url = make_conninfo(admin_url, dbname=name)
    with psycopg.connect(url, autocommit=True) as conn:
        migrate(conn)
        homes = [
            Home(
                Patient(MUNICIPALITY, f"p{n}", f"Patient {n}"),
                hub_id(n),
                (HomeDevice(f"OXI{n}", "pulse-oximeter"),),
            )
            for n in range(hubs)
        ]
        enroll_homes(conn, [Municipality(MUNICIPALITY, "Bench")], homes)
    return url


def workload(
    count: int, bundle_size: int, hubs: int
) -> tuple[list[Message], list[tuple[str, dict[str, Any]]]]:
    """Bundles of ``bundle_size`` distinct Observations, each from one hub in turn (SpO2 and pulse
    alternating, one second apart per hub); and every (hub, Observation) for the COPY figures."""
    messages: list[Message] = []
    resources: list[tuple[str, dict[str, Any]]] = []
    sent_by_hub = [0] * hubs
    for first in range(0, count, bundle_size):
        n = (first // bundle_size) % hubs
        obs = []
        for _ in range(min(bundle_size, count - first)):
            i = sent_by_hub[n]
            sent_by_hub[n] += 1
            kind, value, unit = (
                ("spo2", 90 + i % 9, "%") if i % 2 == 0 else ("pulse-rate-oximeter", 60 + i % 30, "/min")
            )
            obs.append(
                build_observation(
                    Reading(kind, Quantity(Decimal(value), unit)),
                    patient_id=f"p{n}",
                    device_id=f"OXI{n}",
                    hub_id=hub_id(n),
                    effective=START + timedelta(seconds=i),
                )
            )
        messages.append(
            (f"homewatch/v1/{MUNICIPALITY}/{hub_id(n)}/observations", orjson.dumps(build_bundle(obs)))
        )
        resources.extend((hub_id(n), o) for o in obs)
    return messages, resources


def stored_count(url: str) -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT count(*) FROM observations").fetchone()
        return int(row[0]) if row else 0


# --- processes --------------------------------------------------------------------------------------


def mqtt5_client(client_id: str) -> mqtt.Client:
    return mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=MQTTProtocolVersion.MQTTv5)


def publisher(
    endpoint: BrokerEndpoint, path: str, ready: Event, go: Event, started: Synchronized[float]
) -> None:
    """Send every message of the pickled file at QoS 1 as fast as the broker acknowledges them."""
    messages: list[Message] = pickle.loads(Path(path).read_bytes())
    connected = threading.Event()
    acked = threading.Semaphore(0)
    client = mqtt5_client("bench-publisher")
    client.max_inflight_messages_set(PUBLISH_WINDOW)
    client.max_queued_messages_set(0)
    client.on_connect = lambda *_: connected.set()
    client.on_publish = lambda *_: acked.release()
    client.connect(endpoint.host, endpoint.port)
    client.loop_start()
    connected.wait(READY_TIMEOUT_S)
    ready.set()
    go.wait()
    started.value = time.monotonic()
    for topic, payload in messages:
        client.publish(topic, payload, qos=1)
    for _ in messages:
        acked.acquire()
    client.disconnect()
    client.loop_stop()


@dataclass(frozen=True, slots=True)
class Progress:
    """Shared with one run's consumer processes: per slot, a count and when it last moved."""

    count: SynchronizedArray[int]
    last: SynchronizedArray[float]
    batches: SynchronizedArray[int]


def ingest_worker(
    url: str, endpoint: BrokerEndpoint, group: str, slot: int, ready: Event, stop: Event, progress: Progress
) -> None:
    """One ``IngestWorker`` (its own process); notes its committed Observations (and rejections)."""
    logging.basicConfig(level=logging.WARNING)
    settings = GatewaySettings(
        environment="development",  # ingest only: no tokens to sign, so no secret to ask for
        database_url=url,
        mqtt_host=endpoint.host,
        mqtt_port=endpoint.port,
        mqtt_share_group=group,
    )
    worker = IngestWorker(settings, endpoint=endpoint, client_id=f"{group}-{slot}")
    worker.start()
    if not worker.wait_until_subscribed(READY_TIMEOUT_S):
        raise SystemExit(f"ingest worker {slot} did not subscribe")
    ready.set()
    done = 0
    while not stop.wait(PROGRESS_POLL_S):
        counters = worker.counters()
        now = counters.observations_stored + counters.duplicates + counters.observations_rejected
        if now != done:
            done = now
            progress.last[slot] = time.monotonic()
            progress.count[slot] = now
        progress.batches[slot] = counters.batches  # counted just after the commit's rows
    worker.stop()


def counting_subscriber(
    url: str, endpoint: BrokerEndpoint, group: str, slot: int, ready: Event, stop: Event, progress: Progress
) -> None:
    """A paho subscriber on the ingest's shared subscription that only counts (paho acknowledges)."""
    received = 0

    def on_connect(client: mqtt.Client, *_: object) -> None:
        client.subscribe(f"$share/{group}/{OBSERVATIONS_SUBSCRIPTION}", qos=1)

    def on_message(*_: object) -> None:
        nonlocal received
        received += 1
        progress.last[slot] = time.monotonic()
        progress.count[slot] = received

    client = mqtt5_client(f"{group}-{slot}")
    client.on_connect = on_connect
    client.on_subscribe = lambda *_: ready.set()
    client.on_message = on_message
    properties = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
    properties.ReceiveMaximum = RECEIVE_MAXIMUM  # as the ingest worker asks
    client.connect(endpoint.host, endpoint.port, clean_start=True, properties=properties)
    client.loop_start()
    stop.wait()
    client.disconnect()
    client.loop_stop()


Consumer = Callable[[str, BrokerEndpoint, str, int, Event, Event, Progress], None]


@dataclass(frozen=True, slots=True)
class Run:
    rate: float  # Observations/s, first publish to the last unit of progress
    done: int  # units of progress reached (Observations for ingest, messages for the raw broker)
    batches: int  # ingest batches committed (0 for the raw broker)


def timed_run(
    ctx: SpawnContext, url: str, payload_file: Path, consumer: Consumer, workers: int, expect: int, obs: int
) -> Run:
    """A fresh broker, ``workers`` consumer processes and the publisher: first publish to last progress."""
    progress = Progress(ctx.Array("q", workers), ctx.Array("d", workers), ctx.Array("q", workers))
    stop, go, publisher_ready = ctx.Event(), ctx.Event(), ctx.Event()
    readies = [ctx.Event() for _ in range(workers)]
    started = ctx.Value("d", 0.0)
    with EmbeddedBroker(prefer="mosquitto") as endpoint:
        group = f"bench{endpoint.port}"
        processes = [
            ctx.Process(target=consumer, args=(url, endpoint, group, slot, readies[slot], stop, progress))
            for slot in range(workers)
        ]
        sender = ctx.Process(
            target=publisher, args=(endpoint, str(payload_file), publisher_ready, go, started)
        )
        for process in [*processes, sender]:
            process.start()
        try:
            for event in [*readies, publisher_ready]:
                if not event.wait(READY_TIMEOUT_S):
                    raise RuntimeError("a bench process did not get ready")
            go.set()
            # Generous: a run that stalls is reported with what it reached, not waited for forever.
            deadline = time.monotonic() + 30 + obs / 1_000
            while sum(progress.count[:]) < expect and time.monotonic() < deadline:
                time.sleep(POLL_S)
            done = sum(progress.count[:])
            elapsed = max(progress.last[:]) - started.value
        finally:
            stop.set()
            for process in [*processes, sender]:
                process.join(15)
                if process.is_alive():
                    process.terminate()
    return Run(obs * done / expect / elapsed if elapsed > 0 else 0.0, done, sum(progress.batches[:]))


# --- PostgreSQL alone ---------------------------------------------------------------------------------


def copy_values(row: DeliveredObservation) -> tuple[object, ...]:
    """The row as ``OBSERVATION_COLUMNS`` (the JSON serialised as the repository does)."""
    o = row.observation
    components = orjson.dumps(o.components).decode() if o.components else None
    canonical_components = orjson.dumps(o.canonical_components).decode() if o.canonical_components else None
    return (
        row.municipality_id,
        o.identifier,
        o.patient_id,
        row.hub_id,
        o.device_id,
        o.kind,
        o.loinc,
        o.effective,
        o.value,
        o.unit,
        components,
        orjson.dumps(o.resource).decode(),
        o.canonical_value,
        o.canonical_unit,
        canonical_components,
    )


def copy_rate(url: str, rows: Sequence[DeliveredObservation], batch: int) -> float:
    """Rows/s COPYed straight into ``observations``: no staging, no key upsert, triggers off.

    The rows are turned into COPY values before the clock starts: this is PostgreSQL's side alone."""
    tuples = [copy_values(row) for row in rows]
    with psycopg.connect(url) as conn:
        with conn.transaction():  # the monthly partitions ingest would have made: not timed
            ensure_partitions_for(conn, (row.observation.effective for row in rows))
        # The key guard trigger (migration 0002) would upsert each row's key: raw means without it.
        conn.execute("SET session_replication_role = replica")
        conn.commit()
        started = time.perf_counter()
        for at in range(0, len(tuples), batch):
            with (
                conn.transaction(),
                conn.cursor() as cur,
                cur.copy(f"COPY observations ({', '.join(OBSERVATION_COLUMNS)}) FROM STDIN") as copy,
            ):
                for values in tuples[at : at + batch]:
                    copy.write_row(values)
        elapsed = time.perf_counter() - started
    return len(tuples) / elapsed


def repository_rate(url: str, rows: Sequence[DeliveredObservation], batch: int) -> float:
    """Rows/s through ``insert_observation_batch`` (COPY into staging, key upsert, move), a commit each."""
    with psycopg.connect(url) as conn:
        started = time.perf_counter()
        for at in range(0, len(rows), batch):
            with conn.transaction():
                insert_observation_batch(conn, rows[at : at + batch])
        elapsed = time.perf_counter() - started
    return len(rows) / elapsed


# --- profile ----------------------------------------------------------------------------------------


@contextmanager
def profiling_threads(profiles: list[cProfile.Profile]) -> Iterator[None]:
    """Run every thread started meanwhile under its own cProfile (cProfile sees one thread only)."""
    original = threading.Thread.run

    def run(self: threading.Thread) -> None:
        profile = cProfile.Profile()
        profile.enable()
        try:
            original(self)
        finally:
            profile.disable()
            profiles.append(profile)

    threading.Thread.run = run  # type: ignore[method-assign]
    try:
        yield
    finally:
        threading.Thread.run = original  # type: ignore[method-assign]


PAHO = "paho/mqtt/client.py"
VALIDATE = "fhir_contract/validate.py"
PROCESSING = "gateway/ingest/processing.py"
WORKER = "gateway/ingest/mqtt_ingest.py"
BATCH_STORE = "gateway/ingest/batch_store.py"
REPOSITORY = "gateway/store/repository.py"


def cumulative(stats: dict[Any, Any], where: str, name: str) -> float:
    """Cumulative seconds of the functions ``name`` in files ending with ``where``."""
    return float(
        sum(v[3] for (file, _, function), v in stats.items() if file.endswith(where) and function == name)
    )


PSYCOPG = "psycopg/connection.py"


def worker_split(stats: dict[Any, Any]) -> list[tuple[str, float]]:
    """Seconds of the worker thread's busy time (``BatchStore.handle`` and the acknowledgements) by
    stage; disjoint, the rest is 'other'."""
    parse = cumulative(stats, VALIDATE, "parse_bundle")
    validate = cumulative(stats, VALIDATE, "validate_observation")
    authorise = cumulative(stats, PROCESSING, "_authorisation_problem")
    decide = cumulative(stats, BATCH_STORE, "_decide")
    lookup = cumulative(stats, REPOSITORY, "hub_assignments")
    insert = cumulative(stats, REPOSITORY, "insert_observation_batch")
    store = cumulative(stats, BATCH_STORE, "_store")
    after = cumulative(stats, WORKER, "_after_commit")
    stages = [
        ("JSON parse (parse_bundle: orjson.loads)", parse),
        ("validation (fhir_contract.validate_observation)", validate),
        ("authorisation (patient, device, hub of each)", authorise),
        ("rest of process_message (topic, outcomes)", decide - lookup - parse - validate - authorise),
        ("DB: hub lookup query (hub_assignments)", lookup),
        ("DB: insert_observation_batch (COPY, keys, move)", insert),
        ("DB: quarantine, metrics row, commit", store - insert),
        ("acks + receipts (publish and ack calls)", after),
    ]
    handle = cumulative(stats, BATCH_STORE, "handle")
    stages.append(("other (batch bookkeeping)", handle - decide - store))
    return stages


def paho_split(stats: dict[Any, Any]) -> list[tuple[str, float]]:
    """Seconds of paho's network thread by what it did (its ``select`` is idle time)."""
    return [
        ("MQTT receive (socket read, packet parse, queue)", cumulative(stats, PAHO, "_packet_read")),
        ("MQTT send (PUBACKs and receipts onto the socket)", cumulative(stats, PAHO, "_packet_write")),
    ]


def profile_run(url: str, payload_file: Path, messages: int, obs: int) -> None:
    """One worker in this process under cProfile while the publisher process sends everything."""
    ctx = multiprocessing.get_context("spawn")
    profiles: list[cProfile.Profile] = []
    go, ready, started = ctx.Event(), ctx.Event(), ctx.Value("d", 0.0)
    with EmbeddedBroker(prefer="mosquitto") as endpoint, profiling_threads(profiles):
        settings = GatewaySettings(
            environment="development", database_url=url, mqtt_host=endpoint.host, mqtt_port=endpoint.port
        )
        worker = IngestWorker(settings, endpoint=endpoint, client_id="bench-profiled")
        worker.start()
        if not worker.wait_until_subscribed(READY_TIMEOUT_S):
            raise RuntimeError("the profiled worker did not subscribe")
        sender = ctx.Process(target=publisher, args=(endpoint, str(payload_file), ready, go, started))
        sender.start()
        ready.wait(READY_TIMEOUT_S)
        cpu_before = os.times()
        go.set()
        deadline = time.monotonic() + 60 + obs / 500
        while time.monotonic() < deadline:
            counters = worker.counters()
            if counters.messages_acked >= messages:
                break
            time.sleep(0.01)
        wall = time.monotonic() - started.value
        cpu_after = os.times()
        cpu = cpu_after.user + cpu_after.system - cpu_before.user - cpu_before.system
        worker.stop()
        sender.join(15)
    counters = worker.counters()
    stats = pstats.Stats(*profiles, stream=io.StringIO())
    raw: dict[Any, Any] = stats.stats  # type: ignore[attr-defined]
    stages = worker_split(raw)
    busy = sum(seconds for _, seconds in stages)
    waiting = cumulative(raw, PSYCOPG, "wait")
    stats.strip_dirs()
    stored = counters.observations_stored
    print(
        f"profiled: 1 worker in-process, {stored:,} Observations stored in {wall:.1f} s ="
        f" {stored / wall:,.0f}/s under cProfile, {counters.batches} batches; the process used"
        f" {cpu:.1f} s of CPU ({cpu / wall:.2f} cores, the profiler's own cost included)"
    )
    print(
        f"worker thread busy {busy:.1f} s ({busy / wall:.0%} of the wall time); wall-clock thread time,"
        " so it includes waiting for the GIL and for a core on a loaded machine"
    )
    print(f"{'worker thread, by stage':<56}{'seconds':>9}{'share':>8}")
    for name, seconds in stages:
        print(f"{name:<56}{seconds:>9.2f}{seconds / busy:>8.1%}")
    print(
        f"{'  DB rows above: waiting on PostgreSQL (psycopg wait)':<56}{waiting:>9.2f}{waiting / busy:>8.1%}"
    )
    print("paho network thread (share of the wall time)")
    for name, seconds in paho_split(raw):
        print(f"{name:<56}{seconds:>9.2f}{seconds / wall:>8.1%}")
    for order in ("cumulative", "tottime"):
        out = io.StringIO()
        stats.stream = out  # type: ignore[attr-defined]
        stats.sort_stats(order).print_stats(25)
        print(f"\n--- top functions by {order} time (worker and paho threads) ---")
        print(out.getvalue().strip("\n"))


def unprofiled_costs(url: str, messages: Sequence[Message], batch: int) -> None:
    """CPU per Observation of the worker's stages on one core without the profiler (which inflates
    Python-heavy code such as validation), on the same Bundles; the store as wall time per row."""
    sample = messages[:UNPROFILED_MESSAGES]
    max_bytes = GatewaySettings(environment="development", database_url=url).max_payload_bytes
    with psycopg.connect(url, autocommit=True) as conn:
        hubs = {(t.municipality_id, t.hub_id) for topic, _ in sample if (t := parse_topic(topic)) is not None}
        assignments = hub_assignments(conn, hubs)

    def lookup(municipality_id: str, hub: str) -> HubAssignment | None:
        return assignments.get((municipality_id, hub))

    def cpu(run: Callable[[str, bytes], object]) -> float:
        """Best of three passes (the first one also pays for warming the allocator and caches)."""
        best = float("inf")
        for _ in range(3):
            started = time.process_time()
            for topic, payload in sample:
                run(topic, payload)
            best = min(best, time.process_time() - started)
        return best

    parse = cpu(lambda _, payload: parse_bundle(payload, max_bytes))
    decide = cpu(lambda topic, payload: process_message(topic, payload, lookup, max_bytes))
    outcomes = [process_message(topic, payload, lookup, max_bytes) for topic, payload in sample]
    rows = [
        DeliveredObservation(o.source.municipality_id, o.source.hub_id, obs)
        for o in outcomes
        if o.source is not None
        for obs in o.accepted
    ]
    store = 1 / repository_rate(url, rows, batch)
    count = len(rows)
    print(f"\nwithout the profiler, one core, {count:,} of the same Observations (microseconds each):")
    print(f"{'JSON parse (parse_bundle), CPU':<56}{parse / count * 1e6:>9.1f}")
    rest = (decide - parse) / count * 1e6
    print(f"{'validation + authorisation (rest of process_message), CPU':<56}{rest:>9.1f}")
    print(f"{'insert_observation_batch + commit, wall (server included)':<56}{store * 1e6:>9.1f}")
    print(f"(batches of {batch:,} rows; the worker's own batches are at most this)")


# --- main -------------------------------------------------------------------------------------------


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def verdict(ingest: float, broker: float) -> str:
    misses = []
    if ingest < TARGET_RATE:
        misses.append(f"< {TARGET_RATE:,}/s")
    if ingest < TARGET_BROKER_SHARE * broker:
        misses.append("< 1/3 broker")
    return "PASS" if not misses else "FAIL (" + ", ".join(misses) + ")"


def report(
    results: list[tuple[int, Run, Run, int]], raw_copy: float, repository: float, batch: int, messages: int
) -> None:
    """The table: one row per path and worker count, ratios against the raw figures of the same run."""
    print(
        f"{'path':<44}{'workers':>8}{'Obs/s':>9}{'/broker':>9}{'/COPY':>7}{'msgs/batch':>11}{'stored':>9}"
        f"  target >= {TARGET_RATE:,}/s and >= 1/3 broker"
    )
    print(f"{'raw COPY into observations (no upsert)':<44}{'-':>8}{raw_copy:>9,.0f}{'':>9}{1:>7.2f}")
    print(f"{'insert_observation_batch (COPY + upsert)':<44}{'-':>8}{repository:>9,.0f}{'':>9}", end="")
    print(f"{repository / raw_copy:>7.2f}   ({batch:,} rows a commit for both)")
    for workers, ingest, broker, stored in results:
        per_batch = messages / ingest.batches if ingest.batches else 0.0
        print(f"{'raw broker (subscribers only count)':<44}{workers:>8}{broker.rate:>9,.0f}{1:>9.2f}")
        print(
            f"{'gateway ingest (IngestWorker processes)':<44}{workers:>8}{ingest.rate:>9,.0f}"
            f"{ingest.rate / broker.rate:>9.2f}{ingest.rate / raw_copy:>7.2f}{per_batch:>11.1f}{stored:>9,}"
            f"  {verdict(ingest.rate, broker.rate)}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--observations", type=int, default=100_000, help="Observations per run")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4], help="worker counts to run")
    parser.add_argument("--bundle-size", type=int, default=50, help="Observations per Bundle (message)")
    parser.add_argument("--hubs", type=int, default=20, help="enrolled homes the Bundles come from")
    parser.add_argument("--profile", action="store_true", help="profile one in-process worker instead")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    load_before = load()
    messages, resources = workload(args.observations, args.bundle_size, args.hubs)
    obs = len(resources)
    size = sum(len(payload) for _, payload in messages) / len(messages)
    with tempfile.TemporaryDirectory() as tmp, EmbeddedPostgres() as admin_url:
        payload_file = Path(tmp) / "messages.pickle"
        payload_file.write_bytes(pickle.dumps(messages))
        print(
            f"{obs:,} Observations in {len(messages):,} Bundles of {args.bundle_size} "
            f"({size / 1000:,.0f} kB each) from {args.hubs} hubs; load average before: {load_before}"
        )
        batch = args.bundle_size * BATCH_MAX_MESSAGES
        if args.profile:
            profile_run(fresh_database(admin_url, "profile", args.hubs), payload_file, len(messages), obs)
            unprofiled_costs(fresh_database(admin_url, "stages", args.hubs), messages, batch)
            print(f"load average after: {load()}")
            return
        rows = [DeliveredObservation(MUNICIPALITY, hub, validate_observation(o)) for hub, o in resources]
        # A fresh database for every figure: each starts from empty tables and indexes.
        repository = repository_rate(fresh_database(admin_url, "repository", args.hubs), rows, batch)
        raw_copy = copy_rate(fresh_database(admin_url, "copy", args.hubs), rows, batch)
        ctx = multiprocessing.get_context("spawn")
        results = []
        for workers in args.workers:
            broker = max(
                (
                    timed_run(ctx, admin_url, payload_file, counting_subscriber, workers, len(messages), obs)
                    for _ in range(BROKER_ROUNDS)
                ),
                key=lambda run: run.rate,
            )
            url = fresh_database(admin_url, f"ingest{workers}", args.hubs)
            ingest = timed_run(ctx, url, payload_file, ingest_worker, workers, obs, obs)
            results.append((workers, ingest, broker, stored_count(url)))
    report(results, raw_copy, repository, batch, len(messages))
    print(f"load average after: {load()} (2 cores, shared)")


if __name__ == "__main__":
    main()
