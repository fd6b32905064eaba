"""Site files: what differs per deployment (network name, passphrase, country, proxy account, uplink).

    relayctl site init [FILE] [--force]     write a commented example (default: site.toml)
    relayctl site check FILE --board NAME   check it against a board, warnings included
"""

from pathlib import Path

from relayctl import boards, out
from relayctl.boards.capacity import estimate
from relayctl.errors import CliError
from relayctl.files import write_private

EXAMPLE = '''\
# site.toml: what differs per deployment. The board profile (boards/*.toml)
# says what the hardware is; this file says how this relay is set up.
# Check it:  relayctl site check site.toml --board esp32-generic
# Build:     relayctl build esp32-generic --site site.toml --out out/
# Every key is optional; boards/README.md lists them with their defaults.

[wifi]
ssid = "relay"              # the network name phones see: 1-32 bytes
security = "open"           # "open" (anyone can join), or "wpa2" with a passphrase
# passphrase = "change me please"   # wpa2 only: 8-63 printable ASCII characters (your own: the example is refused)
country = "KZ"              # where the board runs; decides the legal channels
channel = 6                 # KZ, RU, EU: 1-13; US, CA: 1-11; JP: 1-14
# max_clients = 8           # phones at once (default: what the board's radio holds)

[proxy]
# A SOCKS account phones use (it goes into the Telegram link). Leave both out
# for an open proxy on the local Wi-Fi only.
# user = "relay"
# password = "choose a long one"

[policy]
preset = "telegram"         # "telegram", "messengers" or "open": which destinations are allowed

[portal]
languages = ["kk", "ru", "en"]   # the onboarding page's languages; the first is the default

[admin]
# The admin page: counters and a restart button, behind a password: the one below (`relayctl build`
# makes it when missing); `relayctl flash` gives each ESP32 its own (inventory.csv).
# Where it answers:
# "wired": http://<the board's ethernet or uplink address>:8081/admin, never to the Wi-Fi (Linux default);
# "loopback": 127.0.0.1:8081 only, through `ssh -L 8081:127.0.0.1:8081 pi@board`;
# "wifi": also on the portal, http://192.168.4.1/admin: the password then crosses the open air in the
#         clear for anyone nearby to read (ESP32 and Pico W have no wired side: their only way);
# "off": nowhere (the MicroPython boards' default).
# side = "wired"
# password = "..."

[uplink]
# Which way this relay reaches the outside; the board lists what it can use
# (`relayctl boards show BOARD`). Empty: the board's first.
kind = ""                   # "ethernet", "cellular", "wifi-sta" or "upstream"
# apn = "internet"          # cellular: the APN of the SIM's home operator (roaming is home-routed)
# pin = "1234"              # cellular: SIM PIN, if it has one
# ssid = "phone hotspot"    # wifi-sta: the network to join
# passphrase = "..."        # wifi-sta: its passphrase
# upstream = "socks5://203.0.113.7:1080"   # upstream: a proxy abroad to chain through

[mtproto]
# Telegram's own proxy, on boards that offer it (relay.mtproto_port in `relayctl boards show`).
# `relayctl mtproto secret` makes a secret. None listed: `relayctl build` makes one per build
# and `relayctl flash` one per board (printed on its card).
# secrets = ["dd0123456789abcdef0123456789abcdef"]
# A public relay (board `public`; README: Running a public relay) needs these three:
# domain = "www.your-domain.org"   # fake-TLS imitates it; its A record points at this machine
# mask = "127.0.0.1:8443"          # the web server for that domain that every failed handshake meets
# server = "www.your-domain.org"   # what the tg://proxy links carry

[public]
# A public relay serves MTProto only. An open proxy on the internet is abused within hours:
# these need proxy.user and proxy.password.
# socks = false
# http = false

[ntp]
# Time servers the relay asks once its uplink works (fake-TLS MTProto needs a correct clock).
# servers = ["pool.ntp.org"]

[fleet]
# Report counters (never who or where) to the volunteers' MQTT broker: README "Many relays".
# broker = "fleet.example.org"   # address or name; leave out for no reporting
# tls = true                     # with ca_file = "fleet-ca.pem" (next to this file)
# name = "almaty-01"             # this relay's name in the fleet
# place = "Almaly"               # a coarse place label, never an address
# key = "..."                    # `relayctl fleet key`; stays on laptops, never copied onto a board
# relays = ["almaty-01", "almaty-02"]   # accounts `relayctl fleet broker-config` makes

[expect]
# phones = 10               # how many phones you expect at once; `check` warns when the board carries fewer

# Several relays sharing one uplink (mesh.md): one site file for all of them, one table per relay;
# build, install and `wifi apply` each with --relay NAME.
# [mesh]
# key = "16-63 characters, the same on every relay"
# radio = "wlan1"           # the mesh radio (802.11s); or wired = ["eth1"]
# [mesh.relays.roof]
# number = 1
# uplink = true
# [mesh.relays.stairs]
# number = 2

# LAN mode: ordinary access points in bridge mode on a wire instead of the relay's own radio (mesh.md).
# [lan]
# interface = "eth1"
'''


def add_arguments(p):
    sub = p.add_subparsers(dest="action", metavar="ACTION")
    sub.required = True
    i = sub.add_parser("init", help="write a commented example site.toml")
    i.add_argument("file", nargs="?", default="site.toml")
    i.add_argument("--force", action="store_true", help="overwrite an existing file")
    c = sub.add_parser("check", help="check a site file against a board")
    c.add_argument("file")
    c.add_argument("--board", required=True)


def run(args):
    if args.action == "init":
        path = Path(args.file)
        if path.exists() and not args.force:
            raise CliError(f"{path} exists: it would be overwritten; pick another name or add --force")
        write_private(path, EXAMPLE)  # it will hold the site's passwords
        out.info(f"wrote {path}: edit it, then `relayctl site check {path} --board BOARD`")
        return 0
    r = boards.load(args.board, args.file)
    for p in r.in_order:
        print(p)
    if r.errors:
        raise CliError(f"{len(r.errors)} problem(s)", 2)
    out.info(f"{args.file}: ok for {r.name}: {estimate(r).sentence()}")
    return 0
