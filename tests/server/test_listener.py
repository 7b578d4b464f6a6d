"""The miner listeners: a port that cannot be bound is one line naming the setting."""

from __future__ import annotations

import socket

import pytest
from twisted.internet import reactor
from twisted.internet.endpoints import serverFromString
from twisted.internet.protocol import Factory

from sv2proxy.server.listener import ListenerService


def test_a_port_in_use_is_one_line_naming_the_setting():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        endpoint = serverFromString(reactor, f"tcp:{port}:interface=127.0.0.1")
        service = ListenerService(endpoint, Factory(), "Stratum V1 miners", key="listen.sv1")
        with pytest.raises(SystemExit) as exit_info:
            service.privilegedStartService()
    message = str(exit_info.value)
    assert message.startswith(f"sv2proxy: listen.sv1: cannot listen on 127.0.0.1:{port}: ")
    assert "\n" not in message
