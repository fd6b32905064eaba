"""The Wi-Fi side's DNS responder and onboarding portal, on both runtimes, with real clients:
dnspython against the relay's DNS listener (a loopback resolver behind it), and headless
Chromium loading the portal. Screenshots land in test-artifacts/portal-<runtime>-<lang>.png.
"""

import sys
import base64
import json
import shutil
import socket
import subprocess
import urllib.error
import urllib.request
from pathlib import Path

import dns.message
import dns.query
import dns.rcode
import pytest

from tests.helpers.origin import DNSServer
from tests.helpers.relayproc import free_port

from relayctl.links import proxy_link as mtproto_link
from relayctl.links import write_qr_svg

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--no-first-run"]
PHONE = {"width": 360, "height": 640}  # a cheap Android phone's screen, in CSS pixels
TELEGRAM = {"web.telegram.org": ["149.154.167.99"], "t.me": ["149.154.167.99", "2001:67c:4e8:f004::9"]}


@pytest.fixture(scope="module")
def upstream():
    d = DNSServer(TELEGRAM)
    yield d
    d.close()


@pytest.fixture
def wifi_relay(start_relay, runtime, upstream, tmp_path):
    portal_port = free_port()
    dns_port = free_port(kind=socket.SOCK_DGRAM)
    link = "tg://socks?server=127.0.0.1&port=PORT"
    cfg = {
        "portal": {"enabled": True, "host": "127.0.0.1", "port": portal_port, "admin_password": "field pw",
                   "qr_svg": str(tmp_path / "qr.svg")},
        "dns": {"listen_enabled": True, "listen_host": "127.0.0.1", "listen_port": dns_port,
                "servers": [f"127.0.0.1:{upstream.port}"], "timeout": 2},
        "policy": {"preset": "telegram"},
    }
    # The socks port is chosen by the helper; render the QR once it is known, before the relay starts.
    socks_port = free_port()
    cfg["socks"] = {"port": socks_port}
    link = link.replace("PORT", str(socks_port))
    write_qr_svg(link, cfg["portal"]["qr_svg"])
    # The MTProto listener beside it: the portal offers its tg://proxy link and QR second.
    mt_port, secret = free_port(), "dd" + "5e" * 16
    cfg["mtproto"] = {"enabled": True, "host": "127.0.0.1", "port": mt_port, "secrets": [secret]}
    mt_link = mtproto_link("127.0.0.1", mt_port, secret)
    cfg["portal"]["qr_mtproto_svg"] = str(tmp_path / "qr-mtproto.svg")
    write_qr_svg(mt_link, cfg["portal"]["qr_mtproto_svg"])
    r = start_relay(runtime, cfg)
    assert f"portal=127.0.0.1:{portal_port}" in r.ready_line and f"dns=127.0.0.1:{dns_port}" in r.ready_line
    r.portal, r.dns, r.link, r.mt_link = portal_port, dns_port, link, mt_link
    return r


def ask(relay, name, qtype="A", **kw):
    return dns.query.udp(dns.message.make_query(name, qtype, **kw), "127.0.0.1", port=relay.dns, timeout=5)


def answers(m):
    return sorted(str(rd) for rr in m.answer for rd in rr)


def test_dns(wifi_relay, upstream):
    r = wifi_relay
    for name in ("connectivitycheck.gstatic.com", "captive.apple.com", "www.msftconnecttest.com",
                 "detectportal.firefox.com", "nmcheck.gnome.org", "relay.lan"):
        m = ask(r, name)
        assert m.rcode() == dns.rcode.NOERROR and answers(m) == ["127.0.0.1"], name
    assert ask(r, "captive.apple.com", "AAAA").answer == []
    before = len(upstream.queries)
    m = ask(r, "web.telegram.org")
    assert answers(m) == ["149.154.167.99"]
    assert answers(ask(r, "t.me", "AAAA")) == ["2001:67c:4e8:f004::9"]
    assert ask(r, "missing.telegram.org").rcode() == dns.rcode.NXDOMAIN  # the upstream's own NXDOMAIN
    asked = upstream.queries[before:]
    assert ("web.telegram.org", "A") in asked and ("t.me", "AAAA") in asked
    # Cached: asking again does not reach the upstream.
    n = len(upstream.queries)
    assert answers(ask(r, "WEB.telegram.org")) == ["149.154.167.99"]
    assert len(upstream.queries) == n
    # Everything else: NXDOMAIN from the relay, and the upstream never hears of it.
    for name in ("example.com", "telegram.org.evil.example", "facebook.com"):
        assert ask(r, name).rcode() == dns.rcode.NXDOMAIN
    assert len(upstream.queries) == n


def test_dns_survives_malformed_packets(wifi_relay):
    r = wifi_relay
    junk = [b"", b"\x00", b"\xff" * 12, b"\x12\x34\x01\x00\x00\x01" + bytes(6) + b"\xc0\x0c\x00\x01\x00\x01",
            b"\x12\x34\x01\x00\x00\x01" + bytes(6) + b"\x3f" * 300, bytes(range(256)) * 4,
            dns.message.make_response(dns.message.make_query("captive.apple.com", "A")).to_wire()]
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(0.3)
        for j in junk * 20:
            s.sendto(j, ("127.0.0.1", r.dns))
        got = []
        try:
            while True:
                got.append(s.recv(2048))
        except socket.timeout:
            pass
    assert got == []  # nothing answered: no reflection, no crash
    assert answers(ask(r, "captive.apple.com")) == ["127.0.0.1"] and r.alive()


def fetch(relay, path, host=None, headers=None):
    req = urllib.request.Request(f"http://127.0.0.1:{relay.portal}{path}", headers=headers or {})
    if host:
        req.add_header("Host", host)

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *a, **k):
            return None

    opener = urllib.request.build_opener(NoRedirect)
    try:
        with opener.open(req, timeout=10) as resp:
            return resp.status, dict(resp.headers), resp.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


def test_portal_http(wifi_relay):
    r = wifi_relay
    status, h, _ = fetch(r, "/generate_204", host="connectivitycheck.gstatic.com")
    assert status == 302 and h["Location"] == f"http://relay.lan:{r.portal}/"
    assert json.loads(fetch(r, "/captive-portal/api")[2])["captive"] is True
    assert fetch(r, "/continue?lang=en")[0] == 200
    assert fetch(r, "/generate_204", host="connectivitycheck.gstatic.com")[0] == 204
    assert fetch(r, "/hotspot-detect.html", host="captive.apple.com")[2].count(b"Success") == 2
    assert json.loads(fetch(r, "/captive-portal/api")[2])["captive"] is False
    status, h, pac = fetch(r, "/proxy.pac")
    assert f"SOCKS5 127.0.0.1:{r.config['socks']['port']}".encode() in pac
    auth = {"Authorization": "Basic " + base64.b64encode(b"admin:field pw").decode()}
    assert fetch(r, "/admin", headers=auth)[0] == 404  # not on the Wi-Fi side: on the status listener
    req = urllib.request.Request(f"http://127.0.0.1:{r.status}/admin?lang=en", headers=auth)
    with urllib.request.urlopen(req, timeout=10) as resp:
        body = resp.read()
    assert b"tunnels since start" in body and b"answered" in body
    assert b"{" not in body.split(b"<table id=counters>")[1]  # no Python reprs of the nested counters
    status, h, svg = fetch(r, "/qr-mtproto.svg")
    assert status == 200 and h["Content-Type"] == "image/svg+xml" and svg.startswith(b"<svg")
    page = fetch(r, "/?lang=en")[2].decode()
    assert '<code id="mtlink">%s</code>' % r.mt_link.replace("&", "&amp;") in page
    status, h, _ = fetch(r, "/tg/proxy?lang=en")
    assert status == 302 and h["Location"] == r.mt_link
    # This machine's clock is past the floor (no clock_hint): the status page has it set.
    assert "<b id=clock>set</b>" in fetch(r, "/status?lang=en")[2].decode()


def test_relayctl_run_flags(tmp_path):
    """relayctl run passes --portal/--dns-listen/--upstream-dns on and renders the QR with segno."""
    portal, dnsp = free_port(), free_port(kind=socket.SOCK_DGRAM)
    socks = free_port()
    proc = subprocess.Popen(
        [str(Path(sys.executable).parent / "relayctl"), "run", "--socks", f"127.0.0.1:{socks}", "--http", "off",
         "--portal", f"127.0.0.1:{portal}", "--dns-listen", f"127.0.0.1:{dnsp}", "--upstream-dns", "127.0.0.1:9",
         "--allow", "127.0.0.0/8"], stdout=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        assert f"portal=127.0.0.1:{portal}" in line and f"dns=127.0.0.1:{dnsp}" in line, line
        with urllib.request.urlopen(f"http://127.0.0.1:{portal}/?lang=en", timeout=10) as resp:
            page = resp.read().decode()
        assert f"<code>tg://socks?server=127.0.0.1&amp;port={socks}</code>" in page and "<svg" in page
        m = dns.query.udp(dns.message.make_query("captive.apple.com", "A"), "127.0.0.1", port=dnsp, timeout=5)
        assert answers(m) == ["127.0.0.1"]
    finally:
        proc.terminate()
        proc.wait(10)


# -- a real browser ----------------------------------------------------------

@pytest.fixture(scope="module")
def browser():
    if not Path(CHROMIUM).exists():
        pytest.skip("no /usr/bin/chromium: apt-get install chromium (make test does)")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        yield b
        b.close()


def decode_qr(png):
    if not shutil.which("zbarimg"):
        return None
    out = subprocess.run(["zbarimg", "-q", "--raw", "-"], input=png, capture_output=True, timeout=20)
    return out.stdout.decode().strip()


@pytest.mark.parametrize("lang,accept,button", [
    ("kk", "kk-KZ,kk;q=0.9", "Telegram-ды осы проксимен ашу"),
    ("ru", "ru-RU,ru;q=0.9,en;q=0.5", "Открыть Telegram с этим прокси"),
    ("en", "en-US,en;q=0.9", "Open Telegram with this proxy"),
])
def test_portal_in_chromium(wifi_relay, browser, runtime, lang, accept, button):
    r = wifi_relay
    ctx = browser.new_context(viewport=PHONE, locale=lang, user_agent=(
        "Mozilla/5.0 (Linux; Android 8.1.0; SM-J260F) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Version/4.0 Chrome/70.0.3538.110 Mobile Safari/537.36"), extra_http_headers={"Accept-Language": accept})
    page = ctx.new_page()
    weights = []
    requests = []
    page.on("request", lambda req: requests.append(req.url))
    page.on("response", lambda resp: weights.append((resp.url, len(resp.body()))))
    page.goto(f"http://127.0.0.1:{r.portal}/", wait_until="load")
    assert page.get_attribute("html", "lang") == lang
    btn = page.locator("a#tg")
    assert btn.inner_text().strip() == button
    assert btn.get_attribute("href") == f"/tg/socks?lang={lang}"  # the click-through, then the link
    box = btn.bounding_box()
    assert box["width"] > 300 and box["height"] > 40  # a big button on a phone-sized screen
    # The first screen of a small phone holds the button, its hint, the other kind and Continue.
    for sel in ("a#tg", "#hint", "a#tgmt", "a#continue"):
        b = page.locator(sel).bounding_box()
        assert b["y"] + b["height"] <= PHONE["height"], (sel, b)
    qr = page.locator("#qr svg")
    assert qr.count() == 1 and qr.bounding_box()["width"] >= 150
    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / f"portal-{runtime}-{lang}.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 5000
    decoded = decode_qr(qr.screenshot())
    if decoded is not None:
        assert decoded == r.link
    mt = page.locator("a#tgmt")
    assert mt.get_attribute("href") == f"/tg/proxy?lang={lang}" and mt.bounding_box()["width"] > 300
    # One primary: the MTProto button is drawn differently from the SOCKS5 one.
    primary_bg = btn.evaluate("e => getComputedStyle(e).backgroundColor")
    assert mt.evaluate("e => getComputedStyle(e).backgroundColor") != primary_bg
    qr_mt = page.locator("#qrmt svg")
    assert qr_mt.count() == 1 and qr_mt.bounding_box()["width"] >= 150
    decoded = decode_qr(qr_mt.screenshot())
    if decoded is not None:
        assert decoded == r.mt_link  # the exact tg://proxy link, secret and all
    assert all(u.startswith(f"http://127.0.0.1:{r.portal}/") for u in requests), requests  # no external assets
    assert weights and sum(w for _, w in weights) < 30 * 1024, weights
    # Switch language by the links on the page, then click through.
    other = "en" if lang != "en" else "ru"
    page.click(f'a[href="/?lang={other}"]')
    assert page.get_attribute("html", "lang") == other
    page.click('a[href^="/continue"]')
    assert page.locator("a#tg").get_attribute("href") == f"/tg/socks?lang={other}"
    ctx.close()


@pytest.mark.parametrize("lang", ["kk", "ru", "en"])
def test_first_tap_in_chromium_keeps_the_phone_on_the_wifi(wifi_relay, browser, lang):
    """A phone that taps the big button (and never Continue) is let through by its connectivity checks."""
    r = wifi_relay
    check = ("/generate_204", "connectivitycheck.gstatic.com")
    assert fetch(r, *check)[0] == 302
    ctx = browser.new_context(viewport=PHONE, extra_http_headers={"Accept-Language": lang})
    page = ctx.new_page()
    page.goto(f"http://127.0.0.1:{r.portal}/", wait_until="load")
    with page.expect_response(lambda resp: "/tg/socks" in resp.url) as got:
        page.click("a#tg", no_wait_after=True)
    resp = got.value
    assert resp.status == 302 and resp.headers["location"] == r.link
    ctx.close()
    assert fetch(r, *check)[0] == 204


def test_wpad_is_answered_by_dns_and_portal(wifi_relay):
    """Proxy auto-discovery: wpad and wpad.<domain> resolve to the relay, which serves /wpad.dat on them."""
    r = wifi_relay
    for name in ("wpad", "wpad.lan", "wpad.relay"):
        assert answers(ask(r, name)) == ["127.0.0.1"], name
        status, h, body = fetch(r, "/wpad.dat", host=name)
        assert status == 200 and body.startswith(b"function FindProxyForURL"), (name, status)
    assert ask(r, "wpad.example.com").rcode() == dns.rcode.NXDOMAIN

