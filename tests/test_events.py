"""Events are frozen values; the bus delivers by type and survives failing subscribers."""

from __future__ import annotations

import dataclasses

import pytest
from twisted.internet import defer
from twisted.logger import LogLevel, globalLogPublisher

from sv2proxy.events import (
    BlockMined,
    BlockTemplateUpdated,
    Event,
    EventBus,
    MergeMiningReward,
    MiningDifficultyChanged,
    MiningJobCreated,
    MiningPoolConnected,
    MiningPoolDisconnected,
    ShareSubmitted,
    StratumV2MessageReceived,
)

ALL_EVENTS = [
    BlockMined("00" * 32, height=1),
    BlockTemplateUpdated(template=object()),
    MiningDifficultyChanged(difficulty=0.5),
    StratumV2MessageReceived(data=b"\x00", peer_addr="127.0.0.1:1"),
    MiningJobCreated(job_id=1, channel_ids=(1, 2)),
    ShareSubmitted(channel_id=1, job_id=1, worker="w", difficulty=1.0, accepted=True),
    MergeMiningReward(chain="nmc", height=5, amount=100),
    MiningPoolConnected(url="stratum+tcp://pool:3333"),
    MiningPoolDisconnected(url="stratum+tcp://pool:3333", reason="closed"),
]


@pytest.fixture
def errors():
    seen = []

    def observe(event):
        if event.get("log_level") in (LogLevel.error, LogLevel.critical):
            seen.append(event)

    globalLogPublisher.addObserver(observe)
    yield seen
    globalLogPublisher.removeObserver(observe)


@pytest.mark.parametrize("event", ALL_EVENTS, ids=lambda e: type(e).__name__)
def test_events_are_frozen_and_slotted(event):
    assert isinstance(event, Event)
    assert not hasattr(event, "__dict__")
    first = dataclasses.fields(event)[0].name
    with pytest.raises(dataclasses.FrozenInstanceError):
        setattr(event, first, None)


def test_subscribers_get_their_type_and_base_subscribers_get_everything():
    bus = EventBus()
    blocks, everything = [], []
    bus.subscribe(BlockMined, blocks.append)
    bus.subscribe(Event, everything.append)
    for event in ALL_EVENTS:
        bus.publish(event)
    assert blocks == [ALL_EVENTS[0]]
    assert everything == ALL_EVENTS


def test_unsubscribe_stops_delivery():
    bus = EventBus()
    seen = []
    unsubscribe = bus.subscribe(ShareSubmitted, seen.append)
    bus.publish(ALL_EVENTS[5])
    unsubscribe()
    unsubscribe()  # idempotent
    bus.publish(ALL_EVENTS[5])
    assert seen == [ALL_EVENTS[5]]


def test_a_failing_subscriber_is_logged_and_others_still_get_the_event(errors):
    bus = EventBus()
    seen = []

    def broken(event):
        raise RuntimeError("subscriber bug")

    bus.subscribe(BlockMined, broken)
    bus.subscribe(BlockMined, seen.append)
    bus.publish(ALL_EVENTS[0])
    assert seen == [ALL_EVENTS[0]]
    assert len(errors) == 1
    assert errors[0]["log_failure"].check(RuntimeError)


def test_a_subscriber_whose_deferred_fails_is_logged(errors):
    bus = EventBus()
    pending = defer.Deferred()
    bus.subscribe(BlockMined, lambda event: pending)
    bus.publish(ALL_EVENTS[0])
    assert errors == []
    pending.errback(ValueError("async subscriber bug"))
    assert len(errors) == 1
    assert errors[0]["log_failure"].check(ValueError)
