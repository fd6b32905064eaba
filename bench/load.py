"""The load: servers behind the proxy and the client that drives tunnels through it.

Everything binds and connects to 127.0.0.1 only. The method is the one of the
reviewers' yardstick (proxybench), so the figures agree with it:

servers (a child process, `load.py serve`, so its CPU is apart from the client's)
    down    reads an 8-byte length L, sends L bytes with sendfile(2) from a memfd
    up      reads an 8-byte length L, discards L bytes with recv(MSG_TRUNC), answers the count
    echo    echoes everything (asyncio protocol)
    echoclose  echoes 1 KiB, then closes first (TIME_WAIT lands on the server's port,
            not on the ephemeral ports the proxy connects from)
    stream  reads an 8-byte rate R (bytes/s), then sends until the peer closes (or the
            cap): as fast as it can when R is 0, else paced at R

scenarios (each bounded by a wall-clock cap and every operation by a timeout)
    bulk    one tunnel downloads N MiB, then one tunnel uploads N MiB; the client uses
            blocking sockets in a thread with recv(MSG_TRUNC) / sendfile(2), so it costs
            almost nothing. Figure: proxy CPU s per GiB, each direction.
    churn   C workers: connect, handshake, CONNECT echoclose, 1 KiB echo, wait for the
            server's close to come through, close. Figure: proxy CPU s per 10k connections.
    idle    N tunnels to echo, each checked with a 16-byte echo, held, closed. Figures:
            VmRSS growth of the proxy tree per tunnel; with a status port, the
            device heap (GET /api/status?gc=1 "heap_used") growth per tunnel.
    fanin   N tunnels opened, then each writes M MiB to echo at once while reading it
            back. Figures: per-tunnel throughput (2*M / time to last byte) min/max and
            min/median, proxy CPU s per GiB (both directions counted).
    shaped  (issue 7) 9 interactive clients, each from its own source address
            127.0.0.3..11 (the relay tells clients apart by address), do round trips
            of a small message to echo, one at a time every --shaped-interval s;
            first alone ("idle"), then while a bulk client from 127.0.0.2 downloads
            from stream ("busy"), --shaped-s seconds each. Figures: round-trip
            p50/p99 in each phase and busy p99 / idle p99; each client's share of
            the bytes in the busy phase; proxy CPU in the busy phase; with a status
            port, the device heap in use before, with the tunnels open, and loaded.
"""

import asyncio
import json
import os
import select
import signal
import socket
import statistics
import struct
import subprocess
import sys
import threading
import time

try:
    import uvloop
except ImportError:
    uvloop = None

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import procstat  # noqa: E402

MiB = 1 << 20
GiB = 1 << 30
MSG_TRUNC = getattr(socket, "MSG_TRUNC", 0x20)
LOWAT = 128 * 1024  # bulk receivers wake once this much is queued: fewer syscalls in the client
SERVERS_LIFETIME = 3600  # the servers child exits by itself after this, whatever happens
PAYLOAD_SIZE = 8 * MiB  # memfd cycled by the senders


def new_loop():
    return uvloop.new_event_loop() if uvloop is not None else asyncio.new_event_loop()


def memfd_payload():
    fd = os.memfd_create("relay-bench")
    block = os.urandom(MiB)
    for _ in range(PAYLOAD_SIZE // MiB):
        os.write(fd, block)
    return fd


def recv_exact(s, n):
    buf = b""
    while len(buf) < n:
        d = s.recv(n - len(buf))
        if not d:
            raise ConnectionError("eof after %d of %d bytes" % (len(buf), n))
        buf += d
    return buf


def send_file(s, memfd, n, deadline):
    """Send n bytes (the memfd cycled) on s; returns how many went out before the deadline."""
    s.setblocking(False)
    p = select.poll()
    p.register(s.fileno(), select.POLLOUT)
    sent = off = 0
    while sent < n:
        try:
            k = os.sendfile(s.fileno(), memfd, off, min(PAYLOAD_SIZE - off, n - sent))
        except BlockingIOError:
            if time.monotonic() > deadline:
                break
            p.poll(500)
            continue
        except OSError:
            break
        if k == 0:
            break
        sent += k
        off = (off + k) % PAYLOAD_SIZE
    return sent


def send_paced(s, memfd, rate, deadline):
    """Send at rate bytes/s (bursts of at most 0.1 s) until the peer closes or the deadline."""
    t0 = time.monotonic()
    sent = 0
    burst = max(16384, rate // 10)
    while time.monotonic() < deadline:
        due = int(rate * (time.monotonic() - t0)) - sent
        if due > burst:  # behind (the peer stalled): do not catch up in one go
            sent += due - burst
            due = burst
        if due < 16384:
            time.sleep((16384 - due) / rate)
            continue
        k = send_file(s, memfd, due, deadline)
        if k < due:
            break
        sent += k
    return sent


def set_lowat(s, n):
    try:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVLOWAT, max(1, n))
        return n
    except OSError:
        return 0


def discard(s, n, deadline, lowat=True):
    """Receive and drop n bytes (the kernel drops them: MSG_TRUNC). Returns the count.
    lowat: wake only for big batches (SO_RCVLOWAT); the MTProto bench turns it off."""
    got = 0
    buf = memoryview(bytearray(4 * MiB))  # only a size for recv_into; MSG_TRUNC never fills it
    lowat = set_lowat(s, min(LOWAT, n)) if lowat else 0
    while got < n:
        if lowat and n - got < lowat:
            lowat = set_lowat(s, n - got)
        try:
            k = s.recv_into(buf, min(len(buf), n - got), MSG_TRUNC)
        except socket.timeout:
            if time.monotonic() > deadline:
                break
            continue
        if k == 0:
            break
        got += k
        if time.monotonic() > deadline:
            break
    return got


def linger_close(s, wait=5.0):
    """Wait (bounded) for the peer's close, then close."""
    try:
        s.settimeout(wait)
        while s.recv(65536):
            pass
    except OSError:
        pass
    s.close()


# ---------------------------------------------------------------- servers child


class Echo(asyncio.Protocol):
    def connection_made(self, tr):
        self.tr = tr

    def data_received(self, data):
        self.tr.write(data)

    def eof_received(self):
        return False

    def pause_writing(self):
        self.tr.pause_reading()

    def resume_writing(self):
        self.tr.resume_reading()


class EchoClose(Echo):
    """Echo 1 KiB, then close first."""

    size = 1024

    def connection_made(self, tr):
        self.tr = tr
        self.got = 0

    def data_received(self, data):
        self.tr.write(data)
        self.got += len(data)
        if self.got >= self.size:
            self.tr.close()


def listener(backlog):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", 0))
    s.listen(backlog)
    return s


def serve_threads(ls, handler):
    """Accept on ls in a thread of its own; each connection gets handler(conn) in a thread."""

    def acceptor():
        while True:
            try:
                c, _ = ls.accept()
            except OSError:
                return
            c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            threading.Thread(target=handler, args=(c,), daemon=True).start()

    threading.Thread(target=acceptor, daemon=True).start()


def serve(cap):
    memfd = memfd_payload()

    def down(c):
        try:
            c.settimeout(30)
            (n,) = struct.unpack("!Q", recv_exact(c, 8))
            send_file(c, memfd, n, time.monotonic() + cap)
            c.setblocking(True)
        except OSError:
            pass
        linger_close(c)

    def up(c):
        got = 0
        try:
            c.settimeout(30)
            (n,) = struct.unpack("!Q", recv_exact(c, 8))
            c.settimeout(5)
            got = discard(c, n, time.monotonic() + cap)
            c.settimeout(10)
            c.sendall(struct.pack("!Q", got))
        except OSError:
            pass
        linger_close(c)

    def stream(c):
        try:
            c.settimeout(30)
            (rate,) = struct.unpack("!Q", recv_exact(c, 8))
            deadline = time.monotonic() + cap
            if rate:
                send_paced(c, memfd, rate, deadline)
            else:
                send_file(c, memfd, 1 << 50, deadline)  # until the peer closes
        except OSError:
            pass
        c.close()

    dls, uls, sls = listener(128), listener(128), listener(128)
    for ls, handler in ((dls, down), (uls, up), (sls, stream)):
        serve_threads(ls, handler)
    loop = new_loop()
    asyncio.set_event_loop(loop)
    els, ecls = listener(4096), listener(4096)
    loop.run_until_complete(loop.create_server(Echo, sock=els, backlog=4096))
    loop.run_until_complete(loop.create_server(EchoClose, sock=ecls, backlog=4096))
    ports = {"pid": os.getpid(), "down": dls.getsockname()[1], "up": uls.getsockname()[1],
             "echo": els.getsockname()[1], "echoclose": ecls.getsockname()[1], "stream": sls.getsockname()[1]}
    print(json.dumps(ports), flush=True)

    def watch_stdin():  # the parent closes our stdin (or dies): stop
        try:
            while sys.stdin.buffer.read(1):
                pass
        except OSError:
            pass
        loop.call_soon_threadsafe(loop.stop)

    threading.Thread(target=watch_stdin, daemon=True).start()
    loop.call_later(SERVERS_LIFETIME, loop.stop)
    loop.add_signal_handler(signal.SIGTERM, loop.stop)
    loop.run_forever()
    os._exit(0)


class Servers:
    """The servers child: started and stopped by the client, by its own pid."""

    def __init__(self, cap):
        cmd = [sys.executable, os.path.abspath(__file__), "serve", str(cap)]
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError("the load servers did not start (see stderr above)")
        self.ports = json.loads(line)
        self.pid = self.ports["pid"]

    def addr(self, name):
        return ("127.0.0.1", self.ports[name])

    def stop(self):
        self.proc.stdin.close()  # the servers leave when their stdin closes
        procstat.stop(self.proc, first_wait=10)


# ---------------------------------------------------------------- client: proxy handshakes


class HandshakeError(Exception):
    pass


class Mismatch(Exception):
    pass


def socks5_connect(host, port):
    return b"\x05\x01\x00\x01" + socket.inet_aton(host) + struct.pack("!H", port)


def http_connect(host, port):
    return b"CONNECT %s:%d HTTP/1.1\r\nHost: %s:%d\r\n\r\n" % (host.encode(), port, host.encode(), port)


def socks5_reply_len(b):
    """Length of the SOCKS5 reply starting b, or None while it cannot be told yet."""
    if len(b) < 5:
        return None
    atyp = b[3]
    if atyp == 1:
        return 10
    if atyp == 4:
        return 22
    if atyp == 3:
        return 7 + b[4]
    raise HandshakeError("socks5 reply with address type %d" % atyp)


def blocking_tunnel(mode, proxy, dst, timeout):
    """A blocking socket connected to dst through the proxy (mode socks5 or http)."""
    s = socket.create_connection(proxy, timeout=timeout)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        if mode == "socks5":
            s.sendall(b"\x05\x01\x00")
            if recv_exact(s, 2) != b"\x05\x00":
                raise HandshakeError("socks5 method refused")
            s.sendall(socks5_connect(*dst))
            r = recv_exact(s, 5)
            if r[1] != 0:
                raise HandshakeError("socks5 rep=%d" % r[1])
            recv_exact(s, socks5_reply_len(r) - 5)
        else:
            s.sendall(http_connect(*dst))
            head = b""
            while not head.endswith(b"\r\n\r\n"):
                d = s.recv(1)  # byte by byte: never read past the head
                if not d or len(head) > 65536:
                    raise HandshakeError("http: no complete response head")
                head += d
            if head.split(b" ", 2)[1][:1] != b"2":
                raise HandshakeError("http status " + repr(head[:40]))
        return s
    except BaseException:
        s.close()
        raise


_RBUF = memoryview(bytearray(256 * 1024))  # every async tunnel reads into this one buffer

HS_METHOD, HS_REPLY, HS_HTTP, READY, DEAD = range(5)


class Tunnel(asyncio.BufferedProtocol):
    """Client end of one tunnel: the proxy handshake, then counts received bytes
    (and keeps them when `capture` is a bytearray)."""

    def __init__(self, loop, mode, dst):
        self.loop, self.mode, self.dst = loop, mode, dst
        self.ready = loop.create_future()
        self.eof = loop.create_future()
        self.closed = loop.create_future()
        self.hs = bytearray()
        self.rx = 0
        self.expect = 0
        self.waiter = None
        self.capture = None
        self.t_done = None
        self.tr = None
        self.state = DEAD

    def connection_made(self, tr):
        self.tr = tr
        if self.mode == "socks5":
            self.state = HS_METHOD
            tr.write(b"\x05\x01\x00")
        else:
            self.state = HS_HTTP
            tr.write(http_connect(*self.dst))

    def get_buffer(self, sizehint):
        return _RBUF

    def buffer_updated(self, n):
        if self.state == READY:
            self._data(_RBUF[:n])
            return
        self.hs += _RBUF[:n]
        try:
            self._handshake()
        except HandshakeError as e:
            self._fail(e)

    def eof_received(self):
        self._done(self.eof, time.perf_counter())
        self._fail(ConnectionResetError("eof from the proxy"))
        return False

    def connection_lost(self, exc):
        self._fail(exc or ConnectionResetError("connection lost"))
        self._done(self.eof, time.perf_counter())
        self._done(self.closed, None)

    @staticmethod
    def _done(fut, value):
        if not fut.done():
            fut.set_result(value)

    def _fail(self, exc):
        self.state = DEAD
        for f in (self.ready, self.waiter):
            if f is not None and not f.done():
                f.set_exception(exc)
                f.exception()  # retrieved: whoever stopped waiting counts errors itself
        if self.tr is not None:
            self.tr.close()

    def _handshake(self):
        hs = self.hs
        if self.state == HS_METHOD:
            if len(hs) < 2:
                return
            if hs[0] != 5 or hs[1] != 0:
                raise HandshakeError("socks5 method refused")
            del hs[:2]
            self.state = HS_REPLY
            self.tr.write(socks5_connect(*self.dst))
        if self.state == HS_REPLY:
            if len(hs) >= 2 and hs[1] != 0:
                raise HandshakeError("socks5 rep=%d" % hs[1])
            need = socks5_reply_len(hs)
            if need is None or len(hs) < need:
                return
            rest = bytes(hs[need:])
        else:
            end = hs.find(b"\r\n\r\n")
            if end < 0:
                if len(hs) > 65536:
                    raise HandshakeError("http response head too long")
                return
            if bytes(hs).split(b" ", 2)[1][:1] != b"2":
                raise HandshakeError("http status " + repr(bytes(hs[:40])))
            rest = bytes(hs[end + 4:])
        self.hs = None
        self.state = READY
        self.ready.set_result(True)
        if rest:
            self._data(memoryview(rest))

    def _data(self, mv):
        self.rx += len(mv)
        if self.capture is not None:
            self.capture += mv
        if self.waiter is not None and self.rx >= self.expect and not self.waiter.done():
            self.t_done = time.perf_counter()
            self.waiter.set_result(self.t_done)

    def want(self, n):
        """A future done once n more bytes have arrived."""
        self.expect = self.rx + n
        self.waiter = self.loop.create_future()
        return self.waiter


def err_name(e):
    if isinstance(e, (asyncio.TimeoutError, TimeoutError)):
        return "Timeout"
    if isinstance(e, HandshakeError):
        return "Handshake: " + str(e)[:40]
    if isinstance(e, OSError) and e.errno:
        return "%s[%d]" % (type(e).__name__, e.errno)
    return type(e).__name__


def count(errors, e):
    k = err_name(e) if isinstance(e, BaseException) else e
    errors[k] = errors.get(k, 0) + 1


def per_gib(cpu, nbytes):
    return None if cpu is None or not nbytes else round(cpu / (nbytes / GiB), 3)


def http_get_json(port, path, timeout=5.0):
    """GET http://127.0.0.1:port/path -> parsed JSON body (the relay's status page)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(b"GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n" % path.encode())
        data = b""
        while len(data) < 1 << 20:
            d = s.recv(65536)
            if not d:
                break
            data += d
    head, _, body = data.partition(b"\r\n\r\n")
    if not head.startswith(b"HTTP/1.1 200"):
        raise RuntimeError("status page answered " + repr(head[:40]))
    return json.loads(body)


# ---------------------------------------------------------------- the scenarios


class Load:
    """Drives the scenarios against one proxy. p: the parameters (see run.py);
    opts: the target's options for the load (link_rate, source_rate: see targets.py)."""

    def __init__(self, p, mode, proxy_port, proxy_pid, status_port=None, opts=None):
        self.p = p
        self.opts = opts or {}
        self.mode = mode
        self.proxy = ("127.0.0.1", proxy_port)
        self.pid = proxy_pid
        self.status_port = status_port
        self.payload_1k = os.urandom(1024)
        self.payload_16 = os.urandom(16)

    def meter(self):
        return procstat.Meter(self.pid, self.servers.pid).start()

    async def open_tunnel(self, dst, local=None):
        """local: the client's source address (host, 0); loopback only."""
        loop = asyncio.get_running_loop()
        tr, t = await loop.create_connection(lambda: Tunnel(loop, self.mode, dst), *self.proxy, local_addr=local)
        try:
            await t.ready
        except BaseException:
            tr.close()
            raise
        return tr, t

    # -- bulk
    def _down(self, n, deadline):
        s = blocking_tunnel(self.mode, self.proxy, self.servers.addr("down"), self.p.op_timeout)
        try:
            s.settimeout(2.0)
            s.sendall(struct.pack("!Q", n))
            got = discard(s, n, deadline)
            return got, (None if got == n else "short")
        finally:
            s.close()

    def _up(self, n, deadline):
        s = blocking_tunnel(self.mode, self.proxy, self.servers.addr("up"), self.p.op_timeout)
        try:
            s.sendall(struct.pack("!Q", n))
            sent = send_file(s, self.memfd, n, deadline)
            s.setblocking(True)
            s.settimeout(max(1.0, deadline - time.monotonic() + 5))
            try:
                (acked,) = struct.unpack("!Q", recv_exact(s, 8))
            except OSError:
                return sent, "no ack"
            return acked, (None if acked == n else "short")
        finally:
            s.close()

    async def bulk(self):
        n = int(self.p.bulk_mib * MiB)
        out = {}
        for direction, fn in (("download", self._down), ("upload", self._up)):
            m = self.meter()
            deadline = time.monotonic() + self.p.cap
            try:
                moved, err = await asyncio.to_thread(fn, n, deadline)
            except Exception as e:  # noqa: BLE001 -- a broken proxy is a result, not a crash
                moved, err = 0, err_name(e)
            r = m.stop()
            r.update({"bytes": moved, "MBps": round(moved / r["wall_s"] / 1e6, 1),
                      "proxy_cpu_s_per_GiB": per_gib(r["proxy_cpu_s"], moved), "error": err})
            out[direction] = r
            await asyncio.sleep(0.3)
        return out

    # -- churn
    async def churn(self):
        total = self.p.churn_total
        dst = self.servers.addr("echoclose")
        lat, errors = [], {}
        started = [0]
        deadline = time.monotonic() + self.p.cap

        async def one():
            t0 = time.perf_counter()
            tr = None
            try:
                async with asyncio.timeout(self.p.op_timeout):
                    tr, t = await self.open_tunnel(dst)
                    t.capture = bytearray()
                    w = t.want(1024)
                    tr.write(self.payload_1k)
                    await w
                    t1 = time.perf_counter()
                    if bytes(t.capture[:1024]) != self.payload_1k:
                        raise Mismatch()
                    await t.eof  # the server closes first; the proxy must pass that on
                lat.append(t1 - t0)
            except Exception as e:  # noqa: BLE001
                count(errors, e)
            finally:
                if tr is not None:
                    tr.close()

        async def worker():
            while started[0] < total and time.monotonic() < deadline:
                started[0] += 1
                await one()

        m = self.meter()
        await asyncio.gather(*(worker() for _ in range(self.p.churn_conc)))
        r = m.stop()
        lat.sort()
        ok = len(lat)

        def pct(q):
            return round(lat[min(ok - 1, int(round(q * (ok - 1))))] * 1e3, 3) if ok else None

        r.update({
            "ok": ok, "errors": sum(errors.values()), "errors_by_kind": errors,
            "conn_per_s": round(ok / r["wall_s"], 1), "p50_ms": pct(0.5), "p99_ms": pct(0.99),
            "proxy_cpu_s_per_10k": (None if r["proxy_cpu_s"] is None or not ok
                                    else round(r["proxy_cpu_s"] / ok * 1e4, 3)),
            "timed_out": ok + sum(errors.values()) < total,
        })
        await asyncio.sleep(0.5)
        return r

    # -- idle
    async def open_many(self, n, dst, deadline, probe):
        tunnels, errors = [], {}
        sem = asyncio.Semaphore(self.p.open_conc)

        async def one():
            async with sem:
                if time.monotonic() > deadline:
                    count(errors, "NotStarted(cap)")
                    return
                tr = None
                try:
                    async with asyncio.timeout(min(self.p.op_timeout, max(0.1, deadline - time.monotonic()))):
                        tr, t = await self.open_tunnel(dst)
                        if probe:
                            t.capture = bytearray()
                            w = t.want(len(probe))
                            tr.write(probe)
                            await w
                            if bytes(t.capture) != probe:
                                raise Mismatch()
                            t.capture = None
                    tunnels.append((tr, t))
                except Exception as e:  # noqa: BLE001
                    count(errors, e)
                    if tr is not None:
                        tr.close()

        await asyncio.gather(*(one() for _ in range(n)))
        return tunnels, errors

    async def close_many(self, tunnels, abort=False):
        for tr, _ in tunnels:
            tr.abort() if abort else tr.close()
        if tunnels:
            await asyncio.wait([t.closed for _, t in tunnels], timeout=10)

    async def heap(self, errors):
        """The device heap in use after a collection (the relay's status page), or None."""
        if not self.status_port:
            return None
        try:
            return (await asyncio.to_thread(http_get_json, self.status_port, "/api/status?gc=1")).get("heap_used")
        except (OSError, RuntimeError, ValueError) as e:
            count(errors, "StatusPage:" + err_name(e))
            return None

    async def idle(self):
        n = self.p.idle_n
        deadline = time.monotonic() + self.p.cap
        await asyncio.sleep(0.5)
        rss0 = procstat.rss_kib(self.pid)
        status_errors = {}
        heap0 = await self.heap(status_errors)
        m = self.meter()
        tunnels, errors = await self.open_many(n, self.servers.addr("echo"), deadline, self.payload_16)
        ropen = m.stop()
        opened = len(tunnels)
        await asyncio.sleep(1.0)
        rss1 = procstat.rss_kib(self.pid)
        heap1 = await self.heap(status_errors)
        mh = self.meter()
        await asyncio.sleep(max(0.0, min(self.p.idle_hold, deadline - time.monotonic())))
        rhold = mh.stop()
        still = sum(1 for tr, t in tunnels if not tr.is_closing() and t.state == READY)
        await self.close_many(tunnels)
        await asyncio.sleep(1.0)
        rss2 = procstat.rss_kib(self.pid)
        heap2 = await self.heap(status_errors)
        errors.update(status_errors)
        return {
            "requested": n, "opened": opened, "errors": sum(errors.values()), "errors_by_kind": errors,
            "still_open_after_hold": still, "open_wall_s": ropen["wall_s"],
            "open_proxy_cpu_s": ropen["proxy_cpu_s"], "hold_proxy_cpu_s": rhold["proxy_cpu_s"],
            "rss_kib_before": rss0, "rss_kib_open": rss1, "rss_kib_after_close": rss2,
            "rss_kib_per_tunnel": round((rss1 - rss0) / opened, 2) if opened else None,
            "heap_before": heap0, "heap_open": heap1, "heap_after_close": heap2,
            "heap_bytes_per_tunnel": (round((heap1 - heap0) / opened, 1)
                                      if opened and heap0 is not None and heap1 is not None else None),
            "other_cores": max(ropen["other_cores"], rhold["other_cores"]),
        }

    # -- fanin
    async def fanin(self):
        n, size = self.p.fanin_n, int(self.p.fanin_mib * MiB)
        deadline = time.monotonic() + self.p.cap
        tunnels, errors = await self.open_many(n, self.servers.addr("echo"), deadline, None)
        payload = os.urandom(size)
        m = self.meter()
        t0 = time.perf_counter()
        waits = []
        for tr, t in tunnels:
            w = t.want(size)
            waits.append(w)
            if time.monotonic() > deadline:  # the writes themselves take a while with many tunnels
                w.set_exception(TimeoutError("not started (cap)"))
                w.exception()
                continue
            tr.write(payload)
        t_written = time.perf_counter()  # the writes themselves take a while: the last tunnels start late
        pending = set()
        if waits:
            _, pending = await asyncio.wait(waits, timeout=max(0.1, deadline - time.monotonic()))
        r = m.stop()
        rates, moved, order = [], 0, []
        for i, ((_tr, t), w) in enumerate(zip(tunnels, waits)):
            rx = min(t.rx, size)
            if w.done() and not w.cancelled() and w.exception() is None:
                rates.append(2 * size / max(t.t_done - t0, 1e-9) / 1e6)
                order.append((rates[-1], i))
                moved += 2 * size
            else:
                moved += 2 * rx  # at least what came back went both ways
                if w.done() and not w.cancelled():
                    count(errors, w.exception())
        for w in pending:
            w.cancel()
        if pending:
            errors["Unfinished(cap)"] = len(pending)
        await self.close_many(tunnels, abort=bool(pending))
        rates.sort()
        med = statistics.median(rates) if rates else None
        r.update({
            "tunnels": n, "opened": len(tunnels), "completed": len(rates),
            "errors": sum(errors.values()), "errors_by_kind": errors, "bytes": moved,
            "MBps": round(moved / r["wall_s"] / 1e6, 1),
            "proxy_cpu_s_per_GiB": per_gib(r["proxy_cpu_s"], moved),
            "tunnel_MBps_min": round(rates[0], 3) if rates else None,
            "tunnel_MBps_median": round(med, 3) if rates else None,
            "tunnel_MBps_max": round(rates[-1], 3) if rates else None,
            "fair_min_over_max": round(rates[0] / rates[-1], 3) if rates else None,
            "fair_min_over_median": round(rates[0] / med, 3) if rates else None,
            # diagnostics: how long the client took to issue the writes, and which
            # tunnels (by write order, 0 = first written) were fastest and slowest
            "write_loop_s": round(t_written - t0, 4),
            "fastest": [[i, round(v, 3)] for v, i in sorted(order, reverse=True)[:5]],
            "slowest": [[i, round(v, 3)] for v, i in sorted(order)[:5]],
        })
        return r

    # -- shaped (issue 7)
    async def round_trips(self, i, tr, t, until, rtts, counts, errors):
        """Client i: one message at a time to echo, every shaped_interval s, until `until`."""
        size, interval = self.p.shaped_msg, self.p.shaped_interval
        payload = os.urandom(size)
        due = time.monotonic()
        for _ in range(int((until - due) / interval) + 1):  # bounded by count and by time
            if time.monotonic() >= until:
                break
            try:
                async with asyncio.timeout(self.p.op_timeout):
                    t.capture = bytearray()
                    w = t.want(size)
                    t0 = time.perf_counter()
                    tr.write(payload)
                    await w
                rtts.append(time.perf_counter() - t0)
                if bytes(t.capture[:size]) != payload:
                    raise Mismatch()
                t.capture = None
            except Exception as e:  # noqa: BLE001 -- a dead tunnel ends this client's phase
                count(errors, e)
                return
            counts[i] += 1
            due += interval
            delay = due - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            else:
                due = time.monotonic()  # late: go on at once, but do not catch up in a burst

    async def interactive_phase(self, inter, seconds, errors):
        rtts, counts = [], [0] * len(inter)
        until = time.monotonic() + seconds
        await asyncio.gather(*(self.round_trips(i, tr, t, until, rtts, counts, errors)
                               for i, (tr, t) in enumerate(inter)))
        rtts.sort()
        n = len(rtts)

        def pct(q):
            return round(rtts[min(n - 1, int(round(q * (n - 1))))] * 1e3, 3) if n else None

        return {"round_trips": n, "p50_ms": pct(0.5), "p99_ms": pct(0.99), "max_ms": pct(1.0),
                "per_client": counts}

    async def shaped(self):
        n_int, size = self.p.shaped_clients, self.p.shaped_msg
        seconds = min(self.p.shaped_s, self.p.cap / 3)  # two phases and the rest within the cap
        link = self.opts.get("link_rate") or 0
        source_rate = self.opts.get("source_rate") or 0
        errors = {}
        heap_start = await self.heap(errors)
        inter = []
        bulk = None
        try:
            async with asyncio.timeout(self.p.op_timeout):
                for i in range(n_int):  # interactive clients: 127.0.0.3 .. 127.0.0.(3 + n - 1)
                    inter.append(await self.open_tunnel(self.servers.addr("echo"), ("127.0.0.%d" % (3 + i), 0)))
            m = self.meter()
            idle = await self.interactive_phase(inter, seconds, errors)
            ridle = m.stop()
            heap_open = await self.heap(errors)
            async with asyncio.timeout(self.p.op_timeout):
                bulk = await self.open_tunnel(self.servers.addr("stream"), ("127.0.0.2", 0))
            bulk[0].write(struct.pack("!Q", source_rate))
            await asyncio.sleep(min(1.0, seconds / 4))  # the bulk flow gets going (and fills the queues)
            rx0 = bulk[1].rx
            m = self.meter()
            busy = await self.interactive_phase(inter, seconds, errors)
            rx1 = bulk[1].rx
            rbusy = m.stop()
            bulk_alive = bulk[1].state == READY
            heap_busy = await self.heap(errors)  # the bulk flow still runs
        finally:
            await self.close_many(inter + ([bulk] if bulk else []), abort=True)
        await asyncio.sleep(0.5)
        heap_after = await self.heap(errors)
        wall = rbusy["wall_s"]
        # bytes through the relay in the busy phase, per client: the bulk download, and
        # each interactive message both ways
        moved = [rx1 - rx0] + [2 * size * c for c in busy["per_client"]]
        total = sum(moved) or 1
        down = (rx1 - rx0) + size * sum(busy["per_client"])
        shares = [round(b / total, 4) for b in moved]
        r = {
            "clients": 1 + n_int, "message_bytes": size, "interval_s": self.p.shaped_interval,
            "phase_s": seconds, "link_rate": link, "source_rate": source_rate,
            "errors": sum(errors.values()), "errors_by_kind": errors, "bulk_alive_at_end": bulk_alive,
            "idle": idle | {"proxy_cpu_s": ridle["proxy_cpu_s"], "wall_s": ridle["wall_s"]},
            "busy": busy | {"proxy_cpu_s": rbusy["proxy_cpu_s"], "wall_s": wall},
            "p99_busy_over_idle": (round(busy["p99_ms"] / idle["p99_ms"], 3)
                                   if busy["p99_ms"] and idle["p99_ms"] else None),
            "p50_busy_over_idle": (round(busy["p50_ms"] / idle["p50_ms"], 3)
                                   if busy["p50_ms"] and idle["p50_ms"] else None),
            # each client's share of the bytes in the busy phase: [bulk, interactive 1..n]
            "bytes_busy": moved, "share_busy": shares,
            "bulk_share": shares[0], "interactive_share_min": min(shares[1:]), "interactive_share_max": max(shares[1:]),
            # round trips done with the bulk flow on / alone: 1.0 when it took nothing from them
            "interactive_kept": (round(busy["round_trips"] / idle["round_trips"], 3) if idle["round_trips"] else None),
            "bulk_MBps": round((rx1 - rx0) / wall / 1e6, 3),
            "link_use_down": round(down / wall / link, 3) if link else None,
            "proxy_cpu_s_busy": rbusy["proxy_cpu_s"], "proxy_cores_busy": rbusy["proxy_cores"],
            "proxy_cpu_s_per_GiB_busy": per_gib(rbusy["proxy_cpu_s"], sum(moved)),
            "heap_start": heap_start, "heap_open": heap_open, "heap_busy": heap_busy, "heap_after_close": heap_after,
            "other_cores": max(ridle["other_cores"], rbusy["other_cores"]),
        }
        return r

    async def _run(self, scenarios):
        out = {}
        for name in scenarios:
            t = time.monotonic()
            try:
                r = await getattr(self, name)()
            except Exception as e:  # noqa: BLE001 -- a proxy that breaks a scenario is a result
                r = {"error": err_name(e) + ": " + str(e)[:200]}
            r["scenario_wall_s"] = round(time.monotonic() - t, 2)
            r["proxy_alive_after"] = procstat.alive(self.pid)
            out[name] = r
            if not r["proxy_alive_after"]:
                break
        return out

    def run(self, scenarios):
        """Run the scenarios (names of the methods above) in order; returns name -> result."""
        self.memfd = memfd_payload()
        self.servers = Servers(self.p.cap + 30)
        loop = new_loop()
        try:
            return loop.run_until_complete(self._run(scenarios))
        finally:
            loop.close()
            self.servers.stop()
            os.close(self.memfd)


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "serve":
        serve(float(sys.argv[2]))
    else:
        sys.exit("usage: load.py serve CAP_SECONDS (started by run.py)")
