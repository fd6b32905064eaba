"""Ethernet on an ESP32 with an RMII PHY (a satellite terminal's cable) through network.LAN.

Input: uplink.lan_* from config.json. Output: an Ethernet driver for platform.keep().
network.LAN(mdc=Pin, mdio=Pin, power=Pin, phy_addr=int, phy_type=network.PHY_*,
ref_clk_mode=Pin.IN|Pin.OUT, ref_clk=Pin) as in ports/esp32/network_lan.c; it is a
singleton that returns the same object when called again. DHCP starts by itself once
the link is up; isconnected() is true once the PHY has link and DHCP gave an address
(status() == network.ETH_GOT_IP).
"""

from relay.runtime import api as runtime
from relay.platform.link import LinkError
from relay.platform.wifi import ip_of

CLOCKS = {"gpio0-in": (0, "IN"), "gpio16-out": (16, "OUT"), "gpio17-out": (17, "OUT")}


def lan_args(u, network, Pin):
    """Keyword arguments for network.LAN() (pure but for the Pin and constant lookups)."""
    phy = getattr(network, "PHY_" + u.lan_phy.upper(), None)
    if phy is None:
        raise LinkError("this firmware has no driver for the %s PHY (network.PHY_%s)" % (u.lan_phy, u.lan_phy.upper()), True)
    kw = {"mdc": Pin(u.lan_mdc), "mdio": Pin(u.lan_mdio), "phy_type": phy, "phy_addr": u.lan_addr}
    if u.lan_power >= 0:
        kw["power"] = Pin(u.lan_power)
    if u.lan_clock in CLOCKS:
        pin, mode = CLOCKS[u.lan_clock]
        kw["ref_clk_mode"] = getattr(Pin, mode)
        kw["ref_clk"] = Pin(pin)
    return kw


class Ethernet:
    def __init__(self, network, u, link):
        import machine

        self.network = network
        self.link = link
        self.timeout_ms = int(u.connect_timeout * 1000)
        self.args = lan_args(u, network, machine.Pin)
        self.nic = None

    async def up(self):
        if self.nic is None:
            self.nic = self.network.LAN(**self.args)  # OSError when the PHY does not answer: retried
        nic = self.nic
        nic.active(True)
        t0 = runtime.now_ms()
        while not nic.isconnected():
            if runtime.ms_since(t0) > self.timeout_ms:
                st = nic.status()
                if st == getattr(self.network, "ETH_CONNECTED", None):
                    raise LinkError("cable has link but no DHCP answer within %d s" % (self.timeout_ms // 1000))
                raise LinkError("no link on the cable within %d s (plugged in? terminal powered?)" % (self.timeout_ms // 1000))
            await runtime.sleep_ms(250)
        self.link.info["ip"] = ip_of(nic)

    async def alive(self):
        return self.nic.isconnected()

    async def down(self):
        self.link.info.pop("ip", None)  # the interface stays active: DHCP runs again when the link returns
