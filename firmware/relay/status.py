"""The status listener: `GET /api/status` answers the relay's counters as JSON,
`GET /metrics` the same in Prometheus' text format.

Counters only (see stats.py); no client or destination ever appears here.
Off by default; the portal and `relayctl status` build on it.
"""

import gc
import json

from relay import VERSION, httpproxy as H, runtime


def snapshot(relay, collect=False):
    d = relay.stats.as_dict()
    d["version"] = VERSION
    d["runtime"] = runtime.NAME
    d["io"] = ("fast/" if relay.fast else "portable/") + runtime.loop_name()
    if collect:
        gc.collect()
    d["heap_used"] = runtime.heap_used()
    d["rss_kib"] = runtime.rss_kib()
    if getattr(relay, "mtproto", None) is not None:
        d["mtproto"] = relay.mtproto.as_dict()
    d["uplink"] = relay.uplink.state() if relay.uplink is not None else None
    ups = relay.upstreams
    d["upstreams"] = [{"name": u.label, "healthy": u.healthy} for u in ups.list] if ups is not None else []
    d["share"] = relay.sharing.status() if relay.sharing is not None else None
    if getattr(relay, "mesh", None) is not None:
        d["mesh"] = relay.mesh.status()
    plat = getattr(relay, "platform", None)  # set by serve(): the board's AP and uplink link
    d["platform"] = plat.state() if plat is not None else None
    return d


async def serve_status(relay, s, first):
    conn = s.conn
    reader = H.HeadReader(2048)
    data = first
    while True:
        head = reader.feed(data)
        if head is not None:
            break
        data = await conn.recv()
        if not data:
            return
    line = head.split(b"\r\n", 1)[0].split(b" ")
    path = line[1] if len(line) == 3 and line[0] == b"GET" else b""
    if path.startswith(b"/api/status"):
        body = json.dumps(snapshot(relay, b"gc=1" in path)).encode()
        ctype = b"application/json"
    elif path.startswith(b"/metrics"):
        body = metrics(snapshot(relay)).encode()
        ctype = b"text/plain; version=0.0.4"
    else:
        await conn.send(H.error_response(404, "try GET /api/status or /metrics"))
        return
    await conn.send(
        b"HTTP/1.1 200 OK\r\nContent-Type: " + ctype + b"\r\nCache-Control: no-store\r\nContent-Length: "
        + str(len(body)).encode()
        + b"\r\nConnection: close\r\n\r\n"
        + body
    )


_METRICS = (
    # (snapshot key, metric name, type, help)
    ("sessions", "relay_sessions", "gauge", "client connections open now, handshakes included"),
    ("tunnels_open", "relay_tunnels_open", "gauge", "tunnels open now"),
    ("tunnels_total", "relay_tunnels_total", "counter", "tunnels opened since start"),
    ("bytes_up", "relay_bytes_up_total", "counter", "bytes relayed from clients to destinations"),
    ("bytes_down", "relay_bytes_down_total", "counter", "bytes relayed from destinations to clients"),
    ("udp_associations", "relay_udp_associations", "gauge", "UDP associations open now"),
    ("udp_datagrams", "relay_udp_datagrams_total", "counter", "UDP datagrams relayed"),
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
