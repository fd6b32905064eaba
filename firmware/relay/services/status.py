"""The status listener: `GET /api/status` answers the relay's counters as JSON,
`GET /metrics` the same in Prometheus' text format, `POST /api/reload` reads
config.json again (new MTProto secrets without a restart; where no SIGHUP exists), /admin the admin page
(admin.py): this listener is the wired, uplink or loopback side, where the admin page lives by default.

Counters only (see stats.py); no client or destination ever appears here.
Off by default; the portal and `relayctl status` build on it.
"""

import gc
import json

from relay import VERSION, runtime
from relay.proto import httpproxy as H
from relay.proto.addr import in_net, parse_cidr, unmap_v4


def snapshot(relay, collect=False):
    d = relay.stats.as_dict()
    d["version"] = VERSION
    d["runtime"] = runtime.NAME
    d["io"] = ("fast/" if relay.fast else "portable/") + runtime.loop_name()
    if collect:
        gc.collect()
    d["heap_used"] = runtime.heap_used()
    d["rss_kib"] = runtime.rss_kib()
    d["accept_pauses"] = runtime.accept_pauses()
    if getattr(relay, "mtproto", None) is not None:
        d["mtproto"] = relay.mtproto.as_dict()
    d["uplink"] = relay.uplink.state() if relay.uplink is not None else None
    ups = relay.upstreams
    d["upstreams"] = [{"name": u.label, "healthy": u.healthy, "ms": u.ms, "note": u.note, "tunnels": u.tunnels}
                      for u in ups.list] if ups is not None else []
    if ups is not None and ups.finder is not None:
        d["path"] = ups.finder.state()  # which upstream carries new tunnels now
    d["share"] = relay.sharing.status() if relay.sharing is not None else None
    if getattr(relay, "mesh", None) is not None:
        d["mesh"] = relay.mesh.status()
    plat = getattr(relay, "platform", None)  # set by serve(): the board's AP and uplink link
    d["platform"] = plat.state() if plat is not None else None
    fl = getattr(relay, "fleet", None)  # set by start() when fleet reporting is on
    d["fleet"] = fl.as_dict() if fl is not None else None
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
    if len(line) == 3 and line[1].startswith(b"/admin"):
        await serve_admin(relay, s, head, wifi_side(relay, s.client))
        return
    path = line[1] if len(line) == 3 and line[0] == b"GET" else b""
    if len(line) == 3 and line[0] == b"POST" and line[1] == b"/api/reload":
        reload = getattr(relay, "on_reload", None)
        problems = await reload() if reload is not None else ["nothing to reload"]
        body = json.dumps({"reloaded": not problems, "problems": problems}).encode()
        ctype = b"application/json"
    elif path.startswith(b"/api/status"):
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


def wifi_side(relay, ip):
    """Whether ip is one of the phones: in the Wi-Fi's subnet, on a relay that has a Wi-Fi side."""
    c = relay.cfg
    if not (c.wifi.enabled or c.portal.enabled):
        return False
    net = parse_cidr(c.wifi.subnet)
    return net is not None and in_net(unmap_v4(bytes(ip)), net)


def admin_for(relay):
    a = getattr(relay, "admin", None)
    if a is None:
        from relay.proto.admin import Admin

        p = relay.cfg.portal
        a = relay.admin = Admin(p.admin_password, list(p.names) + [p.address], p.admin_on_wifi, p.languages,
                                runtime.now_ms, runtime.ms_since, runtime.random_bytes)
    return a


async def serve_admin(relay, s, head, wifi):
    """One request for the admin page (admin.py decides), from the status listener or the portal's."""
    from relay.sessions.portal_session import info

    admin = admin_for(relay)
    await s.conn.send(admin.respond(head, s.client, wifi, lambda: info(relay, s.client)))
    if admin.side_closed:
        admin.side_closed = False
        relay.log.warn("admin: many wrong passwords from the %s; password checks from there pause for a while "
                       "(the %s and the console stay open)" % (("Wi-Fi", "wired side") if wifi else
                                                               ("wired side", "Wi-Fi")))
    if admin.restart_requested:
        admin.restart_requested = False
        relay.restart()


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
