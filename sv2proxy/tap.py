"""``twistd sv2proxy``: the command-line options and the service tree (DESIGN.md "Layout").

:class:`Options` reads and validates the whole configuration in ``postOptions``, before twistd
daemonizes, so a mistake reaches the terminal instead of a log file nobody is reading yet.  A
configuration mistake exits 1 with exactly the one line of the
:class:`~sv2proxy.errors.ConfigError` on stderr; twistd's usage dump would only bury it.
:func:`makeService` only composes services: no I/O, nothing asynchronous.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import cast

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IReactorCore, IReactorTime
from twisted.python import usage

from sv2proxy.authority import load_or_create
from sv2proxy.bitcoin.address import Network, script_for_address
from sv2proxy.config import Config, Mode, UpstreamChannels, help_text, load_config, option_name
from sv2proxy.daemon import Daemon
from sv2proxy.errors import ConfigError
from sv2proxy.events import EventBus
from sv2proxy.merge_mining.coordinator import merge_mining_service
from sv2proxy.noise.keys import AuthorityKey
from sv2proxy.server.listener import shared_miner_service, sv1_miner_service, sv2_miner_service
from sv2proxy.server.mining import MiningService, pool_settings, solo_payout
from sv2proxy.store.service import StoreService, open_store
from sv2proxy.template.found_blocks import FoundBlockJournal
from sv2proxy.template.job_factory import JobFactory
from sv2proxy.template.node_source import NodeJobSource
from sv2proxy.template.rpc import BitcoinCoreRPC, RPCAuth, default_cookie_file
from sv2proxy.template.tdp_source import TemplateProviderSource
from sv2proxy.upstream.service import UpstreamService
from sv2proxy.web.service import web_service

#: The settings the command line can override; each becomes ``--dotted-key-with-dashes``.
COMMAND_LINE_KEYS = ("mode", "data_dir", "pool_url", "listen.sv2", "listen.sv1", "web.listen")


class ConfigExit(SystemExit):
    """Ends ``twistd`` with status 1 and the configuration error as its only output."""

    def __init__(self, line: str) -> None:
        super().__init__(f"sv2proxy: {line}")
        self.line = line


def _override_option(key: str) -> list[str | None]:
    return [option_name(key).removeprefix("--"), None, None, f"{help_text(key)} [{key}]"]


class Options(usage.Options):
    """Options of ``twistd sv2proxy``: a configuration file and overrides of its common keys."""

    synopsis = "[--config FILE] [options]"
    longdesc = (
        "Run sv2proxy, a Stratum V2 mining daemon (pool, solo and proxy modes). Settings come from"
        " FILE (YAML, or TOML including the seed's [stratum_v2] form; see conf/sv2proxy.yaml for"
        " every key and its default), or from the built-in defaults without --config; the"
        " options below override single settings. Use 'null' to disable a listener."
    )
    optParameters = [
        ["config", "c", None, "configuration file (.yaml, .yml or .toml)"],
        *(_override_option(key) for key in COMMAND_LINE_KEYS),
    ]

    loaded: Config | None = None
    authority: AuthorityKey | None = None
    authority_created = False

    def postOptions(self) -> None:
        given = ((key, self[option_name(key).removeprefix("--")]) for key in COMMAND_LINE_KEYS)
        overrides = {key: value for key, value in given if value is not None}
        try:
            self.loaded = load_config(self["config"], overrides)
            if self.loaded.node.embedded and self.loaded.mode is Mode.POOL:
                _check_demo_extra()
            if self.loaded.listen.sv2 is not None:
                # The key is read (or made) here, before twistd daemonizes, so a key file
                # problem is one line on the terminal rather than a traceback in a log.
                self.authority, self.authority_created = _authority_key(self.loaded)
        except ConfigError as e:
            raise ConfigExit(str(e)) from None


def _check_demo_extra() -> None:
    try:
        import pbk  # noqa: F401 -- py-bitcoinkernel, libbitcoinkernel for the embedded node
    except (ImportError, OSError, RuntimeError) as e:
        # Missing package (ImportError) or a library that will not load (OSError/RuntimeError).
        raise ConfigError(
            f"node.embedded: the embedded demo node needs the demo extra (pip install -e '.[demo]'): {e};"
            " or set node.embedded: false and node.rpc_url to your own node"
        ) from None


def _authority_key(config: Config) -> tuple[AuthorityKey, bool]:
    path = config.authority_key_path
    if config.noise.authority_key_file is None:
        try:
            config.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        except OSError as e:
            raise ConfigError(f"data_dir: cannot create {config.data_dir}: {e.strerror or e}") from None
    return load_or_create(path)


def node_job_source(
    config: Config,
    mining: MiningService,
    reactor: IReactorCore,
    events: EventBus,
    ready: Callable[[], Deferred[tuple[str, Path]]] | None = None,
) -> NodeJobSource:
    """Pool mode's job source: templates from the node, found blocks back to it."""
    from treq.client import HTTPClient
    from twisted.web.client import Agent, HTTPConnectionPool

    node = config.node
    if node.rpc_user is not None and node.rpc_password is not None:
        auth = RPCAuth(node.rpc_user, node.rpc_password)
    else:
        auth = RPCAuth(cookie_file=default_cookie_file(node.chain, node.datadir))
    clock = cast(IReactorTime, reactor)
    # Persistent connections: one TCP connection to the node, not one (and two log lines) per call.
    pool = HTTPConnectionPool(reactor, persistent=True)
    rpc = BitcoinCoreRPC(node.rpc_url, auth, HTTPClient(Agent(reactor, pool=pool)), clock)
    factory = _job_factory(config)
    journal = FoundBlockJournal(config.data_dir / "blocks")
    return NodeJobSource(rpc, factory, mining, journal, clock, events, node.tip_poll_interval, ready, pool)


def template_provider_source(
    config: Config, mining: MiningService, reactor: IReactorCore, events: EventBus
) -> TemplateProviderSource:
    """Pool mode's job source when templates come from a Stratum V2 Template Provider."""
    assert config.node.template_provider is not None
    return TemplateProviderSource(
        config.node.template_provider,
        _job_factory(config),
        mining,
        reactor,
        authority_key=config.node.template_provider_key,
        handshake_timeout=config.noise.handshake_timeout,
        events=events,
        solo=config.coinbase.solo,
        journal=FoundBlockJournal(config.data_dir / "blocks"),
    )


#: Proxy mode: the bytes each local miner rolls, beyond the per-channel prefix we ask the pool for.
PROXY_MINER_ROLLABLE = 8


def upstream_service(
    config: Config, mining: MiningService, reactor: IReactorCore, events: EventBus
) -> UpstreamService | None:
    """Proxy mode's job source and share sink: the pools of ``pool_url`` and its backups (V2 or V1)."""
    urls = list(config.pool_urls)
    if not urls:
        return None  # the daemon says why at start
    return UpstreamService(
        urls,
        mining,
        events,
        reactor,
        config.upstream.user_identity,
        min_extranonce_size=config.mining.channel_prefix_size + PROXY_MINER_ROLLABLE,
        handshake_timeout=config.noise.handshake_timeout,
        password=config.upstream.password,
        # A V1 pool says how much room it leaves: it must hold our channel bytes and what a V1
        # miner of ours rolls (V2 miners roll what is left).
        min_v1_extranonce2_size=config.mining.channel_prefix_size + config.mining.sv1_extranonce2_size,
        request_extensions=config.upstream.request_extensions,
        failback_interval=config.upstream.failback_interval,
        per_miner=config.upstream.channels is UpstreamChannels.PER_MINER,
    )


def _job_factory(config: Config) -> JobFactory:
    network = Network.from_name(config.node.chain)
    payout = [(script_for_address(address, network), percent) for address, percent in config.coinbase.payout or ()]
    return JobFactory(payout, config.coinbase.pool_tag.encode(), config.mining.extranonce_size)


def makeService(options: Options, reactor: IReactorCore | None = None) -> Daemon:
    """The daemon's service tree for parsed ``options``; ``reactor`` defaults to the global one."""
    if options.loaded is None:
        raise ValueError("makeService needs parsed options (call parseOptions first)")
    if reactor is None:
        from twisted.internet import reactor as global_reactor

        reactor = cast(IReactorCore, global_reactor)
    daemon = Daemon(options.loaded, reactor, authority=options.authority)
    config = options.loaded
    proxy = config.mode is Mode.PROXY
    solo = solo_payout(Network.from_name(config.node.chain)) if config.coinbase.solo and not proxy else None
    # In proxy mode the extranonce space is the upstream channel's: until it is known, channels
    # get the room we will ask the pool for, so none has to be closed once it answers.
    space = config.mining.channel_prefix_size + PROXY_MINER_ROLLABLE if proxy else None
    mining = MiningService(
        cast(IReactorTime, reactor),
        daemon.events,
        pool_settings(config.mining, solo, extranonce_size=space),
        keepalive_interval=config.mining.keepalive_interval,
    )
    store = open_store(config.store, config.data_dir, reactor)
    if store is not None:
        # Added before the mining service so it stops after it: the last acknowledgements
        # are released by the store's last commit.
        daemon.add(StoreService(store, daemon.events), "store")
        mining.attach_ledger(store)
    daemon.add(mining, "mining")
    if proxy:
        upstream = upstream_service(config, mining, reactor, daemon.events)
        if upstream is not None:
            daemon.add(upstream, "upstream")
    if config.mode is Mode.POOL and config.coinbase.payout is not None:
        ready = None
        if config.node.embedded:
            from sv2proxy.testing.embedded import EmbeddedRegtestNode

            regtest = EmbeddedRegtestNode(config.data_dir / "regtest-node", reactor)
            daemon.add(regtest, "regtest-node")
            ready = regtest.when_ready
        if config.node.template_provider is not None:
            daemon.add(template_provider_source(config, mining, reactor, daemon.events), "template-provider")
        else:
            source = node_job_source(config, mining, reactor, daemon.events, ready)
            if config.merge_mining.chains:
                # Started before the node source, which takes its aux work as it starts.
                source.merge_mining = merge_mining_service(config.merge_mining, reactor, daemon.events)
                daemon.add(source.merge_mining, "merge-mining")
            daemon.add(source, "node")
    listen = config.listen
    if listen.shared:
        assert options.authority is not None
        daemon.add(shared_miner_service(config, options.authority, reactor, mining), "miners")
    else:
        if listen.sv2 is not None:
            assert options.authority is not None
            daemon.add(sv2_miner_service(config, options.authority, reactor, mining), "sv2-miners")
        if listen.sv1 is not None:
            daemon.add(sv1_miner_service(config, reactor, mining), "sv1-miners")
    coordinator = daemon.getServiceNamed("merge-mining") if "merge-mining" in daemon.namedServices else None
    web = web_service(config, mining, store, reactor, daemon.events, coordinator)
    if web is not None:
        daemon.add(web, "web")
    return daemon


__all__ = ["COMMAND_LINE_KEYS", "ConfigExit", "Options", "makeService"]
