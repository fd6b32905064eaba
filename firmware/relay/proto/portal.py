"""The onboarding portal, sans-I/O: one HTTP request head in, one response out.

Portal.respond(head, client_ip, info) -> response bytes, where head is the
request head without its blank line, client_ip the asker's address bytes and
info(client_ip) a callable returning {"people": n, "uplink": True/False/None, "since_s", "share",
"counters": {...}, "clock": {"known": bool, ...} when MTProto runs} (called only for the pages that
show them). Two Telegram links: tg://socks (SOCKS5, carries calls) and, when the MTProto listener
runs, tg://proxy (obfuscated MTProto: resists filtering, no calls), each with its QR code.

Routes on the portal's own names and address:
  /                      onboarding page (kk, ru, en by Accept-Language or ?lang=)
  /continue              click-through: the phone's connectivity checks now answer "online"
  /tg/socks, /tg/proxy   the Telegram buttons: the same click-through, then a redirect to the tg:// link,
                         so the first tap keeps the phone on the Wi-Fi (the sign-in window may close)
  /status                uplink state and how many people are on the relay
  /admin                 admin.py's, when portal.admin_on_wifi lets it answer on the Wi-Fi (the I/O side routes it)
  /proxy.pac, /wpad.dat  proxy auto-config for browsers (also on wpad, wpad.lan, wpad.<the names' domains>)
  /captive-portal/api    RFC 8908 captive-portal API (application/captive+json)
  /qr.svg                the QR code of the Telegram link, if one was given
  /qr-mtproto.svg        the QR code of the tg://proxy link, if one was given
Requests for any other host are operating systems' connectivity checks (the
DNS responder sent them here): before the click-through they are redirected
to the portal, which makes the phone show its sign-in window; after it they
get the answer each OS expects from the internet.

No sockets, no clock, no files: the QR image comes in as bytes. Clients are
remembered only as a salted hash, in memory, capped.
"""

import hashlib
import json

from relay.proto.portal_text import LANG_NAMES, TEXT

_SEEN_MAX = 4096  # phones that clicked through; the set starts afresh when full (they just see the page again)

# Connectivity checks: (host, path) -> (status, content type, body) an online network gives.
# Host None: any host asking for that path.
ONLINE = (
    (None, "/generate_204", (204, None, b"")),
    (None, "/gen_204", (204, None, b"")),
    (None, "/hotspot-detect.html",
     (200, "text/html", b"<HTML><HEAD><TITLE>Success</TITLE></HEAD><BODY>Success</BODY></HTML>")),
    (None, "/library/test/success.html",
     (200, "text/html", b"<HTML><HEAD><TITLE>Success</TITLE></HEAD><BODY>Success</BODY></HTML>")),
    (None, "/connecttest.txt", (200, "text/plain", b"Microsoft Connect Test")),
    (None, "/ncsi.txt", (200, "text/plain", b"Microsoft NCSI")),
    (None, "/success.txt", (200, "text/plain", b"success\n")),
    (None, "/canonical.html", (200, "text/html",
     b'<meta http-equiv="refresh" content="0;url=https://support.mozilla.org/kb/captive-portal"/>')),
    (None, "/check_network_status.txt", (200, "text/plain", b"NetworkManager is online\n")),
    (None, "/nm-check.txt", (200, "text/plain", b"NetworkManager is online\n")),
    (None, "/static/hotspot.txt", (200, "text/plain", b"OK\n")),
    ("networkcheck.kde.org", "/", (200, "text/plain", b"OK\n")),
    ("connectivity-check.ubuntu.com", "/", (204, None, b"")),
)

_REASONS = {200: "OK", 204: "No Content", 302: "Found", 400: "Bad Request", 401: "Unauthorized", 403: "Forbidden",
            404: "Not Found", 405: "Method Not Allowed", 429: "Too Many Requests", 503: "Service Unavailable"}

_CSS = (
    "body{font:16px/1.45 sans-serif;margin:0;padding:12px;max-width:36em;color:#111;background:#fff}"
    "h1{font-size:1.35em;margin:.3em 0}h2{font-size:1.1em;margin:1.2em 0 .3em}"
    ".btn{display:block;text-align:center;background:#229ed9;color:#fff;font-size:1.25em;font-weight:bold;"
    "padding:16px 8px;border-radius:10px;text-decoration:none;margin:14px 0 6px}"
    ".btn2{background:#fff;color:#1b7fb0;border:2px solid #229ed9;font-size:1.05em;padding:10px 8px;margin:10px 0 4px}"
    ".btn3{background:#eee;color:#222;font-size:1.05em;font-weight:normal;padding:10px 8px;margin:10px 0 4px}"
    ".lang{text-align:right}.lang a,.lang b{margin-left:10px}"
    ".qr svg,.qr img{width:220px;height:220px;display:block;margin:6px auto}"
    "table{border-collapse:collapse}td{padding:3px 10px 3px 0;vertical-align:top}"
    "code{font-size:1.1em;background:#eee;padding:1px 4px;word-break:break-all}"
    ".note{color:#444;font-size:.93em}"
)


def esc(s):
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")


_SAFE = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~"


def quote(s):
    out = []
    for b in s.encode():
        out.append(chr(b) if b in _SAFE else "%%%02X" % b)
    return "".join(out)


def pick_language(accept, languages):
    """The best of languages for an Accept-Language value (bytes or None); else the first."""
    best, best_q = languages[0], -1.0
    if accept:
        for part in _text(accept).split(","):
            bits = part.strip().split(";")
            tag = bits[0].strip().lower().split("-")[0]
            q = 1.0
            for b in bits[1:]:
                b = b.strip()
                if b.startswith("q="):
                    try:
                        q = float(b[2:])
                    except ValueError:
                        q = 0.0
            if tag in languages and q > best_q and q > 0:
                best, best_q = tag, q
    return best


def _text(b):
    try:
        return bytes(b).decode()
    except UnicodeError:
        return ""  # headers we read are ASCII; anything else is treated as absent


class Request:
    __slots__ = ("method", "path", "query", "host", "headers")


def parse_head(head):
    """-> Request, or None when the head is not an HTTP/1.x request."""
    lines = head.split(b"\r\n")
    parts = lines[0].split(b" ")
    if len(parts) != 3 or not parts[2].startswith(b"HTTP/1."):
        return None
    r = Request()
    r.method = parts[0]
    target = _text(parts[1])
    host = ""
    if target.startswith("http://"):  # absolute form, as a proxy-configured browser sends
        rest = target[7:]
        cut = rest.find("/")
        host, target = (rest, "/") if cut < 0 else (rest[:cut], rest[cut:])
    q = target.find("?")
    r.path = target if q < 0 else target[:q]
    r.query = {}
    if q >= 0:
        for pair in target[q + 1 :].split("&"):
            kv = pair.split("=", 1)
            r.query[kv[0]] = kv[1] if len(kv) > 1 else ""
    r.headers = {}
    for line in lines[1:]:
        colon = line.find(b":")
        if colon > 0:
            r.headers[line[:colon].strip().lower()] = line[colon + 1 :].strip()
    if not host:
        host = _text(r.headers.get(b"host", b""))
    if host.startswith("["):
        host = host[: host.find("]") + 1]
    elif ":" in host:
        host = host.split(":")[0]
    r.host = host.lower().rstrip(".")
    return r


def _duration(seconds, t):
    h, m = seconds // 3600, (seconds % 3600) // 60
    return "%d %s %d %s" % (h, t["hours"], m, t["minutes"]) if h else "%d %s" % (m, t["minutes"])


def _mb(n, t):
    return "%d.%d %s" % (n // 1000000, (n % 1000000) // 100000, t["mb"])


def wpad_names(names):
    """The names a browser's proxy auto-discovery asks for: wpad, and wpad.<domain> for the domain of each
    portal name (relay.lan -> wpad.lan)."""
    out = ["wpad"]
    for n in names:
        n = n.lower().rstrip(".")
        dot = n.find(".")
        if dot > 0 and "wpad" + n[dot:] not in out:
            out.append("wpad" + n[dot:])
    return out


def response(status, ctype, body, extra="", head_only=False):
    h = "HTTP/1.1 %d %s\r\n" % (status, _REASONS.get(status, "OK" if status < 300 else "Error"))
    if ctype:
        h += "Content-Type: " + ctype + "\r\n"
    h += "Content-Length: %d\r\nCache-Control: no-store\r\nConnection: close\r\n%s\r\n" % (len(body), extra)
    return h.encode() if head_only else h.encode() + body


def layout(lang, languages, title, body, path="/"):
    """A whole page in the portal's look: the language links, the title, body (HTML), the status link."""
    t = TEXT[lang]
    links = []
    for code, name in LANG_NAMES:
        if code in languages:
            links.append("<b>%s</b>" % name if code == lang else '<a href="%s?lang=%s">%s</a>' % (path, code, name))
    return (
        '<!DOCTYPE html><html lang="%s"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        "<title>%s</title><style>%s</style></head><body>"
        '<div class="lang">%s</div><h1>%s</h1>%s'
        '<p class="note"><a href="/status?lang=%s">%s</a></p></body></html>'
        % (lang, esc(title), _CSS, " ".join(links), esc(title), body, lang, esc(t["status"]))
    )


class Portal:
    def __init__(self, address, port, names=("relay.lan",), socks=None, http=None, user=None, password=None,
                 languages=("kk", "ru", "en"), qr_svg=None, salt=b"", mtproto=None,
                 qr_mtproto_svg=None, preset="open"):
        """address: the relay's IP on the Wi-Fi side (text); socks/http: (address text, port) or None;
        mtproto: (address text, port, secret as links write it) or None; preset: policy.preset, which the
        page's words follow (what passes through this relay)."""
        self.address = address
        self.port = port
        self.names = [n.lower().rstrip(".") for n in names]
        self.socks = socks
        self.http = http
        self.user = user
        self.password = password
        self.languages = list(languages)
        self.qr = self._inline_svg(qr_svg)
        self.mtproto = mtproto
        self.qr_mt = self._inline_svg(qr_mtproto_svg) if mtproto else None
        self.salt = salt
        self.seen = {}
        suffix = "" if port == 80 else ":%d" % port
        host = address if ":" not in address else "[" + address + "]"
        self.url = "http://%s%s/" % (self.names[0] if self.names else host, suffix)
        self.ip_url = "http://%s%s/" % (host, suffix)
        self.own_hosts = self.names + [address.lower(), host.lower()] + wpad_names(self.names)
        self.preset = preset

    @staticmethod
    def _inline_svg(svg):
        if not svg:
            return None
        start = svg.find(b"<svg")
        return svg[start:] if start >= 0 else None

    # -- the Telegram link -------------------------------------------------

    def tg_link(self):
        if self.socks is None:
            return None
        link = "tg://socks?server=%s&port=%d" % (quote(self.socks[0]), self.socks[1])
        if self.user:
            link += "&user=%s&pass=%s" % (quote(self.user), quote(self.password or ""))
        return link

    def mt_link(self):
        if self.mtproto is None:
            return None
        return "tg://proxy?server=%s&port=%d&secret=%s" % (quote(self.mtproto[0]), self.mtproto[1],
                                                            quote(self.mtproto[2]))

    def _buttons(self, t, lang):
        """The Telegram buttons, each through /tg/... (marks the phone as continued, then redirects to the
        link). One primary: SOCKS5 when the relay offers it (it works on any Telegram and carries calls),
        with the hint under it; MTProto then is the secondary, the fallback."""
        out = []
        link, mt = self.tg_link(), self.mt_link()
        if link:
            out.append('<a class="btn" id="tg" href="/tg/socks?lang=%s">%s</a>' % (lang, esc(t["button"])))
            out.append('<p class="note" id="hint">%s</p>' % esc(t["button_hint"]))
        if mt:
            cls = "btn btn2" if link else "btn"
            out.append('<a class="%s" id="tgmt" href="/tg/proxy?lang=%s">%s</a>' % (cls, lang, esc(t["button_mt"])))
            if not link:
                out.append('<p class="note" id="hint">%s</p>' % esc(t["button_hint"]))
        return out

    def _go(self, link, lang, client_ip, head_only):
        """A Telegram button's tap: the phone counts as continued, then the browser goes on to the link."""
        if link is None:
            return self._error(404, lang, "err_not_here", head_only)
        self.mark_seen(client_ip)
        body = ('<!DOCTYPE html><meta charset="utf-8"><a href="%s">%s</a>' % (esc(link), esc(TEXT[lang]["open_link"])))
        return response(302, "text/html; charset=utf-8", body.encode(), "Location: " + link + "\r\n", head_only)

    def _error(self, status, lang, key, head_only=False, extra=""):
        """A short plain-text answer in the page's language, with the address of the setup page."""
        body = TEXT[lang][key].replace("{url}", self.url) + "\n"
        return response(status, "text/plain; charset=utf-8", body.encode(), extra, head_only)

    # -- clients that clicked through ----------------------------------------

    def _key(self, client_ip):
        return hashlib.sha256(self.salt + bytes(client_ip)).digest()[:8]

    def mark_seen(self, client_ip):
        if len(self.seen) >= _SEEN_MAX:
            self.seen = {}
        self.seen[self._key(client_ip)] = True

    def has_seen(self, client_ip):
        return self._key(client_ip) in self.seen

    # -- dispatch ------------------------------------------------------------

    def respond(self, head, client_ip, info):
        r = parse_head(head)
        if r is None:
            return self._error(400, self.languages[0], "err_bad_request")
        head_only = r.method == b"HEAD"
        if r.method != b"GET" and not head_only:
            return self._error(405, self._lang(r), "err_method", False, "Allow: GET, HEAD\r\n")
        if r.host and r.host not in self.own_hosts:
            return self._foreign(r, client_ip, head_only)
        return self._own(r, client_ip, info, head_only)

    def _lang(self, r):
        lang = r.query.get("lang")
        if lang not in self.languages:
            lang = pick_language(r.headers.get(b"accept-language"), self.languages)
        return lang

    def _foreign(self, r, client_ip, head_only):
        """A connectivity check (or any site the DNS answered with our address)."""
        if self.has_seen(client_ip):
            for host, path, answer in ONLINE:
                if path == r.path and (host is None or host == r.host):
                    return response(answer[0], answer[1], answer[2], "", head_only)
        return response(302, "text/plain", b"", "Location: " + self.url + "\r\n", head_only)

    def _own(self, r, client_ip, info, head_only):
        lang = self._lang(r)
        p = r.path
        if p == "/" or p == "/index.html":
            body = self.page_home(lang)
        elif p == "/continue":
            self.mark_seen(client_ip)
            body = self.page_done(lang)
        elif p == "/tg/socks":
            return self._go(self.tg_link(), lang, client_ip, head_only)
        elif p == "/tg/proxy":
            return self._go(self.mt_link(), lang, client_ip, head_only)
        elif p == "/status":
            body = self.page_status(lang, info(client_ip))
        elif p == "/proxy.pac" or p == "/wpad.dat":
            return response(200, "application/x-ns-proxy-autoconfig", self.pac(), "", head_only)
        elif p == "/captive-portal/api":
            doc = {"captive": not self.has_seen(client_ip), "user-portal-url": self.url}
            return response(200, "application/captive+json", json.dumps(doc).encode(), "", head_only)
        elif p == "/qr.svg" and self.qr:
            return response(200, "image/svg+xml", self.qr, "", head_only)
        elif p == "/qr-mtproto.svg" and self.qr_mt:
            return response(200, "image/svg+xml", self.qr_mt, "", head_only)
        elif p in ("/generate_204", "/gen_204", "/hotspot-detect.html", "/connecttest.txt", "/success.txt"):
            return self._foreign(r, client_ip, head_only)  # a check sent straight to our address
        else:
            return self._error(404, lang, "err_not_here", head_only)
        return response(200, "text/html; charset=utf-8", body.encode(), "Content-Language: " + lang + "\r\n",
                        head_only)

    # -- pages -----------------------------------------------------------------

    def _page(self, lang, title, body, path="/"):
        return layout(lang, self.languages, title, body, path)

    def _words(self, t, key):
        """A text that depends on what passes: key_open under the "open" preset, key_messengers, else key."""
        return t.get(key + "_" + self.preset) or t[key]

    def page_home(self, lang):
        t = TEXT[lang]
        link = self.tg_link()
        url = '<a href="%s"><b>%s</b></a>' % (esc(self.url), esc(self.url.rstrip("/")))
        if self.ip_url != self.url:
            url += ' (<a href="%s"><b>%s</b></a>)' % (esc(self.ip_url), esc(self.ip_url.rstrip("/")))
        mt = self.mt_link()
        # The first screen of a small phone: what this is, the button, its hint, the other kind, Continue.
        parts = ["<p>%s</p>" % esc(self._words(t, "lead"))]
        if link or mt:
            parts += self._buttons(t, lang)
        parts.append('<a class="btn btn3" id="continue" href="/continue?lang=%s">%s</a>' % (lang, esc(t["continue"])))
        parts.append('<p class="note">%s</p>' % esc(t["continue_hint"]))
        if link or mt:
            if link and mt:
                parts.append('<p class="note">%s</p>' % esc(t["mt_hint"]))
            parts.append("<p>%s</p>" % esc(t["no_link"]).replace("{url}", url))
            if self.qr and link:
                parts.append('<p>%s</p><div class="qr" id="qr">%s</div>' % (esc(t["qr"]), self.qr.decode()))
            if self.qr_mt:
                parts.append('<p>%s</p><div class="qr" id="qrmt">%s</div>' % (esc(t["qr_mt"]), self.qr_mt.decode()))
        if self.socks:
            rows = [(t["server"], self.socks[0]), (t["port"], str(self.socks[1]))]
            if self.user:
                rows += [(t["user"], self.user), (t["password"], self.password or "")]
            parts.append("<h2>%s</h2><p>%s</p><table>" % (esc(t["manual"]), esc(t["manual_steps"])))
            for k, v in rows:
                parts.append("<tr><td>%s</td><td><code>%s</code></td></tr>" % (esc(k), esc(v)))
            parts.append("</table>")
            if link:
                parts.append('<p class="note"><code>%s</code></p>' % esc(link))
        if mt:
            parts.append('<p class="note">%s <code id="mtlink">%s</code></p>' % (esc(t["mt_manual"]), esc(mt)))
        if self.http:
            addr = "<code>%s:%d</code>" % (esc(self.http[0]), self.http[1])
            parts.append('<p class="note">%s</p>' % esc(t["http_proxy"]).replace("{addr}", addr))
        parts.append("<h2>%s</h2><p>%s</p><p>%s</p><p>%s</p>"
                     % (esc(t["about"]), esc(self._words(t, "about_text")), esc(t["privacy"]), esc(t["share"])))
        return self._page(lang, t["title"], "".join(parts))

    def page_done(self, lang):
        t = TEXT[lang]
        body = "<p><b>%s</b></p>" % esc(t["done"]) + "".join(self._buttons(t, lang))
        body += '<p><a href="/?lang=%s">%s</a></p>' % (lang, esc(t["back"]))
        return self._page(lang, t["title"], body, "/continue")

    def page_status(self, lang, info):
        t = TEXT[lang]
        up = info.get("uplink")
        state = t["unknown"] if up is None else (t["up"] if up else t["down"])
        since = info.get("since_s")
        if up is not None and since is not None:
            state += " (%s)" % _duration(since, t)
        rows = [(t["uplink"], "uplink", state), (t["people"], "people", str(info.get("people", 0)))]
        path = info.get("path", False)
        if path is not False:  # the path finder runs: which engine or upstream carries the traffic
            rows.insert(1, (t["path"], "path", path if path else t["path_none"]))
        via = info.get("via")
        if via is not None:  # a mesh: which relay carries the traffic
            rows.append((t["via"], "via", via or t["via_self"]))
        note = ""
        clock = info.get("clock")
        if clock is not None:
            rows.append((t["clock"], "clock", t["clock_ok"] if clock.get("known") else t["unknown"]))
        sh = info.get("share")
        if sh is not None:
            left = sh.get("budget_left_today")
            rows.append((t["left_today"], "left", t["no_limit"] if left is None else _mb(left, t)))
            mine = sh.get("your_left_today")
            rows.append((t["your_left"], "mine", t["no_limit"] if mine is None else _mb(mine, t)))
            stage = sh.get("stage")
            if mine == 0:
                note = t["quota_used"]
            elif stage == "exhausted":
                note = t["stage_exhausted"]
            elif stage == "small-only":
                note = t["stage_small"]
            elif stage == "slow-bulk":
                note = t["stage_slow"]
        body = "<table>%s</table>" % "".join(
            "<tr><td>%s</td><td><b id=%s>%s</b></td></tr>" % (esc(label), key, esc(value)) for label, key, value in rows)
        if note:
            body += '<p class="note" id=stage>%s</p>' % esc(note)
        if clock is not None and not clock.get("known"):
            body += '<p class="note" id=clocknote>%s</p>' % esc(t["clock_note"])
        body += '<p><a href="/?lang=%s">%s</a></p>' % (lang, esc(t["back"]))
        return self._page(lang, t["status"], body, "/status")

    def pac(self):
        routes = []
        if self.socks:
            s = "%s:%d" % self.socks
            routes += ["SOCKS5 " + s, "SOCKS " + s]
        if self.http:
            routes.append("PROXY %s:%d" % self.http)
        routes.append("DIRECT")
        # Exact names only: dnsDomainIs(host, "relay") would also match "somerelay" (a suffix test).
        local = " || ".join('host == "%s"' % n for n in self.names) or "false"
        return (
            "function FindProxyForURL(url, host) {\n"
            '  if (isPlainHostName(host) || host == "%s" || %s) return "DIRECT";\n'
            '  return "%s";\n}\n' % (self.address, local, "; ".join(routes))
        ).encode()
