"""What a far end refuses to connect to, so that no phone reaches the volunteer's machine itself.

The relay chains to its engines as socks5h: names go unresolved to the far end (the censor's DNS
must not see them), so the relay's guard can only judge names. A public name pointed at 127.0.0.1,
169.254.169.254 or the far end's LAN would reach the far end's own services through every phone
of the relay: a public relay's admin port on the same VPS, a database on loopback, the cloud's
metadata service with the machine's credentials. So each far end refuses them itself, after it
has resolved the name:

- every far-end program that connects onward (ss-server, trojan, microsocks) runs as its own
  user, and an nftables table (nft_table) rejects that user's new outbound connections to
  BLOCKED, to the machine's own public address when the site names it, and to every address of
  the machine itself (they route through `lo`, so a public address on its interface is caught
  without being named). The user's replies to its own clients are not touched (ct state new).
- ss-server also checks every address it connects to against its ACL (acl()): it holds without
  the nftables table, e.g. where ss-server runs by hand.

Pure: text in, text out; server.py puts the files together.
"""

import ipaddress

# What a phone must never reach through a far end (RFC 6890's special ranges that lead somewhere).
BLOCKED4 = ("0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16", "172.16.0.0/12",
            "192.168.0.0/16", "224.0.0.0/4", "240.0.0.0/4")
BLOCKED6 = ("::/128", "::1/128", "fc00::/7", "fe80::/10", "::ffff:0:0/96")  # ::ffff:0:0/96: IPv4 in IPv6 form
# One user per program: an exception one far end needs (trojan's fallback site on loopback) must
# not open the hole for another.
USERS = {"shadowsocks": "relay-ss", "trojan": "relay-trojan", "iodine": "relay-socks"}
NFT_DIR = "/etc/relay"

WHY = """\
# It refuses the far end's own loopback and LAN, the cloud metadata address 169.254.169.254
# and this machine's own addresses: the relay hands names over unresolved, so a public name
# pointed at 127.0.0.1 would otherwise let any phone on a relay reach this machine's own
# services (an admin port, a database, the cloud's credential service)."""


def nft_path(kind):
    return f"{NFT_DIR}/far-end-{kind}.nft"


def own_addresses(*hosts):
    """The IP literals among hosts (the site's server, the --listen address), unspecified ones left out:
    the far end's own public address, refused by name too, for a machine behind a cloud's 1:1 NAT
    where it is on no interface."""
    out = []
    for h in hosts:
        try:
            a = ipaddress.ip_address((h or "").strip("[]"))
        except ValueError:
            continue
        if not a.is_unspecified and str(a) not in out:
            out.append(str(a))
    return out


def _is_blocked(addr):
    a = ipaddress.ip_address(addr)
    nets = BLOCKED4 if a.version == 4 else BLOCKED6
    return any(a in ipaddress.ip_network(n) for n in nets)


def acl(own=()):
    """ss-server's ACL (--acl FILE, or "acl" in its JSON): it checks every address it is about to
    connect to, names resolved, against [outbound_block_list] (shadowsocks-libev#2265)."""
    extra = [a for a in own if not _is_blocked(a)]
    lines = ["# ss-server's outbound block list for the relay's far end.", WHY,
             "[outbound_block_list]", *BLOCKED4, *BLOCKED6]
    if extra:
        lines += ["# this machine's public address (from the site file / --listen)", *extra]
    return "\n".join(lines) + "\n"


def nft_table(kind, user, own=(), allow=()):
    """The nftables table for one far-end program running as `user`.

    allow: (address, tcp port) pairs it may still reach, e.g. trojan's fallback web site on
    127.0.0.1:80. DNS (port 53) stays open: the resolver is often on loopback (127.0.0.53) or
    the cloud's LAN (169.254.169.253, 10.0.0.2), and a resolver is nothing to hide."""
    name = f"relay_far_end_{kind}"
    own4 = [a for a in own if ":" not in a and not _is_blocked(a)]
    own6 = [a for a in own if ":" in a and not _is_blocked(a)]
    exceptions = []
    for host, port in allow:
        family = "ip6" if ":" in host else "ip"
        exceptions.append(f"    {family} daddr {host} tcp dport {port} return")
    return f"""#!/usr/sbin/nft -f
# The relay's far end ({kind}): what {user} may not connect to. Load: nft -f {nft_path(kind)}
# (the rendered systemd unit or drop-in loads it each time the service starts). A `flush ruleset`
# (reloading /etc/nftables.conf) removes it: restart the service afterwards.
{WHY}
table inet {name}
delete table inet {name}
table inet {name} {{
  # Behind a cloud's 1:1 NAT, add this machine's public address to blocked4 (on no interface, lo misses it).
  set blocked4 {{ type ipv4_addr; flags interval; elements = {{ {", ".join(BLOCKED4 + tuple(own4))} }} }}
  set blocked6 {{ type ipv6_addr; flags interval; elements = {{ {", ".join(BLOCKED6 + tuple(own6))} }} }}
  chain output {{
    type filter hook output priority filter; policy accept;
    meta skuid "{user}" ct state new jump far_end   # only its own new connections, not replies to its clients
  }}
  chain far_end {{
    meta l4proto {{ tcp, udp }} th dport 53 return   # its resolver
{chr(10).join(exceptions + [""])}    oif "lo" goto refuse                              # every address of this machine
    ip daddr @blocked4 goto refuse
    ip6 daddr @blocked6 goto refuse
  }}
  chain refuse {{
    meta l4proto tcp reject with tcp reset           # the program sees "connection refused" at once
    reject with icmpx admin-prohibited
  }}
}}
"""


def dropin(kind, user, extra=""):
    """[Service] lines that run a packaged unit's program as `user` and load its table first."""
    return f"""[Service]
User={user}
ExecStartPre=+/usr/sbin/nft -f {nft_path(kind)}
{extra}"""


def useradd(user):
    return f"useradd --system --no-create-home --shell /usr/sbin/nologin {user}"
