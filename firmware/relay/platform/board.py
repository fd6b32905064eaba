"""The board's own network hardware: the Wi-Fi access point and the uplink link.

board.bring_up(cfg, log) -> Platform. Called once before the relay listens (the access
point's address must exist before a listener binds to it). It does only quick,
synchronous work: the access point and creating interfaces. Platform.start(),
called inside the event loop, starts one keeper task for the uplink (Wi-Fi
station, ethernet PHY, or a cellular modem on a UART with PPP) that brings it up
with timeouts, retries with backoff, and brings it back after it drops, so an
intermittent uplink never needs a restart. Platform.state() is what GET
/api/status shows under "platform".

This package is the only code that touches MicroPython's `network` and `machine`.
It finds out what the runtime offers by importing them: on CPython (Linux boards,
where hostapd, DHCP and ModemManager do this work) and on the unix port there is
no `network` module and bring_up does nothing. It never blocks the data path:
every wait is an asyncio sleep between polls.
"""

from relay.platform.link import Link, LinkError, keep
from relay.runtime import api as runtime


class Platform:
    def __init__(self, name):
        self.name = name  # "none" (nothing to bring up here), or the radio: "esp32", "cyw43", "other"
        self.ap = None  # dict once the access point is up
        self.link = None  # Link of the uplink, if the board brings one up
        self.driver = None
        self.retry_ms = 10000
        self.log = None
        self.task = None

    def start(self):
        """Inside the event loop: start the uplink keeper (no-op without one)."""
        if self.driver is not None and self.task is None:
            self.task = runtime.create_task(keep(self.link, self.driver, self.retry_ms, self.log))

    def close(self):
        if self.task is not None:
            self.task.cancel()
            self.task = None

    def network_time(self):
        """(Unix seconds, now_ms when read) from the uplink (a modem's +CCLK), or None; relay.clock uses it."""
        return self.link.time if self.link is not None else None

    def state(self):
        return {"platform": self.name, "ap": self.ap, "uplink": self.link.as_dict() if self.link else None}

    def addresses(self):
        """The device's own addresses (text) on the interfaces brought up here, read from them now
        (a new DHCP lease or PPP address shows at once): platform/own.py hands them to the guard."""
        out = []
        if self.ap and self.ap.get("address"):
            out.append(self.ap["address"])
        d = self.driver
        nic = getattr(d, "nic", None) or getattr(d, "ppp", None)
        if nic is not None:
            from relay.platform.wifi import ip_of

            ip = ip_of(nic)
            if ip and ip != "0.0.0.0":
                out.append(ip)
            try:
                for a in nic.ipconfig("addr6"):  # 1.24+: [(address, state, preferred, valid)]
                    out.append(a[0] if type(a) is tuple else a)
            except (AttributeError, OSError, ValueError, TypeError, KeyError):
                pass  # no IPv6 on this port or this interface
        return out


def bring_up(cfg, log):
    try:
        import network
    except ImportError:
        return Platform("none")  # CPython or the unix port: the OS owns the network
    from relay.platform import wifi

    plat = Platform(wifi.radio())
    plat.log = log
    if cfg.wifi.enabled:
        try:
            plat.ap = wifi.start_ap(network, cfg.wifi, plat.name, log)
        except (OSError, ValueError) as e:
            plat.ap = {"state": "failed", "detail": str(e)}
            log.warn("access point: cannot start: %s (check wifi.* in config.json)" % e)
    u = cfg.uplink
    plat.retry_ms = int(u.retry * 1000)
    kind = u.kind
    if kind == "none":
        return plat
    plat.link = Link(kind)
    try:
        if kind == "wifi-sta":
            if not u.ssid:
                raise LinkError("uplink.ssid is empty: nothing to join", True)
            plat.driver = wifi.Station(network, u, plat.link)
        elif kind == "ethernet":
            from relay.platform import lan

            plat.driver = lan.Ethernet(network, u, plat.link)
        elif kind == "cellular":
            if not u.apn:
                raise LinkError("uplink.apn is empty: the modem needs the APN of the SIM's home operator", True)
            from relay.platform import cellular

            plat.driver = cellular.Cellular(network, u, plat.link, log)
    except LinkError as e:
        plat.link.set("failed", e.detail)
        log.warn("uplink %s: %s" % (kind, e.detail))
    except (OSError, ValueError, AttributeError, ImportError) as e:
        plat.link.set("failed", "this firmware cannot drive it: %s" % e)
        log.warn("uplink %s: this firmware cannot drive it: %s" % (kind, e))
    return plat


def restart():
    """After the relay stopped to restart: reset a MicroPython board (machine.reset()). Elsewhere
    nothing: the process exits with a status its service manager (systemd, procd) restarts on."""
    try:
        import network  # noqa: F401  (only boards have it; the unix port has machine but no reset)
        import machine
    except ImportError:
        return
    machine.reset()
