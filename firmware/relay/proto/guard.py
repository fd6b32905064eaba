"""The destination guard: which addresses the relay will never connect to.

On by default. It keeps the relay from being a door into the device itself,
the Wi-Fi, the uplink's own network and the admin pages of a satellite
terminal or a modem. Only configured exceptions (guard.allow, `--allow`)
open it. Names are checked after resolution, by the address they got; a
name that leaves unresolved (to an upstream proxy) is checked by check_name
first. IPv6 forms that carry an IPv4 address (mapped, NAT64, 6to4, ...) are
judged by that address too. The device's own addresses come from the config,
the listeners and what the platform learns while it runs (set_learned).
"""

from relay.proto.addr import Nets, embedded_v4, parse_cidr

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

# Names that only ever mean something here (RFC 6761 localhost, RFC 6762 .local, RFC 8375
# home.arpa, ICANN's .internal, OpenWrt's and Debian's defaults): an upstream proxy on this
# network would resolve them to this network.
LOCAL_SUFFIXES = ("local", "lan", "home.arpa", "internal", "localdomain")
_LOOPBACK4 = b"\x7f\x00\x00\x01"
_LOOPBACK6 = b"\x00" * 15 + b"\x01"

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
    def __init__(self, allow=(), deny=(), management=(), own=(), own_names=()):
        rules = Nets()
        for c, why in BUILTIN:
            rules.add(parse_cidr(c), why)
        for texts, why in ((management, MANAGEMENT), (own, OWN), (deny, DENIED)):
            for n in _nets(texts):
                rules.add(n, why)
        self.rules = rules
        self.allow = Nets(_nets(allow))
        self.learned = set()  # the device's addresses (bytes) as the platform finds them, kept current
        self.sources = {}  # who learned them ("netlink", "platform") -> [addresses]
        self.own_names = [n.lower().rstrip(".") for n in own_names]

    def add_own(self, ip_texts):
        for n in _nets(ip_texts):
            self.rules.add(n, OWN)

    def set_learned(self, ips, source="netlink"):
        self.sources[source] = ips
        learned = set()
        for k in self.sources:
            for ip in self.sources[k]:
                learned.add(ip)
        self.learned = learned

    def check(self, ip):
        """None when the relay may connect to ip (bytes), else the reason."""
        inner = embedded_v4(ip)  # ::ffff:127.0.0.1, 64:ff9b::7f00:1 and 2002:7f00:1:: are loopback too
        allow = self.allow
        if allow:
            if allow.first(ip) is not None:
                return None
            if inner:
                for v4 in inner:
                    if allow.first(v4) is None:
                        break
                else:
                    return None
        hit = self.rules.first(ip)
        for v4 in inner:
            other = self.rules.first(v4)
            if other is not None and (hit is None or other[0] < hit[0]):
                hit = other  # the rule that comes first decides, as for an address of one family
        if hit is not None:
            return hit[1]
        learned = self.learned
        if learned:
            if ip in learned:
                return OWN
            for v4 in inner:
                if v4 in learned:
                    return OWN
        return None

    def check_name(self, name):
        """For a name (lower case, from addr.parse_host) that is about to leave unresolved: None, or the
        reason when it names this device or its networks. localhost goes as the loopback goes (open
        with guard.allow); a name with no dot is resolved with this network's search domain."""
        if name == "localhost" or name.endswith(".localhost"):
            return self.check(_LOOPBACK4) or self.check(_LOOPBACK6)
        if "." not in name:
            return LOCAL_NET
        for suffix in self.own_names:
            if name == suffix:
                return OWN
        for suffix in LOCAL_SUFFIXES:
            if name == suffix or name.endswith("." + suffix):
                return LOCAL_NET
        return None
