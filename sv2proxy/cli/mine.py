"""``sv2proxy-mine URL``: a CPU miner speaking Stratum V2, for the demo and for trying a pool.

It connects to ``stratum2+tcp://HOST:PORT/AUTHORITY_PUBKEY`` (the URL the daemon logs at start),
checks the pool's certificate against that key, opens a channel and mines on the CPU, printing
what the pool answered every few seconds.  Hashing in Python: a demo device, not a miner.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from urllib.parse import urlsplit

from twisted.internet.defer import Deferred
from twisted.internet.task import LoopingCall, react

from sv2proxy.link.noise import NoiseClientFactory
from sv2proxy.noise.keys import decode_authority_public_key
from sv2proxy.testing.device import MiningDeviceFactory


def parse_url(url: str) -> tuple[str, int, bytes]:
    """``(host, port, authority key)`` of a ``stratum2+tcp://`` URL; ValueError says what is wrong."""
    parts = urlsplit(url)
    if parts.scheme != "stratum2+tcp":
        raise ValueError(f"expected stratum2+tcp://HOST:PORT/AUTHORITY_PUBKEY, got {url!r}")
    if not parts.hostname or parts.port is None:
        raise ValueError(f"the URL needs a host and a port: {url!r}")
    key_text = parts.path.strip("/")
    if not key_text:
        raise ValueError("the URL needs the pool's authority public key after the port")
    return parts.hostname, parts.port, decode_authority_public_key(key_text)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="sv2proxy-mine", description=__doc__)
    parser.add_argument("url", help="stratum2+tcp://HOST:PORT/AUTHORITY_PUBKEY")
    parser.add_argument("--user", default="demo.cpu", help="user identity (worker name) [%(default)s]")
    parser.add_argument("--standard", action="store_true", help="open a standard channel, not an extended one")
    parser.add_argument(
        "--hashes-per-second", type=float, default=2000.0, help="cap on the hash rate [%(default)s]"
    )
    parser.add_argument("--seconds", type=float, default=0.0, help="stop after this long (0: until Ctrl-C)")
    args = parser.parse_args(argv)
    try:
        host, port, key = parse_url(args.url)
    except ValueError as e:
        parser.error(str(e))
    if args.hashes_per_second <= 0:
        parser.error("--hashes-per-second must be positive")

    failed = []

    def run(reactor: object) -> Deferred[None]:
        slice_size = max(1, int(args.hashes_per_second / 20))
        device = MiningDeviceFactory(
            reactor,  # type: ignore[arg-type]
            args.user,
            extended=not args.standard,
            hash_rate=args.hashes_per_second,
            pause=slice_size / args.hashes_per_second,
            nonces_per_slice=slice_size,
        )
        done: Deferred[None] = Deferred()

        def report() -> None:
            if device.device is None:
                print(f"connecting to {host}:{port} ...", flush=True)
                return
            stats = device.device.stats
            print(
                f"jobs {stats.jobs}  shares submitted {stats.shares_submitted}"
                f"  acknowledged {stats.shares_acknowledged}  rejected {len(stats.rejections)}"
                f"  blocks {len(stats.blocks)}",
                flush=True,
            )

        reporter = LoopingCall(report)
        reporter.clock = reactor  # type: ignore[assignment]
        reporter.start(3.0, now=False)
        def finish(why: str) -> None:
            if not done.called:
                print(why, file=sys.stderr, flush=True)
                failed.append(why)
                done.callback(None)

        # The Noise wrapper forwards these to the device's factory: a refused connection, a
        # failed handshake (wrong key) or a lost link all end the run with their reason.
        device.clientConnectionFailed = lambda connector, reason: finish(  # type: ignore[method-assign]
            f"cannot connect to {host}:{port}: {reason.getErrorMessage()}"
        )
        device.clientConnectionLost = lambda connector, reason: finish(  # type: ignore[method-assign]
            f"connection to {host}:{port} closed: {reason.getErrorMessage()}"
        )
        reactor.connectTCP(host, port, NoiseClientFactory(device, key, reactor))  # type: ignore[attr-defined]
        if args.seconds:
            reactor.callLater(args.seconds, lambda: done.called or done.callback(None))  # type: ignore[attr-defined]
        return done

    try:
        react(run)
    except SystemExit as e:
        if e.code:
            return int(e.code)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
