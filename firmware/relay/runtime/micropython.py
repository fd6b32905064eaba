"""MicroPython backend: raw non-blocking sockets on MicroPython's asyncio I/O queue.

MicroPython's Stream objects hide the readiness wait we need for UDP, for a
connect whose refusal is otherwise seen only at the first read, and for
reading into one shared buffer; so this module waits on the I/O queue itself
(`core._io_queue`, the mechanism Stream.read uses) through plain generators,
which `await` accepts on MicroPython.

Memory: one receive buffer for the whole relay. A read copies nothing; a
write that cannot finish at once copies only its remainder, so the shared
buffer is free again before the task yields.
"""

import asyncio
import errno
import socket
import sys
import time

import hashlib
from asyncio import core
from micropython import const

CancelledError = asyncio.CancelledError
TimeoutError = asyncio.TimeoutError
Event = asyncio.Event
HAS_UDP = True
HAS_SYSTEM_RESOLVER = False
HAS_ORIGINAL_DST = False  # no transparent (zero-tap) listener on MicroPython

_ioq = core._io_queue
_EINPROGRESS = (errno.EINPROGRESS, 119)  # 119: EINPROGRESS on newlib-based ports
_EISCONN = (106, 127)  # Linux/lwIP, newlib: the errno module does not name it
_EAGAIN = (errno.EAGAIN, 11)
_IPPROTO_TCP = getattr(socket, "IPPROTO_TCP", 6)
_TCP_NODELAY = getattr(socket, "TCP_NODELAY", 1)
_SOCKADDR = getattr(socket, "sockaddr", None)  # unix port: decodes raw sockaddr bytes
_SO_LINGER = getattr(socket, "SO_LINGER", 13)
_LINGER_RESET = (1).to_bytes(4, sys.byteorder) + bytes(4)  # struct linger {l_onoff = 1, l_linger = 0}

_buf = bytearray(4096)
_mv = memoryview(_buf)


def _wait_read(s):
    yield _ioq.queue_read(s)


def _wait_write(s):
    yield _ioq.queue_write(s)


def now_ms():
    return time.ticks_ms()


def sleep_ms(ms):
    return asyncio.sleep_ms(ms)


def run(coro, fast=False):
    """Run until done. The unix port has no signal module: SIGINT (Ctrl-C) is the one signal it turns into
    an exception, KeyboardInterrupt, raised wherever the loop is. It cancels the main task, and the loop
    runs on until that task's finally blocks are done: the counters are saved and "relay stopped" printed,
    as CPython does on SIGTERM. A second Ctrl-C during that ends at once."""
    loop = asyncio.get_event_loop()
    main = asyncio.create_task(coro)
    try:
        loop.run_until_complete(main)
    except KeyboardInterrupt:
        main.cancel()
        try:
            loop.run_until_complete(main)
        except CancelledError:
            pass


def create_task(coro):
    return asyncio.create_task(coro)


async def wait_for_ms(aw, ms):
    return await asyncio.wait_for_ms(aw, ms)


def set_buffer_size(n):
    global _buf, _mv
    _buf = bytearray(n)
    _mv = memoryview(_buf)


def raise_fd_limit():
    pass


def sha256_hex(data):
    return "".join("%02x" % b for b in hashlib.sha256(data).digest())


def read_file(path):
    with open(path, "rb") as f:
        return f.read()


def write_file(path, data):
    # No modes or fsync here: a board's filesystem has one user, and littlefs commits on close.
    with open(path, "wb") as f:
        f.write(data)


def stderr_write(text):
    sys.stderr.write(text)


def _ip_text(ip):
    if len(ip) == 4:
        return "%d.%d.%d.%d" % (ip[0], ip[1], ip[2], ip[3])
    return ":".join("%x" % ((ip[i] << 8) | ip[i + 1]) for i in range(0, 16, 2))


def _sockaddr(ip, port):
    # Numeric hosts never reach a resolver, so this does not block.
    return socket.getaddrinfo(_ip_text(ip), port)[0][-1]


def _decode_addr(addr):
    if isinstance(addr, tuple):  # lwIP ports: (text, port)
        from relay.proto.addr import parse_ip

        return parse_ip(addr[0]) or bytes(4), addr[1]
    fam, ip, port = _SOCKADDR(addr)[:3]
    return bytes(ip), port


def _nodelay(s):
    try:
        s.setsockopt(_IPPROTO_TCP, _TCP_NODELAY, 1)
    except (OSError, TypeError):
        pass


class Conn:
    __slots__ = ("s", "peer")

    def __init__(self, s, peer):
        self.s = s
        self.peer = peer

    async def recv(self, limit=0):
        s = self.s
        buf = _mv[:limit] if limit else _buf
        while True:
            await _wait_read(s)
            n = s.readinto(buf)
            if n is not None:
                return _mv[:n]

    async def send(self, data):
        s = self.s
        n = s.write(data) or 0
        end = len(data)
        if n == end:
            return
        if type(data) is memoryview:
            # A view may be of the shared receive buffer, which is reused while we wait: copy what is left
            # (bytes and bytearrays are the caller's, and stay put until this returns).
            data, n, end = bytes(data[n:]), 0, end - n
        while n < end:
            await _wait_write(s)
            n += s.write(data, n, end - n) or 0

    def shutdown_write(self):
        return False  # MicroPython sockets have no shutdown(): no half-close; an end of data ends the tunnel

    def local(self):
        return None  # no getsockname() on MicroPython

    def original_dst(self):
        return None  # no SO_ORIGINAL_DST: MicroPython boards cannot redirect, the portal's links are the way in

    def is_open(self):
        return self.s.fileno() >= 0

    def hang_up(self):
        # No shutdown() on MicroPython, and a socket closed under a waiting poll never wakes its
        # reader: the tunnel ends at the idle timeout instead (the sweeper cancels it).
        pass

    def close(self):
        self.s.close()

    def abort(self):
        """Close with a reset (RST), as a peer that reset: SO_LINGER with a zero timeout where the port has it."""
        try:
            self.s.setsockopt(socket.SOL_SOCKET, _SO_LINGER, _LINGER_RESET)
        except (OSError, TypeError, ValueError):
            pass
        self.s.close()


# Out of descriptors or buffers (Linux, then newlib/lwIP numbering): accept() fails until one frees.
_OUT_OF_DESCRIPTORS = (24, 23, 105, errno.ENOMEM, errno.ENOBUFS)  # EMFILE, ENFILE, ENOBUFS: errno names few
_ACCEPT_PAUSE_MS = const(100)
_accept_pauses = 0


def accept_pauses():
    """How often a listener paused because the system was out of descriptors or memory (accept's, or the
    heap for a new connection's session)."""
    return _accept_pauses


class Listener:
    def __init__(self, s, port, on_conn):
        self.s = s
        self.port = port
        self.on_conn = on_conn
        self.task = asyncio.create_task(self._serve())

    async def _serve(self):
        global _accept_pauses
        s = self.s
        while True:
            await _wait_read(s)
            while True:
                try:
                    c, addr = s.accept()
                except OSError as e:
                    if e.errno in _OUT_OF_DESCRIPTORS:
                        # The listener stays readable while connections wait in its backlog: without
                        # a pause this loop would spin on EMFILE at full CPU until a descriptor frees.
                        _accept_pauses += 1
                        await asyncio.sleep_ms(_ACCEPT_PAUSE_MS)
                    break
                except MemoryError:
                    _accept_pauses += 1
                    await asyncio.sleep_ms(_ACCEPT_PAUSE_MS)
                    break
                try:
                    c.setblocking(False)
                    _nodelay(c)
                    self.on_conn(Conn(c, _decode_addr(addr)))
                except MemoryError:
                    # No heap for this connection's session (hundreds of half-open ones on a small board):
                    # drop this one and go on accepting once some frees, instead of ending the listener.
                    c.close()
                    _accept_pauses += 1
                    await asyncio.sleep_ms(_ACCEPT_PAUSE_MS)
                    break

    def close(self):
        self.task.cancel()
        self.s.close()


async def listen_tcp(host, port, backlog, on_conn):
    ai = socket.getaddrinfo(host, port)[0]
    s = socket.socket(ai[0], socket.SOCK_STREAM)
    try:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(ai[-1])
        s.listen(backlog)
        s.setblocking(False)
    except OSError:
        s.close()
        raise
    return Listener(s, port, on_conn)


async def connect_tcp(ip, port):
    addr = _sockaddr(ip, port)
    s = socket.socket(socket.AF_INET if len(ip) == 4 else socket.AF_INET6, socket.SOCK_STREAM)
    try:
        s.setblocking(False)
        _nodelay(s)
        try:
            s.connect(addr)
        except OSError as e:
            if e.errno not in _EINPROGRESS:
                raise
        await _wait_write(s)
        # Writable means "finished", not "succeeded": a second connect() reports
        # the outcome (EISCONN when connected, the connect error otherwise).
        # Without this a refusal would surface only at the first read or write.
        try:
            s.connect(addr)
        except OSError as e:
            if e.errno not in _EISCONN:
                raise
    except BaseException:
        s.close()
        raise
    return Conn(s, (ip, port))


def udp_open(ip, port_hint):
    # No getsockname() here: bind a port we choose, trying a small range.
    fam = socket.AF_INET if len(ip) == 4 else socket.AF_INET6
    for port in range(port_hint, port_hint + 64):
        s = socket.socket(fam, socket.SOCK_DGRAM)
        try:
            s.bind(_sockaddr(ip, port))
            s.setblocking(False)
            return s, port
        except OSError:
            s.close()
    raise OSError(errno.EADDRINUSE)


def udp_bind(ip, port):
    """A UDP socket bound to exactly ip:port (a listener, e.g. DNS)."""
    s = socket.socket(socket.AF_INET if len(ip) == 4 else socket.AF_INET6, socket.SOCK_DGRAM)
    try:
        s.bind(_sockaddr(ip, port))
        s.setblocking(False)
    except OSError:
        s.close()
        raise
    return s


_udp_max = 2048


def set_udp_max(n):
    """Datagrams up to the limit are received whole; a bigger one comes back limit + 1 long (cut: the
    caller drops it). recvfrom allocates the whole size for every datagram, so the limit is at most
    1/32 of the heap (an ESP32: about 4 KiB, still twice a voice packet). -> the limit in force."""
    global _udp_max
    import gc

    heap = gc.mem_alloc() + gc.mem_free()
    _udp_max = max(1472, min(n, heap // 32))  # 1472: a full Ethernet frame's payload, always
    return _udp_max


async def udp_recv(s):
    while True:
        await _wait_read(s)
        try:
            data, addr = s.recvfrom(_udp_max + 1)
        except OSError as e:
            if e.errno in _EAGAIN:
                continue
            raise
        except MemoryError:
            s.recvfrom(1)  # the heap is short right now: take the datagram off the queue, or it spins
            raise OSError(errno.ENOMEM)
        ip, port = _decode_addr(addr)
        return data, ip, port


def udp_send(s, data, ip, port):
    """-> True when the datagram left; False when it was dropped, as the network would."""
    try:
        s.sendto(data, _sockaddr(ip, port))
        return True
    except (OSError, ValueError, OverflowError, IndexError):
        return False  # IndexError: getaddrinfo found nothing for a wrong-family address


def udp_close(s):
    s.close()


class _Netlink:
    __slots__ = ("s",)

    def __init__(self, s):
        self.s = s

    def send(self, data):
        self.s.send(data)

    async def recv(self):
        s = self.s
        while True:
            await _wait_read(s)
            try:
                return s.recv(65536)  # one datagram, however many addresses a listing holds; rare
            except OSError as e:
                if e.errno not in _EAGAIN:
                    raise

    def close(self):
        self.s.close()


def netlink_route(groups):
    """A NETLINK_ROUTE socket joined to groups (the unix port on Linux), or None (a board)."""
    if sys.platform != "linux":
        return None
    import struct

    try:
        s = socket.socket(16, 3, 0)  # AF_NETLINK, SOCK_RAW, NETLINK_ROUTE: the socket module names none
    except (OSError, ValueError):
        return None
    try:
        s.bind(struct.pack("HHII", 16, 0, 0, groups))  # sockaddr_nl: family, pad, port id (kernel picks), groups
        s.setblocking(False)
    except (OSError, ValueError, TypeError):
        s.close()
        return None
    return _Netlink(s)


async def system_resolve(name):
    return None  # getaddrinfo blocks the whole loop here: the relay resolves over UDP itself


# Linux/lwIP numbering first, newlib (ESP-IDF) second; the errno module names few of them.
_CONNECT_ERRORS = {
    111: "refused",
    101: "net-unreachable",
    113: "host-unreachable",
    110: "timeout",
    114: "net-unreachable",
    118: "host-unreachable",
    116: "timeout",
}


def connect_error(e):
    return _CONNECT_ERRORS.get(e.errno, "failed")


def ms_since(t):
    return time.ticks_diff(time.ticks_ms(), t)


def ms_diff(a, b):
    """a - b for two now_ms() readings (ticks wrap)."""
    return time.ticks_diff(a, b)


def stdout_write(text):
    sys.stdout.write(text)


def heap_size():
    """The whole GC heap, used and free: what every buffer and object must fit in."""
    import gc

    return gc.mem_free() + gc.mem_alloc()


def heap_used():
    import gc

    return gc.mem_alloc()


def rss_kib():
    return None  # the GC heap is preallocated: RSS does not follow it; use heap_used


# -- crypto and clock (MTProto proxy) ---------------------------------------

_CLOCK_SANE = 1704067200  # 2024-01-01 in Unix seconds: a clock before this was never set
_CRYPTOLIB_CTR = const(6)
AES_CTR_KIND = None  # "cryptolib-ctr" or "cryptolib-ecb" once the first cipher is made


class _NativeCtr:
    __slots__ = ("aes",)

    def __init__(self, aes):
        self.aes = aes

    def update(self, data):
        return self.aes.encrypt(data)


def aes_ctr(key, iv):
    """AES-256-CTR keystream: .update(data) -> bytes-like, the counter running on across calls.

    cryptolib's own CTR mode (6) where the port enables it; otherwise CTR
    built on ECB (runtime/mpctr.py), which costs a Python call per 512 bytes.
    """
    global AES_CTR_KIND
    import cryptolib

    try:
        c = _NativeCtr(cryptolib.aes(bytes(key), _CRYPTOLIB_CTR, bytes(iv)))
        AES_CTR_KIND = "cryptolib-ctr"
        return c
    except ValueError:  # "mode": this port was built without MICROPY_PY_CRYPTOLIB_CTR
        from relay.runtime.mpctr import EcbCtr

        AES_CTR_KIND = "cryptolib-ecb"
        return EcbCtr(cryptolib.aes(bytes(key), 1), iv)


def aes_ctr_kind():
    return AES_CTR_KIND


def random_bytes(n):
    import os

    return os.urandom(n)


def wall_time():
    """Seconds since 1970, or None while the clock is plainly unset (a board after boot)."""
    t = int(time.time()) + _EPOCH_SHIFT
    return t if t >= _CLOCK_SANE else None


_EPOCH_SHIFT = 946684800 if time.gmtime(0)[0] == 2000 else 0  # esp32 and rp2 count from 2000


def settle():
    pass  # every byte is counted as it moves (no native dispatch here)


start_fast_pump = None  # the task pumps (core/tunnel.py) and pipe() below are the MicroPython path
connect_start = None  # sessions run as tasks here: the callback handshake is a CPython fast path


def on_hangup(cb):
    return False  # no signals on MicroPython: POST /api/reload on the status listener instead


def loop_name():
    return "asyncio"


async def pipe(src, dst, limit, moved, session, down, ended=None):
    """Copy src to dst until EOF or an error, with no allocation per chunk.

    One generator for the tunnel's life; reads go into the shared buffer with
    readinto(buf, n), writes use write(buf, off, n). Only when dst cannot take
    a chunk at once is its remainder copied, because the shared buffer is
    reused while this direction waits. moved(session, n, down) counts.
    Without ended, EOF returns and an error raises OSError; with it,
    ended(session, clean) is called instead, so a task can run this directly.
    Never runs on CPython (where a yield here makes an async generator).
    """
    r = src.s
    w = dst.s
    buf = _buf
    lim = limit or len(buf)
    clean = False
    turn = 0
    try:
        while True:
            # Read before waiting: a bulk stream usually has data ready, and each trip through
            # the poller costs more than the copy. Every few chunks it yields all the same,
            # so one busy tunnel never starves the others.
            turn += 1
            if turn & 3 == 0:
                yield _ioq.queue_read(r)
            n = r.readinto(buf, lim)
            if n is None:
                yield _ioq.queue_read(r)
                continue
            if not n:
                clean = True
                break
            moved(session, n, down)
            off = w.write(buf, 0, n) or 0
            if off < n:
                # One copy of the remainder (the shared buffer is reused while this direction
                # waits), then written from an offset: slicing it per partial write would copy
                # what is left again each time.
                rest = bytes(_mv[off:n])
                k, m = 0, n - off
                while k < m:
                    yield _ioq.queue_write(w)
                    k += w.write(rest, k, m - k) or 0
    except OSError:
        if ended is None:
            raise
    if ended is not None:
        ended(session, clean)


async def tls_client(conn, ctx, hostname):
    """TLS as a client on conn's own socket (mbedtls has no memory BIO here): the socket a direct dial or an
    upstream's handshake left (nothing read past it: TLS's client speaks first) -> the Conn, now TLS; the
    handshake runs with its first send and recv, and fails there (OSError) on a bad certificate."""
    if type(conn) is not Conn:
        raise OSError("TLS: the connection had bytes before the handshake; this runtime needs its plain socket")
    conn.s = ctx.wrap_socket(conn.s, server_hostname=hostname, do_handshake_on_connect=False)
    return conn
