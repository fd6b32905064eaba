"""The access point of a Linux board or OpenWrt router.

    relayctl wifi render BOARD [--site site.toml] [--relay NAME] --out DIR [--uplink-subnet CIDR]...
    relayctl wifi apply BOARD --host USER@ADDR [--site site.toml] [--relay NAME] [--remote-root DIR] [ssh options]

render writes hostapd.conf, dnsmasq.conf (DHCP only), relay.nft and address-plan.txt for a
Linux board, or relay.uci (a `uci batch` script) for OpenWrt (boards run by procd).
apply renders the same files, sends them over SSH (an ssh + tar pipe, as `relayctl install`
does: OpenSSH or dropbear) and runs one POSIX sh script on the board as root (`sudo -n` when the
login is not root, as on Raspberry Pi OS): Linux files go to
/etc/hostapd, /etc/dnsmasq.d and /etc/nftables.d, the rules are loaded and hostapd and
dnsmasq restarted; OpenWrt gets `uci batch` and reload_config. With --remote-root the files
land under that directory and the commands that would change the live system are written to
DIR/.relay-wifi-commands instead of run (a dry run; the rules and the DHCP config are still
checked with `nft -c` and `dnsmasq --test` where the board has them).
MicroPython boards bring up their access point themselves from config.json.
With a site [lan] interface the phones' side is that wire (LAN mode: access points in bridge
mode), and no hostapd.conf is written. A relay of a site's [mesh] (--relay, or mesh.relay)
also gets its mesh files (relayctl mesh render), which apply installs and starts: babeld.conf,
mesh-up.sh, relay-mesh.service, mesh.nft (Linux), or mesh.uci (OpenWrt).
"""

import io
import shlex
import subprocess
import tarfile
import time
from pathlib import Path

from relayctl import boards, out
from relayctl.errors import CliError
from relayctl.wifi import WifiError, check, render_linux, render_openwrt

# Runs on the board. $1: root ("" for the live system), $2: the unpacked files, $3: linux or openwrt.
APPLY = r"""
set -e
R="$1"; B="$2"; KIND="$3"
run() { if [ -n "$R" ]; then printf '%s\n' "$*" >> "$R/.relay-wifi-commands"; else sh -c "$*"; fi; }
keep() { if [ -f "$1" ] && [ ! -f "$1.before-relay" ]; then cp "$1" "$1.before-relay"; fi; }
# A file with the Wi-Fi passphrase or the mesh key: made anew, never readable by others (cp into an older
# file would keep that file's mode)
put() { rm -f "$2"; (umask 077; cp "$1" "$2"); }
mkdir -p "$R/etc/relay"
cp "$B/address-plan.txt" "$R/etc/relay/address-plan.txt"
if [ "$KIND" = linux ]; then
  mkdir -p "$R/etc/hostapd" "$R/etc/dnsmasq.d" "$R/etc/nftables.d"
  keep "$R/etc/hostapd/hostapd.conf"
  put "$B/hostapd.conf" "$R/etc/hostapd/hostapd.conf"
  cp "$B/dnsmasq.conf" "$R/etc/dnsmasq.d/relay.conf"
  cp "$B/relay.nft" "$R/etc/nftables.d/relay.nft"
  touch "$R/etc/nftables.conf"
  grep -q '^include "/etc/nftables.d/relay.nft"' "$R/etc/nftables.conf" ||     echo 'include "/etc/nftables.d/relay.nft"' >> "$R/etc/nftables.conf"
  if [ -n "$R" ] && [ "$(id -u)" = 0 ] && command -v nft >/dev/null; then nft -c -f "$R/etc/nftables.d/relay.nft"; fi
  if [ -n "$R" ] && command -v dnsmasq >/dev/null; then dnsmasq --test --conf-file="$R/etc/dnsmasq.d/relay.conf" 2>/dev/null; fi
  run nft -f /etc/nftables.d/relay.nft
  run systemctl unmask hostapd
  run systemctl enable nftables hostapd dnsmasq
  run systemctl restart hostapd dnsmasq
  if [ -f "$B/babeld.conf" ]; then  # a relay of a mesh (relayctl mesh render)
    keep "$R/etc/babeld.conf"
    cp "$B/babeld.conf" "$R/etc/babeld.conf"
    cp "$B/mesh-up.sh" "$B/mesh-plan.txt" "$R/etc/relay/"
    if [ -f "$B/wpa_supplicant-mesh.conf" ]; then put "$B/wpa_supplicant-mesh.conf" "$R/etc/relay/wpa_supplicant-mesh.conf"; fi
    cp "$B/mesh.nft" "$R/etc/nftables.d/mesh.nft"
    grep -q '^include "/etc/nftables.d/mesh.nft"' "$R/etc/nftables.conf" || echo 'include "/etc/nftables.d/mesh.nft"' >> "$R/etc/nftables.conf"
    mkdir -p "$R/etc/systemd/system"
    cp "$B/relay-mesh.service" "$R/etc/systemd/system/relay-mesh.service"
    if [ -n "$R" ] && [ "$(id -u)" = 0 ] && command -v nft >/dev/null; then nft -c -f "$R/etc/nftables.d/mesh.nft"; fi
    run systemctl daemon-reload
    run systemctl enable relay-mesh babeld
    run systemctl restart relay-mesh babeld
  fi
else
  put "$B/relay.uci" "$R/etc/relay/relay.uci"
  # Applying twice must not stack lists: drop what an earlier apply made first.
  run "uci -q delete wireless.relay; uci -q delete network.relay; uci -q delete dhcp.relaydhcp; uci -q delete dhcp.relay; uci -q del_list dhcp.@dnsmasq[0].notinterface=relay; for s in \$(uci -q show firewall | sed -n 's/^firewall[.]\(relay[a-z0-9_]*\)=.*/\1/p'); do uci -q delete firewall.\$s; done; true"
  run "uci batch < /etc/relay/relay.uci"
  if [ -f "$B/mesh.uci" ]; then  # a relay of a mesh (relayctl mesh render)
    keep "$R/etc/babeld.conf"
    cp "$B/babeld.conf" "$R/etc/babeld.conf"
    put "$B/mesh.uci" "$R/etc/relay/mesh.uci"
    put "$B/mesh-batman-adv.uci" "$R/etc/relay/mesh-batman-adv.uci"
    cp "$B/mesh-plan.txt" "$R/etc/relay/"
    run "for s in \$(uci -q show wireless | sed -n 's/^wireless[.]\(relaymesh[a-z0-9_]*\)=.*/\1/p'); do uci -q delete wireless.\$s; done; for s in \$(uci -q show network | sed -n 's/^network[.]\(relaymesh[a-z0-9_]*\)=.*/\1/p'); do uci -q delete network.\$s; done; for s in \$(uci -q show firewall | sed -n 's/^firewall[.]\(relaymesh[a-z0-9_]*\)=.*/\1/p'); do uci -q delete firewall.\$s; done; for s in \$(uci -q show babeld | sed -n 's/^babeld[.]\(relay[a-z0-9_]*\)=.*/\1/p'); do uci -q delete babeld.\$s; done; true"
    run "uci batch < /etc/relay/mesh.uci"
    run "/etc/init.d/babeld enable; /etc/init.d/babeld restart"
  fi
  run reload_config
fi
rm -rf "$B"
echo relay-wifi-ok
"""

_FROM_BOARD = {
    "interface": "wifi.interface", "ssid": "wifi.ssid", "security": "wifi.security", "passphrase": "wifi.passphrase",
    "country": "wifi.country", "channel": "wifi.channel", "max_clients": "wifi.max_clients",
    "address": "wifi.address", "subnet": "wifi.subnet", "portal_port": "relay.portal_port",
    "dns_port": "relay.dns_port", "socks_port": "relay.socks_port", "http_port": "relay.http_port",
    "preset": "policy.preset",
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
    r.add_argument("--relay", metavar="NAME", help="which relay of the site's [mesh] this board is (adds its mesh files)")
    a = sub.add_parser("apply", help="render, push over SSH and apply on the board")
    a.add_argument("board", help="board profile, e.g. rpi-4 or gl-mt300n-v2")
    a.add_argument("--host", metavar="USER@ADDR", required=True, help="the board, reachable over SSH")
    a.add_argument("--site", metavar="FILE", help="site file (site.toml) with the [wifi] settings")
    a.add_argument("--uplink-subnet", metavar="CIDR", action="append", default=[],
                   help="the uplink's subnet, to refuse a Wi-Fi subnet that collides with it (repeatable)")
    a.add_argument("--relay", metavar="NAME", help="which relay of the site's [mesh] this board is (adds its mesh files)")
    a.add_argument("--ssh-port", type=int, help="SSH port on the board (default 22)")
    a.add_argument("--identity", metavar="KEY", help="SSH private key file")
    a.add_argument("--ssh-option", metavar="OPT", action="append", default=[],
                   help="extra ssh -o option, e.g. StrictHostKeyChecking=accept-new (repeatable)")
    a.add_argument("--remote-root", metavar="DIR", default="",
                   help="dry run: write under DIR on the board and list the commands in DIR/.relay-wifi-commands")


def settings(resolved):
    from relayctl.mesh.config import satellite_port

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
    if resolved.values.get("lan.interface"):  # LAN mode: the wire to the access points is the phones' side
        ap["interface"], ap["lan"] = resolved.values["lan.interface"], True
        ap.pop("max_clients", None)
    if satellite_port(resolved):
        ap["mesh_port"] = satellite_port(resolved)
    return ap


def rendered(args):
    """-> ({file name: text}, openwrt?) for the board and site (and its mesh relay's files), or CliError."""
    r = boards.load_or_fail(args.board, args.site, getattr(args, "relay", None))
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
    from relayctl.mesh import files_for

    files.update(files_for(r, openwrt))
    return files, openwrt


def run(args):
    if args.action == "apply":
        return apply(args)
    files, openwrt = rendered(args)
    outdir = write_files(args.out, files)
    out.info(f"wrote {', '.join(sorted(files))} to {outdir} ({'OpenWrt' if openwrt else 'Linux'})")
    return 0


# Rendered files that hold the Wi-Fi passphrase or the mesh key: owner-only wherever they are written.
PRIVATE = ("hostapd.conf", "relay.uci", "wpa_supplicant-mesh.conf", "mesh.uci", "mesh-batman-adv.uci")


def write_files(where, files):
    """Write {name: text} into directory where (made if missing) -> its Path, or CliError."""
    from relayctl import files as fileio

    outdir = Path(where)
    try:
        outdir.mkdir(parents=True, exist_ok=True)
        for name, text in files.items():
            fileio.replace(outdir / name, text, fileio.PRIVATE if name in PRIVATE else 0o644)
    except OSError as e:
        raise CliError(f"cannot write {outdir}: {e.strerror}; pick a writable --out", 1)
    return outdir


def _tar(files):
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:  # plain tar: busybox tar on a router has no gzip need
        for name in sorted(files):
            data = files[name].encode()
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), 0o600 if name in PRIVATE else 0o644
            tar.addfile(info, io.BytesIO(data))
    return raw.getvalue()


def apply(args):
    from relayctl.ssh import as_root, root_error, ssh_argv, ssh_error

    files, openwrt = rendered(args)
    ssh = ssh_argv(args)
    stage = f"/tmp/relay-wifi-{int(time.time())}"
    try:
        r = subprocess.run(ssh + [f"mkdir -p {stage} && tar xf - -C {stage}"], input=_tar(files), capture_output=True,
                           timeout=60)
    except subprocess.TimeoutExpired:
        raise CliError(f"ssh {args.host}: sending the Wi-Fi files took over a minute: a slow or broken link; retry")
    if r.returncode == 255:
        raise ssh_error(args.host, r.stderr.decode(errors="replace"))
    if r.returncode != 0:
        raise CliError(f"{args.host}: unpacking the Wi-Fi files failed ({r.stderr.decode(errors='replace').strip()}): "
                       "the board's /tmp is full or it has no tar; free space and retry")
    root = args.remote_root.rstrip("/")
    kind = "openwrt" if openwrt else "linux"
    r = subprocess.run(ssh + [as_root(f"sh -s -- {shlex.quote(root)} {stage} {kind}")], input=APPLY.encode(),
                       capture_output=True, timeout=120)
    err = r.stderr.decode(errors="replace").strip()
    if r.returncode == 255:
        raise ssh_error(args.host, err)
    if r.returncode not in (0, 255):  # the staged copy holds the site's secrets: never leave it in /tmp
        subprocess.run(ssh + [f"rm -rf {stage}"], capture_output=True, timeout=30)  # the login made it
    if r.returncode != 0 and root_error(args.host, r.returncode, err):
        raise root_error(args.host, r.returncode, err)
    if r.returncode != 0 or b"relay-wifi-ok" not in r.stdout:
        raise CliError(f"{args.host}: applying the Wi-Fi settings failed ({err or 'no message'}): "
                       + ("check that uci and reload_config work (OpenWrt)" if openwrt else
                          "check that hostapd, dnsmasq and nftables are installed (apt install hostapd dnsmasq nftables)"))
    where = f"{args.host}:{root or '/'}"
    out.info(f"applied {', '.join(sorted(files))} on {where} ({'OpenWrt: uci batch' if openwrt else 'Linux'})")
    if root:
        out.info(f"dry run under --remote-root: commands listed in {root}/.relay-wifi-commands, nothing restarted")
    return 0
