"""The one schema of board profiles (boards/*.toml) and site files (site.toml).

FIELDS lists every key once: dotted name, default, validator, where it may be
set and what it means. Defaults live here and nowhere else; boards/README.md
shows this table (`relayctl boards schema` prints it) and a test keeps the two
equal. Scope: "board" keys belong in a profile, "site" keys in a site file,
"any" keys may be set in either (the site wins).
"""

from relayctl.boards import validate as v
from relayctl.mesh.plan import MODES as MESH_MODES, relay_entry

def _engines(value):
    from relayctl.engines import check_entries  # the engines' own checks, next to their renderers

    return check_entries(value)


REQUIRED = object()  # no default: the profile (or one it extends) must set it

RUNTIMES = ("micropython", "cpython")
MICROPYTHON_CHIPS = ("esp32", "esp32s3", "esp32c3", "rp2040")  # the chips relayctl builds MicroPython images for
CHIPS = ("esp32", "esp32s3", "esp32c3", "rp2040", "bcm2711", "bcm2710a1", "mt7628an", "x86_64", "aarch64", "other")
MPY_ARCHS = ("none", "xtensa", "xtensawin", "rv32imc", "armv6m", "armv7m", "armv7emsp", "armv7emdp", "x86", "x64")
UPLINKS = ("ethernet", "cellular", "wifi-sta", "upstream")
SERVICES = ("none", "systemd", "procd")
POLICIES = ("telegram", "messengers", "open")
ADMIN_SIDES = ("", "wired", "loopback", "wifi", "off")  # boards/admin_side.py; "": the board's default


class Field:
    __slots__ = ("key", "default", "check", "scope", "meaning")

    def __init__(self, key, default, check, scope, meaning):
        self.key, self.default, self.check, self.scope, self.meaning = key, default, check, scope, meaning


def _f(key, default, check, scope, meaning):
    return Field(key, default, check, scope, meaning)


FIELDS = (
    # identity
    _f("description", "", v.text, "board", "one line shown by `relayctl boards list`"),
    _f("runtime", REQUIRED, v.one_of(*RUNTIMES), "board", "which Python runs the relay on the board"),
    _f("micropython.min_version", "1.22", v.version, "board", "oldest MicroPython firmware the relay supports here"),
    _f("micropython.port", "", v.text, "board", "MicroPython port (esp32, rp2) whose firmware the board runs"),
    _f("micropython.board", "", v.text, "board", "MicroPython board name of the firmware to download (ESP32_GENERIC, RPI_PICO_W)"),
    _f("chip.name", REQUIRED, v.chip_name(MICROPYTHON_CHIPS, CHIPS), "board", "system on chip; the ESP32 family must match the firmware file"),
    _f("chip.mpy_arch", "none", v.one_of(*MPY_ARCHS), "board", "mpy-cross -march for the chip (none: bytecode only)"),
    _f("chip.psram_kib", 0, v.integer(0, 1 << 24), "board", "external PSRAM in KiB (0: none)"),
    _f("chip.core_speed", 0, v.integer(0, 10000), "board",
       "one core's speed in % of the core bench/phones.py measured the public load on (an estimate; "
       "scales `boards show`'s public-relay figure; 0: not rated)"),
    # flash (MicroPython boards)
    _f("flash.size", 0, v.size, "board", "flash chip size in bytes (0: not a MicroPython flash board)"),
    _f("flash.bootloader_offset", 0, v.size, "board", "where the firmware file (bootloader first) is written"),
    _f("flash.partition_table_offset", 0, v.size, "board", "ESP32 partition table offset (0: none)"),
    _f("flash.app_offset", 0, v.size, "board", "MicroPython application offset"),
    _f("flash.app_size", 0, v.size, "board", "MicroPython application partition size"),
    _f("flash.fs_offset", 0, v.size, "board", "filesystem (vfs) offset; the littlefs image is written here"),
    _f("flash.fs_size", 0, v.size, "board", "filesystem size; the image is exactly this long"),
    _f("flash.block_size", 4096, v.size, "board", "littlefs block size MicroPython mounts with"),
    _f("flash.prog_size", 32, v.integer(1, 65536), "board", "littlefs program size MicroPython mounts with (rp2: 256)"),
    _f("flash.read_size", 32, v.integer(1, 65536), "board", "littlefs read size MicroPython mounts with"),
    _f("flash.lookahead", 32, v.integer(8, 65536), "board", "littlefs lookahead size in bytes MicroPython mounts with"),
    _f("flash.littlefs_disk_version", "2.0", v.one_of("2.0", "2.1"), "board",
       "littlefs on-disk version; 2.0 mounts on every MicroPython since 1.20"),
    _f("flash.uf2_base", 0, v.size, "board", "XIP address of flash offset 0 for UF2 files (rp2: 0x10000000; 0: no UF2)"),
    _f("flash.uf2_family", 0, v.size, "board", "UF2 family id (RP2040: 0xe48bff56)"),
    # capacity
    _f("capacity.ram_kib", REQUIRED, v.integer(16, 1 << 30), "board", "RAM the relay can count on, KiB"),
    _f("capacity.sockets", REQUIRED, v.integer(2, 1 << 20), "board",
       "TCP sockets the network stack allows at once (ESP32 lwIP: 10; Pico W: 5 PCBs)"),
    _f("capacity.listeners_use_sockets", True, v.boolean, "board",
       "whether listening sockets count against capacity.sockets (false on rp2: lwIP keeps a separate pool)"),
    _f("capacity.wifi_clients", 0, v.integer(0, 1024), "board", "phones the Wi-Fi radio can associate at once (0: no Wi-Fi)"),
    _f("capacity.buffer_bytes", 1460, v.integer(512, 1 << 22), "board", "bytes read at once (config limits.buffer)"),
    _f("capacity.max_tunnels", 512, v.integer(1, 1000000), "board", "upper bound on tunnels; the estimate may give fewer"),
    _f("capacity.tunnels_per_client", 128, v.integer(1, 1000000), "board", "tunnels at once from one address (a few phones behind one NAT)"),
    _f("capacity.sessions", 0, v.integer(0, 1000000), "board", "connections at once, handshakes included (0: derived)"),
    _f("capacity.udp_associations", 32, v.integer(0, 100000), "board", "SOCKS UDP associations at once"),
    _f("capacity.backlog", 128, v.integer(1, 65535), "board", "listen backlog"),
    _f("capacity.address_burst", 0, v.integer(0, 1000000), "board",
       "MTProto: connections one client address may open at once (phones behind one NAT share it; 0: no limit)"),
    _f("capacity.address_rate", 8, v.integer(1, 1000000), "board", "MTProto: connections a second one address may open after that"),
    # Wi-Fi: the board's radio, then the site's network
    _f("wifi.interface", "", v.text, "board", 'radio interface ("" on a board without Wi-Fi; wlan0; "ap" on MicroPython)'),
    _f("wifi.bands", ["2.4"], v.list_of(v.one_of("2.4", "5")), "board", "bands the radio offers"),
    _f("wifi.address", "192.168.4.1", v.ipv4, "any", "the board's address on its Wi-Fi"),
    _f("wifi.subnet", "192.168.4.0/24", v.ipv4_subnet, "any", "the Wi-Fi subnet; must hold wifi.address"),
    _f("wifi.ssid", "relay", v.ssid, "site", "network name phones see (1-32 bytes)"),
    _f("wifi.security", "open", v.one_of("open", "wpa2"), "site", "open, or wpa2 with wifi.passphrase"),
    _f("wifi.passphrase", "", v.passphrase, "site", "WPA2 passphrase, 8-63 printable ASCII"),
    _f("wifi.country", "00", v.country, "any", 'regulatory country, e.g. "KZ" ("00": world, channels 1-11)'),
    _f("wifi.channel", 6, v.channel, "any", "radio channel; must be legal in wifi.country"),
    _f("wifi.max_clients", 0, v.integer(0, 1024), "site", "phones allowed at once (0: the board's capacity.wifi_clients)"),
    # uplink
    _f("uplink.kinds", ["upstream"], v.list_of(v.one_of(*UPLINKS), 1), "board", "uplinks the board can use"),
    _f("uplink.ports", {}, v.table_of(v.nonempty_text), "board",
       'where each uplink plugs in: { ethernet = "eth0", cellular = "/dev/ttyUSB2" }'),
    _f("uplink.kind", "", v.text, "site", 'the uplink this site uses ("": the board\'s first kind)'),
    _f("uplink.apn", "", v.text, "site", "cellular: access point name of the SIM's home operator"),
    _f("uplink.pin", "", v.text, "site", "cellular: SIM PIN"),
    _f("uplink.user", "", v.text, "site", "cellular: APN user name, when the operator wants one"),
    _f("uplink.password", "", v.text, "site", "cellular: APN password"),
    _f("uplink.roaming", False, v.boolean, "site", "cellular: allow roaming (a foreign SIM across the border needs it)"),
    _f("uplink.operator", "auto", v.text, "site", 'cellular: MCC-MNC of the network to register on, or "auto"'),
    _f("uplink.rat", "auto", v.one_of("auto", "lte", "umts", "gsm"), "site", "cellular: radio technology"),
    _f("uplink.modem_device", "", v.text, "site", "cellular: the modem's device for ModemManager (e.g. /dev/cdc-wdm0)"),
    _f("uplink.ssid", "", v.text, "site", "wifi-sta: the network to join"),
    _f("uplink.passphrase", "", v.passphrase, "site", "wifi-sta: its passphrase"),
    _f("uplink.upstream", "", v.text, "site", "upstream: socks5://host:port or http://host:port abroad"),
    _f("uplink.engine", [], _engines, "site",
       "[[uplink.engine]] tables: Shadowsocks, Trojan, Tor (obfs4), Snowflake or iodine engines to chain through "
       "when the uplink is censored (uplink.md, \"When the uplink is censored\")"),
    _f("uplink.probe", "telegram.org:80", v.nonempty_text, "site",
       "HOST:PORT of a web server abroad the path finder asks through each engine (HTTP GET) to see what passes"),
    # the relay's listeners
    _f("relay.listen", "", v.listen, "board", 'address the proxy listens on ("": wifi.address)'),
    _f("relay.socks_port", 1080, v.port, "board", "SOCKS5/SOCKS4a port"),
    _f("relay.http_port", 8080, v.port, "board", "HTTP proxy port"),
    _f("relay.portal_port", 80, v.port_or_off, "board", "onboarding portal port (0: none)"),
    _f("relay.dns_port", 53, v.port_or_off, "board", "DNS port on the Wi-Fi side (0: none)"),
    _f("relay.mtproto_port", 0, v.port_or_off, "board",
       "Telegram's MTProto proxy port (0: not offered; it needs fast AES-CTR: the `cryptography` package "
       "on CPython, cryptolib's CTR mode on MicroPython)"),
    _f("relay.public", False, v.boolean, "board",
       "public mode: a machine that faces the internet (MTProto fake-TLS, a mask site, no portal or DNS, "
       "SOCKS/HTTP off unless the site turns them on with a password)"),
    _f("mtproto.domain", "", v.domain_or_empty, "site",
       "public relays: the domain fake-TLS imitates; point its DNS at this machine and serve its certificate at mtproto.mask"),
    _f("mtproto.mask", "", v.host_port_or_empty, "site",
       "public relays: HOST[:PORT] of the web server for mtproto.domain that every failed handshake is passed to"),
    _f("mtproto.server", "", v.text, "site", "the address or name phones reach the relay at (server= in tg://proxy links)"),
    _f("public.socks", False, v.boolean, "site", "public relays: serve SOCKS5 too (needs proxy.user and proxy.password)"),
    _f("public.http", False, v.boolean, "site", "public relays: serve the HTTP proxy too (needs proxy.user and proxy.password)"),
    _f("mtproto.secrets", [], v.list_of(v.mtproto_secret), "site",
       "MTProto secrets (`relayctl mtproto secret`); empty: `relayctl build` makes one, `relayctl flash` one per board"),
    _f("ntp.servers", [], v.list_of(v.nonempty_text), "any",
       'SNTP servers (HOST[:PORT]) for the clock fake-TLS needs, e.g. ["pool.ntp.org"]; empty: none'),
    # Linux boards
    _f("linux.service", "none", v.one_of(*SERVICES), "board", "how the relay is kept running: systemd unit or OpenWrt procd script"),
    _f("linux.prefix", "/opt/relay", v.nonempty_text, "board", "where the bundle installs the firmware tree"),
    _f("linux.python", "/usr/bin/python3", v.nonempty_text, "board", "the Python that runs the relay"),
    _f("linux.packages", [], v.list_of(v.nonempty_text), "board", "system packages the relay needs (named in the bundle's README)"),
    # site
    _f("proxy.user", "", v.text, "site", "SOCKS username phones use (\"\": no password)"),
    _f("proxy.password", "", v.text, "site", "SOCKS password"),
    _f("policy.preset", "telegram", v.one_of(*POLICIES), "site", "which destinations are allowed"),
    _f("portal.languages", ["kk", "ru", "en"], v.list_of(v.language, 1), "site", "portal languages, first is the default"),
    _f("admin.side", "", v.one_of(*ADMIN_SIDES), "site",
       'where the admin page (the password `relayctl flash`/`deploy` stamps) answers: "wired" (the status listener, '
       ':8081 on every address but the Wi-Fi\'s: the ethernet or uplink side), "loopback" (127.0.0.1:8081, through '
       'ssh -L), "wifi" (also on the portal: its password crosses the open air in the clear), "off"; "": wired on '
       'Linux boards, loopback on a public relay, off on MicroPython boards (no wired side)'),
    _f("admin.password", "", v.text, "site",
       "the admin page's password, the same on every relay of the site (\"\": `relayctl build` makes one and writes "
       "it here when the page answers somewhere); `relayctl flash` gives each ESP32 its own (inventory.csv)"),
    # fleet reporting: relayctl fleet, relayctl fleet broker-config
    _f("fleet.broker", "", v.text, "site", "the fleet's MQTT broker, address or name (\"\": the relay reports to no fleet)"),
    _f("fleet.port", 0, v.integer(0, 65535), "site", "the broker's port (0: 1883, or 8883 with TLS)"),
    _f("fleet.tls", False, v.boolean, "site", "TLS to the broker, its certificate checked against fleet.ca_file"),
    _f("fleet.ca_file", "", v.text, "site", "CA certificate (PEM) of the broker, relative to the site file; copied onto the device"),
    _f("fleet.prefix", "relay", v.nonempty_text, "site", "topic prefix: relays write PREFIX/NAME/status and PREFIX/NAME/report"),
    _f("fleet.name", "", v.text, "site", "this relay's name in the fleet (letters, digits, - and _)"),
    _f("fleet.place", "", v.text, "site", "a coarse place label volunteers recognise (a district, never an address)"),
    _f("fleet.interval", 60, v.integer(5, 86400), "site", "seconds between reports (a change of state is reported sooner)"),
    _f("fleet.keepalive", 60, v.integer(5, 3600), "site", "MQTT keepalive, seconds: the broker marks a silent relay offline after 1.5 of these"),
    _f("fleet.key", "", v.text, "site",
       "the fleet key (relayctl fleet key): derives each relay's broker password and command key; never copied onto a device"),
    _f("fleet.relays", [], v.list_of(v.nonempty_text), "site", "relay names relayctl fleet broker-config makes accounts for"),
    _f("fleet.volunteers", "volunteers", v.nonempty_text, "site", "the broker account that reads every relay and sends commands"),
    _f("expect.phones", 0, v.integer(0, 100000), "site", "phones you expect at once; `check` warns when the board carries fewer"),
    # a mesh of relays sharing uplinks (mesh.md; relayctl mesh render)
    _f("mesh.role", "none", v.one_of("relay", "satellite", "none"), "board",
       "in a mesh: relay (runs babeld, routes for others), satellite (joins a relay's Wi-Fi and chains to it), none"),
    _f("mesh.relay", "", v.text, "site", "which relay of [mesh.relays] this build is for (`--relay NAME` wins)"),
    _f("mesh.relays", {}, v.table_of(relay_entry), "site",
       "the mesh's relays: [mesh.relays.NAME] number = 1..200, uplink = true/false, board, radio, wired = [...], "
       "via = NAME (a satellite)"),
    _f("mesh.network", "10.77.0.0/24", v.text, "site", "relays' own addresses: relay number n gets the nth"),
    _f("mesh.uplinks", "10.77.1.0/24", v.text, "site", "service addresses of relays with an uplink: relay n's is the nth"),
    _f("mesh.clients", "10.78.0.0/16", v.text, "site", "phones' subnets: relay n's phones get the nth /24, the relay .1"),
    _f("mesh.key", "", v.text, "site",
       "the mesh's secret, the same on every relay (16-63 characters): the 802.11s SAE password, and what relays "
       "prove the phone identities they pass along with"),
    _f("mesh.id", "relay-mesh", v.ssid, "site", "802.11s mesh id (ad-hoc: the cell's name)"),
    _f("mesh.mode", "80211s", v.one_of(*MESH_MODES), "site",
       "how radios link: 80211s (routing by babeld over it), adhoc (IBSS), wired (ethernet only), batman-adv "
       "(OpenWrt, layer 2; untested here)"),
    _f("mesh.channel", 0, v.integer(0, 196), "site", "the mesh radio's channel (0: wifi.channel)"),
    _f("mesh.radio", "", v.text, "site", "the mesh radio's interface on every relay unless its entry says otherwise"),
    _f("mesh.wired", [], v.list_of(v.nonempty_text), "site", "ethernet interfaces that are mesh links on every relay"),
    _f("mesh.port", 1082, v.port, "site", "the port relays hand each other phones' tunnels on"),
    # LAN mode: ordinary access points in bridge mode on a wire
    _f("lan.interface", "", v.text, "any",
       "LAN mode: the wired interface phones reach the relay on (through access points in bridge mode); "
       "DHCP, DNS, portal and proxies serve it instead of the relay's own radio"),
)

BY_KEY = {f.key: f for f in FIELDS}
TABLES = sorted({f.key.rsplit(".", 1)[0] for f in FIELDS if "." in f.key})
TOP_KEYS = {"extends"}  # loader keys, not settings


def default(key):
    d = BY_KEY[key].default
    return list(d) if isinstance(d, list) else dict(d) if isinstance(d, dict) else d


def _show(d):
    if d is REQUIRED:
        return "required"
    import json

    return "`" + json.dumps(d) + "`"


def markdown():
    """The schema as the Markdown table boards/README.md carries."""
    rows = ["| key | where | default | meaning |", "|---|---|---|---|"]
    for f in FIELDS:
        rows.append(f"| `{f.key}` | {f.scope} | {_show(f.default)} | {f.meaning.replace('|', '/')} |")
    return "\n".join(rows) + "\n"
