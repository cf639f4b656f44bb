"""The patient view's settings: the shipped example serves it behind a PIN file, a resident's
questionnaire must be one of the contract's, and HubService serves the view only when it is enabled."""

from __future__ import annotations

from pathlib import Path

import pytest

from edge_agent.config import HubConfig, HubConfigError, ResidentConfig

EXAMPLE = Path(__file__).resolve().parents[3] / "deploy" / "hub.example.toml"


def test_the_shipped_example_serves_the_view_behind_a_pin_file() -> None:
    view = HubConfig.from_toml(EXAMPLE).patient_view
    assert view.enabled and view.pin is None and view.pin_file == Path("/etc/homewatch/patient-view-pin")
    assert view.port == 8080 and view.language == "da"


def test_a_resident_answers_a_questionnaire_of_the_contract_or_none() -> None:
    assert ResidentConfig(patient_id="p", questionnaire="copd-daily").questionnaire == "copd-daily"
    assert ResidentConfig(patient_id="p").questionnaire is None
    with pytest.raises(ValueError, match="no questionnaire 'mood-daily'"):
        ResidentConfig(patient_id="p", questionnaire="mood-daily")


def test_the_pin_file_must_hold_four_to_twelve_digits(tmp_path: Path) -> None:
    text = EXAMPLE.read_text().replace('"/etc/homewatch/patient-view-pin"', '"pin"')
    (tmp_path / "hub.toml").write_text(text)
    config = HubConfig.from_toml(tmp_path / "hub.toml")
    (tmp_path / "pin").write_text("8642\n")
    assert config.patient_view.secret() == "8642"
    (tmp_path / "pin").write_text("12ab\n")
    with pytest.raises(HubConfigError, match="4-12 digits"):
        config.patient_view.secret()
