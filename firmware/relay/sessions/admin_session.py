"""The admin page's sessions (proto/admin.py decides every answer): one request each, from the status
listener (the wired side) or, where portal.admin_on_wifi lets it, the portal's.
"""

from relay.runtime import api as runtime
from relay.services import status


def admin_for(relay):
    a = relay.admin
    if a is None:
        from relay.proto.admin import Admin

        p = relay.cfg.portal
        a = relay.admin = Admin(p.admin_password, list(p.names) + [p.address], p.admin_on_wifi, p.languages,
                                runtime.now_ms, runtime.ms_since, runtime.random_bytes)
    return a


async def serve_admin(relay, s, head, wifi):
    """One request for the admin page (admin.py decides), from the status listener or the portal's."""
    admin = admin_for(relay)
    await s.conn.send(admin.respond(head, s.client, wifi, lambda: status.info(relay, s.client)))
    if admin.side_closed:
        admin.side_closed = False
        relay.log.warn("admin: many wrong passwords from the %s; password checks from there pause for a while "
                       "(the %s and the console stay open)" % (("Wi-Fi", "wired side") if wifi else
                                                               ("wired side", "Wi-Fi")))
    if admin.restart_requested:
        admin.restart_requested = False
        relay.restart()
