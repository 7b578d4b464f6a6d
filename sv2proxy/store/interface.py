"""The contract every share store keeps (DESIGN.md "Interfaces are contracts")."""

from __future__ import annotations

from zope.interface import Attribute, Interface


class IShareStore(Interface):
    """Accepted shares, rejected-share counts, found blocks and upstream events, made durable.

    Writes are queued on the reactor thread and group-committed off it.  Every accepted share
    gets a *ticket* (increasing); :attr:`durable` is the highest ticket committed, and durable
    listeners hear of each advance, so a share is acknowledged to its miner only once it is on
    disk (DESIGN.md "Data the system must never lose").  A record the database refuses on its own
    (text or a number it cannot hold) is on disk in the store's quarantine file instead, logged,
    and does not hold back the others (see :mod:`sv2proxy.store.batched`).  Queries return Deferreds.
    """

    durable = Attribute("the ticket of the last accepted share known to be durable")
    last_ticket = Attribute("the ticket of the last accepted share recorded")

    def start():
        """Connect and migrate the schema; a Deferred that fires when writes can be made durable."""

    def stop():
        """Commit everything queued, then close; a Deferred that fires when done."""

    def record_share(worker, channel_id, job_id, difficulty, at, is_block):
        """Queue an accepted share for the next commit; returns its ticket."""

    def count_rejected(worker, reason):
        """Add one to ``worker``'s count of shares rejected for ``reason``."""

    def record_block(block):
        """Queue a :class:`~sv2proxy.store.records.BlockRecord` (its latest status wins)."""

    def record_upstream_event(event):
        """Queue an :class:`~sv2proxy.store.records.UpstreamEventRecord`."""

    def add_durable_listener(listener):
        """Call ``listener(ticket)`` every time the shares up to ``ticket`` become durable."""

    def worker_stats(now):
        """Deferred list of :class:`~sv2proxy.store.records.WorkerStats`, busiest first."""

    def blocks(limit):
        """Deferred list of the ``limit`` latest :class:`~sv2proxy.store.records.BlockRecord`."""

    def upstream_events(limit):
        """Deferred list of the ``limit`` latest upstream events."""

    def payouts(window):
        """Deferred list of ``(worker, difficulty, fraction)`` over the last ``window`` shares (PPLNS)."""

    def hash_rate_history(now, span, buckets, worker):
        """Deferred list of ``(bucket start, H/s)``: pool (``worker`` None) or one worker's hash rate."""
