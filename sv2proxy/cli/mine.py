"""``sv2proxy-mine URL``: a CPU miner speaking Stratum V2 or V1, for the demo and for trying a pool.

Given ``stratum2+tcp://HOST:PORT/AUTHORITY_PUBKEY`` (the URL the daemon logs at start) it checks
the pool's certificate against that key, opens a channel and mines; given
``stratum+tcp://HOST:PORT`` it speaks Stratum V1 over plain TCP, as an SV1 ASIC would.  Either
way it mines on the CPU, printing what the pool answered every few seconds.  Hashing in Python:
a demo device, not a miner.
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
from sv2proxy.testing.sv1_device import Sv1MiningDeviceFactory

SV2_SCHEME = "stratum2+tcp"
SV1_SCHEME = "stratum+tcp"


def parse_url(url: str) -> tuple[str, int, bytes | None]:
    """``(host, port, authority key)`` of a pool URL; ValueError says what is wrong.

    The key is None for ``stratum+tcp://HOST:PORT`` (Stratum V1, plain TCP, no key).
    """
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as e:  # urlsplit's own complaint about a port out of range or not a number
        raise ValueError(f"not a pool URL: {url!r} ({e})") from None
    if parts.scheme not in (SV2_SCHEME, SV1_SCHEME):
        raise ValueError(f"expected {SV2_SCHEME}://HOST:PORT/AUTHORITY_PUBKEY or {SV1_SCHEME}://HOST:PORT, got {url!r}")
    if not parts.hostname or port is None:
        raise ValueError(f"the URL needs a host and a port: {url!r}")
    key_text = parts.path.strip("/")
    if parts.scheme == SV1_SCHEME:
        if key_text or parts.query or parts.fragment:
            raise ValueError(f"a {SV1_SCHEME} URL is only HOST:PORT (Stratum V1 has no authority key): {url!r}")
        return parts.hostname, port, None
    if not key_text:
        raise ValueError("the URL needs the pool's authority public key after the port")
    return parts.hostname, port, decode_authority_public_key(key_text)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="sv2proxy-mine", description=__doc__)
    parser.add_argument("url", help="stratum2+tcp://HOST:PORT/AUTHORITY_PUBKEY or stratum+tcp://HOST:PORT")
    parser.add_argument("--user", default="demo.cpu", help="user identity (worker name) [%(default)s]")
    parser.add_argument("--standard", action="store_true", help="open a standard channel, not an extended one")
    parser.add_argument("--password", help="Stratum V1: the mining.authorize password [x]")
    parser.add_argument(
        "--version-rolling",
        action=argparse.BooleanOptionalAction,
        help="Stratum V1: ask for BIP310 version rolling with mining.configure [on]",
    )
    parser.add_argument(
        "--suggest-difficulty", type=float, help="Stratum V1: send mining.suggest_difficulty with this value"
    )
    parser.add_argument("--hashes-per-second", type=float, default=2000.0, help="cap on the hash rate [%(default)s]")
    parser.add_argument("--seconds", type=float, default=0.0, help="stop after this long (0: until Ctrl-C)")
    args = parser.parse_args(argv)
    try:
        host, port, key = parse_url(args.url)
    except ValueError as e:
        parser.error(str(e))
    if args.hashes_per_second <= 0:
        parser.error("--hashes-per-second must be positive")
    if key is None and args.standard:
        parser.error(f"--standard is for {SV2_SCHEME} URLs: Stratum V1 has no channels")
    sv1_only = (args.password, args.version_rolling, args.suggest_difficulty)
    if key is not None and any(option is not None for option in sv1_only):
        parser.error(f"--password, --[no-]version-rolling and --suggest-difficulty are for {SV1_SCHEME} URLs")
    if args.suggest_difficulty is not None and not (0 < args.suggest_difficulty < float("inf")):
        parser.error("--suggest-difficulty must be positive")

    failed = []

    def run(reactor: object) -> Deferred[None]:
        slice_size = max(1, int(args.hashes_per_second / 20))
        pause = slice_size / args.hashes_per_second
        device: MiningDeviceFactory | Sv1MiningDeviceFactory
        if key is None:
            device = Sv1MiningDeviceFactory(
                reactor,  # type: ignore[arg-type]
                args.user,
                "x" if args.password is None else args.password,
                version_rolling=args.version_rolling is not False,
                suggest_difficulty=args.suggest_difficulty,
                pause=pause,
                nonces_per_slice=slice_size,
            )
        else:
            device = MiningDeviceFactory(
                reactor,  # type: ignore[arg-type]
                args.user,
                extended=not args.standard,
                hash_rate=args.hashes_per_second,
                pause=pause,
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

        # Twisted calls these on the device's factory (through the Noise wrapper for SV2): a
        # refused connection, a failed handshake (wrong key) or a lost link end the run with
        # their reason.
        device.clientConnectionFailed = lambda connector, reason: finish(  # type: ignore[method-assign]
            f"cannot connect to {host}:{port}: {reason.getErrorMessage()}"
        )
        device.clientConnectionLost = lambda connector, reason: finish(  # type: ignore[method-assign]
            f"connection to {host}:{port} closed: {reason.getErrorMessage()}"
        )
        if key is None:
            reactor.connectTCP(host, port, device)  # type: ignore[attr-defined]
        else:
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
