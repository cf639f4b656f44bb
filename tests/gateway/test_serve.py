"""``homewatch gateway serve``: as a subprocess with the embedded PostgreSQL and broker it starts,
answers /fhir/metadata and /metrics, and on SIGTERM exits 0 leaving nothing running; bad URLs and
unreachable services end with one line on stderr and exit code 2."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import orjson
import paho.mqtt.client as mqtt
import psutil
import psycopg
import pytest
from delivery.delivery_helpers import (
    HUB,
    MUNICIPALITY,
    PATIENT,
    enroll,
    needs_mosquitto,
    readings,
    stored_count,
    wait_for,
)
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from typer.testing import CliRunner

from fhir_contract.observation import build_bundle
from gateway.broker import BrokerEndpoint, free_port
from gateway.service import Gateway, GatewayError, GatewayOptions, parse_mqtt_url
from homewatch.cli import app

ROOT = Path(__file__).resolve().parents[2]
runner = CliRunner()


def wait_until_answering(process: subprocess.Popen[bytes], url: str, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            return False
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return True
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    return False


def test_serve_with_embedded_parts_answers_and_stops_cleanly_on_sigterm(tmp_path: Path) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("HOMEWATCH_DATABASE_URL", "HOMEWATCH_MQTT_URL")}
    env["PYTHONPATH"] = str(ROOT)
    log_path = tmp_path / "serve.log"
    with log_path.open("wb") as log_file:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "homewatch.cli",
                "gateway",
                "serve",
                "--port",
                str(port),
                "--workers",
                "2",
            ],
            stdout=log_file,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=ROOT,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        assert wait_until_answering(process, f"{base}/fhir/metadata", timeout=120), log_path.read_text()
        metadata = httpx.get(f"{base}/fhir/metadata", timeout=5).json()
        assert metadata["resourceType"] == "CapabilityStatement"
        metrics = httpx.get(f"{base}/metrics", timeout=5)
        assert metrics.status_code == 200
        assert metrics.headers["content-type"].startswith("text/plain; version=0.0.4")
        assert "# TYPE homewatch_ingest_messages_received_total counter" in metrics.text
        children = psutil.Process(process.pid).children(recursive=True)
        assert len(children) >= 2, children  # the ingest workers (and the broker)
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=60) == 0, log_path.read_text()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    output = log_path.read_text()
    assert "gateway stopped cleanly" in output
    # Workers, broker and multiprocessing's resource tracker end with it (the tracker a moment later).
    _, alive = psutil.wait_procs(children, timeout=10)
    assert not alive, output
    # The embedded PostgreSQL was stopped and its temporary folder removed.
    found = re.search(r"embedded PostgreSQL: \S*host=(\S+)", output)
    assert found is not None, output
    assert not Path(found[1]).exists()


@needs_mosquitto
def test_serve_with_external_urls_stores_scores_and_counts_readings(
    database_url: str, broker: BrokerEndpoint
) -> None:
    enroll(database_url)
    options = GatewayOptions(database_url, broker.url, workers=2, port=free_port())
    gateway = Gateway(options)
    try:
        gateway.start()
        publisher = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=MQTTProtocolVersion.MQTTv5)
        publisher.connect(broker.host, broker.port)
        publisher.loop_start()
        observations = readings(40)
        for i in range(0, 40, 10):
            info = publisher.publish(
                f"homewatch/v1/{MUNICIPALITY}/{HUB}/observations",
                orjson.dumps(build_bundle(observations[i : i + 10])),
                qos=1,
            )
            info.wait_for_publish(10)
        publisher.disconnect()
        publisher.loop_stop()
        assert wait_for(lambda: stored_count(database_url) == 40, timeout=30)

        def scored() -> bool:
            with psycopg.connect(database_url) as conn:
                row = conn.execute("SELECT count(*) FROM scores WHERE patient_id = %s", (PATIENT,)).fetchone()
            return row is not None and row[0] > 0

        assert wait_for(scored, timeout=30), "the scorer heard nothing over NOTIFY"
        text = httpx.get(f"{gateway.url}/metrics", timeout=5).text
        stored = [
            float(line.rsplit(" ", 1)[1])
            for line in text.splitlines()
            if line.startswith("homewatch_ingest_observations_stored_total{")
        ]
        assert sum(stored) == 40, text
    finally:
        gateway.stop()


def test_serve_bad_mqtt_url_is_one_line_and_exit_2() -> None:
    result = runner.invoke(app, ["gateway", "serve", "--mqtt-url", "http://broker:1883"])
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "mqtt://" in lines[0] and "Traceback" not in result.stderr


def test_serve_unreachable_database_is_one_line_and_exit_2() -> None:
    url = f"postgresql://postgres@127.0.0.1:{free_port()}/homewatch"
    result = runner.invoke(
        app,
        [
            "gateway",
            "serve",
            "--database-url",
            url,
            "--mqtt-url",
            "mqtt://127.0.0.1:1",
            "--port",
            str(free_port()),
        ],
    )
    assert result.exit_code == 2
    assert "cannot connect to the database" in result.stderr and "Traceback" not in result.stderr


def test_serve_unreachable_broker_is_one_line_and_exit_2(database_url: str) -> None:
    mqtt_url = f"mqtt://127.0.0.1:{free_port()}"
    result = runner.invoke(
        app,
        [
            "gateway",
            "serve",
            "--database-url",
            database_url,
            "--mqtt-url",
            mqtt_url,
            "--port",
            str(free_port()),
        ],
    )
    assert result.exit_code == 2
    assert "cannot reach the MQTT broker" in result.stderr and "Traceback" not in result.stderr


def test_mqtt_urls_name_host_port_tls_and_credentials() -> None:
    plain = parse_mqtt_url("mqtt://broker.example")
    secure = parse_mqtt_url("mqtts://gw%40x:s3cret@broker.example:8884")
    assert (plain.host, plain.port, plain.tls, plain.username) == ("broker.example", 1883, False, None)
    assert (secure.port, secure.tls, secure.username, secure.password) == (8884, True, "gw@x", "s3cret")
    for bad in ("tcp://broker:1883", "mqtt://", "mqtt://broker:99999", "mqtt://broker/topic"):
        with pytest.raises(GatewayError):
            parse_mqtt_url(bad)
