"""The household PIN's gate and the signed session cookie, with hostile input (hypothesis)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from edge_agent.patient_view.security import LOCK_S, MAX_FAILURES, PinGate, SessionCodec, same_token


def test_the_pin_opens_and_anything_else_does_not() -> None:
    gate = PinGate("2468")
    assert gate.check("2468") == "ok"
    assert gate.check("2469") == "wrong" and gate.check("") == "wrong" and gate.check("24680") == "wrong"


def test_five_wrong_in_a_row_lock_for_five_minutes_and_a_right_one_resets_the_count() -> None:
    clock = [0.0]
    gate = PinGate("2468", monotonic=lambda: clock[0])
    for _ in range(MAX_FAILURES - 1):
        assert gate.check("0000") == "wrong"
    assert gate.check("2468") == "ok"  # the count starts again
    for _ in range(MAX_FAILURES - 1):
        assert gate.check("0000") == "wrong"
    assert gate.check("0000") == "locked"
    assert gate.check("2468") == "locked" and gate.locked_for() == LOCK_S
    clock[0] += LOCK_S - 1
    assert gate.check("2468") == "locked"
    clock[0] += 1
    assert gate.check("2468") == "ok"


@given(st.text(max_size=40))
def test_no_other_text_opens_the_gate(attempt: str) -> None:
    gate = PinGate("2468", max_failures=10**9)
    assert gate.check(attempt) == ("ok" if attempt == "2468" else "wrong")


def test_a_session_round_trips_and_a_changed_byte_is_no_session() -> None:
    codec = SessionCodec(clock=lambda: 100.0)
    session = codec.new("da").with_(authenticated=True, resident="p-anna", answers={"cough": "worse"})
    cookie = codec.encode(session)
    assert codec.decode(cookie) == session
    payload, _, signature = cookie.partition(".")
    forged = SessionCodec(clock=lambda: 100.0).encode(session.with_(resident="p-bent"))
    assert codec.decode(forged) is None  # another key
    assert codec.decode(forged.partition(".")[0] + "." + signature) is None  # another payload
    assert codec.decode(payload) is None and codec.decode("") is None and codec.decode(None) is None


def test_a_session_ends_at_its_expiry() -> None:
    now = [100.0]
    codec = SessionCodec(lifetime_s=60, clock=lambda: now[0])
    cookie = codec.encode(codec.new("en"))
    now[0] += 59
    assert codec.decode(cookie) is not None
    now[0] += 1
    assert codec.decode(cookie) is None


@given(st.text(max_size=300))
def test_decoding_any_cookie_never_raises(cookie: str) -> None:
    assert SessionCodec().decode(cookie) is None


@given(st.text(max_size=60), st.text(min_size=1, max_size=60))
def test_tokens_match_only_when_equal(given_token: str, expected: str) -> None:
    assert same_token(given_token, expected) == (given_token == expected)
