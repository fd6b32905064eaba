"""Wi-Fi through MicroPython's network.WLAN: the access point phones join, and the
station interface for a Wi-Fi uplink, both at once.

Input: config.json's wifi.* and uplink.* sections. Output: the access point's
state (a dict) and a Station driver for platform.keep(). Radio differences are
MicroPython's (docs/library/network.WLAN.rst, ports/esp32/network_wlan.c,
extmod/network_cyw43.c): the ESP32 takes max_clients (ESP-IDF caps it at 10 on
the original ESP32); the Pico W's cyw43 refuses max_clients and hidden with
ValueError("unknown config param"), so they are never passed there.
Security constants moved from network.AUTH_* (ESP32 up to 1.22) to WLAN.SEC_*;
both are looked up. ifconfig() is deprecated in favour of ipconfig() (1.24+) but
still present; it sets address, mask, gateway and the DNS the access point's DHCP
server hands out in one call, so it is used while it exists.
"""

from relay.runtime import api as runtime
from relay.platform.link import LinkError

ESP32_MAX_CLIENTS = 10  # ESP_WIFI_MAX_CONN_NUM on the original ESP32; more is refused


def radio():
    """Which Wi-Fi driver this firmware has, from the port's own module."""
    try:
        import esp32  # noqa: F401  ports/esp32

        return "esp32"
    except ImportError:
        pass
    try:
        import rp2  # noqa: F401  ports/rp2: the Pico W's radio is the cyw43

        return "cyw43"
    except ImportError:
        return "other"


def _const(network, names):
    """The first of names found on network.WLAN or network (None: the driver's default)."""
    for name in names:
        for where in (network.WLAN, network):
            v = getattr(where, name, None)
            if v is not None:
                return v
    return None


def interface(network, which):
    """network.WLAN.IF_AP (1.23+) or network.AP_IF; which: "AP" or "STA"."""
    v = getattr(network.WLAN, "IF_" + which, None)
    return v if v is not None else getattr(network, which + "_IF")


def ap_settings(ssid, security, passphrase, channel, max_clients, radio_name, sec_open, sec_wpa2):
    """Keyword arguments for WLAN.config() on the access point, in a fixed order (pure)."""
    kw = [("ssid", ssid), ("channel", channel)]
    if security == "wpa2":
        kw.append(("key", passphrase))
        if sec_wpa2 is not None:
            kw.append(("security", sec_wpa2))
    elif sec_open is not None:
        kw.append(("security", sec_open))
    if max_clients and radio_name != "cyw43":  # cyw43: ValueError("unknown config param")
        kw.append(("max_clients", min(max_clients, ESP32_MAX_CLIENTS) if radio_name == "esp32" else max_clients))
    return kw


def netmask(cidr):
    """'192.168.4.0/24' -> '255.255.255.0'."""
    bits = int(cidr.split("/", 1)[1]) if "/" in cidr else 32
    m = (0xFFFFFFFF << (32 - bits)) & 0xFFFFFFFF
    return "%d.%d.%d.%d" % (m >> 24, (m >> 16) & 255, (m >> 8) & 255, m & 255)


def set_country(network, code, log):
    if code in ("00", "XX", ""):
        return  # the driver's default is already the world setting
    fn = getattr(network, "country", None)
    if fn is None:
        log.warn("wifi.country: this firmware cannot set the country; the radio uses its default channels")
        return
    try:
        fn(code)
    except (ValueError, OSError) as e:
        log.warn("wifi.country: %s refused: %s" % (code, e))


def start_ap(network, w, radio_name, log):
    set_country(network, w.country, log)
    ap = network.WLAN(interface(network, "AP"))
    sec_open = _const(network, ("SEC_OPEN", "AUTH_OPEN"))
    sec_wpa2 = _const(network, ("SEC_WPA2", "SEC_WPA_WPA2", "AUTH_WPA2_PSK", "AUTH_WPA_WPA2_PSK"))
    kw = {}
    for k, v in ap_settings(w.ssid, w.security, w.passphrase, w.channel, w.max_clients, radio_name, sec_open, sec_wpa2):
        kw[k] = v
    try:
        ap.config(**kw)  # before active(True): MicroPython's quickrefs, and cyw43 before 1.23 needs it
    except ValueError:
        if "max_clients" not in kw:
            raise
        del kw["max_clients"]  # a radio we do not know that has no such setting
        ap.config(**kw)
        log.warn("wifi.max_clients: this radio has no such setting; its own limit applies")
    ap.active(True)
    mask = netmask(w.subnet)
    if hasattr(ap, "ifconfig"):
        ap.ifconfig((w.address, mask, w.address, w.address))
    else:
        ap.ipconfig(addr4=(w.address, mask))
    log.info("access point up ssid=%s security=%s channel=%d address=%s" % (w.ssid, w.security, w.channel, w.address))
    return {"state": "up", "ssid": w.ssid, "security": w.security, "channel": w.channel, "address": w.address}


def ip_of(nic):
    try:
        if hasattr(nic, "ifconfig"):
            return nic.ifconfig()[0]
        return nic.ipconfig("addr4")[0]
    except (OSError, ValueError, TypeError, IndexError):
        return None


def gateway_of(nic):
    """The station's gateway: the access point it joined (a satellite's relay in a mesh)."""
    try:
        if hasattr(nic, "ifconfig"):
            return nic.ifconfig()[2]
        return nic.ipconfig("gw4")
    except (OSError, ValueError, TypeError, IndexError, KeyError):
        return None


class Station:
    """The Wi-Fi uplink: join uplink.ssid, poll status() until it has an address or fails."""

    def __init__(self, network, u, link):
        self.network = network
        self.ssid = u.ssid
        self.key = u.passphrase or None
        self.timeout_ms = int(u.connect_timeout * 1000)
        self.link = link
        self.nic = network.WLAN(interface(network, "STA"))
        n = network
        self.failures = {}
        for name, why in (("STAT_WRONG_PASSWORD", "wrong passphrase (uplink.passphrase)"),
                          ("STAT_NO_AP_FOUND", "network %s not found" % repr(u.ssid)),
                          ("STAT_CONNECT_FAIL", "the network refused the connection")):
            v = _const(n, (name,))
            if v is not None:
                self.failures[v] = why

    async def up(self):
        nic = self.nic
        nic.active(True)
        if not nic.isconnected():
            nic.connect(self.ssid, self.key)
            t0 = runtime.now_ms()
            while not nic.isconnected():
                why = self.failures.get(nic.status())
                if why:
                    raise LinkError(why)
                if runtime.ms_since(t0) > self.timeout_ms:
                    raise LinkError("no address from %s within %d s" % (repr(self.ssid), self.timeout_ms // 1000))
                await runtime.sleep_ms(250)
        self.link.info["ip"] = ip_of(nic)
        self.link.info["gateway"] = gateway_of(nic)
        try:
            self.link.info["rssi"] = nic.status("rssi")
        except (ValueError, OSError, TypeError):
            pass

    async def alive(self):
        return self.nic.isconnected()

    async def down(self):
        self.link.info.pop("ip", None)
        self.nic.disconnect()
