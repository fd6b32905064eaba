"""The access point for Linux boards and OpenWrt: settings checks and config renderers.

check(settings) -> a normalised settings dict, or WifiError listing every problem;
render_linux(ap) / render_openwrt(ap) -> {file name: text}, pure functions.
"""

from relayctl.wifi.check import WifiError, check  # noqa: F401
from relayctl.wifi.render import render_linux, render_openwrt  # noqa: F401
