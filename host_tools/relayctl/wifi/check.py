"""Access-point settings: defaults, and checks whose messages say what to change.

check(raw, uplink_subnets=()) -> dict with every key below filled in, or raises
WifiError(problems), one line per problem: "wifi.channel: 13 not allowed for country "US" (1-11)".
"""

import ipaddress

DEFAULTS = {
    "interface": "wlan0",  # the Wi-Fi interface on Linux
    "radio": "radio0",  # the radio on OpenWrt
    "ssid": "relay",
    "security": "open",
    "passphrase": "",
    "country": "00",
    "channel": 6,
    "max_clients": 0,
    "address": "192.168.4.1",
    "subnet": "192.168.4.0/24",
    "portal_port": 80,
    "dns_port": 53,
    "socks_port": 1080,
    "http_port": 8080,
    "udp_port_base": 40000,
    "udp_ports": 64,
    "transparent_port": 1081,  # zero-tap listener: config.json's transparent.port default; 0: no redirect
    "preset": "telegram",  # policy.preset: whose address ranges the zero-tap rules redirect
    "lan": False,  # LAN mode: `interface` is a wire to access points in bridge mode; no radio of our own
    "mesh_port": 0,  # a mesh relay with satellites: they hand their phones' tunnels over on this port
}

# 2.4 GHz channels by country; every other country gets 1-13 (the ETSI and world set).
_CH24 = {"US": 11, "CA": 11, "TW": 11, "MX": 11, "JP": 14}
# 5 GHz without radar detection (DFS), which the relay does not configure: 36-48 nearly everywhere,
# 149-165 where the regulator allows it.
_CH5_LOW = (36, 40, 44, 48)
_CH5_HIGH = (149, 153, 157, 161, 165)
_CH5_HIGH_COUNTRIES = ("US", "CA", "AU", "NZ", "CN", "IN", "SG", "TW", "MX", "BR", "KR")


class WifiError(Exception):
    def __init__(self, problems):
        super().__init__("\n".join(problems))
        self.problems = problems


def legal_channels(country):
    chans = list(range(1, _CH24.get(country, 13) + 1))
    chans += list(_CH5_LOW)
    if country in _CH5_HIGH_COUNTRIES:
        chans += list(_CH5_HIGH)
    return chans


def _describe(chans):
    low = [c for c in chans if c <= 14]
    high = [c for c in chans if c > 14]
    return "1-%d" % low[-1] + (", " + ", ".join(str(c) for c in high) if high else "")


def check(raw, uplink_subnets=()):
    ap = dict(DEFAULTS)
    problems = []
    for k in raw:
        if k not in DEFAULTS:
            problems.append("wifi.%s: unknown key" % k)
        else:
            ap[k] = raw[k]
    ssid = ap["ssid"]
    if not isinstance(ssid, str) or not 1 <= len(ssid.encode()) <= 32:
        problems.append("wifi.ssid: expected 1-32 bytes of text, got %r (%d bytes in UTF-8)"
                        % (ssid, len(str(ssid).encode())))
    if ap["security"] not in ("open", "wpa2"):
        problems.append('wifi.security: expected "open" or "wpa2", got %r' % ap["security"])
    elif ap["security"] == "wpa2":
        pw = ap["passphrase"]
        if not isinstance(pw, str) or not 8 <= len(pw) <= 63 or any(not 32 <= ord(c) <= 126 for c in pw):
            problems.append("wifi.passphrase: WPA2 needs 8-63 printable ASCII characters (no accents, "
                            "no emoji); got %d characters" % len(str(pw)))
    country = ap["country"]
    if not isinstance(country, str) or len(country) != 2 or not (country.isupper() or country == "00"):
        problems.append('wifi.country: expected a two-letter code like "KZ" (or "00"), got %r' % (country,))
        country = "00"
    chans = legal_channels(country)
    if not isinstance(ap["channel"], int) or ap["channel"] not in chans:
        hint = " (a DFS channel: the relay does no radar detection)" if isinstance(ap["channel"], int) and 52 <= ap["channel"] <= 144 else ""
        problems.append('wifi.channel: %s not allowed for country "%s" (%s)%s'
                        % (ap["channel"], country, _describe(chans), hint))
    if not isinstance(ap["max_clients"], int) or not 0 <= ap["max_clients"] <= 2007:
        problems.append("wifi.max_clients: expected 0 (the radio's limit) to 2007, got %r" % (ap["max_clients"],))
    try:
        net = ipaddress.ip_network(ap["subnet"], strict=True)
        if net.version != 4 or net.prefixlen > 28:
            raise ValueError("an IPv4 subnet of at least 16 addresses (/28)")
    except ValueError as e:
        problems.append("wifi.subnet: expected an IPv4 subnet like 192.168.4.0/24: %s" % e)
        net = None
    try:
        addr = ipaddress.ip_address(ap["address"])
        if net is not None and (addr not in net or addr in (net.network_address, net.broadcast_address)):
            problems.append("wifi.address: %s is not a host address in wifi.subnet %s" % (addr, net))
    except ValueError:
        problems.append("wifi.address: expected an IPv4 address, got %r" % (ap["address"],))
    for up in uplink_subnets:
        other = ipaddress.ip_network(up, strict=False)
        if net is not None and net.overlaps(other):
            problems.append("wifi.subnet: %s overlaps the uplink's %s; phones could not reach the uplink's "
                            "side. Pick another, e.g. 10.44.0.0/24" % (net, other))
    for k in ("portal_port", "dns_port", "socks_port", "http_port", "udp_port_base"):
        if not isinstance(ap[k], int) or not 0 < ap[k] < 65536:
            problems.append("wifi.%s: expected 1..65535, got %r" % (k, ap[k]))
    if not isinstance(ap["mesh_port"], int) or not 0 <= ap["mesh_port"] < 65536:
        problems.append("wifi.mesh_port: expected 1..65535, or 0, got %r" % (ap["mesh_port"],))
    if not isinstance(ap["transparent_port"], int) or not 0 <= ap["transparent_port"] < 65536:
        problems.append("wifi.transparent_port: expected 1..65535, or 0 for no zero-tap redirect, got %r"
                        % (ap["transparent_port"],))
    if problems:
        raise WifiError(problems)
    return ap
