"""The Stratum V2 miner listener: an endpoint, the Noise responder, the miner protocol."""

from __future__ import annotations

import socket

from twisted.application.internet import StreamServerEndpointService
from twisted.internet.defer import Deferred, succeed
from twisted.internet.endpoints import serverFromString
from twisted.internet.interfaces import IListeningPort, IReactorCore
from twisted.logger import Logger

from sv2proxy.config import Config
from sv2proxy.link.noise import NoiseServerFactory, ServerCredentials
from sv2proxy.noise.keys import AuthorityKey
from sv2proxy.server.miner import MinerFactory
from sv2proxy.server.mining import MiningService

log = Logger()


class ListenerService(StreamServerEndpointService):
    """A listening endpoint that says where it really listens (port 0 included)."""

    def __init__(self, endpoint: object, factory: object, what: str, url_path: str | None = None) -> None:
        super().__init__(endpoint, factory)
        self.what = what
        self.url_path = url_path
        self.port: IListeningPort | None = None
        self._waiters: list[Deferred[IListeningPort]] = []
        # A port we cannot bind must stop the start-up with its reason, not be logged and forgotten.
        self._raiseSynchronously = True

    def privilegedStartService(self) -> None:
        super().privilegedStartService()
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
        if self.url_path is not None and hasattr(address, "port"):
            host = address.host if address.host not in ("0.0.0.0", "::") else socket.gethostname()
            log.info(
                "{what} connect to stratum2+tcp://{host}:{port}/{path}",
                what=self.what,
                host=f"[{host}]" if ":" in host else host,
                port=address.port,
                path=self.url_path,
            )
        return port


def sv2_miner_service(
    config: Config, authority: AuthorityKey, reactor: IReactorCore, mining: MiningService
) -> ListenerService:
    """A service listening for Stratum V2 miners at ``config.listen.sv2``."""
    assert config.listen.sv2 is not None, "the SV2 listener is disabled in this configuration"
    credentials = ServerCredentials(authority, reactor, config.noise.certificate_validity)
    miners = MinerFactory(mining, config.mining.max_messages_per_second)
    factory = NoiseServerFactory(miners, credentials, reactor, config.noise.handshake_timeout)
    endpoint = serverFromString(reactor, config.listen.sv2.endpoint)
    return ListenerService(endpoint, factory, "Stratum V2 miners", url_path=authority.public_text)
