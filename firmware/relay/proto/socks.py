"""SOCKS5 (RFC 1928, RFC 1929) and SOCKS4/4a, server side, sans-I/O.

Socks5Handshake.feed(data) and Socks4Handshake.feed(data) take bytes as they
arrive, in any split, and return a list of events:
  Send(bytes)            bytes to write to the client now
  Login(user, password)  credentials to check; answer with login_reply(ok)
  Request(cmd, host, port)
                         host is bytes (4 or 16: an address) or str (a name)
A broken peer raises SocksError; its .reply holds the bytes to send before
closing (b"" when the peer is not speaking SOCKS at all).
Replies are built by socks5_reply()/socks4_reply(). The UDP header codec for
UDP ASSOCIATE is udp_unpack()/udp_pack(). No sockets, no clock, no files.
"""

from relay.proto.const import const

VER5 = const(5)
VER4 = const(4)
METHOD_NONE = const(0)
METHOD_PASSWORD = const(2)
METHOD_UNACCEPTABLE = const(0xFF)
CMD_CONNECT = const(1)
CMD_BIND = const(2)
CMD_UDP = const(3)
ATYP_IPV4 = const(1)
ATYP_DOMAIN = const(3)
ATYP_IPV6 = const(4)

# RFC 1928 section 6.
REP_OK = const(0)
REP_FAILURE = const(1)
REP_NOT_ALLOWED = const(2)
REP_NET_UNREACHABLE = const(3)
REP_HOST_UNREACHABLE = const(4)
REP_REFUSED = const(5)
REP_TTL_EXPIRED = const(6)
REP_COMMAND = const(7)
REP_ADDRESS_TYPE = const(8)

# SOCKS4 reply codes.
S4_GRANTED = const(90)
S4_REJECTED = const(91)

_MAX_GREETING = const(257)  # VER NMETHODS + 255 methods
_MAX_S4 = const(520)  # header + 255-byte user id + 255-byte name + NULs


HANDSHAKE_READ = 512  # a greeting, login or request is at most 513 bytes: read no more before the tunnel runs


def version(first_byte):
    """VER5 or VER4 when a connection's first byte opens a SOCKS request, else None (HTTP, TLS, garbage)."""
    return first_byte if first_byte == VER5 or first_byte == VER4 else None


class SocksError(Exception):
    def __init__(self, message, reply=b"", reason="protocol"):
        super().__init__(message)
        self.reply = reply
        self.reason = reason


class Send:
    __slots__ = ("data",)

    def __init__(self, data):
        self.data = data


class Login:
    __slots__ = ("user", "password")

    def __init__(self, user, password):
        self.user = user
        self.password = password


class Request:
    __slots__ = ("cmd", "host", "port")

    def __init__(self, cmd, host, port):
        self.cmd = cmd
        self.host = host
        self.port = port


def _decode_name(raw):
    try:
        name = bytes(raw).decode()
    except UnicodeError:
        return None
    if not name or "\x00" in name or " " in name:
        return None
    return name


def socks5_reply(rep, bind_ip=None, bind_port=0):
    if bind_ip is None:
        bind_ip = b"\x00\x00\x00\x00"
    atyp = ATYP_IPV4 if len(bind_ip) == 4 else ATYP_IPV6
    return bytes((VER5, rep, 0, atyp)) + bind_ip + bytes((bind_port >> 8, bind_port & 0xFF))


def socks4_reply(granted, port=0, ip=b"\x00\x00\x00\x00"):
    code = S4_GRANTED if granted else S4_REJECTED
    return bytes((0, code, port >> 8, port & 0xFF)) + ip


class Socks5Handshake:
    """Greeting, optional RFC 1929 login, then one request."""

    def __init__(self, password_required):
        self.password_required = password_required
        self.buf = bytearray()
        self.state = self._greeting
        self.rest = b""  # bytes after the request: the client's first payload
        self.done = False

    def feed(self, data):
        if self.done:
            self.rest += bytes(data)  # after the request: payload for the destination
            return []
        self.buf += data  # a copy: on MicroPython data is the shared receive buffer, rewritten by the next read
        events = []
        try:
            while self.state is not None:
                ev = self.state()
                if ev is None:
                    break
                events.append(ev)
        except SocksError as e:
            # A greeting and a refused request in one segment: the method reply still goes first.
            # (Only Send events come before an error: a Login stops the machine until login_reply.)
            e.reply = b"".join([ev.data for ev in events]) + e.reply
            raise
        return events

    def _greeting(self):
        b = self.buf
        if len(b) < 2:
            return None
        if b[0] != VER5:
            raise SocksError("not SOCKS5")
        n = b[1]
        if n == 0:
            raise SocksError("greeting offers no methods", bytes((VER5, METHOD_UNACCEPTABLE)))
        if len(b) < 2 + n:
            return None
        methods = bytes(b[2 : 2 + n])  # `int in bytearray` is missing on MicroPython; bytes.find works
        self.buf = b[2 + n :]  # MicroPython bytearrays have no slice deletion
        want = METHOD_PASSWORD if self.password_required else METHOD_NONE
        if methods.find(bytes((want,))) < 0:
            self.state = None
            raise SocksError(
                "no acceptable method", bytes((VER5, METHOD_UNACCEPTABLE)), "auth" if self.password_required else "protocol"
            )
        self.state = self._login if self.password_required else self._request
        return Send(bytes((VER5, want)))

    def _login(self):
        b = self.buf
        if len(b) < 2:
            return None
        if b[0] != 1:
            raise SocksError("bad RFC 1929 version", b"\x01\x01", "auth")
        ulen = b[1]
        if len(b) < 2 + ulen + 1:
            return None
        plen = b[2 + ulen]
        end = 3 + ulen + plen
        if len(b) < end:
            return None
        user = bytes(b[2 : 2 + ulen])
        password = bytes(b[3 + ulen : end])
        self.buf = b[end:]
        self.state = None  # wait for login_reply()
        return Login(user, password)

    def login_reply(self, ok):
        """Bytes to send after a Login event. On failure, close after sending. After a success,
        feed(b"") goes on with what already came: a client may send its request with the login."""
        if ok:
            self.state = self._request
            return b"\x01\x00"
        return b"\x01\x01"

    def _request(self):
        b = self.buf
        if len(b) < 5:
            return None
        if b[0] != VER5:
            raise SocksError("bad version in request", socks5_reply(REP_FAILURE))
        cmd, atyp = b[1], b[3]
        if atyp == ATYP_IPV4:
            end = 10
        elif atyp == ATYP_IPV6:
            end = 22
        elif atyp == ATYP_DOMAIN:
            end = 5 + b[4] + 2
        else:
            raise SocksError("address type %d" % atyp, socks5_reply(REP_ADDRESS_TYPE), "address-type")
        if len(b) < end:
            return None
        if atyp == ATYP_DOMAIN:
            host = _decode_name(b[5 : end - 2])
            if host is None:
                raise SocksError("bad domain name", socks5_reply(REP_ADDRESS_TYPE), "address-type")
        else:
            host = bytes(b[4 : end - 2])
        port = (b[end - 2] << 8) | b[end - 1]
        self.rest = bytes(b[end:])
        self.buf = bytearray()
        self.state = None
        self.done = True
        if cmd not in (CMD_CONNECT, CMD_UDP):
            raise SocksError("command %d" % cmd, socks5_reply(REP_COMMAND), "command")
        return Request(cmd, host, port)


class Socks4Handshake:
    """SOCKS4 CONNECT, with SOCKS4a names (DSTIP 0.0.0.x, x != 0)."""

    def __init__(self):
        self.buf = bytearray()
        self.rest = b""
        self.done = False

    def feed(self, data):
        if self.done:
            self.rest += bytes(data)  # after the request: payload for the destination
            return []
        b = self.buf
        b += data  # a copy: data may be the shared receive buffer (MicroPython)
        if len(b) < 9:
            return []
        if b[0] != VER4:
            raise SocksError("not SOCKS4")
        uid_end = b.find(b"\x00", 8)
        if uid_end < 0:
            if len(b) > _MAX_S4:
                raise SocksError("user id too long", socks4_reply(False))
            return []
        ip = bytes(b[4:8])
        port = (b[2] << 8) | b[3]
        end = uid_end + 1
        host = ip
        if ip[:3] == b"\x00\x00\x00" and ip[3] != 0:
            name_end = b.find(b"\x00", end)
            if name_end < 0:
                if len(b) > _MAX_S4:
                    raise SocksError("name too long", socks4_reply(False))
                return []
            host = _decode_name(b[end:name_end])
            if host is None:
                raise SocksError("bad name", socks4_reply(False), "address-type")
            end = name_end + 1
        if b[1] != CMD_CONNECT:
            raise SocksError("SOCKS4 command %d" % b[1], socks4_reply(False), "command")
        self.rest = bytes(b[end:])
        self.buf = bytearray()
        self.done = True
        return [Request(CMD_CONNECT, host, port)]


def udp_unpack(dgram):
    """SOCKS5 UDP request header -> (host, port, payload offset); None when malformed or fragmented."""
    n = len(dgram)
    if n < 10 or dgram[0] or dgram[1] or dgram[2]:
        return None  # RSV must be zero; FRAG != 0 is not supported (RFC 1928 allows dropping)
    atyp = dgram[3]
    if atyp == ATYP_IPV4:
        end = 10
        host = bytes(dgram[4:8])
    elif atyp == ATYP_IPV6:
        end = 22
        host = bytes(dgram[4:20]) if n >= 22 else None
    elif atyp == ATYP_DOMAIN:
        end = 5 + dgram[4] + 2
        host = _decode_name(dgram[5 : end - 2]) if n >= end else None
    else:
        return None
    if host is None or n < end:
        return None
    return host, (dgram[end - 2] << 8) | dgram[end - 1], end


def udp_pack(ip, port, payload):
    atyp = ATYP_IPV4 if len(ip) == 4 else ATYP_IPV6
    return bytes((0, 0, 0, atyp)) + ip + bytes((port >> 8, port & 0xFF)) + payload


# Upstream side: the relay as a SOCKS5 client of another relay or proxy.
_REP_REASON = {
    REP_NOT_ALLOWED: "guard",
    REP_NET_UNREACHABLE: "net-unreachable",
    REP_HOST_UNREACHABLE: "host-unreachable",
    REP_REFUSED: "refused",
    REP_TTL_EXPIRED: "timeout",
}


def socks5_connect_request(host, port):
    if type(host) is str:
        raw = host.encode()
        addr = bytes((ATYP_DOMAIN, len(raw))) + raw
    else:
        addr = bytes((ATYP_IPV4 if len(host) == 4 else ATYP_IPV6,)) + host
    return bytes((VER5, CMD_CONNECT, 0)) + addr + bytes((port >> 8, port & 0xFF))


class Socks5Client:
    """Greeting, optional login, CONNECT. feed() -> [Send]; .done once connected.

    A refusal raises SocksError whose .reason says why, in stats.py's words
    ("refused", "guard", ...; "upstream" when the proxy itself misbehaved).
    """

    def __init__(self, host, port, user=None, password=None):
        self.target = (host, port)
        self.login = (user, password) if user else None
        self.buf = bytearray()
        self.state = self._method
        self.done = False
        self.rest = b""

    def greeting(self):
        return b"\x05\x02\x00\x02" if self.login else b"\x05\x01\x00"

    def feed(self, data):
        if self.done:
            self.rest += bytes(data)
            return []
        self.buf += data
        out = []
        while self.state is not None:
            ev = self.state()
            if ev is None:
                break
            out.append(ev)
        return out

    def _method(self):
        b = self.buf
        if len(b) < 2:
            return None
        if b[0] != VER5:
            raise SocksError("upstream is not SOCKS5", reason="upstream")
        m = b[1]
        self.buf = b[2:]
        if m == METHOD_PASSWORD and self.login:
            u, p = self.login
            self.state = self._auth
            return Send(bytes((1, len(u))) + u + bytes((len(p),)) + p)
        if m != METHOD_NONE:
            raise SocksError("upstream wants a login we do not have", reason="upstream")
        self.state = self._reply
        return Send(socks5_connect_request(*self.target))

    def _auth(self):
        b = self.buf
        if len(b) < 2:
            return None
        if b[1] != 0:
            raise SocksError("upstream refused our login", reason="upstream")
        self.buf = b[2:]
        self.state = self._reply
        return Send(socks5_connect_request(*self.target))

    def _reply(self):
        b = self.buf
        if len(b) < 5:
            return None
        if b[0] != VER5:
            raise SocksError("upstream reply is not SOCKS5", reason="upstream")
        atyp = b[3]
        end = 10 if atyp == ATYP_IPV4 else 22 if atyp == ATYP_IPV6 else 7 + b[4] if atyp == ATYP_DOMAIN else -1
        if end < 0:
            raise SocksError("upstream reply has a bad address type", reason="upstream")
        if len(b) < end:
            return None
        if b[1] != REP_OK:
            raise SocksError("upstream refused: %d" % b[1], reason=_REP_REASON.get(b[1], "failed"))
        self.rest = bytes(b[end:])
        self.state = None
        self.done = True
        return None
