"""sv2proxy: a Stratum V2 mining daemon for Bitcoin, on Twisted.

Run it as ``twistd sv2proxy``; the public API lives in the subpackages named in
SEED-API.md (``sv2proxy.server``, ``sv2proxy.pool``, ``sv2proxy.template``,
``sv2proxy.merge_mining``) and in :mod:`sv2proxy.errors` / :mod:`sv2proxy.events`.
"""

__version__ = "0.1.0"
