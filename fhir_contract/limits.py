"""The contract's limits: what FHIR leaves open and the gateway bounds, shared by hub and server.

Kept apart from ``validate`` (which loads ``fhir.resources``) so that the hub can read them cheaply.
``docs/fhir-contract.md`` ("Limits") says why each has its value.
"""

from __future__ import annotations

import functools
import re
from datetime import UTC, datetime, timedelta

# No reading is dated before this: the hub calls a device clock set before 2015 unset
# (edge_agent.clock_sync.UNSET_BEFORE) and dates such readings by its own clock instead.
EFFECTIVE_FLOOR = datetime(2015, 1, 1, tzinfo=UTC)
# Nor after the gateway's now plus this: the hub never dates a reading in the future; 10 minutes allow
# the hub's and the gateway's clocks (both kept by NTP) to disagree a little.
MAX_CLOCK_AHEAD = timedelta(minutes=10)
# Entries per batch Bundle. The hub sends 50 by default and at most this many (edge_agent.config).
MAX_BUNDLE_ENTRIES = 500
# The reading identifier: printable ASCII (no NUL or control character reaches the database) and short
# enough for any index entry. The hub's are under 200 characters.
MAX_IDENTIFIER_CHARS = 256
IDENTIFIER_VALUE = re.compile(rf"[!-~]{{1,{MAX_IDENTIFIER_CHARS}}}")
# A FHIR id (R4 "id" datatype): what patient, device, hub and Bundle ids must be.
FHIR_ID = re.compile(r"[A-Za-z0-9\-.]{1,64}")


@functools.lru_cache(maxsize=4096)
def is_fhir_id(value: str) -> bool:
    """Whether ``value`` is a FHIR id. Cached: a Bundle names the same patient, devices and hub in every
    entry, and the check is on ingest's hot path (the cache is bounded, whatever a sender sends)."""
    return FHIR_ID.fullmatch(value) is not None
