"""Fuzz targets for the HTTP proxy parser (firmware/relay/proto/httpproxy.py): bytes in, an AssertionError when
an invariant breaks. The suite runs them under hypothesis (tests/firmware/test_httpproxy.py); fuzz_http.py
runs them under atheris for as long as you like.

The invariants are what request smuggling needs broken (RFC 9112 2.2, 6.1, 6.3): anything the relay
accepts it forwards with every line intact (no bare CR, LF or NUL), one Content-Length at most, never
both Content-Length and Transfer-Encoding, and a request line of exactly three parts; anything it does
not accept is an HttpError (a 400 to the client, a 502 for an origin's answer), never another exception.
"""

from relay.proto import httpproxy as H


def _lines(head):
    assert head.endswith(b"\r\n\r\n")
    lines = head[:-4].split(b"\r\n")
    for line in lines:
        assert b"\r" not in line and b"\n" not in line and b"\x00" not in line, line
    return lines


def _one_framing(lines):
    names = [line.split(b":", 1)[0].lower() for line in lines[1:]]
    assert names.count(b"content-length") <= 1, lines
    return names


def request_target(data, split=0):
    """data: what a client sends. split > 0 feeds the head reader that many bytes at a time."""
    reader = H.HeadReader(8192)
    try:
        head = None
        step = split or len(data) or 1
        for i in range(0, len(data), step):
            head = reader.feed(data[i : i + step])
            if head is not None:
                break
        if head is None:
            return
        m = H.parse_request(head)
        framing = H.request_framing(m) if m.method != b"CONNECT" else None
    except H.HttpError as e:
        assert e.status == 400, e.status
        return
    if m.method == b"CONNECT":
        assert 0 < m.port < 65536
        return
    assert 0 < m.port < 65536
    lines = _lines(H.forward_head(m))
    assert lines[0].count(b" ") == 2, lines[0]
    names = _one_framing(lines)
    assert not (b"content-length" in names and b"transfer-encoding" in names), lines
    if framing.kind == H.LENGTH:
        assert framing.left == int(m.get(b"content-length"))


def response_target(data):
    """data: what an origin answers (a head, then body bytes)."""
    reader = H.HeadReader(8192)
    try:
        head = reader.feed(data)
        if head is None:
            return
        resp = H.parse_response(head)
        framer = H.response_framing(resp, b"GET")
        lines = _lines(H.client_head(resp, True))
        _one_framing(lines)
        rest = reader.rest
        used = framer.consume(rest)
        assert 0 <= used <= len(rest)
    except H.HttpError as e:
        assert e.status == 502, e.status
