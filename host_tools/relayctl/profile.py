"""Board profiles (boards/*.toml) as far as `relayctl run` needs them.

run_config(name) -> the config.json content for running board `name` on this
computer: the same renderer `relayctl build` uses (relayctl.boards.render),
without a site file. A broken profile raises CliError (status 2) listing
every problem.
"""

from relayctl import boards, out
from relayctl.boards.render import config_json
from relayctl.errors import CliError


def load_profile(name):
    """The checked profile (relayctl.boards.Resolved); raises CliError on any error."""
    return boards.load_or_fail(name)


def run_config(name):
    """config.json content for running board `name` on this computer. A profile with MTProto on and no site
    file gets a secret for this run, as `relayctl build` makes one (a config without any would not start)."""
    r = load_profile(name)
    cfg = config_json(r)
    mt = cfg.get("mtproto")
    if mt and mt.get("enabled") and not mt.get("secrets"):
        if r["relay.public"]:
            raise CliError(f"board {r.name} is a public relay's profile: run it with `relayctl run --public --domain "
                           "DOMAIN --mask HOST:PORT` (README: Running a public relay)", 2)
        from relayctl.cmd_mtproto import make_secret

        mt["secrets"] = [make_secret("dd")]
        out.info(f"mtproto: board {r.name} has MTProto on: made a secret for this run only ({mt['secrets'][0]}); "
                 "a new one each run, so share no link from it (--mtproto off turns MTProto off)")
    _on_this_computer(cfg, r.name)
    return cfg


_LISTENERS = (("socks", "host"), ("http", "host"), ("portal", "host"), ("mtproto", "host"), ("transparent", "host"),
              ("dns", "listen_host"))


def _on_this_computer(cfg, board):
    """A board's listeners sit on its Wi-Fi address (192.168.4.1), which this computer does not have: listen on
    loopback instead, and say so (the relay would stop with "cannot listen")."""
    import errno
    import socket

    missing = {}  # host -> this computer lacks it
    for sect, key in _LISTENERS:
        host = (cfg.get(sect) or {}).get(key)
        if not host:
            continue
        if host not in missing:
            with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM) as s:
                try:
                    s.bind((host, 0))
                    missing[host] = False
                except OSError as e:
                    missing[host] = e.errno == errno.EADDRNOTAVAIL
        if missing[host]:
            cfg[sect][key] = "127.0.0.1"
    moved = [h for h, m in missing.items() if m]
    for host in sorted(moved):
        out.info(f"board {board} listens on {host} (its Wi-Fi address), which this computer does not have: "
                 "listening on 127.0.0.1 instead (--socks/--http/--portal/--mtproto HOST:PORT choose)")
