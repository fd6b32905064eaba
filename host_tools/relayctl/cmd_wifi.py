"""The access point of a Linux board or OpenWrt router.

    relayctl wifi render BOARD [--site site.toml] --out DIR [--uplink-subnet CIDR]...

writes hostapd.conf, dnsmasq.conf (DHCP only), relay.nft and address-plan.txt for a
Linux board, or relay.uci (a `uci batch` script) for OpenWrt (boards run by procd).
MicroPython boards bring up their access point themselves from config.json.
"""

from pathlib import Path

from relayctl import boards, out
from relayctl.errors import CliError
from relayctl.wifi import WifiError, check, render_linux, render_openwrt

_FROM_BOARD = {
    "interface": "wifi.interface", "ssid": "wifi.ssid", "security": "wifi.security", "passphrase": "wifi.passphrase",
    "country": "wifi.country", "channel": "wifi.channel", "max_clients": "wifi.max_clients",
    "address": "wifi.address", "subnet": "wifi.subnet", "portal_port": "relay.portal_port",
    "dns_port": "relay.dns_port", "socks_port": "relay.socks_port", "http_port": "relay.http_port",
}


def add_arguments(p):
    sub = p.add_subparsers(dest="action", metavar="ACTION")
    sub.required = True
    r = sub.add_parser("render", help="write the access point's config files")
    r.add_argument("board", help="board profile, e.g. rpi-4 or gl-mt300n-v2")
    r.add_argument("--site", metavar="FILE", help="site file (site.toml) with the [wifi] settings")
    r.add_argument("--out", metavar="DIR", required=True, help="directory to write into")
    r.add_argument("--uplink-subnet", metavar="CIDR", action="append", default=[],
                   help="the uplink's subnet, to refuse a Wi-Fi subnet that collides with it (repeatable)")


def settings(resolved):
    ap = {}
    for k, key in _FROM_BOARD.items():
        if key in resolved.values and resolved.values[key] not in ("", None):
            ap[k] = resolved.values[key]
        elif key in resolved.values and k == "passphrase":
            ap[k] = ""
    if not ap.get("portal_port"):
        ap.pop("portal_port", None)
    if not ap.get("dns_port"):
        ap.pop("dns_port", None)
    return ap


def run(args):
    r = boards.load_or_fail(args.board, args.site)
    openwrt = r.values.get("linux.service") == "procd"
    if r.values.get("runtime") == "micropython" or "linux.service" not in r.values:
        raise CliError(f"{args.board}: not a Linux board; MicroPython boards bring up their access point "
                       "from config.json (relayctl build)", 2)
    try:
        ap = check(settings(r), args.uplink_subnet)
    except WifiError as e:
        raise CliError("\n".join(e.problems) + f"\n{len(e.problems)} problem(s); nothing written", 2)
    except ValueError as e:
        raise CliError(f"--uplink-subnet: {e}; give a CIDR like 192.168.1.0/24", 2)
    files = render_openwrt(ap) if openwrt else render_linux(ap)
    outdir = Path(args.out)
    try:
        outdir.mkdir(parents=True, exist_ok=True)
        for name, text in files.items():
            (outdir / name).write_text(text)
    except OSError as e:
        raise CliError(f"cannot write {outdir}: {e.strerror}; pick a writable --out", 1)
    out.info(f"wrote {', '.join(sorted(files))} to {outdir} ({'OpenWrt' if openwrt else 'Linux'})")
    return 0
