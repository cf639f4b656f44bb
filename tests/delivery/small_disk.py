"""A hub disk that really fills up, for the disk-full tests of the outbox.

Two ways, tried in this order; a test runs once with each (``MECHANISMS``) and the first skips, with
its reason, only where it cannot work:

- ``tmpfs``: a small tmpfs mounted on the test's directory, filled with a ballast file. SQLite gets
  ``ENOSPC`` from the kernel on whatever it writes (database file, WAL, shared memory), as on a hub
  whose SD card is full. Mounting needs CAP_SYS_ADMIN (root, as on the machines these tests are
  developed on); a loop-mounted image needs the same, so it is not offered as well. An unprivileged
  user namespace (``unshare -Urm``) could mount one too, but only for processes inside it, and the
  outbox lives in the test's own process.
- ``max-page-count``: SQLite's own ``PRAGMA max_page_count`` on the outbox's connection, which makes
  SQLite report SQLITE_FULL ("database or disk is full") exactly as on a full disk, wherever the tests
  run. It limits the database file only: the WAL can still grow, so this way the drain's deletions go
  through while the outbox is full (the tmpfs shows the harder case where they cannot either).

``fill(leave)`` leaves ``leave`` bytes of room; ``free()`` gives the space back (deletes the ballast, or
lifts the limit).
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from edge_agent.outbox import Outbox

MECHANISMS = ["tmpfs", "max-page-count"]
_NO_LIMIT = 1 << 30  # pages: SQLite's default max_page_count is 4,294,967,294; any large value does


class SmallDisk:
    """Where an outbox goes (``path``) and the means to fill and free its disk."""

    def __init__(self, mechanism: str, path: Path) -> None:
        self.mechanism = mechanism
        self.path = path
        self._ballast = path / "ballast"
        self._box: Outbox | None = None

    def attach(self, box: Outbox) -> None:
        """The outbox whose connection ``max-page-count`` limits (a tmpfs needs nothing)."""
        self._box = box

    @property
    def full_now(self) -> bool:
        """No room left at all (tmpfs only; a page limit has no free-space figure)."""
        return self.mechanism == "tmpfs" and self.available() == 0

    def available(self) -> int:
        stat = os.statvfs(self.path)
        return stat.f_bavail * stat.f_frsize

    def fill(self, leave: int) -> None:
        """Leave about ``leave`` bytes for the outbox to grow into."""
        if self.mechanism == "tmpfs":
            size = max(self.available() - leave, 0)
            try:
                with self._ballast.open("ab") as ballast:
                    block = b"\0" * (1 << 20)
                    while size > 0:
                        size -= ballast.write(block[: min(size, len(block))])
            except OSError as exc:  # the outbox took the rest meanwhile: full is what was asked for
                if exc.errno != errno.ENOSPC:
                    raise
        else:  # no free pages left inside the file (VACUUM), and only ``leave`` bytes to grow by
            self._pragma(lambda pages, page_size: pages + leave // page_size, vacuum=True)

    def free(self) -> None:
        """Give the space back."""
        if self.mechanism == "tmpfs":
            self._ballast.unlink(missing_ok=True)
        else:
            self._pragma(lambda _pages, _size: _NO_LIMIT)

    def _pragma(self, limit: Callable[[int, int], int], *, vacuum: bool = False) -> None:
        box = self._box
        assert box is not None, "attach(outbox) first: max_page_count is set on the outbox's connection"
        # The limit is a property of one connection, the outbox's own; set under its lock, between
        # two of its transactions. Test-only reach into the adapter: no production code sets it.
        with box._lock:
            db = box._db
            assert db is not None
            if vacuum:
                db.execute("VACUUM")
            pages = int(db.execute("PRAGMA page_count").fetchone()[0])
            page_size = int(db.execute("PRAGMA page_size").fetchone()[0])
            db.execute(f"PRAGMA max_page_count = {limit(pages, page_size)}")


def _mount_tmpfs(where: Path, size: int) -> str | None:
    """Mount a tmpfs of ``size`` bytes on ``where``; None when mounted, else why it could not be."""
    if os.geteuid() != 0:
        return "mounting a tmpfs needs root (CAP_SYS_ADMIN)"
    if shutil.which("mount") is None:
        return "no mount command"
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size},mode=0755", "tmpfs", str(where)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode:
        return f"mount -t tmpfs refused ({done.stderr.strip() or done.returncode}): no CAP_SYS_ADMIN here"
    return None


@contextlib.contextmanager
def small_disk(mechanism: str, tmp_path: Path, size: int) -> Iterator[SmallDisk]:
    """A disk of about ``size`` bytes for an outbox (``tmpfs``), or the test's own directory with a page
    limit to set (``max-page-count``). Skips a tmpfs test where mounting is impossible."""
    path = tmp_path / "disk"
    path.mkdir()
    if mechanism == "max-page-count":
        yield SmallDisk(mechanism, path)
        return
    why = _mount_tmpfs(path, size)
    if why is not None:
        pytest.skip(f"{why}; the max-page-count case of this test still runs")
    try:
        yield SmallDisk(mechanism, path)
    finally:
        if subprocess.run(["umount", str(path)], capture_output=True, check=False).returncode:
            subprocess.run(["umount", "-l", str(path)], capture_output=True, check=False)
