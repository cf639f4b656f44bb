"""Issue 20's "Done when": docs/municipality.md followed step by step, as written, on a real Mosquitto and
the gateway.

The test reads the document's command blocks and runs them in order in bash, each block's environment
carried into the next (so ``export`` and ``set -a; . gateway.env`` work as in one shell). The two
long-running commands, ``homewatch gateway serve`` and ``homewatch edge run``, are started in the
background (the hub with ``--emulate``, as the document says for a trial without the patient's devices).
Only ``$DIR`` and the three ports are chosen here, as the document allows. Between the steps the test
looks at what a person would: the invited nurse's worklist and the patient's readings, the administrator's
fleet view, and after ``hub revoke`` that the hub is refused by the broker and nothing more is stored.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import partial
from http.cookies import SimpleCookie
from pathlib import Path

import httpx
import paho.mqtt.client as mqtt
import psutil
import pytest
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

from gateway.broker import free_port, mosquitto_binary

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "municipality.md"
PLUGIN = Path("/usr/lib/x86_64-linux-gnu/mosquitto_dynamic_security.so")
PATIENT, HUB, NURSE, ADMIN = "p-0412", "hub-0412", "anna@kk.example", "it@kk.example"
PASSWORD = "a long and private passphrase 7"

pytestmark = [
    pytest.mark.timeout(600),
    pytest.mark.skipif(
        mosquitto_binary() is None or not PLUGIN.exists(),
        reason="needs Debian's mosquitto with its dynamic-security plugin",
    ),
]


@dataclass(frozen=True, slots=True)
class Step:
    """One numbered section of the document: its heading and its command blocks."""

    heading: str
    blocks: tuple[str, ...]


def document_steps() -> list[Step]:
    """The document's sections with their fenced command blocks, up to the commands' reference."""
    text = DOC.read_text().split("\n## Commands", 1)[0]
    steps = [Step("preamble", tuple(re.findall(r"```\n(.*?)```", text.split("\n## ", 1)[0], re.S)))]
    for section in text.split("\n## ")[1:]:
        heading = section.splitlines()[0]
        steps.append(Step(heading, tuple(re.findall(r"```\n(.*?)```", section, re.S))))
    return steps


@dataclass
class Shell:
    """Runs the document's blocks as one bash session would: the environment carries over."""

    folder: Path
    env: dict[str, str]
    background: list[subprocess.Popen[bytes]] = field(default_factory=list)
    outputs: list[str] = field(default_factory=list)

    def run_block(self, block: str) -> str:
        lines = [line for line in block.strip().splitlines() if line.strip()]
        foreground: list[str] = []
        for line in lines:
            if line.startswith(("homewatch gateway serve", "homewatch edge run")):
                self._run(foreground)
                foreground = []
                self._start(line)
            else:
                foreground.append(self._adapt(line))
        return self._run(foreground)

    def _adapt(self, line: str) -> str:
        if line.startswith("chown ") and os.geteuid() != 0:
            return ":"  # the document: started as another user than root, skip the chown
        return line

    def _run(self, lines: list[str]) -> str:
        if not lines:
            return ""
        env_file = self.folder / ".env0"
        script = "set -euo pipefail\n" + "\n".join(lines) + f"\nenv -0 > {env_file}\n"
        done = subprocess.run(
            ["bash", "-c", script], env=self.env, capture_output=True, text=True, timeout=180
        )
        assert done.returncode == 0, f"{lines}\nstdout: {done.stdout}\nstderr: {done.stderr}"
        self.env = dict(item.split("=", 1) for item in env_file.read_text().split("\0") if "=" in item)
        self.outputs.append(done.stdout)
        return done.stdout

    def _start(self, line: str) -> None:
        name = "gateway" if line.startswith("homewatch gateway") else "hub"
        # The trial's hub: emulated devices, and its patient view on loopback (the kit serves it to the
        # home network on 8080).
        command = line + (" --emulate --patient-view 127.0.0.1:0" if name == "hub" else "")
        log = (self.folder / f"{name}.log").open("wb")
        self.background.append(
            subprocess.Popen(
                ["bash", "-c", f"exec {command}"],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        )

    def log(self, name: str) -> str:
        path = self.folder / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def stop(self) -> None:
        for process in reversed(self.background):
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
                try:
                    process.wait(timeout=60)
                except subprocess.TimeoutExpired:
                    os.killpg(process.pid, signal.SIGKILL)
                    process.wait()


class Browser:
    """A person at the web UI over plain http: cookies kept by hand, because the production cookies are
    ``Secure`` and httpx keeps those for https only (a browser treats 127.0.0.1 as secure)."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.cookies: dict[str, str] = {}

    def _send(self, method: str, path: str, **kwargs: object) -> httpx.Response:
        headers = {"Cookie": "; ".join(f"{k}={v}" for k, v in self.cookies.items())} if self.cookies else {}
        response = httpx.request(method, self.base + path, headers=headers, timeout=30, **kwargs)  # type: ignore[arg-type]
        for raw in response.headers.get_list("set-cookie"):
            cookie = SimpleCookie()
            cookie.load(raw)
            for name, morsel in cookie.items():
                self.cookies[name] = morsel.value
        return response

    def get(self, path: str) -> httpx.Response:
        return self._send("GET", path)

    def post(self, path: str, data: dict[str, str]) -> httpx.Response:
        return self._send("POST", path, data=data)

    def form_csrf(self, path: str) -> str:
        found = re.search(r'name="csrf" value="([^"]+)"', self.get(path).text)
        assert found is not None, path
        return found[1]

    def accept_invitation(self, link: str) -> None:
        path = link.removeprefix(self.base)
        response = self.post(
            path, {"csrf": self.form_csrf(path), "password": PASSWORD, "password2": PASSWORD}
        )
        assert response.status_code == 200, response.text

    def login(self, username: str) -> None:
        csrf = self.form_csrf("/login")
        response = self.post("/login", {"username": username, "password": PASSWORD, "csrf": csrf})
        assert response.status_code == 303, response.text


def wait_for(check: Callable[[], bool], timeout: float, what: str, shell: Shell) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(1)
    raise AssertionError(
        f"{what} within {timeout} s\n--- gateway\n{shell.log('gateway')[-3000:]}\n"
        f"--- hub\n{shell.log('hub')[-3000:]}"
    )


def answering(base: str) -> bool:
    try:
        return httpx.get(f"{base}/fhir/metadata", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def stored_readings(base: str, token: str) -> int:
    """How many of the patient's readings the FHIR API gives the nurse (her bearer token)."""
    response = httpx.get(
        f"{base}/fhir/Observation",
        params={"patient": PATIENT, "_summary": "count"},
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    )
    assert response.status_code == 200, response.text
    return int(response.json()["total"])


def any_readings(base: str, token: str) -> bool:
    return stored_readings(base, token) > 0


def access_token(base: str, username: str) -> str:
    response = httpx.post(
        f"{base}/login/access-token", data={"username": username, "password": PASSWORD}, timeout=30
    )
    assert response.status_code == 200, response.text
    return str(response.json()["access_token"])


def hub_row(shell: Shell) -> dict[str, object]:
    out = shell.run_block("homewatch admin hubs --municipality 0101 --json")
    rows = json.loads(out)
    return next(row for row in rows if row["hub_id"] == HUB)


def broker_accepts(shell: Shell, kit: Path) -> bool:
    """Whether the broker lets the hub in with the password and CA of its kit."""
    client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=MQTTProtocolVersion.MQTTv311)
    client.username_pw_set(HUB, (kit / "mqtt-password").read_text().strip())
    client.tls_set(ca_certs=str(kit / "ca.crt"))
    try:
        client.connect("127.0.0.1", int(shell.env["HUB_PORT"]), keepalive=10)
    except OSError:
        return False
    result: list[bool] = []
    client.on_connect = lambda c, u, f, reason, p: result.append(not reason.is_failure)
    deadline = time.monotonic() + 10
    while not result and time.monotonic() < deadline:
        client.loop(timeout=0.5)
    client.disconnect()
    return bool(result and result[0])


@pytest.fixture
def shell() -> Iterator[Shell]:
    # Not pytest's tmp_path: Mosquitto started as root drops to the mosquitto user, which must reach $DIR.
    folder = Path(tempfile.mkdtemp(prefix="homewatch-walkthrough-"))
    folder.chmod(0o755)
    env = {k: v for k, v in os.environ.items() if not k.startswith("HOMEWATCH_")}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHONPATH"] = str(ROOT)
    session = Shell(folder, env)
    try:
        yield session
    finally:
        session.stop()
        conf = folder / "srv" / "broker" / "mosquitto.conf"
        for process in psutil.process_iter(["cmdline"]):
            if str(conf) in " ".join(process.info["cmdline"] or []):
                process.terminate()
        shutil.rmtree(folder, ignore_errors=True)


def test_the_administrators_walkthrough_works_as_written(shell: Shell) -> None:
    steps = document_steps()
    steps = [s for s in steps[:1] + steps[1:] if s.heading == "preamble" or s.heading[0].isdigit()]
    assert [s.heading.split(".")[0] for s in steps[1:]] == [str(n) for n in range(1, 11)], steps
    ports = {"HUB_PORT": free_port(), "LOCAL_PORT": free_port(), "HTTP_PORT": free_port()}
    preamble = steps[0].blocks[0]
    preamble = re.sub(r"^export DIR=\S+", f"export DIR={shell.folder / 'srv'}", preamble, flags=re.M)
    for name, port in ports.items():
        preamble = re.sub(rf"^export {name}=\d+", f"export {name}={port}", preamble, flags=re.M)
    shell.run_block(preamble)
    base = f"http://127.0.0.1:{ports['HTTP_PORT']}"
    nurse, admin = Browser(base), Browser(base)
    kit = shell.folder / "srv" / "hubs" / HUB
    token = ""

    for step in steps[1:]:
        number = int(step.heading.split(".")[0])
        outputs = [shell.run_block(block) for block in step.blocks]
        if number == 3:  # the gateway started: it answers once migrated and connected
            wait_for(lambda: answering(base), 120, "the gateway answers", shell)
        elif number == 4:  # the invitations: the nurse and the administrator set their passwords
            links = dict(re.findall(r"^invited (\S+) .*\n^link .*: (\S+)$", "\n".join(outputs), re.M))
            assert {NURSE, ADMIN} <= set(links), outputs
            nurse.accept_invitation(links[NURSE])
            admin.accept_invitation(links[ADMIN])
            nurse.login(NURSE)
            admin.login(ADMIN)
            token = access_token(base, NURSE)
        elif number == 6:
            assert (kit / "hub.toml").exists() and (kit / "ca.crt").exists()
            assert (kit / "mqtt-password").stat().st_mode & 0o077 == 0
        elif number == 8:  # the hub runs: its readings reach the nurse's worklist
            wait_for(partial(any_readings, base, token), 180, "readings stored for the patient", shell)
            worklist = nurse.get("/")
            assert worklist.status_code == 200 and "Ane Hansen" in worklist.text
        elif number == 9:  # the fleet view: the hub online, on the command line and the page
            wait_for(lambda: hub_row(shell)["online"] is True, 60, "the hub online in the fleet", shell)
            fleet = admin.get("/admin/fleet")
            assert fleet.status_code == 200 and HUB in fleet.text
        elif number == 10:  # revoked: the broker refuses the hub and nothing more is stored
            assert not broker_accepts(shell, kit)
            time.sleep(3)
            before = stored_readings(base, token)
            time.sleep(10)
            assert stored_readings(base, token) == before
            assert hub_row(shell)["revoked"] is True
        if number == 8:
            assert broker_accepts(shell, kit)
