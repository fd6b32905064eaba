"""What the relay says about itself: snapshot(relay) is the counters, state and heap as one dict (the
status listener's /api/status, the console line, fleet reports, the portal's and admin page's status
part through info()), metrics(d) the same in Prometheus' text format.

Counters only (see proto/stats.py); no client or destination ever appears here.
"""

import gc

from relay import VERSION
from relay.runtime import api as runtime


def snapshot(relay, collect=False):
    runtime.settle()  # the bytes that moved without a Python call are counted first
    d = relay.stats.as_dict()
    d["version"] = VERSION
    d["runtime"] = runtime.NAME
    d["config"] = relay.config_digest  # the config it runs (a reload's once applied): relayctl compares it
    d["io"] = ("fast/" if relay.tunnels.fast else "portable/") + runtime.loop_name()
    if collect:
        gc.collect()
    d["heap_used"] = runtime.heap_used()
    d["rss_kib"] = runtime.rss_kib()
    d["accept_pauses"] = runtime.accept_pauses()
    if relay.mtproto is not None:
        d["mtproto"] = relay.mtproto.as_dict()
    d["uplink"] = relay.uplink.state() if relay.uplink is not None else None
    ups = relay.upstreams
    d["upstreams"] = [{"name": u.label, "healthy": u.healthy, "ms": u.ms, "note": u.note, "tunnels": u.tunnels,
                        "probes": u.probes}
                      for u in ups.list] if ups is not None else []
    if ups is not None and ups.finder is not None:
        d["path"] = ups.finder.state()  # which upstream carries new tunnels now
    d["share"] = relay.sharing.status() if relay.sharing is not None else None
    if relay.mesh is not None:
        d["mesh"] = relay.mesh.status()
    plat = relay.platform  # set by serve(): the board's AP and uplink link
    d["platform"] = plat.state() if plat is not None else None
    fl = relay.fleet  # set by start() when fleet reporting is on
    d["fleet"] = fl.as_dict() if fl is not None else None
    return d


def info(relay, client_ip=None):
    """What the portal's and the admin page's status part shows: the snapshot, the DNS responder's counters,
    the uplink, this phone's share (client_ip), the mesh's carrier."""
    counters = snapshot(relay)
    r = relay.dns_responder
    if r is not None:
        counters["dns"] = {"answered": r.answered, "forwarded": r.forwarded, "cached": r.cached,
                           "refused": r.refused, "dropped": r.dropped}
    up = relay.uplink
    share = relay.sharing.status(client_ip) if relay.sharing is not None else None
    clock = counters["mtproto"]["clock"] if "mtproto" in counters else None
    d = {"people": len(relay.sessions.per_client), "uplink": None if up is None else up.up,
         "since_s": None if up is None else up.state()["since_s"], "share": share, "counters": counters,
         "clock": clock, "path": (counters.get("path") or {}).get("path", False)}  # False: no path finder
    mesh = relay.mesh
    if mesh is not None:  # which relay of the mesh carries the traffic ("": this one)
        d["via"] = mesh.via()
        if up is None and mesh.upstreams is not None:
            d["uplink"] = d["via"] is not None
            d["since_s"] = runtime.ms_since(mesh.changed) // 1000
    return d


_METRICS = (
    # (snapshot key, metric name, type, help)
    ("sessions", "relay_sessions", "gauge", "client connections open now, handshakes included"),
    ("tunnels_open", "relay_tunnels_open", "gauge", "tunnels open now"),
    ("tunnels_total", "relay_tunnels_total", "counter", "tunnels opened since start"),
    ("bytes_up", "relay_bytes_up_total", "counter", "bytes relayed from clients to destinations"),
    ("bytes_down", "relay_bytes_down_total", "counter", "bytes relayed from destinations to clients"),
    ("udp_associations", "relay_udp_associations", "gauge", "UDP associations open now"),
    ("udp_datagrams", "relay_udp_datagrams_total", "counter", "UDP datagrams relayed"),
    ("udp_dropped", "relay_udp_dropped_total", "counter", "UDP datagrams dropped: malformed, refused, too big, unsendable"),
    ("accept_pauses", "relay_accept_pauses_total", "counter", "pauses in accepting: out of descriptors or memory"),
    ("rss_kib", "relay_rss_kib", "gauge", "resident memory of the relay process, KiB"),
    ("heap_used", "relay_heap_used_bytes", "gauge", "MicroPython heap in use"),
)


def metrics(d):
    """Prometheus text exposition of the counters: totals only, no labels that name anyone."""
    out = []
    for key, name, kind, text in _METRICS:
        v = d.get(key)
        if v is None:
            continue
        out.append("# HELP %s %s\n# TYPE %s %s\n%s %s" % (name, text, name, kind, name, v))
    out.append("# HELP relay_refused_total refusals by reason\n# TYPE relay_refused_total counter")
    refused = d.get("refused") or {}
    for reason in sorted(refused):
        out.append('relay_refused_total{reason="%s"} %d' % (reason, refused[reason]))
    up = d.get("uplink")
    if up is not None:
        out.append("# HELP relay_uplink_up 1 while the uplink answers its probes\n# TYPE relay_uplink_up gauge")
        out.append("relay_uplink_up %d" % (1 if up["up"] else 0))
    for i, u in enumerate(d.get("upstreams") or []):
        if i == 0:
            out.append("# HELP relay_upstream_healthy 1 while the upstream answers\n# TYPE relay_upstream_healthy gauge")
        out.append('relay_upstream_healthy{upstream="%s"} %d' % (u["name"], 1 if u["healthy"] else 0))
    sh = d.get("share")
    if sh is not None:
        left = sh.get("budget_left_today")
        if left is not None:
            out.append("# HELP relay_budget_left_today_bytes uplink budget left today\n"
                       "# TYPE relay_budget_left_today_bytes gauge\nrelay_budget_left_today_bytes %d" % left)
        out.append("# HELP relay_share_waiting chunks waiting for their fair share\n"
                   "# TYPE relay_share_waiting gauge\nrelay_share_waiting %d" % sh["waiting"])
    return "\n".join(out) + "\n"
