"""The models' stored English sentences are shown in Danish: every template the models write is recognised.

The sentences are made by the models themselves (``models.rules``, ``models.admission_risk.describe``,
``models.news2``, ``gateway.alerts.rules``), so a template changed there and not here fails this test
instead of reaching a Danish page in English.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from gateway.alerts.home_rules import RULE_TITLES
from gateway.alerts.rules import decide_alert, decide_rule_alert
from gateway.api.i18n import use_language
from gateway.api.model_words import model_text, rule_title
from models.admission_risk import describe
from models.features import COLUMN, FEATURE_NAMES, MODEL_FEATURES
from models.news2 import Measured, VitalSigns, score_news2
from models.rules import copd_pulse_rise, copd_spo2_drop, weight_gain_3d, weight_gain_moving_average

NOW = datetime(2025, 3, 2, 12, 0, tzinfo=UTC)
# Words a Danish sentence shares with the English one: names, units, the score's name.
SHARED = {"SpO", "NEWS", "min", "mmHg", "diabetes", "point"}


def _english_left(english: str, danish: str) -> list[str]:
    """The English words of ``english`` (three letters or more) that ``danish`` still holds."""
    words = set(re.findall(r"[A-Za-z]{3,}", english)) - SHARED
    return sorted(word for word in words if re.search(rf"\b{word}\b", danish))


def _rule_reasons() -> Iterator[str]:
    days = [float(d) for d in range(30)]
    rising = [80.0] * 26 + [80.5, 81.5, 82.5, 83.0]
    for rule in (weight_gain_3d, weight_gain_moving_average):
        yield from (hit.reason for hit in rule(days, rising))
    yield from (hit.reason for hit in copd_spo2_drop(days, [95.0, 96.0] * 13 + [95.0, 89.0, 88.0, 88.0]))
    yield from (hit.reason for hit in copd_pulse_rise(days, [70.0, 72.0] * 13 + [71.0, 98.0, 101.0, 100.0]))


def _risk_rows() -> Iterator[np.ndarray]:
    """Feature rows that take ``describe`` through each of its branches."""
    for female, sign, count, admitted in (
        (1.0, 1.0, 1.0, 12.0),
        (0.0, -1.0, 2.0, 365.0),
        (np.nan, 1.0, 3.0, 1.0),
    ):
        row = np.full(len(FEATURE_NAMES), 1.0)
        for name in FEATURE_NAMES:
            if "_change_" in name:
                row[COLUMN[name]] = 1.7 * sign
            elif name.startswith("change_"):
                row[COLUMN[name]] = count
        for vital, latest, usual in (
            ("spo2", 91, 95),
            ("pulse", 88, 72),
            ("systolic", 128, 135),
            ("temperature", 37.9, 36.8),
            ("weight", 82.4, 80.1),
        ):
            row[COLUMN[f"{vital}_latest"]] = latest if sign > 0 else usual + 1
            row[COLUMN[f"{vital}_usual"]] = usual
        row[COLUMN["female"]] = female
        row[COLUMN["age"]] = 84
        row[COLUMN["news2"]] = 5
        row[COLUMN["missed_days_7d"]] = 2
        row[COLUMN["usual_measured_share"]] = 6 / 7
        row[COLUMN["adherence_drop_7d"]] = 2 / 7
        row[COLUMN["days_since_admission"]] = admitted
        for name in FEATURE_NAMES:
            if name.startswith("condition_"):
                row[COLUMN[name]] = 1.0 if sign > 0 else 0.0
        yield row


def _risk_reasons() -> Iterator[str]:
    for row in _risk_rows():
        for name in MODEL_FEATURES:
            yield describe(name, row)


def _news2_texts() -> Iterator[str]:
    recent = NOW - timedelta(hours=1)
    cases = (
        VitalSigns(spo2=Measured(90, recent), systolic_bp=Measured(95, recent), pulse=Measured(125, recent)),
        VitalSigns(
            respiration_rate=Measured(25, recent),
            spo2=Measured(91, recent),
            systolic_bp=Measured(99, recent),
            pulse=Measured(131, recent),
            temperature=Measured(39.2, recent),
            on_oxygen=True,
            acvpu="V",
        ),
        VitalSigns(
            spo2=Measured(97, recent), temperature=Measured(34.8, recent), scale2=True, acvpu="new confusion"
        ),
        VitalSigns(spo2=Measured(95, recent), pulse=Measured(30, recent), on_oxygen=False, acvpu="U"),
    )
    for vitals in cases:
        result = score_news2(vitals, NOW)
        decision = decide_alert(result)
        if decision is not None:
            yield decision.reason
        yield from result.notes


def _rule_alerts() -> Iterator[str]:
    for rule, reason in zip(RULE_TITLES.values(), _rule_reasons(), strict=False):
        yield decide_rule_alert(rule, reason).reason


SENTENCES = sorted({*_rule_reasons(), *_risk_reasons(), *_news2_texts(), *_rule_alerts()})


def test_the_models_make_every_kind_of_sentence() -> None:
    assert len(_rule_reasons_list := list(_rule_reasons())) >= 4, _rule_reasons_list
    assert any(s.startswith("NEWS2 ") and "Not measured" in s for s in SENTENCES)
    assert any("scale 2 scored as on air" in s for s in SENTENCES)
    assert any(s.startswith("Staff noted") and "twice" in s for s in SENTENCES)
    assert any(s.startswith("Admitted to hospital") for s in SENTENCES)


@pytest.mark.parametrize("english", SENTENCES)
def test_every_sentence_of_the_models_is_shown_in_danish(english: str) -> None:
    with use_language("da"):
        danish = model_text(english)
    assert danish != english
    assert not _english_left(english, danish), f"{english!r} -> {danish!r}"


@pytest.mark.parametrize("english", SENTENCES[:10])
def test_in_english_a_sentence_is_shown_as_stored(english: str) -> None:
    with use_language("en"):
        assert model_text(english) == english


def test_numbers_keep_their_decimals_with_a_decimal_comma() -> None:
    with use_language("da"):
        assert model_text("Weight up 2.3 kg in 3 days (80.0 -> 82.3 kg)") == (
            "Vægten er steget 2,3 kg på 3 dage (80,0 → 82,3 kg)"
        )
        assert model_text("Temperature 37.9 °C (latest)") == "Temperatur 37,9 °C (seneste)"
        assert model_text("SpO2 4 points below her usual 95 %") == "SpO₂ 4 point under borgerens vanlige 95 %"


def test_an_alert_of_news2_is_worded_from_its_parts() -> None:
    stored = (
        "NEWS2 6 (medium, aggregate 6): Pulse 131 /min: 3 points; SpO2 95 % (scale 1): 1 point. "
        "Not measured: respiration rate, air or oxygen, consciousness"
    )
    with use_language("da"):
        assert model_text(stored) == (
            "NEWS2 6 (middel, samlet score 6): Puls 131 /min: 3 point; SpO₂ 95 % (skala 1): 1 point. "
            "Ikke målt: Respirationsfrekvens, Atmosfærisk luft eller ilt, Bevidsthedsniveau"
        )


def test_a_rule_alert_gets_the_rules_danish_title() -> None:
    with use_language("da"):
        assert rule_title("hf-weight-gain-3d") == "Vægtøgning ved hjertesvigt"
        shown = model_text("Heart-failure weight gain: Weight up 2.3 kg in 3 days (80.0 -> 82.3 kg)")
    assert shown == "Vægtøgning ved hjertesvigt: Vægten er steget 2,3 kg på 3 dage (80,0 → 82,3 kg)"


def test_free_text_and_unknown_sentences_are_shown_as_stored() -> None:
    with use_language("da"):
        assert model_text("NEWS2 8: emergency assessment") == "NEWS2 8: emergency assessment"
        assert model_text("Ringede; hun har det godt.") == "Ringede; hun har det godt."
        # A NEWS2 alert whose parameter no pattern knows is not half translated.
        odd = "NEWS2 7 (high, aggregate 7): Lactate 4 mmol/l: 3 points"
        assert model_text(odd) == odd
