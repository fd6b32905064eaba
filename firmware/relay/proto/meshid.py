"""A phone's identity on the mesh, sans-I/O: the login a relay without an uplink sends (SOCKS5 RFC 1929) for
each tunnel it hands to an uplink relay, which checks it and counts the tunnel as that phone.

The username is the phone's token and a login number, "TOKEN.N"; the password a proof of that whole name
only a holder of mesh.key can make. A satellite's logins cross the phones' open Wi-Fi in clear text, so a
proof alone could be captured and replayed for ever (to spend that phone's quota, or dodge per-phone
limits); the number makes each login good once: the uplink relay keeps, per token, the highest number seen
and which of the WINDOW below it came (IPsec's anti-replay window, RFC 4303 3.4.3), and refuses the rest.
No clock is needed (relays in a shutdown may have none).

token(secret, client): the same for one phone all boot long (secret is drawn at boot, never written
anywhere), unlinkable to its address. login(key, tok, n) -> (user, password); check(key, user, password)
-> (tok, n) or None, in constant time for every wrong proof (crypto.equal). Replays: Window.
What it leaves open: a login captured before the uplink relay restarted is good once more after it (the
windows live in memory), and a token evicted from a full table starts afresh.
"""

import binascii

from relay.proto.crypto import equal, sha256

TOKEN_HEX = 24  # 96 bits of the phone's token: unique among a building's phones, short on the wire
PROOF_HEX = 32
WINDOW = 256  # logins of one token that may arrive out of order: a sender numbers all its logins with one
# counter, so this many of its other tunnels may start during one login's greeting round trip
_N_HEX_MAX = 12  # a login number in hex: 2**48 logins outlast any boot
TOKENS_MAX = 1024  # tokens whose windows are kept (~100 bytes each): more phones than a mesh serves at once


def _hex(data):
    return binascii.hexlify(sha256(data)).decode()


def token(secret, client):
    """A phone's identity on the mesh: bytes, the same for one phone all boot long, unlinkable to its address."""
    return _hex(secret + b"\x00" + bytes(client))[:TOKEN_HEX].encode()


def proof(key, user):
    """What only a holder of mesh.key can attach to a username (the token and its login number)."""
    return _hex(b"relay-mesh-identity\x00" + key + b"\x00" + user)[:PROOF_HEX].encode()


def login(key, tok, n):
    """The RFC 1929 username and password of tok's login number n."""
    user = tok + b"." + ("%x" % n).encode()
    return user, proof(key, user)


def check(key, user, password):
    """-> (token, login number) when password is user's proof under key, else None."""
    if not key:
        return None
    ok = equal(password, proof(key, user))  # first, the same time whatever the name holds
    dot = user.find(b".")
    if not ok or dot != TOKEN_HEX or not 0 < len(user) - dot - 1 <= _N_HEX_MAX:
        return None
    try:
        n = int(user[dot + 1:], 16)
    except ValueError:
        return None
    return user[:dot], n


class Window:
    """Per token: the highest login number seen and a bitmap of the WINDOW numbers below and at it.
    fresh(tok, n) -> True once for each n (within the window), False for a replay or one too old."""

    def __init__(self, tokens_max=TOKENS_MAX):
        self.tokens_max = tokens_max
        self.seen = {}  # token -> [highest n, bitmap (bit i: highest - i came), last use]
        self.uses = 0

    def fresh(self, tok, n):
        self.uses += 1
        w = self.seen.get(tok)
        if w is None:
            if len(self.seen) >= self.tokens_max:
                self._evict()
            self.seen[tok] = [n, 1, self.uses]
            return True
        top, bits = w[0], w[1]
        if n > top:
            shift = n - top
            bits = ((bits << shift) | 1) if shift < WINDOW else 1
            w[0], w[1] = n, bits & ((1 << WINDOW) - 1)
        else:
            back = top - n
            if back >= WINDOW or bits >> back & 1:
                return False
            w[1] = bits | (1 << back)
        w[2] = self.uses
        return True

    def _evict(self):
        """The token used longest ago (a phone gone, or a sender that restarted with new tokens)."""
        old = None
        for tok, w in self.seen.items():
            if old is None or w[2] < self.seen[old][2]:
                old = tok
        del self.seen[old]
