"""The models' stored English sentences, shown in the reader's language.

The scorer and the admission-risk job store what the models wrote, in English: an alert's reason
(``gateway.alerts.rules``: a NEWS2's parameters, or a disease rule's title and reason), a disease rule's
reason (``models.rules``), the factors of a 30-day risk (``models.admission_risk.describe``), the notes
of a NEWS2 (``models.news2``) and the reasons of the jobs' alerts (a rising 30-day risk, a missing
measurement, whose time is shown in the reader's zone). The database keeps them as written. Each comes
from a fixed template with numbers in it; here every template has an anchored pattern and a marked
message with the same values, so a page in Danish says "Vægt steget 2,3 kg på 3 dage (80,0 → 82,3 kg)"
where the model wrote "Weight up 2.3 kg in 3 days (80.0 -> 82.3 kg)". Numbers keep the decimals the
model gave them, with the language's decimal sign.

In English (the source language) a sentence is shown exactly as stored. A sentence no pattern knows
(free text, a template the models changed) is shown as stored, too; ``tests/gateway/api/
test_model_words.py`` drives the models themselves through every template and fails when one is no
longer recognised. The rule titles are marked here because ``gateway.alerts`` knows nothing of languages.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from decimal import Decimal

from babel.dates import format_skeleton
from babel.numbers import format_decimal

from gateway.alerts.home_rules import RULE_TITLES
from gateway.api.i18n import N_, SOURCE_LANGUAGE, current, current_language, gettext, ngettext

# A number as the models write it: "2", "2.3", "-0.5".
_N = r"-?\d+(?:\.\d+)?"

# The disease rules' names (``gateway.alerts.home_rules.RULE_TITLES``, word for word).
_RULE_TITLES: Mapping[str, str] = {
    "hf-weight-gain-3d": N_("Heart-failure weight gain"),
    "hf-weight-gain-ma": N_("Heart-failure weight trend"),
    "copd-spo2-drop": N_("COPD: SpO2 below personal baseline"),
    "copd-pulse-rise": N_("COPD: pulse above personal baseline"),
}
assert _RULE_TITLES == RULE_TITLES, "mark every rule title of gateway.alerts.home_rules here, word for word"

# NEWS2's parameters as ``models.news2`` names them in a sentence, and its bands.
_NEWS2_LABELS = {
    "Respiration rate": N_("Respiration rate"),
    "SpO2": N_("SpO2"),
    "Systolic BP": N_("Systolic BP"),
    "Pulse": N_("Pulse"),
    "Temperature": N_("Temperature"),
}
_NEWS2_MISSING = {
    "respiration rate": N_("Respiration rate"),
    "spo2": N_("SpO2"),
    "air or oxygen": N_("Air or oxygen"),
    "systolic bp": N_("Systolic BP"),
    "pulse": N_("Pulse"),
    "consciousness": N_("Consciousness"),
    "temperature": N_("Temperature"),
}
_SPO2_SCALES = {
    "scale 1": N_("scale 1"),
    "scale 2": N_("scale 2"),
    "scale 2, on oxygen": N_("scale 2, on oxygen"),
}
_ACVPU = {
    "alert": N_("awake and alert"),
    "new confusion": N_("new confusion"),
    "responds to voice": N_("responds to voice"),
    "responds to pain": N_("responds to pain"),
    "unresponsive": N_("unresponsive"),
}
_BANDS = {"low": N_("Low"), "low-medium": N_("Low-medium"), "medium": N_("Medium"), "high": N_("High")}

# The vital signs of the 30-day risk's factors (``models.features.TREND_VITALS``, capitalised).
_RISK_VITALS = {
    "SpO2": N_("SpO2"),
    "Pulse": N_("Pulse"),
    "Systolic blood pressure": N_("Systolic blood pressure"),
    "Temperature": N_("Temperature"),
    "Weight": N_("Weight"),
}
# ``models.features.RULE_TEXT``, capitalised as a factor starts with it.
_RISK_RULES = {
    "Weight-gain rule (2 kg in 3 days)": N_("Weight-gain rule (2 kg in 3 days)"),
    "Weight-gain rule (3-day vs 7-day average)": N_("Weight-gain rule (3-day vs 7-day average)"),
    "COPD SpO2-drop rule": N_("COPD SpO2-drop rule"),
    "COPD pulse-rise rule": N_("COPD pulse-rise rule"),
}
# ``models.codes.CHANGE_OBSERVATIONS`` without their Danish headings: what home-care staff noted.
_OBSERVATIONS = {
    "changed appetite or fluid intake": N_("changed appetite or fluid intake"),
    "changed mobility or function": N_("changed mobility or function"),
    "new confusion or changed alertness": N_("new confusion or changed alertness"),
    "changed mood or behaviour": N_("changed mood or behaviour"),
    "changed skin: colour, wounds, swelling": N_("changed skin: colour, wounds, swelling"),
    "changed breathing": N_("changed breathing"),
    "changed urination": N_("changed urination"),
    "new or worse pain": N_("new or worse pain"),
    "changed sleep": N_("changed sleep"),
    "generally unwell": N_("generally unwell"),
}
# A condition as a factor names it (``condition_heart_failure`` -> "heart failure").
_RISK_CONDITIONS = {
    "heart failure": N_("heart failure"),
    "copd": N_("copd"),
    "diabetes": N_("diabetes"),
    "frailty": N_("frailty"),
}


def _alternatives(words: Mapping[str, str]) -> str:
    return "|".join(re.escape(word) for word in sorted(words, key=len, reverse=True))


def _num(text: str) -> str:
    """A number as a model wrote it ("2.3"), in the current language with as many decimals ("2,3")."""
    decimals = len(text.partition(".")[2])
    return format_decimal(Decimal(text), "0." + "0" * decimals if decimals else "0", locale=current().locale)


def _days(text: str) -> str:
    """ "3 days" / "1 day" as the models write a span, in the current language."""
    num = int(text.split()[0])
    return ngettext("%(num)d day", "%(num)d days", num)


def _points(text: str) -> str:
    return ngettext("%(num)d point", "%(num)d points", int(text))


# --- NEWS2: a scored parameter, an alert's reason, a note ------------------------------------------------

_PARAMETER = re.compile(
    rf"(?:(?P<air>On oxygen|On air)"
    rf"|Consciousness (?P<letter>[ACVPU]) \((?P<acvpu>{_alternatives(_ACVPU)})\)"
    rf"|(?P<label>{_alternatives(_NEWS2_LABELS)}) (?P<value>{_N})(?P<unit> /min| %| mmHg| °C)"
    rf"(?: \((?P<scale>{_alternatives(_SPO2_SCALES)})\))?)"
    rf": (?P<points>\d+) points?"
)


def _parameter(text: str) -> str | None:
    """A parameter as ``models.news2.ParameterScore.describe`` wrote it ("SpO2 91 % (scale 1): 3 points")."""
    m = _PARAMETER.fullmatch(text)
    if m is None:
        return None
    if m["air"]:
        what = gettext(N_("On oxygen") if m["air"] == "On oxygen" else N_("On air"))
    elif m["letter"]:
        what = f"{gettext('Consciousness')} {m['letter']} ({gettext(_ACVPU[m['acvpu']])})"
    else:
        what = f"{gettext(_NEWS2_LABELS[m['label']])} {_num(m['value'])}{m['unit']}"
        if m["scale"]:
            what += f" ({gettext(_SPO2_SCALES[m['scale']])})"
    return f"{what}: {_points(m['points'])}"


_MISSING_NAME = _alternatives(_NEWS2_MISSING)
_NEWS2_ALERT = re.compile(
    rf"NEWS2 (?P<total>\d+) \((?P<band>{_alternatives(_BANDS)}), "
    r"(?:(?P<red>red score in a single parameter)|aggregate (?P<aggregate>\d+))\): (?P<why>.*?)"
    rf"(?:\. Not measured: (?P<missing>(?:{_MISSING_NAME})(?:, (?:{_MISSING_NAME}))*))?"
)


def _news2_alert(m: re.Match[str]) -> str | None:
    """An alert's reason as ``gateway.alerts.rules.decide_alert`` wrote it."""
    parts = [_parameter(part) for part in m["why"].split("; ")]
    if any(part is None for part in parts):
        return None
    if m["red"]:
        trigger = gettext("red score in a single parameter")
    else:
        trigger = gettext("aggregate %(total)s", total=m["aggregate"])
    text = gettext(
        "NEWS2 %(total)s (%(band)s, %(trigger)s): %(why)s",
        total=m["total"],
        band=gettext(_BANDS[m["band"]]).lower(),
        trigger=trigger,
        why="; ".join(part for part in parts if part),
    )
    if m["missing"]:
        names = ", ".join(gettext(_NEWS2_MISSING[name]) for name in m["missing"].split(", "))
        text += gettext(". Not measured: %(parameters)s", parameters=names)
    return text


def _scale2_note(m: re.Match[str]) -> str:
    return ngettext(
        "SpO2 %(value)s %% on scale 2 scored as on air because air or oxygen is not recorded; on oxygen it"
        " would score %(num)d point",
        "SpO2 %(value)s %% on scale 2 scored as on air because air or oxygen is not recorded; on oxygen it"
        " would score %(num)d points",
        int(m["points"]),
        value=_num(m["value"]),
    )


# --- the disease rules (models.rules) and an alert of one ------------------------------------------------


def _rule_alert(m: re.Match[str]) -> str:
    """A disease rule's alert (``gateway.alerts.rules.decide_rule_alert``): its title, then its reason."""
    title = next(rule for rule, text in _RULE_TITLES.items() if text == m["title"])
    return f"{rule_title(title)}: {model_text(m['reason'])}"


def _weight_up(m: re.Match[str]) -> str:
    return gettext(
        "Weight up %(gain)s kg in %(span)s (%(before)s → %(after)s kg)",
        gain=_num(m["gain"]),
        span=_days(m["span"]),
        before=_num(m["before"]),
        after=_num(m["after"]),
    )


def _weight_average(m: re.Match[str]) -> str:
    return gettext(
        "Average weight of the last %(short)s: %(average)s kg, %(gain)s kg above its lowest in the"
        " %(long)s before (%(low)s kg)",
        short=_days(m["short"]),
        average=_num(m["average"]),
        gain=_num(m["gain"]),
        long=_days(m["long"]),
        low=_num(m["low"]),
    )


def _spo2_drop(m: re.Match[str]) -> str:
    return gettext(
        "SpO2 %(value)s %%, %(drop)s points below the patient's usual %(usual)s %%",
        value=_num(m["value"]),
        drop=_num(m["drop"]),
        usual=_num(m["usual"]),
    )


def _pulse_rise(m: re.Match[str]) -> str:
    return gettext(
        "Pulse %(value)s /min, %(rise)s above the patient's usual %(usual)s /min",
        value=_num(m["value"]),
        rise=_num(m["rise"]),
        usual=_num(m["usual"]),
    )


# --- the factors of a 30-day risk (models.admission_risk.describe) --------------------------------------

_DIFFERENCE = r"(?P<diff> points?| beats/min| mmHg| °C| kg)"
_VALUE_UNIT = r"(?P<unit> %|/min| mmHg| °C| kg)"


def _difference(amount: str, unit: str) -> str:
    """A difference with its unit: "3 points", "12 beats/min", "2,3 kg"."""
    if unit.strip() in ("point", "points"):
        return ngettext("%(num)d point", "%(num)d points", int(Decimal(amount)))
    if unit == " beats/min":
        return gettext("%(amount)s beats/min", amount=_num(amount))
    return f"{_num(amount)}{unit}"


def _deviation(m: re.Match[str]) -> str:
    values = {
        "vital": gettext(_RISK_VITALS[m["vital"]]),
        "amount": _difference(m["amount"], m["diff"]),
        "usual": f"{_num(m['usual'])}{m['unit']}",
    }
    if m["side"] == "above":
        return gettext("%(vital)s %(amount)s above the patient's usual %(usual)s", **values)
    return gettext("%(vital)s %(amount)s below the patient's usual %(usual)s", **values)


def _change(m: re.Match[str]) -> str:
    values = {
        "vital": gettext(_RISK_VITALS[m["vital"]]),
        "amount": _difference(m["amount"], m["diff"]),
        "days": m["days"],
    }
    if m["way"] == "up":
        return gettext("%(vital)s up %(amount)s in %(days)s days", **values)
    return gettext("%(vital)s down %(amount)s in %(days)s days", **values)


def _latest(m: re.Match[str]) -> str:
    value = f"{_num(m['value'])}{m['unit']}"
    return gettext("%(vital)s %(value)s (latest)", vital=gettext(_RISK_VITALS[m["vital"]]), value=value)


def _staff_noted(m: re.Match[str]) -> str:
    times = {"once": 1, "twice": 2}.get(m["times"]) or int(m["times"].split()[0])
    return ngettext(
        "Staff noted %(observation)s %(num)d time this week",
        "Staff noted %(observation)s %(num)d times this week",
        times,
        observation=gettext(_OBSERVATIONS[m["observation"]]),
    )


# The worst answer of the symptom checks (``models.admission_risk.describe``), one sentence per level.
_SYMPTOM_WORST = {
    "fine": N_("Symptom check: worst answer of the last %(days)s days was fine"),
    "in between": N_("Symptom check: worst answer of the last %(days)s days was in between"),
    "worse": N_("Symptom check: worst answer of the last %(days)s days was worse"),
}


def _symptoms_worse(m: re.Match[str]) -> str:
    return ngettext(
        "Symptom check: %(num)d answer of the last %(days)s days said worse",
        "Symptom check: %(num)d answers of the last %(days)s days said worse",
        int(m["num"]),
        days=m["days"],
    )


def _has(m: re.Match[str]) -> str:
    condition = gettext(_RISK_CONDITIONS[m["condition"]])
    if m["has"] == "Has":
        return gettext("Has %(condition)s", condition=condition)
    return gettext("Does not have %(condition)s", condition=condition)


# --- the jobs' alerts: a rising 30-day risk (gateway.alerts.risk_rise), a missing measurement
# (gateway.alerts.missing) ------------------------------------------------------------------------------

# The measurements as ``gateway.alerts.missing.NAMES`` names them in a sentence.
_MISSING_MEASUREMENTS = {
    "blood pressure": N_("blood pressure"),
    "SpO2": N_("SpO2"),
    "weight": N_("weight"),
    "temperature": N_("temperature"),
    "blood glucose": N_("blood glucose"),
}


def _risk_rise(m: re.Match[str]) -> str:
    text = gettext(
        "30-day admission risk rose from %(before)s %% to %(after)s %% in %(span)s"
        " (model trained on SYNTHETIC data only)",
        before=_num(m["before"]),
        after=_num(m["after"]),
        span=_days(m["span"]),
    )
    if not m["factors"]:
        return text
    return f"{text}: {'; '.join(model_text(factor) for factor in m['factors'].split('; '))}"


def _missing(m: re.Match[str]) -> str:
    since = datetime.strptime(m["since"], "%Y-%m-%d %H:%M").replace(tzinfo=UTC)
    localization = current()
    zone, locale = localization.time_zone, localization.locale
    # As ``gateway.api.presenters.when`` shows a time (which imports this module).
    day = format_skeleton("yMMMd", since, tzinfo=zone, locale=locale)
    clock = format_skeleton("Hm", since, tzinfo=zone, locale=locale)
    return gettext(
        "No %(measurement)s received since %(since)s (expected every %(hours)s h)",
        measurement=gettext(_MISSING_MEASUREMENTS[m["measurement"]]),
        since=str(locale.datetime_formats["medium"]).format(clock, day),
        hours=_num(m["hours"]),
    )


def _planned_missing(m: re.Match[str]) -> str:
    due = datetime.strptime(m["due"], "%Y-%m-%d %H:%M").replace(tzinfo=UTC)
    localization = current()
    zone, locale = localization.time_zone, localization.locale
    day = format_skeleton("yMMMd", due, tzinfo=zone, locale=locale)
    clock = format_skeleton("Hm", due, tzinfo=zone, locale=locale)
    return gettext(
        "Planned %(measurement)s measurement due %(due)s not received (grace %(minutes)s min)",
        measurement=gettext(_MISSING_MEASUREMENTS[m["measurement"]]),
        due=str(locale.datetime_formats["medium"]).format(clock, day),
        minutes=m["minutes"],
    )


# --- a reading outside the patient's own limits (gateway.alerts.evaluation.threshold_reason) -------------

# The vital signs as ``gateway.alerts.evaluation`` names them in a sentence.
_OWN_LIMIT_VITALS = {
    "SpO2": N_("SpO2"),
    "Pulse": N_("Pulse"),
    "Systolic blood pressure": N_("Systolic blood pressure"),
    "Diastolic blood pressure": N_("Diastolic blood pressure"),
    "Temperature": N_("Temperature"),
    "Weight": N_("Weight"),
    "Respiration rate": N_("Respiration rate"),
}


def _own_limit(m: re.Match[str]) -> str:
    values = {
        "vital": gettext(_OWN_LIMIT_VITALS[m["vital"]]),
        "value": f"{_num(m['value'])} {m['unit']}",
        "limit": f"{_num(m['limit'])} {m['unit']}",
    }
    if m["side"] == "above":
        return gettext("%(vital)s %(value)s, above the patient's own red limit of %(limit)s", **values)
    return gettext("%(vital)s %(value)s, below the patient's own red limit of %(limit)s", **values)


_V = _alternatives(_RISK_VITALS)
_SENTENCES: tuple[tuple[re.Pattern[str], Callable[[re.Match[str]], str | None]], ...] = tuple(
    (re.compile(pattern), word)
    for pattern, word in (
        # Alerts (gateway.alerts.rules).
        (_NEWS2_ALERT.pattern, _news2_alert),
        (
            rf"(?P<vital>{_alternatives(_OWN_LIMIT_VITALS)}) (?P<value>{_N}) (?P<unit>%|/min|mmHg|°C|kg), "
            rf"(?P<side>above|below) the patient's own red limit of (?P<limit>{_N}) (?P=unit)",
            _own_limit,
        ),
        (rf"(?P<title>{_alternatives({t: t for t in _RULE_TITLES.values()})}): (?P<reason>.+)", _rule_alert),
        (
            rf"30-day admission risk rose from (?P<before>{_N}) % to (?P<after>{_N}) % "
            r"in (?P<span>\d+ days?) \(model trained on SYNTHETIC data only\)(?:: (?P<factors>.+))?",
            _risk_rise,
        ),
        (
            rf"No (?P<measurement>{_alternatives(_MISSING_MEASUREMENTS)}) received since "
            rf"(?P<since>\d{{4}}-\d\d-\d\d \d\d:\d\d) UTC \(expected every (?P<hours>{_N}) h\)",
            _missing,
        ),
        (
            rf"Planned (?P<measurement>{_alternatives(_MISSING_MEASUREMENTS)}) measurement due "
            r"(?P<due>\d{4}-\d\d-\d\d \d\d:\d\d) UTC not received \(grace (?P<minutes>\d+) min\)",
            _planned_missing,
        ),
        # NEWS2's note (models.news2).
        (
            rf"SpO2 (?P<value>{_N}) % on scale 2 scored as on air because air or oxygen is not recorded; "
            r"on oxygen it would score (?P<points>\d+) points?",
            _scale2_note,
        ),
        # The disease rules (models.rules).
        (
            rf"Weight up (?P<gain>{_N}) kg in (?P<span>\d+ days?) \((?P<before>{_N}) -> (?P<after>{_N}) kg\)",
            _weight_up,
        ),
        (
            rf"Average weight of the last (?P<short>\d+ days?) (?P<average>{_N}) kg, (?P<gain>{_N}) kg above "
            rf"its lowest in the (?P<long>\d+ days?) before \((?P<low>{_N}) kg\)",
            _weight_average,
        ),
        (
            rf"SpO2 (?P<value>{_N}) %, (?P<drop>{_N}) points below this patient's usual (?P<usual>{_N}) %",
            _spo2_drop,
        ),
        (
            rf"Pulse (?P<value>{_N}) /min, (?P<rise>{_N}) above this patient's usual (?P<usual>{_N}) /min",
            _pulse_rise,
        ),
        # The 30-day risk's factors (models.admission_risk.describe).
        (
            rf"(?P<vital>{_V}) (?P<amount>{_N}){_DIFFERENCE} (?P<side>above|below) (?:her|his|their) usual "
            rf"(?P<usual>{_N}){_VALUE_UNIT}",
            _deviation,
        ),
        (rf"(?P<vital>{_V}) (?P<way>up|down) (?P<amount>{_N}){_DIFFERENCE} in (?P<days>\d+) days", _change),
        (rf"(?P<vital>{_V}) (?P<value>{_N}){_VALUE_UNIT} \(latest\)", _latest),
        (
            rf"(?P<rule>{_alternatives(_RISK_RULES)}) fired in the last 3 days",
            lambda m: gettext("%(rule)s fired in the last 3 days", rule=gettext(_RISK_RULES[m["rule"]])),
        ),
        (
            r"Missed (?P<missed>\d+) of the last (?P<days>\d+) days of measurements",
            lambda m: gettext(
                "Missed %(missed)s of the last %(days)s days of measurements",
                missed=m["missed"],
                days=m["days"],
            ),
        ),
        (
            r"Measured on (?P<measured>-?\d+) of the last 7 days, usually (?P<usual>\d+) of 7",
            lambda m: gettext(
                "Measured on %(measured)s of the last 7 days, usually %(usual)s of 7",
                measured=m["measured"],
                usual=m["usual"],
            ),
        ),
        (
            rf"Staff noted (?P<observation>{_alternatives(_OBSERVATIONS)}) (?P<times>once|twice|\d+ times) "
            r"this week",
            _staff_noted,
        ),
        (
            rf"Symptom check: worst answer of the last (?P<days>\d+) days was "
            rf"(?P<level>{_alternatives(_SYMPTOM_WORST)})",
            lambda m: gettext(_SYMPTOM_WORST[m["level"]], days=m["days"]),
        ),
        (r"Symptom check: (?P<num>\d+) answers? of the last (?P<days>\d+) days said worse", _symptoms_worse),
        (
            r"Symptom check not answered on (?P<num>\d+) of the last (?P<days>\d+) days",
            lambda m: gettext(
                "Symptom check not answered on %(num)s of the last %(days)s days",
                num=m["num"],
                days=m["days"],
            ),
        ),
        (
            r"Missed (?P<missed>\d+) of (?P<due>\d+) planned measurements in the last (?P<days>\d+) days",
            lambda m: gettext(
                "Missed %(missed)s of %(due)s planned measurements in the last %(days)s days",
                missed=m["missed"],
                due=m["due"],
                days=m["days"],
            ),
        ),
        (
            r"NEWS2 (?P<score>\d+) from the day's readings",
            lambda m: gettext("NEWS2 %(score)s from the day's readings", score=m["score"]),
        ),
        (
            rf"Usual NEWS2 (?P<score>{_N}) \(median of the last (?P<days>\d+) days\)",
            lambda m: gettext(
                "Usual NEWS2 %(score)s (median of the last %(days)s days)",
                score=_num(m["score"]),
                days=m["days"],
            ),
        ),
        (r"Age (?P<age>\d+)", lambda m: gettext("Age %(age)s", age=m["age"])),
        (r"Sex: female", lambda m: gettext("Sex: female")),
        (r"Sex: male", lambda m: gettext("Sex: male")),
        (rf"(?P<has>Has|Does not have) (?P<condition>{_alternatives(_RISK_CONDITIONS)})", _has),
        (r"No recent hospital admission", lambda m: gettext("No recent hospital admission")),
        (
            r"Admitted to hospital (?P<days>\d+) days ago",
            lambda m: ngettext(
                "Admitted to hospital %(num)d day ago",
                "Admitted to hospital %(num)d days ago",
                int(m["days"]),
            ),
        ),
    )
)


def rule_title(rule: str) -> str:
    """A disease rule's name in the current language ("Heart-failure weight gain"); unknown ones as they
    are."""
    return gettext(_RULE_TITLES[rule]) if rule in _RULE_TITLES else rule


def model_text(text: str) -> str:
    """A sentence a model stored, in the current language; as stored in English, or when no template of
    the models matches it."""
    if current_language() == SOURCE_LANGUAGE:
        return text
    for pattern, word in _SENTENCES:
        m = pattern.fullmatch(text)
        if m is not None:
            return word(m) or text
    return text
