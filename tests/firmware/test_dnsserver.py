"""The Wi-Fi side's DNS responder (relay.dnsserver), fed real queries built by dnspython."""

import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdatatype
import dns.rrset
import pytest
from hypothesis import given, settings, strategies as st

from relay.proto import dns as D
from relay.proto.dnsserver import CAPTIVE_NAMES, FORWARD, REPLY, DNSResponder
from relay.proto.policy import Policy

TELEGRAM = Policy("telegram", lambda path: open(path).read())


def telegram_allows(name):
    return TELEGRAM.check_name(name) is None

OWN = bytes([192, 168, 4, 1])


def responder(**kw):
    kw.setdefault("allowed", telegram_allows)
    return DNSResponder(OWN, ["relay.lan", "relay", "portal.relay"], **kw)


def ask(r, name, qtype="A", now=0, **kw):
    q = dns.message.make_query(name, qtype, **kw)
    act = r.handle(q.to_wire(), now)
    return q, act


def reply(r, name, qtype="A", now=0, **kw):
    q, act = ask(r, name, qtype, now, **kw)
    assert act is not None and act[0] == REPLY, act
    m = dns.message.from_wire(act[1])
    assert m.id == q.id and m.question == q.question
    return m


@pytest.mark.parametrize("name", sorted(set(CAPTIVE_NAMES)) + ["relay.lan", "RELAY", "portal.relay."])
def test_connectivity_checks_and_own_names_get_the_relay(name):
    m = reply(responder(), name)
    assert m.rcode() == dns.rcode.NOERROR
    assert [str(rd) for rr in m.answer for rd in rr] == ["192.168.4.1"]
    assert m.flags & dns.flags.AA and m.flags & dns.flags.QR


@pytest.mark.parametrize("qtype", ["AAAA", "HTTPS", "TXT"])
def test_other_types_of_own_names_are_nodata(qtype):
    m = reply(responder(), "connectivitycheck.gstatic.com", qtype)
    assert m.rcode() == dns.rcode.NOERROR and not m.answer  # the phone falls back to A at once


def test_question_case_is_echoed():
    m = reply(responder(), "CaPtIvE.ApPlE.cOm")
    assert m.question[0].name.to_text() == "CaPtIvE.ApPlE.cOm."  # 0x20 randomisation survives
    assert m.answer


@pytest.mark.parametrize("name,ok", [
    ("telegram.org", True), ("web.telegram.org", True), ("T.ME", True), ("cdn.telesco.pe", True),
    ("nottelegram.org", False), ("telegram.org.evil.example", False), ("me", False), ("google.com", False),
    ("xt.me", False),
])
def test_allowed_is_the_telegram_policy(name, ok):
    assert responder().allowed(name.lower()) is ok


def test_unknown_names_get_nxdomain_or_the_portal():
    m = reply(responder(), "example.com")
    assert m.rcode() == dns.rcode.NXDOMAIN and not m.answer
    m = reply(responder(unknown="portal"), "example.com")
    assert [str(rd) for rr in m.answer for rd in rr] == ["192.168.4.1"]


def upstream_answer(wire, addrs, ttl=300, rcode=None):
    q = dns.message.from_wire(wire)
    a = dns.message.make_response(q)
    if rcode is not None:
        a.set_rcode(rcode)
    elif addrs:
        a.answer.append(dns.rrset.from_text_list(q.question[0].name, ttl, "IN", q.question[0].rdtype, addrs))
    return a


def test_forward_then_cache_within_ttl():
    r = responder()
    q, act = ask(r, "web.telegram.org", now=1000)
    assert act[0] == FORWARD
    fq = act[1]
    up = upstream_answer(fq.raw, ["149.154.167.99"], ttl=300)
    up.id = 4242  # the resolver answers our id, not the client's
    out = r.finish(fq, up.to_wire(), 1000)
    m = dns.message.from_wire(out)
    assert m.id == q.id and [str(rd) for rr in m.answer for rd in rr] == ["149.154.167.99"]
    # Ten seconds later: from the cache, TTL lowered.
    m = reply(r, "WEB.telegram.org", now=11000)
    assert m.answer[0].ttl == 290
    assert r.cached == 1
    # After the TTL: asked again.
    _, act = ask(r, "web.telegram.org", now=1000 + 301000)
    assert act[0] == FORWARD


def test_nxdomain_from_upstream_is_passed_and_cached():
    r = responder()
    _, act = ask(r, "nope.telegram.org", now=0)
    out = r.finish(act[1], upstream_answer(act[1].raw, [], rcode=dns.rcode.NXDOMAIN).to_wire(), 0)
    assert dns.message.from_wire(out).rcode() == dns.rcode.NXDOMAIN
    assert dns.message.from_wire(reply(r, "nope.telegram.org", now=1000).to_wire()).rcode() == dns.rcode.NXDOMAIN


def test_an_answer_to_another_question_is_not_passed_on():
    r = responder()
    _, act = ask(r, "web.telegram.org")
    other = dns.message.make_response(dns.message.make_query("evil.example", "A"))
    assert r.finish(act[1], other.to_wire(), 0) is None
    assert r.finish(act[1], b"\x00" * 11, 0) is None
    m = dns.message.from_wire(r.fail(act[1]))
    assert m.rcode() == dns.rcode.SERVFAIL and m.question[0].name == dns.name.from_text("web.telegram.org")


def test_big_answers_are_truncated_for_askers_without_edns():
    r = responder()
    _, act = ask(r, "t.me")
    many = ["149.154.%d.%d" % (i // 200, i % 200 + 1) for i in range(60)]
    out = r.finish(act[1], upstream_answer(act[1].raw, many).to_wire(), 0)
    m = dns.message.from_wire(out)
    assert len(out) <= 512 and m.flags & dns.flags.TC and not m.answer
    _, act = ask(r, "telegram.me", use_edns=0, payload=1232)
    out = r.finish(act[1], upstream_answer(act[1].raw, many).to_wire(), 0)
    assert len(dns.message.from_wire(out).answer[0]) == 60


def test_what_is_dropped():
    r = responder()
    q = dns.message.make_query("captive.apple.com", "A")
    resp = dns.message.make_response(q).to_wire()
    assert r.handle(resp, 0) is None  # a response: answering it would make us a reflector
    notify = dns.message.make_query("captive.apple.com", "SOA")
    notify.set_opcode(4)
    assert r.handle(notify.to_wire(), 0) is None
    two = bytearray(q.to_wire())
    two[5] = 2
    assert r.handle(bytes(two), 0) is None
    loop = bytes(12) + b"\xc0\x0c"
    loop = b"\x12\x34\x01\x00\x00\x01" + bytes(6) + b"\xc0\x0c\x00\x01\x00\x01"
    assert r.handle(loop, 0) is None  # a compression pointer to itself
    long_name = b"".join(b"\x3f" + b"a" * 63 for _ in range(5)) + b"\x00"
    assert r.handle(b"\x12\x34\x01\x00\x00\x01" + bytes(6) + long_name + b"\x00\x01\x00\x01", 0) is None
    assert r.handle(b"", 0) is None and r.handle(b"\xff" * 4096 * 2, 0) is None
    assert r.dropped == 7


def test_other_classes_are_refused():
    q = dns.message.make_query("captive.apple.com", "A", rdclass="CH")
    act = responder().handle(q.to_wire(), 0)
    assert dns.message.from_wire(act[1]).rcode() == dns.rcode.REFUSED


QUERIES = [dns.message.make_query(n, t).to_wire() for n, t in
           [("captive.apple.com", "A"), ("web.telegram.org", "AAAA"), ("example.com", "A"), ("relay.lan", "HTTPS")]]


def check_action(q, act):
    if act is None:
        return
    if act[0] == REPLY:
        m = dns.message.from_wire(act[1])  # whatever we send, a real parser accepts
        assert m.id == (q[0] << 8 | q[1])
    else:
        assert act[0] == FORWARD and act[1].raw == q


@settings(max_examples=1500, deadline=None)
@given(st.binary(max_size=600))
def test_fuzz_random_bytes(data):
    r = responder()
    check_action(data, r.handle(data, 0))


@settings(max_examples=1500, deadline=None)
@given(st.sampled_from(QUERIES), st.lists(st.tuples(st.integers(0, 80), st.integers(0, 255)), min_size=1, max_size=6),
       st.integers(0, 20))
def test_fuzz_mutated_queries(q, edits, cut):
    b = bytearray(q)
    for pos, val in edits:
        if pos < len(b):
            b[pos] = val
    data = bytes(b[: len(b) - cut])
    check_action(data, responder().handle(data, 0))


@settings(max_examples=800, deadline=None)
@given(st.binary(max_size=400))
def test_fuzz_upstream_answers(data):
    r = responder()
    _, act = ask(r, "web.telegram.org")
    out = r.finish(act[1], data, 0)
    if out is not None:
        m = dns.message.from_wire(out)
        assert m.question[0].name == dns.name.from_text("web.telegram.org")


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=300))
def test_fuzz_record_walkers(data):
    for f in (D.record_ttls, D.question_end):
        try:
            f(data)
        except D.DNSError:
            pass
