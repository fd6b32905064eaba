"""A relay that cannot listen says the likely cause for the error it got: a port in use (98), an address
not on this machine (99), a low port without root (13), on every runtime."""

import os
import socket

import pytest


def start_failure(start_relay, runtime, socks):
    with pytest.raises(RuntimeError) as e:
        start_relay(runtime, {"socks": socks})
    return str(e.value)


def test_a_port_in_use_names_another_relay(runtime, start_relay):
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen(1)
    port = taken.getsockname()[1]
    try:
        err = start_failure(start_relay, runtime, {"host": "127.0.0.1", "port": port})
    finally:
        taken.close()
    assert "another relay or proxy already on that port" in err, err
    assert f"cannot listen on 127.0.0.1 port {port}:" in err, err  # which of its listeners it was


def test_an_address_not_here_says_so(runtime, start_relay):
    err = start_failure(start_relay, runtime, {"host": "192.0.2.55", "port": 1080})  # TEST-NET-1: never ours
    assert "not on this machine" in err and "another relay" not in err, err
    assert "192.0.2.55 port 1080" in err, err


@pytest.mark.skipif(os.geteuid() == 0, reason="root may bind low ports")
def test_a_low_port_without_root_says_so(runtime, start_relay):
    err = start_failure(start_relay, runtime, {"host": "127.0.0.1", "port": 81})
    assert "below 1024" in err and "another relay" not in err, err
