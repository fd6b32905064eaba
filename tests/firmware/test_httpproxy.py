"""HTTP proxy messages: heads, hop-by-hop headers, body framing in any split."""

import pytest
from hypothesis import given, settings, strategies as st

from relay.proto import httpproxy as H
from tests.fuzz.http_targets import request_target, response_target


def read_head(data, limit=8192):
    r = H.HeadReader(limit)
    for i in range(len(data)):
        head = r.feed(data[i : i + 1])
        if head is not None:
            return head, r.rest + data[i + 1 :]
    return None, b""


def test_head_reader_whole_and_bytewise():
    msg = b"GET http://a.example/x HTTP/1.1\r\nHost: a.example\r\n\r\nNEXT"
    r = H.HeadReader(8192)
    assert r.feed(msg) == msg[: msg.index(b"\r\n\r\n")]
    assert r.rest == b"NEXT"
    head, rest = read_head(msg)
    assert head == msg[: msg.index(b"\r\n\r\n")] and rest == b"NEXT"


def test_head_reader_keeps_its_own_copy_of_a_reused_read_buffer():
    """MicroPython's conn.recv() hands out a view of one shared buffer that the next read overwrites
    (sessions/request_head.py reads heads that way): the head and rest must not change with it."""
    msg = b"GET / HTTP/1.1\r\nHost: relay.lan\r\n\r\nNEXT"
    buf = bytearray(16)
    r = H.HeadReader(4096)
    head = None
    for i in range(0, len(msg), 16):
        piece = msg[i : i + 16]
        buf[: len(piece)] = piece
        head = r.feed(memoryview(buf)[: len(piece)])
        if head is not None:
            break
    buf[:] = b"X" * 16  # the next read, for another connection
    assert head == msg[: msg.index(b"\r\n\r\n")] and r.rest == b"NEXT"


def test_head_too_large_is_400():
    r = H.HeadReader(1024)
    with pytest.raises(H.HttpError) as e:
        r.feed(b"GET /" + b"a" * 65536)
    assert e.value.status == 400


def test_connect_request():
    m = H.parse_request(b"CONNECT telegram.org:443 HTTP/1.1\r\nHost: telegram.org:443")
    assert (m.method, m.host, m.port) == (b"CONNECT", "telegram.org", 443)
    m6 = H.parse_request(b"CONNECT [2001:db8::1]:8443 HTTP/1.1")
    assert m6.host == bytes.fromhex("20010db8000000000000000000000001") and m6.port == 8443
    with pytest.raises(H.HttpError):
        H.parse_request(b"CONNECT telegram.org HTTP/1.1")


def test_absolute_uri_forward_head_drops_hop_by_hop():
    m = H.parse_request(
        b"GET http://Example.org:8080/p?q=1 HTTP/1.1\r\nHost: example.org:8080\r\nProxy-Connection: keep-alive\r\n"
        b"Proxy-Authorization: Basic eDp5\r\nConnection: close, X-Secret\r\nX-Secret: 1\r\nAccept: */*"
    )
    assert (m.host, m.port, m.path) == ("example.org", 8080, b"/p?q=1")
    head = H.forward_head(m)
    assert head.startswith(b"GET /p?q=1 HTTP/1.1\r\n")
    low = head.lower()
    for gone in (b"proxy-connection", b"proxy-authorization", b"connection:", b"x-secret"):
        assert gone not in low
    assert b"accept: */*" in low and head.endswith(b"\r\n\r\n")
    assert H.client_wants_close(m)


def test_host_header_added_when_missing():
    m = H.parse_request(b"GET http://example.org/ HTTP/1.0")
    assert b"host: example.org" in H.forward_head(m)
    assert H.client_wants_close(m)  # HTTP/1.0 without keep-alive


@pytest.mark.parametrize(
    "line", [b"GET / HTTP/1.1", b"GET https://x/ HTTP/1.1", b"\x16\x03\x01 x y", b"GET http://a@b/ HTTP/1.1", b"GET http://x/"]
)
def test_bad_requests_are_400(line):
    with pytest.raises(H.HttpError) as e:
        H.parse_request(line)
    assert e.value.status == 400


def test_smuggling_shape_refused():
    with pytest.raises(H.HttpError):
        H.parse_request(b"POST http://x/ HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked")


def test_basic_credentials():
    m = H.parse_request(b"GET http://x/ HTTP/1.1\r\nProxy-Authorization: Basic dXNlcjpwYTpzcw==")
    assert H.basic_credentials(m) == (b"user", b"pa:ss")


def test_response_framing_kinds():
    r = H.parse_response(b"HTTP/1.1 200 OK\r\nContent-Length: 5")
    f = H.response_framing(r, b"GET")
    assert f.kind == H.LENGTH and f.consume(b"hello world") == 5 and f.done
    assert H.response_framing(r, b"HEAD").done
    r204 = H.parse_response(b"HTTP/1.1 204 No Content")
    assert H.response_framing(r204, b"GET").done
    r10 = H.parse_response(b"HTTP/1.0 200 OK")
    assert H.response_framing(r10, b"GET").kind == H.UNTIL_CLOSE
    assert not H.origin_keeps_alive(r10)
    head = H.client_head(r, keep_alive=True)
    assert head.startswith(b"HTTP/1.1 200 OK\r\n") and b"connection: keep-alive" in head


CHUNKED = b"5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\nTrailer: x\r\n\r\n"


@settings(max_examples=300, deadline=None)
@given(st.lists(st.integers(1, 12), max_size=40), st.binary(max_size=20))
def test_chunked_scanner_finds_the_end_in_any_split(sizes, after):
    data = CHUNKED + after
    f = H.BodyFramer(H.CHUNKED)
    i, body = 0, 0
    for n in sizes + [len(data)]:
        part = data[i : i + n]
        used = f.consume(part)
        body += used
        i += used
        if f.done or i >= len(data):
            break
    assert f.done and body == len(CHUNKED)


def test_chunked_bad_size_is_502():
    with pytest.raises(H.HttpError):
        H.BodyFramer(H.CHUNKED).consume(b"zz\r\n")


def test_error_response_is_short_and_closes():
    r = H.error_response(503, "full")
    assert r.startswith(b"HTTP/1.1 503 Service Unavailable\r\n") and b"Connection: close" in r and r.endswith(b"full\n")


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=400))
def test_garbage_never_crashes(blob):
    r = H.HeadReader(256)
    try:
        head = r.feed(blob + b"\r\n\r\n")
        if head is not None:
            H.parse_request(head)
    except H.HttpError:
        pass
    try:
        H.parse_response(blob)
    except H.HttpError:
        pass


# -- request smuggling (issue 13 item 7): RFC 9112 2.2 (bare CR/LF), 6.3 (Content-Length) ------------

SMUGGLING = [
    b"GET http://x/ HTTP/1.1\r\nX-A: b\nContent-Length: 5",  # bare LF inside a value
    b"GET http://x/ HTTP/1.1\r\nX-A: b\rContent-Length: 5",  # bare CR inside a value
    b"GET http://x/ HTTP/1.1\r\nX-A: b\x00c",  # NUL
    b"GET http://x/ HTTP/1.1\r\nX-A: b\r",  # CR CR LF
    b"GET http://x/ HTTP/1.1\r\nX-A\n: b",  # LF in a name
    b"GET http://x/ HTTP/1.1\r\nX(A): b",  # not a token
    b"POST http://x/ HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 6",  # two lengths
    b"POST http://x/ HTTP/1.1\r\nContent-Length: 5\r\nX: y\r\ncontent-length: 0",
    b"GET http://x/\nX-A: b HTTP/1.1",  # LF in the target
    b"GET http://x/\tb HTTP/1.1",
    b"GET http://x/ HTTP/1.1\nContent-Length: 5",  # LF after the version
    b"CONNECT [::1]:70721 HTTP/1.1",  # port range, bracketed host (issue 13 "Also")
    b"GET http://[::1]:99999/ HTTP/1.1",
    b"GET http://[::1]:0/ HTTP/1.1",
    b"GET http://[::1]:000000080/ HTTP/1.1",
    b"CONNECT example.org:0 HTTP/1.1",
]


@pytest.mark.parametrize("head", SMUGGLING)
def test_smuggling_material_is_400(head):
    with pytest.raises(H.HttpError) as e:
        H.parse_request(head)
    assert e.value.status == 400


@pytest.mark.parametrize("head", SMUGGLING[:8])
def test_smuggling_material_is_400_through_the_head_reader_in_any_split(head):
    msg = head + b"\r\n\r\n"
    for split in (len(msg), 1):
        r = H.HeadReader(8192)
        got = None
        for i in range(0, len(msg), split):
            got = r.feed(msg[i : i + split])
            if got is not None:
                break
        with pytest.raises(H.HttpError):
            H.parse_request(got)


def test_one_content_length_repeated_is_merged():
    m = H.parse_request(b"POST http://x/ HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 5")
    assert H.forward_head(m).lower().count(b"content-length") == 1
    assert H.request_framing(m).left == 5


def test_response_with_two_lengths_or_a_bare_lf_is_502():
    for head in (b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2",
                 b"HTTP/1.1 200 OK\r\nX: a\nContent-Length: 2", b"HTTP/1.1 200 OK\nX: y"):
        with pytest.raises(H.HttpError) as e:
            H.parse_response(head)
        assert e.value.status == 502


def test_bracketed_host_ports_in_range_pass():
    assert H.parse_request(b"CONNECT [::1]:65535 HTTP/1.1").port == 65535
    assert H.parse_request(b"GET http://[::1]:1/ HTTP/1.1").port == 1


_FIELD = st.binary(max_size=12) | st.sampled_from([b"\n", b"\r", b"\r\n", b"\x00", b" ", b":", b"5", b"chunked"])
_NAME = st.sampled_from([b"Content-Length", b"content-length", b"Transfer-Encoding", b"X-A", b"Host", b"Connection"])
_HEADERS = st.lists(st.tuples(_NAME | st.binary(max_size=8), st.lists(_FIELD, max_size=4).map(b"".join)), max_size=6)


@settings(max_examples=400, deadline=None)
@given(_HEADERS, st.sampled_from([b"GET", b"POST", b"CONNECT"]), st.binary(max_size=10), st.integers(0, 5))
def test_fuzz_whatever_passes_is_forwarded_with_one_framing(headers, method, target_tail, split):
    """tests/fuzz/http_targets.py under hypothesis (atheris runs it for longer: tests/fuzz/fuzz_http.py)."""
    target = (b"example.org:443" if method == b"CONNECT" else b"http://example.org/") + target_tail
    head = method + b" " + target + b" HTTP/1.1\r\n" + b"\r\n".join(k + b": " + v for k, v in headers)
    request_target(head + b"\r\n\r\n", split)


@settings(max_examples=200, deadline=None)
@given(_HEADERS, st.binary(max_size=40))
def test_fuzz_origin_answers(headers, body):
    head = b"HTTP/1.1 200 OK\r\n" + b"\r\n".join(k + b": " + v for k, v in headers)
    response_target(head + b"\r\n\r\n" + body)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_fuzz_raw_bytes(blob):
    request_target(blob + b"\r\n\r\n", 0)
    response_target(blob + b"\r\n\r\n")


@pytest.mark.parametrize("body", [b"0x5\r\nhello\r\n0\r\n\r\n", b"+5\r\nhello\r\n0\r\n\r\n", b"5_0\r\n",
                                  b"5\nhello\r\n0\r\n\r\n", b"5\r\nhello\n0\r\n\r\n", b" \r\n", b"-0\r\n\r\n"])
def test_chunk_sizes_int_would_take_are_refused(body):
    """int(x, 16) reads "0x5", "+5" and "5_0"; an origin may not: a request body framed differently
    on each side is smuggling. Bare LF line ends likewise (RFC 9112 7.1)."""
    req = H.parse_request(b"POST http://x/ HTTP/1.1\r\nTransfer-Encoding: chunked")
    f = H.request_framing(req)
    with pytest.raises(H.HttpError) as e:
        for i in range(len(body)):  # byte by byte: the scanner copies lines in pieces
            f.consume(body[i : i + 1])
    assert e.value.status == 400


def test_request_transfer_encoding_other_than_chunked_is_400():
    for te in (b"gzip, chunked", b"chunked, chunked", b"identity"):
        with pytest.raises(H.HttpError):
            H.request_framing(H.parse_request(b"POST http://x/ HTTP/1.1\r\nTransfer-Encoding: " + te))


def test_chunked_scanner_reads_a_memoryview_without_copying_it_whole():
    data = bytearray(b"a;ext=" + b"x" * 200 + b"\r\n" + b"z" * 0xA + b"\r\n0\r\n\r\n")
    f = H.BodyFramer(H.CHUNKED)
    assert f.consume(memoryview(data)) == len(data) and f.done


def test_client_head_can_frame_a_close_delimited_body_as_chunks():
    r = H.parse_response(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain")
    head = H.client_head(r, True, chunked=True)
    assert b"transfer-encoding: chunked\r\n" in head and b"connection: keep-alive" in head
