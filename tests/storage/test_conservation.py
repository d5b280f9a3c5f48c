"""The one conservation check the engine, the debugger and the alerts ask."""

from __future__ import annotations

from forwarder.storage.conservation import Balance, balance

COUNTS = {
    ("main", "conversions", "accepted"): 10,
    ("main", "conversions", "delivered"): 6,
    ("main", "conversions", "dead"): 1,
    ("main", "conversions", "pending"): 2,
    ("main", "conversions", "leased"): 1,
    ("main", "contacts", "accepted"): 5,
    ("main", "contacts", "expired"): 1,
    ("main", "contacts", "held"): 3,
}


def test_a_queue_whose_items_are_all_in_some_state_balances() -> None:
    assert balance(COUNTS, ("main", "conversions")) == Balance(accepted=10, final=7, open=3)
    assert balance(COUNTS, ("main", "conversions")).drift == 0


def test_an_item_in_no_state_is_drift_of_its_queue_and_of_the_total() -> None:
    assert balance(COUNTS, ("main", "contacts")).drift == 1
    assert balance(COUNTS) == Balance(accepted=15, final=8, open=6)
    assert balance(COUNTS).drift == 1


def test_an_unknown_queue_balances_at_zero() -> None:
    assert balance(COUNTS, ("other", "conversions")) == Balance(accepted=0, final=0, open=0)
