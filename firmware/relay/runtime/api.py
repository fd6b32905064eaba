"""The one place that knows which Python runs us: `from relay.runtime import api as runtime`.

Everything outside runtime/ calls these names and never checks
sys.implementation itself. Both backends offer the same small surface:

  now_ms(), ms_since(t), ms_diff(a, b), connect_error(oserror) -> reason, sleep_ms(ms), run(coro), create_task(coro),
  wait_for_ms(coro, ms), recv_within(conn, ms, limit=0) -> bytes the caller keeps (a timed read), CancelledError, TimeoutError, Event,
  listen_tcp(host, port, backlog, on_conn) -> Listener (.close()); out of descriptors it pauses, counted by accept_pauses()
  connect_tcp(ip: bytes, port) -> Conn
  Conn: .peer (ip bytes, port), recv(limit=0) -> bytes-like (empty at EOF; at most limit bytes),
        send(data), shutdown_write() -> bool (False: this runtime cannot half-close), local() -> (ip, port) or None, close(), abort() (close with a reset),
        hang_up() (end it under its readers and writers; the owner still closes it), is_open(),
        original_dst() -> (ip, port) before a firewall redirect, or None (caps.original_dst: the runtime can tell)
  udp_open(ip: bytes, port_hint) -> (sock, port); udp_bind(ip, port) -> sock (exactly that port); udp_recv(sock) -> (data, ip, port);
  udp_send(sock, data, ip, port) -> sent?; udp_close(sock); set_udp_max(n) -> the largest datagram udp_recv
        returns whole (a bigger one comes back cut to limit + 1 bytes: drop it)
  system_resolve(name) -> [ip bytes] or None when the runtime has no resolver
  netlink_route(groups) -> a NETLINK_ROUTE socket (.send(data), async .recv() -> bytes, .close()), or None off Linux
  set_buffer_size(n), raise_fd_limit(), heap_used(), heap_size() (None: no single heap), rss_kib()
  read_file(path) -> bytes; write_file(path, data): whole, private to this user where the OS has users
  start_fast_pump(client, upstream, tap, session, limit, on_done, up=None, down=None, half_close=True) -> pump with
        .cancel(), or None when a side is not a plain connection: a tunnel on loop callbacks, no task waiting on it
        (caps.fast); on_done(pump, clean) ends it; up/down: bytes -> bytes on the way (a cipher); half_close False:
        an EOF ends both ways; tap: the hooks of core/tunnel.py's Tap
  connect_start(ip, port, done, beside=None) -> handle with .cancel(); done(conn, OSError or None) from the loop
        (caps.fast); such a Conn also has watch(cb), unwatch(), recv_now(n), send_now(data)
  pipe(src, dst, limit, moved, session, down, ended=None): one direction without per-chunk allocation (caps.lean)
  settle(): count the bytes that tunnels moved without a Python call since the last settle() (CPython's
        native MTProto dispatch: their taps hear of them here, sessions look active from here); the
        sweeper and every reader of the counters call it first; elsewhere it does nothing
  tls_client(conn, ctx, hostname) -> conn with TLS as a client (ctx: an ssl.SSLContext), over a direct
        connection or an upstream's; raises OSError (a bad certificate: at the latest on first recv/send)
  aes_ctr(key, iv) -> .update(data) -> bytes-like (AES-256-CTR, a stream across calls); aes_ctr_kind() says
        which engine: "native" (CPython with runtime/_mtpump.c built), "cryptography", "cryptolib-ctr"/"-ecb"
  random_bytes(n), wall_time() -> Unix seconds or None while the clock is unset
  on_hangup(cb) -> True when cb() will run on SIGHUP (CPython), False where there are no signals
  caps: what this runtime can do (Capabilities), read by the seam (relay/core) and the server's wiring only
"""

import sys

NAME = sys.implementation.name

if NAME == "micropython":
    from relay.runtime import micropython as impl
else:
    from relay.runtime import cpython as impl

now_ms = impl.now_ms
sleep_ms = impl.sleep_ms
run = impl.run
create_task = impl.create_task
wait_for_ms = impl.wait_for_ms
CancelledError = impl.CancelledError
TimeoutError = impl.TimeoutError
Event = impl.Event
listen_tcp = impl.listen_tcp
accept_pauses = impl.accept_pauses
connect_tcp = impl.connect_tcp
udp_open = impl.udp_open
udp_bind = impl.udp_bind
udp_recv = impl.udp_recv
udp_send = impl.udp_send
udp_close = impl.udp_close
set_udp_max = impl.set_udp_max
system_resolve = impl.system_resolve
netlink_route = impl.netlink_route
set_buffer_size = impl.set_buffer_size
raise_fd_limit = impl.raise_fd_limit
sha256_hex = impl.sha256_hex
connect_error = impl.connect_error
ms_since = impl.ms_since
ms_diff = impl.ms_diff
read_file = impl.read_file
write_file = impl.write_file
stderr_write = impl.stderr_write
stdout_write = impl.stdout_write
heap_used = impl.heap_used
heap_size = impl.heap_size
rss_kib = impl.rss_kib
aes_ctr = impl.aes_ctr
aes_ctr_kind = impl.aes_ctr_kind
tls_client = impl.tls_client
random_bytes = impl.random_bytes
wall_time = impl.wall_time
start_fast_pump = impl.start_fast_pump
connect_start = impl.connect_start
pipe = impl.pipe
settle = impl.settle
loop_name = impl.loop_name
on_hangup = impl.on_hangup


async def _recv_copy(conn, limit):
    # wait_for runs this as a task of its own; on MicroPython recv() returns a view of the one shared read
    # buffer, which another session's read overwrites before the waiting caller resumes: copy it here.
    # (CPython's recv() gives fresh bytes, and bytes() of bytes is the same object: no copy there.)
    return bytes(await conn.recv(limit))


async def recv_within(conn, ms, limit=0):
    """What conn receives within ms (at most limit bytes when given; b"" at EOF; TimeoutError when nothing
    came): bytes the caller keeps."""
    return await wait_for_ms(_recv_copy(conn, limit), ms)


class Capabilities:
    """What this runtime can do: asked of the runtime here, once, and read by the seam (relay/core) and the
    server's wiring only; sessions and services do not branch on the runtime."""

    __slots__ = ("fast", "lean", "udp", "original_dst", "system_resolver")

    def __init__(self):
        self.fast = impl.start_fast_pump is not None  # tunnels and handshakes on loop callbacks (CPython, Linux)
        self.lean = impl.pipe is not None  # runtime.pipe copies a direction without allocating (MicroPython)
        self.udp = impl.HAS_UDP
        self.original_dst = impl.HAS_ORIGINAL_DST  # a redirected connection's destination (zero-tap mode)
        self.system_resolver = impl.HAS_SYSTEM_RESOLVER  # getaddrinfo without stalling the loop


caps = Capabilities()
