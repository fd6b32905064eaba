"""TLS as a client over any runtime connection (CPython): ssl's MemoryBIO between the TLS state machine and
a Conn's recv()/send(), so the relay's own connections (fleet reports) can run TLS through an upstream
proxy or the mesh, where asyncio's ssl= would need a socket of its own.

TLSConn offers the Conn surface the relay's services use (recv, send, close, is_open, hang_up, local,
shutdown_write, abort); certificate and protocol failures are ssl.SSLError (an OSError).
"""

import ssl

_READ = 16384  # one TLS record's plaintext at most


class TLSConn:
    __slots__ = ("conn", "tls", "incoming", "outgoing", "peer")

    def __init__(self, conn, ctx, hostname):
        self.conn = conn
        self.incoming = ssl.MemoryBIO()
        self.outgoing = ssl.MemoryBIO()
        self.tls = ctx.wrap_bio(self.incoming, self.outgoing, server_hostname=hostname)
        self.peer = conn.peer

    async def _flush(self):
        data = self.outgoing.read()
        if data:
            await self.conn.send(data)

    async def _fill(self):
        data = await self.conn.recv()
        if data:
            self.incoming.write(bytes(data))
        else:
            self.incoming.write_eof()

    async def handshake(self):
        while True:
            try:
                self.tls.do_handshake()
                break
            except ssl.SSLWantReadError:
                await self._flush()
                await self._fill()
        await self._flush()

    async def recv(self, limit=0):
        while True:
            try:
                return self.tls.read(limit or _READ)
            except ssl.SSLWantReadError:
                await self._flush()  # a key update or session ticket may want an answer first
                await self._fill()
            except ssl.SSLZeroReturnError:
                return b""  # the peer's close_notify

    async def send(self, data):
        self.tls.write(bytes(data))  # a memory BIO takes it all: it waits in outgoing, sent just below
        await self._flush()

    def shutdown_write(self):
        return False  # a half-close under TLS would need close_notify: the relay's own links never ask for it

    def local(self):
        return self.conn.local()

    def is_open(self):
        return self.conn.is_open()

    def hang_up(self):
        self.conn.hang_up()

    def close(self):
        self.conn.close()

    def abort(self):
        self.conn.abort()


async def tls_client(conn, ctx, hostname):
    """TLS over conn, the handshake done (the certificate checked as ctx says) -> a Conn; raises OSError."""
    t = TLSConn(conn, ctx, hostname)
    await t.handshake()
    return t
