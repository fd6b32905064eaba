"""The engines on a Linux board: files for the bundle `relayctl build` writes, and the relay's upstreams.

bundle_files(r) -> {path under the bundle's engines/: (text, mode)}: each engine's config and a
systemd unit (Raspberry Pi OS, Debian) or procd init script (OpenWrt) that keeps it running,
restarting it 10 s after it dies (no faster: a dead far end must not see a flood). Secrets stay in
mode-0600 files (systemd hands them to the engine as credentials). relay_upstream(r) -> the
config.json pairs that chain the relay through them, in the site's order.
"""

from relayctl.engines import client, engines_of, env_file
from relayctl.errors import CliError

STATE = "/var/lib/relay-engine"
# Where Debian and OpenWrt put the programs
BOARD_PATHS = {"tor": "/usr/sbin/tor", "iodine": "/usr/sbin/iodine"}


def _board_path(name):
    return BOARD_PATHS.get(name, f"/usr/bin/{name}")


def relay_upstream(r):
    engines = engines_of(r["uplink.engine"])
    urls, names = [e.upstream_url() for e in engines], [e.name for e in engines]
    if r["uplink.upstream"]:
        urls.append(r["uplink.upstream"])
        names.append("upstream")
    if not engines:
        return []
    return [("upstream.proxies", urls), ("upstream.names", names), ("upstream.probe", r["uplink.probe"])]


def _systemd(e, launch, confdir):
    cred = [f"LoadCredential={name}:{confdir}/{name}" for name in launch.files]
    argv = [a.replace(f"{confdir}/", "${CREDENTIALS_DIRECTORY}/") for a in launch.argv]
    env = [f"EnvironmentFile={confdir}/{e.name}.env"] if launch.env else []
    user = [] if e.kind == "iodine" else ["DynamicUser=yes", f"StateDirectory=relay-engine/{e.name}"]
    return "\n".join([
        "[Unit]", f"Description=Relay uplink engine {e.name} ({e.kind})", "After=network-online.target",
        "Wants=network-online.target", "Before=relay.service", "StartLimitIntervalSec=0", "",
        "[Service]", *cred, *env, "ExecStart=" + " ".join(argv),
        "Restart=always", "RestartSec=10", *user, "", "[Install]", "WantedBy=multi-user.target", ""])


def _procd(e, launch):
    lines = ["#!/bin/sh /etc/rc.common", f"# Relay uplink engine {e.name} ({e.kind}): respawned 10 s after it exits.",
             "START=94", "STOP=11", "USE_PROCD=1", "", "start_service() {",
             f"\tmkdir -p {STATE}/{e.name}", "\tprocd_open_instance",
             "\tprocd_set_param command " + " ".join(launch.argv)]
    if launch.env:
        lines.append("\t. /opt/relay/engines/%s.env" % e.name)
        lines.append("\tprocd_set_param env " + " ".join(f'"{k}=${k}"' for k in launch.env))  # one word each
    lines += ["\tprocd_set_param respawn 3600 10 0", "\tprocd_set_param stdout 1", "\tprocd_set_param stderr 1",
              "\tprocd_close_instance", "}", ""]
    return "\n".join(lines)


def bundle_files(r):
    engines = engines_of(r["uplink.engine"], r.site.path if r.site is not None else None)
    if not engines or r["linux.service"] == "none":
        return {}
    confdir = f"{r['linux.prefix']}/engines"
    out = {}
    for e in engines:
        if getattr(e, "ca", ""):  # a self-signed far end: its certificate travels in the bundle
            pem = f"{e.name}-ca.pem"
            try:
                with open(e.ca, encoding="utf-8") as f:
                    out[pem] = (f.read(), 0o600)
            except (OSError, UnicodeDecodeError) as err:
                raise CliError(f"uplink.engine {e.name}: ca: cannot read {e.ca} ({getattr(err, 'strerror', None) or err}); "
                               "give the far end's certificate (PEM), relative to the site file", 2)
            e.ca = (f"/run/credentials/relay-engine-{e.name}.service/{pem}" if r["linux.service"] == "systemd"
                    else f"{confdir}/{pem}")
        launch = client.launch(e, confdir, STATE, paths=_board_path)
        if getattr(e, "ca", ""):
            launch.files[pem] = out.pop(pem)[0]  # handed to the engine like its config (a credential)
        for name, text in launch.files.items():
            out[name] = (text, 0o600)
        if launch.env:
            out[f"{e.name}.env"] = (env_file(launch.env), 0o600)  # systemd reads it; procd's script sources it
        if r["linux.service"] == "systemd":
            out[f"relay-engine-{e.name}.service"] = (_systemd(e, launch, confdir), 0o644)
        else:
            out[f"relay-engine-{e.name}.init"] = (_procd(e, launch).replace("/opt/relay", r["linux.prefix"]), 0o755)
    return out


def install_lines(r):
    """install.sh lines that put the engines in place and start them (before the relay)."""
    files = bundle_files(r)
    if not files:
        return []
    p = r["linux.prefix"]
    lines = [f"rm -rf {p}/engines", f"cp -r engines {p}/engines", f"chmod 700 {p}/engines"]
    for name in sorted(files):
        if name.endswith(".service"):
            lines += [f"cp engines/{name} /etc/systemd/system/{name}", "systemctl daemon-reload",
                      f"systemctl enable --now {name}"]
        elif name.endswith(".init"):
            svc = name[:-5]
            lines += [f"cp engines/{name} /etc/init.d/{svc}", f"chmod 755 /etc/init.d/{svc}",
                      f"/etc/init.d/{svc} enable", f"/etc/init.d/{svc} restart"]
    return lines
