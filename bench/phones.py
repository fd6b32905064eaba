"""Issue 16's load model: N Telegram phones through an MTProto proxy to a stand-in DC, on loopback.

    .venv/bin/python bench/run.py --scenarios phones                 # 10,000 phones, ~2 min per target
    .venv/bin/python bench/run.py --scenarios phones --quick         # 200 phones, ~20 s per target
    .venv/bin/python bench/run.py --scenarios phones --only phones-direct,phones-relay-cpython --phones 2000

Each target runs the same load (phones_client.py: each phone from its own 127.a.b.c, 4-7
connections, a message with a reply every ~20 s each way, ~5 % of the phones downloading
1-5 MiB at --phones-media-rate; phones_dc.py: the DC) with the same secret kind
(--phones-kind, default ee: what a public relay serves). phones-direct is the same load
straight to the DC, with no proxy: the round trips the proxies add are theirs minus its.

Timeline: the phones start spread over --phones-ramp s (each opens its connections in a
burst), downloads start at the ramp's end, then --phones-settle s, then the figures are
taken over --phones-measure s (the window):
    round trip p50/p95/p99   of the messages sent in the window (the phone times its reply)
    added p50/p95/p99        the same minus phones-direct's (same run, same phone count)
    RSS                      the proxy's VmRSS at the window's end; per phone: its growth
                             since before the first phone connected, / phones
    CPU                      proxy CPU s in the window per 1,000 phones per minute
    errors                   phones_client.py's kinds (connect, handshake, closed, no reply,
                             download), summed
On MicroPython the status page's heap_used (after gc) is read before the first phone and every
HEAP_EVERY s in the window: live buffers of the tunnels moving bytes come and go, so the figure per
phone is the median's growth, and the largest reading is shown beside it.

File descriptors: a phone's connection costs the proxy two and the phones and the DC one
each. run.py lifts the limit (as root up to 262144); when it stays lower, the phone count
is cut to what fits and the result says so (`phones_cut`).
"""

import atexit
import json
import math
import os
import resource
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import load  # noqa: E402
import mtproto_load  # noqa: E402
import phones_wire as W  # noqa: E402
import procstat  # noqa: E402

SECRET = os.urandom(16)  # one per bench run
KIND = ["ee"]  # the secret kind of every target (configure() sets it before any starts)
PROXIED = [True]  # does any proxy take the load in this run? Then phones-direct runs the proxies' phone count


def configure(kind, proxied):
    """run.py, once its targets are known: the secret kind (--phones-kind), and whether a proxy runs."""
    KIND[0] = kind
    PROXIED[0] = proxied
DOMAIN = "www.example.com"  # the ee secret's domain (nothing resolves or reaches it)
CONNS_PER_PHONE = 5.6  # 4-7 kept open (5.5) plus the downloads' extra ones
START_GRACE = 2.0  # seconds the phone processes have to start before t0
HEAP_EVERY = 10.0  # seconds between heap readings on MicroPython (each makes the relay collect its garbage)
SCENARIO = "phones"


def secret_text(kind):
    if kind == "ee":
        return W.ee_secret_text(SECRET, DOMAIN)
    return ("dd" if kind == "dd" else "") + SECRET.hex()


# ---------------------------------------------------------------- the DC child


class DC:
    def __init__(self):
        fd, self.port_file = tempfile.mkstemp(prefix="relay-bench-dc-")
        os.close(fd)
        os.unlink(self.port_file)
        self.proc = subprocess.Popen([sys.executable, os.path.join(HERE, "phones_dc.py"), self.port_file],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        self.pid = self.proc.pid
        deadline = time.monotonic() + 20
        while not os.path.exists(self.port_file):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the load model's DC did not start (see stderr above)")
            time.sleep(0.05)
        with open(self.port_file) as f:
            self.port = int(f.read())
        os.unlink(self.port_file)

    def ask(self, line):
        try:
            self.proc.stdin.write(line.encode() + b"\n")
            self.proc.stdin.flush()
            answer = self.proc.stdout.readline()
        except OSError as e:
            raise RuntimeError("the load model's DC is gone (%s); see its stderr above" % e) from e
        if not answer:
            raise RuntimeError("the load model's DC is gone (exit status %s); see its stderr above" % self.proc.poll())
        return json.loads(answer)

    def stop(self):
        try:
            self.proc.stdin.close()
        except OSError:
            pass
        procstat.stop(self.proc, 5)


_dc = []


def dc():
    if not _dc:
        _dc.append(DC())
        atexit.register(_dc[0].stop)
    return _dc[0]


# ---------------------------------------------------------------- targets


def relay(runtime, firmware=None):
    """targets.py start function: the relay's MTProto listener, its DCs the load model's. firmware: another
    copy of firmware/ to run (bench/run.py --baseline)."""

    def start(port, status_port, workdir):
        from relayctl.cmd_run import relay_command

        d = dc()
        # replay_cache as boards/public.toml: at the default 4096 the filter is full within the ramp, and a
        # full filter refuses about one real handshake in 3,500 as a replay (seen as handshake errors).
        # limits: a tunnel per phone connection, and a listen queue for a phone's burst while the loop is busy.
        path = mtproto_load.relay_config(
            os.path.join(workdir, "relay-phones-%s-%d.json" % (runtime, port)), port, status_port,
            {"secrets": [secret_text(KIND[0])], "replay_cache": 1000000,
             "dcs": {str(i): ["%s:%d" % (W.DC_ADDRS[i - 1], d.port)] for i in W.DC_IDS}},
            {"tunnels": 100000, "sessions": 100000, "backlog": 4096})
        argv, env = relay_command(runtime, path, [], firmware)
        return argv, env, status_port

    start.phones_runtime = runtime
    return start


def mtprotoproxy():
    """targets.py start function: mtprotoproxy with its defaults (FAST_MODE on), the same secret kind."""

    def start(port, status_port, workdir):
        d = dc()
        kind = KIND[0]
        path = mtproto_load.mtprotoproxy_config(os.path.join(workdir, "mtprotoproxy-phones-%d.py" % port), port,
                                                SECRET, TLS_DOMAIN=DOMAIN, TLS_ONLY=kind == "ee",
                                                SECURE_ONLY=kind != "plain")
        script = os.path.join(HERE, "mtproto_load.py")
        return [sys.executable, script, "mtprotoproxy", path, str(d.port), ",".join(W.DC_ADDRS)], None, None

    return start


# ---------------------------------------------------------------- the run


def _pct(sorted_vals, q):
    if not sorted_vals:
        return None
    return sorted_vals[min(len(sorted_vals) - 1, int(q * len(sorted_vals)))]


def _ms(us):
    return None if us is None else round(us / 1000, 2)


def fit_phones(n, proxied):
    """The phone count the descriptor limit allows: (n, why it was cut or None). A proxy holds two
    descriptors per connection in one process; the phones and the DC are spread over processes."""
    if not proxied:
        return n, None
    lim = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    most = int((lim - 256) / (2 * CONNS_PER_PHONE))
    if n <= most:
        return n, None
    return most, ("the descriptor limit (ulimit -n %d) lets one proxy process hold about %d phones; raise the "
                  "hard limit (ulimit -Hn, LimitNOFILE=) to run %d" % (lim, most, n))


class PhonesLoad:
    """The load model through one target (proxy_port None: straight to the DC)."""

    SCENARIOS = (SCENARIO,)

    def __init__(self, p, target, proxy_port, proxy_pid, status_port=None):
        self.p = p
        self.target = target
        self.port = proxy_port
        self.pid = proxy_pid
        self.status_port = status_port

    def _heap(self):
        if not self.status_port or self.target.relay_runtime != "micropython":
            return None
        try:
            return load.http_get_json(self.status_port, "/api/status?gc=1").get("heap_used")
        except (OSError, RuntimeError, ValueError):
            return None

    def _rss(self):
        return procstat.rss_kib(self.pid) if self.pid else None

    def run(self, scenarios):
        if SCENARIO not in scenarios:
            return {}
        t = time.monotonic()
        r = self.phones()
        r["scenario_wall_s"] = round(time.monotonic() - t, 2)
        r["proxy_alive_after"] = procstat.alive(self.pid) if self.pid else None
        return {SCENARIO: r}

    def phones(self):
        p = self.p
        asked = getattr(p, self.target.load.get("phones_param", "phones"))
        n, cut = fit_phones(asked, PROXIED[0])
        if cut:
            print("[bench] phones: %d, not %d: %s" % (n, asked, cut), file=sys.stderr, flush=True)
        procs = max(1, math.ceil(n / p.phones_per_proc))
        d = dc()
        d.ask("mean %f" % p.phones_mean)
        d.ask("report 0 0")  # restart its counters
        rss0, heap0 = self._rss(), self._heap()
        t0 = time.time() + START_GRACE
        base = {
            "mode": "proxy" if self.port else "direct", "proxy": ["127.0.0.1", self.port], "dc_port": d.port,
            "kind": p.phones_kind, "secret": SECRET.hex(), "domain": DOMAIN, "t0": t0, "ramp": p.phones_ramp,
            "settle": p.phones_settle, "measure": p.phones_measure, "mean": p.phones_mean, "msg_min": 100,
            "msg_max": 2048, "conns_min": 4, "conns_max": 7, "media_min": 1 << 20, "media_max": 5 << 20,
            "media_rate": p.phones_media_rate, "timeout": 10.0,
        }
        media = max(1, round(n * 0.05)) if n >= 20 else 1
        kids = []
        for i in range(procs):
            k0, k1 = n * i // procs, n * (i + 1) // procs
            cfg = dict(base, k0=k0, k1=k1, media=media * (i + 1) // procs - media * i // procs,
                       seed=int.from_bytes(os.urandom(4), "big"))
            kids.append(subprocess.Popen([sys.executable, os.path.join(HERE, "phones_client.py"), json.dumps(cfg)],
                                         stdout=subprocess.PIPE, stdin=subprocess.DEVNULL))
        w0 = t0 + p.phones_ramp + p.phones_settle
        w1 = w0 + p.phones_measure
        time.sleep(max(0.0, w0 - time.time()))
        m = procstat.Meter(self.pid, d.pid).start()
        rss_max = 0
        heaps = []
        next_heap = time.time()
        while time.time() < w1:
            rss_max = max(rss_max, self._rss() or 0)
            if time.time() >= next_heap:
                next_heap += HEAP_EVERY
                h = self._heap()
                if h is not None:
                    heaps.append(h)
            time.sleep(min(2.0, max(0.0, w1 - time.time())))
        win = m.stop()
        rss1 = self._rss()
        rss_max = max(rss_max, rss1 or 0)
        h = self._heap()
        heap1 = None
        if h is not None:
            heaps.append(h)
            heap1 = (sorted(heaps)[len(heaps) // 2], max(heaps))
        outs = []
        for k in kids:
            try:
                out, _ = k.communicate(timeout=60)
                outs.append(json.loads(out) if out else {"errors": {"phones process failed": 1}})
            except (subprocess.TimeoutExpired, ValueError):
                procstat.stop(k)
                outs.append({"errors": {"phones process failed": 1}})
        dcr = d.ask("report %f %f" % (w0, w1))
        return self._result(n, asked, cut, procs, media, outs, dcr, win, rss0, rss1, rss_max, heap0, heap1)

    def _result(self, n, asked, cut, procs, media, outs, dcr, win, rss0, rss1, rss_max, heap0, heap1):
        p = self.p
        sums = {}
        errors = {}
        rtt = []
        for o in outs:
            for k, v in o.items():
                if isinstance(v, (int, float)) and k not in ("ready_s", "download_pace"):
                    sums[k] = sums.get(k, 0) + v
            for k, v in (o.get("errors") or {}).items():
                errors[k] = errors.get(k, 0) + v
            rtt += o.get("rtt_us") or []
        for k in ("bad_header", "bad_packet"):
            if dcr.get(k):
                errors["dc " + k.replace("_", " ")] = dcr[k]
        rtt.sort()
        push = sorted(dcr.get("push_rtt_us") or [])
        wall = win["wall_s"]
        cpu = win["proxy_cpu_s"]
        load_cpu = sum(o.get("cpu_window_s") or 0 for o in outs)
        paces = [o["download_pace"] for o in outs if o.get("download_pace")]
        out = {
            "phones_asked": asked, "phones": n, "phones_cut": cut, "processes": procs, "media_slots": media,
            "kind": p.phones_kind, "phones_up": sums.get("phones_up", 0), "conns_wanted": sums.get("conns_wanted", 0),
            "conns_up": sums.get("conns_up", 0), "conns_at_window": sums.get("conns_at_w0", 0),
            "ready_s": max([o.get("ready_s") or 0 for o in outs] or [0]),
            "window_s": round(wall, 2), "messages": sums.get("pings", 0), "replies": sums.get("replies", 0),
            "messages_per_s": round(sums.get("pings", 0) / wall, 1), "pushes_answered": dcr.get("acks"),
            "p50_ms": _ms(_pct(rtt, 0.50)), "p95_ms": _ms(_pct(rtt, 0.95)), "p99_ms": _ms(_pct(rtt, 0.99)),
            "max_ms": _ms(rtt[-1] if rtt else None), "samples": len(rtt),
            "push_p50_ms": _ms(_pct(push, 0.50)), "push_p99_ms": _ms(_pct(push, 0.99)),
            "downloads": sums.get("downloads", 0),
            "download_MBps": round(sums.get("download_bytes", 0) / wall / 1e6, 2),
            "download_pace": round(sum(paces) / len(paces), 3) if paces else None,
            "dc_stalls": dcr.get("stalls"),
            "proxy_cpu_s": cpu,
            "cpu_s_per_kphone_min": round(cpu / (n / 1000) / (wall / 60), 3) if cpu is not None and n else None,
            "proxy_kernel_share": win.get("proxy_kernel_share"),
            "rss_start_kib": rss0, "rss_kib": rss1, "rss_max_kib": rss_max or None,
            "rss_mib": round(rss_max / 1024, 1) if rss_max else None,
            "rss_kib_per_phone": round((rss1 - rss0) / n, 2) if rss0 and rss1 and n else None,
            "heap_start": heap0, "heap_median": heap1 and heap1[0], "heap_max": heap1 and heap1[1],
            "heap_bytes_per_phone": round((heap1[0] - heap0) / n) if heap0 is not None and heap1 else None,
            "load_cores": round(load_cpu / wall, 3), "dc_cores": round(win["servers_cpu_s"] / wall, 3),
            "proxy_cores": win.get("proxy_cores"), "machine_busy": win["machine_busy"],
            "other_cores": round(max(0.0, win["machine_busy"] * (os.cpu_count() or 1)
                                     - ((cpu or 0) + win["servers_cpu_s"] + win["client_cpu_s"] + load_cpu) / wall), 3),
            "error_kinds": errors, "errors": sum(errors.values()),
        }
        return out


# ---------------------------------------------------------------- figures for run.py

def _load_cores(scen):
    ph = scen.get(SCENARIO)
    if isinstance(ph, dict) and ph.get("load_cores") is not None:
        return round(ph["load_cores"] + ph["dc_cores"], 3)
    return None


# (key, label, better, path in the scenario result or a function of it (None: derive() sets it), info, only)
FIGURES = (
    ("phones_n", "phones: phones with all connections up", "higher", ("phones", "phones_up"), False, None),
    ("phones_n_asked", "phones: phones in the load", "higher", ("phones", "phones"), True, None),
    ("phones_conns", "phones: connections open in the window", "higher", ("phones", "conns_at_window"), True, None),
    ("phones_p50_ms", "phones: message round trip p50 ms", "lower", ("phones", "p50_ms"), True, None),
    ("phones_p95_ms", "phones: message round trip p95 ms", "lower", ("phones", "p95_ms"), True, None),
    ("phones_p99_ms", "phones: message round trip p99 ms", "lower", ("phones", "p99_ms"), True, None),
    ("phones_added_p50_ms", "phones: added round trip p50 ms (- direct)", "lower", None, False, None),
    ("phones_added_p95_ms", "phones: added round trip p95 ms (- direct)", "lower", None, False, None),
    ("phones_added_p99_ms", "phones: added round trip p99 ms (- direct)", "lower", None, False, None),
    ("phones_rss_mib", "phones: proxy RSS MiB (max in window)", "lower", ("phones", "rss_mib"), False, None),
    ("phones_rss_kib_per_phone", "phones: proxy RSS growth KiB/phone", "lower", ("phones", "rss_kib_per_phone"),
     False, None),
    ("phones_cpu", "phones: proxy CPU s per 1,000 phones per minute", "lower", ("phones", "cpu_s_per_kphone_min"),
     False, None),
    ("phones_heap_per_phone", "phones: device heap bytes/phone", "lower", ("phones", "heap_bytes_per_phone"), False,
     "micropython"),
    ("phones_heap_median", "phones: device heap_used in the window, median B", "lower", ("phones", "heap_median"),
     True, "micropython"),
    ("phones_heap_max", "phones: device heap_used in the window, max B", "lower", ("phones", "heap_max"), True,
     "micropython"),
    ("phones_errors", "phones: errors", "lower", ("phones", "errors"), False, None),
    ("phones_msgs_per_s", "phones: messages/s (each with a reply)", "higher", ("phones", "messages_per_s"), True, None),
    ("phones_push_p99_ms", "phones: DC update round trip p99 ms", "lower", ("phones", "push_p99_ms"), True, None),
    ("phones_download_MBps", "phones: media MB/s (downloads done)", "higher", ("phones", "download_MBps"), True, None),
    ("phones_download_pace", "phones: media pace kept (of asked)", "higher", ("phones", "download_pace"), True, None),
    ("phones_ready_s", "phones: s until the last phone was up", "lower", ("phones", "ready_s"), True, None),
    ("phones_proxy_cores", "phones: proxy cores in the window", "lower", ("phones", "proxy_cores"), True, None),
    ("phones_load_cores", "phones: phones + DC cores in the window", "lower", _load_cores, True, None),
)

DIRECT = "phones-direct"


def derive(med, names):
    """Figures that need two targets: a proxy's round trips minus phones-direct's (same phone count)."""
    base = med.get(DIRECT)
    for name in names:
        m = med[name]
        for q in ("p50", "p95", "p99"):
            key = "phones_added_%s_ms" % q
            v, b = m.get("phones_%s_ms" % q), base.get("phones_%s_ms" % q) if base else None
            same_load = base is not None and base.get("phones_n_asked") == m.get("phones_n_asked")  # MicroPython: 100
            m[key] = round(v - b, 2) if name != DIRECT and v is not None and b is not None and same_load else None


GOALS = (
    ("phones-relay-cpython", "phones_n", ">=", 10000, "issue 16: 10,000 phones on one process"),
    ("phones-relay-cpython", "phones_added_p99_ms", "<=", 200, "issue 16: p99 added round trip"),
    ("phones-relay-cpython", "phones_rss_mib", "<=", 256, "issue 16: RSS"),
    ("phones-relay-cpython", "phones_errors", "<=", 0, "issue 16: no errors"),
    ("phones-relay-cpython", "phones_cpu", "<=", ("phones-mtprotoproxy", 0.5), "issue 16: CPU per phone-minute"),
    ("phones-relay-cpython", "phones_rss_kib_per_phone", "<=", ("phones-mtprotoproxy", 0.3), "issue 16: RSS per phone"),
)
RATIOS = (("phones-relay-cpython", "phones-mtprotoproxy"),)
