"""The load model's stand-in Telegram DC: `phones_dc.py PORT_FILE` (a child of bench/phones.py).

Listens on DC_ADDRS (127.0.2.1-5) at one port, speaks the DC side of obfuscated2
(key = header[8:40], iv = header[40:56]; replies keyed from header[8:56] reversed) and
the intermediate transport (phones_wire.py says what the packets mean): answers each
message (P) with a reply (R) of the size it asks, pushes an update (U) on each phone's
main connection at random intervals (exponential, mean MEAN s) and times the phone's
acknowledgement (A), serves media downloads (D) paced at the rate asked.

One process per DC address (forked after binding), so none holds more than a fifth of the
connections: 10,000 phones through a proxy make ~56,000, past the descriptor limit of one.

Commands on stdin, one per line; each answer is one JSON line on stdout (the shards' merged):
    mean S             the mean interval of updates per main connection (seconds)
    report W0 W1       counters since the last report, update round trips whose update
                       left between W0 and W1 (time.time()); the counters then restart
EOF on stdin ends it. Bound: each shard exits by itself after LIFETIME seconds.
"""

import asyncio
import json
import os
import random
import socket
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import phones_wire as W  # noqa: E402

LIFETIME = 3600
TICK = 0.05  # downloads are paced in steps of this many seconds
POOL = os.urandom(1 << 20)  # what downloads send (random: ciphertext looks the same)
MAX_PACKET = 1 << 20


class Stats:
    def __init__(self):
        self.reset()
        self.mean = 20.0

    def reset(self):
        self.accepted = 0
        self.bad_header = 0
        self.bad_packet = 0
        self.messages = 0  # P answered
        self.pushes = 0
        self.acks = 0
        self.push_rtt = []  # (time sent, microseconds)
        self.downloads = 0
        self.download_bytes = 0
        self.stalls = 0  # download ticks skipped: the proxy (or the phone) did not take the last ones yet


st = Stats()
downloads = set()


class DCConn(asyncio.Protocol):
    __slots__ = ("tr", "buf", "dec", "enc", "ekey", "tag", "out", "sent", "timer", "dl")

    def connection_made(self, tr):
        self.tr = tr
        self.buf = bytearray()
        self.dec = None
        self.sent = {}  # update id -> (time.time(), perf_counter) it left
        self.timer = None
        self.dl = None
        st.accepted += 1

    def data_received(self, data):
        if self.dec is None:
            self.buf += data
            if len(self.buf) < W.HEADER_LEN:
                return
            h = bytes(self.buf[:W.HEADER_LEN])
            (dk, div), self.ekey = W.dc_keys(h)
            self.dec = W.ctr(dk, div)
            tag = self.dec.update(h)[56:60]
            if tag not in (W.TAG_INTERMEDIATE, W.TAG_PADDED):
                st.bad_header += 1
                self.tr.abort()
                return
            self.tag = tag
            self.enc = W.ctr(*self.ekey)
            self.out = 0  # bytes of our stream so far: a download's trailer is encrypted at its offset
            self.buf = bytearray(self.dec.update(bytes(self.buf[W.HEADER_LEN:])))
        else:
            self.buf += self.dec.update(data)
        b = self.buf
        i = 0
        while len(b) - i >= 4:
            n = W.LEN.unpack_from(b, i)[0]
            if n > MAX_PACKET or n < W.HEAD.size:
                st.bad_packet += 1
                self.tr.abort()
                return
            if len(b) - i - 4 < n:
                break
            kind, ident, arg = W.HEAD.unpack_from(b, i + 4)
            i += 4 + n
            self.packet(kind, ident, arg)
        if i:
            del b[:i]

    def packet(self, kind, ident, arg):
        if kind == W.K_PING:
            st.messages += 1
            self.send(W.K_REPLY, ident, 0, arg)
        elif kind == W.K_ACK:
            t = self.sent.pop(ident, None)
            if t is not None:
                st.acks += 1
                st.push_rtt.append((t[0], int((time.perf_counter() - t[1]) * 1e6)))
        elif kind == W.K_HELLO:
            if arg & 1:
                self.timer = loop.call_later(random.expovariate(1 / st.mean), self.push)
        elif kind == W.K_DOWNLOAD:
            self.dl = [ident, arg, 0, time.monotonic()]  # rate, size, sent, start
            downloads.add(self)
        else:
            st.bad_packet += 1

    def send(self, kind, ident, arg, size):
        pkt = W.packet(self.tag, kind, ident, arg, size)
        self.out += len(pkt)
        self.tr.write(self.enc.update(pkt))

    def push(self):
        ident = random.getrandbits(31)
        self.sent[ident] = (time.time(), time.perf_counter())
        st.pushes += 1
        self.send(W.K_PUSH, ident, random.randint(100, 2048), random.randint(100, 2048))
        self.timer = loop.call_later(random.expovariate(1 / st.mean), self.push)

    def tick(self, now):
        """Send what the download's pace allows by now; True when it is done."""
        rate, size, sent, t0 = self.dl
        due = min(int(rate * (now - t0)), size) - sent
        if due <= 0:
            return False
        if self.tr.get_write_buffer_size() > 2 * rate * TICK:
            st.stalls += 1
            return False
        due = min(due, int(2 * rate * TICK))  # behind after a stall: catch up slowly, no burst
        st.download_bytes += due
        while due:
            off = random.randrange(len(POOL) - 65536)
            k = min(due, 65536)
            self.tr.write(memoryview(POOL)[off:off + k])
            due -= k
            sent += k
        self.dl[2] = sent
        if sent < size:
            return False
        self.tr.write(W.ctr_at(self.ekey[0], self.ekey[1], self.out + size).update(W.MAGIC))
        st.downloads += 1
        return True

    def connection_lost(self, exc):
        if self.timer is not None:
            self.timer.cancel()
        downloads.discard(self)


def ticker():
    now = time.monotonic()
    done = [c for c in list(downloads) if c.tick(now)]
    for c in done:
        downloads.discard(c)
    loop.call_later(TICK, ticker)


def report(w0, w1):
    out = {k: v for k, v in vars(st).items() if k not in ("push_rtt", "mean")}
    out["push_rtt_us"] = [us for t, us in st.push_rtt if w0 <= t <= w1]
    st.reset()
    return out


async def shard(sock, cmd_fd, out_fd):
    """Serve one DC address; answer the parent's commands (one line each) on out_fd."""
    await loop.create_server(DCConn, sock=sock, backlog=4096)
    loop.call_later(TICK, ticker)
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), os.fdopen(cmd_fd, "rb"))
    out = os.fdopen(out_fd, "w")
    while True:
        line = await reader.readline()
        if not line:
            return
        cmd = line.split()
        if cmd[0] == b"mean":
            st.mean = float(cmd[1])
            answer = {"mean": st.mean}
        else:
            answer = report(float(cmd[1]), float(cmd[2]))
        out.write(json.dumps(answer) + "\n")
        out.flush()


def merge(parts):
    out = {}
    for p in parts:
        for k, v in p.items():
            out[k] = out.get(k, [] if isinstance(v, list) else 0) + v if not isinstance(v, float) else v
    return out


def main(port_file):
    """Bind every DC address, fork one process per address (so no process holds more than its
    share of the connections: descriptor limits), relay stdin's commands to them."""
    socks = []
    port = 0
    for addr in W.DC_ADDRS:
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((addr, port))
        port = s.getsockname()[1]  # the others take the port the first one got
        s.listen(4096)
        s.setblocking(False)
        socks.append(s)
    kids = []
    for s in socks:
        cmd_r, cmd_w = os.pipe()
        out_r, out_w = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(cmd_w)
            os.close(out_r)
            for other in socks:
                if other is not s:
                    other.close()
            global loop
            loop = new_loop()
            asyncio.set_event_loop(loop)
            try:
                loop.run_until_complete(asyncio.wait_for(shard(s, cmd_r, out_w), LIFETIME))
            finally:
                os._exit(0)
        os.close(cmd_r)
        os.close(out_w)
        kids.append((pid, os.fdopen(cmd_w, "w"), os.fdopen(out_r, "r")))
    for s in socks:
        s.close()
    with open(port_file + ".tmp", "w") as f:
        f.write(str(port))
    os.replace(port_file + ".tmp", port_file)
    for line in sys.stdin:
        if not line.strip():
            continue
        for _, w, _ in kids:
            w.write(line)
            w.flush()
        answer = merge([json.loads(r.readline() or "{}") for _, _, r in kids])
        answer["pid"] = os.getpid()
        print(json.dumps(answer), flush=True)
    for _, w, _ in kids:
        w.close()
    for pid, _, _ in kids:
        os.waitpid(pid, 0)


def new_loop():
    try:
        import uvloop

        return uvloop.new_event_loop()
    except ImportError:
        return asyncio.new_event_loop()


loop = None

if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: phones_dc.py PORT_FILE (started by bench/phones.py)")
    main(sys.argv[1])
