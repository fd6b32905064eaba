# Stand-in for MicroPython's `network` module, for the unix port (which has none), so
# firmware/relay/platform runs under the real MicroPython interpreter. It records every
# call in CALLS and enforces what MicroPython documents and its drivers do
# (docs/library/network*.rst, ports/esp32/network_wlan.c, network_lan.c, network_ppp.c,
# extmod/network_cyw43.c, extmod/network_ppp_lwip.c):
#   NETSTUB_RADIO=esp32|cyw43   cyw43 rejects max_clients and hidden (ValueError), has no LAN
#   NETSTUB_API=new|old         new: WLAN.IF_*/SEC_*, ipconfig, PPP(security=, user=, key=);
#                               old (1.22 ESP32): AP_IF/AUTH_*, PPP.active() + connect(authmode=...)
# SIM holds the far side: the networks in range, the cable, timings. Tests drive it.
import os
import time

from machine import Pin

RADIO = os.getenv("NETSTUB_RADIO") or "esp32"
API = os.getenv("NETSTUB_API") or "new"
CALLS = []


def _ms():
    return time.ticks_ms()


class _Sim:
    def __init__(self):
        self.networks = {}  # ssid -> key ("" open) of the networks "in range"
        self.connect_ms = 300  # association + DHCP time
        self.lan_link = True
        self.lan_dhcp = True
        self.lan_up_ms = 200


SIM = _Sim()

if RADIO == "esp32":  # ports/esp32/modnetwork_globals.h, network_wlan.c (ESP-IDF reason codes)
    STAT_IDLE, STAT_CONNECTING, STAT_GOT_IP = 1000, 1001, 1010
    STAT_NO_AP_FOUND, STAT_WRONG_PASSWORD = 201, 202
    _SEC = {"OPEN": 0, "WEP": 1, "WPA": 2, "WPA2": 3, "WPA_WPA2": 4, "WPA3": 6, "WPA2_WPA3": 7}
    _STA, _AP = 0, 1
else:  # extmod/modnetwork.h (cyw43 link status)
    STAT_IDLE, STAT_CONNECTING, STAT_GOT_IP = 0, 1, 3
    STAT_CONNECT_FAIL, STAT_NO_AP_FOUND, STAT_WRONG_PASSWORD = -1, -2, -3
    _SEC = {"OPEN": 0, "WPA_WPA2": 0x00400006, "WPA3": 0x01000004, "WPA2_WPA3": 0x01400004}
    _STA, _AP = 0, 1

if API == "old":
    STA_IF, AP_IF = _STA, _AP
    if RADIO == "esp32":
        AUTH_OPEN, AUTH_WPA2_PSK, AUTH_WPA_WPA2_PSK = 0, 3, 4

_country = ["XX"]


def country(code=None):
    if code is None:
        return _country[0]
    if type(code) is not str or len(code) != 2:
        raise ValueError("invalid country code")
    CALLS.append(["country", code])
    _country[0] = code


_AP_KEYS = {"ssid", "essid", "key", "password", "security", "authmode", "channel", "hidden", "max_clients",
            "mac", "txpower", "pm", "hostname", "dhcp_hostname", "reconnects", "protocol"}
_CYW43_KEYS = {"ssid", "essid", "key", "password", "security", "channel", "mac", "txpower", "pm", "hostname",
               "antenna", "monitor", "trace"}


class WLAN:
    _objs = {}

    def __new__(cls, interface_id=_STA):
        if interface_id not in (_STA, _AP):
            raise ValueError("invalid WLAN interface identifier")
        if interface_id not in WLAN._objs:
            o = object.__new__(cls)
            o.itf = interface_id
            o._active = False
            o.cfg = {}
            o.ip = ("0.0.0.0", "0.0.0.0", "0.0.0.0", "0.0.0.0")
            o.want = None  # (ssid, key) while a connection is requested
            o.t_connect = 0
            o.dropped = False
            WLAN._objs[interface_id] = o
        return WLAN._objs[interface_id]

    def __init__(self, interface_id=_STA):
        pass

    def _name(self):
        return "AP" if self.itf == _AP else "STA"

    def active(self, *a):
        if a:
            CALLS.append(["WLAN.active", self._name(), bool(a[0])])
            self._active = bool(a[0])
            if not self._active:
                self.want = None
        return self._active

    def config(self, *a, **kw):
        if a and kw:
            raise TypeError("either pos or kw args are allowed")
        if a:
            return self.cfg.get(a[0])
        CALLS.append(["WLAN.config", self._name(), sorted(kw.keys()), kw])
        known = _AP_KEYS if RADIO == "esp32" else _CYW43_KEYS
        for k in kw:
            if k not in known:
                raise ValueError("unknown config param")
            if RADIO == "esp32" and k in ("max_clients", "hidden", "ssid", "key", "security") and self.itf != _AP:
                raise OSError("AP required")
        if RADIO == "esp32" and "max_clients" in kw and not 0 < kw["max_clients"] <= 10:
            raise OSError("ESP_ERR_WIFI_ARG")  # ESP_WIFI_MAX_CONN_NUM
        sec = kw.get("security", kw.get("authmode"))
        if sec is not None and sec not in _SEC.values():
            raise ValueError("invalid security")
        key = kw.get("key", kw.get("password"))
        if key is not None and not 8 <= len(key) <= 63:
            raise ValueError("key must be 8..63 characters")
        if "channel" in kw and not 1 <= kw["channel"] <= 14:
            raise OSError("ESP_ERR_WIFI_ARG")
        self.cfg.update(kw)

    def connect(self, ssid=None, key=None, bssid=None):
        if self.itf != _STA:
            raise OSError("STA required")
        if not self._active:
            raise OSError("Wifi Not Started")
        CALLS.append(["WLAN.connect", ssid, key])
        self.want = (ssid, key)
        self.t_connect = _ms()
        self.dropped = False

    def disconnect(self):
        CALLS.append(["WLAN.disconnect", self._name()])
        self.want = None

    def _stat(self):
        if self.want is None:
            return STAT_IDLE
        ssid, key = self.want
        if time.ticks_diff(_ms(), self.t_connect) < SIM.connect_ms:
            return STAT_CONNECTING
        if ssid not in SIM.networks:
            return STAT_NO_AP_FOUND
        if (SIM.networks[ssid] or None) != (key or None):
            return STAT_WRONG_PASSWORD
        return STAT_GOT_IP

    def status(self, *a):
        if a:
            if a[0] == "rssi":
                if self.itf != _STA:
                    raise OSError("STA required")
                return -61
            if a[0] == "stations":
                return []
            raise ValueError("unknown status param")
        if self.itf != _STA:
            return None
        return self._stat()

    def isconnected(self):
        if self.itf == _AP:
            return False
        return self._active and self._stat() == STAT_GOT_IP

    def ifconfig(self, *a):
        if a:
            t = a[0]
            if type(t) is not tuple or len(t) != 4 or [x for x in t if type(x) is not str]:
                raise TypeError("expected (ip, subnet, gateway, dns)")
            CALLS.append(["WLAN.ifconfig", self._name(), list(t)])
            self.ip = t
            return None
        if self.itf == _STA and self.isconnected():
            return ("10.0.0.23", "255.255.255.0", "10.0.0.1", "10.0.0.1")
        return self.ip

    def scan(self):
        return [(s.encode(), b"\x00" * 6, 6, -60, 3, False) for s in SIM.networks]

    def drop(self):
        """The network went away (tests): the link is lost until it comes back."""
        self.dropped = True


if API == "new":
    WLAN.IF_STA, WLAN.IF_AP = _STA, _AP
    for _n in _SEC:
        setattr(WLAN, "SEC_" + _n, _SEC[_n])

    def _ipconfig(self, *a, **kw):
        if a:
            return {"addr4": (self.ifconfig()[0], self.ifconfig()[1])}[a[0]]
        CALLS.append(["WLAN.ipconfig", self._name(), kw])
    WLAN.ipconfig = _ipconfig


# ---- LAN: ESP32 only (ports/esp32/network_lan.c) ----
if RADIO == "esp32":
    PHY_LAN8710, PHY_LAN8720, PHY_IP101, PHY_RTL8201, PHY_DP83848, PHY_KSZ8041, PHY_KSZ8081 = 0, 1, 2, 3, 4, 5, 6
    ETH_INITIALIZED, ETH_STARTED, ETH_STOPPED, ETH_CONNECTED, ETH_DISCONNECTED, ETH_GOT_IP = 0, 1, 2, 3, 4, 5

    class _LAN:
        def __init__(self):
            self._active = False
            self.t_up = 0

        def active(self, *a):
            if a:
                CALLS.append(["LAN.active", bool(a[0])])
                if bool(a[0]) and not self._active:
                    self.t_up = _ms()
                self._active = bool(a[0])
            return self._active

        def status(self):
            if not self._active:
                return ETH_STOPPED
            if not SIM.lan_link:
                return ETH_DISCONNECTED
            if time.ticks_diff(_ms(), self.t_up) < SIM.lan_up_ms:
                return ETH_STARTED
            return ETH_GOT_IP if SIM.lan_dhcp else ETH_CONNECTED

        def isconnected(self):
            return self._active and self.status() == ETH_GOT_IP

        def ifconfig(self, *a):
            return ("192.168.100.23", "255.255.255.0", "192.168.100.1", "192.168.100.1")

        def config(self, *a, **kw):
            return None

    _lan = []

    def LAN(id=None, *, mdc=None, mdio=None, reset=None, power=None, phy_addr=None, phy_type=None,
            spi=None, cs=None, int=None, ref_clk_mode=-1, ref_clk=None):
        CALLS.append(["LAN", {"mdc": mdc.id if mdc else None, "mdio": mdio.id if mdio else None,
                              "power": power.id if power else None, "phy_addr": phy_addr, "phy_type": phy_type,
                              "ref_clk_mode": ref_clk_mode, "ref_clk": ref_clk.id if ref_clk else None}])
        if _lan:
            return _lan[0]  # a singleton: later calls return the first object
        if phy_addr is None or phy_type is None:
            raise TypeError("phy_addr and phy_type are required")
        for p in (mdc, mdio, power, reset, ref_clk):
            if p is not None and not isinstance(p, Pin):
                raise TypeError("expected a Pin")
        if mdc is None or mdio is None:
            raise ValueError("mdc and mdio must be specified")
        if not 0 <= phy_addr <= 0x1F:
            raise ValueError("invalid phy address")
        if phy_type not in (0, 1, 2, 3, 4, 5, 6):
            raise ValueError("invalid phy type")
        if ref_clk_mode not in (-1, Pin.IN, Pin.OUT):
            raise ValueError("invalid ref_clk_mode")
        _lan.append(_LAN())
        return _lan[0]


# ---- PPP ----
_FLAG = 0x7E


class _PPPBase:
    def __init__(self, stream):
        for m in ("read", "write"):
            if not hasattr(stream, m):
                raise TypeError("stream operation not supported")
        self.stream = stream
        self.state = 0  # inactive
        self.rx = b""

    def _start(self):
        self.state = 3  # connecting
        self.stream.write(b"\x7e\xff\x7d\x23\xc0\x21\x7d\x21\x7d\x21\x7d\x20\x7d\x24\x7e")  # LCP Configure-Request
        self.poll()

    def poll(self, *a):
        data = self.stream.read()
        if data:
            self.rx += data
            if b"NO CARRIER" in self.rx:
                self.state = 2  # error: the modem hung up
                self.rx = b""
            elif self.state == 3 and self.rx.count(b"\x7e") >= 2:
                self.state = 4  # connected
                self.rx = b""
        return len(data or b"")

    def isconnected(self):
        self.poll()  # on a board the UART's RXIDLE interrupt calls poll(); here reading does it
        return self.state == 4

    def status(self):
        return self.state

    def ifconfig(self, *a):
        return ("10.64.12.34", "255.255.255.255", "10.64.12.1", "10.64.0.1") if self.state == 4 else ("0.0.0.0",) * 4

    def ipconfig(self, *a, **kw):
        return {"addr4": (self.ifconfig()[0], "255.255.255.255")}[a[0]]


class _PPPNew(_PPPBase):
    # extmod/network_ppp_lwip.c: PPP(stream); connect(security=, user=, key=) hooks stream.irq(poll, IRQ_RXIDLE).
    SEC_NONE, SEC_PAP, SEC_CHAP = 0, 1, 2

    def connect(self, security=0, user=None, key=None):
        CALLS.append(["PPP.connect", {"security": security, "user": user, "key": key}])
        if self.state in (3, 4):
            raise OSError(114)  # EALREADY
        if security not in (0, 1, 2):
            raise ValueError("invalid auth")
        if security and (type(user) is not str or type(key) is not str):
            raise TypeError("user and key must be str")
        self.stream.irq(self.poll, self.stream.IRQ_RXIDLE)
        self._start()

    def disconnect(self):
        CALLS.append(["PPP.disconnect"])
        self.state = 0
        self.stream.irq(None)


class _PPPOld(_PPPBase):
    # ports/esp32/network_ppp.c before 1.24: active(True) first, connect(authmode=, username=, password=).
    AUTH_NONE, AUTH_PAP, AUTH_CHAP = 0, 1, 2

    def __init__(self, stream):
        super().__init__(stream)
        self._active = False

    def active(self, *a):
        if a:
            CALLS.append(["PPP.active", bool(a[0])])
            self._active = bool(a[0])
            if not self._active:
                self.state = 0
        return self._active

    def connect(self, authmode=0, username=None, password=None):
        CALLS.append(["PPP.connect", {"authmode": authmode, "username": username, "password": password}])
        if not self._active:
            raise OSError("must be active")
        if authmode not in (0, 1, 2):
            raise ValueError("invalid auth")
        self._start()


def PPP(stream):
    CALLS.append(["PPP"])
    return _PPPOld(stream) if API == "old" and RADIO == "esp32" else _PPPNew(stream)
