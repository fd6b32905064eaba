"""MTProto bulk for `make bench`: a stand-in Telegram DC, the client, and mtprotoproxy kept on loopback.

The MTProto targets (proto "mtproto" or "mtproto-dd" in targets.py) run only the
bulk scenario, and report it in the same shape as load.py's bulk, so the table puts
the relay's MTProto listener beside its SOCKS5 path and beside mtprotoproxy.

The DC (a child process, `mtproto_load.py dc CAP`, so its CPU is apart)
    speaks the DC side of obfuscated2: reads the proxy's 64-byte header, derives the
    keys (key = header[8:40], iv = header[40:56]; replies keyed from header[8:56]
    reversed), decrypts the request that follows (op D/U and a length N), then
    D  sends N bytes with sendfile(2), then a 16-byte trailer encrypted at stream offset N
    U  drops N bytes with recv(MSG_TRUNC), decrypts the 16-byte trailer that follows at its
       offset and answers (count, trailer ok) encrypted at offset 0.
The client connects to the proxy with an obfuscated2 header for a plain secret
(intermediate transport) or a dd secret (padded intermediate), sends the request,
then moves N bytes the same way (recv MSG_TRUNC / sendfile), and checks the trailer.

Bulk bytes are never encrypted by the client or the DC: AES-CTR output is
indistinguishable from the random bytes they send, and the proxy decrypts and
re-encrypts every byte either way. The trailers, encrypted with the keystream at
the exact offset (CTR can start anywhere), prove that the proxy's two ciphers stayed
aligned over the whole transfer. So the client and the DC cost almost nothing and
the proxy's CPU is what is measured. Transport framing is not written: neither
proxy parses it on the direct path.

mtprotoproxy (PyPI, alexbers; `mtprotoproxy.py` installed as a script) runs under
`mtproto_load.py mtprotoproxy CONFIG DC_PORT`: its Telegram DC tables are replaced
by 127.0.0.1:DC_PORT (or the DC_HOSTS given, loopback addresses), its middle-proxy
mode, time sync, IP discovery and masking are off, and asyncio.open_connection / urllib
are wrapped to refuse any address outside 127.0.0.0/8, so nothing it does leaves loopback.
"""

import atexit
import json
import os
import shutil
import socket
import struct
import subprocess
import sys
import sysconfig
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(ROOT, "host_tools"))

import load  # noqa: E402
import obfs2  # noqa: E402
import procstat  # noqa: E402
from obfs2 import TAG_INTERMEDIATE, TAG_PADDED, TAGS, ctr_at  # noqa: E402

MiB = 1 << 20
REQ = struct.Struct("!cQ")  # op (D download, U upload), byte count
ACK = struct.Struct("!QB")  # bytes the DC got, trailer ok
REQ_OFF = 64  # the request follows the 64-byte header in the client's stream
MAGIC = b"relay-bench-end!"  # 16-byte trailer after the bulk bytes
DC_ID = 2
SECRET = os.urandom(16)  # one per bench run: the proxies are configured with it
DC_LIFETIME = 3600  # the DC child exits by itself after this, whatever happens


def client_header(secret, tag, dc):
    """A client's obfuscated2 header for a proxy secret -> (64 bytes, (enc key, iv), (dec key, iv))."""
    return obfs2.client_header(tag, dc, secret)


def discard(s, n, deadline):
    """load.discard without SO_RCVLOWAT: with it the relay's MTProto path stalled for seconds at a time."""
    return load.discard(s, n, deadline, lowat=False)


# ---------------------------------------------------------------- the DC child


def serve_dc(cap):
    memfd = load.memfd_payload()
    ls = load.listener(128)

    def one(c):
        try:
            c.settimeout(30)
            h = load.recv_exact(c, 64)
            d_key, d_iv = h[8:40], h[40:56]  # proxy -> DC
            rev = h[8:56][::-1]
            e_key, e_iv = rev[:32], rev[32:48]  # DC -> proxy
            dec = ctr_at(d_key, d_iv, 0)
            plain = dec.update(h)
            if plain[56:60] not in TAGS:
                return
            op, n = REQ.unpack(dec.update(load.recv_exact(c, REQ.size)))
            deadline = time.monotonic() + cap
            if op == b"D":
                sent = load.send_file(c, memfd, n, deadline)
                c.setblocking(True)
                c.settimeout(10)
                if sent == n:
                    c.sendall(ctr_at(e_key, e_iv, n).update(MAGIC))
            elif op == b"U":
                c.settimeout(2)
                got = discard(c, n, deadline)
                ok = 0
                c.settimeout(10)
                if got == n:
                    tail = load.recv_exact(c, len(MAGIC))
                    ok = int(ctr_at(d_key, d_iv, REQ_OFF + REQ.size + n).update(tail) == MAGIC)
                c.sendall(ctr_at(e_key, e_iv, 0).update(ACK.pack(got, ok)))
        except OSError as e:
            print("bench DC:", load.err_name(e), e, file=sys.stderr, flush=True)
        load.linger_close(c)

    load.serve_threads(ls, one)
    print(json.dumps({"pid": os.getpid(), "port": ls.getsockname()[1]}), flush=True)
    end = time.monotonic() + DC_LIFETIME
    try:  # the parent closes our stdin (or dies): stop
        while time.monotonic() < end and sys.stdin.buffer.read(1):
            pass
    except OSError:
        pass
    os._exit(0)


class DC:
    """The DC child, one per bench run (the proxies' configs name its port)."""

    def __init__(self, cap=600):
        cmd = [sys.executable, os.path.abspath(__file__), "dc", str(cap)]
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError("the stand-in DC did not start (see stderr above)")
        info = json.loads(line)
        self.pid, self.port = info["pid"], info["port"]

    def stop(self):
        try:
            self.proc.stdin.close()
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


_dc = []


def dc():
    """The run's DC, started on first use and stopped at exit."""
    if not _dc:
        _dc.append(DC())
        atexit.register(_dc[0].stop)
    return _dc[0]


# ---------------------------------------------------------------- targets


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def secret_text(proto):
    return ("dd" if proto == "mtproto-dd" else "") + SECRET.hex()


def relay(runtime, proto):
    """targets.py start function: the relay with its MTProto listener on `port`."""

    def start(port, status_port, workdir):
        from relayctl.cmd_run import relay_command

        path = relay_config(os.path.join(workdir, "relay-mt-%s-%d.json" % (runtime, port)), port, status_port,
                            {"secrets": [secret_text(proto)],
                             "dcs": {str(i): ["127.0.0.1:%d" % dc().port] for i in range(1, 6)}},
                            {"tunnels": 4096, "tunnels_per_client": 4096, "sessions": 8192, "buffer": 262144})
        argv, env = relay_command(runtime, path, [])
        return argv, env, status_port

    return start


def mtprotoproxy_script():
    for d in (sysconfig.get_path("scripts"), os.path.dirname(sys.executable)):
        p = os.path.join(d, "mtprotoproxy.py")
        if os.path.isfile(p):
            return p
    return shutil.which("mtprotoproxy.py")


def mtprotoproxy_missing():
    return None if mtprotoproxy_script() else "mtprotoproxy is not installed (pip install -e '.[bench]')"


def mtprotoproxy(fast=True):
    """targets.py start function: mtprotoproxy on 127.0.0.1:port, its DCs = our DC.

    fast: its FAST_MODE (the default): the header toward the DC reuses the client's key
    material, so DC-to-client bytes pass through with no AES at all."""
    return lambda port, status_port, workdir: _mtprotoproxy(port, workdir, fast)


def _mtprotoproxy(port, workdir, fast):
    path = mtprotoproxy_config(os.path.join(workdir, "mtprotoproxy-%d.py" % port), port, SECRET, FAST_MODE=fast)
    return [sys.executable, os.path.abspath(__file__), "mtprotoproxy", path, str(dc().port)], None, None


def mtprotoproxy_config(path, port, secret, **settings):
    """Write mtprotoproxy's config file: 127.0.0.1:port, one user with secret, no middle proxy,
    no masking, no time sync; settings override (FAST_MODE, TLS_DOMAIN, TLS_ONLY...). -> path"""
    conf = {
        "PORT": port, "USERS": {"bench": secret.hex()}, "AD_TAG": "", "USE_MIDDLE_PROXY": False,
        "PREFER_IPV6": False, "LISTEN_ADDR_IPV4": "127.0.0.1", "LISTEN_ADDR_IPV6": "", "LISTEN_UNIX_SOCK": "",
        "MASK": False, "MASK_HOST": "127.0.0.1", "MASK_PORT": 9, "TLS_DOMAIN": "localhost", "GET_TIME_PERIOD": 0,
        "STATS_PRINT_PERIOD": 3600,
    }
    conf.update(settings)
    with open(path, "w") as f:
        for k, v in conf.items():
            f.write("%s = %r\n" % (k, v))
    return path


def relay_config(path, port, status_port, mtproto, limits):
    """Write the relay's config.json for an MTProto load: loopback only, guard open to 127.0.0.0/8. -> path"""
    cfg = {
        "socks": {"enabled": True, "host": "127.0.0.1", "port": free_port()},  # one listener must be on
        "http": {"enabled": False},
        "status": {"enabled": True, "host": "127.0.0.1", "port": status_port},
        "guard": {"allow": ["127.0.0.0/8"]},
        "limits": limits,
        "mtproto": dict({"enabled": True, "host": "127.0.0.1", "port": port}, **mtproto),
    }
    with open(path, "w") as f:
        json.dump(cfg, f, indent=1)
    return path


def run_mtprotoproxy(conf_path, dc_port, dc_hosts=("127.0.0.1",) * 5):
    """Run mtprotoproxy.py's main() with every outside address replaced or refused.
    dc_hosts: the five DCs' addresses (loopback; the load model gives each DC its own)."""
    import asyncio
    import importlib.util
    import ipaddress
    import urllib.request

    real_open = asyncio.open_connection

    def loopback(host):
        try:
            return ipaddress.ip_address(host).is_loopback
        except ValueError:
            return False  # a name: refused, nothing is resolved

    async def loopback_only(host=None, port=None, **kw):
        if not loopback(host):
            raise OSError("bench: mtprotoproxy tried to reach %s:%s; only loopback addresses are allowed" % (host, port))
        return await real_open(host, port, **kw)

    def no_urlopen(url, *a, **kw):
        raise OSError("bench: mtprotoproxy tried to fetch %s; refused" % url)

    real_start = asyncio.start_server

    async def start_server(*a, loop=None, **kw):  # 1.0.6 passes loop=, gone since Python 3.10
        return await real_start(*a, **kw)

    asyncio.open_connection = loopback_only
    asyncio.streams.IncompleteReadError = asyncio.IncompleteReadError  # its except clauses name it there
    asyncio.start_server = start_server
    urllib.request.urlopen = no_urlopen
    sys.argv = ["mtprotoproxy", conf_path]
    spec = importlib.util.spec_from_file_location("mtprotoproxy", mtprotoproxy_script())
    mp = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mp)
    mp.init_config()
    mp.TG_DATACENTER_PORT = dc_port
    mp.TG_DATACENTERS_V4 = list(dc_hosts)
    mp.TG_DATACENTERS_V6 = list(dc_hosts)
    mp.TG_MIDDLE_PROXIES_V4 = {}
    mp.TG_MIDDLE_PROXIES_V6 = {}
    mp.my_ip_info = {"ipv4": None, "ipv6": None}  # init_ip_info() (ident.me, icanhazip) is never called
    mp.disable_middle_proxy = True
    # its try_setup_uvloop() sets uvloop's policy, and uvloop 0.23's policy then has no loop for
    # asyncio.get_event_loop(): set one instead (uvloop when installed, as its [uvloop] extra runs)
    try:
        import uvloop

        def setup_loop():
            asyncio.set_event_loop(uvloop.new_event_loop())
        loop_name = "uvloop"
    except ImportError:
        loop_name = "asyncio"

        def setup_loop():
            asyncio.set_event_loop(asyncio.new_event_loop())
    mp.try_setup_uvloop = setup_loop
    assert not mp.config.USE_MIDDLE_PROXY and not mp.config.MASK and not mp.config.GET_TIME_PERIOD
    print("bench: mtprotoproxy %s, DCs %s port %d, crypto %s, loop %s" % (
        mp.__file__, ",".join(dc_hosts), dc_port, mp.create_aes_ctr.__qualname__.split(".")[0], loop_name), flush=True)
    mp.main()


# ---------------------------------------------------------------- the client


class MTLoad:
    """The MTProto bulk through one proxy: same result shape as load.Load's bulk."""

    SCENARIOS = ("bulk",)

    def __init__(self, p, target, proxy_port, proxy_pid):
        self.p = p
        self.proto = target.proto
        self.tag = TAG_PADDED if self.proto == "mtproto-dd" else TAG_INTERMEDIATE
        self.mib = p.mt_mp_mib if target.relay_runtime == "micropython" else p.mt_mib
        self.proxy = ("127.0.0.1", proxy_port)
        self.pid = proxy_pid

    def _open(self, op, n):
        h, enc, dec = client_header(SECRET, self.tag, DC_ID)
        s = socket.create_connection(self.proxy, timeout=self.p.op_timeout)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        s.sendall(h + ctr_at(*enc, REQ_OFF).update(REQ.pack(op, n)))
        return s, enc, dec

    def _down(self, n, deadline):
        s, _enc, dec = self._open(b"D", n)
        try:
            s.settimeout(2.0)
            got = discard(s, n, deadline)
            if got != n:
                return got, "short"
            s.settimeout(10)
            tail = ctr_at(*dec, n).update(load.recv_exact(s, len(MAGIC)))
            return got, (None if tail == MAGIC else "trailer mismatch: the stream lost alignment")
        finally:
            s.close()

    def _up(self, n, deadline):
        s, enc, dec = self._open(b"U", n)
        try:
            sent = load.send_file(s, self.memfd, n, deadline)
            s.setblocking(True)
            s.settimeout(max(1.0, deadline - time.monotonic() + 5))
            if sent != n:
                return sent, "short"
            s.sendall(ctr_at(*enc, REQ_OFF + REQ.size + n).update(MAGIC))
            try:
                got, ok = ACK.unpack(ctr_at(*dec, 0).update(load.recv_exact(s, ACK.size)))
            except OSError:
                return sent, "no ack"
            if got != n:
                return got, "short"
            return got, (None if ok else "trailer mismatch: the stream lost alignment")
        finally:
            s.close()

    def bulk(self):
        n = int(self.mib * MiB)
        out = {"mib": self.mib, "proto": self.proto}
        for direction, fn in (("download", self._down), ("upload", self._up)):
            m = procstat.Meter(self.pid, dc().pid).start()
            deadline = time.monotonic() + self.p.cap
            try:
                moved, err = fn(n, deadline)
            except Exception as e:  # noqa: BLE001 -- a broken proxy is a result, not a crash
                moved, err = 0, load.err_name(e) + ": " + str(e)[:100]
            r = m.stop()
            r.update({"bytes": moved, "MBps": round(moved / r["wall_s"] / 1e6, 1),
                      "proxy_cpu_s_per_GiB": load.per_gib(r["proxy_cpu_s"], moved), "error": err})
            out[direction] = r
            time.sleep(0.3)
        return out

    def run(self, scenarios):
        """Run the scenarios this target has (bulk); the others are not MTProto's and are left out."""
        self.memfd = load.memfd_payload()
        out = {}
        try:
            for name in scenarios:
                if name not in self.SCENARIOS:
                    continue
                t = time.monotonic()
                r = getattr(self, name)()
                r["scenario_wall_s"] = round(time.monotonic() - t, 2)
                r["proxy_alive_after"] = procstat.alive(self.pid)
                out[name] = r
        finally:
            os.close(self.memfd)
        return out


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "dc":
        serve_dc(float(sys.argv[2]))
    elif len(sys.argv) == 4 and sys.argv[1] == "mtprotoproxy":
        run_mtprotoproxy(sys.argv[2], int(sys.argv[3]))
    elif len(sys.argv) == 5 and sys.argv[1] == "mtprotoproxy":
        run_mtprotoproxy(sys.argv[2], int(sys.argv[3]), sys.argv[4].split(","))
    else:
        sys.exit("usage: mtproto_load.py dc CAP | mtproto_load.py mtprotoproxy CONFIG DC_PORT [DC_HOSTS] (started by run.py)")
