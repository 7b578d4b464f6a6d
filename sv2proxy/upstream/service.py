"""Proxy mode's link to its remote pools: an ordered list of upstreams, with failover.

:class:`UpstreamService` connects to the first URL; when a connection cannot be made, or is
lost, it fails over to the next one (wrapping around), after a delay from an exponential
backoff with jitter (``twisted.application.internet.backoffPolicy``) that grows with every
consecutive failed attempt and starts again once a channel has stayed open for
:data:`STABLE_AFTER` seconds (one that closes sooner is a failed attempt too).  A URL whose
channel had been open is tried once more before failing over, so that a blip of the primary
does not move the farm to a backup for good.  The list may mix protocols:
a ``stratum2+tcp`` URL gets a Stratum V2 link (:mod:`.client`), Noise NX with the URL's pinned
authority key (PROTOCOL.md §5); a ``stratum+tcp`` URL a Stratum V1 link (:mod:`.sv1_client`),
plain TCP.  A pool's Reconnect (``client.reconnect`` in V1) is followed to the host and port it
names, with the same scheme and key (§6 "Reconnect"): at once from an open channel, but as a
failed attempt before our channel opened, and after :data:`MAX_REDIRECTS` in a row.

Fail-back: while a channel is open on a URL after the first, every ``failback_interval``
seconds (0: never) the URLs before it are probed in order, each with a whole link of its own up
to an open channel (V1: subscribed and authorized) whose work is held back
(:class:`~sv2proxy.upstream.link.HeldMining`).  The first that gets there takes over at once:
the backup's work is dropped first (shares for its jobs are answered stale, as after a
failover), then the held work is handed to the miners and the backup's link is closed.  A probe
that fails tries the next preferred URL; when none works the next round waits an interval.

Per connection exactly one extended channel is opened (V1: one subscription), whatever the
number of local miners (FIELD-NOTES.md: aggregated mode) -- unless ``per_miner``: then every
local channel gets an upstream channel of its own, opened with its miner's user identity
(:mod:`.per_miner`, :mod:`.miner_channels`; Stratum V2 pools only), the service hearing of local
channels opening and closing as the channel manager's watcher.  The service is the mining
service's ``share_sink``: every share a local miner gets accepted goes to the connection's
session, which forwards those that meet the pool's target.  It publishes MiningPoolConnected once a link is
ready (V2: its channel open; V1: subscribed and authorized) and MiningPoolDisconnected when it
goes, and every ``update_interval`` seconds tells a V2 pool the local miners' hash rate
(UpdateChannel; V1 has no such message).

Not a ``ClientService``: that retries one endpoint, and counts a TCP connection as a success
even when its Noise handshake, SetupConnection or channel then fails, which would reset the
backoff on every attempt against a pool that refuses us.  Here an attempt succeeds only once
its link is ready, and each failure moves on to the next URL.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any, cast
from typing import Protocol as TypingProtocol
from urllib.parse import urlsplit, urlunsplit

from twisted.application.internet import backoffPolicy
from twisted.application.service import Service
from twisted.internet.defer import Deferred, gatherResults, succeed
from twisted.internet.endpoints import HostnameEndpoint
from twisted.internet.interfaces import IDelayedCall, IProtocol, IProtocolFactory, IStreamClientEndpoint
from twisted.internet.protocol import Factory, connectionDone
from twisted.internet.task import LoopingCall
from twisted.logger import Logger
from twisted.python.failure import Failure

from sv2proxy import __version__
from sv2proxy.bitcoin.hashing import display_hex
from sv2proxy.config import PoolProtocol, PoolUrl
from sv2proxy.events import EventBus, MiningPoolConnected, MiningPoolDisconnected
from sv2proxy.link.noise import DEFAULT_HANDSHAKE_TIMEOUT, NoiseClientFactory, NoiseProtocol
from sv2proxy.pool.channel import Channel
from sv2proxy.pool.manager import ChannelWatcher
from sv2proxy.server.mining import AcceptedShare
from sv2proxy.upstream.client import UpstreamProtocol
from sv2proxy.upstream.link import (
    DEFAULT_OPEN_TIMEOUT,
    DEFAULT_STALL_TIMEOUT,
    HeldMining,
    ProxiedMining,
    UpstreamLink,
)
from sv2proxy.upstream.miner_channels import MinerChannels
from sv2proxy.upstream.per_miner import PerMinerMining, PerMinerProtocol
from sv2proxy.upstream.session import UpstreamSession
from sv2proxy.upstream.sv1_client import Sv1UpstreamProtocol
from sv2proxy.upstream.sv1_session import DEFAULT_MIN_EXTRANONCE2_SIZE, DEFAULT_PASSWORD, Sv1UpstreamSession

log = Logger()

DEFAULT_NOMINAL_HASH_RATE = 1e12  # H/s a pool assumes until the first UpdateChannel
#: Four bytes for the local channel part and four for each miner to roll.
DEFAULT_MIN_EXTRANONCE_SIZE = 8
DEFAULT_UPDATE_INTERVAL = 60.0
DEFAULT_CONNECT_TIMEOUT = 30.0
#: A V1 pool's extranonce2 must hold our channel bytes and what a miner rolls.
DEFAULT_MIN_V1_EXTRANONCE2_SIZE = DEFAULT_MIN_EXTRANONCE2_SIZE
INITIAL_RETRY_DELAY = 1.0
MAX_RETRY_DELAY = 60.0
#: How long a channel must stay open for its link to count as a success (and reset the backoff):
#: a pool that opens our channel and then drops it at once is failing, not working.
STABLE_AFTER = 60.0
#: Reconnects followed at their own delay in a row, without a channel that stayed open; past
#: this each one waits as the backoff says (two pools that send us to each other do not spin).
MAX_REDIRECTS = 3

RetryPolicy = Callable[[int], float]


class WatchedMining(PerMinerMining, TypingProtocol):
    """The mining service as per-miner mode's service needs it: its channels watched."""

    def watch_channels(self, watcher: ChannelWatcher | None) -> None: ...


def default_retry_policy() -> RetryPolicy:
    """1 s after the first failure, x1.5 per further one, at most 60 s, plus up to 1 s of jitter."""
    return backoffPolicy(initialDelay=INITIAL_RETRY_DELAY, maxDelay=MAX_RETRY_DELAY, factor=1.5)


def redirected(url: PoolUrl, host: str, port: int) -> PoolUrl:
    """``url`` moved to ``host``:``port`` (a pool's Reconnect): same scheme and authority key."""
    parts = urlsplit(url.text)
    netloc = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    return dataclasses.replace(url, text=urlunsplit(parts._replace(netloc=netloc)), host=host, port=port)


class _Attempt:
    """One connection attempt to one URL, from connect() until its link is gone.

    It is the :class:`~sv2proxy.upstream.link.UpstreamListener` of the protocol it builds,
    so a late callback from an old connection can never be taken for the current one's.
    """

    def __init__(self, service: UpstreamService, url: PoolUrl, index: int, probe: bool = False) -> None:
        self.service = service
        self.url = url
        self.index = index  # the position in the URL list this attempt stands for
        #: A fail-back probe: its work is held until it is chosen (:class:`HeldMining`).
        self.probe = probe
        self.mining: ProxiedMining = HeldMining() if probe else service.mining
        self.connecting: Deferred[IProtocol] | None = None
        self.outer: IProtocol | None = None  # the transport's protocol (Noise, or ours if plain)
        self.protocol: UpstreamLink | None = None  # once the link is up (after Noise)
        self.opened = False
        self.opened_at = 0.0  # the clock's time when the channel opened
        self.redirect: PoolUrl | None = None
        self.redirect_wait = 0.0
        self.ended = False
        self.done: Deferred[None] = Deferred()

    def link_up(self, protocol: UpstreamLink) -> None:
        self.protocol = protocol
        log.info("connected to upstream {url}; setting up", url=self.url.text)

    def channel_opened(self, protocol: UpstreamLink, opened: object) -> None:
        self.service._channel_opened(self, protocol)

    def reconnect_requested(self, protocol: UpstreamLink, host: str, port: int, wait: float = 0.0) -> None:
        self.redirect = redirected(self.url, host, port)
        self.redirect_wait = wait

    def link_lost(self, protocol: UpstreamLink | None, reason: str) -> None:
        if protocol is None and self.protocol is None:
            reason = f"closed before the Noise handshake completed ({reason})"
        self.service._attempt_ended(self, reason)


class _UpstreamFactory(Factory):
    noisy = False
    protocol = UpstreamProtocol

    def __init__(self, service: UpstreamService, attempt: _Attempt) -> None:
        self.service = service
        self.attempt = attempt

    def buildProtocol(self, addr: object) -> UpstreamProtocol | Sv1UpstreamProtocol | PerMinerProtocol:  # noqa: N802
        protocol = self.service._new_protocol(self.attempt)
        protocol.factory = self
        return protocol


class _ReportingNoiseProtocol(NoiseProtocol):
    """Noise that also reports a link lost before its handshake completed."""

    factory: _ReportingNoiseFactory

    def connectionLost(self, reason: Failure = connectionDone) -> None:  # noqa: N802
        super().connectionLost(reason)
        # After the wrapped protocol heard it (if it was ever connected): its reason wins.
        self.factory.attempt.link_lost(None, reason.getErrorMessage())


class _ReportingNoiseFactory(NoiseClientFactory):
    protocol = _ReportingNoiseProtocol

    def __init__(self, wrapped: _UpstreamFactory, authority_key: bytes, clock: Any, handshake_timeout: float) -> None:
        super().__init__(wrapped, authority_key, clock, handshake_timeout)
        self.attempt = wrapped.attempt


class UpstreamService(Service):
    """Work from a remote pool for the local miners, and their shares back to it.

    ``urls`` in order of preference; ``reactor`` connects (IReactorTCP) and times everything
    (IReactorTime).  ``allow_plaintext`` permits plain TCP to Stratum V2 URLs without an
    authority key (tests, a pool on a trusted socket); otherwise every V2 link is Noise with the
    URL's key.  Stratum V1 links are plain TCP: ``password`` goes with ``mining.authorize`` and
    ``min_v1_extranonce2_size`` is the room a V1 pool must leave after its extranonce1.
    ``endpoint_for`` makes the client endpoint for a URL (default: a HostnameEndpoint).
    """

    name = "upstream"  # type: ignore[assignment]  # Service types name as None

    def __init__(
        self,
        urls: Sequence[PoolUrl],
        mining: ProxiedMining,
        events: EventBus,
        reactor: Any,
        user_identity: str,
        nominal_hash_rate: float = DEFAULT_NOMINAL_HASH_RATE,
        min_extranonce_size: int = DEFAULT_MIN_EXTRANONCE_SIZE,
        update_interval: float = DEFAULT_UPDATE_INTERVAL,
        *,
        allow_plaintext: bool = False,
        retry_policy: RetryPolicy | None = None,
        stall_timeout: float = DEFAULT_STALL_TIMEOUT,
        open_timeout: float = DEFAULT_OPEN_TIMEOUT,
        handshake_timeout: float = DEFAULT_HANDSHAKE_TIMEOUT,
        connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
        endpoint_for: Callable[[PoolUrl], IStreamClientEndpoint] | None = None,
        password: str = DEFAULT_PASSWORD,
        min_v1_extranonce2_size: int = DEFAULT_MIN_V1_EXTRANONCE2_SIZE,
        request_extensions: bool = True,
        failback_interval: float = 0.0,
        per_miner: bool = False,
    ) -> None:
        if not urls:
            raise ValueError("proxy mode needs at least one upstream pool URL")
        for url in urls:
            if url.protocol is PoolProtocol.V2 and url.authority_key is None and not allow_plaintext:
                raise ValueError(
                    f"{url.text}: no authority key to pin the pool's Noise handshake to"
                    " (an unencrypted upstream must be allowed explicitly)"
                )
        if per_miner and any(url.protocol is PoolProtocol.V1 for url in urls):
            raise ValueError("one channel per miner needs Stratum V2 pools: a Stratum V1 pool has no channels")
        if update_interval <= 0:
            raise ValueError(f"update_interval must be positive, got {update_interval}")
        if not failback_interval >= 0:
            raise ValueError(f"failback_interval must be 0 (never) or positive, got {failback_interval}")
        # A session checks these too, but only once connected: a bad value must stop start-up.
        UpstreamSession(user_identity, nominal_hash_rate, min_extranonce_size)
        Sv1UpstreamSession(user_identity, password, min_extranonce2_size=min_v1_extranonce2_size)
        self.urls = tuple(urls)
        self.mining = mining
        self.events = events
        self.user_identity = user_identity
        self.nominal_hash_rate = nominal_hash_rate
        self.min_extranonce_size = min_extranonce_size
        self.password = password
        self.min_v1_extranonce2_size = min_v1_extranonce2_size
        self.update_interval = update_interval
        self.request_extensions = request_extensions
        self.failback_interval = failback_interval
        self.per_miner = per_miner
        self.allow_plaintext = allow_plaintext
        self.stall_timeout = stall_timeout
        self.open_timeout = open_timeout
        self.handshake_timeout = handshake_timeout
        self.connect_timeout = connect_timeout
        self._reactor = reactor
        self._endpoint_for = endpoint_for or self._hostname_endpoint
        self._retry_policy = retry_policy or default_retry_policy()
        self._index = 0
        self._failures = 0
        self._redirects = 0  # Reconnects in a row without a channel that stayed open
        #: The URL already retried once after it was lost (until one of its channels stays open).
        self._retried: PoolUrl | None = None
        self._next_url: PoolUrl | None = None  # a Reconnect's target, or a lost URL to retry
        self._attempt: _Attempt | None = None
        self._retry_call: IDelayedCall | None = None
        #: Fail-back: the next probe of a preferred pool, and the probe under way.
        self._failback_call: IDelayedCall | None = None
        self._probe: _Attempt | None = None
        self._updater = LoopingCall(self._update_channel)
        self._updater.clock = reactor
        #: The connection that is ready (its channel open), and its URL (None while there is none).
        self.protocol: UpstreamLink | None = None
        self.url: PoolUrl | None = None
        #: Accepted local shares that found no open upstream channel.
        self.shares_without_upstream = 0

    @property
    def session(self) -> UpstreamSession | Sv1UpstreamSession | MinerChannels | None:
        """The ready link's session: its counters and state."""
        protocol = self.protocol
        if isinstance(protocol, UpstreamProtocol | Sv1UpstreamProtocol | PerMinerProtocol):
            return protocol.session
        return None

    # -- lifecycle -------------------------------------------------------------------------

    def startService(self) -> None:  # noqa: N802
        super().startService()
        self.mining.share_sink = self
        if self.per_miner:
            self._per_miner_mining().watch_channels(self)
        self._connect()

    def stopService(self) -> Deferred[None]:  # noqa: N802
        super().stopService()
        if self._retry_call is not None and self._retry_call.active():
            self._retry_call.cancel()
        self._retry_call = None
        attempts = [attempt for attempt in (self._attempt, self._probe) if attempt is not None]
        self._cancel_failback()
        if self._updater.running:
            self._updater.stop()
        if self.mining.share_sink is self:
            self.mining.share_sink = None
        if self.per_miner:
            self._per_miner_mining().watch_channels(None)
        for attempt in attempts:
            self._end(attempt, "the daemon is stopping")
        if not attempts:
            return succeed(None)
        return gatherResults([attempt.done for attempt in attempts]).addCallback(lambda _: None)

    @staticmethod
    def _end(attempt: _Attempt, reason: str) -> None:
        """Close ``attempt``'s link (gracefully, if it is up), or stop it connecting."""
        if attempt.protocol is not None:
            attempt.protocol.close(reason, abort=False)
        elif attempt.outer is not None:
            transport = getattr(attempt.outer, "transport", None)
            if transport is not None:
                transport.abortConnection()
        elif attempt.connecting is not None:
            attempt.connecting.cancel()

    # -- the mining service's share sink ---------------------------------------------------

    def share_accepted(self, share: AcceptedShare) -> None:
        """A local miner's accepted share: forwarded if it meets the pool's target."""
        protocol = self.protocol
        if protocol is not None and protocol.forward_share(share):
            return
        # No channel, or one that is closing (a Reconnect, a Fatal, stopping) and not gone yet.
        self.shares_without_upstream += 1
        if share.is_block:
            log.error(
                "block candidate {hash} from {worker} lost: no upstream pool to forward it to",
                hash=display_hex(share.share_hash),
                worker=share.worker,
            )

    # -- the channel manager's watcher (per-miner mode) ------------------------------------

    def miner_channel_opened(self, channel: Channel) -> None:
        """A local channel opened: the ready link opens its upstream channel."""
        if isinstance(self.protocol, PerMinerProtocol):
            self.protocol.miner_opened(channel)

    def miner_channel_closed(self, channel_id: int) -> None:
        """A local channel closed: the ready link closes its upstream channel."""
        if isinstance(self.protocol, PerMinerProtocol):
            self.protocol.miner_closed(channel_id)

    def _per_miner_mining(self) -> WatchedMining:
        return cast(WatchedMining, self.mining)

    # -- connecting ------------------------------------------------------------------------

    def _connect(self) -> None:
        self._retry_call = None
        url, self._next_url = self._next_url or self.urls[self._index], None
        self._attempt = _Attempt(self, url, self._index)
        self._start(self._attempt)

    def _start(self, attempt: _Attempt) -> None:
        url = attempt.url
        upstream = _UpstreamFactory(self, attempt)
        factory: IProtocolFactory = upstream
        if url.protocol is PoolProtocol.V2 and url.authority_key is not None:
            factory = _ReportingNoiseFactory(upstream, url.authority_key, self._reactor, self.handshake_timeout)
        endpoint = self._endpoint_for(url)
        log.info("{what} upstream {url}", what="probing" if attempt.probe else "connecting to", url=url.text)
        connecting = attempt.connecting = endpoint.connect(factory)
        connecting.addCallbacks(
            lambda outer: self._connected(attempt, outer),
            lambda failure: self._attempt_ended(attempt, failure.getErrorMessage()),
        )

    def _hostname_endpoint(self, url: PoolUrl) -> IStreamClientEndpoint:
        return HostnameEndpoint(self._reactor, url.host, url.port, timeout=self.connect_timeout)

    def _connected(self, attempt: _Attempt, outer: IProtocol) -> None:
        attempt.connecting = None
        attempt.outer = outer

    def _new_protocol(self, attempt: _Attempt) -> UpstreamProtocol | Sv1UpstreamProtocol | PerMinerProtocol:
        url = attempt.url
        if self.per_miner:
            channels = MinerChannels(
                self.min_extranonce_size,
                url.host,
                url.port,
                firmware=__version__,
                request_extensions=self.request_extensions,
            )
            return PerMinerProtocol(
                channels,
                cast(PerMinerMining, attempt.mining),
                self._reactor,
                attempt,
                url.text,
                self.stall_timeout,
                self.open_timeout,
            )
        if url.protocol is PoolProtocol.V1:
            sv1 = Sv1UpstreamSession(
                self.user_identity,
                self.password,
                url.host,
                url.port,
                min_extranonce2_size=self.min_v1_extranonce2_size,
                user_agent=f"sv2proxy/{__version__}",
            )
            return Sv1UpstreamProtocol(
                sv1, attempt.mining, self._reactor, attempt, url.text, self.stall_timeout, self.open_timeout
            )
        # The pool's first idea of our speed: what the local miners do, if any are mining yet.
        hash_rate = self.mining.total_hash_rate() or self.nominal_hash_rate
        session = UpstreamSession(
            self.user_identity,
            hash_rate,
            self.min_extranonce_size,
            attempt.url.host,
            attempt.url.port,
            firmware=__version__,
            request_extensions=self.request_extensions,
        )
        return UpstreamProtocol(
            session,
            attempt.mining,
            self._reactor,
            attempt,
            attempt.url.text,
            self.stall_timeout,
            self.open_timeout,
        )

    def _channel_opened(self, attempt: _Attempt, protocol: UpstreamLink) -> None:
        if attempt is self._probe and not attempt.ended:
            self._fail_back(attempt, protocol)
        if attempt is not self._attempt or attempt.ended:
            return
        attempt.opened = True
        attempt.opened_at = self._reactor.seconds()
        self.protocol = protocol
        self.url = attempt.url
        self.events.publish(MiningPoolConnected(attempt.url.text))
        if not self._updater.running:
            self._updater.start(self.update_interval, now=False)
        self._schedule_failback()

    def _attempt_ended(self, attempt: _Attempt, reason: str) -> None:
        if attempt.ended:
            return
        attempt.ended = True
        attempt.connecting = None
        if attempt is self._probe:
            self._probe_failed(attempt, reason)
        if attempt is not self._attempt:
            attempt.done.callback(None)
            return
        self._attempt = None
        url = attempt.url
        self._cancel_failback()
        if attempt.opened:
            self.protocol = None
            self.url = None
            if self._updater.running:
                self._updater.stop()
            if not self.running:
                reason = "the daemon is stopping"
            # Before anyone hears of it: the local miners must stop mining the pool's work.
            self.mining.drop_work()
            self.events.publish(MiningPoolDisconnected(url.text, reason))
        attempt.done.callback(None)
        if not self.running:
            log.info("closed upstream {url}", url=url.text)
            return
        self._retry_call = self._reactor.callLater(self._next_attempt(attempt, reason), self._connect)

    def _next_attempt(self, attempt: _Attempt, reason: str) -> float:
        """Choose the next URL after ``attempt`` ended; return the delay before trying it."""
        url = attempt.url
        if attempt.opened and self._reactor.seconds() - attempt.opened_at >= STABLE_AFTER:
            self._failures = 0
            self._redirects = 0
            self._retried = None
        if attempt.redirect is not None:
            self._next_url = attempt.redirect
            self._index = attempt.index
            self._redirects += 1
            if attempt.opened and self._redirects <= MAX_REDIRECTS:
                delay = attempt.redirect_wait
            else:
                # Before our channel opened, or redirected round and round: a failed attempt.
                self._failures += 1
                delay = max(attempt.redirect_wait, self._retry_policy(self._failures - 1))
            log.info(
                "upstream {url} moved us to {target}; reconnecting in {delay:.1f} s",
                url=url.text,
                target=attempt.redirect.text,
                delay=delay,
            )
            return delay
        # A channel that did not stay open counts as a failure too.
        self._failures += 1
        delay = self._retry_policy(self._failures - 1)
        if attempt.opened and self._retried != url:
            # A blip of a working pool must not move the farm to the next one for good.
            self._retried = url
            self._next_url = url
            self._index = attempt.index
            log.warn(
                "lost upstream {url} ({reason}); trying it again in {delay:.1f} s",
                url=url.text,
                reason=reason,
                delay=delay,
            )
            return delay
        self._index = (attempt.index + 1) % len(self.urls)
        log.warn(
            "{lost} upstream {url} ({reason}); failing over to {next} in {delay:.1f} s"
            " ({failures} failed attempts in a row)",
            lost="lost" if attempt.opened else "cannot use",
            url=url.text,
            reason=reason,
            next=self.urls[self._index].text,
            delay=delay,
            failures=self._failures,
        )
        return delay

    # -- fail-back -------------------------------------------------------------------------

    def _schedule_failback(self, index: int = 0, delay: float | None = None) -> None:
        """Probe ``urls[index]`` (and those after it, up to the current one's) in ``delay`` s."""
        current = self._attempt
        if self.failback_interval <= 0 or not self.running or current is None or current.index == 0:
            return
        if self._failback_call is not None or self._probe is not None:
            return
        wait = self.failback_interval if delay is None else delay
        self._failback_call = self._reactor.callLater(wait, self._probe_next, index)

    def _probe_next(self, index: int) -> None:
        self._failback_call = None
        current = self._attempt
        if current is None or not current.opened or not self.running:
            return
        if index >= current.index:
            self._schedule_failback()  # every preferred pool failed this round: again later
            return
        self._probe = _Attempt(self, self.urls[index], index, probe=True)
        self._start(self._probe)

    def _probe_failed(self, probe: _Attempt, reason: str) -> None:
        self._probe = None
        log.info("preferred upstream {url} is still unusable ({reason})", url=probe.url.text, reason=reason)
        if self.running:
            self._schedule_failback(probe.index + 1, delay=0)

    def _fail_back(self, probe: _Attempt, protocol: UpstreamLink) -> None:
        """A preferred pool opened our channel again: mine for it, and leave the backup."""
        self._probe = None
        old = self._attempt
        assert old is not None and old.opened  # losing it abandons the probe
        log.info("upstream {url} works again; failing back to it from {old}", url=probe.url.text, old=old.url.text)
        self._attempt = probe
        self.protocol = None
        self.url = None
        if self._updater.running:
            self._updater.stop()
        # As when a pool is lost: shares for the backup's jobs are answered stale from now on,
        # before the preferred pool's extranonce space and work reach the miners.
        self.mining.drop_work()
        self.events.publish(MiningPoolDisconnected(old.url.text, f"failing back to {probe.url.text}"))
        self._end(old, f"failing back to {probe.url.text}")
        self._index = probe.index
        self._failures = 0
        self._redirects = 0
        self._retried = None
        protocol.promote(self.mining)

    def _cancel_failback(self) -> None:
        """No probing while the current link is gone (or the daemon stops)."""
        if self._failback_call is not None and self._failback_call.active():
            self._failback_call.cancel()
        self._failback_call = None
        probe, self._probe = self._probe, None
        if probe is not None:
            self._end(probe, "the current upstream went away")

    # -- periodic --------------------------------------------------------------------------

    def _update_channel(self) -> None:
        protocol = self.protocol
        if protocol is None:
            return
        hash_rate = self.mining.total_hash_rate()
        if hash_rate > 0:
            protocol.update_channel(hash_rate)
