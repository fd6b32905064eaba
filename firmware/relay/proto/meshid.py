"""A phone's identity on the mesh, sans-I/O: the token a relay without an uplink sends as the SOCKS5
username of each tunnel it hands to an uplink relay, and the proof (the password) only a holder of
mesh.key can make. The uplink relay checks the proof and counts the tunnel as that phone.

token(secret, client): the same for one phone all boot long (secret is drawn at boot, never written
anywhere), unlinkable to its address. proof_ok compares in constant time (crypto.equal).
"""

import binascii

from relay.proto.crypto import equal, sha256

TOKEN_HEX = 24  # 96 bits of the phone's token: unique among a building's phones, short on the wire
PROOF_HEX = 32


def _hex(data):
    return binascii.hexlify(sha256(data)).decode()


def token(secret, client):
    """A phone's identity on the mesh: bytes, the same for one phone all boot long, unlinkable to its address."""
    return _hex(secret + b"\x00" + bytes(client))[:TOKEN_HEX].encode()


def proof(key, tok):
    """What only a holder of mesh.key can attach to a token."""
    return _hex(b"relay-mesh-identity\x00" + key + b"\x00" + tok)[:PROOF_HEX].encode()


def proof_ok(key, tok, got):
    """Whether got is tok's proof under key: the same time for every wrong guess."""
    return bool(key) and len(tok) == TOKEN_HEX and equal(got, proof(key, tok))
