"""sv2proxy.config: files, overrides and every error message, word for word."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from sv2proxy.config import (
    Config,
    ListenAddress,
    Mode,
    PoolProtocol,
    describe,
    help_text,
    keys,
    load_config,
    option_name,
    settings,
)
from sv2proxy.errors import ConfigError, ServerError
from sv2proxy.noise.keys import decode_authority_public_key

CONF = Path(__file__).resolve().parent.parent / "conf"
PUBKEY = "9auqWEzQDVyd2oe1JVGFLMLHZtCo2FFqZwtKA5gd9xbuEu7PH72"
V2_URL = f"stratum2+tcp://pool.example.com:34254/{PUBKEY}"
V2_FORMS = "stratum2+tcp://HOST:PORT/AUTHORITY_PUBKEY or stratum+tcp://HOST:PORT"


@pytest.fixture(autouse=True)
def _home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A HOME of our own, so '~' expands to the same place in the test and in the loader."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    return home


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Config files are written here and named relative to it, as an operator would type them."""
    (tmp_path / "conf").mkdir()
    monkeypatch.chdir(tmp_path)
    return tmp_path


def write(name: str, text: str) -> str:
    Path(name).write_text(text)
    return name


def error_of(file: str | None, overrides: dict[str, object] | None = None) -> str:
    with pytest.raises(ConfigError) as caught:
        load_config(file, overrides or {})
    message = str(caught.value)
    assert "\n" not in message
    return message


# -- defaults -------------------------------------------------------------------------------------


def test_defaults(_home: Path) -> None:
    config = load_config(None)
    assert config == Config()
    assert config.mode is Mode.POOL
    assert config.data_dir == _home / ".local/share/sv2proxy"
    assert config.pool_url is None
    assert config.listen.sv2 == ListenAddress("tcp:34254:interface=0.0.0.0", "0.0.0.0:34254")
    assert config.listen.sv1 is None  # Stratum V1 is not served yet
    assert not config.listen.shared
    assert config.noise.authority_key_file is None
    assert config.authority_key_path == config.data_dir / "authority.key"
    assert config.noise.certificate_validity == 3600
    assert config.noise.handshake_timeout == 10
    assert config.noise.clock_leeway == 10


def test_defaults_file_is_the_embedded_defaults() -> None:
    assert load_config(str(CONF / "sv2proxy.yaml")) == load_config(None)


def test_defaults_file_gives_every_key() -> None:
    document = yaml.safe_load((CONF / "sv2proxy.yaml").read_text())

    def flatten(mapping: dict[str, object], prefix: str = "") -> list[str]:
        out: list[str] = []
        for key, value in mapping.items():
            if isinstance(value, dict):
                out += flatten(value, f"{prefix}{key}.")
            else:
                out.append(f"{prefix}{key}")
        return out

    assert flatten(document) == keys()


def test_describe(_home: Path) -> None:
    assert describe(load_config(None)) == [
        "mode = pool",
        f"data_dir = {_home}/.local/share/sv2proxy",
        "pool_url = null",
        "listen.sv2 = 0.0.0.0:34254",
        "listen.sv1 = null",
        "noise.authority_key_file = null",
        "noise.certificate_validity = 3600",
        "noise.handshake_timeout = 10",
        "noise.clock_leeway = 10",
        "mining.shares_per_minute = 6",
        "mining.min_difficulty = 0.0001",
        "mining.max_difficulty = null",
        "mining.share_batch_size = 10",
        "mining.share_batch_window = 1",
        "mining.extranonce_size = 16",
        "mining.channel_prefix_size = 4",
        "mining.max_channels_per_connection = 256",
        "mining.keepalive_interval = 30",
        "mining.max_messages_per_second = 200",
        "mining.sv1_extranonce2_size = 4",
        "node.embedded = True",
        "node.rpc_url = http://127.0.0.1:8332",
        "node.chain = regtest",
        f"node.datadir = {_home}/.bitcoin",
        "node.rpc_user = null",
        "node.rpc_password = null",
        "node.tip_poll_interval = 1",
        "node.template_provider = null",
        "node.template_provider_key = null",
        "coinbase.payout = (('bcrt1qw508d6qejxtdg4y5r3zarvary0c5xw7kygt080', 100.0),)",
        "coinbase.pool_tag = /sv2proxy/",
        "coinbase.solo = False",
        "upstream.backup_urls = []",
        "upstream.user_identity = sv2proxy",
        "upstream.password = ********",
        "upstream.channels = aggregated",
        "upstream.failback_interval = 60",
        "upstream.request_extensions = True",
        "store.url = sqlite",
        "store.daemon_name = null",
        "merge_mining.chains = []",
        "merge_mining.refresh_interval = 30",
        "merge_mining.poll_interval = 1",
        "merge_mining.timeout = 5",
        "web.listen = 127.0.0.1:8080",
        "web.token = null",
    ]


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("postgresql://pool:hunter2@db.example:5432/shares", "postgresql://pool:********@db.example:5432/shares"),
        ("postgresql://pool@db.example/shares", "postgresql://pool@db.example/shares"),
        ("postgresql://pool:hunter2@[::1]/shares", "postgresql://pool:********@[::1]/shares"),
    ],
)
def test_a_store_url_is_logged_without_its_password(tmp_path: Path, url: str, shown: str) -> None:
    file = tmp_path / "x.yaml"
    file.write_text(f"store:\n  url: {url}\n")
    lines = describe(load_config(file))
    assert f"store.url = {shown}" in lines
    assert not any("hunter2" in line for line in lines)


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        (
            "postgresql://pool@db.example/shares?password=hunter2",
            "postgresql://pool@db.example/shares?password=********",
        ),
        (
            "postgresql://pool@db.example/shares?sslmode=verify-full&sslpassword=hunter2",
            "postgresql://pool@db.example/shares?sslmode=verify-full&sslpassword=********",
        ),
        (
            "postgresql://pool:hunter2@h1:5432,h2:5433/shares?password=hunter2",
            "postgresql://pool:********@h1:5432,h2:5433/shares?password=********",
        ),
    ],
)
def test_a_store_url_is_logged_without_a_password_in_its_query(tmp_path: Path, url: str, shown: str) -> None:
    file = tmp_path / "x.yaml"
    file.write_text(f"store:\n  url: '{url}'\n")
    lines = describe(load_config(file))
    assert f"store.url = {shown}" in lines
    assert not any("hunter2" in line for line in lines)


def test_a_sqlite_path_is_not_secret(tmp_path: Path) -> None:
    file = tmp_path / "x.yaml"
    file.write_text("store:\n  url: sqlite:shares/pool.sqlite3\n")
    assert f"store.url = sqlite:{tmp_path}/shares/pool.sqlite3" in describe(load_config(file))


def test_node_and_aux_chain_rpc_urls_are_logged_without_their_password(tmp_path: Path) -> None:
    file = tmp_path / "x.yaml"
    file.write_text(
        "node:\n  rpc_url: http://rpc:hunter2@node.example:8332\n"
        "merge_mining:\n  chains:\n  - name: namecoin\n    rpc_url: http://nmc:hunter2@127.0.0.1:8336\n"
        "    payout_address: N1\n    chain_id: 1\n"
    )
    config = load_config(file)
    lines = describe(config)
    assert "node.rpc_url = http://rpc:********@node.example:8332" in lines
    assert "http://nmc:********@127.0.0.1:8336" in repr(config.merge_mining.chains[0])
    assert not any("hunter2" in line for line in lines)
    assert config.node.rpc_url == "http://rpc:hunter2@node.example:8332"  # only the log is masked


@pytest.mark.parametrize(
    ("url", "message"),
    [
        (
            "postgresql://u:hunter2@db:54x2/sv2",
            "expected a port in 1-65535 in the PostgreSQL URL, got '54x2' in 'postgresql://u:********@db:54x2/sv2'",
        ),
        (
            "postgresql://u:hunter2@db:99999/sv2",
            "expected a port in 1-65535 in the PostgreSQL URL, got '99999' in 'postgresql://u:********@db:99999/sv2'",
        ),
        (
            "postgresql://u@h1:5432,h2:0/sv2",
            "expected a port in 1-65535 in the PostgreSQL URL, got '0' in 'postgresql://u@h1:5432,h2:0/sv2'",
        ),
        (
            "postgresql://u@db/sv2?port=5x&password=hunter2",
            "expected a port in 1-65535 in the PostgreSQL URL, got '5x' in 'postgresql://u@db/sv2?port=5x&password=********'",
        ),
        (
            "postgresql://u:hunter2@db$x:5432/sv2",
            "expected a host name or IP address in the PostgreSQL URL, got 'db$x' in"
            " 'postgresql://u:********@db$x:5432/sv2'",
        ),
        (
            "postgresql://u:hunter2@[::1/sv2",
            "expected sqlite, sqlite:PATH or postgresql://USER:PASSWORD@HOST:PORT/DATABASE,"
            " got 'postgresql://u:********@[::1/sv2'",
        ),
        ("postgresql://u:hunter2@/sv2", "expected a host in the PostgreSQL URL, got 'postgresql://u:********@/sv2'"),
    ],
)
def test_store_url_errors(tmp_path: Path, url: str, message: str) -> None:
    file = tmp_path / "x.yaml"
    file.write_text(f"store:\n  url: '{url}'\n")
    with pytest.raises(ConfigError) as caught:
        load_config(str(file))
    assert str(caught.value) == f"{file}: store.url: {message}"
    assert "hunter2" not in str(caught.value)


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://pool:pw@db.example:5432/shares",
        "postgresql://pool@[::1]:5432/shares",
        "postgresql://pool@h1:5432,h2/shares",
        "postgresql://pool@sv2_db_1/shares",
        "postgresql://pool@%2Fvar%2Frun%2Fpostgresql/shares",
        "postgresql:///shares?host=/var/run/postgresql&port=5433",
    ],
)
def test_store_urls_libpq_takes_are_accepted(url: str) -> None:
    assert load_config(None, {"store.url": url}).store.url == url


@pytest.mark.parametrize(
    ("token", "message"),
    [
        ("abc;def0123456789", "expected a token of letters, digits and . _ ~ + / = - only"),
        ("abc,def0123456789", "expected a token of letters, digits and . _ ~ + / = - only"),
        ('abc"def0123456789', "expected a token of letters, digits and . _ ~ + / = - only"),
        ("abc def0123456789", "expected a token of letters, digits and . _ ~ + / = - only"),
        ("jeton-spécial-0123456789", "expected a token of letters, digits and . _ ~ + / = - only"),
        ("short", "expected a token of at least 16 characters, got 5"),
    ],
)
def test_web_token_errors(tmp_path: Path, token: str, message: str) -> None:
    file = tmp_path / "x.yaml"
    file.write_text(f"web:\n  token: '{token}'\n")
    with pytest.raises(ConfigError) as caught:
        load_config(str(file))
    assert str(caught.value) == (f"{file}: web.token: {message} (e.g. the output of `openssl rand -hex 32`)")


def test_a_web_token_of_b64token_characters(tmp_path: Path) -> None:
    token = "Az09._~+/-0123456789=="
    assert load_config(None, {"web.token": f" {token} "}).web.token == token


def test_keys_help_and_option_names() -> None:
    assert keys() == [
        "mode",
        "data_dir",
        "pool_url",
        "listen.sv2",
        "listen.sv1",
        "noise.authority_key_file",
        "noise.certificate_validity",
        "noise.handshake_timeout",
        "noise.clock_leeway",
        "mining.shares_per_minute",
        "mining.min_difficulty",
        "mining.max_difficulty",
        "mining.share_batch_size",
        "mining.share_batch_window",
        "mining.extranonce_size",
        "mining.channel_prefix_size",
        "mining.max_channels_per_connection",
        "mining.keepalive_interval",
        "mining.max_messages_per_second",
        "mining.sv1_extranonce2_size",
        "node.embedded",
        "node.rpc_url",
        "node.chain",
        "node.datadir",
        "node.rpc_user",
        "node.rpc_password",
        "node.tip_poll_interval",
        "node.template_provider",
        "node.template_provider_key",
        "coinbase.payout",
        "coinbase.pool_tag",
        "coinbase.solo",
        "upstream.backup_urls",
        "upstream.user_identity",
        "upstream.password",
        "upstream.channels",
        "upstream.failback_interval",
        "upstream.request_extensions",
        "store.url",
        "store.daemon_name",
        "merge_mining.chains",
        "merge_mining.refresh_interval",
        "merge_mining.poll_interval",
        "merge_mining.timeout",
        "web.listen",
        "web.token",
    ]
    assert all(help_text(key) for key in keys())
    assert option_name("listen.sv2") == "--listen-sv2"
    assert option_name("data_dir") == "--data-dir"
    assert option_name("noise.handshake_timeout") == "--noise-handshake-timeout"


# -- the example files ---------------------------------------------------------------------------


def test_solo_example() -> None:
    config = load_config(str(CONF / "solo.yaml"))
    assert config.mode is Mode.POOL
    assert config.listen.sv2 is not None and config.listen.sv2.text == "0.0.0.0:3333"
    assert config.listen.sv1 is None  # Stratum V1 is not served yet
    assert (config.node.embedded, config.node.chain) == (False, "main")


def test_demo_example() -> None:
    config = load_config(str(CONF / "demo.yaml"))
    assert (config.node.embedded, config.node.chain, config.mining.min_difficulty) == (True, "regtest", 0.00001)


def test_proxy_example() -> None:
    config = load_config(str(CONF / "proxy.yaml"))
    assert config.mode is Mode.PROXY
    assert config.pool_url is not None
    assert config.pool_url.protocol is PoolProtocol.V2
    assert config.pool_url.host == "pool.example.com"
    assert config.pool_url.port == 34254
    assert config.pool_url.authority_key == decode_authority_public_key(PUBKEY)


def test_backup_pools_follow_pool_url_in_order(workdir: Path) -> None:
    config = load_config(
        write(
            "conf/x.yaml",
            f"pool_url: stratum2+tcp://a.example:1/{PUBKEY}\n"
            "upstream:\n  backup_urls: [stratum+tcp://b.example:2, stratum+tcp://c.example:3]\n",
        )
    )
    assert [url.host for url in config.pool_urls] == ["a.example", "b.example", "c.example"]
    assert dict(settings(config))["upstream.backup_urls"] == "[stratum+tcp://b.example:2, stratum+tcp://c.example:3]"
    one = load_config(
        write(
            "conf/y.yaml", "pool_url: stratum+tcp://a.example:1\nupstream:\n  backup_urls: stratum+tcp://b.example:2\n"
        )
    )
    assert [url.port for url in one.pool_urls] == [1, 2]


def test_seed_toml_example() -> None:
    config = load_config(str(CONF / "seed.toml"))
    assert config.mode is Mode.PROXY  # a pool URL and no mode
    assert config.pool_url is not None
    assert config.pool_url.protocol is PoolProtocol.V1
    assert config.pool_url.text == "stratum+tcp://pool.example.com:3333"
    assert config.pool_url.authority_key is None
    assert config.listen.sv2 == ListenAddress("tcp:3333:interface=0.0.0.0", "0.0.0.0:3333")
    assert config.listen.sv1 is None  # Stratum V1 is not served yet


# -- values that load ----------------------------------------------------------------------------


def test_yaml_file(workdir: Path) -> None:
    file = write(
        "conf/x.yml",
        "mode: proxy\n"
        f"pool_url: {V2_URL}\n"
        "data_dir: data\n"
        "listen:\n"
        "  sv2: '[::1]:34254'\n"
        "  sv1: null\n"
        "noise:\n"
        "  authority_key_file: ~/keys/authority.key\n"
        "  certificate_validity: 60\n"
        "  handshake_timeout: 2.5\n"
        "  clock_leeway: 0\n",
    )
    config = load_config(file)
    assert config.mode is Mode.PROXY
    assert config.data_dir == workdir / "conf" / "data"  # relative to the file
    assert config.listen.sv2 == ListenAddress("tcp6:34254:interface=\\:\\:1", "[::1]:34254")
    assert config.listen.sv1 is None
    assert config.noise.authority_key_file == Path.home() / "keys/authority.key"
    assert config.authority_key_path == Path.home() / "keys/authority.key"
    assert config.noise.certificate_validity == 60
    assert config.noise.handshake_timeout == 2.5
    assert config.noise.clock_leeway == 0


def test_pool_url_alone_means_proxy(workdir: Path) -> None:
    assert load_config(write("x.yaml", f"pool_url: {V2_URL}\n")).mode is Mode.PROXY


def test_empty_file_and_empty_section_are_defaults(workdir: Path) -> None:
    assert load_config(write("empty.yaml", "# nothing here\n")) == load_config(None)
    assert load_config(write("noise.yaml", "noise:\n")) == load_config(None)


@pytest.mark.parametrize(
    ("text", "endpoint"),
    [
        ("0.0.0.0:3333", "tcp:3333:interface=0.0.0.0"),
        ("127.0.0.1:0", "tcp:0:interface=127.0.0.1"),
        (":3333", "tcp:3333"),
        ("localhost:3333", "tcp:3333:interface=localhost"),
        ("[::]:3333", "tcp6:3333:interface=\\:\\:"),
        ("tcp:3333:interface=127.0.0.1", "tcp:3333:interface=127.0.0.1"),
        ("tcp6:port=3333:interface=\\:\\:1", "tcp6:port=3333:interface=\\:\\:1"),
        ("unix:/run/sv2proxy/sv2.sock", "unix:/run/sv2proxy/sv2.sock"),
        ("unix:address=/tmp/s:mode=660", "unix:address=/tmp/s:mode=660"),
        ("systemd:domain=INET:index=0", "systemd:domain=INET:index=0"),
    ],
)
def test_listen_addresses(text: str, endpoint: str) -> None:
    address = load_config(None, {"listen.sv2": text}).listen.sv2
    assert address == ListenAddress(endpoint, text)


def test_same_address_means_one_port() -> None:
    config = load_config(None, {"listen.sv2": ":3333", "listen.sv1": "tcp:3333"})
    assert config.listen.shared


def test_v1_pool_url() -> None:
    url = load_config(None, {"pool_url": "stratum+tcp://[2001:db8::1]:3333"}).pool_url
    assert url is not None
    assert (url.protocol, url.host, url.port) == (PoolProtocol.V1, "2001:db8::1", 3333)


# -- seed TOML form ------------------------------------------------------------------------------


def test_seed_disabled(workdir: Path) -> None:
    file = write("seed.toml", '[stratum_v2]\nenabled = false\nlisten_addr = "0.0.0.0:3333"\n')
    config = load_config(file)
    assert config.listen.sv2 is None
    assert config.mode is Mode.POOL


def test_toml_native_sections(workdir: Path) -> None:
    file = write(
        "native.toml",
        'mode = "pool"\n'
        "[listen]\n"
        'sv2 = "127.0.0.1:34254"\n'
        "sv1 = false\n"  # TOML has no null
        "[noise]\n"
        "handshake_timeout = 5\n",
    )
    config = load_config(file)
    assert config.listen.sv2 == ListenAddress("tcp:34254:interface=127.0.0.1", "127.0.0.1:34254")
    assert config.listen.sv1 is None
    assert config.noise.handshake_timeout == 5


def test_toml_seed_and_native_sections_together(workdir: Path) -> None:
    file = write(
        "both.toml",
        '[stratum_v2]\npool_url = "stratum+tcp://pool.example.com:3333"\n[noise]\nclock_leeway = 1\n',
    )
    config = load_config(file)
    assert config.mode is Mode.PROXY
    assert config.noise.clock_leeway == 1


# -- overrides -----------------------------------------------------------------------------------


def test_overrides_win_over_the_file(workdir: Path) -> None:
    file = write("x.yaml", "listen:\n  sv2: 0.0.0.0:1\n")
    config = load_config(file, {"listen.sv2": "127.0.0.1:2", "data_dir": "d"})
    assert config.listen.sv2 == ListenAddress("tcp:2:interface=127.0.0.1", "127.0.0.1:2")
    assert config.data_dir == workdir / "d"  # relative to the working directory


@pytest.mark.parametrize("word", ["null", "none", "", "off"])
def test_override_disables_listener(word: str) -> None:
    assert load_config(None, {"listen.sv1": word}).listen.sv1 is None


def test_override_numbers_from_text() -> None:
    config = load_config(None, {"noise.handshake_timeout": "2.5", "noise.certificate_validity": "60"})
    assert config.noise.handshake_timeout == 2.5
    assert config.noise.certificate_validity == 60


def test_override_mode_and_pool_url() -> None:
    config = load_config(None, {"mode": "proxy", "pool_url": V2_URL})
    assert config.mode is Mode.PROXY


# -- errors, message by message ------------------------------------------------------------------

FILE_ERRORS = [
    # (file name, contents, the whole message)
    (
        "conf/x.yaml",
        "mining:\n  extranonce_size: 10\n  sv1_extranonce2_size: 8\n",
        "conf/x.yaml: mining.sv1_extranonce2_size: expected at most mining.extranonce_size minus"
        " mining.channel_prefix_size (6), got 8",
    ),
    (
        "conf/x.yaml",
        "upstream:\n  backup_urls: [stratum+tcp://b.example:3333]\n",
        "conf/x.yaml: upstream.backup_urls: backup pools need pool_url, the pool they stand in for",
    ),
    (
        "conf/x.yaml",
        "pool_url: stratum+tcp://a.example:3333\nupstream:\n  backup_urls: [http://b.example:3333]\n",
        "conf/x.yaml: upstream.backup_urls: expected stratum2+tcp://HOST:PORT/AUTHORITY_PUBKEY or"
        " stratum+tcp://HOST:PORT, got 'http://b.example:3333'",
    ),
    (
        "conf/x.yaml",
        "pool_url: stratum+tcp://a.example:3333\nupstream:\n  channels: per-miner\n",
        "conf/x.yaml: upstream.channels: per-miner needs Stratum V2 pools (a V1 pool has no channels to open"
        " per miner), but stratum+tcp://a.example:3333 is Stratum V1; use aggregated, or point those miners"
        " at the V1 pool directly",
    ),
    (
        "conf/x.yaml",
        "upstream:\n  channels: one-each\n",
        "conf/x.yaml: upstream.channels: expected 'aggregated' or 'per-miner', got 'one-each'",
    ),
    (
        "conf/x.yaml",
        "upstream:\n  failback_interval: -1\n",
        "conf/x.yaml: upstream.failback_interval: expected a number >= 0, got -1",
    ),
    (
        "conf/x.yaml",
        "upstream:\n  request_extensions: maybe\n",
        "conf/x.yaml: upstream.request_extensions: expected true or false, got 'maybe'",
    ),
    (
        "conf/x.yaml",
        "listen:\n  sv2: '3333'\n",
        "conf/x.yaml: listen.sv2: expected HOST:PORT, got '3333'",
    ),
    (
        "conf/x.yaml",
        "listen:\n  sv2: 3333\n",
        "conf/x.yaml: listen.sv2: expected HOST:PORT, got 3333",
    ),
    (
        "conf/x.yaml",
        "listen:\n  sv3: 0.0.0.0:1\n",
        "conf/x.yaml: listen.sv3: unknown key (did you mean 'sv2'?)",
    ),
    (
        "conf/x.yaml",
        "nosie:\n  clock_leeway: 1\n",
        "conf/x.yaml: nosie: unknown key (did you mean 'noise'?)",
    ),
    (
        "conf/x.yaml",
        "colour: blue\n",
        "conf/x.yaml: colour: unknown key"
        " (expected one of: mode, data_dir, pool_url, listen, noise, mining, node, coinbase, upstream, store,"
        " merge_mining, web)",
    ),
    (
        "conf/x.yaml",
        "noise:\n  handshake_timeout: abc\n",
        "conf/x.yaml: noise.handshake_timeout: expected a positive number, got 'abc'",
    ),
    (
        "conf/x.yaml",
        "noise:\n  handshake_timeout: 0\n",
        "conf/x.yaml: noise.handshake_timeout: expected a positive number, got 0",
    ),
    (
        "conf/x.yaml",
        "noise:\n  handshake_timeout: yes\n",
        "conf/x.yaml: noise.handshake_timeout: expected a positive number, got True",
    ),
    (
        "conf/x.yaml",
        "noise:\n  certificate_validity: 1.5\n",
        "conf/x.yaml: noise.certificate_validity: expected a positive integer, got 1.5",
    ),
    (
        "conf/x.yaml",
        "noise:\n  clock_leeway: -1\n",
        "conf/x.yaml: noise.clock_leeway: expected a number >= 0, got -1",
    ),
    (
        "conf/x.yaml",
        "noise:\n  authority_key_file: 7\n",
        "conf/x.yaml: noise.authority_key_file: expected a path, got 7",
    ),
    (
        "conf/x.yaml",
        "noise: 3\n",
        "conf/x.yaml: noise: expected a mapping, got 3",
    ),
    (
        "conf/x.yaml",
        "mode: solo\n",
        "conf/x.yaml: mode: expected 'pool' or 'proxy', got 'solo'",
    ),
    (
        "conf/x.yaml",
        "- mode\n- pool\n",
        "conf/x.yaml: expected a mapping of settings at the top level, got list",
    ),
    (
        "conf/x.yaml",
        "listen:\n  sv2: 0.0.0.0:1\n sv1: 0.0.0.0:2\n",
        "conf/x.yaml: line 3: invalid YAML: expected <block end>, but found '<block mapping start>'",
    ),
    (
        "conf/x.yaml",
        "mode: pool\nlisten: [1, 2\n",
        "conf/x.yaml: line 3: invalid YAML: expected ',' or ']', but got '<stream end>'",
    ),
    (
        "conf/x.yaml",
        "listen:\n  sv2: 0.0.0.0:1\n  sv2: 0.0.0.0:2\n",
        "conf/x.yaml: line 3: invalid YAML: duplicate key 'sv2'",
    ),
    (
        "conf/x.yaml",
        "mode: proxy\n",
        f"conf/x.yaml: mode: 'proxy' needs pool_url ({V2_FORMS})",
    ),
    (
        "conf/x.yaml",
        "mode: pool\npool_url: stratum+tcp://pool.example.com:3333\n",
        "conf/x.yaml: pool_url: only used in proxy mode, but mode is 'pool'",
    ),
    (
        "conf/x.yaml",
        "listen:\n  sv2: 1.2.3.4:70000\n",
        "conf/x.yaml: listen.sv2: expected HOST:PORT with a port in 0-65535, got '1.2.3.4:70000'",
    ),
    (
        "conf/x.yaml",
        "listen:\n  sv2: ::1:3333\n",
        "conf/x.yaml: listen.sv2: expected HOST:PORT, got '::1:3333'",
    ),
    (
        "conf/x.yaml",
        "listen:\n  sv2: bad host:3333\n",
        "conf/x.yaml: listen.sv2: expected HOST:PORT, got 'bad host:3333'",
    ),
    (
        "conf/x.yaml",
        "listen:\n  sv2: tcp:abc\n",
        "conf/x.yaml: listen.sv2: expected tcp:PORT[:interface=ADDRESS] with a port in 0-65535, got 'tcp:abc'",
    ),
    (
        "conf/x.yaml",
        "listen:\n  sv1: tcp:3333:iface=lo\n",
        "conf/x.yaml: listen.sv1: expected tcp:PORT[:interface=ADDRESS] (no 'iface' option), got 'tcp:3333:iface=lo'",
    ),
    (
        "conf/x.yaml",
        "listen:\n  sv1: 'unix:'\n",
        "conf/x.yaml: listen.sv1: expected unix:PATH, got 'unix:'",
    ),
    # pool_url, each with its reason
    (
        "conf/x.yaml",
        "pool_url: http://pool.example.com:3333\n",
        f"conf/x.yaml: pool_url: expected {V2_FORMS}, got 'http://pool.example.com:3333'",
    ),
    (
        "conf/x.yaml",
        "pool_url: stratum+tcp://pool.example.com\n",
        f"conf/x.yaml: pool_url: expected {V2_FORMS}, got 'stratum+tcp://pool.example.com' (no port)",
    ),
    (
        "conf/x.yaml",
        "pool_url: stratum+tcp://pool.example.com:0\n",
        "conf/x.yaml: pool_url: expected a port in 1-65535, got '0' in 'stratum+tcp://pool.example.com:0'",
    ),
    (
        "conf/x.yaml",
        "pool_url: stratum+tcp://pool.example.com:65536\n",
        "conf/x.yaml: pool_url: expected a port in 1-65535, got '65536' in 'stratum+tcp://pool.example.com:65536'",
    ),
    (
        "conf/x.yaml",
        "pool_url: stratum+tcp://pool.example.com:3333/worker\n",
        "conf/x.yaml: pool_url: expected stratum+tcp://HOST:PORT (no path),"
        " got 'stratum+tcp://pool.example.com:3333/worker'",
    ),
    (
        "conf/x.yaml",
        "pool_url: stratum+tcp://user:pass@pool.example.com:3333\n",
        f"conf/x.yaml: pool_url: expected {V2_FORMS} (no user, query or fragment),"
        " got 'stratum+tcp://user:pass@pool.example.com:3333'",
    ),
    (
        "conf/x.yaml",
        "pool_url: stratum2+tcp://pool.example.com:34254\n",
        "conf/x.yaml: pool_url: expected stratum2+tcp://HOST:PORT/AUTHORITY_PUBKEY (the pool's"
        " authority public key pins its Noise handshake), got 'stratum2+tcp://pool.example.com:34254'",
    ),
    (
        "conf/x.yaml",
        "pool_url: stratum2+tcp://pool.example.com:34254/abc\n",
        "conf/x.yaml: pool_url: invalid authority public key 'abc':"
        " not a base58check authority public key (Invalid checksum)",
    ),
    (
        "conf/x.yaml",
        "pool_url: stratum2+tcp://pool.example.com:34254/BXvDbH\n",  # base58check of b"\x01"
        "conf/x.yaml: pool_url: invalid authority public key 'BXvDbH':"
        " an authority public key encodes 34 bytes (version + x-only key), got 1",
    ),
    (
        "conf/x.yaml",
        "pool_url: 42\n",
        f"conf/x.yaml: pool_url: expected {V2_FORMS}, got 42",
    ),
    # TOML
    (
        "conf/x.toml",
        "[stratum_v2]\nenable = true\n",
        "conf/x.toml: stratum_v2.enable: unknown key (did you mean 'enabled'?)",
    ),
    (
        "conf/x.toml",
        "[stratum_v3]\nenabled = true\n",
        "conf/x.toml: stratum_v3: unknown key (did you mean 'stratum_v2'?)",
    ),
    (
        "conf/x.toml",
        '[stratum_v2]\nenabled = "yes"\n',
        "conf/x.toml: stratum_v2.enabled: expected true or false, got 'yes'",
    ),
    (
        "conf/x.toml",
        '[stratum_v2]\nlisten_addr = "3333"\n',
        "conf/x.toml: stratum_v2.listen_addr: expected HOST:PORT, got '3333'",
    ),
    (
        "conf/x.toml",
        '[stratum_v2]\npool_url = "stratum+tcp://pool.example.com"\n',
        f"conf/x.toml: stratum_v2.pool_url: expected {V2_FORMS}, got 'stratum+tcp://pool.example.com' (no port)",
    ),
    (
        "conf/x.toml",
        'stratum_v2 = "on"\n',
        "conf/x.toml: stratum_v2: expected a table, got 'on'",
    ),
    (
        "conf/x.toml",
        '[stratum_v2]\nlisten_addr = "0.0.0.0:3333"\n[listen]\nsv2 = ":3333"\n',
        "conf/x.toml: stratum_v2.listen_addr: conflicts with listen.sv2 (give only one)",
    ),
    (
        "conf/x.toml",
        "[listen]\nsv2 = \n",
        "conf/x.toml: invalid TOML: Invalid value (at line 2, column 7)",
    ),
    # the file itself
    (
        "conf/x.ini",
        "[listen]\n",
        "conf/x.ini: unknown configuration format (expected .yaml, .yml or .toml)",
    ),
]


@pytest.mark.parametrize(("file", "text", "message"), FILE_ERRORS)
def test_file_errors(workdir: Path, file: str, text: str, message: str) -> None:
    assert error_of(write(file, text)) == message


def test_missing_file(workdir: Path) -> None:
    assert error_of("conf/missing.yaml") == "conf/missing.yaml: no such file"


def test_directory(workdir: Path) -> None:
    Path("conf/dir.yaml").mkdir()
    assert error_of("conf/dir.yaml") == "conf/dir.yaml: is a directory, expected a file"


def test_unreadable_file(workdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write("conf/x.yaml", "mode: pool\n")

    # Root reads files whatever their mode, so the refusal is made by hand.
    def refuse(self: Path) -> bytes:
        raise PermissionError(13, "Permission denied", str(self))

    monkeypatch.setattr(Path, "read_bytes", refuse)
    assert error_of("conf/x.yaml") == "conf/x.yaml: cannot read (Permission denied)"


def test_not_utf8(workdir: Path) -> None:
    Path("conf/x.yaml").write_bytes(b"mode: pool\n# caf\xe9\n")
    assert error_of("conf/x.yaml") == "conf/x.yaml: not UTF-8 text (bad byte at offset 16)"


OVERRIDE_ERRORS = [
    ({"listen.sv2": "3333"}, "--listen-sv2: expected HOST:PORT, got '3333'"),
    (
        {"listen.sv1": "tcp:99999"},
        ("--listen-sv1: expected tcp:PORT[:interface=ADDRESS] with a port in 0-65535, got 'tcp:99999'"),
    ),
    ({"mode": "solo"}, "--mode: expected 'pool' or 'proxy', got 'solo'"),
    ({"mode": "proxy"}, f"--mode: 'proxy' needs pool_url ({V2_FORMS})"),
    (
        {"pool_url": "stratum2+tcp://h:1"},
        (
            "--pool-url: expected stratum2+tcp://HOST:PORT/AUTHORITY_PUBKEY (the pool's authority"
            " public key pins its Noise handshake), got 'stratum2+tcp://h:1'"
        ),
    ),
    (
        {"mode": "pool", "pool_url": V2_URL},
        "--pool-url: only used in proxy mode, but mode is 'pool'",
    ),
    ({"data_dir": ""}, "--data-dir: expected a path, got ''"),
    (
        {"noise.handshake_timeout": "abc"},
        ("--noise-handshake-timeout: expected a positive number, got 'abc'"),
    ),
    (
        {"noise.certificate_validity": "1.5"},
        ("--noise-certificate-validity: expected a positive integer, got '1.5'"),
    ),
    ({"listen.sv3": ":1"}, "--listen-sv3: unknown key (did you mean 'listen.sv2'?)"),
]


@pytest.mark.parametrize(("overrides", "message"), OVERRIDE_ERRORS)
def test_override_errors(overrides: dict[str, object], message: str) -> None:
    assert error_of(None, overrides) == message


def test_override_error_names_the_option_even_with_a_file(workdir: Path) -> None:
    file = write("conf/x.yaml", "mode: proxy\n")
    assert error_of(file, {"mode": "pool", "pool_url": "stratum+tcp://h:1"}) == (
        "--pool-url: only used in proxy mode, but mode is 'pool'"
    )
    assert error_of(file) == f"conf/x.yaml: mode: 'proxy' needs pool_url ({V2_FORMS})"


def test_config_error_is_a_server_error() -> None:
    assert issubclass(ConfigError, ServerError)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "mining:\n  min_difficulty: 1\n  max_difficulty: 0.5\n",
            "mining.max_difficulty: expected at least mining.min_difficulty (1), got 0.5",
        ),
        (
            "mining:\n  extranonce_size: 4\n  channel_prefix_size: 4\n",
            "mining.channel_prefix_size: expected fewer bytes than mining.extranonce_size (4)"
            " so miners have some to roll, got 4",
        ),
        (
            "mining:\n  extranonce_size: 40\n",
            "mining.extranonce_size: expected a whole number of bytes from 2 to 32, got 40",
        ),
        ("mining:\n  min_difficulty: 0\n", "mining.min_difficulty: expected a positive number, got 0"),
        ("mining:\n  share_batch_sise: 5\n", "mining.share_batch_sise: unknown key (did you mean 'share_batch_size'?)"),
    ],
)
def test_mining_errors(tmp_path: Path, text: str, message: str) -> None:
    file = tmp_path / "x.yaml"
    file.write_text(text)
    with pytest.raises(ConfigError) as caught:
        load_config(str(file))
    assert str(caught.value) == f"{file}: {message}"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "node:\n  embedded: false\n  chain: main\n"
            "coinbase:\n  payout: bcrt1qw508d6qejxtdg4y5r3zarvary0c5xw7kygt080\n",
            "coinbase.payout: 'bcrt1qw508d6qejxtdg4y5r3zarvary0c5xw7kygt080' is not a main address:"
            " address is for regtest, not mainnet",
        ),
        (
            "coinbase:\n  payout:\n    1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNa: 60\n"
            "    bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4: 30\n",
            "coinbase.payout: expected percentages that add up to 100, got 90",
        ),
        (
            "node:\n  chain: mainnet\n",
            "node.chain: expected one of main, test, testnet4, signet, regtest, got 'mainnet'",
        ),
        ("node:\n  rpc_url: localhost:8332\n", "node.rpc_url: expected an http:// URL, got 'localhost:8332'"),
        ("node:\n  template_provider: 8442\n", "node.template_provider: expected HOST:PORT, got 8442"),
        (
            "node:\n  template_provider: 127.0.0.1:8442\n",
            "node.template_provider: a Template Provider replaces the embedded demo node; set node.embedded: false",
        ),
        (
            "node:\n  embedded: false\n  template_provider: 127.0.0.1:8442\n  template_provider_key: nope\n",
            "node.template_provider_key: not a base58check authority public key (Invalid checksum), got 'nope'",
        ),
        ("coinbase:\n  pool_tag: " + "x" * 41 + "\n", "coinbase.pool_tag: expected at most 40 bytes, got 41"),
    ],
)
def test_node_and_coinbase_errors(tmp_path: Path, text: str, message: str) -> None:
    file = tmp_path / "x.yaml"
    file.write_text(text)
    with pytest.raises(ConfigError) as caught:
        load_config(str(file))
    assert str(caught.value) == f"{file}: {message}"


def test_a_regtest_payout_split() -> None:
    config = load_config(
        None,
        {"node.chain": "regtest", "coinbase.payout": "bcrt1qw508d6qejxtdg4y5r3zarvary0c5xw7kygt080"},
    )
    assert config.coinbase.payout == (("bcrt1qw508d6qejxtdg4y5r3zarvary0c5xw7kygt080", 100.0),)
