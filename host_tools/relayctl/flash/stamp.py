"""Per-board values stamped into one build: SSID suffix from the MAC, a proxy
password and an admin password (only where the build serves the admin page: site
admin.side, boards/admin_side.py), written into config.json inside the merged
image's littlefs partition. When the build offers MTProto, also the board's own
secret (first in mtproto.secrets, so the portal and the card share it; a secret
the build made because the site had none is dropped), the portal's QR code of
its tg://proxy link, and mtproto.clock_hint = the time of flashing.

Input: an Image (manifest.py) and the chip's MAC. Output: a new Image whose
bytes and config hash are this board's. One build serves a whole batch; each
board still gets its own credentials. A key the firmware's config schema
does not know is not written (the relay refuses unknown keys at boot); the
caller is told which values were left out.
"""

import hashlib
import json
import secrets
import time

from littlefs import LittleFS

from relayctl import paths
from relayctl.errors import CliError
from relayctl.flash.manifest import Image

# Letters that cannot be misread on a printed card (no 0/O, 1/l/I).
ALPHABET = "abcdefghijkmnpqrstuvwxyzACDEFGHJKLMNPQRSTUVWXYZ23456789"
PROXY_USER = "relay"
# Where each per-board value goes in config.json, first key the schema knows wins.
SSID_KEYS = ("wifi.ssid", "ap.ssid")
ADMIN_KEYS = ("admin.password", "portal.admin_password")


def password(n):
    return "".join(secrets.choice(ALPHABET) for _ in range(n))


def schema_keys():
    """Dotted keys the firmware's config.json accepts (firmware/relay/config.py SCHEMA)."""
    return {k[0] for k in paths.firmware_module("relay.config").SCHEMA}


def check_config(text):
    """The relay's own checker, so a stamped config that would not boot is caught here."""
    schema_keys()
    from relay import config

    try:
        config.load(text, "config.json")
    except config.ConfigError as e:
        raise CliError("stamped config.json would not boot: " + "; ".join(e.problems)
                       + "; report this as a bug with the board and site files")


def board_values(mac, base_ssid):
    return {
        "ssid": "%s-%02X%02X" % (base_ssid, mac[4], mac[5]),
        "proxy_user": PROXY_USER,
        "proxy_password": password(10),
        "admin_password": password(12),
    }


def _mtproto(cfg, manifest, values):
    """This board's MTProto secret and clock floor into cfg -> (QR file path, svg) or None."""
    from relayctl.cmd_mtproto import make_secret
    from relayctl.links import mtproto_link, qr_svg

    mt = cfg.get("mtproto") or {}
    if not mt.get("enabled"):
        return None
    made = set(((manifest.get("mtproto") or {}).get("secrets_made")) or ())
    first = (mt.get("secrets") or ["dd"])[0]
    kind = first[:2] if first[:2] in ("dd", "ee") and len(first) > 32 else "plain"
    domain = None
    if kind == "ee":
        domain = bytes.fromhex(first[34:]).decode("ascii") if len(first) > 34 else mt.get("tls_domain") or ""
    own = make_secret(kind, domain)
    mt["secrets"] = [own] + [s for s in mt.get("secrets") or () if s not in made]
    mt["clock_hint"] = int(time.time())  # the host's clock, now: the board's clock is not sane before this
    values["mtproto_port"] = str(mt.get("port") or 8443)
    values["mtproto_secret"] = own
    path = (cfg.get("portal") or {}).get("qr_mtproto_svg")
    link = mtproto_link(cfg)
    if not path or link is None:
        return None
    return path.lstrip("/"), qr_svg(link)


def board_fleet_name(base, mac):
    """This board's name in the fleet: the build's fleet.name and the MAC's last 4 hex digits (like its SSID), so
    boards flashed from one build neither overwrite each other's report nor log each other off the broker."""
    return "%s-%02X%02X" % (base, mac[4], mac[5])


def _fleet(cfg, mac, fleet_key, values):
    """This board's own fleet name and, when the build logs in to the broker, its own login and command key
    (derived from the fleet key, as `relayctl build` derives them for one named relay)."""
    fl = cfg.get("fleet") or {}
    values["fleet_name"] = ""
    if not fl.get("enabled") or not fl.get("name"):
        return
    from relayctl.fleet import keys

    base = fl["name"]
    name = board_fleet_name(base, mac)
    if fl.get("user") or fl.get("command_key"):
        if fleet_key is None:
            raise CliError("this build reports to a fleet: each board needs its own broker login, derived from the "
                           "fleet key; give --site SITE.toml (the site file whose [fleet] has key)", 2)
        if fl.get("password") and fl["password"] != keys.password(fleet_key, base):
            raise CliError(f"the site file's fleet.key is not the key this build was made with (its login for {base} "
                           "does not match): give the site file the build came from, or build again", 2)
        fl["user"] = name
        fl["password"] = keys.password(fleet_key, name)
        if fl.get("command_key"):
            fl["command_key"] = keys.command_key(fleet_key, name)
    fl["name"] = name
    values["fleet_name"] = name


def _set(cfg, dotted, value):
    sect, key = dotted.split(".", 1)
    cfg.setdefault(sect, {})[key] = value


def _get(cfg, dotted):
    sect, key = dotted.split(".", 1)
    return cfg.get(sect, {}).get(key)


def _mount(region):
    """Mount a littlefs region with MicroPython's geometry, keeping its on-disk version
    (a 2.0 image must stay 2.0 for firmware older than v1.22)."""
    geometry = dict(block_size=4096, block_count=len(region) // 4096, read_size=32, prog_size=32,
                    lookahead_size=32, mount=False)
    try:
        probe = LittleFS(**geometry)
        probe.context.buffer[:] = region
        probe.mount()
        version = probe.fs_stat().disk_version
        probe.unmount()
        fs = LittleFS(disk_version=version, **geometry)
        fs.context.buffer[:] = region
        fs.mount()
    except Exception as e:
        raise CliError(f"cannot mount the image's filesystem ({e}): the build's filesystem offset or size "
                       "does not match its image; build again")
    return fs


def read_config(image):
    if image.fs_offset is None:
        raise CliError("the manifest names no filesystem offset: cannot read config.json from the image; "
                       "build again with a current relayctl")
    start = image.fs_offset - image.offset
    fs = _mount(image.data[start:start + image.fs_size])
    with fs.open("config.json", "r") as f:
        text = f.read()
    fs.unmount()
    return text


def stamp(image, mac, fleet_key=None):
    """(new Image, values actually written, names of values the firmware has no key for). fleet_key: the
    site's fleet key (bytes), needed when the build logs in to a fleet broker."""
    start = image.fs_offset - image.offset
    region = bytearray(image.data[start:start + image.fs_size])
    fs = _mount(region)
    with fs.open("config.json", "r") as f:
        cfg = json.loads(f.read())
    known = schema_keys()
    missing = []
    ssid_key = next((k for k in SSID_KEYS if k in known), None)
    admin_key = next((k for k in ADMIN_KEYS if k in known), None)
    base = (_get(cfg, ssid_key) if ssid_key else None) or "relay"
    values = board_values(mac, base)
    if ssid_key:
        _set(cfg, ssid_key, values["ssid"])
    else:
        missing.append("ssid")
        values["ssid"] = ""
    from relayctl.boards.admin_side import where

    if admin_key and where(cfg) is None:
        # The build serves the admin page nowhere (ESP32, Pico W: no wired side; site admin.side = "off"): a
        # password on the inventory row would promise a page no one can open.
        _set(cfg, admin_key, "")
        values["admin_password"] = ""
    elif admin_key:
        _set(cfg, admin_key, values["admin_password"])
    else:
        missing.append("admin_password")
        values["admin_password"] = ""
    cfg.setdefault("socks", {})["auth"] = "password"
    cfg["socks"]["users"] = [{"user": values["proxy_user"], "pass": values["proxy_password"]}]
    for key in ("wifi.passphrase", "wifi.password", "ap.password"):
        if _get(cfg, key):
            values["wifi_password"] = _get(cfg, key)
            break
    else:
        values["wifi_password"] = ""
    # Where phones reach the proxy: the board's Wi-Fi address (cards print the tg://socks link).
    values["proxy_host"] = _get(cfg, "wifi.address") or "192.168.4.1"
    values["proxy_port"] = str(_get(cfg, "socks.port") or 1080)
    values["mtproto_port"], values["mtproto_secret"] = "", ""
    qr = _mtproto(cfg, image.manifest or {}, values)
    _fleet(cfg, mac, fleet_key, values)
    text = json.dumps(cfg, indent=1, sort_keys=True, ensure_ascii=False) + "\n"  # as the build writes it
    check_config(text)
    fs.remove("config.json")
    with fs.open("config.json", "wb") as f:
        f.write(text.encode("utf-8"))
    if qr is not None:
        with fs.open(qr[0], "wb") as f:
            f.write(qr[1])
    fs.unmount()
    data = bytearray(image.data)
    data[start:start + image.fs_size] = fs.context.buffer
    new = Image(bytes(data), image.offset, image.fs_offset, image.fs_size,
                hashlib.sha256(text.encode("utf-8")).hexdigest(), image.board, image.chip, image.flash_size, image.manifest)
    return new, values, missing
