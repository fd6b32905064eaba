"""Telegram's MTProto proxy protocol, server side, sans-I/O: obfuscated2 and fake-TLS.

Input: the bytes a client sends, in any split. Output: events.
  Send(data)            bytes for the client (the fake-TLS ServerHello)
  Accepted(...)         the client proved a secret: .index of that secret, .tag (transport),
                        .dc (signed DC id), .to_dc (the proxy's own obfuscated2 header toward the
                        DC plus the client's first bytes, re-encrypted), .pipe (Pipe: up()/down())
  Refused(reason, head) wrong secret, replay, clock, not MTProto, or it stopped short: the I/O side
                        must not answer as a proxy; it hands .head (every byte read, from the first)
                        to the mask site. head is None when the handshake already answered (then
                        just close).
Never touches sockets or clocks: the caller passes `now` (Unix seconds or None), `rand(n)` and the
AES-256-CTR engine `aes_ctr(key, iv)` (runtime.aes_ctr: this module imports no runtime).

No silent hold: the handshake decides on the fewest bytes that can tell. On a port whose secrets
are all `ee`, a first byte other than 0x16 decides at once, and the 5-byte record header decides
whether a ClientHello can follow; obfuscated2 headers are refused on their first bytes when they
start as no client's can (0xef, HTTP verbs, the other tags, a TLS hello). A client that stops
before the decision (expire(), or eof()) is Refused("incomplete") with what it sent.

Formats (checked against alexbers/mtprotoproxy and Telethon's tcpmtproxy.py):
- obfuscated2 header, 64 bytes: client->proxy key = SHA256(h[8:40] + secret), iv = h[40:56];
  proxy->client from h[8:56] reversed the same way. Decrypted h[56:60] is the transport tag,
  h[60:62] the DC id (int16 little-endian, negative for media DCs). Toward the DC the proxy
  sends a fresh random header keyed without a secret (key = h[8:40], iv = h[40:56]).
- fake-TLS (`ee` secrets): a TLS 1.2 ClientHello record whose 32-byte random is
  HMAC-SHA256(key, record with random zeroed) XOR (28 zero bytes + LE uint32 timestamp).
  The reply (faketls.server_hello) is ServerHello + ChangeCipherSpec + one ApplicationData
  record. After that every byte both ways travels in ApplicationData records.
"""

from relay.proto import crypto, faketls as T

TAG_ABRIDGED = b"\xef\xef\xef\xef"
TAG_INTERMEDIATE = b"\xee\xee\xee\xee"
TAG_PADDED = b"\xdd\xdd\xdd\xdd"  # padded intermediate: the only transport `dd` and `ee` secrets allow
TAGS = (TAG_ABRIDGED, TAG_INTERMEDIATE, TAG_PADDED)

HEADER_LEN = 64
KIND_PLAIN = "plain"
KIND_DD = "dd"
KIND_EE = "ee"

REC_HANDSHAKE = T.REC_HANDSHAKE
REC_CCS = T.REC_CCS
REC_APPDATA = T.REC_APPDATA
TLS_MAX_IN = T.TLS_MAX_IN
DIGEST_POS = T.DIGEST_POS

# First bytes an obfuscated2 header must not start with (clients re-draw such headers): they would
# look like another protocol. A client's bytes starting so are no MTProto client's.
_RESERVED = (b"HEAD", b"POST", b"GET ", b"OPTI", TAG_INTERMEDIATE, TAG_PADDED, b"\x16\x03\x01\x02")


class MTProtoError(Exception):
    """A client that proved its secret and then broke the framing; close the tunnel."""

    def __init__(self, reason):
        super().__init__(reason)
        self.reason = reason


class Secret:
    __slots__ = ("kind", "key", "domain", "until", "gone")

    def __init__(self, kind, key, domain=b"", until=0):
        self.kind = kind
        self.key = key
        self.domain = domain
        self.until = until  # Unix time after which a retired secret is refused; 0: no end
        self.gone = False  # True: refused whatever the clock says (a retired secret's grace ended unclocked)

    def link_text(self):
        """The secret as tg://proxy links and Telegram's settings write it (hex)."""
        prefix = "" if self.kind == KIND_PLAIN else self.kind
        return prefix + _hex(self.key) + _hex(self.domain)


def _hex(b):
    return "".join("%02x" % x for x in b)


def parse_secret(text, default_domain=""):
    """'32 hex' (plain), 'dd' + 32 hex, or 'ee' + 32 hex + hex of the domain -> Secret.

    An `ee` secret written without a domain takes default_domain. Raises ValueError."""
    if type(text) is not str:
        raise ValueError("expected a hex string, got %s" % type(text).__name__)
    t = text.strip().lower()
    kind = KIND_PLAIN
    if len(t) > 32 and t[:2] in (KIND_DD, KIND_EE):
        kind = t[:2]
        t = t[2:]
    try:
        raw = bytes.fromhex(t)
    except ValueError:
        raise ValueError("not hex: %s (write 32 hex digits, optionally after dd or ee)" % text)
    if len(raw) < 16:
        raise ValueError("%d hex digits; a secret is 32 (16 bytes)" % (len(t)))
    key, domain = raw[:16], raw[16:]
    if kind == KIND_EE:
        if not domain:
            domain = default_domain.encode()
        if not domain:
            raise ValueError("an ee secret needs a domain (append its hex, or set mtproto.tls_domain)")
    elif domain:
        raise ValueError("%d hex digits; a %s secret is 32" % (len(t), "dd" if kind == KIND_DD else "plain"))
    return Secret(kind, key, domain)


# -- events -----------------------------------------------------------------


class Send:
    __slots__ = ("data",)

    def __init__(self, data):
        self.data = data


class Refused:
    __slots__ = ("reason", "head")

    def __init__(self, reason, head):
        self.reason = reason  # "secret", "replay", "clock", "protocol"
        self.head = head


class Accepted:
    __slots__ = ("index", "tag", "dc", "to_dc", "pipe")

    def __init__(self, index, tag, dc, to_dc, pipe):
        self.index = index
        self.tag = tag
        self.dc = dc
        self.to_dc = to_dc
        self.pipe = pipe


# -- shared state -------------------------------------------------------------


class Proxy:
    """What every connection shares: the secrets, the replay filter, the mask site's TLS profile.

    secrets: list of Secret. time_window: seconds a fake-TLS timestamp may differ from now.
    clock_unknown: "accept" (a wider window: any time from clock_floor - time_window on; the
    replay filter still applies) or "refuse". clock_floor: Unix time the clock is known to be
    past (mtproto.clock_hint; 0: none). rand(n) -> n random bytes. replay: a replay.ReplayFilter
    (or anything with `in` and add()), or how many handshakes a new one remembers. profile:
    faketls.MaskProfile (a random stand-in if None). aes_ctr(key, iv) -> a cipher with .update(data),
    the CTR stream running on across calls (runtime.aes_ctr).
    """

    def __init__(self, secrets, rand, time_window=1200, clock_unknown="accept", replay=None, clock_floor=0,
                 profile=None, *, aes_ctr):
        self.rand = rand
        self.aes_ctr = aes_ctr
        self.time_window = time_window
        self.clock_unknown = clock_unknown
        self.clock_floor = clock_floor
        if replay is None or type(replay) is int:
            from relay.proto.replay import ReplayFilter

            replay = ReplayFilter(replay or 4096, rand(16), rand(8))
        self.replay = replay
        self.profile = profile or T.MaskProfile.stand_in(rand)
        self.set_secrets(secrets)

    def set_secrets(self, secrets):
        """New secrets for new handshakes (a reload); tunnels running keep theirs."""
        self.secrets = secrets
        kinds = [s.kind for s in secrets]
        self.has_ee = KIND_EE in kinds
        self.only_ee = self.has_ee and kinds.count(KIND_EE) == len(kinds)

    def handshake(self, now):
        return Handshake(self, now)


# -- the handshake -------------------------------------------------------------


class Handshake:
    """One client connection until it is Accepted or Refused."""

    def __init__(self, proxy, now):
        self.proxy = proxy
        self.now = now
        self.buf = bytearray()  # raw client bytes not yet consumed
        self.inner = bytearray()  # fake-TLS: ApplicationData payload gathered for the header
        self.tls = None  # the ee Secret's index once the ClientHello checked out
        self.state = self._start
        self.done = False

    def feed(self, data):
        if self.done:
            raise MTProtoError("handshake already finished")
        self.buf += data
        out = []
        while not self.done:
            progressed = self.state(out)
            if not progressed:
                break
        return out

    def expire(self):
        """The client sent nothing more in time, or closed its side: -> [Refused("incomplete", head)],
        or [] when the handshake already answered (or ended) and the caller just closes."""
        if self.done or self.tls is not None:
            self.done = True
            return []
        out = []
        self._refuse(out, "incomplete")
        return out

    eof = expire

    def _refuse(self, out, reason, head=True):
        self.done = True
        out.append(Refused(reason, bytes(self.buf) if head else None))
        return False

    def _live(self, s):
        return not s.gone and (not s.until or self.now is None or self.now <= s.until)

    # states: each returns True when it moved on and the next state should run

    def _start(self, out):
        b = self.buf
        p = self.proxy
        if not b:
            return False
        if p.only_ee:  # a fake-TLS port: the record header decides, byte by byte
            if not T.hello_prefix_ok(b):
                return self._refuse(out, "protocol")
            if len(b) < 6:
                return False
            self.state = self._hello
            return True
        if p.has_ee and b[0] == REC_HANDSHAKE and T.hello_prefix_ok(b):
            if len(b) < 6:
                return False  # a hello or an obfuscated2 header: the next bytes tell
            self.state = self._hello
            return True
        self.state = self._plain
        return True

    def _plain(self, out):
        b = self.buf
        n = len(b)
        if b[0] == 0xEF:
            return self._refuse(out, "protocol")  # the abridged tag byte: clients never start so
        head = bytes(b[:4])
        for r in _RESERVED:
            if r[:n] == head:
                if n >= 4:
                    return self._refuse(out, "protocol")
                return False  # "GE" may become "GET ": wait for the byte that tells
        if n >= 8 and b[4:8] == b"\0\0\0\0":
            return self._refuse(out, "protocol")
        if n < HEADER_LEN:
            if _whole_message(b):
                return self._refuse(out, "protocol")
            return False
        cands = [i for i, s in enumerate(self.proxy.secrets) if s.kind != KIND_EE and self._live(s)]
        return self._header(out, bytes(b[:HEADER_LEN]), cands, HEADER_LEN)

    def _hello(self, out):
        b = self.buf
        n = (b[3] << 8) | b[4]
        if len(b) < 5 + n:
            return False
        rec = bytes(b[: 5 + n])
        p = self.proxy
        sid_len = rec[43]
        hs_len = (rec[6] << 16) | (rec[7] << 8) | rec[8]
        if hs_len + 4 != n or rec[9] != 3 or rec[10] != 3 or sid_len > 32:
            return self._refuse(out, "protocol")
        digest = rec[DIGEST_POS : DIGEST_POS + 32]
        if digest[:16] in p.replay:
            return self._refuse(out, "replay")
        zeroed = rec[:DIGEST_POS] + bytes(32) + rec[DIGEST_POS + 32 :]
        for i, s in enumerate(p.secrets):
            if s.kind != KIND_EE or not self._live(s):
                continue
            mac = crypto.hmac_sha256(s.key, zeroed)
            x = bytes(digest[j] ^ mac[j] for j in range(32))
            if x[:28] != bytes(28):
                continue
            why = self._clock_problem(int.from_bytes(x[28:32], "little"))
            if why:
                return self._refuse(out, why)
            p.replay.add(digest[:16])
            out.append(Send(T.server_hello(s.key, digest, rec[44 : 44 + sid_len], p.profile, p.rand)))
            self.tls = i
            self.buf = bytearray(b[5 + n :])
            self.state = self._records
            return True
        return self._refuse(out, "secret")

    def _clock_problem(self, ts):
        p = self.proxy
        if ts < 86400 * 1000:
            return None  # some clients send their uptime, not the date (mtprotoproxy accepts these too)
        if self.now is None:
            if p.clock_unknown != "accept":
                return "clock"
            # Unknown clock, but not before the floor: a hello older than that is a replay of an old one.
            return "clock" if ts < p.clock_floor - p.time_window else None
        if -p.time_window <= self.now - ts <= p.time_window:
            return None
        return "clock"

    def _records(self, out):
        # After the ServerHello: ChangeCipherSpec (ignored) and ApplicationData until 64 bytes are in.
        b = self.buf
        moved = False
        i = 0
        while len(self.inner) < HEADER_LEN and len(b) - i >= 5:
            t, n = b[i], (b[i + 3] << 8) | b[i + 4]
            if (t != REC_APPDATA and t != REC_CCS) or b[i + 1] != 3 or b[i + 2] != 3 or n > TLS_MAX_IN:
                self.buf = bytearray()
                return self._refuse(out, "protocol", False)
            if len(b) - i - 5 < n:
                break
            if t == REC_APPDATA:
                self.inner += b[i + 5 : i + 5 + n]
            i += 5 + n
            moved = True
        if moved:
            self.buf = bytearray(b[i:])
        if len(self.inner) < HEADER_LEN:
            return False
        return self._header(out, bytes(self.inner[:HEADER_LEN]), [self.tls], None)

    def _header(self, out, h, cands, used):
        """Try each candidate secret on the 64-byte header h. used: raw bytes it took (plain path)."""
        p = self.proxy
        # The inner header of a fake-TLS client needs no fingerprint: it came inside the session a fresh,
        # HMAC-checked hello opened (remembered in _hello), which only a holder of the secret can make.
        # One slot per handshake: mtproto.replay_cache counts handshakes, ee ones too.
        fp = h[8:24] if self.tls is None else None
        if fp is not None and fp in p.replay:
            return self._refuse(out, "replay")
        pre = h[8:56]
        rev = bytes(reversed(pre))
        for i in cands:
            s = p.secrets[i]
            dec = p.aes_ctr(crypto.sha256(pre[:32] + s.key), pre[32:48])
            plain = bytes(dec.update(h))
            tag = plain[56:60]
            if tag not in TAGS or (s.kind != KIND_PLAIN and tag != TAG_PADDED):
                continue
            if fp is not None:
                p.replay.add(fp)
            dc = int.from_bytes(plain[60:62], "little")
            if dc >= 0x8000:
                dc -= 0x10000
            enc = p.aes_ctr(crypto.sha256(rev[:32] + s.key), rev[32:48])
            dc_head, d_enc, d_dec = dc_header(tag, dc, p.rand, p.aes_ctr)
            pipe = Pipe(dec, enc, d_enc, d_dec, T.RecordSizer(p.rand(4)) if self.tls is not None else None)
            if used is None:  # fake-TLS: payload past the header, then any partial record
                rest = pipe.convert_up(bytes(self.inner[HEADER_LEN:]))
                rest += pipe.up(bytes(self.buf))
            else:
                rest = pipe.up(bytes(self.buf[used:]))
            self.done = True
            self.buf = bytearray()
            self.inner = bytearray()
            out.append(Accepted(i, tag, dc, dc_head + rest, pipe))
            return False
        return self._refuse(out, "secret", self.tls is None)


# -- building blocks -------------------------------------------------------------


def _whole_message(b):
    """Fewer than 64 bytes that make a whole message of another protocol: a client's header comes whole in
    its first segment and is random, so it ends with none of these, while a prober that sent one waits for
    the answer (the mask site's, at once). A whole HTTP head (any verb, the HTTP/2 preface), a whole TLS
    record (an alert, a short hello), a text line (SSH's banner, SMTP, a bare HTTP/0.9 request)."""
    n = len(b)
    if b"\r\n\r\n" in b:
        return True
    if 0x14 <= b[0] <= 0x17 and n >= 5 and b[1] == 3 and 5 + ((b[3] << 8) | b[4]) <= n:
        return True
    # A line of at least 4 printable characters from the first byte, ended by CRLF: random bytes do so
    # about once in 10^7 split headers.
    if n >= 6 and b[n - 2] == 13 and b[n - 1] == 10:
        for i in range(n - 2):
            if not 32 <= b[i] < 127:
                return False
        return True
    return False


def dc_header(tag, dc, rand, aes_ctr):
    """A fresh obfuscated2 header toward a DC -> (64 bytes to send, encryptor, decryptor)."""
    while True:
        h = bytearray(rand(HEADER_LEN))
        if h[0] != 0xEF and bytes(h[:4]) not in _RESERVED and bytes(h[4:8]) != b"\0\0\0\0":
            break
    h[56:60] = tag
    d = dc & 0xFFFF
    h[60] = d & 0xFF
    h[61] = d >> 8
    pre = bytes(h[8:56])
    rev = bytes(reversed(pre))
    enc = aes_ctr(pre[:32], pre[32:48])
    dec = aes_ctr(rev[:32], rev[32:48])
    sealed = bytes(enc.update(bytes(h)))
    return bytes(h[:56]) + sealed[56:64], enc, dec


def _record_len(src, i, n):
    """The payload length of the TLS record whose header is at src[i] (n: bytes in src), or -1 when the whole
    record has not come yet. Raises MTProtoError on a header no client sends (the fake-TLS stream is TLS 1.2
    records of at most TLS_MAX_IN bytes). The one record walk of up() and tls_up_into()."""
    ln = (src[i + 3] << 8) | src[i + 4]
    if src[i + 1] != 3 or src[i + 2] != 3 or ln > TLS_MAX_IN:
        raise MTProtoError("tls")
    return ln if n - i - 5 >= ln else -1


_scratch = [memoryview(bytearray(0)), memoryview(bytearray(0))]


def _room(n):
    """The two scratch buffers every tunnel shares (one loop, one chunk at a time), n bytes each or more."""
    if len(_scratch[0]) < n:
        _scratch[0] = memoryview(bytearray(n))
        _scratch[1] = memoryview(bytearray(n))
    return _scratch


def _ctr2_into(first, second, data):
    """second(first(data)) through the scratch buffers -> a view of the second."""
    n = len(data)
    a, b = _room(n + 16)  # CTR writes len(data) bytes; update_into wants a block's room more
    first.update_into(data, a)
    second.update_into(a[:n], b)
    return b[:n]


class Pipe:
    """An accepted connection's data path: client bytes -> DC bytes and back, in any split.

    c_dec/c_enc: the client side's ciphers; d_enc/d_dec: the DC side's. tls: a faketls.RecordSizer
    when the client side speaks in TLS ApplicationData records (it cuts bulk into records), else None.
    """

    __slots__ = ("c_dec", "c_enc", "d_enc", "d_dec", "tls", "rbuf")

    def __init__(self, c_dec, c_enc, d_enc, d_dec, tls):
        self.c_dec = c_dec
        self.c_enc = c_enc
        self.d_enc = d_enc
        self.d_dec = d_dec
        self.tls = tls
        self.rbuf = b""  # fake-TLS: the start of a record not complete yet

    def converters(self):
        """(up, down) for a copy loop that reuses its buffers (the CPython fast pump): each takes a
        bytes-like and returns a bytes-like that is valid until the next call of either; nothing is
        allocated per chunk where the ciphers can write into a buffer (cryptography's update_into).
        Ciphers that bring a native pipe (CPython's runtime/_mtpump.c) answer with its two ways: the same
        bytes, a chunk in one call (and .relay() to read and send it too); the record start held and the
        sizer's state move over to them."""
        native = getattr(self.c_dec, "pipe", None)
        if native is not None:
            ways = native(self.c_enc, self.d_enc, self.d_dec, self.tls.x if self.tls else 0, self.rbuf, MTProtoError)
            self.rbuf = b""
            return ways
        if not hasattr(self.c_dec, "update_into"):
            return (lambda data: self.up(bytes(data))), self.down
        if self.tls:
            return self.tls_up_into, self.tls_down_into
        c_dec, d_enc, d_dec, c_enc = self.c_dec, self.d_enc, self.d_dec, self.c_enc

        def up(data):
            return _ctr2_into(c_dec, d_enc, data)

        def down(data):
            return _ctr2_into(d_dec, c_enc, data)

        return up, down

    def tls_up_into(self, data):
        """up() for fake-TLS into the scratch buffers: the payloads of the whole records, deciphered one
        after another into the first buffer, then enciphered for the DC into the second -> a view of it.
        Only a record cut short is copied out (rbuf) for the next chunk."""
        src = memoryview(self.rbuf + bytes(data)) if self.rbuf else data
        n = len(src)
        a, b = _scratch
        if len(a) < n + 16:
            a, b = _room(n + 16)
        c_dec = self.c_dec
        i = o = 0
        while n - i >= 5:
            ln = _record_len(src, i, n)
            if ln < 0:
                break
            t = src[i]
            if t == REC_APPDATA:
                if ln:
                    c_dec.update_into(src[i + 5 : i + 5 + ln], a[o:])
                    o += ln
            elif t != REC_CCS:
                raise MTProtoError("tls")  # an alert or a renegotiation: nothing we speak
            i += 5 + ln
        self.rbuf = bytes(src[i:]) if i < n else b""
        if not o:
            return b""
        self.d_enc.update_into(a[:o], b)
        return b[:o]

    def tls_down_into(self, data):
        """down() for fake-TLS into the scratch buffers: deciphered from the DC into the first, then
        enciphered for the client into the second between the record headers, cut as faketls.frame() cuts."""
        n = len(data)
        whole = T.WHOLE_MAX
        need = n + 5 * (n // whole + 1) + 16  # every record but the last is longer than `whole`
        a, b = _scratch
        if len(a) < need:
            a, b = _room(need)
        self.d_dec.update_into(data, a)
        c_enc = self.c_enc
        if n <= whole:
            b[0] = REC_APPDATA
            b[1] = b[2] = 3
            b[3] = n >> 8
            b[4] = n & 0xFF
            c_enc.update_into(a[:n], b[5:])
            return b[: 5 + n]
        sizer = self.tls
        i = o = 0
        while i < n:
            k = min(sizer.next(), n - i)
            b[o] = REC_APPDATA
            b[o + 1] = b[o + 2] = 3
            b[o + 3] = k >> 8
            b[o + 4] = k & 0xFF
            c_enc.update_into(a[i : i + k], b[o + 5 :])
            i += k
            o += 5 + k
        return b[:o]

    def convert_up(self, data):
        return bytes(self.d_enc.update(self.c_dec.update(data))) if data else b""

    def up(self, data):
        """Client bytes -> bytes for the DC. Raises MTProtoError on broken TLS framing."""
        if not self.tls:
            return bytes(self.d_enc.update(self.c_dec.update(data)))
        src = self.rbuf + bytes(data) if self.rbuf else data
        n = len(src)
        i = 0
        out = []
        while n - i >= 5:
            ln = _record_len(src, i, n)
            if ln < 0:
                break
            t = src[i]
            if t == REC_APPDATA:
                out.append(bytes(self.d_enc.update(self.c_dec.update(src[i + 5 : i + 5 + ln]))))
            elif t != REC_CCS:
                raise MTProtoError("tls")  # an alert or a renegotiation: nothing we speak
            i += 5 + ln
        self.rbuf = bytes(src[i:]) if i < n else b""  # a copy: src may be the runtime's read buffer
        return b"".join(out)

    def down(self, data):
        """DC bytes -> bytes for the client."""
        out = self.c_enc.update(self.d_dec.update(data))
        if not self.tls:
            return bytes(out)
        return T.frame(out, self.tls)
