"""Run by CPython and the MicroPython unix port (test_recv_within.py): what runtime.recv_within returns is the
caller's to keep. On MicroPython conn.recv() lends a view of one shared read buffer; a timed read runs in a task
of its own, so another connection's read can reuse that buffer before the caller looks. Prints "recv_within OK"."""


from relay.runtime import api as runtime

accepted = []


def on_conn(conn):
    accepted.append(conn)


async def pair(port):
    """(the relay's side, the peer's side) of one loopback connection."""
    n = len(accepted)
    peer = await runtime.connect_tcp(bytes([127, 0, 0, 1]), port)
    while len(accepted) == n:
        await runtime.sleep_ms(5)
    return accepted[n], peer


async def main():
    for port in range(47300, 47400):
        try:
            ln = await runtime.listen_tcp("127.0.0.1", port, 8, on_conn)
            break  # MicroPython's sockets have no getsockname(): the first free port of our own
        except OSError:
            pass
    a, a_peer = await pair(port)
    b, b_peer = await pair(port)
    await a_peer.send(b"AAAA")
    got = await runtime.recv_within(a, 2000)
    await b_peer.send(b"BBBB")
    other = await b.recv()  # the next read: on MicroPython into the same shared buffer
    assert bytes(other) == b"BBBB", other
    assert bytes(got) == b"AAAA", "the timed read's bytes changed under the caller: %r" % bytes(got)
    for c in (a, a_peer, b, b_peer):
        c.close()
    ln.close()
    print("recv_within OK")


runtime.run(main())
