"""Job leases on both databases: acquire, renew, release, expiry, and one run per firing."""

from __future__ import annotations

import datetime as dt
import threading
import time

import pytest
from sqlalchemy.engine import Engine

from smartseg.worker.lease import Heartbeat, Leases

from .conftest import FakeClock

T0 = dt.datetime(2026, 6, 30, 7, 0, tzinfo=dt.UTC)
TTL = dt.timedelta(seconds=60)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(T0)


def _leases(engine: Engine, holder: str, clock: FakeClock) -> Leases:
    return Leases(engine, holder, ttl=TTL, clock=clock)


def test_acquire_a_free_job_records_holder_and_expiry(engine: Engine, clock: FakeClock) -> None:
    a = _leases(engine, "a", clock)
    attempt = a.acquire("pipeline", T0)
    assert attempt.acquired and attempt.until == T0 + TTL
    state = a.state("pipeline")
    assert state is not None
    assert (state.holder, state.acquired_until, state.last_fired) == ("a", T0 + TTL, T0)
    assert state.held(clock())


def test_a_second_holder_cannot_take_an_unexpired_lease(engine: Engine, clock: FakeClock) -> None:
    a, b = _leases(engine, "a", clock), _leases(engine, "b", clock)
    assert a.acquire("pipeline").acquired
    clock.advance(seconds=59)
    attempt = b.acquire("pipeline")
    assert not attempt.acquired
    assert (attempt.reason, attempt.holder) == ("held", "a")
    assert "running on replica a" in attempt.describe()


def test_an_expired_lease_goes_to_the_next_replica(engine: Engine, clock: FakeClock) -> None:
    a, b = _leases(engine, "a", clock), _leases(engine, "b", clock)
    assert a.acquire("pipeline").acquired
    clock.advance(seconds=60)
    assert b.acquire("pipeline").acquired
    # The stalled holder learns it lost the job when it next renews.
    assert not a.renew("pipeline")
    assert a.acquire("pipeline").reason == "held"


def test_renew_extends_the_lease(engine: Engine, clock: FakeClock) -> None:
    a, b = _leases(engine, "a", clock), _leases(engine, "b", clock)
    assert a.acquire("sync").acquired
    clock.advance(seconds=50)
    assert a.renew("sync")
    clock.advance(seconds=50)  # past the first expiry, within the renewed one
    assert b.acquire("sync").reason == "held"
    state = a.state("sync")
    assert state is not None and state.heartbeat_at == T0 + dt.timedelta(seconds=50)
    assert not b.renew("sync")  # only the holder renews


def test_release_frees_the_job_and_keeps_who_ran_it(engine: Engine, clock: FakeClock) -> None:
    a, b = _leases(engine, "a", clock), _leases(engine, "b", clock)
    assert a.acquire("evaluate").acquired
    assert a.release("evaluate")
    state = a.state("evaluate")
    assert state is not None and state.holder == "a" and not state.held(clock())
    assert not b.release("evaluate")  # not b's to give back
    assert b.acquire("evaluate").acquired


def test_the_same_firing_never_runs_twice(engine: Engine, clock: FakeClock) -> None:
    a, b = _leases(engine, "a", clock), _leases(engine, "b", clock)
    firing = T0
    assert a.acquire("evaluate", firing).acquired
    assert a.release("evaluate")
    clock.advance(seconds=1)
    late = b.acquire("evaluate", firing)
    assert not late.acquired and late.reason == "fired"
    # Nor an older one, by anyone, even the replica that ran it.
    assert a.acquire("evaluate", firing - dt.timedelta(seconds=2)).reason == "fired"
    assert b.acquire("evaluate", firing + dt.timedelta(seconds=2)).acquired


def test_a_run_by_hand_claims_no_firing(engine: Engine, clock: FakeClock) -> None:
    a, b = _leases(engine, "a", clock), _leases(engine, "b", clock)
    assert a.acquire("pull", T0).acquired and a.release("pull")
    assert b.acquire("pull").acquired and b.release("pull")
    state = b.state("pull")
    assert state is not None and state.last_fired == T0


def test_leases_are_per_job(engine: Engine, clock: FakeClock) -> None:
    a, b = _leases(engine, "a", clock), _leases(engine, "b", clock)
    assert a.acquire("pipeline", T0).acquired
    assert b.acquire("pull.stripe", T0).acquired
    assert a.release_all() == 1
    assert b.acquire("pipeline", T0 + TTL).acquired


def test_racing_replicas_take_one_firing_once(engine: Engine, clock: FakeClock) -> None:
    replicas = [_leases(engine, f"r{i}", clock) for i in range(8)]
    barrier = threading.Barrier(len(replicas))
    won: list[str] = []

    def race(leases: Leases) -> None:
        barrier.wait()
        for offset in range(5):
            if leases.acquire("pipeline", T0 + dt.timedelta(minutes=offset)).acquired:
                won.append(f"{leases.holder}@{offset}")
                leases.release("pipeline")

    threads = [threading.Thread(target=race, args=(r,)) for r in replicas]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    offsets = sorted(int(w.split("@")[1]) for w in won)
    assert len(offsets) == len(set(offsets)), won  # no firing twice
    assert offsets, "somebody must win a firing"


def test_heartbeat_renews_and_notices_a_takeover(engine: Engine) -> None:
    a = Leases(engine, "a", ttl=dt.timedelta(seconds=30), clock=lambda: dt.datetime.now(dt.UTC))
    assert a.acquire("pipeline").acquired
    first = a.state("pipeline")
    assert first is not None and first.acquired_until is not None
    with Heartbeat(a, "pipeline", every=0.05) as heartbeat:
        time.sleep(0.3)
        renewed = a.state("pipeline")
        assert renewed is not None and renewed.acquired_until is not None
        assert renewed.acquired_until > first.acquired_until
        # A replica whose clock says the lease ran out takes it over.
        later = dt.datetime.now(dt.UTC) + dt.timedelta(minutes=5)
        b = Leases(engine, "b", ttl=dt.timedelta(seconds=30), clock=lambda: later)
        assert b.acquire("pipeline").acquired
        assert heartbeat.lost.wait(5)
