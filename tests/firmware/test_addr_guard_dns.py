"""Addresses, the destination guard and DNS messages."""

import ipaddress

import dns.message
import dns.rrset
import pytest
from hypothesis import given, settings, strategies as st

from relay.proto import dns as D
from relay.proto.addr import format_ip, parse_cidr, parse_ip, split_host_port
from relay.proto.guard import Guard


@settings(max_examples=400, deadline=None)
@given(st.ip_addresses())
def test_parse_and_format_agree_with_ipaddress(ip):
    assert parse_ip(str(ip)) == ip.packed
    assert format_ip(ip.packed) == str(ip)


@pytest.mark.parametrize("bad", ["", "1.2.3", "1.2.3.4.5", "256.1.1.1", "01.2.3.4", "1:2:3", "::1::", "g::1", "1.2.3.4/8"])
def test_bad_addresses(bad):
    assert parse_ip(bad) is None


def test_split_host_port():
    assert split_host_port("127.0.0.1:1080") == ("127.0.0.1", 1080)
    assert split_host_port("[::1]:53") == ("::1", 53)
    assert split_host_port("::1", 53) == ("::1", 53)
    with pytest.raises(ValueError):
        split_host_port("host:70000")


@pytest.mark.parametrize(
    "ip,refused",
    [
        ("127.0.0.1", "loopback"), ("::1", "loopback"), ("::ffff:127.0.0.1", "loopback"), ("0.0.0.0", "unspecified"),
        ("169.254.1.1", "link-local"), ("fe80::1", "link-local"), ("224.0.0.1", "multicast"), ("ff02::1", "multicast"),
        ("192.168.4.1", "local network"), ("10.0.0.1", "local network"), ("172.20.0.1", "local network"),
        ("fd00::1", "local network"), ("255.255.255.255", "reserved"),
        ("149.154.167.51", None), ("2001:67c:4e8:f004::a", None),
    ],
)
def test_guard_defaults(ip, refused):
    assert Guard().check(parse_ip(ip)) == refused


def test_guard_management_own_and_allow():
    g = Guard(allow=["127.0.0.0/8"], deny=["203.0.113.0/24"], management=["192.168.100.1"], own=["198.51.100.7"])
    assert g.check(parse_ip("127.0.0.1")) is None
    assert g.check(parse_ip("::ffff:127.0.0.1")) is None
    assert g.check(parse_ip("::1")) == "loopback"
    assert g.check(parse_ip("203.0.113.9")) == "denied by config"
    assert g.check(parse_ip("198.51.100.7")) == "the relay itself"
    assert parse_cidr("10.1.2.3/8") == (bytes([10, 0, 0, 0]), 8)


def test_dns_query_is_read_by_dnspython():
    q = dns.message.from_wire(D.build_query(0x1234, "telegram.org", D.TYPE_AAAA))
    assert q.id == 0x1234 and q.question[0].name.to_text() == "telegram.org."
    assert q.question[0].rdtype == 28


def test_dns_parses_a_dnspython_response_with_compression():
    q = dns.message.make_query("web.telegram.org", "A")
    r = dns.message.make_response(q)
    r.answer.append(dns.rrset.from_text("web.telegram.org.", 300, "IN", "CNAME", "x.telegram.org."))
    r.answer.append(dns.rrset.from_text("x.telegram.org.", 60, "IN", "A", "149.154.167.99", "149.154.167.51"))
    m = D.parse(r.to_wire())
    ips, ttl = D.addresses(m, D.TYPE_A)
    assert sorted(str(ipaddress.ip_address(i)) for i in ips) == ["149.154.167.51", "149.154.167.99"] and ttl == 60
    assert m.is_response and m.rcode == 0


def test_dns_pointer_loop_and_overlong_names_are_errors():
    loop = bytes(12) + b"\xc0\x0c"
    loop = loop[:5] + b"\x01" + loop[6:]  # one question whose name points at itself
    with pytest.raises(D.DNSError):
        D.parse(loop)
    with pytest.raises(D.DNSError):
        D.encode_name(".".join(["a" * 60] * 5))


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=300))
def test_dns_garbage_never_crashes(blob):
    try:
        D.parse(blob)
    except D.DNSError:
        pass


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.booleans(), st.binary(min_size=16, max_size=16), st.integers(0, 128)), min_size=1,
                max_size=6),
       st.booleans(), st.binary(min_size=16, max_size=16))
def test_nets_match_like_ipaddress(nets, v6, raw):
    """addr.Nets (integer masks) finds the same first network as the standard library does."""
    from relay.proto.addr import Nets, in_net, parse_cidr

    texts = []
    for is6, base, plen in nets:
        if is6:
            texts.append(str(ipaddress.ip_network((base, plen), strict=False)))
        else:
            texts.append(str(ipaddress.ip_network((base[:4], plen % 33), strict=False)))
    ip = raw if v6 else raw[:4]
    ns = Nets()
    for i, t in enumerate(texts):
        ns.add(parse_cidr(t), i)
    want = next((i for i, t in enumerate(texts) if ipaddress.ip_address(ip) in ipaddress.ip_network(t)), None)
    assert ns.first(ip) == (None if want is None else (want, want))
    for t in texts:
        assert in_net(ip, parse_cidr(t)) == (ipaddress.ip_address(ip) in ipaddress.ip_network(t))
