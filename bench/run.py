#!/usr/bin/env python3
"""`make bench`: the relay beside other proxies, in one run, on 127.0.0.1 only.

    bench/run.py                      every target in targets.TARGETS, 3 interleaved rounds
    bench/run.py --quick              small sizes, 1 round: a smoke run (< 1 min per target)
    bench/run.py --only relay-cpython,pproxy --reps 1
    bench/run.py --scenarios bulk,idle --bulk-mib 256
    bench/run.py --only shaped-cpython,shaped-micropython --shaped-s 5
    bench/run.py --only relay-cpython --scenarios churn --reps 1 --profile   # py-spy, then bench/folded.py
    bench/run.py --only relay-cpython --scenarios churn --reps 1 --strace    # syscalls per connection
    bench/run.py --only relay-cpython,relay-micropython --baseline main      # beside main's relay, same run

For each target it starts the proxy (a fresh process per run), drives the
load of load.py through it and reads the proxy's CPU and memory from /proc.
It prints every figure (median over the rounds, min-max beside it), the
ratios relay/peer and the issue's goals, and writes everything as JSON to
bench/results/ (or --out). Proxy CPU figures are the stable ones; rates
(MB/s, conn/s) depend on who else used the machine's cores, shown as
"others" (cores used outside the benchmark while it ran).

Each target runs the scenarios its row in targets.py names: the proxies the
four of the comparison, the relay with one feature on only bulk and churn
(the "feature cost" table), the shaped-link targets only `shaped` (issue 7:
1 bulk and 9 interactive clients over a 2 MB/s link).
"""

import argparse
import atexit
import json
import os
import platform
import resource
import signal
import socket
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import baseline  # noqa: E402
import load  # noqa: E402
import mtproto_load  # noqa: E402
import phones  # noqa: E402
import procstat  # noqa: E402
from targets import BY_NAME, TARGETS  # noqa: E402

SCENARIOS = ("bulk", "churn", "idle", "fanin", "shaped", "phones")


def _get(*keys):
    def pick(scen):
        d = scen
        for k in keys:
            d = d.get(k) if isinstance(d, dict) else None
        return d if isinstance(d, (int, float)) else None

    return pick


class Figure:
    def __init__(self, key, label, better, pick, only=None, info=False):
        self.key, self.label, self.better, self.pick = key, label, better, pick
        self.only = only  # applies only to targets whose relay_runtime is this
        self.info = info  # shown, but not a figure of merit (rates depend on the machine's load)

    def applies(self, target):
        return self.only is None or target.relay_runtime == self.only


FIGURES = (
    Figure("bulk_down_cpu_s_per_GiB", "bulk download, proxy CPU s/GiB", "lower",
           _get("bulk", "download", "proxy_cpu_s_per_GiB")),
    Figure("bulk_up_cpu_s_per_GiB", "bulk upload, proxy CPU s/GiB", "lower",
           _get("bulk", "upload", "proxy_cpu_s_per_GiB")),
    Figure("churn_cpu_s_per_10k", "churn, proxy CPU s/10k connections", "lower",
           _get("churn", "proxy_cpu_s_per_10k")),
    Figure("idle_rss_kib_per_tunnel", "idle, RSS KiB/tunnel", "lower", _get("idle", "rss_kib_per_tunnel")),
    Figure("fanin_min_over_max", "fan-in min/max per-tunnel rate", "higher", _get("fanin", "fair_min_over_max")),
    Figure("fanin_min_over_median", "fan-in min/median per-tunnel rate", "higher",
           _get("fanin", "fair_min_over_median")),
    Figure("heap_bytes_per_tunnel", "idle, device heap bytes/tunnel", "lower",
           _get("idle", "heap_bytes_per_tunnel"), only="micropython"),
    Figure("bulk_down_MBps", "bulk download MB/s", "higher", _get("bulk", "download", "MBps"), info=True),
    Figure("bulk_up_MBps", "bulk upload MB/s", "higher", _get("bulk", "upload", "MBps"), info=True),
    Figure("churn_conn_per_s", "churn conn/s", "higher", _get("churn", "conn_per_s"), info=True),
    Figure("churn_p50_ms", "churn p50 latency ms", "lower", _get("churn", "p50_ms"), info=True),
    Figure("churn_kernel_share", "churn, share of proxy CPU in the kernel", "lower", _get("churn", "proxy_kernel_share"),
           info=True),
    Figure("fanin_MBps", "fan-in MB/s", "higher", _get("fanin", "MBps"), info=True),
    Figure("fanin_cpu_s_per_GiB", "fan-in proxy CPU s/GiB", "lower", _get("fanin", "proxy_cpu_s_per_GiB"), info=True),
    # no tunnel can finish before the client has issued every write, so min/max >= write
    # loop / wall; a proxy near that floor served the first-written tunnels to the end first
    Figure("fanin_write_loop_s", "fan-in client write loop s", "lower", _get("fanin", "write_loop_s"), info=True),
    Figure("fanin_wall_s", "fan-in wall s", "lower", _get("fanin", "wall_s"), info=True),
    # the shaped link (issue 7): interactive round trips alone and beside a bulk download
    Figure("shaped_p99_x", "shaped: interactive p99 busy/idle", "lower", _get("shaped", "p99_busy_over_idle")),
    Figure("shaped_idle_p50_ms", "shaped: idle p50 ms", "lower", _get("shaped", "idle", "p50_ms"), info=True),
    Figure("shaped_idle_p99_ms", "shaped: idle p99 ms", "lower", _get("shaped", "idle", "p99_ms"), info=True),
    Figure("shaped_busy_p50_ms", "shaped: busy p50 ms", "lower", _get("shaped", "busy", "p50_ms"), info=True),
    Figure("shaped_busy_p99_ms", "shaped: busy p99 ms", "lower", _get("shaped", "busy", "p99_ms"), info=True),
    Figure("shaped_interactive_kept", "shaped: round trips busy/idle", "higher", _get("shaped", "interactive_kept")),
    Figure("shaped_bulk_MBps", "shaped: bulk MB/s (busy)", "higher", _get("shaped", "bulk_MBps"), info=True),
    Figure("shaped_link_use", "shaped: downlink use (of link rate)", "higher", _get("shaped", "link_use_down"),
           info=True),
    Figure("shaped_bulk_share", "shaped: bulk client's byte share", "higher", _get("shaped", "bulk_share"), info=True),
    Figure("shaped_inter_share_min", "shaped: interactive share min", "higher",
           _get("shaped", "interactive_share_min"), info=True),
    Figure("shaped_inter_share_max", "shaped: interactive share max", "higher",
           _get("shaped", "interactive_share_max"), info=True),
    Figure("shaped_cpu_s", "shaped: proxy CPU s (busy phase)", "lower", _get("shaped", "proxy_cpu_s_busy")),
    Figure("shaped_cpu_s_per_GiB", "shaped: proxy CPU s/GiB (busy)", "lower",
           _get("shaped", "proxy_cpu_s_per_GiB_busy")),
    Figure("shaped_heap_start", "shaped: heap_used at start B", "lower", _get("shaped", "heap_start"),
           only="micropython"),
    Figure("shaped_heap_open", "shaped: heap_used, tunnels open B", "lower", _get("shaped", "heap_open"),
           only="micropython"),
    Figure("shaped_heap_busy", "shaped: heap_used, bulk on B", "lower", _get("shaped", "heap_busy"),
           only="micropython"),
)
# issue 16's load model (phones.py); its "added" round trips are set by phones.derive from two targets
FIGURES += tuple(Figure(key, label, better, _get(*path) if isinstance(path, tuple) else (path or (lambda scen: None)),
                        only=only, info=info) for key, label, better, path, info, only in phones.FIGURES)
FIG = {f.key: f for f in FIGURES}
SCENARIO_OF = {"bulk": ("bulk_",), "churn": ("churn_",), "idle": ("idle_", "heap_"), "fanin": ("fanin_",),
               "shaped": ("shaped_",), "phones": ("phones_",)}
GROUPS = (("compare", "Proxy figures"), ("shaped", "Shaped link (issue 7): 1 bulk + 9 interactive clients"),
          ("feature", "Relay with one feature on (bulk and churn only)"),
          ("mtproto", "MTProto bulk (issue 8): obfuscated2 through the proxy to a stand-in DC on loopback"),
          ("phones", "Telegram-like load (issue 16): phones through an MTProto proxy to a stand-in DC"))

# the figures compared between proxies: of merit, not device-only, not of the shaped link
RATIO_KEYS = [f.key for f in FIGURES if not f.info and f.only is None and not f.key.startswith(SCENARIO_OF["shaped"])]

# Ratios printed: (ours, peer). Targets that did not run are left out.
RATIOS = (
    ("relay-cpython", "pproxy"),
    ("relay-cpython", "microsocks"),
    ("relay-cpython", "danted"),
    ("relay-cpython-portable", "pproxy"),
    ("relay-micropython", "pproxy"),
    ("relay-micropython", "microsocks"),
    ("relay-micropython", "danted"),
    ("relay-mtproto-cpython", "relay-cpython"),  # issue 8: MTProto / SOCKS5, same relay, same run
    ("relay-mtproto-cpython", "mtprotoproxy"),
    ("relay-mtproto-cpython", "mtprotoproxy-nofast"),
    ("relay-mtproto-dd-cpython", "mtprotoproxy-dd"),
    ("relay-mtproto-micropython", "relay-micropython"),
) + phones.RATIOS

# The cost of a feature: (feature, target with it on, target with it off, figures).
FEATURE_COSTS = (
    ("shaping (rates 10**12)", "relay-cpython+shaping", "relay-cpython",
     ("bulk_down_cpu_s_per_GiB", "bulk_up_cpu_s_per_GiB", "churn_cpu_s_per_10k")),
    ("policy (messengers)", "relay-cpython+policy", "relay-cpython",
     ("bulk_down_cpu_s_per_GiB", "bulk_up_cpu_s_per_GiB", "churn_cpu_s_per_10k")),
    # the same shaped-link load; shaping off, the sink paces itself at the link rate
    ("shaping, MicroPython 2 MB/s", "shaped-micropython", "unshaped-micropython",
     ("shaped_cpu_s", "shaped_cpu_s_per_GiB", "shaped_heap_start", "shaped_heap_open", "shaped_heap_busy")),
)

# The issues' goals: (target, figure, op, reference, why). reference is a number,
# or (peer, factor): figure(target) op factor * figure(peer), in the same run.
GOALS = (
    ("relay-cpython", "bulk_down_cpu_s_per_GiB", "<=", ("pproxy", 1.0), "issue 2: as good as pproxy"),
    ("relay-cpython", "bulk_up_cpu_s_per_GiB", "<=", ("pproxy", 1.0), "issue 2: as good as pproxy"),
    ("relay-cpython", "churn_cpu_s_per_10k", "<=", ("pproxy", 1.0), "issue 2: as good as pproxy"),
    ("relay-cpython", "idle_rss_kib_per_tunnel", "<=", ("pproxy", 1.0), "issue 2: as good as pproxy"),
    ("relay-cpython", "fanin_min_over_max", ">=", ("pproxy", 1.0), "issue 2: as good as pproxy"),
    ("relay-cpython", "fanin_min_over_max", ">=", 0.6, "issue 2"),
    ("relay-micropython", "heap_bytes_per_tunnel", "<=", 4096, "issue 2: 4 KiB per idle tunnel"),
    ("relay-cpython", "bulk_down_cpu_s_per_GiB", "<=", ("danted", 0.35), "issue 9"),
    ("relay-cpython", "bulk_up_cpu_s_per_GiB", "<=", ("danted", 0.35), "issue 9"),
    ("relay-cpython", "churn_cpu_s_per_10k", "<=", ("microsocks", 0.9), "issue 9"),
    ("relay-cpython", "idle_rss_kib_per_tunnel", "<=", ("pproxy", 0.2), "issue 9"),
    ("relay-cpython", "fanin_min_over_max", ">=", 0.9, "issue 9"),
    ("relay-micropython", "heap_bytes_per_tunnel", "<=", 2048, "issue 9: 2 KiB per idle tunnel"),
    ("relay-micropython", "bulk_down_cpu_s_per_GiB", "<=", 0.6, "issue 9"),
    ("relay-micropython", "bulk_up_cpu_s_per_GiB", "<=", 0.6, "issue 9"),
    ("shaped-cpython", "shaped_p99_x", "<=", 3.0, "issue 7: bulk <= 3x idle p99"),
    ("shaped-cpython-portable", "shaped_p99_x", "<=", 3.0, "issue 7: bulk <= 3x idle p99"),
    ("shaped-micropython", "shaped_p99_x", "<=", 3.0, "issue 7: bulk <= 3x idle p99"),
) + phones.GOALS

FULL = {"bulk_mib": 1024, "churn_total": 20000, "churn_conc": 64, "idle_n": 2000, "idle_hold": 3.0,
        "fanin_n": 500, "fanin_mib": 1.0, "shaped_s": 8.0, "shaped_clients": 9, "shaped_msg": 200,
        "shaped_interval": 0.05, "mt_mib": 256.0, "mt_mp_mib": 64.0, "cap": 60.0, "op_timeout": 10.0,
        "open_conc": 100, "reps": 3}
QUICK = {"bulk_mib": 32, "churn_total": 400, "churn_conc": 16, "idle_n": 100, "idle_hold": 0.5,
         "fanin_n": 20, "fanin_mib": 0.25, "shaped_s": 1.5, "shaped_clients": 9, "shaped_msg": 200,
         "shaped_interval": 0.05, "mt_mib": 16.0, "mt_mp_mib": 4.0, "cap": 15.0, "op_timeout": 5.0,
         "open_conc": 50, "reps": 1}
# issue 16's load model (phones.py): phones, the MicroPython target's phones, seconds of ramp, settle and
# measuring, the mean interval of messages, media download pace (B/s), phones per load process, secret kind
FULL.update(phones=10000, phones_mp=100, phones_ramp=40.0, phones_settle=10.0, phones_measure=60.0, phones_mean=20.0,
            phones_media_rate=262144, phones_per_proc=2500, phones_kind="ee")
QUICK.update(phones=200, phones_mp=50, phones_ramp=4.0, phones_settle=2.0, phones_measure=8.0, phones_mean=20.0,
             phones_media_rate=262144, phones_per_proc=2500, phones_kind="ee")
START_TIMEOUT = 20.0  # seconds a proxy has to listen


def parse_args(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    ap.add_argument("--quick", action="store_true", help="small sizes, 1 round (a smoke run)")
    ap.add_argument("--only", help="comma-separated targets (default: all): " + ", ".join(t.name for t in TARGETS))
    ap.add_argument("--skip", default="", help="comma-separated targets to leave out")
    ap.add_argument("--scenarios", default=",".join(SCENARIOS))
    ap.add_argument("--out", default=os.path.join(HERE, "results"), help="directory for the JSON and proxy logs")
    ap.add_argument("--strace", action="store_true",
                    help="count each relay run's syscalls with strace -c (beside the proxy logs; CPU figures are then void)")
    ap.add_argument("--baseline", metavar="REV",
                    help="also run the relay of commit REV (git archive of its firmware/, outside the repo) beside "
                         "each relay target of the comparison, as NAME@REV, and print both side by side")
    ap.add_argument("--profile", action="store_true",
                    help="record each relay run with py-spy (collapsed stacks beside the proxy logs, for flamegraph.pl or grep; slows the relay a little)")
    ap.add_argument("--engines", action="store_true",
                    help="also the uplink engines' cost (bench/engine_cost.py); on by default without --only")
    for k, v in FULL.items():
        ap.add_argument("--" + k.replace("_", "-"), type=type(v), default=None, help="default %s (quick: %s)" % (v, QUICK[k]))
    a = ap.parse_args(argv)
    base = QUICK if a.quick else FULL
    for k in FULL:
        if getattr(a, k) is None:
            setattr(a, k, base[k])
    names = [n for n in (a.only.split(",") if a.only else [t.name for t in TARGETS]) if n]
    bad = [n for n in names if n not in BY_NAME]
    if bad:
        ap.error("unknown target %s; known: %s" % (", ".join(bad), ", ".join(BY_NAME)))
    skip = set(a.skip.split(","))
    a.targets = [BY_NAME[n] for n in names if n not in skip]
    a.scenario_list = [s for s in a.scenarios.split(",") if s]
    for s in a.scenario_list:
        if s not in SCENARIOS:
            ap.error("unknown scenario %s; known: %s" % (s, ", ".join(SCENARIOS)))
    if not 1 <= a.shaped_clients <= 200:
        ap.error("--shaped-clients: 1 to 200 (their source addresses are 127.0.0.3 and up)")
    if a.phones_kind not in ("ee", "dd", "plain"):
        ap.error("--phones-kind: ee, dd or plain")
    if not 1 <= a.phones <= 500000 or not 1 <= a.phones_mp <= 500000:
        ap.error("--phones, --phones-mp: 1 to 500000")
    phones.configure(a.phones_kind, any(t.start is not None for t in a.targets if t.proto == "phones"))
    return a


def say(*msg):
    print("[bench]", *msg, file=sys.stderr, flush=True)


WANT_NOFILE = 262144  # the load model's 10,000 phones: ~56,000 connections, two descriptors each in the proxy


def raise_nofile():
    """Lift the descriptor limit for us and the processes we start: to the hard limit, and past it
    up to WANT_NOFILE where we may (root)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY:
        hard = 1 << 20
    for want in (max(hard, WANT_NOFILE), hard):
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (want, want))
            break
        except (ValueError, OSError):
            pass
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def listening(port):
    """Is something listening on 127.0.0.1:port? (read from /proc, without connecting)"""
    want = "0100007F:%04X" % port
    try:
        with open("/proc/net/tcp") as f:
            next(f)
            return any(ln.split()[1] == want and ln.split()[3] == "0A" for ln in f)
    except OSError:
        return False


class Proxy:
    """One target's process, started fresh for one run and stopped by its pid."""

    def __init__(self, target, workdir, rep):
        self.target = target
        self.proc = None
        if target.start is None:  # no proxy: the load goes straight to its servers (phones-direct)
            self.port = self.pid = self.status_port = None
            return
        self.port = free_port()
        status = free_port() if target.relay_runtime else None
        argv, env, self.status_port = target.start(self.port, status, workdir)
        self.log_path = os.path.join(workdir, "%s.r%d.log" % (target.name, rep))
        self.log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL, stdout=self.log,
                                     stderr=subprocess.STDOUT, cwd=workdir)
        self.pid = self.proc.pid
        deadline = time.monotonic() + START_TIMEOUT
        ports = [p for p in (self.port, self.status_port) if p]
        while not all(listening(p) for p in ports):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                with open(self.log_path, "rb") as f:
                    tail = f.read()[-800:].decode(errors="replace")
                raise RuntimeError("%s did not listen on 127.0.0.1:%d: %s" % (target.name, self.port, tail.strip()))
            time.sleep(0.05)

    def stop(self):
        if self.proc is None:
            return
        kids = [p for p in procstat.tree(self.pid) if p != self.pid]
        procstat.stop(self.proc)
        for pid in kids:  # children it started, if any outlived it
            if procstat.alive(pid):
                try:
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass
        self.log.close()


def start_observer(a, target, proxy, workdir, rep):
    """py-spy recording the relay (CPython only) while the load runs, or strace counting its syscalls, or None."""
    if a.strace and target.relay_runtime:
        out = os.path.join(workdir, "%s.r%d.strace" % (target.name, rep))
        say("counting syscalls of %s into %s" % (target.name, out))
        spy = subprocess.Popen(["strace", "-f", "-c", "-o", out, "-p", str(proxy.pid)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(0.5)  # attached before the load starts
        return spy
    if not a.profile or target.relay_runtime != "cpython":
        return None
    exe = os.path.join(os.path.dirname(sys.executable), "py-spy")
    if not os.path.exists(exe):
        say("--profile: py-spy is not installed in this venv (pip install py-spy)")
        return None
    out = os.path.join(workdir, "%s.r%d.folded" % (target.name, rep))
    say("profiling %s into %s" % (target.name, out))
    argv = [exe, "record", "--pid", str(proxy.pid), "--output", out, "--format", "raw", "--rate", "250"]
    # BENCH_PROFILE_NATIVE=1 adds C frames (uvloop, the interpreter); py-spy must pause the relay to unwind them
    argv += ["--native"] if os.environ.get("BENCH_PROFILE_NATIVE") else ["--nonblocking"]
    return subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def stop_observer(spy):
    if spy is None:
        return
    spy.send_signal(signal.SIGINT)  # py-spy and strace write their output on SIGINT
    try:
        spy.wait(30)
    except subprocess.TimeoutExpired:
        spy.kill()
        spy.wait()


def relay_status(port):
    """The relay's status page at start (which I/O path and loop it runs), or {}."""
    if not port:
        return {}
    try:
        return load.http_get_json(port, "/api/status")
    except (OSError, RuntimeError, ValueError):
        return {}


def figures_of(target, scen):
    out = {}
    for f in FIGURES:
        out[f.key] = f.pick(scen) if f.applies(target) else None
    return out


def errors_of(scen):
    n = 0
    for r in scen.values():
        if isinstance(r, dict):
            if "error" in r and isinstance(r["error"], str) and "proxy_cpu_s" not in r:
                n += 1
            n += r.get("errors") or 0
            for sub in ("download", "upload"):
                if isinstance(r.get(sub), dict) and r[sub].get("error"):
                    n += 1
    return n


def other_cores(scen):
    vals = []
    for r in scen.values():
        if isinstance(r, dict):
            for d in [r] + [r[k] for k in ("download", "upload") if isinstance(r.get(k), dict)]:
                if isinstance(d.get("other_cores"), (int, float)):
                    vals.append(d["other_cores"])
    return max(vals) if vals else None


def median_of(values):
    vals = [v for v in values if v is not None]
    return statistics.median(vals) if vals else None


def fmt(v):
    if v is None:
        return "-"
    if isinstance(v, int) or abs(v) >= 100:
        return "%.0f" % v
    if abs(v) >= 10:
        return "%.1f" % v
    return "%.3g" % v


def table(rows):
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = []
    for n, r in enumerate(rows):
        lines.append("  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths))))
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def summarise(a, runs):
    """runs: target name -> list of per-run dicts. -> medians, ratios, goals."""
    med, spread = {}, {}
    for name, rs in runs.items():
        med[name], spread[name] = {}, {}
        for f in FIGURES:
            vals = [r["figures"][f.key] for r in rs if r["figures"].get(f.key) is not None]
            med[name][f.key] = median_of(vals)
            spread[name][f.key] = (min(vals), max(vals)) if vals else None
        med[name]["errors"] = sum(r["errors"] for r in rs)
        med[name]["io"] = ",".join(sorted({r["io"] for r in rs if r.get("io")})) or None
        med[name]["other_cores_max"] = max([r["other_cores"] for r in rs if r["other_cores"] is not None] or [0])
    phones.derive(med, list(med))
    ratios = {}
    for ours, peer in RATIOS:
        if ours in med and peer in med:
            ratios[ours + "/" + peer] = {
                f.key: (round(med[ours][f.key] / med[peer][f.key], 3)
                        if med[ours].get(f.key) is not None and med[peer].get(f.key) else None)
                for f in FIGURES if f.key in RATIO_KEYS}
    costs = []
    for feature, on, off, keys in FEATURE_COSTS:
        if on not in med or off not in med:
            continue
        for key in keys:
            v_on, v_off = med[on].get(key), med[off].get(key)
            if v_on is None or v_off is None:
                continue
            costs.append({"feature": feature, "on": on, "off": off, "figure": key, "value_on": v_on,
                          "value_off": v_off, "on_over_off": round(v_on / v_off, 3) if v_off else None,
                          "on_minus_off": round(v_on - v_off, 3)})
    goals = []
    for target, key, op, ref, why in GOALS:
        if target not in med or med[target].get(key) is None:
            continue
        value = med[target][key]
        if isinstance(ref, tuple):
            peer, factor = ref
            if peer not in med or med[peer].get(key) is None:
                continue
            limit = factor * med[peer][key]
            ref_text = "%s x %s (%s)" % (fmt(factor), peer, fmt(med[peer][key]))
        else:
            limit, ref_text = ref, fmt(ref)
        ok = value <= limit if op == "<=" else value >= limit
        goals.append({"target": target, "figure": key, "value": value, "op": op, "limit": limit,
                      "reference": ref_text, "met": ok, "why": why,
                      "margin": round(value / limit, 3) if limit else None})
    return med, spread, ratios, costs, goals


def figure_table(a, names, med, spread, runs_io=True):
    """Rows: the figures any of names has; columns: names."""
    rows = [["figure"] + names]
    for f in FIGURES:
        if not any(med[n].get(f.key) is not None for n in names):
            continue
        row = [f.label]
        for n in names:
            v, mm = med[n].get(f.key), spread[n].get(f.key)
            cell = fmt(v)
            if a.reps > 1 and mm and mm[0] != mm[1]:
                cell += " [%s-%s]" % (fmt(mm[0]), fmt(mm[1]))
            row.append(cell)
        rows.append(row)
    if runs_io:
        rows.append(["relay I/O path (status page)"] + [med[n]["io"] or "-" for n in names])
    rows.append(["errors (all scenarios, all runs)"] + [str(med[n]["errors"]) for n in names])
    rows.append(["others' cores (max; noise flag)"] + [fmt(med[n]["other_cores_max"]) for n in names])
    return table(rows)


def report(a, runs, med, spread, ratios, costs, goals):
    group = {t.name: t.group for t in a.targets}
    for key, title in GROUPS:
        names = [n for n in runs if group[n] == key]
        if not names:
            continue
        print()
        print("%s, median of %d run(s) [min-max]; lower is better except fan-in, shares and rates" % (title, a.reps))
        print(figure_table(a, names, med, spread, runs_io=key != "shaped"))
    if costs:
        print()
        print("Feature cost: figure with the feature on / off (medians; < 1 would be a saving)")
        rows = [["feature", "figure", "off", "on", "on/off", "on-off"]]
        for c in costs:
            rows.append([c["feature"], FIG[c["figure"]].label, fmt(c["value_off"]), fmt(c["value_on"]),
                         fmt(c["on_over_off"]), fmt(c["on_minus_off"])])
        print(table(rows))
    if ratios:
        print()
        print("Ratios ours/peer of the medians (< 1 is better for CPU and memory, > 1 for fan-in)")
        keys = RATIO_KEYS
        rows = [["figure"] + list(ratios)]
        for k in keys:
            if any(ratios[r][k] is not None for r in ratios):
                rows.append([FIG[k].label] + [fmt(ratios[r][k]) for r in ratios])
        print(table(rows))
    if goals:
        print()
        print("Goals")
        rows = [["target", "figure", "value", "goal", "met"]]
        for g in goals:
            rows.append([g["target"], g["figure"], fmt(g["value"]), "%s %s" % (g["op"], g["reference"]),
                         "yes" if g["met"] else "NO (%.2fx)" % g["margin"] if g["margin"] is not None else "NO"])
        print(table(rows))


def report_baseline(a, base, pairs):
    """Each relay target beside its twin from the baseline commit: medians, now/REV, whether the spreads meet."""
    print()
    print("This commit beside %s (%s), median of %d run(s) [min-max]; now/REV < 1 is better except fan-in"
          % (base.rev, base.sha[:10], a.reps))
    rows = [["target", "figure", "now", "@" + base.label, "now/REV", "spreads overlap"]]
    for name, figs in pairs.items():
        for r in figs:
            rows.append([name, FIG[r["figure"]].label, fmt(r["now"]), fmt(r["base"]), fmt(r["ratio"]),
                         {None: "-", True: "yes", False: "NO"}[r["overlap"]]])
    print(table(rows))


def main(argv=None):
    if sys.version_info < (3, 11):
        sys.exit("bench/run.py needs Python 3.11 or later (asyncio.timeout)")
    a = parse_args(argv)
    raise_nofile()
    os.makedirs(a.out, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    workdir = os.path.join(a.out, "bench-" + stamp)
    os.makedirs(workdir, exist_ok=True)
    base = None
    if a.baseline:
        try:
            base = baseline.fetch(a.baseline)
        except baseline.BaselineError as e:
            sys.exit("bench/run.py --baseline %s: %s" % (a.baseline, e))
        atexit.register(base.close)
        a.targets = baseline.twins(base, a.targets)
        say("baseline %s = %s, firmware in %s" % (a.baseline, base.sha, base.firmware))
    skipped = {}
    targets = []
    for t in a.targets:
        why = t.missing()
        if why:
            skipped[t.name] = why
            say("skip %s: %s" % (t.name, why))
        else:
            targets.append(t)
    # each target runs the asked scenarios its row names; one that runs none is left out
    plan = {t.name: [s for s in a.scenario_list if s in t.scenarios] for t in targets}
    targets = [t for t in targets if plan[t.name]]
    runs = {t.name: [] for t in targets}
    t_all = time.monotonic()
    for rep in range(1, a.reps + 1):
        for t in targets:
            if t.once and rep > 1:
                continue
            say("round %d/%d: %s" % (rep, a.reps, t.name))
            t0 = time.monotonic()
            try:
                proxy = Proxy(t, workdir, rep)
            except RuntimeError as e:
                say(str(e))
                runs[t.name].append({"rep": rep, "start_error": str(e), "scenarios": {},
                                     "figures": figures_of(t, {}), "errors": 1, "other_cores": None})
                continue
            spy = start_observer(a, t, proxy, workdir, rep)
            try:
                status = relay_status(proxy.status_port)
                if t.proto == "phones":
                    scen = phones.PhonesLoad(a, t, proxy.port, proxy.pid, proxy.status_port).run(plan[t.name])
                elif t.proto.startswith("mtproto"):
                    scen = mtproto_load.MTLoad(a, t, proxy.port, proxy.pid).run(plan[t.name])
                else:
                    scen = load.Load(a, t.proto, proxy.port, proxy.pid, proxy.status_port, t.load).run(plan[t.name])
            finally:
                stop_observer(spy)
                proxy.stop()
            run = {"rep": rep, "port": proxy.port, "scenarios": scen, "figures": figures_of(t, scen),
                   "errors": errors_of(scen), "other_cores": other_cores(scen),
                   "io": status.get("io") or status.get("runtime"), "version": status.get("version"),
                   "wall_s": round(time.monotonic() - t0, 1)}
            runs[t.name].append(run)
            say("%s done in %.0f s: %s" % (t.name, run["wall_s"], ", ".join(
                "%s=%s" % (k, fmt(v)) for k, v in run["figures"].items() if v is not None and not FIG[k].info)))
            time.sleep(1.0)
    med, spread, ratios, costs, goals = summarise(a, runs)
    report(a, runs, med, spread, ratios, costs, goals)
    pairs = baseline.compare(base, list(runs), med, spread, a.reps) if base else {}
    if pairs:
        report_baseline(a, base, pairs)
    result = {
        "tool": "relay bench/run.py", "started": stamp, "wall_s": round(time.monotonic() - t_all, 1),
        "machine": {"nproc": os.cpu_count(), "kernel": platform.release(), "python": platform.python_version(),
                    "client_loop": "uvloop" if load.uvloop else "asyncio"},
        "params": {k: getattr(a, k) for k in FULL} | {"scenarios": a.scenario_list, "quick": a.quick},
        "targets": {t.name: {"what": t.what, "proto": t.proto, "group": t.group, "load": t.load,
                             "scenarios": plan[t.name], "runs": runs[t.name]} for t in targets},
        "skipped": skipped,
        "figures": {f.key: {"label": f.label, "better": f.better, "info": f.info, "only": f.only} for f in FIGURES},
        "medians": med, "ratios": ratios, "feature_cost": costs, "goals": goals,
        "baseline": {"rev": base.rev, "sha": base.sha, "label": base.label, "pairs": pairs} if base else None,
    }
    if a.engines or not a.only:  # issue 18: each engine's CPU per GiB and added round trip, beside direct
        import engine_cost

        result["engines"] = engine_cost.run(a.quick)
    path = os.path.join(a.out, "bench-%s.json" % stamp)
    with open(path + ".tmp", "w") as f:
        json.dump(result, f, indent=1)
    os.replace(path + ".tmp", path)
    print()
    print("JSON: %s (proxy logs in %s)" % (path, workdir))
    return 0


if __name__ == "__main__":
    sys.exit(main())
