"""docs/fhir-contract.md documents every reading type, device kind and extension of the contract."""

from __future__ import annotations

from pathlib import Path

from fhir_contract.device import device_kinds
from fhir_contract.terminology import DEVICE_TIME_EXTENSION, RECEIVED_EXTENSION, reading_types

DOC = Path(__file__).resolve().parents[2] / "docs" / "fhir-contract.md"


def test_every_reading_type_has_a_row_in_the_doc() -> None:
    text = DOC.read_text(encoding="utf-8")
    missing = [
        key
        for key, rtype in reading_types().items()
        if f"| `{key}` |" not in text or rtype.mdc.code not in text
    ]
    assert missing == []


def test_every_device_kind_and_extension_is_documented() -> None:
    text = DOC.read_text(encoding="utf-8")
    for kind in device_kinds().values():
        assert f"`{kind.key}`" in text and all(s.code in text for s in kind.specializations)
    assert DEVICE_TIME_EXTENSION in text and RECEIVED_EXTENSION in text
