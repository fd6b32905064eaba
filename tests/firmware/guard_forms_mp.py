# Run by test_guard_forms.py under MicroPython: the table's keys come on stdin, the answers go out as JSON.
import json
import sys

from relay.addr import format_ip, parse_host, parse_ip
from relay.guard import Guard

keys = json.loads(sys.stdin.read())
out = {"hosts": {}, "guarded": {}, "names": {}, "learned": {}}
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
g.set_learned([parse_ip("198.51.100.7"), parse_ip("2001:db8::7")])
g.set_learned([parse_ip("203.0.113.9")], "platform")
for text in ("198.51.100.7", "::ffff:198.51.100.7", "64:ff9b::198.51.100.7", "2001:db8::7", "203.0.113.9",
             "198.51.100.8"):
    out["learned"][text] = g.check(parse_ip(text))
print(json.dumps(out))
