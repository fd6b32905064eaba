"""Which destinations the site lets through: presets plus site lists, one decision for SOCKS, HTTP and DNS.

Policy(preset, ...) answers check_name(name), check_ip(ip) and check_port(port)
with None (allowed) or the refusal reason "policy". A name the policy admits
by domain may resolve anywhere (the guard still applies); an address given
directly must lie in an admitted range. Deny lists win over allow lists.
The preset data lives in relay/presets/*.txt (beside the package, data for the host tools too), with its sources.
Only counters record refusals; nothing records who asked for what.
"""

from relay.proto.addr import Nets, parse_cidr

POLICY = "policy"


def _presets_dir():
    import relay

    f = getattr(relay, "__file__", None) or "relay/__init__.py"
    cut = f.rfind("/")
    return (f[:cut] if cut >= 0 else ".") + "/presets"


def load_preset(name, read, seen=None):
    """-> (all?, [nets], [domain suffixes]). read(path) -> text."""
    seen = seen or []
    if name in seen:
        raise ValueError("preset include loop: " + " -> ".join(seen + [name]))
    text = read(_presets_dir() + "/" + name + ".txt")
    everything, nets, names = False, [], []
    for n, line in enumerate(text.split("\n")):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        parts = line.split()
        if parts[0] == "all":
            everything = True
        elif parts[0] == "include" and len(parts) == 2:
            e, ns, ds = load_preset(parts[1], read, seen + [name])
            everything = everything or e
            nets += ns
            names += ds
        elif parts[0] == "cidr" and len(parts) == 2 and parse_cidr(parts[1]) is not None:
            nets.append(parse_cidr(parts[1]))
        elif parts[0] == "domain" and len(parts) == 2:
            names.append(parts[1].lower().strip("."))
        else:
            raise ValueError("presets/%s.txt:%d: cannot read %s" % (name, n + 1, repr(line)))
    return everything, nets, names


def _suffix_match(name, suffixes):
    for s in suffixes:
        if name == s or name.endswith("." + s):
            return True
    return False


class Policy:
    def __init__(self, preset, read, allow_domains=(), deny_domains=(), allow_cidrs=(), deny_cidrs=(), ports=()):
        self.everything, self.nets, self.names = load_preset(preset, read)
        self.preset = preset
        self.names += [d.lower().strip(".") for d in allow_domains]
        self.nets = Nets(self.nets + [parse_cidr(c) for c in allow_cidrs])
        self.deny_names = [d.lower().strip(".") for d in deny_domains]
        self.deny_nets = Nets([parse_cidr(c) for c in deny_cidrs])
        self.ports = list(ports)

    def check_port(self, port):
        if self.ports and port not in self.ports:
            return POLICY
        return None

    def check_name(self, name):
        """None when the name is admitted by domain; "policy" when refused; "by-address" when only
        its addresses can decide (the preset admits ranges, not this name)."""
        name = name.lower().rstrip(".")
        if _suffix_match(name, self.deny_names):
            return POLICY
        if self.everything or _suffix_match(name, self.names):
            return None
        return "by-address" if self.nets else POLICY

    def check_ip(self, ip):
        if self.deny_nets.first(ip) is not None:
            return POLICY
        if self.everything or self.nets.first(ip) is not None:
            return None
        return POLICY
