"""The status listener's sessions: `GET /api/status` answers the relay's counters as JSON,
`GET /metrics` the same in Prometheus' text format, `POST /api/reload` reads config.json again (new
MTProto secrets without a restart; where no SIGHUP exists), /admin the admin page (admin_session.py):
this listener is the wired, uplink or loopback side, where the admin page lives by default.

Counters only (services/status.py); no client or destination ever appears here.
Off by default; the portal and `relayctl status` build on it; `relayctl build` turns it on for the wired
side of Linux boards (site admin.side). Bound to 0.0.0.0 it also hears the Wi-Fi: requests from there
(wifi_side) are refused, /admin unless portal.admin_on_wifi. A POST from another site's page (Origin
or Referer not this listener's own host: proto/origin.py) is refused, as the admin page's restart is.
"""

import json

from relay.proto import httpproxy as H
from relay.proto.addr import in_net, parse_cidr, parse_ip, unmap_v4
from relay.proto.origin import from_own_page
from relay.services import status
from relay.sessions.request_head import read_request_head


async def serve_status(relay, s):
    conn = s.conn
    head = await read_request_head(conn, 4096)  # as the portal's: a browser's admin-page head with its cookies fits
    if head is None:
        return
    line = head.split(b"\r\n", 1)[0].split(b" ")
    wifi = wifi_side(relay, s.client, conn.local())
    if len(line) == 3 and line[1].startswith(b"/admin"):
        from relay.sessions.admin_session import serve_admin  # its page and words load only for it

        await serve_admin(relay, s, head, wifi)  # from the Wi-Fi only with portal.admin_on_wifi
        return
    if wifi:
        # Listening on 0.0.0.0 (an uplink address that DHCP may change) reaches the phones' side too:
        # counters and reload are the operator's, asked from the wired side, loopback or the console.
        await conn.send(H.error_response(403, "not from the Wi-Fi: ask from the wired or uplink side or loopback"))
        return
    path = line[1] if len(line) == 3 and line[0] == b"GET" else b""
    if len(line) == 3 and line[0] == b"POST" and line[1] == b"/api/reload":
        p = relay.cfg.portal
        if not from_own_page(head, [n.lower().rstrip(".") for n in list(p.names) + [p.address] if n]):
            # A page the operator happens to visit may not make the relay reload (as the admin page's restart).
            await conn.send(H.error_response(403, "cross-site request refused: reload from relayctl, curl or the "
                                                  "relay's own page"))
            return
        reload = relay.on_reload
        problems = await reload() if reload is not None else ["nothing to reload"]
        body = json.dumps({"reloaded": not problems, "problems": problems}).encode()
        ctype = b"application/json"
    elif path.startswith(b"/api/status"):
        body = json.dumps(status.snapshot(relay, b"gc=1" in path)).encode()
        ctype = b"application/json"
    elif path.startswith(b"/metrics"):
        body = status.metrics(status.snapshot(relay)).encode()
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


def wifi_side(relay, ip, local=None):
    """Whether a request came from the phones' side, on a relay that has one: its client is in the Wi-Fi's
    subnet, or it came in at the relay's own Wi-Fi address (local: (ip, port) of our end where the runtime
    can tell, else None; a phone with an address of its own choosing still arrives there)."""
    c = relay.cfg
    if not (c.wifi.enabled or c.wifi.side or c.portal.enabled):
        return False
    net = parse_cidr(c.wifi.subnet)
    if net is not None and in_net(unmap_v4(bytes(ip)), net):
        return True
    own = parse_ip(c.wifi.address)
    return local is not None and own is not None and unmap_v4(bytes(local[0])) == own
