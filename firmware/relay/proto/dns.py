"""DNS messages (RFC 1035, RFC 3596), sans-I/O: build queries, parse messages.

parse(data) -> Message or raises DNSError for anything malformed: truncated
fields, compression-pointer loops, names over 255 bytes. Names come out in
presentation form (RFC 1035 section 5.1): a label's dot, backslash, space,
control or non-ASCII byte is escaped ("\\.", "\\032"), so one text means one
sequence of labels and lower() folds only ASCII letters, as DNS does.
Building never fails on a valid name. No sockets: services/dns_resolver.py does the sending.
"""

from relay.proto.const import const

TYPE_A = const(1)
TYPE_CNAME = const(5)
TYPE_AAAA = const(28)
CLASS_IN = const(1)
RCODE_OK = const(0)
RCODE_SERVFAIL = const(2)
RCODE_NXDOMAIN = const(3)
FLAG_QR = const(0x8000)
FLAG_RD = const(0x0100)
FLAG_RA = const(0x0080)

_MAX_NAME = const(255)
_MAX_JUMPS = const(16)


class DNSError(Exception):
    pass


class ResolveError(Exception):
    """A lookup that found no answer: .reason "nxdomain", "timeout" or "failed" (no resolver answered)."""

    def __init__(self, reason):
        super().__init__(reason)
        self.reason = reason


def encode_name(name):
    """'example.org' -> b'\\x07example\\x03org\\x00'. Raises DNSError on a bad name."""
    out = bytearray()
    name = name.rstrip(".")
    if name:
        for label in name.split("."):
            raw = label.encode()
            if not 0 < len(raw) < 64:
                raise DNSError("bad label in name")
            out.append(len(raw))
            out += raw
    out.append(0)
    if len(out) > _MAX_NAME:
        raise DNSError("name longer than 255 bytes")
    return bytes(out)


def build_query(qid, name, qtype):
    return (
        bytes((qid >> 8, qid & 0xFF, FLAG_RD >> 8, 0, 0, 1, 0, 0, 0, 0, 0, 0))
        + encode_name(name)
        + bytes((qtype >> 8, qtype & 0xFF, 0, CLASS_IN))
    )


def _u16(b, i):
    if i + 2 > len(b):
        raise DNSError("truncated")
    return (b[i] << 8) | b[i + 1]


def decode_name(b, i):
    """-> (name, offset after the name at i). Follows compression pointers, bounded."""
    labels = []
    total = 0
    jumps = 0
    end = -1
    n = len(b)
    while True:
        if i >= n:
            raise DNSError("truncated name")
        ln = b[i]
        if ln & 0xC0 == 0xC0:
            if i + 1 >= n:
                raise DNSError("truncated pointer")
            if end < 0:
                end = i + 2
            jumps += 1
            if jumps > _MAX_JUMPS:
                raise DNSError("compression loop")
            i = ((ln & 0x3F) << 8) | b[i + 1]
            continue
        if ln & 0xC0:
            raise DNSError("reserved label type")
        if ln == 0:
            i += 1
            break
        if i + 1 + ln > n:
            raise DNSError("truncated label")
        total += ln + 1
        if total > _MAX_NAME:
            raise DNSError("name longer than 255 bytes")
        labels.append(_label_text(bytes(b[i + 1 : i + 1 + ln])))
        i += 1 + ln
    return ".".join(labels), (end if end >= 0 else i)


def _label_text(raw):
    """A label's bytes in presentation form: printable ASCII as it is, ".", "\\" and others escaped."""
    for c in raw:
        if c <= 0x20 or c >= 0x7F or c == 0x2E or c == 0x5C:
            break
    else:
        return raw.decode()
    out = []
    for c in raw:
        if c == 0x2E or c == 0x5C:
            out.append("\\" + chr(c))
        elif 0x20 < c < 0x7F:
            out.append(chr(c))
        else:
            out.append("\\%03d" % c)
    return "".join(out)


def asks(msg, name, qtype):
    """msg has one question, and it is (name, qtype, IN); names compared as DNS does (ASCII case)."""
    if len(msg.questions) != 1:
        return False
    qname, t, cls = msg.questions[0]
    return t == qtype and cls == CLASS_IN and qname.lower() == name.lower()


class Record:
    __slots__ = ("name", "type", "cls", "ttl", "data")

    def __init__(self, name, rtype, cls, ttl, data):
        self.name = name
        self.type = rtype
        self.cls = cls
        self.ttl = ttl
        self.data = data


class Message:
    __slots__ = ("id", "flags", "questions", "answers", "authority", "additional")

    @property
    def rcode(self):
        return self.flags & 0xF

    @property
    def is_response(self):
        return bool(self.flags & FLAG_QR)


def parse(b):
    if len(b) < 12:
        raise DNSError("shorter than a header")
    m = Message()
    m.id = _u16(b, 0)
    m.flags = _u16(b, 2)
    counts = [_u16(b, 4 + 2 * k) for k in range(4)]
    if counts[0] > 16 or sum(counts) > 512:
        raise DNSError("too many records")
    i = 12
    m.questions = []
    for _ in range(counts[0]):
        name, i = decode_name(b, i)
        m.questions.append((name, _u16(b, i), _u16(b, i + 2)))
        i += 4
    sections = []
    for c in counts[1:]:
        recs = []
        for _ in range(c):
            name, i = decode_name(b, i)
            rtype, cls = _u16(b, i), _u16(b, i + 2)
            ttl = (_u16(b, i + 4) << 16) | _u16(b, i + 6)
            rdlen = _u16(b, i + 8)
            i += 10
            if i + rdlen > len(b):
                raise DNSError("truncated record data")
            recs.append(Record(name, rtype, cls, ttl, bytes(b[i : i + rdlen])))
            i += rdlen
        sections.append(recs)
    m.answers, m.authority, m.additional = sections
    return m


def addresses(msg, qtype):
    """(addresses of qtype in the answer section, smallest TTL)."""
    out = []
    ttl = 86400
    want = 4 if qtype == TYPE_A else 16
    for r in msg.answers:
        if r.type == qtype and r.cls == CLASS_IN and len(r.data) == want:
            out.append(r.data)
            if r.ttl < ttl:
                ttl = r.ttl
    return out, ttl


# -- answering (dnsserver.py) ------------------------------------------------

TYPE_OPT = const(41)
RCODE_FORMERR = const(1)
RCODE_REFUSED = const(5)
FLAG_TC = const(0x0200)
FLAG_AA = const(0x0400)
_OPCODE_MASK = const(0x7800)
_PTR_QNAME = b"\xc0\x0c"  # a pointer to the question's name at offset 12


def skip_name(b, i):
    """Offset just after the (possibly compressed) name at i; checks bounds only."""
    n = len(b)
    while True:
        if i >= n:
            raise DNSError("truncated name")
        ln = b[i]
        if ln & 0xC0 == 0xC0:
            if i + 1 >= n:
                raise DNSError("truncated pointer")
            return i + 2
        if ln & 0xC0:
            raise DNSError("reserved label type")
        if ln == 0:
            return i + 1
        i += 1 + ln


def question_end(b):
    """Offset after the first question of message b, whose name must not be compressed
    (queries never compress it, and an answer's pointer at offset 12 relies on that)."""
    i = 12
    n = len(b)
    while True:
        if i >= n:
            raise DNSError("truncated question")
        ln = b[i]
        if ln & 0xC0:
            raise DNSError("compressed or reserved label in a question")
        i += 1 + ln
        if ln == 0:
            break
    if i + 4 > n:
        raise DNSError("truncated question")
    return i + 4


def edns_size(msg):
    """The UDP payload size the asker accepts: its EDNS OPT record's class, else 512."""
    for r in msg.additional:
        if r.type == TYPE_OPT:
            return min(max(r.cls, 512), 4096)
    return 512


def build_response(query, qend, rcode, answers=(), aa=True):
    """A reply to query (bytes; qend from question_end): the question copied verbatim,
    then answers [(type, ttl, rdata)] that all name the question's name."""
    flags = (query[2] << 8) | query[3]
    flags = FLAG_QR | (flags & (_OPCODE_MASK | FLAG_RD)) | FLAG_RA | (rcode & 0xF)
    if aa:
        flags |= FLAG_AA
    n = len(answers)
    out = bytearray(query[0:2])
    out += bytes((flags >> 8, flags & 0xFF, 0, 1, n >> 8, n & 0xFF, 0, 0, 0, 0))
    out += query[12:qend]
    for rtype, ttl, rdata in answers:
        out += _PTR_QNAME
        out += bytes((rtype >> 8, rtype & 0xFF, 0, CLASS_IN, (ttl >> 24) & 0xFF, (ttl >> 16) & 0xFF,
                      (ttl >> 8) & 0xFF, ttl & 0xFF, len(rdata) >> 8, len(rdata) & 0xFF))
        out += rdata
    return bytes(out)


def truncate(response, qend):
    """Header and question only, with TC set: the asker retries over TCP or with EDNS."""
    out = bytearray(response[0:qend])
    out[2] |= FLAG_TC >> 8
    for k in range(6, 12):
        out[k] = 0
    return bytes(out)


def record_ttls(b):
    """[(offset of the TTL field, ttl)] of every record except OPT; raises DNSError."""
    if len(b) < 12:
        raise DNSError("shorter than a header")
    counts = [_u16(b, 4 + 2 * k) for k in range(4)]
    if counts[0] > 16 or sum(counts) > 512:
        raise DNSError("too many records")
    i = 12
    for _ in range(counts[0]):
        i = skip_name(b, i) + 4
    out = []
    for _ in range(counts[1] + counts[2] + counts[3]):
        i = skip_name(b, i)
        rtype = _u16(b, i)
        ttl = (_u16(b, i + 4) << 16) | _u16(b, i + 6)
        rdlen = _u16(b, i + 8)
        if rtype != TYPE_OPT:
            out.append((i + 4, ttl))
        i += 10 + rdlen
        if i > len(b):
            raise DNSError("truncated record data")
    return out


def restamp(b, qid, ttls, elapsed):
    """Copy of response b with id qid and every TTL lowered by elapsed seconds (ttls from record_ttls)."""
    out = bytearray(b)
    out[0] = qid >> 8
    out[1] = qid & 0xFF
    if elapsed > 0:
        for off, ttl in ttls:
            t = ttl - elapsed
            if t < 0:
                t = 0
            out[off] = (t >> 24) & 0xFF
            out[off + 1] = (t >> 16) & 0xFF
            out[off + 2] = (t >> 8) & 0xFF
            out[off + 3] = t & 0xFF
    return bytes(out)
