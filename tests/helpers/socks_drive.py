"""The SOCKS handshakes driven as socks_session.serve_socks and socks_fast drive them, without I/O:
for the split tests (tests/firmware/test_socks_splits.py) and the fuzzer (tests/fuzz/fuzz_socks.py).

drive(): Send goes out, a Login is answered (phone / s3cret is the one account) and the handshake
fed b"" (a request may have come with the login), a SocksError sends its reply and ends; bytes
after the request are the tunnel's first payload (.rest). shared=True hands each piece over as a
view of one bytearray that is rewritten before the next feed, as MicroPython's receive buffer is.
"""

from relay.proto import socks


def drive(chunks, password_required, shared=False):
    """-> (bytes answered, (host, port, rest) of the request or the error's reason)."""
    first = chunks[0]
    v5 = first[0] == 5  # read once, as the sessions do: on MicroPython `first` is rewritten later
    hs = socks.Socks5Handshake(password_required) if v5 else socks.Socks4Handshake()
    buf = bytearray(max(len(c) for c in chunks))  # one buffer for every piece, as on MicroPython
    out = b""
    req = None
    try:
        for c in chunks:
            if shared:  # the MicroPython receive path: a view of one buffer the next read rewrites
                buf[: len(c)] = c
                data = memoryview(buf)[: len(c)]
            else:
                data = c
            events = hs.feed(data)
            if shared:
                buf[: len(c)] = b"\x05" * len(c)  # the next read lands here before anything looks again
            while events:
                ev = events.pop(0)
                if isinstance(ev, socks.Send):
                    out += ev.data
                elif isinstance(ev, socks.Login):
                    ok = (ev.user, ev.password) == (b"phone", b"s3cret")
                    out += hs.login_reply(ok)
                    if not ok:
                        return out, "auth"
                    events = hs.feed(b"")
                else:
                    req = ev  # what follows is payload: the handshake keeps it in .rest
    except socks.SocksError as e:
        return out + e.reply, e.reason
    return out, None if req is None else (req.host, req.port, bytes(hs.rest))


def cut(msg, cuts):
    chunks, last = [], 0
    for c in sorted(set(cuts)) + [len(msg)]:
        if c > last:
            chunks.append(msg[last:c])
            last = c
    return chunks
