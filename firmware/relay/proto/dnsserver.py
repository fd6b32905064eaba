"""The Wi-Fi side's DNS responder, sans-I/O: one query in, one decision out.

DNSResponder.handle(packet, now_ms) returns
  None                      drop it (malformed, a response, not a query we answer)
  (REPLY, bytes)            send these bytes back to the asker
  (FORWARD, Query)          the name is allowed: the I/O side asks the upstream
                            resolver, then calls finish(query, answer, now_ms)
                            (or fail(query) on timeout) for the bytes to send.
The decision per name:
  - operating systems' connectivity checks and the relay's own names get the
    relay's address, so a phone opens the portal;
  - names the site policy allows (policy.py) are forwarded, answers cached within their TTLs;
  - everything else gets NXDOMAIN (or the portal's address, dns.answer_unknown)
    so no query leaks to the uplink;
  - a name the policy cannot judge (a label holding a dot, a space, a byte
    outside a-z 0-9 - _) is REFUSED: "telegram.org" as one label must never
    pass for the name telegram.org, nor be cached as it.
Cache entries are keyed by the name as a sequence of labels (dns.py's escaped
text, ASCII case folded) and type; an upstream answer is used only when its
question is the one asked, and every answer carries the asker's own question.
No sockets, no clock (now_ms comes in), nothing logged: names are never kept
beyond the cache of allowed ones.
"""

from relay.proto import dns
from relay.proto.const import const

REPLY = const(1)
FORWARD = const(2)

_OWN_TTL = const(30)  # short: once the phone leaves the relay it asks its new network soon
_MIN_TTL = const(5)
_MAX_TTL = const(3600)
_NEG_TTL = const(60)  # an NXDOMAIN without an SOA to say how long
_CACHE_MAX = const(256)  # entries; a crowd of phones asks for a few dozen Telegram names
_MAX_QUERY = const(4096)  # a query is a few dozen bytes; anything bigger is not one
_TYPE_HTTPS = const(65)

# Default policy until policy.py exists: Telegram's domains.

# Names operating systems fetch to learn whether a network needs a sign-in.
CAPTIVE_NAMES = (
    # Android, ChromeOS and Chrome
    "connectivitycheck.gstatic.com", "connectivitycheck.android.com", "clients1.google.com",
    "clients3.google.com", "clients.l.google.com", "www.google.com", "play.googleapis.com",
    "www.gstatic.com",
    # Android vendors' own checks
    "connect.rom.miui.com", "connectivitycheck.platform.hicloud.com", "connectivitycheck.cbg-app.huawei.com",
    "wifi.vivo.com.cn", "conn1.oppomobile.com", "conn2.oppomobile.com", "connectivity.samsung.com.cn",
    # Apple iOS and macOS
    "captive.apple.com", "www.apple.com", "www.appleiphonecell.com", "www.itools.info", "www.ibook.info",
    "www.airport.us", "www.thinkdifferent.us",
    # Windows
    "www.msftconnecttest.com", "ipv6.msftconnecttest.com", "www.msftncsi.com", "dns.msftncsi.com",
    "ipv6.msftncsi.com",
    # Firefox
    "detectportal.firefox.com",
    # Linux desktops
    "nmcheck.gnome.org", "connectivity-check.ubuntu.com",
    "networkcheck.kde.org", "fedoraproject.org", "ping.archlinux.org", "network-test.debian.org",
)


_NAME_CHARS = "abcdefghijklmnopqrstuvwxyz0123456789-_."


def _judgeable(name):
    """Only letters, digits, '-', '_' in labels: dns.py escapes anything else with a backslash."""
    return not name.strip(_NAME_CHARS)  # strip() scans in C: empty when every character is one of them


class Query:
    __slots__ = ("id", "name", "key", "qtype", "raw", "qend", "max_size")

    def __init__(self, qid, name, qtype, raw, qend, max_size):
        self.id = qid
        self.name = name
        self.key = name + "/" + str(qtype)  # name: labels joined by dots that no label holds
        self.qtype = qtype
        self.raw = raw  # the client's packet, forwarded as it came but for the id
        self.qend = qend
        self.max_size = max_size


class DNSResponder:
    def __init__(self, own_ip, own_names=(), allowed=None, unknown="nxdomain", ms_diff=None):
        """own_ip: the relay's address as 4 or 16 bytes; allowed(name) -> bool: the site policy's
        decision (policy.py), the same one SOCKS and HTTP apply; unknown: "nxdomain" or "portal";
        ms_diff(a, b): a - b for two now_ms readings (runtime.ms_diff: a board's tick counter wraps, after
        ~12.4 days on a 32-bit one, and a raw difference would then keep an entry for good)."""
        self.own_ip = own_ip
        self.own_type = dns.TYPE_A if len(own_ip) == 4 else dns.TYPE_AAAA
        self.own = {}
        for n in CAPTIVE_NAMES:
            self.own[n.rstrip(".")] = True
        for n in own_names:
            self.own[n.lower().rstrip(".")] = True
        self.policy_allows = allowed or (lambda name: False)
        self.unknown_portal = unknown == "portal"
        self.ms_diff = ms_diff or _minus
        self.cache = {}  # "name/type" -> (ttl_ms, stored_ms, response bytes, ttl offsets)
        self.answered = 0
        self.forwarded = 0
        self.cached = 0
        self.refused = 0
        self.dropped = 0

    def allowed(self, name):
        return self.policy_allows(name)

    def handle(self, data, now_ms):
        try:
            return self._handle(data, now_ms)
        except dns.DNSError:
            self.dropped += 1
            return None

    def _handle(self, data, now_ms):
        if len(data) > _MAX_QUERY:
            raise dns.DNSError("too large for a query")
        msg = dns.parse(data)
        if msg.is_response or msg.flags & 0x7800 or len(msg.questions) != 1:
            raise dns.DNSError("not a standard query with one question")  # no answer: nothing to amplify
        name, qtype, qclass = msg.questions[0]
        qend = dns.question_end(data)
        name = name.lower()
        q = Query(msg.id, name, qtype, data, qend, dns.edns_size(msg))
        if qclass != dns.CLASS_IN or not _judgeable(name):
            self.refused += 1
            return REPLY, self._fit(q, dns.build_response(data, qend, dns.RCODE_REFUSED))
        if name in self.own:
            self.answered += 1
            return REPLY, self._fit(q, self._own_answer(data, qend, qtype))
        if self.allowed(name):
            hit = self.cache.get(q.key)
            if hit is not None:
                age = self.ms_diff(now_ms, hit[1])
                if 0 <= age < hit[0]:
                    self.cached += 1
                    elapsed = age // 1000
                    return REPLY, self._fit(q, _asked(dns.restamp(hit[2], q.id, hit[3], elapsed), q))
                del self.cache[q.key]
            self.forwarded += 1
            return FORWARD, q
        self.refused += 1
        if self.unknown_portal:
            return REPLY, self._fit(q, self._own_answer(data, qend, qtype))
        return REPLY, self._fit(q, dns.build_response(data, qend, dns.RCODE_NXDOMAIN))

    def _own_answer(self, data, qend, qtype):
        if qtype == self.own_type or qtype == 255:  # 255: ANY
            return dns.build_response(data, qend, dns.RCODE_OK, [(self.own_type, _OWN_TTL, self.own_ip)])
        # The name exists, but with no record of this type (AAAA or HTTPS on an IPv4 relay):
        # NODATA makes the phone fall back to the A record at once.
        return dns.build_response(data, qend, dns.RCODE_OK)

    def _fit(self, q, response):
        if len(response) > q.max_size:
            return dns.truncate(response, q.qend)
        return response

    def finish(self, q, answer, now_ms):
        """The upstream resolver's answer to a FORWARD: bytes for the client, or None."""
        try:
            msg = dns.parse(answer)
            if not msg.is_response or len(msg.questions) != 1:
                return None
            if not dns.asks(msg, q.name, q.qtype) or dns.question_end(answer) != q.qend:
                return None  # not the question we asked (or not as we asked it): never pass it on
            ttls = dns.record_ttls(answer)
        except dns.DNSError:
            return None
        rc = msg.rcode
        if rc == dns.RCODE_OK or rc == dns.RCODE_NXDOMAIN:
            ttl = _NEG_TTL if rc else _MAX_TTL
            for _, t in ttls:
                if t < ttl:
                    ttl = t
            if not ttls and rc == dns.RCODE_OK:
                ttl = _NEG_TTL
            ttl = min(max(ttl, _MIN_TTL), _MAX_TTL)
            if len(self.cache) >= _CACHE_MAX:
                self.cache.clear()  # cheaper than LRU bookkeeping on a board; refills in seconds
            stored = bytes(answer)
            self.cache[q.key] = (1000 * ttl, now_ms, stored, ttls)
        return self._fit(q, _asked(dns.restamp(answer, q.id, (), 0), q))

    def fail(self, q):
        """SERVFAIL for a FORWARD the upstream did not answer."""
        return dns.build_response(q.raw, q.qend, dns.RCODE_SERVFAIL, aa=False)


def _minus(a, b):
    return a - b


def _asked(response, q):
    """response with q's question section, byte for byte: the same labels (finish checked), in the case
    this asker wrote them (0x20 randomisation), not the case of whoever filled the cache."""
    out = bytearray(response)
    out[12 : q.qend] = q.raw[12 : q.qend]
    return bytes(out)
