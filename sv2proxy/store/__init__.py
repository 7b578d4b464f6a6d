"""Durable share accounting: SQLite (embedded default) and PostgreSQL (shared by several daemons)."""

from sv2proxy.store.interface import IShareStore
from sv2proxy.store.records import BlockRecord, UpstreamEventRecord, WorkerStats

__all__ = ["IShareStore", "BlockRecord", "UpstreamEventRecord", "WorkerStats"]
