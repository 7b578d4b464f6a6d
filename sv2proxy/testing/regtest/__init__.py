"""A regtest Bitcoin node for tests, benchmarks and the demo: libbitcoinkernel for consensus,
Bitcoin Core's JSON-RPC (names, shapes, errors, auth) around it.  See :mod:`.node`."""

from sv2proxy.testing.regtest.node import BlockTemplate, RegtestNode, TemplateTransaction

__all__ = ["BlockTemplate", "RegtestNode", "TemplateTransaction"]
