"""The mesh's address plan from a site file's [mesh] section: who is who, which addresses each relay gets.

relay_entry(value) validates one `[mesh.relays.NAME]` table (the schema calls it);
plan(resolved, relay=None) -> Plan, or problems recorded on the resolved site as
`file:line: mesh.relays.NAME.key: message`. Relay number n gets the nth address
of mesh.network as its own /32, the nth of mesh.uplinks as its service address
when it has an uplink, and the nth /24 of mesh.clients as its phones' subnet (the
relay is .1 in it). Pure: no files, no network.
"""

import ipaddress

# No relayctl.boards import at the top: the boards schema imports relay_entry from here.
MODES = ("80211s", "adhoc", "wired", "batman-adv")
RELAY_KEYS = {"number", "uplink", "board", "radio", "wired", "via"}


def relay_entry(v):
    """One relay of the mesh: { number = 1, uplink = true, board = "rpi-4", radio = "wlan1", wired = ["eth1"] },
    or a satellite: { number = 5, board = "esp32-satellite", via = "stairs" }."""
    from relayctl.boards.validate import ProfileError, boolean, integer, list_of, nonempty_text, text

    if not isinstance(v, dict):
        raise ProfileError("expected a table like { number = 1, uplink = true }")
    unknown = sorted(set(v) - RELAY_KEYS)
    if unknown:
        import difflib

        near = difflib.get_close_matches(unknown[0], sorted(RELAY_KEYS), 1, 0.6)
        raise ProfileError(f'unknown key "{unknown[0]}"' + (f' (did you mean "{near[0]}"?)' if near else
                                                            f"; known: {', '.join(sorted(RELAY_KEYS))}"))
    if "number" not in v:
        raise ProfileError("number: missing; each relay needs its own number 1..200 (it picks its addresses)")
    out = {"number": integer(1, 200)(v["number"]), "uplink": boolean(v.get("uplink", False)),
           "board": text(v.get("board", "")), "via": text(v.get("via", "")),
           # None: not given, the mesh's default applies; "" or []: none on this relay
           "radio": text(v["radio"]) if "radio" in v else None,
           "wired": list_of(nonempty_text)(v["wired"]) if "wired" in v else None}
    if out["via"] and out["uplink"]:
        raise ProfileError("a satellite (via = ...) chains through its relay; it has no uplink of its own")
    return out


class RelayPlan:
    """One relay's part: its addresses, links and role."""

    def __init__(self, name, entry, p):
        self.name = name
        self.number = entry["number"]
        self.board = entry["board"]
        self.uplink = entry["uplink"]
        self.via = entry["via"]  # a satellite: the Linux relay whose Wi-Fi it joins
        self.satellite = bool(self.via)
        default = not self.satellite  # a satellite has no mesh links of its own
        self.radio = entry["radio"] if entry["radio"] is not None else (p.radio if default else "")
        self.wired = entry["wired"] if entry["wired"] is not None else (list(p.wired) if default else [])
        n = self.number
        self.address = str(p.network.network_address + n)
        self.service = str(p.uplinks.network_address + n) if self.uplink else ""
        self.subnet = str(list(p.clients.subnets(new_prefix=24))[n])
        self.client_address = str(ipaddress.ip_network(self.subnet).network_address + 1)

    @property
    def links(self):
        return ([self.radio] if self.radio else []) + self.wired


class Plan:
    def __init__(self, values):
        self.network = ipaddress.ip_network(values["mesh.network"])
        self.uplinks = ipaddress.ip_network(values["mesh.uplinks"])
        self.clients = ipaddress.ip_network(values["mesh.clients"])
        self.key = values["mesh.key"]
        self.mesh_id = values["mesh.id"]
        self.mode = values["mesh.mode"]
        self.channel = values["mesh.channel"] or values["wifi.channel"]
        self.country = values["wifi.country"]
        self.radio = values["mesh.radio"]
        self.wired = values["mesh.wired"]
        self.port = values["mesh.port"]
        self.babeld_port = 33123
        self.relays = {}
        for name in sorted(values["mesh.relays"]):
            self.relays[name] = RelayPlan(name, values["mesh.relays"][name], self)
        self.this = None

    def names(self):
        """{address: name} for status pages: each relay's own address and its service address."""
        out = {}
        for r in self.relays.values():
            out[r.address] = r.name
            if r.service:
                out[r.service] = r.name
        return out

    def satellites_of(self, name):
        return [r for r in self.relays.values() if r.via == name]

    def linux_relays(self):
        return [r for r in self.relays.values() if not r.satellite]


def _net(values, key, problems, max_prefix):
    try:
        net = ipaddress.ip_network(values[key], strict=True)
    except ValueError as e:
        problems.append((key, f"expected a network like 10.77.0.0/24: {e}"))
        return None
    if net.version != 4 or net.prefixlen > max_prefix:
        problems.append((key, f"expected an IPv4 network of /{max_prefix} or larger, got {net}"))
        return None
    return net


def plan(r, relay=None):
    """The mesh plan of resolved r (a site with [mesh]), with r's relay picked (relay, else mesh.relay):
    -> Plan, with .this the RelayPlan picked (or None); problems go onto r. None when there is no [mesh]."""
    values = r.values
    if not values.get("mesh.relays"):
        return None
    problems = []
    nets = [_net(values, "mesh.network", problems, 24), _net(values, "mesh.uplinks", problems, 24),
            _net(values, "mesh.clients", problems, 16)]
    key = values["mesh.key"]
    if not 16 <= len(key) <= 63 or any(not 32 <= ord(c) <= 126 for c in key):
        problems.append(("mesh.key", "expected 16-63 printable ASCII characters, the same on every relay "
                                     "(it is also the 802.11s SAE password); e.g. `openssl rand -base64 24`"))
    elif '"' in key:
        # wpa_supplicant ends a quoted value at its last " and reads no escapes: such a key cannot reach it intact
        problems.append(("mesh.key", 'a " cannot go into wpa_supplicant\'s mesh block; use other characters '
                                     "(e.g. `openssl rand -base64 24`)"))
    if None not in nets:
        for i, a in enumerate(nets):
            for b in nets[i + 1:]:
                if a.overlaps(b):
                    problems.append(("mesh.clients", f"{a} and {b} overlap; the three mesh networks must be apart"))
        if ipaddress.ip_network(values["wifi.subnet"]).overlaps(nets[2]) and values["wifi.subnet"] != "192.168.4.0/24":
            problems.append(("wifi.subnet", "with a mesh each relay's phones get a /24 of mesh.clients; leave wifi.subnet out"))
    p = None
    if not problems:
        p = Plan(values)
        seen = {}
        for name, rp in p.relays.items():
            where = f"mesh.relays.{name}"
            if rp.number in seen:
                problems.append((where + ".number", f"{rp.number} is also {seen[rp.number]}'s; each relay needs its own"))
            seen.setdefault(rp.number, name)
            if rp.number >= p.network.num_addresses - 1 or rp.number >= len(list(p.clients.subnets(new_prefix=24))):
                problems.append((where + ".number", f"{rp.number} is past the end of mesh.network {p.network}"))
            if rp.via and rp.via not in p.relays:
                problems.append((where + ".via", f'no relay "{rp.via}" in [mesh.relays]'))
            elif rp.via and p.relays[rp.via].satellite:
                problems.append((where + ".via", f'"{rp.via}" is a satellite too; a satellite joins a Linux relay'))
            if not rp.satellite and not rp.links:
                problems.append((where + ".radio", "no mesh link: set radio (or mesh.radio) or wired"))
        if not any(rp.uplink for rp in p.relays.values()):
            problems.append(("mesh.relays", "no relay has uplink = true: the mesh would have no way out"))
        pick = relay or values.get("mesh.relay") or ""
        if pick:
            if pick not in p.relays:
                problems.append(("mesh.relay", f'no relay "{pick}" in [mesh.relays] (there are: {", ".join(p.relays)})'))
            else:
                p.this = p.relays[pick]
    for key, message in problems:
        _problem(r, key, message)
    return None if problems else p


def _problem(r, key, message):
    """A problem at the site file's line for key (mesh.relays.NAME.x keys have lines of their own)."""
    from relayctl.boards.loader import Problem

    site = r.site
    line = None
    if site is not None:
        k = key
        while k and line is None:
            line = site.lines.get(k)
            k = k.rsplit(".", 1)[0] if "." in k else ""
    r.problems.append(Problem(site.path if site is not None else r.profile.path, line, key, message))


def locate(r):
    """A [mesh.relays.NAME] table's problem (the schema checks the whole table) -> at NAME's own line, and at
    the offending key's when the message names one, keyed mesh.relays.NAME[.key]."""
    site = r.site
    if site is None:
        return
    for pr in r.problems:
        if pr.key != "mesh.relays" or pr.line is not None or ": " not in pr.message:
            continue
        name, rest = pr.message.split(": ", 1)
        key = f"mesh.relays.{name}"
        sub = rest.split(":", 1)[0] if ":" in rest and " " not in rest.split(":", 1)[0] else None
        if sub is None and rest.startswith('unknown key "'):
            sub = rest.split('"')[1]
        if sub and f"{key}.{sub}" in site.lines:
            key, rest = f"{key}.{sub}", rest.split(": ", 1)[1] if rest.startswith(sub + ":") else rest
        pr.key, pr.line, pr.message = key, site.lines.get(key), rest


def apply(r, relay=None):
    """Resolve the plan onto r: the picked relay's phones' subnet and address replace wifi.subnet/wifi.address,
    so config.json, the portal and the access point all use the plan's. Sets r.mesh (Plan or None)."""
    p = plan(r, relay)
    r.mesh = p
    if p is not None and p.this is not None:
        r.values["wifi.subnet"] = p.this.subnet
        r.values["wifi.address"] = p.this.client_address
    return p
