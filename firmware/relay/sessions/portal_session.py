"""The onboarding portal's sessions (proto/portal.py): one HTTP request each, from a phone on the Wi-Fi.

make_portal(relay) builds the page's Portal from config (the links, QR codes, languages); serve_portal
answers one request, the admin page included where portal.admin_on_wifi lets it (admin_session.py).
The server opens the listener. No protocol logic lives here.
"""

from relay.proto.portal import Portal, parse_head
from relay.runtime import api as runtime
from relay.services import status
from relay.sessions.request_head import read_request_head


def make_portal(relay):
    cfg = relay.cfg
    p = cfg.portal
    socks = (p.address, cfg.socks.port) if cfg.socks.enabled else None
    if cfg.http.enabled:
        http = (p.address, cfg.http.port)
    else:
        http = socks  # the SOCKS port answers HTTP proxy requests too
    user = password = None
    if cfg.socks.auth == "password" and cfg.socks.users:
        user, password = cfg.socks.users[0][0].decode(), cfg.socks.users[0][1].decode()
    mt = None
    m = cfg.mtproto
    if m.enabled and m.secrets:
        from relay.proto.mtproto import parse_secret

        # The first secret is the one to share: a flashed board's own (relayctl flash puts it first).
        mt = (p.address, m.port, parse_secret(m.secrets[0], m.tls_domain).link_text())
    return Portal(p.address, p.port, p.names, socks, http, user, password, p.languages,
                  _qr(relay, "portal.qr_svg", p.qr_svg), runtime.random_bytes(16), mt,
                  _qr(relay, "portal.qr_mtproto_svg", p.qr_mtproto_svg) if mt else None, cfg.policy.preset)


def _qr(relay, key, path):
    if not path:
        return None
    try:
        return runtime.read_file(path)
    except OSError as e:
        relay.log.warn("%s: cannot read %s: %s; the page shows no QR code for it" % (key, path, e))
        return None


async def serve_portal(relay, s):
    """One request: the portal's page, the PAC file, or the admin page (admin.py decides if it answers)."""
    portal = relay.portal
    head = await read_request_head(s.conn, 4096)  # a phone's request head is well under 1 KB
    if head is None:
        return
    r = parse_head(head)
    if r is not None and (r.path == "/admin" or r.path.startswith("/admin/")):
        from relay.sessions.admin_session import serve_admin

        await serve_admin(relay, s, head, True)  # the portal is the Wi-Fi side: admin.py answers only if the site lets it
        return
    await s.conn.send(portal.respond(head, s.client, lambda ip: status.info(relay, ip)))
