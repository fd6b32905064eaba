"""What the mesh routes to, sans-I/O: the kernel's routing tables and babeld's dump, as text in, lists out.

babeld (the routing daemon the mesh runs; Relay routes nothing itself) installs
a host route for every relay's own address and for every uplink relay's
service address it hears about, with the Babel metric as the kernel metric
(`reflect-kernel-metric true` in the rendered babeld.conf). So the uplink
relays the mesh can reach right now are the host routes inside mesh.uplinks,
nearest first by metric. Inputs are the text of /proc/net/route and
/proc/net/ipv6_route, and the reply to babeld's local `dump` command.
No files, no sockets, no clock.
"""

from relay.proto.addr import in_net

INFINITY = 0xFFFF


def _le32(hex8):
    """/proc/net/route prints IPv4 addresses as host-order hex: on the little-endian boards we run on,
    '0100A8C0' is 192.168.0.1."""
    v = int(hex8, 16)
    return bytes((v & 0xFF, (v >> 8) & 0xFF, (v >> 16) & 0xFF, v >> 24))


def _plen(mask):
    n = 0
    for b in mask:
        while b & 0x80:
            n += 1
            b = (b << 1) & 0xFF
    return n


def parse_route4(text):
    """/proc/net/route -> [(destination 4 bytes, prefix length, metric, gateway 4 bytes, interface)]."""
    out = []
    for line in text.split("\n")[1:]:
        f = line.split()
        if len(f) < 8:
            continue
        try:
            flags = int(f[3], 16)
            if not flags & 1:  # RTF_UP
                continue
            out.append((_le32(f[1]), _plen(_le32(f[7])), int(f[6]), _le32(f[2]), f[0]))
        except ValueError:
            continue
    return out


def parse_route6(text):
    """/proc/net/ipv6_route -> [(destination 16 bytes, prefix length, metric, gateway 16 bytes, interface)]."""
    out = []
    for line in text.split("\n"):
        f = line.split()
        if len(f) < 10 or len(f[0]) != 32:
            continue
        try:
            dest = bytes(int(f[0][i : i + 2], 16) for i in range(0, 32, 2))
            gw = bytes(int(f[4][i : i + 2], 16) for i in range(0, 32, 2))
            out.append((dest, int(f[1], 16), int(f[5], 16), gw, f[9]))
        except ValueError:
            continue
    return out


def default_gateway(routes):
    """The gateway of the default route with the lowest metric (a satellite's relay), or None."""
    best = None
    for _dest, plen, metric, gw, _ in routes:
        if plen == 0 and gw != bytes(len(gw)) and (best is None or metric < best[0]):
            best = (metric, gw)
    return best[1] if best else None


def hosts_in(routes, nets, own=()):
    """Host routes (/32, /128) inside any of nets -> [(address, metric)], nearest first; own addresses left out.
    When the kernel has two routes to one host (two tables, a stale one), the cheaper counts."""
    best = {}
    for dest, plen, metric, _, _ in routes:
        if plen != len(dest) * 8 or dest in own:
            continue
        for net in nets:
            if len(net[0]) == len(dest) and in_net(dest, net):
                if dest not in best or metric < best[dest]:
                    best[dest] = metric
                break
    found = [(best[d], d) for d in best]
    found.sort()
    return [(d, m) for m, d in found]


def parse_babel_dump(text):
    """babeld's reply to `dump` on its local interface ->
    {"neighbours": [{"via": link-local text, "if": name, "cost": n}],
     "routes": [{"prefix": text, "metric": n, "refmetric": n, "via": text, "if": name, "installed": bool, "id": text}]}
    Lines look like `add neighbour 55.. address fe80::1 if m0 reach fc00 ... cost 96` and
    `add route 55.. prefix 10.77.0.2/32 from 0.0.0.0/0 installed yes id 10:15:.. metric 96 refmetric 0 via fe80::1 if m0`."""
    neighbours = []
    routes = []
    for line in text.split("\n"):
        f = line.split()
        if len(f) < 3 or f[0] != "add":
            continue
        kv = {}
        for i in range(3, len(f) - 1, 2):
            kv[f[i]] = f[i + 1]
        try:
            if f[1] == "neighbour":
                neighbours.append({"via": kv.get("address", ""), "if": kv.get("if", ""),
                                   "cost": int(kv.get("cost", INFINITY))})
            elif f[1] == "route":
                routes.append({"prefix": kv.get("prefix", ""), "metric": int(kv.get("metric", INFINITY)),
                               "refmetric": int(kv.get("refmetric", INFINITY)), "via": kv.get("via", ""),
                               "if": kv.get("if", ""), "installed": kv.get("installed") == "yes",
                               "id": kv.get("id", "")})
        except ValueError:
            continue
    return {"neighbours": neighbours, "routes": routes}


def neighbour_addresses(dump, net_match):
    """Each babeld neighbour with the relay address it announces itself (a route with refmetric 0 via it):
    -> [{"address": "10.77.0.2" or None, "if": ..., "cost": ...}]. net_match(prefix text) -> address text or None
    picks the relay addresses among the prefixes."""
    own = {}
    for r in dump["routes"]:
        if r["refmetric"] == 0:
            addr = net_match(r["prefix"])
            if addr is not None:
                own[(r["via"], r["if"])] = addr
    return [{"address": own.get((n["via"], n["if"])), "if": n["if"], "cost": n["cost"]}
            for n in dump["neighbours"] if n["cost"] < INFINITY]
