"""The soft lockout's policy and counters, on the limiter's in-memory storage and a fake clock."""

import time

import pytest
from limits.storage import MemoryStorage

from freshcom_customers.services.lockouts import Lockouts, Policy


class Clock:
    def __init__(self):
        self.now = 1_700_000_000.0

    def __call__(self):
        return self.now


@pytest.fixture
def clock():
    return Clock()


def lockouts(clock, **policy) -> Lockouts:
    return Lockouts(MemoryStorage(), Policy(**policy), "test", clock)


@pytest.mark.parametrize(
    ("failures", "delay"),
    [(0, 0), (4, 0), (5, 1), (6, 2), (7, 4), (14, 512), (15, 900), (1000, 900)],
)
def test_the_default_policy(failures, delay):
    assert Policy().delay(failures) == delay


def test_the_defaults_stay_under_asvs_100_failures_an_hour():
    policy, clock, failures = Policy(), 0, 0
    while clock < 3600:  # an attacker failing the moment each delay ends
        failures += 1
        clock += max(policy.delay(failures), 0.001)
    assert failures <= 20


def test_a_lock_ends_when_its_delay_has_passed(clock):
    locks = lockouts(clock, threshold=2, base_delay=10)
    assert locks.failed("alice") == 0
    assert locks.failed("alice") == 10
    assert locks.remaining("alice") == 10
    clock.now += 9.5
    assert locks.remaining("alice") == 1
    clock.now += 0.5
    assert locks.remaining("alice") == 0
    assert locks.remaining("bob") == 0


def test_the_counter_forgets_after_its_window(clock):
    locks = lockouts(clock, threshold=2, window=1)
    locks.failed("alice")
    time.sleep(1.1)  # the storage expires keys on the real clock
    assert locks.failed("alice") == 0


def test_a_success_resets_its_scope_and_makes_the_address_familiar(clock):
    locks = lockouts(clock, threshold=1, base_delay=60)
    assert locks.scope("alice", "home") == "test/alice"
    locks.failed("test/alice")
    locks.succeeded("alice", "home", "test/alice")
    assert locks.remaining("test/alice") == 0
    assert locks.scope("alice", "home") == "test/alice/home"
    assert locks.scope("alice", "elsewhere") == "test/alice"
