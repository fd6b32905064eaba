"""SOCKS5 UDP ASSOCIATE (RFC 1928 section 7): Telegram's voice calls.

One UDP socket per association, bound on the address the client reached us
at. Datagrams from the client (its address, and its port once known) are
unwrapped and sent on; datagrams from destinations the client has sent to
are wrapped and returned. Anything else is dropped. The association lives as
long as its TCP control connection.
"""

from relay import runtime, socks, stats as S
from relay.addr import parse_ip
from relay.server import Refusal

_MAX_PEERS = 64  # destinations one association may talk to; a call needs a handful


async def serve_udp(relay, s, req):
    conn = s.conn
    st = relay.stats
    if not relay.cfg.socks.udp or not runtime.HAS_UDP:
        st.refuse(S.R_COMMAND)
        await conn.send(socks.socks5_reply(socks.REP_COMMAND))
        return
    if st.udp_associations >= relay.cfg.limits.udp_associations:
        st.refuse(S.R_FULL)
        await conn.send(socks.socks5_reply(socks.REP_FAILURE))
        return
    local = conn.local()
    ip = local[0] if local else parse_ip(relay.cfg.socks.host)
    hint = relay.udp_port_next
    relay.udp_port_next = relay.cfg.socks.udp_port_base + (hint + 64 - relay.cfg.socks.udp_port_base) % 4096
    try:
        sock, port = runtime.udp_open(ip, hint)
    except OSError:
        st.refuse(S.R_FAILED)
        await conn.send(socks.socks5_reply(socks.REP_FAILURE))
        return
    st.udp_associations += 1
    try:
        await conn.send(socks.socks5_reply(socks.REP_OK, ip, port))
        s.timeout_ms = relay.idle_ms
        s.active = runtime.now_ms()
        s.peer_task = runtime.create_task(_relay_datagrams(relay, s, sock, req.port))
        while True:  # the association ends with its control connection
            data = await conn.recv()
            if not data:
                break
    finally:
        st.udp_associations -= 1
        t = s.peer_task
        s.peer_task = None
        if t is not None:
            t.cancel()
        runtime.udp_close(sock)


async def _relay_datagrams(relay, s, sock, client_port):
    client = s.client
    cport = client_port or None
    peers = []
    st = relay.stats
    try:
        while True:
            data, ip, port = await runtime.udp_recv(sock)
            if ip == client and (cport is None or port == cport):
                cport = port
                head = socks.udp_unpack(data)
                if head is None:
                    continue
                host, dport, off = head
                try:
                    ips = await relay.resolve(host)
                except Refusal as r:
                    st.refuse(r.reason)
                    continue
                dest = (ips[0], dport)
                if dest not in peers:
                    if len(peers) >= _MAX_PEERS:
                        peers.pop(0)
                    peers.append(dest)
                runtime.udp_send(sock, data[off:], dest[0], dport)
                st.bytes_up += len(data) - off
            elif cport is not None and (ip, port) in peers:
                runtime.udp_send(sock, socks.udp_pack(ip, port, data), client, cport)
                st.bytes_down += len(data)
            else:
                continue
            st.udp_datagrams += 1
            s.active = runtime.now_ms()
    except runtime.CancelledError:
        pass
    except OSError:
        pass
