"""The onboarding portal's routing and pages (relay.portal), request heads in, responses out."""

import base64
import json
import re
from html.parser import HTMLParser

import pytest
from hypothesis import given, settings, strategies as st

from relay.proto.admin import Admin
from relay.proto.portal import Portal, parse_head, pick_language, quote
from relay.proto.portal_text import TEXT

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
    assert "/tg/socks?lang=" + lang in p.hrefs  # the button: through the click-through, then to the link
    assert "<code>tg://socks?server=192.168.4.1&amp;port=1080</code>" in text  # spelled out too
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


@pytest.mark.parametrize("host", ["wpad", "wpad.lan", "WPAD.LAN.", "wpad.relay"])
def test_wpad_names_get_the_pac_not_a_redirect(host):
    """Browsers' auto-discovery asks http://wpad/wpad.dat (and wpad.<domain>): the relay is that host."""
    p = portal(names=["relay.lan", "relay", "portal.relay"])
    status, h, body = get(p, "/wpad.dat", host=host)
    assert status == 200 and h["content-type"] == "application/x-ns-proxy-autoconfig", (status, h)
    assert body.startswith(b"function FindProxyForURL")
    assert get(p, "/wpad.dat", host="wpad.example.com")[0] == 302  # not a domain of ours


def test_pac_in_a_real_pac_engine_sends_only_the_relays_names_direct():
    """pacparser evaluates the PAC as a browser does; a host merely ending in "relay" goes through the proxy."""
    pacparser = pytest.importorskip("pacparser")
    body = get(portal(), "/wpad.dat")[2].decode()
    proxied = "SOCKS5 192.168.4.1:1080; SOCKS 192.168.4.1:1080; PROXY 192.168.4.1:8080; DIRECT"
    pacparser.init()
    try:
        pacparser.parse_pac_string(body)
        for host, want in (("relay.lan", "DIRECT"), ("relay", "DIRECT"), ("192.168.4.1", "DIRECT"),
                           ("somerelay", "DIRECT"),  # a plain host name: never a proxy
                           ("evil.somerelay", proxied), ("notrelay.lan", proxied), ("www.relay.lan.example", proxied),
                           ("web.telegram.org", proxied)):
            assert pacparser.find_proxy("http://%s/" % host, host) == want, host
    finally:
        pacparser.cleanup()


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
        socks = links.hrefs.index("/tg/socks?lang=" + lang)
        assert links.hrefs.index("/tg/proxy?lang=" + lang) == socks + 1  # SOCKS5 first (it carries calls)
        assert TEXT[lang]["button_mt"] in text
    assert TEXT[lang]["mt_hint"] in get(p, "/?lang=" + lang)[2].decode()
    status, h, _ = get(p, "/tg/proxy?lang=" + lang)
    assert status == 302 and h["location"] == MT_LINK
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
    assert 'class="btn" id="tgmt" href="/tg/proxy?lang=en"' in text and 'id="tg"' not in text  # the primary now
    assert get(p, "/tg/socks")[0] == 404  # no SOCKS5 link to go to
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


# -- issue 15: the first tap keeps the phone, one primary button, words that fit, answers in the page's language

@pytest.mark.parametrize("path,link", [("/tg/socks", "tg://socks?server=192.168.4.1&port=1080"),
                                       ("/tg/proxy", MT_LINK)])
def test_the_telegram_button_marks_the_phone_continued_then_redirects(path, link):
    """Tapping "Open Telegram" is the click-through: the phone's connectivity checks answer "online" from then
    on, so closing Telegram's sheet does not drop the phone off the Wi-Fi."""
    p = portal(mtproto=("192.168.4.1", 8443, MT_SECRET))
    check = ("/generate_204", "connectivitycheck.gstatic.com")
    assert get(p, check[0], host=check[1])[0] == 302
    status, h, body = get(p, path + "?lang=ru")
    assert status == 302 and h["location"] == link
    assert link.replace("&", "&amp;").encode() in body  # for a browser that shows the body instead
    assert get(p, check[0], host=check[1])[0] == 204
    assert get(p, check[0], host=check[1], client=OTHER)[0] == 302  # only the phone that tapped


@pytest.mark.parametrize("lang", ["kk", "ru", "en"])
def test_one_primary_button_with_the_hint_under_it(lang):
    p = portal(mtproto=("192.168.4.1", 8443, MT_SECRET))
    text = get(p, "/?lang=" + lang)[2].decode()
    buttons = re.findall(r'<a class="([^"]*)" id="(tg|tgmt)"', text)
    assert buttons == [("btn", "tg"), ("btn btn2", "tgmt")]  # SOCKS5 primary, MTProto secondary
    after_primary = text.split('id="tg"', 1)[1].split("</a>", 1)[1]
    assert after_primary.startswith('<p class="note" id="hint">%s</p>' % TEXT[lang]["button_hint"])
    assert text.index('id="continue"') < text.index('id="qr"')  # Continue before the codes and the long texts


@pytest.mark.parametrize("lang", ["kk", "ru", "en"])
def test_page_words_follow_the_policy_in_force(lang):
    t = TEXT[lang]
    restricted = get(portal(preset="telegram"), "/?lang=" + lang)[2].decode()
    assert t["about_text"] in restricted and t["lead"] in restricted
    opened = get(portal(preset="open"), "/?lang=" + lang)[2].decode()
    assert t["about_text"] not in opened and t["lead"] not in opened
    assert t["about_text_open"] in opened and t["lead_open"] in opened
    messengers = get(portal(preset="messengers"), "/?lang=" + lang)[2].decode()
    assert t["about_text_messengers"] in messengers and "WhatsApp" in messengers


def status_line(raw):
    return raw.split(b"\r\n", 1)[0].decode()


def admin(password="s3cret pass"):
    """The admin page as the status listener serves it (relay.admin), on a clock that stands still."""
    return Admin(password, ["relay.lan", "192.168.4.1"], False, ["kk", "ru", "en"], lambda: 0, lambda t: 0,
                 lambda n: bytes(n))


def ask_admin(a, path, lang=None, method="GET", auth="x:s3cret pass", counters=None):
    head = "%s %s HTTP/1.1\r\nHost: relay.lan" % (method, path)
    if auth is not None:
        head += "\r\nAuthorization: Basic " + base64.b64encode(auth.encode()).decode()
    if lang is not None:
        head += "\r\nAccept-Language: " + lang
    raw = a.respond(head.encode(), bytes([10, 0, 0, 2]), False,
                    lambda: {"counters": counters if counters is not None else info()["counters"]})
    head, _, body = raw.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), head.decode(), body


def test_status_lines_carry_their_own_reason_phrase():
    p = portal()
    assert status_line(p.respond(b"garbage", PHONE, info)) == "HTTP/1.1 400 Bad Request"
    auth = "Basic " + base64.b64encode(b"x:s3cret pass").decode()
    head = ("POST /admin/restart?token=wrong HTTP/1.1\r\nHost: relay.lan\r\nAuthorization: " + auth).encode()
    assert status_line(admin().respond(head, PHONE, False, lambda: info())) == "HTTP/1.1 403 Forbidden"
    assert status_line(p.respond(b"PUT / HTTP/1.1\r\nHost: relay.lan", PHONE, info)) == "HTTP/1.1 405 Method Not Allowed"
    assert status_line(p.respond(b"GET /x HTTP/1.1\r\nHost: relay.lan", PHONE, info)) == "HTTP/1.1 404 Not Found"


@pytest.mark.parametrize("lang", ["kk", "ru", "en"])
def test_error_bodies_speak_the_pages_language(lang):
    p = portal()
    for path, method, status, key in (("/nothing", "GET", 404, "err_not_here"), ("/", "PUT", 405, "err_method")):
        got, h, body = get(p, path + "?lang=" + lang, method=method)
        assert got == status and h["content-type"] == "text/plain; charset=utf-8"
        assert body.decode() == TEXT[lang][key].replace("{url}", "http://relay.lan/") + "\n"
    got, h, body = ask_admin(admin(), "/admin?lang=" + lang, auth=None)
    assert got == 401 and "charset=utf-8" in h and body.decode() == TEXT[lang]["err_admin_password"] + "\n"
    got, _, body = ask_admin(admin(password=""), "/admin", lang=lang)
    assert got == 404 and body.decode() == TEXT[lang]["err_admin_off"] + "\n"


COUNTERS = {"sessions": 4, "tunnels_open": 3, "tunnels_total": 120, "bytes_up": 2500000, "bytes_down": 75300000,
            "refused": {"guard": 2, "client-full": 1, "mtproto-secret": 5}, "version": "0.1.0", "runtime": "cpython",
            "heap_used": None, "uplink": {"up": True, "since_s": 30, "changes": 1},
            "mtproto": {"clock_known": True, "clock": {"known": True, "source": "ntp", "floor": 0, "syncs": 2},
                        "clock_unknown": "accept",
                        "secrets": [{"kind": "dd", "connects": 9, "open": 1, "bytes_up": 1000, "bytes_down": 900000}]},
            "upstreams": [], "dns": {"answered": 10, "forwarded": 4, "cached": 1, "refused": 2, "dropped": 0}}


@pytest.mark.parametrize("lang,words", [
    ("ru", ["открытых туннелей", "запрещённый адрес: 2", "слишком много от одного телефона: 1", "75.3 МБ",
            "MTProto: неверный секрет: 5", "работает: да"]),
    ("kk", ["ашық туннельдер", "тыйым салынған мекенжай: 2", "75.3 МБ", "жұмыс істеп тұр: иә"]),
    ("en", ["tunnels open", "forbidden destination: 2", "too many from one phone: 1", "75.3 MB", "working: yes"]),
])
def test_admin_counters_in_the_pages_language_not_raw_keys(lang, words):
    status, _, body = ask_admin(admin(), "/admin?lang=" + lang, counters=COUNTERS)
    text = body.decode()
    assert status == 200
    table = text.split("<table id=counters>", 1)[1].split("</table>", 1)[0]
    for w in words:
        assert w in table, w
    for raw in ("{", "}", "[", "'", "tunnels_open", "client-full", "bytes_down", "None", "True"):
        assert raw not in table, raw
