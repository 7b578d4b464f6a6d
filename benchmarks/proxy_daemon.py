"""Worker for bench_proxy: one daemon of the benchmark, ``pool`` or ``proxy`` (runs the reactor).

``python -m benchmarks.proxy_daemon pool CPUS``
    A pool: a MiningService in pool mode fed one fixed block template by hand (mainnet-like
    nBits, so no share is a block), behind the daemon's Stratum V2 listener stack (Noise,
    MinerFactory) and its Stratum V1 one (Sv1MinerFactory).  It stamps every share it accepts
    with ``time.monotonic()``.
``python -m benchmarks.proxy_daemon proxy CPUS POOL_PORT POOL_KEY``
    A proxy: a MiningService plus an UpstreamService connected, through Noise pinned to
    ``POOL_KEY`` (hex), to the pool's Stratum V2 port, and a Stratum V1 listener for miners.

Both are configured as ``twistd sv2proxy`` would be from the ``mining`` section below (the
extranonce layout of proxy mode included); only the vardiff is pinned (min = max difficulty),
the per-connection message limit lifted and the keepalive job turned off, so nothing changes
during a run.  CPUS (``0,1``; ``-`` for any) is the CPU affinity the process sets itself.

Protocol with bench_proxy: one JSON line on stdout once ready to take miners; then one line on
stdin (the pool: how many accepted shares to wait for, at most 5 s, before reporting; the
proxy: anything) and one JSON line on stdout with the report, after which the process exits.
Both reports carry ``cpu``, (monotonic, process CPU seconds) sampled every 50 ms.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import threading
import time

from twisted.internet import defer, task

from sv2proxy.config import MiningConfig, PoolProtocol, PoolUrl
from sv2proxy.events import EventBus
from sv2proxy.link.noise import NoiseServerFactory, ServerCredentials
from sv2proxy.noise.keys import AuthorityKey, encode_authority_public_key
from sv2proxy.pool.jobs import PrevHash, Work
from sv2proxy.server.miner import MinerFactory
from sv2proxy.server.mining import MiningService, pool_settings
from sv2proxy.server.sv1_miner import Sv1MinerFactory
from sv2proxy.tap import PROXY_MINER_ROLLABLE
from sv2proxy.upstream import UpstreamService

#: A mainnet nBits (difficulty about 9e13): a share that is also a block will not happen.
NBITS = 0x17034219
DIFFICULTY = 1e-9  # about one hash in four is a share: cheap for the clients to find
MAX_MESSAGES_PER_SECOND = 1e9  # the per-connection limit is not what is measured
#: A realistic job: ~60 coinbase bytes before the extranonce, ~120 after, a 12-node merkle path.
COINBASE_PREFIX = b"\x01" * 60
COINBASE_SUFFIX = b"\x02" * 120
MERKLE_PATH = tuple(hashlib.sha256(bytes([i])).digest() for i in range(12))
CPU_SAMPLE_INTERVAL = 0.05

MINING = MiningConfig(
    min_difficulty=DIFFICULTY,
    max_difficulty=DIFFICULTY,
    keepalive_interval=0,
    max_messages_per_second=MAX_MESSAGES_PER_SECOND,
)


def _emit(value: object) -> None:
    sys.stdout.write(json.dumps(value, separators=(",", ":")) + "\n")
    sys.stdout.flush()


def _on_stdin_line(reactor, callback) -> None:
    """``callback(line)`` in the reactor thread once a line (or EOF) arrives on stdin."""

    def wait() -> None:
        line = sys.stdin.readline()
        reactor.callFromThread(callback, line.strip())

    threading.Thread(target=wait, daemon=True).start()


def _cpu_sampler(reactor) -> list[tuple[float, float]]:
    samples: list[tuple[float, float]] = []

    def sample() -> None:
        samples.append((time.monotonic(), time.process_time()))

    call = task.LoopingCall(sample)
    call.clock = reactor
    call.start(CPU_SAMPLE_INTERVAL)
    return samples


async def pool(reactor) -> dict[str, object]:
    events = EventBus()
    mining = MiningService(reactor, events, pool_settings(MINING), keepalive_interval=MINING.keepalive_interval)
    mining.startService()
    accepted: list[tuple[int, float]] = []
    rejected: list[str] = []
    submit = mining.submit

    def stamped(owner, share, worker=None):
        result = submit(owner, share, worker)
        if result is not None and result.accepted:
            accepted.append((share.nonce, time.monotonic()))
        elif result is not None:
            rejected.append(result.error_code or "?")
        return result

    mining.submit = stamped  # type: ignore[method-assign]
    mining.new_work(Work(1, 0x20000000, True, COINBASE_PREFIX, COINBASE_SUFFIX, MERKLE_PATH, future=True))
    mining.new_prev_hash(1, PrevHash(hashlib.sha256(b"tip").digest(), int(reactor.seconds()) - 10, NBITS))

    authority = AuthorityKey.generate()
    sv2 = NoiseServerFactory(
        MinerFactory(mining, MINING.max_messages_per_second), ServerCredentials(authority, reactor), reactor
    )
    sv2_port = reactor.listenTCP(0, sv2, interface="127.0.0.1", backlog=1024)
    sv1 = Sv1MinerFactory(mining, MINING.sv1_extranonce2_size, MINING.max_messages_per_second)
    sv1_port = reactor.listenTCP(0, sv1, interface="127.0.0.1", backlog=1024)
    cpu = _cpu_sampler(reactor)
    stop: defer.Deferred[str] = defer.Deferred()
    _on_stdin_line(reactor, stop.callback)
    _emit({"sv2_port": sv2_port.getHost().port, "key": authority.public.hex(), "v1_port": sv1_port.getHost().port})

    expected = int(await stop or 0)
    for _ in range(250):
        if len(accepted) >= expected:
            break
        await task.deferLater(reactor, 0.02, lambda: None)
    return {
        "accepted": len(accepted),
        "stamps": accepted,
        "rejected": rejected,
        "channels": len(mining.manager.channels),
        "cpu": cpu,
    }


async def proxy(reactor, pool_port: int, pool_key: bytes) -> dict[str, object]:
    events = EventBus()
    # As tap.makeService sets proxy mode up: the space asked of the pool until it answers.
    space = MINING.channel_prefix_size + PROXY_MINER_ROLLABLE
    mining = MiningService(
        reactor, events, pool_settings(MINING, extranonce_size=space), keepalive_interval=MINING.keepalive_interval
    )
    mining.startService()
    text = f"stratum2+tcp://127.0.0.1:{pool_port}/{encode_authority_public_key(pool_key)}"
    url = PoolUrl(text, PoolProtocol.V2, "127.0.0.1", pool_port, pool_key)
    upstream = UpstreamService([url], mining, events, reactor, "proxy.user", min_extranonce_size=space)
    upstream.startService()
    for _ in range(500):
        session = upstream.session
        if session is not None and session.is_open and session.prev is not None:
            break
        await task.deferLater(reactor, 0.01, lambda: None)
    else:
        raise RuntimeError("the proxy got no channel and work from the pool in 5 s")
    sv1 = Sv1MinerFactory(mining, MINING.sv1_extranonce2_size, MINING.max_messages_per_second)
    sv1_port = reactor.listenTCP(0, sv1, interface="127.0.0.1", backlog=1024)
    cpu = _cpu_sampler(reactor)
    stop: defer.Deferred[str] = defer.Deferred()
    _on_stdin_line(reactor, stop.callback)
    _emit({"v1_port": sv1_port.getHost().port})

    await stop
    session = upstream.session
    assert session is not None
    return {
        "forwarded": session.forwarded,
        "acknowledged": session.accepted,
        "refused_upstream": dict(session.rejected),
        "below_target": session.below_target,
        "not_forwarded": dict(session.not_forwarded),
        "without_upstream": upstream.shares_without_upstream,
        "cpu": cpu,
    }


def main() -> None:
    role, cpus = sys.argv[1], sys.argv[2]
    if cpus != "-":
        os.sched_setaffinity(0, {int(cpu) for cpu in cpus.split(",")})

    async def run(reactor) -> None:
        if role == "pool":
            report = await pool(reactor)
        elif role == "proxy":
            report = await proxy(reactor, int(sys.argv[3]), bytes.fromhex(sys.argv[4]))
        else:
            raise SystemExit(f"unknown role {role!r}")
        _emit(report)

    task.react(lambda reactor: defer.ensureDeferred(run(reactor)))


if __name__ == "__main__":
    main()
