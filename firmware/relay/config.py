"""config.json: the device's only settings file, its defaults and its checks.

load(text, name) -> Config, or raises ConfigError listing every problem, one
line each: `config.json: socks.port: expected 1..65535, got 70000`.
The host tools write this file from a board profile and a site file; the
device never parses TOML. Every key, its default and its meaning is in
SCHEMA below, which README.md documents.
"""

import json

from relay.addr import parse_cidr, parse_ip, split_host_port


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
    ("status.host", "127.0.0.1", _host, "status listen address; keep it off the Wi-Fi side"),
    ("status.port", 8081, _port, "status listen port"),
    ("limits.tunnels", 512, _int_range(1, 1000000), "tunnels open at once, all clients together"),
    ("limits.tunnels_per_client", 64, _int_range(1, 1000000), "tunnels open at once from one client address"),
    ("limits.sessions", 1024, _int_range(1, 1000000), "connections at once, handshakes included; more are closed at accept"),
    ("limits.udp_associations", 32, _int_range(0, 100000), "UDP associations at once"),
    ("limits.handshake_timeout", 10, _seconds, "seconds a client has to finish its request"),
    ("limits.connect_timeout", 10, _seconds, "seconds to reach a destination"),
    ("limits.idle_timeout", 900, _seconds, "seconds a tunnel may stay silent both ways"),
    ("limits.buffer", 65536, _int_range(512, 1 << 22), "bytes read at once; one buffer on MicroPython, per read on CPython"),
    ("limits.backlog", 128, _int_range(1, 65535), "listen backlog"),
    ("limits.http_head", 8192, _int_range(512, 65536), "largest HTTP request or response head"),
    ("guard.allow", [], _list_of(_cidr), "exceptions to the destination guard"),
    ("guard.deny", [], _list_of(_cidr), "more destinations to refuse"),
    ("guard.management", ["192.168.100.1", "192.168.1.1", "192.168.8.1", "192.168.0.1"], _list_of(_cidr),
     "admin pages of satellite terminals and modems (always refused)"),
    ("guard.own", [], _list_of(_cidr), "the device's own addresses"),
    ("dns.servers", [], _list_of(_server), "resolvers (IP[:PORT]); empty: the system's (CPython) or /etc/resolv.conf"),
    ("dns.hosts", {}, _hosts, "fixed names: {name: [addresses]}"),
    ("dns.prefer", "ipv4", _one_of("ipv4", "ipv6"), "which family to try first when a name has both"),
    ("dns.timeout", 3, _seconds, "seconds to wait for a resolver"),
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
        if not values["socks.enabled"] and not values["http.enabled"]:
            problems.append(name + ": socks.enabled, http.enabled: both are off; nothing would listen")
        if (values["socks.enabled"] and values["http.enabled"]
                and values["socks.port"] == values["http.port"] and values["socks.host"] == values["http.host"]):
            values["http.enabled"] = False  # one port serves both protocols anyway
    if problems:
        raise ConfigError(problems)
    return Config(values)
