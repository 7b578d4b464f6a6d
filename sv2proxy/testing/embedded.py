"""The demo's embedded node: a RegtestNode run by the daemon itself (``node.embedded: true``).

So that a newcomer sees real blocks found within seconds with nothing but this package:
Bitcoin Core's consensus engine (libbitcoinkernel, the ``demo`` extra) on regtest, in the data
directory, on a free loopback port.  Demo equipment only: in production the operator's own
node decides, and ``node.embedded`` is false.
"""

from __future__ import annotations

from pathlib import Path

from twisted.application.service import Service
from twisted.internet.defer import Deferred, ensureDeferred, fail, succeed
from twisted.logger import Logger
from twisted.python.failure import Failure

log = Logger()


class EmbeddedRegtestNode(Service):
    """Starts and stops a RegtestNode with the daemon; :meth:`when_ready` gives its RPC."""

    name = "regtest-node"

    def __init__(self, datadir: Path, reactor: object) -> None:
        self.datadir = datadir
        self.reactor = reactor
        self.node: object | None = None
        self._ready: tuple[str, Path] | None = None
        self._failure: Failure | None = None
        self._waiters: list[Deferred[tuple[str, Path]]] = []

    def startService(self) -> None:  # noqa: N802
        super().startService()
        from sv2proxy.testing.regtest import RegtestNode

        node = RegtestNode(self.datadir, self.reactor)
        self.node = node
        ensureDeferred(node.start()).addCallbacks(lambda _: self._started(), self._failed)

    def _started(self) -> None:
        node = self.node
        self._ready = (node.rpc_url, node.cookie_path)  # type: ignore[attr-defined]
        log.warn(
            "embedded regtest node (demo) at height {height}, RPC {url}: regtest coins are worthless;"
            " for real mining set node.embedded: false and point node.rpc_url at your own node",
            height=node.height,  # type: ignore[attr-defined]
            url=self._ready[0],
        )
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            waiter.callback(self._ready)

    def _failed(self, failure: Failure) -> None:
        log.failure(
            "the embedded regtest node could not start (another daemon on the same data_dir?);"
            " miners will get no jobs",
            failure,
        )
        self._failure = failure
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            waiter.errback(failure)

    def when_ready(self) -> Deferred[tuple[str, Path]]:
        """Fires with ``(rpc_url, cookie_path)`` once the node serves RPC."""
        if self._ready is not None:
            return succeed(self._ready)
        if self._failure is not None:
            return fail(self._failure)
        waiter: Deferred[tuple[str, Path]] = Deferred()
        self._waiters.append(waiter)
        return waiter

    def stopService(self) -> Deferred[None] | None:  # noqa: N802
        super().stopService()
        node, self.node, self._ready = self.node, None, None
        if node is None:
            return None
        return ensureDeferred(node.stop())  # type: ignore[attr-defined]
