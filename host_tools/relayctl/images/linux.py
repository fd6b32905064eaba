"""Linux boards: one tar.gz with the firmware tree, config.json, and what keeps the relay running.

The systemd unit runs the relay as a throwaway user (DynamicUser) that may bind ports below 1024
(443 for a public relay), keeps /var/lib/relay (StateDirectory: the MTProto replay filter survives
restarts there) and takes new secrets on `systemctl reload relay` (SIGHUP) without dropping tunnels.

bundle(name, files, r) -> bytes. Raspberry Pi OS gets a systemd unit, OpenWrt
a procd init script, both restarting the relay when it dies; install.sh puts
everything in place. Boards with a radio also get the access point's configs
under wifi/ (relayctl wifi render; `relayctl wifi apply` installs them). Entries are sorted with fixed owner, mode and mtime, and
gzip carries no name or time, so the same inputs give the same bytes.
"""

import gzip
import io
import tarfile

MTIME = 0  # fixed: reproducible archives


def systemd_unit(r):
    p = r["linux.prefix"]
    return f"""[Unit]
Description=Relay: a proxy for phones through an internet shutdown
After=network-online.target
Wants=network-online.target

[Service]
Environment=PYTHONPATH={p}/firmware
# config.json holds secrets: root's alone in {p} (0600). The relay's dynamic user reads a copy in its own
# state directory (under /var/lib/private, root's alone), copied again by `systemctl reload relay` so new
# MTProto secrets (relayctl mtproto rotate) reach the running relay without dropping tunnels.
ExecStartPre=+/bin/sh -c 'install -m 0600 -o "$$(stat -c %%u /var/lib/relay/)" {p}/config.json /var/lib/relay/config.json'
ExecStart={r['linux.python']} -m relay --config /var/lib/relay/config.json
ExecReload=+/bin/sh -c 'install -m 0600 -o "$$(stat -c %%u /var/lib/relay/)" {p}/config.json /var/lib/relay/config.json && kill -HUP $MAINPID'
Restart=always
RestartSec=2
LimitNOFILE={r['capacity.sockets']}
DynamicUser=yes
StateDirectory=relay
AmbientCapabilities=CAP_NET_BIND_SERVICE
NoNewPrivileges=yes
ProtectSystem=strict
ProtectHome=yes

[Install]
WantedBy=multi-user.target
"""


def procd_script(r):
    p = r["linux.prefix"]
    return f"""#!/bin/sh /etc/rc.common
# Relay under procd: respawned whenever it exits.
START=95
STOP=10
USE_PROCD=1

start_service() {{
\tprocd_open_instance relay
\tprocd_set_param command {r['linux.python']} -m relay --config {p}/config.json
\tprocd_set_param env PYTHONPATH={p}/firmware
\tprocd_set_param respawn 3600 2 0
\tprocd_set_param limits nofile="{r['capacity.sockets']} {r['capacity.sockets']}"
\tprocd_set_param stdout 1
\tprocd_set_param stderr 1
\tprocd_close_instance
}}
"""


def install_script(r):
    p = r["linux.prefix"]
    svc = r["linux.service"]
    lines = ["#!/bin/sh", "# Install Relay from this bundle: run as root on the board.", "set -e",
             'cd "$(dirname "$0")"', f"mkdir -p {p}", f"cp -r firmware config.json {p}/",
             f"chmod 600 {p}/config.json",  # cp keeps an older install's mode
             # the optional native MTProto pump, built for this board's Python when it has a compiler (never fails)
             f"sh native/build.sh {p}/firmware/relay/runtime {r['linux.python']} || true"]
    from relayctl.engines.units import install_lines

    lines += install_lines(r)
    if svc == "systemd":
        lines += ["cp relay.service /etc/systemd/system/relay.service", "systemctl daemon-reload",
                  "systemctl enable --now relay.service", 'echo "relay: installed; systemctl status relay"']
    elif svc == "procd":
        lines += ["cp relay.init /etc/init.d/relay", "chmod 755 /etc/init.d/relay", "/etc/init.d/relay enable",
                  "/etc/init.d/relay restart", 'echo "relay: installed; logread -e relay"']
    else:
        lines += [f'echo "relay: copied to {p}; run: PYTHONPATH={p}/firmware {r["linux.python"]} -m relay --config {p}/config.json"']
    return "\n".join(lines) + "\n"


NATIVE_BUILD = """#!/bin/sh
# Build Relay's optional native MTProto pump (relay/runtime/_mtpump.c) for this board's Python: about
# half the CPU per phone on a busy public relay (bench/README.md). It needs a C compiler, Python's headers and OpenSSL's
# (Debian: apt install gcc python3-dev libssl-dev). Without them it says so, and the relay runs MTProto on
# its Python path. A module left by an earlier install goes first: it was built from an older source.
# usage: sh native/build.sh RUNTIME_DIR PYTHON
dir="$1"; py="$2"; here="$(dirname "$0")"
rm -f "$dir"/_mtpump*.so "$dir"/_mtpump*.tmp
skip() { echo "relay: native MTProto pump not built: $1; MTProto runs on the Python path"; exit 0; }
inc="$("$py" -c 'import sysconfig; print(sysconfig.get_paths()["include"])' 2>/dev/null)" || skip "$py did not run"
ext="$("$py" -c 'import sysconfig; print(sysconfig.get_config_var("EXT_SUFFIX") or ".so")')"
cc="${CC:-cc}"
command -v "$cc" >/dev/null 2>&1 || skip "no C compiler (Debian: apt install gcc python3-dev libssl-dev)"
[ -f "$inc/Python.h" ] || skip "no Python headers in $inc (Debian: apt install python3-dev)"
"$cc" -O2 -fPIC -shared -I"$inc" "$here/_mtpump.c" -o "$dir/_mtpump$ext.tmp" -lcrypto 2>/dev/null || {
    rm -f "$dir/_mtpump$ext.tmp"; skip "compiling failed (Debian: apt install libssl-dev)"; }
mv "$dir/_mtpump$ext.tmp" "$dir/_mtpump$ext"  # whole or not at all: a relay starting meanwhile never loads half
echo "relay: native MTProto pump built"
"""


def native_files():
    """native/: the C source of the MTProto pump and the script install.sh builds it with on the board
    (a module built on this machine would not load on the board's Python)."""
    from relayctl import native

    return {"_mtpump.c": (native.SOURCE.read_bytes(), 0o644), "build.sh": (NATIVE_BUILD.encode(), 0o755)}


def readme(r):
    pk = " ".join(r["linux.packages"]) or "python3"
    return f"""Relay for {r['description']}

Needs: {pk}
Optional: gcc python3-dev libssl-dev (install.sh then builds the native MTProto pump: less CPU per phone)
Install: copy this archive to the board, then
    tar xzf relay-{r.name}.tar.gz && sh relay-{r.name}/install.sh
The relay reads config.json (written by `relayctl build`); change the site
file and build again rather than editing it by hand.
wifi/ holds the access point's configs (`relayctl wifi render`); `relayctl wifi
apply` puts them in place over SSH.
"""


def wifi_files(r):
    """The access point's configs (relayctl wifi render) for a board with a radio, else {}."""
    if not r["wifi.interface"]:
        return {}
    from relayctl.cmd_wifi import settings
    from relayctl.errors import CliError
    from relayctl.wifi import WifiError, check, render_linux, render_openwrt

    try:
        ap = check(settings(r))
    except WifiError as e:
        raise CliError("the Wi-Fi settings fail their check:\n" + "\n".join(e.problems) + "\nfix [wifi] in the site file", 2)
    files = render_openwrt(ap) if r["linux.service"] == "procd" else render_linux(ap)
    from relayctl.mesh import files_for

    files.update(files_for(r, r["linux.service"] == "procd"))  # a relay of a mesh: babeld.conf and the links
    return files


def bundle(files, r):
    """files: {path in firmware/: bytes}; returns the .tar.gz bytes."""
    top = f"relay-{r.name}"
    entries = {f"{top}/firmware/{k}": (v, 0o644) for k, v in files.items() if k != "config.json"}
    entries[f"{top}/config.json"] = (files["config.json"], 0o600)  # passwords and secrets: root's only (flashing.md)
    entries[f"{top}/install.sh"] = (install_script(r).encode(), 0o755)
    for name, (data, mode) in native_files().items():
        entries[f"{top}/native/{name}"] = (data, mode)
    entries[f"{top}/README.txt"] = (readme(r).encode(), 0o644)
    for name, text in wifi_files(r).items():
        entries[f"{top}/wifi/{name}"] = (text.encode(), 0o600)  # hostapd.conf and relay.uci hold the passphrase
    from relayctl.engines.units import bundle_files

    for name, (text, mode) in bundle_files(r).items():  # uplink engines through a censor (uplink.md)
        entries[f"{top}/engines/{name}"] = (text.encode(), mode)
    if r["linux.service"] == "systemd":
        entries[f"{top}/relay.service"] = (systemd_unit(r).encode(), 0o644)
    elif r["linux.service"] == "procd":
        entries[f"{top}/relay.init"] = (procd_script(r).encode(), 0o755)
    dirs = set()
    for name in entries:
        parts = name.split("/")[:-1]
        for i in range(1, len(parts) + 1):
            dirs.add("/".join(parts[:i]))
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name in sorted(dirs | set(entries)):
            info = tarfile.TarInfo(name)
            info.mtime, info.uid, info.gid, info.uname, info.gname = MTIME, 0, 0, "root", "root"
            if name in entries:
                data, info.mode = entries[name]
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
            else:
                info.type, info.mode = tarfile.DIRTYPE, 0o755
                tar.addfile(info)
    out = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=out, mtime=MTIME, compresslevel=9) as gz:
        gz.write(raw.getvalue())
    return out.getvalue()
