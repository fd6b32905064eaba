"""`make bench`: what each uplink engine costs, beside the direct path, on 127.0.0.1 only.

For the direct path and each engine that runs on loopback (Shadowsocks: ss-local + ss-server;
Trojan: client + server with a self-signed certificate), through the engine's SOCKS port:
  - CPU per GiB: one tunnel downloads --engine-mib from a local source; the engine's processes'
    CPU (client and server side together, from /proc) per GiB;
  - added round trip: 1-byte ping-pongs with a local echo server, median, minus the direct path's.
iodine needs a tun device and Tor a real network: they are not measured here (said in the table).
Everything is bounded by count and a time cap; every process started is stopped by its pid.
"""

import os
import secrets
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "host_tools"))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "tests", "engines"))

import procstat  # noqa: E402

PINGS = 300


def _free():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Servers:
    """A source that sends what a client asks for (8-byte length first) and an echo server."""

    def __init__(self):
        self.src = socket.create_server(("127.0.0.1", 0))
        self.echo = socket.create_server(("127.0.0.1", 0))
        for sock, fn in ((self.src, self._send), (self.echo, self._echo)):
            threading.Thread(target=self._accept, args=(sock, fn), daemon=True).start()

    def _accept(self, sock, fn):
        while True:
            try:
                c, _ = sock.accept()
            except OSError:
                return
            threading.Thread(target=fn, args=(c,), daemon=True).start()

    def _send(self, c):
        with c:
            n = struct.unpack(">Q", c.recv(8))[0]
            chunk = b"\0" * (1 << 20)
            while n > 0:
                c.sendall(chunk[: min(n, len(chunk))])
                n -= min(n, len(chunk))

    def _echo(self, c):
        with c:
            while True:
                d = c.recv(4096)
                if not d:
                    return
                c.sendall(d)

    def close(self):
        self.src.close()
        self.echo.close()


def _open(socks_port, port):
    s = socket.create_connection(("127.0.0.1", socks_port or port), timeout=20)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    if socks_port:
        s.sendall(b"\x05\x01\x00")
        assert s.recv(2) == b"\x05\x00"
        s.sendall(b"\x05\x01\x00\x01" + socket.inet_aton("127.0.0.1") + struct.pack(">H", port))
        rep = b""
        while len(rep) < 10:
            rep += s.recv(10 - len(rep))
        assert rep[1] == 0, rep
    return s


def measure(servers, socks_port, pids, mib, cap):
    s = _open(socks_port, servers.echo.getsockname()[1])
    rtts = []
    for _ in range(PINGS):
        t = time.perf_counter()
        s.sendall(b"x")
        s.recv(1)
        rtts.append((time.perf_counter() - t) * 1000)
    s.close()
    s = _open(socks_port, servers.src.getsockname()[1])
    want = mib << 20
    cpu0 = sum(procstat.cpu_s(p) for p in pids)
    t0 = time.monotonic()
    s.sendall(struct.pack(">Q", want))
    got = 0
    while got < want and time.monotonic() - t0 < cap:
        n = len(s.recv(1 << 20))
        if not n:
            break
        got += n
    wall = time.monotonic() - t0
    cpu = sum(procstat.cpu_s(p) for p in pids) - cpu0
    s.close()
    return {"rtt_ms": round(statistics.median(rtts[20:]), 3), "bytes": got, "complete": got == want,
            "cpu_s_per_GiB": round(cpu / (got / (1 << 30)), 2) if pids and got else None,
            "MBps": round(got / wall / 1e6, 1)}


def _engines(tmp):
    """(name, [argv...]) of each engine's processes, with its local SOCKS port."""
    from censorlab import self_signed  # the tests' self-signed certificate maker

    pw = secrets.token_urlsafe(16)
    ss_srv, ss_loc, tr_srv, tr_loc = _free(), _free(), _free(), _free()
    out = [("shadowsocks", ss_loc, [
        ["ss-server", "-s", "127.0.0.1", "-p", str(ss_srv), "-k", pw, "-m", "chacha20-ietf-poly1305", "--no-delay"],
        ["ss-local", "-s", "127.0.0.1", "-p", str(ss_srv), "-b", "127.0.0.1", "-l", str(ss_loc), "-k", pw,
         "-m", "chacha20-ietf-poly1305", "--no-delay"]])]
    self_signed(f"{tmp}/cert.pem", f"{tmp}/key.pem", "bench.example")
    import json

    tls = {"alpn": ["http/1.1"], "reuse_session": True, "session_ticket": False, "curves": ""}
    tcp = {"no_delay": True, "keep_alive": True, "reuse_port": False, "fast_open": False, "fast_open_qlen": 20}
    json.dump({"run_type": "server", "local_addr": "127.0.0.1", "local_port": tr_srv, "remote_addr": "127.0.0.1",
               "remote_port": 9, "password": [pw], "log_level": 3,
               "ssl": dict(tls, cert=f"{tmp}/cert.pem", key=f"{tmp}/key.pem", key_password="", prefer_server_cipher=True,
                           session_timeout=600, plain_http_response="", dhparam=""), "tcp": dict(tcp, prefer_ipv4=True)},
              open(f"{tmp}/ts.json", "w"))
    json.dump({"run_type": "client", "local_addr": "127.0.0.1", "local_port": tr_loc, "remote_addr": "127.0.0.1",
               "remote_port": tr_srv, "password": [pw], "log_level": 3,
               "ssl": dict(tls, verify=True, verify_hostname=True, cert=f"{tmp}/cert.pem", sni="bench.example"),
               "tcp": tcp}, open(f"{tmp}/tc.json", "w"))
    out.append(("trojan", tr_loc, [["trojan", "-c", f"{tmp}/ts.json"], ["trojan", "-c", f"{tmp}/tc.json"]]))
    return out


def run(quick=False, say=print):
    """-> {path: figures}; prints the table."""
    from relayctl.engines import which

    mib, cap = (64, 20.0) if quick else (512, 60.0)
    servers = Servers()
    results = {"direct": measure(servers, 0, [], mib, cap)}
    skipped = {"iodine": "needs a tun device (measured by the netns tests)", "tor": "cannot bootstrap offline",
               "snowflake": "cannot bootstrap offline"}
    with tempfile.TemporaryDirectory(prefix="bench-engines-") as tmp:
        for name, port, argvs in _engines(tmp):
            if not all(which(a[0]) for a in argvs):
                skipped[name] = "not installed"
                continue
            procs = [subprocess.Popen(a, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for a in argvs]
            try:
                deadline = time.monotonic() + 10
                while time.monotonic() < deadline:
                    try:
                        _open(port, servers.echo.getsockname()[1]).close()
                        break
                    except (OSError, AssertionError):
                        time.sleep(0.1)
                results[name] = measure(servers, port, [p.pid for p in procs], mib, cap)
            finally:
                for p in procs:
                    procstat.stop(p)
    servers.close()
    base = results["direct"]["rtt_ms"]
    for r in results.values():
        r["added_rtt_ms"] = round(r["rtt_ms"] - base, 3)
    rows = [("path", "CPU s/GiB (both ends)", "added RTT ms", "RTT ms", "MB/s")]
    for name, r in results.items():
        rows.append((name, "-" if r["cpu_s_per_GiB"] is None else str(r["cpu_s_per_GiB"]), str(r["added_rtt_ms"]),
                     str(r["rtt_ms"]), str(r["MBps"])))
    widths = [max(len(x[i]) for x in rows) for i in range(len(rows[0]))]
    say("")
    say(f"Uplink engines on loopback (issue 18): {mib} MiB down, median of {PINGS - 20} 1-byte round trips")
    for i, row in enumerate(rows):
        say("  ".join(c.ljust(w) for c, w in zip(row, widths)))
        if i == 0:
            say("  ".join("-" * w for w in widths))
    for name, why in skipped.items():
        say(f"{name}: not measured: {why}")
    return {"paths": results, "skipped": skipped, "mib": mib}


if __name__ == "__main__":
    run("--quick" in sys.argv)
