"""The daemon's top service: the parent of every long-lived service (DESIGN.md "Services own
lifetimes").

:class:`Daemon` holds what its children share (the configuration, the event bus, the reactor),
makes sure the data directory exists before any child starts, and logs start and stop.  Its
children (listeners, the node poller, the upstream client, the store, the web API) are attached
by :func:`sv2proxy.tap.makeService`, the one place that composes the daemon.
"""

from __future__ import annotations

import os
import stat

from twisted.application.service import IService, MultiService
from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IReactorCore
from twisted.logger import Logger
from twisted.python.failure import Failure

from sv2proxy.config import Config, settings
from sv2proxy.errors import ServerError
from sv2proxy.events import EventBus
from sv2proxy.noise.keys import AuthorityKey

log = Logger()


class Daemon(MultiService):
    """The root of sv2proxy's service tree, as returned to twistd."""

    name = "sv2proxy"

    def __init__(
        self,
        config: Config,
        reactor: IReactorCore,
        events: EventBus | None = None,
        authority: AuthorityKey | None = None,
    ):
        super().__init__()
        self.config = config
        self.reactor = reactor
        self.events = events if events is not None else EventBus()
        self.authority = authority

    def add(self, service: IService, name: str) -> IService:
        """Attach a named child; children start in the order added and stop in reverse."""
        service.setName(name)
        service.setServiceParent(self)
        return service

    _announced = False

    def privilegedStartService(self) -> None:
        # twistd calls this before startService and listeners bind in it, so the configuration
        # is logged first, before any "listening on" line.
        self._announce()
        super().privilegedStartService()

    def startService(self) -> None:
        self._announce()
        super().startService()
        names = [_service_name(service) for service in self]
        log.info(
            "sv2proxy started services={services}",
            services=", ".join(names) if names else "(none)",
        )
        # twistd starts the services before it runs the reactor, and the reactor installs the
        # SIGTERM handler as it starts: only from here on is a stop request a clean stop.
        self.reactor.callWhenRunning(self._running)

    def _announce(self) -> None:
        """Prepare the data directory and log the configuration, once per start."""
        if self._announced:
            return
        self._announced = True
        self._make_data_dir()
        log.info("sv2proxy starting")
        for key, value in settings(self.config):
            log.info("config {key} = {value}", key=key, value=value)
        self._warn_unserved()
        if self.authority is not None:
            self._log_authority(self.authority)

    def _warn_unserved(self) -> None:
        """Say plainly which configured roles this version does not serve yet."""
        if self.config.pool_url is None and self.config.coinbase.payout is None:
            log.warn(
                "coinbase.payout is not set: pool mode has no address to pay, so it asks the node"
                " for no templates; miners can connect and open channels but get no jobs"
            )

    def _log_authority(self, authority: AuthorityKey) -> None:
        # The public key only: the secret never reaches a log.
        public = authority.public_text
        log.info(
            "authority public key {public} (from {path})",
            public=public,
            path=self.config.authority_key_path,
        )

    def _running(self) -> None:
        log.info("sv2proxy running pid={pid}", pid=os.getpid())

    def stopService(self) -> Deferred[None]:
        log.info("sv2proxy stopping")
        self._announced = False
        stopped: Deferred[list[tuple[bool, object]]] = super().stopService()
        return stopped.addCallback(self._stopped)

    def _stopped(self, results: list[tuple[bool, object]]) -> None:
        # MultiService gathers its children's stops with a DeferredList, which never fails:
        # a child that failed to stop shows up here as (False, failure).
        failed = 0
        for succeeded, result in results:
            if not succeeded and isinstance(result, Failure):
                failed += 1
                log.failure("a service failed to stop", result)
        if failed:
            log.error("sv2proxy stopped; {failed} service(s) failed to stop", failed=failed)
        else:
            log.info("sv2proxy stopped cleanly")

    def _make_data_dir(self) -> None:
        """Create the data directory (0700: it holds the authority secret key) if missing."""
        path = self.config.data_dir
        try:
            path.mkdir(mode=0o700, parents=True, exist_ok=True)
            mode = path.stat().st_mode
        except FileExistsError:
            raise ServerError(f"data_dir {path} exists and is not a directory") from None
        except OSError as e:
            raise ServerError(f"cannot create data_dir {path}: {e.strerror or e}") from None
        if stat.S_IMODE(mode) & 0o077:
            log.warn(
                "data_dir {path} is accessible to other users (mode {mode:o}); it will hold secret keys",
                path=path,
                mode=stat.S_IMODE(mode),
            )
        if not os.access(path, os.W_OK | os.X_OK):
            raise ServerError(f"data_dir {path} is not writable by this user")


def _service_name(service: IService) -> str:
    return service.name or type(service).__name__


__all__ = ["Daemon"]
