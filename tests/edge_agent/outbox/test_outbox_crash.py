"""A hub killed outright (SIGKILL) in the middle of writing loses nothing it acknowledged: the outbox
opens, passes SQLite's integrity check, and holds every row whose ``put`` had returned."""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

from edge_agent.outbox import Outbox

ROOT = Path(__file__).resolve().parents[3]

# The child writes batches (as the agent does) and single readings, and prints each identifier only
# after the put that stored it has returned: what the parent reads is what the hub acknowledged.
_CHILD = """
import sys
from pathlib import Path
from edge_agent.outbox import Outbox

box = Outbox(Path(sys.argv[1]))
start = int(sys.argv[2])
i = start
while True:
    size = 1 if i % 3 == 0 else 20
    batch = [
        {"resourceType": "Observation", "identifier": [{"value": f"r{n}"}], "valueString": "x" * 300}
        for n in range(i, i + size)
    ]
    box.put(batch)
    sys.stdout.write("".join(f"r{n}\\n" for n in range(i, i + size)))
    sys.stdout.flush()
    i += size
"""


def _kill_while_writing(path: Path, start: int, rng: random.Random) -> list[str]:
    """Run a writer child, SIGKILL it after a random delay, return every identifier it acknowledged."""
    child = subprocess.Popen(
        [sys.executable, "-c", _CHILD, str(path), str(start)],
        stdout=subprocess.PIPE,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    stdout = child.stdout
    assert stdout is not None
    head = stdout.readline()  # it is writing now
    # Read while it runs: a full pipe would block the child in print() rather than in put().
    chunks: list[bytes] = []
    reader = threading.Thread(target=lambda: chunks.extend(iter(stdout.readline, b"")))
    reader.start()
    time.sleep(rng.uniform(0.05, 0.4))
    child.send_signal(signal.SIGKILL)
    reader.join()
    rest = b"".join(chunks)  # whatever it printed before dying is still in the pipe
    child.wait()
    assert child.returncode == -signal.SIGKILL
    return (head + rest).decode().split()


def test_sigkill_during_puts_keeps_every_acknowledged_row_and_a_sound_file(tmp_path: Path) -> None:
    path = tmp_path / "outbox.sqlite3"
    rng = random.Random(20261127)
    acknowledged: list[str] = []
    for _round in range(5):
        acknowledged += _kill_while_writing(path, start=len(acknowledged) + 10_000 * _round, rng=rng)
        with sqlite3.connect(path) as db:
            assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        box = Outbox(path)  # opens (and recovers the WAL) after every crash
        stored = {row.identifier for row in box.after(0, 10_000_000)}
        box.close()
        missing = [ident for ident in acknowledged if ident not in stored]
        assert not missing, f"{len(missing)} acknowledged rows lost, e.g. {missing[:5]}"
    assert len(acknowledged) > 500  # the kills really came in the middle of many puts
