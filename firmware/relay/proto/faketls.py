"""Fake-TLS (`ee` secrets), sans-I/O: the ServerHello, record framing, and the mask site's profile.

Telegram's client checks one thing of the reply to its ClientHello (tdlib's
TlsInit::wait_hello_response): a Handshake record, ChangeCipherSpec, and ONE
ApplicationData record, with the ServerHello's random set to
HMAC-SHA256(key, client random + those three records with the random zeroed).
Every later ApplicationData record is MTProto data to it. So the only freedom
is in what a censor can compare with the real site: the ServerHello's cipher
and extension order, and the size of that ApplicationData record.

MaskProfile holds what was learned from the mask site itself (the site
probes are passed to): connect, send probe_hello(domain), feed the reply to
ProfileReader; its first flight tells the cipher the site picks, the order
of its ServerHello extensions, and how many bytes of encrypted handshake
(certificate chain and all) follow. Without a mask, or until it answered,
a random size in 1024..4095 stands in (as mtg and mtprotoproxy do).

Records toward the client are sized as they come (one record per chunk the
DC sent) and bulk is cut at a size that varies per record (RecordSizer), so
no two connections show one fixed record length.
No I/O here: callers pass bytes, random bytes (rand(n)) and read sockets.
"""

from relay.proto import crypto

REC_CCS = 0x14
REC_ALERT = 0x15
REC_HANDSHAKE = 0x16
REC_APPDATA = 0x17
TLS_MAX_OUT = 16384  # records we write: TLS's plaintext limit
TLS_MAX_IN = 16384 + 2048  # records we accept: TLS's ciphertext limit
RECORD_MAX = 16384 + 256  # the largest record TLS 1.3 allows (RFC 8446 5.2): learned sizes are clamped to it
HELLO_MAX = 4096  # largest ClientHello buffered before refusing; Telegram's are 517 bytes
DIGEST_POS = 11  # the random field: record header (5) + handshake header (4) + version (2)
JITTER = 32  # per mille: learned sizes vary by up to 3.2 % per connection (telemt: 3 %)
WHOLE_MAX = TLS_MAX_OUT - TLS_MAX_OUT * JITTER // 1000  # a chunk up to this goes out as one record; RecordSizer cuts above

EXT_KEY_SHARE = 0x0033
EXT_VERSIONS = 0x002B
_CCS = b"\x14\x03\x03\x00\x01\x01"
_X25519_P = (1 << 255) - 19


def u16(n):
    return bytes(((n >> 8) & 0xFF, n & 0xFF))


def u24(n):
    return bytes(((n >> 16) & 0xFF, (n >> 8) & 0xFF, n & 0xFF))


def _int(b):
    n = 0
    for x in b:
        n = (n << 8) | x
    return n


def hello_prefix_ok(b):
    """Whether the first bytes (any number, >= 1) can still start a Telegram ClientHello record:
    Handshake record, version 3.1, a length Telegram's hellos have, handshake type 1.
    A False here decides at once: no need to wait for more bytes."""
    n = len(b)
    if b[0] != REC_HANDSHAKE or (n > 1 and b[1] != 3) or (n > 2 and b[2] != 1):
        return False
    if n >= 5:
        ln = (b[3] << 8) | b[4]
        if ln < 64 or ln > HELLO_MAX:
            return False
    return n < 6 or b[5] == 1


class MaskProfile:
    """How the mask site's first TLS flight looks: cipher, ServerHello extension order, encrypted bytes.

    flight: total size of what follows the ServerHello (TLS 1.3: the encrypted EncryptedExtensions,
    Certificate, CertificateVerify and Finished; TLS 1.2: Certificate and the rest, in the clear).
    learned: True when it came from the site, False for the random stand-in."""

    __slots__ = ("cipher", "versions_first", "flight", "records", "learned")

    def __init__(self, cipher=0x1301, versions_first=False, flight=2048, records=(), learned=False):
        self.cipher = cipher
        self.versions_first = versions_first
        self.flight = flight
        self.records = list(records)
        self.learned = learned

    @staticmethod
    def stand_in(rand):
        r = rand(2)
        return MaskProfile(flight=1024 + ((r[0] << 8) | r[1]) % 3072)

    def as_dict(self):
        return {"learned": self.learned, "cipher": "%04x" % self.cipher, "flight": self.flight,
                "records": self.records}

    def app_data_len(self, rand):
        """This connection's ApplicationData length: the site's flight, +- up to JITTER per mille."""
        base = self.flight
        span = base * JITTER // 1000
        if span:
            r = rand(2)
            base += ((r[0] << 8) | r[1]) % (2 * span + 1) - span
        return max(64, min(base, RECORD_MAX))


def x25519_like(rand):
    """32 bytes that pass as an X25519 public key: a square mod p, as mtprotoproxy sends."""
    n = int.from_bytes(rand(32), "little") % _X25519_P
    return ((n * n) % _X25519_P).to_bytes(32, "little")


def server_hello(key, client_digest, session_id, profile, rand):
    """ServerHello + ChangeCipherSpec + one ApplicationData record, random = HMAC(key, client random + reply)."""
    ks = b"\x00\x33\x00\x24\x00\x1d\x00\x20" + x25519_like(rand)
    sv = b"\x00\x2b\x00\x02\x03\x04"
    ext = sv + ks if profile.versions_first else ks + sv
    body = b"\x03\x03" + bytes(32) + bytes((len(session_id),)) + session_id + u16(profile.cipher) + b"\x00"
    body += u16(len(ext)) + ext
    reply = bytearray(b"\x16\x03\x03" + u16(len(body) + 4) + b"\x02" + u24(len(body)) + body)
    reply += _CCS
    n = profile.app_data_len(rand)
    reply += b"\x17\x03\x03" + u16(n) + rand(n)
    reply[DIGEST_POS : DIGEST_POS + 32] = crypto.hmac_sha256(key, [client_digest, reply])
    return bytes(reply)


def _ext(kind, body):
    return u16(kind) + u16(len(body)) + body


_SUITES = bytes.fromhex("130113021303c02bc02fc02cc030cca9cca8c013c014009c009d002f0035")
_GROUPS = bytes.fromhex("001d00170018")
_SIGALGS = bytes.fromhex("0403080404010503080505010806060102010201")


def probe_hello(domain, rand):
    """A 517-byte TLS 1.3 ClientHello for `domain`, shaped like Telegram's own (ALPN h2/http1.1,
    brotli certificate compression), so the site answers it as it answers Telegram's apps."""
    host = domain.encode() if type(domain) is str else bytes(domain)
    exts = _ext(0x0000, u16(len(host) + 3) + b"\x00" + u16(len(host)) + host)
    exts += _ext(0x0017, b"") + _ext(0xFF01, b"\x00")
    exts += _ext(0x000A, u16(len(_GROUPS)) + _GROUPS) + _ext(0x000B, b"\x01\x00")
    exts += _ext(0x0023, b"") + _ext(0x0010, b"\x00\x0c\x02h2\x08http/1.1") + _ext(0x0005, b"\x01\x00\x00\x00\x00")
    exts += _ext(0x000D, u16(len(_SIGALGS)) + _SIGALGS) + _ext(0x0012, b"")
    exts += _ext(0x0033, b"\x00\x24\x00\x1d\x00\x20" + x25519_like(rand))
    exts += _ext(0x002D, b"\x01\x01") + _ext(0x002B, b"\x04\x03\x04\x03\x03") + _ext(0x001B, b"\x02\x00\x02")
    sid = rand(32)
    body = b"\x03\x03" + rand(32) + b"\x20" + sid + u16(len(_SUITES)) + _SUITES + b"\x01\x00"
    pad = 512 - 4 - len(body) - 2 - len(exts) - 4
    if pad >= 0:
        exts += _ext(0x0015, bytes(pad))
    body += u16(len(exts)) + exts
    hs = b"\x01" + u24(len(body)) + body
    return b"\x16\x03\x01" + u16(len(hs)) + hs


class ProfileError(Exception):
    pass


class ProfileReader:
    """Feed the mask site's reply to probe_hello(); .profile() once enough came (or the caller's time is up).

    done is True when the flight is known complete (TLS 1.2's ServerHelloDone); for TLS 1.3 the
    encrypted end cannot be seen, so the caller stops after a quiet moment. Raises ProfileError when
    the reply is an alert or not TLS."""

    def __init__(self):
        self.buf = b""
        self.hello = None  # (cipher, versions_first, tls13)
        self.records = []  # sizes after the ServerHello
        self.done = False

    def feed(self, data):
        self.buf += bytes(data)
        b = self.buf
        i = 0
        while len(b) - i >= 5:
            t, n = b[i], (b[i + 3] << 8) | b[i + 4]
            if b[i + 1] != 3 or n > TLS_MAX_IN:
                raise ProfileError("the mask site's reply is not TLS")
            if len(b) - i - 5 < n:
                break
            rec = b[i + 5 : i + 5 + n]
            i += 5 + n
            if t == REC_ALERT:
                raise ProfileError("the mask site refused the handshake (TLS alert %d)" % (rec[1] if n > 1 else -1))
            if self.hello is None:
                if t != REC_HANDSHAKE or not rec or rec[0] != 2:
                    raise ProfileError("the mask site's first record is not a ServerHello")
                self.hello = _parse_server_hello(rec)
                more = n - 4 - _int(rec[1:4])
                if more > 0:  # TLS 1.2 servers may pack Certificate and the rest into the ServerHello's record
                    self.records.append(more)
                    self._rest(rec[4 + _int(rec[1:4]) :])
            elif t == REC_APPDATA or (t == REC_HANDSHAKE and not self.hello[2]):
                self.records.append(n)
                if t == REC_HANDSHAKE:
                    self._rest(rec)
        self.buf = b[i:]
        return self.done

    def _rest(self, rec):
        # TLS 1.2: handshake messages in the clear; ServerHelloDone (14) ends the server's flight.
        j = 0
        while len(rec) - j >= 4:
            if rec[j] == 14:
                self.done = True
            j += 4 + _int(rec[j + 1 : j + 4])

    def profile(self):
        if self.hello is None or not self.records:
            raise ProfileError("the mask site sent no certificate flight")
        cipher, versions_first, _ = self.hello
        return MaskProfile(cipher, versions_first, max(64, min(sum(self.records), RECORD_MAX)), self.records, True)


def _parse_server_hello(rec):
    try:
        j = 4 + 2 + 32
        j += 1 + rec[j]
        cipher = _int(rec[j : j + 2])
        j += 3
        end = j + 2 + _int(rec[j : j + 2])
        j += 2
        order = []
        tls13 = False
        while j + 4 <= end:
            kind = _int(rec[j : j + 2])
            n = _int(rec[j + 2 : j + 4])
            order.append(kind)
            if kind == EXT_VERSIONS and rec[j + 4 : j + 6] == b"\x03\x04":
                tls13 = True
            j += 4 + n
    except IndexError:
        raise ProfileError("the mask site's ServerHello is cut short")
    vf = EXT_VERSIONS in order and EXT_KEY_SHARE in order and order.index(EXT_VERSIONS) < order.index(EXT_KEY_SHARE)
    return cipher, vf, tls13


class RecordSizer:
    """Where to cut bulk data into ApplicationData records: just under TLS's 16384, varying per record.

    A cheap xorshift seeded from the caller's random bytes: one draw per full record, no allocation."""

    __slots__ = ("x",)

    def __init__(self, seed):
        self.x = _int(seed[:4]) | 1

    def next(self):
        x = self.x
        x ^= (x << 13) & 0xFFFFFFFF
        x ^= x >> 17
        x ^= (x << 5) & 0xFFFFFFFF
        self.x = x
        return TLS_MAX_OUT - x % (TLS_MAX_OUT * JITTER // 1000)


def frame(data, sizer):
    """data -> ApplicationData records: one record when it fits, else cut where the sizer says."""
    n = len(data)
    if n <= WHOLE_MAX:
        return b"\x17\x03\x03" + u16(n) + bytes(data)
    parts = []
    i = 0
    while i < n:
        k = min(sizer.next(), n - i)
        parts.append(b"\x17\x03\x03" + u16(k))
        parts.append(bytes(data[i : i + k]))
        i += k
    return b"".join(parts)


def alert_unrecognized_name():
    """The fatal alert a TLS server that serves no such name sends (nginx's ssl_reject_handshake)."""
    return b"\x15\x03\x03\x00\x02\x02\x70"
