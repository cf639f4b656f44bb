"""The weekly worklist: the viewer's own patients ranked by their 30-day admission risk, one page at a time.

Who is on it is ``access.patient_scope`` (a nurse's care teams, a GP's own patients). The rank is the
newest 30-day admission-risk score (``ADMISSION_RISK``), highest first; patients without one follow, by
their newest NEWS2, then by their newest open alert, then by name. Filters (care team, condition,
reviewed this week or not yet) narrow the list before it is ranked and paged.

One query per page, in two stages. The inner stage ranks every visible patient by index probes alone
(newest risk score, newest NEWS2, newest open alert: one LATERAL each) and keeps the page's rows with the
total (a window count). The outer stage joins, for those rows only, what a card shows: the risk of a
week before, the trend of the last :data:`TREND_DAYS` days, the newest review, the enrolled devices and
the newest reading of each measurement.

Consistency of a card: the NEWS2, its band and its reasons all come from one score row (its ``detail``);
the open alert comes with the score it was raised on (``alerts.score_id``), so a card can say when that
was not the NEWS2 it shows; every reading carries its own time. Which measurements a patient is
expected to take follows from the enrolled devices (``EXPECTED_BY_DEVICE``), and a reading older than
:data:`STALE_AFTER` is lagging. Each assigned device (not removed, its hub not revoked) comes with its
newest reading (``gateway.store.fleet.last_reading_sql``), so the card can say which device went silent
and since when (``gateway.fleet``'s rule). Wording is left to ``gateway.api.presenters``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import psycopg
from psycopg import sql
from psycopg.rows import dict_row

from fhir_contract.device import contract_kind
from gateway.fleet import DeviceActivity
from gateway.store import access
from gateway.store.fleet import last_reading_sql
from gateway.store.reviews import ADMISSION_RISK, REVIEW_FIELDS, Review, review_expressions, review_from
from gateway.store.synthetic import patient_enrolled_synthetic, resource_labelled

# scores.method of a NEWS2 score (the scorer's).
NEWS2 = "news2"
PAGE_SIZE = 25
# The trend line covers four weekly reviews.
TREND_DAYS = 28
# "Change since last week": the newest 30-day risk against the newest one at least this much older.
WEEK = timedelta(days=7)
# A daily measurement is late when the newest is older than a day and a half: a patient who measures
# each morning is not flagged at breakfast, but is by the evening of the day they missed.
STALE_AFTER = timedelta(hours=36)


@dataclass(frozen=True, slots=True)
class Measurement:
    """What a patient measures at home: one tile on the card, read from any of ``kinds`` (the newest
    wins), a panel's ``components`` in order (blood pressure: systolic, diastolic)."""

    key: str
    kinds: tuple[str, ...]
    components: tuple[str, ...] = ()
    unit: str | None = None  # used when a stored panel has no unit of its own


MEASUREMENTS: tuple[Measurement, ...] = (
    Measurement("blood-pressure", ("blood-pressure",), ("systolic", "diastolic"), "mm[Hg]"),
    Measurement("pulse", ("pulse-rate-cuff", "pulse-rate-oximeter", "heart-rate")),
    Measurement("spo2", ("spo2",)),
    Measurement("weight", ("body-weight",)),
    Measurement("temperature", ("body-temperature",)),
)
# The measurements each kind of enrolled device means a patient takes (daily): a blood-pressure cuff
# gives blood pressure and pulse, an oximeter SpO2 and pulse, a scale weight, a thermometer temperature.
# Keyed by the contract's device kinds (``fhir/devices.json``); a kind a hub enrolled under its own name
# is read through ``contract_kind``.
EXPECTED_BY_DEVICE: Mapping[str, tuple[str, ...]] = {
    "blood-pressure-monitor": ("blood-pressure", "pulse"),
    "pulse-oximeter": ("spo2", "pulse"),
    "weight-scale": ("weight",),
    "body-composition-analyzer": ("weight",),
    "thermometer": ("temperature",),
}


@dataclass(frozen=True, slots=True)
class Measured:
    """A number with its UCUM unit and the time it was measured."""

    value: float
    unit: str | None
    effective: datetime


@dataclass(frozen=True, slots=True)
class Reading:
    """The newest reading of one measurement (``values``: one number, or a panel's in order), or none
    yet (``effective`` None) of a measurement the patient is expected to take."""

    key: str
    values: tuple[float, ...]
    unit: str | None
    effective: datetime | None
    expected: bool

    def lagging(self, now: datetime) -> bool:
        """Whether an expected measurement is missing or older than :data:`STALE_AFTER`."""
        return self.expected and (self.effective is None or now - self.effective > STALE_AFTER)


@dataclass(frozen=True, slots=True)
class Risk:
    """The newest 30-day admission risk: probability, when, which model, why (in words), and the one of
    at least a week before (None when there is none)."""

    public_id: str  # the RiskAssessment's FHIR id
    probability: float
    computed_at: datetime
    model: str
    synthetic_training: bool
    reasons: tuple[str, ...]
    week_before: float | None
    week_before_at: datetime | None


@dataclass(frozen=True, slots=True)
class News2:
    """The newest NEWS2 score row: total, band, and the detail its reasons come from."""

    id: int
    score: float
    band: str
    detail: Mapping[str, Any]
    as_of: datetime


@dataclass(frozen=True, slots=True)
class OpenAlert:
    """The most severe open alert (the newest of those), with the score it was raised on (or last made
    worse by); an alert on a reading (own limits, a missing measurement) has no score: its kind and time
    stand in for the score's method and time."""

    id: int
    severity: str
    reason: str
    raised_at: datetime
    score_id: int | None
    score_method: str
    score_as_of: datetime


@dataclass(frozen=True, slots=True)
class TrendPoint:
    at: datetime
    value: float


@dataclass(frozen=True, slots=True)
class WorklistRow:
    """One patient's card."""

    rank: int
    patient_id: str
    name: str
    conditions: tuple[str, ...]
    care_team_id: str
    care_team: str
    phone: str | None
    synthetic: bool
    risk: Risk | None
    news2: News2 | None
    alert: OpenAlert | None
    readings: tuple[Reading, ...]
    trend_method: str  # ADMISSION_RISK or NEWS2: what ``trend`` plots
    trend: tuple[TrendPoint, ...]
    last_review: Review | None
    devices: tuple[DeviceActivity, ...] = ()  # assigned devices with their newest reading

    @property
    def alert_on_shown_news2(self) -> bool:
        """Whether the open alert was raised on the very NEWS2 score the card shows."""
        return self.alert is not None and self.news2 is not None and self.alert.score_id == self.news2.id

    def lagging(self, now: datetime) -> tuple[Reading, ...]:
        """The expected measurements that are missing or late."""
        return tuple(r for r in self.readings if r.lagging(now))

    def reviewed_since(self, since: datetime) -> bool:
        return self.last_review is not None and self.last_review.reviewed_at >= since

    def silent_devices(self, now: datetime) -> tuple[tuple[DeviceActivity, datetime], ...]:
        """The assigned devices silent at ``now`` (``gateway.fleet``'s rule), each with since when."""
        found = ((d, d.silent_since(now)) for d in self.devices)
        return tuple((d, since) for d, since in found if since is not None)


@dataclass(frozen=True, slots=True)
class WorklistFilter:
    """What narrows the list: a care team, a condition, reviewed since the week began (True), not yet
    (False) or either (None); ``patient_id`` picks one patient (the review form's own card)."""

    care_team: str | None = None
    condition: str | None = None
    reviewed: bool | None = None
    patient_id: str | None = None


@dataclass(frozen=True, slots=True)
class WorklistPage:
    rows: list[WorklistRow]
    total: int  # patients matching the filter, on all pages
    offset: int
    limit: int
    week_start: datetime
    models: tuple[str, ...] = field(default=())  # model versions that rank the rows shown

    @property
    def has_next(self) -> bool:
        return self.offset + self.limit < self.total


def _number(expression: sql.Composable) -> sql.Composable:
    """SQL: a JSON value as a number, stored either as ``120`` or ``{"value": 120}``; else NULL."""
    return sql.SQL(
        "coalesce(CASE WHEN jsonb_typeof({e}) = 'number' THEN ({e} #>> '{{}}')::float8 END,"
        " CASE WHEN jsonb_typeof({e} -> 'value') = 'number' THEN ({e} ->> 'value')::float8 END)"
    ).format(e=expression)


def _measurement_join(m: Measurement) -> sql.Composable:
    """SQL: a LATERAL join giving the newest final reading of ``m`` (one index probe per kind), in the
    canonical unit stored at ingest (rows written without it: as sent)."""
    values: sql.Composable
    present: sql.Composable
    if m.components:
        comps = sql.SQL("coalesce(o.canonical_components, o.components)")
        values = sql.SQL("ARRAY[{}]").format(
            sql.SQL(", ").join(
                _number(sql.SQL("{} -> {}").format(comps, sql.Literal(c))) for c in m.components
            )
        )
        present = _number(sql.SQL("{} -> {}").format(comps, sql.Literal(m.components[0])))
    else:
        values = sql.SQL("ARRAY[coalesce(o.canonical_value, o.value)]")
        present = sql.SQL("coalesce(o.canonical_value, o.value)")
    return sql.SQL(
        "LEFT JOIN LATERAL (SELECT x.vals, x.unit, x.effective, x.synthetic"
        " FROM unnest({kinds}::text[]) AS k(kind) CROSS JOIN LATERAL ("
        "  SELECT {values} AS vals, coalesce(o.canonical_unit, o.unit, {unit}) AS unit, o.effective,"
        "  {synthetic} AS synthetic"
        "  FROM observations o WHERE o.municipality_id = pg.municipality_id AND o.patient_id = pg.id"
        "  AND o.kind = k.kind AND {present} IS NOT NULL"
        "  AND o.resource ->> 'status' IS DISTINCT FROM 'preliminary'"
        "  ORDER BY o.effective DESC LIMIT 1) x ORDER BY x.effective DESC LIMIT 1) {alias} ON true"
    ).format(
        kinds=sql.Literal(list(m.kinds)),
        values=values,
        unit=sql.Literal(m.unit),
        present=present,
        synthetic=resource_labelled("o"),
        alias=sql.Identifier(_alias(m)),
    )


def _alias(m: Measurement) -> str:
    return "m_" + m.key.replace("-", "_")


def _filters(viewer: access.Viewer, wanted: WorklistFilter) -> sql.Composable:
    clauses: list[sql.Composable] = [access.patient_scope(viewer, "p")]
    if wanted.care_team is not None:
        clauses.append(sql.SQL("p.care_team_id = %(team)s"))
    if wanted.condition is not None:
        clauses.append(sql.SQL("%(condition)s = ANY(p.conditions)"))
    if wanted.patient_id is not None:
        clauses.append(sql.SQL("p.id = %(patient)s"))
    if wanted.reviewed is not None:
        reviewed = sql.SQL(
            "EXISTS (SELECT 1 FROM reviews rw WHERE rw.patient_id = p.id"
            " AND rw.municipality_id = p.municipality_id AND rw.reviewed_at >= %(week_start)s)"
        )
        clauses.append(reviewed if wanted.reviewed else sql.SQL("NOT ") + reviewed)
    return sql.SQL(" AND ").join(clauses)


def _newest_score(method: str, columns: str) -> sql.Composable:
    """SQL: a LATERAL subquery for the patient's newest score of ``method`` (one index probe)."""
    return sql.SQL(
        "(SELECT {columns} FROM scores s WHERE s.municipality_id = p.municipality_id AND s.patient_id = p.id"
        " AND s.method = {method} ORDER BY s.computed_at DESC, s.id DESC LIMIT 1)"
    ).format(columns=sql.SQL(columns), method=sql.Literal(method))


def _page_query(viewer: access.Viewer, wanted: WorklistFilter) -> sql.Composed:
    ranked = sql.SQL(
        "SELECT p.id, p.municipality_id, p.name, p.conditions, p.phone, p.care_team_id, ct.name AS team,"
        " {p_synth} AS p_synth,"
        " r.public_id::text AS risk_id, r.score AS risk, r.computed_at AS risk_at, r.detail AS risk_detail,"
        " {r_synth} AS r_synth,"
        " s.id AS news2_id, s.score AS news2, s.band, s.detail AS news2_detail, s.as_of AS news2_as_of,"
        " {s_synth} AS s_synth,"
        " a.id AS alert_id, a.severity, a.reason, a.raised_at, a.score_id AS alert_score_id,"
        " a.score_method, a.score_as_of,"
        " row_number() OVER w AS rank, count(*) OVER () AS total"
        " FROM patients p JOIN care_teams ct ON ct.id = p.care_team_id"
        " LEFT JOIN LATERAL {risk} r ON true"
        " LEFT JOIN LATERAL {news2} s ON true"
        " LEFT JOIN LATERAL (SELECT a.id, a.severity, a.reason, a.raised_at, a.score_id,"
        "  coalesce(sc.method, a.kind) AS score_method, coalesce(sc.as_of, a.as_of) AS score_as_of"
        "  FROM alerts a LEFT JOIN scores sc ON sc.id = a.score_id"
        "  WHERE a.municipality_id = p.municipality_id AND a.patient_id = p.id AND a.status = 'open'"
        "  ORDER BY a.severity = 'high' DESC, a.raised_at DESC, a.id DESC LIMIT 1) a ON true"
        " WHERE {filters}"
        " WINDOW w AS (ORDER BY r.score DESC NULLS LAST, s.score DESC NULLS LAST,"
        "  a.raised_at DESC NULLS LAST, p.name, p.id)"
        " ORDER BY rank LIMIT %(limit)s OFFSET %(offset)s"
    ).format(
        p_synth=patient_enrolled_synthetic("p"),
        risk=_newest_score(ADMISSION_RISK, "s.public_id, s.score, s.computed_at, s.detail, s.resource"),
        r_synth=resource_labelled("r"),
        news2=_newest_score(NEWS2, "s.id, s.score, s.band, s.detail, s.as_of, s.resource"),
        s_synth=resource_labelled("s"),
        filters=_filters(viewer, wanted),
    )
    measurement_columns = sql.SQL(", ").join(
        sql.SQL("{a}.vals AS {v}, {a}.unit AS {u}, {a}.effective AS {e}, {a}.synthetic AS {s}").format(
            a=sql.Identifier(_alias(m)),
            v=sql.Identifier(f"{m.key}_vals"),
            u=sql.Identifier(f"{m.key}_unit"),
            e=sql.Identifier(f"{m.key}_at"),
            s=sql.Identifier(f"{m.key}_synthetic"),
        )
        for m in MEASUREMENTS
    )
    return sql.SQL(
        "SELECT pg.*, wk.score AS week_risk, wk.computed_at AS week_at, tr.ats AS trend_at,"
        " tr.vals AS trend_vals, dv.kinds AS device_kinds, ad.ids AS ad_ids, ad.kinds AS ad_kinds,"
        " ad.assigned AS ad_assigned, ad.expected AS ad_expected, ad.lasts AS ad_lasts, {review},"
        " {measurement_columns}"
        " FROM ({ranked}) pg"
        " LEFT JOIN LATERAL (SELECT s.score, s.computed_at FROM scores s"
        "  WHERE s.municipality_id = pg.municipality_id AND s.patient_id = pg.id AND s.method = {risk}"
        "  AND s.computed_at <= pg.risk_at - %(week)s ORDER BY s.computed_at DESC, s.id DESC LIMIT 1) wk"
        "  ON pg.risk_at IS NOT NULL"
        # The trend: the newest score of each Copenhagen day of the last TREND_DAYS days.
        " LEFT JOIN LATERAL (SELECT array_agg(d.computed_at ORDER BY d.computed_at) AS ats,"
        "  array_agg(d.score ORDER BY d.computed_at) AS vals FROM (SELECT DISTINCT ON (day) s.computed_at,"
        "  s.score, (s.computed_at AT TIME ZONE 'Europe/Copenhagen')::date AS day FROM scores s"
        "  WHERE s.municipality_id = pg.municipality_id AND s.patient_id = pg.id"
        "  AND s.method = CASE WHEN pg.risk_at IS NULL THEN {news2} ELSE {risk} END"
        "  AND s.computed_at > %(trend_from)s AND s.computed_at <= %(now)s"
        "  ORDER BY day, s.computed_at DESC, s.id DESC) d) tr ON true"
        " LEFT JOIN LATERAL (SELECT array_agg(DISTINCT d.kind) AS kinds FROM devices d"
        "  WHERE d.municipality_id = pg.municipality_id AND d.patient_id = pg.id) dv ON true"
        # The assigned devices and the newest reading of each, for the silent-device flag.
        " LEFT JOIN LATERAL (SELECT array_agg(a.id ORDER BY a.kind, a.id) AS ids,"
        "  array_agg(a.kind ORDER BY a.kind, a.id) AS kinds,"
        "  array_agg(a.assigned_at ORDER BY a.kind, a.id) AS assigned,"
        "  array_agg(a.expected_interval ORDER BY a.kind, a.id) AS expected,"
        "  array_agg(a.last_reading ORDER BY a.kind, a.id) AS lasts"
        "  FROM (SELECT dev.id, dev.kind, dev.assigned_at, dev.expected_interval,"
        "   {last_reading} AS last_reading"
        "   FROM devices dev JOIN hubs ah ON ah.id = dev.hub_id AND ah.revoked_at IS NULL"
        "   WHERE dev.municipality_id = pg.municipality_id AND dev.patient_id = pg.id"
        "   AND dev.removed_at IS NULL) a) ad ON true"
        " LEFT JOIN LATERAL (SELECT * FROM reviews rv WHERE rv.municipality_id = pg.municipality_id"
        "  AND rv.patient_id = pg.id ORDER BY rv.reviewed_at DESC, rv.id DESC LIMIT 1) rv ON true"
        " {measurement_joins}"
        " ORDER BY pg.rank"
    ).format(
        ranked=ranked,
        risk=sql.Literal(ADMISSION_RISK),
        news2=sql.Literal(NEWS2),
        review=sql.SQL(", ").join(
            sql.SQL("{} AS {}").format(value, sql.Identifier(f"rv_{i}"))
            for i, value in enumerate(review_expressions("rv", sql.SQL("pg.p_synth")))
        ),
        measurement_columns=measurement_columns,
        last_reading=last_reading_sql("dev"),
        measurement_joins=sql.SQL(" ").join(_measurement_join(m) for m in MEASUREMENTS),
    )


def _params(
    wanted: WorklistFilter, now: datetime, week_start: datetime, offset: int, limit: int
) -> dict[str, Any]:
    return {
        "team": wanted.care_team,
        "condition": wanted.condition,
        "patient": wanted.patient_id,
        "week_start": week_start,
        "week": WEEK,
        "trend_from": now - timedelta(days=TREND_DAYS),
        "now": now,
        "limit": limit,
        "offset": offset,
    }


def worklist_page(
    conn: psycopg.Connection[Any],
    viewer: access.Viewer,
    *,
    now: datetime,
    week_start: datetime,
    wanted: WorklistFilter = WorklistFilter(),
    offset: int = 0,
    limit: int = PAGE_SIZE,
) -> WorklistPage:
    """One page of the viewer's ranked worklist (``offset`` rows in, ``limit`` rows), as of ``now``."""
    params = _params(wanted, now, week_start, offset, limit)
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(_page_query(viewer, wanted), params).fetchall()
    # Past the last page (or when nothing matches) no row carries the total: count alone.
    total = int(rows[0]["total"]) if rows else count_patients(conn, viewer, wanted, week_start)
    built = [_row(row) for row in rows]
    models = tuple(dict.fromkeys(r.risk.model for r in built if r.risk is not None))
    return WorklistPage(built, total, offset, limit, week_start, models)


def explain_page(
    conn: psycopg.Connection[Any], viewer: access.Viewer, *, now: datetime, week_start: datetime
) -> str:
    """The plan of the first page's query, as run (EXPLAIN ANALYZE): for the benchmark and for tuning."""
    query = sql.SQL("EXPLAIN (ANALYZE, BUFFERS) {}").format(_page_query(viewer, WorklistFilter()))
    rows = conn.execute(query, _params(WorklistFilter(), now, week_start, 0, PAGE_SIZE)).fetchall()
    return "\n".join(str(row[0]) for row in rows)


def count_patients(
    conn: psycopg.Connection[Any], viewer: access.Viewer, wanted: WorklistFilter, week_start: datetime
) -> int:
    """How many of the viewer's patients match ``wanted``."""
    query = sql.SQL("SELECT count(*) FROM patients p WHERE {}").format(_filters(viewer, wanted))
    params = {
        "team": wanted.care_team,
        "condition": wanted.condition,
        "patient": wanted.patient_id,
        "week_start": week_start,
    }
    row = conn.execute(query, params).fetchone()
    return int(row[0]) if row else 0


def _risk(row: Mapping[str, Any]) -> Risk | None:
    if row["risk_id"] is None:
        return None
    detail = row["risk_detail"] or {}
    reasons = detail.get("reasons")
    return Risk(
        public_id=row["risk_id"],
        probability=float(row["risk"]),
        computed_at=row["risk_at"],
        model=str(detail.get("model", "unknown")),
        synthetic_training=bool(detail.get("synthetic_training", False)),
        reasons=tuple(str(r) for r in reasons) if isinstance(reasons, list) else (),
        week_before=None if row["week_risk"] is None else float(row["week_risk"]),
        week_before_at=row["week_at"],
    )


def _readings(row: Mapping[str, Any]) -> tuple[Reading, ...]:
    """The expected measurements (from the devices), each with its newest reading or none yet; a
    patient without enrolled devices shows whatever was measured."""
    expected = {
        key for kind in row["device_kinds"] or () for key in EXPECTED_BY_DEVICE.get(contract_kind(kind), ())
    }
    readings = []
    for m in MEASUREMENTS:
        values: Sequence[float | None] = row[f"{m.key}_vals"] or ()
        if m.key not in expected and not values:
            continue
        if expected and m.key not in expected and row[f"{m.key}_at"] is None:
            continue
        numbers = tuple(v for v in values if v is not None)
        readings.append(Reading(m.key, numbers, row[f"{m.key}_unit"], row[f"{m.key}_at"], m.key in expected))
    return tuple(readings)


def _synthetic(row: Mapping[str, Any]) -> bool:
    """Enrolled as synthetic, or its newest risk, NEWS2 or reading of a measurement labelled test data."""
    scores = row["p_synth"] or row["r_synth"] or row["s_synth"]
    return bool(scores or any(row[f"{m.key}_synthetic"] for m in MEASUREMENTS))


def _row(row: Mapping[str, Any]) -> WorklistRow:
    news2 = None
    if row["news2_id"] is not None:
        news2 = News2(
            row["news2_id"], row["news2"], row["band"], row["news2_detail"] or {}, row["news2_as_of"]
        )
    alert = None
    if row["alert_id"] is not None:
        alert = OpenAlert(
            row["alert_id"],
            row["severity"],
            row["reason"],
            row["raised_at"],
            row["alert_score_id"],
            row["score_method"],
            row["score_as_of"],
        )
    trend = tuple(
        TrendPoint(at, float(value))
        for at, value in zip(row["trend_at"] or (), row["trend_vals"] or (), strict=True)
    )
    review = None
    if row["rv_0"] is not None:
        review = review_from([row[f"rv_{i}"] for i in range(REVIEW_FIELDS)])
    return WorklistRow(
        rank=int(row["rank"]),
        patient_id=row["id"],
        name=row["name"],
        conditions=tuple(row["conditions"]),
        care_team_id=row["care_team_id"],
        care_team=row["team"],
        phone=row["phone"],
        synthetic=_synthetic(row),
        risk=_risk(row),
        news2=news2,
        alert=alert,
        readings=_readings(row),
        trend_method=NEWS2 if row["risk_id"] is None else ADMISSION_RISK,
        trend=trend,
        last_review=review,
        devices=_devices(row),
    )


def _devices(row: Mapping[str, Any]) -> tuple[DeviceActivity, ...]:
    columns = ("ad_ids", "ad_kinds", "ad_assigned", "ad_expected", "ad_lasts")
    return tuple(DeviceActivity(*values) for values in zip(*(row[c] or () for c in columns), strict=True))


@dataclass(frozen=True, slots=True)
class FilterOptions:
    """The choices of the worklist's filters: the care teams (id, name) and conditions of the viewer's
    patients."""

    care_teams: tuple[tuple[str, str], ...]
    conditions: tuple[str, ...]


def filter_options(conn: psycopg.Connection[Any], viewer: access.Viewer) -> FilterOptions:
    """The care teams and conditions among the viewer's patients, in name order."""
    query = sql.SQL(
        "SELECT (SELECT coalesce(array_agg(ARRAY[t.id, t.name] ORDER BY t.name, t.id), '{{}}')"
        "  FROM (SELECT DISTINCT ct.id, ct.name FROM patients p JOIN care_teams ct ON ct.id = p.care_team_id"
        "  WHERE {scope}) t),"
        " (SELECT coalesce(array_agg(c ORDER BY c), '{{}}') FROM (SELECT DISTINCT unnest(p.conditions) AS c"
        "  FROM patients p WHERE {scope}) c)"
    ).format(scope=access.patient_scope(viewer, "p"))
    row = conn.execute(query).fetchone()
    teams, conditions = row if row else ([], [])
    return FilterOptions(tuple((t[0], t[1]) for t in teams or ()), tuple(conditions or ()))


def municipality_name(conn: psycopg.Connection[Any], municipality_id: str) -> str:
    """The municipality's name (its id when it has no row, which the schema does not allow)."""
    row = conn.execute("SELECT name FROM municipalities WHERE id = %s", (municipality_id,)).fetchone()
    return municipality_id if row is None else str(row[0])
