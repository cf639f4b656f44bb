"""Which stored rows are SYNTHETIC test data: SQL expressions that the API's read queries embed.

Two marks, both stored: a resource labelled with FHIR's test-data mark (``meta.security`` or
``meta.tag`` ``v3-ActReason#HTEST``, ``fhir_contract.status``), and a patient enrolled as synthetic
(``patients.synthetic``, migration 0007). What to show or serve for a synthetic row is left to
``gateway.api``.
"""

from __future__ import annotations

from psycopg import sql
from psycopg.types.json import Jsonb

from fhir_contract.status import ACT_REASON, TEST_DATA

_HTEST = Jsonb([{"system": ACT_REASON, "code": TEST_DATA}])


def resource_labelled(alias: str) -> sql.Composable:
    """SQL: whether the stored ``resource`` of table ``alias`` carries the test-data label."""
    meta = sql.SQL("{}.resource -> 'meta'").format(sql.Identifier(alias))
    return sql.SQL("coalesce({m} -> 'security' @> {t} OR {m} -> 'tag' @> {t}, false)").format(
        m=meta, t=sql.Literal(_HTEST)
    )


def patient_enrolled_synthetic(alias: str) -> sql.Composable:
    """SQL: whether the ``patients`` row ``alias`` was enrolled as synthetic."""
    return sql.SQL("{}.synthetic").format(sql.Identifier(alias))


def patient_of_row_synthetic(alias: str) -> sql.Composable:
    """SQL: whether the patient of row ``alias`` (a table with ``municipality_id`` and ``patient_id``) was
    enrolled as synthetic."""
    a = sql.Identifier(alias)
    return sql.SQL(
        "EXISTS (SELECT 1 FROM patients sp WHERE sp.municipality_id = {a}.municipality_id"
        " AND sp.id = {a}.patient_id AND {synthetic})"
    ).format(a=a, synthetic=patient_enrolled_synthetic("sp"))
