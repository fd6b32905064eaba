"""SOCKS5 UDP ASSOCIATE (RFC 1928 section 7): Telegram's voice calls.

One UDP socket per association, bound on the address the client reached us
at; it also talks to destinations of its own family, and a second socket,
opened when first needed, to those of the other family (an IPv6 destination
on an IPv4 association). Datagrams from the client (its address, and its
port once known) are unwrapped and sent on; datagrams from destinations the
client has sent to are wrapped and returned. Anything else is dropped.

While tunnels go through an upstream proxy or the mesh, UDP never leaves around them: the relay's own
socket would send a call (and its lookups) straight out of the uplink the upstream exists to avoid, or
nowhere useful on a mesh relay without one. With no upstream.direct entry the association is refused
(REP_COMMAND, counted: clients fall back to TCP); with some, only datagrams to those destinations go, the
rest are dropped and counted.

One bad datagram ends nothing: a malformed header, a refused or unresolvable
destination, port 0, one too big to relay whole, one the network will not
take (unroutable) is dropped and counted (stats.udp_dropped) and the
association goes on. It lives as long as its TCP control connection.
"""

from relay.core.tunnel import stop
from relay.runtime import api as runtime
from relay.proto import socks, stats as S
from relay.proto.addr import parse_ip
from relay.proto.stats import Refusal

_MAX_PEERS = 64  # destinations one association may talk to; a call needs a handful


async def serve_udp(relay, s, req):
    conn = s.conn
    st = relay.stats
    if not relay.udp or _all_via_upstream(relay.router.upstreams):  # socks.udp, where the runtime has UDP
        st.refuse(S.R_COMMAND)
        await conn.send(socks.socks5_reply(socks.REP_COMMAND))
        return
    if st.udp_associations >= relay.cfg.limits.udp_associations:
        st.refuse(S.R_FULL)
        await conn.send(socks.socks5_reply(socks.REP_FAILURE))
        return
    local = conn.local()
    ip = local[0] if local else parse_ip(relay.cfg.socks.host)
    try:
        sock, port = runtime.udp_open(ip, _port_hint(relay))
    except OSError:
        st.refuse(S.R_FAILED)
        await conn.send(socks.socks5_reply(socks.REP_FAILURE))
        return
    st.udp_associations += 1
    a = Association(relay, s, sock, len(ip), req.port)
    try:
        await conn.send(socks.socks5_reply(socks.REP_OK, ip, port))
        s.timeout_ms = relay.idle_ms
        s.active = runtime.now_ms()
        s.peer_task = runtime.create_task(a.from_client_side())
        while True:  # the association ends with its control connection
            data = await conn.recv()
            if not data:
                break
    finally:
        st.udp_associations -= 1
        t = s.peer_task
        s.peer_task = None
        await stop(t)  # its socket closes only once it has stopped waiting on it
        await a.close()


def _all_via_upstream(ups):
    """Does every destination go through an upstream (no upstream.direct entry may go around it)?"""
    return ups is not None and not ups.direct_nets and not ups.direct_names


def _port_hint(relay):
    hint = relay.udp_port_next
    base = relay.cfg.socks.udp_port_base
    relay.udp_port_next = base + (hint + 64 - base) % 4096
    return hint


class Association:
    __slots__ = ("relay", "s", "sock", "family", "other", "other_task", "cport", "peers")

    def __init__(self, relay, s, sock, family, client_port):
        self.relay = relay
        self.s = s
        self.sock = sock  # the client's side, and destinations of its family
        self.family = family  # 4 or 16: the address length sock speaks
        self.other = None  # a socket for destinations of the other family, once one is asked for
        self.other_task = None
        self.cport = client_port or None
        self.peers = []  # (ip, port) the client sent to: only they may answer

    async def close(self):
        await stop(self.other_task)
        if self.other is not None:
            runtime.udp_close(self.other)
        runtime.udp_close(self.sock)

    def _drop(self):
        self.relay.stats.udp_dropped += 1

    async def from_client_side(self):
        """Datagrams on the association's own socket: the client's, and answers of its family."""
        sock = self.sock
        client = self.s.client
        try:
            while True:
                try:
                    data, ip, port = await runtime.udp_recv(sock)
                except OSError:
                    self._drop()  # an ICMP error surfaced on the socket, or no memory for this one
                    continue
                if ip == client and (self.cport is None or port == self.cport):
                    self.cport = port
                    await self._up(data)
                elif self.cport is not None and (ip, port) in self.peers:
                    self._down(data, ip, port)
        except runtime.CancelledError:
            pass

    async def _from_other_side(self):
        """Answers from destinations of the other family."""
        try:
            while True:
                try:
                    data, ip, port = await runtime.udp_recv(self.other)
                except OSError:
                    self._drop()
                    continue
                if (ip, port) in self.peers:
                    self._down(data, ip, port)
        except runtime.CancelledError:
            pass

    async def _up(self, data):
        relay = self.relay
        if len(data) > relay.udp_max:
            return self._drop()  # cut by the receive buffer: never passed on in part
        head = socks.udp_unpack(data)
        if head is None:
            return self._drop()
        host, dport, off = head
        if dport == 0 or relay.router.policy.check_port(dport) is not None:
            return self._drop()
        router = relay.router
        try:
            host = router.destination(host)
            if router.upstreams is not None and not router.upstreams.goes_direct(host):
                return self._drop()  # only upstream.direct destinations may go around the upstream
            ips = await router.resolve(host)
        except Refusal as r:
            relay.stats.refuse(r.reason)
            return self._drop()
        dest = (ips[0], dport)
        out = self._socket_for(dest[0])
        if out is None or not runtime.udp_send(out, memoryview(data)[off:], dest[0], dport):
            return self._drop()
        if dest not in self.peers:
            if len(self.peers) >= _MAX_PEERS:
                self.peers.pop(0)
            self.peers.append(dest)
        st = relay.stats
        st.bytes_up += len(data) - off
        st.udp_datagrams += 1
        self.s.active = runtime.now_ms()

    def _down(self, data, ip, port):
        relay = self.relay
        if len(data) > relay.udp_max or not runtime.udp_send(self.sock, socks.udp_pack(ip, port, data), self.s.client,
                                                               self.cport):
            return self._drop()  # too big to come back whole with its header, or the client is gone
        st = relay.stats
        st.bytes_down += len(data)
        st.udp_datagrams += 1
        self.s.active = runtime.now_ms()

    def _socket_for(self, ip):
        if len(ip) == self.family:
            return self.sock
        if self.other is None:
            try:
                self.other, _ = runtime.udp_open(bytes(len(ip)), _port_hint(self.relay))
            except OSError:
                return None  # this device has no address of that family
            self.other_task = runtime.create_task(self._from_other_side())
        return self.other
