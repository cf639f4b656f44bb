"""The codes a cohort in FHIR Bulk Data NDJSON form uses beyond the device readings of ``fhir_contract``.

One table per concept, shared by the synthetic cohort's writer and the models' reader, so the two can
never drift apart:

- ``CHANGE_OBSERVATIONS``: the structured change observations Danish home-care staff record for early
  detection of acute illness (the "Tidlig Opsporing" change form: physical, mental and social changes
  noticed at a visit). A filled-in form is one Observation with category ``survey`` and code
  ``CHANGE_SYSTEM|CHANGE_FORM``, one ``component`` per item (code ``CHANGE_SYSTEM|<key>``,
  ``valueBoolean`` true when a change was seen, false when it was checked and none was seen). A
  single item may also come as an Observation of its own (code ``CHANGE_SYSTEM|<key>``, ``valueBoolean``):
  readers take both.
- ``CONDITION_SNOMED``: the chronic conditions the cohort knows, as SNOMED CT codes on ``Condition``.
- ``ADMISSION_CLASS``: a hospital admission is an ``Encounter`` of class inpatient (v3 ActCode IMP);
  its ``period.start`` is the admission time. A score for a day may use admissions that ended before
  it (days since discharge, which home care knows); admissions after it are labels only.
- ``SYNTHETIC_TAG``: the ``meta.tag`` every synthetic resource carries.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from models.cohort.profiles import Condition

CHANGE_SYSTEM: Final = "urn:homewatch:early-detection"
#: The code of a whole change form (a panel of the items below).
CHANGE_FORM: Final = "change-form"
#: key -> what the staff noticed (English; the Danish form's headings in brackets).
CHANGE_OBSERVATIONS: Final[Mapping[str, str]] = {
    "appetite": "changed appetite or fluid intake (appetit/væske)",
    "mobility": "changed mobility or function (mobilitet/funktion)",
    "confusion": "new confusion or changed alertness (bevidsthed/hukommelse)",
    "mood": "changed mood or behaviour (humør/adfærd)",
    "skin": "changed skin: colour, wounds, swelling (hud)",
    "breathing": "changed breathing (vejrtrækning)",
    "urination": "changed urination (vandladning)",
    "pain": "new or worse pain (smerter)",
    "sleep": "changed sleep (søvn)",
    "general": "generally unwell (almentilstand)",
}

SNOMED: Final = "http://snomed.info/sct"
CONDITION_SNOMED: Final[Mapping[Condition, tuple[str, str]]] = {
    "heart-failure": ("84114007", "Heart failure"),
    "copd": ("13645005", "Chronic obstructive lung disease"),
    "diabetes": ("73211009", "Diabetes mellitus"),
    "frailty": ("248279007", "Frailty"),
}

ACT_CODE: Final = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
ADMISSION_CLASS: Final = "IMP"

OBSERVATION_CATEGORY: Final = "http://terminology.hl7.org/CodeSystem/observation-category"
SYNTHETIC_TAG: Final[Mapping[str, str]] = {
    "system": "urn:homewatch:data",
    "code": "synthetic",
    "display": "SYNTHETIC data: no real person",
}
