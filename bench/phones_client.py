"""The load model's phones: `phones_client.py CONFIG_JSON` (children of bench/phones.py, one per few thousand phones).

Each phone sends from its own 127.a.b.c (phones_wire.phone_addr) and keeps 4-7
connections open (Telegram's apps keep up to 8; 5-6 on average), opened in one burst
when the phone starts; the phones start spread over the ramp. It sends a message (P,
100 B-2 KiB, asking for a reply of 100 B-2 KiB) on one of them at random intervals
(exponential, mean `mean` s) and times the reply; it answers the DC's updates (U) with
an acknowledgement (A). `media` download slots each fetch 1-5 MiB at `media_rate` on an
extra connection (the phone's media DC), one after another, from random phones: about
5 % of the phones are downloading at any moment. Through a proxy a connection opens with
the secret's handshake (obfuscated2; `ee`: the fake-TLS ClientHello first, the reply's
HMAC checked); `direct` talks to the DC as an app does without a proxy.

It prints one JSON object when it ends: round trips of the messages sent in the
measuring window (microseconds), counts, and errors by kind:
    connect    the TCP connect failed or timed out
    handshake  no valid fake-TLS reply, or the connection closed before it was ready
    closed     an open connection was closed by the far side before the end
    no reply   a message sent in the window got no reply within `timeout` s
    download   a download ended short, late, or with its trailer garbled
"""

import asyncio
import json
import os
import random
import resource
import socket
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import phones_wire as W  # noqa: E402

_RBUF = bytearray(1 << 18)  # every connection reads into this one buffer (one loop, one read at a time)
_RVIEW = memoryview(_RBUF)


class Run:
    """This process's share of the phones, its clock and its counters."""

    def __init__(self, cfg, loop):
        self.cfg = cfg
        self.loop = loop
        base = loop.time() - time.time()  # time.time() -> loop time
        self.t0 = cfg["t0"] + base
        self.w0 = self.t0 + cfg["ramp"] + cfg["settle"]
        self.w1 = self.w0 + cfg["measure"]
        self.secret = bytes.fromhex(cfg["secret"]) if cfg["mode"] == "proxy" else None
        self.ee = self.secret is not None and cfg["kind"] == "ee"
        self.tag = W.TAG_INTERMEDIATE if cfg["kind"] == "plain" else W.TAG_PADDED
        self.phones = []
        self.pending = {}  # message id -> (perf_counter at send, sent in the window)
        self.next_id = 1
        self.rtt = []
        self.errors = {}
        self.n = dict(phones_up=0, conns_up=0, conns_wanted=0, pings=0, replies=0, pushes=0, downloads=0,
                      download_bytes=0, conns_at_w0=0)
        self.paces = []
        self.ready_s = 0.0
        self.stopping = False
        self.live = 0  # connections open now

    def error(self, kind):
        self.errors[kind] = self.errors.get(kind, 0) + 1

    def in_window(self):
        return self.w0 <= self.loop.time() <= self.w1


class Phone:
    __slots__ = ("k", "addr", "home", "conns", "busy")

    def __init__(self, k):
        self.k = k
        self.addr = W.phone_addr(k)
        self.home = random.choice(W.DC_IDS)
        self.conns = []
        self.busy = False  # downloading


class Conn(asyncio.BufferedProtocol):
    __slots__ = ("run", "ph", "tr", "enc", "dec", "deckey", "unrec", "buf", "hello", "ready", "closing", "dl",
                 "first")

    def __init__(self, run, ph, dl=None):
        self.run = run
        self.ph = ph
        self.tr = None
        self.unrec = None
        self.buf = bytearray()
        self.hello = None
        self.ready = run.loop.create_future()
        self.closing = False
        self.dl = dl  # a download: [size, got, tail, perf_counter at start, done future]

    # -- the handshake -------------------------------------------------------------

    def start(self, dc, first):
        """Send the header (or the ClientHello) and the first packet."""
        r = self.run
        head, enc, dec = W.client_header(r.tag, dc, r.secret)
        self.enc = W.ctr_at(enc[0], enc[1], W.HEADER_LEN)
        self.dec = W.ctr(*dec)
        self.deckey = dec
        self.first = head + self.enc.update(first)
        if r.ee:
            self.hello = W.client_hello(r.secret, r.cfg["domain"])
            self.tr.write(self.hello)
        else:
            self.tr.write(self.first)
            self.first = None
            self.ready.set_result(True)

    def _hello_reply(self, mv):
        self.buf += mv
        try:
            k = W.hello_reply_len(self.buf)
        except ValueError:
            return self._fail("handshake")
        if not k:
            return
        if not W.hello_reply_ok(self.run.secret, self.hello, bytes(self.buf[:k])):
            return self._fail("handshake")
        rest = bytes(self.buf[k:])
        self.buf = bytearray()
        self.hello = None
        self.unrec = W.Unrecord()
        self.tr.write(W.TLS_CCS + W.tls_records(self.first))
        self.first = None
        if not self.ready.done():
            self.ready.set_result(True)
        if rest:
            self._records(memoryview(rest))

    # -- reading -----------------------------------------------------------------

    def connection_made(self, tr):
        self.tr = tr
        self.run.live += 1

    def get_buffer(self, hint):
        return _RBUF

    def buffer_updated(self, n):
        mv = _RVIEW[:n]
        if self.hello is not None:
            return self._hello_reply(mv)
        if self.unrec is not None:
            return self._records(mv)
        self._payload(mv)

    def _records(self, mv):
        try:
            parts = self.unrec.feed(mv)
        except ValueError:
            return self._fail("closed")
        for p in parts:
            self._payload(p)

    def _payload(self, mv):
        if self.dl is not None:
            return self._download(mv)
        b = self.buf
        b += self.dec.update(mv)
        i = 0
        while len(b) - i >= 4:
            n = W.LEN.unpack_from(b, i)[0]
            if len(b) - i - 4 < n:
                break
            kind, ident, arg = W.HEAD.unpack_from(b, i + 4)
            i += 4 + n
            r = self.run
            if kind == W.K_REPLY:
                t = r.pending.pop(ident, None)
                if t is not None:
                    r.n["replies"] += 1
                    if t[1]:
                        r.rtt.append(int((time.perf_counter() - t[0]) * 1e6))
            elif kind == W.K_PUSH:
                if r.in_window():
                    r.n["pushes"] += 1
                self.send(W.K_ACK, ident, 0, arg)
        if i:
            del b[:i]

    def _download(self, mv):
        d = self.dl
        size, got = d[0], d[1]
        n = len(mv)
        if got + n > size:
            d[2] += mv[max(0, size - got):]
        d[1] = got + n
        if len(d[2]) >= len(W.MAGIC) and not d[4].done():
            ok = W.ctr_at(self.deckey[0], self.deckey[1], size).update(bytes(d[2][:len(W.MAGIC)])) == W.MAGIC
            d[4].set_result(ok)

    def send(self, kind, ident, arg, size):
        data = self.enc.update(W.packet(self.run.tag, kind, ident, arg, size))
        self.tr.write(W.tls_records(data) if self.unrec is not None else data)

    # -- ends ----------------------------------------------------------------------

    def _fail(self, kind):
        if not self.closing:
            self.run.error(kind)
        self.close()

    def close(self):
        self.closing = True
        if self.tr is not None:
            self.tr.abort()

    def eof_received(self):
        return False

    def connection_lost(self, exc):
        r = self.run
        r.live -= 1
        if not self.ready.done():
            self.ready.set_result(False)
        if self.dl is not None and not self.dl[4].done():
            self.dl[4].set_result(None)
        elif not self.closing and not r.stopping:
            r.error("closed")
        self.closing = True


async def open_conn(r, ph, dc, first, dl=None):
    """A connection of phone ph to the proxy (or straight to DC dc) that has sent `first`; None on failure."""
    loop = r.loop
    cfg = r.cfg
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setblocking(False)
    try:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.bind((ph.addr, 0))
        dest = tuple(cfg["proxy"]) if cfg["mode"] == "proxy" else (W.DC_ADDRS[abs(dc) - 1], cfg["dc_port"])
        await asyncio.wait_for(loop.sock_connect(sock, dest), cfg["timeout"])
    except (OSError, asyncio.TimeoutError):
        sock.close()
        r.error("connect")
        return None
    c = Conn(r, ph, dl)
    try:
        await loop.create_connection(lambda: c, sock=sock)
    except OSError:
        sock.close()
        r.error("connect")
        return None
    c.start(dc, first)
    try:
        ok = await asyncio.wait_for(asyncio.shield(c.ready), cfg["timeout"])
    except asyncio.TimeoutError:
        ok = False
    if not ok:
        if not c.closing:
            r.error("handshake")
        c.close()
        return None
    return c


async def start_phone(r, ph):
    cfg = r.cfg
    n = random.randint(cfg["conns_min"], cfg["conns_max"])
    r.n["conns_wanted"] += n
    dcs = [ph.home] + [random.choice(W.DC_IDS) * random.choice((1, -1)) for _ in range(n - 1)]
    conns = await asyncio.gather(*(open_conn(r, ph, dc, W.packet(r.tag, W.K_HELLO, 0, int(i == 0), 32))
                                   for i, dc in enumerate(dcs)))
    ph.conns = [c for c in conns if c is not None]
    r.n["conns_up"] += len(ph.conns)
    if len(ph.conns) == n:
        r.n["phones_up"] += 1
    r.ready_s = max(r.ready_s, r.loop.time() - r.t0)
    r.loop.call_later(random.expovariate(1 / cfg["mean"]), ping, r, ph)


def ping(r, ph):
    loop = r.loop
    if loop.time() >= r.w1 or r.stopping:
        return
    live = [c for c in ph.conns if not c.closing]
    if live:
        c = random.choice(live)
        ident = r.next_id
        r.next_id += 1
        w = r.in_window()
        r.pending[ident] = (time.perf_counter(), w)
        if w:
            r.n["pings"] += 1
        lo, hi = r.cfg["msg_min"], r.cfg["msg_max"]
        c.send(W.K_PING, ident, random.randint(lo, hi), random.randint(lo, hi))
    loop.call_later(random.expovariate(1 / r.cfg["mean"]), ping, r, ph)


async def media_slot(r):
    cfg = r.cfg
    loop = r.loop
    # the slots start spread over the settling time (at most 5 s), so downloads do not end in step
    await asyncio.sleep(max(0.0, r.t0 + cfg["ramp"] - loop.time()) + random.uniform(0, min(5.0, cfg["settle"])))
    while loop.time() < r.w1 and not r.stopping:
        idle = [ph for ph in r.phones if ph.conns and not ph.busy]
        if not idle:
            await asyncio.sleep(1)
            continue
        ph = random.choice(idle)
        size = random.randint(cfg["media_min"], cfg["media_max"])
        rate = cfg["media_rate"]
        ph.busy = True
        dl = [size, 0, bytearray(), time.perf_counter(), loop.create_future()]
        c = await open_conn(r, ph, -ph.home, W.packet(r.tag, W.K_DOWNLOAD, rate, size, 32), dl)
        if c is None:
            ph.busy = False
            await asyncio.sleep(1)
            continue
        try:
            ok = await asyncio.wait_for(asyncio.shield(dl[4]), size / rate * 3 + 10)
        except asyncio.TimeoutError:
            ok = False
        if r.stopping:
            c.close()
            return
        took = time.perf_counter() - dl[3]
        c.close()
        ph.busy = False
        if ok:
            if r.in_window():
                r.n["downloads"] += 1
                r.n["download_bytes"] += size
                r.paces.append(size / took / rate)
        else:
            r.error("download")


async def main(cfg):
    loop = asyncio.get_running_loop()
    random.seed(cfg["seed"])
    r = Run(cfg, loop)
    ks = range(cfg["k0"], cfg["k1"])
    r.phones = [Phone(k) for k in ks]
    m = len(r.phones)
    starts = []
    for i, ph in enumerate(r.phones):
        delay = max(0.0, r.t0 + cfg["ramp"] * i / max(1, m) - loop.time())
        starts.append(loop.call_later(delay, lambda ph=ph: loop.create_task(start_phone(r, ph))))
    slots = [loop.create_task(media_slot(r)) for _ in range(cfg["media"])]
    await asyncio.sleep(max(0.0, r.w0 - loop.time()))
    r.n["conns_at_w0"] = r.live
    cpu0 = resource.getrusage(resource.RUSAGE_SELF)
    await asyncio.sleep(max(0.0, r.w1 - loop.time()))
    cpu1 = resource.getrusage(resource.RUSAGE_SELF)
    # wait for the window's last replies (bounded), then count what never came
    end = loop.time() + cfg["timeout"]
    while loop.time() < end and any(w for _, w in r.pending.values()):
        await asyncio.sleep(0.2)
    lost = sum(1 for _, w in r.pending.values() if w)
    if lost:
        r.errors["no reply"] = lost
    r.stopping = True
    for t in starts:
        t.cancel()
    for s in slots:
        s.cancel()
    for ph in r.phones:
        for c in ph.conns:
            c.close()
    await asyncio.sleep(0.2)
    out = dict(r.n)
    out.update(phones=m, rtt_us=r.rtt, errors=r.errors, ready_s=round(r.ready_s, 2),
               download_pace=round(sum(r.paces) / len(r.paces), 3) if r.paces else None,
               cpu_window_s=round(cpu1.ru_utime + cpu1.ru_stime - cpu0.ru_utime - cpu0.ru_stime, 2),
               maxrss_kib=cpu1.ru_maxrss)
    return out


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: phones_client.py CONFIG_JSON (started by bench/phones.py)")
    conf = json.loads(sys.argv[1])
    try:
        import uvloop

        lp = uvloop.new_event_loop()
    except ImportError:
        lp = asyncio.new_event_loop()
    asyncio.set_event_loop(lp)
    result = lp.run_until_complete(asyncio.wait_for(main(conf), conf["ramp"] + conf["settle"] + conf["measure"] + 120))
    print(json.dumps(result), flush=True)
    os._exit(0)
