"""config.json for a board: a pure function from a checked profile (and site) to the device's settings.

config_json(resolved) -> dict in the format firmware/relay/config.py reads;
check_config(cfg) runs that module's own load() on it and returns its problems.
Keys the core does not (yet) know are left out rather than guessed, and listed
by skipped_keys(), so the device never sees a key it would refuse.
"""

import json

from relayctl import paths
from relayctl.boards.capacity import estimate


def core_config():
    """firmware/relay/config.py, the device's own checker."""
    return paths.firmware_module("relay.config")


def _core_keys():
    return {k for k, *_ in core_config().SCHEMA}


def _wanted(r):
    """(dotted key, value) pairs the profile and site decide, in a stable order."""
    est = estimate(r)
    micro = r["runtime"] == "micropython"
    has_wifi = bool(r["wifi.interface"])
    host = r["relay.listen"] or r["wifi.address"]
    tunnels = max(est.tunnels, 1)
    sessions = r["capacity.sessions"] or tunnels * 2  # handshakes beside established tunnels
    pairs = [
        ("socks.host", host), ("socks.port", r["relay.socks_port"]),
        ("http.host", host), ("http.port", r["relay.http_port"]),
    ]
    if r["proxy.user"]:
        pairs += [("socks.auth", "password"),
                  ("socks.users", [{"user": r["proxy.user"], "pass": r["proxy.password"]}])]
    if r.site is not None:  # `relayctl run` (no site) keeps the core's own default policy
        pairs.append(("policy.preset", r["policy.preset"]))
    pairs += [
        ("limits.tunnels", tunnels),
        ("limits.tunnels_per_client", min(r["capacity.tunnels_per_client"], tunnels)),
        ("limits.sessions", max(sessions, tunnels)),
        ("limits.udp_associations", r["capacity.udp_associations"]),
        ("limits.buffer", r["capacity.buffer_bytes"]),
        ("limits.backlog", r["capacity.backlog"]),
    ]
    if has_wifi:
        pairs.append(("guard.own", [r["wifi.address"]]))
        if r["relay.portal_port"]:
            pairs += [("portal.enabled", True), ("portal.host", host), ("portal.port", r["relay.portal_port"]),
                      ("portal.address", r["wifi.address"]), ("portal.languages", r["portal.languages"])]
        if r["relay.dns_port"]:
            pairs += [("dns.listen_enabled", True), ("dns.listen_host", host), ("dns.listen_port", r["relay.dns_port"])]
    if r["relay.mtproto_port"]:
        # Secrets: the site's; `relayctl build` adds one when there are none (a config without any would not boot).
        pairs += [("mtproto.enabled", True), ("mtproto.host", host), ("mtproto.port", r["relay.mtproto_port"]),
                  ("mtproto.secrets", list(r["mtproto.secrets"]))]
        if r["ntp.servers"]:
            pairs.append(("ntp.servers", list(r["ntp.servers"])))
        if r["capacity.address_burst"]:
            pairs += [("limits.address_burst", r["capacity.address_burst"]),
                      ("limits.address_rate", r["capacity.address_rate"])]
    if r["relay.public"]:
        pairs += _public(r)
    if has_wifi and not micro:  # zero-tap: relay.nft (relayctl wifi render) redirects allowed TCP to this listener
        pairs += [("transparent.enabled", True), ("transparent.host", host)]
    if has_wifi and micro:  # Linux boards run hostapd instead (relayctl wifi render)
        pairs += [
            ("wifi.enabled", True), ("wifi.ssid", r["wifi.ssid"]), ("wifi.security", r["wifi.security"]),
            ("wifi.passphrase", r["wifi.passphrase"]), ("wifi.country", r["wifi.country"]),
            ("wifi.channel", r["wifi.channel"]),
            ("wifi.max_clients", r["wifi.max_clients"] or r["capacity.wifi_clients"]),
            ("wifi.address", r["wifi.address"]), ("wifi.subnet", r["wifi.subnet"]),
        ]
    if micro:  # the board brings its uplink up itself (firmware/relay/platform); Linux boards render it
        pairs += _uplink(r)
    else:
        pairs += _linux_uplink(r)
        if r.site is not None and r["uplink.engine"]:  # chain through the uplink engines (engines/units.py)
            from relayctl.engines.units import relay_upstream

            pairs += relay_upstream(r)
    if r.site is not None:  # where the admin page answers (`relayctl run`, with no site, keeps the core's: off)
        from relayctl.boards import admin_side

        pairs += admin_side.pairs(r)
    from relayctl.fleet import site as fleet_site

    pairs += fleet_site.pairs(r)  # [fleet]: reports to the volunteers' broker
    from relayctl.mesh.config import pairs as mesh_pairs

    pairs += mesh_pairs(r)  # a relay of a mesh (site [mesh]): later pairs win
    return pairs


PUBLIC_STATE = "/var/lib/relay"  # the systemd unit's StateDirectory: where the replay filter survives restarts


def _public(r):
    """A relay facing the internet: fake-TLS imitating the site's domain, probes passed to the site, a replay
    filter of a million handshakes kept across restarts, the status listener on loopback only (for
    `relayctl status` and `relayctl mtproto rotate`); SOCKS/HTTP only where the site turns them on."""
    pairs = [("mtproto.public", True), ("mtproto.tls_domain", r["mtproto.domain"]), ("mtproto.mask", r["mtproto.mask"]),
             ("mtproto.replay_cache", 1000000), ("mtproto.replay_file", PUBLIC_STATE + "/mtproto-replay"),
             ("status.enabled", True), ("status.host", "127.0.0.1"), ("status.port", 8081),
             ("socks.enabled", r["public.socks"]), ("http.enabled", r["public.http"])]
    if r["mtproto.server"]:
        pairs.append(("mtproto.server", r["mtproto.server"]))
    return pairs


MODEM_STATUS = "/run/relay-modem.json"  # `relayctl uplink watch --status-file` keeps it; the relay only reads it


def _linux_uplink(r):
    """A Linux board's uplink, brought up by NetworkManager, networkd or OpenWrt (relayctl uplink render):
    the relay only names it in its fleet report, and for a modem reads the watcher's file (signal)."""
    kind = r["uplink.kind"]
    if kind not in ("ethernet", "wifi-sta", "cellular"):
        return []  # "" (not chosen yet) or "upstream": the report says so from the upstreams
    pairs = [("uplink.kind", kind)]
    if kind == "cellular":
        pairs.append(("uplink.modem_status", MODEM_STATUS))
    return pairs


# uplink.ports on a MicroPython board: the first word names the chip, then key=value pins, e.g.
# ethernet = "lan8720 mdc=23 mdio=18 power=16 addr=1 clock=gpio0-in", cellular = "uart1 tx=27 rx=26 baud=115200".
_PORT_KEYS = {"ethernet": {"mdc": "lan_mdc", "mdio": "lan_mdio", "power": "lan_power", "addr": "lan_addr",
                           "clock": "lan_clock"},
              "cellular": {"tx": "tx", "rx": "rx", "baud": "baud"}}


def _uplink(r):
    """The site's uplink choice, as config.json's uplink.* for a MicroPython board."""
    kind = r["uplink.kind"] or r["uplink.kinds"][0]
    if kind == "wifi-sta" and r["uplink.ssid"]:
        return [("uplink.kind", kind), ("uplink.ssid", r["uplink.ssid"]), ("uplink.passphrase", r["uplink.passphrase"])]
    pairs = []
    if kind in _PORT_KEYS:
        words = r["uplink.ports"].get(kind, "").split()
        if words and "=" not in words[0]:
            first = words.pop(0)
            if kind == "ethernet":
                pairs.append(("uplink.lan_phy", first.lower()))
            elif first.lower().startswith("uart") and first[4:].isdigit():
                pairs.append(("uplink.uart", int(first[4:])))
        for w in words:
            k, _, v = w.partition("=")
            if k in _PORT_KEYS[kind]:
                pairs.append(("uplink." + _PORT_KEYS[kind][k], int(v) if v.lstrip("-").isdigit() else v))
    if kind == "ethernet":
        return [("uplink.kind", kind)] + pairs
    if kind == "cellular" and r["uplink.apn"]:
        return [("uplink.kind", kind)] + pairs + [
            ("uplink.apn", r["uplink.apn"]), ("uplink.pin", r["uplink.pin"]), ("uplink.user", r["uplink.user"]),
            ("uplink.password", r["uplink.password"]), ("uplink.roaming", r["uplink.roaming"]),
            ("uplink.operator", r["uplink.operator"]), ("uplink.rat", r["uplink.rat"])]
    return []  # upstream only, or nothing chosen yet: the core's default ("none")


def config_json(r):
    known = _core_keys()
    cfg = {}
    for key, value in _wanted(r):
        if key in known:
            sect, name = key.split(".", 1)
            cfg.setdefault(sect, {})[name] = value
    return cfg


def skipped_keys(r):
    known = _core_keys()
    return [k for k, _ in _wanted(r) if k not in known]


def dumps(cfg):
    """The bytes written to config.json: sorted keys, so the same inputs give the same file."""
    return (json.dumps(cfg, indent=1, sort_keys=True, ensure_ascii=False) + "\n").encode("utf-8")


def check_config(cfg):
    """Problems the device itself would report for this config (empty list: it starts)."""
    core = core_config()
    try:
        core.load(dumps(cfg).decode("utf-8"), "config.json")
    except core.ConfigError as e:
        return list(e.problems)
    return []
