"""The destination guard: which addresses the relay will never connect to.

On by default. It keeps the relay from being a door into the device itself,
the Wi-Fi, the uplink's own network and the admin pages of a satellite
terminal or a modem. Only configured exceptions (guard.allow, `--allow`)
open it. Names are checked after resolution, by the address they got.
"""

from relay.addr import Nets, parse_cidr, unmap_v4

# Reasons are counter keys and the words a refusal carries; never an address.
LOOPBACK = "loopback"
UNSPECIFIED = "unspecified"
LINK_LOCAL = "link-local"
MULTICAST = "multicast"
RESERVED = "reserved"
LOCAL_NET = "local network"
OWN = "the relay itself"
MANAGEMENT = "management address"
DENIED = "denied by config"

BUILTIN = (
    ("127.0.0.0/8", LOOPBACK),
    ("::1/128", LOOPBACK),
    ("0.0.0.0/8", UNSPECIFIED),
    ("::/128", UNSPECIFIED),
    ("169.254.0.0/16", LINK_LOCAL),
    ("fe80::/10", LINK_LOCAL),
    ("224.0.0.0/4", MULTICAST),
    ("ff00::/8", MULTICAST),
    ("240.0.0.0/4", RESERVED),  # includes 255.255.255.255
    # Local networks: the Wi-Fi, the uplink's LAN, a terminal's admin subnet.
    ("10.0.0.0/8", LOCAL_NET),
    ("172.16.0.0/12", LOCAL_NET),
    ("192.168.0.0/16", LOCAL_NET),
    ("100.64.0.0/10", LOCAL_NET),
    ("fc00::/7", LOCAL_NET),
)


def _nets(texts):
    return [parse_cidr(t) for t in texts]


class Guard:
    def __init__(self, allow=(), deny=(), management=(), own=()):
        rules = Nets()
        for c, why in BUILTIN:
            rules.add(parse_cidr(c), why)
        for texts, why in ((management, MANAGEMENT), (own, OWN), (deny, DENIED)):
            for n in _nets(texts):
                rules.add(n, why)
        self.rules = rules
        self.allow = Nets(_nets(allow))

    def add_own(self, ip_texts):
        for n in _nets(ip_texts):
            self.rules.add(n, OWN)

    def check(self, ip):
        """None when the relay may connect to ip (bytes), else the reason."""
        v4 = unmap_v4(ip)  # ::ffff:127.0.0.1 is loopback too
        allow = self.allow
        if allow and (allow.first(ip) is not None or (v4 is not ip and allow.first(v4) is not None)):
            return None
        hit = self.rules.first(ip)
        if v4 is not ip:
            other = self.rules.first(v4)
            if other is not None and (hit is None or other[0] < hit[0]):
                hit = other  # the rule that comes first decides, as for an address of one family
        return None if hit is None else hit[1]
