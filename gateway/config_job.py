"""The config job: every ``config_publish_interval_s``, publish the retained configuration of each hub
whose published version lags its configuration.

An administrator's change publishes the hub's configuration at once (``gateway.administration``), but
the broker may be away just then, or the change made by a process without a publisher; the change is
then only counted (``hubs.config_version``) and this job, in the gateway, publishes it when it can. A
run reads the lagging hubs (``gateway.store.hub_config.lagging_hubs``, longest-waiting first) and
publishes each (``gateway.hub_config.publish_outcome``: row locked, published, marked, in one
transaction), and ends at the first hub the broker did not take: the others would fail the same way,
and the next run starts with them. One log line when publishing starts failing (WARNING, with the
reason) and one when it works again, not one per run. A database that is away only postpones the run.

``ConfigJob`` runs in its own thread, ``start`` / ``stop``; ``run_once`` is one run in the caller's
thread (tests). Left to others: the payload and the publisher (``gateway.hub_config``), starting and
stopping the job (``gateway.service``).
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass

import psycopg

from gateway.hub_config import ConfigPublisher, UnknownHub, publish_outcome
from gateway.store.hub_config import lagging_hubs

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ConfigRun:
    """One run: hubs found lagging, published, and why publishing stopped (None: it did not)."""

    lagging: int
    published: int
    failure: str | None


class ConfigJob:
    """Publishes lagging retained configurations at start and every ``interval_s`` after."""

    def __init__(self, database_url: str, publisher: ConfigPublisher, interval_s: float) -> None:
        self._database_url = database_url
        self._publisher = publisher
        self._interval_s = interval_s
        self._stopping = threading.Event()
        self._failing = False
        self._thread = threading.Thread(target=self._run, name="config-publisher", daemon=True)
        self.runs = 0
        self.last: ConfigRun | None = None

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        self._stopping.set()
        if self._thread.is_alive():
            self._thread.join(timeout=timeout)

    def run_once(self) -> ConfigRun:
        """Publish every lagging hub's configuration, until the first the broker does not take."""
        published = 0
        failure: str | None = None
        with psycopg.connect(self._database_url, autocommit=True) as conn:
            lagging = lagging_hubs(conn)
            for municipality_id, hub_id in lagging:
                if self._stopping.is_set():
                    break
                try:
                    outcome = publish_outcome(conn, self._publisher, municipality_id, hub_id)
                except UnknownHub:
                    continue  # moved or gone since it was listed
                if outcome.failure is not None:
                    failure = outcome.failure
                    break
                published += outcome.published
        run = ConfigRun(len(lagging), published, failure)
        self._report(run)
        self.runs += 1
        self.last = run
        return run

    def _report(self, run: ConfigRun) -> None:
        if run.failure is not None and not self._failing:
            log.warning(
                "retained configuration of %d hub(s) waits for the broker: %s; retrying every %.0f s",
                run.lagging - run.published,
                run.failure,
                self._interval_s,
            )
        elif run.failure is None and self._failing:
            log.info("retained configuration: publishing works again")
        self._failing = run.failure is not None
        if run.published:
            log.info("retained configuration published for %d hub(s)", run.published)

    def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                self.run_once()
            except psycopg.Error as exc:
                log.warning("retained configuration: run failed (%s); next in %.0f s", exc, self._interval_s)
            self._stopping.wait(self._interval_s)
