"""Where a built relay's admin page answers (site key admin.side), as config.json pairs; pure.

The admin page lives on the relay's status listener (firmware sessions/status_session.py), port 8081,
and on the Wi-Fi (the portal's listener) only with portal.admin_on_wifi. Sides:
- "wired": the status listener on 0.0.0.0, i.e. the board's ethernet or uplink side whatever address
  DHCP gives it; the relay itself refuses requests from its Wi-Fi (wifi.side, wifi.subnet, wifi.address)
  and the Wi-Fi's firewall (relay.nft, relay.uci) never opens this port to phones. IPv4 only.
- "loopback": the status listener on 127.0.0.1 (reach it with `ssh -L 8081:127.0.0.1:8081`).
- "wifi": as "wired" where the board has a wired side, and the page on the portal too: its password
  crosses the open air in the clear (HTTP Basic, no TLS) for anyone nearby to read.
- "off": no status listener from this key (a mesh relay still has one on its mesh address).
Default (""): wired on Linux boards, loopback on a public relay (it faces the internet), off on
MicroPython boards (ESP32, Pico W: no wired side, and a listener costs one of their few sockets).
"""

SIDES = ("wired", "loopback", "wifi", "off")
STATUS_PORT = 8081


def side(r):
    """The side the site chose, or the board's default."""
    chosen = r["admin.side"]
    if chosen:
        return chosen
    if r["relay.public"]:
        return "loopback"
    return "off" if r["runtime"] == "micropython" else "wired"


def status_host(r):
    """The status listener's address this key asks for, or None (no listener)."""
    s = side(r)
    if s == "loopback":
        return "127.0.0.1"
    if s == "wired" or (s == "wifi" and r["runtime"] != "micropython"):
        return "0.0.0.0"
    return None


def phones_side(r):
    """Whether the board has a phones' side: its own radio, or LAN mode's wire."""
    return bool(r["wifi.interface"] or r["lan.interface"])


def pairs(r):
    """config.json pairs for the site's admin.side (boards/render.py adds them for a site's build)."""
    if r["relay.public"]:  # _public() keeps the status listener on loopback
        return [("portal.admin_password", r["admin.password"])] if r["admin.password"] else []
    out = []
    host = status_host(r)
    if host is not None:
        out += [("status.enabled", True), ("status.host", host), ("status.port", STATUS_PORT)]
    if phones_side(r):
        # The relay knows its Wi-Fi even where hostapd, not the relay, brings it up (Linux): it refuses
        # that side on a listener bound to every address.
        out += [("wifi.side", True), ("wifi.address", r["wifi.address"]), ("wifi.subnet", r["wifi.subnet"])]
    if side(r) == "wifi":
        out.append(("portal.admin_on_wifi", True))
    if r["admin.password"] and (host is not None or side(r) == "wifi"):
        out.append(("portal.admin_password", r["admin.password"]))  # an ESP32 gets its own at flashing
    return out


def where(cfg):
    """Where a built config.json serves the admin page, in words for `relayctl flash` and the inventory;
    None when nowhere (the caller then stamps no admin password)."""
    st = cfg.get("status") or {}
    portal = cfg.get("portal") or {}
    on_wifi = bool(portal.get("enabled") and portal.get("admin_on_wifi"))
    places = []
    if st.get("enabled"):
        host, port = st.get("host", "127.0.0.1"), st.get("port", STATUS_PORT)
        places.append("http://%s:%s/admin" % ("<the board's wired or uplink address>" if host == "0.0.0.0" else host,
                                              port))
    if on_wifi:
        port = portal.get("port", 80)
        places.append("http://%s%s/admin (over the Wi-Fi: the password crosses the air in the clear)"
                      % (portal.get("address") or portal.get("host"), "" if port == 80 else ":%d" % port))
    return " and ".join(places) or None


def check(r):
    """Problems with the site's admin.side for this board: [(message, warning?)]."""
    if status_host(r) is not None and not r["relay.public"]:
        for key in ("relay.socks_port", "relay.http_port", "relay.portal_port", "relay.dns_port", "relay.mtproto_port"):
            if r[key] == STATUS_PORT:
                return [(f"the admin page's status listener needs port {STATUS_PORT}, which {key} uses: move "
                         f'{key}, or set side = "off"', False)]
    s = r["admin.side"]
    if not s:
        return []
    if r["relay.public"] and s not in ("loopback", "off"):
        return [(f'"{s}" on a public relay puts the admin page on the internet: use "loopback" '
                 "(open it through `ssh -L 8081:127.0.0.1:8081`)", False)]
    if s == "wifi" and not (phones_side(r) and r["relay.portal_port"]):
        return [('"wifi" serves the admin page on the portal, and this board has none (relay.portal_port 0 or no '
                 'Wi-Fi): use "wired" or "loopback"', False)]
    if s == "wifi":
        return [('"wifi": the admin password crosses the open air in the clear (HTTP, no TLS) for anyone nearby '
                 'to read; "wired" keeps it on the cable', True)]
    if s == "wired" and r["runtime"] == "micropython" and (r["uplink.kind"] or r["uplink.kinds"][0]) \
            not in ("ethernet", "wifi-sta"):
        return [(f'{r.name} has no wired side here: its uplink is {r["uplink.kind"] or r["uplink.kinds"][0]}, '
                 'which no laptop reaches; use "off", or "wifi" with its risk', False)]
    return []
