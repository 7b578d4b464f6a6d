"""Per-miner mode: one upstream channel for each local channel, as a sans-IO map (PROTOCOL.md §6, §8).

In aggregated mode one :class:`~sv2proxy.upstream.session.UpstreamSession` is the whole
connection.  Here :class:`MinerChannels` is: a connection session set up with no channel of
its own (``open_after_setup=False``), and one channel session per local channel, opened on
that connection with the miner's own user identity and a request id of its own, so that a pool
that pays or credits by channel identity (a solo pool whose usernames are addresses) sees each
miner.  Each channel session keeps its own jobs, prev hash, target, extranonce prefix and
shares in flight; this map only routes: answers to OpenExtendedMiningChannel by request id,
channel messages by channel id (or to every member of a group), the rest to the connection.

A miner's local extranonce never changes: its upstream channel's prefix (and whatever the
pool grants beyond the local extranonce size, as zeros) goes into the coinbase prefix of the
work the miner gets (:attr:`~sv2proxy.pool.jobs.Work.fixed_extranonce`), and the miner's own
bytes (its local prefix, then what it rolls) are what the upstream channel rolls.

Actions say which local channel they concern (:class:`ForMiner`).  A channel the pool refuses
or closes, or one that breaks the protocol, ends alone (:class:`MinerChannelClosed`); only a
fault of the connection itself is :class:`~sv2proxy.upstream.session.Fatal`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from sv2proxy.codec.common import ChannelEndpointChanged, Reconnect, SetupConnectionError, SetupConnectionSuccess
from sv2proxy.codec.extensions import RequestExtensionsError, RequestExtensionsSuccess
from sv2proxy.codec.message import Message
from sv2proxy.codec.mining import (
    CloseChannel,
    NewExtendedMiningJob,
    NewMiningJob,
    OpenExtendedMiningChannelSuccess,
    OpenMiningChannelError,
    SetCustomMiningJobError,
    SetCustomMiningJobSuccess,
    SetExtranoncePrefix,
    SetGroupChannel,
    SetNewPrevHash,
    SetTarget,
    SubmitSharesError,
    SubmitSharesSuccess,
    UpdateChannelError,
)
from sv2proxy.pool.jobs import Work
from sv2proxy.server.mining import AcceptedShare
from sv2proxy.upstream.session import (
    MAX_REJECT_CODES,
    OTHER,
    Action,
    ChannelOpened,
    Fatal,
    ForwardedShares,
    Ignored,
    NewWork,
    Phase,
    ReconnectTo,
    SendMessage,
    ShareResult,
    UpstreamSession,
)

#: CloseChannel reason when the local miner's channel closed.
REASON_MINER_GONE = "miner-disconnected"
#: CloseChannel reason when we give up an upstream channel that broke the protocol.
REASON_PROTOCOL = "protocol-error"
_U32 = 0xFFFFFFFF


@dataclass(frozen=True, slots=True)
class ConnectionReady:
    """SetupConnection succeeded: miners' channels can be opened (the link is ready)."""

    setup_flags: int


@dataclass(frozen=True, slots=True)
class ForMiner:
    """``action`` of the upstream channel of local channel ``channel_id``."""

    channel_id: int
    action: Action


@dataclass(frozen=True, slots=True)
class MinerChannelClosed:
    """Local channel ``channel_id`` has no upstream channel any more (refused, closed, broken)."""

    channel_id: int
    reason: str


MinerAction = SendMessage | ConnectionReady | ForMiner | MinerChannelClosed | ReconnectTo | Fatal | Ignored


class MinerChannels(ForwardedShares):
    """One Stratum V2 connection carrying one upstream channel per local channel.

    ``local_extranonce_size`` is the local channels' extranonce space (prefix and rolled
    bytes): every upstream channel must grant at least that many bytes.
    """

    def __init__(
        self,
        local_extranonce_size: int,
        endpoint_host: str = "",
        endpoint_port: int = 0,
        *,
        firmware: str = "",
        request_extensions: bool = True,
    ) -> None:
        super().__init__()
        self.connection = UpstreamSession(
            "",
            0.0,
            local_extranonce_size,
            endpoint_host,
            endpoint_port,
            firmware=firmware,
            request_extensions=request_extensions,
            open_after_setup=False,
        )
        self.local_extranonce_size = local_extranonce_size
        #: Local channel id -> its upstream channel's session.
        self.channels: dict[int, UpstreamSession] = {}
        self._by_request: dict[int, int] = {}  # request id -> local channel id, while opening
        self._by_upstream: dict[int, int] = {}  # upstream channel id -> local channel id
        #: Requests whose local channel closed before the pool answered: closed when it does.
        self._abandoned: set[int] = set()
        self._next_request = 1

    # -- what the link and the service read ------------------------------------------------

    @property
    def phase(self) -> Phase:
        return self.connection.phase

    @property
    def is_open(self) -> bool:
        """Whether the connection is set up (channels open on it as miners come)."""
        return self.connection.phase is Phase.READY

    @property
    def worker_names(self) -> bool:
        return self.connection.worker_names

    @property
    def in_flight(self) -> int:
        return sum(session.in_flight for session in self.channels.values())

    @property
    def oldest_in_flight_at(self) -> float | None:
        times = [t for t in (s.oldest_in_flight_at for s in self.channels.values()) if t is not None]
        return min(times, default=None)

    def upstream_channel_of(self, channel_id: int) -> int | None:
        """The upstream channel id of local channel ``channel_id``, once open."""
        session = self.channels.get(channel_id)
        return None if session is None else session.channel_id

    # -- the connection --------------------------------------------------------------------

    def start(self) -> list[Message]:
        """The SetupConnection to send first (once)."""
        return self.connection.start()

    def open(self, channel_id: int, user_identity: str, nominal_hash_rate: float) -> list[Message]:
        """An upstream channel for local channel ``channel_id``, opened as ``user_identity``.

        Before the connection is set up the request waits and goes out with :class:`ConnectionReady`.
        """
        if channel_id in self.channels:
            return []
        request_id = self._next_request
        self._next_request = request_id % _U32 + 1  # never 0, and wraps after 2**32 - 1 opens
        # The identity is a STR0_255: a longer one (a Stratum V1 username) is cut, not refused.
        identity = user_identity.encode("utf-8")[:255].decode("utf-8", "ignore")
        session = UpstreamSession(
            identity,
            nominal_hash_rate,
            self.local_extranonce_size,
            self.connection.endpoint_host,
            self.connection.endpoint_port,
            request_id=request_id,
        )
        self.channels[channel_id] = session
        self._by_request[request_id] = channel_id
        if not self.is_open:
            return []
        return session.open(self.connection.setup_flags, self.connection.worker_names)

    def close(self, channel_id: int) -> list[Message]:
        """Local channel ``channel_id`` closed: so does its upstream channel."""
        session = self.channels.pop(channel_id, None)
        if session is None:
            return []
        self._by_request.pop(session.request_id, None)
        upstream = session.channel_id
        if upstream is not None:
            self._by_upstream.pop(upstream, None)
            if session.phase is Phase.OPEN:
                return [CloseChannel(upstream, REASON_MINER_GONE)]
            return []
        if session.phase is Phase.OPENING:
            self._abandoned.add(session.request_id)
        return []

    def submit(self, share: AcceptedShare, now: float = 0.0) -> list[Message]:
        """The SubmitSharesExtended for a local share, on its miner's own upstream channel."""
        session = self.channels.get(share.channel_id)
        if session is None:
            self.not_forwarded["no upstream channel for the miner"] += 1
            return []
        messages = session.submit(share, now)
        self.forwarded += len(messages)
        return messages

    def update_channels(self, hash_rates: dict[int, float]) -> list[Message]:
        """UpdateChannel for each local channel with its own hash rate (H/s, 0: not told)."""
        messages: list[Message] = []
        for channel_id, hash_rate in hash_rates.items():
            session = self.channels.get(channel_id)
            if session is not None and hash_rate > 0:
                messages += session.update_channel(hash_rate)
        return messages

    # -- from the pool ---------------------------------------------------------------------

    def receive(self, message: Message) -> list[MinerAction]:
        """What to do about one message from the pool."""
        connection = self.connection
        if connection.phase in (Phase.NEW, Phase.SETTING_UP, Phase.CLOSED):
            return self._setting_up(message)
        if isinstance(message, SetupConnectionSuccess | SetupConnectionError):
            return self._fatal(f"a second {type(message).__name__}")
        if isinstance(message, Reconnect | RequestExtensionsSuccess | RequestExtensionsError | ChannelEndpointChanged):
            actions = self._from_connection(connection.receive(message))
            if isinstance(message, RequestExtensionsSuccess | RequestExtensionsError):
                for session in self.channels.values():
                    session.worker_names = connection.worker_names
            return actions
        if isinstance(message, OpenExtendedMiningChannelSuccess | OpenMiningChannelError):
            return self._open_answer(message)
        if isinstance(message, SetGroupChannel):
            return self._set_group(message)
        if isinstance(message, NewExtendedMiningJob | SetNewPrevHash | SetTarget | NewMiningJob | CloseChannel):
            return self._route(message, message.channel_id, group=True)
        if isinstance(message, SubmitSharesSuccess | SubmitSharesError | SetExtranoncePrefix | UpdateChannelError):
            return self._route(message, message.channel_id, group=False)
        if isinstance(message, SetCustomMiningJobSuccess | SetCustomMiningJobError):
            return [Ignored(f"{type(message).__name__}, but we never send custom jobs")]
        return self._fatal(f"unexpected {type(message).__name__} from a pool")

    def _setting_up(self, message: Message) -> list[MinerAction]:
        actions = self._from_connection(self.connection.receive(message))
        if self.connection.phase is not Phase.READY:
            return actions
        actions.append(ConnectionReady(self.connection.setup_flags))
        for session in self.channels.values():
            for request in session.open(self.connection.setup_flags, self.connection.worker_names):
                actions.append(SendMessage(request))
        return actions

    @staticmethod
    def _from_connection(actions: list[Action]) -> list[MinerAction]:
        """The connection session's actions (it has no channel, so no channel's actions come)."""
        out: list[MinerAction] = []
        for action in actions:
            if isinstance(action, SendMessage | ReconnectTo | Fatal | Ignored):
                out.append(action)
            else:
                out.append(Ignored(f"{type(action).__name__} from a connection with no channel of its own"))
        return out

    def _open_answer(self, message: OpenExtendedMiningChannelSuccess | OpenMiningChannelError) -> list[MinerAction]:
        request_id = message.request_id
        if request_id in self._abandoned:
            self._abandoned.discard(request_id)
            if isinstance(message, OpenExtendedMiningChannelSuccess):
                return [SendMessage(CloseChannel(message.channel_id, REASON_MINER_GONE))]
            return []
        channel_id = self._by_request.get(request_id)
        if channel_id is None:
            return [Ignored(f"{type(message).__name__} for request {request_id}, which is none of ours")]
        return self._channel(channel_id, message)

    def _set_group(self, message: SetGroupChannel) -> list[MinerAction]:
        members = [
            channel_id
            for channel_id, session in self.channels.items()
            if session.channel_id is not None
            and (session.channel_id in message.channel_ids or session.group_channel_id == message.group_channel_id)
        ]
        if not members:
            return [Ignored(f"SetGroupChannel {message.group_channel_id} without any of our channels")]
        return [action for channel_id in members for action in self._channel(channel_id, message)]

    def _route(self, message: Message, upstream: int, group: bool) -> list[MinerAction]:
        """``message`` to the channel it names, or (with ``group``) to every member of that group."""
        channel_id = self._by_upstream.get(upstream)
        if channel_id is not None:
            return self._channel(channel_id, message)
        if group and upstream != 0:
            members = [cid for cid, session in self.channels.items() if session.group_channel_id == upstream]
            if members:
                return [action for cid in members for action in self._channel(cid, message)]
        return [Ignored(f"{type(message).__name__} for channel {upstream}, which is none of ours")]

    def _channel(self, channel_id: int, message: Message) -> list[MinerAction]:
        """``message`` through local channel ``channel_id``'s session, its actions marked as its own."""
        session = self.channels[channel_id]
        out: list[MinerAction] = []
        for action in session.receive(message):
            if isinstance(action, SendMessage):
                out.append(action)
            elif isinstance(action, Fatal):
                out += self._channel_lost(channel_id, session, action.reason, told=isinstance(message, CloseChannel))
            elif isinstance(action, ChannelOpened):
                self._by_request.pop(session.request_id, None)
                self._by_upstream[action.channel_id] = channel_id
                out.append(ForMiner(channel_id, action))
            elif isinstance(action, NewWork):
                out.append(ForMiner(channel_id, NewWork(self._with_fixed(session, action.work))))
            else:
                if isinstance(action, ShareResult):
                    self._count(action)
                out.append(ForMiner(channel_id, action))
        return out

    def _count(self, result: ShareResult) -> None:
        """The connection's totals of the pool's verdicts (each channel session keeps its own too)."""
        if result.accepted:
            self.accepted += 1
            return
        code = result.error_code or OTHER
        if code not in self.rejected and len(self.rejected) >= MAX_REJECT_CODES - 1:
            code = OTHER
        self.rejected[code] += 1

    def _with_fixed(self, session: UpstreamSession, work: Work) -> Work:
        """``work`` with the upstream channel's prefix (and any bytes granted beyond ours) fixed."""
        fixed = session.extranonce_prefix + bytes(session.extranonce_size - self.local_extranonce_size)
        return dataclasses.replace(work, coinbase_prefix=work.coinbase_prefix + fixed, fixed_extranonce=fixed)

    def _channel_lost(self, channel_id: int, session: UpstreamSession, reason: str, told: bool) -> list[MinerAction]:
        """The upstream channel of ``channel_id`` is over; the pool hears so unless it said it."""
        self.channels.pop(channel_id, None)
        self._by_request.pop(session.request_id, None)
        out: list[MinerAction] = []
        upstream = session.channel_id
        if upstream is not None:
            self._by_upstream.pop(upstream, None)
            if not told:
                out.append(SendMessage(CloseChannel(upstream, REASON_PROTOCOL)))
        out.append(MinerChannelClosed(channel_id, reason))
        return out

    def _fatal(self, reason: str) -> list[MinerAction]:
        self.connection.phase = Phase.CLOSED
        return [Fatal(reason)]
