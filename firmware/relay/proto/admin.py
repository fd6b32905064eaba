"""The admin page, sans-I/O: counters and a restart button behind the site's admin password.

Admin.respond(head, client_ip, wifi, info) -> response bytes. head: the request head without its blank
line; wifi: whether the request came from the phones' side (the portal's listener, or an address in the
Wi-Fi subnet); info(): the counters, asked for only by the page. After an answer that asks for it,
.restart_requested is True and the I/O side restarts the relay.

Where it answers: on the status listener (loopback, the wired or uplink side) whenever a password is
set; from the Wi-Fi only with portal.admin_on_wifi, since HTTP Basic there carries the password through
the open air for anyone nearby to read. Guessing is braked (LoginBrake) per source and for each side as
a whole, so a flood from the Wi-Fi never locks out the wired side (nor the console, which needs no
password). A restart needs the token of this login's page (single use, for 10 minutes) and a request of
the page's own origin whose Host is an address or one of the relay's names: no cross-site form, no DNS
rebinding.

No sockets and no clock of its own: now() and since(t) (milliseconds; since copes with a clock that
wraps, as MicroPython's ticks do) and random(n) come in.
"""

import binascii

from relay.proto.crypto import equal
from relay.proto.httpproxy import parse_basic
from relay.proto.origin import host_ok, same_origin
from relay.proto.portal import esc, layout, parse_head, pick_language, response
from relay.proto.portal_text import TEXT

_REALM = 'WWW-Authenticate: Basic realm="relay admin", charset="UTF-8"\r\n'
_TOKEN_MS = 600000  # a page's restart button works for 10 minutes
_TOKENS_MAX = 16  # logins remembered at once; the oldest gives way


class LoginBrake:
    """How long a source must wait before its next password is even checked.

    Per source: FREE failures, then a wait that doubles with each failure (1 s ... MAX_WAIT_MS).
    Per side (the Wi-Fi, the rest): a bucket of SIDE_BURST failures refilled one per SIDE_REFILL_MS, so
    many sources (a phone that keeps changing its address) are braked together, and a flood on one side
    leaves the other's bucket alone. A success clears its source. Addresses stay in memory only,
    at most MAX_SOURCES of them, and are forgotten once their wait is over and an hour has passed."""

    FREE = 5
    MAX_WAIT_MS = 300000
    SIDE_BURST = 20
    SIDE_REFILL_MS = 3000
    FORGET_MS = 3600000
    MAX_SOURCES = 256

    def __init__(self, now, since):
        self.now = now
        self.since = since
        self.sources = {}  # ip -> [failures, wait ms, time of the last failure]
        t = now()
        self.sides = {True: [self.SIDE_BURST, t], False: [self.SIDE_BURST, t]}  # wifi? -> [failures left, refill time]

    def _elapsed(self, t):
        d = self.since(t)
        return d if d >= 0 else self.FORGET_MS  # a clock that wrapped round: long ago

    def _side(self, wifi):
        side = self.sides[wifi]
        k = self._elapsed(side[1]) // self.SIDE_REFILL_MS
        if k:
            side[0] = min(self.SIDE_BURST, side[0] + k)
            side[1] = self.now()
        return side

    def wait_ms(self, ip, wifi):
        """0 when a password from ip may be checked now, else the milliseconds until it may."""
        e = self.sources.get(ip)
        if e is not None:
            left = e[1] - self._elapsed(e[2])
            if left > 0:
                return left
        side = self._side(wifi)
        if side[0] < 1:
            return max(1, self.SIDE_REFILL_MS - self._elapsed(side[1]))
        return 0

    def failed(self, ip, wifi):
        side = self._side(wifi)
        side[0] -= 1
        e = self.sources.get(ip)
        if e is None:
            if len(self.sources) >= self.MAX_SOURCES:
                self._forget()
            e = self.sources[ip] = [0, 0, 0]
        e[0] += 1
        n = e[0] - self.FREE
        e[1] = 0 if n <= 0 else min(self.MAX_WAIT_MS, 1000 << min(n - 1, 16))
        e[2] = self.now()
        return side[0] < 1  # True: this side is now closed for a while

    def succeeded(self, ip):
        self.sources.pop(ip, None)

    def _forget(self):
        for ip in list(self.sources):
            e = self.sources[ip]
            if self._elapsed(e[2]) >= max(e[1], self.FORGET_MS):
                del self.sources[ip]
        if len(self.sources) >= self.MAX_SOURCES:
            # Still full: drop those not waiting. The side's bucket brakes them together all the same.
            for ip in list(self.sources):
                e = self.sources[ip]
                if self._elapsed(e[2]) >= e[1]:
                    del self.sources[ip]
        if len(self.sources) >= self.MAX_SOURCES:
            self.sources.clear()


class Admin:
    def __init__(self, password, names, on_wifi, languages, now, since, random):
        self.password = password.encode()
        self.names = [n.lower().rstrip(".") for n in names] + ["localhost"]
        self.on_wifi = on_wifi
        self.languages = list(languages)
        self.now = now
        self.since = since
        self.random = random
        self.brake = LoginBrake(now, since)
        self.tokens = []  # [token, time issued], oldest first
        self.restart_requested = False
        self.side_closed = False  # set when a side's bucket ran dry: the I/O side logs it once

    def respond(self, head, client_ip, wifi, info):
        r = parse_head(head)
        if r is None:
            return self._say(400, self.languages[0], "err_bad_request")
        lang = r.query.get("lang")
        if lang not in self.languages:
            lang = pick_language(r.headers.get(b"accept-language"), self.languages)
        head_only = r.method == b"HEAD"
        if not self.password:
            return self._say(404, lang, "err_admin_off", head_only)
        if wifi and not self.on_wifi:
            return self._say(404, lang, "err_admin_wifi", head_only)
        if not self._host_ok(r.host):
            return self._say(403, lang, "err_admin_host", head_only)
        if r.path == "/admin":
            if r.method != b"GET" and not head_only:
                return self._say(405, lang, "err_method", False, "Allow: GET, HEAD\r\n")
            refused = self._login(r, client_ip, wifi, lang, head_only)
            if refused is not None:
                return refused
            body = self.page(lang, info(), self._new_token())
            return response(200, "text/html; charset=utf-8", body.encode(), "Content-Language: " + lang + "\r\n",
                            head_only)
        if r.path == "/admin/restart":
            if r.method != b"POST":
                return self._say(405, lang, "err_method", head_only, "Allow: POST\r\n")
            if not self._same_origin(r):
                return self._say(403, lang, "err_admin_cross")
            refused = self._login(r, client_ip, wifi, lang, False)
            if refused is not None:
                return refused
            if not self._use_token(r.query.get("token")):
                return self._say(403, lang, "err_admin_token")
            self.restart_requested = True  # the I/O side restarts once this answer is sent
            return self._say(200, lang, "admin_restarting")
        return self._say(404, lang, "err_not_here", head_only)

    def _say(self, status, lang, key, head_only=False, extra=""):
        """A short plain-text answer in the page's language."""
        body = TEXT[lang][key].replace("{url}", "/admin") + "\n"
        return response(status, "text/plain; charset=utf-8", body.encode(), extra, head_only)

    # -- who may ask ---------------------------------------------------------

    def _host_ok(self, host):
        """An address or one of our names: a name of someone else's means DNS rebinding."""
        return host_ok(host, self.names)

    def _same_origin(self, r):
        """A browser names the page a POST comes from: it must be this relay's, as the Host says
        (proto/origin.py). Clients that send neither Origin nor Referer are not browsers."""
        return same_origin(r.headers.get(b"host", b""), r.headers.get(b"origin"), r.headers.get(b"referer"))

    def _login(self, r, client_ip, wifi, lang, head_only):
        """None when the request carries the password and may have it checked, else the answer."""
        ip = bytes(client_ip)
        wait = self.brake.wait_ms(ip, wifi)
        if wait:
            return self._say(429, lang, "err_admin_wait", head_only, "Retry-After: %d\r\n" % ((wait + 999) // 1000))
        cred = parse_basic(r.headers.get(b"authorization"))  # any user name: the password is what counts
        got = None if cred is None else cred[1]
        if got is None:
            return self._say(401, lang, "err_admin_password", head_only, _REALM)
        if not equal(got, self.password):
            if self.brake.failed(ip, wifi):
                self.side_closed = True
            return self._say(401, lang, "err_admin_password", head_only, _REALM)
        self.brake.succeeded(ip)
        return None

    # -- restart tokens: one per login ----------------------------------------

    def _new_token(self):
        token = binascii.hexlify(self.random(12)).decode()
        if len(self.tokens) >= _TOKENS_MAX:
            self.tokens.pop(0)
        self.tokens.append([token, self.now()])
        return token

    def _use_token(self, token):
        for i in range(len(self.tokens)):
            t, issued = self.tokens[i]
            if token is not None and equal(token.encode(), t.encode()):
                self.tokens.pop(i)
                age = self.since(issued)
                return 0 <= age < _TOKEN_MS
        return False

    # -- the page --------------------------------------------------------------

    def page(self, lang, info, token):
        from relay.proto.portal_counters import rows as counter_rows  # its words load only for this page

        t = TEXT[lang]
        rows = []
        for k, v in counter_rows(info.get("counters", {}), lang):
            rows.append("<tr><td>%s</td><td><code>%s</code></td></tr>" % (esc(k), esc(v)))
        body = "<h2>%s</h2><table id=counters>%s</table>" % (esc(t["counters"]), "".join(rows))
        body += ('<form method="post" action="/admin/restart?token=%s"><button class="btn" id=restart>%s</button>'
                 "</form>" % (token, esc(t["restart"])))
        return layout(lang, self.languages, t["admin"], body, "/admin")
