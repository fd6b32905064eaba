"""The status listener: `GET /api/status` answers the relay's counters as JSON.

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
    if len(line) != 3 or line[0] != b"GET" or not line[1].startswith(b"/api/status"):
        await conn.send(H.error_response(404, "try GET /api/status"))
        return
    body = json.dumps(snapshot(relay, b"gc=1" in line[1])).encode()
    await conn.send(
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nCache-Control: no-store\r\nContent-Length: "
        + str(len(body)).encode()
        + b"\r\nConnection: close\r\n\r\n"
        + body
    )
