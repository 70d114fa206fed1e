"""The admin lockout: per client and window, and the same whichever worker a client reaches."""

from __future__ import annotations

from sotag.serving.admin_guard import FailedAttempts


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def test_workers_sharing_the_failures_file_lock_a_client_out_together(tmp_path):
    clock = Clock()
    path = tmp_path / "run" / "admin-failures.db"
    one, two = FailedAttempts(3, 60.0, clock, path), FailedAttempts(3, 60.0, clock, path)
    one.failed("10.0.0.1")
    two.failed("10.0.0.1")
    assert one.retry_after("10.0.0.1") is None and two.retry_after("10.0.0.1") is None
    one.failed("10.0.0.1")  # the third failure, spread over two workers
    clock.now += 10
    assert one.retry_after("10.0.0.1") == two.retry_after("10.0.0.1") == 50
    assert two.retry_after("10.0.0.2") is None  # another client is not locked out
    clock.now += 50
    assert one.retry_after("10.0.0.1") is None and two.retry_after("10.0.0.1") is None


def test_one_worker_keeps_its_failures_in_memory():
    clock = Clock()
    guard = FailedAttempts(2, 30.0, clock)
    guard.failed("c")
    guard.failed("c")
    assert guard.retry_after("c") == 30
    clock.now += 30
    assert guard.retry_after("c") is None
