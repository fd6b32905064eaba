"""`python -m relay` / `micropython -m relay`: run the relay on this machine.

    --config FILE        device config.json (defaults apply without one)
    --socks HOST:PORT    SOCKS listener ("off" to disable)
    --http HOST:PORT     HTTP proxy listener ("off" to disable)
    --allow CIDR         open an exception in the destination guard (repeatable)
    --dns IP[:PORT]      resolver to use instead of the system's (repeatable; alias --upstream-dns)
    --portal HOST:PORT   onboarding portal listener ("off" to disable)
    --dns-listen HOST:PORT  DNS responder for Wi-Fi clients, UDP ("off" to disable)
    --mtproto HOST:PORT  MTProto proxy listener ("off" to disable; secrets come from the config)
    --log-level LEVEL    quiet, info or debug

Prints one "relay ready ..." line once every listener accepts connections.
Exits 2 with one line per problem when the config is wrong.
"""

import sys

from relay import VERSION
from relay.config import ConfigError, load
from relay.log import Log
from relay.platform import board
from relay.proto.addr import split_host_port
from relay.runtime import api as runtime

USAGE = "usage: relay [--config FILE] [--socks HOST:PORT|off] [--http HOST:PORT|off] [--allow CIDR]... [--dns IP[:PORT]]... [--portal HOST:PORT|off] [--dns-listen HOST:PORT|off] [--mtproto HOST:PORT|off] [--log-level quiet|info|debug]"


def parse_args(argv):
    """-> (config path or None, overrides). Raises ValueError with a message."""
    path = None
    over = {}
    allow = []
    dns = []
    i = 0
    while i < len(argv):
        opt = argv[i]
        if opt in ("-h", "--help"):
            raise ValueError(USAGE)
        if i + 1 >= len(argv):
            raise ValueError(opt + ": missing value\n" + USAGE)
        val = argv[i + 1]
        i += 2
        if opt == "--config":
            path = val
        elif opt in ("--socks", "--http", "--portal", "--dns-listen", "--mtproto"):
            pre = {"--dns-listen": "dns.listen_"}.get(opt, opt[2:] + ".")
            if val == "off":
                over[pre + "enabled"] = False
            else:
                host, port = split_host_port(val)
                over[pre + "enabled"] = True
                over[pre + "host"] = host
                over[pre + "port"] = port
        elif opt == "--allow":
            allow.append(val)
        elif opt == "--dns" or opt == "--upstream-dns":
            dns.append(val)
        elif opt == "--log-level":
            over["log.level"] = val
        else:
            raise ValueError("unknown option " + opt + "\n" + USAGE)
    return path, over, allow, dns


def load_config(argv):
    path, over, allow, dns = parse_args(argv)
    text = b""
    name = "config.json"
    if path:
        name = path
        try:
            text = runtime.read_file(path)
        except OSError as e:
            raise ConfigError([path + ": cannot read: " + str(e)])
    if dns:
        over["dns.servers"] = dns
    raw = text
    try:
        text = text.decode()
    except UnicodeError:
        raise ConfigError([name + ": not UTF-8 text; save it as UTF-8 (relayctl build writes it so)"])
    cfg = load(text, name, over, {"guard.allow": allow})
    digest = runtime.sha256_hex(raw)[:12] if raw else "default"
    return cfg, digest


def listen_hint(e):
    """The likely cause of a failed bind, by errno (names from the errno module: boards number them apart)."""
    import errno

    n = e.args[0] if e.args and type(e.args[0]) is int else getattr(e, "errno", None)
    if n == errno.EADDRINUSE:
        return " (is another relay or proxy already on that port?)"
    if n == getattr(errno, "EADDRNOTAVAIL", 99):
        return " (that address is not on this machine: check the listen addresses in the config, or that its interface is up)"
    if n == errno.EACCES:
        return " (a port below 1024 needs root or CAP_NET_BIND_SERVICE: choose a port above 1023, or run it as root)"
    return ""


async def serve(cfg, digest, holder=None, argv=None):
    from relay.server import Relay

    log = Log(cfg.log.level)
    plat = board.bring_up(cfg, log)  # the access point first: listeners bind to its address
    plat.start()
    relay = Relay(cfg, log)
    if holder is not None:
        holder.append(relay)
    relay.platform = plat
    relay.config_digest = digest  # the fleet's report names the config it runs
    if argv is not None:  # a reload (SIGHUP, POST /api/reload) reads the same file with the same options
        relay.load_config = lambda: load_config(argv)  # -> (cfg, digest)
    try:
        listening = await relay.start()
    except OSError as e:
        where = relay.binding
        where = ("on %s port %d: " % where) if where else ""
        log.warn("cannot listen %s%s%s" % (where, e, listen_hint(e)))
        raise SystemExit(1)
    parts = ["relay ready version=%s config=%s runtime=%s" % (VERSION, digest, runtime.NAME)]
    for sect in ("socks", "http", "status", "portal", "mtproto", "transparent"):
        c = getattr(cfg, sect)
        if c.enabled and (c.host, c.port) in listening:
            parts.append("%s=%s:%d" % (sect, c.host, c.port))
    d = cfg.dns
    if d.listen_enabled and (d.listen_host, d.listen_port) in listening:
        parts.append("dns=%s:%d" % (d.listen_host, d.listen_port))
    m = cfg.mesh
    for h in ([m.service] if m.service else []) + m.listen if m.enabled else []:
        if (h, m.port) in listening:
            parts.append("mesh=%s:%d" % (h, m.port))
    log.info(" ".join(parts))
    try:
        await relay.stopped.wait()  # set by the admin page's restart; Ctrl-C/SIGTERM cancel this task
        if relay.restart_why is not None:  # (Ctrl-C and SIGTERM cancel this wait instead)
            log.info("relay restarting (asked for by %s)" % relay.restart_why)
    finally:
        plat.close()
        relay.close()
        st = relay.stats.as_dict()
        refused = st.pop("refused")
        line = " ".join("%s=%s" % (k, st[k]) for k in sorted(st))
        line += " refused=" + (",".join("%s:%d" % (k, refused[k]) for k in sorted(refused)) or "0")
        log.info("relay stopped " + line)


def main(argv):
    try:
        cfg, digest = load_config(argv)
    except ValueError as e:
        runtime.stderr_write(str(e) + "\n")
        return 2
    except ConfigError as e:
        for p in e.problems:
            runtime.stderr_write(p + "\n")
        return 2
    holder = []
    try:
        runtime.run(serve(cfg, digest, holder, argv), cfg.io.backend == "auto" and cfg.io.uvloop)
    except KeyboardInterrupt:
        pass
    if holder and holder[0].exit_code:
        board.restart()  # a board resets; elsewhere the exit status asks the service manager
        return holder[0].exit_code
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
