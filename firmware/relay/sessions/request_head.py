"""Reading one HTTP request head off a connection: the loop the HTTP proxy, the portal and the status
listener share.

read_head(conn, reader, data) feeds proto/httpproxy.py's HeadReader the bytes already read, then what
conn.recv() brings, until the head is whole (its bytes) or the peer closes first (None); a head over
the reader's limit raises HttpError. HeadReader copies each read into its own buffer, so MicroPython's
shared receive buffer (a view that the next read overwrites) never leaks into the head or reader.rest.
read_request_head answers that error itself, a 400 that says so rather than a bare close.
"""

from relay.proto import httpproxy as H


async def read_head(conn, reader, data=b""):
    while True:
        head = reader.feed(data)
        if head is not None:
            return head
        data = await conn.recv(reader.limit)  # no read past the limit: the head cannot be longer
        if not data:
            return None


async def read_request_head(conn, limit):
    """The request head, or None once the peer closed or was answered 400."""
    try:
        return await read_head(conn, H.HeadReader(limit))
    except H.HttpError as e:
        await conn.send(H.error_response(e.status, str(e)))
        return None
