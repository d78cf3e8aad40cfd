"""kube.lease, pure part: reading a Lease record and deciding who holds it."""

from __future__ import annotations

import datetime as dt

from agents.kube.lease import LeaseRecord, micro_time, parse_lease, parse_time, state

NOW = dt.datetime(2026, 11, 26, 20, 0, 0, tzinfo=dt.UTC)


def record(holder: str, renewed_ago: float | None, duration: float = 15.0) -> LeaseRecord:
    renew = None if renewed_ago is None else NOW - dt.timedelta(seconds=renewed_ago)
    return LeaseRecord(holder, duration, renew, renew, 0, "7")


def test_state() -> None:
    assert state(record("", 1), "me", NOW) == "free"
    assert state(record("me", 100), "me", NOW) == "ours"
    assert state(record("other", 1), "me", NOW) == "held"
    assert state(record("other", 15), "me", NOW) == "free"  # expired at exactly the duration
    assert state(record("other", 14.9), "me", NOW) == "held"
    assert state(record("other", None), "me", NOW) == "free"


def test_micro_time_always_has_six_fraction_digits() -> None:
    # The API server's MicroTime rejects a time without them.
    assert micro_time(NOW) == "2026-11-26T20:00:00.000000Z"
    shanghai = dt.timezone(dt.timedelta(hours=8))
    assert micro_time(NOW.astimezone(shanghai)) == "2026-11-26T20:00:00.000000Z"
    assert parse_time(micro_time(NOW)) == NOW
    assert parse_time("2026-11-26T20:00:00Z") == NOW
    assert parse_time("not a time") is None
    assert parse_time(None) is None


def test_parse_lease() -> None:
    doc = {
        "metadata": {"name": "srs-cleanup", "resourceVersion": "42"},
        "spec": {"holderIdentity": "cleanup-7f9", "leaseDurationSeconds": 15,
                 "renewTime": "2026-11-26T19:59:59.500000Z",
                 "acquireTime": "2026-11-26T19:00:00.000000Z", "leaseTransitions": 3},
    }
    lease = parse_lease(doc)
    assert lease == LeaseRecord(
        "cleanup-7f9", 15.0, NOW - dt.timedelta(seconds=0.5),
        dt.datetime(2026, 11, 26, 19, 0, tzinfo=dt.UTC), 3, "42")
    assert state(lease, "me", NOW) == "held"
    # A released lease (client-go writes an empty holder) and an empty object.
    assert parse_lease({"spec": {"holderIdentity": ""}}).holder == ""
    assert parse_lease(None) == LeaseRecord("", 0.0, None, None, 0, None)
