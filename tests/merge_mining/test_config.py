"""The merge_mining section: chains parsed strictly, refused where they cannot work."""

from __future__ import annotations

from pathlib import Path

import pytest

from sv2proxy.config import AuxChainConfig, describe, load_config
from sv2proxy.errors import ConfigError

CHAIN = (
    "  - name: namecoin\n    rpc_url: http://127.0.0.1:8336\n    rpc_user: u\n    rpc_password: hunter2\n"
    "    payout_address: N1\n    chain_id: 1\n"
)


def _load(tmp_path: Path, text: str):
    path = tmp_path / "c.yaml"
    path.write_text(text)
    return load_config(str(path))


def test_chains(tmp_path: Path) -> None:
    second = CHAIN.replace("namecoin", "other").replace("chain_id: 1", "chain_id: 7")
    config = _load(tmp_path, f"merge_mining:\n  timeout: 2\n  chains:\n{CHAIN}{second}")
    assert config.merge_mining.chains == (
        AuxChainConfig("namecoin", "http://127.0.0.1:8336", "u", "hunter2", "N1", 1),
        AuxChainConfig("other", "http://127.0.0.1:8336", "u", "hunter2", "N1", 7),
    )
    assert config.merge_mining.timeout == 2
    logged = "\n".join(describe(config))
    assert "namecoin(chain_id=1" in logged and "hunter2" not in logged


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("merge_mining:\n  chains: nmc\n", "expected a list of chains"),
        ("merge_mining:\n  chains:\n  - name: x\n", "chain 0 (x): rpc_url is required"),
        (f"merge_mining:\n  chains:\n{CHAIN}    colour: blue\n", "unknown key 'colour'"),
        (f"merge_mining:\n  chains:\n{CHAIN.replace('chain_id: 1', 'chain_id: -1')}", "chain_id"),
        ("merge_mining:\n  chains:\n" + CHAIN.replace("    rpc_user: u\n", ""), "both rpc_user and rpc_password"),
        (f"merge_mining:\n  chains:\n{CHAIN}{CHAIN.replace('namecoin', 'b')}", "own chain_id, 1 is given twice"),
        (f"merge_mining:\n  chains:\n{CHAIN}{CHAIN.replace('chain_id: 1', 'chain_id: 2')}", "own name"),
        (
            f"pool_url: stratum+tcp://pool.example:3333\nmerge_mining:\n  chains:\n{CHAIN}",
            "merge mining needs pool mode",
        ),
        (
            f"node:\n  embedded: false\n  template_provider: 127.0.0.1:8442\nmerge_mining:\n  chains:\n{CHAIN}",
            "not supported with node.template_provider",
        ),
        (
            "coinbase:\n  pool_tag: '" + "x" * 40 + "'\nmining:\n  extranonce_size: 32\n"
            f"merge_mining:\n  chains:\n{CHAIN}",
            "over the 100-byte limit",
        ),
    ],
)
def test_mistakes(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError, match="merge_mining.chains") as caught:
        _load(tmp_path, text)
    assert message in str(caught.value)


def test_chain_ids_no_tree_can_part_are_a_config_error(tmp_path) -> None:
    from sv2proxy.config import load_config
    from sv2proxy.errors import ConfigError

    chain = "    rpc_url: http://127.0.0.1:{port}/\n    payout_address: x\n    chain_id: {cid}\n"
    file = tmp_path / "mm.yaml"
    file.write_text(
        "coinbase:\n  payout: bcrt1qw508d6qejxtdg4y5r3zarvary0c5xw7kygt080\nnode:\n  chain: regtest\n"
        "merge_mining:\n  chains:\n"
        "  - name: one\n" + chain.format(port=1, cid=1) + "  - name: two\n" + chain.format(port=2, cid=1 + 2**31)
    )
    with pytest.raises(ConfigError) as caught:
        load_config(file)
    assert "merge_mining.chains" in str(caught.value) and "cannot share one aux merkle tree" in str(caught.value)
