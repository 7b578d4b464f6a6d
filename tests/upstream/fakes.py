"""Stand-ins and builders shared by the upstream tests."""

from __future__ import annotations

from sv2proxy.codec.framing import FrameDecoder
from sv2proxy.codec.message import Message
from sv2proxy.codec.registry import decode_frame
from sv2proxy.errors import MiningJobError, PoolError
from sv2proxy.pool.jobs import PrevHash, Work
from sv2proxy.server.mining import AcceptedShare

#: A hash every target admits (0) and one none but the largest does.
EASY_HASH = bytes(32)
HARD_HASH = b"\xff" * 32


class FakeMining:
    """Records, in order, what the upstream hands the mining service."""

    def __init__(self, hash_rate: float = 0.0) -> None:
        self.calls: list[tuple[str, object]] = []
        self.share_sink: object = None
        self.hash_rate = hash_rate
        self.refuse_space: str | None = None  # a PoolError message for set_extranonce_space
        self.refuse_work = False

    def new_work(self, work: Work) -> int:
        if self.refuse_work:
            raise MiningJobError("refused by the test")
        self.calls.append(("new_work", work))
        return len(self.calls)

    def new_prev_hash(self, source_id: int, prev: PrevHash) -> None:
        self.calls.append(("new_prev_hash", (source_id, prev)))

    def new_tip(self, work: Work, prev: PrevHash) -> int:
        if self.refuse_work:
            raise MiningJobError("refused by the test")
        self.calls.append(("new_tip", (work, prev)))
        return len(self.calls)

    def set_extranonce_space(self, fixed: bytes, total_size: int) -> None:
        if self.refuse_space is not None:
            raise PoolError(self.refuse_space)
        self.calls.append(("set_extranonce_space", (fixed, total_size)))

    def drop_work(self) -> None:
        self.calls.append(("drop_work", None))

    def total_hash_rate(self) -> float:
        return self.hash_rate

    def names(self) -> list[str]:
        return [name for name, _ in self.calls]


def share(
    job_id: int,
    extranonce: bytes,
    share_hash: bytes = EASY_HASH,
    *,
    is_block: bool = False,
    worker: str = "alice.1",
    channel_id: int = 3,
) -> AcceptedShare:
    return AcceptedShare(
        source_id=job_id,
        extranonce=extranonce,
        version=0x20000000,
        ntime=1_700_000_000,
        nonce=42,
        share_hash=share_hash,
        difficulty=1.0,
        worker=worker,
        channel_id=channel_id,
        is_block=is_block,
    )


def written(data: bytes) -> list[Message]:
    """The messages in plaintext frames ``data``."""
    return [decode_frame(frame) for frame in FrameDecoder().feed(data)]
