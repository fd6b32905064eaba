"""config.json: the device's only settings file, its defaults and its checks.

load(text, name) -> Config, or raises ConfigError listing every problem, one
line each: `config.json: socks.port: expected 1..65535, got 70000`.
The host tools write this file from a board profile and a site file; the
device never parses TOML. Every key, its default and its meaning is in
SCHEMA below, which README.md documents.
"""

import json

from relay.proto.addr import parse_cidr, parse_ip, split_host_port, unmap_v4


class ConfigError(Exception):
    def __init__(self, problems):
        super().__init__("\n".join(problems))
        self.problems = problems


# Validators: value -> normalised value, or raise ValueError(message).
def _port(v):
    if type(v) is not int or not 0 < v < 65536:
        raise ValueError("expected 1..65535, got " + json.dumps(v))
    return v


def _int_range(lo, hi):
    def check(v):
        if type(v) is not int or not lo <= v <= hi:
            raise ValueError("expected an integer %d..%d, got %s" % (lo, hi, json.dumps(v)))
        return v

    return check


def _seconds(v):
    if type(v) not in (int, float) or not 0 < v <= 86400 * 7:
        raise ValueError("expected seconds > 0, got " + json.dumps(v))
    return v


def _bool(v):
    if type(v) is not bool:
        hint = " (write true or false without quotes)" if v in ("true", "false") else ""
        raise ValueError("expected true or false, got " + json.dumps(v) + hint)
    return v


def _text(v):
    if type(v) is not str or not v:
        raise ValueError("expected text, got " + json.dumps(v))
    return v


def _one_of(*choices):
    def check(v):
        if v not in choices:
            raise ValueError("expected one of " + ", ".join(choices) + ", got " + json.dumps(v))
        return v

    return check


def _host(v):
    if type(v) is not str or parse_ip(v) is None:
        raise ValueError("expected an IP address to listen on, got " + json.dumps(v))
    return v


def _list_of(item):
    def check(v):
        if type(v) is not list:
            raise ValueError("expected a list, got " + json.dumps(v))
        return [item(x) for x in v]

    return check


def _cidr(v):
    if type(v) is not str or parse_cidr(v) is None:
        raise ValueError("expected an address or CIDR like 10.0.0.0/8, got " + json.dumps(v))
    return v


def _server(v):
    try:
        host, port = split_host_port(v, 53)
    except (ValueError, AttributeError, TypeError):
        raise ValueError("expected IP[:PORT] of a DNS server, got " + json.dumps(v))
    ip = parse_ip(host)
    if ip is None:
        raise ValueError("expected an IP address of a DNS server, got " + json.dumps(v))
    return (ip, port)


def _user(v):
    if type(v) is not dict or set(v) != {"user", "pass"}:
        raise ValueError('expected {"user": ..., "pass": ...}, got ' + json.dumps(v))
    for k in ("user", "pass"):
        b = v[k].encode() if type(v[k]) is str else None
        if b is None or not 0 < len(b) < 256:
            raise ValueError("%s: expected 1..255 bytes of text (RFC 1929)" % k)
    return (v["user"].encode(), v["pass"].encode())


def _passphrase(v):
    if type(v) is not str or (v and not 8 <= len(v) <= 63) or [c for c in v if not 32 <= ord(c) <= 126]:
        raise ValueError("expected \"\" or 8..63 printable ASCII characters (WPA2)")
    return v


def _hosts(v):
    if type(v) is not dict:
        raise ValueError("expected {name: [addresses]}, got " + json.dumps(v))
    out = {}
    for name in v:
        ips = v[name] if type(v[name]) is list else [v[name]]
        parsed = [parse_ip(x) if type(x) is str else None for x in ips]
        if None in parsed or not parsed:
            raise ValueError("%s: expected IP addresses, got %s" % (name, json.dumps(v[name])))
        out[name.lower().rstrip(".")] = parsed
    return out


def _ip_or_empty(v):
    if v == "":
        return v
    if type(v) is not str or parse_ip(v) is None:
        raise ValueError("expected an IP address, or \"\" to use the listen address, got " + json.dumps(v))
    return v


def _any_text(v):
    if type(v) is not str:
        raise ValueError("expected text (\"\" for none), got " + json.dumps(v))
    return v


def _domain(v):
    if type(v) is not str or not v.strip(".") or " " in v or len(v) > 253:
        raise ValueError("expected a domain name like telegram.org, got " + json.dumps(v))
    return v.lower().strip(".")


def _mt_secret(v):
    from relay.proto.mtproto import parse_secret  # only when secrets are listed: the module is not small

    parse_secret(v, "domain.check")  # raises ValueError; the real tls_domain is checked in load()
    return v.strip().lower()


def _mt_domain(v):
    if type(v) is not str or " " in v or len(v) > 253:
        raise ValueError("expected a domain name like www.example.com, or empty, got " + json.dumps(v))
    return v.lower()


def _mask(v):
    if v == "":
        return v
    try:
        split_host_port(v, 443)
    except (ValueError, AttributeError, TypeError):
        raise ValueError('expected HOST[:PORT] of the site shown to probes, or "", got ' + json.dumps(v))
    return v


def _dcs(v):
    if type(v) is not dict or not v:
        raise ValueError('expected {"DC id": ["IP:PORT", ...]}, got ' + json.dumps(v))
    out = {}
    for k in v:
        addrs = v[k] if type(v[k]) is list else [v[k]]
        if not k.isdigit() or not addrs:
            raise ValueError("%s: expected a DC number and a list of IP:PORT" % k)
        got = []
        for a in addrs:
            try:
                host, port = split_host_port(a, 443)
                ip = parse_ip(host)
            except (ValueError, AttributeError, TypeError):
                ip = None
            if ip is None:
                raise ValueError("%s: expected IP[:PORT] or [IPv6][:PORT], got %s" % (k, json.dumps(a)))
            got.append((ip, port))
        out[int(k)] = got
    return out


# Telegram's published production data centres (IPv4 first, then IPv6), port 443.
MTPROTO_DCS = {
    "1": ["149.154.175.50:443", "[2001:b28:f23d:f001::a]:443"],
    "2": ["149.154.167.51:443", "[2001:67c:4e8:f002::a]:443"],
    "3": ["149.154.175.100:443", "[2001:b28:f23d:f003::a]:443"],
    "4": ["149.154.167.91:443", "[2001:67c:4e8:f004::a]:443"],
    "5": ["91.108.56.130:443", "[2001:b28:f23f:f005::a]:443"],
}


def _retired(v):
    if type(v) is not dict or "secret" not in v or "until" not in v or [k for k in v if k not in ("secret", "until", "port")]:
        raise ValueError('expected {"secret": "...", "until": UNIX_TIME[, "port": PORT]}, got ' + json.dumps(v))
    _mt_secret(v["secret"])
    if type(v["until"]) is not int or v["until"] < 0:
        raise ValueError("until: expected Unix seconds, got " + json.dumps(v["until"]))
    if "port" in v:
        _port(v["port"])
    return v


def _ntp_server(v):
    try:
        host, port = split_host_port(v, 123)
    except (ValueError, AttributeError, TypeError):
        raise ValueError("expected HOST[:PORT] of an NTP server, got " + json.dumps(v))
    ip = parse_ip(host)
    if ip is None and (not host or " " in host or "." not in host):
        raise ValueError("expected an IP address or a domain name of an NTP server, got " + json.dumps(v))
    return (ip if ip is not None else host.lower(), port)


def _proxy_url(v):
    from relay.proto.proxyurl import parse_proxy_url

    if type(v) is not str:
        raise ValueError("expected socks5://HOST:PORT or http://HOST:PORT, got " + json.dumps(v))
    parse_proxy_url(v)
    return v


def _fraction(v):
    if type(v) not in (int, float) or not 0 < v <= 1:
        raise ValueError("expected a fraction 0..1, got " + json.dumps(v))
    return v


def _path_or_empty(v):
    if type(v) is not str:
        raise ValueError("expected a file path, got " + json.dumps(v))
    return v


def _probe(v):
    if v == "":
        return v
    try:
        split_host_port(v, 80)
    except (ValueError, AttributeError, TypeError):
        raise ValueError("expected HOST:PORT of a web server (or \"\"), got " + json.dumps(v))
    return v


def _cidr_or_suffix(v):
    if type(v) is not str or not v or " " in v:
        raise ValueError("expected a CIDR or a domain suffix, got " + json.dumps(v))
    return v


def _ip_or_none(v):
    if v == "":
        return v
    if type(v) is not str or parse_ip(v) is None:
        raise ValueError("expected an IP address, or \"\" for none, got " + json.dumps(v))
    return v


def _cidr_or_none(v):
    return v if v == "" else _cidr(v)


def _mesh_uplink(v):
    if v == "gateway":
        return v
    if type(v) is not str or parse_cidr(v) is None:
        raise ValueError("expected a CIDR like 10.77.1.0/24, an address, or \"gateway\", got " + json.dumps(v))
    return v


def _babeld(v):
    if v == "":
        return v
    try:
        host, _ = split_host_port(v)
    except (ValueError, AttributeError, TypeError):
        host = None
    if host is None or parse_ip(host) is None:
        raise ValueError("expected [::1]:PORT of babeld's local-port, or \"\", got " + json.dumps(v))
    return v


def _names(v):
    if type(v) is not dict:
        raise ValueError("expected {address: name}, got " + json.dumps(v))
    for k in v:
        if parse_ip(k) is None or type(v[k]) is not str:
            raise ValueError("%s: expected an address and a name" % json.dumps(k))
    return v


def _target(v):
    try:
        host, port = split_host_port(v)
    except (ValueError, AttributeError, TypeError):
        raise ValueError("expected IP:PORT, got " + json.dumps(v))
    if parse_ip(host) is None:
        raise ValueError("expected an IP address, got " + json.dumps(v))
    return v


def _topic_word(v):
    if type(v) is not str or not v or [c for c in v if c in "+#/\0"] or len(v.encode()) > 64:
        raise ValueError("expected 1..64 bytes without / + # (an MQTT topic level), got " + json.dumps(v))
    return v


def _topic_prefix(v):
    if type(v) is not str or not v or [c for c in v if c in "+#\0"] or v.startswith("/") or v.endswith("/"):
        raise ValueError("expected a topic prefix like relay or city/relay (no + #, no / at either end), got "
                         + json.dumps(v))
    return v


def _hex_key(v):
    if v == "":
        return v
    if type(v) is not str or len(v) != 64 or [c for c in v.lower() if c not in "0123456789abcdef"]:
        raise ValueError("expected 64 hex digits (relayctl build derives it from the fleet key), or \"\"")
    return v.lower()


# (dotted key, default, validator, meaning). Order is the order of README's table.
SCHEMA = (
    ("socks.enabled", True, _bool, "serve SOCKS5 and SOCKS4a"),
    ("socks.host", "127.0.0.1", _host, "SOCKS listen address"),
    ("socks.port", 1080, _port, "SOCKS listen port (also answers HTTP proxy requests)"),
    ("socks.auth", "none", _one_of("none", "password"), "none, or RFC 1929 username/password"),
    ("socks.users", [], _list_of(_user), 'accounts for auth=password: [{"user": "...", "pass": "..."}]'),
    ("socks.udp", True, _bool, "allow UDP ASSOCIATE (Telegram calls)"),
    ("socks.udp_port_base", 40000, _port, "first UDP port tried for an association"),
    ("http.enabled", True, _bool, "serve the HTTP proxy (CONNECT and absolute-URI forwarding)"),
    ("http.host", "127.0.0.1", _host, "HTTP proxy listen address"),
    ("http.port", 8080, _port, "HTTP proxy listen port (also answers SOCKS)"),
    ("status.enabled", False, _bool, "serve GET /api/status (counters, heap) on status.host:status.port"),
    ("status.host", "127.0.0.1", _host,
     "status listen address (the admin page's too); on 0.0.0.0 it still refuses the Wi-Fi side (wifi.subnet, wifi.address)"),
    ("status.port", 8081, _port, "status listen port"),
    ("status.console_interval", 0, _int_range(0, 86400),
     "seconds between `relay status {...}` lines on the console (serial on a board; `relayctl status --port`); 0: off"),
    ("portal.enabled", False, _bool, "serve the onboarding portal (HTTP) on portal.host:portal.port"),
    ("portal.host", "127.0.0.1", _host, "portal listen address: the Wi-Fi side's"),
    ("portal.port", 80, _port, "portal listen port; phones' connectivity checks come to 80"),
    ("portal.address", "", _ip_or_empty, "the relay's address as phones see it (DNS answers, links); \"\": portal.host"),
    ("portal.names", ["relay.lan", "relay", "portal.relay"], _list_of(_domain),
     "names that lead to the portal; the first is the short address shown to people"),
    ("portal.languages", ["kk", "ru", "en"], _list_of(_one_of("kk", "ru", "en")),
     "page languages; the first is used when the phone asks for none of them"),
    ("portal.admin_password", "", _any_text,
     "password of the /admin page (HTTP Basic, any user name), served on the status listener (loopback, the wired or "
     "uplink side); wrong guesses are braked per address and per side; \"\": page off"),
    ("portal.admin_on_wifi", False, _bool,
     "also serve /admin to the Wi-Fi (the portal): the password then crosses the open air in the clear (HTTP, no TLS) "
     "for anyone nearby to read"),
    ("portal.qr_svg", "", _any_text, "file holding an SVG QR code of the Telegram link, shown on the page"),
    ("portal.qr_mtproto_svg", "", _any_text,
     "file holding an SVG QR code of the tg://proxy (MTProto) link, shown on the page when mtproto is on"),
    ("io.backend", "auto", _one_of("auto", "portable"),
     "auto: the CPython fast path (loop callbacks, splice) where the runtime has one; portable: the task pumps MicroPython runs"),
    ("io.uvloop", True, _bool, "with the fast path, run on uvloop when it is installed (CPython)"),
    ("limits.tunnels", 512, _int_range(1, 1000000), "tunnels open at once, all clients together"),
    ("limits.tunnels_per_client", 128, _int_range(1, 1000000), "tunnels open at once from one client address (a few phones behind one NAT: Telegram opens up to ~20 each)"),
    ("limits.sessions", 1024, _int_range(1, 1000000), "connections at once, handshakes included; more are closed at accept"),
    ("limits.udp_associations", 32, _int_range(0, 100000), "UDP associations at once"),
    ("limits.handshake_timeout", 10, _seconds, "seconds a client has to finish its request"),
    ("limits.connect_timeout", 10, _seconds, "seconds to reach a destination"),
    ("limits.idle_timeout", 900, _seconds, "seconds a tunnel may stay silent both ways"),
    ("limits.buffer", 65536, _int_range(512, 1 << 22), "bytes read at once; one buffer on MicroPython, per read on CPython"),
    ("limits.udp_datagram", 65507, _int_range(512, 65507),
     "largest UDP datagram relayed whole (bytes); bigger ones are dropped and counted, never cut; MicroPython "
     "allocates it per datagram and takes at most 1/32 of its heap"),
    ("limits.backlog", 128, _int_range(1, 65535), "listen backlog"),
    ("limits.address_burst", 0, _int_range(0, 1000000),
     "MTProto: new connections one client address may open at once (phones behind one NAT share it); "
     "0: no limit (public mode: 128)"),
    ("limits.address_rate", 8, _int_range(1, 1000000), "MTProto: new connections a second one address may open after its burst"),
    ("limits.http_head", 8192, _int_range(512, 65536), "largest HTTP request or response head"),
    ("guard.allow", [], _list_of(_cidr), "exceptions to the destination guard"),
    ("guard.deny", [], _list_of(_cidr), "more destinations to refuse"),
    ("guard.management", ["192.168.100.1", "192.168.1.1", "192.168.8.1", "192.168.0.1"], _list_of(_cidr),
     "admin pages of satellite terminals and modems (always refused)"),
    ("guard.own", [], _list_of(_cidr), "more of the device's own addresses (those of its interfaces are learned)"),
    ("dns.servers", [], _list_of(_server), "resolvers (IP[:PORT]); empty: the system's (CPython) or /etc/resolv.conf"),
    ("dns.hosts", {}, _hosts, "fixed names: {name: [addresses]}"),
    ("dns.prefer", "ipv4", _one_of("ipv4", "ipv6"), "which family to try first when a name has both"),
    ("dns.timeout", 3, _seconds, "seconds to wait for a resolver"),
    ("dns.listen_enabled", False, _bool, "answer DNS for Wi-Fi clients on dns.listen_host:dns.listen_port (UDP)"),
    ("dns.listen_host", "127.0.0.1", _host, "DNS listen address: the Wi-Fi side's"),
    ("dns.listen_port", 53, _port, "DNS listen port"),
    ("dns.answer_unknown", "nxdomain", _one_of("nxdomain", "portal"),
     "answer for every other name: NXDOMAIN, or the portal's address"),
    ("wifi.enabled", False, _bool, "bring up the access point (MicroPython boards; Linux boards use hostapd)"),
    ("wifi.ssid", "relay", _text, "network name phones see"),
    ("wifi.security", "open", _one_of("open", "wpa2"), "open, or wpa2 with wifi.passphrase"),
    ("wifi.passphrase", "", _passphrase, "WPA2 passphrase"),
    ("wifi.country", "00", _text, "regulatory country code (00: world)"),
    ("wifi.channel", 6, _int_range(1, 196), "radio channel"),
    ("wifi.max_clients", 4, _int_range(0, 1024), "phones associated at once (0: the radio's own limit)"),
    ("wifi.address", "192.168.4.1", _host, "the board's address on its Wi-Fi"),
    ("wifi.subnet", "192.168.4.0/24", _cidr, "the Wi-Fi subnet"),
    ("wifi.side", False, _bool,
     "the device has a phones' side at wifi.address in wifi.subnet without wifi.enabled (Linux: hostapd or LAN mode; "
     "relayctl sets it): the status listener refuses requests from it, and /admin unless portal.admin_on_wifi"),
    ("mtproto.enabled", False, _bool, "serve Telegram's MTProto proxy (obfuscated2; dd and ee secrets)"),
    ("mtproto.host", "127.0.0.1", _host, "MTProto listen address"),
    ("mtproto.port", 8443, _port, "MTProto listen port"),
    ("mtproto.secrets", [], _list_of(_mt_secret),
     "secrets, each with its own counters: 32 hex (plain), dd+32 hex (padded), ee+32 hex+hex(domain) (fake-TLS)"),
    ("mtproto.dcs", MTPROTO_DCS, _dcs, 'Telegram data centres: {"2": ["IP:PORT", ...]}; replaces the published list'),
    ("mtproto.tls_domain", "", _mt_domain, "domain for ee secrets written without one (the site fake-TLS imitates)"),
    ("mtproto.mask", "", _mask,
     'HOST[:PORT] of the site every failed handshake is passed to, byte for byte (a web server for tls_domain); '
     '"": answer as a TLS server that serves no such name (fine on a private Wi-Fi, a tell on the internet)'),
    ("mtproto.time_window", 1200, _int_range(10, 86400 * 30), "seconds a fake-TLS ClientHello's clock may differ from ours"),
    ("mtproto.clock_unknown", "accept", _one_of("accept", "refuse"),
     "with no clock known: accept ee clients stamped from mtproto.clock_hint - time_window on (replays are still "
     "refused), or refuse them"),
    ("mtproto.replay_cache", 4096, _int_range(1, 10000000),
     "handshakes remembered to refuse replays: at least the last this many (two Bloom filters, 5 bytes each)"),
    ("mtproto.replay_file", "", _path_or_empty,
     "where remembered handshakes survive a restart (this file and FILE.journal); \"\": in memory only"),
    ("mtproto.retired", [], _list_of(_retired),
     'old secrets still accepted until a time: [{"secret": "...", "until": UNIX, "port": old port}] '
     "(relayctl mtproto rotate writes them)"),
    ("mtproto.server", "", _any_text,
     "the address or name phones reach MTProto at, as tg://proxy links print it (relayctl); \"\": mtproto.host"),
    ("mtproto.public", False, _bool,
     "public mode: the relay faces the internet; a mask site is required, SOCKS and HTTP only with a password"),
    ("mtproto.clock_hint", 0, _int_range(0, 4102444800),
     "Unix time the host wrote when it built or flashed the image: a clock reading before it counts as unknown"),
    ("ntp.servers", [], _list_of(_ntp_server),
     "SNTP servers (IP or name[:PORT]) that set the clock fake-TLS needs, e.g. [\"pool.ntp.org\"]; empty: none"),
    ("ntp.interval", 3600, _seconds, "seconds between SNTP queries once one answered"),
    ("ntp.retry", 10, _seconds, "seconds before asking again after no server answered (doubles up to ntp.interval)"),
    ("transparent.enabled", False, _bool,
     "zero-tap (Linux boards, CPython): relay TCP that the firewall redirected here to its original destination"),
    ("transparent.host", "127.0.0.1", _host, "transparent listen address: the Wi-Fi side's (an IPv6 address: IPv6 only)"),
    ("transparent.port", 1081, _port, "transparent listen port; the rendered nftables rules redirect to it"),
    ("upstream.proxies", [], _list_of(_proxy_url),
     "proxies to send traffic through, in order of preference: socks5://[user:pass@]IP:PORT or http://IP:PORT; "
     "socks5h:// sends names to a proxy on this device or its LAN too (an engine, another relay), which otherwise "
     "gets addresses the relay resolved and the guard allowed; such a proxy resolves names itself, so it must guard "
     "its own side (engines' far ends and relays do; a plain local proxy would let a name that resolves to this "
     "device reach it)"),
    ("upstream.direct", [], _list_of(_cidr_or_suffix), "destinations (CIDRs, domain suffixes) that skip the upstreams"),
    ("upstream.check_interval", 5, _seconds, "seconds between upstream health checks"),
    ("upstream.standby_interval", 300, _seconds,
     "with upstream.probe: seconds between probes of a path that is not the current one (each probe crosses "
     "the uplink); the current path is probed every check_interval, all paths when none works"),
    ("upstream.names", [], _list_of(_any_text),
     "names of upstream.proxies in the same order (an uplink engine's name), shown in status; missing: upstreamN"),
    ("upstream.probe", "", _probe,
     "HOST:PORT of a web server abroad that each health check asks through every upstream (HTTP GET): the path "
     "finder orders them by which answer and how fast, and ends tunnels on a path that stops; \"\": greeting only"),
    ("uplink.monitor", False, _bool, "probe the uplink and refuse new tunnels at once while it is down"),
    ("uplink.targets", ["149.154.167.51:443", "149.154.175.50:443", "91.108.56.130:443"], _list_of(_target),
     "what the probes connect to (by default Telegram's data centres)"),
    ("uplink.interval", 15, _seconds, "seconds between probes while the uplink is up"),
    ("uplink.timeout", 5, _seconds, "seconds one probe may take"),
    ("uplink.down_after", 2, _int_range(1, 100), "failed probes in a row before the uplink counts as down"),
    ("uplink.kind", "none", _one_of("none", "wifi-sta", "ethernet", "cellular"),
     "link the board itself brings up (MicroPython boards; Linux boards set it up outside the relay and the fleet report names it)"),
    ("uplink.modem_status", "", _path_or_empty,
     "Linux boards: the file `relayctl uplink watch --status-file` keeps with the modem's signal (fleet reports); \"\": none"),
    ("uplink.ssid", "", _any_text, "wifi-sta: the network to join"),
    ("uplink.passphrase", "", _passphrase, "wifi-sta: its passphrase (\"\": open network)"),
    ("uplink.lan_phy", "lan8720", _one_of("lan8710", "lan8720", "ip101", "rtl8201", "dp83848", "ksz8041", "ksz8081"),
     "ethernet: the PHY chip (network.LAN phy_type)"),
    ("uplink.lan_addr", 0, _int_range(0, 31), "ethernet: the PHY's address on the MDIO bus"),
    ("uplink.lan_mdc", 23, _int_range(0, 48), "ethernet: MDC pin"),
    ("uplink.lan_mdio", 18, _int_range(0, 48), "ethernet: MDIO pin"),
    ("uplink.lan_power", -1, _int_range(-1, 48), "ethernet: pin that powers the PHY (-1: none)"),
    ("uplink.lan_clock", "default", _one_of("default", "gpio0-in", "gpio16-out", "gpio17-out"),
     "ethernet: where the 50 MHz RMII clock comes from"),
    ("uplink.uart", 1, _int_range(0, 2), "cellular: UART the modem is on"),
    ("uplink.tx", -1, _int_range(-1, 48), "cellular: TX pin (-1: the UART's default)"),
    ("uplink.rx", -1, _int_range(-1, 48), "cellular: RX pin (-1: the UART's default)"),
    ("uplink.baud", 115200, _int_range(1200, 4000000), "cellular: UART speed"),
    ("uplink.apn", "", _any_text, "cellular: access point name of the SIM's home operator"),
    ("uplink.pin", "", _any_text, "cellular: SIM PIN, sent once and only when the SIM asks"),
    ("uplink.user", "", _any_text, "cellular: APN user name (PPP PAP), when the operator wants one"),
    ("uplink.password", "", _any_text, "cellular: APN password"),
    ("uplink.roaming", False, _bool, "cellular: allow roaming (a foreign SIM across the border needs it)"),
    ("uplink.operator", "auto", _text, "cellular: MCC-MNC of the network to register on, or auto"),
    ("uplink.rat", "auto", _one_of("auto", "lte", "umts", "gsm"), "cellular: radio technology"),
    ("uplink.connect_timeout", 30, _seconds, "seconds a Wi-Fi join, DHCP or PPP negotiation may take"),
    ("uplink.register_timeout", 180, _seconds, "cellular: seconds to wait for the modem to register"),
    ("uplink.retry", 10, _seconds, "seconds before bringing a lost uplink up again (doubles up to 16x)"),
    ("mesh.enabled", False, _bool, "relays sharing uplinks over a babeld mesh (relayctl mesh render; see mesh.md)"),
    ("mesh.address", "", _ip_or_none, "this relay's own address in the mesh (a /32 or /128 babeld announces)"),
    ("mesh.network", "", _cidr_or_none, "where the relays' own addresses are: status lists the relays routed to in it"),
    ("mesh.service", "", _ip_or_none,
     "the address this relay serves its uplink to other relays on (inside mesh.uplinks); \"\": no uplink of its own, "
     "chain through the mesh"),
    ("mesh.uplinks", [], _list_of(_mesh_uplink),
     "where uplink relays are: CIDRs whose announced host routes are uplink relays, fixed addresses, or \"gateway\" "
     "(a satellite: the relay whose Wi-Fi it joined)"),
    ("mesh.listen", [], _list_of(_host), "more addresses the mesh listener answers on (a Wi-Fi side's, for satellites)"),
    ("mesh.port", 1082, _port, "the mesh listener's port: SOCKS5 carrying a phone identity from another relay"),
    ("mesh.key", "", _any_text, "the mesh's shared secret: relays prove the phone identities they pass along with it"),
    ("mesh.check_interval", 2, _seconds, "seconds between checks of the routes and the uplink relays"),
    ("mesh.hop_timeout", 2, _seconds, "seconds to reach another relay before trying the next uplink relay"),
    ("mesh.babeld", "", _babeld, "babeld's local interface, e.g. [::1]:33123, for the status page's links; \"\": none"),
    ("mesh.names", {}, _names, "names of relays by address, for status pages: {\"10.77.0.1\": \"roof\"}"),
    ("policy.preset", "open", _one_of("open", "telegram", "messengers"),
     "which services pass: open (all the guard allows), telegram, messengers (Telegram, Signal, WhatsApp)"),
    ("policy.allow_domains", [], _list_of(_text), "more domains (suffix match) to let through"),
    ("policy.deny_domains", [], _list_of(_text), "domains (suffix match) to refuse, whatever the preset says"),
    ("policy.allow_cidrs", [], _list_of(_cidr), "more address ranges to let through"),
    ("policy.deny_cidrs", [], _list_of(_cidr), "address ranges to refuse"),
    ("policy.ports", [], _list_of(_port), "destination ports allowed; empty: any"),
    ("share.rate_down", 0, _int_range(0, 1 << 40), "uplink download rate to share, bytes/s (1 Mbit/s = 125000); 0: no pacing"),
    ("share.rate_up", 0, _int_range(0, 1 << 40), "uplink upload rate to share, bytes/s; 0: no pacing"),
    ("share.interactive_bytes", 32768, _int_range(0, 1 << 30),
     "a tunnel moving at most this many bytes a second counts as interactive and goes ahead of bulk"),
    ("share.client_quota", 0, _int_range(0, 1 << 50), "bytes one phone may move per day; 0: no quota"),
    ("share.budget_day", 0, _int_range(0, 1 << 50), "bytes the uplink may carry per day (e.g. a SIM's daily package); 0: none"),
    ("share.budget_total", 0, _int_range(0, 1 << 50), "bytes the uplink may carry in total; 0: none"),
    ("share.slow_at", 0.8, _fraction, "fraction of the budget after which bulk is slowed"),
    ("share.small_at", 0.95, _fraction, "fraction of the budget after which only small messaging flows pass"),
    ("share.slow_factor", 0.25, _fraction, "share of the link bulk keeps once slowed"),
    ("share.slow_rate", 65536, _int_range(1024, 1 << 40), "bulk rate once slowed when no rate is configured, bytes/s"),
    ("share.state_file", "", _path_or_empty,
     "where the budget's totals survive a reboot (written then renamed, the copy before kept as .prev; nothing per "
     "phone); empty: kept in memory"),
    ("share.phones_file", "", _path_or_empty,
     "where per-phone quota counters survive a restart of the relay: only a file on a RAM disk (tmpfs, e.g. "
     "/run/relay/phones.json) is used, so a reboot clears it; empty: in memory only, a restart starts every phone's day afresh"),
    ("share.persist_interval", 300, _seconds, "seconds between counter writes (flash wear vs. what a power cut loses)"),
    ("fleet.enabled", False, _bool, "report counters to the fleet's MQTT broker (relayctl fleet): retained, with a last will"),
    ("fleet.broker", "", _any_text, "the broker's address or name"),
    ("fleet.port", 1883, _port, "the broker's port (8883 is usual with TLS)"),
    ("fleet.tls", False, _bool, "talk TLS to the broker, checking its certificate against fleet.ca_file"),
    ("fleet.ca_file", "", _path_or_empty, "CA certificate (PEM) the broker's certificate must chain to"),
    ("fleet.user", "", _any_text, "broker account (relayctl fleet broker-config makes one per relay); \"\": none"),
    ("fleet.password", "", _any_text, "its password"),
    ("fleet.prefix", "relay", _topic_prefix, "topic prefix: the relay writes PREFIX/NAME/status, PREFIX/NAME/report"),
    ("fleet.name", "", _any_text, "this relay's name in the fleet (a topic level: no / + #)"),
    ("fleet.place", "", _any_text, "a coarse place label volunteers recognise (a district, never an address)"),
    ("fleet.interval", 60, _seconds, "seconds between reports (a change of state is reported sooner)"),
    ("fleet.keepalive", 60, _int_range(2, 3600),
     "MQTT keepalive, seconds: the broker marks the relay offline after 1.5 of these without a word"),
    ("fleet.retry_max", 60, _seconds, "longest wait between reconnects (doubling from 1 s, with jitter)"),
    ("fleet.command_key", "", _hex_key,
     "key that signs this relay's commands (restart, report), derived from the fleet key; \"\": commands off"),
    ("log.level", "info", _one_of("quiet", "info", "debug"), "debug names clients and destinations; never use it in the field"),
)


class Config:
    """Attribute access by section: cfg.socks.port, cfg.limits.tunnels."""

    def __init__(self, values):
        self.values = values  # dotted key -> value
        for key in values:
            sect, name = key.split(".", 1)
            if not hasattr(self, sect):
                setattr(self, sect, _Section())
            setattr(getattr(self, sect), name, values[key])


class _Section:
    pass


def _edit_distance(a, b):
    prev = list(range(len(b) + 1))
    for i in range(1, len(a) + 1):
        cur = [i] + [0] * len(b)
        for j in range(1, len(b) + 1):
            cost = 0 if a[i - 1] == b[j - 1] else 1
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + cost)
        prev = cur
    return prev[-1]


def _suggest(word, choices):
    best, dist = None, 3
    for c in choices:
        d = _edit_distance(word, c)
        if d < dist:
            best, dist = c, d
    return ' (did you mean "%s"?)' % best if best else ""


def _masks_itself(v):
    """Whether mtproto.mask is this relay's own MTProto listener: a loopback or unspecified address, the listen
    address or mtproto.server, on mtproto.port or the port of a retired secret."""
    mask = v["mtproto.mask"]
    if not mask:
        return False
    host, port = split_host_port(mask, 443)
    if port != v["mtproto.port"] and port not in [r["port"] for r in v["mtproto.retired"] if "port" in r]:
        return False
    host = host.lower().rstrip(".")
    if host == "localhost" or host in [h.lower().rstrip(".") for h in (v["mtproto.host"], v["mtproto.server"]) if h]:
        return True
    ip = parse_ip(host)
    if ip is None:
        return False
    ip = unmap_v4(ip)
    return ip == bytes(len(ip)) or ip[0] == 127 and len(ip) == 4 or ip == bytes(15) + b"\x01"


def _public_problems(name, v):
    """A relay facing the internet: probes must meet a real site, and no proxy may be open to all."""
    out = []
    if not v["mtproto.enabled"]:
        out.append(name + ": mtproto.enabled: public mode serves MTProto; turn it on")
    elif not v["mtproto.mask"]:
        out.append(name + ": mtproto.mask: public mode needs a mask site (HOST[:PORT] of a web server for "
                   "mtproto.tls_domain): without one, probes meet a server no site behaves like")
    if (v["socks.enabled"] or v["http.enabled"]) and v["socks.auth"] != "password":
        out.append(name + ": socks.auth: public mode opens SOCKS or HTTP only with a password (an open proxy on the "
                   "internet is abused within hours); set socks.auth = \"password\" and socks.users, or turn them off")
    if v["portal.enabled"] or v["dns.listen_enabled"]:
        out.append(name + ": portal.enabled, dns.listen_enabled: public mode runs no portal and no DNS responder")
    return out


def load(text, name="config.json", overrides=None, extend=None):
    """Parse and check. overrides: dotted key -> value applied after the file;
    extend: dotted key -> list appended to the file's list (command-line --allow)."""
    problems = []
    raw = {}
    if text:
        try:
            raw = json.loads(text)
        except ValueError as e:
            raise ConfigError([name + ": not valid JSON: " + str(e)])
        if type(raw) is not dict:
            raise ConfigError([name + ": expected a JSON object at the top"])
    known = {}
    for key, default, check, _ in SCHEMA:
        known[key] = (default, check)
    sections = {}
    for key in known:
        sections.setdefault(key.split(".")[0], []).append(key.split(".", 1)[1])
    flat = {}
    for sect in raw:
        if sect not in sections:
            problems.append("%s: %s: unknown section%s" % (name, sect, _suggest(sect, sections)))
            continue
        if type(raw[sect]) is not dict:
            problems.append("%s: %s: expected an object, got %s" % (name, sect, json.dumps(raw[sect])))
            continue
        for k in raw[sect]:
            if k not in sections[sect]:
                problems.append("%s: %s.%s: unknown key%s" % (name, sect, k, _suggest(k, sections[sect])))
            else:
                flat[sect + "." + k] = raw[sect][k]
    if overrides:
        for k in overrides:
            flat[k] = overrides[k]
    if extend:
        for k in extend:
            if extend[k]:
                base = flat.get(k, known[k][0])
                flat[k] = (base if type(base) is list else [base]) + list(extend[k])
    values = {}
    for key, default, check, _ in SCHEMA:
        v = flat.get(key, default)
        try:
            values[key] = check(v)
        except ValueError as e:
            problems.append("%s: %s: %s" % (name, key, e.args[0] if e.args else "invalid"))
    if not problems:
        if values["socks.auth"] == "password" and not values["socks.users"]:
            problems.append(name + ": socks.users: auth is \"password\" but no users are listed")
        if not values["socks.enabled"] and not values["http.enabled"] and not values["mtproto.enabled"]:
            problems.append(name + ": socks.enabled, http.enabled, mtproto.enabled: all off; nothing would listen")
        if (values["socks.enabled"] and values["http.enabled"]
                and values["socks.port"] == values["http.port"] and values["socks.host"] == values["http.host"]):
            values["http.enabled"] = False  # one port serves both protocols anyway
        if values["mtproto.enabled"]:
            if not values["mtproto.secrets"]:
                problems.append(name + ": mtproto.secrets: MTProto is on but no secret is listed (relayctl mtproto secret)")
            for sec in values["mtproto.secrets"]:
                if sec.startswith("ee") and len(sec) == 34 and not values["mtproto.tls_domain"]:
                    problems.append(name + ": mtproto.secrets: %s has no domain; append its hex or set mtproto.tls_domain" % sec)
            if _masks_itself(values):
                problems.append(name + ": mtproto.mask: %s is this relay's own MTProto listener: every probe would be "
                                "handed back to the relay itself; name a web server elsewhere (or \"\")" % values["mtproto.mask"])
        if values["fleet.enabled"]:
            for k in ("fleet.broker", "fleet.name"):
                if not values[k]:
                    problems.append(name + ": %s: fleet reporting is on but %s is empty" % (k, k))
            if values["fleet.name"]:
                try:
                    _topic_word(values["fleet.name"])
                except ValueError as e:
                    problems.append(name + ": fleet.name: " + e.args[0])
            if values["fleet.tls"] and not values["fleet.ca_file"]:
                problems.append(name + ": fleet.ca_file: TLS is on: name the CA certificate the broker's chains to")
        if values["mtproto.public"]:
            problems += _public_problems(name, values)
        if values["mesh.enabled"]:
            k = values["mesh.key"]
            if len(k) < 16:
                problems.append(name + ": mesh.key: %s; every relay of the mesh gets the same key (relayctl mesh render)"
                                % ("missing" if not k else "too short: at least 16 characters"))
            if not values["mesh.service"] and not values["mesh.uplinks"]:
                problems.append(name + ": mesh.uplinks: a relay without an uplink (mesh.service \"\") needs to know "
                                "where uplink relays are")
        if not values["portal.languages"]:
            problems.append(name + ": portal.languages: list at least one of kk, ru, en")
        if (values["portal.enabled"] or values["dns.listen_enabled"]) and not values["portal.address"]:
            ip = parse_ip(values["portal.host"])
            if ip == bytes(len(ip)):
                problems.append(name + ": portal.address: needed when portal.host listens on every address")
            values["portal.address"] = values["portal.host"]
    if problems:
        raise ConfigError(problems)
    return Config(values)
