"""The fast path's own epoll set (runtime/epoll.py) and the callback connect, on real loopback sockets,
under the stock asyncio loop and uvloop."""

import asyncio
import errno
import os
import select
import socket

import pytest

if not hasattr(select, "epoll"):
    pytest.skip("epoll is Linux only, like the fast path itself", allow_module_level=True)

from relay.runtime import cpython as rt  # noqa: E402
from relay.runtime import epoll  # noqa: E402

LOOPS = ["asyncio"]
try:
    import uvloop

    LOOPS.append("uvloop")
except ImportError:
    uvloop = None


def run(loop_name, coro_fn):
    if loop_name == "uvloop":
        loop = uvloop.new_event_loop()
    else:
        loop = asyncio.new_event_loop()
    try:
        return loop.run_until_complete(coro_fn())
    finally:
        loop.close()


def pair():
    ls = socket.socket()
    ls.bind(("127.0.0.1", 0))
    ls.listen()
    c = socket.create_connection(ls.getsockname())
    a, _ = ls.accept()
    ls.close()
    a.setblocking(False)
    return a, c


class Counting:
    """Counts the poller's dispatches: a descriptor left registered with nobody listening would spin them."""

    def __init__(self, p):
        self.n = 0
        orig = p._dispatch

        def counted():
            self.n += 1
            orig()

        p.loop.remove_reader(p.ep.fileno())
        p.loop.add_reader(p.ep.fileno(), counted)


@pytest.mark.parametrize("loop_name", LOOPS)
def test_read_interest_is_level_triggered_and_stops(loop_name):
    async def go():
        p = epoll.poller(asyncio.get_running_loop())
        a, c = pair()
        got = []

        def on_read(arg):
            got.append((arg, a.recv(2)))  # two bytes a time: the rest must be offered again

        p.want_read(a.fileno(), on_read, "a")
        c.sendall(b"abcdef")
        for _ in range(50):
            await asyncio.sleep(0.01)
            if len(got) >= 3:
                break
        assert got == [("a", b"ab"), ("a", b"cd"), ("a", b"ef")]
        p.stop_read(a.fileno())
        assert a.fileno() not in p.fds
        c.sendall(b"more")
        await asyncio.sleep(0.05)
        assert len(got) == 3
        a.close()
        c.close()

    run(loop_name, go)


@pytest.mark.parametrize("loop_name", LOOPS)
def test_dropped_socket_left_open_does_not_spin(loop_name):
    async def go():
        p = epoll.poller(asyncio.get_running_loop())
        count = Counting(p)
        a, c = pair()
        p.want_read(a.fileno(), lambda arg: None, None)
        p.drop(a.fileno())  # a caller that forgets the socket but does not close it
        c.sendall(b"x")  # now readable forever, level-triggered
        await asyncio.sleep(0.1)
        assert count.n <= 2, "the loop spun on a socket nobody listens to"
        a.close()
        c.close()

    run(loop_name, go)


@pytest.mark.parametrize("loop_name", LOOPS)
def test_a_reused_descriptor_skips_its_predecessors_events(loop_name):
    """A's callback closes B, whose event is in the same batch, and a new socket takes B's number:
    B's event must not reach the newcomer; the newcomer's own events must."""

    async def go():
        p = epoll.poller(asyncio.get_running_loop())
        a, ca = pair()
        b, cb = pair()
        newcomer_calls = []
        made = []

        def on_a(_):
            a.recv(10)
            p.stop_read(a.fileno())
            fd = b.fileno()
            p.drop(fd)
            b.close()
            n = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            n.bind(("127.0.0.1", 0))
            if n.fileno() != fd:  # the kernel gave a lower free number: move it onto b's
                os.dup2(n.fileno(), fd)
                n.close()
                n = socket.socket(fileno=fd)
            n.setblocking(False)
            made.append((n, n.fileno() == fd))

            def on_n(_):
                try:
                    newcomer_calls.append(n.recv(10))
                except BlockingIOError:
                    newcomer_calls.append("woken with nothing to read")

            p.want_read(n.fileno(), on_n, None)

        p.want_read(a.fileno(), on_a, None)
        p.want_read(b.fileno(), lambda _: pytest.fail("b was closed before its turn"), None)
        ca.sendall(b"1")  # a becomes ready first, so its callback runs first in the batch
        cb.sendall(b"2")
        await asyncio.sleep(0.05)
        assert len(made) == 1
        n, reused = made[0]
        assert reused, "the new socket did not get the closed one's number; the test proves nothing"
        assert newcomer_calls == [], "the newcomer got its predecessor's event"
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as tx:
            tx.sendto(b"own", n.getsockname())
        await asyncio.sleep(0.05)
        assert newcomer_calls == [b"own"], "the newcomer's own event was lost"
        p.drop(n.fileno())
        for s in (n, a, ca, cb):
            s.close()

    run(loop_name, go)


@pytest.mark.parametrize("loop_name", LOOPS)
def test_connect_start_reports_success_refusal_and_cancel(loop_name):
    async def go():
        ls = socket.socket()
        ls.bind(("127.0.0.1", 0))
        ls.listen()
        port = ls.getsockname()[1]
        loop = asyncio.get_running_loop()

        fut = loop.create_future()
        rt.connect_start(b"\x7f\x00\x00\x01", port, lambda conn, err: fut.set_result((conn, err)))
        conn, err = await asyncio.wait_for(fut, 5)
        assert err is None and conn.peer == (b"\x7f\x00\x00\x01", port)
        assert conn.local()[0] == b"\x7f\x00\x00\x01"
        server, _ = ls.accept()
        assert conn.send_now(b"ping")
        assert server.recv(4) == b"ping"
        server.sendall(b"pong")
        got = loop.create_future()
        conn.watch(lambda _: got.done() or got.set_result(conn.recv_now(10)))
        assert await asyncio.wait_for(got, 5) == b"pong"
        conn.close()
        server.close()

        dead = socket.socket()
        dead.bind(("127.0.0.1", 0))
        dead_port = dead.getsockname()[1]  # bound, never listening: the connect is refused
        fut = loop.create_future()
        try:
            rt.connect_start(b"\x7f\x00\x00\x01", dead_port, lambda conn, err: fut.set_result((conn, err)))
            conn, err = await asyncio.wait_for(fut, 5)
        except OSError as e:  # refused at once is allowed too
            conn, err = None, e
        assert conn is None and err.errno == errno.ECONNREFUSED
        assert rt.connect_error(err) == "refused"
        dead.close()

        calls = []
        h = rt.connect_start(b"\x7f\x00\x00\x01", port, lambda conn, err: calls.append((conn, err)))
        h.cancel()
        await asyncio.sleep(0.05)
        assert calls == []
        ls.close()

    run(loop_name, go)


@pytest.mark.parametrize("loop_name", LOOPS)
def test_a_failing_callback_is_reported_and_the_batch_goes_on(loop_name):
    async def go():
        loop = asyncio.get_running_loop()
        reported = []
        loop.set_exception_handler(lambda lp, ctx: reported.append(ctx.get("exception")))
        p = epoll.poller(loop)
        a, ca = pair()
        b, cb = pair()
        got = []

        def boom(_):
            a.recv(10)
            raise RuntimeError("a bug in one tunnel")

        p.want_read(a.fileno(), boom, None)
        p.want_read(b.fileno(), lambda _: got.append(b.recv(10)), None)
        ca.sendall(b"1")
        cb.sendall(b"2")
        await asyncio.sleep(0.05)
        assert got == [b"2"]
        assert len(reported) == 1 and isinstance(reported[0], RuntimeError)
        for s in (a, ca, b, cb):
            p.drop(s.fileno())
            s.close()

    run(loop_name, go)
