"""Install the relay on a Raspberry Pi or an OpenWrt router over SSH, or into a mounted SD card / rootfs.

Input: a Linux build (the bundle from `relayctl build`, or built now) and
`--host USER@ADDR` or `--root DIR`. Over SSH the bundle goes through an
ssh + tar pipe (works with OpenSSH and with OpenWrt's dropbear, which has no
sftp); one POSIX sh script then installs, as root (directly for root@, else
through `sudo -n`: Raspberry Pi OS's first user is a sudoer), under the profile's prefix, puts the
systemd unit or procd init script where the init system looks and enables it
(the same links `systemctl enable` / `/etc/init.d/relay enable` make), and
starts the service. relayctl then waits until the relay's log shows
`relay ready ... config=<hash>` with this build's config hash.
`--root DIR` runs the same script locally into DIR and starts nothing.
"""

import io
import re
import shlex
import subprocess
import tarfile
import time
from pathlib import Path

from relayctl import out
from relayctl.errors import CliError
from relayctl.ssh import as_root, as_root_sh, root_error, ssh_argv, ssh_error

# Runs on the board (busybox ash or bash). $1: root ("" for the live system), $2: unpacked bundle.
SCRIPT = r"""
set -e
R="$1"; B="$2"; P=%(prefix)s
mkdir -p "$R$P"
rm -rf "$R$P/firmware.new"
cp -r "$B/firmware" "$R$P/firmware.new"
rm -rf "$R$P/firmware"
mv "$R$P/firmware.new" "$R$P/firmware"
cp "$B/config.json" "$R$P/config.json.new"
chmod 600 "$R$P/config.json.new"
mv "$R$P/config.json.new" "$R$P/config.json"
if [ -f "$B/relay.service" ]; then
  mkdir -p "$R/etc/systemd/system/multi-user.target.wants"
  cp "$B/relay.service" "$R/etc/systemd/system/relay.service"
  ln -sf /etc/systemd/system/relay.service "$R/etc/systemd/system/multi-user.target.wants/relay.service"
fi
if [ -f "$B/relay.init" ]; then
  mkdir -p "$R/etc/init.d" "$R/etc/rc.d"
  cp "$B/relay.init" "$R/etc/init.d/relay"
  chmod 755 "$R/etc/init.d/relay"
  S=$(sed -n 's/^START=//p' "$B/relay.init"); K=$(sed -n 's/^STOP=//p' "$B/relay.init")
  ln -sf ../init.d/relay "$R/etc/rc.d/S${S:-95}relay"
  ln -sf ../init.d/relay "$R/etc/rc.d/K${K:-10}relay"
fi
if [ -d "$B/engines" ]; then  # uplink engines: configs (0600) and their units, started before the relay
  rm -rf "$R$P/engines"; cp -r "$B/engines" "$R$P/engines"; chmod 700 "$R$P/engines"
  for u in "$B"/engines/*.service; do [ -f "$u" ] || continue; n=$(basename "$u")
    cp "$u" "$R/etc/systemd/system/$n"; ln -sf "/etc/systemd/system/$n" "$R/etc/systemd/system/multi-user.target.wants/$n"
    [ -n "$R" ] || { systemctl daemon-reload; systemctl restart "$n"; }; done
  for u in "$B"/engines/*.init; do [ -f "$u" ] || continue; n=$(basename "$u" .init)
    cp "$u" "$R/etc/init.d/$n"; chmod 755 "$R/etc/init.d/$n"; ln -sf "../init.d/$n" "$R/etc/rc.d/S94$n"
    [ -n "$R" ] || "/etc/init.d/$n" restart; done
fi
rm -rf "$B"
rmdir "$(dirname "$B")" 2>/dev/null || true
if [ -z "$R" ]; then
  command -v %(python)s >/dev/null || { echo "relay-install: %(python)s missing" >&2; exit 3; }
  if [ -f /etc/systemd/system/relay.service ]; then systemctl daemon-reload; systemctl restart relay.service; fi
  if [ -f /etc/init.d/relay ]; then /etc/init.d/relay restart; fi
fi
echo relay-install-ok
"""
# The relay's recent log on the board, where its ready line appears.
LOG = ("if command -v journalctl >/dev/null; then journalctl -u relay -n 200 -o cat --no-pager; "
       "else logread -e relay 2>/dev/null || logread | grep relay; fi")


def add_arguments(p):
    p.add_argument("board", help="board profile, e.g. rpi-4 or gl-mt300n-v2")
    where = p.add_mutually_exclusive_group(required=True)
    where.add_argument("--host", metavar="USER@ADDR", help="the board, reachable over SSH")
    where.add_argument("--root", metavar="DIR", help="install into a mounted SD card or rootfs instead (offline)")
    p.add_argument("--site", metavar="FILE", help="site.toml for the build")
    p.add_argument("--relay", metavar="NAME", help="which relay of the site's [mesh] this board is (mesh.md)")
    p.add_argument("--image", metavar="DIR", help="an existing `relayctl build` output instead of building")
    p.add_argument("--out", metavar="DIR", help="where the build goes (default build/BOARD)")
    p.add_argument("--ssh-port", type=int, help="SSH port on the board (default 22)")
    p.add_argument("--identity", metavar="KEY", help="SSH private key file")
    p.add_argument("--ssh-option", metavar="OPT", action="append", default=[],
                   help="extra ssh -o option, e.g. StrictHostKeyChecking=accept-new (repeatable)")
    p.add_argument("--remote-root", metavar="DIR", default="",
                   help="install under DIR on the board instead of / (nothing is started); for trying it out")
    p.add_argument("--no-boot-check", action="store_true", help="do not wait for the relay's ready line")
    p.add_argument("--boot-timeout", type=float, default=30.0, help="seconds to wait for the ready line")


def bundle(args):
    """(tar.gz bytes, manifest) of a Linux build."""
    from relayctl.flash.manifest import built

    out_dir, manifest = built(args)
    name = manifest.get("bundle")
    if not name:
        raise CliError(f"board {manifest.get('board')} has no Linux bundle: install is for Raspberry Pi and OpenWrt "
                       "boards; flash ESP32 boards with `relayctl flash`")
    import hashlib

    data = (out_dir / name).read_bytes()
    want = (manifest.get("files", {}).get(name) or {}).get("sha256")
    if want and hashlib.sha256(data).hexdigest() != want:
        raise CliError(f"{out_dir / name}: sha256 does not match manifest.json: damaged since the build; build again")
    return data, manifest


def _script(manifest, data):
    """The install script with this bundle's prefix and python filled in."""
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        names = tar.getnames()
        unit = next((n for n in names if n.endswith(("/relay.service", "/relay.init"))), None)
        text = tar.extractfile(unit).read().decode() if unit else ""
    # Both the systemd unit and the procd script name the firmware as PYTHONPATH=PREFIX/firmware
    m = re.search(r"PYTHONPATH=(/\S*)/firmware", text)
    prefix = m.group(1) if m else "/opt/relay"
    py = re.search(r"(?:ExecStart=|command )(\S+) -m relay", text)
    return SCRIPT % {"prefix": shlex.quote(prefix), "python": shlex.quote(py.group(1) if py else "python3")}, \
        names[0].split("/")[0]


def run(args):
    data, manifest = bundle(args)
    script, top = _script(manifest, data)
    if args.root:
        root = Path(args.root).resolve()
        if not root.is_dir():
            raise CliError(f"--root {root}: not a directory; mount the SD card's root partition first")
        tmp = root / ".relay-install"
        with tarfile.open(fileobj=io.BytesIO(data)) as tar:
            tar.extractall(tmp, filter="data")
        r = subprocess.run(["sh", "-s", "--", str(root), str(tmp / top)], input=script, text=True,
                           capture_output=True)
        try:
            tmp.rmdir()
        except OSError:
            pass
        if r.returncode != 0 or "relay-install-ok" not in r.stdout:
            raise CliError(f"install into {root} failed: {r.stderr.strip()}; is the card mounted writable?")
        out.info(f"installed {manifest.get('board')} into {root} (the service starts on the board's next boot)")
        return 0
    ssh = ssh_argv(args)
    stage = f"/tmp/relay-install-{int(time.time())}"
    try:
        r = subprocess.run(ssh + [f"mkdir -p {stage} && tar xzf - -C {stage}"], input=data, capture_output=True,
                           timeout=120)
    except subprocess.TimeoutExpired:
        raise CliError(f"ssh {args.host}: copying the bundle took over 2 minutes: a slow or broken link; retry")
    if r.returncode == 255:
        raise ssh_error(args.host, r.stderr.decode(errors="replace"))
    if r.returncode != 0:
        raise CliError(f"{args.host}: unpacking the bundle failed ({r.stderr.decode(errors='replace').strip()}): "
                       "the board's /tmp is full or has no tar with gzip; free space and retry")
    out.info(f"copied the bundle to {args.host}:{stage}")
    root = args.remote_root.rstrip("/")
    r = subprocess.run(ssh + [as_root(f"sh -s -- {shlex.quote(root)} {stage}/{top}")], input=script.encode(),
                       capture_output=True, timeout=120)
    err = r.stderr.decode(errors="replace").strip()
    if r.returncode == 255:
        raise ssh_error(args.host, err)
    if r.returncode not in (0, 255):  # the staged copy holds the site's secrets: never leave it in /tmp
        subprocess.run(ssh + [f"rm -rf {stage}"], capture_output=True, timeout=30)  # the login made it
    if r.returncode != 0 and root_error(args.host, r.returncode, err):
        raise root_error(args.host, r.returncode, err)
    if r.returncode == 3:
        raise CliError(f"{args.host}: {err}: the board lacks Python; install "
                       f"{' '.join(manifest.get('packages', [])) or 'python3'} (apt or opkg) and retry")
    if r.returncode != 0:
        raise CliError(f"{args.host}: the install script failed ({err}): check free space under the prefix and "
                       "that the board's root filesystem is writable")
    where = f"{args.host}:{root or '/'}"
    out.info(f"installed {manifest.get('board')} on {where}")
    if root or args.no_boot_check:
        if root:
            out.info("installed under --remote-root: nothing started")
        return 0
    want = (manifest.get("config_sha256") or "")[:12]
    deadline = time.monotonic() + args.boot_timeout
    last = ""
    while time.monotonic() < deadline:
        r = subprocess.run(ssh + [as_root_sh(LOG)], capture_output=True, timeout=30)  # the journal: root's or adm's
        last = r.stdout.decode(errors="replace")
        found = re.findall(r"relay ready version=(\S+) config=(\S+)", last)
        if found and found[-1][1] == want:
            out.info(f"relay ready version={found[-1][0]} config={want}")
            return 0
        time.sleep(1)
    raise CliError(f"{args.host}: the relay did not report ready with config {want} within {args.boot_timeout:.0f} s: "
                   "see `journalctl -u relay` (Raspberry Pi) or `logread -e relay` (OpenWrt); the log ends with:\n"
                   + "\n".join(last.strip().splitlines()[-8:]))
