"""The Stratum V2 miner listener: an endpoint, the Noise responder, the miner protocol."""

from __future__ import annotations

import socket
from typing import cast

from twisted.application.internet import StreamServerEndpointService
from twisted.internet.defer import Deferred, succeed
from twisted.internet.endpoints import serverFromString
from twisted.internet.error import CannotListenError
from twisted.internet.interfaces import IListeningPort, IReactorCore, IReactorTime
from twisted.logger import Logger

from sv2proxy.config import Config
from sv2proxy.link.noise import NoiseServerFactory, ServerCredentials
from sv2proxy.link.sniff import SniffingFactory
from sv2proxy.noise.keys import AuthorityKey
from sv2proxy.server.miner import MinerFactory
from sv2proxy.server.mining import MiningService
from sv2proxy.server.sv1_miner import Sv1MinerFactory

log = Logger()


class ListenerService(StreamServerEndpointService):
    """A listening endpoint that says where it really listens (port 0 included)."""

    def __init__(
        self,
        endpoint: object,
        factory: object,
        what: str,
        url_path: str | None = None,
        scheme: str | None = None,
        key: str = "listen",
    ) -> None:
        super().__init__(endpoint, factory)
        self.what = what
        self.url_path = url_path
        self.scheme = scheme  # a Stratum V1 URL to log too
        self.key = key
        self.port: IListeningPort | None = None
        self._waiters: list[Deferred[IListeningPort]] = []
        # A port we cannot bind must stop the start-up with its reason, not be logged and forgotten.
        self._raiseSynchronously = True

    def privilegedStartService(self) -> None:
        try:
            super().privilegedStartService()
        except CannotListenError as e:
            # One line naming the setting, as for any configuration mistake; not a traceback.
            why = e.socketError.strerror if isinstance(e.socketError, OSError) else e.socketError
            raise SystemExit(f"sv2proxy: {self.key}: cannot listen on {e.interface or '*'}:{e.port}: {why}") from None
        self._waitingForPort.addCallback(self._listening)

    def when_listening(self) -> Deferred[IListeningPort]:
        """Fires with the listening port once it is bound (at once if it already is)."""
        if self.port is not None:
            return succeed(self.port)
        waiter: Deferred[IListeningPort] = Deferred()
        self._waiters.append(waiter)
        return waiter

    def _listening(self, port: IListeningPort) -> IListeningPort:
        self.port = port
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            waiter.callback(port)
        address = port.getHost()
        where = f"{getattr(address, 'host', '')}:{getattr(address, 'port', '')}".strip(":") or str(address)
        log.info("{what} listening on {where}", what=self.what, where=where)
        if not hasattr(address, "port"):
            return port
        host = address.host if address.host not in ("0.0.0.0", "::") else socket.gethostname()
        if ":" in host:
            host = f"[{host}]"
        if self.scheme is not None:
            log.info(
                "{what} connect to {scheme}://{host}:{port}",
                what=self.what,
                scheme=self.scheme,
                host=host,
                port=address.port,
            )
        if self.url_path is not None:
            log.info(
                "{what} connect to stratum2+tcp://{host}:{port}/{path}",
                what=self.what,
                host=host,
                port=address.port,
                path=self.url_path,
            )
        return port


def _sv2_factory(
    config: Config, authority: AuthorityKey, reactor: IReactorCore, mining: MiningService
) -> NoiseServerFactory:
    credentials = ServerCredentials(authority, reactor, config.noise.certificate_validity)
    miners = MinerFactory(mining, config.mining.max_messages_per_second)
    return NoiseServerFactory(miners, credentials, reactor, config.noise.handshake_timeout, events=mining.events)


def _sv1_factory(config: Config, mining: MiningService) -> Sv1MinerFactory:
    return Sv1MinerFactory(mining, config.mining.sv1_extranonce2_size, config.mining.max_messages_per_second)


def sv2_miner_service(
    config: Config, authority: AuthorityKey, reactor: IReactorCore, mining: MiningService
) -> ListenerService:
    """A service listening for Stratum V2 miners at ``config.listen.sv2``."""
    assert config.listen.sv2 is not None, "the SV2 listener is disabled in this configuration"
    factory = _sv2_factory(config, authority, reactor, mining)
    endpoint = serverFromString(reactor, config.listen.sv2.endpoint)
    return ListenerService(endpoint, factory, "Stratum V2 miners", url_path=authority.public_text, key="listen.sv2")


def sv1_miner_service(config: Config, reactor: IReactorCore, mining: MiningService) -> ListenerService:
    """A service listening for Stratum V1 miners (plain JSON lines) at ``config.listen.sv1``."""
    assert config.listen.sv1 is not None, "the SV1 listener is disabled in this configuration"
    endpoint = serverFromString(reactor, config.listen.sv1.endpoint)
    return ListenerService(
        endpoint, _sv1_factory(config, mining), "Stratum V1 miners", scheme="stratum+tcp", key="listen.sv1"
    )


def shared_miner_service(
    config: Config, authority: AuthorityKey, reactor: IReactorCore, mining: MiningService
) -> ListenerService:
    """One port for Stratum V1 and V2 miners (``listen.sv1`` equal to ``listen.sv2``)."""
    assert config.listen.sv2 is not None and config.listen.shared
    factory = SniffingFactory(
        _sv1_factory(config, mining), _sv2_factory(config, authority, reactor, mining), cast(IReactorTime, reactor)
    )
    endpoint = serverFromString(reactor, config.listen.sv2.endpoint)
    return ListenerService(
        endpoint,
        factory,
        "Stratum V1 and V2 miners",
        url_path=authority.public_text,
        scheme="stratum+tcp",
        key="listen.sv2 (and listen.sv1)",
    )
