"""The Wi-Fi side's DNS cache cannot be poisoned by a label that holds a dot, on each runtime.

A query whose one label is "telegram.org" used to pass the policy as the name telegram.org; its
NXDOMAIN was cached under telegram.org, and every phone then got NXDOMAIN, with the wrong question,
without the upstream being asked. Such a query is REFUSED now and never reaches the upstream.
"""

import socket

import dns.flags
import dns.message
import dns.name
import dns.query
import dns.rcode
import pytest

from tests.helpers.origin import DNSServer
from tests.helpers.relayproc import free_port


@pytest.fixture(scope="module")
def upstream():
    d = DNSServer({"telegram.org": ["149.154.167.99"], "web.telegram.org": ["149.154.167.98"]})
    yield d
    d.close()


def ask(port, name, qtype="A"):
    q = dns.message.make_query(name, qtype)
    return q, dns.query.udp(q, "127.0.0.1", port=port, timeout=5)


def test_a_label_with_a_dot_is_refused_and_poisons_nothing(runtime, start_relay, upstream):
    port = free_port(kind=socket.SOCK_DGRAM)
    relay = start_relay(runtime, {
        "dns": {"listen_enabled": True, "listen_host": "127.0.0.1", "listen_port": port,
                "servers": [f"127.0.0.1:{upstream.port}"], "timeout": 2},
        "portal": {"address": "127.0.0.1"}, "policy": {"preset": "telegram"}})
    before = len(upstream.queries)
    odd = ([b"telegram.org", b""], [b"web.telegram.org", b""], [b"web", b"TELEGRAM.org", b""],
           [b"tele gram", b"org", b""], [b"t\xc3\xa9legram", b"org", b""])
    rcodes = [ask(port, dns.name.Name(labels))[1].rcode() for labels in odd]
    for name, want in (("telegram.org", "149.154.167.99"), ("TeLeGrAm.OrG", "149.154.167.99"),
                       ("web.telegram.org", "149.154.167.98")):
        q, m = ask(port, name)
        assert m.rcode() == dns.rcode.NOERROR and [str(rd) for rr in m.answer for rd in rr] == [want], name
        assert m.question[0].name.to_text() == q.question[0].name.to_text()  # the asker's own question, case too
    assert ("telegram.org", "A") in upstream.queries[before:]
    assert rcodes == [dns.rcode.REFUSED] * len(odd)
    assert len(upstream.queries) == before + 2  # only the two real names left the relay
    assert relay.alive()
