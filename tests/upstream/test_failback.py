"""UpstreamService fail-back on a MemoryReactorClock: while on a backup, the preferred pools are
probed every ``failback_interval`` seconds (a whole link, up to an open channel, whose work is
held back meanwhile); the first one that works takes over and the backup is left, its jobs
dropped (so their shares are answered stale); probes that fail wait for the next round; losing
the current pool or stopping abandons a probe; 0 disables it all."""

from __future__ import annotations

import pytest
from twisted.internet.testing import MemoryReactorClock, StringTransport

from sv2proxy.codec.common import SetupConnectionSuccess
from sv2proxy.codec.mining import (
    NewExtendedMiningJob,
    OpenExtendedMiningChannelSuccess,
    SetNewPrevHash,
    SubmitSharesExtended,
)
from sv2proxy.config import load_config
from sv2proxy.events import EventBus, MiningPoolConnected, MiningPoolDisconnected
from sv2proxy.pool.jobs import PrevHash, Work
from sv2proxy.server.mining import MiningService
from sv2proxy.tap import upstream_service
from sv2proxy.upstream.client import UpstreamProtocol
from sv2proxy.upstream.link import HeldMining
from sv2proxy.upstream.session import UpstreamSession

from .fakes import FakeMining, share
from .test_service import DELAYS, PREFIX, TARGET, URLS, Harness, Link

INTERVAL = 30.0
OTHER_PREFIX = b"\xcc\xdd"


def on_backup(index: int = 1, **kwargs) -> tuple[Harness, Link]:
    """A service whose pools before ``urls[index]`` refused it, now mining on ``urls[index]``."""
    h = Harness(failback_interval=INTERVAL, **kwargs)
    h.service.startService()
    for n in range(index):
        h.refuse()
        h.reactor.advance(DELAYS[n])
    link = h.accept()
    link.open()
    return h, link


def job(channel_id: int, job_id: int) -> tuple[NewExtendedMiningJob, SetNewPrevHash]:
    return (
        NewExtendedMiningJob(channel_id, job_id, None, 0x20000000, True, (), b"\x01", b"\x02"),
        SetNewPrevHash(channel_id, job_id, bytes(32), 1_700_000_000, 0x1D00FFFF),
    )


def test_the_primary_is_probed_every_interval_and_taken_back_once_it_works():
    h, backup = on_backup()
    backup.feed(*job(5, 1))
    assert h.ports() == [3331, 3332]
    h.reactor.advance(INTERVAL - 0.001)
    assert h.ports() == [3331, 3332]
    h.reactor.advance(0.001)
    assert h.ports() == [3331, 3332, 3331]  # the probe
    probe = h.accept()
    # While the probe sets up, the miners stay on the backup and their shares go there.
    probe.feed(SetupConnectionSuccess(2, 0))
    h.service.share_accepted(share(1, PREFIX + bytes(8)))
    assert [type(m) for m in backup.sent() if isinstance(m, SubmitSharesExtended)] == [SubmitSharesExtended]
    assert h.service.url == URLS[1]
    h.mining.calls.clear()
    probe.feed(OpenExtendedMiningChannelSuccess(1, 9, TARGET, 8, OTHER_PREFIX, 0))
    # The backup's work is dropped before the primary's space reaches the miners.
    assert h.mining.calls == [("drop_work", None), ("set_extranonce_space", (OTHER_PREFIX, 10))]
    assert backup.transport.disconnecting
    assert h.service.url == URLS[0] and h.service.protocol is not None
    assert h.pool_events() == [
        MiningPoolConnected(URLS[1].text),
        MiningPoolDisconnected(URLS[1].text, f"failing back to {URLS[0].text}"),
        MiningPoolConnected(URLS[0].text),
    ]
    # Work and shares now flow with the primary; the old link's end changes nothing.
    probe.feed(*job(9, 4))
    assert h.mining.names()[-2:] == ["new_work", "new_prev_hash"]
    backup.lose()
    assert h.service.url == URLS[0] and len(h.pool_events()) == 3
    h.service.share_accepted(share(4, OTHER_PREFIX + bytes(8)))
    assert [m.job_id for m in probe.sent() if isinstance(m, SubmitSharesExtended)] == [4]
    # On the primary: no more probes, no retry.
    h.reactor.advance(10 * INTERVAL)
    assert h.ports() == [3331, 3332, 3331]


def test_a_probe_that_fails_tries_the_next_preferred_pool_then_waits_a_whole_interval():
    h, backup = on_backup(index=2)
    h.reactor.advance(INTERVAL)
    assert h.ports() == [3331, 3332, 3333, 3331]
    h.refuse()  # the primary is still down ...
    h.reactor.advance(0)
    assert h.ports() == [3331, 3332, 3333, 3331, 3332]  # ... so the second one is probed at once
    probe = h.accept()
    probe.feed(SetupConnectionSuccess(2, 0))
    probe.lose("refused our channel")  # not ready: a failed probe
    h.reactor.advance(0)  # the round is over ...
    h.reactor.advance(INTERVAL - 1)  # ... and the next starts a whole interval later
    assert h.ports() == [3331, 3332, 3333, 3331, 3332]
    h.reactor.advance(1)
    assert h.ports() == [3331, 3332, 3333, 3331, 3332, 3331]
    # Failing probes never disturbed the backup.
    assert h.service.url == URLS[2] and not backup.transport.disconnecting
    assert h.pool_events() == [MiningPoolConnected(URLS[2].text)]
    h.accept().open()  # the primary works again
    assert h.service.url == URLS[0] and backup.transport.disconnecting


def test_failing_back_to_a_middle_pool_keeps_probing_the_primary():
    h, backup = on_backup(index=2)
    h.reactor.advance(INTERVAL)
    h.refuse()
    h.reactor.advance(0)
    h.accept().open()  # the second pool works
    assert h.service.url == URLS[1]
    h.reactor.advance(INTERVAL)
    assert h.ports()[-1] == 3331


def test_losing_the_backup_abandons_the_probe_and_fails_over_as_usual():
    h, backup = on_backup()
    h.reactor.advance(INTERVAL)
    probe = h.accept()
    backup.lose("backup died")
    assert probe.transport.disconnecting
    assert h.mining.names()[-1] == "drop_work"
    probe.feed(OpenExtendedMiningChannelSuccess(1, 9, TARGET, 8, OTHER_PREFIX, 0))
    probe.lose()
    # Nothing from the abandoned probe reached the miners, and the usual retry follows.
    assert "set_extranonce_space" not in h.mining.names()[-1:]
    assert h.service.url is None
    assert [call.func.__name__ for call in h.reactor.getDelayedCalls()] == ["_connect"]


def test_no_probe_on_the_primary_or_when_the_interval_is_zero():
    h = Harness(failback_interval=INTERVAL)
    h.service.startService()
    h.accept().open()
    h.reactor.advance(10 * INTERVAL)
    assert h.ports() == [3331]
    h = Harness(failback_interval=0.0)
    h.service.startService()
    h.refuse()
    h.reactor.advance(DELAYS[0])
    h.accept().open()
    h.reactor.advance(10 * INTERVAL)
    assert h.ports() == [3331, 3332]


def test_stopping_while_probing_closes_both_links_and_leaves_no_timer():
    h, backup = on_backup()
    h.reactor.advance(INTERVAL)
    probe = h.accept()
    stopped = h.service.stopService()
    assert backup.transport.disconnecting and probe.transport.disconnecting
    backup.lose()
    assert not stopped.called
    probe.lose()
    assert stopped.called and h.reactor.getDelayedCalls() == []
    h, backup = on_backup()
    assert h.service.stopService() is not None
    backup.lose()
    assert h.reactor.getDelayedCalls() == []


def test_a_held_link_hands_its_work_over_in_order_when_promoted():
    held = HeldMining()
    mining = FakeMining()
    session = UpstreamSession("u", 1e9, 6, "pool", 1)
    protocol = UpstreamProtocol(session, held, Harness().reactor, _Listener(), "pool")
    protocol.makeConnection(StringTransport())
    protocol.dataReceived(
        SetupConnectionSuccess(2, 0).to_frame()
        + OpenExtendedMiningChannelSuccess(1, 5, TARGET, 8, PREFIX, 0).to_frame()
        + b"".join(m.to_frame() for m in job(5, 1))
    )
    assert mining.calls == [] and held.total_hash_rate() == 0.0
    protocol.promote(mining)
    assert mining.names() == ["set_extranonce_space", "new_work", "new_prev_hash"]
    work = mining.calls[1][1]
    assert isinstance(work, Work) and work.source_id == 1
    assert mining.calls[2][1] == (1, PrevHash(bytes(32), 1_700_000_000, 0x1D00FFFF))
    assert held.calls == []
    # Tips and a drop before promotion: only what came after the drop is handed over.
    held = HeldMining()
    held.new_work(work)
    held.drop_work()
    assert held.new_tip(work, PrevHash(bytes(32), 1, 2)) == 0
    protocol = UpstreamProtocol(UpstreamSession("u", 1e9, 6), held, Harness().reactor, _Listener(), "pool")
    protocol.makeConnection(StringTransport())
    mining = FakeMining()
    protocol.promote(mining)
    assert mining.names() == ["new_tip"]


class _Listener:
    def link_up(self, protocol) -> None:
        pass

    def channel_opened(self, protocol, opened) -> None:
        pass

    def reconnect_requested(self, protocol, host, port, wait=0.0) -> None:
        pass

    def link_lost(self, protocol, reason) -> None:
        pass


def test_the_daemon_passes_the_interval_and_the_extensions_switch():
    config = load_config(
        None,
        {
            "mode": "proxy",
            "pool_url": "stratum+tcp://pool.example.com:3333",
            "upstream.failback_interval": "5",
            "upstream.request_extensions": "false",
        },
    )
    reactor = MemoryReactorClock()
    service = upstream_service(config, MiningService(reactor, EventBus()), reactor, EventBus())
    assert service is not None
    assert (service.failback_interval, service.request_extensions) == (5, False)
    with pytest.raises(ValueError, match="failback_interval"):
        Harness(failback_interval=-1.0)


def test_without_request_extensions_the_pool_hears_only_setup_and_open():
    h = Harness(request_extensions=False)
    h.service.startService()
    link = h.accept()
    link.sent()
    link.feed(SetupConnectionSuccess(2, 0))
    assert [type(m).__name__ for m in link.sent()] == ["OpenExtendedMiningChannel"]
