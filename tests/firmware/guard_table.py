"""The guard's decisions on a table of destinations, with nothing but relay imports: test_guard_forms.py
calls decide() under CPython and runs guard_forms_mp.py, which calls it under MicroPython."""

from relay.proto.addr import format_ip, parse_host, parse_ip
from relay.proto.guard import Guard

LEARNED = ("198.51.100.7", "::ffff:198.51.100.7", "64:ff9b::198.51.100.7", "2001:db8::7", "203.0.113.9",
           "198.51.100.8")


def decide(keys):
    """keys: {"hosts": [...], "guarded": [...], "names": [...]} -> the answers, as JSON-able values."""
    out = {"hosts": {}, "guarded": {}, "names": {}, "allowed": {}, "learned": {}}
    for text in keys["hosts"]:
        try:
            h = parse_host(text)
            out["hosts"][text] = format_ip(h) if type(h) is bytes else h
        except ValueError:
            out["hosts"][text] = None
    g = Guard(own_names=["relay.lan", "portal.relay"])
    for text in keys["guarded"]:
        out["guarded"][text] = g.check(parse_ip(text))
    for text in keys["names"]:
        out["names"][text] = g.check_name(text)
    opened = Guard(allow=["127.0.0.0/8", "::1/128"])
    out["allowed"]["localhost"] = opened.check_name("localhost")
    for text in ("64:ff9b::127.0.0.1", "2002:7f00:1::1"):
        out["allowed"][text] = opened.check(parse_ip(text))
    # localhost may mean ::1 to whoever resolves it: opening only 127/8 does not open the name
    out["allowed"]["localhost, 127/8 only"] = Guard(allow=["127.0.0.0/8"]).check_name("localhost")
    g.set_learned([parse_ip("198.51.100.7"), parse_ip("2001:db8::7")])
    g.set_learned([parse_ip("203.0.113.9")], "platform")
    for text in LEARNED:
        out["learned"][text] = g.check(parse_ip(text))
    return out
