"""Client side of bench_tip: N Noise miners in a process of their own, reporting arrival times.

Started by :mod:`benchmarks.tip_latency` with ``PORT AUTHORITY_KEY_HEX COUNT [CORE]``.  Every
connection sets up and opens one extended channel; when all are open it prints ``ready``.  It
notes, per prev hash, when each connection first received the SetNewPrevHash for it (on the
system-wide monotonic clock, which the daemon's process reads too).  On a line ``expect HASH``
from stdin it waits until all N connections have it, then prints ``HASH FIRST LAST DISORDERED``,
the last the number of SetNewPrevHash messages that did not follow the job they activate (it
must be 0); ``quit`` ends it.  Decrypting a thousand connections' messages in Python takes
time: done here, it no longer delays the daemon it measures.
"""

from __future__ import annotations

import os
import sys
import time

from twisted.internet import defer, stdio, task
from twisted.internet.protocol import ClientFactory
from twisted.protocols.basic import LineReceiver

from sv2proxy.bitcoin.target import MAX_TARGET, target_to_u256
from sv2proxy.codec.common import SetupConnection, SetupConnectionSuccess
from sv2proxy.codec.framing import Frame
from sv2proxy.codec.message import Message
from sv2proxy.codec.mining import (
    NewExtendedMiningJob,
    OpenExtendedMiningChannel,
    OpenExtendedMiningChannelSuccess,
    SetNewPrevHash,
)
from sv2proxy.link import FramedProtocol, NoiseClientFactory


def now() -> float:
    return time.clock_gettime(time.CLOCK_MONOTONIC)


class Client(FramedProtocol):
    def connectionMade(self) -> None:  # noqa: N802
        self.sendMessage(SetupConnection(0, 2, 2, 0, "127.0.0.1", 0, "bench", "cpu", "1", "tip"))

    job_id: int | None = None  # of the last NewExtendedMiningJob, not yet activated

    def frameReceived(self, frame: Frame) -> None:  # noqa: N802
        # A job is not decoded, only its job_id read (the U32 LE after channel_id): decoding it
        # would only make this process, not the daemon it measures, the slower side.
        if frame.msg_type == NewExtendedMiningJob.MSG_TYPE:
            self.job_id = int.from_bytes(frame.payload[4:8], "little")
        else:
            super().frameReceived(frame)

    def messageReceived(self, message: Message) -> None:  # noqa: N802
        if isinstance(message, SetNewPrevHash):
            # Each connection must have had the job before the SetNewPrevHash that activates it.
            in_order, self.job_id = self.job_id == message.job_id, None
            self.factory.arrived(self, message.prev_hash, in_order)
        elif isinstance(message, SetupConnectionSuccess):
            self.sendMessage(OpenExtendedMiningChannel(1, "bench", 1e12, target_to_u256(MAX_TARGET), 4))
        elif isinstance(message, OpenExtendedMiningChannelSuccess):
            self.factory.opened()


class Clients(ClientFactory):
    protocol = Client
    noisy = False

    def __init__(self, count: int, out: LineReceiver) -> None:
        self.count = count
        self.out = out
        self.open = 0
        self.arrivals: dict[bytes, dict[int, float]] = {}
        self.expected: bytes | None = None
        self.out_of_order = 0  # SetNewPrevHash messages not preceded by their job

    def opened(self) -> None:
        self.open += 1
        if self.open == self.count:
            self.out.sendLine(b"ready")

    def arrived(self, client: Client, prev_hash: bytes, in_order: bool) -> None:
        if not in_order:
            self.out_of_order += 1
        seen = self.arrivals.setdefault(prev_hash, {})
        seen.setdefault(id(client), now())
        self._report()

    def expect(self, prev_hash: bytes) -> None:
        self.expected = prev_hash
        self._report()

    def _report(self) -> None:
        expected = self.expected
        if expected is None:
            return
        times = self.arrivals.get(expected, {})
        if len(times) < self.count:
            return
        self.expected = None
        first, last = min(times.values()), max(times.values())
        self.out.sendLine(f"{expected.hex()} {first!r} {last!r} {self.out_of_order}".encode())
        self.arrivals.clear()
        self.out_of_order = 0


class Control(LineReceiver):
    delimiter = b"\n"

    def __init__(self, done: defer.Deferred[None]) -> None:
        self.done = done
        self.clients: Clients | None = None

    def lineReceived(self, line: bytes) -> None:  # noqa: N802
        command, _, argument = line.decode().partition(" ")
        if command == "expect" and self.clients is not None:
            self.clients.expect(bytes.fromhex(argument))
        elif command == "quit" and not self.done.called:
            self.done.callback(None)


def main() -> None:
    port, key, count = int(sys.argv[1]), bytes.fromhex(sys.argv[2]), int(sys.argv[3])
    if len(sys.argv) > 4 and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {int(sys.argv[4])})  # the core the daemon does not use

    def run(reactor) -> defer.Deferred[None]:
        done: defer.Deferred[None] = defer.Deferred()
        control = Control(done)
        stdio.StandardIO(control)
        clients = control.clients = Clients(count, control)
        for _ in range(count):
            reactor.connectTCP("127.0.0.1", port, NoiseClientFactory(clients, key, reactor, 60.0))
        return done

    task.react(run)


if __name__ == "__main__":
    main()
