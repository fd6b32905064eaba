"""DNS names are sequences of labels: a dot inside a label never passes for a name's dot, the cache is
keyed by labels (ASCII case folded), an answer counts only for the question it answers, and every
reply carries the asker's own question. Also the resolver's hosts file, and the netlink parser that
learns the device's addresses."""

import socket
import struct

import dns.message
import dns.name
import dns.rcode
import dns.rrset
import pytest
from hypothesis import given, settings, strategies as st

from relay.proto import dns as D
from relay.proto.dnsserver import FORWARD, REPLY, DNSResponder
from relay.proto import netlink
from relay.proto.policy import Policy
from relay.services.dns_resolver import hosts_file_entries

TELEGRAM = Policy("telegram", lambda path: open(path).read())
OWN = bytes([192, 168, 4, 1])


def responder():
    return DNSResponder(OWN, ["relay.lan"], lambda name: TELEGRAM.check_name(name) is None)


def query(labels, qtype="A"):
    return dns.message.make_query(dns.name.Name(labels), qtype)


def answer_to(q, addrs, rcode=dns.rcode.NOERROR, qid=4242):
    a = dns.message.make_response(q)
    a.id = qid
    a.set_rcode(rcode)
    if addrs:
        a.answer.append(dns.rrset.from_text_list(q.question[0].name, 300, "IN", "A", addrs))
    return a.to_wire()


@pytest.mark.parametrize("labels", [
    [b"telegram.org", b""], [b"web", b"telegram.org", b""], [b"t.me", b""], [b"tele gram", b"org", b""],
    [b"t\xc3\xa9legram", b"org", b""], [b"telegram\x00", b"org", b""], [b"telegram\\", b"org", b""],
    [b"*", b"telegram", b"org", b""],
])
def test_a_label_the_policy_cannot_judge_is_refused(labels):
    r = responder()
    act = r.handle(query(labels).to_wire(), 0)
    assert act[0] == REPLY and dns.message.from_wire(act[1]).rcode() == dns.rcode.REFUSED
    assert r.forwarded == 0


def test_the_poisoning_of_issue_13_cannot_happen():
    r = responder()
    evil = query([b"telegram.org", b""])
    assert dns.message.from_wire(r.handle(evil.to_wire(), 0)[1]).rcode() == dns.rcode.REFUSED
    real = dns.message.make_query("telegram.org", "A")
    act = r.handle(real.to_wire(), 0)
    assert act[0] == FORWARD
    # An upstream "answer" to the evil question is not an answer to the real one, and is not cached.
    assert r.finish(act[1], answer_to(evil, [], dns.rcode.NXDOMAIN), 0) is None
    assert r.handle(real.to_wire(), 1000)[0] == FORWARD
    out = r.finish(act[1], answer_to(real, ["149.154.167.99"]), 0)
    assert [str(rd) for rr in dns.message.from_wire(out).answer for rd in rr] == ["149.154.167.99"]


def test_cached_answers_carry_each_askers_question():
    r = responder()
    first = dns.message.make_query("web.telegram.org", "A")
    act = r.handle(first.to_wire(), 0)
    r.finish(act[1], answer_to(first, ["149.154.167.99"]), 0)
    for spelling in ("WEB.telegram.org", "wEb.TeLeGrAm.OrG"):
        q = dns.message.make_query(spelling, "A")
        act = r.handle(q.to_wire(), 1000)
        assert act[0] == REPLY
        m = dns.message.from_wire(act[1])
        assert m.id == q.id and m.question[0].name.to_text() == spelling + "."
        assert [str(rd) for rr in m.answer for rd in rr] == ["149.154.167.99"]
    assert r.cached == 2


def test_an_answer_with_the_same_name_in_other_labels_or_type_is_refused():
    r = responder()
    q = dns.message.make_query("web.telegram.org", "A")
    act = r.handle(q.to_wire(), 0)
    for other in (query([b"web.telegram", b"org", b""]), query([b"web", b"telegram.org", b""]),
                  dns.message.make_query("web.telegram.org", "AAAA")):
        assert r.finish(act[1], answer_to(other, []), 0) is None
    assert r.cache == {}


def test_names_come_out_in_presentation_form():
    raw = bytes(12) + b"\x0ctelegram.org\x03a\\b\x02\xc3\xa9\x00\x00\x01\x00\x01"
    raw = raw[:5] + b"\x01" + raw[6:]
    assert D.parse(raw).questions[0][0] == "telegram\\.org.a\\\\b.\\195\\169"


def labels_of(text):
    """Presentation form back to labels (RFC 1035 5.1): unescaped dots split, \\x and \\ddd are bytes."""
    out, cur, i = [], bytearray(), 0
    while i < len(text):
        c = text[i]
        if c == "\\":
            if text[i + 1 : i + 4].isdigit():
                cur.append(int(text[i + 1 : i + 4]))
                i += 4
            else:
                cur += text[i + 1].encode()
                i += 2
            continue
        if c == ".":
            out.append(bytes(cur))
            cur = bytearray()
        else:
            cur += c.encode()
        i += 1
    out.append(bytes(cur))
    return out


@settings(max_examples=500, deadline=None)
@given(st.lists(st.binary(min_size=1, max_size=20), min_size=1, max_size=5))
def test_one_text_is_one_label_sequence(labels):
    """The text a name decodes to gives back exactly its labels: two names never share a text (nor,
    ASCII case folded, a cache key)."""
    wire = b"".join(bytes([len(x)]) + x for x in labels) + b"\x00"
    msg = bytes([0, 1, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0]) + wire + b"\x00\x01\x00\x01"
    text = D.parse(msg).questions[0][0]
    assert labels_of(text) == labels
    assert labels_of(text.lower()) == [x.lower() for x in labels]  # lower() folds ASCII letters only


def test_hosts_file():
    text = "127.0.0.1 localhost\n::1 localhost ip6-localhost # loopback\n# 10.0.0.1 commented\n" \
           "192.0.2.5\tPrinter.LAN.  printer\nnot-an-address name\n"
    got = hosts_file_entries(text)
    assert got["localhost"] == [bytes([127, 0, 0, 1]), b"\x00" * 15 + b"\x01"]
    assert got["printer.lan"] == [bytes([192, 0, 2, 5])] and got["printer"] == [bytes([192, 0, 2, 5])]
    assert "name" not in got and "10.0.0.1" not in str(got)


def _addr_msg(mtype, family, index, attrs):
    body = struct.pack("BBBBI", family, 24, 0, 0, index)
    for atype, value in attrs:
        a = struct.pack("HH", 4 + len(value), atype) + value
        body += a + b"\x00" * (-len(a) % 4)
    return struct.pack("IHHII", 16 + len(body), mtype, 0, 1, 0) + body


def test_netlink_parse():
    v4, peer = socket.inet_aton("198.51.100.7"), socket.inet_aton("198.51.100.1")
    v6 = socket.inet_pton(socket.AF_INET6, "2001:db8::7")
    data = (_addr_msg(20, 2, 3, [(1, peer), (2, v4), (3, b"ppp0\x00")])  # PPP: IFA_ADDRESS is the far end
            + _addr_msg(20, 10, 4, [(1, v6)]) + _addr_msg(21, 2, 5, [(1, v4)])
            + struct.pack("IHHII", 20, 3, 2, 1, 0) + b"\x00" * 4)
    assert netlink.parse(data) == [("add", 3, v4), ("add", 4, v6), ("del", 5, v4), ("done", 0, None)]
    assert netlink.parse(data[:30]) == []  # cut short: nothing half-read
    req = netlink.dump_request(7)
    assert struct.unpack("IHHII", req[:16]) == (24, 22, 0x301, 7, 0)
