"""Every far end `relayctl engine server-config` renders refuses the volunteer's own machine.

The relay hands names to its engines unresolved (socks5h), so only the far end can judge where a
name leads. Here the far ends run as `server-config` renders them: ss-server with its ACL (named in
its JSON), trojan and microsocks (the iodine far end's SOCKS server) without any list of their own,
each as its own user with the rendered nftables table loaded. The namespaces are the censored-uplink
lab's (tests/engines/censorlab.py); only its "abroad" (the far end's machine) and "censor" (here the
far end's neighbours) are used:

    abroad: the far ends (ss-server, trojan, microsocks on 10.53.0.1 standing in for the tunnel),
            their clients (ss-local, trojan client, run as root: the table leaves root alone),
            a service on the machine itself on [::]:8000 (its admin port, its database),
            trojan's fallback web site on 127.0.0.1:8080
    censor: a web server on [::]:8000 answering on a public address (203.0.113.1) and on the
            neighbours' private ones (169.254.169.254 as the cloud metadata service, 10/8,
            172.16/12, 192.168/16, 100.64/10, fc00::/7)

The test users are numeric uids (no passwd entry is needed for them); the rendered tables name
relay-ss, relay-trojan and relay-socks, which `useradd` makes on the volunteer's machine.
"""

import json
import re
import shutil
import sys
import tempfile
from pathlib import Path

import pytest

from relayctl.engines import client, engines_of, server, which
from relayctl.engines.farguard import USERS
from tests.engines.censorlab import SNI, SS_IP, TROJAN_IP, Lab, can_netns, self_signed
from tests.engines.test_engines import load

pytestmark = pytest.mark.netns

UIDS = {"shadowsocks": 40001, "trojan": 40002, "iodine": 40003}
PORT, SVC = 3785, 8000
OWN = "203.0.113.2"  # the far end's own public address, on its eth0
PUBLIC = "203.0.113.1"  # a web server next door on a public address: must stay reachable
NEIGHBOURS = ("169.254.169.254", "10.20.0.1", "172.16.0.1", "192.168.1.1", "100.64.0.1")
REFUSED = ["127.0.0.1", OWN, SS_IP, TROJAN_IP, "0.0.0.0", "[::1]", "[::ffff:127.0.0.1]", "[fd00::1]", *NEIGHBOURS]
SITE = f"""[[uplink.engine]]
kind = "shadowsocks"
server = "{SS_IP}"
port = {PORT}
password = "a long shared secret"

[[uplink.engine]]
kind = "trojan"
server = "{TROJAN_IP}"
port = {PORT}
password = "another long secret"
sni = "{SNI}"
ca = "%(dir)s/cert.pem"
cert = "%(dir)s/cert.pem"
key = "%(dir)s/key.pem"
fallback = "127.0.0.1:8080"

[[uplink.engine]]
kind = "iodine"
domain = "t.example"
password = "tunnel secret"
socks = "10.53.0.1:1080"
"""


def _as(kind, argv):
    uid = str(UIDS[kind])
    return ["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups", *argv]


def _exec_start(unit):
    return re.search(r"^ExecStart=(.*)$", unit, re.M).group(1).split()


@pytest.fixture(scope="module")
def far(tmp_path_factory):
    if not can_netns():
        pytest.skip("needs root and ip for network namespaces")
    gone = [t for t in ("ss-server", "ss-local", "trojan", "microsocks", "nft", "curl", "setpriv") if not which(t)]
    if gone:
        pytest.skip("not installed: " + ", ".join(gone) + " (make setup installs the engines' Debian packages)")
    tmp = tmp_path_factory.mktemp("farend")
    shared = Path(tempfile.mkdtemp(prefix="relay-farend-"))  # the far ends' users must read their files
    shared.chmod(0o755)
    lab = Lab(tmp)
    try:
        lab.build()
        lab.ip("abroad", "addr", "add", "10.53.0.1/32", "dev", "lo")  # iodined's tunnel address (the lab has the rest)
        for addr in NEIGHBOURS:
            lab.ip("censor", "addr", "add", f"{addr}/32", "dev", "a0")
            lab.ip("abroad", "route", "add", addr, "via", "203.0.113.1")
        lab.ip("censor", "addr", "add", "fd00::1/64", "dev", "a0", "nodad")
        lab.ip("abroad", "addr", "add", "fd00::2/64", "dev", "eth0", "nodad")
        for who in ("censor", "abroad"):
            (tmp / who).mkdir()
            (tmp / who / "where").write_text(f"{who}\n")
            lab.start(who, f"{who}-web", [sys.executable, "-m", "http.server", "--bind", "::", str(SVC),
                                          "--directory", str(tmp / who)])
        (tmp / "bakery").mkdir()
        (tmp / "bakery" / "index.html").write_text("Fresh bread daily.\n")
        lab.start("abroad", "fallback", [sys.executable, "-m", "http.server", "--bind", "127.0.0.1", "8080",
                                         "--directory", str(tmp / "bakery")])

        self_signed(shared / "cert.pem", shared / "key.pem", SNI)
        engines = {e.kind: e for e in engines_of(load(tmp, SITE % {"dir": shared})["uplink.engine"])}
        files = {kind: server.render(e, {"shadowsocks": SS_IP, "trojan": TROJAN_IP}.get(kind, "0.0.0.0"))
                 for kind, e in engines.items()}
        for kind, rendered in files.items():
            for name, text in rendered.items():
                if name.endswith(".nft"):
                    text = text.replace(f'"{USERS[kind]}"', str(UIDS[kind]))
                if name == "ss-server.json":  # /etc/shadowsocks-libev/relay.acl on the volunteer's machine
                    text = json.dumps(dict(json.loads(text), acl=str(shared / "ss-server.acl")))
                (shared / name).write_text(text)
                (shared / name).chmod(0o644)
        lab.start("abroad", "ss-server", _as("shadowsocks", ["ss-server", "-c", str(shared / "ss-server.json")]))
        lab.start("abroad", "trojan-server", _as("trojan", ["trojan", "-c", str(shared / "trojan-server.json")]))
        lab.start("abroad", "microsocks", _as("iodine", _exec_start(files["iodine"]["relay-socks.service"])))
        lab.socks = {"iodine": engines["iodine"].socks}
        for kind in ("shadowsocks", "trojan"):  # their clients, as the relay runs them
            launch = client.launch(engines[kind], str(tmp), str(tmp))
            for name, text in launch.files.items():
                (tmp / name).write_text(text)
            lab.start("abroad", f"{kind}-client", launch.argv)
            lab.socks[kind] = f"127.0.0.1:{engines[kind].local_port}"
        for host, port in (("::1", SVC), (PUBLIC, SVC), ("127.0.0.1", 8080), (SS_IP, PORT), (TROJAN_IP, PORT),
                           ("10.53.0.1", 1080), ("127.0.0.1", engines["shadowsocks"].local_port),
                           ("127.0.0.1", engines["trojan"].local_port)):
            lab.wait_port("abroad", host, port)
        for kind in UIDS:  # without the tables, each far end reaches the machine it runs on
            assert through(lab, kind, f"http://{OWN}:{SVC}/where") == (0, b"abroad\n"), lab.log(f"{kind}-client")
        for kind in UIDS:
            lab.run("abroad", "nft", "-f", str(shared / f"far-end-{kind}.nft"))
        yield lab
    finally:
        lab.close()
        shutil.rmtree(shared, ignore_errors=True)


def through(lab, kind, url, hostname=False):
    """-> (curl's exit code, body) for url fetched through a far end, as a phone's request arrives there."""
    r = lab.run("abroad", "curl", "-sS", "-g", "--max-time", "5", "--socks5-hostname" if hostname else "--socks5",
                lab.socks[kind], url, check=False)
    return r.returncode, r.stdout.encode()


@pytest.mark.parametrize("kind", list(UIDS))
def test_a_far_end_refuses_its_own_machine_and_its_neighbours(far, kind):
    assert through(far, kind, f"http://{PUBLIC}:{SVC}/where") == (0, b"censor\n")  # the world stays reachable
    for host in REFUSED:
        code, body = through(far, kind, f"http://{host}:{SVC}/where")
        assert code != 0 and body == b"", f"{kind} reached {host}"
    code, body = through(far, kind, f"http://localhost:{SVC}/where", hostname=True)  # a name the far end resolves
    assert code != 0 and body == b"", f"{kind} reached localhost"


def test_the_tables_touch_only_the_far_ends_users(far):
    r = far.run("abroad", "curl", "-sS", "--max-time", "5", f"http://127.0.0.1:{SVC}/where")
    assert r.stdout == "abroad\n"  # root on the far end's machine: untouched
    # trojan's own exception: whoever connects without the password still gets the fallback web site
    r = far.run("abroad", "curl", "-sSk", "--max-time", "5", "--resolve", f"{SNI}:{PORT}:{TROJAN_IP}",
                f"https://{SNI}:{PORT}/")
    assert r.stdout == "Fresh bread daily.\n"
