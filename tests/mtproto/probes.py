"""A censor's probes and a web server to compare them against. Loopback only.

- WebLikeMask: a stand-in mask site that answers like a web server on 443 would, and the same
  way every time, so a probe sent to it directly and through the relay can be compared byte for
  byte: a whole TLS record gets a handshake_failure alert then FIN; a whole HTTP request head a
  400 then FIN; anything else a reset (as an OpenSSL server that cannot parse a record closes with
  unread data); nothing for idle_s seconds, or an end of data before a whole request, a FIN.
  .got lists what each connection carried to it.
- probe(port, data, ...): connect, send, optionally half-close, and record what comes back, how
  the connection ended (fin, rst, open) and when.
"""

import socket
import threading
import time

from tests.helpers.origin import ThreadedTCP

ALERT = b"\x15\x03\x03\x00\x02\x02\x28"  # fatal handshake_failure
HTTP_400 = b"HTTP/1.1 400 Bad Request\r\nServer: nginx\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"


def reset(sock):
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, (1).to_bytes(4, "little") + bytes(4))
    sock.close()


class WebLikeMask(ThreadedTCP):
    def __init__(self, idle_s=1.5):
        super().__init__(backlog=128)
        self.idle_s = idle_s
        self.got = []
        self.lock = threading.Lock()
        self.start()

    def serve(self, c):
        c.settimeout(self.idle_s)
        buf = b""
        try:
            while True:
                try:
                    chunk = c.recv(65536)
                except socket.timeout:
                    break
                if not chunk:
                    break
                buf += chunk
                if buf[0] == 0x16:
                    if len(buf) >= 5 and len(buf) >= 5 + int.from_bytes(buf[3:5], "big"):
                        c.sendall(ALERT)
                        break
                elif 0x41 <= buf[0] <= 0x5A:
                    if b"\r\n\r\n" in buf:
                        c.sendall(HTTP_400)
                        break
                else:
                    with self.lock:
                        self.got.append(buf)
                    reset(c)
                    return
            with self.lock:
                self.got.append(buf)
            c.close()
        except OSError:
            with self.lock:
                self.got.append(buf)
            c.close()


class Result:
    __slots__ = ("data", "end", "seconds")

    def __init__(self, data, end, seconds):
        self.data, self.end, self.seconds = data, end, seconds

    def __repr__(self):
        return f"Result({len(self.data)} bytes {self.data[:40]!r}, {self.end}, {self.seconds:.2f} s)"


def probe(port, data, half_close=False, wait=8.0):
    """Send data to 127.0.0.1:port, then read until the peer ends it or `wait` seconds pass."""
    t0 = time.monotonic()
    s = socket.create_connection(("127.0.0.1", port), timeout=wait)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    got = b""
    end = "open"
    try:
        if data:
            s.sendall(data)
        if half_close:
            s.shutdown(socket.SHUT_WR)
        while True:
            left = wait - (time.monotonic() - t0)
            if left <= 0:
                break
            s.settimeout(left)
            chunk = s.recv(65536)
            if not chunk:
                end = "fin"
                break
            got += chunk
    except socket.timeout:
        pass
    except (ConnectionResetError, BrokenPipeError):
        end = "rst"
    finally:
        s.close()
    return Result(got, end, time.monotonic() - t0)
