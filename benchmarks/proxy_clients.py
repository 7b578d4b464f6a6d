"""Worker for bench_proxy: N Stratum V1 miners submitting valid shares (runs the reactor).

``python -m benchmarks.proxy_clients CPUS PORT MINERS WINDOW WARMUP SATURATE PACED RATE``

Each miner connects to 127.0.0.1:PORT, subscribes and authorizes (no version rolling), takes
the difficulty and the job it is sent, then finds its shares the way a miner does: coinbase
with its extranonce1 and extranonce2 0, merkle root, header, and every nonce whose hash meets
the difficulty's target is a share (nonces from ``index << 24`` up, so a nonce names its share
across miners).  Shares and their ``mining.submit`` lines are computed before any clock runs.

Then, all miners at once:

1. closed loop: WINDOW submits in flight per miner, the next sent as each answer comes (a miner
   does not wait for answers to submit what it finds); WARMUP seconds unmeasured, then
   SATURATE seconds in which answers are counted (throughput);
2. a pause until every submit in flight is answered;
3. paced: each miner submits RATE shares a second (the miners evenly staggered) for PACED
   seconds, whatever the answers; each submit's round trip is timed (latency).

Times are ``time.monotonic()`` (CLOCK_MONOTONIC, the same clock in every process of the
machine, so the daemon's stamps compare with these).  CPUS (``1``, ``-`` for any) is the CPU
affinity the process sets itself.  Prints one JSON object.
"""

from __future__ import annotations

import json
import os
import struct
import sys
import time
from hashlib import sha256

from twisted.internet import defer, task
from twisted.internet.protocol import ClientFactory, Protocol

from sv2proxy.bitcoin.hashing import merkle_root_from_path, sha256d
from sv2proxy.bitcoin.target import difficulty_to_target
from sv2proxy.sv1 import (
    Notify,
    SetDifficulty,
    authorize_request,
    parse_message,
    parse_notification,
    parse_subscribe_result,
    submit_request,
    subscribe_request,
)

FIRST_SHARE_ID = 100  # ids below are the miners' setup requests
_TAIL = struct.Struct("<4sII")


class Miner(Protocol):
    factory: Miners

    def __init__(self, index: int) -> None:
        self.index = index
        self.buffer = b""
        self.extranonce1: bytes | None = None
        self.extranonce2_size = 0
        self.difficulty: float | None = None
        self.job: Notify | None = None
        self.authorized = False
        self.lines: list[bytes] = []  # share i is submitted with id FIRST_SHARE_ID + i
        self.nonces: list[int] = []
        self.sent_at: list[float] = []
        self.phase_of: list[str] = []
        self.next = 0
        self.in_flight = 0

    def connectionMade(self) -> None:  # noqa: N802
        self.transport.write(subscribe_request(1, "bench/1.0"))

    def dataReceived(self, data: bytes) -> None:  # noqa: N802
        lines = (self.buffer + data).split(b"\n")
        self.buffer = lines.pop()
        loads = json.loads
        for line in lines:
            message = loads(line)
            request_id = message.get("id")
            if request_id is not None and request_id >= FIRST_SHARE_ID:
                self.factory.answered(self, request_id - FIRST_SHARE_ID, message)
            else:
                self._setup_line(line)

    def _setup_line(self, line: bytes) -> None:
        message = parse_message(line)
        if getattr(message, "method", None) is not None:
            notification = parse_notification(message)
            if isinstance(notification, SetDifficulty):
                self.difficulty = notification.difficulty
            elif isinstance(notification, Notify):
                self.job = notification
        elif message.id == 1:
            self.extranonce1, self.extranonce2_size = parse_subscribe_result(message.result)
            self.transport.write(authorize_request(2, f"miner{self.index}", "x"))
        elif message.id == 2:
            if message.result is not True:
                raise RuntimeError(f"miner {self.index} was not authorized: {message.error}")
            self.authorized = True
        self.factory.maybe_ready()

    @property
    def ready(self) -> bool:
        return self.authorized and self.difficulty is not None and self.job is not None

    def find_shares(self, count: int) -> None:
        """Append ``count`` valid shares (and their submit lines) to what the miner holds."""
        job, extranonce1 = self.job, self.extranonce1
        assert job is not None and extranonce1 is not None and self.difficulty is not None
        target = difficulty_to_target(self.difficulty)
        extranonce2 = bytes(self.extranonce2_size)
        coinbase = job.coinbase_prefix + extranonce1 + extranonce2 + job.coinbase_suffix
        root = merkle_root_from_path(sha256d(coinbase), job.merkle_path)
        midstate = sha256(struct.pack("<I", job.version) + job.prev_hash + root[:28])
        tail = _TAIL.pack(root[28:], job.ntime, job.nbits)
        nonce = self.nonces[-1] + 1 if self.nonces else self.index << 24
        # submit_request's line, with the two fields that change left to %-formatting.
        template = submit_request(0, f"miner{self.index}", job.job_id, extranonce2, job.ntime, 0)
        template = template.replace(b'"id":0,', b'"id":%d,').replace(b'"00000000"]', b'"%08x"]')
        for _ in range(count):
            while True:
                inner = midstate.copy()
                inner.update(tail + nonce.to_bytes(4, "little"))
                if int.from_bytes(sha256(inner.digest()).digest(), "little") <= target:
                    break
                nonce += 1
            share_id = FIRST_SHARE_ID + len(self.lines)
            self.lines.append(template % (share_id, nonce))
            self.nonces.append(nonce)
            nonce += 1

    def submit(self, phase: str) -> None:
        i = self.next
        if i == len(self.lines):
            self.factory.extra_shares += 64
            self.find_shares(64)  # not expected: the budget was too small
        self.next = i + 1
        self.in_flight += 1
        self.phase_of.append(phase)
        self.sent_at.append(time.monotonic())
        self.transport.write(self.lines[i])


class Miners(ClientFactory):
    noisy = False

    def __init__(self, count: int) -> None:
        self.count = count
        self.miners: list[Miner] = []
        self.all_ready: defer.Deferred[None] = defer.Deferred()
        self.phase = "setup"
        self.counted = 0  # answers during the measured closed-loop window
        self.counting = False
        self.accepted = 0
        self.refused: dict[str, int] = {}
        self.in_flight = 0
        self.drained: defer.Deferred[None] | None = None
        self.paced_rtt_ms: list[float] = []
        self.paced_sent: list[tuple[int, float]] = []
        self.extra_shares = 0

    def buildProtocol(self, addr: object) -> Miner:  # noqa: N802
        miner = Miner(len(self.miners))
        miner.factory = self
        self.miners.append(miner)
        return miner

    def clientConnectionFailed(self, connector: object, reason: object) -> None:  # noqa: N802
        if not self.all_ready.called:
            self.all_ready.errback(reason)

    def maybe_ready(self) -> None:
        if not self.all_ready.called and len(self.miners) == self.count and all(m.ready for m in self.miners):
            self.all_ready.callback(None)

    def send(self, miner: Miner) -> None:
        self.in_flight += 1
        miner.submit(self.phase)

    def answered(self, miner: Miner, i: int, message: dict) -> None:
        now = time.monotonic()
        miner.in_flight -= 1
        self.in_flight -= 1
        if message.get("result") is True and message.get("error") is None:
            self.accepted += 1
        else:
            key = json.dumps(message.get("error"))
            self.refused[key] = self.refused.get(key, 0) + 1
        if miner.phase_of[i] == "paced":
            self.paced_rtt_ms.append((now - miner.sent_at[i]) * 1000)
            self.paced_sent.append((miner.nonces[i], miner.sent_at[i]))
        if self.counting:
            self.counted += 1
        if self.phase == "closed":
            self.send(miner)
        elif self.in_flight == 0 and self.drained is not None:
            done, self.drained = self.drained, None
            done.callback(None)

    def drain(self) -> defer.Deferred[None]:
        self.phase = "drain"
        if self.in_flight == 0:
            return defer.succeed(None)
        self.drained = defer.Deferred()
        return self.drained


async def measure(
    reactor, port: int, count: int, window: int, warmup: float, saturate: float, paced: float, rate: float
) -> dict:
    miners = Miners(count)
    for _ in range(count):
        reactor.connectTCP("127.0.0.1", port, miners, timeout=10)
    await miners.all_ready.addTimeout(20, reactor)
    # Enough shares for up to 40,000 answers a second in all; more are found if not (counted).
    budget = int((warmup + saturate) * 40_000 / count + paced * rate) + 2 * window
    for miner in miners.miners:
        miner.find_shares(budget)

    def wait(seconds: float) -> defer.Deferred[None]:
        return task.deferLater(reactor, seconds, lambda: None)

    miners.phase = "closed"
    for _ in range(window):
        for miner in miners.miners:
            miners.send(miner)
    await wait(warmup)
    miners.counting = True
    started, cpu_started = time.monotonic(), time.process_time()
    await wait(saturate)
    miners.counting = False
    ended, cpu_ended = time.monotonic(), time.process_time()
    counted = miners.counted
    await miners.drain()

    miners.phase = "paced"
    calls = []
    for k, miner in enumerate(miners.miners):
        call = task.LoopingCall(miners.send, miner)
        call.clock = reactor
        calls.append(call)
        reactor.callLater(k / (count * rate), call.start, 1 / rate)
    paced_started = time.monotonic()
    await wait(paced)
    for call in calls:
        if call.running:
            call.stop()
    paced_ended = time.monotonic()
    await miners.drain()
    for miner in miners.miners:
        miner.transport.loseConnection()
    return {
        "closed": {"answered": counted, "started": started, "ended": ended, "cpu": cpu_ended - cpu_started},
        "paced": {"started": paced_started, "ended": paced_ended},
        "paced_rtt_ms": miners.paced_rtt_ms,
        "paced_sent": miners.paced_sent,
        "accepted": miners.accepted,
        "refused": miners.refused,
        "extra_shares": miners.extra_shares,
    }


def main() -> None:
    cpus = sys.argv[1]
    if cpus != "-":
        os.sched_setaffinity(0, {int(cpu) for cpu in cpus.split(",")})
    port, count, window = int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    warmup, saturate, paced, rate = (float(arg) for arg in sys.argv[5:9])

    async def run(reactor) -> None:
        result = await measure(reactor, port, count, window, warmup, saturate, paced, rate)
        print(json.dumps(result, separators=(",", ":")), flush=True)

    task.react(lambda reactor: defer.ensureDeferred(run(reactor)))


if __name__ == "__main__":
    main()
