"""The share store against real databases: SQLite files and a real PostgreSQL server."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import psycopg
import pytest
import pytest_twisted
from twisted.internet import reactor
from twisted.internet.defer import Deferred
from twisted.internet.task import deferLater

from sv2proxy.config import StoreConfig
from sv2proxy.store import IShareStore
from sv2proxy.store.backend import Backend, Batch
from sv2proxy.store.batched import BatchedStore
from sv2proxy.store.postgresql import PostgreSQLBackend, redact
from sv2proxy.store.records import WINDOWS, BlockRecord, UpstreamEventRecord
from sv2proxy.store.schema import MIGRATIONS
from sv2proxy.store.service import open_store
from sv2proxy.store.sqlite import LARGEST_STATEMENT, SQLiteBackend

NOW = 1_800_000_000.0


@pytest.fixture(params=["sqlite", "postgresql"])
def make_backend(request: pytest.FixtureRequest, tmp_path: Path) -> Callable[[], Backend]:
    """A factory of backends on one fresh database of each kind."""
    if request.param == "sqlite":
        return lambda: SQLiteBackend(tmp_path / "shares.sqlite3")
    url = request.getfixturevalue("postgresql_url")
    return lambda: PostgreSQLBackend(url)


@pytest_twisted.async_yield_fixture
async def store(make_backend: Callable[[], Backend]) -> AsyncIterator[BatchedStore]:
    started = BatchedStore(make_backend(), reactor, daemon="test-daemon")
    await started.start()
    yield started
    await started.stop()


async def durable(store: BatchedStore, ticket: int | None = None) -> None:
    """Wait until the store has committed up to ``ticket`` (default: everything recorded)."""
    wanted = store.last_ticket if ticket is None else ticket
    for _ in range(2000):
        if store.durable >= wanted and not store._writing and not store._queued:
            return
        await deferLater(reactor, 0.005, lambda: None)
    raise AssertionError(f"store never became durable up to {wanted} (at {store.durable})")


def test_the_store_provides_the_interface(tmp_path: Path) -> None:
    assert IShareStore.providedBy(BatchedStore(SQLiteBackend(tmp_path / "x.sqlite3"), reactor))


@pytest_twisted.ensureDeferred
async def test_shares_become_durable_in_order_and_listeners_hear(store: BatchedStore) -> None:
    heard: list[int] = []
    store.add_durable_listener(heard.append)
    tickets = [store.record_share("alice", 1, 7, 2.0, NOW - 10, False) for _ in range(3)]
    assert tickets == [1, 2, 3]
    assert store.durable < 3  # nothing is durable until the writer thread has committed
    await durable(store)
    assert heard[-1] == 3 and heard == sorted(heard)
    stats = await store.worker_stats(NOW)
    assert [s.worker for s in stats] == ["alice"]
    assert stats[0].shares_24h == 3 and stats[0].difficulty_24h == 6.0
    assert stats[0].last_share_at == pytest.approx(NOW - 10)


@pytest_twisted.ensureDeferred
async def test_many_shares_are_group_committed(store: BatchedStore) -> None:
    for i in range(5000):
        store.record_share(f"w{i % 7}", i % 3, i, 1.0, NOW - 1, False)
    await durable(store)
    assert store.shares_committed == 5000
    # The first share starts a commit; everything recorded meanwhile goes in the next one.
    assert store.commits <= 3
    stats = await store.worker_stats(NOW)
    assert sum(s.shares_24h for s in stats) == 5000


@pytest_twisted.ensureDeferred
async def test_hash_rate_windows(store: BatchedStore) -> None:
    store.record_share("bob", 1, 1, 60.0, NOW - 30, False)  # in every window
    store.record_share("bob", 1, 2, 900.0, NOW - 600, False)  # 15 m and longer
    store.record_share("bob", 1, 3, 3600.0, NOW - 2 * 86400, False)  # too old for any
    await durable(store)
    (bob,) = await store.worker_stats(NOW)
    assert len(bob.hash_rates) == len(WINDOWS)
    assert bob.hash_rates[0] == pytest.approx(60.0 * 2**32 / 60)
    assert bob.hash_rates[1] == pytest.approx(960.0 * 2**32 / 900)
    assert bob.hash_rates[3] == pytest.approx(960.0 * 2**32 / 86400)
    assert bob.shares_24h == 2
    assert await store.worker_stats(NOW, "nobody") == []
    (only,) = await store.worker_stats(NOW, "bob")
    assert only.shares_24h == 2


@pytest_twisted.ensureDeferred
async def test_rejected_counts_add_up_across_commits(store: BatchedStore) -> None:
    store.count_rejected("carol", "stale-share")
    store.count_rejected("carol", "stale-share")
    store.count_rejected("carol", "difficulty-too-low")
    store.record_share("carol", 1, 1, 1.0, NOW, False)
    await durable(store)
    store.count_rejected("carol", "stale-share")
    store.record_share("carol", 1, 2, 1.0, NOW, False)
    await durable(store)
    (carol,) = await store.worker_stats(NOW + 1)
    assert carol.rejected == {"stale-share": 3, "difficulty-too-low": 1}


@pytest_twisted.ensureDeferred
async def test_a_worker_with_only_rejections_is_found_by_name(store: BatchedStore) -> None:
    store.count_rejected("dave", "invalid-job-id")
    store.record_share("erin", 1, 1, 1.0, NOW, False)
    await durable(store)
    (dave,) = await store.worker_stats(NOW, "dave")
    assert dave.shares_24h == 0 and dave.rejected == {"invalid-job-id": 1}


@pytest_twisted.ensureDeferred
async def test_a_block_keeps_what_each_status_told(store: BatchedStore) -> None:
    store.record_block(BlockRecord("00ab", "found", NOW, worker="alice"))
    store.record_share("alice", 1, 1, 1.0, NOW, True)
    await durable(store)
    store.record_block(BlockRecord("00ab", "accepted", NOW + 1, height=101, reward=5_000_000_000))
    store.record_block(BlockRecord("00cd", "found", NOW + 2, worker="bob"))
    store.record_block(BlockRecord("00cd", "rejected", NOW + 3, reason="high-hash"))
    store.record_share("alice", 1, 2, 1.0, NOW + 3, False)
    await durable(store)
    latest, first = await store.blocks(10)
    assert (first.hash, first.status, first.worker, first.height, first.reward) == (
        "00ab",
        "accepted",
        "alice",
        101,
        5_000_000_000,
    )
    assert first.at == pytest.approx(NOW)  # found_at stays the finding time
    assert (latest.hash, latest.status, latest.worker, latest.reason) == ("00cd", "rejected", "bob", "high-hash")
    (alice,) = await store.worker_stats(NOW + 4, "alice")
    assert alice.blocks == 1


@pytest_twisted.ensureDeferred
async def test_upstream_events_newest_first(store: BatchedStore) -> None:
    store.record_upstream_event(UpstreamEventRecord("stratum+tcp://a:1", "connected", NOW))
    store.record_upstream_event(UpstreamEventRecord("stratum+tcp://a:1", "disconnected", NOW + 5, "reset"))
    store.record_share("x", 1, 1, 1.0, NOW, False)
    await durable(store)
    events = await store.upstream_events(10)
    assert [(e.event, e.reason) for e in events] == [("disconnected", "reset"), ("connected", "")]


@pytest_twisted.ensureDeferred
async def test_pplns_window_counts_only_the_last_shares(store: BatchedStore) -> None:
    store.record_share("old", 1, 1, 100.0, NOW - 100, False)
    for i in range(3):
        store.record_share("alice", 1, i, 3.0, NOW - 10 + i, False)
    store.record_share("bob", 2, 9, 1.0, NOW - 1, False)
    await durable(store)
    payouts = await store.payouts(4)
    assert payouts == [("alice", 9.0, pytest.approx(0.9)), ("bob", 1.0, pytest.approx(0.1))]


@pytest_twisted.ensureDeferred
async def test_hash_rate_history_buckets(store: BatchedStore) -> None:
    store.record_share("a", 1, 1, 60.0, NOW - 90, False)  # bucket 0 of [NOW-120, NOW)
    store.record_share("b", 1, 1, 120.0, NOW - 10, False)  # bucket 1
    await durable(store)
    history = await store.hash_rate_history(NOW, 120, 2)
    assert [start for start, _ in history] == [NOW - 120, NOW - 60]
    assert [rate for _, rate in history] == [pytest.approx(60 * 2**32 / 60), pytest.approx(120 * 2**32 / 60)]
    only_b = await store.hash_rate_history(NOW, 120, 2, worker="b")
    assert only_b[0][1] == 0.0


@pytest_twisted.ensureDeferred
async def test_reopening_migrates_nothing_and_keeps_the_shares(make_backend: Callable[[], Backend]) -> None:
    first = BatchedStore(make_backend(), reactor, daemon="d")
    await first.start()
    first.record_share("alice", 1, 1, 1.0, NOW, False)
    await first.stop()  # stop commits what was queued
    second = BatchedStore(make_backend(), reactor, daemon="d")
    await second.start()
    try:
        (alice,) = await second.worker_stats(NOW)
        assert alice.shares_24h == 1
    finally:
        await second.stop()


@pytest_twisted.ensureDeferred
async def test_the_last_shares_recorded_are_the_last_in_the_pplns_window(store: BatchedStore) -> None:
    """Shares with one timestamp are ordered as recorded, across the statements a big batch takes."""
    total = LARGEST_STATEMENT + 100
    for i in range(total):
        store.record_share(f"w{i}", 1, i, i + 0.1, NOW, False)
    await durable(store)
    window = 150  # reaches back past the first LARGEST_STATEMENT rows of the second commit
    payouts = await store.payouts(window)
    assert sorted(worker for worker, _, _ in payouts) == sorted(f"w{i}" for i in range(total - window, total))
    assert all(difficulty == int(worker[1:]) + 0.1 for worker, difficulty, _ in payouts)


def _sqlite_rows(path: Path) -> list[tuple]:
    with sqlite3.connect(path) as check:
        return check.execute(
            "SELECT id, daemon, worker, channel_id, job_id, difficulty, at, is_block FROM shares ORDER BY id"
        ).fetchall()


@pytest.mark.parametrize("sizes", [[1, 2, 3], [LARGEST_STATEMENT - 1, LARGEST_STATEMENT, LARGEST_STATEMENT + 1, 9000]])
def test_sqlite_batches_of_any_size_are_stored_exactly_and_in_order(tmp_path: Path, sizes: list[int]) -> None:
    backend = SQLiteBackend(tmp_path / "shares.sqlite3")
    connection = backend.connect()
    backend.migrate(connection)
    recorded: list[tuple] = []
    for size in sizes:
        batch = Batch()
        for _ in range(size):
            n = len(recorded)
            # Irregular floats, so a value that lost a bit on its way would show.
            batch.shares.append((f"rig{n % 37}", n % 5, n, 1 / (n + 3), NOW + n / 7, 1 if n % 11 == 0 else 0))
            recorded.append(batch.shares[-1])
        backend.write(connection, "d1", batch, NOW)
    connection.close()
    rows = _sqlite_rows(tmp_path / "shares.sqlite3")
    assert [row[0] for row in rows] == list(range(1, len(recorded) + 1))
    assert [row[1:] for row in rows] == [("d1", *share) for share in recorded]


def test_sqlite_rejected_counts_of_many_workers_add_up(tmp_path: Path) -> None:
    backend = SQLiteBackend(tmp_path / "shares.sqlite3")
    connection = backend.connect()
    backend.migrate(connection)
    first, second = Batch(), Batch()
    first.rejected = {(f"w{i}", "stale-share"): i + 1 for i in range(LARGEST_STATEMENT + 5)}
    second.rejected = {(f"w{i}", "stale-share"): 1 for i in range(0, LARGEST_STATEMENT + 5, 2)}
    second.rejected[("w0", "invalid-job-id")] = 4
    backend.write(connection, "d1", first, NOW)
    backend.write(connection, "d1", second, NOW)
    counts = {
        (worker, reason): count
        for worker, reason, count in connection.execute("SELECT worker, reason, count FROM rejected_shares")
    }
    connection.close()
    expected = {key: count + second.rejected.get(key, 0) for key, count in first.rejected.items()}
    expected[("w0", "invalid-job-id")] = 4
    assert counts == expected


def test_sqlite_a_failed_batch_leaves_nothing_and_the_connection_usable(tmp_path: Path) -> None:
    backend = SQLiteBackend(tmp_path / "shares.sqlite3")
    connection = backend.connect()
    backend.migrate(connection)
    bad = Batch()
    bad.shares = [(f"rig{n}", 1, n, 1.0, NOW, 0) for n in range(LARGEST_STATEMENT + 100)]
    # In the batch's second statement, so the first one's rows must be undone too.
    bad.shares[LARGEST_STATEMENT + 50] = (None, 1, 0, 1.0, NOW, 0)  # type: ignore[assignment]
    bad.rejected = {("rig1", "stale-share"): 1}
    with pytest.raises(sqlite3.IntegrityError):
        backend.write(connection, "d1", bad, NOW)
    good = Batch()
    good.shares = [("rig0", 1, 1, 1.0, NOW, 0)]
    backend.write(connection, "d1", good, NOW)
    connection.close()
    assert [row[2] for row in _sqlite_rows(tmp_path / "shares.sqlite3")] == ["rig0"]
    with sqlite3.connect(tmp_path / "shares.sqlite3") as check:
        assert check.execute("SELECT COUNT(*) FROM rejected_shares").fetchone() == (0,)


def test_sqlite_with_a_low_parameter_limit_uses_smaller_statements(tmp_path: Path) -> None:
    """Builds of SQLite before 3.32 bind at most 999 parameters per statement."""
    backend = SQLiteBackend(tmp_path / "shares.sqlite3")
    connection = backend.connect()
    backend.migrate(connection)
    connection.setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, 999)
    batch = Batch()
    batch.shares = [(f"rig{n}", 1, n, 1.0, NOW + n, 0) for n in range(1000)]
    batch.rejected = {(f"rig{n}", "stale-share"): 1 for n in range(1000)}
    backend.write(connection, "d1", batch, NOW)
    connection.close()
    rows = _sqlite_rows(tmp_path / "shares.sqlite3")
    assert [row[2] for row in rows] == [f"rig{n}" for n in range(1000)]


def test_sqlite_connections_commit_durably(tmp_path: Path) -> None:
    """WAL with synchronous=FULL: a commit is on disk when it returns (2 is FULL)."""
    backend = SQLiteBackend(tmp_path / "shares.sqlite3")
    connection = backend.connect()
    try:
        assert connection.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        assert connection.execute("PRAGMA synchronous").fetchone() == (2,)
    finally:
        connection.close()


def test_a_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "future.sqlite3"
    backend = SQLiteBackend(path)
    connection = backend.connect()
    backend.migrate(connection)
    connection.execute("UPDATE schema_version SET version = ?", (len(MIGRATIONS) + 1,))
    with pytest.raises(RuntimeError, match="newer than this sv2proxy knows"):
        backend.migrate(connection)


@pytest_twisted.ensureDeferred
async def test_a_locked_sqlite_file_holds_acknowledgements_then_commits(tmp_path: Path) -> None:
    """Another process holds the write lock: the commit fails, nothing is durable, and the batch
    commits once the lock is released."""
    path = tmp_path / "shares.sqlite3"
    backend = SQLiteBackend(path, busy_timeout=0.05)
    store = BatchedStore(backend, reactor, daemon="d")
    await store.start()
    blocker = sqlite3.connect(path, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")
    try:
        store.record_share("alice", 1, 1, 1.0, NOW, False)
        for _ in range(400):
            if store.last_error:
                break
            await deferLater(reactor, 0.005, lambda: None)
        assert store.last_error is not None and "locked" in store.last_error
        assert store.durable == 0
        store.record_share("alice", 1, 2, 1.0, NOW, False)  # joins the batch being retried
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    await durable(store)
    assert store.durable == 2 and store.last_error is None
    (alice,) = await store.worker_stats(NOW)
    assert alice.shares_24h == 2
    await store.stop()


@pytest_twisted.ensureDeferred
async def test_a_lost_postgresql_connection_is_reopened_and_the_batch_retried(postgresql_url: str) -> None:
    store = BatchedStore(PostgreSQLBackend(postgresql_url), reactor, daemon="d")
    await store.start()
    try:
        store.record_share("alice", 1, 1, 1.0, NOW, False)
        await durable(store)
        with psycopg.connect(postgresql_url, autocommit=True) as admin:
            admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        store.record_share("alice", 1, 2, 1.0, NOW, False)
        await durable(store)
        (alice,) = await store.worker_stats(NOW)
        assert alice.shares_24h == 2
    finally:
        await store.stop()


@pytest_twisted.ensureDeferred
async def test_two_daemons_share_one_postgresql(postgresql_url: str) -> None:
    stores = [BatchedStore(PostgreSQLBackend(postgresql_url), reactor, daemon=f"d{i}") for i in range(2)]
    # Started together: the advisory lock lets exactly one of them migrate.
    starting: list[Deferred[None]] = [s.start() for s in stores]
    for d in starting:
        await d
    try:
        for i in range(200):
            for n, s in enumerate(stores):
                s.record_share(f"w{n}", 1, i, 1.0, NOW, False)
                s.count_rejected("shared", "stale-share")
        for s in stores:
            await durable(s)
        stats = {w.worker: w for w in await stores[0].worker_stats(NOW + 1)}
        assert stats["w0"].shares_24h == stats["w1"].shares_24h == 200
        with psycopg.connect(postgresql_url) as check:
            rows = check.execute(
                "SELECT daemon, SUM(count) FROM rejected_shares GROUP BY daemon ORDER BY daemon"
            ).fetchall()
            versions = check.execute("SELECT version FROM schema_version").fetchall()
        assert rows == [("d0", 200), ("d1", 200)]
        assert versions == [(len(MIGRATIONS),)]
    finally:
        for s in stores:
            await s.stop()


def test_postgresql_urls_are_logged_without_password() -> None:
    assert redact("postgresql://pool:hunter2@db:5432/shares") == "postgresql://pool:********@db:5432/shares"
    assert redact("postgresql://db/shares") == "postgresql://db/shares"
    assert "hunter2" not in PostgreSQLBackend("postgresql://pool:hunter2@db/shares").description


def test_postgresql_urls_are_logged_without_any_password() -> None:
    assert redact("postgresql://pool@db/sv2?password=hunter2") == "postgresql://pool@db/sv2?password=********"
    assert (
        redact("postgresql://pool@db/sv2?sslmode=require&sslpassword=hunter2&application_name=x")
        == "postgresql://pool@db/sv2?sslmode=require&sslpassword=********&application_name=x"
    )
    # A URL libpq would refuse (or urllib cannot take apart) is still shown without its password.
    assert redact("postgresql://pool:hunter2@db:54x2/sv2") == "postgresql://pool:********@db:54x2/sv2"
    assert redact("postgresql://pool:hunter2@h1:5432,h2:5433/sv2") == "postgresql://pool:********@h1:5432,h2:5433/sv2"
    assert "hunter2" not in PostgreSQLBackend("postgresql://pool@db/sv2?password=hunter2").description


def test_the_daemons_store_keeps_refused_records_in_the_data_directory(tmp_path: Path) -> None:
    store = open_store(StoreConfig(url="sqlite"), tmp_path, reactor)
    assert store is not None and store.quarantine == tmp_path / "store-quarantine.jsonl"


@pytest_twisted.ensureDeferred
async def test_a_worker_name_with_nul_is_stored_in_postgresql(postgresql_url: str) -> None:
    """PostgreSQL's text takes no NUL: the name is stored with U+FFFD, and nothing waits on it."""
    store = BatchedStore(PostgreSQLBackend(postgresql_url), reactor, daemon="d\x00aemon")
    await store.start()
    try:
        store.record_share("alice", 1, 1, 1.0, NOW, False)
        store.record_share("a\x00b", 1, 2, 1.0, NOW, False)
        store.count_rejected("a\x00b", "stale\x00share")
        store.record_block(BlockRecord("00ab", "found", NOW, worker="a\x00b", reason="x\x00"))
        store.record_upstream_event(UpstreamEventRecord("stratum+tcp://a\x00:1", "disconnected", NOW, "\x00"))
        store.record_share("bob", 1, 3, 1.0, NOW, False)
        await durable(store)
        assert store.set_aside == 0
        stats = {s.worker: s for s in await store.worker_stats(NOW + 1)}
        assert set(stats) == {"a\ufffdb", "alice", "bob"}
        assert stats["a\ufffdb"].rejected == {"stale\ufffdshare": 1} and stats["a\ufffdb"].blocks == 1
        (event,) = await store.upstream_events(10)
        assert (event.url, event.reason) == ("stratum+tcp://a\ufffd:1", "\ufffd")
    finally:
        await store.stop()


#: Shares no database column can hold: a channel id beyond BIGINT, and no worker at all.
OUT_OF_RANGE = ("mallory", 2**63, 5, 1.0, NOW, False)
NO_WORKER = (None, 1, 6, 1.0, NOW, False)


@pytest_twisted.ensureDeferred
async def test_records_the_database_refuses_are_set_aside_and_the_rest_acknowledged(
    make_backend: Callable[[], Backend], tmp_path: Path
) -> None:
    quarantine = tmp_path / "data" / "store-quarantine.jsonl"
    store = BatchedStore(make_backend(), reactor, daemon="d", quarantine=quarantine)
    await store.start()
    heard: list[int] = []
    store.add_durable_listener(heard.append)
    try:
        store.record_share("alice", 1, 1, 1.0, NOW, False)  # commits alone: the rest queue behind it
        for n in range(2, 5):
            store.record_share("alice", 1, n, 1.0, NOW, False)
        store.record_share(*OUT_OF_RANGE)
        store.count_rejected("bob", "stale-share")
        for n in range(7, 10):
            store.record_share("bob", 2, n, 2.0, NOW, False)
        store.record_share(*NO_WORKER)  # type: ignore[arg-type]
        store.record_share("bob", 2, 11, 2.0, NOW, False)
        await durable(store)
        # Every ticket became durable (the two refused shares are in the quarantine file), so no
        # miner waits on them; the good shares are in the database once each.
        assert heard[-1] == store.last_ticket == 10
        assert store.set_aside == 2 and store.shares_committed == 8
        stats = {s.worker: s for s in await store.worker_stats(NOW + 1)}
        assert sorted(stats) == ["alice", "bob"]
        assert stats["alice"].shares_24h == 4 and stats["bob"].shares_24h == 4
        assert stats["bob"].rejected == {"stale-share": 1}
        kept = [json.loads(line) for line in quarantine.read_text().splitlines()]
        assert [(k["kind"], k["daemon"], k["record"]["worker"], k["record"]["job_id"]) for k in kept] == [
            ("share", "d", "mallory", 5),
            ("share", "d", None, 6),
        ]
        assert kept[0]["record"]["channel_id"] == 2**63 and kept[0]["error"]
        # And the store goes on as before.
        store.record_share("carol", 1, 12, 1.0, NOW, False)
        await durable(store)
        assert heard[-1] == 11
    finally:
        await store.stop()


@pytest_twisted.ensureDeferred
async def test_a_refused_record_waits_while_the_quarantine_file_cannot_be_written(
    make_backend: Callable[[], Backend], tmp_path: Path
) -> None:
    """The ticket advances only once the refused share is durable somewhere; the good shares of
    its batch, committed meanwhile, are not written twice."""
    blocker = tmp_path / "data"
    blocker.write_text("a file where the data directory should be")
    store = BatchedStore(make_backend(), reactor, daemon="d", quarantine=blocker / "store-quarantine.jsonl")
    await store.start()
    try:
        store.record_share("alice", 1, 1, 1.0, NOW, False)
        await durable(store)
        store.record_share("alice", 1, 2, 1.0, NOW, False)  # commits alone
        store.record_share(*OUT_OF_RANGE)  # with the next one
        store.record_share("alice", 1, 3, 1.0, NOW, False)
        for _ in range(400):
            if store.last_error:
                break
            await deferLater(reactor, 0.005, lambda: None)
        assert store.last_error is not None
        assert store.durable == 2 and store.set_aside == 0
        blocker.unlink()
        await durable(store)
        assert store.durable == 4 and store.set_aside == 1
        (alice,) = await store.worker_stats(NOW + 1)
        assert alice.shares_24h == 3
        assert len((blocker / "store-quarantine.jsonl").read_text().splitlines()) == 1
    finally:
        await store.stop()


@pytest_twisted.ensureDeferred
async def test_reads_before_the_schema_exists_say_so(tmp_path: Path) -> None:
    from sv2proxy.store.batched import StoreNotReady

    store = BatchedStore(SQLiteBackend(tmp_path / "shares.sqlite3"), reactor, daemon="test-daemon")
    with pytest.raises(StoreNotReady, match="not ready yet \\(starting\\)"):
        await store.worker_stats(0.0)
    await store.start()
    try:
        assert await store.worker_stats(0.0) == []
    finally:
        await store.stop()
    with pytest.raises(StoreNotReady):  # stopped: its reader is gone, so no query may hang on it
        await store.blocks()
