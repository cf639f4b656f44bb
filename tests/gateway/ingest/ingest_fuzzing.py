"""Hostile messages for the ingest fuzzers: hypothesis strategies, and the property every message keeps.

Three families, as an attacker or a broken hub would send them: arbitrary bytes; arbitrary JSON; and
structurally valid Bundles of valid Observations with one hostile value planted at any place (extreme
dates and numbers, NUL and control characters, deep nesting, huge strings, a wrong type for the
element, an element removed, an unknown one added), plus hostile Bundle envelopes and topics.

``check_message_ends_well`` is the property: the message ends stored, quarantined or refused (every
entry accounted for, each rejection quarantined with a reason, or the whole message kept), and a good
reading sent right behind it is stored.
"""

from __future__ import annotations

import itertools
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

import orjson
import psycopg
from hypothesis import strategies as st
from observation_factory import BASE_TIME, Home, bundle

from fhir_contract.observation import build_bundle
from gateway.ingest.batch_store import BatchStore
from gateway.ingest.processing import error_report, receipt

HOME = Home()
# Enrolled in another municipality: a topic naming it with HOME's hub is an unknown hub.
INTRUDER = Home(municipality_id="9101", patient_id="p9", hub_id="hub9", oximeter_id="OXI9", cuff_id="BPC9")
# Examples per fuzz test: small in `make test`, raised by `make faults` (HOMEWATCH_FUZZ_EXAMPLES).
EXAMPLES = int(os.environ.get("HOMEWATCH_FUZZ_EXAMPLES", "40"))

EXTREME_DATES = [
    "0001-01-01T00:00:00+14:00",
    "9999-12-31T23:59:59-14:00",
    "1970-01-01T00:00:00Z",
    "2014-12-31T23:59:59Z",
    "2099-01-01T00:00:00Z",
    "2026-02-30T08:00:00Z",
    "2026-11-20T08:00:00",
    "2026-11-20T25:00:00Z",
    "2026-11-20",
    "2026",
    "",
]
EXTREME_NUMBERS: list[Any] = [
    0,
    -0.0,
    -1,
    1e308,
    -1e308,
    5e-324,
    2**63 - 1,
    2**63,
    2**64 + 1,
    10**40,
    -(10**40),
    0.1 + 0.2,
]
# Elements the gateway reads, keys on or stores in columns of their own.
SENSITIVE = frozenset(
    {"effectiveDateTime", "value", "reference", "identifier", "id", "code", "system", "status", "entry"}
)
CONTROL_TEXT = ["\x00", "a\x00b", "\x01\x02\x1f", "\u2028\u2029", "\ud7ff\ue000", "\x7f", "😷" * 3]
WRONG_TYPES: list[Any] = [None, True, [], {}, [None], {"": None}, "", "x", 1, 1.5]


def _leaf_paths(value: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """Every path into a JSON value (objects by key, arrays by index), the value itself included."""
    yield path
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _leaf_paths(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _leaf_paths(item, (*path, index))


def _planted(value: Any, path: tuple[Any, ...], replacement: Any) -> Any:
    """A copy of ``value`` with ``replacement`` at ``path`` (a ``_REMOVE`` replacement removes it)."""
    if not path:
        return replacement
    head, rest = path[0], path[1:]
    if isinstance(value, dict):
        copied = dict(value)
        if replacement is _REMOVE and not rest:
            copied.pop(head, None)
        elif not rest:
            copied[head] = replacement  # replaced, or added when the key is new
        else:
            copied[head] = _planted(value[head], rest, replacement)
        return copied
    copied_list = list(value)
    if replacement is _REMOVE and not rest:
        del copied_list[head]
    else:
        copied_list[head] = _planted(value[head], rest, replacement)
    return copied_list


_REMOVE = object()
_sequence = itertools.count()


def _observation(n: int) -> dict[str, Any]:
    """A valid Observation (one of three kinds), distinct for each ``n``."""
    at = BASE_TIME + timedelta(seconds=n)
    kind = n % 3
    if kind == 0:
        return HOME.spo2(90 + n % 10, at)
    if kind == 1:
        return HOME.pulse(60 + n % 40, at)
    return HOME.blood_pressure(110 + n % 30, 70 + n % 20, at)


def deep(depth: int) -> str:
    return "[" * depth + "]" * depth


def _in_zone(moment: datetime, minutes: int) -> str:
    return moment.replace(tzinfo=timezone(timedelta(minutes=minutes))).isoformat()


_zones = st.integers(min_value=-14 * 60, max_value=14 * 60)
# Any moment of the calendar in any zone FHIR allows (-14:00..+14:00), written as FHIR writes it; a
# third of them in the first or last days of the calendar, where converting to UTC overflows.
hostile_dates = st.one_of(
    st.sampled_from(EXTREME_DATES),
    st.builds(
        _in_zone,
        st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31, 23, 59, 59)),
        _zones,
    ),
    st.builds(
        _in_zone,
        st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(1, 1, 1, 23, 59, 59))
        | st.datetimes(min_value=datetime(9999, 12, 31), max_value=datetime(9999, 12, 31, 23, 59, 59)),
        _zones,
    ),
)

hostile_values = st.one_of(
    st.sampled_from(EXTREME_DATES),
    st.sampled_from(EXTREME_NUMBERS),
    st.sampled_from(CONTROL_TEXT),
    st.sampled_from(WRONG_TYPES),
    st.just(_REMOVE),
    st.integers(min_value=2, max_value=300).map(lambda d: json.loads(deep(d))),
    st.integers(min_value=1, max_value=200_000).map(lambda n: "x" * n),
    st.text(max_size=50),
    st.floats(allow_nan=False, allow_infinity=False),
)


@st.composite
def hostile_bundles(draw: st.DrawFn) -> bytes:
    """A Bundle of 1-3 valid Observations with one hostile value planted in one of them (or in the
    Bundle itself), sometimes with an unknown element added."""
    # Readings may repeat between examples: a duplicate or a conflict is an outcome like any other.
    n = draw(st.integers(min_value=0, max_value=1_000_000))
    observations = [_observation(n + i) for i in range(draw(st.integers(min_value=1, max_value=3)))]
    document = build_bundle(observations)
    paths = [p for p in _leaf_paths(document) if p]
    # An element anywhere, one the gateway reads and stores (where a hostile value does harm if it slips
    # through), or a time (whose arithmetic overflows at the calendar's ends), in equal shares.
    sensitive = [p for p in paths if p[-1] in SENSITIVE or (len(p) > 1 and p[-2] in SENSITIVE)]
    dated = [p for p in paths if p[-1] in ("effectiveDateTime", "timestamp")]
    plan = draw(st.sampled_from(["anywhere", "sensitive", "time"]))
    if plan == "time":
        path, value = draw(st.sampled_from(dated)), draw(hostile_dates)
    else:
        path = draw(st.sampled_from(sensitive if plan == "sensitive" else paths))
        value = draw(hostile_values)
    planted = _planted(document, path, value)
    if draw(st.booleans()):
        target = draw(st.sampled_from([p for p in _leaf_paths(planted) if _is_object(planted, p)]))
        planted = _planted(planted, (*target, draw(st.text(min_size=1, max_size=12))), draw(hostile_values))
    return json.dumps(planted, ensure_ascii=draw(st.booleans())).encode("utf-8", "surrogatepass")


def _is_object(document: Any, path: tuple[Any, ...]) -> bool:
    value = document
    for step in path:
        value = value[step]
    return isinstance(value, dict)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30),
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=10), children, max_size=5)
    ),
    max_leaves=40,
)


@st.composite
def arbitrary_json(draw: st.DrawFn) -> bytes:
    """Any JSON document, sometimes dressed as a batch Bundle around arbitrary entries."""
    value = draw(json_values)
    if draw(st.booleans()):
        value = {"resourceType": "Bundle", "type": "batch", "entry": draw(st.lists(json_values, max_size=4))}
    return json.dumps(value).encode()


hostile_topics = st.one_of(
    st.just(HOME.topic),
    st.just(HOME.topic),
    st.just(HOME.topic),
    st.text(max_size=80),
    st.sampled_from(
        [
            "homewatch/v1/0101/hub1\x00/observations",
            "homewatch/v1/0101/+/observations",
            "homewatch/v1/0101/hub1/observations/extra",
            "homewatch/v1/" + "9" * 500 + "/hub1/observations",
            "homewatch/v1/9101/hub1/observations",
        ]
    ),
)

any_message = st.one_of(st.binary(max_size=3000), arbitrary_json(), hostile_bundles(), hostile_bundles())


@dataclass(frozen=True, slots=True)
class Message:
    topic: str
    payload: bytes
    arrived: float = 0.0


def good_message() -> tuple[Message, str]:
    """A valid one-reading Bundle from HOME's hub that no fuzz example uses, and its identifier."""
    # Before BASE_TIME: the fuzzed Bundles' readings lie after it, so the good one never shares a key
    # with one of them (that would be a conflict, rightly, and no fault of ingest's).
    n = next(_sequence) % 1_000_000
    observation = HOME.spo2(95, BASE_TIME - timedelta(days=20) + timedelta(seconds=n))
    return Message(HOME.topic, bundle([observation])), observation["identifier"][0]["value"]


def _counts(conn: psycopg.Connection[Any]) -> tuple[int, int, int]:
    row = conn.execute(
        "SELECT (SELECT count(*) FROM observations), (SELECT count(*) FROM quarantine),"
        " (SELECT count(*) FROM dead_letters)"
    ).fetchone()
    assert row is not None
    return int(row[0]), int(row[1]), int(row[2])


def check_message_ends_well(store: BatchStore, conn: psycopg.Connection[Any], message: Message) -> None:
    """The property: ``message`` ends stored, quarantined or refused, and a good message behind it is
    stored (both in one batch, so a failure of the one would show on the other)."""
    good, good_identifier = good_message()
    stored_before, quarantined_before, dead_before = _counts(conn)
    handled = store.handle([message, good])
    outcome, good_outcome = handled.outcomes
    stored_after, quarantined_after, dead_after = _counts(conn)

    # The good message behind it is stored, whatever the first one was.
    assert [obs.identifier for obs in good_outcome.accepted] == [good_identifier], good_outcome.rejections
    assert good_outcome.rejections == ()
    found = conn.execute("SELECT count(*) FROM observations WHERE identifier = %s", (good_identifier,))
    assert found.fetchone() == (1,)

    # Every entry of the first message is accounted for: accepted, or rejected with a reason.
    rejected_entries = {r.index for r in outcome.rejections if r.index is not None}
    if outcome.message_rejected:
        assert not outcome.accepted
    else:
        assert rejected_entries.isdisjoint(outcome.accepted_positions)
        assert len(rejected_entries) + len(outcome.accepted) == outcome.entries
    assert all(r.reason for r in outcome.rejections)
    # Each rejection left one quarantine row (or the message is a dead letter); the new rows are counted.
    new_rows = stored_after - stored_before - 1
    assert 0 <= new_rows <= len(outcome.accepted)
    assert (quarantined_after - quarantined_before) + (dead_after - dead_before) == len(outcome.rejections)
    # What is answered to the hub can be sent: JSON, well under the broker's message limit.
    report = orjson.dumps(error_report(outcome))
    assert len(report) < 900_000
    if outcome.source is not None and outcome.bundle_id is not None:
        assert receipt(outcome) is not None
