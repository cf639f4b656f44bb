"""Hostile form input on every POST of the patient view (hypothesis): nothing raises (no 500), and
nothing but a well-formed answer or request ever reaches the outbox."""

from __future__ import annotations

import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from view_helpers import ANNA, NOW, client_for, config, csrf, log_in, make_hub

from fhir_contract.contact import REASONS, validate_contact_request
from fhir_contract.questionnaire import validate_response

FIELDS = ("pin", "csrf", "reason", "answer", "resident", "lang", "next", "id")
PATHS = ("/login", "/who", "/language", "/contact", "/questionnaire", "/questionnaire/1", "/who-measured")
forms = st.dictionaries(st.sampled_from(FIELDS), st.text(max_size=80), max_size=5)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.sampled_from(PATHS), forms, st.booleans()), min_size=1, max_size=6))
def test_any_form_on_any_path_is_answered_without_an_error(
    posts: list[tuple[str, dict[str, str], bool]],
) -> None:
    with tempfile.TemporaryDirectory() as folder:
        hub = make_hub(Path(folder), config(Path(folder), residents=(ANNA,)))
        try:
            client = client_for(hub)
            page = log_in(client)
            for path, form, with_token in posts:
                data = dict(form)
                if with_token:
                    data["csrf"] = csrf(page)
                answer = client.post(path, data=data)
                assert answer.status_code in (200, 401, 403, 429), (path, data, answer.status_code)
                if "csrf" in answer.text:
                    page = answer.text
            for resource in hub.queued():
                if resource["resourceType"] == "Task":
                    assert validate_contact_request(resource, now=NOW).reason in (None, *REASONS)
                else:
                    assert validate_response(resource, now=NOW).patient_id == "p-anna"
        finally:
            hub.close()
