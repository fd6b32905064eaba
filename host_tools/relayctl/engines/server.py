"""The far end of each engine, for a volunteer's machine abroad: config files and how to start them.

render(engine, listen) -> {file name: text}; every file begins with comments saying where it goes
and how to start it (Debian's packaged units where they exist). Pure: secrets come from the
engine entry (cmd_engine.py makes them once and keeps them in the site file).
"""

import ipaddress
import json

from relayctl.engines import env_file, farguard
from relayctl.engines.farguard import USERS, nft_path, nft_table, own_addresses, useradd
from relayctl.errors import CliError

IODINED_ENV = "relay-iodined.env"


def render(e, listen="0.0.0.0"):
    if e.kind == "snowflake":
        raise CliError("snowflake has no far end of yours: it rides the Tor Project's Snowflake bridges and volunteer "
                       "proxies; to run a bridge of your own use kind = \"tor\" (obfs4)")
    return {"shadowsocks": _shadowsocks, "trojan": _trojan, "iodine": _iodine, "tor": _tor}[e.kind](e, listen)


def _shadowsocks(e, listen):
    user, own = USERS[e.kind], own_addresses(e.server, listen)
    cfg = {"server": listen, "server_port": e.port, "password": e.password, "method": e.method,
           "mode": "tcp_only", "timeout": 300, "fast_open": False, "no_delay": True,
           "acl": "/etc/shadowsocks-libev/relay.acl"}  # its outbound block list; Debian's unit runs ss-server -c only
    unit = "shadowsocks-libev-server@relay.service"
    readme = f"""# Far end of the relay's Shadowsocks engine "{e.name}" (Debian: apt install shadowsocks-libev nftables)
{useradd(user)}
install -m 640 -g {user} ss-server.json /etc/shadowsocks-libev/relay.json
install -m 644 ss-server.acl /etc/shadowsocks-libev/relay.acl
install -D -m 644 far-end-shadowsocks.nft {nft_path(e.kind)}
install -D -m 644 far-end-shadowsocks.conf /etc/systemd/system/{unit}.d/far-end.conf
systemctl daemon-reload && systemctl enable --now {unit}   # Debian's unit: ss-server -c /etc/shadowsocks-libev/relay.json
# Open TCP {e.port} in the firewall. A wrong password shows in its log as "authentication error".
#
# What it refuses: ss-server.acl (named in relay.json) makes ss-server check every address it is about to
# connect to; far-end.conf runs it as {user} (Debian's unit keeps its DynamicUser sandbox, with this static
# user) and loads far-end-shadowsocks.nft, which rejects {user}'s new connections to the same ranges and to
# every address of this machine.
{farguard.WHY}
# Run by hand, ss-server -c /etc/shadowsocks-libev/relay.json reads the ACL named in it (or pass --acl FILE).
"""
    dropin = farguard.dropin(e.kind, user, "# ss-server would run unguarded if its ACL were missing: refuse to start then\n"
                                           "ExecStartPre=/usr/bin/test -r /etc/shadowsocks-libev/relay.acl\n")
    return {"ss-server.json": json.dumps(cfg, indent=1) + "\n", "ss-server.acl": farguard.acl(own),
            "far-end-shadowsocks.nft": nft_table(e.kind, user, own),
            "far-end-shadowsocks.conf": f"# /etc/systemd/system/{unit}.d/far-end.conf\n" + dropin,
            "README.txt": readme}


def _trojan(e, listen):
    host, _, port = e.fallback.rpartition(":")
    cfg = {
        "run_type": "server", "local_addr": listen, "local_port": e.port,
        "remote_addr": host, "remote_port": int(port),  # anyone without the password gets this web site
        "password": [e.password], "log_level": 2,
        "ssl": {"cert": e.cert, "key": e.key, "key_password": "", "prefer_server_cipher": True,
                "alpn": ["http/1.1"], "reuse_session": True, "session_ticket": False, "session_timeout": 600,
                "plain_http_response": "", "curves": "", "dhparam": ""},
        "tcp": {"prefer_ipv4": False, "no_delay": True, "keep_alive": True, "reuse_port": False, "fast_open": False,
                "fast_open_qlen": 20},
    }
    user, own = USERS[e.kind], own_addresses(e.server, listen)
    fallback = [(a, int(port)) for a in (("127.0.0.1", "::1") if host == "localhost" else own_addresses(host))]
    readme = f"""# Far end of the relay's Trojan engine "{e.name}" (Debian: apt install trojan nftables)
{useradd(user)}
# 1. A real web site on {e.fallback} (nginx, a blog, anything genuine): whoever connects without the
#    password, a censor's prober included, is handed to it and sees that site over TLS.
# 2. A certificate for {e.sni} (certbot certonly --standalone -d {e.sni}); trojan-server.json expects
#    {e.cert} and {e.key}.
#    trojan runs as {user}, which must be able to read them. For certbot's:
#      chgrp {user} /etc/letsencrypt/live /etc/letsencrypt/archive && chmod 750 /etc/letsencrypt/live /etc/letsencrypt/archive
#      chgrp -R {user} /etc/letsencrypt/archive/{e.sni} && chmod -R g+rX /etc/letsencrypt/archive/{e.sni}
install -m 640 -g {user} trojan-server.json /etc/trojan/config.json
install -D -m 644 far-end-trojan.nft {nft_path(e.kind)}
install -D -m 644 far-end-trojan.conf /etc/systemd/system/trojan.service.d/far-end.conf
systemctl daemon-reload && systemctl enable --now trojan   # Debian's unit: trojan /etc/trojan/config.json
# Open TCP {e.port}. The relay verifies the certificate; for a self-signed one set ca = "PEM file" in its site.
#
# What it refuses: far-end.conf runs trojan as {user} (Debian's unit: nobody) and loads far-end-trojan.nft,
# which rejects {user}'s new connections to the ranges it lists and to every address of this machine. The
# fallback site ({e.fallback}) stays reachable, for phones too: serve nothing else on it, with any Host.{
    "" if fallback else chr(10) + "# It is a name: if it is on this machine, put its address in the site's fallback instead."}
{farguard.WHY}
"""
    return {"trojan-server.json": json.dumps(cfg, indent=1) + "\n",
            "far-end-trojan.nft": nft_table(e.kind, user, own, fallback),
            "far-end-trojan.conf": "# /etc/systemd/system/trojan.service.d/far-end.conf\n" + farguard.dropin(e.kind, user),
            "README.txt": readme}


def _iodine(e, listen):
    iface = ipaddress.IPv4Interface(e.tunnel)
    socks_host, _, socks_port = e.socks.rpartition(":")
    iodined = f"""# Far end of the relay's iodine engine "{e.name}" (Debian: apt install iodine microsocks)
# The domain {e.domain} must be delegated to this machine: an NS record for it pointing at a name
# whose A record is this machine's address. Then copy this file and relay-socks.service to
# /etc/systemd/system/, the password beside them, and start both:
#   install -D -m 600 {IODINED_ENV} /etc/relay/{IODINED_ENV}
#   systemctl enable --now relay-iodined relay-socks
[Unit]
Description=iodined for the relay's DNS tunnel ({e.domain})
After=network-online.target

[Service]
# The password stays in a root-only file: `systemctl show` prints a unit's Environment= to every user.
EnvironmentFile=/etc/relay/{IODINED_ENV}
ExecStart=/usr/sbin/iodined -f -c -l {listen} {iface.ip}/{iface.network.prefixlen} {e.domain}
Restart=always
RestartSec=10

[Install]
WantedBy=multi-user.target
"""
    user, own = USERS[e.kind], own_addresses(e.server, e.nameserver, listen)
    socks_unit = f"""# The SOCKS server the relay reaches through the DNS tunnel: it listens only on the tunnel's
# address, so only iodine clients that know the password can use it. It runs as {user}, whose new
# connections far-end-iodine.nft limits (see README.txt).
[Unit]
Description=SOCKS server on the relay's DNS tunnel
After=relay-iodined.service
BindsTo=relay-iodined.service

[Service]
User={user}
ExecStartPre=+/usr/sbin/nft -f {nft_path(e.kind)}
ExecStart=/usr/bin/microsocks -i {socks_host} -p {socks_port}
Restart=always
RestartSec=5

[Install]
WantedBy=multi-user.target
"""
    readme = f"""# Far end of the relay's iodine engine "{e.name}" (Debian: apt install iodine microsocks nftables)
# The domain {e.domain} must be delegated to this machine: an NS record for it pointing at a name
# whose A record is this machine's address.
{useradd(user)}
install -D -m 644 far-end-iodine.nft {nft_path(e.kind)}
install -D -m 600 {IODINED_ENV} /etc/relay/{IODINED_ENV}   # the tunnel's password
install -m 644 relay-iodined.service /etc/systemd/system/
install -m 644 relay-socks.service /etc/systemd/system/
systemctl daemon-reload && systemctl enable --now relay-iodined relay-socks
# Open UDP 53.
#
# What it refuses: relay-socks.service runs microsocks as {user} and loads far-end-iodine.nft, which
# rejects {user}'s new connections to the ranges it lists and to every address of this machine (microsocks
# has no access list of its own). Its answers to the relays on the tunnel are not touched.
{farguard.WHY}
"""
    return {"relay-iodined.service": iodined, "relay-socks.service": socks_unit,
            IODINED_ENV: env_file({"IODINED_PASS": e.password}), "far-end-iodine.nft": nft_table(e.kind, user, own),
            "README.txt": readme}


def _tor(e, listen):
    ports = e.far_ports()
    port = ports[0][1] if ports else 443
    torrc = f"""# A private obfs4 bridge for the relay's Tor engine "{e.name}" (Debian: apt install tor obfs4proxy)
# cp torrc /etc/tor/torrc && systemctl restart tor
# Its bridge line, once it has started: cat /var/lib/tor/pt_state/obfs4_bridgeline.txt, fill in this
# machine's address and the fingerprint (cat /var/lib/tor/fingerprint), and put the line into the
# site file's bridges = ["obfs4 ADDRESS:{port} FINGERPRINT cert=... iat-mode=0"].
# A bridge only carries Tor cells into the Tor network: it connects to no destination of a phone's,
# so nothing of this machine is reachable through it (ExitPolicy says so outright).
BridgeRelay 1
ORPort 127.0.0.1:auto
AssumeReachable 1
ServerTransportPlugin obfs4 exec /usr/bin/obfs4proxy
ServerTransportListenAddr obfs4 {listen}:{port}
ExtORPort auto
PublishServerDescriptor 0
BridgeDistribution none
SocksPort 0
ExitPolicy reject *:*
Nickname relaybridge
"""
    return {"torrc": torrc}
