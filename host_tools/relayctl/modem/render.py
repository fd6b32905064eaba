"""Render an uplink's data-connection config for Linux boards. Pure functions: a
validated uplink dict in, the text of one config file out. No I/O, no clock.

| kind      | format          | file on the board                                              |
|-----------|-----------------|----------------------------------------------------------------|
| cellular  | networkmanager  | /etc/NetworkManager/system-connections/relay-uplink.nmconnection (mode 600) |
| cellular  | openwrt         | a section for /etc/config/network (proto modemmanager)         |
| ethernet  | networkd        | /etc/systemd/network/20-relay-uplink.network                   |
| ethernet  | openwrt         | a section for /etc/config/network (proto dhcp)                 |
| wifi-sta  | wpa_supplicant  | /etc/wpa_supplicant/wpa_supplicant-IFACE.conf (IFACE: --interface, wlan0) |
| wifi-sta  | openwrt         | sections for /etc/config/wireless and /etc/config/network      |

Keys of the uplink dict (the [uplink] table of a site file, names as in
relayctl/boards/schema.py): kind; cellular: apn, user, password, pin, roaming, operator,
rat, iptype, modem_device; ethernet: interface, metric; wifi-sta: ssid, passphrase,
security (wpa2|wpa3|open), hidden, country, radio.
"""

import hashlib
import re

from relayctl.errors import CliError

FORMATS = {
    "cellular": ("networkmanager", "openwrt"),
    "ethernet": ("networkd", "openwrt"),
    "wifi-sta": ("wpa_supplicant", "openwrt"),
}

_MM_MODES = {"lte": "4g", "umts": "3g", "gsm": "2g"}
_IPTYPE = {"IP": "ipv4", "IPV6": "ipv6", "IPV4V6": "ipv4v6"}


def _need(up, key, what):
    val = up.get(key)
    if val in (None, ""):
        raise CliError(f"cannot render the {up.get('kind')} uplink: {key} is missing; {what}", 2)
    return val


def _keyfile(value):
    """GKeyFile escaping for NetworkManager keyfiles."""
    s = str(value).replace("\\", "\\\\").replace("\n", "\\n").replace("\t", "\\t").replace("\r", "\\r")
    return "\\s" + s[1:] if s.startswith(" ") else s


def _uci(value):
    """One uci option value, single-quoted as /etc/config files expect."""
    return "'" + str(value).replace("'", "'\\''") + "'"


def _bool01(v):
    return "1" if v else "0"


def render(up, fmt):
    kind = up.get("kind")
    kind = "wifi-sta" if kind == "wifi" else kind
    if kind not in FORMATS:
        raise CliError(f"cannot render uplink kind {kind!r}: known kinds are {', '.join(FORMATS)}", 2)
    if fmt not in FORMATS[kind]:
        raise CliError(f"no {fmt!r} format for the {kind} uplink: use one of {', '.join(FORMATS[kind])}", 2)
    return _RENDERERS[(kind, fmt)](up)


# ---- cellular ----

def cellular_networkmanager(up):
    apn = _need(up, "apn", "give --apn (the SIM's home operator's APN)")
    lines = [
        "# Relay uplink: cellular modem through ModemManager + NetworkManager.",
        "# Install as /etc/NetworkManager/system-connections/relay-uplink.nmconnection, chmod 600,",
        "# then: nmcli connection reload && nmcli connection up relay-uplink",
        "[connection]",
        "id=relay-uplink",
        "type=gsm",
        "autoconnect=true",
        "",
        "[gsm]",
        f"apn={_keyfile(apn)}",
    ]
    if up.get("user"):
        lines.append(f"username={_keyfile(up['user'])}")
    if up.get("password"):
        lines += [f"password={_keyfile(up['password'])}", "password-flags=0"]
    if up.get("pin"):
        lines += [f"pin={_keyfile(up['pin'])}", "pin-flags=0"]
    if up.get("operator") and up["operator"] != "auto":
        lines.append(f"network-id={up['operator']}")
    lines.append(f"home-only={'false' if up.get('roaming') else 'true'}")
    if up.get("rat") and up["rat"] != "auto":
        lines.insert(3, f"# radio: {up['rat']} only; NetworkManager cannot set it, run once: "
                        f"mmcli -m any --set-allowed-modes={_MM_MODES[up['rat']]}")
    lines += ["", "[ipv4]", "method=auto", "", "[ipv6]", "method=auto", "addr-gen-mode=stable-privacy", ""]
    return "\n".join(lines)


def cellular_openwrt(up):
    apn = _need(up, "apn", "give --apn (the SIM's home operator's APN)")
    lines = [
        "# Relay uplink: cellular modem through ModemManager (OpenWrt: opkg install modemmanager luci-proto-modemmanager).",
        "# Append to /etc/config/network, add 'lte' to the wan zone in /etc/config/firewall, then: ifup lte",
        "config interface 'lte'",
        "\toption proto 'modemmanager'",
    ]
    if up.get("modem_device"):
        lines.append(f"\toption device {_uci(up['modem_device'])}")
    else:
        lines.append("\t# option device '/sys/devices/...'  REQUIRED: the modem's sysfs path; "
                     "find it with: mmcli -m any | grep device")
    lines.append(f"\toption apn {_uci(apn)}")
    if up.get("user") or up.get("password"):
        lines.append("\toption allowedauth 'pap chap'")
        if up.get("user"):
            lines.append(f"\toption username {_uci(up['user'])}")
        if up.get("password"):
            lines.append(f"\toption password {_uci(up['password'])}")
    if up.get("pin"):
        lines.append(f"\toption pincode {_uci(up['pin'])}")
    lines.append(f"\toption iptype {_uci(_IPTYPE.get(str(up.get('iptype', 'IP')).upper(), 'ipv4'))}")
    if up.get("operator") and up["operator"] != "auto":
        lines.append(f"\toption plmn {_uci(up['operator'])}")
    lines.append(f"\toption allow_roaming '{_bool01(up.get('roaming'))}'")
    if up.get("rat") and up["rat"] != "auto":
        lines.append(f"\toption allowedmode {_uci(_MM_MODES[up['rat']])}")
    lines += ["\toption metric '20'", "\toption signalrate '30'", ""]
    return "\n".join(lines)


# ---- ethernet ----

def ethernet_networkd(up):
    iface = up.get("interface") or "eth0"
    metric = int(up.get("metric", 100))
    return "\n".join([
        "# Relay uplink: DHCP on the ethernet port (a satellite terminal, or a wire that still works).",
        "# Install as /etc/systemd/network/20-relay-uplink.network, then: systemctl restart systemd-networkd",
        "[Match]",
        f"Name={iface}",
        "",
        "[Network]",
        "DHCP=yes",
        "IPv6AcceptRA=yes",
        "",
        "[DHCPv4]",
        f"RouteMetric={metric}",
        "UseDNS=yes",
        "",
        "[IPv6AcceptRA]",
        f"RouteMetric={metric}",
        "",
    ])


def ethernet_openwrt(up):
    iface = up.get("interface") or "eth0"
    return "\n".join([
        "# Relay uplink: DHCP on the ethernet port (a satellite terminal, or a wire that still works).",
        "# Replace the 'wan' and 'wan6' sections of /etc/config/network with these, then: ifup wan",
        "config interface 'wan'",
        f"\toption device {_uci(iface)}",
        "\toption proto 'dhcp'",
        f"\toption metric '{int(up.get('metric', 10))}'",
        "",
        "config interface 'wan6'",
        f"\toption device {_uci(iface)}",
        "\toption proto 'dhcpv6'",
        "",
    ])


# ---- wifi station ----

def wpa_psk(ssid, passphrase):
    """The 256-bit PSK wpa_passphrase derives (IEEE 802.11i: PBKDF2-HMAC-SHA1, 4096 rounds, SSID as salt)."""
    return hashlib.pbkdf2_hmac("sha1", passphrase.encode(), ssid.encode(), 4096, 32).hex()


def _check_wifi(up):
    ssid = _need(up, "ssid", "give --ssid (the Wi-Fi network to join)")
    if len(ssid.encode()) > 32:
        raise CliError(f"SSID {ssid!r} is {len(ssid.encode())} bytes: Wi-Fi names are at most 32 bytes", 2)
    psk = up.get("passphrase") or ""
    security = up.get("security") or ("open" if not psk else "wpa2")
    if security not in ("wpa2", "wpa3", "open"):
        raise CliError(f"security {security!r} unknown: use wpa2, wpa3 or open", 2)
    if security != "open" and not (8 <= len(psk) <= 63 and all(32 <= ord(c) < 127 for c in psk)):
        raise CliError("Wi-Fi passphrase must be 8 to 63 printable ASCII characters: check --passphrase", 2)
    return ssid, security, psk


def _wpa_string(s):
    if all(32 <= ord(c) < 127 for c in s) and '"' not in s:
        return f'"{s}"'
    return s.encode().hex()  # unquoted hex: any bytes, no escaping questions


def wifi_wpa_supplicant(up):
    ssid, security, psk = _check_wifi(up)
    country = (up.get("country") or "").upper()
    iface = up.get("interface") or "wlan0"  # the uplink radio: on a Pi with an AP, a second one (wlan1)
    lines = [
        f"# Relay uplink: join the Wi-Fi network {ssid!r} as a station.",
        f"# Install as /etc/wpa_supplicant/wpa_supplicant-{iface}.conf (mode 600), then:",
        f"# systemctl enable --now wpa_supplicant@{iface} (and DHCP on {iface}, e.g. a networkd .network file)",
        "ctrl_interface=DIR=/run/wpa_supplicant GROUP=netdev",
        "update_config=0",
    ]
    if re.fullmatch(r"[A-Z]{2}", country):
        lines.append(f"country={country}")
    lines += ["", "network={", f"\tssid={_wpa_string(ssid)}"]
    if up.get("hidden"):
        lines.append("\tscan_ssid=1")
    if security == "open":
        lines.append("\tkey_mgmt=NONE")
    elif security == "wpa2":
        lines += ["\tkey_mgmt=WPA-PSK", f"\tpsk={wpa_psk(ssid, psk)}"]
    else:  # SAE needs the passphrase itself; WPA-PSK keeps WPA2-only access points working
        lines += ["\tkey_mgmt=SAE WPA-PSK", "\tieee80211w=1", f"\tpsk={_wpa_string(psk)}",
                  f"\tsae_password={_wpa_string(psk)}"]
    lines += ["}", ""]
    return "\n".join(lines)


def wifi_openwrt(up):
    ssid, security, psk = _check_wifi(up)
    enc = {"open": "none", "wpa2": "psk2", "wpa3": "sae-mixed"}[security]
    lines = [
        f"# Relay uplink: join the Wi-Fi network {ssid!r} as a station, keeping the access point up.",
        "# --- append to /etc/config/wireless ---",
        "config wifi-iface 'relay_sta'",
        f"\toption device {_uci(up.get('radio') or 'radio0')}",
        "\toption mode 'sta'",
        "\toption network 'wwan'",
        f"\toption ssid {_uci(ssid)}",
        f"\toption encryption '{enc}'",
    ]
    if security != "open":
        lines.append(f"\toption key {_uci(psk)}")
    if up.get("hidden"):
        lines.append("\toption hidden '1'")
    lines += [
        "",
        "# --- append to /etc/config/network, add 'wwan' to the wan zone, then: wifi reload ---",
        "config interface 'wwan'",
        "\toption proto 'dhcp'",
        "",
    ]
    return "\n".join(lines)


_RENDERERS = {
    ("cellular", "networkmanager"): cellular_networkmanager,
    ("cellular", "openwrt"): cellular_openwrt,
    ("ethernet", "networkd"): ethernet_networkd,
    ("ethernet", "openwrt"): ethernet_openwrt,
    ("wifi-sta", "wpa_supplicant"): wifi_wpa_supplicant,
    ("wifi-sta", "openwrt"): wifi_openwrt,
}
