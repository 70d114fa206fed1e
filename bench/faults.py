"""`make bench-faults`: every fault scenario of tests/support/faults.py against real components on 127.0.0.1.

One line per scenario, then `faults: tried=N survived=N lost=N` (lost: log rows or registry records missing).
"""

from __future__ import annotations

import sys
import time

from tests.support.faults import SCENARIOS, Lab, Outcome


def main() -> int:
    lab = Lab().start()
    outcomes: list[Outcome] = []
    try:
        for scenario in SCENARIOS:
            start = time.perf_counter()
            try:
                outcome = scenario(lab)
            except Exception as exc:  # a scenario that breaks is a failed one, reported, and the rest still run
                outcome = Outcome(scenario.__name__, False, 0, f"the scenario itself failed: {exc!r}"[:300])
            outcomes.append(outcome)
            print(f"{outcome.line()} [{time.perf_counter() - start:.0f} s]", flush=True)
    finally:
        lab.stop()
    survived = sum(o.survived for o in outcomes)
    lost = sum(o.lost for o in outcomes)
    print(f"faults: tried={len(outcomes)} survived={survived} lost={lost}")
    return 0 if survived == len(outcomes) and lost == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
