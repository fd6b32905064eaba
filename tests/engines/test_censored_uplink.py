"""Issue 18 end to end: a relay whose only uplink is censored chains through Shadowsocks, Trojan and
iodine, its path finder picks what passes, and moves new tunnels when the censor closes a path.

One topology for the whole module (tests/engines/censorlab.py), built once: the tests run in file
order and each leaves the censor's rules as it found them. What cannot run here: Tor and Snowflake
cannot bootstrap without the real Tor network, so for them the test shows the config renders, the
engine starts, and its SOCKS port answers and refuses cleanly while not bootstrapped.
"""

import json
import subprocess
import time

import pytest

from tests.engines.censorlab import (ECHO_IP, IODINE_IP, ORIGIN_IP, PLAIN_IP, PORT, RELAYCTL, SNI, SS_IP,
                                     TROJAN_IP, TUNNEL_SOCKS, Lab, can_netns, have_tools, self_signed, sha, status)

pytestmark = pytest.mark.netns

CHECK_S, PROBE_S = 1, 2  # the relay's upstream.check_interval and uplink.timeout here
STATED_FAILOVER_S = CHECK_S + PROBE_S  # a dead path is found within one check interval plus one probe


def site_text(lab, ca, bad=False):
    """The site file; without passwords (server-config makes them), or with wrong ones (bad=True)."""
    pw = (lambda: 'password = "not-the-password"\n') if bad else (lambda: "")
    return f"""# a volunteer's site file
[uplink]
probe = "{ORIGIN_IP}:80"
upstream = "socks5://{PLAIN_IP}:{PORT}"   # a plain proxy abroad: the DPI sees its greeting

[[uplink.engine]]
kind = "shadowsocks"
name = "{'ss-bad' if bad else 'shadowsocks'}"
server = "{SS_IP}"
port = {PORT}
{pw()}
[[uplink.engine]]
kind = "trojan"
name = "{'trojan-bad' if bad else 'trojan'}"
server = "{TROJAN_IP}"
port = {PORT}
sni = "{SNI}"
ca = "{ca}"
cert = "{lab.tmp / 'cert.pem'}"
key = "{lab.tmp / 'key.pem'}"
fallback = "127.0.0.1:8080"
{pw()}
[[uplink.engine]]
kind = "iodine"
name = "{'iodine-bad' if bad else 'iodine'}"
domain = "t.example"
nameserver = "{IODINE_IP}"
socks = "{TUNNEL_SOCKS}"
{pw()}"""


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    if not can_netns():
        pytest.skip("needs root, ip and /dev/net/tun for network namespaces and iodine")
    gone = have_tools()
    if gone:
        pytest.skip("not installed: " + ", ".join(gone) + " (make setup installs the engines' Debian packages)")
    lab = Lab(tmp_path_factory.mktemp("censor"))
    try:
        lab.build()
        self_signed(lab.tmp / "cert.pem", lab.tmp / "key.pem", SNI)
        lab.site = lab.tmp / "site.toml"
        lab.site.write_text(site_text(lab, lab.tmp / "cert.pem"))
        lab.start_abroad(lab.site)
        yield lab
    finally:
        lab.close()


def test_far_end_secrets_are_made_once_and_kept_in_the_site(lab):
    text = lab.site.read_text()
    assert text.count("password = ") == 3 and "# a volunteer's site file" in text  # comments kept (tomlkit)
    lab.relayctl("engine", "server-config", "shadowsocks", "--site", str(lab.site), "--out", str(lab.tmp / "again"))
    assert lab.site.read_text() == text  # a second run reuses them
    far = json.loads((lab.tmp / "again" / "ss-server.json").read_text())
    assert far["password"] in text and far["method"] == "chacha20-ietf-poly1305"


def test_censor_drops_plain_socks5_and_connect_but_not_other_traffic(lab):
    url = f"http://{ORIGIN_IP}/small"
    lab.censor(dpi=False)
    try:  # without the DPI rule, the open port carries a plain SOCKS5 proxy
        code, body = lab.curl("--socks5", f"{PLAIN_IP}:{PORT}", url, timeout=8)
        assert code == 0 and body == lab.small
    finally:
        lab.censor(dpi=True)
    code, body = lab.curl("--socks5", f"{PLAIN_IP}:{PORT}", url, timeout=2)
    assert code == 28 and body == b""  # the greeting's flow is dropped: a timeout, as on a real shutdown
    probe = f"""
import socket
for first in (b"GET / HTTP/1.1\\r\\n\\r\\n", b"CONNECT x:443 HTTP/1.1\\r\\n\\r\\n"):
    s = socket.create_connection(({ECHO_IP!r}, {PORT}), timeout=2)
    s.sendall(first)
    try:
        print(s.recv(64) == first)
    except socket.timeout:
        print("dropped")
    s.close()
"""
    r = lab.run("country", "python3", "-c", probe, timeout=20)
    assert r.stdout.split() == ["True", "dropped"]  # same port, same server: only the CONNECT flow dies
    code, _ = lab.curl(f"http://{ORIGIN_IP}/small", timeout=2)
    assert code == 28  # direct to port 80: the shutdown


def test_path_table_shows_what_passes_and_translates_wrong_passwords(lab):
    bad = lab.tmp / "bad.toml"
    text = site_text(lab, lab.tmp / "cert.pem", bad=True)
    good = lab.site.read_text()
    # the good engines and a copy of each with a wrong password, in one file: one run shows both
    bad.write_text(good + "\n[[uplink.engine]]" + text.split("[[uplink.engine]]", 1)[1].replace(
        TUNNEL_SOCKS, TUNNEL_SOCKS[:-1] + "1"))  # the bad iodine must not find the good one's SOCKS server
    r = lab.relayctl("uplink", "paths", "--site", str(bad), "--json", "--timeout", "4", "--wait", "25", timeout=120)
    rows = {row["path"]: row for row in json.loads(r.stdout[r.stdout.index("["):])}
    for name in ("shadowsocks", "trojan", "iodine"):
        assert rows[name]["works"], rows[name]
        assert rows[name]["rank"] is not None and rows[name]["ms"] >= 0
    assert not rows["upstream"]["works"]  # plain SOCKS5 through the censor: dropped
    assert not rows["direct tcp/443"]["works"]
    assert rows["shadowsocks tcp/3785"]["works"] and rows["iodine udp/53"]["works"]
    # Wrong passwords: each engine's failure in one line that names the cause.
    assert not rows["ss-bad"]["works"] and "password or method does not match" in rows["ss-bad"]["note"]
    assert not rows["trojan-bad"]["works"] and "fallback web site" in rows["trojan-bad"]["note"]
    assert not rows["iodine-bad"]["works"] and "refused the password" in rows["iodine-bad"]["note"]
    order = [row["path"] for row in sorted((x for x in rows.values() if x.get("rank")), key=lambda x: x["rank"])]
    assert set(order) == {"shadowsocks", "trojan", "iodine"}
    assert order == sorted(order, key=lambda n: rows[n]["ms"] // 50)  # what works, fastest first (50 ms steps)


@pytest.fixture(scope="module")
def relay(lab):
    cfg = lab.tmp / "relay.json"
    cfg.write_text(json.dumps({
        "socks": {"host": "127.0.0.1", "port": 1080}, "http": {"enabled": False},
        "status": {"enabled": True, "host": "127.0.0.1", "port": 8081},
        "policy": {"preset": "open"},
        "portal": {"enabled": True, "host": "127.0.0.1", "port": 8082},
        "upstream": {"check_interval": CHECK_S}, "uplink": {"timeout": PROBE_S},
    }))
    p = lab.start("country", "relayctl-run", [*RELAYCTL, "run", "--config", str(cfg), "--site", str(lab.site)])
    lab.wait(lambda: "relay ready" in lab.log("relayctl-run") or p.poll() is not None, "the relay", 30)
    assert "relay ready" in lab.log("relayctl-run"), lab.log("relayctl-run")
    lab.wait(lambda: (status(lab).get("path") or {}).get("path") in ("shadowsocks", "trojan"), "a first path", 40)
    yield p
    p.terminate()  # relayctl stops its engines by their PIDs
    p.wait(15)


def path(lab):
    return (status(lab).get("path") or {}).get("path")


def tunnels(lab, name):
    return {u["name"]: u for u in status(lab)["upstreams"]}[name]["tunnels"]


def download(lab, what="blob", timeout=30):
    code, body = lab.curl("--socks5-hostname", "127.0.0.1:1080", f"http://{ORIGIN_IP}/{what}", timeout=timeout)
    return code, body


def test_relay_picks_a_working_path_and_the_phone_gets_the_file(lab, relay):
    st = status(lab)
    names = [u["name"] for u in st["upstreams"]]
    assert names[0] == st["path"]["path"] in ("shadowsocks", "trojan")
    assert names[-1] == "upstream"  # the plain proxy: ranked last, never used
    before = tunnels(lab, path(lab))
    code, body = download(lab)
    assert code == 0 and sha(body) == sha(lab.blob)
    assert tunnels(lab, path(lab)) == before + 1
    shown = lab.relayctl("status", "--host", "127.0.0.1:8081", "--once").stdout
    assert f"Path to the outside: {path(lab)}" in shown
    page = lab.run("country", "curl", "-sS", "--max-time", "5", "http://127.0.0.1:8082/status?lang=en").stdout
    assert f"<b id=path>{path(lab)}</b>" in page  # the phones' status page says it too
    # The volunteer's table, with the relay's engines running: they are probed as they are.
    table = lab.relayctl("uplink", "paths", "--site", str(lab.site), "--timeout", "3", timeout=60).stdout
    lines = table.splitlines()
    assert lines[0].split() == ["path", "works", "time", "note"], table
    assert lines[1].split()[:2] == ["shadowsocks", "yes"]  # equally fast here: the site's order decides
    assert lines[-1].startswith("order: ") and "upstream" not in lines[-1]


def test_censor_closes_the_path_mid_run(lab, relay, record_property):
    first = path(lab)
    ip = {"shadowsocks": SS_IP, "trojan": TROJAN_IP}[first]
    # A slow download is open on the first path when the censor closes it.
    slow = subprocess.Popen(["ip", "netns", "exec", lab.ns["country"], "curl", "-sS", "--max-time", "40",
                             "--socks5-hostname", "127.0.0.1:1080", f"http://{ORIGIN_IP}:81/", "-o", "/dev/null"],
                            env=lab.env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    lab.procs.append(("slow-curl", slow))
    try:
        lab.wait(lambda: status(lab).get("tunnels_open") == 1, "the slow download's tunnel", 10)
        time.sleep(0.5)
        t0 = time.monotonic()
        lab.close_addr(ip)
        lab.wait(lambda: path(lab) not in (first, None), f"a new path ({status(lab)}; {lab.log('relayctl-run')})", 20)
        moved = time.monotonic() - t0
        second = path(lab)
        assert second == ("trojan" if first == "shadowsocks" else "shadowsocks")
        slow.wait(15)  # the open tunnel ends: the phone sees a close, not a hang to its 40 s limit
        ended = time.monotonic() - t0
        assert slow.returncode in (18, 56), slow.stderr.read()  # partial file / connection closed
        lab.wait(lambda: status(lab).get("tunnels_open") == 0, "tunnels closed", 10)
        code, body = download(lab)
        assert code == 0 and sha(body) == sha(lab.blob)

        # Then the whole port closes: only UDP 53 is left, and iodine carries.
        t1 = time.monotonic()
        lab.close_port(PORT)
        lab.wait(lambda: path(lab) == "iodine", "iodine as the path", 20)
        moved_iodine = time.monotonic() - t1
        code, body = download(lab, "small", timeout=60)
        assert code == 0 and sha(body) == sha(lab.small)
        assert tunnels(lab, "iodine") >= 1
        print(f"\nfailover {first}->{second}: {moved:.1f} s (open tunnel ended after {ended:.1f} s); "
              f"{second}->iodine: {moved_iodine:.1f} s; stated bound {STATED_FAILOVER_S} s")
        record_property("failover_s", round(moved, 2))
        record_property("failover_iodine_s", round(moved_iodine, 2))
        # Stated: within one check interval plus one probe; the margin is for a shared, busy machine.
        assert moved < STATED_FAILOVER_S * 3 and moved_iodine < STATED_FAILOVER_S * 3
    finally:
        if slow.poll() is None:
            slow.kill()
            slow.wait()
        lab.censor(dpi=True)  # every path open again for the tests after this one


def test_tor_and_snowflake_start_and_refuse_cleanly_while_not_bootstrapped(lab):
    """Tor cannot bootstrap here (no directory authorities, no Snowflake broker): the torrc renders,
    tor starts with it, its SOCKS port answers the greeting and refuses a CONNECT with a SOCKS error
    after socks_timeout instead of holding it, and the table says how far the bootstrap got."""
    site = lab.tmp / "tor.toml"  # its own local ports: the relay's engines still hold 1090-1091
    site.write_text(f"""[uplink]
probe = "{ORIGIN_IP}:80"
[[uplink.engine]]
kind = "tor"
bridges = ["obfs4 {ECHO_IP}:{PORT} cert=ssH+9rP8dG2NLDN2XuFw63hIO/9MNNinLmxQDpVa+7kTOa9/m+tGWT1SmSYpQ9uTBGa6Hw iat-mode=0"]
socks_timeout = 5
local_port = 1190
[[uplink.engine]]
kind = "snowflake"
socks_timeout = 5
local_port = 1191
""")
    r = lab.relayctl("uplink", "paths", "--site", str(site), "--json", "--timeout", "7", "--wait", "15",
                     timeout=120, check=False)
    assert r.returncode == 1, r.stdout + r.stderr  # nothing passes
    rows = {row["path"]: row for row in json.loads(r.stdout[r.stdout.index("["):])}
    for name in ("tor", "snowflake"):
        row = rows[name]
        assert not row["works"]
        assert row["note"].startswith("refused"), row  # a SOCKS reply, not a hang or a reset
        assert "bootstrapped" in row["engine"] and "100%" not in row["engine"], row
