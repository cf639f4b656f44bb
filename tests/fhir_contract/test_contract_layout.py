"""Guard: the project's fhir/ folder is data and must never shadow the fhir.resources package."""

from __future__ import annotations

from pathlib import Path

import fhir.resources

from fhir_contract.terminology import contract_dir

ROOT = Path(__file__).resolve().parents[2]


def test_fhir_folder_is_not_a_package_and_fhir_resources_imports() -> None:
    assert not (ROOT / "fhir" / "__init__.py").exists()
    assert "site-packages" in str(Path(fhir.resources.__file__))


def test_contract_data_is_found() -> None:
    assert (contract_dir() / "terminology.json").is_file()
