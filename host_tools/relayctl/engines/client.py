"""The board's side of each engine: its config file and command line, from a checked Engine.

launch(engine, confdir, statedir, paths=which) -> Launch(argv, env, files). Pure: nothing
is written or started here (supervise.py and the systemd/procd units do that). Secrets
go into files readable only by their owner, or the environment (iodine's IODINE_PASS),
never on a command line where `ps` shows them. Log levels are chosen so that no engine
writes a destination or a client address at its default level.
"""

import json

from relayctl.engines import which

# Tor Browser's default Snowflake bridges (its pt_config.json) when this was written; put
# current lines in `bridges` to override them.
SNOWFLAKE_BRIDGES = (
    "snowflake 192.0.2.3:80 2B280B23E1107BB62ABFC40DDCC8824814F80A72 fingerprint=2B280B23E1107BB62ABFC40DDCC8824814F80A72 "
    "url=https://1098762253.rsc.cdn77.org/ fronts=www.cdn77.com,www.phpmyadmin.net "
    "ice=stun:stun.l.google.com:19302,stun:stun.antisip.com:3478,stun:stun.bluesip.net:3478,stun:stun.dus.net:3478,"
    "stun:stun.epygi.com:3478,stun:stun.sonetel.com:3478,stun:stun.uls.co.za:3478,stun:stun.voipgate.com:3478,"
    "stun:stun.voys.nl:3478 utls-imitate=hellorandomizedalpn",
    "snowflake 192.0.2.4:80 8838024498816A039FCBBAB14E6F40A0843051FA fingerprint=8838024498816A039FCBBAB14E6F40A0843051FA "
    "url=https://1098762253.rsc.cdn77.org/ fronts=www.cdn77.com,www.phpmyadmin.net "
    "ice=stun:stun.l.google.com:19302,stun:stun.antisip.com:3478,stun:stun.bluesip.net:3478,stun:stun.dus.net:3478,"
    "stun:stun.epygi.com:3478,stun:stun.sonetel.net:3478,stun:stun.uls.co.za:3478,stun:stun.voipgate.com:3478,"
    "stun:stun.voys.nl:3478 utls-imitate=hellorandomizedalpn",
)


class Launch:
    def __init__(self, argv, env=None, files=None):
        self.argv = argv
        self.env = env or {}  # added to the environment (secrets that must stay off the command line)
        self.files = files or {}  # file name in confdir -> text, written mode 0600


def _bin(name, paths):
    return paths(name) or f"/usr/bin/{name}"


def launch(e, confdir, statedir, paths=which):
    return {"shadowsocks": _shadowsocks, "trojan": _trojan, "tor": _tor, "snowflake": _tor,
            "iodine": _iodine}[e.kind](e, confdir, statedir, paths)


def _shadowsocks(e, confdir, statedir, paths):
    cfg = {"server": e.server, "server_port": e.port, "local_address": "127.0.0.1", "local_port": e.local_port,
           "password": e.password, "method": e.method, "mode": "tcp_only", "timeout": 300, "no_delay": True}
    name = f"{e.name}.json"
    return Launch([_bin("ss-local", paths), "-c", f"{confdir}/{name}"], files={name: json.dumps(cfg, indent=1) + "\n"})


def _trojan(e, confdir, statedir, paths):
    cfg = {
        "run_type": "client", "local_addr": "127.0.0.1", "local_port": e.local_port,
        "remote_addr": e.server, "remote_port": e.port, "password": [e.password],
        "log_level": 2,  # warnings and errors: INFO names every destination
        "ssl": {"verify": e.verify, "verify_hostname": e.verify, "cert": e.ca, "sni": e.sni,
                "alpn": ["h2", "http/1.1"], "reuse_session": True, "session_ticket": False, "curves": ""},
        "tcp": {"no_delay": True, "keep_alive": True, "reuse_port": False, "fast_open": False, "fast_open_qlen": 20},
    }
    name = f"{e.name}.json"
    return Launch([_bin("trojan", paths), "-c", f"{confdir}/{name}"], files={name: json.dumps(cfg, indent=1) + "\n"})


def torrc(e, statedir, paths=which):
    bridges = e.bridges or (list(SNOWFLAKE_BRIDGES) if e.kind == "snowflake" else [])
    lines = [
        f"# Relay uplink engine {e.name}: Tor through {'Snowflake' if e.kind == 'snowflake' else 'bridges'}",
        f"SocksPort 127.0.0.1:{e.local_port}",
        f"DataDirectory {statedir}/{e.name}",
        "UseBridges 1",
    ]
    if e.kind == "snowflake":
        lines.append(f"ClientTransportPlugin snowflake exec {_bin('snowflake-client', paths)}")
    if any(b.split()[0] in ("obfs4", "obfs3", "scramblesuit") for b in bridges):
        lines.append(f"ClientTransportPlugin obfs4 exec {_bin('obfs4proxy', paths)}")
    lines += [f"Bridge {b}" for b in bridges]
    lines += [
        f"SocksTimeout {e.socks_timeout}",  # while not bootstrapped, a CONNECT is refused after this, not held forever
        "Log notice stdout",  # bootstrap progress; notice level never names a destination (SafeLogging)
        "AvoidDiskWrites 1",
    ]
    return "\n".join(lines) + "\n"


def _tor(e, confdir, statedir, paths):
    name = f"{e.name}.torrc"
    return Launch([_bin("tor", paths), "-f", f"{confdir}/{name}"], files={name: torrc(e, statedir, paths)})


def _iodine(e, confdir, statedir, paths):
    argv = [_bin("iodine", paths), "-f"]
    argv += [e.nameserver, e.domain] if e.nameserver else [e.domain]  # no nameserver: /etc/resolv.conf's
    return Launch(argv, env={"IODINE_PASS": e.password})
