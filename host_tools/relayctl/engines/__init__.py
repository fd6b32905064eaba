"""Uplink engines: existing circumvention programs that the relay chains through a SOCKS5 port.

The site file lists them as [[uplink.engine]] tables; check_entries() validates them
(schema.py calls it for `uplink.engine`), Engine is one checked entry. The engine
programs are Debian/OpenWrt packages (KINDS names them); Relay writes no protocol of
its own. client.py renders what runs on the board, server.py the volunteer's far end,
supervise.py keeps the client programs running, paths.py finds which path passes.
"""

import difflib
import ipaddress
import os
import shutil

from relayctl.boards.validate import ProfileError


class Kind:
    def __init__(self, binaries, debian, openwrt, fields, required, server_binary="", server_debian="",
                 default_port=0):
        self.binaries = binaries  # every program the client side needs
        self.debian, self.openwrt = debian, openwrt  # package names, for the one-line "install ..." hint
        self.fields = ("kind", "name", "local_port") + fields
        self.required = required
        self.server_binary, self.server_debian = server_binary, server_debian
        self.default_port = default_port


_TOR_FIELDS = ("bridges", "socks_timeout")
KINDS = {
    "shadowsocks": Kind(("ss-local",), "shadowsocks-libev", "shadowsocks-libev-ss-local",
                        ("server", "port", "password", "method"), ("server",), "ss-server", "shadowsocks-libev", 8388),
    "trojan": Kind(("trojan",), "trojan", "trojan", ("server", "port", "password", "sni", "ca", "verify", "fallback",
                                                      "cert", "key"), ("server",), "trojan", "trojan", 443),
    "tor": Kind(("tor", "obfs4proxy"), "tor obfs4proxy", "tor obfs4proxy", _TOR_FIELDS, ("bridges",), "tor", "tor obfs4proxy"),
    "snowflake": Kind(("tor", "snowflake-client"), "tor snowflake-client", "tor snowflake-client", _TOR_FIELDS, ()),
    "iodine": Kind(("iodine",), "iodine", "iodine", ("server", "password", "domain", "nameserver", "tunnel", "socks"),
                   ("domain",), "iodined", "iodine microsocks", 53),
}
# AEAD ciphers only: the stream ciphers are detectable and forgeable (shadowsocks-libev still offers them).
AEAD = ("chacha20-ietf-poly1305", "xchacha20-ietf-poly1305", "aes-256-gcm", "aes-192-gcm", "aes-128-gcm")
FIRST_LOCAL_PORT = 1090  # the relay's own ports are 1080 (SOCKS), 1081 (transparent), 8080, 8081
SBIN = ("/usr/sbin", "/sbin", "/usr/local/sbin")  # iodine and tor live here; a user's PATH may lack them


def which(program):
    return shutil.which(program) or shutil.which(program, path=os.pathsep.join(SBIN))


class Engine:
    """One checked [[uplink.engine]] entry, defaults filled in."""

    def __init__(self, d):
        self.__dict__.update(d)
        self.spec = KINDS[self.kind]

    def socks_endpoint(self):
        """Where the relay sends SOCKS5: the engine's local port, or for iodine the SOCKS server
        reached over the DNS tunnel."""
        if self.kind == "iodine":
            host, _, port = self.socks.rpartition(":")
            return host, int(port)
        return "127.0.0.1", self.local_port

    def upstream_url(self):
        host, port = self.socks_endpoint()
        return f"socks5h://{host}:{port}"  # the engine resolves names abroad, not the censor's DNS

    def far_ports(self):
        """(host, port, proto) the censor must let through for this engine, for the path table."""
        if self.kind in ("shadowsocks", "trojan"):
            return [(self.server, self.port, "tcp")]
        if self.kind == "iodine":
            return [(self.nameserver or self.server or "", 53, "udp")]
        if self.kind == "tor":
            out = []
            for line in self.bridges:
                words = line.split()
                addr = words[1] if len(words) > 1 and words[0] in ("obfs4", "webtunnel") else words[0]
                if ":" in addr and not addr.startswith("["):
                    h, p = addr.rsplit(":", 1)
                    if p.isdigit():
                        out.append((h, int(p), "tcp"))
            return out
        return []  # snowflake: a domain-fronted broker, then WebRTC: nothing fixed to test


def env_file(env):
    """{name: value} -> an environment file both systemd's EnvironmentFile= and sh's `.` read back whole:
    double quotes, with \\ before \\, ", ` and $ (as systemd writes its own, write_env_var)."""
    out = []  # the values have no line breaks: _one() refuses control characters in secrets
    for k, v in env.items():
        out.append(k + '="' + "".join("\\" + c if c in '\\"`$' else c for c in v) + '"\n')
    return "".join(out)


def missing(engine):
    """The one line naming the packages when a program is missing, or None."""
    gone = [b for b in engine.spec.binaries if not which(b)]
    if not gone:
        return None
    s = engine.spec
    return (f"{engine.name}: {', '.join(gone)} not found: install it (Debian: apt install {s.debian}; "
            f"OpenWrt: opkg install {s.openwrt})")


def _text(v, what):
    if not isinstance(v, str):
        raise ProfileError(f"{what}: expected text, got {v!r}" + (" (put it in quotes)" if isinstance(v, (int, float)) else ""))
    return v


def _port(v, what):
    if isinstance(v, bool) or not isinstance(v, int) or not 0 < v < 65536:
        raise ProfileError(f"{what}: expected a port 1..65535, got {v!r}")
    return v


def _host_port(v, what):
    host, sep, port = _text(v, what).rpartition(":")
    if not sep or not port.isdigit() or not host:
        raise ProfileError(f'{what}: expected HOST:PORT, got "{v}"')
    return v


def _one(d, n):
    """One entry -> a normalised dict. n: its 1-based position (the message names it)."""
    where = f"engine {n}"
    if not isinstance(d, dict):
        raise ProfileError(f"{where}: expected a [[uplink.engine]] table, got {d!r}")
    kind = d.get("kind")
    if kind not in KINDS:
        near = difflib.get_close_matches(str(kind), list(KINDS), 1, 0.5)
        hint = f' (did you mean "{near[0]}"?)' if near else ""
        raise ProfileError(f"{where}: kind: expected one of {', '.join(KINDS)}, got {kind!r}{hint}")
    spec = KINDS[kind]
    where = f"engine {n} ({kind})"
    for k in d:
        if k not in spec.fields:
            near = difflib.get_close_matches(k, spec.fields, 1, 0.6)
            hint = f' (did you mean "{near[0]}"?)' if near else f"; a {kind} engine takes {', '.join(spec.fields[1:])}"
            raise ProfileError(f"{where}: {k}: unknown key{hint}")
    for k in spec.required:
        if not d.get(k):
            raise ProfileError(f"{where}: {k}: missing ({_NEEDS[k]})")
    e = {"kind": kind, "name": _text(d.get("name", kind), f"{where}: name"),
         "local_port": _port(d["local_port"], f"{where}: local_port") if "local_port" in d else 0}
    if "server" in spec.fields:
        e["server"] = _text(d.get("server", ""), f"{where}: server")
    if "port" in spec.fields:
        e["port"] = _port(d.get("port", spec.default_port), f"{where}: port")
    if "password" in spec.fields:
        e["password"] = _text(d.get("password", ""), f"{where}: password")
        if any(ord(c) < 32 or ord(c) == 127 for c in e["password"]):
            raise ProfileError(f"{where}: password: a line break or control character cannot reach the far end intact; "
                               "use printable characters")
    if kind == "shadowsocks":
        e["method"] = d.get("method", AEAD[0])
        if e["method"] not in AEAD:
            raise ProfileError(f"{where}: method: expected an AEAD cipher ({', '.join(AEAD)}), got {e['method']!r}")
    if kind == "trojan":
        e["sni"] = _text(d.get("sni", "") or e["server"], f"{where}: sni")
        e["ca"] = _text(d.get("ca", ""), f"{where}: ca")
        e["verify"] = d.get("verify", True)
        if not isinstance(e["verify"], bool):
            raise ProfileError(f"{where}: verify: expected true or false, got {e['verify']!r}")
        e["fallback"] = _host_port(d.get("fallback", "127.0.0.1:80"), f"{where}: fallback")
        e["cert"] = _text(d.get("cert", f"/etc/letsencrypt/live/{e['sni']}/fullchain.pem"), f"{where}: cert")
        e["key"] = _text(d.get("key", f"/etc/letsencrypt/live/{e['sni']}/privkey.pem"), f"{where}: key")
    if kind in ("tor", "snowflake"):
        b = d.get("bridges", [])
        if not isinstance(b, list) or not all(isinstance(x, str) and x.strip() for x in b):
            raise ProfileError(f'{where}: bridges: expected a list of bridge lines, e.g. ["obfs4 203.0.113.7:443 cert=... iat-mode=0"]')
        e["bridges"] = [" ".join(x.split()) for x in b]
        if kind == "tor" and any(x.split()[0] == "snowflake" for x in e["bridges"]):
            raise ProfileError(f'{where}: bridges: a snowflake line belongs in kind = "snowflake"')
        t = d.get("socks_timeout", 60)
        if isinstance(t, bool) or not isinstance(t, int) or not 5 <= t <= 600:
            raise ProfileError(f"{where}: socks_timeout: expected seconds 5..600, got {t!r}")
        e["socks_timeout"] = t
    if kind == "iodine":
        e["domain"] = _text(d["domain"], f"{where}: domain").strip(".").lower()
        e["nameserver"] = _text(d.get("nameserver", ""), f"{where}: nameserver")
        tunnel = _text(d.get("tunnel", "10.53.0.1/27"), f"{where}: tunnel")
        try:
            iface = ipaddress.IPv4Interface(tunnel)
        except ValueError:
            raise ProfileError(f'{where}: tunnel: expected the far end\'s tunnel address like "10.53.0.1/27", got "{tunnel}"')
        if iface.network.prefixlen > 29:
            raise ProfileError(f"{where}: tunnel: /{iface.network.prefixlen} leaves no room for clients (use /27)")
        e["tunnel"] = tunnel
        e["socks"] = _host_port(d.get("socks", f"{iface.ip}:1080"), f"{where}: socks")
        if len(e["password"]) > 32:
            raise ProfileError(f"{where}: password: iodine uses at most 32 characters, this one has {len(e['password'])}")
    return e


_NEEDS = {"server": "the far end's address", "bridges": "bridge lines, e.g. from the bridge's obfs4_bridgeline.txt",
          "domain": "the domain delegated to the far end's iodined"}


def check_entries(v):
    """The schema's validator for uplink.engine: list of tables -> list of normalised dicts."""
    if not isinstance(v, list):
        raise ProfileError("expected [[uplink.engine]] tables")
    out = []
    for i, d in enumerate(v):
        try:
            out.append(_one(d, i + 1))
        except ProfileError as e:
            e.entry = i + 1  # the loader gives each [[uplink.engine]] its own line: the message points at it
            raise
    seen, port = {}, FIRST_LOCAL_PORT
    for e in out:
        base, n = e["name"], 2
        while e["name"] in seen:
            e["name"] = f"{base}-{n}"
            n += 1
        seen[e["name"]] = e
        if e["kind"] == "iodine":
            continue
        if not e["local_port"]:
            while port in {x["local_port"] for x in out}:
                port += 1
            e["local_port"] = port
            port += 1
    ports = [e["local_port"] for e in out if e["kind"] != "iodine"]
    dup = {p for p in ports if ports.count(p) > 1}
    if dup:
        raise ProfileError(f"local_port {min(dup)} is used by two engines; give each its own")
    return out


def engines_of(values, site_path=None):
    """Engine objects from the checked uplink.engine value. site_path: a relative `ca` is the file beside
    the site file (as fleet.ca_file is), wherever relayctl runs."""
    out = [Engine(d) for d in values or []]
    if site_path:
        base = os.path.dirname(os.path.abspath(site_path))
        for e in out:
            if getattr(e, "ca", "") and not os.path.isabs(e.ca):
                e.ca = os.path.join(base, e.ca)
    return out
