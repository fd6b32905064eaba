"""CPython backend: raw non-blocking sockets driven by the asyncio loop.

No streams, transports or protocol objects: an idle tunnel costs its two
sockets and the two waiting tasks, nothing else. Reads return fresh bytes
(CPython allocates cheaply), so no buffer is shared between tasks.
"""

import _socket  # socket.socket's C base: a fast path connection needs none of the Python wrapper's extras
import asyncio
import errno
import hashlib
import operator
import os
import select
import socket
import sys
import time

CancelledError = asyncio.CancelledError
TimeoutError = asyncio.TimeoutError
Event = asyncio.Event
HAS_UDP = True
HAS_SYSTEM_RESOLVER = True

_bufsize = 65536
_reads = 0
_YIELD_EVERY = 15  # a mask: one loop turn per 16 reads
_ACCEPT_BATCH = 64  # accepts per wake-up: churn pays one loop turn per batch, not per connection


def now_ms():
    return int(time.monotonic() * 1000)


def sleep_ms(ms):
    return asyncio.sleep(ms / 1000)


def run(coro, fast=False):
    """Run until done; SIGTERM and SIGINT cancel the main task so its finally blocks run.
    fast: use uvloop when it is installed (it makes connection churn cheaper)."""

    async def main():
        import signal

        loop = asyncio.get_running_loop()
        task = asyncio.current_task()
        for sig in (signal.SIGTERM, signal.SIGINT):
            try:
                loop.add_signal_handler(sig, task.cancel)
            except (NotImplementedError, RuntimeError):
                pass
        try:
            await coro
        except asyncio.CancelledError:
            pass

    factory = None
    if fast:
        try:
            import uvloop

            factory = uvloop.new_event_loop
        except ImportError:
            pass
    if factory is None:
        asyncio.run(main())
    elif hasattr(asyncio, "Runner"):
        with asyncio.Runner(loop_factory=factory) as runner:
            runner.run(main())
    else:  # Python 3.10
        import uvloop

        uvloop.install()
        asyncio.run(main())


def on_hangup(cb):
    """Call cb() from the loop on SIGHUP (systemctl reload); False where the runtime has no signals."""
    import signal

    try:
        asyncio.get_running_loop().add_signal_handler(signal.SIGHUP, cb)
        return True
    except (NotImplementedError, RuntimeError, AttributeError):
        return False


def loop_name():
    """Which event loop runs us: 'uvloop' or 'asyncio'."""
    return "uvloop" if "uvloop" in type(asyncio.get_running_loop()).__module__ else "asyncio"


def create_task(coro):
    return asyncio.get_running_loop().create_task(coro)


if hasattr(asyncio, "timeout"):  # 3.11+: a timer on this task, no extra task per call as wait_for makes

    async def wait_for_ms(aw, ms):
        async with asyncio.timeout(ms / 1000):
            return await aw

else:

    async def wait_for_ms(aw, ms):
        return await asyncio.wait_for(aw, ms / 1000)


def set_buffer_size(n):
    global _bufsize
    _bufsize = n


def raise_fd_limit():
    """Two descriptors per tunnel: lift the soft limit to the hard one."""
    try:
        import resource

        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if hard == resource.RLIM_INFINITY:
            hard = 1 << 20
        if soft < hard:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    except (ImportError, ValueError, OSError):
        pass


def sha256_hex(data):
    return hashlib.sha256(data).hexdigest()


def read_file(path):
    with open(path, "rb") as f:
        return f.read()


def write_file(path, data):
    """Write data to path whole: mode 0600 (state is nobody else's business), on the disk before it returns
    (a rename after it then never exposes an empty file after a power cut)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        os.fchmod(fd, 0o600)  # O_CREAT's mode applies only to a new file
        f.write(data)
        f.flush()
        os.fsync(fd)


def stderr_write(text):
    sys.stderr.write(text)
    sys.stderr.flush()


def _family(ip):
    return socket.AF_INET if len(ip) == 4 else socket.AF_INET6


def _nodelay(sock):
    try:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    except OSError:
        pass


# Accepted TCP sockets inherit TCP_NODELAY from the listener on Linux (the child is a clone of it).
_NODELAY_INHERITED = sys.platform.startswith("linux")

_LINGER_RESET = (1).to_bytes(4, sys.byteorder) + bytes(4)  # struct linger {l_onoff = 1, l_linger = 0}
_SOL_IP = 0
_SOL_IPV6 = 41
_SO_ORIGINAL_DST = 80  # linux/netfilter_ipv4.h; IP6T_SO_ORIGINAL_DST in linux/netfilter_ipv6/ip6_tables.h is 80 too
HAS_ORIGINAL_DST = sys.platform.startswith("linux")


def parse_sockaddr(raw):
    """sockaddr_in (16 bytes) or sockaddr_in6 (28) as the kernel writes it -> (ip bytes, port)."""
    family = int.from_bytes(raw[0:2], sys.byteorder)  # sa_family is in host order
    port = int.from_bytes(raw[2:4], "big")
    if family == socket.AF_INET and len(raw) >= 8:
        return bytes(raw[4:8]), port
    if family == socket.AF_INET6 and len(raw) >= 24:
        return bytes(raw[8:24]), port  # after sin6_flowinfo
    raise ValueError("not a sockaddr_in or sockaddr_in6: family %d, %d bytes" % (family, len(raw)))


class Conn:
    __slots__ = ("sock", "peer", "loop")

    def __init__(self, sock, peer, loop):
        self.sock = sock
        self.peer = peer
        self.loop = loop

    async def recv(self, limit=0):
        global _reads
        _reads += 1
        if not _reads & _YIELD_EVERY:
            # sock_recv and sock_sendall return without giving the loop a turn while data is waiting, so
            # busy tunnels on this (portable) path would hold off timers and signals for seconds: a stop
            # took 4-35 s and the persist timer slipped. Every few reads, across all connections, yield.
            await asyncio.sleep(0)
        return await self.loop.sock_recv(self.sock, limit or _bufsize)

    # The callback surface (fast path only): watch() calls cb(None) from the loop while bytes or EOF wait.
    def watch(self, cb):
        _epoll.poller(self.loop).want_read(self.sock.fileno(), cb, None)

    def unwatch(self):
        """Stop watching; the connection stays open for whoever reads it next (a task)."""
        if self.sock.fileno() >= 0:
            _epoll.poller(self.loop).release(self.sock.fileno())

    def recv_now(self, limit):
        """Bytes that are here (b"" at EOF), or None when nothing is; OSError on a broken connection."""
        try:
            return self.sock.recv(limit)
        except (BlockingIOError, InterruptedError):
            return None

    def send_now(self, data):
        """Send without waiting: True when all of data went (a fresh socket always takes a handshake reply)."""
        try:
            return self.sock.send(data) == len(data)
        except (BlockingIOError, InterruptedError):
            return False

    async def send(self, data):
        await self.loop.sock_sendall(self.sock, data)

    def shutdown_write(self):
        try:
            self.sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass
        return True

    def local(self):
        try:
            name = self.sock.getsockname()
            return socket.inet_pton(self.sock.family, name[0]), name[1]
        except OSError:
            return None

    def original_dst(self):
        """(ip, port) this connection was addressed to before an nftables/iptables redirect, or None.

        Linux netfilter keeps it: SO_ORIGINAL_DST (80) at SOL_IP gives a sockaddr_in,
        IP6T_SO_ORIGINAL_DST (also 80) at SOL_IPV6 a sockaddr_in6; ports in network order.
        """
        try:
            if self.sock.family == socket.AF_INET6:
                raw = self.sock.getsockopt(_SOL_IPV6, _SO_ORIGINAL_DST, 28)
                return parse_sockaddr(raw)
            raw = self.sock.getsockopt(_SOL_IP, _SO_ORIGINAL_DST, 16)
            return parse_sockaddr(raw)
        except (OSError, ValueError):
            return None  # not redirected (ENOENT: no conntrack entry), or not Linux

    def is_open(self):
        return self.sock.fileno() >= 0

    def hang_up(self):
        """End the connection under whoever reads or writes it: each sees the close at once (the path
        finder ends tunnels on a dead path this way); the owner still closes it as usual."""
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def close(self):
        if _epoll is not None and self.sock.fileno() >= 0:
            _epoll.forget(self.loop, self.sock.fileno())  # closing unregisters it from the fast path's set
        self.sock.close()

    def abort(self):
        """Close with a reset (RST), as a peer that reset: SO_LINGER with a zero timeout."""
        try:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_RESET)
        except OSError:
            pass
        self.close()


_accept_pauses = 0


def accept_pauses():
    """How often a listener paused because the system was out of descriptors or memory."""
    return _accept_pauses


class Listener:
    def __init__(self, sock, on_conn, loop):
        self.sock = sock
        self.on_conn = on_conn
        self.loop = loop
        self.port = sock.getsockname()[1]
        self.family = int(sock.family)
        loop.add_reader(sock.fileno(), self._ready)

    def _ready(self):
        global _accept_pauses
        family = self.family
        for _ in range(_ACCEPT_BATCH):
            try:
                fd, addr = self.sock._accept()
                s = _socket.socket(family, socket.SOCK_STREAM, 0, fd)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as e:
                if e.errno in (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM):
                    # Out of descriptors: stop accepting for a moment instead of spinning.
                    _accept_pauses += 1
                    self.loop.remove_reader(self.sock.fileno())
                    self.loop.call_later(0.1, self._resume)
                return
            s.setblocking(False)
            if not _NODELAY_INHERITED:
                _nodelay(s)
            ip = socket.inet_pton(family, addr[0].split("%")[0])
            self.on_conn(Conn(s, (ip, addr[1]), self.loop))

    def _resume(self):
        if self.sock.fileno() >= 0:
            self.loop.add_reader(self.sock.fileno(), self._ready)

    def close(self):
        if self.sock.fileno() >= 0:
            self.loop.remove_reader(self.sock.fileno())
            self.sock.close()


async def listen_tcp(host, port, backlog, on_conn):
    loop = asyncio.get_running_loop()
    infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    family, _, _, _, addr = infos[0]
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        _nodelay(sock)  # Linux copies it to every accepted connection: one syscall less per connection
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        sock.bind(addr)
        sock.listen(backlog)
        sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    return Listener(sock, on_conn, loop)


async def connect_tcp(ip, port):
    loop = asyncio.get_running_loop()
    family = _family(ip)
    # the C socket, not socket.socket's wrapper: 40 bytes less per open tunnel, as accepted sockets have
    sock = _socket.socket(family, socket.SOCK_STREAM | socket.SOCK_NONBLOCK, 0)
    _nodelay(sock)
    try:
        await loop.sock_connect(sock, (socket.inet_ntop(family, ip), port))
    except BaseException:
        sock.close()
        raise
    return Conn(sock, (ip, port), loop)


class _Connecting:
    """A TCP connect in flight, finished by a loop callback instead of a task: done(conn, None)
    or done(None, OSError), once, unless cancel() comes first."""

    __slots__ = ("poller", "sock", "ip", "port", "done")

    def __init__(self, poller, sock, ip, port, done):
        self.poller = poller
        self.sock = sock
        self.ip = ip
        self.port = port
        self.done = done
        poller.want_write(sock.fileno(), self._writable, None)

    def _writable(self, _):
        sock = self.sock
        done, self.done = self.done, None
        fd = sock.fileno()
        err = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if err:
            self.poller.drop(fd)
            sock.close()
            done(None, OSError(err, os.strerror(err)))
            return
        # The write interest goes with the next sync: the fast pump starts reading this socket in
        # done(), and one epoll_ctl then changes the registration from "connected?" to "readable?".
        self.poller.stop_write(fd, False)
        done(Conn(sock, (self.ip, self.port), self.poller.loop), None)
        if sock.fileno() >= 0:
            self.poller.sync(fd)

    def cancel(self):
        if self.done is not None:
            self.done = None
            self.poller.drop(self.sock.fileno())
            self.sock.close()


def _connect_start(ip, port, done, beside=None):
    """Begin a TCP connect to ip:port -> a handle with cancel(); done(conn, error) follows from the loop.
    beside: a Conn of the same loop (finding the running loop costs a getpid() syscall).
    Raises OSError when the connect fails at once (no route, out of descriptors)."""
    family = _family(ip)
    sock = _socket.socket(family, socket.SOCK_STREAM | socket.SOCK_NONBLOCK, 0)
    _nodelay(sock)
    err = sock.connect_ex((socket.inet_ntop(family, ip), port))
    if err and err != errno.EINPROGRESS:
        sock.close()
        raise OSError(err, os.strerror(err))
    loop = beside.loop if beside is not None else asyncio.get_running_loop()
    return _Connecting(_epoll.poller(loop), sock, ip, port, done)


def udp_open(ip, port_hint):
    family = _family(ip)
    sock = socket.socket(family, socket.SOCK_DGRAM)
    try:
        sock.setblocking(False)
        sock.bind((socket.inet_ntop(family, ip), 0))
    except OSError:
        sock.close()
        raise
    return sock, sock.getsockname()[1]


def udp_bind(ip, port):
    """A UDP socket bound to exactly ip:port (a listener, e.g. DNS)."""
    family = _family(ip)
    sock = socket.socket(family, socket.SOCK_DGRAM)
    try:
        sock.setblocking(False)
        sock.bind((socket.inet_ntop(family, ip), port))
    except OSError:
        sock.close()
        raise
    return sock


_udp_max = 65507  # the largest UDP payload over IPv4


def set_udp_max(n):
    """Datagrams up to n bytes are received whole; a bigger one comes back n + 1 long (cut: the caller
    drops it). -> the limit in force."""
    global _udp_max
    _udp_max = n
    return n


async def udp_recv(sock):
    loop = asyncio.get_running_loop()
    while True:
        try:
            data, addr = sock.recvfrom(_udp_max + 1)
            return data, socket.inet_pton(sock.family, addr[0].split("%")[0]), addr[1]
        except (BlockingIOError, InterruptedError):
            pass
        fut = loop.create_future()
        fd = sock.fileno()
        loop.add_reader(fd, fut.set_result, None)
        try:
            await fut
        finally:
            loop.remove_reader(fd)


def udp_send(sock, data, ip, port):
    """-> True when the datagram left. A full send queue, an unroutable or wrong-family address, port 0
    or an oversize datagram drop it (False), as the network would: one bad datagram ends nothing."""
    try:
        sock.sendto(data, (socket.inet_ntop(_family(ip), ip), port))
        return True
    except (OSError, ValueError, OverflowError):
        return False


def udp_close(sock):
    sock.close()


async def system_resolve(name):
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(name, None, type=socket.SOCK_STREAM)
    except socket.gaierror:
        return []
    out = []
    for family, _, _, _, addr in infos:
        ip = socket.inet_pton(family, addr[0].split("%")[0])
        if ip not in out:
            out.append(ip)
    return out




class _Netlink:
    __slots__ = ("sock", "loop")

    def __init__(self, sock, loop):
        self.sock = sock
        self.loop = loop

    def send(self, data):
        self.sock.send(data)

    async def recv(self):
        return await self.loop.sock_recv(self.sock, 65536)  # one datagram of a listing or a change

    def close(self):
        self.sock.close()


def netlink_route(groups):
    """A NETLINK_ROUTE socket joined to groups (Linux), or None."""
    family = getattr(socket, "AF_NETLINK", None)
    if family is None:
        return None
    try:
        sock = socket.socket(family, socket.SOCK_RAW, 0)  # 0: NETLINK_ROUTE
    except OSError:
        return None
    try:
        sock.bind((0, groups))
        sock.setblocking(False)
    except OSError:
        sock.close()
        return None
    return _Netlink(sock, asyncio.get_running_loop())


_CONNECT_ERRORS = {
    errno.ECONNREFUSED: "refused",
    errno.ENETUNREACH: "net-unreachable",
    errno.EHOSTUNREACH: "host-unreachable",
    errno.EHOSTDOWN: "host-unreachable",
    errno.ETIMEDOUT: "timeout",
}


def connect_error(e):
    """The refusal reason for an OSError from connect_tcp."""
    return _CONNECT_ERRORS.get(e.errno, "failed")


def ms_since(t):
    return now_ms() - t


ms_diff = operator.sub  # a - b for two now_ms() readings (no wrap here); C's, so the sweeper's 50,000 calls a second are cheap


def stdout_write(text):
    sys.stdout.write(text)
    sys.stdout.flush()  # a supervisor reads the ready line through a pipe


def heap_size():
    return None  # no single heap: CPython's memory is the operating system's


def heap_used():
    return None  # CPython's allocator has no single heap figure; see rss_kib


def rss_kib():
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


# -- crypto and clock (MTProto proxy) ---------------------------------------

_CLOCK_SANE = 1704067200  # 2024-01-01: a wall clock before this was never set
_ctr_parts = None
_native_ctr = None
AES_CTR_KIND = None  # "native" (runtime/_mtpump.c) or "cryptography", once asked (aes_ctr_kind)


def _ctr_engine():
    """Pick the AES-CTR engine once: the native pump when it was built (`make setup`; see
    runtime/_mtpump.c: no context per cipher, and the fast pump's MTProto chunks in one call) and
    RELAY_NATIVE is not "off"; else `cryptography`'s, with _CTR's parking. Loaded on first use: a relay
    without MTProto loads neither."""
    global _native_ctr, AES_CTR_KIND
    if os.environ.get("RELAY_NATIVE", "").lower() not in ("off", "0", "no"):
        try:
            from relay.runtime import _mtpump

            _native_ctr = _mtpump.CTR
            AES_CTR_KIND = "native"
            return
        except ImportError:
            pass  # not built here (no compiler, or a board without one): the Python path below
    _cryptography_parts()
    AES_CTR_KIND = "cryptography"


def _cryptography_parts():
    global _ctr_parts
    if _ctr_parts is None:
        from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

        _ctr_parts = (Cipher, algorithms.AES, modes.CTR)
    return _ctr_parts


def aes_ctr_kind():
    if AES_CTR_KIND is None:
        _ctr_engine()
    return AES_CTR_KIND


def aes_ctr(key, iv):
    """AES-256-CTR keystream: .update(data) -> bytes, .update_into(data, buf) -> n (buf: len(data) + 15
    bytes or more), the counter running on across calls."""
    if AES_CTR_KIND is None:
        _ctr_engine()
    if _native_ctr is not None:
        return _native_ctr(bytes(key), bytes(iv))
    return _CTR(key, iv)


_MASK128 = (1 << 128) - 1
_PARK_S = 1.0  # a cipher unused for this long gives its OpenSSL context back
_hot = []  # the ciphers that hold a context now
_park_loop = [None]  # the loop a park run is scheduled on


class _CTR:
    """AES-256-CTR that holds an OpenSSL context only while it is in use (the Python path's cipher: where
    runtime/_mtpump.c is built, its CTR holds none at all).

    An MTProto tunnel has four ciphers, and an OpenSSL context costs about 1 KiB: 10,000
    phones keep ~55,000 tunnels open, nearly all of them idle between messages, and their
    contexts alone would be 220 MiB. Idle, a cipher keeps its key and its position in the
    stream (~150 bytes); used again, it makes a context positioned there (~4 us, against
    ~0.4 us to encrypt a 1 KiB message). A loop timer parks the contexts nobody used in the
    last _PARK_S, so a bulk transfer keeps its context and a chat's is made per message.
    """

    __slots__ = ("kiv", "pos", "ctx", "used")

    def __init__(self, key, iv):
        self.kiv = bytes(key) + bytes(iv)  # one object, not three: four ciphers per tunnel
        self.pos = 0  # bytes of keystream used so far
        self.ctx = None
        self.used = False

    def _open(self):
        cipher, aes, ctr = _ctr_parts or _cryptography_parts()
        n = self.pos
        kiv = self.kiv
        block = (int.from_bytes(kiv[32:], "big") + (n >> 4)) & _MASK128
        ctx = cipher(aes(kiv[:32]), ctr(block.to_bytes(16, "big"))).encryptor()
        if n & 15:
            ctx.update(bytes(n & 15))  # into the middle of a block
        self.ctx = ctx
        _hot.append(self)
        loop = _park_loop[0]
        if loop is None or loop.is_closed():  # else a park run is due on it (asking for the running loop costs a getpid)
            _schedule_park()
        return ctx

    def update(self, data):
        ctx = self.ctx
        if ctx is None:
            ctx = self._open()
        self.used = True
        self.pos += len(data)
        return ctx.update(data)

    def update_into(self, data, buf):
        ctx = self.ctx
        if ctx is None:
            ctx = self._open()
        self.used = True
        self.pos += len(data)
        return ctx.update_into(data, buf)


def _schedule_park():
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        return  # no loop (a test feeding mtproto.py): contexts stay, nothing parks them
    if _park_loop[0] is not loop:  # none scheduled, or on a loop that is gone
        _park_loop[0] = loop
        loop.call_later(_PARK_S, _park)


def _park():
    """Drop the contexts of ciphers not used since the last run; come back while any remain."""
    _park_loop[0] = None
    keep = []
    for c in _hot:
        if c.used:
            c.used = False
            keep.append(c)
        else:
            c.ctx = None
    _hot[:] = keep
    if keep:
        _schedule_park()


def random_bytes(n):
    import os

    return os.urandom(n)


def wall_time():
    """Seconds since 1970, or None while the clock is plainly unset."""
    t = int(time.time())
    return t if t >= _CLOCK_SANE else None


def _start_fast_pump(client, upstream, tap, session, limit, on_done, up=None, down=None, half_close=True):
    """Relay a tunnel on loop callbacks with no task behind it; returns the pump (.cancel() stops it),
    or None when a side is not a plain socket. on_done(pump, clean) is called once at the end.
    up, down: bytes -> bytes applied on the way (a cipher), or None; half_close False: either side's EOF ends
    the tunnel (protocols without half-close, MTProto)."""
    if type(client) is not Conn or type(upstream) is not Conn:
        return None
    return _fastpump.start(client, upstream, tap, session, _bufsize, True, limit, on_done, (up, down), half_close)


# The fast path (callback handshakes, the callback pump) runs on its own epoll set: Linux only.
# Elsewhere (a developer's Mac) the portable task path serves everything.
if hasattr(select, "epoll"):
    from relay.runtime import epoll as _epoll, fastpump as _fastpump

    connect_start = _connect_start
    start_fast_pump = _start_fast_pump
    settle = _fastpump.settle  # the native dispatch's bytes (runtime/_mtpump.c's Table)
else:
    _epoll = None
    connect_start = start_fast_pump = None

    def settle():
        pass

pipe = None  # CPython's portable path is the task pumps' recv/send loop (core/tunnel.py); its fast path the fast pump


async def tls_client(conn, ctx, hostname):
    """TLS as a client over a connection of this runtime (or an upstream's): see runtime/tlsconn.py."""
    from relay.runtime.tlsconn import tls_client as over_bio  # ssl loads only for a relay that asks for TLS

    return await over_bio(conn, ctx, hostname)
