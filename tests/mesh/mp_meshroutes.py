"""meshroutes.py and the mesh's identity functions on transcripts: run by CPython (test_meshroutes.py) and as
a script by the MicroPython unix port, so both read routes and dumps the same way."""

from relay.proto.meshid import WINDOW, Window, check, login, proof, token
from relay.proto.meshroutes import default_gateway, hosts_in, neighbour_addresses, parse_babel_dump, parse_route4, parse_route6

# /proc/net/route of a relay (r4) with babeld's routes (v4 via IPv6 next hops show no gateway) and a default route
ROUTE4 = """Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT
up0\t00000000\t0212A8C0\t0003\t0\t0\t0\t00000000\t0\t0\t0
m43\t01004D0A\t00000000\t0007\t0\t0\t288\tFFFFFFFF\t0\t0\t0
m43\t01014D0A\t00000000\t0007\t0\t0\t288\tFFFFFFFF\t0\t0\t0
m43\t05014D0A\t00000000\t0007\t0\t0\t448\tFFFFFFFF\t0\t0\t0
m43\t09014D0A\t00000000\t0007\t0\t0\t96\tFFFFFFFF\t0\t0\t0
m43\t0D014D0A\t00000000\t0006\t0\t0\t10\tFFFFFFFF\t0\t0\t0
wl\t00044E0A\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0
lo\t04004D0A\t00000000\t0005\t0\t0\t0\tFFFFFFFF\t0\t0\t0
"""
# /proc/net/ipv6_route: a babeld /128 in a service range, and a default route
ROUTE6 = """fd000077000100000000000000000002 80 00000000000000000000000000000000 00 fe800000000000000000000000000001 000000c0 00000001 00000000 00000003     m43
00000000000000000000000000000000 00 00000000000000000000000000000000 00 fe800000000000000000000000000009 00000400 00000001 00000000 00000003     up0
"""
DUMP = """BABEL 1.0
version babeld-1.12.1
host r4
my-id ec:ec:3f:f1:f4:06:6d:80
ok
add interface m43 up true ipv6 fe80::47d:c6ff:fe9a:a524
add neighbour 559748738f70 address fe80::14cd:8eff:fe38:339e if m43 reach fc00 ureach 0000 rxcost 96 txcost 96 cost 96
add neighbour 559748738f71 address fe80::99 if m44 reach 0000 ureach 0000 rxcost 65535 txcost 65535 cost 65535
add xroute 10.77.0.4/32-0.0.0.0/0 prefix 10.77.0.4/32 from 0.0.0.0/0 metric 0
add route 55974873a520 prefix 10.77.0.1/32 from 0.0.0.0/0 installed yes id 4c:ef:d8:97:98:43:db:fc metric 288 refmetric 192 via fe80::14cd:8eff:fe38:339e if m43
add route 559748739450 prefix 10.77.0.3/32 from 0.0.0.0/0 installed yes id 10:15:4d:b0:20:b1:cf:10 metric 96 refmetric 0 via fe80::14cd:8eff:fe38:339e if m43
add route 55974873a5c0 prefix 10.77.1.1/32 from 0.0.0.0/0 installed no id 4c:ef:d8:97:98:43:db:fc metric 288 refmetric 192 via fe80::14cd:8eff:fe38:339e if m43
garbage line
add route broken metric x
ok
"""


def ip(*b):
    return bytes(b)


def run():
    r4 = parse_route4(ROUTE4)
    assert len(r4) == 7, r4  # the header and a route that is not up (flags without RTF_UP) are skipped
    assert r4[1] == (ip(10, 77, 0, 1), 32, 288, ip(0, 0, 0, 0), "m43")
    assert r4[5] == (ip(10, 78, 4, 0), 24, 0, ip(0, 0, 0, 0), "wl")
    assert default_gateway(r4) == ip(192, 168, 18, 2)
    uplinks = [(ip(10, 77, 1, 0), 24)]
    # nearest first; a network route or our own address never counts as an uplink relay
    assert hosts_in(r4, uplinks) == [(ip(10, 77, 1, 9), 96), (ip(10, 77, 1, 1), 288), (ip(10, 77, 1, 5), 448)]
    assert hosts_in(r4, uplinks, [ip(10, 77, 1, 9)]) == [(ip(10, 77, 1, 1), 288), (ip(10, 77, 1, 5), 448)]
    assert hosts_in(r4, [(ip(10, 77, 0, 0), 24)], [ip(10, 77, 0, 4)]) == [(ip(10, 77, 0, 1), 288)]
    assert hosts_in(r4, [(ip(10, 78, 0, 0), 16)]) == []  # the phones' subnet is no host route
    r6 = parse_route6(ROUTE6)
    svc6 = bytes([0xFD, 0, 0, 0x77, 0, 1] + [0] * 9 + [2])
    assert r6[0][:3] == (svc6, 128, 0xC0)
    assert hosts_in(r6, [(bytes([0xFD, 0, 0, 0x77, 0, 1] + [0] * 10), 64)]) == [(svc6, 0xC0)]
    assert default_gateway(r6) == bytes([0xFE, 0x80] + [0] * 13 + [9])
    assert parse_route4("") == [] and parse_route4("Iface\nshort line\n") == []
    dump = parse_babel_dump(DUMP)
    assert [n["cost"] for n in dump["neighbours"]] == [96, 65535]
    assert [r["prefix"] for r in dump["routes"]] == ["10.77.0.1/32", "10.77.0.3/32", "10.77.1.1/32"]
    assert dump["routes"][2]["installed"] is False and dump["routes"][1]["refmetric"] == 0

    def relay_addr(prefix):
        return prefix.split("/")[0] if prefix.startswith("10.77.0.") else None

    # the neighbour that announces itself (refmetric 0) is relay 10.77.0.3; an unreachable one is left out
    assert neighbour_addresses(dump, relay_addr) == [{"address": "10.77.0.3", "if": "m43", "cost": 96}]
    # identities: stable per phone and boot, different across phones and boots, proved only with the key
    secret, key = b"s" * 16, b"the mesh key, 16+"
    t1 = token(secret, ip(10, 78, 4, 20))
    assert t1 == token(secret, ip(10, 78, 4, 20)) and len(t1) == 24
    assert t1 != token(secret, ip(10, 78, 4, 21)) and t1 != token(b"t" * 16, ip(10, 78, 4, 20))
    user, pw = login(key, t1, 7)
    assert check(key, user, pw) == (t1, 7)
    assert check(key, user, login(b"another key, 16+", t1, 7)[1]) is None
    assert check(key, user, pw[:-1] + (b"0" if pw[-1:] != b"0" else b"1")) is None  # one digit off
    assert check(key, login(key, t1, 8)[0], pw) is None  # the proof covers the login number
    assert check(b"", *login(b"", t1, 7)) is None  # no key, no identities
    assert check(key, b"short.1", proof(key, b"short.1")) is None
    assert check(key, t1, proof(key, t1)) is None  # no login number: an old relay's login
    # each login number is good once; late ones within the window still pass, older ones do not
    w = Window(tokens_max=2)
    assert w.fresh(t1, 5) and not w.fresh(t1, 5)
    assert w.fresh(t1, 9) and w.fresh(t1, 6) and not w.fresh(t1, 6) and not w.fresh(t1, 9)
    assert w.fresh(t1, 9 + WINDOW) and not w.fresh(t1, 9) and w.fresh(t1, 10) and not w.fresh(t1, 10)
    assert w.fresh(t1, 1 << 40) and not w.fresh(t1, 5) and w.fresh(t1, (1 << 40) - WINDOW + 1)
    assert not w.fresh(t1, (1 << 40) - WINDOW)
    assert w.fresh(b"b" * 24, 1) and w.fresh(b"c" * 24, 1)  # a full table drops the token used longest ago
    assert len(w.seen) == 2 and t1 not in w.seen

if __name__ == "__main__":
    run()
    print("meshroutes OK")
