"""Local peers the relay talks to in tests: an HTTP origin, an echo server, a DNS server. Loopback only."""

import hashlib
import os
import socket
import socketserver
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import dns.message
import dns.rrset


def read_to_close(sock):
    """Everything sock receives until the peer closes (a timeout set on sock ends it too)."""
    data = bytearray()
    try:
        while True:
            d = sock.recv(262144)
            if not d:
                break
            data += d
    except socket.timeout:
        pass
    return bytes(data)


def read_at_least(sock, n, chunk=None):
    """What sock receives until n bytes came, fewer if the peer closes first. Each read asks for chunk bytes
    (so more than n may come, as a client reading a reply into a buffer takes) or, by default, for what is
    still missing (exactly n, nothing past them)."""
    got = b""
    while len(got) < n:
        d = sock.recv(chunk or n - len(got))
        if not d:
            break
        got += d
    return got


def read_head(sock):
    """An HTTP request's head (through its blank line, with whatever came after it), or None when the peer
    closed before the head was whole."""
    got = b""
    while b"\r\n\r\n" not in got:
        d = sock.recv(4096)
        if not d:
            return None
        got += d
    return got


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def do_GET(self):
        files = self.server.files
        path = self.path.split("?")[0]
        if path == "/chunked":
            body = files["/blob"]
            self.send_response(200)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for i in range(0, len(body), 70001):
                part = body[i : i + 70001]
                self.wfile.write(b"%x\r\n" % len(part) + part + b"\r\n")
            self.wfile.write(b"0\r\n\r\n")
            return
        if path == "/close":  # an HTTP/1.0-style answer: no length, the end is the close
            body = files["/blob"]
            self.send_response(200)
            self.send_header("Connection", "close")
            self.end_headers()
            self.close_connection = True
            for i in range(0, len(body), 70001):
                self.wfile.write(body[i : i + 70001])
            return
        if path == "/headers":
            body = "".join(f"{k.lower()}: {v}\n" for k, v in self.headers.items()).encode()
        elif path in files:
            body = files[path]
        else:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self):
        n = int(self.headers.get("Content-Length", "0"))
        data = self.rfile.read(n)
        body = hashlib.sha256(data).hexdigest().encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class _Server(ThreadingHTTPServer):
    # socketserver's default backlog is 5: a burst of tunnels from a test would find SYNs dropped
    # and wait for retransmits, which looks like a slow relay.
    request_queue_size = 128
    daemon_threads = True


class _V6Server(_Server):
    address_family = socket.AF_INET6


class Origin:
    """HTTP/1.1 origin with keep-alive: /blob (random bytes of known sha256), /chunked, /close (the blob,
    ended by the close), /headers, POST echo-hash."""

    def __init__(self, size=3 * 1024 * 1024, host="127.0.0.1"):
        self.blob = os.urandom(size)
        self.sha256 = hashlib.sha256(self.blob).hexdigest()
        cls = _V6Server if ":" in host else _Server
        self.server = cls((host, 0), _Handler)
        self.server.daemon_threads = True
        self.server.files = {"/blob": self.blob, "/small": b"hello relay\n"}
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


class _Echo(socketserver.BaseRequestHandler):
    def handle(self):
        try:
            while True:
                d = self.request.recv(65536)
                if not d:
                    return
                self.request.sendall(d)
        except OSError:
            pass


class EchoServer:
    def __init__(self, host="127.0.0.1"):
        attrs = {"allow_reuse_address": True, "daemon_threads": True, "request_queue_size": 128}
        if ":" in host:
            attrs["address_family"] = socket.AF_INET6
        cls = type("Echo", (socketserver.ThreadingTCPServer,), attrs)
        self.server = cls((host, 0), _Echo)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


class UDPEcho:
    def __init__(self, host="127.0.0.1"):
        self.sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((host, 0))
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self):
        while True:
            try:
                data, addr = self.sock.recvfrom(65535)
                self.sock.sendto(b"echo:" + data, addr)
            except OSError:
                return

    def close(self):
        self.sock.close()


class DNSServer:
    """A loopback DNS server answering from a table {name: [addresses]}; other names get NXDOMAIN."""

    def __init__(self, records):
        self.records = records
        self.queries = []
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self):
        while True:
            try:
                data, addr = self.sock.recvfrom(4096)
            except OSError:
                return
            try:
                q = dns.message.from_wire(data)
            except Exception:
                continue
            r = dns.message.make_response(q)
            qname = q.question[0].name.to_text().rstrip(".")
            qtype = dns.rdatatype.to_text(q.question[0].rdtype)
            self.queries.append((qname, qtype))
            addrs = self.records.get(qname)
            if addrs is None:
                r.set_rcode(dns.rcode.NXDOMAIN)
            else:
                want = [a for a in addrs if (":" in a) == (qtype == "AAAA")]
                if want:
                    r.answer.append(dns.rrset.from_text_list(q.question[0].name, 30, "IN", qtype, want))
            self.sock.sendto(r.to_wire(), addr)

    def close(self):
        self.sock.close()


class ThreadedTCP:
    """A loopback TCP peer with a thread per connection: subclasses define serve(conn)."""

    def __init__(self, backlog=64):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(backlog)
        self.port = self.sock.getsockname()[1]

    def start(self):
        threading.Thread(target=self._accept, daemon=True).start()
        return self

    def _accept(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self.serve, args=(c,), daemon=True).start()

    def serve(self, conn):
        raise NotImplementedError

    def close(self):
        self.sock.close()
