"""Run by the MicroPython unix port (test_listener_memory.py): a listener whose on_conn runs out of heap for
one connection drops that one and goes on accepting. Prints "listener OK" when it does."""

import asyncio
import socket

from relay.runtime import micropython as rt

got = []


def on_conn(conn):
    if not got:
        got.append(None)
        raise MemoryError("no heap for this session")  # what a session's allocation raises on a full heap
    got.append(conn)


async def client(port):
    s = socket.socket()
    s.connect(socket.getaddrinfo("127.0.0.1", port)[0][-1])
    return s


async def main():
    for port in range(47100, 47200):
        try:
            ln = await rt.listen_tcp("127.0.0.1", port, 8, on_conn)
            break  # no getsockname() on MicroPython's sockets: a port of our own, the first free one
        except OSError:
            pass
    first = await client(port)
    for _ in range(100):
        await asyncio.sleep_ms(10)
        if got:
            break
    second = await client(port)
    for _ in range(100):  # the listener pauses 100 ms after a MemoryError, then accepts again
        await asyncio.sleep_ms(10)
        if len(got) > 1:
            break
    assert len(got) == 2, "the listener stopped accepting after a MemoryError in on_conn"
    assert rt.accept_pauses() >= 1
    got[1].close()
    first.close()
    second.close()
    ln.close()
    print("listener OK")


asyncio.run(main())
