"""Readings of a shared device nobody could be given (helper store ``edge_agent.unattributed``): the
view lists them, a resident says "it was me", and the reading enters the outbox and the resident's own
history as theirs; it is then gone from the list for everyone."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from view_helpers import ANNA, BENT, NOW, PIN, Hub, blood_pressure, client_for, config, csrf, log_in, make_hub

from edge_agent.unattributed import NOBODY, UnattributedReadings


@pytest.fixture
def household(tmp_path: Path) -> Iterator[Hub]:
    hub = make_hub(tmp_path, config(tmp_path, residents=(ANNA, BENT)))
    store = UnattributedReadings(tmp_path / "unattributed.sqlite3")
    hub.unattributed = store
    yield hub
    store.close()
    hub.close()


def test_a_resident_claims_a_shared_cuffs_reading(household: Hub) -> None:
    store = household.unattributed
    assert isinstance(store, UnattributedReadings)
    pending_id = store.add("cuff-1", None, [blood_pressure(NOBODY, NOW - timedelta(minutes=20), 141, 88)])
    client = client_for(household)
    page = log_in(client, resident="p-bent")
    assert "Der er målinger, som vi ikke ved, hvem tog." in page
    listing = client.get("/who-measured")
    assert "141/88 mmHg" in listing.text and f'id="claim-{pending_id}"' in listing.text
    done = client.post("/who-measured", data={"id": str(pending_id), "csrf": csrf(listing.text)})
    assert "Målingen er gemt som din" in done.text and "141/88" not in done.text
    (queued,) = household.queued()
    assert queued["subject"] == {"reference": "Patient/p-bent"}
    assert "p-bent" in queued["identifier"][0]["value"]
    assert [r.summary() for r in household.history.readings("p-bent", NOW - timedelta(days=1))] == [
        "141/88 mmHg"
    ]
    assert household.history.readings("p-anna", NOW - timedelta(days=1)) == []
    # Claimed once: a second press (or the other resident) gets nothing more.
    again = client.post("/who-measured", data={"id": str(pending_id), "csrf": csrf(done.text)})
    assert again.url.path == "/who-measured" and len(household.queued()) == 1


def test_a_claim_of_no_pending_reading_changes_nothing(household: Hub) -> None:
    client = client_for(household)
    page = log_in(client, PIN, resident="p-anna")
    for bad in ("999", "-1", "x", ""):
        answer = client.post("/who-measured", data={"id": bad, "csrf": csrf(page)})
        assert answer.status_code == 200 and answer.url.path == "/who-measured"
    assert household.queued() == []
