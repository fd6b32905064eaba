"""IP addresses as bytes (4 or 16 long): parse, format, match against CIDRs; host names checked.

Pure functions, no socket module: MicroPython ports differ in what
inet_pton they have, and the guard must decide the same way everywhere.
"""

_DEC = "0123456789"
_OCT = "01234567"
_HEX = "0123456789abcdefABCDEF"
_NAME_CHARS = "abcdefghijklmnopqrstuvwxyz0123456789-_."  # dots: labels were checked one by one
_MAX_NAME = 253  # a DNS name's text, without the final dot (RFC 1035: 255 bytes on the wire)


def _only(text, chars):
    """Every character of text is one of chars (str.isdigit takes other scripts' digits, int() too).
    strip() does the scan in C: 5x faster than a loop on MicroPython, where every connect asks."""
    return not text.strip(chars)


def parse_ip(text):
    """Return 4 or 16 bytes for an IPv4/IPv6 literal, or None."""
    if not text:
        return None
    if ":" in text:
        return _parse_v6(text)
    return _parse_v4(text)


def _parse_v4(text):
    parts = text.split(".")
    if len(parts) != 4:
        return None
    out = bytearray(4)
    for i in range(4):
        p = parts[i]
        if not p or len(p) > 3 or not _only(p, _DEC):
            return None
        if len(p) > 1 and p[0] == "0":
            return None  # leading zeros are octal to some resolvers: refuse the ambiguity
        v = int(p)
        if v > 255:
            return None
        out[i] = v
    return bytes(out)


def _parse_v6(text):
    if text.startswith("[") and text.endswith("]"):
        text = text[1:-1]
    if "%" in text:
        text = text.split("%", 1)[0]
    tail = b""
    if "." in text:
        cut = text.rfind(":")
        tail = _parse_v4(text[cut + 1 :])
        if tail is None:
            return None
        text = text[: cut + 1] + "0:0"
    halves = text.split("::")
    if len(halves) > 2:
        return None

    def groups(s):
        if not s:
            return []
        out = []
        for g in s.split(":"):
            if not g or len(g) > 4 or not _only(g, _HEX):  # int(g, 16) would take "-1", " 1" and "0x1"
                return None
            out.append(int(g, 16))
        return out

    head = groups(halves[0])
    rest = groups(halves[1]) if len(halves) == 2 else []
    if head is None or rest is None:
        return None
    if len(halves) == 2:
        if len(head) + len(rest) > 7:
            return None
        words = head + [0] * (8 - len(head) - len(rest)) + rest
    else:
        words = head
    if len(words) != 8:
        return None
    out = bytearray(16)
    for i in range(8):
        out[2 * i] = words[i] >> 8
        out[2 * i + 1] = words[i] & 0xFF
    if tail:
        out[12:16] = tail
    return bytes(out)


def _number(part):
    """One part of a loose IPv4 address: 0x hex, 0 octal or decimal, as inet_aton reads it; None if not."""
    if part[:2] in ("0x", "0X"):
        h = part[2:]
        return int(h, 16) if h and _only(h, _HEX) else (0 if not h else None)
    if len(part) > 1 and part[0] == "0":
        return int(part[1:], 8) if _only(part[1:], _OCT) else None
    return int(part) if part and _only(part, _DEC) else None


def _ends_in_number(last):
    return (last and _only(last, _DEC)) or (last[:2] in ("0x", "0X") and _only(last[2:], _HEX))


def parse_host(text):
    """A destination as a client wrote it -> address bytes, or the name (lower case, no final dot).

    Every numeric form a resolver or an upstream proxy would read as an address is one here, so
    the guard sees that address whoever resolves the name: inet_aton's 127.1, 2130706433,
    0x7f000001 and 0177.0.0.1, by the URL standard's rule (a host whose last label is a number
    is an IPv4 address or nothing). Raises ValueError for text that is neither an address nor a
    name the policy can judge: an empty label or one over 63 bytes, more than 253 bytes, a
    character other than a-z, 0-9, '-' and '_' (a resolver might read it otherwise)."""
    ip = parse_ip(text)
    if ip is not None:
        return ip
    if ":" in text:
        raise ValueError("not an IPv6 address")
    name = text[:-1] if text[-1:] == "." else text
    labels = name.split(".")
    if _ends_in_number(labels[-1]):
        if len(labels) > 4:
            raise ValueError("too many parts for an IPv4 address")
        nums = []
        for p in labels:
            n = _number(p)
            if n is None:
                raise ValueError("not an IPv4 address")
            nums.append(n)
        last = nums.pop()
        for n in nums:
            if n > 255:
                raise ValueError("not an IPv4 address")
        if last >= 1 << (8 * (4 - len(nums))):
            raise ValueError("not an IPv4 address")
        for i in range(len(nums)):
            last += nums[i] << (8 * (3 - i))
        return bytes(((last >> 24) & 255, (last >> 16) & 255, (last >> 8) & 255, last & 255))
    name = name.lower()
    if not name or len(name) > _MAX_NAME:
        raise ValueError("bad name length")
    for label in labels:
        if not 0 < len(label) < 64:
            raise ValueError("empty label or one over 63 bytes")
    if not _only(name, _NAME_CHARS):
        raise ValueError("a character a host name does not have")
    return name


def format_ip(ip):
    if len(ip) == 4:
        return "%d.%d.%d.%d" % (ip[0], ip[1], ip[2], ip[3])
    words = [(ip[i] << 8) | ip[i + 1] for i in range(0, 16, 2)]
    # RFC 5952: compress the longest run of two or more zero words.
    best, best_len, i = -1, 1, 0
    while i < 8:
        if words[i] == 0:
            j = i
            while j < 8 and words[j] == 0:
                j += 1
            if j - i > best_len:
                best, best_len = i, j - i
            i = j
        else:
            i += 1
    if best < 0:
        return ":".join("%x" % w for w in words)
    left = ":".join("%x" % w for w in words[:best])
    right = ":".join("%x" % w for w in words[best + best_len :])
    return left + "::" + right


def parse_cidr(text):
    """'10.0.0.0/8' -> (network bytes, prefix length); a bare address is a /32 or /128."""
    if "/" in text:
        a, p = text.split("/", 1)
        if not p.isdigit():
            return None
        plen = int(p)
    else:
        a, plen = text, -1
    ip = parse_ip(a)
    if ip is None:
        return None
    bits = len(ip) * 8
    if plen < 0:
        plen = bits
    if plen > bits:
        return None
    return _mask(ip, plen), plen


def _mask(ip, plen):
    out = bytearray(ip)
    for i in range(len(out)):
        keep = plen - 8 * i
        if keep <= 0:
            out[i] = 0
        elif keep < 8:
            out[i] &= (0xFF << (8 - keep)) & 0xFF
    return bytes(out)


def _prefix_mask(bits, plen):
    return ((1 << plen) - 1) << (bits - plen)


def in_net(ip, net):
    """net is (network bytes, prefix length) from parse_cidr."""
    base, plen = net
    n = len(ip)
    if n != len(base):
        return False
    return int.from_bytes(ip, "big") & _prefix_mask(8 * n, plen) == int.from_bytes(base, "big")


class Nets:
    """Networks from parse_cidr, each with a tag, matched by integer masks: every connection is
    checked against the guard's list, and a byte loop per network cost 14 us for a public address."""

    def __init__(self, nets=(), tag=True):
        self.v4 = []  # (base, mask, order, tag), in the order added
        self.v6 = []
        self.count = 0
        for net in nets:
            self.add(net, tag)

    def add(self, net, tag=True):
        base, plen = net
        bits = 8 * len(base)
        entry = (int.from_bytes(base, "big"), _prefix_mask(bits, plen), self.count, tag)
        (self.v4 if bits == 32 else self.v6).append(entry)
        self.count += 1

    def first(self, ip):
        """(order added, tag) of the first network that holds ip, or None."""
        x = int.from_bytes(ip, "big")
        for base, mask, order, tag in self.v4 if len(ip) == 4 else self.v6:
            if x & mask == base:
                return order, tag
        return None

    def __bool__(self):
        return self.count > 0

    def __len__(self):
        return self.count


def unmap_v4(ip):
    """::ffff:a.b.c.d (and the NAT64-free ::a.b.c.d forms) are IPv4 for the guard."""
    if len(ip) == 16 and ip[:10] == b"\x00" * 10 and ip[10:12] == b"\xff\xff":
        return ip[12:]
    return ip


_ZERO8 = b"\x00" * 8
_NAT64 = b"\x00\x64\xff\x9b" + b"\x00" * 8  # 64:ff9b::/96 (RFC 6052)


def embedded_v4(ip):
    """The IPv4 addresses an IPv6 address reaches, for the guard: () when none.

    ::ffff:a.b.c.d (mapped), ::a.b.c.d (compatible), ::ffff:0:a.b.c.d (SIIT, RFC 2765),
    64:ff9b::a.b.c.d (NAT64, RFC 6052), 2002:AABB:CCDD::/48 (6to4, RFC 3056) and Teredo's
    2001:0::/32 (its server, and its client's address with every bit flipped, RFC 4380)."""
    if len(ip) != 16:
        return ()
    head = ip[:12]
    if head[:8] == _ZERO8:
        mid = head[8:12]
        if mid == b"\x00\x00\xff\xff" or mid == b"\x00\x00\x00\x00" or mid == b"\xff\xff\x00\x00":
            return (ip[12:],)
        return ()
    if head == _NAT64:
        return (ip[12:],)
    if ip[0] == 0x20:
        if ip[1] == 0x02:
            return (ip[2:6],)
        if ip[1] == 0x01 and ip[2] == 0 and ip[3] == 0:
            return (ip[4:8], bytes((ip[12] ^ 255, ip[13] ^ 255, ip[14] ^ 255, ip[15] ^ 255)))
    return ()


def split_host_port(text, default_port=None):
    """'host:port', '[v6]:port' or 'host' -> (host, port or default). Raises ValueError."""
    if text.startswith("["):
        end = text.find("]")
        if end < 0:
            raise ValueError("unclosed [ in " + repr(text))
        host = text[1:end]
        rest = text[end + 1 :]
        if not rest:
            port = default_port
        elif rest[0] == ":" and rest[1:].isdigit():
            port = int(rest[1:])
        else:
            raise ValueError("bad port in " + repr(text))
    elif text.count(":") == 1:
        host, p = text.split(":")
        if not p.isdigit():
            raise ValueError("bad port in " + repr(text))
        port = int(p)
    else:
        host, port = text, default_port
    if port is None or not 0 < port < 65536:
        raise ValueError("expected a port 1..65535 in " + repr(text))
    if not host:
        raise ValueError("missing host in " + repr(text))
    return host, port
