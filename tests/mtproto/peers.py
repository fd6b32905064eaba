"""Far sides for the MTProto tests, written from the published formats, not from relay code.

- DCStub: a stand-in Telegram data centre on loopback. It speaks the DC side of
  obfuscated2 (key = header[8:40], iv = header[40:56]; replies keyed from the reversed
  bytes), reads the transport named by the tag (abridged, intermediate, padded
  intermediate), records every packet, answers req_pq_multi with a ResPQ, and echoes
  any other packet.
- MaskSite: the site probes are handed to; records what it got and answers a fixed reply.
- FakeTLSClient: the client half of mtprotoproxy's / tdlib's fake-TLS (ee secrets),
  built from mtprotoproxy.py's handle_fake_tls_handshake and FakeTLSStream{Reader,Writer}.
"""

import hashlib
import hmac
import os
import struct
import threading
import time

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from tests.helpers.origin import ThreadedTCP

TAG_ABRIDGED = b"\xef\xef\xef\xef"
TAG_INTERMEDIATE = b"\xee\xee\xee\xee"
TAG_PADDED = b"\xdd\xdd\xdd\xdd"
REQ_PQ_MULTI = 0xBE7E8EF1
RES_PQ = 0x05162463


def plain_key():
    """16 random bytes for a plain (no dd/ee) secret. Not one whose hex begins with dd or ee:
    Telethon reads such a secret by its prefix as a dd or ee one and keys the wrong 16 bytes
    (this failed a CI run: 2 draws in 256 do it)."""
    while True:
        key = os.urandom(16)
        if key[0] not in (0xDD, 0xEE):
            return key


def ctr(key, iv):
    return Cipher(algorithms.AES(key), modes.CTR(iv)).encryptor()


def recv_exact(sock, n):
    out = b""
    while len(out) < n:
        chunk = sock.recv(n - len(out))
        if not chunk:
            raise EOFError(f"peer closed after {len(out)} of {n} bytes")
        out += chunk
    return out


def frame(tag, data):
    """One transport packet in the framing `tag` names (as Telethon's codecs write them)."""
    if tag == TAG_ABRIDGED:
        n = len(data) // 4
        head = bytes([n]) if n < 127 else b"\x7f" + n.to_bytes(3, "little")
        return head + data
    if tag == TAG_PADDED:
        data += os.urandom(len(data) % 3)
    return struct.pack("<i", len(data)) + data


def read_frame(read, tag):
    if tag == TAG_ABRIDGED:
        n = read(1)[0]
        if n >= 127:
            n = int.from_bytes(read(3), "little")
        return read(n * 4)
    n = struct.unpack("<i", read(4))[0]
    data = read(n)
    if tag == TAG_PADDED and n % 4:
        data = data[: n - n % 4]
    return data


def res_pq_for(req_packet):
    """The DC's answer to a plain req_pq_multi message: a plain ResPQ with the same nonce."""
    auth_key_id, msg_id, length = struct.unpack("<qqi", req_packet[:20])
    body = req_packet[20 : 20 + length]
    assert auth_key_id == 0 and struct.unpack("<I", body[:4])[0] == REQ_PQ_MULTI
    nonce = body[4:20]
    pq = bytes.fromhex("17ED48941A08F981")
    res = struct.pack("<I", RES_PQ) + nonce + os.urandom(16) + bytes([len(pq)]) + pq + b"\x00" * 3
    res += struct.pack("<Ii", 0x1CB5C415, 1) + struct.pack("<q", 0x0BC35F3509F7B7A5)
    reply_msg_id = (int(time.time()) << 32) | 1
    return struct.pack("<qqi", 0, reply_msg_id, len(res)) + res


class DCStub(ThreadedTCP):
    """Accepts obfuscated2 connections on 127.0.0.1; .sessions lists what each one carried."""

    def __init__(self):
        super().__init__()
        self.sessions = []  # dicts: tag, dc, packets, error
        self.lock = threading.Lock()
        self.start()

    def serve(self, c):
        rec = {"tag": None, "dc": None, "packets": [], "error": None}
        with self.lock:
            self.sessions.append(rec)
        c.settimeout(30)
        try:
            h = recv_exact(c, 64)
            dec = ctr(h[8:40], h[40:56])
            rev = h[8:56][::-1]
            enc = ctr(rev[:32], rev[32:48])
            plain = dec.update(h)
            rec["tag"] = plain[56:60]
            rec["dc"] = struct.unpack("<h", plain[60:62])[0]
            if rec["tag"] not in (TAG_ABRIDGED, TAG_INTERMEDIATE, TAG_PADDED):
                rec["error"] = "bad tag"
                return

            def read(n):
                return dec.update(recv_exact(c, n))

            while True:
                pkt = read_frame(read, rec["tag"])
                rec["packets"].append(pkt)
                if len(pkt) >= 24 and pkt[:8] == bytes(8) and struct.unpack("<I", pkt[20:24])[0] == REQ_PQ_MULTI:
                    out = res_pq_for(pkt)
                else:
                    out = pkt  # echo
                c.sendall(enc.update(frame(rec["tag"], out)))
        except (EOFError, OSError) as e:
            if not rec["packets"]:
                rec["error"] = repr(e)
        finally:
            c.close()



class MaskSite(ThreadedTCP):
    """The site a probe is passed to: records the bytes, answers REPLY, closes."""

    REPLY = b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"

    def __init__(self):
        super().__init__(backlog=16)
        self.got = []
        self.start()

    def serve(self, c):
        c.settimeout(5)
        data = b""
        try:
            while True:
                chunk = c.recv(65536)
                data += chunk
                if not chunk or len(data) >= 64:
                    break
            self.got.append(data)
            c.sendall(self.REPLY)
        except OSError:
            self.got.append(data)
        finally:
            c.close()



# -- fake-TLS client ----------------------------------------------------------------


def _ext(kind, body):
    return struct.pack(">HH", kind, len(body)) + body


def client_hello(key, domain, ts=None, session_id=None):
    """A 517-byte TLS 1.3-style ClientHello whose random carries the ee-secret HMAC and time."""
    session_id = os.urandom(32) if session_id is None else session_id
    host = domain.encode()
    exts = _ext(0, struct.pack(">HBH", len(host) + 3, 0, len(host)) + host)  # server_name
    exts += _ext(10, bytes.fromhex("0008001d001700180019"))  # supported_groups
    exts += _ext(13, bytes.fromhex("00080403080404010503"))  # signature_algorithms
    exts += _ext(43, bytes.fromhex("0403040303"))  # supported_versions
    exts += _ext(51, bytes.fromhex("0024001d0020") + os.urandom(32))  # key_share
    suites = bytes.fromhex("130113021303c02bc02fc02cc030cca9cca8")
    body = b"\x03\x03" + bytes(32) + bytes([len(session_id)]) + session_id
    body += struct.pack(">H", len(suites)) + suites + b"\x01\x00"
    pad = 512 - 4 - len(body) - 2 - len(exts) - 4
    exts += _ext(21, bytes(pad))  # padding, to the 517 bytes Telegram's clients send
    body += struct.pack(">H", len(exts)) + exts
    hs = b"\x01" + len(body).to_bytes(3, "big") + body
    rec = bytearray(b"\x16\x03\x01" + struct.pack(">H", len(hs)) + hs)
    assert len(rec) == 517
    mac = hmac.new(key, bytes(rec), hashlib.sha256).digest()
    ts = int(time.time()) if ts is None else ts
    stamp = bytes(28) + struct.pack("<I", ts & 0xFFFFFFFF)
    rec[11:43] = bytes(a ^ b for a, b in zip(mac, stamp, strict=True))
    return bytes(rec)


def read_server_hello(sock, key, client_random):
    """Read ServerHello, ChangeCipherSpec and the ApplicationData record; check the HMAC."""
    recs = []
    raw = b""
    for want in (0x16, 0x14, 0x17):
        head = recv_exact(sock, 5)
        assert head[0] == want and head[1:3] == b"\x03\x03", head
        body = recv_exact(sock, struct.unpack(">H", head[3:5])[0])
        recs.append(body)
        raw += head + body
    zeroed = raw[:11] + bytes(32) + raw[43:]
    mac = hmac.new(key, client_random + zeroed, hashlib.sha256).digest()
    assert raw[11:43] == mac, "ServerHello HMAC does not match"
    assert recs[0][0] == 0x02 and recs[1] == b"\x01"
    return recs


class TLSStream:
    """ApplicationData records both ways over a connected socket."""

    def __init__(self, sock):
        self.sock = sock
        self.buf = b""

    def send(self, data, first=False):
        out = b"\x14\x03\x03\x00\x01\x01" if first else b""
        for i in range(0, len(data), 16384):
            chunk = data[i : i + 16384]
            out += b"\x17\x03\x03" + struct.pack(">H", len(chunk)) + chunk
        self.sock.sendall(out)

    def read(self, n):
        while len(self.buf) < n:
            head = recv_exact(self.sock, 5)
            assert head[:3] == b"\x17\x03\x03", head
            ln = struct.unpack(">H", head[3:5])[0]
            assert ln <= 16384
            self.buf += recv_exact(self.sock, ln)
        out, self.buf = self.buf[:n], self.buf[n:]
        return out


def obfs2_client_header(key, tag, dc):
    """A client's 64-byte obfuscated2 header for a proxy secret -> (header, encryptor, decryptor)."""
    while True:
        h = bytearray(os.urandom(64))
        if h[0] != 0xEF and h[:4] not in (b"HEAD", b"POST", b"GET ", TAG_INTERMEDIATE, TAG_PADDED, b"\x16\x03\x01\x02") and h[4:8] != bytes(4):
            break
    rev = bytes(h[8:56])[::-1]
    enc = ctr(hashlib.sha256(bytes(h[8:40]) + key).digest(), bytes(h[40:56]))
    dec = ctr(hashlib.sha256(rev[:32] + key).digest(), rev[32:48])
    h[56:60] = tag
    h[60:62] = struct.pack("<h", dc)
    sealed = enc.update(bytes(h))
    return bytes(h[:56]) + sealed[56:], enc, dec
