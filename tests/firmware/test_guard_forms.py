"""Destinations as the guard sees them: every numeric form a resolver reads as an address is one,
names are checked, IPv6 forms that carry an IPv4 address are judged by it, names that only mean
something here are refused before they leave, learned own addresses are refused. The same table
runs under MicroPython and must give the same answers (the guard decides the same everywhere).
"""

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings, strategies as st

from relay.proto import addr
from relay.proto.addr import parse_host, parse_ip
from tests.firmware.guard_table import decide

ROOT = Path(__file__).resolve().parents[2]

HOSTS = {
    # inet_aton's forms: what glibc's getaddrinfo, curl and microsocks read as the loopback
    "127.1": "127.0.0.1", "127.0.1": "127.0.0.1", "2130706433": "127.0.0.1", "0x7f000001": "127.0.0.1",
    "0X7F000001": "127.0.0.1", "0177.0.0.1": "127.0.0.1", "0x7f.1": "127.0.0.1", "017700000001": "127.0.0.1",
    "0": "0.0.0.0", "0x": "0.0.0.0", "127.0.0.1.": "127.0.0.1", "4294967295": "255.255.255.255",
    "192.168.0x1.1": "192.168.1.1", "::ffff:127.0.0.1": "::ffff:7f00:1", "[::1]": "::1",
    # names, folded
    "Telegram.ORG.": "telegram.org", "a-b_c.example": "a-b_c.example", "xn--bcher-kva.de": "xn--bcher-kva.de",
    # neither: refused before any resolver sees them
    "-1::1": None, "1::2::3": None, "0x1::": None, " 1::": None, "4294967296": None, "1.2.3.4.5": None,
    "256.1.1.1": None, "1.2.3.256": None, "08.1.1.1": None, "example.123": None, "0x7g.1": None, "": None,
    ".": None, "a..b": None, ".a": None, "a" * 64 + ".example": None, ".".join(["a" * 63] * 4): None,
    "bücher.de": None, "a b.example": None, "a\x00b": None, "telegram.org\\": None, "١٢٧.0.0.1": None, "1²7.0.0.1": None,
}

GUARDED = {
    "::ffff:127.0.0.1": "loopback", "::127.0.0.1": "loopback", "::ffff:0:127.0.0.1": "loopback",
    "64:ff9b::127.0.0.1": "loopback", "64:ff9b::10.1.2.3": "local network", "2002:7f00:1::1": "loopback",
    "2002:c0a8:0101::1": "local network", "2001:0:4136:e378:8000:63bf:80ff:fffe": "loopback",  # Teredo client
    "64:ff9b::149.154.167.51": None, "2002:959a:a733::1": None, "::ffff:149.154.167.51": None,
    "2001:67c:4e8:f004::a": None, "::1": "loopback", "::": "unspecified",
}

NAMES = {
    "localhost": "loopback", "a.localhost": "loopback", "printer.local": "local network", "router.lan": "local network",
    "nas.home.arpa": "local network", "db.internal": "local network", "intranet": "local network",
    "relay.lan": "the relay itself", "portal.relay": "the relay itself", "telegram.org": None, "t.me": None,
    "localhost.example": None, "lan.example": None,
}


def decisions():
    return decide({"hosts": list(HOSTS), "guarded": list(GUARDED), "names": list(NAMES)})


def test_the_table_on_cpython():
    d = decisions()
    assert d["hosts"] == HOSTS
    assert d["guarded"] == GUARDED
    assert d["names"] == NAMES
    assert d["allowed"] == {"localhost": None, "64:ff9b::127.0.0.1": None, "2002:7f00:1::1": None,
                            "localhost, 127/8 only": "loopback"}
    assert d["learned"] == {"198.51.100.7": "the relay itself", "::ffff:198.51.100.7": "the relay itself",
                            "64:ff9b::198.51.100.7": "the relay itself", "2001:db8::7": "the relay itself",
                            "203.0.113.9": "the relay itself", "198.51.100.8": None}


def test_micropython_decides_the_same():
    env = dict(os.environ, MICROPYPATH=f"{ROOT / 'firmware'}:{ROOT / 'tests/firmware'}:.frozen")
    script = str(ROOT / "tests/firmware/guard_forms_mp.py")
    r = subprocess.run([str(Path(sys.executable).parent / "micropython"), script], env=env, capture_output=True,
                       text=True, timeout=60, input=json.dumps({"hosts": list(HOSTS), "guarded": list(GUARDED),
                                                               "names": list(NAMES)}))
    assert r.returncode == 0, r.stdout + r.stderr
    got = json.loads(r.stdout.strip().splitlines()[-1])
    want = decisions()
    assert got == want


_part = st.one_of(
    st.integers(0, 2**32 + 5).map(str),
    st.integers(0, 2**32 + 5).map(lambda n: "0x%x" % n),
    st.integers(0, 2**32 + 5).map(lambda n: "0%o" % n),
)


@settings(max_examples=1500, deadline=None)
@given(st.lists(_part, min_size=1, max_size=5), st.booleans())
def test_whatever_inet_aton_reads_as_an_address_is_that_address_here(parts, dot):
    text = ".".join(parts) + ("." if dot else "")
    try:
        want = socket.inet_aton(text.rstrip(".") if not dot else text)
    except OSError:
        want = None
    if want is None:
        return  # glibc would ask DNS for it; the relay may refuse it (ValueError) or read it as WHATWG does
    assert parse_host(text) == want, text


@settings(max_examples=500, deadline=None)
@given(st.text(max_size=80))
def test_parse_host_answers_bytes_a_checked_name_or_valueerror(text):
    try:
        h = parse_host(text)
    except ValueError:
        return
    if type(h) is bytes:
        assert len(h) in (4, 16)
    else:
        assert h == h.lower() and 0 < len(h) <= 253 and set(h) <= set("abcdefghijklmnopqrstuvwxyz0123456789-_.")
        assert all(0 < len(label) < 64 for label in h.split("."))


@pytest.mark.parametrize("ip", ["::ffff:1.2.3.4", "::1.2.3.4", "64:ff9b::1.2.3.4", "2002:102:304::", "::ffff:0:1.2.3.4"])
def test_embedded_v4(ip):
    assert addr.embedded_v4(parse_ip(ip)) == (bytes([1, 2, 3, 4]),)
