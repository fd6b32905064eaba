# Runs under the MicroPython unix port: the protocol modules behave there as under CPython.
from relay.proto import socks, httpproxy as H, dns as D
from relay.proto.addr import parse_ip, format_ip
from relay.proto.guard import Guard
from relay.config import load, ConfigError
from relay.proto.ratelimit import AddressLimiter

hs = socks.Socks5Handshake(False)
msg = b"\x05\x01\x00\x05\x01\x00\x03\x0ctelegram.org\x01\xbbtail"
ev = []
for i in range(len(msg)):
    ev += hs.feed(msg[i : i + 1])
assert ev[0].data == b"\x05\x00", ev
assert ev[1].host == "telegram.org" and ev[1].port == 443
assert hs.rest == b"tail", hs.rest

hs = socks.Socks5Handshake(True)
try:
    hs.feed(b"\x05\x01\x00")
    raise AssertionError("no error")
except socks.SocksError as e:
    assert e.reply == b"\x05\xff"

hs4 = socks.Socks4Handshake()
ev = hs4.feed(b"\x04\x01\x01\xbb\x00\x00\x00\x01u\x00t.me\x00")
assert ev[0].host == "t.me"

r = H.HeadReader(8192)
head = r.feed(b"GET http://a.example:81/x HTTP/1.1\r\nProxy-Connection: close\r\n\r\nrest")
m = H.parse_request(head)
assert (m.host, m.port, m.path) == ("a.example", 81, b"/x")
assert b"proxy-connection" not in H.forward_head(m).lower()
f = H.BodyFramer(H.CHUNKED)
body = b"3\r\nabc\r\n0\r\n\r\n"
n = 0
for i in range(len(body)):
    n += f.consume(memoryview(body)[i : i + 1])
assert f.done and n == len(body)

q = D.build_query(7, "telegram.org", D.TYPE_A)
resp = bytearray(q)
resp[2] = 0x81
resp[7] = 1
resp += b"\xc0\x0c\x00\x01\x00\x01\x00\x00\x00\x3c\x00\x04\x95\x9a\xa7\x33"
ips, ttl = D.addresses(D.parse(bytes(resp)), D.TYPE_A)
assert ips == [bytes([149, 154, 167, 51])] and ttl == 60
try:
    D.parse(bytes(5) + b"\x01" + bytes(6) + b"\xc0\x0c")
    raise AssertionError("loop accepted")
except D.DNSError:
    pass

assert format_ip(parse_ip("2001:db8::1")) == "2001:db8::1"
assert Guard().check(parse_ip("::ffff:127.0.0.1")) == "loopback"
assert Guard().check(parse_ip("149.154.167.51")) is None
# integer masks (addr.Nets) on MicroPython's big ints: v6 prefixes, odd prefix lengths, mapped v4, allow first
assert Guard().check(parse_ip("fe80::1")) == "link-local"
assert Guard().check(parse_ip("2001:67c:4e8:f004::a")) is None
assert Guard().check(parse_ip("172.31.255.255")) == "local network"
assert Guard().check(parse_ip("172.32.0.1")) is None
assert Guard(allow=["10.1.0.0/16"]).check(parse_ip("::ffff:10.1.2.3")) is None
assert Guard(allow=["10.1.0.0/16"]).check(parse_ip("::ffff:10.2.2.3")) == "local network"
assert Guard(deny=["149.154.160.0/20"]).check(parse_ip("149.154.167.51")) == "denied by config"
try:
    load('{"socks": {"port": 70000}, "limits": {"tunels": 1}}')
    raise AssertionError("bad config accepted")
except ConfigError as e:
    assert "config.json: socks.port: expected 1..65535, got 70000" in e.problems, e.problems
    assert 'config.json: limits.tunels: unknown key (did you mean "tunnels"?)' in e.problems, e.problems
# ratelimit: IPv6 per /64, a full table never resets a flooder's bucket
lim = AddressLimiter(2, 1)
assert lim.allow(parse_ip("2001:db8:1:2::1"), 0) and lim.allow(parse_ip("2001:db8:1:2::2"), 0)
assert not lim.allow(parse_ip("2001:db8:1:2:ffff::3"), 0)  # the same /64
assert lim.allow(parse_ip("2001:db8:1:3::1"), 0)  # the next /64
assert lim.allow(parse_ip("::ffff:10.0.0.1"), 0) and lim.allow(parse_ip("10.0.0.1"), 0)
assert not lim.allow(parse_ip("10.0.0.1"), 0)  # mapped or not, one address
try:
    load('{"mtproto": {"enabled": true, "port": 8443, "secrets": ["%s"], "mask": "[::1]:8443"}}' % ("dd" + "ab" * 16))
    raise AssertionError("a mask on the relay's own listener accepted")
except ConfigError as e:
    assert [p for p in e.problems if "own MTProto listener" in p], e.problems
print("units OK")
