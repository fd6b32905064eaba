"""Fleet reporting over MQTT: the I/O half of fleet.py, with umqtt.simple from micropython-lib.

firmware/umqtt/simple.py is micropython-lib's umqtt.simple 1.8.0 (MIT; micropython-lib commit 5e49b1bd,
sha256 3cfd101e...d951f), unmodified: relayctl build copies it into images and bundles.

umqtt.simple blocks on its socket: connect() waits for the CONNACK, subscribe() for the SUBACK.
A relay's loop must never wait on a broker, so umqtt writes into and reads from PacketSock, a
stand-in socket that holds bytes in memory. umqtt encodes every packet (CONNECT with the last will,
PUBLISH, SUBSCRIBE, PINGREQ) and decodes incoming PUBLISHes; this driver moves the bytes over a
runtime connection (TLS when fleet.tls: runtime.tls_client) with every wait bounded, and gives umqtt one whole packet at a
time, so umqtt never waits. Where umqtt would block for an answer (CONNACK, SUBACK) PacketSock raises
_NeedData once the request is written, and the answer is taken here when it arrives.

What a down or slow broker costs the relay: one task that sleeps between reconnects (backoff with
jitter up to fleet.retry_max), bounded waits for the connect, TLS and CONNACK (_IO_MS), and at most
one report in memory: a report that cannot go out when due is dropped and counted, never queued.
The broker learns the relay is gone from its last will: a retained "offline", set before connect
(micropython-lib PR #1042) and sent by the broker when the connection ends without a DISCONNECT or
stays silent 1.5 keepalives; pings go out well within the keepalive (umqtt sends none itself, #824).

The broker is reached the way the relay's tunnels go (Router.connect_own: the upstreams, the mesh), never
straight out of an uplink the volunteer chained around: a report names the relay and its place.
"""

import umqtt.simple as _umqtt

from relay.proto import fleet
from relay.services import modem_status
from relay.runtime import api as runtime
from relay.proto.stats import Refusal

_IO_MS = 10000  # connect, TLS handshake, CONNACK, one write: a satellite link's round trips fit
_TICK_MS = 1000  # how often a change of state is looked for
_READ = 512  # bytes asked of the stream at once
_OUT_MAX = 4096  # bytes umqtt may write before they go out: one report (~600 bytes) and a ping


class _NeedData(OSError):
    pass


class PacketSock:
    """A socket as umqtt.simple sees it: write() collects, read() serves the packet being handled."""

    def __init__(self):
        self.out = []
        self.out_n = 0
        self.inbox = b""
        self.pos = 0

    # umqtt's connect() calls these on a fresh socket: the driver has already connected.
    def settimeout(self, t):
        pass

    def setblocking(self, flag):
        pass

    def connect(self, addr):
        pass

    def close(self):
        self.inbox = b""
        self.pos = 0

    def write(self, buf, n=None):
        data = bytes(buf if n is None else buf[:n])
        if self.out_n + len(data) > _OUT_MAX:
            raise OSError("fleet: outgoing buffer full")
        self.out.append(data)
        self.out_n += len(data)
        return len(data)

    def take(self):
        data = b"".join(self.out)
        self.out = []
        self.out_n = 0
        return data

    def feed(self, packet):
        self.inbox = packet
        self.pos = 0

    def read(self, n):
        if self.pos + n > len(self.inbox):
            raise _NeedData("fleet: waiting for the broker")
        data = self.inbox[self.pos:self.pos + n]
        self.pos += n
        return data


class _SocketModule:
    """Stands for the `socket` module inside umqtt.simple: connect() gets the driver's PacketSock and
    resolves nothing (the driver resolved the broker without blocking)."""

    def __init__(self):
        self.next = None

    def socket(self, *args):
        return self.next

    def getaddrinfo(self, host, port, *args):
        return [(0, 0, 0, "", (host, port))]


_sockets = _SocketModule()
_umqtt.socket = _sockets  # one relay per process, one fleet link: one stand-in serves it


class BrokerRefused(Exception):
    pass


_CONNACK_REASONS = {1: "protocol version", 2: "client id", 3: "broker unavailable", 4: "bad user or password",
                    5: "not authorised"}


class FleetLink:
    """Keeps one relay's reports flowing to the fleet's broker: run() forever as a background task."""

    def __init__(self, relay):
        self.relay = relay
        f = relay.cfg.fleet
        self.cfg = f
        self.avail_topic, self.report_topic, self.cmd_topic = fleet.topics(f.prefix, f.name)
        boot = "".join("%02x" % b for b in runtime.random_bytes(4))
        self.ident = {"name": f.name, "place": f.place, "config": relay.config_digest, "boot": boot,
                      "interval_s": f.interval}
        key = bytes.fromhex(f.command_key) if f.command_key else None
        self.commands = fleet.Commands(key, f.name, boot) if key else None
        self.schedule = fleet.Schedule(int(f.interval * 1000))
        self.today = fleet.Today()
        self.backoff = fleet.Backoff(1000, int(f.retry_max * 1000))
        self.state = "starting"
        self.counts = {"sent": 0, "dropped": 0, "connects": 0, "failures": 0, "bytes_out": 0}
        self.last_error = None
        self.up_ms = 0
        self.tick = runtime.now_ms()
        self.sock = PacketSock()
        c = _umqtt.MQTTClient(f.name.encode(), f.broker, f.port, f.user.encode() or None, f.password.encode(),
                              f.keepalive)
        c.set_last_will(self.avail_topic.encode(), b"offline", True, 1)  # before connect: it rides in CONNECT
        c.set_callback(self._on_message)
        self.client = c
        self.ping_sent = None
        self.last_tx = runtime.now_ms()
        self.inbuf = b""  # bytes of a packet not yet whole (at most fleet.MAX_PACKET)
        self.seen = None  # type of the last packet handled
        self.keepalive_ms = f.keepalive * 1000

    # -- what the status page shows about the link ----------------------------------------------

    def as_dict(self):
        d = dict(self.counts)
        d["state"] = self.state
        d["error"] = self.last_error
        if self.commands is not None:
            d["commands"] = self.commands.as_dict()
        return d

    def uptime_s(self):
        now = runtime.now_ms()
        self.up_ms += runtime.ms_since(self.tick)  # summed tick by tick: MicroPython's ticks wrap after days
        self.tick = now
        return self.up_ms // 1000

    # -- the report -------------------------------------------------------------------------------

    def _doc(self):
        from relay.services.status import snapshot

        snap = snapshot(self.relay)
        heap = runtime.heap_size()  # MicroPython's heap; None on CPython, which reports its RSS instead
        snap["mem_free"] = heap - runtime.heap_used() if heap is not None else None
        u = self.relay.cfg.uplink
        snap["uplink_kind"] = u.kind  # a Linux board's uplink, set up outside the relay (MicroPython's: platform)
        snap["modem"] = modem_status.read(u.modem_status)
        st = self.relay.stats
        today = self.today.counts(st.bytes_up, st.bytes_down, runtime.wall_time())
        counts = {"sent": self.counts["sent"], "dropped": self.counts["dropped"], "connects": self.counts["connects"]}
        if self.commands is not None:
            counts["commands"] = self.commands.as_dict()
        return fleet.document(snap, self.ident, self.uptime_s(), runtime.wall_time(), today,
                              len(self.relay.sessions.per_client), counts)

    def _key(self):
        """The change key without building the whole document (this runs every second)."""
        r = self.relay
        mon = r.uplink.up if r.uplink is not None else None
        plat = r.platform
        link = plat.link.state if plat is not None and plat.link is not None else None
        ups = tuple(u.healthy for u in r.upstreams.list) if r.upstreams is not None else None
        stage = r.sharing.stage if r.sharing is not None else None
        return (mon, link, ups, len(r.sessions.per_client), stage)

    # -- the loop -------------------------------------------------------------------------------

    async def run(self):
        while True:
            self.state = "connecting"
            conn = None
            try:
                conn = await runtime.wait_for_ms(self._open(), _IO_MS)
                await self._session(conn)
            except runtime.CancelledError:
                raise
            except BrokerRefused as e:
                self.last_error = "broker refused: " + str(e)
            except Refusal as e:
                self.last_error = "no route to the broker: " + e.reason
            except runtime.TimeoutError:
                self.last_error = "timeout"
            except Exception as e:  # a broker's bytes (or a bug here) must end neither reporting nor the relay
                self.last_error = _reason(e)
            finally:
                if conn is not None:
                    conn.close()  # no DISCONNECT: the broker then sends the will ("offline")
                self.sock.take()
            self.counts["failures"] += 1
            self.state = "waiting"
            await self._wait(self.backoff.next(_rand16()))

    async def _wait(self, ms):
        """Sleep out the backoff; reports that fall due meanwhile are dropped and counted."""
        while ms > 0:
            step = min(ms, _TICK_MS)
            await runtime.sleep_ms(step)
            ms -= step
            self.uptime_s()
            key = self._key()
            if self.schedule.due(self._since_sent(), key):
                self.counts["dropped"] += 1
                self.schedule.sent(runtime.now_ms(), key)  # counted once per missed report, not per tick

    async def _open(self):
        f = self.cfg
        ctx = None
        if f.tls:
            import ssl

            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            ctx.verify_mode = ssl.CERT_REQUIRED  # MicroPython's client context defaults to CERT_NONE
            ca = runtime.read_file(f.ca_file)
            try:
                if ca[:5] == b"-----":
                    ctx.load_verify_locations(cafile=f.ca_file)  # PEM: CPython
                else:
                    ctx.load_verify_locations(cadata=ca)  # DER: what MicroPython's mbedtls reads (both do)
            except ValueError:
                raise OSError("fleet.ca_file: not a certificate this runtime reads (MicroPython: DER; "
                              "relayctl build converts it)")
        conn = await self.relay.router.connect_own(f.broker, f.port)
        if ctx is None:
            return conn
        try:
            return await runtime.tls_client(conn, ctx, f.broker)
        except BaseException:
            conn.close()
            raise

    async def _session(self, conn):
        _sockets.next = self.sock
        self.sock.take()
        try:
            self.client.connect(True)
        except _NeedData:
            pass  # CONNECT is written; the CONNACK comes through _read below
        await self._flush(conn)
        await self._read_until(conn, 0x20)
        self.counts["connects"] += 1
        self.state = "connected"
        self.last_error = None
        self.client.publish(self.avail_topic.encode(), b"online", True)
        if self.commands is not None:
            try:
                self.client.subscribe(self.cmd_topic.encode(), 1)
            except _NeedData:
                pass  # the SUBACK is handled when it comes
        self.schedule.sent_at = None  # report at once: the fleet sees the relay back
        self.ping_sent = None
        healthy_since = runtime.now_ms()
        while True:
            await self._publish_if_due(conn)
            if self.ping_sent is not None and runtime.ms_since(self.ping_sent) > _IO_MS:
                raise OSError("fleet: no answer to a ping")
            if self.ping_sent is None and runtime.ms_since(self.last_tx) >= self.keepalive_ms // 2:
                self.client.ping()
                self.ping_sent = runtime.now_ms()
                await self._flush(conn)
            if runtime.ms_since(healthy_since) > 60000:
                self.backoff.reset()  # a link that held a minute starts its next backoff small again
            wait = min(_TICK_MS, max(1, self.schedule.wait_ms(self._since_sent())))
            try:
                data = await runtime.recv_within(conn, wait, _READ)
            except runtime.TimeoutError:
                continue
            if not data:
                raise OSError("fleet: the broker closed the connection")
            self._take(bytes(data))  # recv's bytes may be a view of a buffer the runtime reuses
            await self._flush(conn)

    def _since_sent(self):
        s = self.schedule.sent_at
        return runtime.ms_since(s) if s is not None else 1 << 30

    async def _publish_if_due(self, conn):
        key = self._key()
        if not self.schedule.due(self._since_sent(), key):
            return
        payload = fleet.encode(self._doc())
        self.client.publish(self.report_topic.encode(), payload, True)
        self.schedule.sent(runtime.now_ms(), key)
        try:
            await self._flush(conn)
        except BaseException:
            self.counts["dropped"] += 1
            raise
        self.counts["sent"] += 1

    async def _flush(self, conn):
        data = self.sock.take()
        if not data:
            return
        await runtime.wait_for_ms(conn.send(data), _IO_MS)
        self.counts["bytes_out"] += len(data)
        self.last_tx = runtime.now_ms()

    async def _read_until(self, conn, want):
        """Read packets until one of type want (the CONNACK) has been handled."""
        self.inbuf = b""
        self.seen = None
        while self.seen != want:
            data = await runtime.recv_within(conn, _IO_MS, _READ)
            if not data:
                raise OSError("fleet: the broker closed the connection")
            self._take(bytes(data))

    def _take(self, data):
        buf = self.inbuf + data
        while True:
            n = fleet.packet_size(buf)
            if not n:
                break
            self._packet(buf[:n])
            buf = buf[n:]
        self.inbuf = buf

    def _packet(self, pkt):
        kind = pkt[0] & 0xF0
        self.seen = kind
        if kind == 0x20:  # CONNACK
            if len(pkt) < 4 or pkt[3]:
                code = pkt[3] if len(pkt) >= 4 else -1
                raise BrokerRefused(_CONNACK_REASONS.get(code, "code %d" % code))
        elif kind == 0xD0:  # PINGRESP
            self.ping_sent = None
        elif kind == 0x30:  # PUBLISH: umqtt decodes it and calls _on_message
            self.sock.feed(pkt)
            self.client.wait_msg()
        elif kind == 0x90 and len(pkt) >= 5 and pkt[4] == 0x80:  # SUBACK: the broker's ACL said no
            self.last_error = "command topic refused by the broker"

    def _on_message(self, topic, msg):
        if self.commands is None or topic != self.cmd_topic.encode():
            return
        cmd = self.commands.check(msg)
        if cmd == "restart":
            self.relay.log.info("fleet: restart asked for by a signed command")
            self.relay.restart("a signed fleet command")
        elif cmd == "report":
            self.schedule.sent_at = None


def _rand16():
    b = runtime.random_bytes(2)
    return (b[0] << 8) | b[1]


def _reason(e):
    """A short reason for the status page; errno names are enough to act on."""
    if type(e) is OSError and e.args and type(e.args[0]) is int:
        return "errno %d" % e.args[0]
    return (str(e) or type(e).__name__)[:80]
