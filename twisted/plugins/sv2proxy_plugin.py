"""The twistd plugin for ``twistd sv2proxy``: one IServiceMaker pointing at :mod:`sv2proxy.tap`.

It only names the tap module, so ``twistd --help`` lists sv2proxy without importing the daemon.
"""

from twisted.application.service import ServiceMaker

sv2proxy = ServiceMaker(
    "sv2proxy",
    "sv2proxy.tap",
    "A Stratum V2 mining daemon: pool, solo and proxy modes",
    "sv2proxy",
)
