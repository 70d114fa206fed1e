"""Faults operators meet, with the real components on 127.0.0.1 (tests/support/faults.py has the scenarios;
`make bench-faults` prints the same outcomes). Each must be survived with nothing lost."""

from __future__ import annotations

import pytest

from tests.processes import needs_postgres
from tests.support.faults import SCENARIOS, Lab

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def lab():
    needs_postgres()  # the lab's tracking server runs on PostgreSQL
    started = Lab().start()
    try:
        yield started
    finally:
        started.stop()


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s.__name__ for s in SCENARIOS])
def test_fault_is_survived_and_nothing_is_lost(lab, scenario):
    outcome = scenario(lab)
    print(outcome.line())
    assert outcome.survived, outcome.detail
    assert outcome.lost == 0, outcome.detail
