"""Events and the bus that carries them (SEED-API.md, "Events").

Events are frozen dataclasses; the :class:`EventBus` hands each one to the
subscribers of its type (and of its base classes, so subscribing to
:class:`Event` sees everything).  A subscriber that raises, or returns a
Deferred that fails, is logged and never stops delivery to the others.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from twisted.internet.defer import Deferred
from twisted.logger import Logger
from twisted.python.failure import Failure

log = Logger()


@dataclass(frozen=True, slots=True)
class Event:
    """Base of every event published on the bus."""


# -- events the server subscribes to (from the node / template side) --------


@dataclass(frozen=True, slots=True)
class BlockMined(Event):
    """A block was mined: by one of our miners (``worker`` set) or seen on the network.

    ``block_hash`` is the display (big-endian) hex an explorer shows.
    """

    block_hash: str
    height: int | None = None
    worker: str | None = None
    channel_id: int | None = None
    reward: int | None = None  # satoshis paid by the coinbase, when known


@dataclass(frozen=True, slots=True)
class BlockTemplateUpdated(Event):
    """A new block template is available; jobs must be rebuilt from it."""

    template: Any
    template_id: int | None = None
    clean: bool = False  # a new chain tip: older jobs are now stale


@dataclass(frozen=True, slots=True)
class MiningDifficultyChanged(Event):
    """The difficulty to apply changed; ``channel_id`` None means every channel."""

    difficulty: float
    channel_id: int | None = None


@dataclass(frozen=True, slots=True)
class StratumV2MessageReceived(Event):
    """One raw Stratum V2 frame arrived from ``peer_addr``."""

    data: bytes
    peer_addr: str


# -- events the daemon publishes ----------------------------------------------


@dataclass(frozen=True, slots=True)
class MiningJobCreated(Event):
    """A job was built and sent to ``channel_ids``."""

    job_id: int
    channel_ids: tuple[int, ...] = ()
    template_id: int | None = None
    future: bool = False


@dataclass(frozen=True, slots=True)
class ShareSubmitted(Event):
    """A miner submitted a share; ``error_code`` is the spec's code when rejected."""

    channel_id: int
    job_id: int
    worker: str
    difficulty: float
    accepted: bool
    error_code: str | None = None
    is_block: bool = False


@dataclass(frozen=True, slots=True)
class BlockSubmitted(Event):
    """The node answered the submission of a block one of our miners found.

    ``block_hash`` is the display hex; ``reason`` is the node's word for a rejection.
    """

    block_hash: str
    accepted: bool
    reason: str = ""
    height: int | None = None
    reward: int | None = None  # satoshis the coinbase pays
    worker: str | None = None


@dataclass(frozen=True, slots=True)
class MergeMiningReward(Event):
    """An auxiliary chain accepted a block we mined for it."""

    chain: str
    height: int
    amount: int  # in the aux chain's smallest unit
    block_hash: str = ""


@dataclass(frozen=True, slots=True)
class MiningPoolConnected(Event):
    """An upstream pool connection is up and its channel is open."""

    url: str


@dataclass(frozen=True, slots=True)
class MiningPoolDisconnected(Event):
    """An upstream pool connection was lost or closed."""

    url: str
    reason: str = ""


@dataclass(frozen=True, slots=True)
class HandshakeFailed(Event):
    """A peer's Noise handshake failed (``reason``: ``timeout`` or what was wrong with it)."""

    peer: str
    reason: str


E = TypeVar("E", bound=Event)
Subscriber = Callable[[Any], object]


class EventBus:
    """Synchronous fan-out of events to subscribers, isolated from their failures."""

    def __init__(self) -> None:
        self._subscribers: dict[type[Event], list[Subscriber]] = {}

    def subscribe(self, event_type: type[E], callback: Callable[[E], object]) -> Callable[[], None]:
        """Call ``callback(event)`` for every event of ``event_type``; returns an unsubscriber."""
        callbacks = self._subscribers.setdefault(event_type, [])
        callbacks.append(callback)

        def unsubscribe() -> None:
            if callback in callbacks:
                callbacks.remove(callback)

        return unsubscribe

    def publish(self, event: Event) -> None:
        """Deliver ``event`` to every subscriber of its type and its base types."""
        for cls in type(event).__mro__:
            callbacks = self._subscribers.get(cls)
            if not callbacks:
                continue
            for callback in tuple(callbacks):
                try:
                    result = callback(event)
                except Exception:
                    log.failure(
                        "event subscriber {subscriber!r} failed on {event!r}",
                        subscriber=callback,
                        event=event,
                    )
                    continue
                if isinstance(result, Deferred):
                    result.addErrback(self._log_async_failure, callback, event)

    @staticmethod
    def _log_async_failure(failure: Failure, callback: Subscriber, event: Event) -> None:
        log.failure(
            "event subscriber {subscriber!r} failed on {event!r}",
            failure,
            subscriber=callback,
            event=event,
        )


__all__ = [
    "Event",
    "BlockMined",
    "BlockTemplateUpdated",
    "MiningDifficultyChanged",
    "StratumV2MessageReceived",
    "MiningJobCreated",
    "ShareSubmitted",
    "BlockSubmitted",
    "MergeMiningReward",
    "MiningPoolConnected",
    "MiningPoolDisconnected",
    "HandshakeFailed",
    "EventBus",
]
