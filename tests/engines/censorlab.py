"""A censored country in three network namespaces, for the uplink engine tests.

    country ns                      censor ns                          abroad ns
    relay (relayctl run --site)     nftables: a shutdown               ss-server 203.0.113.10:3785
    + the engines (ss-local,   ──── only UDP 53 and TCP 3785 pass, ──── trojan    203.0.113.11:3785 (fallback site 127.0.0.1:8080)
      trojan, iodine, tor)          and a DPI rule drops any TCP flow   iodined   203.0.113.12:53 (tunnel 10.53.0.1/27)
    + a phone (curl)                whose first payload is a SOCKS5     microsocks 10.53.0.1:1080 (over the DNS tunnel)
    10.77.0.2                       greeting or an HTTP CONNECT         microsocks 203.0.113.13:3785 (a plain proxy)
                                                                        echo      203.0.113.14:3785
                                                                        origin    198.51.100.20:80 and :443

The far ends run from the files `relayctl engine server-config` renders. Network safety: every
address lives only inside these namespaces; the veths are made from inside them (nothing is added
to the root namespace), and abroad has no route but back to the country. Processes started here
are stopped by their PID and the namespaces removed in close(), also when a test fails.
"""

import datetime
import hashlib
import json
import os
import re
import secrets
import shutil
import subprocess
import sys
import time
from pathlib import Path

from tests.helpers import netns

ROOT = Path(__file__).resolve().parents[2]
RELAYCTL = [sys.executable, "-m", "relayctl.cli"]
SS_IP, TROJAN_IP, IODINE_IP, PLAIN_IP, ECHO_IP, ORIGIN_IP = (
    "203.0.113.10", "203.0.113.11", "203.0.113.12", "203.0.113.13", "203.0.113.14", "198.51.100.20")
PORT = 3785  # Kazakhstan, January 2022: one of the few TCP ports left open
SNI = "cdn.example.net"
TUNNEL_SOCKS = "10.53.0.1:1080"

CENSOR = """
table inet censor {
  set closed { type ipv4_addr; }
  set closed_ports { type inet_service; }
  chain forward {
    type filter hook forward priority filter; policy drop;
    ip daddr @closed drop
    ip saddr @closed drop
    tcp dport @closed_ports drop
    tcp sport @closed_ports drop
    ct mark 0x1 drop
%(dpi)s
    ct state established,related accept
    tcp dport %(port)d accept
    udp dport 53 accept
  }
}
"""
# The DPI: a flow whose first payload starts a SOCKS5 greeting (version 5, one to three methods, the
# first of them no-auth, GSSAPI or login) or an HTTP CONNECT is marked and
# dropped from then on; a flow whose first payload is anything else is marked clean and not looked at again.
DPI = """
    tcp dport %(port)d ct mark 0x0 @ih,0,8 0x05 @ih,8,8 0x01-0x03 @ih,16,8 0x00-0x02 ct mark set 0x1 drop
    tcp dport %(port)d ct mark 0x0 @ih,0,64 0x434f4e4e45435420 ct mark set 0x1 drop
    tcp dport %(port)d ct mark 0x0 @ih,0,8 0x00-0xff ct mark set 0x2
"""

ECHO = """
import socket, threading
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind((%r, %d)); s.listen(16)
def serve(c):
    while True:
        d = c.recv(4096)
        if not d: break
        c.sendall(d)
    c.close()
while True:
    c, _ = s.accept(); threading.Thread(target=serve, args=(c,), daemon=True).start()
"""

# A download that stays in flight: 8 KiB every 50 ms for at most 30 s, so a path closed in the middle
# cuts a transfer the kernel's buffers do not already hold.
TRICKLE = """
import socket, threading, time
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind((%r, %d)); s.listen(16)
def serve(c):
    try:
        c.recv(4096)
        c.sendall(b"HTTP/1.1 200 OK\\r\\nContent-Length: 4915200\\r\\n\\r\\n")
        for _ in range(600):
            c.sendall(b"x" * 8192); time.sleep(0.05)
    except OSError:
        pass
    c.close()
while True:
    c, _ = s.accept(); threading.Thread(target=serve, args=(c,), daemon=True).start()
"""


def sh(*argv, check=True, timeout=30, env=None, input=None):
    r = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, env=env, input=input)
    if check and r.returncode != 0:
        raise AssertionError(f"{' '.join(argv)} failed ({r.returncode}): {r.stderr.strip()[-2000:]}")
    return r


def self_signed(cert_path, key_path, name):
    """A certificate for the Trojan far end, made with `cryptography` (already a dependency)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=30))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    Path(cert_path).write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    Path(key_path).write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                 serialization.NoEncryption()))


class Lab:
    def __init__(self, tmp):
        self.tmp = Path(tmp)
        tag = f"{os.getpid() % 100000}-{secrets.token_hex(3)}"
        self.ns = {k: f"relaytest-{tag}-{k}" for k in ("country", "censor", "abroad")}
        self.procs = []  # (name, Popen) started here; stopped by PID in close()
        self.made = []
        self.env = dict(os.environ, PYTHONPATH=f"{ROOT / 'host_tools'}:{ROOT}", NO_COLOR="1")
        for k in list(self.env):
            if "proxy" in k.lower():
                del self.env[k]  # only the proxies a test names

    # -- plumbing ------------------------------------------------------------
    def ip(self, who, *args):
        return sh("ip", "-n", self.ns[who], *args)

    def run(self, who, *argv, check=True, timeout=30, env=None, input=None):
        return sh("ip", "netns", "exec", self.ns[who], *argv, check=check, timeout=timeout, env=env or self.env,
                  input=input)

    def start(self, who, name, argv, env=None, log=True):
        out = open(self.tmp / f"{name}.log", "wb") if log else subprocess.DEVNULL
        p = subprocess.Popen(["ip", "netns", "exec", self.ns[who], *argv], env=env or self.env, stdout=out,
                             stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=self.tmp)
        self.procs.append((name, p))  # `ip netns exec` execs the program: this PID is the program itself
        return p

    def log(self, name):
        p = self.tmp / f"{name}.log"
        return p.read_text(errors="replace") if p.exists() else ""

    def relayctl(self, *args, timeout=90, check=True):
        return self.run("country", *RELAYCTL, *args, timeout=timeout, check=check)

    def build(self):
        for name in self.ns.values():
            sh("ip", "netns", "add", name)
            self.made.append(name)
        for who in self.ns:
            self.ip(who, "link", "set", "lo", "up")
        self.ip("country", "link", "add", "up0", "type", "veth", "peer", "name", "c0", "netns", self.ns["censor"])
        self.ip("censor", "link", "add", "a0", "type", "veth", "peer", "name", "eth0", "netns", self.ns["abroad"])
        self.ip("country", "addr", "add", "10.77.0.2/24", "dev", "up0")
        self.ip("censor", "addr", "add", "10.77.0.1/24", "dev", "c0")
        self.ip("censor", "addr", "add", "203.0.113.1/24", "dev", "a0")
        self.ip("abroad", "addr", "add", "203.0.113.2/24", "dev", "eth0")
        for addr in (SS_IP, TROJAN_IP, IODINE_IP, PLAIN_IP, ECHO_IP, ORIGIN_IP):
            self.ip("abroad", "addr", "add", f"{addr}/32", "dev", "lo")
        for who, dev in (("country", "up0"), ("censor", "c0"), ("censor", "a0"), ("abroad", "eth0")):
            self.ip(who, "link", "set", dev, "up")
        self.ip("country", "route", "add", "default", "via", "10.77.0.1")
        self.ip("censor", "route", "add", "198.51.100.0/24", "via", "203.0.113.2")  # the servers' /32s answer ARP
        self.ip("abroad", "route", "add", "10.77.0.0/24", "via", "203.0.113.1")  # back to the country, nothing else
        self.run("censor", "sysctl", "-qw", "net.ipv4.ip_forward=1")
        assert "default" not in self.ip("abroad", "route", "show").stdout
        self.censor(dpi=True)

    def censor(self, dpi=True):
        """(Re)load the censor's rules: the shutdown, with or without the DPI rule; nothing closed."""
        rules = CENSOR % {"dpi": DPI % {"port": PORT} if dpi else "", "port": PORT}
        sh("ip", "netns", "exec", self.ns["censor"], "nft", "-f", "-",
           input="table inet censor\ndelete table inet censor\n" + rules)

    def close_addr(self, addr):
        sh("ip", "netns", "exec", self.ns["censor"], "nft", "add", "element", "inet", "censor", "closed", "{", addr, "}")

    def close_port(self, port):
        sh("ip", "netns", "exec", self.ns["censor"], "nft", "add", "element", "inet", "censor", "closed_ports",
           "{", str(port), "}")

    # -- abroad ----------------------------------------------------------------
    def start_abroad(self, site):
        www = self.tmp / "www"
        www.mkdir()
        self.blob = os.urandom(2 << 20)
        self.small = self.blob[: 384 << 10]
        (www / "blob").write_bytes(self.blob)
        (www / "small").write_bytes(self.small)
        site_dir = self.tmp / "fallback-site"
        site_dir.mkdir()
        (site_dir / "index.html").write_text("<html><title>Bakery</title><body>Fresh bread daily.</body></html>\n")
        py = sys.executable
        self.start("abroad", "origin80", [py, "-m", "http.server", "--bind", ORIGIN_IP, "80", "--directory", str(www)])
        self.start("abroad", "origin443", [py, "-m", "http.server", "--bind", ORIGIN_IP, "443", "--directory", str(www)])
        self.start("abroad", "fallback", [py, "-m", "http.server", "--bind", "127.0.0.1", "8080", "--directory",
                                          str(site_dir)])
        self.start("abroad", "plain-socks", ["microsocks", "-i", PLAIN_IP, "-p", str(PORT)])
        self.start("abroad", "echo", [py, "-c", ECHO % (ECHO_IP, PORT)])
        self.start("abroad", "trickle", [py, "-c", TRICKLE % (ORIGIN_IP, 81)])
        far = self.tmp / "far"
        for kind, listen in (("shadowsocks", SS_IP), ("trojan", TROJAN_IP), ("iodine", IODINE_IP)):
            self.relayctl("engine", "server-config", kind, "--site", str(site), "--listen", listen, "--out",
                          str(far / kind))
        ss = far / "shadowsocks"  # with its ACL, which the JSON names at its place on the volunteer's machine
        cfg = json.loads((ss / "ss-server.json").read_text())
        (ss / "ss-server.json").write_text(json.dumps(dict(cfg, acl=str(ss / "ss-server.acl"))))
        self.start("abroad", "ss-server", ["ss-server", "-c", str(ss / "ss-server.json")])
        self.start("abroad", "trojan-server", ["trojan", "-c", str(far / "trojan" / "trojan-server.json")])
        unit = (far / "iodine" / "relay-iodined.service").read_text()
        # the password is in its own file (EnvironmentFile=), read here as sh reads it
        env_file = far / "iodine" / re.search(r"^EnvironmentFile=.*/([^/\s]+)$", unit, re.M).group(1)
        pw = sh("sh", "-c", '. "$1"; printf %s "$IODINED_PASS"', "sh", str(env_file)).stdout
        env = dict(self.env, IODINED_PASS=pw)
        self.start("abroad", "iodined", re.search(r"^ExecStart=(.*)$", unit, re.M).group(1).split(), env=env)
        self.wait(lambda: "10.53.0.1" in self.ip("abroad", "-4", "addr", "show").stdout, "iodined's tunnel device")
        socks_unit = (far / "iodine" / "relay-socks.service").read_text()
        self.start("abroad", "tunnel-socks", re.search(r"^ExecStart=(.*)$", socks_unit, re.M).group(1).split())
        for addr, port in ((ORIGIN_IP, 80), (ORIGIN_IP, 81), (SS_IP, PORT), (TROJAN_IP, PORT), (PLAIN_IP, PORT), (ECHO_IP, PORT),
                           ("10.53.0.1", 1080)):
            self.wait_port("abroad", addr, port)

    def wait(self, cond, what, timeout=20):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if cond():
                return
            time.sleep(0.1)
        raise AssertionError(f"{what}: not there after {timeout} s; logs: " + " | ".join(
            f"{n}: {self.log(n)[-300:]}" for n, _ in self.procs))

    def wait_port(self, who, host, port, timeout=20):
        code = f"import socket; socket.create_connection(({host!r}, {port}), timeout=1).close()"
        self.wait(lambda: self.run(who, sys.executable, "-c", code, check=False).returncode == 0,
                  f"{host}:{port} in {who}", timeout)

    # -- the phone -------------------------------------------------------------
    def curl(self, *args, timeout=15):
        """-> (exit code, body bytes) of curl in the country ns."""
        r = subprocess.run(["ip", "netns", "exec", self.ns["country"], "curl", "-sS", "--max-time", str(timeout), *args],
                           capture_output=True, timeout=timeout + 10, env=self.env)
        return r.returncode, r.stdout

    def close(self):
        netns.stop([p for _, p in reversed(self.procs)])
        netns.delete(self.made)


def sha(data):
    return hashlib.sha256(data).hexdigest()


def status(lab):
    r = lab.run("country", "curl", "-sS", "--max-time", "5", "http://127.0.0.1:8081/api/status", check=False)
    return json.loads(r.stdout) if r.returncode == 0 and r.stdout else {}


def have_tools():
    need = ("ss-local", "ss-server", "trojan", "iodine", "iodined", "microsocks", "tor", "obfs4proxy",
            "snowflake-client", "nft", "curl")
    from relayctl.engines import which

    return [t for t in need if not which(t)]


def can_netns():
    return os.geteuid() == 0 and shutil.which("ip") is not None and os.path.exists("/dev/net/tun")
