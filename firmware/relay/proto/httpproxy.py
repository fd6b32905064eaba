"""HTTP/1.x proxy messages, sans-I/O: heads, hop-by-hop rules, body framing.

HeadReader.feed(data) collects one message head (up to a cap) and returns it
once complete, keeping what follows in .rest. parse_request()/parse_response()
turn a head into a message object; forward_head()/client_head() build the
heads to send on; BodyFramer tells where a body ends (Content-Length,
chunked, none, or the connection's close) without touching the bytes.
error_response() is the short answer the relay gives itself.
Problems raise HttpError(status, message). No sockets, no clock.
"""

import binascii

from relay.proto.addr import parse_ip

# Hop-by-hop headers (RFC 9110 7.6.1) plus the proxy-only ones clients send.
HOP_BY_HOP = (
    b"connection",
    b"keep-alive",
    b"proxy-connection",
    b"proxy-authorization",
    b"proxy-authenticate",
    b"te",
    b"trailer",
    b"upgrade",
)

REASONS = {
    200: "Connection established",
    400: "Bad Request",
    403: "Forbidden",
    407: "Proxy Authentication Required",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}


class HttpError(Exception):
    def __init__(self, status, message, reason="protocol"):
        super().__init__(message)
        self.status = status
        self.reason = reason


class HeadReader:
    def __init__(self, limit):
        self.limit = limit
        self.buf = bytearray()
        self.rest = b""

    def feed(self, data):
        """Return the head (bytes, without the blank line) once complete, else None."""
        b = self.buf
        start = len(b) - 3 if len(b) > 3 else 0
        b += data
        end = b.find(b"\r\n\r\n", start)
        if end < 0:
            if len(b) > self.limit:
                raise HttpError(400, "request head larger than %d bytes" % self.limit)
            return None
        if end > self.limit:
            raise HttpError(400, "request head larger than %d bytes" % self.limit)
        head = bytes(b[:end])
        self.rest = bytes(b[end + 4 :])
        self.buf = bytearray()
        return head


class Message:
    __slots__ = ("method", "target", "version", "status", "headers", "host", "port", "path")

    def __init__(self):
        self.method = b""
        self.target = b""
        self.version = b""
        self.status = 0
        self.headers = []  # [(lowercase name, value)] in order; names and values are bytes
        self.host = None
        self.port = 0
        self.path = b""

    def get(self, name):
        for k, v in self.headers:
            if k == name:
                return v
        return None

    def tokens(self, name):
        """Comma-separated tokens of every header called name, lowercased."""
        out = []
        for k, v in self.headers:
            if k == name:
                for t in v.split(b","):
                    t = t.strip().lower()
                    if t:
                        out.append(t)
        return out


# RFC 9110 5.6.2: the characters a header name (a token) may hold.
_TCHAR = b"!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


def _has_ctl(b):
    """True when b holds CR, LF or NUL. Lines were split at CRLF, so a CR or LF left inside one is bare:
    a parser after us may end the line there and read a header we never saw (RFC 9112 2.2)."""
    return b"\n" in b or b"\r" in b or b"\x00" in b


def _headers(lines, status):
    out = []
    for line in lines:
        if not line:
            continue
        if line[0] in b" \t":
            raise HttpError(status, "folded header lines are not allowed")
        if _has_ctl(line):
            raise HttpError(status, "bare CR, LF or NUL in a header line")
        colon = line.find(b":")
        if colon <= 0:
            raise HttpError(status, "header line without a name")
        name = line[:colon].lower()
        for c in name:
            if c not in _TCHAR:
                raise HttpError(status, "bad character in a header name")
        out.append((name, line[colon + 1 :].strip()))
    _one_length(out, status)
    return out


def _one_length(headers, status):
    """RFC 9112 6.3: Content-Length values that differ make the framing ambiguous: refuse them.
    Copies of one value are merged into one header, so nothing after us sees two."""
    first = -1
    i = 0
    while i < len(headers):
        k, v = headers[i]
        if k == b"content-length":
            if first < 0:
                first = i
            elif v != headers[first][1]:
                raise HttpError(status, "two different Content-Length values")
            else:
                headers.pop(i)
                continue
        i += 1


def _port(text):
    if not text.isdigit() or len(text) > 5 or not 0 < int(text) < 65536:
        raise HttpError(400, "bad port: expected 1..65535")
    return int(text)


def _authority(text, default_port):
    """b'host:port' / b'[v6]:port' / b'host' -> (host str or ip bytes, port)."""
    try:
        s = text.decode()
    except UnicodeError:
        raise HttpError(400, "host is not text")
    port = default_port
    if s.startswith("["):
        end = s.find("]")
        if end < 0:
            raise HttpError(400, "unclosed [ in host")
        host, after = s[1:end], s[end + 1 :]
        if after:
            if after[0] != ":":
                raise HttpError(400, "bad port")
            port = _port(after[1:])
        ip = parse_ip(host)
        if ip is None or len(ip) != 16:
            raise HttpError(400, "bad IPv6 address in host")
        return ip, port
    if ":" in s:
        s, p = s.rsplit(":", 1)
        port = _port(p)
    if not s or " " in s or "/" in s or "@" in s:
        raise HttpError(400, "bad host")
    ip = parse_ip(s)
    return (ip if ip is not None else s.lower()), port


def parse_request(head):
    lines = head.split(b"\r\n")
    parts = lines[0].split(b" ")
    if len(parts) != 3 or parts[2] not in (b"HTTP/1.1", b"HTTP/1.0"):
        raise HttpError(400, "not an HTTP/1.x request line")
    m = Message()
    m.method, m.target, m.version = parts
    if not m.method.isalpha():
        raise HttpError(400, "bad method")
    for c in m.target:
        if c <= 0x20 or c == 0x7F:  # a target is visible ASCII (RFC 9112 3.2); anything else is smuggling material
            raise HttpError(400, "control character or space in the request target")
    m.headers = _headers(lines[1:], 400)
    if m.method == b"CONNECT":
        m.host, m.port = _authority(m.target, 443)
        if m.port == 443 and b":" not in m.target.rsplit(b"]", 1)[-1]:
            raise HttpError(400, "CONNECT needs host:port")
        return m
    t = m.target
    if t[:7].lower() != b"http://":
        if t[:8].lower() == b"https://":
            raise HttpError(400, "https:// URLs need CONNECT; set this relay as the HTTPS proxy too")
        raise HttpError(400, "this is a proxy: ask for an absolute http:// URL")
    rest = t[7:]
    slash = rest.find(b"/")
    q = rest.find(b"?")
    if slash < 0 or (0 <= q < slash):
        slash = q
    auth = rest if slash < 0 else rest[:slash]
    path = b"/" if slash < 0 else rest[slash:]
    if path.startswith(b"?"):
        path = b"/" + path
    if b"@" in auth:
        raise HttpError(400, "user info in a proxy URL is not supported")
    m.host, m.port = _authority(auth, 80)
    m.path = path
    if m.get(b"content-length") is not None and m.get(b"transfer-encoding") is not None:
        raise HttpError(400, "both Content-Length and Transfer-Encoding")  # request smuggling
    return m


def parse_response(head):
    lines = head.split(b"\r\n")
    parts = lines[0].split(b" ", 2)
    if len(parts) < 2 or not parts[0].startswith(b"HTTP/1.") or len(parts[1]) != 3 or not parts[1].isdigit():
        raise HttpError(502, "the destination did not answer HTTP")
    m = Message()
    m.version = parts[0]
    m.status = int(parts[1])
    m.target = parts[2] if len(parts) > 2 else b""
    if _has_ctl(m.target):
        raise HttpError(502, "bare CR, LF or NUL in the status line")
    m.headers = _headers(lines[1:], 502)
    return m


def basic_credentials(msg):
    """(user, password) bytes from Proxy-Authorization: Basic, or None."""
    return parse_basic(msg.get(b"proxy-authorization"))


def parse_basic(value):
    """(user, password) bytes from a Basic credentials header value (RFC 7617), or None."""
    if not value or value[:6].lower() != b"basic ":
        return None
    try:
        raw = binascii.a2b_base64(value[6:].strip())
    except ValueError:
        return None
    colon = raw.find(b":")
    if colon < 0:
        return None
    return raw[:colon], raw[colon + 1 :]


def client_wants_close(req):
    conn = req.tokens(b"connection") + req.tokens(b"proxy-connection")
    if req.version == b"HTTP/1.0":
        return b"keep-alive" not in conn
    return b"close" in conn


def origin_keeps_alive(resp):
    conn = resp.tokens(b"connection")
    if resp.version == b"HTTP/1.0":
        return b"keep-alive" in conn
    return b"close" not in conn


def _strip(headers, extra):
    drop = list(HOP_BY_HOP) + extra
    return [(k, v) for k, v in headers if k not in drop]


def _join(first, headers):
    out = [first]
    for k, v in headers:
        out.append(k + b": " + v)
    out.append(b"")
    out.append(b"")
    return b"\r\n".join(out)


def forward_head(req):
    """The head sent to the origin: origin-form path, no hop-by-hop headers."""
    hs = _strip(req.headers, req.tokens(b"connection"))
    if req.get(b"host") is None:
        host = req.host if type(req.host) is str else None
        if host is not None:
            h = host.encode() if req.port == 80 else (host + ":" + str(req.port)).encode()
            hs.insert(0, (b"host", h))
    return _join(req.method + b" " + req.path + b" HTTP/1.1", hs)


def client_head(resp, keep_alive, chunked=False):
    """chunked: the relay frames a close-delimited body as chunks (it says so here)."""
    hs = _strip(resp.headers, resp.tokens(b"connection"))
    if chunked:
        hs.append((b"transfer-encoding", b"chunked"))
    hs.append((b"connection", b"keep-alive" if keep_alive else b"close"))
    first = b"HTTP/1.1 " + str(resp.status).encode() + b" " + resp.target
    return _join(first, hs)


def error_response(status, text, extra=b""):
    body = (text + "\n").encode()
    return (
        "HTTP/1.1 %d %s\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: %d\r\nConnection: close\r\n"
        % (status, REASONS.get(status, "Error"), len(body))
    ).encode() + extra + b"\r\n" + body


# Body framing kinds.
NONE = 0
LENGTH = 1
CHUNKED = 2
UNTIL_CLOSE = 3


def request_framing(req):
    te = req.tokens(b"transfer-encoding")
    if te:
        if te != [b"chunked"]:
            raise HttpError(400, "unsupported Transfer-Encoding")  # RFC 9112 6.1: chunked, once, last
        return BodyFramer(CHUNKED, 0, 400)
    cl = req.get(b"content-length")
    if cl is None:
        return BodyFramer(NONE)
    return BodyFramer(LENGTH, _length(cl, 400), 400)


def response_framing(resp, method):
    if method == b"HEAD" or resp.status < 200 or resp.status in (204, 304):
        return BodyFramer(NONE)
    te = resp.tokens(b"transfer-encoding")
    if te:
        return BodyFramer(CHUNKED if te[-1] == b"chunked" else UNTIL_CLOSE)
    cl = resp.get(b"content-length")
    if cl is None:
        return BodyFramer(UNTIL_CLOSE)
    return BodyFramer(LENGTH, _length(cl, 502))


def _length(text, status):
    if not text.isdigit() or len(text) > 15:
        raise HttpError(status, "bad Content-Length")
    return int(text)


# Chunked scanner states.
_SIZE = 0
_DATA = 1
_DATA_END = 2
_TRAILER = 3
_MAX_LINE = 4096  # chunk-size lines and trailer lines; anything longer is abuse
_SCAN = 64  # bytes copied at a time while looking for a line's end
_HEX = b"0123456789abcdefABCDEF"


class BodyFramer:
    """Counts body bytes without copying them. consume(data) -> how many bytes of data are body."""

    def __init__(self, kind, length=0, status=502):
        self.kind = kind
        self.status = status  # what a broken body is: 400 from a client, 502 from an origin
        self.left = length
        self.done = kind == NONE or (kind == LENGTH and length == 0)
        self.state = _SIZE
        self.line = bytearray()

    def consume(self, data):
        if self.done:
            return 0
        if self.kind == UNTIL_CLOSE:
            return len(data)
        if self.kind == LENGTH:
            n = min(self.left, len(data))
            self.left -= n
            self.done = self.left == 0
            return n
        return self._chunked(data)

    def _chunked(self, data):
        # data may be a view of the shared receive buffer: only line bytes are copied, _SCAN at a time.
        i, n = 0, len(data)
        while i < n and not self.done:
            st = self.state
            if st == _DATA:
                take = min(self.left, n - i)
                i += take
                self.left -= take
                if self.left == 0:
                    self.state = _DATA_END
                continue
            # Line-oriented states: size line, the CRLF after data, trailer lines.
            seg = bytes(data[i : i + _SCAN])
            nl = seg.find(b"\n")
            end = len(seg) if nl < 0 else nl + 1
            self.line += seg[:end]
            i += end
            if len(self.line) > _MAX_LINE:
                raise HttpError(self.status, "chunk line too long")
            if nl < 0:
                continue
            line = bytes(self.line)
            self.line = bytearray()
            if not line.endswith(b"\r\n") or _has_ctl(line[:-2]):
                raise HttpError(self.status, "chunk line without CRLF")  # RFC 9112 7.1: a bare LF is smuggling material
            line = line[:-2]
            if st == _DATA_END:
                if line:
                    raise HttpError(self.status, "missing CRLF after chunk")
                self.state = _SIZE
            elif st == _SIZE:
                size = line.split(b";", 1)[0].rstrip(b" \t")
                if not size or len(size) > 15 or [c for c in size if c not in _HEX]:
                    raise HttpError(self.status, "bad chunk size")  # int() would take "0x5", "+5", "5_0"
                self.left = int(size, 16)
                self.state = _TRAILER if self.left == 0 else _DATA
            elif st == _TRAILER:
                if not line:
                    self.done = True
        return i


def connect_request(host, port, credentials=None):
    """CONNECT head for an upstream HTTP proxy. host: name (str) or address bytes."""
    if type(host) is str:
        auth = host
    else:
        from relay.proto.addr import format_ip

        auth = format_ip(host) if len(host) == 4 else "[" + format_ip(host) + "]"
    auth = "%s:%d" % (auth, port)
    extra = ""
    if credentials:
        token = binascii.b2a_base64(credentials[0] + b":" + credentials[1]).strip().decode()
        extra = "Proxy-Authorization: Basic %s\r\n" % token
    return ("CONNECT %s HTTP/1.1\r\nHost: %s\r\n%s\r\n" % (auth, auth, extra)).encode()
