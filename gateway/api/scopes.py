"""SMART on FHIR scopes: what each role may be granted, and whether a token's scopes allow an access.

A scope is ``{context}/{resource type}.{permissions}`` (SMART App Launch 1 and 2): the context is
``user`` (a person acting as herself), ``system`` (a machine: a hub) or ``patient`` (an app of one
patient, which this server serves none of); the resource type may be ``*``; the permissions are
SMART 1's ``read``, ``write`` or ``*``, or SMART 2's letters ``c r u d s`` in that order (``rs``,
``cruds``). ``read`` covers SMART 2's ``r`` and ``s``, ``write`` its ``c``, ``u`` and ``d``.

An access is allowed when the token's scopes allow it AND the role's scopes (``ROLE_SCOPES``) allow it:
a token can narrow what its user's role may do, never widen it. So an identity provider that hands out
``user/*.*`` gives a nurse no more than a nurse's scopes, and a municipality administrator, whose role has
none, reads no clinical resource whatever her token says. Which role a user has, and who she may see
within those scopes, is decided elsewhere (``gateway.store.users``, ``gateway.store.access``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Literal

from gateway.store import access

Interaction = Literal["read", "search", "create"]
Context = Literal["user", "system"]

# The role of a hub's token (``gateway.api.auth.HUB_ROLE``): posts Observations, reads nothing.
HUB = "hub"
# System accounts (issue 19): users of one municipality, token only, that post FiNDR's inputs and read
# nothing: a home-care record system (staff change observations) and a hospital system (inpatient
# Encounters). ``gateway.api.findr_fhir`` decides what they send.
HOMECARE_SYSTEM = "homecare_system"
HOSPITAL_SYSTEM = "hospital_system"

# What a nurse and a GP are granted: the resource types the FHIR API serves them, and the review record.
CLINICAL_SCOPES: tuple[str, ...] = (
    "user/Patient.read",
    "user/Observation.read",
    "user/RiskAssessment.read",
    "user/Device.read",
    "user/ClinicalImpression.read",
    "user/ClinicalImpression.write",
    # The alerts: a Flag on the patient, the care team's Task, the message to the GP (read only).
    "user/Flag.read",
    "user/Task.read",
    "user/Communication.read",
    # What patients send from home (issue 21): their answers; their contact requests are Tasks.
    "user/QuestionnaireResponse.read",
)
ROLE_SCOPES: Mapping[str, tuple[str, ...]] = {
    access.NURSE: CLINICAL_SCOPES,
    access.GP: CLINICAL_SCOPES,
    # Administrators see no clinical data (gateway.store.access): no FHIR resource at all.
    access.MUNICIPALITY_ADMIN: (),
    access.SYSTEM_ADMIN: (),
    HUB: ("system/Observation.write",),
    HOMECARE_SYSTEM: ("system/Observation.write",),
    HOSPITAL_SYSTEM: ("system/Encounter.write",),
}

_SCOPE = re.compile(r"(?P<context>patient|user|system)/(?P<type>\*|[A-Z][A-Za-z]{0,63})\.(?P<perm>[a-z*]+)")
# SMART 1 permission -> the SMART 2 letters it stands for.
_SMART1 = {"read": "rs", "write": "cud", "*": "cruds"}
# SMART 2 letters must appear in this order, each at most once.
_SMART2 = re.compile(r"c?r?u?d?s?")
# The SMART 2 letter each interaction needs.
_LETTER: Mapping[Interaction, str] = {"read": "r", "search": "s", "create": "c"}


def parse_scope_claim(value: object) -> frozenset[str]:
    """The scopes of a token's ``scope`` claim (space-separated text) or ``scp`` claim (a list); anything
    else is no scope."""
    if isinstance(value, str):
        return frozenset(value.split())
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        return frozenset(value)
    return frozenset()


def _letters(permissions: str) -> str:
    """The SMART 2 letters a permission text grants ('' for none or for a malformed one)."""
    if permissions in _SMART1:
        return _SMART1[permissions]
    return permissions if permissions and _SMART2.fullmatch(permissions) else ""


def allows(scopes: Iterable[str], context: Context, resource_type: str, interaction: Interaction) -> bool:
    """Whether any of ``scopes`` allows ``interaction`` on ``resource_type`` in ``context``."""
    for scope in scopes:
        match = _SCOPE.fullmatch(scope)
        if match is None or match["context"] != context:
            continue
        if match["type"] in ("*", resource_type) and _LETTER[interaction] in _letters(match["perm"]):
            return True
    return False


def granted(
    token_scopes: Iterable[str], role: str, context: Context, resource_type: str, interaction: Interaction
) -> bool:
    """Whether both the token's scopes and its role's scopes allow the access."""
    return allows(token_scopes, context, resource_type, interaction) and allows(
        ROLE_SCOPES.get(role, ()), context, resource_type, interaction
    )


def required(context: Context, resource_type: str, interaction: Interaction) -> str:
    """The SMART 1 scope that names this access, for error messages (``user/Observation.read``)."""
    return f"{context}/{resource_type}.{'write' if interaction == 'create' else 'read'}"
