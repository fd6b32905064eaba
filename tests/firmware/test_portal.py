"""The onboarding portal's routing and pages (relay.portal), request heads in, responses out."""

import json
import re
from html.parser import HTMLParser

import pytest
from hypothesis import given, settings, strategies as st

from relay.portal import Portal, parse_head, pick_language, quote
from relay.portal_text import TEXT

PHONE = bytes([192, 168, 4, 23])
OTHER = bytes([192, 168, 4, 24])
QR = b'<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><path d="M0 0h1"/></svg>'


def portal(**kw):
    args = dict(address="192.168.4.1", port=80, names=["relay.lan", "relay"], socks=("192.168.4.1", 1080),
                http=("192.168.4.1", 8080), qr_svg=QR, salt=b"salt")
    args.update(kw)
    return Portal(**args)


def info(client_ip=None):
    return {"people": 7, "uplink": True, "since_s": 7500, "counters": {"tunnels_open": 3, "refused": {"guard": 2}},
            "share": {"stage": "small-only", "budget_left_today": 2500000,
                      "your_left_today": 0 if client_ip == b"\x0a\x0a\x0a\x0a" else 1200000}}


def get(p, path, host="relay.lan", client=PHONE, headers=(), method="GET"):
    head = "%s %s HTTP/1.1\r\nHost: %s\r\n" % (method, path, host) + "".join("%s: %s\r\n" % h for h in headers)
    raw = p.respond(head.rstrip("\r\n").encode(), client, info)
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    status = int(lines[0].split()[1])
    hdrs = {k.lower(): v for k, v in (x.split(": ", 1) for x in lines[1:])}
    assert int(hdrs["content-length"]) == len(body) or method == "HEAD"
    return status, hdrs, body


class Links(HTMLParser):
    def __init__(self):
        super().__init__()
        self.hrefs = []
        self.svg = 0
        self.external = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "a":
            self.hrefs.append(a.get("href"))
        if tag == "svg":
            self.svg += 1
        for k in ("src", "href"):
            v = a.get(k) or ""
            if tag != "a" and v:
                self.external.append(v)


@pytest.mark.parametrize("lang", ["kk", "ru", "en"])
def test_home_page_in_each_language(lang):
    st_, h, body = get(portal(), "/?lang=" + lang)
    assert st_ == 200 and h["content-type"] == "text/html; charset=utf-8" and h["content-language"] == lang
    text = body.decode()
    assert TEXT[lang]["button"] in text and TEXT[lang]["about"] in text
    p = Links()
    p.feed(text)
    assert "tg://socks?server=192.168.4.1&port=1080" in p.hrefs
    assert p.svg == 1 and not p.external  # QR inline, nothing fetched from elsewhere
    assert "<script" not in text  # old WebViews: no JS needed
    assert "http://relay.lan/" in text and "http://192.168.4.1/" in text  # the short address to type
    assert len(body) < 30 * 1024


def test_texts_cover_every_key_in_every_language():
    for lang in ("kk", "ru"):
        assert set(TEXT[lang]) == set(TEXT["en"])
        for k, v in TEXT[lang].items():
            assert v != TEXT["en"][k] or k in ("port", "server"), (lang, k)
    assert re.search("[әғқңөұүһі]", " ".join(TEXT["kk"].values()))  # Kazakh letters, not Russian only


@pytest.mark.parametrize("accept,want", [
    ("ru-RU,ru;q=0.9,en;q=0.8", "ru"), ("kk-KZ,ru;q=0.5", "kk"), ("en-US", "en"), ("de-DE,en;q=0.3", "en"),
    ("de", "kk"), ("", "kk"), ("ru;q=0, en", "en"), ("ru;q=abc,en;q=0.1", "en"),
])
def test_accept_language(accept, want):
    assert pick_language(accept.encode(), ["kk", "ru", "en"]) == want
    _, h, _ = get(portal(), "/", headers=[("Accept-Language", accept)])
    assert h["content-language"] == want


def test_the_link_carries_credentials_escaped():
    p = portal(user="ana bel", password="p&s=ü")
    assert p.tg_link() == "tg://socks?server=192.168.4.1&port=1080&user=ana%20bel&pass=p%26s%3D%C3%BC"
    _, _, body = get(p, "/?lang=en")
    assert "tg://socks?server=192.168.4.1&amp;port=1080&amp;user=ana%20bel" in body.decode()
    assert "<code>p&amp;s=ü</code>" in body.decode()  # spelled out for typing by hand


@pytest.mark.parametrize("host,path,online", [
    ("connectivitycheck.gstatic.com", "/generate_204", (204, b"")),
    ("www.google.com", "/gen_204", (204, b"")),
    ("captive.apple.com", "/hotspot-detect.html", (200, b"<HTML><HEAD><TITLE>Success</TITLE></HEAD><BODY>Success</BODY></HTML>")),
    ("www.msftconnecttest.com", "/connecttest.txt", (200, b"Microsoft Connect Test")),
    ("www.msftncsi.com", "/ncsi.txt", (200, b"Microsoft NCSI")),
    ("detectportal.firefox.com", "/success.txt", (200, b"success\n")),
    ("nmcheck.gnome.org", "/check_network_status.txt", (200, b"NetworkManager is online\n")),
    ("connectivity-check.ubuntu.com", "/", (204, b"")),
])
def test_captive_checks_before_and_after_continue(host, path, online):
    p = portal()
    status, h, body = get(p, path, host=host)
    assert status == 302 and h["location"] == "http://relay.lan/"  # not what the OS expects: it shows the portal
    status, _, _ = get(p, "/continue?lang=ru")
    assert status == 200
    assert get(p, path, host=host)[::2] == online
    assert get(p, path, host=host, client=OTHER)[0] == 302  # another phone has not clicked through yet


def test_random_sites_redirect_to_the_portal():
    p = portal()
    get(p, "/continue")
    status, h, _ = get(p, "/some/page?x=1", host="example.com")
    assert status == 302 and h["location"] == "http://relay.lan/"


def test_captive_portal_api():
    p = portal()
    status, h, body = get(p, "/captive-portal/api")
    assert status == 200 and h["content-type"] == "application/captive+json"
    assert json.loads(body) == {"captive": True, "user-portal-url": "http://relay.lan/"}
    get(p, "/continue")
    assert json.loads(get(p, "/captive-portal/api")[2])["captive"] is False


@pytest.mark.parametrize("path", ["/proxy.pac", "/wpad.dat"])
def test_pac(path):
    status, h, body = get(portal(), path, host="192.168.4.1")
    assert status == 200 and h["content-type"] == "application/x-ns-proxy-autoconfig"
    assert b'return "SOCKS5 192.168.4.1:1080; SOCKS 192.168.4.1:1080; PROXY 192.168.4.1:8080; DIRECT"' in body
    assert b'dnsDomainIs(host, "relay.lan")' in body


def test_status_page():
    status, _, body = get(portal(), "/status?lang=ru")
    assert status == 200 and "Сейчас подключено людей" in body.decode() and "<b id=people>7</b>" in body.decode()
    assert "работает" in body.decode()


def test_qr_and_misc_routes():
    p = portal()
    status, h, body = get(p, "/qr.svg")
    assert status == 200 and h["content-type"] == "image/svg+xml" and body.startswith(b"<svg")
    assert get(portal(qr_svg=None), "/qr.svg")[0] == 404
    assert get(p, "/nothing")[0] == 404
    assert get(p, "/", method="POST")[0] == 405
    status, h, body = get(p, "/", method="HEAD")
    assert status == 200 and body == b"" and int(h["content-length"]) > 1000


def test_portal_on_another_port_says_so_in_its_addresses():
    p = portal(port=8000, address="127.0.0.1")
    assert p.url == "http://relay.lan:8000/" and p.ip_url == "http://127.0.0.1:8000/"
    assert get(p, "/", host="127.0.0.1:8000")[0] == 200


def test_parse_head():
    r = parse_head(b"GET http://relay.lan:80/status?lang=kk&x HTTP/1.1\r\nHost: ignored")
    assert (r.host, r.path, r.query) == ("relay.lan", "/status", {"lang": "kk", "x": ""})
    assert parse_head(b"GET / HTTP/1.1\r\nHost: [fe80::1]:80").host == "[fe80::1]"
    assert parse_head(b"garbage") is None
    assert quote("a b/é") == "a%20b%2F%C3%A9"


@settings(max_examples=800, deadline=None)
@given(st.binary(max_size=300))
def test_fuzz_heads(head):
    out = portal().respond(head, PHONE, info)
    assert out.startswith(b"HTTP/1.1 ")


@settings(max_examples=500, deadline=None)
@given(st.sampled_from(["/", "/continue", "/status", "/admin", "/captive-portal/api", "/generate_204"]),
       st.text(max_size=40), st.binary(max_size=40))
def test_fuzz_queries_and_headers(path, query, header):
    head = b"GET " + path.encode() + b"?" + query.encode("utf-8", "replace").replace(b" ", b"") + b" HTTP/1.1\r\n"
    head += b"Accept-Language: " + header.replace(b"\r", b"").replace(b"\n", b"") + b"\r\nHost: relay.lan"
    assert portal().respond(head, PHONE, info).startswith(b"HTTP/1.1 ")


@pytest.mark.parametrize("lang,words", [
    ("en", ["working (2 h 5 min)", "2.5 MB", "1.2 MB", "only messages pass"]),
    ("ru", ["работает (2 ч 5 мин)", "2.5 МБ", "1.2 МБ", "только сообщения"]),
    ("kk", ["жұмыс істеп тұр (2 сағ 5 мин)", "2.5 МБ", "1.2 МБ", "тек хабарламалар"]),
])
def test_status_page_shows_uplink_budget_and_this_phones_share(lang, words):
    status, _, body = get(portal(), "/status?lang=" + lang)
    text = body.decode()
    assert status == 200
    for w in words:
        assert w in text, w


def test_status_page_tells_a_phone_over_quota():
    _, _, body = get(portal(), "/status?lang=en", client=b"\x0a\x0a\x0a\x0a")
    assert "used its share for today" in body.decode()


# -- the MTProto link (tg://proxy) ------------------------------------------------------------

MT_SECRET = "dd" + "0123456789abcdef" * 2
QR_MT = b'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 9 9" id="mtqr"><path d="M1 1h1"/></svg>'
MT_LINK = "tg://proxy?server=192.168.4.1&port=8443&secret=" + MT_SECRET


@pytest.mark.parametrize("lang", ["kk", "ru", "en"])
def test_mtproto_link_second_button_and_its_qr(lang):
    p = portal(mtproto=("192.168.4.1", 8443, MT_SECRET), qr_mtproto_svg=QR_MT)
    assert p.mt_link() == MT_LINK
    for path in ("/?lang=" + lang, "/continue?lang=" + lang):
        text = get(p, path)[2].decode()
        links = Links()
        links.feed(text)
        socks = links.hrefs.index("tg://socks?server=192.168.4.1&port=1080")
        assert links.hrefs.index(MT_LINK) == socks + 1  # SOCKS5 first (it carries calls), MTProto next
        assert TEXT[lang]["button_mt"] in text and TEXT[lang]["mt_hint"] in text
    text = get(p, "/?lang=" + lang)[2].decode()
    links = Links()
    links.feed(text)
    assert links.svg == 2 and 'id="qrmt"><svg' in text and 'id="mtqr"' in text
    assert '<code id="mtlink">' + MT_LINK.replace("&", "&amp;") + "</code>" in text
    status, h, body = get(p, "/qr-mtproto.svg")
    assert status == 200 and h["content-type"] == "image/svg+xml" and body == QR_MT


def test_mtproto_only_and_none():
    p = portal(socks=None, mtproto=("192.168.4.1", 8443, MT_SECRET), qr_mtproto_svg=QR_MT)
    text = get(p, "/?lang=en")[2].decode()
    assert 'id="tgmt" href="' + MT_LINK.replace("&", "&amp;") in text and 'id="tg"' not in text
    assert TEXT["en"]["mt_hint"] not in text  # no "first button" to refer to
    plain = portal()
    text = get(plain, "/?lang=en")[2].decode()
    assert "tg://proxy" not in text and TEXT["en"]["button_mt"] not in text
    assert get(plain, "/qr-mtproto.svg")[0] == 404
    assert portal(qr_mtproto_svg=QR_MT).qr_mt is None  # a QR without a listener is not shown


def test_ee_secret_link_is_escaped_whole():
    secret = "ee" + "00" * 16 + "www.example.com".encode().hex()
    p = portal(mtproto=("10.0.0.1", 443, secret))
    assert p.mt_link() == "tg://proxy?server=10.0.0.1&port=443&secret=" + secret


@pytest.mark.parametrize("lang", ["kk", "ru", "en"])
def test_status_page_says_when_the_clock_is_unknown(lang):
    p = portal()

    def with_clock(known):
        return lambda ip: dict(info(ip), clock={"known": known, "source": "ntp" if known else None})

    head = ("GET /status?lang=%s HTTP/1.1\r\nHost: relay.lan" % lang).encode()
    unknown = p.respond(head, PHONE, with_clock(False)).decode()
    assert "<b id=clock>%s</b>" % TEXT[lang]["unknown"] in unknown and TEXT[lang]["clock_note"] in unknown
    known = p.respond(head, PHONE, with_clock(True)).decode()
    assert "<b id=clock>%s</b>" % TEXT[lang]["clock_ok"] in known and TEXT[lang]["clock_note"] not in known
    assert "id=clock" not in get(p, "/status")[2].decode()  # no MTProto: no clock to speak of
