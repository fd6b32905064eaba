"""Check a loaded profile (and a site file on top of it) value by value and across keys.

resolve(profile, site_layer=None) -> Resolved: every schema key with its
value (defaults filled in), where each came from, and every problem found,
errors and warnings, each as `file:line: key: message`. Nothing is raised and
nothing is written.
"""

import ipaddress
import re

from relayctl.boards import schema
from relayctl.boards.loader import Problem
from relayctl.boards.validate import ProfileError, channels_for


class _Unparsed(Exception):
    """A cross-key check needs a value that failed its own check."""


class Resolved:
    def __init__(self, profile, site=None):
        self.profile = profile
        self.site = site
        self.values = {}
        self.origin = {}  # key -> (path, line) of the file that set it
        self.problems = list(profile.problems) + (list(site.problems) if site else [])

    def __getitem__(self, key):
        v = self.values[key]
        if v is None:
            raise _Unparsed(key)  # its own problem is reported; a check that needs it is skipped, not the others
        return v

    @property
    def name(self):
        return self.profile.name

    def _in_order(self, items):
        return sorted(items, key=lambda p: (str(p.path), p.line or 0))

    @property
    def errors(self):
        return self._in_order(p for p in self.problems if not p.warning)

    @property
    def warnings(self):
        return self._in_order(p for p in self.problems if p.warning)

    @property
    def in_order(self):
        """Every problem, by file and line: the order a tinkerer reads the file in."""
        return self._in_order(self.problems)

    def is_set(self, key):
        return key in self.origin

    def problem(self, key, message, warning=False, line=None):
        """line: where the problem is when not at key's own line (one entry of an array of tables)."""
        path, own = self.origin.get(key, (None, None))
        line = line or own
        if path is None:
            scope = schema.BY_KEY[key].scope if key in schema.BY_KEY else "board"
            path = self.site.path if (self.site and scope == "site") else self.profile.path
        self.problems.append(Problem(path, line, key, message, warning))


def _entry_line(layer, key, e):
    """The line of the entry of an array of tables a problem is in: "engine 2 (trojan): server: missing" ->
    the header of the second [[uplink.engine]] (the message names the field)."""
    n = getattr(e, "entry", None)
    if layer is None or n is None:
        return None
    return layer.lines.get(f"{key}[{n}]")


def resolve(profile, site=None):
    r = Resolved(profile, site)
    for f in schema.FIELDS:
        if site is not None and f.key in site.values:
            raw, origin = site.values[f.key], (site.path, site.lines.get(f.key))
        elif f.key in profile.values:
            raw, origin = profile.values[f.key], profile.where(f.key)
        else:
            if f.default is schema.REQUIRED:
                r.values[f.key] = None
                r.problem(f.key, f"missing; set it in {profile.path.name} or a profile it extends ({f.meaning})")
                continue
            r.values[f.key] = schema.default(f.key)
            continue
        r.origin[f.key] = origin
        try:
            r.values[f.key] = f.check(raw)
        except ProfileError as e:
            r.values[f.key] = None
            r.problem(f.key, str(e), line=_entry_line(site if site is not None and f.key in site.values else None,
                                                      f.key, e))
    # Cross-key checks in the same pass: each runs when the values it needs parsed, so a tinkerer sees
    # "channel 14 not allowed for KZ" beside "ssid: expected text" instead of after fixing it.
    checks = list(_BOARD_CHECKS) + (list(_SITE_CHECKS) if site is not None else [])
    for check in checks:
        try:
            check(r)
        except _Unparsed:
            pass
    return r


_ARCH = {"esp32": "xtensawin", "esp32s3": "xtensawin", "esp32c3": "rv32imc", "rp2040": "armv6m"}


def _check_arch(r):
    if r["runtime"] == "micropython":
        want = _ARCH.get(r["chip.name"])
        if want and r["chip.mpy_arch"] not in (want, "none"):
            r.problem("chip.mpy_arch", f'{r["chip.name"]} runs {want} code, not {r["chip.mpy_arch"]}')


TRANSPARENT_PORT = 1081  # firmware config.py's transparent.port: Linux boards with a radio listen there too
STATUS_PORT = 8081  # render._public's status listener on a public relay


def _check_ports(r):
    """Every TCP listener of one relay on its own port: two on one port stop the relay at start ("Address
    already in use"). The DNS responder is UDP, but a port given twice is a slip either way."""
    public = r["relay.public"]
    listeners = [(key, r[key], key) for key in ("relay.socks_port", "relay.http_port", "relay.portal_port",
                                                "relay.dns_port", "relay.mtproto_port")]
    if r["wifi.interface"] and r["runtime"] != "micropython":
        listeners.append((None, TRANSPARENT_PORT, "the transparent listener's (fixed, for the Wi-Fi's redirect)"))
    if public:
        listeners.append((None, STATUS_PORT, "the status listener's (fixed, on loopback)"))
    ports = {}
    for key, p, label in listeners:
        if not p or (public and key in ("relay.socks_port", "relay.http_port", "relay.portal_port",
                                        "relay.dns_port")):
            continue  # off (0), or a public relay's SOCKS/HTTP that only the site file turns on
        if p in ports:
            first_key, first = ports[p]
            r.problem(key or first_key, f"port {p} is already {label if key is None else first}")
        else:
            ports[p] = (key, label)


def _check_uplink_ports(r):
    for kind in r["uplink.ports"]:
        if kind not in r["uplink.kinds"]:
            r.problem("uplink.ports", f'"{kind}" is not in uplink.kinds {r["uplink.kinds"]}')


def _check_flash(r):
    if r["runtime"] != "micropython":
        return
    size, off, fs, bs = r["flash.size"], r["flash.fs_offset"], r["flash.fs_size"], r["flash.block_size"]
    for key in ("flash.size", "flash.fs_offset", "flash.fs_size"):
        if not r[key]:
            r.problem(key, "a MicroPython board needs it: the filesystem image is built to this geometry")
    if not (size and off and fs):
        return
    if bs & (bs - 1) or bs < 128:
        r.problem("flash.block_size", f"{bs} is not a power of two >= 128")
        return
    if off % bs:
        r.problem("flash.fs_offset", f"0x{off:x} is not a multiple of the block size {bs}")
    if fs % bs:
        r.problem("flash.fs_size", f"0x{fs:x} is not a whole number of {bs}-byte blocks")
    if off + fs > size:
        r.problem("flash.fs_size", f"the filesystem ends at 0x{off + fs:x}, past the end of the {size >> 20} MiB flash (0x{size:x})")
    app_end = r["flash.app_offset"] + r["flash.app_size"]
    if r["flash.app_size"] and app_end > off:
        r.problem("flash.fs_offset", f"0x{off:x} is inside the application partition (ends at 0x{app_end:x})")
    if bs % r["flash.prog_size"] or bs % r["flash.read_size"]:
        r.problem("flash.prog_size", "prog_size and read_size must divide the block size")


def _check_uf2(r):
    if r["runtime"] == "micropython" and r["flash.uf2_base"] and not r["flash.uf2_family"]:
        r.problem("flash.uf2_family", "a UF2 needs the chip's family id (RP2040: 0xe48bff56)")


def _check_wifi_address(r):
    try:
        net = ipaddress.IPv4Network(r["wifi.subnet"])
        addr = ipaddress.IPv4Address(r["wifi.address"])
        if addr not in net or addr in (net.network_address, net.broadcast_address):
            r.problem("wifi.address", f'{addr} is not a host address in wifi.subnet {net}')
    except ValueError:
        pass


def _check_wifi(r):
    label, allowed = channels_for(r["wifi.country"], r["wifi.bands"])
    ch = r["wifi.channel"]
    if ch not in allowed:
        if ch >= 32 and "5" not in r["wifi.bands"]:
            msg = f"{ch} is a 5 GHz channel; this board's radio has only {', '.join(r['wifi.bands'])} GHz ({label})"
        else:
            msg = f'{ch} is not allowed for country "{r["wifi.country"]}" ({label})'
        r.problem("wifi.channel", msg)


_UPSTREAM = re.compile(r"(socks5h?|http)://([^/:@\s]+(:[^/@\s]*)?@)?(\[[0-9a-fA-F:]+\]|[A-Za-z0-9.-]+):(\d{1,5})/?")


def _check_public(r):
    """A relay facing the internet: a mask site for probes, no open proxy."""
    if not r["relay.public"]:
        return
    if not r["mtproto.domain"]:
        r.problem("mtproto.domain", "a public relay needs the domain fake-TLS imitates (a domain of yours whose "
                  "A record points at this machine)")
    if not r["mtproto.mask"]:
        r.problem("mtproto.mask", "a public relay needs a mask site: HOST[:PORT] of a web server with "
                  "mtproto.domain's certificate (e.g. nginx on 127.0.0.1:8443)")
    if r["mtproto.mask"] and masks_itself(r["mtproto.mask"], r["relay.mtproto_port"], r["relay.listen"],
                                          (r["mtproto.domain"], r["mtproto.server"])):
        r.problem("mtproto.mask", f'{r["mtproto.mask"]} is this relay\'s own MTProto port: every probe would be '
                  "passed back to the relay itself; give the web server's own port (e.g. nginx on 127.0.0.1:8443)")
    for key in ("public.socks", "public.http"):
        if r[key] and not (r["proxy.user"] and r["proxy.password"]):
            r.problem(key, "an open proxy on the internet is abused within hours: set proxy.user and proxy.password")
    for s in r["mtproto.secrets"]:
        if s.startswith("ee") and r["mtproto.domain"] and bytes.fromhex(s[34:]).decode(errors="replace") != r["mtproto.domain"]:
            r.problem("mtproto.secrets", f"{s[:8]}... imitates {bytes.fromhex(s[34:]).decode(errors='replace')}, "
                      f"not mtproto.domain {r['mtproto.domain']}", warning=True)


def masks_itself(mask, port, listen="", own_names=()):
    """Whether the mask site HOST[:PORT] is the relay's own MTProto listener on port: a loopback or own address
    (or a name of this machine) on that very port."""
    from relayctl import hostport
    from relayctl.errors import CliError

    try:
        host, mport = hostport.split(mask, 443, "mtproto.mask")
    except CliError:
        return False
    if mport != port:
        return False
    host = host.lower().rstrip(".")
    if host in ("localhost", "0.0.0.0", "::") or host in [n.lower().rstrip(".") for n in own_names if n]:
        return True
    if listen and listen not in ("0.0.0.0", "::") and host == listen:
        return True
    try:
        a = ipaddress.ip_address(host)
    except ValueError:
        return False
    return a.is_loopback or a.is_unspecified


# The example values of `relayctl site init` and mesh.md: left in a site file, they reach every printed card
# (and the mesh's SAE password), and anyone who read the docs knows them.
PLACEHOLDERS = {
    "wifi.passphrase": ("change me please",),
    "proxy.password": ("choose a long one",),
    "mesh.key": ("a long shared secret, 16-63 characters", "16-63 characters, the same on every relay"),
}


def _check_placeholders(r):
    for key, examples in PLACEHOLDERS.items():
        v = r.values.get(key)
        if r.is_set(key) and isinstance(v, str) and v.strip().lower() in examples:
            r.problem(key, f'"{v}" is the example from the docs, known to anyone who read them: choose your own '
                      "(e.g. `openssl rand -base64 18`)")


def _check_passphrase(r):
    if r["wifi.security"] == "wpa2" and not r["wifi.passphrase"]:
        r.problem("wifi.passphrase", 'security is "wpa2" but no passphrase is set (8-63 characters)')
    if r["wifi.security"] == "open" and r["wifi.passphrase"]:
        r.problem("wifi.passphrase", 'ignored: security is "open"; set security = "wpa2" to use it', warning=True)


def _check_uplink(r):
    kind = r["uplink.kind"]  # "": chosen later (relayctl uplink); nothing to check yet
    if kind and kind not in r["uplink.kinds"]:
        near = ", ".join(r["uplink.kinds"])
        r.problem("uplink.kind", f'{r.profile.name} cannot use "{kind}"; it offers {near}')
    elif kind == "cellular" and not r["uplink.apn"]:
        r.problem("uplink.apn", "a cellular uplink needs the APN of the SIM's home operator")
    elif kind == "wifi-sta" and not r["uplink.ssid"]:
        r.problem("uplink.ssid", "a wifi-sta uplink needs the network to join")
    elif kind == "upstream" and r["uplink.upstream"] and not _UPSTREAM.fullmatch(r["uplink.upstream"]):
        r.problem("uplink.upstream", f'expected socks5://host:port or http://host:port, got "{r["uplink.upstream"]}"')


def _check_proxy(r):
    if bool(r["proxy.user"]) != bool(r["proxy.password"]):
        r.problem("proxy.password" if r["proxy.user"] else "proxy.user", "set both proxy.user and proxy.password, or neither")
    for key in ("proxy.user", "proxy.password"):
        if len(r[key].encode()) > 255:
            r.problem(key, "at most 255 bytes (RFC 1929)")


def _check_capacity(r):
    cap = r["capacity.wifi_clients"]
    if r["wifi.max_clients"] and cap and r["wifi.max_clients"] > cap:
        r.problem("wifi.max_clients", f"{r['wifi.max_clients']} is more than {r.name} can associate (about {cap})",
                  warning=True)
    from relayctl.fleet import site as fleet_site

    fleet_site.check(r)
    from relayctl.boards.capacity import estimate

    est = estimate(r)
    if r["expect.phones"] > est.phones:
        r.problem("expect.phones", f"{r['expect.phones']} phones at once is more than {r.name} can carry: {est.sentence()}",
                  warning=True)


_BOARD_CHECKS = (_check_flash, _check_uf2, _check_arch, _check_ports, _check_wifi_address, _check_wifi,
                 _check_uplink_ports)
def _check_admin_side(r):
    from relayctl.boards.admin_side import check

    for message, warning in check(r):
        r.problem("admin.side", message, warning=warning)


_SITE_CHECKS = (_check_placeholders, _check_passphrase, _check_uplink, _check_proxy, _check_public, _check_capacity,
                _check_admin_side)
